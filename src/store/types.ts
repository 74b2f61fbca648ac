// The Store seam: typed tables over any backend (embedded SQLite, Appwrite TablesDB). Every adapter passes
// test/store-contract.ts; code above this line never knows which backend it runs on.
import type { TableName, TableRows } from './rows.generated.ts';

export type * from './rows.generated.ts';

export type Scalar = string | number | boolean | null;

export interface FieldOps {
  eq?: Scalar;
  ne?: Scalar;
  gt?: string | number;
  gte?: string | number;
  lt?: string | number;
  lte?: string | number;
  in?: Scalar[];
  /** None of these values; like `ne`, a null field matches. */
  notIn?: Scalar[];
  startsWith?: string;
  isNull?: boolean;
}

/**
 * A filter: every field condition must hold (AND). A bare value means equality. `$or` holds a list of filters of
 * which at least one must hold. Only scalar columns can be filtered (not JSON objects or arrays).
 */
export interface Where {
  [field: string]: Scalar | FieldOps | Where[] | undefined;
  $or?: Where[];
}

export interface OrderBy {
  field: string;
  direction?: 'asc' | 'desc';
}

export interface QueryOptions {
  where?: Where;
  /** Rows are ordered by this field then by id (ties never reorder between pages). Default: id ascending. */
  orderBy?: OrderBy;
  /** Opaque: the `nextCursor` of the previous page. Only valid with the same where and orderBy. */
  cursor?: string | null;
  /** 1..1000, default 50. */
  limit?: number;
  /**
   * Many rows may match (a page of an API list): ordered by id, a store may read the rows in that order first and
   * filter them, rather than find every match along an index of the filter and sort them all. The same page.
   */
  expectMany?: boolean;
  /**
   * Every match is read, a page after another (a report, an export): ordered by id, a store may answer a page with
   * fewer than `limit` rows, or none, and a cursor to go on, rather than find and sort every match left for each page.
   */
  scan?: boolean;
}

export interface Page<T> {
  /** Up to the limit asked for; fewer, or none, with a next page only when the query said `scan`. */
  items: T[];
  /** Null when this is the last page. */
  nextCursor: string | null;
}

export type SystemFields = 'version' | 'createdAt' | 'updatedAt';

/** What insert takes: the row without its system fields; `id` is generated from the table's prefix when absent. */
export type NewRow<T extends { id: string }> = Omit<T, SystemFields | 'id'> & { id?: string };

/** What update takes: any stored field but the identity and system fields. */
export type RowPatch<T> = Partial<Omit<T, SystemFields | 'id' | 'workspaceId'>>;

export interface UpdateOptions {
  /** Fails with `version_conflict` unless the stored row has this version (optimistic concurrency). */
  ifVersion?: number;
}

export interface DeleteOptions {
  /** At most this many rows (a positive integer). */
  limit?: number;
}

export interface IncrementOptions {
  /** The result may not fall below this (fails with `bound_exceeded`, nothing changed). */
  min?: number;
  /** The result may not exceed this (fails with `bound_exceeded`, nothing changed). */
  max?: number;
}

export interface Table<T extends { id: string; version: number }> {
  readonly name: TableName;
  get(id: string): Promise<T | null>;
  /** Fails with `already_exists` (and the fields of the unique index) on a duplicate id or unique key. */
  insert(row: NewRow<T>): Promise<T>;
  /** Merges the patch, bumps `version`, sets `updatedAt`. Fails with `not_found` or `version_conflict`. */
  update(id: string, patch: RowPatch<T>, options?: UpdateOptions): Promise<T>;
  /**
   * As update with `ifVersion: row.version`, from the row as the caller read it: the row returned is `row` with the
   * patch applied, not read back (on SQLite, reading a row back cost as much as the update itself). Under the
   * compare-and-set the stored row is `row` (every write bumps the version; no table here uses `increment`).
   */
  updateFrom(row: T, patch: RowPatch<T>): Promise<T>;
  /** Fails with `not_found`, or `version_conflict` when ifVersion is given and stale. */
  delete(id: string, options?: UpdateOptions): Promise<void>;
  /**
   * Inserts the row, or, when a row with its id exists, replaces the given fields (version bumped, createdAt kept).
   * Safe under concurrency: a lost race is retried. A clash on another unique key is still `already_exists`.
   */
  upsert(row: NewRow<T> & { id: string }): Promise<{ row: T; created: boolean }>;
  query(options?: QueryOptions): Promise<Page<T>>;
  /**
   * As query, but each row holds only `id` and `fields`: for lookups over many rows that need a field or two, where
   * reading and decoding whole rows is most of the cost. Rows read this way are not a base for versioned writes.
   */
  pick<K extends keyof T & string>(fields: readonly K[], options?: QueryOptions): Promise<Page<Pick<T, K | 'id'>>>;
  count(where?: Where): Promise<number>;
  /** Whether any row matches: stops at the first, in no particular order (a check that must not sort a backlog). */
  exists(where: Where): Promise<boolean>;
  /**
   * Deletes every matching row and says how many; with `limit`, at most that many, whichever match first (a bulk
   * delete pages by it, so that no one statement holds SQLite's write lock for long: see store/prune.ts).
   */
  deleteWhere(where: Where, options?: DeleteOptions): Promise<number>;
  /**
   * Atomically adds `by` (negative to subtract) to an integer column, within bounds; returns the new row.
   * Counters live outside optimistic versioning: `version` is not bumped (Appwrite's increment cannot bump it).
   */
  increment(id: string, field: keyof T & string, by: number, options?: IncrementOptions): Promise<T>;
}

export interface StoreTables {
  table<N extends TableName>(name: N): Table<TableRows[N]>;
}

export interface TransactionOptions {
  /**
   * The body may run ahead, before the transaction takes the write lock: against the data as committed, its reads
   * made and their answers kept, its writes kept and not made. Under the lock its statements are then made in turn,
   * each read checked to answer as it did ahead, each write to change its one row; should any differ, that is undone
   * and the body runs there as usual. So the body's own work (building, checking and encoding rows) is done while
   * others may write, and the lock is held for its statements alone. For long bodies that read before they write;
   * the body may run twice, so it must have no effects outside the store that a second run would repeat (the
   * rule on Appwrite already, where a conflict runs a body again), and it must read through its handle only (as any
   * body should): a read of the store itself is made outside the transaction, and not checked under the lock.
   * Ignored inside a transaction and by stores whose bodies never hold a lock (Appwrite).
   */
  runAhead?: boolean;
}

/** What domain code takes: the store itself or an open transaction, so that one function serves in both. */
export interface Db extends StoreTables {
  /**
   * Runs `fn` with all-or-nothing writes. Keep it short and free of network calls: on SQLite other writers wait
   * for it. Called on a transaction, it joins that transaction.
   */
  transaction<R>(fn: (tx: Db) => Promise<R>, options?: TransactionOptions): Promise<R>;
  /**
   * How many more writes the transaction this is may make (Store.writesPerTransaction less those it made);
   * Infinity where the store sets no bound, and outside a transaction.
   */
  writesLeft(): number;
}

export interface Store extends Db {
  readonly kind: string;
  /**
   * How many writes one transaction may hold (Infinity: no bound). Appwrite stages each write as an operation and
   * refuses a transaction's 101st on its Free plan; work that may write more than this pages across transactions.
   */
  readonly writesPerTransaction: number;
  /** A cheap round trip, for health checks. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
