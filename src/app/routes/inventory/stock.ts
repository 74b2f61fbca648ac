// /v1/stock/*: receipts, adjustments and write-offs, transfers, returns (each all lines or none), and a check
// of whether lines could be reserved, which writes nothing.
import type { Context } from 'hono';
import { checkStock, type CheckLine } from '../../../inventory/availability.ts';
import type { InventoryContext } from '../../../inventory/context.ts';
import { adjustStock, receiveStock, returnStock, transferStock, type AdjustmentInput, type ReceiptInput, type ReturnInput, type StockResult, type TransferInput } from '../../../inventory/movements.ts';
import type { HubEnv } from '../../deps.ts';
import type { RouteTable } from '../../define-route.ts';
import { sendJson } from '../../http.ts';
import { PROBLEM } from '../common.ts';
import { readContext, runInventory, STOCK_RESULT } from './shared.ts';

const ERRORS = {
  409: PROBLEM('Not enough stock (`insufficient_stock`, with what is missing)'),
  422: PROBLEM('An unknown SKU, product or location (`unknown_reference`)'),
};

function stockRoute<B>(routes: RouteTable, path: string, operationId: string, summary: string, schema: string, run: (ctx: InventoryContext, body: B) => Promise<StockResult>) {
  routes.add<B>(
    {
      method: 'post',
      path,
      operationId,
      summary,
      tag: 'Inventory',
      auth: { resource: 'inventory', action: 'write' },
      body: { schema },
      responses: { 201: { description: 'The movements recorded and the levels they changed', schema: STOCK_RESULT }, ...ERRORS },
    },
    async (c: Context<HubEnv>, { body }) => sendJson(c, 201, await runInventory(c, (ctx) => run(ctx, body))),
  );
}

export function registerStockRoutes(routes: RouteTable): void {
  stockRoute<ReceiptInput>(routes, '/v1/stock/receipts', 'receiveStock', 'Receive stock at a location at its unit cost (updates the average cost)', 'hub:api/stock-receipt', receiveStock);
  stockRoute<AdjustmentInput>(routes, '/v1/stock/adjustments', 'adjustStock', 'Adjust stock: a signed change or a count, or a write-off', 'hub:api/stock-adjustment', adjustStock);
  stockRoute<TransferInput>(routes, '/v1/stock/transfers', 'transferStock', 'Move available stock from one location to another', 'hub:api/stock-transfer', transferStock);
  stockRoute<ReturnInput>(routes, '/v1/stock/returns', 'returnStock', 'Restock units a customer returned', 'hub:api/stock-return', returnStock);

  routes.add<{ lines: CheckLine[] }>(
    {
      method: 'post',
      path: '/v1/stock/check',
      operationId: 'checkStock',
      summary: 'Check whether lines could be reserved now (nothing is reserved)',
      tag: 'Inventory',
      auth: { resource: 'inventory', action: 'read' },
      body: { schema: 'hub:api/stock-check' },
      responses: {
        200: {
          description: 'Per line: requested, available and the shortfall',
          schema: {
            type: 'object',
            required: ['sufficient', 'lines'],
            properties: {
              sufficient: { type: 'boolean' },
              lines: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['sku', 'requested', 'available', 'shortfall', 'backorderable'],
                  properties: { sku: { type: 'string' }, locationId: { type: ['string', 'null'] }, requested: { type: 'integer' }, available: { type: 'integer' }, shortfall: { type: 'integer' }, backorderable: { type: 'boolean' } },
                },
              },
            },
          },
        },
        422: ERRORS[422],
      },
    },
    async (c, { body }) => sendJson(c, 200, await checkStock(readContext(c), body.lines)),
  );
}
