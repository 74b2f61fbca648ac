// What every store adapter does the same way: fill system fields, validate a row against its table schema before
// it is written, and check filters and orderings against the table's columns.
import type { ValidateFunction } from 'ajv';
import { HubError, type FieldError } from '../errors.ts';
import type { Clock } from '../lib/clock.ts';
import { newId } from '../lib/ids.ts';
import { validatorFor } from '../schemas/registry.ts';
import { TABLE_SPECS, type TableSpec } from '../schemas/tables.ts';
import { assertValid, toFieldErrors } from '../schemas/validate.ts';
import type { NewRow, OrderBy, Page, QueryOptions, Table, Where } from './types.ts';

type AnyRow = Record<string, unknown> & { id: string; version: number };

export const DEFAULT_LIMIT = 50;

/** Upsert on any adapter: insert, or compare-and-set update of the existing row; a lost race goes round again. */
export async function upsertRow(
  table: Pick<Table<AnyRow>, 'get' | 'insert' | 'update'>,
  input: NewRow<AnyRow> & { id: string },
): Promise<{ row: AnyRow; created: boolean }> {
  for (let attempt = 1; ; attempt++) {
    const current = await table.get(input.id);
    try {
      if (!current) return { row: await table.insert(input), created: true };
      const { id: _id, ...patch } = input;
      return { row: await table.update(input.id, patch, { ifVersion: current.version }), created: false };
    } catch (err) {
      const raced =
        (!current && err instanceof HubError && err.code === 'already_exists' && err.errors?.some((e) => e.field === '/id')) ||
        (current && err instanceof HubError && (err.code === 'version_conflict' || err.code === 'not_found'));
      if (!raced || attempt >= 10) throw err;
    }
  }
}
export const MAX_LIMIT = 1000;

function validateRow(spec: TableSpec, row: Record<string, unknown>): void {
  assertValid(validatorFor(spec.schemaId), row, `A ${spec.title} row`);
}

export function prepareInsert(spec: TableSpec, clock: Clock, input: Record<string, unknown>): AnyRow {
  const now = new Date(clock.now()).toISOString();
  // One pass, no intermediate copies: rows are written in bulk by imports and webhook bursts.
  const row: Record<string, unknown> = {};
  for (const key in input) {
    const value = input[key];
    if (value !== undefined) row[key] = value;
  }
  row.id ??= newId(spec.idPrefix);
  row.version = 1;
  row.createdAt = now;
  row.updatedAt = now;
  // Absent nullable columns are stored as NULL and read back as null: insert answers the same shape as get.
  for (const col of spec.columns) if (col.nullable && row[col.name] === undefined) row[col.name] = null;
  validateRow(spec, row);
  return row as AnyRow;
}

const READONLY = ['id', 'workspaceId', 'version', 'createdAt', 'updatedAt'];

/** Whether the patch names a field that may never change (then the stored value must be read to compare). */
export function touchesReadonly(patch: Record<string, unknown>): boolean {
  return READONLY.some((key) => patch[key] !== undefined);
}

/** Each table's field validators by name: a patch names a few fields, on every update of a busy table. */
const fieldValidators = new WeakMap<TableSpec, Map<string, ValidateFunction>>();
function fieldValidator(spec: TableSpec, field: string): ValidateFunction {
  let byField = fieldValidators.get(spec);
  if (!byField) fieldValidators.set(spec, (byField = new Map()));
  let validate = byField.get(field);
  if (!validate) byField.set(field, (validate = validatorFor(`${spec.schemaId}#/properties/${field}`)));
  return validate;
}

/**
 * Compiles every table's row and field validators now rather than at first use: a thread that will write (the job
 * worker's) pays for them at its start, not on the first webhooks it applies (~270 ms here).
 */
export function compileRowValidators(): void {
  for (const spec of TABLE_SPECS.values()) {
    validatorFor(spec.schemaId);
    for (const col of spec.columns) fieldValidator(spec, col.name);
  }
}

/**
 * Validates the fields a patch changes, each against its own property schema (the rest of the row was valid
 * when it was written); a value of undefined means "not given". Returns the fields to write.
 */
export function checkPatch(spec: TableSpec, patch: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const errors: FieldError[] = [];
  for (const key of Object.keys(patch)) {
    const value = patch[key];
    if (value === undefined || READONLY.includes(key)) continue;
    if (!spec.columnsByName.has(key)) {
      errors.push({ field: `/${key}`, code: 'additionalProperties', message: 'is not a known field' });
      continue;
    }
    const validate = fieldValidator(spec, key);
    if (!validate(value)) errors.push(...toFieldErrors(validate.errors, `/${key}`));
    out[key] = value;
  }
  if (errors.length) throw new HubError('validation_failed', `A ${spec.title} row is not valid`, { errors });
  return out;
}

export function checkReadonly(current: AnyRow, patch: Record<string, unknown>): void {
  for (const key of READONLY) {
    if (patch[key] !== undefined && patch[key] !== current[key]) {
      throw new HubError('validation_failed', `${key} cannot be changed`, {
        errors: [{ field: `/${key}`, code: 'readonly', message: 'cannot be changed' }],
      });
    }
  }
}

export function prepareUpdate(spec: TableSpec, clock: Clock, current: AnyRow, patch: Record<string, unknown>): AnyRow {
  checkReadonly(current, patch);
  return { ...current, ...checkPatch(spec, patch), version: current.version + 1, updatedAt: new Date(clock.now()).toISOString() } as AnyRow;
}

export function clampLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new HubError('invalid_query', `limit must be an integer from 1 to ${MAX_LIMIT}`, {
      errors: [{ field: '/limit', code: 'range', message: `must be an integer from 1 to ${MAX_LIMIT}` }],
    });
  }
  return limit;
}

function invalidField(spec: TableSpec, field: string, why: string): HubError {
  return new HubError('invalid_query', `Cannot ${why} ${spec.name}.${field}`, {
    errors: [{ field: `/${field}`, code: 'unsupported', message: `cannot ${why} this field` }],
  });
}

/** A deleteWhere limit: a positive integer. */
export function checkDeleteLimit(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new HubError('invalid_query', `A delete's limit must be a positive integer (got ${limit})`);
  return limit;
}

/** Checks that every filtered field is a scalar column of the table (recursing into `$or`). */
export function checkWhere(spec: TableSpec, where: Where | undefined): void {
  if (!where) return;
  for (const [field, cond] of Object.entries(where)) {
    if (cond === undefined) continue;
    if (field === '$or') {
      for (const sub of cond as Where[]) checkWhere(spec, sub);
      continue;
    }
    const col = spec.columnsByName.get(field);
    if (!col) throw invalidField(spec, field, 'filter on unknown field');
    if (col.kind === 'json') throw invalidField(spec, field, 'filter on the JSON field');
  }
}

export function checkOrder(spec: TableSpec, order: OrderBy | undefined): OrderBy {
  const o = order ?? { field: 'id', direction: 'asc' };
  const col = spec.columnsByName.get(o.field);
  if (!col || col.kind === 'json' || col.nullable || !col.required) throw invalidField(spec, o.field, 'order by');
  return { field: o.field, direction: o.direction ?? 'asc' };
}

export function encodeCursor(value: unknown, id: string): string {
  return Buffer.from(JSON.stringify([value, id])).toString('base64url');
}

export function decodeCursor(cursor: string): [string | number, string] {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(parsed) &&
      parsed.length === 2 &&
      (typeof parsed[0] === 'string' || typeof parsed[0] === 'number') &&
      typeof parsed[1] === 'string'
    ) {
      return [parsed[0], parsed[1]];
    }
  } catch {
    // fall through to the error below
  }
  throw new HubError('invalid_cursor', 'The cursor is not one this API issued', {
    errors: [{ field: '/cursor', code: 'format', message: 'is not a cursor this API issued' }],
  });
}

/** Every row matching the query, a page of up to 1000 at a time (for reports and replays, not for requests): a scan. */
export async function* scanRows<T extends { id: string }>(
  table: { query(options: QueryOptions): Promise<Page<T>> },
  options: Omit<QueryOptions, 'cursor' | 'limit'> = {},
): AsyncGenerator<T> {
  let cursor: string | null = null;
  do {
    const page: Page<T> = await table.query({ ...options, cursor, limit: 1000, scan: true });
    yield* page.items;
    cursor = page.nextCursor;
  } while (cursor);
}
