// Sales orders: idempotent import keyed by (channel, external id), reservation of all lines at once, fulfilment
// and cancellation. A changed re-import adjusts the order's reservations to its new lines.
import { createHash } from 'node:crypto';
import { HubError, isHubError } from '../errors.ts';
import type { AllocationsRow, Db, OrdersRow } from '../store/types.ts';
import {
  allocationsOf,
  applySteps,
  isOpen,
  openQuantity,
  recordAllocationFailure,
  tryReserve,
  tryReserveMany,
  type AllocationStep,
  type OrderLine,
  type ReserveRequest,
} from './allocations.ts';
import { checkStock, type CheckResult } from './availability.ts';
import { resolveLocation, resolveProducts } from './catalog.ts';
import { emit, inTransaction, type InventoryContext } from './context.ts';
import { insufficient, type Shortfall } from './stock-batch.ts';
import { checkQuantity } from './movements.ts';

export interface OrderImport {
  channel: string;
  externalId: string;
  status?: 'open' | 'cancelled';
  currency?: string;
  customer?: Record<string, unknown> | null;
  shippingAddress?: Record<string, unknown> | null;
  placedAt?: string | null;
  lines: { lineId?: string; sku?: string; productId?: string; quantity: number; unitPrice?: string | null; locationId?: string | null }[];
  /** Reserve stock for the order's lines (default true). A shortfall does not fail the import. */
  reserve?: boolean;
}

export interface ImportResult {
  order: OrdersRow;
  created: boolean;
  changed: boolean;
  allocations: AllocationsRow[];
  /** What was missing when the reservation could not be made. */
  allocationFailure: Shortfall[] | null;
}

function linesOf(order: OrdersRow): OrderLine[] {
  return order.lines as OrderLine[];
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]));
  }
  return value;
}

function hashOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(sortKeys(value))).digest('hex');
}

interface LineState {
  fulfilled: number;
  open: number;
  allocations: AllocationsRow[];
}

function lineStates(allocations: AllocationsRow[]): Map<string, LineState> {
  const out = new Map<string, LineState>();
  for (const a of allocations) {
    let s = out.get(a.lineId);
    if (!s) out.set(a.lineId, (s = { fulfilled: 0, open: 0, allocations: [] }));
    s.fulfilled += a.fulfilledQuantity;
    if (isOpen(a)) {
      s.open += openQuantity(a);
      s.allocations.push(a);
    }
  }
  return out;
}

/** Recomputes the order's fulfilment and allocation status from its allocations; writes only on change. */
export async function refreshOrder(ctx: InventoryContext, order: OrdersRow, allocations?: AllocationsRow[]): Promise<OrdersRow> {
  const states = lineStates(allocations ?? (await allocationsOf(ctx, order.id)));
  let need = 0;
  let covered = 0;
  let shipped = 0;
  let allShipped = true;
  for (const line of linesOf(order)) {
    const s = states.get(line.lineId);
    const fulfilled = s?.fulfilled ?? 0;
    const lineNeed = Math.max(line.quantity - fulfilled, 0);
    need += lineNeed;
    covered += Math.min(s?.open ?? 0, lineNeed);
    shipped += fulfilled;
    if (fulfilled < line.quantity) allShipped = false;
  }
  const status: OrdersRow['status'] = order.status === 'cancelled' ? 'cancelled' : allShipped ? 'fulfilled' : shipped > 0 ? 'partially_fulfilled' : 'open';
  const allocationStatus: OrdersRow['allocationStatus'] =
    need === 0 || status === 'cancelled' ? 'not_required' : covered >= need ? 'allocated' : covered > 0 ? 'partially_allocated' : 'unallocated';
  if (status === order.status && allocationStatus === order.allocationStatus) return order;
  const saved = await ctx.db.table('orders').update(order.id, { status, allocationStatus }, { ifVersion: order.version });
  if (status !== order.status) await emit(ctx, 'order.updated', order.id, { order: publicOrder(saved), changes: ['status'] });
  return saved;
}

export function publicOrder(order: OrdersRow): Omit<OrdersRow, 'contentHash'> {
  const { contentHash: _hidden, ...rest } = order;
  return rest;
}

async function normalizeLines(ctx: InventoryContext, input: OrderImport): Promise<OrderLine[]> {
  const seen = new Set<string>();
  input.lines.forEach((l, i) => {
    checkQuantity(l.quantity, `/lines/${i}/quantity`);
    const id = l.lineId ?? String(i + 1);
    if (seen.has(id)) throw new HubError('validation_failed', `Line id ${id} is used twice`, { errors: [{ field: `/lines/${i}/lineId`, code: 'unique', message: 'is used by another line' }] });
    seen.add(id);
  });
  const entries = await resolveProducts(ctx, input.lines.map((l, i) => ({ sku: l.sku, productId: l.productId, pointer: `/lines/${i}` })));
  const checked = new Set<string>();
  for (const [i, l] of input.lines.entries()) {
    if (!l.locationId || checked.has(l.locationId)) continue;
    await resolveLocation(ctx, l.locationId, `/lines/${i}/locationId`, false);
    checked.add(l.locationId);
  }
  return input.lines.map((l, i) => ({
    lineId: l.lineId ?? String(i + 1),
    sku: entries[i]!.product.sku,
    productId: entries[i]!.product.id,
    quantity: l.quantity,
    unitPrice: l.unitPrice ?? null,
    locationId: l.locationId ?? null,
  }));
}

/** What is still to reserve per line: its unshipped quantity minus what is open. */
function outstanding(order: OrdersRow, allocations: AllocationsRow[]): ReserveRequest[] {
  const states = lineStates(allocations);
  const out: ReserveRequest[] = [];
  for (const line of linesOf(order)) {
    const s = states.get(line.lineId);
    const missing = line.quantity - (s?.fulfilled ?? 0) - (s?.open ?? 0);
    if (missing > 0) out.push({ lineId: line.lineId, quantity: missing });
  }
  return out;
}

/**
 * Imports an order: the first import creates it, an identical one changes nothing, a changed one updates it and
 * brings its reservations in line (released where lines shrank or went, reserved where they grew or appeared).
 */
export async function importOrder(ctx: InventoryContext, input: OrderImport, defaultCurrency: string): Promise<ImportResult> {
  const lines = await normalizeLines(ctx, input);
  const content = {
    status: input.status ?? 'open',
    currency: input.currency ?? defaultCurrency,
    customer: input.customer ?? null,
    shippingAddress: input.shippingAddress ?? null,
    placedAt: input.placedAt ?? null,
    lines,
  };
  const contentHash = hashOf(content);
  const found = await ctx.db.table('orders').query({ where: { workspaceId: ctx.workspaceId, channel: input.channel, externalId: input.externalId }, limit: 1 });
  const existing = found.items[0];
  if (existing && existing.contentHash === contentHash) {
    return { order: existing, created: false, changed: false, allocations: await allocationsOf(ctx, existing.id), allocationFailure: null };
  }
  const fields = { currency: content.currency, customer: content.customer, shippingAddress: content.shippingAddress, placedAt: content.placedAt, lines, contentHash };
  let order: OrdersRow;
  let allocations: AllocationsRow[];
  if (!existing) {
    order = await ctx.db.table('orders').insert({
      workspaceId: ctx.workspaceId,
      channel: input.channel,
      externalId: input.externalId,
      status: content.status,
      allocationStatus: content.status === 'cancelled' ? 'not_required' : 'unallocated',
      ...fields,
    });
    await emit(ctx, 'order.created', order.id, { order: publicOrder(order) });
    allocations = [];
  } else {
    if (existing.status === 'cancelled') {
      throw new HubError('invalid_transition', `Order ${existing.id} is cancelled; a cancelled order cannot change`, { extra: { orderId: existing.id } });
    }
    allocations = await allocationsOf(ctx, existing.id);
    const steps = planLineChanges(existing, lines, allocations);
    await applySteps(ctx, steps);
    order = await ctx.db.table('orders').update(existing.id, fields, { ifVersion: existing.version });
    await emit(ctx, 'order.updated', order.id, { order: publicOrder(order), changes: ['content'] });
    allocations = await allocationsOf(ctx, order.id);
    if (content.status === 'cancelled') {
      order = await cancelOrder(ctx, order);
      return { order, created: false, changed: true, allocations: await allocationsOf(ctx, order.id), allocationFailure: null };
    }
  }
  let allocationFailure: Shortfall[] | null = null;
  if (order.status !== 'cancelled' && input.reserve !== false) {
    const wanted = outstanding(order, allocations);
    if (wanted.length) {
      const outcome = await tryReserve(ctx, order, wanted);
      if (outcome.ok) allocations = [...allocations, ...outcome.allocations];
      else {
        allocationFailure = outcome.shortfalls;
        await recordAllocationFailure(ctx, order, outcome.shortfalls);
      }
    }
  }
  order = await refreshOrder(ctx, order, allocations);
  return { order, created: !existing, changed: true, allocations, allocationFailure };
}

/**
 * Imports an order in its own transaction. Two first imports of one order racing on a store with optimistic
 * transactions (Appwrite) meet at the unique (channel, externalId) index: the loser runs again and finds the
 * winner's order, so both callers see one order.
 */
export async function importOrderIn(db: Db, base: Omit<InventoryContext, 'db'>, input: OrderImport, defaultCurrency: string): Promise<ImportResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await inTransaction(db, base, (ctx) => importOrder(ctx, input, defaultCurrency));
    } catch (err) {
      const duplicate = isHubError(err, 'already_exists') && (err as HubError).errors?.some((e) => e.field === '/externalId');
      if (!duplicate || attempt >= 3) throw err;
    }
  }
}

/** Releases what the new lines no longer need; refuses to drop or shrink a line below what has shipped. */
function planLineChanges(order: OrdersRow, newLines: OrderLine[], allocations: AllocationsRow[]): AllocationStep[] {
  const states = lineStates(allocations);
  const next = new Map(newLines.map((l) => [l.lineId, l]));
  const steps: AllocationStep[] = [];
  for (const old of linesOf(order)) {
    const s = states.get(old.lineId);
    if (!s) continue;
    const line = next.get(old.lineId);
    const sameProduct = line && line.productId === old.productId;
    const keep = sameProduct ? line.quantity - s.fulfilled : 0;
    if (s.fulfilled > 0 && (!sameProduct || keep < 0)) {
      throw new HubError('invalid_transition', `Line ${old.lineId} has ${s.fulfilled} shipped; it cannot be removed, changed to another product or reduced below that`, {
        errors: [{ field: `/lines/${Math.max(newLines.findIndex((l) => l.lineId === old.lineId), 0)}`, code: 'shipped', message: `${s.fulfilled} units have shipped` }],
      });
    }
    let excess = s.open - Math.max(keep, 0);
    // Newest reservations go first.
    for (const a of [...s.allocations].reverse()) {
      if (excess <= 0) break;
      const q = Math.min(excess, openQuantity(a));
      steps.push({ kind: 'release', allocation: a, quantity: q });
      excess -= q;
    }
  }
  return steps;
}

export async function cancelOrder(ctx: InventoryContext, order: OrdersRow): Promise<OrdersRow> {
  if (order.status === 'cancelled') return order;
  if (order.status === 'fulfilled') throw new HubError('invalid_transition', `Order ${order.id} is fulfilled and cannot be cancelled`);
  const allocations = await allocationsOf(ctx, order.id);
  await applySteps(ctx, allocations.filter(isOpen).map((allocation) => ({ kind: 'cancel', allocation })));
  const saved = await ctx.db.table('orders').update(order.id, { status: 'cancelled', allocationStatus: 'not_required' }, { ifVersion: order.version });
  await emit(ctx, 'order.cancelled', order.id, { order: publicOrder(saved) });
  return saved;
}

export async function releaseOrder(ctx: InventoryContext, order: OrdersRow): Promise<{ order: OrdersRow; allocations: AllocationsRow[] }> {
  const open = (await allocationsOf(ctx, order.id)).filter(isOpen);
  const released = await applySteps(ctx, open.map((allocation) => ({ kind: 'release', allocation })));
  return { order: await refreshOrder(ctx, order), allocations: released };
}

function assertActive(order: OrdersRow, verb: string): void {
  if (order.status === 'cancelled' || order.status === 'fulfilled') {
    throw new HubError('invalid_transition', `Order ${order.id} is ${order.status}; cannot ${verb} it`, { extra: { orderId: order.id, status: order.status } });
  }
}

/** The requests of a reserve call: the given lines (default: everything outstanding), checked against the order. */
function reserveRequests(order: OrdersRow, allocations: AllocationsRow[], lines?: ReserveRequest[] | null): ReserveRequest[] {
  const todo = new Map(outstanding(order, allocations).map((r) => [r.lineId, r.quantity]));
  if (!lines) return [...todo].map(([lineId, quantity]) => ({ lineId, quantity }));
  const known = new Set(linesOf(order).map((l) => l.lineId));
  return lines.map((r, i) => {
    if (!known.has(r.lineId)) throw new HubError('unknown_reference', `Order ${order.id} has no line ${r.lineId}`, { errors: [{ field: `/lines/${i}/lineId`, code: 'unknown', message: 'is not a line of the order' }] });
    const left = todo.get(r.lineId) ?? 0;
    const quantity = (r as { quantity?: number }).quantity ?? left;
    if (quantity > left || quantity <= 0) {
      throw new HubError('quantity_exceeded', `Line ${r.lineId} has ${left} left to reserve`, { errors: [{ field: `/lines/${i}/quantity`, code: 'maximum', message: `must be between 1 and ${left}` }] });
    }
    todo.set(r.lineId, left - quantity);
    return { lineId: r.lineId, quantity, locationId: r.locationId ?? null };
  });
}

/**
 * Reserves an order's lines, all or nothing. When stock is short nothing is reserved, `allocation.failed` is
 * recorded (in its own transaction, so it survives the refusal) and `insufficient_stock` says what is missing.
 */
export async function reserveOrder(db: Db, base: Omit<InventoryContext, 'db'>, orderId: string, lines?: ReserveRequest[] | null): Promise<{ order: OrdersRow; allocations: AllocationsRow[] }> {
  const outcome = await inTransaction(db, base, async (ctx) => {
    const order = await loadOrder(ctx, orderId);
    assertActive(order, 'reserve');
    const existing = await allocationsOf(ctx, order.id);
    const requests = reserveRequests(order, existing, lines);
    if (requests.length === 0) return { order, result: { ok: true as const, allocations: [] } };
    for (const [i, r] of requests.entries()) if (r.locationId) await resolveLocation(ctx, r.locationId, `/lines/${i}/locationId`, true);
    const result = await tryReserve(ctx, order, requests);
    if (!result.ok) return { order, result };
    return { order: await refreshOrder(ctx, order, [...existing, ...result.allocations]), result };
  });
  if (!outcome.result.ok) {
    const shortfalls = outcome.result.shortfalls;
    await inTransaction(db, base, (ctx) => recordAllocationFailure(ctx, outcome.order, shortfalls));
    throw insufficient(shortfalls);
  }
  return { order: outcome.order, allocations: outcome.result.allocations };
}

export async function loadOrder(ctx: InventoryContext, id: string): Promise<OrdersRow> {
  const order = await ctx.db.table('orders').get(id);
  if (!order || order.workspaceId !== ctx.workspaceId) throw new HubError('not_found', `Order ${id} does not exist`);
  return order;
}

/** Ships reserved units: the given quantities per line (default: everything open), oldest allocations first. */
export async function fulfilOrder(ctx: InventoryContext, order: OrdersRow, lines?: { lineId: string; quantity?: number }[] | null): Promise<{ order: OrdersRow; allocations: AllocationsRow[] }> {
  assertActive(order, 'fulfil');
  const allocations = await allocationsOf(ctx, order.id);
  const states = lineStates(allocations);
  const steps: AllocationStep[] = [];
  const wanted: { lineId: string; quantity?: number }[] = lines ?? [...states].filter(([, s]) => s.open > 0).map(([lineId]) => ({ lineId }));
  if (wanted.length === 0) throw new HubError('invalid_transition', `Order ${order.id} has nothing reserved to fulfil`);
  for (const [i, w] of wanted.entries()) {
    const s = states.get(w.lineId);
    const open = s?.open ?? 0;
    const q = w.quantity ?? open;
    if (q > open || q <= 0) {
      throw new HubError('quantity_exceeded', `Line ${w.lineId} has ${open} reserved; cannot fulfil ${q}`, { errors: [{ field: `/lines/${i}/quantity`, code: 'maximum', message: `must be between 1 and ${open}` }] });
    }
    let left = q;
    for (const a of s!.allocations) {
      if (left === 0) break;
      const take = Math.min(left, openQuantity(a));
      steps.push({ kind: 'fulfil', allocation: a, quantity: take });
      left -= take;
    }
  }
  const changed = await applySteps(ctx, steps);
  return { order: await refreshOrder(ctx, order), allocations: changed };
}

/** Whether what the order still needs reserved could be reserved now; nothing is reserved. */
export async function checkOrderStock(ctx: InventoryContext, order: OrdersRow): Promise<CheckResult> {
  if (order.status === 'cancelled' || order.status === 'fulfilled') return { sufficient: true, lines: [] };
  const lines = new Map(linesOf(order).map((l) => [l.lineId, l]));
  const todo = outstanding(order, await allocationsOf(ctx, order.id));
  if (todo.length === 0) return { sufficient: true, lines: [] };
  return checkStock(
    ctx,
    todo.map((r) => {
      const line = lines.get(r.lineId)!;
      return { productId: line.productId, quantity: r.quantity, ...(line.locationId ? { locationId: line.locationId } : {}) };
    }),
  );
}

export type BatchReserveResult =
  | { orderId: string; status: 'reserved'; allocations: AllocationsRow[] }
  | { orderId: string; status: 'insufficient_stock'; missing: Shortfall[] }
  | { orderId: string; status: 'not_found' | 'not_reservable' | 'nothing_to_reserve' };

/**
 * Reserves what many orders still need, each order all or nothing, in one transaction and one pass over the
 * stock they share (one write per stock level however many orders it serves). Orders are served in the order
 * given; those that cannot be covered get `allocation.failed` and keep nothing.
 */
export async function reserveOrders(db: Db, base: Omit<InventoryContext, 'db'>, orderIds: string[]): Promise<BatchReserveResult[]> {
  return inTransaction(db, base, async (ctx) => {
    const unique = [...new Set(orderIds)];
    const orders = new Map<string, OrdersRow>();
    const allocations = new Map<string, AllocationsRow[]>();
    for (let i = 0; i < unique.length; i += 200) {
      const ids = unique.slice(i, i + 200);
      for (const o of (await ctx.db.table('orders').query({ where: { workspaceId: ctx.workspaceId, id: { in: ids } }, limit: ids.length })).items) orders.set(o.id, o);
      for (const a of (await ctx.db.table('allocations').query({ where: { workspaceId: ctx.workspaceId, orderId: { in: ids } }, limit: 1000 })).items) {
        allocations.set(a.orderId, [...(allocations.get(a.orderId) ?? []), a]);
      }
    }
    const results = new Map<string, BatchReserveResult>();
    const requests: { order: OrdersRow; lines: ReserveRequest[] }[] = [];
    for (const id of unique) {
      const order = orders.get(id);
      if (!order) results.set(id, { orderId: id, status: 'not_found' });
      else if (order.status === 'cancelled' || order.status === 'fulfilled') results.set(id, { orderId: id, status: 'not_reservable' });
      else {
        const lines = outstanding(order, allocations.get(id) ?? []);
        if (lines.length) requests.push({ order, lines });
        else results.set(id, { orderId: id, status: 'nothing_to_reserve' });
      }
    }
    const outcomes = await tryReserveMany(ctx, requests);
    for (const [i, outcome] of outcomes.entries()) {
      const order = requests[i]!.order;
      if (outcome.ok) {
        await refreshOrder(ctx, order, [...(allocations.get(order.id) ?? []), ...outcome.allocations]);
        results.set(order.id, { orderId: order.id, status: 'reserved', allocations: outcome.allocations });
      } else {
        await recordAllocationFailure(ctx, order, outcome.shortfalls);
        results.set(order.id, { orderId: order.id, status: 'insufficient_stock', missing: outcome.shortfalls });
      }
    }
    return unique.map((id) => results.get(id)!);
  });
}
