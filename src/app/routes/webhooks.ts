// /v1/webhooks: outbound endpoints (subscriptions with filters, headers, a rate limit and a rotating signing
// secret), their deliveries and attempt logs, replays, and the delivery ledger; and /v1/inbox, the inbound
// webhooks as received and what applying them did.
import type { Context } from 'hono';
import { auditRequest } from '../../audit/log.ts';
import { HubError } from '../../errors.ts';
import type { JsonSchema } from '../../schemas/registry.ts';
import type { InboxRow, WebhookEndpointsRow } from '../../store/types.ts';
import { INBOX_JOB } from '../../webhooks/inbound.ts';
import {
  createEndpoint,
  deleteEndpoint,
  deliveryLedger,
  endpointIdsOf,
  disableEndpoint,
  enableEndpoint,
  movesPerTransaction,
  queueTheRest,
  replayDelivery,
  replayEndpoint,
  revealSecret,
  rotateSecret,
  sendTestEvent,
  updateEndpoint,
  type EndpointInput,
  type EndpointPatch,
  type ReplayInput,
} from '../../webhooks/manage.ts';
import type { HubEnv } from '../deps.ts';
import type { RouteTable } from '../define-route.ts';
import { expectVersion, jsonWithEtag, present, respondResource } from '../http.ts';
import { LIST_PARAMS, listOwned, loadOwned, nowIso, PROBLEM } from './common.ts';

const ENDPOINT = 'hub:tables/webhook_endpoints';
const DELIVERY = 'hub:tables/webhook_deliveries';
const ATTEMPT = 'hub:tables/webhook_attempts';
const INBOX = 'hub:tables/inbox';
const TAG = 'Webhooks';
const READ = { resource: 'webhooks', action: 'read' } as const;
const WRITE = { resource: 'webhooks', action: 'write' } as const;

const WITH_SECRET: JsonSchema = {
  type: 'object',
  required: ['endpoint', 'secret'],
  properties: {
    endpoint: { $ref: ENDPOINT },
    secret: { type: 'string', description: 'The `whsec_` signing secret. Also readable later at /secret.' },
    previousSecretExpiresAt: { type: ['string', 'null'] },
  },
};

const LEDGER: JsonSchema = {
  type: 'object',
  required: ['published', 'delivered', 'pending', 'dead', 'byState'],
  properties: {
    published: { type: 'integer', description: 'Deliveries created: each matching event times each endpoint enabled at the time.' },
    delivered: { type: 'integer' },
    pending: { type: 'integer', description: 'Still on their way: pending, waiting, sending or paused.' },
    dead: { type: 'integer' },
    byState: { type: 'object', additionalProperties: { type: 'integer' } },
  },
};

const publicEndpoint = (row: WebhookEndpointsRow) => present('webhook_endpoints', row) as WebhookEndpointsRow;
const workspaceOf = (c: Context<HubEnv>) => c.get('principal').workspaceId;
const policyOf = (c: Context<HubEnv>) => c.get('deps').webhooks.policy;

export function registerWebhookRoutes(routes: RouteTable): void {
  routes.add<EndpointInput>(
    {
      method: 'post',
      path: '/v1/webhooks/endpoints',
      operationId: 'createWebhookEndpoint',
      summary: 'Subscribe a URL to events',
      description:
        'Every event whose type matches `eventTypes` is delivered to the URL as a Standard Webhooks signed POST, retried on failure ' +
        'for three days. The answer holds the signing secret.',
      tag: TAG,
      auth: WRITE,
      body: { schema: 'hub:api/webhook-endpoint-create' },
      responses: { 201: { description: 'The endpoint and its secret', schema: WITH_SECRET, headers: ['Location'] } },
    },
    async (c, { body }) => {
      const { store, cipher } = c.get('deps');
      const { endpoint, secret } = await store.transaction(async (tx) => {
        const created = await createEndpoint(tx, { cipher, policy: policyOf(c) }, workspaceOf(c), body, nowIso(c));
        await auditRequest(tx, c, { action: 'webhook_endpoint.created', resourceType: 'webhook_endpoint', resourceId: created.endpoint.id, details: { url: body.url } });
        return created;
      });
      c.header('Location', `/v1/webhooks/endpoints/${endpoint.id}`);
      return c.json({ endpoint: publicEndpoint(endpoint), secret }, 201);
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/webhooks/endpoints',
      operationId: 'listWebhookEndpoints',
      summary: 'List webhook endpoints, newest first',
      tag: TAG,
      auth: READ,
      query: [...LIST_PARAMS, { name: 'status', description: 'Only endpoints in this status.', schema: { type: 'string', enum: ['enabled', 'disabled'] } }],
      responses: { 200: { description: 'A page of endpoints', schema: { list: ENDPOINT } } },
    },
    (c, { query }) => listOwned(c, 'webhook_endpoints', query, { status: query.status as string | undefined }),
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/webhooks/endpoints/{id}',
      operationId: 'getWebhookEndpoint',
      summary: 'Get a webhook endpoint',
      tag: TAG,
      auth: READ,
      responses: { 200: { description: 'The endpoint', schema: ENDPOINT, headers: ['ETag'] }, 404: PROBLEM('No such endpoint') },
    },
    async (c) => respondResource(c, publicEndpoint(await loadOwned(c, 'webhook_endpoints', c.req.param('id')!))),
  );

  routes.add<EndpointPatch>(
    {
      method: 'patch',
      path: '/v1/webhooks/endpoints/{id}',
      operationId: 'updateWebhookEndpoint',
      summary: 'Change an endpoint’s URL, filters, headers, description or rate limit',
      tag: TAG,
      auth: WRITE,
      body: { schema: 'hub:api/webhook-endpoint-update' },
      ifMatch: true,
      responses: { 200: { description: 'The endpoint', schema: ENDPOINT, headers: ['ETag'] }, 404: PROBLEM('No such endpoint'), 412: PROBLEM('Stale If-Match') },
    },
    async (c, { body }) => {
      const { store } = c.get('deps');
      const row = await store.transaction(async (tx) => {
        const endpoint = await loadOwned(c, 'webhook_endpoints', c.req.param('id')!, tx);
        const saved = await updateEndpoint(tx, policyOf(c), endpoint, body, expectVersion(c, endpoint));
        await auditRequest(tx, c, { action: 'webhook_endpoint.updated', resourceType: 'webhook_endpoint', resourceId: endpoint.id, details: { fields: Object.keys(body) } });
        return saved;
      });
      return jsonWithEtag(c, publicEndpoint(row));
    },
  );

  routes.add(
    {
      method: 'delete',
      path: '/v1/webhooks/endpoints/{id}',
      operationId: 'deleteWebhookEndpoint',
      summary: 'Delete an endpoint with its deliveries and their log',
      description:
        'The endpoint is gone at once and nothing more is sent to it; its deliveries and their attempt log are deleted by a background job ' +
        '(`webhooks.endpoint.purge`, visible under /v1/jobs), a chunk at a time, however many there are.',
      tag: TAG,
      auth: WRITE,
      responses: { 204: { description: 'Deleted' }, 404: PROBLEM('No such endpoint') },
    },
    async (c) => {
      const { store } = c.get('deps');
      await store.transaction(async (tx) => {
        const endpoint = await loadOwned(c, 'webhook_endpoints', c.req.param('id')!, tx);
        await deleteEndpoint(tx, c.get('deps').queue, endpoint);
        await auditRequest(tx, c, { action: 'webhook_endpoint.deleted', resourceType: 'webhook_endpoint', resourceId: endpoint.id });
      });
      return c.body(null, 204);
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/webhooks/endpoints/{id}/secret',
      operationId: 'getWebhookEndpointSecret',
      summary: 'Read the endpoint’s signing secret (needs webhooks:write)',
      tag: TAG,
      auth: WRITE,
      responses: { 200: { description: 'The secret', schema: WITH_SECRET }, 404: PROBLEM('No such endpoint') },
    },
    async (c) => {
      const endpoint = await loadOwned(c, 'webhook_endpoints', c.req.param('id')!);
      await auditRequest(c.get('deps').store, c, { action: 'webhook_endpoint.secret_read', resourceType: 'webhook_endpoint', resourceId: endpoint.id });
      return c.json({ endpoint: publicEndpoint(endpoint), ...revealSecret(c.get('deps').cipher, endpoint) });
    },
  );

  routes.add<{ secret?: string; graceSeconds?: number }>(
    {
      method: 'post',
      path: '/v1/webhooks/endpoints/{id}/rotate-secret',
      operationId: 'rotateWebhookEndpointSecret',
      summary: 'Replace the signing secret; the old one keeps signing beside it for the grace period',
      tag: TAG,
      auth: WRITE,
      body: { schema: 'hub:api/webhook-secret-rotate', required: false },
      responses: { 200: { description: 'The endpoint and its new secret', schema: WITH_SECRET }, 404: PROBLEM('No such endpoint') },
    },
    async (c, { body }) => {
      const { store, cipher, clock } = c.get('deps');
      const rotated = await store.transaction(async (tx) => {
        const endpoint = await loadOwned(c, 'webhook_endpoints', c.req.param('id')!, tx);
        const result = await rotateSecret(tx, cipher, endpoint, body ?? {}, clock.now());
        await auditRequest(tx, c, { action: 'webhook_endpoint.secret_rotated', resourceType: 'webhook_endpoint', resourceId: endpoint.id, details: { graceSeconds: body?.graceSeconds ?? 86_400 } });
        return result;
      });
      return c.json({ endpoint: publicEndpoint(rotated.endpoint), secret: rotated.secret, previousSecretExpiresAt: rotated.endpoint.previousSecretExpiresAt ?? null });
    },
  );

  for (const verb of ['enable', 'disable'] as const) {
    routes.add(
      {
        method: 'post',
        path: `/v1/webhooks/endpoints/{id}/${verb}`,
        operationId: `${verb}WebhookEndpoint`,
        summary: verb === 'enable' ? 'Enable an endpoint again: its failures are forgotten and what waited is sent' : 'Disable an endpoint: its deliveries wait until it is enabled',
        tag: TAG,
        auth: WRITE,
        responses: { 200: { description: 'The endpoint', schema: ENDPOINT, headers: ['ETag'] }, 404: PROBLEM('No such endpoint') },
      },
      async (c) => {
        const { store } = c.get('deps');
        const now = nowIso(c);
        // The endpoint's own write and the audit entry, then its first deliveries (movesPerTransaction); a job
        // queued with them moves the rest, a chunk per transaction.
        const room = movesPerTransaction(store);
        const endpoint = await store.transaction(async (tx) => {
          const endpoint = await loadOwned(c, 'webhook_endpoints', c.req.param('id')!, tx);
          const done = verb === 'enable' ? await enableEndpoint(tx, endpoint, now, room) : await disableEndpoint(tx, endpoint, now, room);
          if (done.more) await queueTheRest(tx, c.get('deps').queue, done.endpoint, `${verb}d`);
          await auditRequest(tx, c, { action: `webhook_endpoint.${verb}d`, resourceType: 'webhook_endpoint', resourceId: endpoint.id });
          return done.endpoint;
        });
        c.get('deps').dispatcher?.wake();
        return jsonWithEtag(c, publicEndpoint(endpoint));
      },
    );
  }

  routes.add<ReplayInput>(
    {
      method: 'post',
      path: '/v1/webhooks/endpoints/{id}/replay',
      operationId: 'replayWebhookEndpoint',
      summary: 'Send again the failed deliveries since a time, or every matching event in a time range',
      tag: TAG,
      auth: WRITE,
      body: { schema: 'hub:api/webhook-replay' },
      responses: {
        200: {
          description: 'How many were started again or created',
          schema: {
            type: 'object',
            required: ['replayed', 'created', 'hasMore', 'nextSince', 'nextCursor'],
            properties: { replayed: { type: 'integer' }, created: { type: 'integer' }, hasMore: { type: 'boolean' }, nextSince: { type: ['string', 'null'] }, nextCursor: { type: ['string', 'null'] } },
          },
        },
        404: PROBLEM('No such endpoint'),
      },
    },
    async (c, { body }) => {
      const { store } = c.get('deps');
      const result = await store.transaction(async (tx) => {
        const endpoint = await loadOwned(c, 'webhook_endpoints', c.req.param('id')!, tx);
        // One call writes at most one delivery per event or failed delivery it reads: within a bounded store's room.
        const limit = Math.min(body.limit ?? 500, store.writesPerTransaction - 2);
        const replayed = await replayEndpoint(tx, endpoint, { ...body, limit }, nowIso(c));
        await auditRequest(tx, c, { action: 'webhook_endpoint.replayed', resourceType: 'webhook_endpoint', resourceId: endpoint.id, details: { scope: body.scope, since: body.since, ...replayed } });
        return replayed;
      });
      c.get('deps').dispatcher?.wake();
      return c.json(result);
    },
  );

  routes.add(
    {
      method: 'post',
      path: '/v1/webhooks/endpoints/{id}/test',
      operationId: 'testWebhookEndpoint',
      summary: 'Send a `webhook.test` event to this endpoint only',
      tag: TAG,
      auth: WRITE,
      responses: { 202: { description: 'The test delivery, on its way', schema: DELIVERY }, 404: PROBLEM('No such endpoint'), 409: PROBLEM('The endpoint is disabled') },
    },
    async (c) => {
      const endpoint = await loadOwned(c, 'webhook_endpoints', c.req.param('id')!);
      if (endpoint.status !== 'enabled') throw new HubError('invalid_transition', `Endpoint ${endpoint.id} is disabled; enable it first`);
      const delivery = await sendTestEvent(c.get('deps').store, endpoint, nowIso(c));
      c.get('deps').dispatcher?.wake();
      return c.json(delivery, 202);
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/webhooks/endpoints/{id}/stats',
      operationId: 'getWebhookEndpointStats',
      summary: 'The endpoint’s delivery ledger: published = delivered + pending + dead',
      tag: TAG,
      auth: READ,
      responses: { 200: { description: 'The ledger', schema: LEDGER }, 404: PROBLEM('No such endpoint') },
    },
    async (c) => {
      const endpoint = await loadOwned(c, 'webhook_endpoints', c.req.param('id')!);
      return c.json(await deliveryLedger(c.get('deps').store, workspaceOf(c), endpoint.id));
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/webhooks/stats',
      operationId: 'getWebhookStats',
      summary: 'The workspace’s delivery ledger over every endpoint',
      tag: TAG,
      auth: READ,
      responses: { 200: { description: 'The ledger', schema: LEDGER } },
    },
    async (c) => c.json(await deliveryLedger(c.get('deps').store, workspaceOf(c))),
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/webhooks/deliveries',
      operationId: 'listWebhookDeliveries',
      summary: 'List deliveries, newest first',
      tag: TAG,
      auth: READ,
      query: [
        ...LIST_PARAMS,
        { name: 'endpointId', description: 'Only deliveries to this endpoint.', schema: { type: 'string', maxLength: 36 } },
        { name: 'eventId', description: 'Only deliveries of this event.', schema: { type: 'string', maxLength: 36 } },
        { name: 'state', description: 'Only deliveries in this state.', schema: { type: 'string', enum: ['pending', 'waiting', 'sending', 'paused', 'delivered', 'dead'] } },
      ],
      responses: { 200: { description: 'A page of deliveries', schema: { list: DELIVERY } } },
    },
    async (c, { query }) => {
      const eventId = query.eventId as string | undefined;
      let endpointId: string | { in: string[] } | undefined = query.endpointId as string | undefined;
      // An event's deliveries, one per endpoint: found by the (endpointId, eventId) index, an endpoint at a time,
      // rather than among all the workspace's deliveries (up to 100 endpoints, as many values as an Appwrite query takes).
      if (eventId !== undefined && endpointId === undefined) {
        const ids = await endpointIdsOf(c.get('deps').store, workspaceOf(c));
        if (ids.length <= 100) endpointId = { in: ids };
      }
      return listOwned(c, 'webhook_deliveries', query, { endpointId, eventId, state: query.state as string | undefined });
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/webhooks/deliveries/{id}',
      operationId: 'getWebhookDelivery',
      summary: 'Get a delivery',
      tag: TAG,
      auth: READ,
      responses: { 200: { description: 'The delivery', schema: DELIVERY, headers: ['ETag'] }, 404: PROBLEM('No such delivery') },
    },
    async (c) => respondResource(c, await loadOwned(c, 'webhook_deliveries', c.req.param('id')!)),
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/webhooks/deliveries/{id}/attempts',
      operationId: 'listWebhookDeliveryAttempts',
      summary: 'The attempts of a delivery: status, latency, the start of the response, or the error',
      tag: TAG,
      auth: READ,
      query: LIST_PARAMS,
      responses: { 200: { description: 'A page of attempts, newest first', schema: { list: ATTEMPT } }, 404: PROBLEM('No such delivery') },
    },
    async (c, { query }) => {
      const delivery = await loadOwned(c, 'webhook_deliveries', c.req.param('id')!);
      return listOwned(c, 'webhook_attempts', query, { deliveryId: delivery.id });
    },
  );

  routes.add(
    {
      method: 'post',
      path: '/v1/webhooks/deliveries/{id}/replay',
      operationId: 'replayWebhookDelivery',
      summary: 'Send a delivered or dead delivery again (same webhook-id)',
      tag: TAG,
      auth: WRITE,
      responses: { 200: { description: 'The delivery, pending again', schema: DELIVERY }, 404: PROBLEM('No such delivery'), 409: PROBLEM('The delivery is still on its way') },
    },
    async (c) => {
      const { store } = c.get('deps');
      const row = await store.transaction(async (tx) => {
        const delivery = await loadOwned(c, 'webhook_deliveries', c.req.param('id')!, tx);
        const saved = await replayDelivery(tx, delivery, nowIso(c));
        await auditRequest(tx, c, { action: 'webhook_delivery.replayed', resourceType: 'webhook_delivery', resourceId: delivery.id });
        return saved;
      });
      c.get('deps').dispatcher?.wake();
      return c.json(row);
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/inbox',
      operationId: 'listInbox',
      summary: 'List inbound webhooks as received, newest first',
      tag: TAG,
      auth: READ,
      query: [
        ...LIST_PARAMS,
        { name: 'connectionId', description: 'Only webhooks to this connection.', schema: { type: 'string', maxLength: 36 } },
        { name: 'status', description: 'Only webhooks in this status.', schema: { type: 'string', enum: ['received', 'processed', 'ignored', 'failed'] } },
      ],
      responses: { 200: { description: 'A page of inbound webhooks', schema: { list: INBOX } } },
    },
    (c, { query }) => listOwned(c, 'inbox', query, { connectionId: query.connectionId as string | undefined, status: query.status as string | undefined }),
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/inbox/{id}',
      operationId: 'getInboxMessage',
      summary: 'Get an inbound webhook: the raw request (body in base64) and what applying it did',
      tag: TAG,
      auth: READ,
      responses: { 200: { description: 'The inbound webhook', schema: INBOX, headers: ['ETag'] }, 404: PROBLEM('No such inbound webhook') },
    },
    async (c) => respondResource(c, present('inbox', await loadOwned(c, 'inbox', c.req.param('id')!)) as InboxRow),
  );

  routes.add(
    {
      method: 'post',
      path: '/v1/inbox/{id}/retry',
      operationId: 'retryInboxMessage',
      summary: 'Apply a failed or ignored inbound webhook again (after fixing its mapping or routes)',
      tag: TAG,
      auth: WRITE,
      responses: { 202: { description: 'Queued again', schema: INBOX }, 404: PROBLEM('No such inbound webhook'), 409: PROBLEM('It is not failed or ignored') },
    },
    async (c) => {
      const { store, queue } = c.get('deps');
      const row = await store.transaction(async (tx) => {
        const inbox = await loadOwned(c, 'inbox', c.req.param('id')!, tx);
        if (inbox.status !== 'failed' && inbox.status !== 'ignored') {
          throw new HubError('invalid_transition', `Inbound webhook ${inbox.id} is ${inbox.status}; only a failed or ignored one is applied again`);
        }
        const { job } = await queue.enqueue({ type: INBOX_JOB, payload: { inboxId: inbox.id }, workspaceId: inbox.workspaceId, maxAttempts: 10 }, tx);
        const saved = await tx.table('inbox').update(inbox.id, { status: 'received', processedAt: null, result: null, jobId: job.id }, { ifVersion: inbox.version });
        await auditRequest(tx, c, { action: 'inbox.retried', resourceType: 'inbox', resourceId: inbox.id });
        return saved;
      });
      return c.json(present('inbox', row), 202);
    },
  );
}
