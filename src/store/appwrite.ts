// The Appwrite store: the hub's tables in Appwrite TablesDB through node-appwrite. Optimistic concurrency rides on
// Appwrite transactions: a row read and written inside one makes the commit fail if anyone else changed the row,
// which is how update-if-version stays a true compare-and-set across function executions.
import { AppwriteException, Client, Query, TablesDB } from 'node-appwrite';
import { HubError, isHubError } from '../errors.ts';
import { backoffDelay } from '../lib/backoff.ts';
import { systemClock, type Clock } from '../lib/clock.ts';
import { TABLE_SPECS, type TableSpec } from '../schemas/tables.ts';
import { provisionAppwrite } from './appwrite-provision.ts';
import { fromRow, matches, toData, whereQueries, type AnyRow, type AppwriteRow } from './appwrite-rows.ts';
import { DEFAULT_DATABASE_ID } from './appwrite-schema.ts';
import { checkDeleteLimit, checkOrder, checkWhere, clampLimit, prepareInsert, prepareUpdate, upsertRow } from './rows.ts';
import type {
  Db,
  DeleteOptions,
  IncrementOptions,
  NewRow,
  Page,
  QueryOptions,
  RowPatch,
  Store,
  Table,
  TableName,
  TableRows,
  TransactionOptions,
  UpdateOptions,
  Where,
} from './types.ts';


export interface AppwriteStoreOptions {
  endpoint: string;
  projectId: string;
  /** An API key, or the function's dynamic key (x-appwrite-key). */
  apiKey: string;
  databaseId?: string;
  clock?: Clock;
  /** Attempts for a retryable failure (429, 5xx, network) before giving up with store_unavailable. */
  maxAttempts?: number;
  /** Times a transaction body is re-run after a commit conflict. */
  maxTransactionAttempts?: number;
  /** Per-request time limit (node-appwrite sets none); a request over it counts as a retryable failure. */
  requestTimeoutMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /** The operations one transaction may stage: 100 on Appwrite's Free plan (the default), 1,000 on Pro. */
  writesPerTransaction?: number;
}

const NOT_FOUND = new Set(['row_not_found', 'document_not_found']);
const ALREADY_EXISTS = new Set(['row_already_exists', 'document_already_exists']);
const CONFLICT = new Set(['transaction_conflict']);
const BOUNDS = new Set(['column_limit_exceeded', 'attribute_limit_exceeded']);
/** 5xx answers that no retry can fix (Appwrite 1.8.1 sends transaction_expired as a 500). */
const FINAL = new Set(['transaction_expired', 'transaction_not_found', 'transaction_not_ready']);

function typeOf(err: unknown): string {
  return err instanceof AppwriteException ? err.type : '';
}

/** A transaction that lost a race waits a little (full jitter: concurrent losers spread out) before re-running. */
const TX_BACKOFF = { baseMs: 40, maxMs: 500 };

/** Marks a conflict that re-running the transaction can resolve (someone else committed meanwhile). */
const RACE = Symbol('race');

function raceConflict(what: string, cause?: unknown): HubError {
  return Object.assign(new HubError('version_conflict', `${what} changed while it was being written`, { cause }), { [RACE]: true });
}

function isRace(err: unknown): boolean {
  return isHubError(err, 'version_conflict') && (err as unknown as Record<symbol, unknown>)[RACE] === true;
}

/** The transaction outlived its TTL (a stall: a slow network, a paused process): nothing of it committed. */
function isExpired(err: unknown): boolean {
  const cause = (err as { cause?: unknown } | null)?.cause;
  return isHubError(err, 'store_unavailable') && cause instanceof AppwriteException && cause.type === 'transaction_expired';
}

/** Whether running the body again in a new transaction can succeed: a lost race, or an expired transaction. */
const runAgain = (err: unknown) => isRace(err) || isExpired(err);

class RequestTimeout extends Error {
  override name = 'TimeoutError';
}

function isRetryable(err: unknown): boolean {
  if (err instanceof AppwriteException) return !FINAL.has(err.type) && (err.code === 429 || err.code >= 500 || err.code === 0);
  // fetch failures (connection refused, reset, timeouts) reach us as TypeError / AbortError
  return err instanceof TypeError || (err as Error)?.name === 'AbortError' || (err as Error)?.name === 'TimeoutError';
}

/** Appwrite's errors in the hub's vocabulary. */
function toHubError(err: unknown, what: string): HubError {
  if (isHubError(err)) return err;
  const type = typeOf(err);
  if (NOT_FOUND.has(type)) return new HubError('not_found', `${what} does not exist`, { cause: err });
  if (ALREADY_EXISTS.has(type)) return new HubError('already_exists', `${what} already exists`, { cause: err });
  if (CONFLICT.has(type)) return raceConflict(what, err);
  if (type === 'general_cursor_not_found') return new HubError('invalid_cursor', 'The cursor points at a row that no longer exists', { cause: err });
  if (FINAL.has(type)) return new HubError('store_unavailable', `${what}: the Appwrite transaction ended (${type})`, { cause: err, retryable: true });
  if (isRetryable(err)) return new HubError('store_unavailable', `Appwrite did not answer (${(err as Error).message})`, { cause: err });
  return new HubError('internal_error', `Appwrite refused the request: ${(err as Error).message}`, { cause: err });
}

interface Ctx {
  tables: TablesDB;
  databaseId: string;
  clock: Clock;
  /** Set inside a transaction: reads see its staged writes, writes are staged until commit. */
  transactionId?: string;
  /** Inside a transaction: each touched row's committed version when first touched (null: it did not exist). */
  baseVersions?: Map<string, number | null>;
  /** Inside a transaction: the writes staged so far, and how many it may hold (writesPerTransaction). */
  writes?: { count: number; limit: number };
  call<T>(fn: () => Promise<T>, what: string): Promise<T>;
}

class AppwriteTable implements Table<AnyRow> {
  readonly name: TableName;

  constructor(
    private readonly ctx: Ctx,
    private readonly spec: TableSpec,
  ) {
    this.name = spec.name as TableName;
  }

  private get base() {
    const b: { databaseId: string; tableId: string; transactionId?: string } = { databaseId: this.ctx.databaseId, tableId: this.spec.name };
    if (this.ctx.transactionId) b.transactionId = this.ctx.transactionId;
    return b;
  }

  /**
   * Counts a write about to be staged. Appwrite refuses a transaction's operation past its plan's limit with a bare
   * 400 after the others were sent; this refuses it first, with a code callers act on (an import halves its batch).
   */
  private staging(): void {
    const w = this.ctx.writes;
    if (w && ++w.count > w.limit) {
      throw new HubError('transaction_too_large', `This change writes more than the ${w.limit} operations one Appwrite transaction holds (HUB_APPWRITE_TRANSACTION_WRITES)`);
    }
  }

  private what(id?: string): string {
    return id ? `${this.spec.title} ${id}` : `A ${this.spec.title}`;
  }

  async get(id: string): Promise<AnyRow | null> {
    let row: AnyRow | null;
    try {
      const raw = await this.ctx.call(() => this.ctx.tables.getRow({ ...this.base, rowId: id }), this.what(id));
      row = fromRow(this.spec, raw as unknown as AppwriteRow);
    } catch (err) {
      if (!isHubError(err, 'not_found')) throw err;
      row = null;
    }
    // A row this transaction has not written reads as committed: that is the version it builds on.
    const key = `${this.spec.name}/${id}`;
    if (this.ctx.baseVersions && !this.ctx.baseVersions.has(key)) this.ctx.baseVersions.set(key, row?.version ?? null);
    return row;
  }

  /** The row as committed, ignoring this transaction's staged writes. */
  private async getCommitted(id: string): Promise<AnyRow | null> {
    try {
      const raw = await this.ctx.call(() => this.ctx.tables.getRow({ databaseId: this.ctx.databaseId, tableId: this.spec.name, rowId: id }), this.what(id));
      return fromRow(this.spec, raw as unknown as AppwriteRow);
    } catch (err) {
      if (isHubError(err, 'not_found')) return null;
      throw err;
    }
  }

  /**
   * Appwrite fails a commit only for rows someone else committed after our write was staged. Remember each row's
   * committed version when first touched, and check it again after staging: a change before that check is seen
   * here, one after it fails the commit. Together no change goes unnoticed (no lost update).
   */
  private async rememberBase(id: string): Promise<void> {
    const key = `${this.spec.name}/${id}`;
    if (!this.ctx.baseVersions!.has(key)) this.ctx.baseVersions!.set(key, (await this.getCommitted(id))?.version ?? null);
  }

  /** Whether any row this transaction has read or written was committed anew since it first saw it. */
  private async baseMoved(): Promise<boolean> {
    for (const [key, version] of this.ctx.baseVersions ?? []) {
      const slash = key.indexOf('/');
      const spec = TABLE_SPECS.get(key.slice(0, slash) as TableName)!;
      const committed = await new AppwriteTable({ ...this.ctx, transactionId: undefined, baseVersions: undefined }, spec).getCommitted(key.slice(slash + 1));
      if ((committed?.version ?? null) !== version) return true;
    }
    return false;
  }

  private async checkBase(id: string): Promise<void> {
    const expected = this.ctx.baseVersions!.get(`${this.spec.name}/${id}`);
    const now = (await this.getCommitted(id))?.version ?? null;
    if (now !== expected) throw raceConflict(this.what(id));
  }

  async insert(input: NewRow<AnyRow>): Promise<AnyRow> {
    const row = prepareInsert(this.spec, this.ctx.clock, input as Record<string, unknown>);
    if (this.ctx.transactionId) {
      // Staged writes are checked only at commit, where a clash reads as a transaction conflict: check first.
      // A clash with a row someone committed after this transaction read what led it here is a race, not a
      // duplicate: run the body again on fresh reads.
      const clash = await this.clashingFields(row);
      if (clash.length) throw (await this.baseMoved()) ? raceConflict(this.what(row.id)) : this.clashError(clash);
      await this.rememberBase(row.id);
      this.staging();
    }
    try {
      await this.ctx.call(() => this.ctx.tables.createRow({ ...this.base, rowId: row.id, data: toData(this.spec, row) }), this.what(row.id));
    } catch (err) {
      if (!isHubError(err, 'already_exists')) throw err;
      // A retried create whose first attempt got through but lost its answer finds its own row: that is success.
      const existing = await this.get(row.id);
      if (existing && this.spec.columns.every((c) => JSON.stringify(existing[c.name] ?? null) === JSON.stringify(row[c.name] ?? null))) return row;
      throw this.clashError(await this.clashingFields(row), err);
    }
    return row;
  }

  /**
   * Appwrite does not say which index clashed: find the fields, so callers get them as on every adapter. For an
   * update (`updating`), the row's own id is no clash and the row itself is not a rival.
   */
  private async clashingFields(row: AnyRow, updating = false): Promise<string[]> {
    const fields: string[] = [];
    if (!updating && (await this.get(row.id))) fields.push('id');
    for (const idx of this.spec.indexes.filter((i) => i.unique)) {
      if (idx.fields.some((f) => row[f] === null || row[f] === undefined)) continue; // NULLs never clash
      const where: Where = { id: { ne: row.id } };
      for (const f of idx.fields) where[f] = row[f] as Where[string];
      if ((await this.query({ where, limit: 1 })).items.length) fields.push(...idx.fields);
    }
    return fields;
  }

  private clashError(fields: string[], cause?: unknown): HubError {
    return new HubError('already_exists', `A ${this.spec.title} with the same ${fields.join(', ') || 'key'} already exists`, {
      errors: fields.map((f) => ({ field: `/${f}`, code: 'unique', message: 'is already taken' })),
      cause,
    });
  }

  async update(id: string, patch: RowPatch<AnyRow>, options: UpdateOptions = {}): Promise<AnyRow> {
    if (this.ctx.transactionId) return this.updateStaged(id, patch, options);
    // Compare-and-set: the update applies only to the row at the version we read; without ifVersion a lost race
    // is retried from a fresh read, so no concurrent change is overwritten.
    for (let attempt = 1; ; attempt++) {
      const current = await this.get(id);
      if (!current) throw new HubError('not_found', `${this.what(id)} does not exist`);
      if (options.ifVersion !== undefined && options.ifVersion !== current.version) {
        throw new HubError('version_conflict', `${this.what(id)} is at version ${current.version}, not ${options.ifVersion}`);
      }
      const row = prepareUpdate(this.spec, this.ctx.clock, current, patch as Record<string, unknown>);
      const data = toData(this.spec, row);
      const res = await this.ctx.call(
        () => this.ctx.tables.updateRows({ databaseId: this.ctx.databaseId, tableId: this.spec.name, data, queries: [Query.equal('$id', [id]), Query.equal('version', [current.version])] }),
        this.what(id),
      ).catch(async (err: unknown) => {
        if (isHubError(err, 'already_exists')) throw this.clashError(await this.clashingFields(row, true), err);
        throw err;
      });
      if (res.total === 1) return row;
      if (options.ifVersion !== undefined || attempt >= 8) throw new HubError('version_conflict', `${this.what(id)} changed while it was being updated`);
    }
  }

  /** Appwrite writes whole rows: this reads the stored row and compares its version, as update does. */
  updateFrom(row: AnyRow, patch: RowPatch<AnyRow>): Promise<AnyRow> {
    return this.update(row.id, patch, { ifVersion: row.version });
  }

  /**
   * Inside a transaction, a stale version is a race (run the body again) when this transaction itself first saw the
   * row at that version, or when the row has been committed anew since this transaction first saw it: the version
   * the body holds was then read from a row that moved on under it (first seen at 7, read again at 8 after another
   * commit, at 9 by now), not handed in stale by the caller.
   */
  private async staleVersion(id: string, current: AnyRow, ifVersion: number): Promise<HubError> {
    const base = this.ctx.baseVersions?.get(`${this.spec.name}/${id}`);
    if (base === ifVersion) return raceConflict(this.what(id));
    if (base !== undefined && ((await this.getCommitted(id))?.version ?? null) !== base) return raceConflict(this.what(id));
    return new HubError('version_conflict', `${this.what(id)} is at version ${current.version}, not ${ifVersion}`);
  }

  private async updateStaged(id: string, patch: RowPatch<AnyRow>, options: UpdateOptions): Promise<AnyRow> {
    await this.rememberBase(id);
    const current = await this.get(id);
    if (!current) throw new HubError('not_found', `${this.what(id)} does not exist`);
    if (options.ifVersion !== undefined && options.ifVersion !== current.version) throw await this.staleVersion(id, current, options.ifVersion);
    const row = prepareUpdate(this.spec, this.ctx.clock, current, patch as Record<string, unknown>);
    this.staging();
    await this.ctx.call(() => this.ctx.tables.updateRow({ ...this.base, rowId: id, data: toData(this.spec, row) }), this.what(id));
    await this.checkBase(id);
    return row;
  }

  async delete(id: string, options: UpdateOptions = {}): Promise<void> {
    const current = await this.get(id);
    if (!current) throw new HubError('not_found', `${this.what(id)} does not exist`);
    if (options.ifVersion !== undefined && options.ifVersion !== current.version) throw await this.staleVersion(id, current, options.ifVersion);
    if (this.ctx.transactionId) {
      await this.rememberBase(id);
      this.staging();
      await this.ctx.call(() => this.ctx.tables.deleteRow({ ...this.base, rowId: id }), this.what(id));
      await this.checkBase(id);
      return;
    }
    const queries = [Query.equal('$id', [id]), ...(options.ifVersion !== undefined ? [Query.equal('version', [options.ifVersion])] : [])];
    const res = await this.ctx.call(() => this.ctx.tables.deleteRows({ databaseId: this.ctx.databaseId, tableId: this.spec.name, queries }), this.what(id));
    if (res.total !== 1) {
      if (await this.get(id)) throw new HubError('version_conflict', `${this.what(id)} changed while it was being deleted`);
      throw new HubError('not_found', `${this.what(id)} does not exist`);
    }
  }

  upsert(row: NewRow<AnyRow> & { id: string }): Promise<{ row: AnyRow; created: boolean }> {
    return upsertRow(this, row);
  }

  async query(options: QueryOptions = {}): Promise<Page<AnyRow>> {
    checkWhere(this.spec, options.where);
    const order = checkOrder(this.spec, options.orderBy);
    const limit = clampLimit(options.limit);
    const filters = whereQueries(options.where);
    const dir = order.direction === 'desc' ? Query.orderDesc : Query.orderAsc;
    const ordering = order.field === 'id' ? [dir('$id')] : [dir(order.field), dir('$id')]; // ties in id order
    let cursor = options.cursor ?? null;
    if (cursor !== null && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,35}$/.test(cursor)) {
      throw new HubError('invalid_cursor', 'The cursor is not one this API issued', {
        errors: [{ field: '/cursor', code: 'format', message: 'is not a cursor this API issued' }],
      });
    }
    const items: AnyRow[] = [];
    // Appwrite's matches are a superset of the exact ones (its collation ignores case): keep reading until the
    // page is full of exact matches or the table is exhausted.
    for (;;) {
      const batch = limit + 1 - items.length;
      const queries = [...filters, ...ordering, ...(cursor ? [Query.cursorAfter(cursor)] : []), Query.limit(batch)];
      const list = (await this.ctx.call(() => this.ctx.tables.listRows({ ...this.base, queries, total: false }), this.what())) as unknown as { rows: AppwriteRow[] };
      for (const raw of list.rows) {
        const row = fromRow(this.spec, raw);
        if (matches(row, options.where)) items.push(row);
      }
      if (list.rows.length < batch || items.length > limit) break;
      cursor = list.rows[list.rows.length - 1]!.$id;
    }
    const page = items.slice(0, limit);
    // Rows read in a transaction are what it builds on: a later write against an older version is a race.
    if (this.ctx.baseVersions) for (const row of page) if (!this.ctx.baseVersions.has(`${this.spec.name}/${row.id}`)) this.ctx.baseVersions.set(`${this.spec.name}/${row.id}`, row.version);
    return { items: page, nextCursor: items.length > limit ? page[page.length - 1]!.id : null };
  }

  /** Appwrite rows are read whole (Query.select would only save bytes on the wire) and cut down here. */
  async pick(fields: readonly string[], options: QueryOptions = {}): Promise<Page<AnyRow>> {
    const unknown = fields.find((f) => !this.spec.columnsByName.has(f));
    if (unknown !== undefined) throw new HubError('invalid_query', `${this.spec.name} has no field ${unknown}`);
    const page = await this.query(options);
    return { items: page.items.map((row) => Object.fromEntries(['id', ...fields].map((f) => [f, row[f]])) as AnyRow), nextCursor: page.nextCursor };
  }

  async exists(where: Where): Promise<boolean> {
    // A page of one exact match (Appwrite's collation may match more loosely; query keeps only exact ones).
    return (await this.query({ where, limit: 1 })).items.length > 0;
  }

  async count(where?: Where): Promise<number> {
    checkWhere(this.spec, where);
    let n = 0;
    let cursor: string | null = null;
    // Appwrite's `total` is capped for large tables; counting pages is exact (and count is not on a hot path).
    do {
      const page: Page<AnyRow> = await this.query({ where, limit: 1000, cursor });
      n += page.items.length;
      cursor = page.nextCursor;
    } while (cursor);
    return n;
  }

  async deleteWhere(where: Where, options: DeleteOptions = {}): Promise<number> {
    checkWhere(this.spec, where);
    const limit = options.limit === undefined ? Infinity : checkDeleteLimit(options.limit);
    let deleted = 0;
    // Each page is gone before the next is read, so the next is the first again: inside a transaction too, whose
    // reads see what it staged. Past the transaction's bound on writes the lot is refused, none of it kept.
    for (;;) {
      const page = await this.query({ where, limit: Math.min(100, limit - deleted) });
      for (const row of page.items) {
        try {
          this.staging();
          await this.ctx.call(() => this.ctx.tables.deleteRow({ ...this.base, rowId: row.id }), this.what(row.id));
          deleted++;
        } catch (err) {
          if (!isHubError(err, 'not_found')) throw err; // deleted by someone else meanwhile
        }
      }
      if (!page.nextCursor || deleted >= limit) return deleted;
    }
  }

  async increment(id: string, field: string, by: number, options: IncrementOptions = {}): Promise<AnyRow> {
    const col = this.spec.columnsByName.get(field);
    if (!col || col.kind !== 'integer') throw new HubError('invalid_query', `${this.spec.name}.${field} is not an integer column`);
    if (!Number.isSafeInteger(by)) throw new HubError('validation_failed', 'The increment must be an integer');
    const current = await this.get(id);
    if (!current) throw new HubError('not_found', `${this.what(id)} does not exist`);
    const result = (current[field] as number) + by;
    const outOfBounds = (options.min !== undefined && result < options.min) || (options.max !== undefined && result > options.max);
    try {
      if (outOfBounds) throw new AppwriteException('bounds', 400, 'column_value_invalid');
      this.staging();
      // Appwrite bounds an increment by `max` and a decrement by `min`: the atomic check is done server-side.
      const raw =
        by >= 0
          ? await this.ctx.call(
              () => this.ctx.tables.incrementRowColumn({ ...this.base, rowId: id, column: field, value: by, ...(options.max !== undefined ? { max: options.max } : {}) }),
              this.what(id),
            )
          : await this.ctx.call(
              () => this.ctx.tables.decrementRowColumn({ ...this.base, rowId: id, column: field, value: -by, ...(options.min !== undefined ? { min: options.min } : {}) }),
              this.what(id),
            );
      return this.ctx.transactionId ? { ...current, [field]: result } : fromRow(this.spec, raw as unknown as AppwriteRow);
    } catch (err) {
      if (!(err instanceof AppwriteException && err.type === 'column_value_invalid') && !BOUNDS.has(typeOf((err as HubError).cause ?? err))) throw err;
      const latest = (await this.get(id)) ?? current;
      throw new HubError('bound_exceeded', `${this.spec.name}.${field} would leave its bounds`, {
        errors: [{ field: `/${field}`, code: 'bounds', message: `${String(latest[field])} + ${by} is outside [${options.min ?? '-∞'}, ${options.max ?? '∞'}]` }],
        extra: { current: latest[field] },
        cause: err,
      });
    }
  }

}

export class AppwriteStore implements Store {
  readonly kind = 'appwrite';
  readonly writesPerTransaction: number;
  private readonly ctx: Ctx;
  private readonly tablesCache = new Map<string, AppwriteTable>();
  private readonly maxAttempts: number;
  private readonly maxTxAttempts: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly requestTimeoutMs: number;
  private readonly client: Client;
  readonly tables: TablesDB;
  readonly databaseId: string;

  constructor(options: AppwriteStoreOptions) {
    this.client = new Client().setEndpoint(options.endpoint).setProject(options.projectId).setKey(options.apiKey);
    this.tables = new TablesDB(this.client);
    this.databaseId = options.databaseId ?? DEFAULT_DATABASE_ID;
    this.maxAttempts = options.maxAttempts ?? 4;
    this.maxTxAttempts = options.maxTransactionAttempts ?? 20;
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.requestTimeoutMs = options.requestTimeoutMs ?? 15_000;
    this.writesPerTransaction = options.writesPerTransaction ?? 100;
    this.ctx = {
      tables: this.tables,
      databaseId: this.databaseId,
      clock: options.clock ?? systemClock,
      call: (fn, what) => this.call(fn, what),
    };
  }

  /**
   * Runs one request, retrying 429/5xx/network failures with backoff. Writes are retried too: every write the
   * hub sends names its row id, so a retry after a lost answer either repeats the same change or finds it done.
   */
  private async call<T>(fn: () => Promise<T>, what: string): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        return await Promise.race([
          fn(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new RequestTimeout(`no answer within ${this.requestTimeoutMs} ms`)), this.requestTimeoutMs);
          }),
        ]);
      } catch (err) {
        if (!isRetryable(err) || attempt >= this.maxAttempts) throw toHubError(err, what);
        // node-appwrite does not expose Retry-After; back off exponentially with jitter instead
        await this.sleep(backoffDelay(attempt, { baseMs: 100, maxMs: 2000, jitter: 'equal' }));
      } finally {
        clearTimeout(timer);
      }
    }
  }

  table<N extends TableName>(name: N): Table<TableRows[N]> {
    let t = this.tablesCache.get(name);
    if (!t) {
      const spec = TABLE_SPECS.get(name);
      if (!spec) throw new Error(`Unknown table ${name}`);
      t = new AppwriteTable(this.ctx, spec);
      this.tablesCache.set(name, t);
    }
    return t as unknown as Table<TableRows[N]>;
  }

  /**
   * An Appwrite transaction: writes are staged and applied together at commit. When someone else changed a row
   * this one read or wrote, the commit fails and the body runs again from the start (optimistic concurrency), so
   * the body must have no effects outside the store. A transaction that expired before its commit runs again too.
   * With `conflictIsFinal`, a conflict (or an expiry) is reported instead. (`runAhead` asks nothing more here: a body
   * already runs against committed data, and nothing waits for it.)
   */
  async transaction<R>(fn: (tx: Db) => Promise<R>, options: TransactionOptions & { conflictIsFinal?: boolean } = {}): Promise<R> {
    const conflictIsFinal = options.conflictIsFinal ?? false;
    for (let attempt = 1; ; attempt++) {
      const created = await this.call(() => this.tables.createTransaction({ ttl: 60 }), 'A transaction');
      const txCtx: Ctx = { ...this.ctx, transactionId: created.$id, baseVersions: new Map(), writes: { count: 0, limit: this.writesPerTransaction } };
      const txTables = new Map<string, AppwriteTable>();
      const tx: Db = {
        table: <N extends TableName>(name: N) => {
          let t = txTables.get(name);
          if (!t) {
            t = new AppwriteTable(txCtx, TABLE_SPECS.get(name)!);
            txTables.set(name, t);
          }
          return t as unknown as Table<TableRows[N]>;
        },
        transaction: <T>(inner: (db: Db) => Promise<T>) => inner(tx),
        writesLeft: () => txCtx.writes!.limit - txCtx.writes!.count,
      };
      let result: R;
      try {
        result = await fn(tx);
      } catch (err) {
        await this.tables.updateTransaction({ transactionId: created.$id, rollback: true }).catch(() => undefined);
        if (!runAgain(err) || conflictIsFinal || attempt >= this.maxTxAttempts) throw err;
        await this.sleep(backoffDelay(attempt, TX_BACKOFF));
        continue;
      }
      try {
        await this.call(() => this.tables.updateTransaction({ transactionId: created.$id, commit: true }), 'The transaction');
        return result;
      } catch (err) {
        if (!runAgain(err) || conflictIsFinal || attempt >= this.maxTxAttempts) throw err;
        await this.sleep(backoffDelay(attempt, TX_BACKOFF));
      }
    }
  }

  /** Outside a transaction each write is its own. */
  writesLeft(): number {
    return Infinity;
  }

  /** Appwrite gives each execution its own dynamic key: a warm container's store switches to the current one. */
  setApiKey(key: string): void {
    this.client.setKey(key);
  }

  async ping(): Promise<void> {
    await this.call(() => this.tables.get({ databaseId: this.databaseId }), 'The database');
  }

  async close(): Promise<void> {
    // stateless HTTP client: nothing to release
  }

  /** Creates the database, tables, columns and indexes that are missing (what `appwrite push` would do). */
  async provision(): Promise<void> {
    await provisionAppwrite(this.tables, this.databaseId, (fn, what) => this.call(fn, what));
  }
}

export function createAppwriteStore(options: AppwriteStoreOptions): AppwriteStore {
  return new AppwriteStore(options);
}
