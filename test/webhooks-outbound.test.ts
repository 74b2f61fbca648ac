// Outbound webhooks end to end through the API: subscriptions, Standard Webhooks signatures checked with the
// official library, the retry schedule walked with a fake clock, Retry-After, 410, disabling, ordering, rotation,
// rate limits, replays, the SSRF guard and the delivery ledger.
import { Webhook } from 'standardwebhooks';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { appendEvent } from '../src/events/log.ts';
import type { SqliteStore } from '../src/store/sqlite.ts';
import type { Db } from '../src/store/types.ts';
import { createDispatcher, dispatcherBounds } from '../src/webhooks/dispatcher.ts';
import { PRUNE_CHUNK } from '../src/store/prune.ts';
import { MAX_ENDPOINTS, MOVES_PER_TRANSACTION } from '../src/webhooks/fanout.ts';
import { createEndpoint, ENDPOINT_MOVE_JOB, ENDPOINT_PURGE_JOB, moveTheRest } from '../src/webhooks/manage.ts';
import { STANDARD_SCHEDULE_MS } from '../src/webhooks/schedule.ts';
import { createAddressPolicy } from '../src/webhooks/ssrf.ts';
import { createTransport, type WebhookResult } from '../src/webhooks/transport.ts';
import { createTestHub, expectProblem, runDueJobs, spyStatements, type TestHub } from './helpers.ts';
import { startReceiver, type Receiver } from './webhook-receiver.ts';

const LOOPBACK = ['127.0.0.1/32', '::1/128'];
let t: TestHub;
let receiver: Receiver;

async function setup(webhooks: Record<string, unknown> = {}) {
  t = await createTestHub({
    random: () => 0.5,
    config: { webhooks: { allow: LOOPBACK, retrySchedule: [...STANDARD_SCHEDULE_MS], timeoutMs: 2000, disableAfterMs: 5 * 86_400_000, concurrency: 64, attemptRetentionDays: 14, ...webhooks } as never },
  });
  receiver = await startReceiver();
}

beforeEach(() => setup());
afterEach(async () => {
  await t.close();
  await receiver.close();
});

async function subscribe(body: Record<string, unknown> = {}) {
  const res = await t.call('POST', '/v1/webhooks/endpoints', { body: { url: receiver.url, eventTypes: ['*'], ...body } });
  expect(res.status, res.text).toBe(201);
  return res.body as { endpoint: { id: string }; secret: string };
}

function emit(type: string, subject: string | null = null, data: Record<string, unknown> = {}) {
  const now = new Date(t.clock.now()).toISOString();
  return appendEvent(t.hub.deps.store, { type, workspaceId: t.workspace.id, subject, data }, now);
}

const dispatch = () => t.hub.dispatcher.runOnce();

/**
 * A transport that answers every request in the turn of the event loop after it was sent, so that answers to
 * requests sent together arrive together; it records each in the receiver and answers with `status(body)`.
 */
function sameTurnTransport(status: (body: { subject: string | null }) => number) {
  return {
    send: (req: { body: string | Uint8Array; headers: Record<string, string> }) =>
      new Promise<WebhookResult>((resolve) =>
        setImmediate(() => {
          const body = Buffer.from(req.body).toString();
          receiver.received.push({ headers: req.headers, body, path: '/hook' });
          resolve({ ok: true, response: { status: status(JSON.parse(body)), body: '', latencyMs: 1 } });
        }),
      ),
    close: () => {},
  };
}

/** A transport of its own for a second dispatcher, allowed to reach the loopback receiver. */
const loopbackTransport = () => createTransport({ policy: createAddressPolicy({ allow: LOOPBACK }), maxSockets: 4 });

/** An endpoint's deliveries in the order of their events (the API lists the newest first). */
async function oldestFirst(endpointId: string) {
  return (await deliveriesOf(endpointId)).sort((a, b) => (a.id < b.id ? -1 : 1));
}

/** The official library checks the timestamp against its own clock: give it the hub's (a fake one). */
function officialVerify(secret: string, got: { body: string; headers: Record<string, string> }): unknown {
  vi.useFakeTimers({ toFake: ['Date'], now: t.clock.now() });
  try {
    return new Webhook(secret).verify(got.body, got.headers);
  } finally {
    vi.useRealTimers();
  }
}

/** `n` pending deliveries of the endpoint, due `inMs` from now (of events that were never stored: never sent). */
async function backlog(endpointId: string, n: number, inMs: number): Promise<void> {
  const due = new Date(t.clock.now() + inMs).toISOString();
  await t.hub.deps.store.transaction(async (tx) => {
    for (let i = 0; i < n; i++) {
      await tx.table('webhook_deliveries').insert({ workspaceId: t.workspace.id, endpointId, eventId: `evt_backlog${i}`, eventType: 'stock.updated', orderingKey: null, state: 'pending', attempts: 0, totalAttempts: 0, nextAttemptAt: due });
    }
  });
}

async function deliveriesOf(endpointId: string) {
  const res = await t.call('GET', `/v1/webhooks/deliveries?endpointId=${endpointId}&limit=200`);
  return res.body.data as any[];
}

describe('outbound webhooks', () => {
  it('signs deliveries so that the official standardwebhooks library verifies them', async () => {
    const { endpoint, secret } = await subscribe({ headers: { 'X-Tenant': 'acme' } });
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const product = await t.call('POST', '/v1/products', { body: { sku: 'SKU-1', name: 'Widget' } });
    expect(product.status).toBe(201);
    expect(await dispatch()).toBe(1);
    expect(receiver.received).toHaveLength(1);
    const got = receiver.received[0]!;
    const payload = officialVerify(secret, got) as any;
    expect(payload).toMatchObject({ type: 'product.created', subject: product.body.id, data: { product: { sku: 'SKU-1' } } });
    expect(got.headers['webhook-id']).toBe(payload.id);
    expect(got.headers['x-tenant']).toBe('acme');
    expect(got.headers['content-type']).toBe('application/json');
    const [delivery] = await deliveriesOf(endpoint.id);
    expect(delivery).toMatchObject({ state: 'delivered', attempts: 1, lastStatus: 200, eventType: 'product.created' });
    const attempts = await t.call('GET', `/v1/webhooks/deliveries/${delivery.id}/attempts`);
    expect(attempts.body.data).toEqual([expect.objectContaining({ ok: true, status: 200, response: 'ok', attempt: 1 })]);
    const metrics = await t.call('GET', '/metrics', { key: null });
    expect(metrics.text).toContain('hub_webhook_deliveries_total{outcome="delivered"} 1');
    expect(metrics.text).toContain('hub_webhook_deliveries{state="pending"} 0');
    expect(metrics.text).not.toContain('hub_webhook_deliveries{state="delivered"}');
  });

  it('delivers only the event types an endpoint subscribed to', async () => {
    const orders = await subscribe({ eventTypes: ['order.*'] });
    const exact = await subscribe({ eventTypes: ['product.created'] });
    await emit('product.created');
    await emit('order.created');
    await emit('order.line.added');
    await emit('product.updated');
    expect((await deliveriesOf(orders.endpoint.id)).map((d) => d.eventType).sort()).toEqual(['order.created', 'order.line.added']);
    expect((await deliveriesOf(exact.endpoint.id)).map((d) => d.eventType)).toEqual(['product.created']);
  });

  it('retries on the Standard Webhooks schedule with the same webhook-id, then buries the delivery', async () => {
    const { endpoint } = await subscribe();
    receiver.respond((_req, res) => {
      res.statusCode = 500;
      res.end('down');
    });
    await emit('stock.updated', 'inv_1');
    const times: number[] = [];
    for (let attempt = 1; attempt <= STANDARD_SCHEDULE_MS.length; attempt++) {
      if (attempt > 1) {
        // Just before the retry is due nothing goes out; at the due time it does.
        t.clock.advance(STANDARD_SCHEDULE_MS[attempt - 1]! - 1);
        expect(await dispatch()).toBe(0);
        t.clock.advance(1);
      }
      expect(await dispatch()).toBe(1);
      times.push(t.clock.now());
    }
    expect(receiver.received).toHaveLength(10);
    expect(new Set(receiver.received.map((r) => r.headers['webhook-id'])).size).toBe(1);
    // The timestamp is the attempt's, so each retry is signed anew.
    expect(new Set(receiver.received.map((r) => r.headers['webhook-timestamp'])).size).toBe(10);
    expect(times.at(-1)! - times[0]!).toBe(STANDARD_SCHEDULE_MS.reduce((a, b) => a + b, 0));
    const [delivery] = await deliveriesOf(endpoint.id);
    expect(delivery).toMatchObject({ state: 'dead', attempts: 10, lastStatus: 500, lastError: 'http_500' });
    t.clock.advance(86_400_000 * 2);
    expect(await dispatch()).toBe(0);
    const ledger = await t.call('GET', `/v1/webhooks/endpoints/${endpoint.id}/stats`);
    expect(ledger.body).toMatchObject({ published: 1, delivered: 0, pending: 0, dead: 1 });
  });

  it('sends a delivery again, with the same webhook-id, once the lease of a dispatcher that died sending it runs out', async () => {
    const { endpoint } = await subscribe();
    // A dispatcher that leases the delivery and never hears back: a process killed mid-send.
    const sent: string[] = [];
    const stuck = createDispatcher({
      store: t.hub.deps.store,
      clock: t.clock,
      cipher: t.hub.deps.cipher,
      transport: { send: (req) => (sent.push(req.headers['webhook-id']!), new Promise(() => {})), close: () => {} },
      config: t.hub.deps.config.webhooks,
      owner: 'dispatch:killed',
    });
    await emit('stock.updated', 'inv_1');
    void stuck.runOnce();
    await vi.waitFor(() => expect(sent).toHaveLength(1));
    const [leased] = await deliveriesOf(endpoint.id);
    const leaseMs = t.hub.deps.config.webhooks.timeoutMs * 2 + 5000;
    expect(leased).toMatchObject({ state: 'sending', leaseOwner: 'dispatch:killed', nextAttemptAt: new Date(t.clock.now() + leaseMs).toISOString() });
    // Another dispatcher leaves it alone while the lease holds, and takes it over when it runs out.
    t.clock.advance(leaseMs - 1);
    expect(await dispatch()).toBe(0);
    t.clock.advance(2);
    expect(await dispatch()).toBe(1);
    expect(receiver.received.map((r) => r.headers['webhook-id'])).toEqual(sent);
    const [delivered] = await deliveriesOf(endpoint.id);
    expect(delivered).toMatchObject({ state: 'delivered', leaseOwner: null, leaseUntil: null, totalAttempts: 1, nextAttemptAt: delivered.lastAttemptAt });
    // Its send never settles: stop gives up on it at once, and drops its endpoint cache's listener.
    await stuck.stop(0);
  });

  it('honours Retry-After on 429 and 503', async () => {
    const { endpoint } = await subscribe();
    receiver.respond((_req, res) => {
      res.writeHead(429, { 'Retry-After': '120' });
      res.end();
    });
    await emit('stock.updated');
    await dispatch();
    const [delivery] = await deliveriesOf(endpoint.id);
    expect(Date.parse(delivery.nextAttemptAt) - t.clock.now()).toBe(120_000);
    expect(delivery.lastError).toBe('http_429');
  });

  it('does not follow redirects: a 3xx is a failed attempt and the target hears nothing', async () => {
    const target = await startReceiver();
    try {
      const { endpoint } = await subscribe();
      receiver.respond((_req, res) => {
        res.writeHead(302, { Location: target.url });
        res.end();
      });
      await emit('stock.updated');
      await dispatch();
      expect(target.received).toHaveLength(0);
      const [delivery] = await deliveriesOf(endpoint.id);
      expect(delivery).toMatchObject({ state: 'pending', lastStatus: 302, lastError: 'http_302' });
    } finally {
      await target.close();
    }
  });

  it('times out a receiver that does not answer', async () => {
    await t.close();
    await receiver.close();
    await setup({ timeoutMs: 200 });
    const { endpoint } = await subscribe();
    receiver.respond(() => 'hang');
    await emit('stock.updated');
    await dispatch();
    const [delivery] = await deliveriesOf(endpoint.id);
    expect(delivery).toMatchObject({ state: 'pending', lastStatus: null, lastError: 'timeout' });
  });

  it('disables an endpoint that answers 410, says so in an event, and resumes when enabled again', async () => {
    const watcher = await startReceiver();
    try {
      const { endpoint } = await subscribe({ eventTypes: ['stock.*'], url: `${receiver.url}?token=s3cr3t` });
      await t.call('POST', '/v1/webhooks/endpoints', { body: { url: watcher.url, eventTypes: ['webhook.*'] } });
      receiver.respond((_req, res) => {
        res.statusCode = 410;
        res.end();
      });
      await emit('stock.updated', 'a');
      await emit('stock.updated', 'b');
      await dispatch();
      const after = await t.call('GET', `/v1/webhooks/endpoints/${endpoint.id}`);
      expect(after.body).toMatchObject({ status: 'disabled', disabledReason: 'gone' });
      expect((await deliveriesOf(endpoint.id)).map((d) => d.state)).toEqual(['paused', 'paused']);
      await dispatch();
      expect(watcher.received.map((r) => JSON.parse(r.body))).toEqual([
        expect.objectContaining({ type: 'webhook.endpoint.disabled', data: expect.objectContaining({ endpointId: endpoint.id, reason: 'gone' }) }),
      ]);
      // The watcher may be another party's: it is told where, not the receiver's token.
      expect(JSON.parse(watcher.received[0]!.body).data.url).toBe(receiver.url);
      // Events while disabled are not sent to it; enabling sends what was paused.
      await emit('stock.updated', 'c');
      receiver.respond((_req, res) => void res.end('ok'));
      const enabled = await t.call('POST', `/v1/webhooks/endpoints/${endpoint.id}/enable`);
      expect(enabled.body).toMatchObject({ status: 'enabled', disabledReason: null, failingSince: null });
      await dispatch();
      expect((await deliveriesOf(endpoint.id)).map((d) => d.state)).toEqual(['delivered', 'delivered']);
    } finally {
      await watcher.close();
    }
  });

  it('disables an endpoint whose every attempt fails for the disable period', async () => {
    await t.close();
    await receiver.close();
    await setup({ disableAfterMs: 3_600_000 });
    const { endpoint } = await subscribe({ eventTypes: ['stock.*'] });
    receiver.respond((_req, res) => {
      res.statusCode = 503;
      res.end();
    });
    await emit('stock.updated');
    await dispatch();
    expect((await t.call('GET', `/v1/webhooks/endpoints/${endpoint.id}`)).body.failingSince).toBe(new Date(t.clock.now()).toISOString());
    // Attempts at 5 s, 5 min, 30 min: still within the hour. The next, two hours later, is past it.
    for (const ms of STANDARD_SCHEDULE_MS.slice(1, 4)) {
      t.clock.advance(ms);
      await dispatch();
    }
    expect((await t.call('GET', `/v1/webhooks/endpoints/${endpoint.id}`)).body.status).toBe('enabled');
    t.clock.advance(STANDARD_SCHEDULE_MS[4]!);
    await dispatch();
    expect((await t.call('GET', `/v1/webhooks/endpoints/${endpoint.id}`)).body).toMatchObject({ status: 'disabled', disabledReason: 'failing' });
    const events = await t.call('GET', '/v1/events?type=webhook.endpoint.disabled');
    expect(events.body.data).toEqual([expect.objectContaining({ subject: endpoint.id, data: expect.objectContaining({ reason: 'failing' }) })]);
  });

  it('delivers the events of one subject in order, even when one of them has to be retried', async () => {
    const { endpoint } = await subscribe();
    let failedOnce = false;
    receiver.respond((req, res) => {
      const body = JSON.parse(req.body);
      if (body.data.n === 1 && !failedOnce) {
        failedOnce = true;
        res.statusCode = 500;
        return void res.end();
      }
      res.end('ok');
    });
    for (let n = 1; n <= 4; n++) await emit('order.updated', 'ord_A', { n });
    await emit('order.updated', 'ord_B', { n: 99 });
    await dispatch();
    // ord_A's first failed: the others of ord_A wait behind it; ord_B went through.
    expect(receiver.received.map((r) => JSON.parse(r.body).data.n)).toEqual([1, 99]);
    const states = (await deliveriesOf(endpoint.id)).filter((d) => d.orderingKey === 'ord_A').map((d) => d.state).sort();
    expect(states).toEqual(['pending', 'waiting', 'waiting', 'waiting']);
    for (let i = 0; i < 6; i++) {
      t.clock.advance(5000);
      await dispatch();
    }
    const ordA = receiver.received.map((r) => JSON.parse(r.body)).filter((b) => b.subject === 'ord_A').map((b) => b.data.n);
    expect(ordA).toEqual([1, 1, 2, 3, 4]);
  });

  it('sends a subject\'s next event as soon as the one before it is delivered, without waiting for a claim', async () => {
    const { endpoint } = await subscribe();
    for (let n = 1; n <= 4; n++) await emit('order.updated', 'ord_A', { n });
    await emit('order.updated', 'ord_B', { n: 99 });
    // One pass claims what is due (the first of each subject); each delivered one's successor is leased and sent
    // in the transaction that records it, so the pass ends with the whole subject delivered, in order.
    expect(await dispatch()).toBe(2);
    const got = receiver.received.map((r) => JSON.parse(r.body));
    expect(got.filter((b) => b.subject === 'ord_A').map((b) => b.data.n)).toEqual([1, 2, 3, 4]);
    expect(got.filter((b) => b.subject === 'ord_B')).toHaveLength(1);
    expect((await deliveriesOf(endpoint.id)).map((d) => d.state)).toEqual(Array(5).fill('delivered'));
    // A rate-limited endpoint is not sped past its limit: its next one waits for a claim.
    receiver.received.length = 0;
    await t.call('PATCH', `/v1/webhooks/endpoints/${endpoint.id}`, { body: { rateLimitPerSecond: 100 } });
    for (let n = 5; n <= 6; n++) await emit('order.updated', 'ord_A', { n });
    expect(await dispatch()).toBe(1);
    expect(receiver.received.map((r) => JSON.parse(r.body).data.n)).toEqual([5]);
  });

  it('sends a backlogged subject as a chain: one lease for many, stopped by a failure, the rest waiting behind it', async () => {
    const { endpoint } = await subscribe();
    let failedOnce = false;
    receiver.respond((req, res) => {
      if (JSON.parse(req.body).data.n === 3 && !failedOnce) {
        failedOnce = true;
        res.statusCode = 500;
        return void res.end();
      }
      res.end('ok');
    });
    for (let n = 1; n <= 6; n++) await emit('order.updated', 'ord_A', { n });
    // The first is claimed; once it is delivered the five behind it are taken together (the first of them leased),
    // and each goes when the one before it succeeded. The third fails: the three behind it, never sent, still wait.
    expect(await dispatch()).toBe(1);
    expect(receiver.received.map((r) => JSON.parse(r.body).data.n)).toEqual([1, 2, 3]);
    const byN = async () => {
      const events = new Map((await t.call('GET', '/v1/events?limit=200')).body.data.map((e: any) => [e.id, e.data.n]));
      return Object.fromEntries((await deliveriesOf(endpoint.id)).map((d) => [events.get(d.eventId), { state: d.state, leaseOwner: d.leaseOwner }])) as Record<string, { state: string; leaseOwner: string | null }>;
    };
    expect(await byN()).toEqual({
      1: { state: 'delivered', leaseOwner: null },
      2: { state: 'delivered', leaseOwner: null },
      3: { state: 'pending', leaseOwner: null },
      4: { state: 'waiting', leaseOwner: null },
      5: { state: 'waiting', leaseOwner: null },
      6: { state: 'waiting', leaseOwner: null },
    });
    // The retry delivers the third, and the chain behind it follows in order.
    t.clock.advance(5000);
    expect(await dispatch()).toBe(1);
    expect(receiver.received.map((r) => JSON.parse(r.body).data.n)).toEqual([1, 2, 3, 3, 4, 5, 6]);
    expect(Object.values(await byN()).map((d) => d.state)).toEqual(Array(6).fill('delivered'));
  });

  it('after a dispatcher died mid-chain, sends again from the chain\'s head, in order, and not what was written delivered', async () => {
    const { endpoint } = await subscribe();
    // A dispatcher whose receiver answers three deliveries, then never again: a process killed mid-chain.
    const sent: number[] = [];
    const dispatcher = (owner: string, transport: Parameters<typeof createDispatcher>[0]['transport'], batchSize?: number) =>
      createDispatcher({ store: t.hub.deps.store, clock: t.clock, cipher: t.hub.deps.cipher, transport, config: t.hub.deps.config.webhooks, owner, batchSize });
    const stuck = dispatcher('dispatch:killed', {
      send: (req) => {
        sent.push(JSON.parse(Buffer.from(req.body).toString()).data.n);
        return sent.length <= 3 ? Promise.resolve({ ok: true, response: { status: 200, body: 'ok', latencyMs: 1 } }) : new Promise(() => {});
      },
      close: () => {},
    });
    for (let n = 1; n <= 6; n++) await emit('order.updated', 'ord_A', { n });
    void stuck.runOnce();
    await vi.waitFor(() => expect(sent).toEqual([1, 2, 3, 4]));
    const states = async () => (await oldestFirst(endpoint.id)).map((d) => `${d.state}:${d.leaseOwner ?? '-'}`);
    // The first claimed and delivered; the second heads the chain behind it, leased, its outcome held back while the
    // chain runs; the third written delivered straight from waiting; the fourth sent and never answered.
    const died = ['delivered:-', 'sending:dispatch:killed', 'delivered:-', 'waiting:-', 'waiting:-', 'waiting:-'];
    await vi.waitFor(async () => expect(await states()).toEqual(died));
    // The head's lease runs out. A dispatcher that claims two at a time finds it: the key starts again from its
    // oldest delivery not written delivered (the head, sent twice with its webhook-id), then the chain goes on
    // from there, in order, past the third.
    t.clock.advance(t.hub.deps.config.webhooks.timeoutMs * 2 + 5001);
    const transport = loopbackTransport();
    const recovering = dispatcher('dispatch:next', transport, 2);
    try {
      // While the endpoint cannot be read for sending (its secret no longer decrypts), the claim leaves the key as
      // it is: it must not put the leases back to waiting without taking the oldest, or nothing would move it on.
      const endpoints = t.hub.deps.store.table('webhook_endpoints');
      const { secret } = (await endpoints.get(endpoint.id))!;
      await endpoints.update(endpoint.id, { secret: secret.slice(0, -4) + (secret.endsWith('AAAA') ? 'BBBB' : 'AAAA') });
      expect(await recovering.runOnce()).toBe(0);
      expect(await states()).toEqual(died);
      await endpoints.update(endpoint.id, { secret });
      expect(await recovering.runOnce()).toBe(1);
      while ((await recovering.runOnce()) > 0);
      expect(receiver.received.map((r) => JSON.parse(r.body).data.n)).toEqual([2, 4, 5, 6]);
      expect(await states()).toEqual(Array(6).fill('delivered:-'));
    } finally {
      await recovering.stop(0);
      transport.close();
      await stuck.stop(0);
    }
  });

  it('stops a chain whose lease would run out before its next send and its write, and takes the rest anew', async () => {
    const { endpoint } = await subscribe();
    // A timeout of 1 s, and each send takes 0.6 s of the fake clock. The chain behind the first is leased (its head)
    // for 2 × 1 s + 5 s when the first is recorded; its next delivery goes only while a send and a write (1 s + 5 s)
    // still fit in that lease: the third is sent at 0.6 s into it, the fourth would be at 1.2 s.
    const slow = createDispatcher({
      store: t.hub.deps.store,
      clock: t.clock,
      cipher: t.hub.deps.cipher,
      transport: {
        send: async (req) => {
          t.clock.advance(600);
          receiver.received.push({ headers: req.headers, body: Buffer.from(req.body).toString(), path: '/hook' });
          return { ok: true, response: { status: 200, body: 'ok', latencyMs: 600 } };
        },
        close: () => {},
      },
      config: { ...t.hub.deps.config.webhooks, timeoutMs: 1000 },
    });
    try {
      for (let n = 1; n <= 4; n++) await emit('order.updated', 'ord_A', { n });
      expect(await slow.runOnce()).toBe(1);
      expect(receiver.received.map((r) => JSON.parse(r.body).data.n)).toEqual([1, 2, 3, 4]);
      // Each row's version counts its writes. The first (claimed) and the second (the chain's head): created,
      // leased, delivered. The third: created, delivered straight from waiting. The fourth, left waiting when the
      // chain stopped before it, heads the next chain: created, leased, delivered.
      expect((await oldestFirst(endpoint.id)).map((d) => [d.state, d.version])).toEqual([
        ['delivered', 3],
        ['delivered', 3],
        ['delivered', 2],
        ['delivered', 3],
      ]);
    } finally {
      await slow.stop(0);
    }
  });

  it('stops a chain when its endpoint changes, and goes on by the endpoint as it is now', async () => {
    const { endpoint } = await subscribe();
    receiver.respond((req, res) => {
      // While the second is being answered, an operator disables the endpoint.
      if (JSON.parse(req.body).data.n !== 2) return void res.end('ok');
      void t.call('POST', `/v1/webhooks/endpoints/${endpoint.id}/disable`).then((r) => {
        expect(r.status, r.text).toBe(200);
        res.end('ok');
      });
    });
    for (let n = 1; n <= 4; n++) await emit('order.updated', 'ord_A', { n });
    await dispatch();
    await dispatch();
    // Nothing after the change was sent: the third is held by the disabled endpoint, the fourth waits behind it.
    expect(receiver.received.map((r) => JSON.parse(r.body).data.n)).toEqual([1, 2]);
    expect((await oldestFirst(endpoint.id)).map((d) => d.state)).toEqual(['delivered', 'delivered', 'paused', 'waiting']);
    await t.call('POST', `/v1/webhooks/endpoints/${endpoint.id}/enable`);
    await dispatch();
    expect(receiver.received.map((r) => JSON.parse(r.body).data.n)).toEqual([1, 2, 3, 4]);
  });

  it('leases deliveries due at the same time oldest first, reading only what it leases, however many share the time', async () => {
    await subscribe({ eventTypes: ['stock.*'] });
    // One transaction: every delivery due at the same instant (as an enable or a replay makes them).
    await t.hub.deps.store.transaction(async (tx) => {
      for (let i = 0; i < 40; i++) await appendEvent(tx, { type: 'stock.updated', workspaceId: t.workspace.id, subject: null, data: { i } }, new Date(t.clock.now()).toISOString());
    });
    const reads = spyStatements(t.hub.deps.store as SqliteStore, 'SELECT * FROM "webhook_deliveries" WHERE "state"', 'all');
    const dispatcher = createDispatcher({ store: t.hub.deps.store, clock: t.clock, cipher: t.hub.deps.cipher, transport: sameTurnTransport(() => 200), config: t.hub.deps.config.webhooks, batchSize: 5 });
    expect(await dispatcher.runOnce()).toBe(5);
    expect(receiver.received.map((r) => JSON.parse(r.body).data.i)).toEqual([0, 1, 2, 3, 4]);
    expect(reads.seen.length).toBeGreaterThan(0);
    // In the (state, nextAttemptAt, id) index's order: a claim stops at its batch, rather than sort all 40.
    for (const read of reads.seen) expect(reads.plan(read).join(' | '), read.sql).not.toMatch(/TEMP B-TREE/);
  });

  it('keeps each write within a bound: outcomes per transaction and deliveries per chain (Appwrite stages at most 100)', async () => {
    await subscribe();
    // A store that counts, per transaction, the attempts it records and the deliveries it leases.
    const store = t.hub.deps.store;
    const writes: { attempts: number; leased: number }[] = [];
    const counted = new Proxy(store, {
      get(target, key, receiver) {
        if (key !== 'transaction') return Reflect.get(target, key, receiver);
        return (fn: (tx: any) => Promise<unknown>) =>
          target.transaction((tx) => {
            const w = { attempts: 0, leased: 0 };
            writes.push(w);
            const table = (name: string): unknown => {
              const real = tx.table(name as 'webhook_attempts') as any;
              if (name === 'webhook_attempts') return { ...real, insert: (row: unknown) => (w.attempts++, real.insert(row)) };
              if (name !== 'webhook_deliveries') return real;
              return new Proxy(real, {
                get(t2, k2, r2) {
                  const v = Reflect.get(t2, k2, r2);
                  if (k2 !== 'update' || typeof v !== 'function') return typeof v === 'function' ? v.bind(t2) : v;
                  return (id: string, patch: { state?: string }, o?: unknown) => (patch.state === 'sending' && w.leased++, v.call(t2, id, patch, o));
                },
              });
            };
            return fn({ ...tx, table });
          });
      },
    });
    // Every answer comes back in the same turn of the event loop: the outcomes pile up faster than they are written.
    const transport = sameTurnTransport(() => 200);
    const bounded = createDispatcher({ store: counted, clock: t.clock, cipher: t.hub.deps.cipher, transport, config: t.hub.deps.config.webhooks, outcomesPerWrite: 2, chainLength: 2 });
    try {
      for (let n = 1; n <= 5; n++) await emit('order.updated', 'ord_A', { n });
      for (let n = 6; n <= 15; n++) await emit('order.updated', null, { n });
      while ((await bounded.runOnce()) > 0);
      const got = receiver.received.map((r) => JSON.parse(r.body).data.n);
      expect(got.filter((n) => n <= 5)).toEqual([1, 2, 3, 4, 5]);
      expect([...got].sort((a, b) => a - b)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
      expect(writes.reduce((sum, w) => sum + w.attempts, 0)).toBe(15);
      expect(Math.max(...writes.map((w) => w.attempts))).toBe(2);
      expect(Math.max(...writes.map((w) => w.leased))).toBeLessThanOrEqual(2);
    } finally {
      await bounded.stop(0);
      transport.close();
    }
  });

  it('holds a chain just leased when the same write disables its endpoint (a 410 answered beside its predecessor\'s 2xx)', async () => {
    const { endpoint } = await subscribe();
    // Both answers come back in one turn of the event loop, so one write records both: ord_A's first is delivered
    // (its successors are leased), ord_B's first is answered 410 (the endpoint is disabled).
    const transport = sameTurnTransport((body) => (body.subject === 'ord_B' ? 410 : 200));
    const own = createDispatcher({ store: t.hub.deps.store, clock: t.clock, cipher: t.hub.deps.cipher, transport, config: t.hub.deps.config.webhooks });
    try {
      for (let n = 1; n <= 3; n++) await emit('order.updated', 'ord_A', { n });
      await emit('order.updated', 'ord_B', { n: 99 });
      expect(await own.runOnce()).toBe(2);
      expect(receiver.received.map((r) => JSON.parse(r.body).data.n)).toEqual([1, 99]);
      expect((await t.call('GET', `/v1/webhooks/endpoints/${endpoint.id}`)).body).toMatchObject({ status: 'disabled', disabledReason: 'gone' });
      // The chain's head waits with the endpoint's other deliveries (paused), the rest of it behind it.
      expect((await oldestFirst(endpoint.id)).map((d) => `${d.state}:${d.leaseOwner ?? '-'}`)).toEqual([
        'delivered:-',
        'paused:-',
        'waiting:-',
        'paused:-',
      ]);
    } finally {
      await own.stop(0);
    }
    // Enabled again, the hub's dispatcher sends what was held, ord_A in order.
    receiver.received.length = 0;
    await t.call('POST', `/v1/webhooks/endpoints/${endpoint.id}/enable`);
    await dispatch();
    await dispatch();
    const got = receiver.received.map((r) => JSON.parse(r.body).data.n);
    expect(got.filter((n) => n !== 99)).toEqual([2, 3]);
    expect(got).toContain(99);
  });

  it('gives back a chain leased by a write that was under way when stop began: its first due now, the rest waiting', async () => {
    const { endpoint } = await subscribe();
    for (let n = 1; n <= 4; n++) await emit('order.updated', 'ord_A', { n });
    // A store that begins the dispatcher's stop right after the write that recorded the first delivery and took the
    // three behind it (the first of them leased), before the dispatcher acts on that write's answer.
    let stopped: Promise<void> | undefined;
    const store = t.hub.deps.store;
    const watched = new Proxy(store, {
      get(target, key, receiver) {
        if (key !== 'transaction') return Reflect.get(target, key, receiver);
        return <R,>(fn: (tx: Db) => Promise<R>) =>
          target.transaction(async (tx) => {
            const value = await fn(tx);
            const deliveries = tx.table('webhook_deliveries');
            if (!stopped && (await deliveries.count({ state: 'delivered' })) === 1 && (await deliveries.count({ state: 'sending' })) === 1) stopped = own.stop(5000);
            return value;
          });
      },
    });
    const own = createDispatcher({ store: watched, clock: t.clock, cipher: t.hub.deps.cipher, transport: sameTurnTransport(() => 200), config: t.hub.deps.config.webhooks });
    await own.runOnce();
    expect(stopped).toBeDefined();
    await stopped;
    expect(receiver.received.map((r) => JSON.parse(r.body).data.n)).toEqual([1]);
    expect((await oldestFirst(endpoint.id)).map((d) => `${d.state}:${d.leaseOwner ?? '-'}`)).toEqual(['delivered:-', 'pending:-', 'waiting:-', 'waiting:-']);
    // The next dispatcher takes the first at once, and the chain from there.
    await dispatch();
    expect(receiver.received.map((r) => JSON.parse(r.body).data.n)).toEqual([1, 2, 3, 4]);
  });

  it('derives its bounds from the store\'s writes per transaction: Appwrite Free, Pro, a small bound, SQLite', () => {
    expect(dispatcherBounds(100)).toEqual({ outcomesPerWrite: 5, chainLength: 4, batchSize: 50, pausesPerDisable: 20 });
    expect(dispatcherBounds(1000)).toEqual({ outcomesPerWrite: 50, chainLength: 32, batchSize: 256, pausesPerDisable: 200 });
    expect(dispatcherBounds(10)).toEqual({ outcomesPerWrite: 1, chainLength: 4, batchSize: 5, pausesPerDisable: 2 });
    expect(dispatcherBounds(Infinity)).toEqual({});
  });

  it('keeps every transaction within a store\'s write bound when many endpoints are disabled by one write', async () => {
    const endpoints = [];
    for (let i = 0; i < 15; i++) endpoints.push((await subscribe()).endpoint.id);
    for (let n = 0; n < 30; n++) await emit('stock.updated', null, { n });
    // The hub's store, bounded as Appwrite's Free plan bounds a transaction (100 staged writes; the 101st fails the
    // transaction); every write made in a transaction is counted, its nested transactions' too, and what is left told
    // as the Appwrite store tells it (writesLeft).
    const store = t.hub.deps.store;
    const BOUND = 100;
    const most = { writes: 0 };
    const WRITES = new Set<PropertyKey>(['insert', 'update', 'updateFrom', 'delete', 'upsert', 'deleteWhere', 'increment']);
    const bounded = new Proxy(store, {
      get(target, key) {
        if (key === 'writesPerTransaction') return BOUND;
        if (key !== 'transaction') return Reflect.get(target, key);
        return (fn: (tx: Db) => Promise<unknown>) =>
          target.transaction((tx) => {
            let writes = 0;
            const view = (inner: Db): Db => ({
              table: ((name: never) =>
                new Proxy(inner.table(name), {
                  get(table, k) {
                    const v = Reflect.get(table, k) as unknown;
                    if (typeof v !== 'function') return v;
                    if (!WRITES.has(k)) return v.bind(table);
                    return (...args: unknown[]) => {
                      most.writes = Math.max(most.writes, ++writes);
                      if (writes > BOUND) throw new Error(`Transaction already has ${BOUND} operations`);
                      return v.apply(table, args);
                    };
                  },
                })) as Db['table'],
              transaction: (inner2) => inner.transaction((nested) => inner2(view(nested))),
              writesLeft: () => BOUND - writes,
            });
            return fn(view(tx));
          });
      },
    });
    // Every endpoint answers 410 at once: the first write of outcomes disables five endpoints, and each of their
    // operational events goes to the endpoints still enabled: the pauses get only what room is left.
    const own = createDispatcher({ store: bounded, clock: t.clock, cipher: t.hub.deps.cipher, transport: sameTurnTransport(() => 410), config: t.hub.deps.config.webhooks });
    try {
      // Each claim leases or pauses at most 50: twenty take everything.
      for (let pass = 0; pass < 20; pass++) await own.runOnce();
      expect(most.writes).toBeGreaterThan(20);
      expect(most.writes).toBeLessThanOrEqual(BOUND);
      for (const id of endpoints) expect((await t.call('GET', `/v1/webhooks/endpoints/${id}`)).body).toMatchObject({ status: 'disabled', disabledReason: 'gone' });
      // What the writes that disabled them left pending, the claims paused: nothing is left to send, nothing lost.
      const states = new Map<string, number>();
      for (const id of endpoints) for (const d of await deliveriesOf(id)) states.set(d.state, (states.get(d.state) ?? 0) + 1);
      expect(states.get('pending') ?? 0).toBe(0);
      expect((states.get('paused') ?? 0) + receiver.received.length).toBeGreaterThanOrEqual(15 * 30);
    } finally {
      await own.stop(0);
    }
  });

  it('pauses only so many pending deliveries in the write that disables an endpoint, and the claims pause the rest', async () => {
    const { endpoint } = await subscribe();
    for (const subject of ['a', 'b', 'c', 'd']) await emit('stock.updated', subject);
    // One claimed at a time: the first is answered 410 while the other three are pending.
    const own = createDispatcher({ store: t.hub.deps.store, clock: t.clock, cipher: t.hub.deps.cipher, transport: sameTurnTransport(() => 410), config: t.hub.deps.config.webhooks, batchSize: 1, pausesPerDisable: 1 });
    const states = async () => (await oldestFirst(endpoint.id)).map((d) => d.state);
    try {
      expect(await own.runOnce()).toBe(1);
      expect((await t.call('GET', `/v1/webhooks/endpoints/${endpoint.id}`)).body).toMatchObject({ status: 'disabled', disabledReason: 'gone' });
      expect(await states()).toEqual(['paused', 'paused', 'pending', 'pending']);
      // Each claim finds the endpoint disabled and pauses what it takes, sending nothing.
      expect(await own.runOnce()).toBe(0);
      expect(await own.runOnce()).toBe(0);
      expect(await states()).toEqual(['paused', 'paused', 'paused', 'paused']);
      expect(receiver.received.map((r) => JSON.parse(r.body).subject)).toEqual(['a']);
    } finally {
      await own.stop(0);
    }
  });

  it('pauses the backlog of an endpoint it disables, the rest in a job, so that an enable sends it all at once', async () => {
    const { endpoint } = await subscribe();
    const { store } = t.hub.deps;
    // A backlog waiting out its retries, and one due now that is answered 410.
    await backlog(endpoint.id, MOVES_PER_TRANSACTION + 30, 3_600_000);
    receiver.respond((_req, res) => {
      res.statusCode = 410;
      res.end();
    });
    await emit('stock.updated', 'now');
    await dispatch();
    expect((await t.call('GET', `/v1/webhooks/endpoints/${endpoint.id}`)).body).toMatchObject({ status: 'disabled', disabledReason: 'gone' });
    const count = (state: 'pending' | 'paused') => store.table('webhook_deliveries').count({ endpointId: endpoint.id, state });
    expect(await count('paused')).toBe(MOVES_PER_TRANSACTION + 1);
    expect(await store.table('jobs').count({ type: ENDPOINT_MOVE_JOB, state: 'queued' })).toBe(1);
    expect(await runDueJobs(t.hub)).toBe(1);
    expect({ pending: await count('pending'), paused: await count('paused') }).toEqual({ pending: 0, paused: MOVES_PER_TRANSACTION + 31 });

    // Enabled again, everything that waited is due now, not when its next retry would have been.
    expect((await t.call('POST', `/v1/webhooks/endpoints/${endpoint.id}/enable`)).status).toBe(200);
    expect(await runDueJobs(t.hub)).toBe(1);
    const now = new Date(t.clock.now()).toISOString();
    expect(await store.table('webhook_deliveries').count({ endpointId: endpoint.id, state: 'pending', nextAttemptAt: { lte: now } })).toBe(MOVES_PER_TRANSACTION + 31);
  });

  it('pauses or resumes a backlog with the endpoint up to a chunk, and the rest in a job queued with it', async () => {
    const { endpoint } = await subscribe();
    const { store } = t.hub.deps;
    await backlog(endpoint.id, MOVES_PER_TRANSACTION + 20, 86_400_000);
    const states = async () => ({
      pending: await store.table('webhook_deliveries').count({ endpointId: endpoint.id, state: 'pending' }),
      paused: await store.table('webhook_deliveries').count({ endpointId: endpoint.id, state: 'paused' }),
    });
    const moveJobs = () => store.table('jobs').count({ type: ENDPOINT_MOVE_JOB, state: 'queued' });

    expect((await t.call('POST', `/v1/webhooks/endpoints/${endpoint.id}/disable`)).body.status).toBe('disabled');
    expect(await states()).toEqual({ pending: 20, paused: MOVES_PER_TRANSACTION });
    expect(await moveJobs()).toBe(1);
    expect(await runDueJobs(t.hub)).toBe(1);
    expect(await states()).toEqual({ pending: 0, paused: MOVES_PER_TRANSACTION + 20 });

    expect((await t.call('POST', `/v1/webhooks/endpoints/${endpoint.id}/enable`)).body.status).toBe('enabled');
    expect(await states()).toEqual({ pending: MOVES_PER_TRANSACTION, paused: 20 });
    expect(await runDueJobs(t.hub)).toBe(1);
    expect(await states()).toEqual({ pending: MOVES_PER_TRANSACTION + 20, paused: 0 });

    // A backlog that fits moves with the endpoint, and queues nothing.
    expect((await t.call('POST', `/v1/webhooks/endpoints/${endpoint.id}/disable`)).status).toBe(200);
    await runDueJobs(t.hub);
    await store.transaction(async (tx) => {
      const some = await tx.table('webhook_deliveries').query({ where: { endpointId: endpoint.id }, limit: MOVES_PER_TRANSACTION + 20 });
      for (const d of some.items.slice(50)) await tx.table('webhook_deliveries').delete(d.id);
    });
    expect((await t.call('POST', `/v1/webhooks/endpoints/${endpoint.id}/enable`)).status).toBe(200);
    expect(await states()).toEqual({ pending: 50, paused: 0 });
    expect(await moveJobs()).toBe(0);
  });

  it('moves the rest of an enable or a disable a page per transaction, and stops once the status changed again', async () => {
    const { endpoint } = await subscribe();
    for (const subject of ['a', 'b', 'c', 'd', 'e']) await emit('stock.updated', subject);
    const store = t.hub.deps.store;
    const states = async () => (await oldestFirst(endpoint.id)).map((d) => d.state);
    const now = new Date(t.clock.now()).toISOString();
    const setStatus = (status: 'enabled' | 'disabled') => store.table('webhook_endpoints').update(endpoint.id, { status });
    let transactions = 0;
    const counting = new Proxy(store, {
      get: (target, key) => (key === 'transaction' ? (fn: never) => (transactions++, target.transaction(fn)) : Reflect.get(target, key)),
    });
    // Still enabled: a disable's rest does nothing.
    expect(await moveTheRest(counting, endpoint.id, 'disabled', now, 2)).toBe(0);
    expect(await states()).toEqual(['pending', 'pending', 'pending', 'pending', 'pending']);
    await setStatus('disabled');
    transactions = 0;
    expect(await moveTheRest(counting, endpoint.id, 'disabled', now, 2)).toBe(5);
    expect(transactions).toBe(3);
    expect(await states()).toEqual(['paused', 'paused', 'paused', 'paused', 'paused']);
    // Disabled: an enable's rest resumes nothing.
    expect(await moveTheRest(counting, endpoint.id, 'enabled', now, 2)).toBe(0);
    await setStatus('enabled');
    expect(await moveTheRest(counting, endpoint.id, 'enabled', now, 2)).toBe(5);
    expect(await states()).toEqual(['pending', 'pending', 'pending', 'pending', 'pending']);
  });

  it('signs with both secrets during a rotation, and with the new one only after the grace period', async () => {
    const { endpoint, secret: old } = await subscribe();
    const rotated = await t.call('POST', `/v1/webhooks/endpoints/${endpoint.id}/rotate-secret`, { body: { graceSeconds: 3600 } });
    expect(rotated.status).toBe(200);
    const fresh = rotated.body.secret as string;
    expect(fresh).not.toBe(old);
    await emit('stock.updated');
    await dispatch();
    const during = receiver.received[0]!;
    expect(during.headers['webhook-signature']!.split(' ')).toHaveLength(2);
    expect(() => officialVerify(old, during)).not.toThrow();
    expect(() => officialVerify(fresh, during)).not.toThrow();
    t.clock.advance(3601_000);
    await emit('stock.updated');
    await dispatch();
    const after = receiver.received[1]!;
    expect(after.headers['webhook-signature']!.split(' ')).toHaveLength(1);
    expect(() => officialVerify(fresh, after)).not.toThrow();
    expect(() => officialVerify(old, after)).toThrow('No matching signature found');
    const revealed = await t.call('GET', `/v1/webhooks/endpoints/${endpoint.id}/secret`);
    expect(revealed.body.secret).toBe(fresh);
  });

  it('keeps to an endpoint’s rate limit by spacing its deliveries out', async () => {
    const { endpoint } = await subscribe({ rateLimitPerSecond: 2 });
    for (let i = 0; i < 6; i++) await emit('stock.updated', `s${i}`);
    expect(await dispatch()).toBe(1);
    const waiting = (await deliveriesOf(endpoint.id)).filter((d) => d.state === 'pending').map((d) => Date.parse(d.nextAttemptAt) - t.clock.now()).sort((a, b) => a - b);
    expect(waiting).toEqual([500, 1000, 1500, 2000, 2500]);
    let sent = 1;
    for (let step = 0; step < 5; step++) {
      t.clock.advance(500);
      sent += await dispatch();
      expect(sent).toBe(step + 2);
    }
    expect(receiver.received).toHaveLength(6);
  });

  it('replays one delivery, the failed ones since a time, and a range of events from before the endpoint existed', async () => {
    await emit('stock.updated', 'before');
    const { endpoint } = await subscribe();
    receiver.respond((_req, res) => {
      res.statusCode = 500;
      res.end();
    });
    await emit('stock.updated', 'x');
    for (const ms of STANDARD_SCHEDULE_MS) {
      t.clock.advance(ms);
      await dispatch();
    }
    const [dead] = await deliveriesOf(endpoint.id);
    expect(dead.state).toBe('dead');
    receiver.respond((_req, res) => void res.end('ok'));
    const replayed = await t.call('POST', `/v1/webhooks/deliveries/${dead.id}/replay`);
    expect(replayed.body).toMatchObject({ state: 'pending', attempts: 0 });
    const again = await t.call('POST', `/v1/webhooks/deliveries/${dead.id}/replay`);
    expectProblem(again, 409, 'invalid_transition');
    await dispatch();
    expect((await t.call('GET', `/v1/webhooks/deliveries/${dead.id}`)).body).toMatchObject({ state: 'delivered', totalAttempts: 11 });

    const since = new Date(Date.parse('2026-03-01T00:00:00Z')).toISOString();
    const range = await t.call('POST', `/v1/webhooks/endpoints/${endpoint.id}/replay`, { body: { scope: 'events', since } });
    // "before" had no delivery: it is created; "x" was delivered: it starts again.
    expect(range.body).toMatchObject({ created: 1, replayed: 1, hasMore: false });
    await dispatch();
    const subjects = receiver.received.slice(-2).map((r) => JSON.parse(r.body).subject).sort();
    expect(subjects).toEqual(['before', 'x']);
    const failed = await t.call('POST', `/v1/webhooks/endpoints/${endpoint.id}/replay`, { body: { scope: 'failed', since } });
    expect(failed.body).toMatchObject({ replayed: 0, hasMore: false });
  });

  it('sends a test event to one endpoint only, not to those taking every event, nor in their replays', async () => {
    const one = await subscribe({ eventTypes: ['order.*'] });
    await subscribe({ eventTypes: ['order.*'] });
    const all = await subscribe({ eventTypes: ['*'] });
    const tests = await subscribe({ eventTypes: ['webhook.*'] });
    const res = await t.call('POST', `/v1/webhooks/endpoints/${one.endpoint.id}/test`);
    expect(res.status).toBe(202);
    await dispatch();
    expect(receiver.received.map((r) => JSON.parse(r.body).type)).toEqual(['webhook.test']);
    for (const other of [all, tests]) {
      expect(await deliveriesOf(other.endpoint.id)).toEqual([]);
      const since = new Date(t.clock.now() - 60_000).toISOString();
      const range = await t.call('POST', `/v1/webhooks/endpoints/${other.endpoint.id}/replay`, { body: { scope: 'events', since } });
      expect(range.body).toMatchObject({ created: 0, replayed: 0, hasMore: false });
    }
    // Its own endpoint's replay of the range sends it again.
    const own = await t.call('POST', `/v1/webhooks/endpoints/${tests.endpoint.id}/test`);
    expect(own.status).toBe(202);
    const range = await t.call('POST', `/v1/webhooks/endpoints/${tests.endpoint.id}/replay`, { body: { scope: 'events', since: new Date(t.clock.now() - 60_000).toISOString() } });
    expect(range.body).toMatchObject({ created: 0, replayed: 0 });
  });

  it('replays a range of events a page at a time, however many share one time, and reads times as instants', async () => {
    const { endpoint } = await subscribe({ eventTypes: ['stock.*'] });
    // Written together, five events share one time to the millisecond (an import, a bulk change), here at .500 s.
    t.clock.advance(1500 - (t.clock.now() % 1000));
    const at = new Date(t.clock.now()).toISOString();
    const second = at.slice(0, 19);
    const offset = `${new Date(Date.parse(at) + 2 * 3_600_000).toISOString().slice(0, 19)}+02:00`;
    await t.hub.deps.store.transaction(async (tx) => {
      for (let i = 0; i < 5; i++) await appendEvent(tx, { type: 'stock.updated', workspaceId: t.workspace.id, subject: `s${i}`, data: {} }, at);
    });
    await dispatch();
    expect(receiver.received).toHaveLength(5);
    const replay = (body: Record<string, unknown>) => t.call('POST', `/v1/webhooks/endpoints/${endpoint.id}/replay`, { body: { scope: 'events', limit: 2, ...body } });
    // Their second written whole, with an offset: it takes in the events at .500 of that second.
    const until = `${second}.999Z`;
    let page = await replay({ since: offset, until });
    expect(page.status, page.text).toBe(200);
    const seen: number[] = [page.body.replayed];
    while (page.body.hasMore) {
      expect(page.body.nextSince).toBe(at);
      page = await replay({ since: page.body.nextSince, until, cursor: page.body.nextCursor });
      expect(page.status, page.text).toBe(200);
      seen.push(page.body.replayed);
      expect(seen.length).toBeLessThan(5);
    }
    expect(seen).toEqual([2, 2, 1]);
    expect(page.body).toMatchObject({ hasMore: false, nextSince: null, nextCursor: null });
    await dispatch();
    expect(receiver.received.slice(5).map((r) => JSON.parse(r.body).subject).sort()).toEqual(['s0', 's1', 's2', 's3', 's4']);
    // Every delivery went out twice, no more.
    for (const d of await deliveriesOf(endpoint.id)) expect(d).toMatchObject({ state: 'delivered', totalAttempts: 2 });

    expectProblem(await replay({ since: `${second}Z`, cursor: 'not-a-cursor' }), 400, 'invalid_cursor');
    const backwards = await replay({ since: offset, until: `${second.slice(0, 17)}00Z` });
    expectProblem(backwards, 400, 'validation_failed');
  });

  it('replays a subject\'s failed deliveries one at a time, oldest first, behind any still on its way', async () => {
    const { endpoint } = await subscribe();
    receiver.respond((_req, res) => {
      res.statusCode = 500;
      res.end();
    });
    await emit('order.created', 'o1');
    await emit('order.updated', 'o1');
    await dispatch();
    // Both were given up on (the second waited behind the first, then its own retries ran out).
    for (const d of await oldestFirst(endpoint.id)) await t.hub.deps.store.table('webhook_deliveries').update(d.id, { state: 'dead', deadAt: new Date(t.clock.now()).toISOString() });
    const [first, second] = await oldestFirst(endpoint.id);
    expect([first.state, second.state]).toEqual(['dead', 'dead']);
    const sent = receiver.received.length;
    // The first fails once more when replayed: the second must not go before it.
    receiver.respond((req, res) => {
      res.statusCode = JSON.parse(req.body).type === 'order.created' && receiver.received.length === sent + 1 ? 500 : 200;
      res.end();
    });
    const replayed = await t.call('POST', `/v1/webhooks/endpoints/${endpoint.id}/replay`, { body: { scope: 'failed', since: '2000-01-01T00:00:00Z' } });
    expect(replayed.body).toMatchObject({ replayed: 2, hasMore: false });
    expect((await oldestFirst(endpoint.id)).map((d) => d.state)).toEqual(['pending', 'waiting']);
    await dispatch();
    expect((await oldestFirst(endpoint.id)).map((d) => d.state)).toEqual(['pending', 'waiting']);
    t.clock.advance(STANDARD_SCHEDULE_MS[1]!);
    await dispatch();
    await dispatch();
    expect((await oldestFirst(endpoint.id)).map((d) => d.state)).toEqual(['delivered', 'delivered']);
    expect(receiver.received.slice(sent).map((r) => JSON.parse(r.body).type)).toEqual(['order.created', 'order.created', 'order.updated']);

    // One delivery replayed while another of its subject is on its way waits behind it.
    receiver.respond((_req, res) => {
      res.statusCode = 500;
      res.end();
    });
    await emit('order.shipped', 'o1');
    await dispatch();
    const one = await t.call('POST', `/v1/webhooks/deliveries/${first.id}/replay`);
    expect(one.body).toMatchObject({ state: 'waiting', attempts: 0 });
  });

  it('keeps the ledger: published = delivered + pending + dead', async () => {
    const ok = await subscribe({ eventTypes: ['stock.*'] });
    await emit('stock.updated');
    await emit('stock.updated');
    await dispatch();
    await emit('stock.updated');
    const stats = await t.call('GET', '/v1/webhooks/stats');
    expect(stats.body).toMatchObject({ published: 3, delivered: 2, pending: 1, dead: 0 });
    expect((await t.call('GET', `/v1/webhooks/endpoints/${ok.endpoint.id}/stats`)).body.byState).toMatchObject({ delivered: 2, pending: 1 });
  });

  it('lists deliveries newest first, by endpoint, state or event, a page at a time', async () => {
    const a = await subscribe({ eventTypes: ['stock.*'] });
    const b = await subscribe({ eventTypes: ['*'] });
    const events = [];
    for (let i = 0; i < 3; i++) events.push(await emit('stock.updated', `s${i}`));
    await dispatch();
    await emit('order.created');
    const other = await t.addWorkspace('Other');
    await t.call('POST', '/v1/webhooks/endpoints', { key: other.secret, body: { url: receiver.url, eventTypes: ['*'] } });
    await appendEvent(t.hub.deps.store, { type: 'stock.updated', workspaceId: other.workspace.id, subject: null, data: {} }, new Date(t.clock.now()).toISOString());

    const list = async (query: string) => (await t.call('GET', `/v1/webhooks/deliveries?${query}`)).body as { data: { id: string; endpointId: string; eventId: string; state: string }[]; nextCursor: string | null };
    const all = await list('limit=100');
    expect(all.data).toHaveLength(7);
    expect(all.data.map((d) => d.id)).toEqual(all.data.map((d) => d.id).sort().reverse());
    const event = await list(`eventId=${events[1]!.id}`);
    expect(event.data.map((d) => d.endpointId).sort()).toEqual([a.endpoint.id, b.endpoint.id].sort());
    expect((await list(`eventId=${events[1]!.id}&endpointId=${a.endpoint.id}`)).data.map((d) => d.endpointId)).toEqual([a.endpoint.id]);
    expect((await list('state=pending')).data.map((d) => d.endpointId)).toEqual([b.endpoint.id]);
    // Two pages of three, then the last one.
    const first = await list(`endpointId=${a.endpoint.id}&limit=2`);
    const second = await list(`endpointId=${a.endpoint.id}&limit=2&cursor=${first.nextCursor}`);
    expect([...first.data, ...second.data].map((d) => d.eventId)).toEqual(events.map((e) => e.id).reverse());
    expect(second.nextCursor).toBeNull();
    // Another workspace's event is not found here.
    const theirs = (await t.call('GET', '/v1/webhooks/deliveries', { key: other.secret })).body.data as { eventId: string }[];
    expect(theirs).toHaveLength(1);
    expect((await list(`eventId=${theirs[0]!.eventId}`)).data).toEqual([]);
  });

  it('adds up the ledgers of more endpoints than it counts at once', async () => {
    for (let i = 0; i < 11; i++) await subscribe({ eventTypes: ['stock.*'] });
    await emit('stock.updated');
    await emit('stock.updated');
    expect((await t.call('GET', '/v1/webhooks/stats')).body).toMatchObject({ published: 22, pending: 22, delivered: 0, byState: { pending: 22 } });
  });

  it('counts the ledger from index ranges, over every endpoint of the workspace and none of another', async () => {
    const a = await subscribe({ eventTypes: ['stock.*'] });
    const b = await subscribe({ eventTypes: ['order.*'] });
    await emit('stock.updated');
    await emit('order.created');
    await dispatch();
    await emit('order.created');
    // Another workspace's endpoint and deliveries count in neither of this one's ledgers.
    const other = await t.addWorkspace('Other');
    const theirs = await t.call('POST', '/v1/webhooks/endpoints', { key: other.secret, body: { url: receiver.url, eventTypes: ['*'] } });
    await appendEvent(t.hub.deps.store, { type: 'order.created', workspaceId: other.workspace.id, subject: null, data: {} }, new Date(t.clock.now()).toISOString());

    // Every COUNT the ledgers run, with its parameters, for its query plan.
    const counts = spyStatements(t.hub.deps.store as SqliteStore, 'SELECT COUNT(*)', 'get');
    expect((await t.call('GET', '/v1/webhooks/stats')).body).toMatchObject({ published: 3, delivered: 2, pending: 1, dead: 0 });
    expect((await t.call('GET', `/v1/webhooks/endpoints/${b.endpoint.id}/stats`)).body).toMatchObject({ published: 2, delivered: 1, pending: 1 });
    expect((await t.call('GET', `/v1/webhooks/endpoints/${a.endpoint.id}/stats`)).body).toMatchObject({ published: 1, delivered: 1, pending: 0 });
    expect((await t.call('GET', `/v1/webhooks/endpoints/${theirs.body.endpoint.id}/stats`)).status).toBe(404);
    expect((await t.call('GET', '/v1/webhooks/stats', { key: other.secret })).body).toMatchObject({ published: 1, pending: 1 });
    expect(counts.seen.length).toBeGreaterThan(0);
    for (const count of counts.seen) {
      // An index range and no row read: a count costs its matches' index entries, not a row lookup each.
      // (A count stopped at a chunk's end reads it as a subquery: its rows are taken as they come.)
      expect(counts.plan(count).join(' | '), count.sql).toMatch(/^(CO-ROUTINE \(subquery-1\) \| )?SEARCH webhook_deliveries USING COVERING INDEX [^|]*( \| SCAN \(subquery-1\))?$/);
    }
  });
});

describe('the SSRF guard', () => {
  it('refuses loopback, private and metadata addresses when no allowlist permits them', async () => {
    await t.close();
    await receiver.close();
    await setup({ allow: [] });
    for (const url of ['http://127.0.0.1:8080/x', 'http://169.254.169.254/latest/meta-data', 'http://10.1.2.3/', 'http://[::1]/', 'http://localhost:3000/', 'http://[::ffff:127.0.0.1]/']) {
      const res = await t.call('POST', '/v1/webhooks/endpoints', { body: { url, eventTypes: ['*'] } });
      const problem = expectProblem(res, 400, 'validation_failed');
      expect(problem.errors[0]).toMatchObject({ field: '/url', code: 'blocked_address' });
    }
  });

  it('checks the address at delivery time too, after DNS resolution (a name that now points at loopback)', async () => {
    await t.close();
    await receiver.close();
    await setup({ allow: [] });
    const created = await t.call('POST', '/v1/webhooks/endpoints', { body: { url: 'https://hooks.example.com/in', eventTypes: ['*'] } });
    expect(created.status).toBe(201);
    // As if its DNS record changed after the check at creation: the name now resolves to this machine.
    await t.hub.deps.store.table('webhook_endpoints').update(created.body.endpoint.id, { url: `http://localhost:${receiver.port}/hook` });
    await emit('stock.updated');
    t.clock.advance(3000);
    await dispatch();
    expect(receiver.received).toHaveLength(0);
    const [delivery] = await deliveriesOf(created.body.endpoint.id);
    expect(delivery).toMatchObject({ state: 'pending', lastError: 'ssrf_blocked' });
  });
});

describe('endpoint headers', () => {
  it('sends credential headers as given, shows them redacted, and keeps them when a read endpoint is written back', async () => {
    const headers = { Authorization: 'Bearer s3cr3t', 'X-Api-Key': 'k-123', 'X-Tenant': 'acme' };
    const { endpoint } = await subscribe({ headers });
    const shown = { Authorization: '[redacted]', 'X-Api-Key': '[redacted]', 'X-Tenant': 'acme' };
    const read = await t.call('GET', `/v1/webhooks/endpoints/${endpoint.id}`);
    expect(read.body.headers).toEqual(shown);
    expect((await t.call('GET', '/v1/webhooks/endpoints')).body.data[0].headers).toEqual(shown);
    await emit('stock.updated');
    await dispatch();
    expect(receiver.received[0]!.headers).toMatchObject({ authorization: 'Bearer s3cr3t', 'x-api-key': 'k-123', 'x-tenant': 'acme' });
    // Read, one header changed, written back: the redacted ones keep their values (names match in any case).
    const patched = await t.call('PATCH', `/v1/webhooks/endpoints/${endpoint.id}`, { body: { headers: { authorization: '[redacted]', 'X-Api-Key': '[redacted]', 'X-Tenant': 'globex' } } });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.body.headers).toEqual({ authorization: '[redacted]', 'X-Api-Key': '[redacted]', 'X-Tenant': 'globex' });
    await emit('stock.updated');
    await dispatch();
    expect(receiver.received[1]!.headers).toMatchObject({ authorization: 'Bearer s3cr3t', 'x-api-key': 'k-123', 'x-tenant': 'globex' });
    // The placeholder for a header the endpoint does not have would be sent as is: refused, on update and on create.
    const unknown = await t.call('PATCH', `/v1/webhooks/endpoints/${endpoint.id}`, { body: { headers: { 'X-Auth-Token': '[redacted]' } } });
    expectProblem(unknown, 400, 'validation_failed');
    expect(unknown.body.errors).toEqual([expect.objectContaining({ field: '/headers/X-Auth-Token', code: 'redacted' })]);
    const created = await t.call('POST', '/v1/webhooks/endpoints', { body: { url: receiver.url, eventTypes: ['*'], headers: { Authorization: '[redacted]' } } });
    expectProblem(created, 400, 'validation_failed');
  });
});

describe('endpoint API bad input', () => {
  it('refuses a workspace more endpoints than fan-out reads at once', async () => {
    const { cipher, webhooks } = t.hub.deps;
    const now = new Date(t.clock.now()).toISOString();
    await t.hub.deps.store.transaction(async (tx) => {
      for (let i = 1; i < MAX_ENDPOINTS; i++) await createEndpoint(tx, { cipher, policy: webhooks.policy }, t.workspace.id, { url: receiver.url, eventTypes: ['order.created'] }, now);
    });
    const last = await t.call('POST', '/v1/webhooks/endpoints', { body: { url: receiver.url, eventTypes: ['order.*'] } });
    expect(last.status, last.text).toBe(201);
    const over = await t.call('POST', '/v1/webhooks/endpoints', { body: { url: receiver.url, eventTypes: ['order.*'] } });
    expectProblem(over, 409, 'bound_exceeded');
    // Every one of them is sent what it subscribed to.
    expect(await emit('order.created')).toBeTruthy();
    expect((await t.call('GET', '/v1/webhooks/stats')).body.published).toBe(MAX_ENDPOINTS);
  });

  it('answers problem+json with the failing fields', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ url: 'ftp://example.com/x', eventTypes: ['*'] }, '/url'],
      [{ url: 'not a url', eventTypes: ['*'] }, '/url'],
      [{ url: 'https://user:pw@example.com/', eventTypes: ['*'] }, '/url'],
      [{ url: 'https://example.com/', eventTypes: ['Order Created'] }, '/eventTypes/0'],
      [{ url: 'https://example.com/', eventTypes: [] }, '/eventTypes'],
      [{ url: 'https://example.com/', eventTypes: ['*'], headers: { 'webhook-signature': 'forged' } }, '/headers/webhook-signature'],
      [{ url: 'https://example.com/', eventTypes: ['*'], secret: 'whsec_tooshort' }, '/secret'],
      [{ url: 'https://example.com/', eventTypes: ['*'], rateLimitPerSecond: 0 }, '/rateLimitPerSecond'],
      [{ url: 'https://example.com/', eventTypes: ['*'], colour: 'red' }, '/colour'],
    ];
    for (const [body, field] of cases) {
      const res = await t.call('POST', '/v1/webhooks/endpoints', { body });
      const problem = expectProblem(res, 400, 'validation_failed');
      expect(problem.errors.map((e: { field: string }) => e.field), JSON.stringify(body)).toContain(field);
    }
    expect((await t.call('GET', '/v1/webhooks/endpoints')).body.data).toHaveLength(0);
  });

  it('hides another workspace’s endpoints and refuses keys without the webhooks scope', async () => {
    const { endpoint } = await subscribe();
    const other = await t.addWorkspace('Other');
    expectProblem(await t.call('GET', `/v1/webhooks/endpoints/${endpoint.id}`, { key: other.secret }), 404, 'not_found');
    const key = await t.call('POST', '/v1/api-keys', { body: { name: 'reader', scopes: ['webhooks:read'] } });
    expectProblem(await t.call('POST', '/v1/webhooks/endpoints', { key: key.body.secret, body: { url: receiver.url, eventTypes: ['*'] } }), 403, 'insufficient_scope');
    expectProblem(await t.call('GET', `/v1/webhooks/endpoints/${endpoint.id}/secret`, { key: key.body.secret }), 403, 'insufficient_scope');
  });

  it('deletes an endpoint at once, and its deliveries and their log in a job, a chunk at a time', async () => {
    const { endpoint } = await subscribe();
    await emit('stock.updated');
    expect(await dispatch()).toBe(1);
    // More than a chunk of the purge (PRUNE_CHUNK) besides: delivered ones with their attempts, and one still due.
    const { store } = t.hub.deps;
    const now = new Date(t.clock.now()).toISOString();
    await store.transaction(async (tx) => {
      for (let i = 0; i < PRUNE_CHUNK + 50; i++) {
        const d = await tx.table('webhook_deliveries').insert({ workspaceId: t.workspace.id, endpointId: endpoint.id, eventId: `evt_bulk${i}`, eventType: 'stock.updated', orderingKey: null, state: 'delivered', attempts: 1, totalAttempts: 1, nextAttemptAt: now });
        await tx.table('webhook_attempts').insert({ workspaceId: t.workspace.id, endpointId: endpoint.id, deliveryId: d.id, eventId: `evt_bulk${i}`, attempt: 1, at: now, ok: true, status: 200, latencyMs: 1 });
      }
    });
    await emit('stock.updated');
    expect(await store.table('webhook_deliveries').count({ endpointId: endpoint.id })).toBe(PRUNE_CHUNK + 52);

    expect((await t.call('DELETE', `/v1/webhooks/endpoints/${endpoint.id}`)).status).toBe(204);
    expectProblem(await t.call('GET', `/v1/webhooks/endpoints/${endpoint.id}`), 404, 'not_found');
    // Nothing more goes out to it: the due one is dropped when the dispatcher claims it.
    expect(await dispatch()).toBe(0);
    const jobs = await store.table('jobs').query({ where: { type: ENDPOINT_PURGE_JOB }, limit: 10 });
    expect(jobs.items).toEqual([expect.objectContaining({ state: 'queued', workspaceId: t.workspace.id, payload: { endpointId: endpoint.id } })]);
    expect(await runDueJobs(t.hub)).toBeGreaterThanOrEqual(1);
    expect(await store.table('jobs').get(jobs.items[0]!.id)).toMatchObject({ state: 'succeeded', result: { endpointId: endpoint.id, attemptsDeleted: PRUNE_CHUNK + 51, deliveriesDeleted: PRUNE_CHUNK + 51 } });
    expect(await store.table('webhook_deliveries').count({ endpointId: endpoint.id })).toBe(0);
    expect(await store.table('webhook_attempts').count({ endpointId: endpoint.id })).toBe(0);
  });
});
