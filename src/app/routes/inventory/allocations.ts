// /v1/allocations: reservations per order line. Create them for an order (all or nothing), read them by order,
// and move each through confirm → fulfil, or release / cancel.
import type { Context } from 'hono';
import { allocationsOf, applySteps, confirmAllocation, type ReserveRequest } from '../../../inventory/allocations.ts';
import type { InventoryContext } from '../../../inventory/context.ts';
import { loadOrder, refreshOrder, reserveOrder, reserveOrders } from '../../../inventory/orders.ts';
import type { AllocationsRow } from '../../../store/types.ts';
import type { HubEnv } from '../../deps.ts';
import type { RouteTable } from '../../define-route.ts';
import { jsonWithEtag, respondResource, sendJson } from '../../http.ts';
import { loadOwned, PROBLEM } from '../common.ts';
import { arrayOf, inventoryBase, pathParam, readContext, runInventory } from './shared.ts';

const ALLOCATION = 'hub:tables/allocations';
const LIST = { type: 'object', required: ['data'], properties: { data: arrayOf(ALLOCATION) } };

/** Runs a step on one allocation, then brings its order's status up to date. */
async function step(c: Context<HubEnv>, run: (ctx: InventoryContext, a: AllocationsRow) => Promise<AllocationsRow>) {
  const saved = await runInventory(c, async (ctx) => {
    const a = await loadOwned(c, 'allocations', pathParam(c, 'id'), ctx.db);
    const out = await run(ctx, a);
    await refreshOrder(ctx, await loadOrder(ctx, a.orderId));
    return out;
  });
  return jsonWithEtag(c, saved);
}

const STEP_ERRORS = { 404: PROBLEM('No such allocation'), 409: PROBLEM('The allocation is closed, or the quantity exceeds what is open') };

export function registerAllocationRoutes(routes: RouteTable): void {
  routes.add<{ orderId: string; lines?: ReserveRequest[] }>(
    {
      method: 'post',
      path: '/v1/allocations',
      operationId: 'createAllocations',
      summary: "Reserve stock for an order's outstanding lines (or the given ones), all or nothing",
      tag: 'Orders',
      auth: { resource: 'orders', action: 'write' },
      body: { schema: 'hub:api/allocation-create' },
      responses: {
        201: { description: 'The allocations made (one per line and location)', schema: LIST },
        404: PROBLEM('No such order'),
        409: PROBLEM('Not enough stock (`insufficient_stock` with `missing`); nothing was reserved'),
      },
    },
    async (c, { body }) => {
      const { allocations } = await reserveOrder(c.get('deps').store, inventoryBase(c), body.orderId, body.lines);
      return sendJson(c, 201, { data: allocations });
    },
  );

  routes.add<{ orderIds: string[] }>(
    {
      method: 'post',
      path: '/v1/allocations/batch',
      operationId: 'createAllocationsBatch',
      summary: 'Reserve stock for many orders at once, each order all or nothing, served in the order given',
      tag: 'Orders',
      auth: { resource: 'orders', action: 'write' },
      body: { schema: 'hub:api/allocation-batch' },
      responses: {
        200: {
          description: 'One result per order: reserved (with its allocations), insufficient_stock (with what is missing), not_found, not_reservable or nothing_to_reserve',
          schema: {
            type: 'object',
            required: ['results'],
            properties: {
              results: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['orderId', 'status'],
                  properties: {
                    orderId: { type: 'string' },
                    status: { type: 'string', enum: ['reserved', 'insufficient_stock', 'not_found', 'not_reservable', 'nothing_to_reserve'] },
                    allocations: arrayOf(ALLOCATION),
                    missing: { type: 'array' },
                  },
                },
              },
            },
          },
        },
      },
    },
    async (c, { body }) => sendJson(c, 200, { results: await reserveOrders(c.get('deps').store, inventoryBase(c), body.orderIds) }),
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/allocations/by-order/{orderId}',
      operationId: 'listAllocationsByOrder',
      summary: "An order's allocations, open and closed",
      tag: 'Orders',
      auth: { resource: 'orders', action: 'read' },
      responses: { 200: { description: 'The allocations', schema: LIST }, 404: PROBLEM('No such order') },
    },
    async (c) => {
      const ctx = readContext(c);
      const order = await loadOrder(ctx, pathParam(c, 'orderId'));
      return sendJson(c, 200, { data: await allocationsOf(ctx, order.id) });
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/allocations/{id}',
      operationId: 'getAllocation',
      summary: 'Get an allocation',
      tag: 'Orders',
      auth: { resource: 'orders', action: 'read' },
      responses: { 200: { description: 'The allocation', schema: ALLOCATION, headers: ['ETag'] }, 404: PROBLEM('No such allocation') },
    },
    async (c) => respondResource(c, await loadOwned(c, 'allocations', pathParam(c, 'id'))),
  );

  const spec = (name: string, summary: string, withBody: boolean) => ({
    method: 'post' as const,
    path: `/v1/allocations/{id}/${name}`,
    operationId: `${name}Allocation`,
    summary,
    tag: 'Orders',
    auth: { resource: 'orders' as const, action: 'write' as const },
    ...(withBody ? { body: { schema: 'hub:api/allocation-quantity', required: false } } : {}),
    responses: { 200: { description: 'The allocation', schema: ALLOCATION, headers: ['ETag'] }, ...STEP_ERRORS },
  });

  routes.add(spec('confirm', 'Confirm a created allocation', false), (c) => step(c, confirmAllocation));
  routes.add<{ quantity?: number }>(spec('fulfil', 'Ship units of an allocation (default: all open); records the sale at the average cost', true), (c, { body }) =>
    step(c, async (ctx, a) => (await applySteps(ctx, [{ kind: 'fulfil', allocation: a, quantity: body.quantity }]))[0]!),
  );
  routes.add<{ quantity?: number }>(spec('release', 'Release units of an allocation back to available stock (default: all open)', true), (c, { body }) =>
    step(c, async (ctx, a) => (await applySteps(ctx, [{ kind: 'release', allocation: a, quantity: body.quantity }]))[0]!),
  );
  routes.add(spec('cancel', 'Cancel an allocation: all its open units return to available stock', false), (c) =>
    step(c, async (ctx, a) => (await applySteps(ctx, [{ kind: 'cancel', allocation: a }]))[0]!),
  );
}
