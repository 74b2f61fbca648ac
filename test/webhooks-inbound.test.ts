// Inbound webhooks through /hooks/{connectionId}: verified over the raw bytes (Standard Webhooks signed by the
// official library, and plain HMAC-SHA256), deduplicated on the sender's delivery id, stored with their job in one
// write, then parsed, mapped and applied exactly once by the worker; and every way a request can be bad.
import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CONNECTORS } from '../connectors/index.ts';
import { defineConnector, type ConnectorWebhooks } from '../src/connectors/define.ts';
import { createTestHub, expectProblem, runDueJobs, runDueJobsTogether, type TestHub } from './helpers.ts';
import type { JobsRow } from '../src/store/types.ts';
import type { SqliteStore } from '../src/store/sqlite.ts';
import { webhooksOfJob } from '../src/webhooks/inbound.ts';

const SECRET = 'whsec_' + Buffer.alloc(32, 9).toString('base64');
let t: TestHub;
let locationId: string;

beforeEach(async () => {
  t = await createTestHub({ config: { maxBodyBytes: 64 * 1024 } });
  const loc = await t.call('POST', '/v1/locations', { body: { code: 'LON-1', name: 'London' } });
  locationId = loc.body.id;
  await t.call('POST', '/v1/products', { body: { sku: 'TEE-1', name: 'Tee' } });
  await t.call('POST', '/v1/stock/receipts', { body: { locationId, lines: [{ sku: 'TEE-1', quantity: 10, unitCost: '2.00' }] } });
});
afterEach(() => t.close());

async function connect(config: Record<string, unknown> = {}, credentials: Record<string, unknown> = { secret: SECRET }) {
  const res = await t.call('POST', '/v1/connections', {
    body: {
      connectorId: 'webhook',
      name: `shop-${Math.random()}`,
      config: { verification: { scheme: 'standard-webhooks' }, routes: [{ event: 'stock.*', mapping: 'webhook-stock-change-in', action: 'stock.adjust' }], ...config },
      credentials,
    },
  });
  expect(res.status, res.text).toBe(201);
  return res.body.id as string;
}

/** Signed with the official library, at the hub's (fake) time. */
function signed(body: string, id = `msg_${Math.random().toString(36).slice(2)}`, secret = SECRET) {
  const headers = new Webhook(secret).sign(id, new Date(t.clock.now()), body);
  return { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(t.clock.now() / 1000)), 'webhook-signature': headers, 'content-type': 'application/json' };
}

/** The same `v1,` signature with its first digest character swapped for another base64 character. */
function tamper(signature: string): string {
  const at = 'v1,'.length;
  return signature.slice(0, at) + (signature[at] === 'A' ? 'B' : 'A') + signature.slice(at + 1);
}

const change = (n: number, extra: Record<string, unknown> = {}) => JSON.stringify({ type: 'stock.changed', timestamp: '2026-03-01T12:00:00Z', data: { sku: 'TEE-1', location: 'LON-1', change: n, ...extra } });

function post(connectionId: string, body: string, headers: Record<string, string>) {
  return t.call('POST', `/hooks/${connectionId}`, { key: null, rawBody: body, headers });
}

async function onHand(): Promise<number> {
  const items = await t.call('GET', '/v1/stock-levels?limit=10');
  return items.body.data.find((l: { sku: string }) => l.sku === 'TEE-1').onHand;
}

describe('inbound webhooks', () => {
  it('verifies, stores with its job, answers 202, and the worker maps and applies it', async () => {
    const conn = await connect();
    const body = change(-3, { reason: 'walk-in sale' });
    const res = await post(conn, body, { ...signed(body, 'msg_1'), authorization: 'Basic dmVuZG9yOnMzY3IzdA==', 'x-request-id': 'r-1' });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ duplicate: false });
    expect(await onHand()).toBe(10);
    const stored = await t.call('GET', `/v1/inbox/${res.body.id}`);
    expect(stored.body).toMatchObject({ status: 'received', deliveryId: 'msg_1', connectionId: conn });
    // The sender's credentials are kept, not shown (the inbox is readable with read access); the rest is shown as it came.
    expect(stored.body.headers).toMatchObject({ authorization: '[redacted]', 'x-request-id': 'r-1', 'webhook-id': 'msg_1' });
    expect(stored.body.headers['webhook-signature']).toMatch(/^v1,/);
    expect((await t.call('GET', '/v1/inbox')).body.data[0].headers.authorization).toBe('[redacted]');
    // The raw bytes are kept exactly: a later replay is verified and parsed from what arrived.
    expect(Buffer.from(stored.body.body, 'base64').toString()).toBe(body);
    expect(await runDueJobs(t.hub)).toBe(1);
    expect(await onHand()).toBe(7);
    const done = await t.call('GET', `/v1/inbox/${res.body.id}`);
    expect(done.body).toMatchObject({ status: 'processed', result: { action: 'stock.adjust' } });
    const events = await t.call('GET', '/v1/events?type=stock.updated');
    expect(events.body.data.length).toBeGreaterThanOrEqual(2);
  });

  it('applies a resent delivery once: same webhook-id, acknowledged again, stored and applied once', async () => {
    const conn = await connect();
    const body = change(-1);
    const headers = signed(body, 'msg_dup');
    const first = await post(conn, body, headers);
    const again = await post(conn, body, headers);
    expect(again.status).toBe(202);
    expect(again.body).toEqual({ id: first.body.id, duplicate: true });
    await runDueJobs(t.hub);
    expect(await onHand()).toBe(9);
    expect((await t.call('GET', `/v1/inbox?connectionId=${conn}`)).body.data).toHaveLength(1);
  });

  it('applies each webhook exactly once even when its job runs twice', async () => {
    const conn = await connect();
    const body = change(-2);
    const res = await post(conn, body, signed(body));
    const inbox = await t.hub.deps.store.table('inbox').get(res.body.id);
    // A second job for the same message, as after a lease expired mid-run on another worker.
    await t.hub.queue.enqueue({ type: 'inbox.process', payload: { inboxId: inbox!.id } });
    expect(await runDueJobs(t.hub)).toBe(2);
    expect(await onHand()).toBe(8);
  });

  it('accepts plain HMAC-SHA256 signatures with a prefix, a timestamp and a delivery id header', async () => {
    const conn = await connect(
      { verification: { scheme: 'hmac-sha256', signatureHeader: 'X-Signature', encoding: 'hex', prefix: 'sha256=', timestampHeader: 'X-Timestamp', deliveryIdHeader: 'X-Delivery' } },
      { secret: 'shared-secret' },
    );
    const body = change(5);
    const ts = String(Math.floor(t.clock.now() / 1000));
    const sig = 'sha256=' + createHmac('sha256', 'shared-secret').update(`${ts}.${body}`).digest('hex');
    const ok = await post(conn, body, { 'x-signature': sig, 'x-timestamp': ts, 'x-delivery': 'd-1', 'content-type': 'application/json' });
    expect(ok.status).toBe(202);
    // The same signed request sent again under another delivery id (the header is not signed): one delivery.
    const resent = await post(conn, body, { 'x-signature': sig, 'x-timestamp': ts, 'x-delivery': 'd-attacker', 'content-type': 'application/json' });
    expect(resent.status).toBe(202);
    expect(resent.body).toEqual({ id: ok.body.id, duplicate: true });
    await runDueJobs(t.hub);
    expect(await onHand()).toBe(15);
    const stale = String(Number(ts) - 3600);
    const oldSig = 'sha256=' + createHmac('sha256', 'shared-secret').update(`${stale}.${body}`).digest('hex');
    expectProblem(await post(conn, body, { 'x-signature': oldSig, 'x-timestamp': stale, 'x-delivery': 'd-2' }), 401, 'unauthenticated');
  });

  it('accepts the previous secret during a rotation', async () => {
    const old = 'whsec_' + Buffer.alloc(32, 4).toString('base64');
    const conn = await connect({}, { secret: SECRET, previousSecret: old });
    const body = change(1);
    expect((await post(conn, body, signed(body, 'msg_old', old))).status).toBe(202);
    expect((await post(conn, body, signed(body, 'msg_new', SECRET))).status).toBe(202);
  });

  it('routes vendors\' slash topics by prefix (orders/*), the separator part of the prefix', async () => {
    const conn = await connect({ eventType: { header: 'X-Topic' }, routes: [{ event: 'inventory_levels/*', mapping: 'webhook-stock-change-in', action: 'stock.adjust' }] });
    const ids: Record<string, string> = {};
    for (const [topic, n] of [['inventory_levels/update', -2], ['inventory_levelsx/update', -1], ['inventory_levels', -1]] as const) {
      const body = change(n);
      const res = await post(conn, body, { ...signed(body), 'x-topic': topic });
      expect(res.status, topic).toBe(202);
      ids[topic] = res.body.id;
    }
    await runDueJobs(t.hub);
    expect(await onHand()).toBe(8);
    expect((await t.call('GET', `/v1/inbox/${ids['inventory_levels/update']}`)).body.status).toBe('processed');
    for (const topic of ['inventory_levelsx/update', 'inventory_levels']) {
      expect((await t.call('GET', `/v1/inbox/${ids[topic]}`)).body).toMatchObject({ status: 'ignored', result: { code: 'no_route', eventType: topic } });
    }
  });

  it('keeps what it cannot apply, with the reason, and applies it again on request once fixed', async () => {
    const conn = await connect({ routes: [{ event: 'stock.*', mapping: 'webhook-stock-change-in', action: 'stock.adjust' }] });
    const unknownSku = JSON.stringify({ type: 'stock.changed', data: { sku: 'NOPE', location: 'LON-1', change: 1 } });
    const noRoute = JSON.stringify({ type: 'customer.created', data: {} });
    const badMapping = JSON.stringify({ type: 'stock.changed', data: { location: 'LON-1', change: 'lots' } });
    const notJson = '{"type": "stock.changed", ';
    const ids: Record<string, string> = {};
    for (const [name, body] of Object.entries({ unknownSku, noRoute, badMapping, notJson })) {
      const res = await post(conn, body, signed(body));
      expect(res.status, name).toBe(202);
      ids[name] = res.body.id;
    }
    await runDueJobs(t.hub);
    const state = async (name: string) => (await t.call('GET', `/v1/inbox/${ids[name]}`)).body;
    expect(await state('unknownSku')).toMatchObject({ status: 'failed', result: { code: 'unknown_reference' } });
    expect(await state('noRoute')).toMatchObject({ status: 'ignored', result: { code: 'no_route', eventType: 'customer.created' } });
    expect(await state('badMapping')).toMatchObject({ status: 'failed', result: { code: 'mapping_failed' } });
    expect((await state('badMapping')).result.errors.map((e: { code: string }) => e.code).sort()).toEqual(['coercion_failed', 'missing_value']);
    expect(await state('notJson')).toMatchObject({ status: 'failed', result: { code: 'invalid_json' } });
    expect(await onHand()).toBe(10);
    // Fixed: the product exists now. Applying it again works; a processed one cannot be retried.
    await t.call('POST', '/v1/products', { body: { sku: 'NOPE', name: 'Was missing' } });
    const retried = await t.call('POST', `/v1/inbox/${ids.unknownSku}/retry`);
    expect(retried.status).toBe(202);
    await runDueJobs(t.hub);
    expect(await state('unknownSku')).toMatchObject({ status: 'processed' });
    expectProblem(await t.call('POST', `/v1/inbox/${ids.unknownSku}/retry`), 409, 'invalid_transition');
  });

  it('refuses bad signatures with 401 and no detail, storing nothing', async () => {
    const conn = await connect();
    const body = change(-1);
    const good = signed(body, 'msg_x');
    const cases: Record<string, string>[] = [
      // One character of the digest changed: well-formed, but not the signature of this message.
      { ...good, 'webhook-signature': tamper(good['webhook-signature']) },
      { ...good, 'webhook-id': 'msg_other' },
      { ...good, 'webhook-timestamp': String(Number(good['webhook-timestamp']) - 600) },
      { 'content-type': 'application/json' },
      signed(body, 'msg_y', 'whsec_' + Buffer.alloc(32, 1).toString('base64')),
    ];
    for (const headers of cases) {
      const res = await post(conn, body, headers);
      const problem = expectProblem(res, 401, 'unauthenticated');
      expect(problem.detail).toBe('The webhook signature is not valid');
      expect(problem.errors ?? []).toEqual([]);
    }
    // A body changed by one byte under a valid signature.
    expectProblem(await post(conn, change(-2), good), 401, 'unauthenticated');
    expect((await t.call('GET', '/v1/inbox')).body.data).toHaveLength(0);
  });

  it('answers 404 for an unknown, disabled, other-kind or deleted connection, and 413 for a body over the limit', async () => {
    const body = change(1);
    expectProblem(await post('con_doesnotexist', body, signed(body)), 404, 'not_found');
    const http = await t.call('POST', '/v1/connections', { body: { connectorId: 'http', name: 'erp', config: { baseUrl: 'https://erp.example.com' } } });
    expectProblem(await post(http.body.id, body, signed(body)), 404, 'not_found');
    const conn = await connect();
    const etag = (await t.call('GET', `/v1/connections/${conn}`)).headers.get('etag')!;
    await t.call('PATCH', `/v1/connections/${conn}`, { body: { status: 'disabled' }, headers: { 'If-Match': etag } });
    expectProblem(await post(conn, body, signed(body)), 404, 'not_found');
    const live = await connect();
    const big = JSON.stringify({ type: 'stock.changed', data: { sku: 'TEE-1', location: 'LON-1', change: 1, pad: 'x'.repeat(70 * 1024) } });
    expectProblem(await post(live, big, signed(big)), 413, 'payload_too_large');
    expect((await t.call('GET', '/v1/inbox')).body.data).toHaveLength(0);
  });

  it('refuses a connection whose verification or routes are not valid', async () => {
    const res = await t.call('POST', '/v1/connections', {
      body: { connectorId: 'webhook', name: 'bad', config: { verification: { scheme: 'hmac-sha256' }, routes: [{ event: 'x', mapping: 'm', action: 'stock.explode' }] }, credentials: {} },
    });
    const problem = expectProblem(res, 400, 'validation_failed');
    const fields = problem.errors.map((e: { field: string }) => e.field);
    expect(fields).toEqual(expect.arrayContaining(['/config/verification/signatureHeader', '/config/routes/0/action']));
    const noSecret = await t.call('POST', '/v1/connections', {
      body: { connectorId: 'webhook', name: 'bad2', config: { verification: { scheme: 'standard-webhooks' }, routes: [] }, credentials: {} },
    });
    expect(expectProblem(noSecret, 400, 'validation_failed').errors[0].field).toBe('/credentials/secret');
    // Valid by the schema, refused by the verifier: a Standard Webhooks secret must be base64 of 24 to 64 bytes.
    const badSecret = await t.call('POST', '/v1/connections', {
      body: { connectorId: 'webhook', name: 'bad3', config: { verification: { scheme: 'standard-webhooks' }, routes: [] }, credentials: { secret: 'whsec_short' } },
    });
    expectProblem(badSecret, 400, 'validation_failed');
    expect((await t.call('GET', '/v1/connections?connectorId=webhook')).body.data).toHaveLength(0);
  });
});

describe('senders with contracts of their own, through the custom webhook connector', () => {
  const XERO_KEY = 'OSd0eLlVIY9ZhViEqlDUh4+6n6M+Lo+eDaEJheJ6OCCgWwIz2D3JIAU6jPMipHRbgKTLz2uJ+xiACXGDBLrgdA==';
  // As ../shared/specs/xero/xero-webhooks.yaml has it: x-xero-signature, the base64 HMAC-SHA256 of the payload; 200
  // for a webhook received, 401 for a bad signature. Its intent-to-receive check sends both kinds before it turns a
  // subscription on.
  const xeroSigned = (body: string, key = XERO_KEY) => ({ 'content-type': 'application/json', 'x-xero-signature': createHmac('sha256', key).update(body).digest('base64') });
  const xeroConfig = {
    verification: { scheme: 'hmac-sha256', signatureHeader: 'x-xero-signature', encoding: 'base64' },
    eventType: { field: '/events/0/eventCategory' },
    response: { status: 200, body: 'empty', refusal: 'empty' },
    routes: [{ event: 'INVENTORY', mapping: 'webhook-stock-change-in', action: 'stock.adjust' }],
  };

  it('answers Xero’s intent to receive and its webhooks with 200, and a bad signature with an empty 401', async () => {
    const conn = await connect(xeroConfig, { secret: XERO_KEY });
    const intent = JSON.stringify({ events: [], firstEventSequence: 0, lastEventSequence: 0, entropy: 'FMLHZNKCVK' });
    const ok = await post(conn, intent, xeroSigned(intent));
    expect(ok.status).toBe(200);
    expect(ok.text).toBe('');
    const bad = await post(conn, intent, xeroSigned(intent, 'another-key'));
    expect(bad.status).toBe(401);
    expect(bad.text).toBe('');
    expect(bad.headers.get('content-type')).toBeNull();

    // The spec's credit note event: stored, answered 200 again when resent, and kept as ignored (no route takes it).
    const event = JSON.stringify({
      events: [
        {
          resourceUrl: 'https://api.xero.com/api.xro/2.0/CreditNotes/55d84274-a3da-4829-a7c0-0cab601b95cc',
          resourceId: '55d84274-a3da-4829-a7c0-0cab601b95cc',
          tenantId: 'aef86862-2015-4b6b-88bc-d89032cecc50',
          tenantType: 'ORGANISATION',
          eventCategory: 'CREDITNOTE',
          eventType: 'CREATE',
          eventDateUtc: '2025-12-02T00:44:09.923',
        },
      ],
      firstEventSequence: 76,
      lastEventSequence: 76,
      entropy: 'FXNGWLCCGVANWHKILRUB',
    });
    for (let i = 0; i < 2; i++) {
      const res = await post(conn, event, xeroSigned(event));
      expect(res.status).toBe(200);
      expect(res.text).toBe('');
    }
    await runDueJobs(t.hub);
    const inbox = (await t.call('GET', '/v1/inbox')).body.data as { status: string; result: { eventType?: string } }[];
    expect(inbox.map((r) => `${r.status} ${r.result.eventType ?? '(none)'}`).sort()).toEqual(['ignored (none)', 'ignored CREDITNOTE']);
  });

  it('answers 200 with the usual body, or 204, when the sender wants so; refusals keep their problem document', async () => {
    const conn = await connect({ response: { status: 200 } });
    const body = change(1);
    const res = await post(conn, body, signed(body));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ duplicate: false });
    expectProblem(await post(conn, body, { ...signed(body), 'webhook-signature': 'v1,nope' }), 401, 'unauthenticated');
    const none = await connect({ response: { status: 204 } });
    const empty = await post(none, body, signed(body));
    expect(empty.status).toBe(204);
    expect(empty.text).toBe('');
    const bad = await t.call('POST', '/v1/connections', {
      body: { connectorId: 'webhook', name: 'bad-answer', config: { verification: { scheme: 'standard-webhooks' }, routes: [], response: { status: 201 } }, credentials: { secret: SECRET } },
    });
    expect(expectProblem(bad, 400, 'validation_failed').errors[0].field).toBe('/config/response/status');
  });

  it('answers WooCommerce’s unsigned creation ping with 200, storing nothing, and verifies everything else', async () => {
    const key = 'woo-secret';
    const conn = await connect(
      { verification: { scheme: 'hmac-sha256', signatureHeader: 'x-wc-webhook-signature', encoding: 'base64', pingField: 'webhook_id' }, eventType: { header: 'x-wc-webhook-topic' } },
      { secret: key },
    );
    // As WC_Webhook::deliver_ping sends it: `webhook_id=<id>`, no signature; anything but 200 fails the webhook's creation.
    const ua = { 'user-agent': 'WooCommerce/9.0.0 Hookshot (WordPress/6.5)', 'content-type': 'application/x-www-form-urlencoded' };
    const ping = await post(conn, 'webhook_id=17', ua);
    expect(ping.status).toBe(200);
    for (const body of ['webhook_id=17&more=1', 'webhook_id=abc', 'webhook_id=', 'webhookid=17', '']) {
      expectProblem(await post(conn, body, ua), 401, 'unauthenticated');
    }
    // A signed request is verified as ever, even with a ping's body.
    expectProblem(await post(conn, 'webhook_id=17', { ...ua, 'x-wc-webhook-signature': 'bm9wZQ==' }), 401, 'unauthenticated');
    const body = change(-1);
    const signedWoo = { 'content-type': 'application/json', 'x-wc-webhook-topic': 'stock.changed', 'x-wc-webhook-signature': createHmac('sha256', key).update(body).digest('base64') };
    expect((await post(conn, body, signedWoo)).status).toBe(202);
    await runDueJobs(t.hub);
    expect(await onHand()).toBe(9);
    expect((await t.call('GET', '/v1/inbox')).body.data).toHaveLength(1);
  });

  it('dedupes on a signed id in the body, for senders whose retries change the body', async () => {
    const key = 'easypost-like-secret';
    const conn = await connect(
      { verification: { scheme: 'hmac-sha256', signatureHeader: 'x-hmac-signature', encoding: 'hex', prefix: 'hmac-sha256-hex=', deliveryIdField: '/id' } },
      { secret: key },
    );
    const send = (body: string) => post(conn, body, { 'content-type': 'application/json', 'x-hmac-signature': 'hmac-sha256-hex=' + createHmac('sha256', key).update(body).digest('hex') });
    const attempt = (status: string) => JSON.stringify({ id: 'evt_7', status, type: 'stock.changed', data: { sku: 'TEE-1', location: 'LON-1', change: -4 } });
    const first = await send(attempt('pending'));
    expect(first.body).toMatchObject({ duplicate: false });
    const retry = await send(attempt('completed'));
    expect(retry.body).toEqual({ id: first.body.id, duplicate: true });
    await runDueJobs(t.hub);
    expect(await onHand()).toBe(6);
    expect((await t.call('GET', `/v1/inbox/${first.body.id}`)).body.deliveryId).toBe('evt_7');
    const bad = await t.call('POST', '/v1/connections', {
      body: { connectorId: 'webhook', name: 'bad-field', config: { verification: { scheme: 'hmac-sha256', signatureHeader: 'x-s', deliveryIdField: 'id' }, routes: [] }, credentials: { secret: key } },
    });
    expect(expectProblem(bad, 400, 'validation_failed').errors[0].field).toBe('/config/verification/deliveryIdField');
  });

  it('takes a sender that signs nothing by a secret token in a header or in the address', async () => {
    const token = 'tok_' + 'q'.repeat(40);
    const inHeader = await connect({ verification: { scheme: 'token', tokenHeader: 'X-Hub-Token' } }, { secret: token });
    const body = change(-2);
    expect((await post(inHeader, body, { 'content-type': 'application/json', 'x-hub-token': token })).status).toBe(202);
    const resent = await post(inHeader, body, { 'content-type': 'application/json', 'x-hub-token': token });
    expect(resent.body).toMatchObject({ duplicate: true });
    expectProblem(await post(inHeader, body, { 'content-type': 'application/json', 'x-hub-token': token.slice(1) }), 401, 'unauthenticated');
    expectProblem(await post(inHeader, body, { 'content-type': 'application/json' }), 401, 'unauthenticated');

    const inQuery = await connect({ verification: { scheme: 'token' } }, { secret: token });
    const other = change(-1);
    const res = await t.call('POST', `/hooks/${inQuery}?token=${token}`, { key: null, rawBody: other, headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(202);
    expectProblem(await t.call('POST', `/hooks/${inQuery}?token=wrong`, { key: null, rawBody: other, headers: {} }), 401, 'unauthenticated');

    await runDueJobs(t.hub);
    expect(await onHand()).toBe(7);
    // The stored request keeps its token header, shown redacted.
    const stored = (await t.call('GET', '/v1/inbox')).body.data.find((r: { connectionId: string }) => r.connectionId === inHeader);
    expect(stored.headers['x-hub-token']).toBe('[redacted]');
    // A token short enough to guess is refused when the connection is saved.
    const short = await t.call('POST', '/v1/connections', {
      body: { connectorId: 'webhook', name: 'short', config: { verification: { scheme: 'token' }, routes: [] }, credentials: { secret: 'too-short' } },
    });
    expectProblem(short, 400, 'validation_failed');
  });
});

/** A vendor of the tests' own that receives webhooks as `webhooks` says. */
function testConnector(id: string, description: string, webhooks: ConnectorWebhooks) {
  return defineConnector({
    id,
    name: id,
    category: 'generic',
    description,
    configSchema: { type: 'object' },
    credentialsSchema: { type: 'object' },
    capabilities: ['webhooks'],
    create: () => ({ testConnection: async () => ({ ok: true, latencyMs: 0, message: 'ok' }), webhooks }),
  });
}

describe('handshakes through the connector seam', () => {
  // A vendor that proves the receiver is willing before it sends events (as Asana's X-Hook-Secret or Meta's
  // hub.challenge do): the connector's verifier answers it, and nothing is stored.
  const intentConnector = testConnector('intent-test', 'A test vendor with a handshake.', {
    verify: (req) => {
      const intent = req.headers.get('x-hook-secret');
      if (intent) return { ok: true, deliveryId: 'handshake', handshake: { status: 200, headers: { 'X-Hook-Secret': intent } } };
      return req.headers.get('x-test-signature') === 'good' ? { ok: true, deliveryId: req.headers.get('x-id') ?? 'none' } : { ok: false, reason: 'signature_mismatch' };
    },
    parse: () => ({ eventType: null, payload: {} }),
    routes: [],
  });

  it('answers the vendor’s handshake as its connector says, storing nothing', async () => {
    const hub = await createTestHub({ connectors: [...CONNECTORS, intentConnector] });
    try {
      const conn = await hub.call('POST', '/v1/connections', { body: { connectorId: 'intent-test', name: 'vendor', config: {} } });
      const res = await hub.hub.app.request(`/hooks/${conn.body.id}`, { method: 'POST', headers: { 'X-Hook-Secret': 'abc123' }, body: '' });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-hook-secret')).toBe('abc123');
      const event = await hub.hub.app.request(`/hooks/${conn.body.id}`, { method: 'POST', headers: { 'x-test-signature': 'good', 'x-id': 'e1' }, body: '{}' });
      expect(event.status).toBe(202);
      await runDueJobs(hub.hub);
      const inbox = await hub.call('GET', '/v1/inbox');
      expect(inbox.body.data).toEqual([expect.objectContaining({ deliveryId: 'e1', status: 'ignored' })]);
    } finally {
      await hub.close();
    }
  });
});

describe('a burst applied together', () => {
  // The worker hands the webhooks it claims at once to the inbox handler together: stock changes share a
  // transaction and one write of each level, other actions get a transaction each, in turn. Each webhook must still
  // come out as it would alone: its own outcome, ledger entries, events (with its correlation id) and deliveries.
  const mapping = (id: string, target: string, fields: Record<string, unknown>) => ({ id, source: { name: `hook/${id}`, schema: { type: 'object' } }, target: { name: id, schema: target }, fields });

  async function setUp(hub: TestHub) {
    await hub.call('POST', '/v1/webhooks/endpoints', { body: { url: 'https://example.com/hooks', eventTypes: ['stock.*'] } });
    for (const doc of [
      mapping('hook-count', 'hub:canonical/stock-count', { sku: 'data.sku', locationCode: 'data.location', onHand: { from: 'data.count', type: 'integer' } }),
      mapping('hook-product', 'hub:api/product-create', { sku: 'data.sku', name: 'data.name' }),
    ]) {
      const res = await hub.call('POST', '/v1/mappings', { body: { document: doc } });
      expect(res.status, res.text).toBe(201);
    }
    const routes = [
      { event: 'stock.changed', mapping: 'webhook-stock-change-in', action: 'stock.adjust' },
      { event: 'stock.counted', mapping: 'hook-count', action: 'stock.count' },
      { event: 'product.updated', mapping: 'hook-product', action: 'product.upsert' },
    ];
    const conn = await hub.call('POST', '/v1/connections', { body: { connectorId: 'webhook', name: 'pos', config: { verification: { scheme: 'standard-webhooks' }, routes }, credentials: { secret: SECRET } } });
    expect(conn.status, conn.text).toBe(201);
    const event = (type: string, data: Record<string, unknown>) => JSON.stringify({ type, timestamp: '2026-03-01T12:00:00Z', data });
    const burst = [
      event('stock.changed', { sku: 'TEE-1', location: 'LON-1', change: 5 }),
      event('stock.changed', { sku: 'TEE-1', location: 'LON-1', change: -100 }), // more than there is
      event('stock.counted', { sku: 'TEE-1', location: 'LON-1', count: 12 }),
      event('stock.changed', { sku: 'NEW-1', location: 'LON-1', change: 2 }), // no such product yet
      event('product.updated', { sku: 'NEW-1', name: 'New' }),
      event('stock.changed', { sku: 'NEW-1', location: 'LON-1', change: 4 }), // a level that does not exist yet
      event('stock.changed', { sku: 'TEE-1', location: 'NOWHERE', change: 1 }), // no such location
      event('stock.changed', { sku: 'TEE-1', location: 'LON-1', change: -1 }),
      '{"type": "stock.changed", ', // does not parse
      event('order.shipped', { id: 'o-1' }), // no route
      event('stock.changed', { sku: 'NEW-1', location: 'LON-1', change: -4 }),
    ];
    for (const [i, body] of burst.entries()) {
      const id = `msg_${i}`;
      const res = await hub.call('POST', `/hooks/${conn.body.id}`, { key: null, rawBody: body, headers: { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(hub.clock.now() / 1000)), 'webhook-signature': new Webhook(SECRET).sign(id, new Date(hub.clock.now()), body), 'content-type': 'application/json' } });
      expect(res.status).toBe(202);
    }
    return burst.length;
  }

  /** Everything applying wrote, without ids and times: what one-by-one and together must agree on. */
  async function outcome(hub: TestHub) {
    const store = hub.hub.deps.store;
    const all = async <N extends 'inbox' | 'movements' | 'events' | 'webhook_deliveries' | 'stock_levels'>(name: N) => (await store.table(name).query({ limit: 1000, orderBy: { field: 'id', direction: 'asc' } })).items;
    const skus = new Map((await store.table('products').query({ limit: 100 })).items.map((p) => [p.id, p.sku]));
    // The events the webhooks caused (the set-up's carry request ids).
    const events = (await all('events')).filter((e) => e.correlationId?.startsWith('msg_'));
    const eventIds = new Map(events.map((e, i) => [e.id, i]));
    return {
      inbox: (await all('inbox')).map((r) => ({ deliveryId: r.deliveryId, status: r.status, code: (r.result as { code?: string } | null)?.code ?? null })),
      levels: (await all('stock_levels')).map((l) => ({ sku: l.sku, onHand: l.onHand, reserved: l.reserved })),
      movements: (await all('movements')).map((m) => ({ sku: m.sku, type: m.type, quantity: m.quantity, seq: m.seq, onHandAfter: m.onHandAfter, averageCostAfter: m.averageCostAfter })),
      events: events.map((e) => ({ type: e.type, sku: skus.get(e.subject ?? ''), correlationId: e.correlationId, data: { ...(e.data as object), inventoryItemId: undefined, productId: undefined, locationId: undefined, product: undefined } as { onHand?: number; previous?: { onHand: number } } })),
      deliveries: (await all('webhook_deliveries')).map((d) => ({ event: eventIds.get(d.eventId), state: d.state })),
    };
  }

  it('comes out exactly as applying them one by one, each with its own outcome', async () => {
    const alone = await createTestHub({ inboxBatch: 1 });
    const together = await createTestHub();
    try {
      for (const hub of [alone, together]) {
        const loc = await hub.call('POST', '/v1/locations', { body: { code: 'LON-1', name: 'London' } });
        await hub.call('POST', '/v1/products', { body: { sku: 'TEE-1', name: 'Tee' } });
        await hub.call('POST', '/v1/stock/receipts', { body: { locationId: loc.body.id, lines: [{ sku: 'TEE-1', quantity: 10, unitCost: '2.00' }] } });
      }
      const n = await setUp(alone);
      await setUp(together);
      expect(await runDueJobs(alone.hub)).toBe(n);
      // Together: the burst gathered into one job, whose result counts what its webhooks came to.
      expect(await runDueJobsTogether(together.hub)).toBe(1);
      const [job] = (await together.hub.deps.store.table('jobs').query({ where: { type: 'inbox.process' } })).items;
      expect(job).toMatchObject({ state: 'succeeded', result: { webhooks: n, processed: 6, failed: 4, ignored: 1 } });
      expect(job!.payload).toEqual({ gathered: true });
      expect(await webhooksOfJob(together.hub.deps.store, job!)).toHaveLength(n);
      const a = await outcome(alone);
      const b = await outcome(together);
      expect(b).toEqual(a);
      // Both ran their stock sessions ahead of the write lock, and made them as they ran (nothing they read moved).
      for (const hub of [alone, together]) {
        const { aheadReplayed, aheadRerun } = (hub.hub.deps.store as SqliteStore).writeLockStats();
        expect(aheadReplayed).toBeGreaterThan(0);
        expect(aheadRerun).toBe(0);
      }

      // And what that is, spelled out.
      expect(b.inbox.map((r) => `${r.status}${r.code ? `:${r.code}` : ''}`)).toEqual([
        'processed',
        'failed:insufficient_stock',
        'processed',
        'failed:unknown_reference',
        'processed',
        'processed',
        'failed:unknown_reference',
        'processed',
        'failed:invalid_json',
        'ignored:no_route',
        'processed',
      ]);
      expect(b.levels).toEqual([
        { sku: 'TEE-1', onHand: 11, reserved: 0 },
        { sku: 'NEW-1', onHand: 0, reserved: 0 },
      ]);
      expect(b.movements.filter((m) => m.sku === 'TEE-1').map((m) => [m.quantity, m.seq, m.onHandAfter])).toEqual([
        [10, 1, 10],
        [5, 2, 15],
        [-3, 3, 12],
        [-1, 4, 11],
      ]);
      const updates = b.events.filter((e) => e.type === 'stock.updated' && e.sku === 'TEE-1');
      expect(updates.map((e) => [e.correlationId, e.data.previous?.onHand, e.data.onHand])).toEqual([
        ['msg_0', 10, 15],
        ['msg_2', 15, 12],
        ['msg_7', 12, 11],
      ]);
      // One subject's deliveries go out in order: the first is due, the ones after it wait.
      const tee = b.deliveries.filter((d) => b.events[d.event!]!.sku === 'TEE-1');
      expect(tee.map((d) => d.state)).toEqual(['pending', 'waiting', 'waiting']);
      expect(b.deliveries).toHaveLength(b.events.filter((e) => e.type.startsWith('stock.')).length);
    } finally {
      await alone.close();
      await together.close();
    }
  });
});

describe('jobs that gather a burst', () => {
  const inboxJobs = async () => (await t.hub.deps.store.table('jobs').query({ where: { type: 'inbox.process' }, limit: 100, orderBy: { field: 'id', direction: 'asc' } })).items;
  const idsOf = (job: JobsRow) => webhooksOfJob(t.hub.deps.store, job);
  const sizes = async (jobs: JobsRow[]) => Promise.all(jobs.map(async (j) => (await idsOf(j)).length));

  it('gathers webhooks into a queued job up to a batch, each row naming its job, and starts another once a worker took it', async () => {
    const conn = await connect();
    const send = async (i: number) => {
      const body = change(1);
      const res = await post(conn, body, signed(body, `g${i}`));
      expect(res.status).toBe(202);
      return res.body.id as string;
    };
    const first = [];
    for (let i = 0; i < 70; i++) first.push(await send(i));
    let jobs = await inboxJobs();
    // Joining a job writes nothing to it: it finds its webhooks by the jobId on their rows.
    expect(jobs.map((j) => [j.payload, j.version])).toEqual([[{ gathered: true }, 1], [{ gathered: true }, 1]]);
    expect(await sizes(jobs)).toEqual([64, 6]);
    expect([...(await idsOf(jobs[0]!)), ...(await idsOf(jobs[1]!))]).toEqual(first);
    for (const [i, id] of first.entries()) expect((await t.call('GET', `/v1/inbox/${id}`)).body.jobId).toBe(jobs[i < 64 ? 0 : 1]!.id);
    // A resend is refused inside its transaction: the job it would have joined does not name it.
    const again = change(1);
    expect((await post(conn, again, signed(again, 'g3'))).body).toMatchObject({ duplicate: true });
    // A worker claims the gathering job: the next webhook starts a new one rather than join it.
    const [claimed] = await t.hub.queue.claim('w', { limit: 1, types: ['inbox.process'] });
    expect(claimed!.id).toBe(jobs[0]!.id);
    const [second] = await t.hub.queue.claim('w', { limit: 1, types: ['inbox.process'] });
    expect(second!.id).toBe(jobs[1]!.id);
    const late = await send(70);
    jobs = await inboxJobs();
    expect(await sizes(jobs)).toEqual([64, 6, 1]);
    expect(await idsOf(jobs[2]!)).toEqual([late]);
    // Their handlers apply each webhook once: 71 units.
    const ctx = { signal: new AbortController().signal, progress: async () => {}, log: t.hub.deps.log };
    for (const job of [claimed!, second!]) await t.hub.queue.complete(job, await t.hub.handlers['inbox.process']!(job, ctx));
    await runDueJobs(t.hub);
    expect(await onHand()).toBe(10 + 71);
  });
});

describe('a job waiting out a retry', () => {
  it('is not joined by new webhooks: they get a job of their own, due now', async () => {
    const conn = await connect();
    const body = change(1);
    expect((await post(conn, body, signed(body, 'r1'))).status).toBe(202);
    const [job] = await t.hub.queue.claim('w', { limit: 1, types: ['inbox.process'] });
    const failed = await t.hub.queue.fail(job!, new Error('the store hiccuped'));
    expect(failed).toMatchObject({ state: 'queued', attempts: 1 });
    const next = change(2);
    expect((await post(conn, next, signed(next, 'r2'))).status).toBe(202);
    const jobs = (await t.hub.deps.store.table('jobs').query({ where: { type: 'inbox.process' }, limit: 10, orderBy: { field: 'id', direction: 'asc' } })).items;
    expect(await Promise.all(jobs.map(async (j) => (await webhooksOfJob(t.hub.deps.store, j)).length))).toEqual([1, 1]);
    expect(jobs[1]).toMatchObject({ attempts: 0 });
  });
});

describe('a burst whose transaction fails', () => {
  // A connector that throws something other than a refusal for one body (a bug, a store outage): the batch cannot
  // be applied together, so each webhook is applied alone, and only that one is left to be retried.
  const flaky = testConnector('flaky-test', 'A test vendor whose parser throws for one body.', {
    verify: (req) => ({ ok: true, deliveryId: req.headers.get('x-id') ?? 'none' }),
    parse: (req) => {
      const text = Buffer.from(req.body).toString();
      if (text === 'boom') throw new TypeError('the parser tripped');
      return { eventType: 'stock.changed', payload: JSON.parse(text) };
    },
    routes: [{ event: 'stock.changed', mapping: 'webhook-stock-change-in', action: 'stock.adjust' }],
  });

  it('applies each alone, and only the one that threw is left for the retry', async () => {
    const hub = await createTestHub({ connectors: [...CONNECTORS, flaky] });
    try {
      const loc = await hub.call('POST', '/v1/locations', { body: { code: 'LON-1', name: 'London' } });
      await hub.call('POST', '/v1/products', { body: { sku: 'TEE-1', name: 'Tee' } });
      await hub.call('POST', '/v1/stock/receipts', { body: { locationId: loc.body.id, lines: [{ sku: 'TEE-1', quantity: 10, unitCost: '2.00' }] } });
      const conn = await hub.call('POST', '/v1/connections', { body: { connectorId: 'flaky-test', name: 'flaky', config: {} } });
      const bodies = [1, 'boom', 2, 3].map((n) => (n === 'boom' ? n : JSON.stringify({ type: 'stock.changed', data: { sku: 'TEE-1', location: 'LON-1', change: n } })));
      for (const [i, body] of bodies.entries()) {
        const res = await hub.hub.app.request(`/hooks/${conn.body.id}`, { method: 'POST', headers: { 'x-id': `f${i}` }, body });
        expect(res.status).toBe(202);
      }
      expect(await runDueJobsTogether(hub.hub)).toBe(1);
      const inbox = (await hub.call('GET', '/v1/inbox?limit=10')).body.data as { deliveryId: string; status: string }[];
      expect(Object.fromEntries(inbox.map((r) => [r.deliveryId, r.status]))).toEqual({ f0: 'processed', f1: 'received', f2: 'processed', f3: 'processed' });
      const level = (await hub.call('GET', '/v1/stock-levels')).body.data[0];
      expect(level.onHand).toBe(16);
      // Their job failed with that webhook's error and is queued again; its retry skips the three applied.
      const jobs = (await hub.hub.deps.store.table('jobs').query({ where: { type: 'inbox.process' }, limit: 10 })).items;
      expect(jobs).toEqual([expect.objectContaining({ state: 'queued', attempts: 1, lastError: expect.objectContaining({ message: 'the parser tripped' }) })]);
      hub.clock.advance(60_000);
      expect(await runDueJobsTogether(hub.hub)).toBe(1);
      expect((await hub.call('GET', '/v1/stock-levels')).body.data[0].onHand).toBe(16);
    } finally {
      await hub.close();
    }
  });
});
