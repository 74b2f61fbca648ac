// The event feed: the workspace's events in the order they happened, filtered by type patterns, read with `after`.
import { typeFilter } from '../../events/log.ts';
import type { Where } from '../../store/types.ts';
import type { RouteTable } from '../define-route.ts';
import { loadOwned, PROBLEM } from './common.ts';

const EVENT = 'hub:tables/events';

export function registerEventRoutes(routes: RouteTable): void {
  routes.add(
    {
      method: 'get',
      path: '/v1/events',
      operationId: 'listEvents',
      summary: 'Read the event feed, oldest first',
      description:
        'Poll with `after` set to the `nextCursor` of the previous answer; it is never null once anything was read, so a consumer can ' +
        'keep polling from where it stopped. `type` takes comma-separated types or prefixes such as `order.*`.',
      tag: 'Events',
      auth: { resource: 'events', action: 'read' },
      query: [
        { name: 'after', description: 'Only events after this event id.', schema: { type: 'string', maxLength: 36 } },
        { name: 'type', description: 'Comma-separated event types or prefixes (`order.*`, `stock.updated`).', schema: { type: 'string', maxLength: 1000 } },
        { name: 'subject', description: 'Only events about this subject (e.g. one order id).', schema: { type: 'string', maxLength: 255 } },
        { name: 'limit', description: 'At most this many events, 1 to 1000 (default 100).', schema: { type: 'integer', minimum: 1, maximum: 1000 } },
      ],
      responses: {
        200: {
          description: 'Events and where to continue',
          schema: {
            type: 'object',
            required: ['data', 'nextCursor', 'hasMore'],
            properties: { data: { type: 'array', items: { $ref: EVENT } }, nextCursor: { type: ['string', 'null'] }, hasMore: { type: 'boolean' } },
          },
        },
      },
    },
    async (c, { query }) => {
      const after = query.after as string | undefined;
      const where: Where = { workspaceId: c.get('principal').workspaceId, subject: query.subject as string | undefined };
      if (after) where.id = { gt: after };
      if (query.type !== undefined) {
        const filter = typeFilter(String(query.type).split(',').map((t) => t.trim()));
        if (filter) Object.assign(where, filter);
      }
      // Ids are time-ordered and assigned in commit order in one process, so `id > after` is a gap-free feed.
      const page = await c.get('deps').store.table('events').query({ where, orderBy: { field: 'id' }, limit: (query.limit as number | undefined) ?? 100 });
      const last = page.items[page.items.length - 1];
      return c.json({ data: page.items, nextCursor: last?.id ?? after ?? null, hasMore: page.nextCursor !== null });
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/events/{id}',
      operationId: 'getEvent',
      summary: 'Get one event',
      tag: 'Events',
      auth: { resource: 'events', action: 'read' },
      responses: { 200: { description: 'The event', schema: EVENT }, 404: PROBLEM('No such event') },
    },
    async (c) => c.json(await loadOwned(c, 'events', c.req.param('id')!)),
  );
}
