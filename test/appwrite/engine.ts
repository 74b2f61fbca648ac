// The in-memory data of the test TablesDB and its row writes. Writes run against a `Rows` set so a transaction can
// replay them on a copy and swap the copy in only when every staged operation succeeded.
import { checkRow, foldText, formatDatetime, parseDatetime, type Column } from './columns.ts';
import { fail, type ErrorType } from './errors.ts';
import { planQueries, runPlan, type Query, type Schema } from './queries.ts';

export type Row = Record<string, unknown> & { $id: string; $sequence: number; $createdAt: string; $updatedAt: string; $permissions: string[] };

export interface StoredRow {
  row: Row;
  /** Logical time of the last committed write, for transaction conflict checks. */
  version: number;
}

export interface Rows {
  /** Keyed by the case-folded id: MariaDB's `_uid` unique key compares ids case-insensitively too. */
  byId: Map<string, StoredRow>;
  nextSequence: number;
}

export interface Index {
  key: string;
  type: 'key' | 'unique' | 'fulltext' | 'spatial';
  columns: string[];
  orders: string[];
  lengths: number[];
  createdAt: string;
  updatedAt: string;
  announced: boolean;
  error: string;
}

export interface TableState {
  id: string;
  databaseId: string;
  name: string;
  permissions: string[];
  rowSecurity: boolean;
  enabled: boolean;
  createdAt: string;
  updatedAt: string;
  columns: Column[];
  indexes: Index[];
  rows: Rows;
}

export interface DatabaseState {
  id: string;
  name: string;
  enabled: boolean;
  createdAt: string;
  updatedAt: string;
  tables: Map<string, TableState>;
}

/** How a write reports failures: directly (row_* types) or while a transaction commits (Transactions/Update.php). */
export type WriteMode = 'direct' | 'commit';

const FAILURES: Record<WriteMode, Record<'missing' | 'duplicate' | 'structure' | 'bound' | 'incrementMissing', ErrorType>> = {
  direct: {
    missing: 'row_not_found',
    duplicate: 'row_already_exists',
    structure: 'row_invalid_structure',
    bound: 'column_limit_exceeded',
    // Increment.php maps utopia's NotFoundException (row or column) to the column error.
    incrementMissing: 'column_not_found',
  },
  commit: {
    missing: 'document_not_found',
    duplicate: 'transaction_conflict',
    structure: 'document_invalid_structure',
    bound: 'attribute_limit_exceeded',
    incrementMissing: 'document_not_found',
  },
};

export interface WriteContext {
  mode: WriteMode;
  version: number;
  now: string;
  /** Called before a row is written or deleted; a transaction commit raises its conflicts here. */
  beforeWrite?(table: TableState, key: string, existing: StoredRow | undefined, action: 'create' | 'update' | 'upsert' | 'delete' | 'increment'): void;
}

export function rowKey(id: string): string {
  return foldText(id);
}

export function cloneRows(rows: Rows): Rows {
  return { byId: new Map(rows.byId), nextSequence: rows.nextSequence };
}

/** The fields queries may use on a table's rows. */
export function rowSchema(table: TableState): Schema {
  const schema: Schema = new Map([
    ['$id', { kind: 'string', array: false }],
    ['$sequence', { kind: 'sequence', array: false }],
    ['$createdAt', { kind: 'datetime', array: false }],
    ['$updatedAt', { kind: 'datetime', array: false }],
  ]);
  for (const c of table.columns) {
    const kind = c.kind === 'integer' || c.kind === 'float' || c.kind === 'boolean' || c.kind === 'datetime' ? c.kind : 'string';
    const fulltext = table.indexes.some((i) => i.type === 'fulltext' && i.columns.includes(c.key));
    schema.set(c.key, { kind, array: c.array, fulltext });
  }
  return schema;
}

/** The spec's `row` model: system fields first, every column present (null when unset). */
export function rowModel(table: TableState, row: Row): Record<string, unknown> {
  const out: Record<string, unknown> = {
    $id: row.$id,
    $sequence: row.$sequence,
    $tableId: table.id,
    $databaseId: table.databaseId,
    $createdAt: row.$createdAt,
    $updatedAt: row.$updatedAt,
    $permissions: row.$permissions,
  };
  for (const c of table.columns) out[c.key] = row[c.key] ?? null;
  return out;
}

function columnValues(table: TableState, row: Row): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const c of table.columns) out[c.key] = row[c.key] ?? null;
  return out;
}

const IGNORED_SYSTEM = new Set(['$id', '$sequence', '$tableId', '$databaseId', '$collectionId', '$collection', '$tenant']);

/** Splits row data into column values and the system fields an API key may set. */
function splitData(data: Record<string, unknown>, ctx: WriteContext) {
  const values: Record<string, unknown> = {};
  let permissions: string[] | undefined;
  let createdAt: string | undefined;
  let updatedAt: string | undefined;
  for (const [k, v] of Object.entries(data)) {
    if (IGNORED_SYSTEM.has(k)) continue;
    if (k === '$permissions' && Array.isArray(v)) permissions = v.map(String);
    else if ((k === '$createdAt' || k === '$updatedAt') && v !== null) {
      // An API key may set the dates (Appwrite runs these writes withPreserveDates).
      const ms = parseDatetime(v);
      if (ms === null) fail(FAILURES[ctx.mode].structure, `Invalid document structure: Attribute "${k}" has invalid type. Value must be valid date`);
      if (k === '$createdAt') createdAt = formatDatetime(ms!);
      else updatedAt = formatDatetime(ms!);
    } else values[k] = v;
  }
  return { values, permissions, createdAt, updatedAt };
}

/** Unique indexes compare with the text collation; a NULL in any indexed column never clashes (SQL). */
function assertUnique(table: TableState, rows: Rows, row: Row, ctx: WriteContext): void {
  for (const index of table.indexes) {
    if (index.type !== 'unique' || index.error) continue;
    const tuple = index.columns.map((c) => row[c]);
    if (tuple.some((v) => v === null || v === undefined)) continue;
    const mine = JSON.stringify(tuple.map((v) => (typeof v === 'string' ? foldText(v) : v)));
    for (const [key, other] of rows.byId) {
      if (key === rowKey(row.$id)) continue;
      const theirs = JSON.stringify(index.columns.map((c) => other.row[c]).map((v) => (typeof v === 'string' ? foldText(v) : v)));
      if (theirs === mine) fail(FAILURES[ctx.mode].duplicate);
    }
  }
}

function put(table: TableState, rows: Rows, row: Row, ctx: WriteContext): Row {
  assertUnique(table, rows, row, ctx);
  rows.byId.set(rowKey(row.$id), { row, version: ctx.version });
  return row;
}

export function createRow(table: TableState, rows: Rows, id: string, data: Record<string, unknown>, permissions: string[] | null, ctx: WriteContext): Row {
  const key = rowKey(id);
  ctx.beforeWrite?.(table, key, rows.byId.get(key), 'create');
  if (rows.byId.has(key)) fail(FAILURES[ctx.mode].duplicate);
  const split = splitData(data, ctx);
  const values = { ...split.values };
  for (const c of table.columns) if (!(c.key in values) && c.default !== null) values[c.key] = c.default;
  const checked = checkRow(table.columns, values, FAILURES[ctx.mode].structure);
  const row: Row = {
    $id: id,
    $sequence: rows.nextSequence,
    $createdAt: split.createdAt ?? ctx.now,
    $updatedAt: split.updatedAt ?? ctx.now,
    $permissions: permissions ?? split.permissions ?? [],
    ...checked,
  };
  put(table, rows, row, ctx);
  rows.nextSequence++;
  return row;
}

export function updateRow(table: TableState, rows: Rows, id: string, patch: Record<string, unknown>, permissions: string[] | null, ctx: WriteContext): Row {
  const key = rowKey(id);
  const existing = rows.byId.get(key);
  ctx.beforeWrite?.(table, key, existing, 'update');
  if (!existing) fail(FAILURES[ctx.mode].missing);
  const split = splitData(patch, ctx);
  const checked = checkRow(table.columns, { ...columnValues(table, existing!.row), ...split.values }, FAILURES[ctx.mode].structure);
  return put(table, rows, {
    ...existing!.row,
    ...checked,
    $updatedAt: split.updatedAt ?? ctx.now,
    $permissions: permissions ?? split.permissions ?? existing!.row.$permissions,
  }, ctx);
}

/** Upsert (utopia upsertDocuments): required columns must be given; absent optional ones keep their value or default. */
export function upsertRow(table: TableState, rows: Rows, id: string, data: Record<string, unknown>, permissions: string[] | null, ctx: WriteContext): Row {
  const key = rowKey(id);
  const existing = rows.byId.get(key);
  ctx.beforeWrite?.(table, key, existing, 'upsert');
  const split = splitData(data, ctx);
  const values: Record<string, unknown> = {};
  for (const c of table.columns) {
    if (!c.required && !(c.key in split.values)) values[c.key] = existing ? existing.row[c.key] ?? null : c.default;
  }
  Object.assign(values, split.values);
  const checked = checkRow(table.columns, values, FAILURES[ctx.mode].structure);
  const row: Row = {
    $id: existing?.row.$id ?? id,
    $sequence: existing?.row.$sequence ?? rows.nextSequence,
    $createdAt: split.createdAt ?? existing?.row.$createdAt ?? ctx.now,
    $updatedAt: split.updatedAt ?? ctx.now,
    $permissions: permissions ?? split.permissions ?? existing?.row.$permissions ?? [],
    ...checked,
  };
  put(table, rows, row, ctx);
  if (!existing) rows.nextSequence++;
  return row;
}

export function deleteRow(table: TableState, rows: Rows, id: string, ctx: WriteContext): Row {
  const key = rowKey(id);
  const existing = rows.byId.get(key);
  ctx.beforeWrite?.(table, key, existing, 'delete');
  if (!existing) fail(FAILURES[ctx.mode].missing);
  rows.byId.delete(key);
  return existing!.row;
}

/** increaseDocumentAttribute / decreaseDocumentAttribute of utopia-php/database 3.5.0, with their checks in order. */
export function incrementRow(
  table: TableState,
  rows: Rows,
  id: string,
  columnKey: string,
  value: number,
  bound: number | null,
  direction: 1 | -1,
  ctx: WriteContext,
): Row {
  if (!(value > 0)) fail('general_argument_invalid', 'Value must be numeric and greater than 0');
  const column = table.columns.find((c) => c.key === columnKey);
  if (!column) fail(ctx.mode === 'direct' ? 'column_not_found' : 'document_not_found');
  if ((column!.kind !== 'integer' && column!.kind !== 'float') || column!.array) fail('attribute_type_invalid', `tablesdb "${columnKey}" is not a number`);
  const key = rowKey(id);
  const existing = rows.byId.get(key);
  ctx.beforeWrite?.(table, key, existing, 'increment');
  if (!existing) fail(FAILURES[ctx.mode].incrementMissing);
  const current = Number(existing!.row[columnKey] ?? 0);
  const next = current + direction * value;
  if (bound !== null && (direction > 0 ? next > bound : next < bound)) {
    fail(FAILURES[ctx.mode].bound, `tablesdb "${columnKey}" has reached the ${direction > 0 ? 'maximum' : 'minimum'} value of ${bound}`);
  }
  const row: Row = { ...existing!.row, [columnKey]: next, $updatedAt: ctx.now };
  rows.byId.set(key, { row, version: ctx.version });
  return row;
}

/** The rows a bulk update or delete touches: its filters and order, its limit only when one is given. */
export function selectRows(table: TableState, rows: Rows, queries: Query[]): Row[] {
  const schema = rowSchema(table);
  const plan = planQueries(queries, schema);
  if (!queries.some((q) => q.method === 'limit')) plan.limit = Number.MAX_SAFE_INTEGER;
  const items = [...rows.byId.values()].map((s) => s.row);
  return runPlan(items, plan, schema, (cursorId) => rows.byId.get(rowKey(cursorId))?.row ?? null).items as Row[];
}

/** A unique index over rows that already clash fails (Appwrite builds indexes in a worker and marks them failed). */
export function uniqueIndexProblem(table: TableState, index: Index): string {
  if (index.type !== 'unique') return '';
  const seen = new Set<string>();
  for (const { row } of table.rows.byId.values()) {
    const tuple = index.columns.map((c) => row[c]);
    if (tuple.some((v) => v === null || v === undefined)) continue;
    const key = JSON.stringify(tuple.map((v) => (typeof v === 'string' ? foldText(v) : v)));
    if (seen.has(key)) return 'Duplicate entry: existing rows violate the unique index';
    seen.add(key);
  }
  return '';
}
