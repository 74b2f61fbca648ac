// The embedded store: one SQLite file (WAL), tables and indexes derived from the schemas, prepared statements.
// better-sqlite3 is synchronous; an async transaction holds a gate that other callers await, so no statement of
// another request can slip into an open transaction while it awaits.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { HubError } from '../errors.ts';
import { systemClock, type Clock } from '../lib/clock.ts';
import { TABLE_SPECS, type ColumnSpec, type IndexSpec, type TableSpec } from '../schemas/tables.ts';
import {
  checkOrder,
  checkDeleteLimit,
  checkWhere,
  clampLimit,
  decodeCursor,
  encodeCursor,
  checkPatch,
  checkReadonly,
  prepareInsert,
  touchesReadonly,
  upsertRow,
} from './rows.ts';
import type {
  Db,
  DeleteOptions,
  FieldOps,
  IncrementOptions,
  NewRow,
  Page,
  QueryOptions,
  RowPatch,
  Scalar,
  Store,
  StoreTables,
  Table,
  TableName,
  TableRows,
  TransactionOptions,
  UpdateOptions,
  Where,
} from './types.ts';
import { isBusy } from './sqlite-busy.ts';
import type { WriteGate } from './write-gate.ts';

type AnyRow = Record<string, unknown> & { id: string; version: number };
type SqlValue = string | number | bigint | null | Buffer;

const SQL_TYPE: Record<ColumnSpec['kind'], string> = {
  text: 'TEXT',
  integer: 'INTEGER',
  real: 'REAL',
  boolean: 'INTEGER',
  json: 'TEXT',
};

const q = (ident: string) => `"${ident}"`;
const indexName = (spec: TableSpec, idx: IndexSpec) => `${spec.name}__${idx.fields.join('__')}`;

function migrate(db: Database.Database, spec: TableSpec): void {
  const cols = spec.columns.map((c) => `${q(c.name)} ${SQL_TYPE[c.kind]}${c.name === 'id' ? ' PRIMARY KEY' : ''}`);
  db.exec(`CREATE TABLE IF NOT EXISTS ${q(spec.name)} (${cols.join(', ')}) STRICT`);
  // Additive evolution: a column added to the schema is added to the table.
  const existing = new Set((db.prepare(`PRAGMA table_info(${q(spec.name)})`).all() as { name: string }[]).map((r) => r.name));
  for (const c of spec.columns) {
    if (!existing.has(c.name)) db.exec(`ALTER TABLE ${q(spec.name)} ADD COLUMN ${q(c.name)} ${SQL_TYPE[c.kind]}`);
  }
  const wanted = new Set<string>();
  for (const idx of spec.indexes) {
    const name = indexName(spec, idx);
    wanted.add(name);
    db.exec(
      `CREATE ${idx.unique ? 'UNIQUE ' : ''}INDEX IF NOT EXISTS ${q(name)} ON ${q(spec.name)} (${idx.fields.map(q).join(', ')})`,
    );
  }
  // An index the schema no longer names (replaced by a better one) would only slow every write: it goes.
  for (const { name } of db.prepare(`PRAGMA index_list(${q(spec.name)})`).all() as { name: string }[]) {
    if (name.startsWith(`${spec.name}__`) && !wanted.has(name)) db.exec(`DROP INDEX ${q(name)}`);
  }
}

function encodeValue(col: ColumnSpec, value: unknown): SqlValue {
  if (value === undefined || value === null) return null;
  switch (col.kind) {
    case 'json':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 1 : 0;
    default:
      return value as SqlValue;
  }
}

function decodeRow(spec: TableSpec, raw: Record<string, unknown>, columns: readonly ColumnSpec[] = spec.columns): AnyRow {
  const row: Record<string, unknown> = {};
  for (const col of columns) {
    const v = raw[col.name];
    if (v === null || v === undefined) {
      if (col.nullable) row[col.name] = null;
      continue;
    }
    row[col.name] = col.kind === 'json' ? JSON.parse(v as string) : col.kind === 'boolean' ? v === 1 : v;
  }
  return row as AnyRow;
}

function scalarParam(col: ColumnSpec, v: Scalar): SqlValue {
  return col.kind === 'boolean' ? (v ? 1 : 0) : (v as SqlValue);
}

/** Whether the filter picks rows by id (an id, or a list of them). */
function picksById(where: Where | undefined): boolean {
  const id = where?.id;
  return id !== undefined && id !== null && (typeof id !== 'object' || 'in' in id || ('eq' in id && id.eq !== null));
}

/**
 * Compiles a filter to SQL; values always travel as parameters, never as SQL text. The fields `unindexed` names
 * are written `+col`, which keeps any index of theirs out of the plan: 'all' leaves only the primary key.
 */
function whereSql(spec: TableSpec, where: Where | undefined, params: SqlValue[], unindexed: 'all' | string | null = null): string {
  if (!where) return '1=1';
  const parts: string[] = [];
  // Rows picked by id are found by the primary key. Without statistics SQLite would rather use an index that
  // starts with workspaceId and scan the whole workspace (50 ms for 200 ids among 100k rows, against 0.2 ms), so
  // the other columns are written `+col`.
  const byId = unindexed === 'all' || picksById(where);
  for (const [field, cond] of Object.entries(where)) {
    if (cond === undefined) continue;
    if (field === '$or') {
      const subs = (cond as Where[]).map((w) => `(${whereSql(spec, w, params, byId ? 'all' : unindexed)})`);
      parts.push(subs.length ? `(${subs.join(' OR ')})` : '0=1');
      continue;
    }
    const col = spec.columnsByName.get(field)!;
    const c = (byId && field !== 'id') || field === unindexed ? `+${q(field)}` : q(field);
    if (cond === null || typeof cond !== 'object') {
      if (cond === null) parts.push(`${c} IS NULL`);
      else {
        parts.push(`${c} = ?`);
        params.push(scalarParam(col, cond));
      }
      continue;
    }
    const ops = cond as FieldOps;
    if ('eq' in ops) {
      if (ops.eq === null) parts.push(`${c} IS NULL`);
      else {
        parts.push(`${c} = ?`);
        params.push(scalarParam(col, ops.eq!));
      }
    }
    if ('ne' in ops) {
      if (ops.ne === null) parts.push(`${c} IS NOT NULL`);
      else {
        parts.push(`(${c} IS NULL OR ${c} <> ?)`);
        params.push(scalarParam(col, ops.ne!));
      }
    }
    for (const [op, sql] of [
      ['gt', '>'],
      ['gte', '>='],
      ['lt', '<'],
      ['lte', '<='],
    ] as const) {
      if (ops[op] !== undefined) {
        parts.push(`${c} ${sql} ?`);
        params.push(ops[op]!);
      }
    }
    if (ops.in !== undefined) {
      if (ops.in.length === 0) parts.push('0=1');
      else {
        parts.push(`${c} IN (${ops.in.map(() => '?').join(', ')})`);
        for (const v of ops.in) params.push(scalarParam(col, v));
      }
    }
    if (ops.notIn !== undefined && ops.notIn.length) {
      parts.push(`(${c} IS NULL OR ${c} NOT IN (${ops.notIn.map(() => '?').join(', ')}))`);
      for (const v of ops.notIn) params.push(scalarParam(col, v));
    }
    if (ops.startsWith !== undefined) {
      // A range keeps the index usable and, unlike LIKE, is case-sensitive and needs no escaping.
      parts.push(`(${c} >= ? AND ${c} < ?)`);
      params.push(ops.startsWith, ops.startsWith + '\u{10FFFF}');
    }
    if (ops.isNull !== undefined) parts.push(ops.isNull ? `${c} IS NULL` : `${c} IS NOT NULL`);
  }
  return parts.length ? parts.join(' AND ') : '1=1';
}

/**
 * Rows an expectMany page in id order reads along the primary key before it leaves the page to the filter's index:
 * ~2 ms of reading at most, where sorting every match took 0.2-1.4 s for a million rows.
 */
const IN_ORDER_STRETCH = 2000;

/**
 * Whether an index already serves the filter in id order: one whose columns before `id` are all filtered by
 * equality (such as (workspaceId, id)), or a unique one the filter pins to a row per value it lists.
 */
function servedInIdOrder(spec: TableSpec, where: Where | undefined): boolean {
  const equal = new Set<string>();
  const listed = new Set<string>();
  for (const [field, cond] of Object.entries(where ?? {})) {
    if (field === '$or' || cond === undefined) continue;
    if (pins(cond)) equal.add(field);
    else if ('in' in (cond as object)) listed.add(field);
  }
  return spec.indexes.some((idx) => {
    const at = idx.fields.indexOf('id');
    return (at > 0 && idx.fields.slice(0, at).every((f) => equal.has(f))) || (idx.unique === true && idx.fields.every((f) => equal.has(f) || listed.has(f)));
  });
}

/**
 * Whether a list's filter has a field beside the workspace whose own index should find its rows, rather than an
 * index that starts with workspaceId and goes on with a field the filter leaves free: a hub has a workspace or a
 * few, so nearly every row matches the workspace, and SQLite, without statistics, would as soon take its index.
 */
function overWorkspace(spec: TableSpec, where: Where | undefined): boolean {
  const fields = Object.keys(where ?? {}).filter((f) => f !== 'workspaceId' && f !== '$or' && where![f] !== undefined);
  if (fields.length === 0 || !where || where.workspaceId === undefined) return false;
  return !spec.indexes.some((idx) => idx.fields[0] === 'workspaceId' && idx.fields[1] !== undefined && fields.includes(idx.fields[1]));
}

/**
 * The index to read a page ordered by a field other than id through, when SQLite would not take it: one that goes
 * from fields the filter pins (the workspace, then a location, say) to the order's field. It finds the page's rows
 * in order, in the slice those fields pin. Without statistics SQLite weighs a range on the order's field (a
 * period) above an equality on a second field, and reads every row of the period, at every location, to fill a page
 * of one. Null when no such index is there, or when it would pin only the first field (SQLite's own choice then).
 */
function indexForOrder(spec: TableSpec, where: Where | undefined, orderField: string): string | null {
  // Rows picked by id are found by the primary key, the other fields written unindexed (whereSql).
  if (orderField === 'id' || !where || picksById(where)) return null;
  const pinned = (field: string) => where[field] !== undefined && pins(where[field]);
  let best: IndexSpec | null = null;
  let bestPinned = 1;
  for (const idx of spec.indexes) {
    const at = idx.fields.indexOf(orderField);
    if (at > bestPinned && idx.fields.slice(0, at).every(pinned)) [best, bestPinned] = [idx, at];
  }
  return best ? indexName(spec, best) : null;
}

/**
 * Index entries a count reads in one go: ~5 ms here. A count of a million (the delivered deliveries of a busy
 * endpoint, kept 14 days) read in one statement stopped this thread, and every webhook it serves, for ~110 ms.
 */
export const COUNT_CHUNK_ROWS = 20_000;

/**
 * How a count can walk its rows in chunks, in an index's order: the index whose first fields the filter pins by
 * equality, and nothing else, and the fields after them (with the rowid) as the walk's position. Null when no
 * index serves the filter whole, or when a field of the position may be null (a row value with a null compares
 * as unknown, and the walk would step over its rows).
 */
function countWalk(spec: TableSpec, where: Where | undefined): { index: string; after: string[] } | null {
  const fields = Object.keys(where ?? {}).filter((f) => where![f] !== undefined);
  if (fields.length === 0 || fields.some((f) => !pins(where![f]))) return null;
  let best: IndexSpec | null = null;
  for (const idx of spec.indexes) {
    const lead = idx.fields.slice(0, fields.length);
    const after = idx.fields.slice(fields.length);
    if (lead.length !== fields.length || !lead.every((f) => fields.includes(f)) || after.some((f) => spec.columnsByName.get(f)!.nullable)) continue;
    if (!best || idx.fields.length < best.fields.length) best = idx;
  }
  return best ? { index: indexName(spec, best), after: best.fields.slice(fields.length) } : null;
}

/** Whether a filter's condition pins its field to one value (or to null), as an index's equality prefix needs. */
function pins(cond: Where[string]): boolean {
  return cond === null || typeof cond !== 'object' || 'eq' in cond;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

function mapSqliteError(err: unknown, spec: TableSpec): never {
  const code = (err as { code?: string }).code;
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    const message = (err as Error).message;
    const fields = message.includes(`${spec.name}.`)
      ? [...message.matchAll(new RegExp(`${spec.name}\\.(\\w+)`, 'g'))].map((m) => m[1]!)
      : ['id'];
    throw new HubError('already_exists', `A ${spec.title} with the same ${fields.join(', ')} already exists`, {
      errors: fields.map((f) => ({ field: `/${f}`, code: 'unique', message: 'is already taken' })),
      cause: err,
    });
  }
  throw err;
}

/**
 * Prepared statements a connection keeps at most, those not used for longest dropped. Queries differ by their filter's
 * fields, so an API whose callers choose filters would otherwise hold a statement for each combination ever asked.
 */
export const STATEMENTS_KEPT = 1000;

/** SQLite's answer when another connection (another process on the same file) holds the write lock. */
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

class SqliteTable implements Table<AnyRow> {
  readonly name: TableName;
  private readonly insertSql: string;

  constructor(
    private readonly owner: SqliteStore,
    readonly spec: TableSpec,
    /** Runs a statement's work: at the root, after the open transaction and while no other process writes. */
    private readonly run: <T>(fn: () => T) => Promise<T> | T,
    /** A body running ahead of its transaction (TransactionOptions.runAhead): its statements are kept here. */
    private readonly ahead?: AheadLog,
    /** Index entries a count reads between turns of the event loop; 0: a count is one statement (in a transaction). */
    private readonly countChunk = 0,
  ) {
    this.name = spec.name as TableName;
    this.insertSql = `INSERT INTO ${q(spec.name)} (${spec.columns.map((c) => q(c.name)).join(', ')}) VALUES (${spec.columns
      .map(() => '?')
      .join(', ')})`;
  }

  /** The statement for sql: as prepared, or, for a body running ahead, its stand-in that keeps what it did. */
  private st(sql: string): Statement {
    const s = this.owner.stmt(sql);
    return this.ahead ? this.ahead.stand(sql, s) : s;
  }

  private encodeAll(row: AnyRow): SqlValue[] {
    return this.spec.columns.map((c) => encodeValue(c, row[c.name]));
  }

  private getSync(id: string): AnyRow | null {
    const raw = this.st(`SELECT * FROM ${q(this.spec.name)} WHERE id = ?`).get(id) as Record<string, unknown> | undefined;
    return raw ? decodeRow(this.spec, raw) : null;
  }

  private notFound(id: string): HubError {
    return new HubError('not_found', `${this.spec.title} ${id} does not exist`);
  }

  async get(id: string): Promise<AnyRow | null> {
    return this.run(() => this.getSync(id));
  }

  async insert(input: NewRow<AnyRow>): Promise<AnyRow> {
    const row = prepareInsert(this.spec, this.owner.clock, input as Record<string, unknown>);
    const values = this.encodeAll(row);
    return this.run(() => {
      try {
        this.st(this.insertSql).run(...values);
      } catch (err) {
        mapSqliteError(err, this.spec);
      }
      return row;
    });
  }

  async update(id: string, patch: RowPatch<AnyRow>, options: UpdateOptions = {}): Promise<AnyRow> {
    return this.run(() => this.updateSync(id, patch, options));
  }

  async updateFrom(row: AnyRow, patch: RowPatch<AnyRow>): Promise<AnyRow> {
    return this.run(() => this.updateSync(row.id, patch, { ifVersion: row.version }, row));
  }

  /** With `base` (the row at options.ifVersion), the new row is built from it rather than read back. */
  private updateSync(id: string, patch: RowPatch<AnyRow>, options: UpdateOptions, base?: AnyRow): AnyRow {
    const p = patch as Record<string, unknown>;
    if (touchesReadonly(p)) {
      const current = base ?? this.getSync(id);
      if (!current) throw this.notFound(id);
      checkReadonly(current, p);
    }
    const fields = checkPatch(this.spec, p);
    // One statement: compare-and-set on the version, only the changed columns (unchanged indexed columns then
    // cost no index maintenance), and the new row back unless the caller holds it.
    const cols = this.spec.columns.filter((c) => c.name in fields);
    const cas = options.ifVersion !== undefined;
    const sql =
      `UPDATE ${q(this.spec.name)} SET ${cols.map((c) => `${q(c.name)} = ?, `).join('')}"version" = "version" + 1, "updatedAt" = ? ` +
      `WHERE id = ?${cas ? ' AND version = ?' : ''}${base ? '' : ' RETURNING *'}`;
    const updatedAt = new Date(this.owner.clock.now()).toISOString();
    const args = [...cols.map((c) => encodeValue(c, fields[c.name])), updatedAt, id];
    if (cas) args.push(options.ifVersion!);
    let raw: Record<string, unknown> | undefined;
    try {
      if (base) raw = this.st(sql).run(...args).changes === 1 ? base : undefined;
      else raw = this.st(sql).get(...args) as Record<string, unknown> | undefined;
    } catch (err) {
      mapSqliteError(err, this.spec);
    }
    if (!raw) {
      const current = this.getSync(id);
      if (!current) throw this.notFound(id);
      throw new HubError('version_conflict', `${this.spec.title} ${id} is at version ${current.version}, not ${options.ifVersion}`);
    }
    if (base) return { ...base, ...fields, version: base.version + 1, updatedAt } as AnyRow;
    return decodeRow(this.spec, raw);
  }


  async delete(id: string, options: UpdateOptions = {}): Promise<void> {
    return this.run(() => {
      const current = this.getSync(id);
      if (!current) throw this.notFound(id);
      if (options.ifVersion !== undefined && options.ifVersion !== current.version) {
        throw new HubError('version_conflict', `${this.spec.title} ${id} is at version ${current.version}, not ${options.ifVersion}`);
      }
      this.st(`DELETE FROM ${q(this.spec.name)} WHERE id = ?`).run(id);
    });
  }

  upsert(row: NewRow<AnyRow> & { id: string }): Promise<{ row: AnyRow; created: boolean }> {
    return upsertRow(this, row);
  }

  query(options: QueryOptions = {}): Promise<Page<AnyRow>> {
    return this.select(null, options);
  }

  async pick(fields: readonly string[], options: QueryOptions = {}): Promise<Page<AnyRow>> {
    const columns = this.spec.columns.filter((c) => c.name === 'id' || fields.includes(c.name));
    const unknown = fields.find((f) => !this.spec.columnsByName.has(f));
    if (unknown !== undefined) throw new HubError('invalid_query', `${this.spec.name} has no field ${unknown}`);
    return this.select(columns, options);
  }

  /** Reads a page of whole rows, or of `columns` (with whatever the order and its cursor need). */
  private async select(columns: ColumnSpec[] | null, options: QueryOptions): Promise<Page<AnyRow>> {
    checkWhere(this.spec, options.where);
    const order = checkOrder(this.spec, options.orderBy);
    const limit = clampLimit(options.limit);
    const params: SqlValue[] = [];
    if (columns && !columns.some((c) => c.name === order.field)) columns = [...columns, this.spec.columnsByName.get(order.field)!];
    const list = columns ? columns.map((c) => q(c.name)).join(', ') : '*';
    const dir = order.direction === 'desc' ? 'DESC' : 'ASC';
    const cmp = order.direction === 'desc' ? '<' : '>';
    if ((options.expectMany || options.scan) && order.field === 'id' && !picksById(options.where) && !servedInIdOrder(this.spec, options.where)) {
      const page = await this.run(() => this.firstInIdOrder(list, columns, options, dir, cmp, limit));
      if (page) return page;
    }
    const indexed = indexForOrder(this.spec, options.where, order.field);
    let sql = `SELECT ${list} FROM ${q(this.spec.name)}${indexed ? ` INDEXED BY ${q(indexed)}` : ''} WHERE ${whereSql(this.spec, options.where, params, options.expectMany && overWorkspace(this.spec, options.where) ? 'workspaceId' : null)}`;
    if (options.cursor) {
      const [value, id] = decodeCursor(options.cursor);
      if (order.field === 'id') {
        sql += ` AND id ${cmp} ?`;
        params.push(id);
      } else {
        sql += ` AND (${q(order.field)} ${cmp} ? OR (${q(order.field)} = ? AND id ${cmp} ?))`;
        params.push(value, value, id);
      }
    }
    sql += order.field === 'id' ? ` ORDER BY id ${dir}` : ` ORDER BY ${q(order.field)} ${dir}, id ${dir}`;
    sql += ` LIMIT ${limit + 1}`;
    const raws = (await this.run(() => this.st(sql).all(...params))) as Record<string, unknown>[];
    return this.pageOf(raws, columns, limit, order.field);
  }

  /**
   * A page in id order read along the primary key (see expectMany): the next IN_ORDER_STRETCH rows past the cursor,
   * filtered. When the stretch holds too few matches for a page and more rows lie beyond it: for a scan, the matches
   * it holds, and a cursor past it; otherwise null, and the filter's own index finds them.
   */
  private firstInIdOrder(list: string, columns: ColumnSpec[] | null, options: QueryOptions, dir: string, cmp: string, limit: number): Page<AnyRow> | null {
    const table = q(this.spec.name);
    const after = options.cursor ? decodeCursor(options.cursor)[1] : null;
    // Where the stretch ends: read from the key's index alone.
    const end = this
      .st(`SELECT id FROM ${table}${after === null ? '' : ` WHERE id ${cmp} ?`} ORDER BY id ${dir} LIMIT 1 OFFSET ?`)
      .get(...(after === null ? [] : [after]), IN_ORDER_STRETCH - 1) as { id: string } | undefined;
    const params: SqlValue[] = [];
    let sql = `SELECT ${list} FROM ${table} WHERE ${whereSql(this.spec, options.where, params, 'all')}`;
    if (after !== null) {
      sql += ` AND id ${cmp} ?`;
      params.push(after);
    }
    if (end) {
      sql += ` AND id ${cmp === '<' ? '>=' : '<='} ?`;
      params.push(end.id);
    }
    sql += ` ORDER BY id ${dir} LIMIT ?`;
    params.push(limit + 1);
    const raws = this.st(sql).all(...params) as Record<string, unknown>[];
    if (raws.length > limit || !end) return this.pageOf(raws, columns, limit, 'id');
    return options.scan ? { ...this.pageOf(raws, columns, limit, 'id'), nextCursor: encodeCursor(end.id, end.id) } : null;
  }

  private pageOf(raws: Record<string, unknown>[], columns: ColumnSpec[] | null, limit: number, orderField: string): Page<AnyRow> {
    const items = raws.slice(0, limit).map((r) => decodeRow(this.spec, r, columns ?? undefined));
    const last = items[items.length - 1];
    const nextCursor = raws.length > limit && last ? encodeCursor(last[orderField], last.id) : null;
    return { items, nextCursor };
  }

  async count(where?: Where): Promise<number> {
    checkWhere(this.spec, where);
    const params: SqlValue[] = [];
    const table = q(this.spec.name);
    const filter = whereSql(this.spec, where, params);
    const chunk = this.countChunk;
    const row = (sql: string, more: SqlValue[] = []) => this.run(() => this.st(sql).get(...params, ...more) as Record<string, SqlValue> | undefined);
    const whole = `SELECT COUNT(*) AS n FROM ${table} WHERE ${filter}`;
    if (!chunk) return (await row(whole))!.n as number;
    // Most counts are small: one statement, stopped past a chunk.
    const first = (await row(`SELECT COUNT(*) AS n FROM (SELECT 1 FROM ${table} WHERE ${filter} LIMIT ${chunk})`))!.n as number;
    if (first < chunk) return first;
    const walk = countWalk(this.spec, where);
    if (!walk) return (await row(whole))!.n as number;
    // A large one walks the index a chunk at a time, from the position where the last chunk ended, and lets the
    // event loop run between chunks. Not one snapshot: rows written meanwhile are counted if the walk has not yet
    // passed them, as any count taken while they change.
    const cols = [...walk.after.map(q), 'rowid'].join(', ');
    const from = `${table} INDEXED BY ${q(walk.index)} WHERE ${filter}`;
    const past = `${from} AND (${cols}) > (${[...walk.after, 'rowid'].map(() => '?').join(', ')})`;
    const endOf = (rows: string) => `SELECT ${cols} FROM ${rows} ORDER BY ${cols} LIMIT 1 OFFSET ${chunk - 1}`;
    let n = 0;
    let position: SqlValue[] | null = null;
    for (;;) {
      await nextTurn();
      const end = await row(endOf(position ? past : from), position ?? []);
      if (!end) return n + ((await row(`SELECT COUNT(*) AS n FROM ${position ? past : from}`, position ?? []))!.n as number);
      n += chunk;
      position = [...walk.after.map((f) => end[f]!), end.rowid!];
    }
  }

  async exists(where: Where): Promise<boolean> {
    checkWhere(this.spec, where);
    const params: SqlValue[] = [];
    const sql = `SELECT 1 FROM ${q(this.spec.name)} WHERE ${whereSql(this.spec, where, params)} LIMIT 1`;
    return this.run(() => this.st(sql).get(...params) !== undefined);
  }

  async deleteWhere(where: Where, options: DeleteOptions = {}): Promise<number> {
    checkWhere(this.spec, where);
    const params: SqlValue[] = [];
    const table = q(this.spec.name);
    const filter = whereSql(this.spec, where, params);
    let sql = `DELETE FROM ${table} WHERE ${filter}`;
    if (options.limit !== undefined) {
      // The chunk's ids first, found along the filter's index (test/retention.test.ts checks the plans), then those rows.
      sql = `DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} WHERE ${filter} LIMIT ?)`;
      params.push(checkDeleteLimit(options.limit));
    }
    return this.run(() => this.st(sql).run(...params).changes);
  }

  async increment(id: string, field: string, by: number, options: IncrementOptions = {}): Promise<AnyRow> {
    return this.run(() => this.incrementSync(id, field, by, options));
  }

  private incrementSync(id: string, field: string, by: number, options: IncrementOptions): AnyRow {
    const col = this.spec.columnsByName.get(field);
    if (!col || col.kind !== 'integer') throw new HubError('invalid_query', `${this.spec.name}.${field} is not an integer column`);
    if (!Number.isSafeInteger(by)) throw new HubError('validation_failed', 'The increment must be an integer');
    const params: SqlValue[] = [by, new Date(this.owner.clock.now()).toISOString(), id];
    let sql = `UPDATE ${q(this.spec.name)} SET ${q(field)} = ${q(field)} + ?, "updatedAt" = ? WHERE id = ?`;
    if (options.min !== undefined) {
      sql += ` AND ${q(field)} + ? >= ?`;
      params.push(by, options.min);
    }
    if (options.max !== undefined) {
      sql += ` AND ${q(field)} + ? <= ?`;
      params.push(by, options.max);
    }
    const changes = this.st(sql).run(...params).changes;
    const row = this.getSync(id);
    if (!row) throw this.notFound(id);
    if (changes !== 1) {
      throw new HubError('bound_exceeded', `${this.spec.name}.${field} would leave its bounds`, {
        errors: [{ field: `/${field}`, code: 'bounds', message: `${String(row[field])} + ${by} is outside [${options.min ?? '-∞'}, ${options.max ?? '∞'}]` }],
        extra: { current: row[field] },
      });
    }
    return row;
  }
}

export interface SqliteStoreOptions {
  /** A file path, or ':memory:'. */
  path: string;
  clock?: Clock;
  /** How long a call waits for another caller's transaction before failing (default 30 s). */
  lockTimeoutMs?: number;
  /** SQLite's page cache, in MB (default 4). */
  cacheMb?: number;
  /** Shared with the other threads of this process that write to the same file (see write-gate.ts). */
  gate?: WriteGate;
  /**
   * The WAL size (pages) at which a commit of this connection checkpoints (default SQLite's 1,000). With a
   * checkpointer running (checkpointer.ts), its BACKSTOP_PAGES: the checkpointer does it, outside the write lock.
   */
  walAutoCheckpoint?: number;
  /**
   * Where this connection adds up its use of the file's one write lock (WRITE_LOCK_SLOTS numbers, see
   * writeLockStats); shared memory lets another thread read them. Default: an array of its own.
   */
  lockStats?: Float64Array;
  /** Index entries a count outside transactions reads at most before it lets the event loop run (see countWalk). */
  countChunkRows?: number;
}

/** What one connection's writes took of the file's one write lock. */
export interface WriteLockStats {
  /** Time it held the lock (from its BEGIN to the end of its COMMIT), ms. */
  heldMs: number;
  /** Time its transactions waited for the lock (the other thread's, or another process's), ms. */
  waitedMs: number;
  /** Group commits (each serves one or more transactions). */
  commits: number;
  /** Transaction bodies that ran ahead of the lock and were made as they ran (TransactionOptions.runAhead). */
  aheadReplayed: number;
  /** Transaction bodies that ran ahead, found something they read changed under the lock, and ran again there. */
  aheadRerun: number;
}

/** The numbers a connection keeps in its lockStats: held ms, waited ms, commits, bodies run ahead replayed and rerun. */
export const WRITE_LOCK_SLOTS = 5;

interface PendingTx {
  fn: (tx: Db) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
  runAhead: boolean;
  /** What the body did running ahead, and what it answered; null when it failed to, unset when it has not run ahead. */
  ahead?: { log: AheadLog; value: unknown } | null;
}

/** The part of a prepared statement the tables use. */
type Statement = Pick<Database.Statement, 'run' | 'get' | 'all'>;

/** A statement a body made running ahead: a read with its answer, or a write (which must change one row). */
type AheadStep = { sql: string; args: unknown[]; read: 'get' | 'all'; answer: unknown } | { sql: string; args: unknown[]; read: null };

/** Thrown inside a body running ahead when it makes a statement that cannot be kept for later (a write that answers rows). */
const CANNOT_RUN_AHEAD = Symbol('cannot run ahead');

/**
 * The statements of a body running ahead (TransactionOptions.runAhead), in order. Reads are made (on committed data)
 * and their answers kept; writes are kept and not made, each answering that it changed one row, as an insert, or an
 * update or delete of a row by its id and version, does when it succeeds. A write that answers rows (RETURNING)
 * cannot be kept: the body stops, and runs under the lock as usual.
 */
class AheadLog {
  readonly steps: AheadStep[] = [];
  /**
   * A statement failed or could not be kept. The body may have caught that and gone on, down a path it would not take
   * under the lock: what it did is not replayed, whatever it answers.
   */
  broken = false;

  stand(sql: string, s: Database.Statement): Statement {
    const steps = this.steps;
    const fail = (err: unknown): never => {
      this.broken = true;
      throw err;
    };
    const read = (method: 'get' | 'all') => (...args: unknown[]) => {
      if (!s.readonly) fail(CANNOT_RUN_AHEAD);
      let answer: unknown;
      try {
        answer = method === 'get' ? s.get(...args) : s.all(...args);
      } catch (err) {
        fail(err);
      }
      steps.push({ sql, args, read: method, answer });
      return answer;
    };
    return {
      get: read('get'),
      all: read('all'),
      run: (...args: unknown[]) => {
        if (s.readonly) fail(CANNOT_RUN_AHEAD);
        steps.push({ sql, args, read: null });
        return { changes: 1, lastInsertRowid: 0 };
      },
    } as Statement;
  }
}

/** A transaction's handle over the tables `tableOf` gives: a transaction called on it joins it; no bound on its writes. */
function transactionView(tableOf: (name: TableName) => SqliteTable): Db {
  const view: Db = {
    table: <N extends TableName>(name: N) => tableOf(name) as unknown as Table<TableRows[N]>,
    transaction: <R>(fn: (tx: Db) => Promise<R>) => fn(view),
    writesLeft: () => Infinity,
  };
  return view;
}

/** Whether two answers of a statement are the same: rows of plain values, compared field by field. */
function sameAnswer(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameAnswer(a[i], b[i])) return false;
    return true;
  }
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const keys = Object.keys(ra);
  if (keys.length !== Object.keys(rb).length) return false;
  for (const k of keys) if (!sameAnswer(ra[k], rb[k])) return false;
  return true;
}

/** The longest pause between two tries of a statement that found another process writing. */
const MAX_BUSY_PAUSE_MS = 4;

/** Most transactions one COMMIT serves: bounds the wait of the first in a group. */
const MAX_GROUP = 64;

export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  readonly writesPerTransaction = Infinity;
  readonly clock: Clock;
  private readonly db: Database.Database;
  /**
   * Prepared statements, in two generations: those used since the last turnover, and those of the one before (a
   * statement used again moves to the new one). At STATEMENTS_KEPT / 2 new, the old ones go: at most STATEMENTS_KEPT
   * are kept, and a statement in use costs one lookup.
   */
  private statements = new Map<string, Database.Statement>();
  private olderStatements = new Map<string, Database.Statement>();
  private readonly rootTables = new Map<string, SqliteTable>();
  private readonly txTables = new Map<string, SqliteTable>();
  /** Resolves when the open transaction ends; null when none is open. */
  private lock: Promise<void> | null = null;
  private readonly txView: Db;
  private readonly lockTimeoutMs: number;
  private readonly pending: PendingTx[] = [];
  private draining = false;
  private readonly busyListeners = new Set<() => void>();
  /** How long the next transaction waits, so that another process gets the write lock (yieldWrites). */
  private yieldMs = 0;
  private readonly gate: WriteGate | undefined;
  private readonly lockStats: Float64Array;
  /** The database file (or ':memory:'). */
  readonly path: string;
  readonly cacheMb: number;

  constructor(options: SqliteStoreOptions) {
    this.clock = options.clock ?? systemClock;
    this.lockTimeoutMs = options.lockTimeoutMs ?? 30_000;
    this.path = options.path;
    this.cacheMb = options.cacheMb ?? 4;
    const countChunk = Math.max(1, Math.floor(options.countChunkRows ?? COUNT_CHUNK_ROWS));
    this.gate = options.gate;
    this.lockStats = options.lockStats ?? new Float64Array(WRITE_LOCK_SLOTS);
    if (this.lockStats.length < WRITE_LOCK_SLOTS) throw new Error(`lockStats needs ${WRITE_LOCK_SLOTS} slots`);
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    this.db = new Database(options.path);
    this.db.pragma('journal_mode = WAL');
    // NORMAL keeps WAL commits durable across a process crash (the case we design for); only power loss may
    // drop the last commits.
    this.db.pragma('synchronous = NORMAL');
    if (options.walAutoCheckpoint !== undefined) this.db.pragma(`wal_autocheckpoint = ${Math.max(0, Math.floor(options.walAutoCheckpoint))}`);
    // While opening (migrations), wait for another process's write the way SQLite does; see whenFree after.
    this.db.pragma('busy_timeout = 5000');
    // Savepoints (one per transaction of a group commit) keep their undo pages in temp storage: keep it in memory.
    this.db.pragma('temp_store = MEMORY');
    // The page cache holds the hot pages (the upper levels of the indexes); the OS page cache holds the rest of the
    // file, one pread away. Measured on a 1M-row import into a 460 MB database: 4, 16 and 64 MB ran at the same
    // speed, and each step up added its size to the peak; at 2 MB (SQLite's default) an import where every row
    // writes ran ~10% slower.
    this.db.pragma(`cache_size = -${Math.round(this.cacheMb * 1024)}`);
    this.db.transaction(() => {
      for (const spec of TABLE_SPECS.values()) migrate(this.db, spec);
    })();
    // Opened: from here on a statement that finds another process writing fails at once, and is tried again
    // after a pause (whenFree), instead of SQLite's busy wait, which would stop this process's event loop.
    this.db.pragma('busy_timeout = 0');
    const inTransaction = <T>(fn: () => T) => fn();
    // Outside transactions: after the open one, and again after each pause for another process (a transaction of
    // this process may have begun meanwhile, and the statement must not run inside it).
    const atRoot = <T>(fn: () => T): Promise<T> => this.whenFree(fn, () => (this.lock ? this.waitForUnlock() : undefined));
    for (const spec of TABLE_SPECS.values()) {
      this.rootTables.set(spec.name, new SqliteTable(this, spec, atRoot, undefined, countChunk));
      this.txTables.set(spec.name, new SqliteTable(this, spec, inTransaction));
    }
    this.txView = transactionView((name) => this.txTables.get(name)!);
  }

  /**
   * Runs fn, again after a pause while another process holds the write lock (another hub process on the same
   * file, or an import process), up to lockTimeoutMs. Listeners of onBusy hear of each wait, so that the process
   * holding the lock can be asked for a turn.
   */
  private async whenFree<T>(fn: () => T, before?: () => Promise<void> | undefined): Promise<T> {
    let deadline = 0;
    for (let pause = 1; ; pause = Math.min(pause * 2, MAX_BUSY_PAUSE_MS)) {
      const wait = before?.();
      if (wait) await wait;
      try {
        return fn();
      } catch (err) {
        if (!isBusy(err)) throw err;
        deadline ||= Date.now() + this.lockTimeoutMs;
        if (Date.now() >= deadline) throw new HubError('store_unavailable', `The database is busy: another process has held its write lock for ${this.lockTimeoutMs} ms`, { cause: err });
        for (const listener of this.busyListeners) listener();
        await sleep(pause);
      }
    }
  }

  /** Tells listener each time a statement waits for another process's write; returns the unsubscribe. */
  onBusy(listener: () => void): () => void {
    this.busyListeners.add(listener);
    return () => this.busyListeners.delete(listener);
  }

  /**
   * Holds this store's next transaction back for `ms` after the open one: another process waits for the write lock
   * this one keeps taking (an import process, asked by the hub), and gets its turn between the two.
   */
  yieldWrites(ms: number): void {
    this.yieldMs = Math.max(this.yieldMs, ms);
  }

  stmt(sql: string): Database.Statement {
    if (!this.db.open) throw new HubError('store_unavailable', 'The database is closed');
    let s = this.statements.get(sql);
    if (s) return s;
    s = this.olderStatements.get(sql) ?? this.db.prepare(sql);
    this.statements.set(sql, s);
    if (this.statements.size >= STATEMENTS_KEPT / 2) {
      this.olderStatements = this.statements;
      this.statements = new Map();
    }
    return s;
  }

  /**
   * Waits for the open transaction to end, but not forever: the usual cause of a long wait is code that uses the
   * store itself inside its own transaction, which would otherwise hang. (AsyncLocalStorage could tell that case
   * apart exactly, but it switches on promise hooks for the whole process: a measured 2× on the request path.)
   */
  private async waitForUnlock(): Promise<void> {
    const deadline = Date.now() + this.lockTimeoutMs;
    while (this.lock) {
      const lock = this.lock;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = await Promise.race([
        lock.then(() => false),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), Math.max(0, deadline - Date.now())))),
      ]);
      clearTimeout(timer);
      if (timedOut && this.lock === lock) {
        throw new HubError('store_unavailable', `Waited ${this.lockTimeoutMs} ms for a transaction to finish. If this call is made inside a transaction, use the transaction handle (tx), not the store.`);
      }
    }
  }

  table<N extends TableName>(name: N): Table<TableRows[N]> {
    const t = this.rootTables.get(name);
    if (!t) throw new Error(`Unknown table ${name}`);
    return t as unknown as Table<TableRows[N]>;
  }

  /**
   * Transactions run one at a time (SQLite has one writer), and those that queue up behind each other commit
   * together: each body runs in its own savepoint, so it is still all-or-nothing on its own, but one COMMIT (the
   * costly write of the WAL pages) serves the whole group. A caller's promise settles only after the COMMIT that
   * holds its writes, so nothing is reported done before it is durable; a failed COMMIT fails the whole group.
   */
  writesLeft(): number {
    return Infinity;
  }

  transaction<R>(fn: (tx: Db) => Promise<R>, options: TransactionOptions = {}): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ fn: fn as (tx: Db) => Promise<unknown>, resolve: resolve as (v: unknown) => void, reject, runAhead: options.runAhead === true });
      if (!this.draining) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      // Callers outside any transaction hold no lock: let them finish what they started before the first group.
      while (this.lock) await this.lock;
      // Hold the gate, then wait out the current turn of the event loop: the requests parsed in the same I/O phase
      // each open a transaction in their own callback, and this lets them all join one group (one COMMIT) instead
      // of one each. Calls outside transactions made meanwhile wait, as they would for the group itself.
      let release!: () => void;
      this.lock = new Promise<void>((resolve) => (release = resolve));
      await new Promise((r) => setImmediate(r));
      this.lock = null;
      release();
      while (this.pending.length) {
        await this.runGroup();
        // Give reads and writes made outside transactions a turn between groups, so a busy stream of
        // transactions cannot starve them.
        if (this.pending.length) await new Promise((r) => setImmediate(r));
      }
    } finally {
      this.draining = false;
    }
  }

  private async runGroup(): Promise<void> {
    // Asked to let another process write (yieldWrites): wait before taking the gate, so reads go on meanwhile.
    if (this.yieldMs > 0) {
      const ms = this.yieldMs;
      this.yieldMs = 0;
      await sleep(ms);
    }
    // Bodies that may run ahead do so now, before the lock is taken (TransactionOptions.runAhead). Meanwhile
    // transactions may only be added behind them: the first MAX_GROUP stay the group's.
    for (let i = 0; i < MAX_GROUP && i < this.pending.length; i++) {
      const job = this.pending[i]!;
      if (job.runAhead && job.ahead === undefined) await this.runAhead(job);
    }
    let release!: () => void;
    this.lock = new Promise<void>((resolve) => (release = resolve));
    const done: { job: PendingTx; value: unknown }[] = [];
    let gated = false;
    const asked = performance.now();
    let began = 0;
    try {
      try {
        if (this.gate) {
          await this.gate.acquire(this.lockTimeoutMs);
          gated = true;
        }
        await this.whenFree(() => this.stmt('BEGIN IMMEDIATE').run());
        began = performance.now();
        this.addLockStat(1, began - asked);
      } catch (err) {
        // Another process kept the write lock past the timeout: this group fails, not forever retried.
        for (const job of this.pending.splice(0, MAX_GROUP)) job.reject(err);
        return;
      }
      while (this.pending.length && done.length < MAX_GROUP) {
        const job = this.pending.shift()!;
        this.stmt('SAVEPOINT tx').run();
        try {
          let value: unknown;
          if (job.ahead && this.replay(job.ahead.log)) {
            value = job.ahead.value;
            this.addLockStat(3, 1);
          } else {
            if (job.ahead) {
              // A read answered otherwise under the lock, or a write did not change its one row: what was made of
              // it is undone, and the body runs here.
              this.stmt('ROLLBACK TO tx').run();
              this.addLockStat(4, 1);
            }
            value = await job.fn(this.txView);
          }
          this.stmt('RELEASE tx').run();
          done.push({ job, value });
        } catch (err) {
          if (this.db.inTransaction) {
            this.stmt('ROLLBACK TO tx').run();
            this.stmt('RELEASE tx').run();
          }
          job.reject(err); // its writes are undone; the others go on
          if (!this.db.inTransaction) throw err;
        }
      }
      this.stmt('COMMIT').run();
      this.addLockStat(2, 1);
      for (const d of done) d.job.resolve(d.value);
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      for (const d of done) d.job.reject(err);
    } finally {
      if (began) this.addLockStat(0, performance.now() - began);
      if (gated) this.gate!.release();
      this.lock = null;
      release();
    }
  }

  /**
   * Runs a body ahead of its transaction, against a view whose tables keep its statements (AheadLog). One that fails,
   * or makes a statement that cannot be kept, just runs under the lock as usual.
   */
  private async runAhead(job: PendingTx): Promise<void> {
    const log = new AheadLog();
    const tables = new Map<string, SqliteTable>();
    const direct = <T>(fn: () => T) => fn();
    const view = transactionView((name) => {
      let t = tables.get(name);
      if (!t) tables.set(name, (t = new SqliteTable(this, TABLE_SPECS.get(name)!, direct, log)));
      return t;
    });
    try {
      const value = await job.fn(view);
      job.ahead = log.broken ? null : { log, value };
    } catch {
      // Whatever it was (data changing under its reads, a refusal), the body meets it again under the lock.
      job.ahead = null;
    }
  }

  /**
   * Makes the statements a body made running ahead, inside its savepoint: true when every read answered as it did
   * then and every write changed its one row, so the body's answer stands; false at the first that did not (or
   * failed), for the caller to undo the rest and run the body.
   */
  private replay(log: AheadLog): boolean {
    try {
      for (const step of log.steps) {
        const s = this.stmt(step.sql);
        if (step.read === null) {
          if (s.run(...step.args).changes !== 1) return false;
        } else if (!sameAnswer(step.read === 'get' ? s.get(...step.args) : s.all(...step.args), step.answer)) return false;
      }
      return true;
    } catch {
      return false;
    }
  }

  private addLockStat(slot: number, by: number): void {
    this.lockStats[slot] = this.lockStats[slot]! + by;
  }

  /** This connection's use of the write lock since it opened (another thread's connection: read its lockStats). */
  writeLockStats(): WriteLockStats {
    return readLockStats(this.lockStats);
  }

  async ping(): Promise<void> {
    this.stmt('SELECT 1').get();
  }

  async close(): Promise<void> {
    await this.waitForUnlock();
    if (this.db.open) this.db.close();
  }
}

/** A connection's write-lock figures from its lockStats (see SqliteStoreOptions.lockStats). */
export function readLockStats(slots: Float64Array): WriteLockStats {
  return { heldMs: slots[0]!, waitedMs: slots[1]!, commits: slots[2]!, aheadReplayed: slots[3]!, aheadRerun: slots[4]! };
}

export function createSqliteStore(options: SqliteStoreOptions): SqliteStore {
  return new SqliteStore(options);
}

export type { StoreTables };
