// POST /hooks/{connectionId}: where vendors and the customer's own systems push webhooks. The body is read as
// raw bytes and verified before anything is parsed; a verified request is stored with its job and answered 202
// (or 200 or 204, as the connection's connector says its sender requires).
import type { RouteTable } from '../define-route.ts';
import { sendJson } from '../http.ts';
import { PROBLEM } from './common.ts';

/** The path and query of the request, as a vendor that signs its URL signed them. */
function pathAndQuery(url: string): string {
  const { pathname, search } = new URL(url);
  return pathname + search;
}

export function registerHookRoutes(routes: RouteTable): void {
  routes.add(
    {
      method: 'post',
      path: '/hooks/{connectionId}',
      operationId: 'receiveWebhook',
      summary: 'Receive a webhook for a connection',
      description:
        'The connection’s connector verifies the signature over the raw body (Standard Webhooks, HMAC-SHA256, or the vendor’s scheme). ' +
        'A verified webhook is stored and applied in the background; a resend with the same delivery id is acknowledged and dropped. ' +
        'A bad signature gets 401 without detail; an unknown connection 404; a body over the limit 413. ' +
        'A query string is the sender’s own: it is passed to the connector’s verifier with the path, and otherwise ignored.',
      tag: 'Webhooks',
      auth: false,
      // A vendor's webhook settings take any address: one given with a query of the user's own still receives.
      openQuery: true,
      responses: {
        200: { description: 'Stored, for a connection whose sender takes only 200 (the connector’s answer): `{id, duplicate}` or no body' },
        202: {
          description: 'Stored; it is applied in the background',
          schema: { type: 'object', required: ['id', 'duplicate'], properties: { id: { type: 'string' }, duplicate: { type: 'boolean' } } },
        },
        204: { description: 'Stored, for a connection whose connector answers with no body' },
        401: PROBLEM('The signature is missing or not valid (with no body when the connector answers so)'),
        404: PROBLEM('No connection receives webhooks here'),
        413: PROBLEM('The body is too large'),
      },
    },
    async (c) => {
      const body = new Uint8Array(await c.req.arrayBuffer());
      const outcome = await c.get('deps').webhooks.receiver.receive(c.req.param('connectionId')!, {
        method: 'POST',
        headers: c.req.raw.headers,
        body,
        url: pathAndQuery(c.req.url),
      });
      if (outcome.kind === 'answer') return new Response(outcome.body ?? null, { status: outcome.status, headers: outcome.headers });
      const answer = outcome.answer;
      if (answer?.empty) return new Response(null, { status: answer.status });
      // sendJson: plain-object headers, written straight to the socket (c.json builds a Headers object).
      return sendJson(c, answer?.status ?? 202, { id: outcome.id, duplicate: outcome.duplicate });
    },
  );
}
