// Stock operations that move units in or out of locations: receipts, adjustments (counts, corrections, write-offs),
// transfers and customer returns. Each is one call for all its lines, all or nothing.
import { HubError } from '../errors.ts';
import { newId } from '../lib/ids.ts';
import { toMicros } from '../lib/decimal.ts';
import type { MovementsRow, StockLevelsRow } from '../store/types.ts';
import { resolveLocation, resolveProducts } from './catalog.ts';
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
  const type = input.type ?? 'adjustment';
  for (const [i, l] of input.lines.entries()) {
    if ((l.quantity === undefined) === (l.onHand === undefined)) {
      throw new HubError('validation_failed', 'Each line gives either quantity or onHand', { errors: [{ field: `/lines/${i}`, code: 'oneOf', message: 'give either quantity or onHand' }] });
    }
    if (l.quantity !== undefined) checkQuantity(l.quantity, `/lines/${i}/quantity`, type === 'adjustment');
    if (l.onHand !== undefined && !(Number.isSafeInteger(l.onHand) && l.onHand >= 0)) {
      throw new HubError('validation_failed', 'onHand must be a whole number of at least 0', { errors: [{ field: `/lines/${i}/onHand`, code: 'minimum', message: 'must be a whole number of at least 0' }] });
    }
    if (type === 'write_off' && l.onHand !== undefined) {
      throw new HubError('validation_failed', 'A write-off gives the units removed', { errors: [{ field: `/lines/${i}/onHand`, code: 'not_allowed', message: 'give quantity (units written off) for a write-off' }] });
    }
  }
  await resolveLocation(ctx, input.locationId, '/locationId', false);
  const { batch, working } = await prepare(ctx, input.lines);
  await batch.loadLevels(working, input.locationId);
  for (const [i, line] of input.lines.entries()) {
    const level = await batch.level(working[i]!, input.locationId);
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
