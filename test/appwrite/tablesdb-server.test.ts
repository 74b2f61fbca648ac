// The local TablesDB server, driven only through the real node-appwrite client (plus raw fetch for requests the
// client would never send). Every response the client gets is checked against the spec's response schemas.
import { AppwriteException, Client, ID, OrderBy, Query, TablesDB, TablesDBIndexType } from 'node-appwrite';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadSpec } from './spec.ts';
import { startTablesDbServer, type TablesDbServer } from './tablesdb-server.ts';

const spec = loadSpec();
let server: TablesDbServer;
let db: TablesDB;
const responseProblems: string[] = [];

const bigints = (_key: string, v: unknown) => (typeof v === 'bigint' ? Number(v) : v);

/** A real client; its `call` is observed so every successful response body is checked against the spec. */
function connect(key = server.apiKey): TablesDB {
  const client = new Client().setEndpoint(server.url).setProject(server.projectId).setKey(key);
  const call = client.call.bind(client);
  client.call = async (method, url, headers, params, responseType) => {
    const result: unknown = await call(method, url, headers, params, responseType);
    const route = url.pathname.slice(spec.basePath.length);
    responseProblems.push(...spec.checkResponse(method.toUpperCase(), route, null, JSON.parse(JSON.stringify(result, bigints))));
    return result;
  };
  return new TablesDB(client);
}

async function failure<T>(promise: Promise<T>): Promise<AppwriteException> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof AppwriteException) return error;
    throw error;
  }
  throw new Error('expected an AppwriteException');
}

async function expectError<T>(promise: Promise<T>, code: number, type: string): Promise<AppwriteException> {
  const error = await failure(promise);
  expect({ code: error.code, type: error.type }).toEqual({ code, type });
  return error;
}

function raw(method: string, path: string, init: { body?: unknown; withoutKey?: boolean } = {}) {
  const headers: Record<string, string> = { 'x-appwrite-project': server.projectId, 'content-type': 'application/json' };
  if (!init.withoutKey) headers['x-appwrite-key'] = server.apiKey;
  return fetch(`${server.url}${path}`, { method, headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
}

async function setupInventory(): Promise<void> {
  await db.create({ databaseId: 'hub', name: 'Hub' });
  await db.createTable({ databaseId: 'hub', tableId: 'items', name: 'Items' });
  const t = { databaseId: 'hub', tableId: 'items' };
  await db.createVarcharColumn({ ...t, key: 'sku', size: 32, required: true });
  await db.createStringColumn({ ...t, key: 'name', size: 64, required: false });
  await db.createIntegerColumn({ ...t, key: 'stock', required: false, min: 0, max: 1000, xdefault: 0 });
  await db.createFloatColumn({ ...t, key: 'price', required: false });
  await db.createBooleanColumn({ ...t, key: 'active', required: false, xdefault: true });
  await db.createDatetimeColumn({ ...t, key: 'seenAt', required: false });
  await db.createEnumColumn({ ...t, key: 'kind', elements: ['part', 'tool'], required: false });
  await db.createStringColumn({ ...t, key: 'tags', size: 16, required: false, array: true });
  await db.createIndex({ ...t, key: 'uq_sku', type: TablesDBIndexType.Unique, columns: ['sku'] });
}

const T = { databaseId: 'hub', tableId: 'items' };

beforeAll(async () => {
  server = await startTablesDbServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  server.reset();
  responseProblems.length = 0;
  db = connect();
});
afterEach(() => {
  expect(server.violations).toEqual([]);
  expect(responseProblems).toEqual([]);
  for (const r of server.requests.filter((r) => r.status >= 200 && r.status < 300)) {
    expect(spec.checkResponse(r.method, r.path.slice(spec.basePath.length), r.status, undefined), `${r.method} ${r.path}`).toEqual([]);
  }
});

describe('schema', () => {
  it('creates a database, a table, columns of every supported type and indexes, and reads them back', async () => {
    expect(await db.create({ databaseId: 'hub', name: 'Hub' })).toMatchObject({ $id: 'hub', type: 'tablesdb', enabled: true });
    await db.createTable({ databaseId: 'hub', tableId: 'items', name: 'Items' });
    const column = await db.createVarcharColumn({ ...T, key: 'sku', size: 32, required: true });
    expect(column).toMatchObject({ key: 'sku', type: 'varchar', size: 32, status: 'processing' });
    for (const create of [
      () => db.createTextColumn({ ...T, key: 'notes', required: false }),
      () => db.createMediumtextColumn({ ...T, key: 'body', required: false }),
      () => db.createLongtextColumn({ ...T, key: 'payload', required: false }),
      () => db.createEmailColumn({ ...T, key: 'owner', required: false }),
      () => db.createUrlColumn({ ...T, key: 'link', required: false }),
      () => db.createIntegerColumn({ ...T, key: 'stock', required: false }),
      () => db.createFloatColumn({ ...T, key: 'price', required: false, min: 0 }),
      () => db.createBooleanColumn({ ...T, key: 'active', required: false }),
      () => db.createDatetimeColumn({ ...T, key: 'seenAt', required: false }),
      () => db.createEnumColumn({ ...T, key: 'kind', elements: ['part', 'tool'], required: false }),
    ]) await create();
    expect(await db.getColumn({ ...T, key: 'sku' })).toMatchObject({ status: 'available' });
    // Integer bounds default to PHP_INT_MIN/MAX, which node-appwrite parses as BigInt.
    expect(await db.getColumn({ ...T, key: 'stock' })).toMatchObject({ type: 'integer', min: -(2n ** 63n), max: 2n ** 63n - 1n });
    expect(await db.getColumn({ ...T, key: 'price' })).toMatchObject({ type: 'double', min: 0 });
    expect(await db.getColumn({ ...T, key: 'owner' })).toMatchObject({ type: 'string', format: 'email' });
    await db.createIndex({ ...T, key: 'uq_sku', type: TablesDBIndexType.Unique, columns: ['sku'], orders: [OrderBy.Asc] });
    await db.createIndex({ ...T, key: 'ix_kind', type: TablesDBIndexType.Key, columns: ['kind', 'stock'] });
    expect(await db.getIndex({ ...T, key: 'uq_sku' })).toMatchObject({ type: 'unique', columns: ['sku'], orders: ['ASC'], status: 'available' });
    expect((await db.listColumns(T)).total).toBe(11);
    expect((await db.listIndexes(T)).indexes.map((i) => i.key)).toEqual(['uq_sku', 'ix_kind']);
    const table = await db.getTable(T);
    expect(table.columns).toHaveLength(11);
    expect(table.indexes).toHaveLength(2);
    expect((await db.listTables({ databaseId: 'hub' })).tables.map((t) => t.$id)).toEqual(['items']);
    expect((await db.list()).databases.map((d) => d.$id)).toEqual(['hub']);
  });

  it('answers duplicates and missing resources with the documented errors', async () => {
    await db.create({ databaseId: 'hub', name: 'Hub' });
    await expectError(db.create({ databaseId: 'hub', name: 'Again' }), 409, 'database_already_exists');
    await db.createTable({ ...T, name: 'Items' });
    await expectError(db.createTable({ ...T, name: 'Items' }), 409, 'table_already_exists');
    await expectError(db.getTable({ databaseId: 'hub', tableId: 'nope' }), 404, 'table_not_found');
    await expectError(db.get({ databaseId: 'nope' }), 404, 'database_not_found');
    await db.createIntegerColumn({ ...T, key: 'stock', required: false });
    await expectError(db.createIntegerColumn({ ...T, key: 'stock', required: false }), 409, 'column_already_exists');
    await expectError(db.createIntegerColumn({ ...T, key: 'n', required: true, xdefault: 1 }), 400, 'column_default_unsupported');
    await expectError(db.getColumn({ ...T, key: 'nope' }), 404, 'column_not_found');
    await expectError(db.createIndex({ ...T, key: 'ix', type: TablesDBIndexType.Key, columns: ['nope'] }), 400, 'column_unknown');
    await expectError(db.getIndex({ ...T, key: 'nope' }), 404, 'column_index_not_found');
    await db.delete({ databaseId: 'hub' });
    await expectError(db.get({ databaseId: 'hub' }), 404, 'database_not_found');
  });
});

describe('rows', () => {
  beforeEach(setupInventory);

  it('creates, reads, updates, upserts and deletes rows with their system fields', async () => {
    const a = await db.createRow({ ...T, rowId: 'a', data: { sku: 'A-1', seenAt: '2026-01-02T03:04:05Z', tags: ['x'] }, permissions: ['read("any")'] });
    expect(a).toMatchObject({ $id: 'a', $sequence: 1, $tableId: 'items', $databaseId: 'hub', $permissions: ['read("any")'] });
    expect(a).toMatchObject({ sku: 'A-1', stock: 0, active: true, name: null, seenAt: '2026-01-02T03:04:05.000+00:00', tags: ['x'] });
    expect(a.$createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$/);
    const b = await db.createRow({ ...T, rowId: ID.unique(), data: { sku: 'B-1' } });
    expect(b.$id).toMatch(/^[0-9a-f]{20}$/);
    expect(b.$sequence).toBe(2);
    expect(await db.getRow({ ...T, rowId: 'a' })).toEqual(a);
    const updated = await db.updateRow({ ...T, rowId: 'a', data: { name: 'Bolt', stock: 5 } });
    expect(updated).toMatchObject({ sku: 'A-1', name: 'Bolt', stock: 5, $sequence: 1, $createdAt: a.$createdAt });
    const upserted = await db.upsertRow({ ...T, rowId: 'a', data: { sku: 'A-2' } });
    expect(upserted).toMatchObject({ sku: 'A-2', name: 'Bolt', stock: 5, $sequence: 1 });
    expect(await db.upsertRow({ ...T, rowId: 'c', data: { sku: 'C-1' } })).toMatchObject({ $id: 'c', $sequence: 3, stock: 0 });
    expect((await db.getRow({ ...T, rowId: 'a', queries: [Query.select(['sku'])] })).name).toBeUndefined();
    await db.deleteRow({ ...T, rowId: 'a' });
    await expectError(db.getRow({ ...T, rowId: 'a' }), 404, 'row_not_found');
    await expectError(db.deleteRow({ ...T, rowId: 'a' }), 404, 'row_not_found');
    await expectError(db.updateRow({ ...T, rowId: 'a', data: { name: 'x' } }), 404, 'row_not_found');
    await expectError(db.createRow({ ...T, rowId: 'C', data: { sku: 'C-2' } }), 409, 'row_already_exists'); // ids compare like the collation
  });

  it('enforces column types, sizes, bounds, enums and required columns', async () => {
    for (const data of [
      { sku: 'X', nope: 1 },
      { name: 'no sku' },
      { sku: 'X', stock: 1001 },
      { sku: 'X', stock: 1.5 },
      { sku: 'X', price: 'cheap' },
      { sku: 'X', kind: 'animal' },
      { sku: 'X'.repeat(33) },
      { sku: 'X', seenAt: 'yesterday' },
      { sku: 'X', tags: 'not-an-array' },
    ]) {
      const error = await expectError(db.createRow({ ...T, rowId: ID.unique(), data }), 400, 'row_invalid_structure');
      expect(error.message).toMatch(/^Invalid document structure: /);
    }
    expect((await db.listRows(T)).total).toBe(0);
    await db.createRow({ ...T, rowId: 'a', data: { sku: 'A' } });
    await expectError(db.updateRow({ ...T, rowId: 'a', data: { sku: null } }), 400, 'row_invalid_structure');
    await expectError(db.updateRow({ ...T, rowId: 'a', data: {} }), 400, 'row_missing_payload');
  });

  it('refuses a unique index clash, ignoring case as MariaDB does, while NULLs never clash', async () => {
    await db.createIndex({ ...T, key: 'uq_name', type: TablesDBIndexType.Unique, columns: ['name'] });
    await db.createRow({ ...T, rowId: 'a', data: { sku: 'ABC' } });
    await db.createRow({ ...T, rowId: 'b', data: { sku: 'XYZ' } });
    await expectError(db.createRow({ ...T, rowId: 'c', data: { sku: 'abc' } }), 409, 'row_already_exists');
    await expectError(db.updateRow({ ...T, rowId: 'b', data: { sku: 'Abc' } }), 409, 'row_already_exists');
    expect((await db.getRow({ ...T, rowId: 'b' })).sku).toBe('XYZ');
    expect((await db.listRows(T)).total).toBe(2);
  });

  it('creates, updates and deletes rows in bulk', async () => {
    const created = await db.createRows({ ...T, rows: [{ $id: 'a', sku: 'A', stock: 1 }, { sku: 'B', stock: 2 }, { sku: 'C', stock: 3 }] });
    expect(created.total).toBe(3);
    await expectError(db.createRows({ ...T, rows: [{ sku: 'D' }, { sku: 'A' }] }), 409, 'row_already_exists');
    expect((await db.listRows(T)).total).toBe(3);
    expect((await db.updateRows({ ...T, data: { active: false }, queries: [Query.greaterThan('stock', 1)] })).total).toBe(2);
    expect((await db.deleteRows({ ...T, queries: [Query.equal('active', false)] })).total).toBe(2);
    expect((await db.listRows(T)).rows.map((r) => r.$id)).toEqual(['a']);
  });
});

describe('queries', () => {
  beforeEach(async () => {
    await setupInventory();
    const rows = [
      { $id: 'r1', sku: 'BOLT-1', name: 'Hex bolt', stock: 10, price: 0.5, kind: 'part', seenAt: '2026-01-01T00:00:00Z', tags: ['metal'] },
      { $id: 'r2', sku: 'BOLT-2', name: 'Carriage bolt', stock: 0, price: 0.75, kind: 'part', seenAt: '2026-01-02T00:00:00Z', tags: ['metal', 'zinc'] },
      { $id: 'r3', sku: 'NUT-1', name: 'Nut', stock: 250, price: 0.1, kind: 'part', tags: [] },
      { $id: 'r4', sku: 'WRENCH', name: null, stock: 3, price: 12, kind: 'tool', seenAt: '2026-01-03T00:00:00Z', active: false },
    ];
    await db.createRows({ ...T, rows });
  });

  const ids = async (queries: string[]) => (await db.listRows({ ...T, queries })).rows.map((r) => r.$id);

  it('filters with every comparison, string, null and array operator', async () => {
    expect(await ids([Query.equal('kind', ['tool', 'nothing'])])).toEqual(['r4']);
    expect(await ids([Query.notEqual('name', 'Nut')])).toEqual(['r1', 'r2']); // NULL never compares
    expect(await ids([Query.lessThan('stock', 10)])).toEqual(['r2', 'r4']);
    expect(await ids([Query.lessThanEqual('stock', 10)])).toEqual(['r1', 'r2', 'r4']);
    expect(await ids([Query.greaterThan('price', 0.5)])).toEqual(['r2', 'r4']);
    expect(await ids([Query.greaterThanEqual('price', 0.5)])).toEqual(['r1', 'r2', 'r4']);
    expect(await ids([Query.between('stock', 3, 10)])).toEqual(['r1', 'r4']);
    expect(await ids([Query.isNull('seenAt')])).toEqual(['r3']);
    expect(await ids([Query.isNotNull('name')])).toEqual(['r1', 'r2', 'r3']);
    expect(await ids([Query.startsWith('sku', 'bolt')])).toEqual(['r1', 'r2']); // collation ignores case
    expect(await ids([Query.endsWith('name', 'BOLT')])).toEqual(['r1', 'r2']);
    expect(await ids([Query.contains('name', ['age'])])).toEqual(['r2']);
    expect(await ids([Query.contains('tags', ['zinc'])])).toEqual(['r2']);
    expect(await ids([Query.greaterThan('seenAt', '2026-01-01T12:00:00.000+00:00')])).toEqual(['r2', 'r4']);
    expect(await ids([Query.equal('active', false)])).toEqual(['r4']);
    expect(await ids([Query.or([Query.equal('kind', 'tool'), Query.lessThan('price', 0.2)])])).toEqual(['r3', 'r4']);
    expect(await ids([Query.and([Query.equal('kind', 'part'), Query.greaterThan('stock', 5)])])).toEqual(['r1', 'r3']);
    expect(await ids([Query.equal('$id', ['r2', 'r3'])])).toEqual(['r2', 'r3']);
  });

  it('selects, orders, limits and offsets, and counts the total before the limit', async () => {
    const page = await db.listRows({ ...T, queries: [Query.select(['sku']), Query.orderDesc('price'), Query.limit(2), Query.offset(1)] });
    expect(page.total).toBe(4);
    expect(page.rows.map((r) => r.$id)).toEqual(['r2', 'r1']);
    expect(page.rows[0]).not.toHaveProperty('name');
    expect(page.rows[0]).toMatchObject({ $id: 'r2', sku: 'BOLT-2', $sequence: 2 });
    expect(await ids([Query.orderAsc('name')])).toEqual(['r4', 'r2', 'r1', 'r3']); // NULL first, case-insensitive
    expect(await ids([Query.orderAsc('kind'), Query.orderDesc('stock')])).toEqual(['r3', 'r1', 'r2', 'r4']);
    expect((await db.listRows({ ...T, total: false })).total).toBe(0);
  });

  it('refuses queries Appwrite refuses, without counting them as spec violations', async () => {
    await expectError(ids([Query.search('name', 'bolt')]), 400, 'general_query_invalid'); // needs a fulltext index
    await expectError(ids([Query.equal('nope', 1)]), 400, 'general_query_invalid');
    await expectError(ids([Query.equal('stock', 'ten')]), 400, 'general_query_invalid');
    await expectError(ids([Query.limit(0)]), 400, 'general_query_invalid');
    await expectError(ids([Query.or([Query.equal('kind', 'tool')])]), 400, 'general_query_invalid');
    await expectError(ids([Query.cursorAfter('missing')]), 400, 'general_cursor_not_found');
    await expectError(ids([Query.orderAsc('seenAt'), Query.cursorAfter('r3')]), 400, 'database_query_order_null');
    await db.createIndex({ ...T, key: 'ft_name', type: TablesDBIndexType.Fulltext, columns: ['name'] });
    expect(await ids([Query.search('name', 'bolt')])).toEqual(['r1', 'r2']);
  });
});

describe('paging', () => {
  it('pages by order and cursor through many rows with ties broken by $sequence', async () => {
    await db.create({ databaseId: 'hub', name: 'Hub' });
    await db.createTable({ ...T, name: 'Items' });
    await db.createIntegerColumn({ ...T, key: 'rank', required: true });
    const rows = Array.from({ length: 53 }, (_, i) => ({ $id: `row${String(i).padStart(2, '0')}`, rank: (i * 7) % 5 }));
    await db.createRows({ ...T, rows: rows.slice(0, 50) });
    await db.createRows({ ...T, rows: rows.slice(50) });
    const expected = [...rows].map((r, i) => ({ ...r, seq: i + 1 })).sort((a, b) => b.rank - a.rank || a.seq - b.seq).map((r) => r.$id);
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 20; pages++) {
      const queries = [Query.orderDesc('rank'), Query.limit(7), ...(cursor ? [Query.cursorAfter(cursor)] : [])];
      const page = await db.listRows({ ...T, queries });
      expect(page.total).toBe(53);
      seen.push(...page.rows.map((r) => r.$id));
      if (page.rows.length < 7) break;
      cursor = page.rows.at(-1)!.$id;
    }
    expect(seen).toEqual(expected);
    expect((await db.listRows(T)).rows).toHaveLength(25); // the default limit
    const before = await db.listRows({ ...T, queries: [Query.orderDesc('rank'), Query.limit(3), Query.cursorBefore(expected[10]!)] });
    expect(before.rows.map((r) => r.$id)).toEqual(expected.slice(7, 10));
  });
});

describe('increment and decrement', () => {
  beforeEach(async () => {
    await setupInventory();
    await db.createRow({ ...T, rowId: 'a', data: { sku: 'A', stock: 5, price: 1.5 } });
  });

  it('adds and subtracts within max and min bounds and changes nothing past them', async () => {
    expect((await db.incrementRowColumn({ ...T, rowId: 'a', column: 'stock', value: 3, max: 10 })).stock).toBe(8);
    const over = await expectError(db.incrementRowColumn({ ...T, rowId: 'a', column: 'stock', value: 3, max: 10 }), 400, 'column_limit_exceeded');
    expect(over.message).toContain('maximum value of 10');
    expect((await db.decrementRowColumn({ ...T, rowId: 'a', column: 'stock', value: 8, min: 0 })).stock).toBe(0);
    await expectError(db.decrementRowColumn({ ...T, rowId: 'a', column: 'stock', min: 0 }), 400, 'column_limit_exceeded');
    expect((await db.incrementRowColumn({ ...T, rowId: 'a', column: 'price', value: 0.25 })).price).toBe(1.75);
    expect((await db.getRow({ ...T, rowId: 'a' })).stock).toBe(0);
    await expectError(db.incrementRowColumn({ ...T, rowId: 'a', column: 'sku' }), 400, 'attribute_type_invalid');
    // Appwrite 1.8.1 maps a missing row here to the column error (Increment.php catches one NotFoundException).
    await expectError(db.incrementRowColumn({ ...T, rowId: 'zz', column: 'stock' }), 404, 'column_not_found');
  });
});

describe('transactions', () => {
  beforeEach(async () => {
    await setupInventory();
    await db.createRow({ ...T, rowId: 'a', data: { sku: 'A', stock: 5 } });
  });

  it('stages writes and commits them together', async () => {
    const tx = await db.createTransaction({ ttl: 60 });
    expect(tx).toMatchObject({ status: 'pending', operations: 0 });
    const staged = await db.createRow({ ...T, rowId: 'b', data: { sku: 'B' }, transactionId: tx.$id });
    expect(staged).toMatchObject({ $id: 'b', sku: 'B', $sequence: 0, $createdAt: '' }); // the staged "mock" row
    await db.updateRow({ ...T, rowId: 'a', data: { name: 'Renamed' }, transactionId: tx.$id });
    expect((await db.incrementRowColumn({ ...T, rowId: 'a', column: 'stock', value: 2, transactionId: tx.$id })).stock).toBe(2);
    expect((await db.getTransaction({ transactionId: tx.$id })).operations).toBe(3);
    expect((await db.listRows(T)).total).toBe(1);
    expect((await db.updateTransaction({ transactionId: tx.$id, commit: true })).status).toBe('committed');
    expect(await db.getRow({ ...T, rowId: 'a' })).toMatchObject({ name: 'Renamed', stock: 7 });
    expect(await db.getRow({ ...T, rowId: 'b' })).toMatchObject({ sku: 'B', $sequence: 2 });
    await expectError(db.createRow({ ...T, rowId: 'c', data: { sku: 'C' }, transactionId: tx.$id }), 400, 'transaction_not_ready');
    await expectError(db.updateTransaction({ transactionId: tx.$id, commit: true }), 400, 'transaction_not_ready');
  });

  it('lets reads with the transaction see its own staged writes', async () => {
    const { $id: transactionId } = await db.createTransaction();
    await db.createRow({ ...T, rowId: 'b', data: { sku: 'B' }, transactionId });
    await db.updateRow({ ...T, rowId: 'b', data: { stock: 9 }, transactionId });
    await db.deleteRow({ ...T, rowId: 'a', transactionId });
    expect(await db.getRow({ ...T, rowId: 'b', transactionId })).toMatchObject({ sku: 'B', stock: 9 });
    await expectError(db.getRow({ ...T, rowId: 'a', transactionId }), 404, 'row_not_found');
    expect((await db.listRows({ ...T, transactionId, queries: [Query.greaterThan('stock', 1)] })).rows.map((r) => r.$id)).toEqual(['b']);
    expect((await db.listRows(T)).rows.map((r) => r.$id)).toEqual(['a']);
    await expectError(db.getRow({ ...T, rowId: 'b' }), 404, 'row_not_found');
  });

  it('fails the commit when a staged row changed outside it, applying nothing', async () => {
    const { $id: transactionId } = await db.createTransaction();
    await db.createRow({ ...T, rowId: 'b', data: { sku: 'B' }, transactionId });
    await db.updateRow({ ...T, rowId: 'a', data: { stock: 1 }, transactionId });
    await db.updateRow({ ...T, rowId: 'a', data: { stock: 100 } });
    await expectError(db.updateTransaction({ transactionId, commit: true }), 409, 'transaction_conflict');
    expect((await db.getRow({ ...T, rowId: 'a' })).stock).toBe(100);
    await expectError(db.getRow({ ...T, rowId: 'b' }), 404, 'row_not_found');
    expect((await db.getTransaction({ transactionId })).status).toBe('failed');
  });

  it('does not conflict over a row the transaction only read, as Appwrite checks staged writes only', async () => {
    const { $id: transactionId } = await db.createTransaction();
    expect((await db.getRow({ ...T, rowId: 'a', transactionId })).stock).toBe(5);
    await db.updateRow({ ...T, rowId: 'a', data: { stock: 100 } });
    await db.createRow({ ...T, rowId: 'b', data: { sku: 'B' }, transactionId });
    await db.updateRow({ ...T, rowId: 'a', data: { stock: 6 }, transactionId }); // staged after the outside write
    expect((await db.updateTransaction({ transactionId, commit: true })).status).toBe('committed');
    expect((await db.getRow({ ...T, rowId: 'a' })).stock).toBe(6);
  });

  it('fails the commit atomically on a unique clash or a bound', async () => {
    const first = await db.createTransaction();
    await db.createRow({ ...T, rowId: 'b', data: { sku: 'B' }, transactionId: first.$id });
    await db.createRow({ ...T, rowId: 'c', data: { sku: 'a' }, transactionId: first.$id });
    await expectError(db.updateTransaction({ transactionId: first.$id, commit: true }), 409, 'transaction_conflict');
    const second = await db.createTransaction();
    await db.updateRow({ ...T, rowId: 'a', data: { name: 'x' }, transactionId: second.$id });
    await db.incrementRowColumn({ ...T, rowId: 'a', column: 'stock', value: 10, max: 10, transactionId: second.$id });
    await expectError(db.updateTransaction({ transactionId: second.$id, commit: true }), 400, 'attribute_limit_exceeded');
    expect(await db.listRows(T)).toMatchObject({ total: 1, rows: [{ $id: 'a', name: null, stock: 5 }] });
  });

  it('rolls back, and stages many operations at once', async () => {
    const rolled = await db.createTransaction();
    await db.createRow({ ...T, rowId: 'b', data: { sku: 'B' }, transactionId: rolled.$id });
    expect((await db.updateTransaction({ transactionId: rolled.$id, rollback: true })).status).toBe('failed');
    await expectError(db.getRow({ ...T, rowId: 'b' }), 404, 'row_not_found');
    await expectError(db.deleteRow({ ...T, rowId: 'a', transactionId: rolled.$id }), 400, 'transaction_not_ready');
    const tx = await db.createTransaction();
    const operations = [
      { action: 'create', ...T, rowId: 'b', data: { sku: 'B' } },
      { action: 'update', ...T, rowId: 'b', data: { stock: 4 } },
      { action: 'decrement', ...T, rowId: 'a', data: { column: 'stock', value: 5, min: 0 } },
    ];
    expect((await db.createOperations({ transactionId: tx.$id, operations })).operations).toBe(3);
    await db.updateTransaction({ transactionId: tx.$id, commit: true });
    expect((await db.listRows(T)).rows.map((r) => [r.$id, r.stock])).toEqual([['a', 0], ['b', 4]]);
    await db.deleteTransaction({ transactionId: tx.$id });
    await expectError(db.getTransaction({ transactionId: tx.$id }), 404, 'transaction_not_found');
  });

  it('refuses an expired transaction (1.8.1 sends its 410 as a 500)', async () => {
    const tx = await db.createTransaction({ ttl: 60 });
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 61_000);
      await expectError(db.createRow({ ...T, rowId: 'b', data: { sku: 'B' }, transactionId: tx.$id }), 500, 'transaction_expired');
    } finally {
      vi.useRealTimers();
    }
    await expectError(db.createTransaction({ ttl: 30 }), 400, 'general_argument_invalid');
  });
});

describe('spec checks and faults', () => {
  it('records requests the spec does not allow as violations', async () => {
    await db.create({ databaseId: 'hub', name: 'Hub' });
    const unknownField = await raw('POST', '/tablesdb', { body: { databaseId: 'x', name: 'X', colour: 'red' } });
    expect(unknownField.status).toBe(400);
    expect(await unknownField.json()).toMatchObject({ code: 400, type: 'general_argument_invalid', version: '1.8.1' });
    const wrongMethod = await raw('PATCH', '/tablesdb/transactions');
    expect(wrongMethod.status).toBe(404);
    expect(((await wrongMethod.json()) as { type: string }).type).toBe('general_route_not_found');
    const badQuery = await raw('GET', `/tablesdb?queries[0]=${encodeURIComponent('{"method":"equals","values":[1]}')}`);
    expect(((await badQuery.json()) as { type: string }).type).toBe('general_query_invalid');
    const notJson = await raw('GET', `/tablesdb?queries[0]=${encodeURIComponent('limit(5)')}`);
    expect(notJson.status).toBe(400);
    const wrongType = await raw('POST', '/tablesdb/transactions', { body: { ttl: 'long' } });
    expect(wrongType.status).toBe(400);
    const noKey = await raw('GET', '/tablesdb', { withoutKey: true });
    expect(noKey.status).toBe(401);
    expect(server.violations).toHaveLength(6);
    expect(server.violations.join('\n')).toMatch(/unknown body parameter "colour"/);
    expect(server.violations.join('\n')).toMatch(/PATCH \/v1\/tablesdb\/transactions: the spec has no such operation/);
    server.violations.length = 0;
  });

  it('answers a wrong key with 401 and a wrong project with 404', async () => {
    await expectError(connect('wrong').list(), 401, 'general_unauthorized_scope');
    const client = new Client().setEndpoint(server.url).setProject('other').setKey(server.apiKey);
    await expectError(new TablesDB(client).list(), 404, 'project_not_found');
  });

  it('injects faults the client sees as AppwriteExceptions, then recovers', async () => {
    server.injectFaults({ status: 429, count: 1 });
    await expectError(db.list(), 429, 'general_rate_limit_exceeded');
    server.injectFaults({ status: 503, count: 2, match: (method) => method === 'POST' });
    await db.list();
    await expectError(db.create({ databaseId: 'a', name: 'A' }), 503, 'general_server_error');
    await expectError(db.create({ databaseId: 'a', name: 'A' }), 503, 'general_server_error');
    await db.create({ databaseId: 'a', name: 'A' });
    server.injectFaults({ status: 500, count: 1, match: (_m, path) => path.endsWith('/tablesdb/a') });
    await expectError(db.get({ databaseId: 'a' }), 500, 'general_server_error');
    server.injectFaults({ status: 429, count: 1 });
    const limited = await raw('GET', '/tablesdb');
    expect(limited.headers.get('retry-after')).toBe('1');
    server.injectFaults({ status: 'timeout', count: 1 });
    const hung = fetch(`${server.url}/tablesdb`, { headers: { 'x-appwrite-project': server.projectId, 'x-appwrite-key': server.apiKey }, signal: AbortSignal.timeout(200) });
    await expect(hung).rejects.toThrow();
    expect(server.requests.at(-1)).toMatchObject({ method: 'GET', status: 0 });
    expect((await db.get({ databaseId: 'a' })).$id).toBe('a');
  });

  it('drops everything on reset', async () => {
    await db.create({ databaseId: 'hub', name: 'Hub' });
    server.reset();
    expect(server.requests).toEqual([]);
    expect((await db.list()).total).toBe(0);
  });
});
