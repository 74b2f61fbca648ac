// /v1/locations: warehouses, stores and 3PLs. A location that holds stock or has history cannot be deleted.
import { HubError } from '../../../errors.ts';
import { emit } from '../../../inventory/context.ts';
import type { LocationsRow } from '../../../store/types.ts';
import type { RouteTable } from '../../define-route.ts';
import { expectVersion, jsonWithEtag, respondResource } from '../../http.ts';
import { LIST_PARAMS, listOwned, loadOwned, PROBLEM } from '../common.ts';
import { pathParam, runInventory } from './shared.ts';

const LOCATION = 'hub:tables/locations';
type LocationInput = Pick<LocationsRow, 'code' | 'name'> & Partial<Pick<LocationsRow, 'type' | 'address' | 'priority' | 'active'>>;

export function registerLocationRoutes(routes: RouteTable): void {
  routes.add<LocationInput>(
    {
      method: 'post',
      path: '/v1/locations',
      operationId: 'createLocation',
      summary: 'Create a location',
      tag: 'Inventory',
      auth: { resource: 'inventory', action: 'write' },
      body: { schema: 'hub:api/location-create' },
      responses: { 201: { description: 'The location', schema: LOCATION, headers: ['ETag', 'Location'] }, 409: PROBLEM('A location with this code exists') },
    },
    async (c, { body }) => {
      const loc = await runInventory(c, async (ctx) => {
        const row = await ctx.db.table('locations').insert({
          workspaceId: ctx.workspaceId,
          code: body.code,
          name: body.name,
          type: body.type ?? 'warehouse',
          address: body.address ?? null,
          priority: body.priority ?? 100,
          active: body.active ?? true,
        });
        await emit(ctx, 'location.created', row.id, { location: row });
        return row;
      });
      return jsonWithEtag(c, loc, 201, `/v1/locations/${loc.id}`);
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/locations',
      operationId: 'listLocations',
      summary: 'List locations',
      tag: 'Inventory',
      auth: { resource: 'inventory', action: 'read' },
      query: [...LIST_PARAMS, { name: 'code', description: 'Only the location with this code.', schema: { type: 'string', maxLength: 40 } }],
      responses: { 200: { description: 'A page of locations', schema: { list: LOCATION } } },
    },
    (c, { query }) => listOwned(c, 'locations', query, { code: query.code as string | undefined }),
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/locations/{id}',
      operationId: 'getLocation',
      summary: 'Get a location',
      tag: 'Inventory',
      auth: { resource: 'inventory', action: 'read' },
      responses: { 200: { description: 'The location', schema: LOCATION, headers: ['ETag'] }, 404: PROBLEM('No such location') },
    },
    async (c) => respondResource(c, await loadOwned(c, 'locations', pathParam(c, 'id'))),
  );

  routes.add<Partial<LocationInput>>(
    {
      method: 'patch',
      path: '/v1/locations/{id}',
      operationId: 'updateLocation',
      summary: 'Change a location; an inactive one keeps its stock but takes no new reservations or receipts',
      tag: 'Inventory',
      auth: { resource: 'inventory', action: 'write' },
      body: { schema: 'hub:api/location-update' },
      ifMatch: true,
      responses: { 200: { description: 'The location', schema: LOCATION, headers: ['ETag'] }, 404: PROBLEM('No such location'), 412: PROBLEM('Stale If-Match') },
    },
    async (c, { body }) => {
      const saved = await runInventory(c, async (ctx) => {
        const loc = await loadOwned(c, 'locations', pathParam(c, 'id'), ctx.db);
        const row = await ctx.db.table('locations').update(loc.id, body, { ifVersion: expectVersion(c, loc) });
        await emit(ctx, 'location.updated', row.id, { location: row, changes: Object.keys(body) });
        return row;
      });
      return jsonWithEtag(c, saved);
    },
  );

  routes.add(
    {
      method: 'delete',
      path: '/v1/locations/{id}',
      operationId: 'deleteLocation',
      summary: 'Delete a location that never held stock (deactivate the others)',
      tag: 'Inventory',
      auth: { resource: 'inventory', action: 'write' },
      ifMatch: true,
      responses: { 204: { description: 'Deleted' }, 404: PROBLEM('No such location'), 409: PROBLEM('The location has stock or history'), 412: PROBLEM('Stale If-Match') },
    },
    async (c) => {
      await runInventory(c, async (ctx) => {
        const loc = await loadOwned(c, 'locations', pathParam(c, 'id'), ctx.db);
        const where = { workspaceId: ctx.workspaceId, locationId: loc.id };
        // Whether any is there, not how many: a busy location has millions of movements, read under the write lock.
        const used = (await ctx.db.table('movements').exists(where)) || (await ctx.db.table('allocations').exists(where)) || (await ctx.db.table('purchase_orders').exists(where));
        if (used) throw new HubError('in_use', `Location ${loc.code} has stock history; set active to false instead of deleting it`);
        await ctx.db.table('stock_levels').deleteWhere(where);
        await ctx.db.table('locations').delete(loc.id, { ifVersion: expectVersion(c, loc) });
        await emit(ctx, 'location.deleted', loc.id, { locationId: loc.id, code: loc.code });
      });
      return c.body(null, 204);
    },
  );
}
