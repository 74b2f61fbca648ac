// Purchase orders: stock expected from a supplier. Receiving records receipts at the line's cost (moving the
// weighted average), partial receipts included; a closed, cancelled or fully received order takes no more.
import { HubError } from '../errors.ts';
import { ulid } from '../lib/ids.ts';
import { toMicros } from '../lib/decimal.ts';
import type { PurchaseOrdersRow } from '../store/types.ts';
import { resolveLocation, resolveProducts } from './catalog.ts';
import { emit, type InventoryContext } from './context.ts';
import { checkQuantity } from './movements.ts';
import { StockBatch } from './stock-batch.ts';

export interface PoLine {
  lineId: string;
  sku: string;
  productId: string;
  quantity: number;
  receivedQuantity: number;
  unitCost: string;
}

export interface PurchaseOrderInput {
  number?: string;
  supplier: { name: string; reference?: string; email?: string };
  locationId: string;
  status?: 'draft' | 'open';
  expectedDate?: string | null;
  currency?: string;
  notes?: string | null;
  lines: { lineId?: string; sku?: string; productId?: string; quantity: number; unitCost: string }[];
}

export type PurchaseOrderPatch = Partial<Omit<PurchaseOrderInput, 'status'>> & { status?: 'open' };

export function poLines(po: PurchaseOrdersRow): PoLine[] {
  return po.lines as PoLine[];
}

async function buildLines(ctx: InventoryContext, lines: PurchaseOrderInput['lines'], previous: PoLine[] = []): Promise<PoLine[]> {
  const seen = new Set<string>();
  lines.forEach((l, i) => {
    checkQuantity(l.quantity, `/lines/${i}/quantity`);
    const id = l.lineId ?? String(i + 1);
    if (seen.has(id)) throw new HubError('validation_failed', `Line id ${id} is used twice`, { errors: [{ field: `/lines/${i}/lineId`, code: 'unique', message: 'is used by another line' }] });
    seen.add(id);
  });
  const entries = await resolveProducts(ctx, lines.map((l, i) => ({ sku: l.sku, productId: l.productId, pointer: `/lines/${i}` })));
  return lines.map((l, i) => ({
    lineId: l.lineId ?? String(i + 1),
    sku: entries[i]!.product.sku,
    productId: entries[i]!.product.id,
    quantity: l.quantity,
    receivedQuantity: previous.find((p) => p.lineId === (l.lineId ?? String(i + 1)))?.receivedQuantity ?? 0,
    unitCost: l.unitCost,
  }));
}

export async function createPurchaseOrder(ctx: InventoryContext, input: PurchaseOrderInput, defaultCurrency: string): Promise<PurchaseOrdersRow> {
  await resolveLocation(ctx, input.locationId, '/locationId');
  const lines = await buildLines(ctx, input.lines);
  const po = await ctx.db.table('purchase_orders').insert({
    workspaceId: ctx.workspaceId,
    number: input.number ?? `PO-${ulid().slice(-10)}`,
    supplier: input.supplier,
    locationId: input.locationId,
    status: input.status ?? 'open',
    expectedDate: input.expectedDate ?? null,
    currency: input.currency ?? defaultCurrency,
    lines,
    notes: input.notes ?? null,
    receivedAt: null,
  });
  await emit(ctx, 'purchase_order.created', po.id, { purchaseOrder: po });
  return po;
}

function assertReceivable(po: PurchaseOrdersRow): void {
  if (po.status === 'closed' || po.status === 'cancelled' || po.status === 'received') {
    throw new HubError('purchase_order_closed', `Purchase order ${po.number} is ${po.status} and takes no receipts`, { extra: { purchaseOrderId: po.id, status: po.status } });
  }
  if (po.status === 'draft') throw new HubError('invalid_transition', `Purchase order ${po.number} is a draft; open it before receiving`);
}

export async function updatePurchaseOrder(ctx: InventoryContext, po: PurchaseOrdersRow, patch: PurchaseOrderPatch, ifVersion: number): Promise<PurchaseOrdersRow> {
  if (po.status === 'closed' || po.status === 'cancelled' || po.status === 'received') {
    throw new HubError('purchase_order_closed', `Purchase order ${po.number} is ${po.status} and cannot change`);
  }
  const received = poLines(po).some((l) => l.receivedQuantity > 0);
  if (received && (patch.lines || patch.locationId)) {
    throw new HubError('invalid_transition', `Purchase order ${po.number} has receipts; its lines and location are fixed`);
  }
  if (patch.locationId) await resolveLocation(ctx, patch.locationId, '/locationId');
  const { lines, ...rest } = patch;
  const saved = await ctx.db.table('purchase_orders').update(po.id, { ...rest, ...(lines ? { lines: await buildLines(ctx, lines, poLines(po)) } : {}) }, { ifVersion });
  await emit(ctx, 'purchase_order.updated', po.id, { purchaseOrder: saved, changes: Object.keys(patch) });
  return saved;
}

export interface ReceiveInput {
  /** Default: everything still expected. */
  lines?: { lineId: string; quantity?: number; unitCost?: string }[] | null;
  reason?: string | null;
}

export async function receivePurchaseOrder(ctx: InventoryContext, po: PurchaseOrdersRow, input: ReceiveInput): Promise<{ purchaseOrder: PurchaseOrdersRow; received: { lineId: string; sku: string; quantity: number; unitCost: string }[] }> {
  assertReceivable(po);
  const lines = poLines(po).map((l) => ({ ...l }));
  const byId = new Map(lines.map((l) => [l.lineId, l]));
  const wanted = input.lines ?? lines.filter((l) => l.quantity > l.receivedQuantity).map((l) => ({ lineId: l.lineId }));
  const received: { lineId: string; sku: string; quantity: number; unitCost: string }[] = [];
  for (const [i, w] of wanted.entries()) {
    const line = byId.get(w.lineId);
    if (!line) throw new HubError('unknown_reference', `Purchase order ${po.number} has no line ${w.lineId}`, { errors: [{ field: `/lines/${i}/lineId`, code: 'unknown', message: 'is not a line of the purchase order' }] });
    const left = line.quantity - line.receivedQuantity;
    const q = (w as { quantity?: number }).quantity ?? left;
    checkQuantity(q, `/lines/${i}/quantity`);
    if (q > left) {
      throw new HubError('quantity_exceeded', `Line ${line.lineId} expects ${left} more; cannot receive ${q}`, { errors: [{ field: `/lines/${i}/quantity`, code: 'maximum', message: `must be at most ${left}` }] });
    }
    line.receivedQuantity += q;
    received.push({ lineId: line.lineId, sku: line.sku, quantity: q, unitCost: (w as { unitCost?: string }).unitCost ?? line.unitCost });
  }
  if (received.length === 0) throw new HubError('invalid_transition', `Purchase order ${po.number} has nothing left to receive`);
  const entries = await resolveProducts(ctx, received.map((r) => ({ productId: byId.get(r.lineId)!.productId, pointer: '/lines' })));
  const batch = new StockBatch(ctx);
  const working = entries.map((e) => batch.track(e.product, e.item));
  await batch.loadLevels(working, po.locationId);
  for (const [i, r] of received.entries()) {
    const level = await batch.level(working[i]!, po.locationId);
    batch.move(level, { type: 'receipt', quantity: r.quantity, unitCost: toMicros(r.unitCost), reason: input.reason, reference: { type: 'purchase_order', id: po.id } });
  }
  await batch.commit();
  const complete = lines.every((l) => l.receivedQuantity >= l.quantity);
  const saved = await ctx.db.table('purchase_orders').update(po.id, { lines, status: complete ? 'received' : 'partially_received', receivedAt: complete ? ctx.now : po.receivedAt }, { ifVersion: po.version });
  await emit(ctx, 'purchase_order.received', po.id, { purchaseOrder: saved, received, complete });
  return { purchaseOrder: saved, received };
}

export async function closePurchaseOrder(ctx: InventoryContext, po: PurchaseOrdersRow, to: 'closed' | 'cancelled'): Promise<PurchaseOrdersRow> {
  const received = poLines(po).some((l) => l.receivedQuantity > 0);
  const allowed = to === 'closed' ? po.status === 'open' || po.status === 'partially_received' : (po.status === 'draft' || po.status === 'open') && !received;
  if (!allowed) {
    throw new HubError('invalid_transition', `Purchase order ${po.number} is ${po.status}${received ? ' with receipts' : ''}; it cannot be ${to}`, { extra: { status: po.status } });
  }
  const saved = await ctx.db.table('purchase_orders').update(po.id, { status: to }, { ifVersion: po.version });
  await emit(ctx, `purchase_order.${to}`, po.id, { purchaseOrder: saved });
  return saved;
}
