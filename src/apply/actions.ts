// The commands inbound data can drive: a webhook or a file row, once mapped to a canonical shape, is applied by
// one of these. Each names the schema its input must satisfy (the mapping's target), and runs in the caller's
// transaction, so that what it does commits together with the record of having done it (exactly once).
import type { InventoryContext } from '../inventory/context.ts';
import { locationByCode } from '../inventory/catalog.ts';
import { adjustStock, receiveStock, type ReceiptInput } from '../inventory/movements.ts';
import { importOrder, type OrderImport } from '../inventory/orders.ts';
import { createProduct, updateProduct, type ProductInput } from '../inventory/products.ts';
import { validatorFor } from '../schemas/registry.ts';
import { assertValid } from '../schemas/validate.ts';

export const ACTION_NAMES = ['order.import', 'product.upsert', 'stock.count', 'stock.adjust', 'stock.receive'] as const;
export type ActionName = (typeof ACTION_NAMES)[number];

export interface ActionContext extends InventoryContext {
  /** The workspace's currency, for orders that do not name one. */
  currency: string;
}

export interface Action {
  /** The schema the input must satisfy: the target of the mapping that feeds it. */
  schema: string;
  description: string;
  /**
   * Runs on a stock session's working rows (ctx.session), writing nothing before its checks pass, so that a burst of
   * them can share one transaction and one write of each level (see StockSession).
   */
  inSession?: boolean;
  apply(ctx: ActionContext, input: Record<string, unknown>): Promise<Record<string, unknown>>;
}

interface StockCount {
  sku: string;
  locationCode: string;
  onHand: number;
  unitCost?: string;
}

interface StockChange {
  sku: string;
  locationCode: string;
  quantity: number;
  reason?: string;
  unitCost?: string;
  reference?: { type: string; id: string };
}

const summary = (r: { movements: { id: string }[]; levels: { id: string; onHand: number }[] }) => ({
  movements: r.movements.map((m) => m.id),
  levels: r.levels.map((l) => ({ id: l.id, onHand: l.onHand })),
});

export const ACTIONS: Record<ActionName, Action> = {
  'order.import': {
    schema: 'hub:api/order-import',
    description: 'Imports an order (created, updated or unchanged) and reserves its stock.',
    async apply(ctx, input) {
      const result = await importOrder(ctx, input as unknown as OrderImport, ctx.currency);
      return { orderId: result.order.id, created: result.created, changed: result.changed, allocationFailure: result.allocationFailure };
    },
  },
  'product.upsert': {
    schema: 'hub:api/product-create',
    description: 'Creates the product with this SKU, or updates the one that has it.',
    async apply(ctx, input) {
      const product = input as unknown as ProductInput;
      const found = await ctx.db.table('products').query({ where: { workspaceId: ctx.workspaceId, sku: product.sku }, limit: 1 });
      const existing = found.items[0];
      if (!existing) return { productId: (await createProduct(ctx, product)).id, created: true };
      const { sku: _sku, ...patch } = product;
      await updateProduct(ctx, existing, patch, existing.version);
      return { productId: existing.id, created: false };
    },
  },
  'stock.count': {
    inSession: true,
    schema: 'hub:canonical/stock-count',
    description: 'Sets on hand of a SKU at a location to the counted units.',
    async apply(ctx, input) {
      const count = input as unknown as StockCount;
      const loc = await locationByCode(ctx, count.locationCode);
      const line = { sku: count.sku, onHand: count.onHand, ...(count.unitCost ? { unitCost: count.unitCost } : {}) };
      return summary(await adjustStock(ctx, { locationId: loc.id, reason: 'count', lines: [line] }));
    },
  },
  'stock.adjust': {
    inSession: true,
    schema: 'hub:canonical/stock-change',
    description: 'Changes on hand of a SKU at a location by a signed quantity.',
    async apply(ctx, input) {
      const change = input as unknown as StockChange;
      const loc = await locationByCode(ctx, change.locationCode);
      const line = { sku: change.sku, quantity: change.quantity, ...(change.unitCost ? { unitCost: change.unitCost } : {}) };
      return summary(await adjustStock(ctx, { locationId: loc.id, reason: change.reason ?? 'adjustment', reference: change.reference ?? null, lines: [line] }));
    },
  },
  'stock.receive': {
    inSession: true,
    schema: 'hub:api/stock-receipt',
    description: 'Receives stock at a location at the given unit costs.',
    async apply(ctx, input) {
      return summary(await receiveStock(ctx, input as unknown as ReceiptInput));
    },
  },
};

/** Checks the input against the action's schema: a failure names the failing fields. */
export function checkActionInput(name: ActionName, input: unknown): Record<string, unknown> {
  assertValid(validatorFor(ACTIONS[name].schema), input, `The ${name} input`, '');
  return input as Record<string, unknown>;
}

/** Checks the input against the action's schema, then applies it. */
export async function applyAction(name: ActionName, ctx: ActionContext, input: unknown): Promise<Record<string, unknown>> {
  return ACTIONS[name].apply(ctx, checkActionInput(name, input));
}
