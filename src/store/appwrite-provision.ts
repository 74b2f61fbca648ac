// Provisioning: creates the hub's database, tables, columns and indexes in Appwrite where they are missing, from
// the same derivation as appwrite.json. Existing ones are left alone (changing a column is a migration).
import { AppwriteException, type TablesDB } from 'node-appwrite';
import { HubError } from '../errors.ts';
import { appwriteTables, isHubIndexKey } from './appwrite-schema.ts';

/** The store's request runner: retries what a retry can mend (429, 5xx, a reset connection), as for every other call. */
export type AppwriteCall = <T>(fn: () => Promise<T>, what: string) => Promise<T>;

/** The Appwrite answer behind a failure, whether `call` wrapped it or not. */
function answer(err: unknown): AppwriteException | null {
  if (err instanceof AppwriteException) return err;
  const cause = (err as { cause?: unknown } | null)?.cause;
  return cause instanceof AppwriteException ? cause : null;
}

export async function provisionAppwrite(tables: TablesDB, databaseId: string, call: AppwriteCall): Promise<void> {
  async function exists(fn: () => Promise<unknown>, what: string): Promise<boolean> {
    try {
      await call(fn, what);
      return true;
    } catch (err) {
      if (answer(err)?.code === 404) return false;
      throw new HubError('store_unavailable', `Appwrite refused the schema check: ${(err as Error).message}`, { cause: err });
    }
  }
  // A create retried after its answer was lost finds what its first attempt made: that is done, not a failure.
  async function create(fn: () => Promise<unknown>, what: string): Promise<void> {
    try {
      await call(fn, what);
    } catch (err) {
      if (answer(err)?.code !== 409) throw err;
    }
  }

  if (!(await exists(() => tables.get({ databaseId }), 'The database'))) await create(() => tables.create({ databaseId, name: 'Integration hub' }), 'The database');
  for (const table of appwriteTables(databaseId)) {
    const tableId = table.$id;
    const what = `The table ${tableId}`;
    if (!(await exists(() => tables.getTable({ databaseId, tableId }), what))) {
      await create(() => tables.createTable({ databaseId, tableId, name: table.name, permissions: [], rowSecurity: false, enabled: true }), what);
    }
    const have = new Set(((await call(() => tables.listColumns({ databaseId, tableId }), what)).columns as { key: string }[]).map((c) => c.key));
    for (const col of table.columns) {
      if (have.has(col.key)) continue;
      const base = { databaseId, tableId, key: col.key, required: col.required, array: false };
      const column = `The column ${tableId}.${col.key}`;
      if (col.type === 'varchar') await create(() => tables.createVarcharColumn({ ...base, size: col.size! }), column);
      else if (col.type === 'longtext') await create(() => tables.createLongtextColumn(base), column);
      else if (col.type === 'integer') await create(() => tables.createIntegerColumn(base), column);
      else if (col.type === 'float') await create(() => tables.createFloatColumn(base), column);
      else if (col.type === 'boolean') await create(() => tables.createBooleanColumn(base), column);
      else await create(() => tables.createEnumColumn({ ...base, elements: col.elements! }), column);
    }
    const haveIndexes = new Set(((await call(() => tables.listIndexes({ databaseId, tableId }), what)).indexes as { key: string }[]).map((i) => i.key));
    for (const idx of table.indexes) {
      if (haveIndexes.has(idx.key)) continue;
      await create(() => tables.createIndex({ databaseId, tableId, key: idx.key, type: idx.type as never, columns: idx.columns, orders: idx.orders as never }), `The index ${tableId}.${idx.key}`);
    }
    // An index of the hub's own naming that the schema no longer lists (replaced by a better one, created above)
    // only slows every write: it goes. An operator's own index is left alone.
    const wanted = new Set(table.indexes.map((i) => i.key));
    const columns = new Set(['id', ...table.columns.map((c) => c.key)]);
    for (const key of haveIndexes) {
      if (wanted.has(key) || !isHubIndexKey(key, columns)) continue;
      try {
        await call(() => tables.deleteIndex({ databaseId, tableId, key }), `The index ${tableId}.${key}`);
      } catch (err) {
        if (answer(err)?.code !== 404) throw err; // deleted meanwhile, or by a retry whose answer was lost
      }
    }
  }
}
