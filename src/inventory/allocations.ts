// Reservations of stock for order lines. Planning happens in memory against the batch, so a request that cannot
// be met in full writes nothing: all lines or none. Each allocation is created → confirmed → fulfilled, or
// released / cancelled, and every step keeps the level's reserved count equal to the open allocations.
import { HubError } from '../errors.ts';
import type { AllocationsRow, LocationsRow, NewRow, OrdersRow } from '../store/types.ts';
import { loadLocations, resolveProducts, type CatalogEntry } from './catalog.ts';
import { emit, type InventoryContext } from './context.ts';
import { available, StockBatch, type Shortfall, type WorkingLevel } from './stock-batch.ts';

export interface OrderLine {
  lineId: string;
  sku: string;
  productId: string;
  quantity: number;
  unitPrice: string | null;
  locationId?: string | null;
}

export interface ReserveRequest {
  lineId: string;
  quantity: number;
  locationId?: string | null;
}

export function openQuantity(a: Pick<AllocationsRow, 'quantity' | 'fulfilledQuantity' | 'releasedQuantity'>): number {
  return a.quantity - a.fulfilledQuantity - a.releasedQuantity;
}

export function isOpen(a: AllocationsRow): boolean {
  return a.status === 'created' || a.status === 'confirmed';
}

export async function allocationsOf(ctx: InventoryContext, orderId: string): Promise<AllocationsRow[]> {
  const page = await ctx.db.table('allocations').query({ where: { workspaceId: ctx.workspaceId, orderId }, limit: 1000 });
  return page.items;
}

async function entriesFor(ctx: InventoryContext, productIds: string[]): Promise<Map<string, CatalogEntry>> {
  const unique = [...new Set(productIds)];
  const entries = await resolveProducts(ctx, unique.map((productId, i) => ({ productId, pointer: `/products/${i}` })));
  return new Map(entries.map((e) => [e.product.id, e]));
}

export type ReserveOutcome = { ok: true; allocations: AllocationsRow[] } | { ok: false; shortfalls: Shortfall[] };

interface Piece {
  lineId: string;
  level: WorkingLevel;
  quantity: number;
}

/** What planning needs once per call, however many orders it reserves for. */
interface Planner {
  batch: StockBatch;
  locations: LocationsRow[];
  entries: Map<string, CatalogEntry>;
}

async function createPlanner(ctx: InventoryContext, productIds: string[]): Promise<Planner> {
  return { batch: new StockBatch(ctx), locations: (await loadLocations(ctx)).filter((l) => l.active), entries: await entriesFor(ctx, productIds) };
}

/**
 * Plans one order's reservation on the batch: each line takes from the active locations in priority order (or
 * from the location it names), splitting across locations when one is not enough; products that allow
 * backorders reserve the rest at the first location. When any line falls short, whatever this order took is
 * put back and the shortfalls are returned.
 */
async function plan(p: Planner, order: OrdersRow, requests: ReserveRequest[]): Promise<{ pieces: Piece[] } | { shortfalls: Shortfall[] }> {
  const lines = new Map((order.lines as OrderLine[]).map((l) => [l.lineId, l]));
  const pieces: Piece[] = [];
  const shortfalls: Shortfall[] = [];
  for (const req of requests) {
    const line = lines.get(req.lineId)!;
    const entry = p.entries.get(line.productId)!;
    const item = p.batch.track(entry.product, entry.item);
    const wanted = req.locationId ?? line.locationId ?? null;
    let candidates: WorkingLevel[];
    let backorderAt: LocationsRow | undefined;
    if (wanted) {
      const loc = p.locations.find((l) => l.id === wanted);
      candidates = loc ? [await p.batch.level(item, loc.id)] : [];
      backorderAt = loc;
    } else {
      const levels = await p.batch.levelsOf(item);
      candidates = p.locations.map((loc) => levels.find((l) => l.row.locationId === loc.id)).filter((l): l is WorkingLevel => l !== undefined);
      backorderAt = p.locations[0];
    }
    let remaining = req.quantity;
    for (const level of candidates) {
      const take = Math.min(remaining, Math.max(available(level.row), 0));
      if (take <= 0) continue;
      p.batch.reserve(level, take);
      pieces.push({ lineId: req.lineId, level, quantity: take });
      remaining -= take;
      if (remaining === 0) break;
    }
    if (remaining > 0 && entry.product.allowBackorders && backorderAt) {
      const level = await p.batch.level(item, backorderAt.id);
      p.batch.reserve(level, remaining);
      pieces.push({ lineId: req.lineId, level, quantity: remaining });
      remaining = 0;
    }
    if (remaining > 0) {
      shortfalls.push({ lineId: req.lineId, sku: line.sku, locationId: wanted, requested: req.quantity, available: req.quantity - remaining });
    }
  }
  if (shortfalls.length === 0) return { pieces };
  for (const piece of pieces) p.batch.reserve(piece.level, -piece.quantity);
  return { shortfalls };
}

/** One allocation per line and location, however many pieces the plan made. */
async function writeAllocations(ctx: InventoryContext, order: OrdersRow, pieces: Piece[]): Promise<AllocationsRow[]> {
  const lines = new Map((order.lines as OrderLine[]).map((l) => [l.lineId, l]));
  const merged = new Map<string, Piece>();
  for (const piece of pieces) {
    const key = `${piece.lineId}|${piece.level.row.locationId}`;
    const m = merged.get(key);
    if (m) m.quantity += piece.quantity;
    else merged.set(key, { ...piece });
  }
  const allocations: AllocationsRow[] = [];
  for (const piece of merged.values()) {
    const line = lines.get(piece.lineId)!;
    const row: NewRow<AllocationsRow> = {
      workspaceId: ctx.workspaceId,
      orderId: order.id,
      lineId: piece.lineId,
      productId: line.productId,
      inventoryItemId: piece.level.item.row.id,
      sku: line.sku,
      locationId: piece.level.row.locationId,
      quantity: piece.quantity,
      fulfilledQuantity: 0,
      releasedQuantity: 0,
      status: 'created',
      confirmedAt: null,
      closedAt: null,
    };
    const saved = await ctx.db.table('allocations').insert(row);
    allocations.push(saved);
    await emit(ctx, 'allocation.created', order.id, { allocation: saved });
  }
  return allocations;
}

function productIdsOf(order: OrdersRow, requests: ReserveRequest[]): string[] {
  const lines = new Map((order.lines as OrderLine[]).map((l) => [l.lineId, l]));
  return requests.map((r) => lines.get(r.lineId)!.productId);
}

/** Reserves stock for one order's lines, all or nothing: nothing is written unless every line is covered. */
export async function tryReserve(ctx: InventoryContext, order: OrdersRow, requests: ReserveRequest[]): Promise<ReserveOutcome> {
  const planner = await createPlanner(ctx, productIdsOf(order, requests));
  const planned = await plan(planner, order, requests);
  if ('shortfalls' in planned) return { ok: false, shortfalls: planned.shortfalls };
  await planner.batch.commit();
  return { ok: true, allocations: await writeAllocations(ctx, order, planned.pieces) };
}

/**
 * Reserves for many orders in one pass, each order all or nothing: one read of the stock they share, one write
 * of each level and item however many orders touch it. Orders are served in the order given.
 */
export async function tryReserveMany(ctx: InventoryContext, requests: { order: OrdersRow; lines: ReserveRequest[] }[]): Promise<ReserveOutcome[]> {
  const planner = await createPlanner(ctx, requests.flatMap((r) => productIdsOf(r.order, r.lines)));
  const planned = [];
  for (const r of requests) planned.push(await plan(planner, r.order, r.lines));
  await planner.batch.commit();
  const out: ReserveOutcome[] = [];
  for (const [i, pl] of planned.entries()) {
    out.push('shortfalls' in pl ? { ok: false, shortfalls: pl.shortfalls } : { ok: true, allocations: await writeAllocations(ctx, requests[i]!.order, pl.pieces) });
  }
  return out;
}

/** The event that says a reservation could not be made, and what was missing. */
export function recordAllocationFailure(ctx: InventoryContext, order: OrdersRow, shortfalls: Shortfall[]) {
  return emit(ctx, 'allocation.failed', order.id, { orderId: order.id, channel: order.channel, externalId: order.externalId, missing: shortfalls });
}

export type AllocationStep =
  | { kind: 'release'; allocation: AllocationsRow; quantity?: number }
  | { kind: 'cancel'; allocation: AllocationsRow }
  | { kind: 'fulfil'; allocation: AllocationsRow; quantity?: number };

function badQuantity(code: 'quantity_exceeded', a: AllocationsRow, asked: number, verb: string): HubError {
  return new HubError(code, `Allocation ${a.id} has ${openQuantity(a)} open; cannot ${verb} ${asked}`, {
    errors: [{ field: '/quantity', code: 'maximum', message: `must be at most ${openQuantity(a)}` }],
    extra: { allocationId: a.id, open: openQuantity(a) },
  });
}

/**
 * Applies release, cancel and fulfil steps to allocations in one batch: reserved units come off their levels;
 * fulfilled units leave on hand as sales at the average cost (the cost of goods sold). All steps or none.
 */
export async function applySteps(ctx: InventoryContext, steps: AllocationStep[]): Promise<AllocationsRow[]> {
  if (steps.length === 0) return [];
  const entries = await entriesFor(ctx, steps.map((s) => s.allocation.productId));
  const batch = new StockBatch(ctx);
  const updated = new Map<string, AllocationsRow>();
  const events: [string, Record<string, unknown>][] = [];
  for (const step of steps) {
    const a = { ...(updated.get(step.allocation.id) ?? step.allocation) };
    if (!isOpen(a)) {
      throw new HubError('invalid_transition', `Allocation ${a.id} is ${a.status}`, { extra: { allocationId: a.id, status: a.status } });
    }
    const open = openQuantity(a);
    const entry = entries.get(a.productId)!;
    const level = await batch.level(batch.track(entry.product, entry.item), a.locationId);
    if (step.kind === 'fulfil') {
      const q = step.quantity ?? open;
      if (q > open) throw badQuantity('quantity_exceeded', a, q, 'fulfil');
      batch.reserve(level, -q);
      batch.move(level, { type: 'sale', quantity: -q, reference: { type: 'order', id: a.orderId } });
      a.fulfilledQuantity += q;
      events.push(['allocation.fulfilled', { allocation: a, quantity: q, unitCost: level.item.row.averageCost }]);
    } else {
      const q = step.kind === 'release' ? (step.quantity ?? open) : open;
      if (q > open) throw badQuantity('quantity_exceeded', a, q, 'release');
      batch.reserve(level, -q);
      a.releasedQuantity += q;
      events.push([step.kind === 'cancel' ? 'allocation.cancelled' : 'allocation.released', { allocation: a, quantity: q }]);
    }
    if (openQuantity(a) === 0) {
      a.status = a.fulfilledQuantity > 0 ? 'fulfilled' : step.kind === 'cancel' ? 'cancelled' : 'released';
      a.closedAt = ctx.now;
    }
    updated.set(a.id, a);
  }
  await batch.commit();
  const out: AllocationsRow[] = [];
  for (const a of updated.values()) {
    const original = steps.find((s) => s.allocation.id === a.id)!.allocation;
    out.push(
      await ctx.db.table('allocations').update(
        a.id,
        { fulfilledQuantity: a.fulfilledQuantity, releasedQuantity: a.releasedQuantity, status: a.status, closedAt: a.closedAt },
        { ifVersion: original.version },
      ),
    );
  }
  for (const [type, data] of events) await emit(ctx, type, (data.allocation as AllocationsRow).orderId, data);
  return out;
}

export async function confirmAllocation(ctx: InventoryContext, a: AllocationsRow): Promise<AllocationsRow> {
  if (a.status !== 'created') {
    throw new HubError('invalid_transition', `Allocation ${a.id} is ${a.status}; only a created allocation can be confirmed`, { extra: { allocationId: a.id, status: a.status } });
  }
  const saved = await ctx.db.table('allocations').update(a.id, { status: 'confirmed', confirmedAt: ctx.now }, { ifVersion: a.version });
  await emit(ctx, 'allocation.confirmed', a.orderId, { allocation: saved });
  return saved;
}
