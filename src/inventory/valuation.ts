// What the stock is worth: by SKU and location, now or at any past moment, from the ledger; and the ledger
// replayed from empty to check that it still explains every stored level and average cost.
import { formatMicros, formatMoney, nextAverage, times, toMicros } from '../lib/decimal.ts';
import { scanRows } from '../store/rows.ts';
import { isOpen, openQuantity } from './allocations.ts';
import type { InventoryContext } from './context.ts';

export type ValueGrouping = 'sku_location' | 'sku' | 'location';

export interface ValueLine {
  inventoryItemId?: string;
  productId?: string;
  sku?: string;
  locationId?: string;
  onHand: number;
  unitCost?: string;
  value: string;
}

export interface ValueReport {
  at: string;
  currency: string;
  groupBy: ValueGrouping;
  totalQuantity: number;
  totalValue: string;
  lines: ValueLine[];
}

interface Holding {
  inventoryItemId: string;
  productId: string;
  sku: string;
  locationId: string;
  onHand: number;
  average: bigint;
}

/** Holdings now, from the stored levels and averages. */
async function currentHoldings(ctx: InventoryContext, locationId?: string): Promise<Holding[]> {
  const items = new Map<string, { average: bigint; sku: string; productId: string }>();
  for await (const it of scanRows(ctx.db.table('inventory_items'), { where: { workspaceId: ctx.workspaceId } })) {
    items.set(it.id, { average: toMicros(it.averageCost), sku: it.sku, productId: it.productId });
  }
  const out: Holding[] = [];
  const where = locationId ? { workspaceId: ctx.workspaceId, locationId } : { workspaceId: ctx.workspaceId };
  for await (const l of scanRows(ctx.db.table('stock_levels'), { where })) {
    const it = items.get(l.inventoryItemId);
    if (!it || l.onHand === 0) continue;
    out.push({ inventoryItemId: l.inventoryItemId, productId: it.productId, sku: it.sku, locationId: l.locationId, onHand: l.onHand, average: it.average });
  }
  return out;
}

/** Holdings as they were at `at`: on hand summed from the ledger, the average as the last movement left it. */
async function holdingsAt(ctx: InventoryContext, at: string, locationId?: string): Promise<Holding[]> {
  const levels = new Map<string, Holding>();
  const last = new Map<string, { seq: number; average: bigint; sku: string }>();
  for await (const m of scanRows(ctx.db.table('movements'), { where: { workspaceId: ctx.workspaceId, occurredAt: { lte: at } }, orderBy: { field: 'occurredAt' } })) {
    const prev = last.get(m.inventoryItemId);
    if (!prev || m.seq > prev.seq) last.set(m.inventoryItemId, { seq: m.seq, average: toMicros(m.averageCostAfter), sku: m.sku });
    if (locationId && m.locationId !== locationId) continue;
    const key = `${m.inventoryItemId}|${m.locationId}`;
    let h = levels.get(key);
    if (!h) levels.set(key, (h = { inventoryItemId: m.inventoryItemId, productId: m.productId, sku: m.sku, locationId: m.locationId, onHand: 0, average: 0n }));
    h.onHand += m.quantity;
  }
  const out: Holding[] = [];
  for (const h of levels.values()) {
    if (h.onHand === 0) continue;
    const l = last.get(h.inventoryItemId)!;
    out.push({ ...h, sku: l.sku, average: l.average });
  }
  return out;
}

/** The inventory value report: each group's units and value, rounded to the currency's minor units. */
export async function inventoryValue(ctx: InventoryContext, options: { at?: string; locationId?: string; groupBy?: ValueGrouping; currency: string }): Promise<ValueReport> {
  const groupBy = options.groupBy ?? 'sku_location';
  const holdings = options.at ? await holdingsAt(ctx, options.at, options.locationId) : await currentHoldings(ctx, options.locationId);
  const groups = new Map<string, { line: ValueLine; value: bigint }>();
  let total = 0n;
  let totalQuantity = 0;
  for (const h of holdings) {
    const value = times(h.average, h.onHand);
    const key = groupBy === 'sku' ? h.inventoryItemId : groupBy === 'location' ? h.locationId : `${h.inventoryItemId}|${h.locationId}`;
    let g = groups.get(key);
    if (!g) {
      const line: ValueLine =
        groupBy === 'location'
          ? { locationId: h.locationId, onHand: 0, value: '' }
          : { inventoryItemId: h.inventoryItemId, productId: h.productId, sku: h.sku, ...(groupBy === 'sku_location' ? { locationId: h.locationId } : {}), onHand: 0, unitCost: formatMicros(h.average), value: '' };
      groups.set(key, (g = { line, value: 0n }));
    }
    g.line.onHand += h.onHand;
    g.value += value;
    totalQuantity += h.onHand;
  }
  const lines = [...groups.values()]
    .map((g) => {
      const rounded = formatMoney(g.value, options.currency);
      total += toMicros(rounded);
      return { ...g.line, value: rounded };
    })
    .sort((a, b) => (a.sku ?? '').localeCompare(b.sku ?? '') || (a.locationId ?? '').localeCompare(b.locationId ?? ''));
  return { at: options.at ?? ctx.now, currency: options.currency, groupBy, totalQuantity, totalValue: formatMoney(total, options.currency), lines };
}

export interface LedgerDiscrepancy {
  kind: 'item' | 'level' | 'reserved';
  id: string;
  sku: string;
  field: string;
  stored: string | number;
  replayed: string | number;
}

/**
 * Replays every movement from empty, in each item's sequence, and compares the result with the stored levels,
 * totals and average costs, and the reserved counts with the open allocations. An empty list means they agree.
 */
export async function verifyLedger(ctx: InventoryContext): Promise<{ movements: number; discrepancies: LedgerDiscrepancy[] }> {
  const movements = [];
  for await (const m of scanRows(ctx.db.table('movements'), { where: { workspaceId: ctx.workspaceId } })) movements.push(m);
  movements.sort((a, b) => (a.inventoryItemId < b.inventoryItemId ? -1 : a.inventoryItemId > b.inventoryItemId ? 1 : a.seq - b.seq));
  const items = new Map<string, { onHand: number; average: bigint; seq: number }>();
  const levels = new Map<string, number>();
  for (const m of movements) {
    let it = items.get(m.inventoryItemId);
    if (!it) items.set(m.inventoryItemId, (it = { onHand: 0, average: 0n, seq: 0 }));
    // Ins that carry their own cost set the average; the rest move units at the average.
    if (m.quantity > 0 && (m.type === 'receipt' || m.type === 'return' || m.type === 'adjustment')) {
      it.average = nextAverage(it.onHand, it.average, m.quantity, toMicros(m.unitCost));
    }
    it.onHand += m.quantity;
    it.seq = m.seq;
    const key = `${m.inventoryItemId}|${m.locationId}`;
    levels.set(key, (levels.get(key) ?? 0) + m.quantity);
  }
  const reserved = new Map<string, number>();
  for await (const a of scanRows(ctx.db.table('allocations'), { where: { workspaceId: ctx.workspaceId } })) {
    if (!isOpen(a)) continue;
    const key = `${a.inventoryItemId}|${a.locationId}`;
    reserved.set(key, (reserved.get(key) ?? 0) + openQuantity(a));
  }
  const out: LedgerDiscrepancy[] = [];
  const check = (kind: LedgerDiscrepancy['kind'], id: string, sku: string, field: string, stored: string | number, replayed: string | number) => {
    if (stored !== replayed) out.push({ kind, id, sku, field, stored, replayed });
  };
  const reservedByItem = new Map<string, number>();
  for await (const l of scanRows(ctx.db.table('stock_levels'), { where: { workspaceId: ctx.workspaceId } })) {
    const key = `${l.inventoryItemId}|${l.locationId}`;
    check('level', l.id, l.sku, 'onHand', l.onHand, levels.get(key) ?? 0);
    check('reserved', l.id, l.sku, 'reserved', l.reserved, reserved.get(key) ?? 0);
    levels.delete(key);
    reserved.delete(key);
    reservedByItem.set(l.inventoryItemId, (reservedByItem.get(l.inventoryItemId) ?? 0) + l.reserved);
  }
  for (const [key, onHand] of levels) if (onHand !== 0) out.push({ kind: 'level', id: key, sku: '', field: 'onHand', stored: 0, replayed: onHand });
  for (const [key, q] of reserved) out.push({ kind: 'reserved', id: key, sku: '', field: 'reserved', stored: 0, replayed: q });
  for await (const it of scanRows(ctx.db.table('inventory_items'), { where: { workspaceId: ctx.workspaceId } })) {
    const r = items.get(it.id) ?? { onHand: 0, average: toMicros(it.averageCost), seq: 0 };
    check('item', it.id, it.sku, 'onHand', it.onHand, r.onHand);
    check('item', it.id, it.sku, 'averageCost', formatMicros(toMicros(it.averageCost)), formatMicros(r.average));
    check('item', it.id, it.sku, 'movementSeq', it.movementSeq, r.seq);
    check('item', it.id, it.sku, 'reserved', it.reserved, reservedByItem.get(it.id) ?? 0);
  }
  return { movements: movements.length, discrepancies: out };
}
