// Random inventory workloads for property tests: commands over a few products, locations and orders, run in
// concurrent rounds against the library, then every invariant of the canonical model checked.
import fc from 'fast-check';
import { expect } from 'vitest';
import { isHubError } from '../src/errors.ts';
import { allocationsOf, applySteps, confirmAllocation, isOpen } from '../src/inventory/allocations.ts';
import { adjustStock, receiveStock, returnStock, transferStock } from '../src/inventory/movements.ts';
import { cancelOrder, fulfilOrder, importOrderIn, loadOrder, refreshOrder, releaseOrder, reserveOrder } from '../src/inventory/orders.ts';
import { available } from '../src/inventory/stock-batch.ts';
import { verifyLedger } from '../src/inventory/valuation.ts';
import type { LocationsRow, ProductsRow } from '../src/store/types.ts';
import type { InventoryFixture } from './inventory-fixture.ts';

const P = 3;
const L = 2;
const O = 6;

export type Command =
  | { op: 'receive'; p: number; l: number; q: number; cost: string }
  | { op: 'adjust'; p: number; l: number; delta: number }
  | { op: 'writeOff'; p: number; l: number; q: number }
  | { op: 'transfer'; p: number; l: number; q: number }
  | { op: 'return'; p: number; l: number; q: number }
  | { op: 'import'; o: number; lines: { p: number; q: number }[]; reserve: boolean }
  | { op: 'reserve' | 'release' | 'cancel'; o: number }
  | { op: 'fulfil'; o: number; partial: boolean }
  | { op: 'step'; o: number; kind: 'confirm' | 'release' | 'fulfil' | 'cancel'; q: number | null };

const p = fc.integer({ min: 0, max: P - 1 });
const l = fc.integer({ min: 0, max: L - 1 });
const o = fc.integer({ min: 0, max: O - 1 });
const q = fc.integer({ min: 1, max: 6 });
const cost = fc.tuple(fc.integer({ min: 0, max: 99 }), fc.integer({ min: 0, max: 999_999 })).map(([w, f]) => `${w}.${String(f).padStart(6, '0')}`);

export const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('receive' as const), p, l, q, cost }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('adjust' as const), p, l, delta: fc.integer({ min: -4, max: 4 }).filter((d) => d !== 0) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('writeOff' as const), p, l, q }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('transfer' as const), p, l, q }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('return' as const), p, l, q }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('import' as const), o, lines: fc.array(fc.record({ p, q }), { minLength: 1, maxLength: 3 }), reserve: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom('reserve' as const, 'release' as const, 'cancel' as const), o }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('fulfil' as const), o, partial: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('step' as const), o, kind: fc.constantFrom('confirm' as const, 'release' as const, 'fulfil' as const, 'cancel' as const), q: fc.option(fc.integer({ min: 1, max: 3 })) }) },
);

/** Rounds of commands; the commands of one round run at the same time. */
export const workloadArb = (rounds: number, width: number) =>
  fc.array(fc.array(commandArb, { minLength: 1, maxLength: width }), { minLength: Math.min(5, rounds), maxLength: rounds });

/** Refusals a valid workload may meet; anything else is a bug. */
const EXPECTED = new Set(['insufficient_stock', 'quantity_exceeded', 'invalid_transition', 'not_found']);

export interface World {
  f: InventoryFixture;
  products: ProductsRow[];
  locations: LocationsRow[];
}

export async function createWorld(f: InventoryFixture): Promise<World> {
  const locations = [await f.location('L0', 1), await f.location('L1', 2)];
  const products = [await f.product('P0'), await f.product('P1', { reorderPoint: 3 }), await f.product('P2', { allowBackorders: true })];
  // Some stock to start with, so that reservations meet both plenty and scarcity.
  for (const [i, loc] of locations.entries()) {
    await f.run((ctx) => receiveStock(ctx, { locationId: loc.id, lines: products.map((p, j) => ({ sku: p.sku, quantity: 2 + ((i + j) % 3) * 3, unitCost: `${j + 1}.25` })) }));
  }
  return { f, products, locations };
}

async function orderId(w: World, index: number): Promise<string | null> {
  const page = await w.f.store.table('orders').query({ where: { workspaceId: w.f.workspaceId, channel: 'prop', externalId: `o${index}` }, limit: 1 });
  return page.items[0]?.id ?? null;
}

export async function runCommand(w: World, c: Command, tolerate: Set<string> = EXPECTED): Promise<void> {
  const { f, products, locations } = w;
  const sku = (i: number) => products[i]!.sku;
  const loc = (i: number) => locations[i]!.id;
  try {
    switch (c.op) {
      case 'receive':
        await f.run((ctx) => receiveStock(ctx, { locationId: loc(c.l), lines: [{ sku: sku(c.p), quantity: c.q, unitCost: c.cost }] }));
        return;
      case 'adjust':
        await f.run((ctx) => adjustStock(ctx, { locationId: loc(c.l), reason: 'prop', lines: [{ sku: sku(c.p), quantity: c.delta }] }));
        return;
      case 'writeOff':
        await f.run((ctx) => adjustStock(ctx, { locationId: loc(c.l), reason: 'prop', type: 'write_off', lines: [{ sku: sku(c.p), quantity: c.q }] }));
        return;
      case 'transfer':
        await f.run((ctx) => transferStock(ctx, { fromLocationId: loc(c.l), toLocationId: loc(1 - c.l), lines: [{ sku: sku(c.p), quantity: c.q }] }));
        return;
      case 'return':
        await f.run((ctx) => returnStock(ctx, { locationId: loc(c.l), lines: [{ sku: sku(c.p), quantity: c.q }] }));
        return;
      case 'import':
        await importOrderIn(f.store, f.base(), { channel: 'prop', externalId: `o${c.o}`, reserve: c.reserve, lines: c.lines.map((x, i) => ({ lineId: `l${i}`, sku: sku(x.p), quantity: x.q })) }, 'USD');
        return;
    }
    const id = await orderId(w, c.o);
    if (!id) return;
    switch (c.op) {
      case 'reserve':
        await reserveOrder(f.store, f.base(), id);
        return;
      case 'release':
        await f.run(async (ctx) => releaseOrder(ctx, await loadOrder(ctx, id)));
        return;
      case 'cancel':
        await f.run(async (ctx) => cancelOrder(ctx, await loadOrder(ctx, id)));
        return;
      case 'fulfil':
        await f.run(async (ctx) => {
          const order = await loadOrder(ctx, id);
          const open = (await allocationsOf(ctx, id)).filter(isOpen);
          return fulfilOrder(ctx, order, c.partial && open[0] ? [{ lineId: open[0].lineId, quantity: 1 }] : null);
        });
        return;
      case 'step':
        await f.run(async (ctx) => {
          const a = (await allocationsOf(ctx, id)).find(isOpen);
          if (!a) return;
          if (c.kind === 'confirm') await confirmAllocation(ctx, a);
          else await applySteps(ctx, [c.kind === 'cancel' ? { kind: 'cancel', allocation: a } : { kind: c.kind, allocation: a, quantity: c.q ?? undefined }]);
          await refreshOrder(ctx, await loadOrder(ctx, id));
        });
        return;
    }
  } catch (err) {
    if (isHubError(err) && tolerate.has(err.code)) return;
    throw err;
  }
}

export async function runWorkload(w: World, rounds: Command[][], tolerate?: Set<string>): Promise<void> {
  for (const round of rounds) await Promise.all(round.map((c) => runCommand(w, c, tolerate)));
}

/** Every invariant of the model, checked against what is stored. */
export async function checkInvariants(w: World): Promise<void> {
  const { f, products } = w;
  const ledger = await verifyLedger(f.ctx());
  expect(ledger.discrepancies).toEqual([]);
  const levels = (await f.store.table('stock_levels').query({ limit: 1000 })).items;
  const items = (await f.store.table('inventory_items').query({ limit: 1000 })).items;
  for (const level of levels) {
    const product = products.find((x) => x.id === level.productId)!;
    expect(level.onHand, `on hand of ${level.sku}`).toBeGreaterThanOrEqual(0);
    expect(level.reserved, `reserved of ${level.sku}`).toBeGreaterThanOrEqual(0);
    if (!product.allowBackorders) expect(available(level), `available of ${level.sku}`).toBeGreaterThanOrEqual(0);
  }
  for (const item of items) {
    const mine = levels.filter((x) => x.inventoryItemId === item.id);
    expect(item.onHand).toBe(mine.reduce((s, x) => s + x.onHand, 0));
    expect(item.reserved).toBe(mine.reduce((s, x) => s + x.reserved, 0));
  }
  for (const a of (await f.store.table('allocations').query({ limit: 1000 })).items) {
    expect(a.fulfilledQuantity + a.releasedQuantity).toBeLessThanOrEqual(a.quantity);
    expect(isOpen(a)).toBe(a.fulfilledQuantity + a.releasedQuantity < a.quantity);
  }
  // Sold units left through sales only: what came in minus what is held equals what left.
  const moves = (await f.store.table('movements').query({ limit: 1000 })).items;
  const fulfilled = (await f.store.table('allocations').query({ limit: 1000 })).items.reduce((s, a) => s + a.fulfilledQuantity, 0);
  expect(moves.filter((m) => m.type === 'sale').reduce((s, m) => s - m.quantity, 0)).toBe(fulfilled);
}
