// The light vocabulary of the file exchange: actions, policies, the job and its payload, how runs are recorded.
// Kept apart from the readers, writers and transports (exceljs, ssh2, nodemailer) so that the API and the
// scheduler can name them without loading those: on Appwrite they load on the first file a function touches.
import { join } from 'node:path';
import { ACTION_NAMES } from '../apply/actions.ts';
import { HubError } from '../errors.ts';
import type { Clock } from '../lib/clock.ts';
import type { ExchangesRow, FileRunsRow, NewRow } from '../store/types.ts';
import type { FileSpec } from './index.ts';

/** What an import can do with each record: the shared actions, and order lines gathered into orders. */
export const IMPORT_ACTIONS = [...ACTION_NAMES, 'order.lines'] as const;
export type ImportAction = (typeof IMPORT_ACTIONS)[number];
export const POLICIES = ['reject-all', 'keep-good'] as const;
export type ImportPolicy = (typeof POLICIES)[number];

export const EXCHANGE_JOB = 'exchange.run';

/** The states a run ends in: nothing happens to it after one. */
export const FINISHED_STATES: readonly FileRunsRow['state'][] = ['succeeded', 'partial', 'rejected', 'failed', 'duplicate'];

export type RunTrigger = FileRunsRow['trigger'];

export interface ExchangeJobPayload {
  /** The exchange to run (schedules and "run now"). */
  exchangeId?: string;
  scheduleId?: string | null;
  /** An upload's run, its file already staged. */
  runId?: string;
  trigger: RunTrigger;
}

/** What an import run records as `spec`: enough to run it again without the exchange. */
export interface ImportSpec {
  file: FileSpec;
  mapping: string | null;
  action: ImportAction;
  policy: ImportPolicy;
  /** Scope of the checksum marker. */
  scope: string;
}

/** Where a run's file is staged: found again by a resumed run. */
export function spoolPath(spoolDir: string, runId: string): string {
  return join(spoolDir, `${runId}.spool`);
}

/** A one-off import given by its parts: an upload's query, or the CLI's options. */
export interface AdhocImport {
  action?: string;
  mapping?: string | null;
  policy?: string;
  format?: string;
  delimiter?: string;
  encoding?: string;
  recordPath?: string;
  /** XML elements that are always lists, comma-separated. */
  isArray?: string;
  sheet?: string;
}

/**
 * The import spec of a one-off import, checked. `naming` says how a part is called where it came from: its
 * pointer in the error's fields and its name in the sentence (`/query/action` and `action`, or `--action`).
 */
export function adhocImportSpec(p: AdhocImport, naming: { field(part: string): string; label(part: string): string }): ImportSpec {
  const fail = (part: string, problem: string): never => {
    const message = `${naming.label(part)} ${problem}`;
    throw new HubError('validation_failed', message, { errors: [{ field: naming.field(part), code: 'invalid', message }] });
  };
  const action = p.action as ImportAction | undefined;
  if (!action || !IMPORT_ACTIONS.includes(action)) fail('action', `is required without an exchange: one of ${IMPORT_ACTIONS.join(', ')}`);
  const policy = (p.policy ?? 'reject-all') as ImportPolicy;
  if (!POLICIES.includes(policy)) fail('policy', `must be one of ${POLICIES.join(', ')}`);
  const format = p.format ?? 'csv';
  let file: FileSpec;
  if (format === 'csv') file = { format, options: { ...(p.delimiter ? { delimiter: p.delimiter } : {}), ...(p.encoding ? { encoding: p.encoding as 'utf-8' } : {}) } };
  else if (format === 'xml') {
    if (!p.recordPath) return fail('recordPath', 'is required for XML: the path of the repeating record element, e.g. Orders/Order');
    const isArray = p.isArray?.split(',').map((n) => n.trim()).filter(Boolean);
    file = { format, options: { recordPath: p.recordPath, ...(isArray?.length ? { isArray } : {}) } };
  } else if (format === 'xlsx') file = { format, options: p.sheet ? { sheet: p.sheet } : {} };
  else return fail('format', 'must be csv, xml or xlsx');
  const mapping = p.mapping ?? null;
  return { file, mapping, action: action!, policy, scope: `upload:${mapping ?? '-'}:${action}` };
}

export function importSpecOf(exchange: ExchangesRow): ImportSpec {
  return { file: exchange.file as unknown as FileSpec, mapping: exchange.mapping ?? null, action: exchange.action as ImportAction, policy: exchange.policy, scope: exchange.id };
}

export function newRunRow(
  deps: { clock: Clock },
  fields: { workspaceId: string; direction: 'import' | 'export'; trigger: RunTrigger; spec: Record<string, unknown>; exchangeId?: string | null; scheduleId?: string | null; jobId?: string | null; fileName?: string | null; state?: FileRunsRow['state'] },
): NewRow<FileRunsRow> {
  return {
    workspaceId: fields.workspaceId,
    exchangeId: fields.exchangeId ?? null,
    scheduleId: fields.scheduleId ?? null,
    jobId: fields.jobId ?? null,
    direction: fields.direction,
    trigger: fields.trigger,
    state: fields.state ?? 'running',
    spec: fields.spec,
    fileName: fields.fileName ?? null,
    rowsRead: 0,
    rowsApplied: 0,
    rowsSkipped: 0,
    rowsFailed: 0,
    cursor: 0,
    startedAt: new Date(deps.clock.now()).toISOString(),
  };
}

const CONTENT_TYPES = { csv: 'text/csv; charset=utf-8', xml: 'application/xml', xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet' } as const;

export function contentTypeOf(format: 'csv' | 'xml' | 'xlsx'): string {
  return CONTENT_TYPES[format];
}

/** The file's name with {date}, {time} and {timestamp} filled in (UTC). */
export function exportFileName(template: string, at: Date): string {
  const iso = at.toISOString();
  const date = iso.slice(0, 10);
  const time = iso.slice(11, 19).replace(/:/g, '');
  return template.replaceAll('{date}', date).replaceAll('{time}', time).replaceAll('{timestamp}', `${date}T${time}Z`);
}
