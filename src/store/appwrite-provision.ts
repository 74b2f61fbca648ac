// Provisioning: creates the hub's database, tables, columns and indexes in Appwrite where they are missing, from
// the same derivation as appwrite.json. Existing ones are left alone (changing a column is a migration).
import { AppwriteException, type TablesDB } from 'node-appwrite';
import { HubError } from '../errors.ts';
import { appwriteTables } from './appwrite-schema.ts';

async function exists(fn: () => Promise<unknown>): Promise<boolean> {
  try {
    await fn();
    return true;
  } catch (err) {
    if (err instanceof AppwriteException && err.code === 404) return false;
    throw new HubError('store_unavailable', `Appwrite refused the schema check: ${(err as Error).message}`, { cause: err });
  }
}

export async function provisionAppwrite(tables: TablesDB, databaseId: string): Promise<void> {
  if (!(await exists(() => tables.get({ databaseId })))) await tables.create({ databaseId, name: 'Integration hub' });
  for (const table of appwriteTables(databaseId)) {
    const tableId = table.$id;
    if (!(await exists(() => tables.getTable({ databaseId, tableId })))) {
      await tables.createTable({ databaseId, tableId, name: table.name, permissions: [], rowSecurity: false, enabled: true });
    }
    const have = new Set(((await tables.listColumns({ databaseId, tableId })).columns as { key: string }[]).map((c) => c.key));
    for (const col of table.columns) {
      if (have.has(col.key)) continue;
      const base = { databaseId, tableId, key: col.key, required: col.required, array: false };
      if (col.type === 'varchar') await tables.createVarcharColumn({ ...base, size: col.size! });
      else if (col.type === 'longtext') await tables.createLongtextColumn(base);
      else if (col.type === 'integer') await tables.createIntegerColumn(base);
      else if (col.type === 'float') await tables.createFloatColumn(base);
      else if (col.type === 'boolean') await tables.createBooleanColumn(base);
      else await tables.createEnumColumn({ ...base, elements: col.elements! });
    }
    const haveIndexes = new Set(((await tables.listIndexes({ databaseId, tableId })).indexes as { key: string }[]).map((i) => i.key));
    for (const idx of table.indexes) {
      if (haveIndexes.has(idx.key)) continue;
      await tables.createIndex({ databaseId, tableId, key: idx.key, type: idx.type as never, columns: idx.columns, orders: idx.orders as never });
    }
  }
}
