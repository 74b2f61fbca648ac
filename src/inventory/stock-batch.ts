// The working set of one stock operation: items and levels are read once, changed in memory, checked, then
// written back with compare-and-set, together with the ledger entries and the events. One place enforces the
// invariants (available = on hand - reserved; never below zero without backorders; on hand never below zero).
import { HubError } from '../errors.ts';
import { formatMicros, nextAverage, times, toMicros } from '../lib/decimal.ts';
import type { InventoryItemsRow, MovementsRow, NewRow, ProductsRow, StockLevelsRow } from '../store/types.ts';
import { emit, type InventoryContext } from './context.ts';

export type MovementType = MovementsRow['type'];

export interface WorkingItem {
  row: InventoryItemsRow;
  product: ProductsRow;
  average: bigint;
  before: { onHand: number; reserved: number };
  dirty: boolean;
}

export interface WorkingLevel {
  row: StockLevelsRow | NewRow<StockLevelsRow>;
  item: WorkingItem;
  isNew: boolean;
  before: { onHand: number; reserved: number };
  dirty: boolean;
}

export interface MoveInput {
  type: MovementType;
  /** Signed change of on-hand units at the level's location. */
  quantity: number;
  /** Cost of incoming units that set the average (receipts, returns, positive adjustments); else the average. */
  unitCost?: bigint | null;
  reason?: string | null;
  reference?: { type: string; id: string } | null;
}

/** Movements that bring units in at a cost of their own, and so move the weighted average. */
const COSTED_IN: ReadonlySet<MovementType> = new Set(['receipt', 'return', 'adjustment']);

export function available(level: { onHand: number; reserved: number }): number {
  return level.onHand - level.reserved;
}

export interface Shortfall {
  sku: string;
  locationId: string | null;
  requested: number;
  available: number;
  lineId?: string;
}

export function insufficient(shortfalls: Shortfall[], what = 'There is not enough stock'): HubError {
  const list = shortfalls.map((s) => `${s.sku}: ${s.requested} requested, ${s.available} available`).join('; ');
  return new HubError('insufficient_stock', `${what} (${list})`, { extra: { missing: shortfalls } });
}

export class StockBatch {
  private readonly items = new Map<string, WorkingItem>();
  private readonly levels = new Map<string, WorkingLevel>();
  private readonly allLevelsLoaded = new Set<string>();
  /** `item|location` pairs read by loadLevels and found to have no stored level. */
  private readonly noLevel = new Set<string>();
  private readonly movements: NewRow<MovementsRow>[] = [];

  constructor(readonly ctx: InventoryContext) {}

  /** Adds an item (with its product) to the working set; the first copy read wins. */
  track(product: ProductsRow, row: InventoryItemsRow): WorkingItem {
    let w = this.items.get(row.id);
    if (!w) {
      w = { row: { ...row }, product, average: toMicros(row.averageCost), before: { onHand: row.onHand, reserved: row.reserved }, dirty: false };
      this.items.set(row.id, w);
    }
    return w;
  }

  private addLevel(item: WorkingItem, row: StockLevelsRow | NewRow<StockLevelsRow>, isNew: boolean): WorkingLevel {
    const w: WorkingLevel = { row: { ...row }, item, isNew, before: { onHand: row.onHand, reserved: row.reserved }, dirty: false };
    this.levels.set(`${item.row.id}|${row.locationId}`, w);
    return w;
  }

  /** Every stored level of the item (locations where it has never been are absent). */
  async levelsOf(item: WorkingItem): Promise<WorkingLevel[]> {
    if (!this.allLevelsLoaded.has(item.row.id)) {
      const page = await this.ctx.db.table('stock_levels').query({ where: { workspaceId: this.ctx.workspaceId, inventoryItemId: item.row.id }, limit: 1000 });
      for (const row of page.items) if (!this.levels.has(`${item.row.id}|${row.locationId}`)) this.addLevel(item, row, false);
      this.allLevelsLoaded.add(item.row.id);
    }
    const prefix = `${item.row.id}|`;
    return [...this.levels.entries()].filter(([k]) => k.startsWith(prefix)).map(([, v]) => v);
  }

  /**
   * Reads the levels of `items` at one location in a few queries, so that an operation of many lines does not read
   * them one line at a time in `level`.
   */
  async loadLevels(items: WorkingItem[], locationId: string): Promise<void> {
    const ids = [...new Set(items.map((w) => w.row.id))].filter((id) => !this.allLevelsLoaded.has(id) && !this.levels.has(`${id}|${locationId}`) && !this.noLevel.has(`${id}|${locationId}`));
    if (ids.length < 2) return;
    // 100 values per query: Appwrite's limit for one filter's values.
    for (let i = 0; i < ids.length; i += 100) {
      const slice = ids.slice(i, i + 100);
      const page = await this.ctx.db.table('stock_levels').query({ where: { workspaceId: this.ctx.workspaceId, inventoryItemId: { in: slice }, locationId }, limit: 1000 });
      const found = new Set<string>();
      for (const row of page.items) {
        found.add(row.inventoryItemId);
        this.addLevel(this.items.get(row.inventoryItemId)!, row, false);
      }
      for (const id of slice) if (!found.has(id)) this.noLevel.add(`${id}|${locationId}`);
    }
  }

  /** The item's level at a location; a zero level (written only if changed) when it has none yet. */
  async level(item: WorkingItem, locationId: string): Promise<WorkingLevel> {
    const key = `${item.row.id}|${locationId}`;
    const known = this.levels.get(key);
    if (known) return known;
    if (!this.allLevelsLoaded.has(item.row.id) && !this.noLevel.has(key)) {
      const page = await this.ctx.db.table('stock_levels').query({
        where: { workspaceId: this.ctx.workspaceId, inventoryItemId: item.row.id, locationId },
        limit: 1,
      });
      if (page.items[0]) return this.addLevel(item, page.items[0], false);
    }
    return this.addLevel(
      item,
      { workspaceId: this.ctx.workspaceId, inventoryItemId: item.row.id, productId: item.row.productId, locationId, sku: item.row.sku, onHand: 0, reserved: 0 },
      true,
    );
  }

  /** Records a ledger entry and applies it to the level, the item's totals and its average cost. */
  move(level: WorkingLevel, input: MoveInput): void {
    const item = level.item;
    if (!Number.isSafeInteger(input.quantity) || input.quantity === 0) throw new Error('A movement moves a non-zero whole quantity');
    let unitCost = item.average;
    if (input.quantity > 0 && COSTED_IN.has(input.type) && input.unitCost != null) {
      unitCost = input.unitCost;
      item.average = nextAverage(item.row.onHand, item.average, input.quantity, unitCost);
    }
    level.row.onHand += input.quantity;
    item.row.onHand += input.quantity;
    item.row.movementSeq += 1;
    item.row.lastMovementAt = this.ctx.now;
    item.row.averageCost = formatMicros(item.average);
    level.dirty = item.dirty = true;
    this.movements.push({
      workspaceId: this.ctx.workspaceId,
      inventoryItemId: item.row.id,
      productId: item.row.productId,
      sku: item.row.sku,
      locationId: level.row.locationId,
      type: input.type,
      quantity: input.quantity,
      unitCost: formatMicros(unitCost),
      value: formatMicros(times(unitCost, input.quantity)),
      seq: item.row.movementSeq,
      onHandAfter: level.row.onHand,
      averageCostAfter: item.row.averageCost,
      reason: input.reason ?? null,
      reference: input.reference ?? null,
      occurredAt: this.ctx.now,
    });
  }

  /** Changes the reserved units of a level (negative to release). */
  reserve(level: WorkingLevel, quantity: number): void {
    level.row.reserved += quantity;
    level.item.row.reserved += quantity;
    level.dirty = level.item.dirty = true;
  }

  /** Levels this batch made worse in a way the rules forbid. */
  violations(): Shortfall[] {
    const out: Shortfall[] = [];
    for (const l of this.levels.values()) {
      if (!l.dirty) continue;
      const onHandFell = l.row.onHand < 0 && l.row.onHand < l.before.onHand;
      const availFell = available(l.row) < 0 && available(l.row) < available(l.before) && !l.item.product.allowBackorders;
      const reservedNegative = l.row.reserved < 0;
      if (onHandFell || availFell || reservedNegative) {
        out.push({ sku: l.row.sku, locationId: l.row.locationId, requested: Math.max(l.before.onHand - l.row.onHand, l.row.reserved - l.before.reserved), available: Math.max(available(l.before), 0) });
      }
    }
    return out;
  }

  /**
   * Writes every change (levels and items with compare-and-set, then the ledger and the events). Fails with
   * `insufficient_stock`, writing nothing, when a rule would break.
   */
  async commit(): Promise<{ levels: StockLevelsRow[]; movements: MovementsRow[] }> {
    const bad = this.violations();
    if (bad.length) throw insufficient(bad);
    const { db } = this.ctx;
    const levels: StockLevelsRow[] = [];
    for (const l of this.levels.values()) {
      if (!l.dirty) continue;
      const saved = l.isNew
        ? await db.table('stock_levels').insert(l.row as NewRow<StockLevelsRow>)
        : await db.table('stock_levels').updateFrom(l.row as StockLevelsRow, { onHand: l.row.onHand, reserved: l.row.reserved });
      levels.push(saved);
      await emit(this.ctx, 'stock.updated', l.item.row.productId, {
        inventoryItemId: l.item.row.id,
        productId: l.item.row.productId,
        sku: l.row.sku,
        locationId: l.row.locationId,
        onHand: l.row.onHand,
        reserved: l.row.reserved,
        available: available(l.row),
        previous: { onHand: l.before.onHand, reserved: l.before.reserved, available: available(l.before) },
      });
    }
    for (const w of this.items.values()) {
      if (!w.dirty) continue;
      const { onHand, reserved, averageCost, movementSeq, lastMovementAt } = w.row;
      await db.table('inventory_items').updateFrom(w.row, { onHand, reserved, averageCost, movementSeq, lastMovementAt });
      await this.emitThresholds(w);
    }
    const movements: MovementsRow[] = [];
    for (const m of this.movements) movements.push(await db.table('movements').insert(m));
    return { levels, movements };
  }

  /** stock.low / stock.out / stock.replenished when the item's total availability crosses its thresholds. */
  private async emitThresholds(w: WorkingItem): Promise<void> {
    const before = available(w.before);
    const after = available(w.row);
    if (before === after) return;
    const reorderPoint = w.product.reorderPoint;
    const data = { inventoryItemId: w.row.id, productId: w.product.id, sku: w.product.sku, available: after, previousAvailable: before, onHand: w.row.onHand, reorderPoint };
    if (reorderPoint !== null && before > reorderPoint && after <= reorderPoint) await emit(this.ctx, 'stock.low', w.product.id, data);
    if (before > 0 && after <= 0) await emit(this.ctx, 'stock.out', w.product.id, data);
    const threshold = reorderPoint ?? 0;
    if (before <= threshold && after > threshold) await emit(this.ctx, 'stock.replenished', w.product.id, data);
  }
}
