// Exchanges as admins configure them: checked as a whole when saved (the file options by the reader or writer of
// the format, the mapping against the action it feeds, the transport's secrets), so a schedule does not discover
// at 2 am that its exchange could never have worked. Transport secrets are encrypted at rest and never shown.
import { Readable } from 'node:stream';
import { HubError, isHubError, type FieldError } from '../errors.ts';
import type { Cipher } from '../lib/secrets.ts';
import type { MappingDocument } from '../mappings/document.ts';
import { resolveMapping } from '../mappings/repository.ts';
import type { Db, ExchangesRow, NewRow } from '../store/types.ts';
import { DATASET_NAMES, type DatasetName } from './datasets.ts';
import { actionSchema } from './import.ts';
import { exportFileName, type ImportAction, type ImportPolicy } from './runs.ts';
import { readFile, type FileSpec } from './index.ts';
import type { TransportConfig, TransportSecrets } from './transports/index.ts';
import { writeRecords, type WriteSpec } from './write.ts';

export interface ExchangeInput {
  name: string;
  description?: string | null;
  direction: 'import' | 'export';
  file: { format: 'csv' | 'xml' | 'xlsx'; options?: Record<string, unknown> };
  mapping?: string | null;
  action?: ImportAction;
  policy?: ImportPolicy;
  dataset?: DatasetName;
  datasetParams?: Record<string, unknown> | null;
  fileName?: string;
  transport: TransportConfig;
  secrets?: TransportSecrets;
}

export type ExchangePatch = Partial<Omit<ExchangeInput, 'direction'>>;

export { contentTypeOf, exportFileName } from './runs.ts';

function fail(errors: FieldError[]): never {
  throw new HubError('validation_failed', errors.length === 1 ? `${errors[0]!.field.slice(1)} ${errors[0]!.message}` : 'The exchange is not valid', { errors });
}

/** Options of the format checked by its reader (imports) or writer (exports), before any byte would be read. */
function checkFileOptions(direction: 'import' | 'export', file: ExchangeInput['file']): FieldError[] {
  try {
    if (direction === 'import') {
      const items = readFile(Readable.from([]), file as FileSpec) as AsyncIterable<unknown> & { return?: () => unknown };
      void items.return?.();
    } else {
      writeRecords((async function* () {})(), file as WriteSpec).destroy();
    }
    return [];
  } catch (err) {
    if (!isHubError(err, 'validation_failed')) throw err;
    return (err.errors ?? [{ field: '/options', code: 'invalid_option', message: err.message }]).map((e) => ({ ...e, field: `/file${e.field}` }));
  }
}

async function checkMapping(db: Db, workspaceId: string, key: string, action: ImportAction | undefined, files: ReadonlyMap<string, MappingDocument>): Promise<FieldError[]> {
  const found = await resolveMapping(db, workspaceId, key, files);
  if (!found) return [{ field: '/mapping', code: 'unknown', message: `there is no mapping "${key}"` }];
  if (action) {
    const wants = actionSchema(action);
    const gives = found.document.target?.schema;
    if (typeof gives === 'string' && gives !== wants) {
      return [{ field: '/mapping', code: 'target_mismatch', message: `mapping "${key}" produces ${gives}, but ${action} takes ${wants}` }];
    }
  }
  return [];
}

function checkSecrets(transport: TransportConfig, secrets: TransportSecrets | undefined, creating: boolean): FieldError[] {
  if (transport.type !== 'sftp') return [];
  const s = secrets ?? {};
  if (s.password !== undefined && s.privateKey !== undefined) return [{ field: '/secrets', code: 'oneOf', message: 'give a password or a privateKey, not both' }];
  if (creating && s.password === undefined && s.privateKey === undefined) return [{ field: '/secrets', code: 'required', message: 'an SFTP transport needs secrets.password or secrets.privateKey' }];
  return [];
}

/** The stored row's fields for `input` (already valid against hub:api/exchange-create). */
async function checked(db: Db, workspaceId: string, input: ExchangeInput, files: ReadonlyMap<string, MappingDocument>, creating: boolean): Promise<ExchangeInput> {
  const errors: FieldError[] = [];
  const isImport = input.direction === 'import';
  if (isImport) {
    if (!input.action) errors.push({ field: '/action', code: 'required', message: 'is required for an import (what each record does)' });
    if (input.dataset !== undefined) errors.push({ field: '/dataset', code: 'not_allowed', message: 'is for exports' });
    if (input.fileName !== undefined) errors.push({ field: '/fileName', code: 'not_allowed', message: 'is for exports (imports take the files they find)' });
    if (input.transport.type === 'email') errors.push({ field: '/transport/type', code: 'not_a_source', message: 'email only sends exports; imports read from folder, sftp or appwrite-storage' });
  } else {
    if (!input.dataset) errors.push({ field: '/dataset', code: 'required', message: `is required for an export (one of ${DATASET_NAMES.join(', ')})` });
    if (input.action !== undefined) errors.push({ field: '/action', code: 'not_allowed', message: 'is for imports' });
    if (input.policy !== undefined) errors.push({ field: '/policy', code: 'not_allowed', message: 'is for imports' });
  }
  errors.push(...checkFileOptions(input.direction, input.file));
  if (input.mapping) errors.push(...(await checkMapping(db, workspaceId, input.mapping, isImport ? input.action : undefined, files)));
  errors.push(...checkSecrets(input.transport, input.secrets, creating));
  if (input.fileName !== undefined && /[/\\\u0000]|^\.|^\.\.$/.test(exportFileName(input.fileName, new Date()))) {
    errors.push({ field: '/fileName', code: 'file_name', message: 'must be a file name: no "/", "\\", and not starting with "."' });
  }
  if (errors.length) fail(errors);
  return input;
}

function rowFields(input: ExchangeInput, cipher: Cipher, previousSecret: string | null): Omit<NewRow<ExchangesRow>, 'workspaceId'> {
  const isImport = input.direction === 'import';
  const ext = input.file.format;
  return {
    name: input.name,
    description: input.description ?? null,
    direction: input.direction,
    file: { format: input.file.format, ...(input.file.options ? { options: input.file.options } : {}) },
    mapping: input.mapping ?? null,
    action: isImport ? input.action! : null,
    policy: isImport ? (input.policy ?? 'reject-all') : 'reject-all',
    dataset: isImport ? null : input.dataset!,
    datasetParams: isImport ? null : (input.datasetParams ?? null),
    fileName: isImport ? null : (input.fileName ?? `${input.dataset}-{date}.${ext}`),
    transport: input.transport,
    transportSecret: input.secrets && Object.keys(input.secrets).length > 0 ? cipher.encryptJson(input.secrets) : previousSecret,
  };
}

export async function createExchange(db: Db, deps: { cipher: Cipher; mappings: ReadonlyMap<string, MappingDocument> }, workspaceId: string, input: ExchangeInput): Promise<ExchangesRow> {
  await checked(db, workspaceId, input, deps.mappings, true);
  try {
    return await db.table('exchanges').insert({ workspaceId, ...rowFields(input, deps.cipher, null) });
  } catch (err) {
    if (isHubError(err, 'already_exists')) throw new HubError('already_exists', `An exchange named "${input.name}" already exists`, { errors: [{ field: '/name', code: 'unique', message: 'is already taken' }] });
    throw err;
  }
}

/** The exchange as input again (secrets kept as they are unless the patch gives new ones). */
function asInput(row: ExchangesRow): ExchangeInput {
  return {
    name: row.name,
    description: row.description ?? null,
    direction: row.direction,
    file: row.file as ExchangeInput['file'],
    mapping: row.mapping ?? null,
    ...(row.direction === 'import' ? { action: row.action as ImportAction, policy: row.policy } : { dataset: row.dataset as DatasetName, datasetParams: row.datasetParams ?? null, fileName: row.fileName ?? undefined }),
    transport: row.transport as TransportConfig,
  };
}

export async function updateExchange(db: Db, deps: { cipher: Cipher; mappings: ReadonlyMap<string, MappingDocument> }, row: ExchangesRow, patch: ExchangePatch, ifVersion: number): Promise<ExchangesRow> {
  const merged: ExchangeInput = { ...asInput(row), ...patch, direction: row.direction };
  // A new transport type needs its own secrets; the same type keeps the stored ones unless new ones are given.
  const typeChanged = patch.transport !== undefined && patch.transport.type !== (row.transport as TransportConfig).type;
  await checked(db, row.workspaceId, merged, deps.mappings, typeChanged);
  const fields = rowFields(merged, deps.cipher, typeChanged ? null : (row.transportSecret ?? null));
  return db.table('exchanges').update(row.id, fields, { ifVersion });
}

export function exchangeSecrets(cipher: Cipher, row: ExchangesRow): TransportSecrets {
  return row.transportSecret ? cipher.decryptJson<TransportSecrets>(row.transportSecret) : {};
}
