// Stock operations that move units in or out of locations: receipts, adjustments (counts, corrections, write-offs),
// transfers and customer returns. Each is one call for all its lines, all or nothing.
import { HubError } from '../errors.ts';
import { newId } from '../lib/ids.ts';
import { toMicros } from '../lib/decimal.ts';
import type { MovementsRow, StockLevelsRow } from '../store/types.ts';
import { resolveLocation, resolveLocations, resolveProducts } from './catalog.ts';
import type { InventoryContext } from './context.ts';
import { StockBatch, type MovementType } from './stock-batch.ts';

export interface LineRef {
  sku?: string;
  productId?: string;
}

export interface Reference {
  type: string;
  id: string;
}

export interface StockResult {
  movements: MovementsRow[];
  levels: StockLevelsRow[];
}

/** Quantities are whole, positive units (the API schema says so too; library callers get the same rule). */
export function checkQuantity(value: number, pointer: string, allowNegative = false): void {
  const ok = Number.isSafeInteger(value) && (allowNegative ? value !== 0 : value > 0) && Math.abs(value) <= 1e9;
  if (!ok) {
    throw new HubError('validation_failed', `The quantity ${value} is not valid`, {
      errors: [{ field: pointer, code: 'quantity', message: allowNegative ? 'must be a non-zero whole number' : 'must be a whole number of at least 1' }],
    });
  }
}

async function prepare<L extends LineRef>(ctx: InventoryContext, lines: L[]) {
  if (lines.length === 0) throw new HubError('validation_failed', 'There are no lines', { errors: [{ field: '/lines', code: 'minItems', message: 'needs at least one line' }] });
  const entries = await resolveProducts(ctx, lines.map((l, i) => ({ sku: l.sku, productId: l.productId, pointer: `/lines/${i}` })));
  const batch = new StockBatch(ctx);
  return { batch, working: entries.map((e) => batch.track(e.product, e.item)) };
}

export interface ReceiptInput {
  locationId: string;
  reference?: Reference | null;
  reason?: string | null;
  lines: (LineRef & { quantity: number; unitCost: string })[];
}

/** Receives stock at a location at the given unit costs (moves the weighted average cost). */
export async function receiveStock(ctx: InventoryContext, input: ReceiptInput, type: MovementType = 'receipt'): Promise<StockResult> {
  input.lines.forEach((l, i) => checkQuantity(l.quantity, `/lines/${i}/quantity`));
  await resolveLocation(ctx, input.locationId, '/locationId');
  const { batch, working } = await prepare(ctx, input.lines);
  await batch.loadLevels(working, input.locationId);
  for (const [i, line] of input.lines.entries()) {
    const level = await batch.level(working[i]!, input.locationId);
    batch.move(level, { type, quantity: line.quantity, unitCost: toMicros(line.unitCost), reason: input.reason, reference: input.reference });
  }
  return batch.commit();
}

export interface AdjustmentInput {
  locationId: string;
  reason: string;
  /** `write_off` for damaged, lost or expired stock; `adjustment` for counts and corrections. */
  type?: 'adjustment' | 'write_off';
  reference?: Reference | null;
  /** Each line gives `quantity` (a signed change; for write-offs the units removed) or `onHand` (a count). */
  lines: (LineRef & { quantity?: number; onHand?: number; unitCost?: string | null })[];
}

export async function adjustStock(ctx: InventoryContext, input: AdjustmentInput): Promise<StockResult> {
  const { locationId, lines, ...rest } = input;
  return adjustStockAt(ctx, { ...rest, groups: [{ locationId, lines }] });
}

export interface MultiAdjustmentInput extends Omit<AdjustmentInput, 'locationId' | 'lines'> {
  /** Lines by location; a level (SKU at a location) at most once. Pointers in errors are `/groups/{g}/lines/{i}` when there are several. */
  groups: { locationId: string; lines: AdjustmentInput['lines'] }[];
}

/**
 * Adjustments at several locations as one operation, all or nothing: their products, items and levels read in a
 * few queries, one write of the changes. An import's batch of counts spans locations: one such operation instead of
 * one per location read and wrote the same rows in a tenth of the statements.
 */
export async function adjustStockAt(ctx: InventoryContext, input: MultiAdjustmentInput): Promise<StockResult> {
  const type = input.type ?? 'adjustment';
  const prefix = (g: number) => (input.groups.length === 1 ? '' : `/groups/${g}`);
  const all: { line: AdjustmentInput['lines'][number]; locationId: string; pointer: string }[] = [];
  for (const [g, group] of input.groups.entries()) {
    for (const [i, l] of group.lines.entries()) {
      const pointer = `${prefix(g)}/lines/${i}`;
      if ((l.quantity === undefined) === (l.onHand === undefined)) {
        throw new HubError('validation_failed', 'Each line gives either quantity or onHand', { errors: [{ field: pointer, code: 'oneOf', message: 'give either quantity or onHand' }] });
      }
      if (l.quantity !== undefined) checkQuantity(l.quantity, `${pointer}/quantity`, type === 'adjustment');
      if (l.onHand !== undefined && !(Number.isSafeInteger(l.onHand) && l.onHand >= 0)) {
        throw new HubError('validation_failed', 'onHand must be a whole number of at least 0', { errors: [{ field: `${pointer}/onHand`, code: 'minimum', message: 'must be a whole number of at least 0' }] });
      }
      if (type === 'write_off' && l.onHand !== undefined) {
        throw new HubError('validation_failed', 'A write-off gives the units removed', { errors: [{ field: `${pointer}/onHand`, code: 'not_allowed', message: 'give quantity (units written off) for a write-off' }] });
      }
      all.push({ line: l, locationId: group.locationId, pointer });
    }
  }
  await resolveLocations(ctx, input.groups.map((g, i) => ({ id: g.locationId, pointer: `${prefix(i)}/locationId` })), false);
  if (all.length === 0) {
    const field = input.groups.length === 0 ? '/groups' : `${prefix(0)}/lines`;
    throw new HubError('validation_failed', 'There are no lines', { errors: [{ field, code: 'minItems', message: 'needs at least one line' }] });
  }
  const entries = await resolveProducts(ctx, all.map((a) => ({ sku: a.line.sku, productId: a.line.productId, pointer: a.pointer })));
  const batch = new StockBatch(ctx);
  const working = entries.map((e) => batch.track(e.product, e.item));
  for (const group of input.groups) {
    await batch.loadLevels(
      working.filter((_, k) => all[k]!.locationId === group.locationId),
      group.locationId,
    );
  }
  for (const [k, { line, locationId }] of all.entries()) {
    const level = await batch.level(working[k]!, locationId);
    const delta = type === 'write_off' ? -line.quantity! : line.onHand !== undefined ? line.onHand - level.row.onHand : line.quantity!;
    if (delta === 0) continue;
    batch.move(level, {
      type,
      quantity: delta,
      unitCost: line.unitCost != null ? toMicros(line.unitCost) : null,
      reason: input.reason,
      reference: input.reference,
    });
  }
  return batch.commit();
}

export interface TransferInput {
  fromLocationId: string;
  toLocationId: string;
  reason?: string | null;
  reference?: Reference | null;
  lines: (LineRef & { quantity: number })[];
}

/** Moves available units between locations at the average cost; the reference ties both halves together. */
export async function transferStock(ctx: InventoryContext, input: TransferInput): Promise<StockResult & { transferId: string }> {
  input.lines.forEach((l, i) => checkQuantity(l.quantity, `/lines/${i}/quantity`));
  if (input.fromLocationId === input.toLocationId) {
    throw new HubError('validation_failed', 'A transfer needs two different locations', { errors: [{ field: '/toLocationId', code: 'same', message: 'must differ from fromLocationId' }] });
  }
  await resolveLocation(ctx, input.fromLocationId, '/fromLocationId', false);
  await resolveLocation(ctx, input.toLocationId, '/toLocationId');
  const { batch, working } = await prepare(ctx, input.lines);
  await batch.loadLevels(working, input.fromLocationId);
  await batch.loadLevels(working, input.toLocationId);
  const transferId = input.reference?.id ?? newId('trf');
  const reference = input.reference ?? { type: 'transfer', id: transferId };
  for (const [i, line] of input.lines.entries()) {
    const from = await batch.level(working[i]!, input.fromLocationId);
    const to = await batch.level(working[i]!, input.toLocationId);
    batch.move(from, { type: 'transfer_out', quantity: -line.quantity, reason: input.reason, reference });
    batch.move(to, { type: 'transfer_in', quantity: line.quantity, reason: input.reason, reference });
  }
  return { ...(await batch.commit()), transferId };
}

export interface ReturnInput {
  locationId: string;
  reason?: string | null;
  reference?: Reference | null;
  /** Without unitCost, returned units come back at the current average cost. */
  lines: (LineRef & { quantity: number; unitCost?: string | null })[];
}

export async function returnStock(ctx: InventoryContext, input: ReturnInput): Promise<StockResult> {
  input.lines.forEach((l, i) => checkQuantity(l.quantity, `/lines/${i}/quantity`));
  await resolveLocation(ctx, input.locationId, '/locationId');
  const { batch, working } = await prepare(ctx, input.lines);
  await batch.loadLevels(working, input.locationId);
  for (const [i, line] of input.lines.entries()) {
    const level = await batch.level(working[i]!, input.locationId);
    batch.move(level, { type: 'return', quantity: line.quantity, unitCost: line.unitCost != null ? toMicros(line.unitCost) : null, reason: input.reason, reference: input.reference });
  }
  return batch.commit();
}
