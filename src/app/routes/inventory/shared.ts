// What the inventory routes share: the operation context of a request, the workspace currency, response shapes.
import type { Context } from 'hono';
import { inTransaction, type InventoryContext } from '../../../inventory/context.ts';
import type { Db } from '../../../store/types.ts';
import type { HubEnv } from '../../deps.ts';
import type { JsonSchema } from '../../../schemas/registry.ts';
import type { ReorderOptions } from '../../../inventory/reorder.ts';
import type { QueryParam } from '../../define-route.ts';
import { nowIso } from '../common.ts';

export function inventoryBase(c: Context<HubEnv>): Omit<InventoryContext, 'db'> {
  return { workspaceId: c.get('principal').workspaceId, now: nowIso(c), correlationId: c.get('requestId') };
}

/** Runs an inventory operation in one transaction for the request. */
export function runInventory<R>(c: Context<HubEnv>, fn: (ctx: InventoryContext) => Promise<R>): Promise<R> {
  return inTransaction(c.get('deps').store, inventoryBase(c), fn);
}

/** A context over the store for reads outside a transaction. */
export function readContext(c: Context<HubEnv>): InventoryContext {
  return { ...inventoryBase(c), db: c.get('deps').store };
}

export async function workspaceCurrency(c: Context<HubEnv>, db: Db = c.get('deps').store): Promise<string> {
  const ws = await db.table('workspaces').get(c.get('principal').workspaceId);
  return ws?.currency ?? 'USD';
}

export const arrayOf = (id: string): JsonSchema => ({ type: 'array', items: { $ref: id } });

export const STOCK_RESULT: JsonSchema = {
  type: 'object',
  required: ['movements', 'levels'],
  properties: { movements: arrayOf('hub:tables/movements'), levels: arrayOf('hub:tables/stock_levels'), transferId: { type: 'string' } },
};

export const SHORTFALLS: JsonSchema = {
  type: 'array',
  items: {
    type: 'object',
    required: ['sku', 'requested', 'available'],
    properties: { lineId: { type: 'string' }, sku: { type: 'string' }, locationId: { type: ['string', 'null'] }, requested: { type: 'integer' }, available: { type: 'integer' } },
  },
};

export const pathParam = (c: Context<HubEnv>, name: string): string => c.req.param(name)!;

/** The query of reorder suggestions and the low-stock report. */
export const REORDER_PARAMS: QueryParam[] = [
  { name: 'windowDays', description: 'Days of sales history to average demand over (default 30).', schema: { type: 'integer', minimum: 1, maximum: 365 } },
  { name: 'coverDays', description: 'Days of demand an order should cover beyond the reorder point (default 30).', schema: { type: 'integer', minimum: 1, maximum: 365 } },
];

export async function reorderOptions(c: Context<HubEnv>, query: Record<string, unknown>): Promise<ReorderOptions> {
  return { windowDays: query.windowDays as number | undefined, coverDays: query.coverDays as number | undefined, currency: await workspaceCurrency(c) };
}
