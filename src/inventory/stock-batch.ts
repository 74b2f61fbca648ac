// The working set of stock operations: items and levels are read once, changed in memory, checked, then written
// back with compare-and-set, together with the ledger entries and the events. One place enforces the invariants
// (available = on hand - reserved; never below zero without backorders; on hand never below zero).
import { HubError } from '../errors.ts';
import { formatMicros, nextAverage, times, toMicros } from '../lib/decimal.ts';
import { newId } from '../lib/ids.ts';
import { tableSpec } from '../schemas/tables.ts';
import type { Db, InventoryItemsRow, LocationsRow, MovementsRow, NewRow, ProductsRow, StockLevelsRow } from '../store/types.ts';
import { fanOutMemo, type FanOutMemo } from '../webhooks/fanout.ts';
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

/** What an item was before the operation under way first changed it (onHand and reserved are in `before`). */
interface ItemUndo {
  average: bigint;
  averageCost: string;
  movementSeq: number;
  lastMovementAt: string | null;
}

/**
 * The working rows of stock operations run one after another in one transaction: a burst of inbound webhooks, each
 * its own operation. Items and levels are read once, and written once when the session is flushed; products and
 * locations are looked up once. Each operation still checks its own rules against the rows as the operations
 * before it left them, writes its own ledger entries and events, and leaves no trace here when it fails (undoOp).
 * A StockBatch made without a session has one of its own: one operation, flushed when it commits.
 *
 * Rows of a session are only right while nothing else writes them: run nothing but session operations between
 * creating one and flushing it, in one transaction.
 */
export class StockSession {
  readonly items = new Map<string, WorkingItem>();
  readonly levels = new Map<string, WorkingLevel>();
  readonly allLevelsLoaded = new Set<string>();
  /** `item|location` pairs read by loadLevels and found to have no stored level. */
  readonly noLevel = new Set<string>();
  /** Products by SKU and by id, and locations by id and by code, as read in this session. */
  readonly productsBySku = new Map<string, ProductsRow>();
  readonly productsById = new Map<string, ProductsRow>();
  readonly locationsById = new Map<string, LocationsRow>();
  readonly locationsByCode = new Map<string, LocationsRow>();
  /** Endpoints and open ordering keys seen by this transaction's fan-out. */
  readonly fanOut: FanOutMemo = fanOutMemo();
  /** The operation under way has begun writing its ledger entries and events (its checks passed). */
  writing = false;
  /** Changed by the operation under way, in the order first changed. */
  readonly opItems: WorkingItem[] = [];
  readonly opLevels: WorkingLevel[] = [];
  private readonly undo = new Map<WorkingItem, ItemUndo>();
  /** Changed by finished operations, not yet written. */
  private readonly unwrittenItems = new Set<WorkingItem>();
  private readonly unwrittenLevels = new Set<WorkingLevel>();

  constructor(readonly workspaceId: string) {}

  /** Keeps products read (and the items of those among `items`) for the operations after. */
  rememberProducts(products: ProductsRow[], items: ReadonlyMap<string, InventoryItemsRow>): void {
    for (const p of products) {
      this.productsBySku.set(p.sku, p);
      this.productsById.set(p.id, p);
      const item = items.get(p.inventoryItemId);
      if (item) this.track(p, item);
    }
  }

  /** Keeps a location of the workspace read, by id and by code. */
  rememberLocation(loc: LocationsRow): void {
    this.locationsById.set(loc.id, loc);
    this.locationsByCode.set(loc.code, loc);
  }

  /** Adds an item (with its product) to the working set; the first copy read wins. */
  track(product: ProductsRow, row: InventoryItemsRow): WorkingItem {
    let w = this.items.get(row.id);
    if (!w) {
      w = { row: { ...row }, product, average: toMicros(row.averageCost), before: { onHand: row.onHand, reserved: row.reserved }, dirty: false };
      this.items.set(row.id, w);
    }
    return w;
  }

  addLevel(item: WorkingItem, row: StockLevelsRow | NewRow<StockLevelsRow>, isNew: boolean): WorkingLevel {
    const w: WorkingLevel = { row: { ...row }, item, isNew, before: { onHand: row.onHand, reserved: row.reserved }, dirty: false };
    this.levels.set(`${item.row.id}|${row.locationId}`, w);
    return w;
  }

  /** Reads the levels of `items` at one location in a few queries, so that they are not read one at a time. */
  async loadLevels(db: Db, items: WorkingItem[], locationId: string): Promise<void> {
    const ids = [...new Set(items.map((w) => w.row.id))].filter((id) => !this.allLevelsLoaded.has(id) && !this.levels.has(`${id}|${locationId}`) && !this.noLevel.has(`${id}|${locationId}`));
    if (ids.length < 2) return;
    // 100 values per query: Appwrite's limit for one filter's values.
    for (let i = 0; i < ids.length; i += 100) {
      const slice = ids.slice(i, i + 100);
      const page = await db.table('stock_levels').query({ where: { workspaceId: this.workspaceId, inventoryItemId: { in: slice }, locationId }, limit: 1000 });
      const found = new Set<string>();
      for (const row of page.items) {
        found.add(row.inventoryItemId);
        this.addLevel(this.items.get(row.inventoryItemId)!, row, false);
      }
      for (const id of slice) if (!found.has(id)) this.noLevel.add(`${id}|${locationId}`);
    }
  }

  /** Marks a level and its item changed by the operation under way (call before changing them). */
  touch(level: WorkingLevel, costs = false): void {
    if (!level.dirty) {
      level.dirty = true;
      this.opLevels.push(level);
    }
    const item = level.item;
    if (!item.dirty) {
      item.dirty = true;
      this.opItems.push(item);
    }
    if (costs && !this.undo.has(item)) {
      const { averageCost, movementSeq, lastMovementAt } = item.row;
      this.undo.set(item, { average: item.average, averageCost, movementSeq, lastMovementAt });
    }
  }

  /** The operation under way succeeded: what it changed is the next one's starting point, and is written at flush. */
  endOp(): void {
    for (const l of this.opLevels) {
      l.before = { onHand: l.row.onHand, reserved: l.row.reserved };
      l.dirty = false;
      this.unwrittenLevels.add(l);
    }
    for (const w of this.opItems) {
      w.before = { onHand: w.row.onHand, reserved: w.row.reserved };
      w.dirty = false;
      this.unwrittenItems.add(w);
    }
    this.clearOp();
  }

  /** The operation under way failed: its changes to the working rows are put back. Harmless when there are none. */
  undoOp(): void {
    for (const l of this.opLevels) {
      l.row.onHand = l.before.onHand;
      l.row.reserved = l.before.reserved;
      l.dirty = false;
    }
    for (const w of this.opItems) {
      w.row.onHand = w.before.onHand;
      w.row.reserved = w.before.reserved;
      const u = this.undo.get(w);
      if (u) {
        w.average = u.average;
        Object.assign(w.row, { averageCost: u.averageCost, movementSeq: u.movementSeq, lastMovementAt: u.lastMovementAt });
      }
      w.dirty = false;
    }
    this.clearOp();
  }

  private clearOp(): void {
    this.writing = false;
    this.opLevels.length = 0;
    this.opItems.length = 0;
    this.undo.clear();
  }

  /** Writes the levels and items finished operations changed (compare-and-set on the versions read). */
  async flush(db: Db): Promise<void> {
    if (this.opLevels.length || this.opItems.length) throw new Error('A stock session is flushed with an operation under way');
    for (const l of this.unwrittenLevels) {
      const { onHand, reserved } = l.row;
      l.row = l.isNew ? await db.table('stock_levels').insert(l.row as NewRow<StockLevelsRow>) : await db.table('stock_levels').updateFrom(l.row as StockLevelsRow, { onHand, reserved });
      l.isNew = false;
    }
    for (const w of this.unwrittenItems) {
      const { onHand, reserved, averageCost, movementSeq, lastMovementAt } = w.row;
      w.row = await db.table('inventory_items').updateFrom(w.row, { onHand, reserved, averageCost, movementSeq, lastMovementAt });
    }
    this.unwrittenLevels.clear();
    this.unwrittenItems.clear();
  }
}

const LEVEL_ID_PREFIX = tableSpec('stock_levels').idPrefix;

/**
 * One stock operation's changes: read through the session's working rows (its own, or the caller's
 * `ctx.session`), changed in memory, checked, then committed with the ledger entries and the events. Commit writes
 * nothing before every check has passed, so an operation that fails leaves nothing to roll back in a session.
 */
export class StockBatch {
  private readonly session: StockSession;
  /** A session of the caller's: the rows are written when it is flushed, not at commit. */
  private readonly shared: boolean;
  private readonly movements: NewRow<MovementsRow>[] = [];

  constructor(readonly ctx: InventoryContext) {
    this.shared = ctx.session !== undefined;
    this.session = ctx.session ?? new StockSession(ctx.workspaceId);
    if (this.session.workspaceId !== ctx.workspaceId) throw new Error('A stock session serves one workspace');
  }

  /** Adds an item (with its product) to the working set; the first copy read wins. */
  track(product: ProductsRow, row: InventoryItemsRow): WorkingItem {
    return this.session.track(product, row);
  }

  /** Every stored level of the item (locations where it has never been are absent). */
  async levelsOf(item: WorkingItem): Promise<WorkingLevel[]> {
    const s = this.session;
    if (!s.allLevelsLoaded.has(item.row.id)) {
      const page = await this.ctx.db.table('stock_levels').query({ where: { workspaceId: this.ctx.workspaceId, inventoryItemId: item.row.id }, limit: 1000 });
      for (const row of page.items) if (!s.levels.has(`${item.row.id}|${row.locationId}`)) s.addLevel(item, row, false);
      s.allLevelsLoaded.add(item.row.id);
    }
    const prefix = `${item.row.id}|`;
    return [...s.levels.entries()].filter(([k]) => k.startsWith(prefix)).map(([, v]) => v);
  }

  /**
   * Reads the levels of `items` at one location in a few queries, so that an operation of many lines does not read
   * them one line at a time in `level`.
   */
  loadLevels(items: WorkingItem[], locationId: string): Promise<void> {
    return this.session.loadLevels(this.ctx.db, items, locationId);
  }

  /** The item's level at a location; a zero level (written only if changed) when it has none yet. */
  async level(item: WorkingItem, locationId: string): Promise<WorkingLevel> {
    const s = this.session;
    const key = `${item.row.id}|${locationId}`;
    const known = s.levels.get(key);
    if (known) return known;
    if (!s.allLevelsLoaded.has(item.row.id) && !s.noLevel.has(key)) {
      const page = await this.ctx.db.table('stock_levels').query({
        where: { workspaceId: this.ctx.workspaceId, inventoryItemId: item.row.id, locationId },
        limit: 1,
      });
      if (page.items[0]) return s.addLevel(item, page.items[0], false);
    }
    // Its id now, so that an operation of a session can name the level before the session writes it.
    return s.addLevel(
      item,
      { id: newId(LEVEL_ID_PREFIX), workspaceId: this.ctx.workspaceId, inventoryItemId: item.row.id, productId: item.row.productId, locationId, sku: item.row.sku, onHand: 0, reserved: 0 },
      true,
    );
  }

  /** Records a ledger entry and applies it to the level, the item's totals and its average cost. */
  move(level: WorkingLevel, input: MoveInput): void {
    const item = level.item;
    if (!Number.isSafeInteger(input.quantity) || input.quantity === 0) throw new Error('A movement moves a non-zero whole quantity');
    this.session.touch(level, true);
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
    this.session.touch(level);
    level.row.reserved += quantity;
    level.item.row.reserved += quantity;
  }

  /** Levels this operation made worse in a way the rules forbid. */
  violations(): Shortfall[] {
    const out: Shortfall[] = [];
    for (const l of this.session.opLevels) {
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
   * Checks the rules, then writes the ledger entries and the events, and (without a session of the caller's) the
   * levels and items with compare-and-set. Fails with `insufficient_stock`, writing nothing, when a rule would break.
   * The levels answered are as written; in a caller's session, as they will be written at its flush.
   */
  async commit(): Promise<{ levels: StockLevelsRow[]; movements: MovementsRow[] }> {
    const s = this.session;
    const bad = this.violations();
    if (bad.length) {
      s.undoOp();
      throw insufficient(bad);
    }
    const { db } = this.ctx;
    const levels = [...s.opLevels];
    const items = [...s.opItems];
    s.writing = true;
    for (const l of levels) {
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
    for (const w of items) await this.emitThresholds(w);
    const movements: MovementsRow[] = [];
    for (const m of this.movements) movements.push(await db.table('movements').insert(m));
    s.endOp();
    if (!this.shared) await s.flush(db);
    return { levels: levels.map((l) => l.row as StockLevelsRow), movements };
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
