// Inventory items (stock and cost per product), their levels per location, availability and reorder
// suggestions, and the movements ledger.
import type { Context } from 'hono';
import { availabilityOf } from '../../../inventory/availability.ts';
import { reorderSuggestion } from '../../../inventory/reorder.ts';
import type { InventoryItemsRow } from '../../../store/types.ts';
import type { HubEnv } from '../../deps.ts';
import type { RouteTable } from '../../define-route.ts';
import { respondResource, sendJson } from '../../http.ts';
import { LIST_PARAMS, listOwned, loadOwned, PROBLEM } from '../common.ts';
import { pathParam, readContext, REORDER_PARAMS, reorderOptions } from './shared.ts';

const ITEM = 'hub:tables/inventory_items';

async function itemWithProduct(c: Context<HubEnv>, item: InventoryItemsRow) {
  const product = await loadOwned(c, 'products', item.productId);
  return { item, product };
}

export function registerItemRoutes(routes: RouteTable): void {
  routes.add(
    {
      method: 'get',
      path: '/v1/inventory-items',
      operationId: 'listInventoryItems',
      summary: 'List inventory items (stock and average cost per product)',
      tag: 'Inventory',
      auth: { resource: 'inventory', action: 'read' },
      query: [...LIST_PARAMS, { name: 'sku', description: 'Only the item of this SKU.', schema: { type: 'string', maxLength: 100 } }],
      responses: { 200: { description: 'A page of inventory items', schema: { list: ITEM } } },
    },
    (c, { query }) => listOwned(c, 'inventory_items', query, { sku: query.sku as string | undefined }),
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/inventory-items/by-product/{productId}',
      operationId: 'getInventoryItemByProduct',
      summary: "Get a product's inventory item",
      tag: 'Inventory',
      auth: { resource: 'inventory', action: 'read' },
      responses: { 200: { description: 'The inventory item', schema: ITEM, headers: ['ETag'] }, 404: PROBLEM('No such product') },
    },
    async (c) => {
      const product = await loadOwned(c, 'products', pathParam(c, 'productId'));
      return respondResource(c, await loadOwned(c, 'inventory_items', product.inventoryItemId));
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/inventory-items/{id}',
      operationId: 'getInventoryItem',
      summary: 'Get an inventory item',
      tag: 'Inventory',
      auth: { resource: 'inventory', action: 'read' },
      responses: { 200: { description: 'The inventory item', schema: ITEM, headers: ['ETag'] }, 404: PROBLEM('No such inventory item') },
    },
    async (c) => respondResource(c, await loadOwned(c, 'inventory_items', pathParam(c, 'id'))),
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/inventory-items/{id}/availability',
      operationId: 'getAvailability',
      summary: 'On hand, reserved and available stock of an item, in total and per location',
      tag: 'Inventory',
      auth: { resource: 'inventory', action: 'read' },
      responses: {
        200: {
          description: 'The availability',
          schema: {
            type: 'object',
            required: ['inventoryItemId', 'sku', 'onHand', 'reserved', 'available', 'locations'],
            properties: {
              inventoryItemId: { type: 'string' },
              productId: { type: 'string' },
              sku: { type: 'string' },
              onHand: { type: 'integer' },
              reserved: { type: 'integer' },
              available: { type: 'integer' },
              allowBackorders: { type: 'boolean' },
              locations: { type: 'array', items: { type: 'object', required: ['locationId', 'onHand', 'reserved', 'available'] } },
            },
          },
        },
        404: PROBLEM('No such inventory item'),
      },
    },
    async (c) => {
      const { item, product } = await itemWithProduct(c, await loadOwned(c, 'inventory_items', pathParam(c, 'id')));
      return sendJson(c, 200, await availabilityOf(readContext(c), item, product));
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/inventory-items/{id}/reorder-suggestion',
      operationId: 'getReorderSuggestion',
      summary: 'Whether to reorder and how much, from recent demand, lead time, safety stock and open purchase orders',
      tag: 'Inventory',
      auth: { resource: 'inventory', action: 'read' },
      query: REORDER_PARAMS,
      responses: { 200: { description: 'The suggestion', schema: { type: 'object', required: ['shouldReorder', 'suggestedQuantity', 'reorderPoint'] } }, 404: PROBLEM('No such inventory item') },
    },
    async (c, { query }) => {
      const { item, product } = await itemWithProduct(c, await loadOwned(c, 'inventory_items', pathParam(c, 'id')));
      const suggestion = await reorderSuggestion(readContext(c), item, product, await reorderOptions(c, query));
      return sendJson(c, 200, suggestion);
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/stock-levels',
      operationId: 'listStockLevels',
      summary: 'List stock levels (one per item and location)',
      tag: 'Inventory',
      auth: { resource: 'inventory', action: 'read' },
      query: [
        ...LIST_PARAMS,
        { name: 'locationId', description: 'Only levels at this location.', schema: { type: 'string', maxLength: 36 } },
        { name: 'inventoryItemId', description: 'Only levels of this item.', schema: { type: 'string', maxLength: 36 } },
        { name: 'sku', description: 'Only levels of this SKU.', schema: { type: 'string', maxLength: 100 } },
      ],
      responses: { 200: { description: 'A page of stock levels', schema: { list: 'hub:tables/stock_levels' } } },
    },
    (c, { query }) =>
      listOwned(c, 'stock_levels', query, {
        locationId: query.locationId as string | undefined,
        inventoryItemId: query.inventoryItemId as string | undefined,
        sku: query.sku as string | undefined,
      }),
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/movements/{id}',
      operationId: 'getMovement',
      summary: 'Get one entry of the stock ledger',
      tag: 'Inventory',
      auth: { resource: 'inventory', action: 'read' },
      responses: { 200: { description: 'The movement', schema: 'hub:tables/movements', headers: ['ETag'] }, 404: PROBLEM('No such movement') },
    },
    async (c) => respondResource(c, await loadOwned(c, 'movements', pathParam(c, 'id'))),
  );
}
