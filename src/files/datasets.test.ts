// The export datasets over a real (in-memory SQLite) store filled through the inventory functions: each dataset's
// records, paging past one store page, the time, status and location filters, tenant isolation, and bad params.
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { thrownHubError, rejectedHubError } from '../../test/hub-error.ts';
import { createInventoryFixture, type InventoryFixture } from '../../test/inventory-fixture.ts';
import { createWorkspace } from '../bootstrap.ts';
import { inTransaction, type InventoryContext } from '../inventory/context.ts';
import { receiveStock, transferStock } from '../inventory/movements.ts';
import { cancelOrder, importOrder, publicOrder } from '../inventory/orders.ts';
import { createProduct, updateProduct } from '../inventory/products.ts';
import { inventoryValue } from '../inventory/valuation.ts';
import type { Db, LocationsRow, Store } from '../store/types.ts';
import { scanRows } from '../store/rows.ts';
import { readCsv } from './csv.ts';
import { DATASET_NAMES, DATASET_SCHEMAS, datasetColumns, readDataset, type DatasetName, type DatasetParams } from './datasets.ts';
import { drain } from './testing.ts';
import { writeRecords } from './write.ts';

type Rec = Record<string, unknown>;

let f: InventoryFixture;
let wh1: LocationsRow;
let wh2: LocationsRow;

beforeEach(async () => {
  f = await createInventoryFixture();
  wh1 = await f.location('WH1', 1);
  wh2 = await f.location('WH2', 2);
});
afterEach(() => f.close());

async function all(name: DatasetName, params?: DatasetParams, db: Db = f.store, workspaceId = f.workspaceId): Promise<Rec[]> {
  const out: Rec[] = [];
  for await (const r of readDataset({ db, workspaceId }, name, params)) out.push(r);
  return out;
}

const at = (iso: string) => f.clock.set(Date.parse(iso));

/** A store whose queries are counted, to see that lookups are per page and not per row. */
function countingStore(store: Store): { db: Db; queries: () => number } {
  let n = 0;
  const db: Db = {
    table: (name) => {
      const t = store.table(name);
      return new Proxy(t, { get: (target, p) => (p === 'query' ? (...a: Parameters<typeof t.query>) => (n++, target.query(...a)) : Reflect.get(target, p)) });
    },
    transaction: (fn) => store.transaction(fn),
    writesLeft: () => store.writesLeft(),
  };
  return { db, queries: () => n };
}

describe('stock-levels', () => {
  it('gives each level with its SKU, product, location code and availability', async () => {
    await f.product('A', { barcode: '4006381333931', unitOfMeasure: 'box' });
    await f.product('B');
    await f.run((ctx) => receiveStock(ctx, { locationId: wh1.id, lines: [{ sku: 'A', quantity: 10, unitCost: '2.00' }] }));
    await f.run((ctx) => receiveStock(ctx, { locationId: wh2.id, lines: [{ sku: 'B', quantity: 5, unitCost: '1.00' }, { sku: 'A', quantity: 1, unitCost: '2.00' }] }));
    await f.run((ctx) => importOrder(ctx, { channel: 'web', externalId: '1', lines: [{ sku: 'A', quantity: 3 }] }, 'USD'));
    const records = await all('stock-levels');
    const levels = (await f.store.table('stock_levels').query({ orderBy: { field: 'id' } })).items;
    expect(records).toEqual(
      levels.map((l) => ({
        sku: l.sku,
        productName: `Product ${l.sku}`,
        barcode: l.sku === 'A' ? '4006381333931' : null,
        unitOfMeasure: l.sku === 'A' ? 'box' : 'each',
        locationCode: l.locationId === wh1.id ? 'WH1' : 'WH2',
        locationName: l.locationId === wh1.id ? 'Location WH1' : 'Location WH2',
        onHand: l.onHand,
        reserved: l.reserved,
        available: l.onHand - l.reserved,
        updatedAt: l.updatedAt,
        productId: l.productId,
        inventoryItemId: l.inventoryItemId,
        locationId: l.locationId,
      })),
    );
    expect(records.map((r) => [r.sku, r.locationCode, r.onHand, r.reserved, r.available])).toEqual([
      ['A', 'WH1', 10, 3, 7],
      ['B', 'WH2', 5, 0, 5],
      ['A', 'WH2', 1, 0, 1],
    ]);
    expect(await all('stock-levels', { locationCode: 'WH2' })).toEqual(records.slice(1));
  });

  it('pages past the store page: 1,200 levels complete, in id order, once each, with per-page lookups', async () => {
    const wh3 = await f.location('WH3', 3);
    const skus = Array.from({ length: 400 }, (_, i) => `SKU-${String(i).padStart(4, '0')}`);
    await f.run(async (ctx) => {
      for (const sku of skus) await createProduct(ctx, { sku, name: `Product ${sku}` });
    });
    for (const loc of [wh1, wh2, wh3]) {
      await f.run((ctx) => receiveStock(ctx, { locationId: loc.id, lines: skus.map((sku) => ({ sku, quantity: 2, unitCost: '1.00' })) }));
    }
    const { db, queries } = countingStore(f.store);
    const records = await all('stock-levels', {}, db);
    expect(records).toHaveLength(1200);
    const ids = records.map((r) => `${r.inventoryItemId}|${r.locationId}`);
    expect(new Set(ids).size).toBe(1200);
    const levels = [];
    for await (const l of scanRows(f.store.table('stock_levels'), { where: { workspaceId: f.workspaceId } })) levels.push(`${l.inventoryItemId}|${l.locationId}`);
    expect(ids).toEqual(levels);
    expect(records.every((r) => r.productName === `Product ${r.sku}` && /^WH[123]$/.test(r.locationCode as string))).toBe(true);
    // 3 pages, each with its product lookups (≤ 5 of 100) and the locations once: not one query per row.
    expect(queries()).toBeLessThanOrEqual(3 + 3 * 5 + 3);
    const moves = await all('movements');
    expect(moves).toHaveLength(1200);
    expect(new Set(moves.map((m) => m.id)).size).toBe(1200);
  });
});

describe('products', () => {
  it('gives products as the API presents them, in the order of the schema fields', async () => {
    const a = await f.product('A', { attributes: { colour: 'red' }, reorderPoint: 5 });
    const b = await f.product('B', { status: 'archived' });
    const records = await all('products');
    expect(records).toEqual([a, b]);
    expect(records.map((r) => Object.keys(r))).toEqual([datasetColumns('products'), datasetColumns('products')]);
    expect(await all('products', { status: 'archived' })).toEqual([b]);
    expect(await all('products', { status: ['active', 'archived'] })).toHaveLength(2);
  });

  it('filters on updatedAt with since (inclusive) and until (exclusive)', async () => {
    at('2026-03-01T10:00:00Z');
    const a = await f.product('A');
    at('2026-03-02T10:00:00Z');
    const b = await f.product('B');
    at('2026-03-03T10:00:00Z');
    const changedA = await f.run((ctx) => updateProduct(ctx, a, { name: 'Renamed' }, a.version));
    expect(await all('products', { since: '2026-03-02T10:00:00Z' })).toEqual([changedA, b]);
    expect(await all('products', { since: '2026-03-02', until: '2026-03-03T10:00:00Z' })).toEqual([b]);
    expect(await all('products', { until: new Date('2026-03-02T10:00:00Z') })).toEqual([]);
    expect(await all('products', { since: '2026-03-02T11:00:00+01:00', until: '2026-03-02T10:00:00.001Z' })).toEqual([b]);
  });
});

describe('movements', () => {
  it('gives the ledger oldest first with location codes and references, filtered by time and location', async () => {
    await f.product('A');
    at('2026-03-01T08:00:00Z');
    await f.run((ctx) => receiveStock(ctx, { locationId: wh1.id, reason: 'delivery', reference: { type: 'delivery_note', id: 'DN-7' }, lines: [{ sku: 'A', quantity: 10, unitCost: '2.50' }] }));
    at('2026-03-02T08:00:00Z');
    const t = await f.run((ctx) => transferStock(ctx, { fromLocationId: wh1.id, toLocationId: wh2.id, lines: [{ sku: 'A', quantity: 4 }] }));
    at('2026-03-03T08:00:00Z');
    await f.run((ctx) => receiveStock(ctx, { locationId: wh2.id, lines: [{ sku: 'A', quantity: 1, unitCost: '3.00' }] }));

    const records = await all('movements');
    expect(records.map((r) => Object.keys(r))).toEqual(records.map(() => datasetColumns('movements')));
    expect(records[0]).toMatchObject({
      occurredAt: '2026-03-01T08:00:00.000Z',
      type: 'receipt',
      sku: 'A',
      locationCode: 'WH1',
      quantity: 10,
      unitCost: '2.50',
      value: '25.00',
      onHandAfter: 10,
      averageCostAfter: '2.50',
      reason: 'delivery',
      referenceType: 'delivery_note',
      referenceId: 'DN-7',
      seq: 1,
    });
    expect(records.map((r) => [r.occurredAt, r.type, r.locationCode, r.quantity, r.referenceType, r.referenceId])).toEqual([
      ['2026-03-01T08:00:00.000Z', 'receipt', 'WH1', 10, 'delivery_note', 'DN-7'],
      ['2026-03-02T08:00:00.000Z', 'transfer_out', 'WH1', -4, 'transfer', t.transferId],
      ['2026-03-02T08:00:00.000Z', 'transfer_in', 'WH2', 4, 'transfer', t.transferId],
      ['2026-03-03T08:00:00.000Z', 'receipt', 'WH2', 1, null, null],
    ]);
    expect((await all('movements', { since: '2026-03-02T08:00:00Z', until: '2026-03-03T08:00:00Z' })).map((r) => r.type)).toEqual(['transfer_out', 'transfer_in']);
    expect((await all('movements', { since: '2026-03-02T08:00:00.001Z' })).map((r) => r.type)).toEqual(['receipt']);
    expect((await all('movements', { locationCode: 'WH2' })).map((r) => r.type)).toEqual(['transfer_in', 'receipt']);
  });
});

describe('inventory-value', () => {
  it("gives the inventory value report's lines, one per product and location with stock", async () => {
    await f.product('A');
    await f.product('B');
    await f.product('C');
    await f.run((ctx) => receiveStock(ctx, { locationId: wh1.id, lines: [{ sku: 'A', quantity: 10, unitCost: '2.00' }, { sku: 'B', quantity: 3, unitCost: '0.333' }] }));
    await f.run((ctx) => receiveStock(ctx, { locationId: wh2.id, lines: [{ sku: 'A', quantity: 20, unitCost: '3.10' }] }));
    await f.run((ctx) => transferStock(ctx, { fromLocationId: wh1.id, toLocationId: wh2.id, lines: [{ sku: 'B', quantity: 3 }] }));
    const records = await all('inventory-value');
    const report = await inventoryValue(f.ctx(), { currency: 'USD', groupBy: 'sku_location' });
    const key = (r: { sku?: unknown; locationId?: unknown }) => `${r.sku}|${r.locationId}`;
    const lines = records.map((r) => ({ inventoryItemId: r.inventoryItemId, productId: r.productId, sku: r.sku, locationId: r.locationId, onHand: r.onHand, unitCost: r.unitCost, value: r.value }));
    expect(lines.sort((x, y) => key(x).localeCompare(key(y)))).toEqual([...report.lines].sort((x, y) => key(x).localeCompare(key(y))));
    // B left WH1 (a level of 0, not valued); C never had stock.
    expect(records.map((r) => [r.sku, r.locationCode, r.onHand, r.unitCost, r.value, r.currency])).toEqual([
      ['A', 'WH1', 10, '2.733333', '27.33', 'USD'],
      ['A', 'WH2', 20, '2.733333', '54.67', 'USD'],
      ['B', 'WH2', 3, '0.333', '1.00', 'USD'],
    ]);
    expect((await all('inventory-value', { locationCode: 'WH1' })).map((r) => r.sku)).toEqual(['A']);
  });

  it("rounds values to the workspace currency's minor units", async () => {
    const ws = await f.store.table('workspaces').get(f.workspaceId);
    await f.store.table('workspaces').update(ws!.id, { currency: 'JPY' });
    await f.product('A');
    await f.run((ctx) => receiveStock(ctx, { locationId: wh1.id, lines: [{ sku: 'A', quantity: 3, unitCost: '100.5' }] }));
    expect((await all('inventory-value')).map((r) => [r.value, r.currency])).toEqual([['302', 'JPY']]);
  });
});

describe('orders', () => {
  it('gives orders as the API presents them, with lines, filtered by status and updatedAt', async () => {
    await f.product('A');
    await f.run((ctx) => receiveStock(ctx, { locationId: wh1.id, lines: [{ sku: 'A', quantity: 10, unitCost: '1.00' }] }));
    at('2026-03-01T09:00:00Z');
    const first = await f.run((ctx) => importOrder(ctx, { channel: 'web', externalId: '1001', customer: { name: 'Ann' }, lines: [{ sku: 'A', quantity: 2, unitPrice: '9.90' }] }, 'EUR'));
    at('2026-03-02T09:00:00Z');
    const second = await f.run((ctx) => importOrder(ctx, { channel: 'web', externalId: '1002', lines: [{ sku: 'A', quantity: 1 }] }, 'EUR'));
    at('2026-03-03T09:00:00Z');
    const cancelled = await f.run((ctx) => cancelOrder(ctx, first.order));

    const records = await all('orders');
    const stored = await Promise.all([first.order.id, second.order.id].map((id) => f.store.table('orders').get(id)));
    expect(records).toEqual(stored.map((o) => publicOrder(o!)));
    expect(records.map((r) => Object.keys(r))).toEqual([datasetColumns('orders'), datasetColumns('orders')]);
    expect(records[0]).not.toHaveProperty('contentHash');
    expect(records[0]!.lines).toEqual([expect.objectContaining({ sku: 'A', quantity: 2, unitPrice: '9.90' })]);
    expect(await all('orders', { status: 'cancelled' })).toEqual([publicOrder(cancelled)]);
    expect((await all('orders', { status: ['open', 'partially_fulfilled'] })).map((r) => r.externalId)).toEqual(['1002']);
    // The first order changed last (cancelled on the 3rd): since the 2nd, both; until the 3rd, only the second.
    expect((await all('orders', { since: '2026-03-02T09:00:00Z' })).map((r) => r.externalId)).toEqual(['1001', '1002']);
    expect((await all('orders', { since: '2026-03-02', until: '2026-03-03T09:00:00Z' })).map((r) => r.externalId)).toEqual(['1002']);
  });
});

describe('every dataset', () => {
  it('gives records with exactly the fields its schema lists', async () => {
    await f.product('A');
    await f.run((ctx) => receiveStock(ctx, { locationId: wh1.id, lines: [{ sku: 'A', quantity: 1, unitCost: '1.00' }] }));
    await f.run((ctx) => importOrder(ctx, { channel: 'web', externalId: '1', lines: [{ sku: 'A', quantity: 1 }] }, 'USD'));
    for (const name of DATASET_NAMES) {
      const records = await all(name);
      expect(records.length, name).toBeGreaterThan(0);
      for (const r of records) expect(Object.keys(r), name).toEqual(datasetColumns(name));
      for (const field of DATASET_SCHEMAS[name].fields) {
        if (!field.nullable) expect(records.every((r) => r[field.name] !== null && r[field.name] !== undefined), `${name}.${field.name}`).toBe(true);
      }
    }
  });

  it("never gives another workspace's rows", async () => {
    const other = await createWorkspace(f.store, f.clock, { name: 'Other', actor: 'test' });
    const base = { workspaceId: other.workspace.id, now: new Date(f.clock.now()).toISOString(), correlationId: null };
    const run = <R>(fn: (ctx: InventoryContext) => Promise<R>) => inTransaction(f.store, base, fn);
    // The same SKU and location code in both, so a lookup that forgot the workspace would mix them up.
    const theirs = await f.store.table('locations').insert({ workspaceId: other.workspace.id, code: 'WH1', name: 'Theirs', type: 'warehouse', address: null, priority: 1, active: true });
    await run((ctx) => createProduct(ctx, { sku: 'A', name: 'Their A' }));
    await run((ctx) => receiveStock(ctx, { locationId: theirs.id, lines: [{ sku: 'A', quantity: 99, unitCost: '9.00' }] }));
    await run((ctx) => importOrder(ctx, { channel: 'web', externalId: '1', lines: [{ sku: 'A', quantity: 1 }] }, 'USD'));

    await f.product('A');
    await f.run((ctx) => receiveStock(ctx, { locationId: wh1.id, lines: [{ sku: 'A', quantity: 1, unitCost: '1.00' }] }));
    await f.run((ctx) => importOrder(ctx, { channel: 'web', externalId: '1', lines: [{ sku: 'A', quantity: 1 }] }, 'USD'));

    for (const name of DATASET_NAMES) {
      const ours = await all(name);
      const text = JSON.stringify(ours);
      expect(ours, name).toHaveLength(1);
      expect(text, name).not.toContain(other.workspace.id);
      expect(text, name).not.toContain(theirs.id);
      expect(text, name).not.toContain('Their A');
      const mine = await all(name, {}, f.store, other.workspace.id);
      expect(JSON.stringify(mine), name).not.toContain(f.workspaceId);
    }
    expect((await all('stock-levels', { locationCode: 'WH1' })).map((r) => r.onHand)).toEqual([1]);
  });

  it('exports as CSV through writeRecords with its schema columns', async () => {
    await f.product('A', { name: '=HYPERLINK("http://evil.example")', attributes: { colour: 'red' } });
    await f.run((ctx) => receiveStock(ctx, { locationId: wh1.id, lines: [{ sku: 'A', quantity: 4, unitCost: '1.25' }] }));
    const csv = writeRecords(readDataset({ db: f.store, workspaceId: f.workspaceId }, 'products'), { format: 'csv', options: { columns: datasetColumns('products') } });
    const { values, failure } = await drain(readCsv(csv));
    expect(failure).toBeNull();
    expect(values).toEqual([expect.objectContaining({ sku: 'A', name: `'=HYPERLINK("http://evil.example")`, attributes: '{"colour":"red"}', allowBackorders: 'false', reorderPoint: '' })]);
    const levels = writeRecords(readDataset({ db: f.store, workspaceId: f.workspaceId }, 'stock-levels'), { format: 'csv' });
    const { values: rows } = await drain(readCsv(Readable.from(levels)));
    expect(rows).toEqual([expect.objectContaining({ sku: 'A', locationCode: 'WH1', onHand: '4', available: '4' })]);
  });
});

describe('params', () => {
  const cases: [DatasetName, DatasetParams, string][] = [
    ['movements', { since: 'yesterday' }, '/params/since'],
    ['movements', { since: '2026-02-30' }, '/params/since'],
    ['movements', { until: '2026-03-01T10:00:00' }, '/params/until'],
    ['movements', { until: new Date('nope') }, '/params/until'],
    ['movements', { since: '2026-03-02', until: '2026-03-01' }, '/params/since'],
    ['stock-levels', { since: '2026-03-01' }, '/params/since'],
    ['inventory-value', { status: 'open' }, '/params/status'],
    ['orders', { locationCode: 'WH1' }, '/params/locationCode'],
    ['movements', { snce: '2026-03-01' } as DatasetParams, '/params/snce'],
    ['orders', { status: 'shipped' }, '/params/status'],
    ['orders', { status: [] }, '/params/status'],
    ['products', { status: 'open' }, '/params/status'],
    ['stock-levels', { locationCode: '' }, '/params/locationCode'],
    ['nope' as DatasetName, {}, '/dataset'],
  ];

  it.each(cases)('refuses %s with %j, naming the field, before reading', (name, params, field) => {
    const { db, queries } = countingStore(f.store);
    const err = thrownHubError(() => readDataset({ db, workspaceId: f.workspaceId }, name, params));
    expect(err.code).toBe('validation_failed');
    expect(err.errors).toEqual([expect.objectContaining({ field })]);
    expect(queries()).toBe(0);
  });

  it('reports a location code that names no location when reading starts', async () => {
    const err = await rejectedHubError(all('stock-levels', { locationCode: 'NOPE' }));
    expect(err.code).toBe('unknown_reference');
    expect(err.errors).toEqual([expect.objectContaining({ field: '/params/locationCode' })]);
    expect(await all('movements', { locationCode: 'WH1', since: '2026-03-01' })).toEqual([]);
  });
});
