import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { createInventoryFixture, type InventoryFixture } from '../../test/inventory-fixture.ts';
import type { HubError } from '../errors.ts';
import { rejectedHubError } from '../../test/hub-error.ts';
import { allocationsOf, applySteps, confirmAllocation } from './allocations.ts';
import { cancelOrder, fulfilOrder, importOrder, reserveOrder, reserveOrders } from './orders.ts';
import { adjustStock, adjustStockAt, receiveStock, returnStock, transferStock } from './movements.ts';
import { closePurchaseOrder, createPurchaseOrder, receivePurchaseOrder } from './purchase-orders.ts';
import { inventoryValue, verifyLedger } from './valuation.ts';
import { demandSince, lowStock, reorderSuggestion } from './reorder.ts';
import type { LocationsRow } from '../store/types.ts';
import { resolveProducts } from './catalog.ts';
import { StockBatch, StockSession } from './stock-batch.ts';

let f: InventoryFixture;
let wh1: LocationsRow;
let wh2: LocationsRow;

async function expectHubError(p: Promise<unknown>, code: string): Promise<HubError> {
  const err = await rejectedHubError(p);
  expect(err.code).toBe(code);
  return err;
}

async function events(type: string) {
  const page = await f.store.table('events').query({ where: { type }, limit: 1000 });
  return page.items;
}

beforeEach(async () => {
  f = await createInventoryFixture();
  wh1 = await f.location('WH1', 1);
  wh2 = await f.location('WH2', 2);
});
afterEach(() => f.close());

describe('receipts and the weighted average cost', () => {
  it('averages the cost of receipts by quantity, exactly', async () => {
    await f.product('A');
    await f.run((ctx) => receiveStock(ctx, { locationId: wh1.id, lines: [{ sku: 'A', quantity: 10, unitCost: '2.00' }] }));
    await f.run((ctx) => receiveStock(ctx, { locationId: wh2.id, lines: [{ sku: 'A', quantity: 20, unitCost: '3.10' }] }));
    const item = (await f.store.table('inventory_items').query({ where: { sku: 'A' } })).items[0]!;
    expect(item.onHand).toBe(30);
    expect(item.averageCost).toBe('2.733333');
    expect((await verifyLedger(f.ctx())).discrepancies).toEqual([]);
  });

  it('refuses an unknown SKU or location and writes nothing', async () => {
    await f.product('A');
    const err = await expectHubError(
      f.run((ctx) => receiveStock(ctx, { locationId: wh1.id, lines: [{ sku: 'A', quantity: 1, unitCost: '1' }, { sku: 'NOPE', quantity: 1, unitCost: '1' }] })),
      'unknown_reference',
    );
    expect(err.errors).toEqual([expect.objectContaining({ field: '/lines/1/sku' })]);
    await expectHubError(f.run((ctx) => receiveStock(ctx, { locationId: 'loc_nope', lines: [{ sku: 'A', quantity: 1, unitCost: '1' }] })), 'unknown_reference');
    expect(await f.store.table('movements').count()).toBe(0);
  });

  it('refuses fractional, zero and negative quantities', async () => {
    await f.product('A');
    for (const quantity of [1.5, 0, -3]) {
      await expectHubError(f.run((ctx) => receiveStock(ctx, { locationId: wh1.id, lines: [{ sku: 'A', quantity, unitCost: '1' }] })), 'validation_failed');
    }
  });
});

describe('adjustments, write-offs, transfers and returns', () => {
  it('counts, corrects, writes off and transfers, keeping the ledger balanced', async () => {
    await f.product('A');
    await f.run((ctx) => receiveStock(ctx, { locationId: wh1.id, lines: [{ sku: 'A', quantity: 10, unitCost: '5' }] }));
    await f.run((ctx) => adjustStock(ctx, { locationId: wh1.id, reason: 'cycle count', lines: [{ sku: 'A', onHand: 8 }] }));
    await f.run((ctx) => adjustStock(ctx, { locationId: wh1.id, reason: 'broken', type: 'write_off', lines: [{ sku: 'A', quantity: 1 }] }));
    const t = await f.run((ctx) => transferStock(ctx, { fromLocationId: wh1.id, toLocationId: wh2.id, lines: [{ sku: 'A', quantity: 3 }] }));
    await f.run((ctx) => returnStock(ctx, { locationId: wh2.id, lines: [{ sku: 'A', quantity: 1 }] }));
    const moves = (await f.store.table('movements').query({ orderBy: { field: 'seq' } })).items;
    expect(moves.map((m) => [m.type, m.quantity, m.onHandAfter])).toEqual([
      ['receipt', 10, 10],
      ['adjustment', -2, 8],
      ['write_off', -1, 7],
      ['transfer_out', -3, 4],
      ['transfer_in', 3, 3],
      ['return', 1, 4],
    ]);
    expect(moves[3]!.reference).toEqual({ type: 'transfer', id: t.transferId });
    expect(moves.every((m) => m.averageCostAfter === '5.00')).toBe(true);
    expect((await verifyLedger(f.ctx())).discrepancies).toEqual([]);
  });

  it('reads the levels of a many-line operation together, stored and new alike, a SKU twice included', async () => {
    for (const sku of ['A', 'B', 'C', 'D']) await f.product(sku);
    await f.run((ctx) => receiveStock(ctx, { locationId: wh1.id, lines: [{ sku: 'A', quantity: 5, unitCost: '1' }, { sku: 'C', quantity: 7, unitCost: '1' }] }));
    await f.run((ctx) => receiveStock(ctx, { locationId: wh2.id, lines: [{ sku: 'B', quantity: 4, unitCost: '1' }] }));
    // Every table shares its adapter's query; the spy counts the reads of stock levels.
    const levels = f.store.table('stock_levels');
    const shared = Object.getPrototypeOf(levels) as { query: typeof levels.query };
    const query = shared.query;
    let reads = 0;
    shared.query = function (this: typeof levels, options) {
      if (this.name === 'stock_levels') reads++;
      return query.call(this, options);
    };
    onTestFinished(() => {
      shared.query = query;
    });
    // B has stock only at WH2, D nowhere: both get a new level at WH1; A is counted twice, the last count wins.
    const result = await f.run((ctx) =>
      adjustStock(ctx, { locationId: wh1.id, reason: 'count', lines: [{ sku: 'A', onHand: 3 }, { sku: 'B', onHand: 2 }, { sku: 'C', onHand: 7 }, { sku: 'D', onHand: 1 }, { sku: 'A', onHand: 6 }] }),
    );
    expect(reads).toBe(1);
    expect(result.movements.map((m) => [m.sku, m.quantity, m.onHandAfter])).toEqual([
      ['A', -2, 3],
      ['B', 2, 2],
      ['D', 1, 1],
      ['A', 3, 6],
    ]);
    const at = async (locationId: string) => Object.fromEntries((await levels.query({ where: { locationId } })).items.map((l) => [l.sku, l.onHand]));
    expect(await at(wh1.id)).toEqual({ A: 6, B: 2, C: 7, D: 1 });
    expect(await at(wh2.id)).toEqual({ B: 4 });
    // A transfer reads both locations' levels, one query each.
    reads = 0;
    await f.run((ctx) => transferStock(ctx, { fromLocationId: wh1.id, toLocationId: wh2.id, lines: [{ sku: 'A', quantity: 1 }, { sku: 'B', quantity: 2 }, { sku: 'D', quantity: 1 }] }));
    expect(reads).toBe(2);
    expect(await at(wh1.id)).toEqual({ A: 5, B: 0, C: 7, D: 0 });
    expect(await at(wh2.id)).toEqual({ A: 1, B: 6, D: 1 });
    expect((await verifyLedger(f.ctx())).discrepancies).toEqual([]);
  });

  it('adjusts several locations as one operation: the same movements as one adjustment each, all or nothing', async () => {
    for (const sku of ['A', 'B']) await f.product(sku);
    await f.run((ctx) => receiveStock(ctx, { locationId: wh1.id, lines: [{ sku: 'A', quantity: 5, unitCost: '2' }, { sku: 'B', quantity: 1, unitCost: '1' }] }));
    const result = await f.run((ctx) =>
      adjustStockAt(ctx, {
        reason: 'count',
        reference: { type: 'file_run', id: 'run_1' },
        groups: [
          { locationId: wh1.id, lines: [{ sku: 'A', onHand: 4 }, { sku: 'B', onHand: 1 }] },
          { locationId: wh2.id, lines: [{ sku: 'A', onHand: 3 }, { sku: 'B', onHand: 2 }] },
        ],
      }),
    );
    // B at WH1 is unchanged: no movement. A moves at both locations, in order, on one item's sequence.
    expect(result.movements.map((m) => [m.sku, m.locationId, m.quantity, m.onHandAfter, m.seq])).toEqual([
      ['A', wh1.id, -1, 4, 2],
      ['A', wh2.id, 3, 3, 3],
      ['B', wh2.id, 2, 2, 2],
    ]);
    expect(result.movements.every((m) => m.reason === 'count' && m.reference?.id === 'run_1')).toBe(true);
    expect((await events('stock.updated')).length).toBe(2 + 3);
    // A bad line in the second group refuses all, at a pointer that names its group.
    const before = await f.store.table('movements').count();
    const unknown = await expectHubError(
      f.run((ctx) => adjustStockAt(ctx, { reason: 'count', groups: [{ locationId: wh1.id, lines: [{ sku: 'A', onHand: 9 }] }, { locationId: wh2.id, lines: [{ sku: 'NOPE', onHand: 1 }] }] })),
      'unknown_reference',
    );
    expect(unknown.errors).toEqual([expect.objectContaining({ field: '/groups/1/lines/0/sku' })]);
    const noLocation = await expectHubError(
      f.run((ctx) => adjustStockAt(ctx, { reason: 'count', groups: [{ locationId: wh1.id, lines: [{ sku: 'A', onHand: 9 }] }, { locationId: 'loc_nope', lines: [{ sku: 'A', onHand: 1 }] }] })),
      'unknown_reference',
    );
    expect(noLocation.errors).toEqual([expect.objectContaining({ field: '/groups/1/locationId' })]);
    const short = await expectHubError(
      f.run((ctx) => adjustStockAt(ctx, { reason: 'x', groups: [{ locationId: wh1.id, lines: [{ sku: 'A', quantity: 1 }] }, { locationId: wh2.id, lines: [{ sku: 'B', quantity: -5 }] }] })),
      'insufficient_stock',
    );
    expect(short.message).toContain('B: 5 requested, 2 available');
    const none = await expectHubError(f.run((ctx) => adjustStockAt(ctx, { reason: 'x', groups: [] })), 'validation_failed');
    expect(none.errors).toEqual([expect.objectContaining({ field: '/groups', code: 'minItems' })]);
    expect(await f.store.table('movements').count()).toBe(before);
    expect((await verifyLedger(f.ctx())).discrepancies).toEqual([]);
  });

  it('will not take on hand below zero or below what is reserved', async () => {
    await f.product('A');
    await f.run((ctx) => receiveStock(ctx, { locationId: wh1.id, lines: [{ sku: 'A', quantity: 2, unitCost: '1' }] }));
    await expectHubError(f.run((ctx) => adjustStock(ctx, { locationId: wh1.id, reason: 'x', lines: [{ sku: 'A', quantity: -3 }] })), 'insufficient_stock');
    await expectHubError(f.run((ctx) => transferStock(ctx, { fromLocationId: wh1.id, toLocationId: wh2.id, lines: [{ sku: 'A', quantity: 3 }] })), 'insufficient_stock');
    await f.run((ctx) => importOrder(ctx, { channel: 'web', externalId: '1', lines: [{ sku: 'A', quantity: 2 }] }, 'USD'));
    await expectHubError(f.run((ctx) => transferStock(ctx, { fromLocationId: wh1.id, toLocationId: wh2.id, lines: [{ sku: 'A', quantity: 1 }] })), 'insufficient_stock');
    expect(await f.store.table('movements').count()).toBe(1);
  });
});

describe('orders and allocations', () => {
  it('reserves across locations in priority order, all lines or none', async () => {
    await f.product('A');
    await f.product('B');
    await f.run((ctx) => receiveStock(ctx, { locationId: wh1.id, lines: [{ sku: 'A', quantity: 2, unitCost: '1' }] }));
    await f.run((ctx) => receiveStock(ctx, { locationId: wh2.id, lines: [{ sku: 'A', quantity: 5, unitCost: '1' }, { sku: 'B', quantity: 1, unitCost: '1' }] }));
    const short = await f.run((ctx) => importOrder(ctx, { channel: 'web', externalId: '1', lines: [{ sku: 'A', quantity: 4 }, { sku: 'B', quantity: 2 }] }, 'USD'));
    expect(short.allocationFailure).toEqual([expect.objectContaining({ sku: 'B', requested: 2, available: 1 })]);
    expect(short.allocations).toEqual([]);
    expect(short.order.allocationStatus).toBe('unallocated');
    expect(await events('allocation.failed')).toHaveLength(1);
    const ok = await f.run((ctx) => importOrder(ctx, { channel: 'web', externalId: '2', lines: [{ sku: 'A', quantity: 4 }, { sku: 'B', quantity: 1 }] }, 'USD'));
    expect(ok.allocations.map((a) => [a.sku, a.locationId, a.quantity])).toEqual([
      ['A', wh1.id, 2],
      ['A', wh2.id, 2],
      ['B', wh2.id, 1],
    ]);
    expect(ok.order.allocationStatus).toBe('allocated');
    await expectHubError(reserveOrder(f.store, f.base(), short.order.id), 'insufficient_stock');
    expect(await events('allocation.failed')).toHaveLength(2);
  });

  it('reserves many orders in one pass, each all or nothing, in the order given', async () => {
    await f.product('A');
    await f.run((ctx) => receiveStock(ctx, { locationId: wh1.id, lines: [{ sku: 'A', quantity: 5, unitCost: '1' }] }));
    const ids = [];
    for (const q of [2, 4, 3]) ids.push((await f.run((ctx) => importOrder(ctx, { channel: 'web', externalId: `b${q}`, reserve: false, lines: [{ sku: 'A', quantity: q }] }, 'USD'))).order.id);
    const results = await reserveOrders(f.store, f.base(), [...ids, 'ord_missing', ids[0]!]);
    expect(results.map((r) => r.status)).toEqual(['reserved', 'insufficient_stock', 'reserved', 'not_found']);
    expect(results[1]).toMatchObject({ missing: [{ requested: 4, available: 3 }] });
    const item = (await f.store.table('inventory_items').query()).items[0]!;
    expect(item.reserved).toBe(5);
    expect((await reserveOrders(f.store, f.base(), [ids[0]!]))[0]!.status).toBe('nothing_to_reserve');
    expect(await events('allocation.failed')).toHaveLength(1);
    expect((await verifyLedger(f.ctx())).discrepancies).toEqual([]);
  });

  it('imports the same order twice as one order, and adjusts reservations when it changes', async () => {
    await f.product('A');
    await f.product('B');
    await f.run((ctx) => receiveStock(ctx, { locationId: wh1.id, lines: [{ sku: 'A', quantity: 10, unitCost: '1' }, { sku: 'B', quantity: 10, unitCost: '1' }] }));
    const input = { channel: 'shopify', externalId: '1001', lines: [{ lineId: 'l1', sku: 'A', quantity: 3 }, { lineId: 'l2', sku: 'B', quantity: 2 }] };
    const first = await f.run((ctx) => importOrder(ctx, input, 'USD'));
    const again = await f.run((ctx) => importOrder(ctx, structuredClone(input), 'USD'));
    expect(first.created).toBe(true);
    expect(again).toMatchObject({ created: false, changed: false });
    expect(again.order.id).toBe(first.order.id);
    expect(await f.store.table('orders').count()).toBe(1);
    const changed = await f.run((ctx) => importOrder(ctx, { ...input, lines: [{ lineId: 'l1', sku: 'A', quantity: 1 }, { lineId: 'l3', sku: 'B', quantity: 4 }] }, 'USD'));
    expect(changed.changed).toBe(true);
    const items = (await f.store.table('inventory_items').query()).items;
    expect(Object.fromEntries(items.map((i) => [i.sku, i.reserved]))).toEqual({ A: 1, B: 4 });
    expect((await verifyLedger(f.ctx())).discrepancies).toEqual([]);
    const cancelled = await f.run((ctx) => importOrder(ctx, { ...input, status: 'cancelled' }, 'USD'));
    expect(cancelled.order.status).toBe('cancelled');
    expect((await f.store.table('inventory_items').query()).items.every((i) => i.reserved === 0)).toBe(true);
    expect(await events('order.cancelled')).toHaveLength(1);
  });

  it('walks an allocation from created to confirmed to fulfilled, recording the cost of goods sold', async () => {
    await f.product('A', { reorderPoint: 5 });
    await f.run((ctx) => receiveStock(ctx, { locationId: wh1.id, lines: [{ sku: 'A', quantity: 10, unitCost: '4.25' }] }));
    const { order, allocations } = await f.run((ctx) => importOrder(ctx, { channel: 'web', externalId: '9', lines: [{ sku: 'A', quantity: 6 }] }, 'USD'));
    const confirmed = await f.run((ctx) => confirmAllocation(ctx, allocations[0]!));
    expect(confirmed.status).toBe('confirmed');
    await expectHubError(f.run((ctx) => confirmAllocation(ctx, confirmed)), 'invalid_transition');
    await expectHubError(f.run((ctx) => fulfilOrder(ctx, order, [{ lineId: '1', quantity: 7 }])), 'quantity_exceeded');
    const part = await f.run((ctx) => fulfilOrder(ctx, order, [{ lineId: '1', quantity: 2 }]));
    expect(part.order.status).toBe('partially_fulfilled');
    const done = await f.run((ctx) => fulfilOrder(ctx, part.order));
    expect(done.order.status).toBe('fulfilled');
    expect(done.allocations[0]!.status).toBe('fulfilled');
    const sales = (await f.store.table('movements').query({ where: { type: 'sale' } })).items;
    expect(sales.map((m) => [m.quantity, m.unitCost, m.value])).toEqual([
      [-2, '4.25', '-8.50'],
      [-4, '4.25', '-17.00'],
    ]);
    expect((await events('stock.low')).length).toBe(1);
    await expectHubError(f.run((ctx) => cancelOrder(ctx, done.order)), 'invalid_transition');
    expect((await verifyLedger(f.ctx())).discrepancies).toEqual([]);
  });

  it('refuses to release more than is open', async () => {
    await f.product('A');
    await f.run((ctx) => receiveStock(ctx, { locationId: wh1.id, lines: [{ sku: 'A', quantity: 3, unitCost: '1' }] }));
    const { allocations } = await f.run((ctx) => importOrder(ctx, { channel: 'web', externalId: '1', lines: [{ sku: 'A', quantity: 3 }] }, 'USD'));
    await expectHubError(f.run((ctx) => applySteps(ctx, [{ kind: 'release', allocation: allocations[0]!, quantity: 4 }])), 'quantity_exceeded');
    const [released] = await f.run((ctx) => applySteps(ctx, [{ kind: 'release', allocation: allocations[0]!, quantity: 1 }]));
    expect(released).toMatchObject({ status: 'created', releasedQuantity: 1 });
    const rest = await f.run((ctx) => allocationsOf(ctx, allocations[0]!.orderId));
    const [closed] = await f.run((ctx) => applySteps(ctx, [{ kind: 'release', allocation: rest[0]! }]));
    expect(closed!.status).toBe('released');
    await expectHubError(f.run((ctx) => applySteps(ctx, [{ kind: 'release', allocation: closed! }])), 'invalid_transition');
  });

  it('lets products that allow backorders reserve beyond what is on hand, but never ship it', async () => {
    await f.product('A', { allowBackorders: true });
    await f.run((ctx) => receiveStock(ctx, { locationId: wh2.id, lines: [{ sku: 'A', quantity: 1, unitCost: '1' }] }));
    const { order, allocations } = await f.run((ctx) => importOrder(ctx, { channel: 'web', externalId: '1', lines: [{ sku: 'A', quantity: 3 }] }, 'USD'));
    expect(allocations.map((a) => [a.locationId, a.quantity])).toEqual([
      [wh2.id, 1],
      [wh1.id, 2],
    ]);
    await expectHubError(f.run((ctx) => fulfilOrder(ctx, order)), 'insufficient_stock');
  });
});

describe('purchase orders', () => {
  it('receives in parts, moves the average, and refuses receipts once closed', async () => {
    await f.product('A');
    await f.run((ctx) => receiveStock(ctx, { locationId: wh1.id, lines: [{ sku: 'A', quantity: 10, unitCost: '1.00' }] }));
    const po = await f.run((ctx) => createPurchaseOrder(ctx, { supplier: { name: 'Acme Supply' }, locationId: wh1.id, lines: [{ sku: 'A', quantity: 10, unitCost: '2.00' }] }, 'USD'));
    await expectHubError(f.run((ctx) => receivePurchaseOrder(ctx, po, { lines: [{ lineId: '1', quantity: 11 }] })), 'quantity_exceeded');
    const part = await f.run((ctx) => receivePurchaseOrder(ctx, po, { lines: [{ lineId: '1', quantity: 5 }] }));
    expect(part.purchaseOrder.status).toBe('partially_received');
    const item = (await f.store.table('inventory_items').query()).items[0]!;
    expect(item.averageCost).toBe('1.333333');
    const closed = await f.run((ctx) => closePurchaseOrder(ctx, part.purchaseOrder, 'closed'));
    await expectHubError(f.run((ctx) => receivePurchaseOrder(ctx, closed, {})), 'purchase_order_closed');
    expect(await events('purchase_order.received')).toHaveLength(1);
  });
});

describe('reports', () => {
  it('values stock now and at a past moment', async () => {
    await f.product('A');
    await f.run((ctx) => receiveStock(ctx, { locationId: wh1.id, lines: [{ sku: 'A', quantity: 3, unitCost: '1.005' }] }));
    const before = new Date(f.clock.now()).toISOString();
    f.clock.advance(60_000);
    await f.run((ctx) => receiveStock(ctx, { locationId: wh2.id, lines: [{ sku: 'A', quantity: 1, unitCost: '3' }] }));
    const now = await f.run((ctx) => inventoryValue(ctx, { currency: 'USD' }));
    expect(now.lines.map((l) => [l.locationId, l.onHand, l.unitCost, l.value])).toEqual([
      [wh1.id, 3, '1.50375', '4.51'],
      [wh2.id, 1, '1.50375', '1.50'],
    ]);
    expect(now.totalValue).toBe('6.01');
    const past = await f.run((ctx) => inventoryValue(ctx, { currency: 'USD', at: before, groupBy: 'sku' }));
    expect(past.lines).toEqual([expect.objectContaining({ sku: 'A', onHand: 3, unitCost: '1.005', value: '3.02' })]);
  });

  it('suggests a reorder from recent demand, lead time, safety stock and what is on order', async () => {
    const p = await f.product('A', { leadTimeDays: 5, safetyStock: 4 });
    await f.run((ctx) => receiveStock(ctx, { locationId: wh1.id, lines: [{ sku: 'A', quantity: 100, unitCost: '1' }] }));
    const { order } = await f.run((ctx) => importOrder(ctx, { channel: 'web', externalId: '1', lines: [{ sku: 'A', quantity: 90 }] }, 'USD'));
    await f.run((ctx) => fulfilOrder(ctx, order));
    const item = (await f.store.table('inventory_items').get(p.inventoryItemId))!;
    const s = await f.run((ctx) => reorderSuggestion(ctx, item, p, { currency: 'USD' }));
    expect(s).toMatchObject({ unitsSold: 90, averageDailyDemand: 3, leadTimeDemand: 15, reorderPoint: 19, available: 10, shouldReorder: true, suggestedQuantity: 99, estimatedCost: '99.00' });
    const low = await f.run((ctx) => lowStock(ctx, { currency: 'USD' }));
    expect(low.map((l) => l.sku)).toEqual(['A']);
  });

  it('takes demand from the window\'s sales net of returns, per item, whether for one item or all', async () => {
    const a = await f.product('A');
    const b = await f.product('B');
    await f.run((ctx) => receiveStock(ctx, { locationId: wh1.id, lines: [{ sku: 'A', quantity: 100, unitCost: '1' }, { sku: 'B', quantity: 100, unitCost: '1' }] }));
    const sell = async (externalId: string, lines: { sku: string; quantity: number }[]) => {
      const { order } = await f.run((ctx) => importOrder(ctx, { channel: 'web', externalId, lines }, 'USD'));
      await f.run((ctx) => fulfilOrder(ctx, order));
    };
    await sell('old', [{ sku: 'A', quantity: 20 }]);
    f.clock.advance(40 * 86_400_000);
    await sell('1', [{ sku: 'A', quantity: 30 }, { sku: 'B', quantity: 7 }]);
    await f.run((ctx) => returnStock(ctx, { locationId: wh1.id, lines: [{ sku: 'A', quantity: 4 }] }));
    await f.run((ctx) => adjustStock(ctx, { locationId: wh1.id, reason: 'damage', lines: [{ sku: 'A', quantity: -5 }] }));
    const since = new Date(f.clock.now() - 30 * 86_400_000).toISOString();
    expect(Object.fromEntries(await f.run((ctx) => demandSince(ctx, since)))).toEqual({ [a.inventoryItemId]: 26, [b.inventoryItemId]: 7 });
    expect(Object.fromEntries(await f.run((ctx) => demandSince(ctx, since, a.inventoryItemId)))).toEqual({ [a.inventoryItemId]: 26 });
    // Over 60 days the old sale counts too.
    expect((await f.run((ctx) => demandSince(ctx, new Date(f.clock.now() - 60 * 86_400_000).toISOString(), a.inventoryItemId))).get(a.inventoryItemId)).toBe(46);
  });
});

describe('a stock session', () => {
  // Operations run one after another on shared working rows (a burst of inbound webhooks): each is checked against
  // the rows as the ones before it left them, writes its own ledger entries and events, and a refused one leaves no
  // trace; the levels and items are written once, at flush.
  it('chains operations on the working rows, undoes a refused one with its costs, and writes each row once at flush', async () => {
    await f.product('A');
    await f.product('B');
    await f.run((ctx) => receiveStock(ctx, { locationId: wh1.id, lines: [{ sku: 'A', quantity: 10, unitCost: '2.00' }, { sku: 'B', quantity: 1, unitCost: '1.00' }] }));
    const levelOf = async (sku: string) => (await f.store.table('stock_levels').query({ where: { sku, locationId: wh1.id } })).items[0]!;
    const itemOf = async (sku: string) => (await f.store.table('inventory_items').query({ where: { sku } })).items[0]!;
    const [levelBefore, itemBefore] = [await levelOf('A'), await itemOf('A')];

    await f.run(async (ctx) => {
      const session = new StockSession(ctx.workspaceId);
      const s = { ...ctx, session };
      await receiveStock(s, { locationId: wh1.id, lines: [{ sku: 'A', quantity: 5, unitCost: '3.00' }] });
      // A's line moves its average, B's line breaks a rule: the whole operation is refused and A is as it was.
      await expectHubError(adjustStock(s, { locationId: wh1.id, reason: 'recount', lines: [{ sku: 'A', quantity: 5, unitCost: '9.00' }, { sku: 'B', quantity: -100 }] }), 'insufficient_stock');
      const result = await adjustStock(s, { locationId: wh1.id, reason: 'damage', lines: [{ sku: 'A', quantity: -3 }] });
      expect(result.levels[0]).toMatchObject({ id: levelBefore.id, onHand: 12 });
      // A level it has never had: named now, written at flush.
      const at2 = await adjustStock(s, { locationId: wh2.id, reason: 'found', lines: [{ sku: 'A', quantity: 1 }] });
      expect(at2.levels[0]!.id).toMatch(/^stl_/);
      expect(await ctx.db.table('stock_levels').count({ locationId: wh2.id })).toBe(0);
      expect((await ctx.db.table('stock_levels').get(levelBefore.id))!.onHand).toBe(10);
      await session.flush(ctx.db);
      expect(await ctx.db.table('stock_levels').get(at2.levels[0]!.id)).toMatchObject({ onHand: 1 });
    });

    const [level, item] = [await levelOf('A'), await itemOf('A')];
    expect(level).toMatchObject({ onHand: 12, version: levelBefore.version + 1 });
    expect(item).toMatchObject({ onHand: 13, movementSeq: 4, averageCost: '2.333333', version: itemBefore.version + 1 });
    expect((await itemOf('B')).onHand).toBe(1);
    const moves = (await f.store.table('movements').query({ where: { sku: 'A' }, limit: 10, orderBy: { field: 'seq', direction: 'asc' } })).items;
    expect(moves.map((m) => [m.seq, m.quantity, m.onHandAfter, m.averageCostAfter])).toEqual([
      [1, 10, 10, '2.00'],
      [2, 5, 15, '2.333333'],
      [3, -3, 12, '2.333333'],
      [4, 1, 1, '2.333333'],
    ]);
    const updates = (await events('stock.updated')).filter((e) => (e.data as { sku: string }).sku === 'A' && (e.data as { locationId: string }).locationId === wh1.id);
    expect(updates.map((e) => [(e.data as { previous: { onHand: number } }).previous.onHand, (e.data as { onHand: number }).onHand])).toEqual([
      [0, 10],
      [10, 15],
      [15, 12],
    ]);
    expect((await verifyLedger(f.ctx())).discrepancies).toEqual([]);
  });

  it('is for one workspace, and is not flushed with an operation under way', async () => {
    await f.product('A');
    await f.run(async (ctx) => {
      const session = new StockSession('ws_other');
      await expect(adjustStock({ ...ctx, session }, { locationId: wh1.id, reason: 'x', lines: [{ sku: 'A', quantity: 1 }] })).rejects.toThrow(/one workspace/);
      const own = new StockSession(ctx.workspaceId);
      const batch = new StockBatch({ ...ctx, session: own });
      const [entry] = await resolveProducts({ ...ctx, session: own }, [{ sku: 'A', pointer: '/lines/0' }]);
      batch.move(await batch.level(batch.track(entry!.product, entry!.item), wh1.id), { type: 'adjustment', quantity: 1 });
      await expect(own.flush(ctx.db)).rejects.toThrow(/operation under way/);
      own.undoOp();
      await own.flush(ctx.db);
    });
    expect(await f.store.table('movements').count()).toBe(0);
  });
});
