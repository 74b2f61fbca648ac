// /v1/orders: idempotent import by (channel, externalId), and reserve / release / fulfil / cancel for all of an
// order's lines at once.
import type { Context } from 'hono';
import { allocationsOf, type ReserveRequest } from '../../../inventory/allocations.ts';
import { cancelOrder, checkOrderStock, fulfilOrder, importOrderIn, loadOrder, publicOrder, releaseOrder, reserveOrder, type OrderImport } from '../../../inventory/orders.ts';
import type { AllocationsRow, OrdersRow } from '../../../store/types.ts';
import type { HubEnv } from '../../deps.ts';
import type { RouteSpec, RouteTable } from '../../define-route.ts';
import { jsonWithEtag, respondResource, sendJson } from '../../http.ts';
import { LIST_PARAMS, listOwned, PROBLEM } from '../common.ts';
import { arrayOf, inventoryBase, pathParam, readContext, runInventory, SHORTFALLS, workspaceCurrency } from './shared.ts';

const ORDER = 'hub:tables/orders';
const WITH_ALLOCATIONS = {
  extend: ORDER,
  properties: { allocations: arrayOf('hub:tables/allocations'), allocationFailure: { anyOf: [SHORTFALLS, { type: 'null' }] } },
  required: ['allocations'],
};

function orderBody(order: OrdersRow, allocations: AllocationsRow[], allocationFailure?: unknown) {
  return { ...publicOrder(order), allocations, ...(allocationFailure !== undefined ? { allocationFailure } : {}) };
}

function action(path: string, operationId: string, summary: string, body?: string, extra: RouteSpec['responses'] = {}): RouteSpec {
  return {
    method: 'post',
    path,
    operationId,
    summary,
    tag: 'Orders',
    auth: { resource: 'orders', action: 'write' },
    ...(body ? { body: { schema: body, required: false } } : {}),
    responses: { 200: { description: 'The order and the allocations the call changed', schema: WITH_ALLOCATIONS }, 404: PROBLEM('No such order'), 409: PROBLEM('The order is not in a state that allows this'), ...extra },
  };
}

const orderId = (c: Context<HubEnv>) => pathParam(c, 'id');

export function registerOrderRoutes(routes: RouteTable): void {
  routes.add<OrderImport>(
    {
      method: 'post',
      path: '/v1/orders',
      operationId: 'importOrder',
      summary: 'Import an order: created once per (channel, externalId), updated when it changes',
      description:
        'The first import creates the order (201) and, unless `reserve` is false, reserves stock for all its lines or none. ' +
        'Importing the same content again changes nothing (200). A changed order is updated (200): reservations are released ' +
        'where lines shrank or went and made where they grew. A shortfall does not fail the import: the order stays ' +
        '(partially) unallocated, `allocationFailure` lists what is missing and an `allocation.failed` event is recorded.',
      tag: 'Orders',
      auth: { resource: 'orders', action: 'write' },
      body: { schema: 'hub:api/order-import' },
      responses: {
        200: { description: 'The existing order (unchanged or updated)', schema: WITH_ALLOCATIONS, headers: ['ETag'] },
        201: { description: 'The new order', schema: WITH_ALLOCATIONS, headers: ['ETag', 'Location'] },
        409: PROBLEM('The change is not possible (a cancelled order, a shipped line)'),
        422: PROBLEM('An unknown SKU, product or location'),
      },
    },
    async (c, { body }) => {
      const currency = await workspaceCurrency(c);
      const result = await importOrderIn(c.get('deps').store, inventoryBase(c), body, currency);
      const out = orderBody(result.order, result.allocations, result.allocationFailure);
      return jsonWithEtag(c, out, result.created ? 201 : 200, result.created ? `/v1/orders/${result.order.id}` : undefined);
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/orders',
      operationId: 'listOrders',
      summary: 'List orders, newest first',
      tag: 'Orders',
      auth: { resource: 'orders', action: 'read' },
      query: [
        ...LIST_PARAMS,
        { name: 'channel', description: 'Only orders of this channel.', schema: { type: 'string', maxLength: 64 } },
        { name: 'externalId', description: 'Only the order with this id in its channel.', schema: { type: 'string', maxLength: 128 } },
        { name: 'status', description: 'Only orders in this status.', schema: { type: 'string', enum: ['open', 'partially_fulfilled', 'fulfilled', 'cancelled'] } },
      ],
      responses: { 200: { description: 'A page of orders', schema: { list: ORDER } } },
    },
    (c, { query }) =>
      listOwned(c, 'orders', query, { channel: query.channel as string | undefined, externalId: query.externalId as string | undefined, status: query.status as string | undefined }),
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/orders/{id}',
      operationId: 'getOrder',
      summary: 'Get an order',
      tag: 'Orders',
      auth: { resource: 'orders', action: 'read' },
      responses: { 200: { description: 'The order', schema: ORDER, headers: ['ETag'] }, 404: PROBLEM('No such order') },
    },
    async (c) => respondResource(c, publicOrder(await loadOrder(readContext(c), orderId(c)))),
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/orders/{id}/availability',
      operationId: 'checkOrderStock',
      summary: "Check whether the order's outstanding lines could be reserved now (nothing is reserved)",
      tag: 'Orders',
      auth: { resource: 'orders', action: 'read' },
      responses: { 200: { description: 'Per line: requested, available and the shortfall', schema: { type: 'object', required: ['sufficient', 'lines'] } }, 404: PROBLEM('No such order') },
    },
    async (c) => {
      const ctx = readContext(c);
      return sendJson(c, 200, await checkOrderStock(ctx, await loadOrder(ctx, orderId(c))));
    },
  );

  routes.add<{ lines?: ReserveRequest[] }>(
    action('/v1/orders/{id}/reserve', 'reserveOrder', "Reserve stock for the order's outstanding lines (or the given ones), all or nothing", 'hub:api/order-reserve', {
      409: PROBLEM('Not enough stock (`insufficient_stock` with `missing`); nothing was reserved'),
    }),
    async (c, { body }) => {
      const { order, allocations } = await reserveOrder(c.get('deps').store, inventoryBase(c), orderId(c), body.lines);
      return sendJson(c, 200, orderBody(order, allocations));
    },
  );

  routes.add(action('/v1/orders/{id}/release', 'releaseOrder', "Release all of the order's open reservations"), async (c) => {
    const { order, allocations } = await runInventory(c, async (ctx) => releaseOrder(ctx, await loadOrder(ctx, orderId(c))));
    return sendJson(c, 200, orderBody(order, allocations));
  });

  routes.add<{ lines?: { lineId: string; quantity?: number }[] }>(
    action('/v1/orders/{id}/fulfil', 'fulfilOrder', 'Ship reserved units (default: everything reserved); records sales at the average cost', 'hub:api/order-fulfil'),
    async (c, { body }) => {
      const { order, allocations } = await runInventory(c, async (ctx) => fulfilOrder(ctx, await loadOrder(ctx, orderId(c)), body.lines));
      return sendJson(c, 200, orderBody(order, allocations));
    },
  );

  routes.add(action('/v1/orders/{id}/cancel', 'cancelOrder', 'Cancel the order and its open reservations'), async (c) => {
    const result = await runInventory(c, async (ctx) => {
      const order = await cancelOrder(ctx, await loadOrder(ctx, orderId(c)));
      return { order, allocations: await allocationsOf(ctx, order.id) };
    });
    return sendJson(c, 200, orderBody(result.order, result.allocations));
  });
}
