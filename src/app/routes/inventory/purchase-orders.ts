// /v1/purchase-orders: stock expected from suppliers; receiving records receipts at cost.
import type { Context } from 'hono';
import { closePurchaseOrder, createPurchaseOrder, receivePurchaseOrder, updatePurchaseOrder, type PurchaseOrderInput, type PurchaseOrderPatch, type ReceiveInput } from '../../../inventory/purchase-orders.ts';
import type { HubEnv } from '../../deps.ts';
import type { RouteTable } from '../../define-route.ts';
import { expectVersion, jsonWithEtag, respondResource } from '../../http.ts';
import { LIST_PARAMS, listOwned, loadOwned, PROBLEM } from '../common.ts';
import { pathParam, runInventory, workspaceCurrency } from './shared.ts';

const PO = 'hub:tables/purchase_orders';
const poId = (c: Context<HubEnv>) => pathParam(c, 'id');

export function registerPurchaseOrderRoutes(routes: RouteTable): void {
  routes.add<PurchaseOrderInput>(
    {
      method: 'post',
      path: '/v1/purchase-orders',
      operationId: 'createPurchaseOrder',
      summary: 'Create a purchase order',
      tag: 'Purchasing',
      auth: { resource: 'inventory', action: 'write' },
      body: { schema: 'hub:api/purchase-order-create' },
      responses: { 201: { description: 'The purchase order', schema: PO, headers: ['ETag', 'Location'] }, 409: PROBLEM('A purchase order with this number exists'), 422: PROBLEM('An unknown SKU or location') },
    },
    async (c, { body }) => {
      const currency = await workspaceCurrency(c);
      const po = await runInventory(c, (ctx) => createPurchaseOrder(ctx, body, currency));
      return jsonWithEtag(c, po, 201, `/v1/purchase-orders/${po.id}`);
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/purchase-orders',
      operationId: 'listPurchaseOrders',
      summary: 'List purchase orders, newest first',
      tag: 'Purchasing',
      auth: { resource: 'inventory', action: 'read' },
      query: [
        ...LIST_PARAMS,
        { name: 'status', description: 'Only purchase orders in this status.', schema: { type: 'string', enum: ['draft', 'open', 'partially_received', 'received', 'closed', 'cancelled'] } },
        { name: 'number', description: 'Only the purchase order with this number.', schema: { type: 'string', maxLength: 64 } },
      ],
      responses: { 200: { description: 'A page of purchase orders', schema: { list: PO } } },
    },
    (c, { query }) => listOwned(c, 'purchase_orders', query, { status: query.status as string | undefined, number: query.number as string | undefined }),
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/purchase-orders/{id}',
      operationId: 'getPurchaseOrder',
      summary: 'Get a purchase order',
      tag: 'Purchasing',
      auth: { resource: 'inventory', action: 'read' },
      responses: { 200: { description: 'The purchase order', schema: PO, headers: ['ETag'] }, 404: PROBLEM('No such purchase order') },
    },
    async (c) => respondResource(c, await loadOwned(c, 'purchase_orders', poId(c))),
  );

  routes.add<PurchaseOrderPatch>(
    {
      method: 'patch',
      path: '/v1/purchase-orders/{id}',
      operationId: 'updatePurchaseOrder',
      summary: 'Change a purchase order (lines and location only before anything is received)',
      tag: 'Purchasing',
      auth: { resource: 'inventory', action: 'write' },
      body: { schema: 'hub:api/purchase-order-update' },
      ifMatch: true,
      responses: { 200: { description: 'The purchase order', schema: PO, headers: ['ETag'] }, 404: PROBLEM('No such purchase order'), 409: PROBLEM('The purchase order is closed or has receipts'), 412: PROBLEM('Stale If-Match') },
    },
    async (c, { body }) => {
      const saved = await runInventory(c, async (ctx) => {
        const po = await loadOwned(c, 'purchase_orders', poId(c), ctx.db);
        return updatePurchaseOrder(ctx, po, body, expectVersion(c, po));
      });
      return jsonWithEtag(c, saved);
    },
  );

  routes.add<ReceiveInput>(
    {
      method: 'post',
      path: '/v1/purchase-orders/{id}/receive',
      operationId: 'receivePurchaseOrder',
      summary: 'Receive a purchase order, in full or in part: records receipts and updates average costs',
      tag: 'Purchasing',
      auth: { resource: 'inventory', action: 'write' },
      body: { schema: 'hub:api/purchase-order-receive', required: false },
      responses: {
        200: { description: 'The purchase order after the receipt', schema: PO, headers: ['ETag'] },
        404: PROBLEM('No such purchase order'),
        409: PROBLEM('The purchase order is closed (`purchase_order_closed`), or more was received than expected (`quantity_exceeded`)'),
      },
    },
    async (c, { body }) => {
      const { purchaseOrder } = await runInventory(c, async (ctx) => receivePurchaseOrder(ctx, await loadOwned(c, 'purchase_orders', poId(c), ctx.db), body));
      return jsonWithEtag(c, purchaseOrder);
    },
  );

  for (const to of ['closed', 'cancelled'] as const) {
    const verb = to === 'closed' ? 'close' : 'cancel';
    routes.add(
      {
        method: 'post',
        path: `/v1/purchase-orders/{id}/${verb}`,
        operationId: `${verb}PurchaseOrder`,
        summary: to === 'closed' ? 'Close a purchase order: nothing more is expected' : 'Cancel a purchase order that has received nothing',
        tag: 'Purchasing',
        auth: { resource: 'inventory', action: 'write' },
        responses: { 200: { description: 'The purchase order', schema: PO, headers: ['ETag'] }, 404: PROBLEM('No such purchase order'), 409: PROBLEM('Not possible in its status') },
      },
      async (c) => jsonWithEtag(c, await runInventory(c, async (ctx) => closePurchaseOrder(ctx, await loadOwned(c, 'purchase_orders', poId(c), ctx.db), to))),
    );
  }
}
