// When to reorder and how much: demand from the ledger's recent sales, cover for the lead time plus safety
// stock, what is already on order; and the low-stock report built from the same numbers.
import { formatMoney, times, toMicros } from '../lib/decimal.ts';
import { scanRows } from '../store/rows.ts';
import type { InventoryItemsRow, ProductsRow, QueryOptions } from '../store/types.ts';
import type { InventoryContext } from './context.ts';
import { poLines } from './purchase-orders.ts';
import { available } from './stock-batch.ts';

const DAY_MS = 86_400_000;

export interface ReorderOptions {
  /** Days of history the demand is averaged over (default 30). */
  windowDays?: number;
  /** Days of demand one order should cover beyond the reorder point (default 30). */
  coverDays?: number;
  currency: string;
}

export interface ReorderSuggestion {
  inventoryItemId: string;
  productId: string;
  sku: string;
  onHand: number;
  reserved: number;
  available: number;
  onOrder: number;
  windowDays: number;
  unitsSold: number;
  averageDailyDemand: number;
  leadTimeDays: number;
  leadTimeDemand: number;
  safetyStock: number;
  reorderPoint: number;
  reorderPointSource: 'product' | 'computed';
  coverDays: number;
  shouldReorder: boolean;
  suggestedQuantity: number;
  estimatedCost: string;
  currency: string;
}

const DEMAND_TYPES = ['sale', 'return'] as const;

/**
 * Units sold (net of returns) per inventory item since `since`. Read from the window's movements only, however
 * long the ledger: each type's along (workspaceId, type, occurredAt), or one item's along its own ledger.
 */
export async function demandSince(ctx: InventoryContext, since: string, inventoryItemId?: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  // Two fields of each: a window of a busy ledger is tens of thousands of movements, and decoding whole rows was
  // most of the time.
  const table = ctx.db.table('movements');
  const movements = { query: (options: QueryOptions) => table.pick(['inventoryItemId', 'quantity'], options) };
  const { workspaceId } = ctx;
  const reads = inventoryItemId
    ? [scanRows(movements, { where: { workspaceId, inventoryItemId, occurredAt: { gte: since }, type: { in: [...DEMAND_TYPES] } }, orderBy: { field: 'seq' } })]
    : DEMAND_TYPES.map((type) => scanRows(movements, { where: { workspaceId, type, occurredAt: { gte: since } }, orderBy: { field: 'occurredAt' } }));
  for (const read of reads) {
    for await (const m of read) {
      // sales are negative quantities, returns positive: both reduce to "units that stayed sold"
      out.set(m.inventoryItemId, (out.get(m.inventoryItemId) ?? 0) - m.quantity);
    }
  }
  return out;
}

/** Units on open purchase orders not yet received, per product. */
export async function onOrderByProduct(ctx: InventoryContext): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const po of scanRows(ctx.db.table('purchase_orders'), { where: { workspaceId: ctx.workspaceId, status: { in: ['open', 'partially_received'] } } })) {
    for (const l of poLines(po)) out.set(l.productId, (out.get(l.productId) ?? 0) + Math.max(l.quantity - l.receivedQuantity, 0));
  }
  return out;
}

export function suggest(item: InventoryItemsRow, product: ProductsRow, sold: number, onOrder: number, options: ReorderOptions): ReorderSuggestion {
  const windowDays = options.windowDays ?? 30;
  const coverDays = options.coverDays ?? 30;
  const unitsSold = Math.max(sold, 0);
  const daily = unitsSold / windowDays;
  const leadTimeDemand = Math.ceil(daily * product.leadTimeDays);
  const computed = leadTimeDemand + product.safetyStock;
  const reorderPoint = product.reorderPoint ?? computed;
  const avail = available(item);
  const position = avail + onOrder;
  const shouldReorder = position <= reorderPoint;
  // Order up to the reorder point plus the cover period's demand (at least one unit above the reorder point).
  const orderUpTo = reorderPoint + Math.max(Math.ceil(daily * coverDays), 1);
  const suggestedQuantity = shouldReorder ? Math.max(orderUpTo - position, 0) : 0;
  return {
    inventoryItemId: item.id,
    productId: product.id,
    sku: product.sku,
    onHand: item.onHand,
    reserved: item.reserved,
    available: avail,
    onOrder,
    windowDays,
    unitsSold,
    averageDailyDemand: Math.round(daily * 10_000) / 10_000,
    leadTimeDays: product.leadTimeDays,
    leadTimeDemand,
    safetyStock: product.safetyStock,
    reorderPoint,
    reorderPointSource: product.reorderPoint === null ? 'computed' : 'product',
    coverDays,
    shouldReorder,
    suggestedQuantity,
    estimatedCost: formatMoney(times(toMicros(item.averageCost), suggestedQuantity), options.currency),
    currency: options.currency,
  };
}

function since(ctx: InventoryContext, windowDays: number): string {
  return new Date(Date.parse(ctx.now) - windowDays * DAY_MS).toISOString();
}

export async function reorderSuggestion(ctx: InventoryContext, item: InventoryItemsRow, product: ProductsRow, options: ReorderOptions): Promise<ReorderSuggestion> {
  const windowDays = options.windowDays ?? 30;
  const sold = (await demandSince(ctx, since(ctx, windowDays), item.id)).get(item.id) ?? 0;
  const onOrder = (await onOrderByProduct(ctx)).get(product.id) ?? 0;
  return suggest(item, product, sold, onOrder, options);
}

/**
 * Active products whose available stock is at or below their reorder point (the product's own, or the one
 * computed from demand), most urgent first, each with its suggestion.
 */
export async function lowStock(ctx: InventoryContext, options: ReorderOptions): Promise<ReorderSuggestion[]> {
  const windowDays = options.windowDays ?? 30;
  const sold = await demandSince(ctx, since(ctx, windowDays));
  const onOrder = await onOrderByProduct(ctx);
  const products = new Map<string, ProductsRow>();
  for await (const p of scanRows(ctx.db.table('products'), { where: { workspaceId: ctx.workspaceId, status: 'active' } })) products.set(p.inventoryItemId, p);
  const out: ReorderSuggestion[] = [];
  for await (const item of scanRows(ctx.db.table('inventory_items'), { where: { workspaceId: ctx.workspaceId } })) {
    const product = products.get(item.id);
    if (!product) continue;
    const s = suggest(item, product, sold.get(item.id) ?? 0, onOrder.get(product.id) ?? 0, options);
    if (s.available <= s.reorderPoint) out.push(s);
  }
  return out.sort((a, b) => a.available - a.reorderPoint - (b.available - b.reorderPoint) || a.sku.localeCompare(b.sku));
}
