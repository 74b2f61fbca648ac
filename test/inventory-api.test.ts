// The inventory over HTTP: every endpoint's good path, the bad inputs the issue names (nothing written), and
// many clients reserving one scarce SKU at once through a real socket.
import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestHub, expectProblem, type TestHub } from './helpers.ts';

let t: TestHub;
let wh1: string;
let wh2: string;

async function post(path: string, body?: unknown, status = 201) {
  const res = await t.call('POST', path, { body });
  if (res.status !== status) throw new Error(`POST ${path}: expected ${status}, got ${res.status} ${res.text}`);
  return res.body;
}

async function get(path: string) {
  const res = await t.call('GET', path);
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${res.text}`);
  return res.body;
}

async function counts() {
  const store = t.hub.deps.store;
  return { movements: await store.table('movements').count(), allocations: await store.table('allocations').count(), orders: await store.table('orders').count() };
}

async function eventTypes(): Promise<string[]> {
  const page = await t.hub.deps.store.table('events').query({ limit: 1000 });
  return page.items.map((e) => e.type);
}

beforeEach(async () => {
  t = await createTestHub();
  wh1 = (await post('/v1/locations', { code: 'WH1', name: 'Main', priority: 1 })).id;
  wh2 = (await post('/v1/locations', { code: 'WH2', name: 'Overflow', priority: 2 })).id;
});
afterEach(() => t.close());

describe('products and locations', () => {
  it('creates a product with its inventory item, finds it by SKU and product, and archives it', async () => {
    const p = await post('/v1/products', { sku: 'TSHIRT-M', name: 'T-shirt M', barcode: '0123456789012', reorderPoint: 5, attributes: { size: 'M' } });
    expect(p).toMatchObject({ sku: 'TSHIRT-M', unitOfMeasure: 'each', allowBackorders: false, status: 'active' });
    expect((await get('/v1/products?sku=TSHIRT-M')).data).toHaveLength(1);
    const item = await get(`/v1/inventory-items/by-product/${p.id}`);
    expect(item).toMatchObject({ id: p.inventoryItemId, onHand: 0, reserved: 0, averageCost: '0.00' });
    const patched = await t.call('PATCH', `/v1/products/${p.id}`, { body: { status: 'archived', sku: 'TSHIRT-MED' }, headers: { 'If-Match': '"v1"' } });
    expect(patched.status).toBe(200);
    expect((await get(`/v1/inventory-items/${p.inventoryItemId}`)).sku).toBe('TSHIRT-MED');
    expect(await eventTypes()).toEqual(expect.arrayContaining(['product.created', 'product.updated']));
  });

  it('refuses a duplicate SKU, bad fields and a delete once stock has moved', async () => {
    await post('/v1/products', { sku: 'A', name: 'A' });
    expectProblem(await t.call('POST', '/v1/products', { body: { sku: 'A', name: 'again' } }), 409, 'already_exists');
    const bad = expectProblem(await t.call('POST', '/v1/products', { body: { sku: ' padded', name: 'x', reorderPoint: 1.5, safetyStock: -1 } }), 400, 'validation_failed');
    expect(bad.errors.map((e: { field: string }) => e.field).sort()).toEqual(['/reorderPoint', '/safetyStock', '/sku']);
    const b = await post('/v1/products', { sku: 'B', name: 'B' });
    await post('/v1/stock/receipts', { locationId: wh1, lines: [{ sku: 'B', quantity: 1, unitCost: '1' }] });
    expectProblem(await t.call('DELETE', `/v1/products/${b.id}`), 409, 'in_use');
    expectProblem(await t.call('DELETE', `/v1/locations/${wh1}`), 409, 'in_use');
    const c = await post('/v1/products', { sku: 'C', name: 'C' });
    expect((await t.call('DELETE', `/v1/products/${c.id}`)).status).toBe(204);
    expect((await t.call('DELETE', `/v1/locations/${wh2}`)).status).toBe(204);
    expect(await eventTypes()).toEqual(expect.arrayContaining(['product.deleted']));
  });

  it('hides another workspace’s products', async () => {
    const p = await post('/v1/products', { sku: 'A', name: 'A' });
    const other = await t.addWorkspace('Other');
    expectProblem(await t.call('GET', `/v1/products/${p.id}`, { key: other.secret }), 404, 'not_found');
    expectProblem(await t.call('POST', '/v1/stock/receipts', { key: other.secret, body: { locationId: wh1, lines: [{ sku: 'A', quantity: 1, unitCost: '1' }] } }), 422, 'unknown_reference');
  });
});

describe('stock operations', () => {
  beforeEach(async () => {
    await post('/v1/products', { sku: 'A', name: 'A', reorderPoint: 3 });
  });

  it('receives, adjusts, transfers and returns, and reports availability per location', async () => {
    const r = await post('/v1/stock/receipts', { locationId: wh1, reference: { type: 'delivery', id: 'D-1' }, lines: [{ sku: 'A', quantity: 10, unitCost: '2.50' }] });
    expect(r.movements[0]).toMatchObject({ type: 'receipt', quantity: 10, unitCost: '2.50', value: '25.00', onHandAfter: 10 });
    await post('/v1/stock/adjustments', { locationId: wh1, reason: 'count', lines: [{ sku: 'A', onHand: 9 }] });
    await post('/v1/stock/transfers', { fromLocationId: wh1, toLocationId: wh2, lines: [{ sku: 'A', quantity: 4 }] });
    await post('/v1/stock/adjustments', { locationId: wh2, reason: 'water damage', type: 'write_off', lines: [{ sku: 'A', quantity: 1 }] });
    await post('/v1/stock/returns', { locationId: wh2, lines: [{ sku: 'A', quantity: 2 }] });
    const item = (await get('/v1/inventory-items?sku=A')).data[0];
    const av = await get(`/v1/inventory-items/${item.id}/availability`);
    expect(av).toMatchObject({ onHand: 10, reserved: 0, available: 10 });
    expect(av.locations.map((l: { code: string; onHand: number }) => [l.code, l.onHand])).toEqual([
      ['WH1', 5],
      ['WH2', 5],
    ]);
    expect((await get(`/v1/stock-levels?locationId=${wh2}`)).data[0]).toMatchObject({ sku: 'A', onHand: 5 });
  });

  it('refuses malformed money, fractional and negative quantities, and unknown SKUs and locations, writing nothing', async () => {
    const cases: [unknown, number, string, string][] = [
      [{ locationId: wh1, lines: [{ sku: 'A', quantity: 1, unitCost: 2.5 }] }, 400, 'validation_failed', '/lines/0/unitCost'],
      [{ locationId: wh1, lines: [{ sku: 'A', quantity: 1, unitCost: '2.5.0' }] }, 400, 'validation_failed', '/lines/0/unitCost'],
      [{ locationId: wh1, lines: [{ sku: 'A', quantity: 1, unitCost: '-1' }] }, 400, 'validation_failed', '/lines/0/unitCost'],
      [{ locationId: wh1, lines: [{ sku: 'A', quantity: 1, unitCost: '1.0000001' }] }, 400, 'validation_failed', '/lines/0/unitCost'],
      [{ locationId: wh1, lines: [{ sku: 'A', quantity: 1.5, unitCost: '1' }] }, 400, 'validation_failed', '/lines/0/quantity'],
      [{ locationId: wh1, lines: [{ sku: 'A', quantity: -2, unitCost: '1' }] }, 400, 'validation_failed', '/lines/0/quantity'],
      [{ locationId: wh1, lines: [{ sku: 'A', quantity: 1, unitCost: '1' }, { sku: 'NOPE', quantity: 1, unitCost: '1' }] }, 422, 'unknown_reference', '/lines/1/sku'],
      [{ locationId: 'loc_missing', lines: [{ sku: 'A', quantity: 1, unitCost: '1' }] }, 422, 'unknown_reference', '/locationId'],
    ];
    for (const [body, status, code, field] of cases) {
      const p = expectProblem(await t.call('POST', '/v1/stock/receipts', { body }), status, code);
      expect(p.errors.map((e: { field: string }) => e.field), JSON.stringify(body)).toContain(field);
    }
    expectProblem(await t.call('POST', '/v1/stock/adjustments', { body: { locationId: wh1, reason: 'x', lines: [{ sku: 'A', quantity: -1 }] } }), 409, 'insufficient_stock');
    expectProblem(await t.call('POST', '/v1/stock/adjustments', { body: { locationId: wh1, reason: 'x', lines: [{ sku: 'A', quantity: 1, onHand: 1 }] } }), 400, 'validation_failed');
    expectProblem(await t.call('POST', '/v1/stock/transfers', { body: { fromLocationId: wh1, toLocationId: wh1, lines: [{ sku: 'A', quantity: 1 }] } }), 400, 'validation_failed');
    expect(await counts()).toEqual({ movements: 0, allocations: 0, orders: 0 });
  });

  it('checks stock for lines without reserving anything', async () => {
    await post('/v1/stock/receipts', { locationId: wh1, lines: [{ sku: 'A', quantity: 3, unitCost: '1' }] });
    const res = await post('/v1/stock/check', { lines: [{ sku: 'A', quantity: 2 }, { sku: 'A', quantity: 2 }] }, 200);
    expect(res).toMatchObject({ sufficient: false, lines: [{ shortfall: 0 }, { available: 1, shortfall: 1 }] });
    expect((await counts()).allocations).toBe(0);
  });
});

describe('orders and allocations', () => {
  beforeEach(async () => {
    await post('/v1/products', { sku: 'A', name: 'A', reorderPoint: 2 });
    await post('/v1/products', { sku: 'B', name: 'B' });
    await post('/v1/stock/receipts', { locationId: wh1, lines: [{ sku: 'A', quantity: 5, unitCost: '3' }, { sku: 'B', quantity: 2, unitCost: '7' }] });
  });

  it('imports an order once per channel and external id, then follows its changes', async () => {
    const body = { channel: 'shopify', externalId: '#1001', lines: [{ lineId: 'a', sku: 'A', quantity: 2, unitPrice: '9.99' }, { lineId: 'b', sku: 'B', quantity: 1 }] };
    const created = await t.call('POST', '/v1/orders', { body });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe(`/v1/orders/${created.body.id}`);
    expect(created.body).toMatchObject({ status: 'open', allocationStatus: 'allocated', currency: 'USD' });
    expect(created.body.contentHash).toBeUndefined();
    expect(created.body.allocations).toHaveLength(2);
    const same = await t.call('POST', '/v1/orders', { body });
    expect(same.status).toBe(200);
    expect(same.body.id).toBe(created.body.id);
    expect(same.body.version).toBe(created.body.version);
    const changed = await t.call('POST', '/v1/orders', { body: { ...body, lines: [{ lineId: 'a', sku: 'A', quantity: 5 }] } });
    expect(changed.status).toBe(200);
    const allocations = (await get(`/v1/allocations/by-order/${created.body.id}`)).data;
    const open = allocations.filter((a: { status: string }) => a.status === 'created');
    expect(open.map((a: { sku: string }) => a.sku).sort()).toEqual(['A', 'A']);
    expect(allocations.find((a: { sku: string }) => a.sku === 'B').status).toBe('released');
    const items = (await get('/v1/inventory-items')).data;
    expect(Object.fromEntries(items.map((i: { sku: string; reserved: number }) => [i.sku, i.reserved]))).toEqual({ A: 5, B: 0 });
    expect(await eventTypes()).toEqual(expect.arrayContaining(['order.created', 'order.updated', 'allocation.created', 'allocation.released', 'stock.updated', 'stock.low', 'stock.out']));
  });

  it('keeps an order it cannot reserve, says what is missing, and reserves it all at once later', async () => {
    const res = await post('/v1/orders', { channel: 'web', externalId: '7', lines: [{ sku: 'A', quantity: 1 }, { sku: 'B', quantity: 3 }] });
    expect(res).toMatchObject({ allocationStatus: 'unallocated', allocations: [], allocationFailure: [{ sku: 'B', requested: 3, available: 2 }] });
    const check = await get(`/v1/orders/${res.id}/availability`);
    expect(check.sufficient).toBe(false);
    const refused = expectProblem(await t.call('POST', `/v1/orders/${res.id}/reserve`), 409, 'insufficient_stock');
    expect(refused.missing).toEqual([expect.objectContaining({ sku: 'B', requested: 3, available: 2 })]);
    expect((await counts()).allocations).toBe(0);
    expect((await eventTypes()).filter((e) => e === 'allocation.failed')).toHaveLength(2);
    await post('/v1/stock/receipts', { locationId: wh2, lines: [{ sku: 'B', quantity: 1, unitCost: '7' }] });
    const reserved = await post(`/v1/allocations`, { orderId: res.id });
    expect(reserved.data.map((a: { sku: string; locationId: string; quantity: number }) => [a.sku, a.locationId, a.quantity])).toEqual([
      ['A', wh1, 1],
      ['B', wh1, 2],
      ['B', wh2, 1],
    ]);
    expect((await get(`/v1/orders/${res.id}`)).allocationStatus).toBe('allocated');
  });

  it('moves allocations through confirm, partial fulfilment, release and cancel', async () => {
    const order = await post('/v1/orders', { channel: 'web', externalId: '8', lines: [{ lineId: '1', sku: 'A', quantity: 4 }] });
    const a = order.allocations[0];
    expect((await post(`/v1/allocations/${a.id}/confirm`, undefined, 200)).status).toBe('confirmed');
    expectProblem(await t.call('POST', `/v1/allocations/${a.id}/confirm`), 409, 'invalid_transition');
    expectProblem(await t.call('POST', `/v1/allocations/${a.id}/fulfil`, { body: { quantity: 5 } }), 409, 'quantity_exceeded');
    expectProblem(await t.call('POST', `/v1/allocations/${a.id}/release`, { body: { quantity: 5 } }), 409, 'quantity_exceeded');
    expectProblem(await t.call('POST', `/v1/allocations/${a.id}/fulfil`, { body: { quantity: 0 } }), 400, 'validation_failed');
    const part = await post(`/v1/allocations/${a.id}/fulfil`, { quantity: 1 }, 200);
    expect(part).toMatchObject({ fulfilledQuantity: 1, status: 'confirmed' });
    expect((await get(`/v1/orders/${order.id}`)).status).toBe('partially_fulfilled');
    const released = await post(`/v1/allocations/${a.id}/release`, { quantity: 1 }, 200);
    expect(released).toMatchObject({ releasedQuantity: 1, status: 'confirmed' });
    const cancelled = await post(`/v1/allocations/${a.id}/cancel`, undefined, 200);
    expect(cancelled.status).toBe('fulfilled');
    expectProblem(await t.call('POST', `/v1/allocations/${a.id}/release`), 409, 'invalid_transition');
    const sale = (await get('/v1/reports/stock-movements?type=sale')).data;
    expect(sale).toEqual([expect.objectContaining({ quantity: -1, unitCost: '3.00', value: '-3.00' })]);
    expect(await eventTypes()).toEqual(expect.arrayContaining(['allocation.confirmed', 'allocation.fulfilled', 'allocation.released', 'allocation.cancelled']));
  });

  it('fulfils and cancels whole orders, and refuses what their state does not allow', async () => {
    const o1 = await post('/v1/orders', { channel: 'web', externalId: '1', lines: [{ lineId: '1', sku: 'A', quantity: 2 }] });
    expectProblem(await t.call('POST', `/v1/orders/${o1.id}/fulfil`, { body: { lines: [{ lineId: '1', quantity: 3 }] } }), 409, 'quantity_exceeded');
    const done = await post(`/v1/orders/${o1.id}/fulfil`, undefined, 200);
    expect(done.status).toBe('fulfilled');
    expectProblem(await t.call('POST', `/v1/orders/${o1.id}/cancel`), 409, 'invalid_transition');
    expectProblem(await t.call('POST', `/v1/orders/${o1.id}/reserve`), 409, 'invalid_transition');
    const o2 = await post('/v1/orders', { channel: 'web', externalId: '2', lines: [{ sku: 'A', quantity: 1 }] });
    const released = await post(`/v1/orders/${o2.id}/release`, undefined, 200);
    expect(released.allocationStatus).toBe('unallocated');
    const cancelled = await post(`/v1/orders/${o2.id}/cancel`, undefined, 200);
    expect(cancelled.status).toBe('cancelled');
    expectProblem(await t.call('POST', '/v1/orders', { body: { channel: 'web', externalId: '2', lines: [{ sku: 'A', quantity: 2 }] } }), 409, 'invalid_transition');
    expectProblem(await t.call('POST', '/v1/orders', { body: { channel: 'web', externalId: '3', lines: [{ sku: 'A', quantity: 1 }, { sku: 'NOPE', quantity: 1 }] } }), 422, 'unknown_reference');
    expectProblem(await t.call('POST', '/v1/orders', { body: { channel: 'web', externalId: '4', lines: [{ lineId: 'x', sku: 'A', quantity: 1 }, { lineId: 'x', sku: 'B', quantity: 1 }] } }), 400, 'validation_failed');
    expect((await counts()).orders).toBe(2);
    expect(await eventTypes()).toEqual(expect.arrayContaining(['order.cancelled']));
  });

  it('reserves a batch of orders, reporting each one', async () => {
    const a = await post('/v1/orders', { channel: 'web', externalId: 'b1', reserve: false, lines: [{ sku: 'A', quantity: 4 }] });
    const b = await post('/v1/orders', { channel: 'web', externalId: 'b2', reserve: false, lines: [{ sku: 'A', quantity: 2 }] });
    const res = await post('/v1/allocations/batch', { orderIds: [a.id, b.id, 'ord_nope'] }, 200);
    expect(res.results.map((r: { status: string }) => r.status)).toEqual(['reserved', 'insufficient_stock', 'not_found']);
    expectProblem(await t.call('POST', '/v1/allocations/batch', { body: { orderIds: [] } }), 400, 'validation_failed');
  });

  it('does not oversell when many clients reserve the last units at once over HTTP', async () => {
    await post('/v1/products', { sku: 'HOT', name: 'Hot item' });
    await post('/v1/stock/receipts', { locationId: wh1, lines: [{ sku: 'HOT', quantity: 7, unitCost: '1' }] });
    await post('/v1/stock/receipts', { locationId: wh2, lines: [{ sku: 'HOT', quantity: 5, unitCost: '1' }] });
    const server = serve({ fetch: t.hub.app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise((r) => server.once('listening', r));
    const { port } = server.address() as AddressInfo;
    try {
      const clients = 60;
      const results = await Promise.all(
        Array.from({ length: clients }, (_, i) =>
          fetch(`http://127.0.0.1:${port}/v1/orders`, {
            method: 'POST',
            headers: { authorization: `Bearer ${t.adminKey}`, 'content-type': 'application/json' },
            body: JSON.stringify({ channel: 'web', externalId: `rush-${i}`, lines: [{ sku: 'HOT', quantity: 1 + (i % 2) }] }),
          }).then(async (r) => ({ status: r.status, body: (await r.json()) as { allocationStatus: string; lines: { quantity: number }[] } })),
        ),
      );
      expect(results.every((r) => r.status === 201)).toBe(true);
      const allocated = results.filter((r) => r.body.allocationStatus === 'allocated').reduce((s, r) => s + r.body.lines[0]!.quantity, 0);
      const item = (await get('/v1/inventory-items?sku=HOT')).data[0];
      expect(item).toMatchObject({ onHand: 12, reserved: allocated });
      expect(allocated).toBeLessThanOrEqual(12);
      expect(allocated).toBeGreaterThanOrEqual(11); // only a two-unit order can be refused with one unit left
      const levels = (await get(`/v1/stock-levels?sku=HOT`)).data;
      expect(levels.every((l: { onHand: number; reserved: number }) => l.reserved <= l.onHand)).toBe(true);
      expect((await get('/v1/reports/ledger-check')).ok).toBe(true);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe('purchase orders', () => {
  it('receives in parts at cost, and refuses over-receipt and receipts against a closed order', async () => {
    await post('/v1/products', { sku: 'A', name: 'A' });
    const po = await post('/v1/purchase-orders', { number: 'PO-1', supplier: { name: 'Acme Supply', email: 'orders@acme.test' }, locationId: wh1, expectedDate: '2026-03-10', lines: [{ sku: 'A', quantity: 10, unitCost: '4.00' }] });
    expect(po).toMatchObject({ status: 'open', currency: 'USD', lines: [{ lineId: '1', receivedQuantity: 0 }] });
    expectProblem(await t.call('POST', '/v1/purchase-orders', { body: { number: 'PO-1', supplier: { name: 'x' }, locationId: wh1, lines: [{ sku: 'A', quantity: 1, unitCost: '1' }] } }), 409, 'already_exists');
    expectProblem(await t.call('POST', `/v1/purchase-orders/${po.id}/receive`, { body: { lines: [{ lineId: '1', quantity: 11 }] } }), 409, 'quantity_exceeded');
    const part = await post(`/v1/purchase-orders/${po.id}/receive`, { lines: [{ lineId: '1', quantity: 4, unitCost: '4.60' }] }, 200);
    expect(part.status).toBe('partially_received');
    expect((await get('/v1/inventory-items?sku=A')).data[0]).toMatchObject({ onHand: 4, averageCost: '4.60' });
    expectProblem(await t.call('PATCH', `/v1/purchase-orders/${po.id}`, { body: { lines: [{ sku: 'A', quantity: 2, unitCost: '1' }] } }), 409, 'invalid_transition');
    const closed = await post(`/v1/purchase-orders/${po.id}/close`, undefined, 200);
    expect(closed.status).toBe('closed');
    expectProblem(await t.call('POST', `/v1/purchase-orders/${po.id}/receive`), 409, 'purchase_order_closed');
    expect(await eventTypes()).toEqual(expect.arrayContaining(['purchase_order.created', 'purchase_order.received', 'purchase_order.closed']));
  });
});

describe('reports', () => {
  it('values stock, lists and sums movements, flags low stock and suggests reorders', async () => {
    await post('/v1/products', { sku: 'A', name: 'A', reorderPoint: 5, leadTimeDays: 7 });
    await post('/v1/products', { sku: 'B', name: 'B' });
    await post('/v1/stock/receipts', { locationId: wh1, lines: [{ sku: 'A', quantity: 10, unitCost: '1.10' }, { sku: 'B', quantity: 3, unitCost: '0.333333' }] });
    const o = await post('/v1/orders', { channel: 'web', externalId: '1', lines: [{ sku: 'A', quantity: 6 }] });
    await post(`/v1/orders/${o.id}/fulfil`, undefined, 200);
    const value = await get('/v1/reports/inventory-value?groupBy=sku');
    expect(value).toMatchObject({ currency: 'USD', totalQuantity: 7, totalValue: '5.40', lines: [{ sku: 'A', onHand: 4, value: '4.40' }, { sku: 'B', onHand: 3, value: '1.00' }] });
    const summary = await get('/v1/reports/stock-movements?summary=true');
    expect(summary.totals).toEqual(expect.arrayContaining([expect.objectContaining({ type: 'sale', quantity: -6, value: '-6.60' })]));
    expectProblem(await t.call('GET', '/v1/reports/stock-movements?from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z'), 400, 'invalid_query');
    const low = await get('/v1/reports/low-stock');
    expect(low.data.map((l: { sku: string }) => l.sku)).toEqual(['A']);
    const item = (await get('/v1/inventory-items?sku=A')).data[0];
    const s = await get(`/v1/inventory-items/${item.id}/reorder-suggestion?windowDays=6`);
    expect(s).toMatchObject({ unitsSold: 6, averageDailyDemand: 1, leadTimeDemand: 7, reorderPoint: 5, shouldReorder: true, suggestedQuantity: 31 });
    expectProblem(await t.call('GET', `/v1/inventory-items/${item.id}/reorder-suggestion?windowDays=0`), 400, 'invalid_query');
    expect(await get('/v1/reports/ledger-check')).toMatchObject({ ok: true, discrepancies: [] });
  });

  it('values stock at a past moment from the ledger', async () => {
    await post('/v1/products', { sku: 'A', name: 'A' });
    await post('/v1/stock/receipts', { locationId: wh1, lines: [{ sku: 'A', quantity: 2, unitCost: '10' }] });
    const then = new Date(t.clock.now()).toISOString();
    t.clock.advance(3_600_000);
    await post('/v1/stock/receipts', { locationId: wh1, lines: [{ sku: 'A', quantity: 2, unitCost: '20' }] });
    expect((await get('/v1/reports/inventory-value')).totalValue).toBe('60.00');
    expect((await get(`/v1/reports/inventory-value?at=${encodeURIComponent(then)}`)).totalValue).toBe('20.00');
  });
});

describe('scopes', () => {
  it('lets a read-only key read stock but not move it', async () => {
    const key = await post('/v1/api-keys', { name: 'reader', scopes: ['inventory:read', 'products:read'] });
    expect((await t.call('GET', '/v1/reports/inventory-value', { key: key.secret })).status).toBe(200);
    expectProblem(await t.call('POST', '/v1/stock/receipts', { key: key.secret, body: { locationId: wh1, lines: [{ sku: 'A', quantity: 1, unitCost: '1' }] } }), 403, 'insufficient_scope');
    expectProblem(await t.call('POST', '/v1/orders', { key: key.secret, body: { channel: 'x', externalId: '1', lines: [{ sku: 'A', quantity: 1 }] } }), 403, 'insufficient_scope');
  });
});
