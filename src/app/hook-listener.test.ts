// The direct path for POST /hooks/{connectionId} answers as the Hono route does: every case is sent to a server
// with the direct path and to one with only the Hono app, over real sockets, and the two answers compared.
import { getRequestListener } from '@hono/node-server';
import { createServer, type RequestListener, type Server } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONNECTORS } from '../../connectors/index.ts';
import { createTestHub, type TestHub } from '../../test/helpers.ts';
import { defineConnector, type WebhookAnswers } from '../connectors/define.ts';
import { hookListener, HOOK_ROUTE } from './hook-listener.ts';

const MAX_BODY = 2048;

/** A vendor that signs with a header saying "good", names its deliveries in x-id, and has a handshake. */
const vendor = defineConnector({
  id: 'hook-listener-test',
  name: 'hook-listener-test',
  category: 'generic',
  description: 'A test vendor.',
  configSchema: { type: 'object' },
  credentialsSchema: { type: 'object' },
  capabilities: ['webhooks'],
  create: (config: { answers?: WebhookAnswers }) => ({
    testConnection: async () => ({ ok: true, latencyMs: 0, message: 'ok' }),
    webhooks: {
      answers: config.answers,
      verify: (req) => {
        const intent = req.headers.get('x-hook-secret');
        if (intent) return { ok: true, deliveryId: 'handshake', handshake: { status: 200, headers: { 'X-Hook-Secret': intent }, body: 'ready' } };
        if (req.headers.get('x-explode')) throw new Error('the verifier broke');
        // As a vendor that signs the address it posts to would check it.
        const signedUrl = req.headers.get('x-signed-url');
        if (signedUrl !== null && signedUrl !== req.url) return { ok: false, reason: 'url_mismatch' };
        return req.headers.get('x-test-signature') === 'good' ? { ok: true, deliveryId: req.headers.get('x-id') ?? 'none' } : { ok: false, reason: 'signature_mismatch' };
      },
      parse: () => ({ eventType: null, payload: {} }),
      routes: [],
    },
  }),
});

let t: TestHub;
let connectionId: string;
const servers: Server[] = [];
let direct: string;
let plain: string;
/** Requests the direct server passed on to the app: the cases below say which they expect. */
let passedOn = 0;

async function serve(listener: RequestListener): Promise<string> {
  const server = createServer(listener);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

beforeAll(async () => {
  t = await createTestHub({ connectors: [...CONNECTORS, vendor], config: { maxBodyBytes: MAX_BODY } });
  connectionId = (await t.call('POST', '/v1/connections', { body: { connectorId: vendor.id, name: 'vendor', config: {} } })).body.id;
  const app = getRequestListener(t.hub.app.fetch);
  direct = await serve(
    hookListener(t.hub.deps, (req, res) => {
      passedOn++;
      return app(req, res);
    }),
  );
  plain = await serve(getRequestListener(t.hub.app.fetch));
});
afterAll(async () => {
  for (const s of servers) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  await t.close();
});

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

const KEPT_HEADERS = ['content-type', 'x-content-type-options', 'x-request-id', 'x-hook-secret'];

async function send(base: string, path: string, init: RequestInit): Promise<Answer> {
  const res = await fetch(base + path, init);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: compared as text
  }
  const headers: Record<string, string> = {};
  for (const name of KEPT_HEADERS) {
    const value = res.headers.get(name);
    if (value !== null) headers[name] = value;
  }
  return { status: res.status, headers, body };
}

/** The same request to both servers; `vary` gives each its own version of the request (a fresh delivery id). */
async function both(path: string, init: (which: 'direct' | 'plain') => RequestInit, taken = true): Promise<{ direct: Answer; plain: Answer }> {
  const before = passedOn;
  const answers = { direct: await send(direct, path, init('direct')), plain: await send(plain, path, init('plain')) };
  expect(passedOn - before, taken ? 'answered on the direct path' : 'passed on to the app').toBe(taken ? 0 : 1);
  return answers;
}

/** Drops what differs by nature between two answers: generated ids and request ids. */
function comparable(a: Answer): Answer {
  const body = typeof a.body === 'object' && a.body ? { ...(a.body as Record<string, unknown>) } : a.body;
  if (body && typeof body === 'object') {
    const b = body as Record<string, unknown>;
    if (typeof b.id === 'string') b.id = 'ID';
    if (typeof b.instance === 'string') b.instance = 'REQUEST';
  }
  const headers = { ...a.headers };
  if (headers['x-request-id']?.startsWith('req_')) headers['x-request-id'] = 'REQUEST';
  return { ...a, headers, body };
}

const good = (id: string, body = '{"n":1}') => ({ method: 'POST', headers: { 'x-test-signature': 'good', 'x-id': id, 'content-type': 'application/json' }, body });

describe('the direct webhook path', () => {
  it('stores a verified webhook and answers 202 as the route does; a resend is the same webhook', async () => {
    const first = await both(`/hooks/${connectionId}`, (w) => good(`a-${w}`));
    expect(first.direct.status).toBe(202);
    expect(first.direct.body).toMatchObject({ duplicate: false });
    expect(comparable(first.direct)).toEqual(comparable(first.plain));
    const again = await both(`/hooks/${connectionId}`, (w) => good(`a-${w}`));
    expect(again.direct.body).toEqual({ id: (first.direct.body as { id: string }).id, duplicate: true });
    expect(comparable(again.direct)).toEqual(comparable(again.plain));
    // The raw bytes and the headers as they came are what the worker will verify and parse.
    const stored = await t.call('GET', `/v1/inbox/${(first.direct.body as { id: string }).id}`);
    expect(stored.body).toMatchObject({ deliveryId: 'a-direct', status: 'received', connectionId });
    expect(Buffer.from(stored.body.body, 'base64').toString()).toBe('{"n":1}');
    expect(stored.body.headers).toMatchObject({ 'x-test-signature': 'good', 'x-id': 'a-direct' });
  });

  it('takes a query string of the sender’s own, and gives it to the verifier with the path', async () => {
    const path = `/hooks/${connectionId}?token=abc&source=shop`;
    const res = await both(path, (w) => ({ ...good(`qs-${w}`), headers: { ...good(`qs-${w}`).headers, 'x-signed-url': path } }));
    expect(res.direct).toMatchObject({ status: 202, body: { duplicate: false } });
    expect(comparable(res.direct)).toEqual(comparable(res.plain));
    const other = await both(path, (w) => ({ ...good(`qs2-${w}`), headers: { ...good(`qs2-${w}`).headers, 'x-signed-url': `/hooks/${connectionId}` } }));
    expect(other.direct.status).toBe(401);
    expect(comparable(other.direct)).toEqual(comparable(other.plain));
  });

  it('keeps the request id it is given, and a sane one only', async () => {
    const res = await both(`/hooks/${connectionId}`, (w) => ({ ...good(`q-${w}`), headers: { ...good(`q-${w}`).headers, 'x-request-id': 'sender-42' } }));
    expect(res.direct).toMatchObject({ status: 202, headers: { 'x-request-id': 'sender-42' } });
    expect(comparable(res.direct)).toEqual(comparable(res.plain));
    const odd = await send(direct, `/hooks/${connectionId}`, { ...good('q-odd'), headers: { ...good('q-odd').headers, 'x-request-id': 'has space' } });
    expect(odd.headers['x-request-id']).toMatch(/^req_/);
  });

  it('refuses a bad signature with 401 and no detail, storing nothing', async () => {
    const before = (await t.call('GET', '/v1/inbox?limit=100')).body.data.length;
    const res = await both(`/hooks/${connectionId}`, () => ({ method: 'POST', headers: { 'x-test-signature': 'bad', 'x-id': 'b' }, body: '{}' }));
    expect(res.direct).toMatchObject({ status: 401, headers: { 'content-type': 'application/problem+json' }, body: { code: 'unauthenticated' } });
    expect(comparable(res.direct)).toEqual(comparable(res.plain));
    expect((await t.call('GET', '/v1/inbox?limit=100')).body.data.length).toBe(before);
  });

  it('answers 500 with a problem document when the connector fails, as the app does', async () => {
    const res = await both(`/hooks/${connectionId}?token=secret`, () => ({ method: 'POST', headers: { 'x-explode': '1' }, body: '{}' }));
    expect(res.direct).toMatchObject({ status: 500, headers: { 'content-type': 'application/problem+json' }, body: { code: 'internal_error' } });
    expect(comparable(res.direct)).toEqual(comparable(res.plain));
  });

  it('answers 404 for a connection that does not exist', async () => {
    const res = await both('/hooks/con_nothere', () => good('c'));
    expect(res.direct).toMatchObject({ status: 404, body: { code: 'not_found' } });
    expect(comparable(res.direct)).toEqual(comparable(res.plain));
  });

  it('answers 413 for a declared length over the limit, before reading the body', async () => {
    const res = await both(`/hooks/${connectionId}`, () => good('d', 'x'.repeat(MAX_BODY + 1)));
    expect(res.direct).toMatchObject({ status: 413, body: { code: 'payload_too_large', maxBytes: MAX_BODY } });
    expect(comparable(res.direct)).toEqual(comparable(res.plain));
  });

  it('answers 413 for a chunked body once it passes the limit, and closes the connection', async () => {
    const chunked = (): RequestInit => {
      const chunks = [Buffer.alloc(MAX_BODY / 2, 'a'), Buffer.alloc(MAX_BODY / 2, 'b'), Buffer.alloc(10, 'c')];
      const body = new ReadableStream({ pull: (c) => void (chunks.length ? c.enqueue(chunks.shift()) : c.close()) });
      return { method: 'POST', headers: { 'x-test-signature': 'good', 'x-id': 'e' }, body, duplex: 'half' } as RequestInit;
    };
    const res = await both(`/hooks/${connectionId}`, chunked);
    expect(res.direct).toMatchObject({ status: 413, body: { code: 'payload_too_large' } });
    expect(comparable(res.direct)).toEqual(comparable(res.plain));
    // At the limit exactly it is taken.
    const exact = await send(direct, `/hooks/${connectionId}`, good('e-exact', 'x'.repeat(MAX_BODY)));
    expect(exact.status).toBe(202);
  });

  it('answers a handshake as the connector says, storing nothing', async () => {
    const res = await both(`/hooks/${connectionId}`, () => ({ method: 'POST', headers: { 'x-hook-secret': 'abc' }, body: '' }));
    expect(res.direct).toMatchObject({ status: 200, headers: { 'x-hook-secret': 'abc' }, body: 'ready' });
    expect(comparable(res.direct)).toEqual(comparable(res.plain));
    const inbox = (await t.call('GET', '/v1/inbox?limit=100')).body.data as { deliveryId: string }[];
    expect(inbox.some((r) => r.deliveryId === 'handshake')).toBe(false);
  });

  it('answers as the connector’s answers say, where a sender takes only 200 or wants no body', async () => {
    const connectWith = async (answers: WebhookAnswers) =>
      (await t.call('POST', '/v1/connections', { body: { connectorId: vendor.id, name: `vendor-${JSON.stringify(answers)}`, config: { answers } } })).body.id as string;
    // Xero: 200 for a stored webhook, 401 with no body for a bad signature.
    const xero = await connectWith({ accepted: { status: 200, empty: true }, refused: { empty: true } });
    for (const round of ['first', 'resend']) {
      const res = await both(`/hooks/${xero}`, (w) => good(`x-${w}`));
      expect(res.direct, round).toMatchObject({ status: 200, body: '' });
      expect(res.direct.headers['content-type'], round).toBeUndefined();
      expect(comparable(res.direct)).toEqual(comparable(res.plain));
    }
    const refused = await both(`/hooks/${xero}`, () => ({ method: 'POST', headers: { 'x-test-signature': 'bad', 'x-id': 'xb' }, body: '{}' }));
    expect(refused.direct).toMatchObject({ status: 401, body: '' });
    expect(refused.direct.headers['content-type']).toBeUndefined();
    expect(comparable(refused.direct)).toEqual(comparable(refused.plain));
    const stored = (await t.call('GET', `/v1/inbox?limit=100`)).body.data.filter((r: { connectionId: string }) => r.connectionId === xero);
    expect(stored.map((r: { deliveryId: string }) => r.deliveryId).sort()).toEqual(['x-direct', 'x-plain']);

    // 200 with the usual body, and 204 (never a body).
    const ok = await connectWith({ accepted: { status: 200 } });
    const withBody = await both(`/hooks/${ok}`, (w) => good(`o-${w}`));
    expect(withBody.direct).toMatchObject({ status: 200, headers: { 'content-type': 'application/json' }, body: { duplicate: false } });
    expect(comparable(withBody.direct)).toEqual(comparable(withBody.plain));
    const none = await connectWith({ accepted: { status: 204 } });
    const noContent = await both(`/hooks/${none}`, (w) => good(`n-${w}`));
    expect(noContent.direct).toMatchObject({ status: 204, body: '' });
    expect(comparable(noContent.direct)).toEqual(comparable(noContent.plain));
    // Its refusals keep the problem document.
    const plainRefusal = await both(`/hooks/${none}`, () => ({ method: 'POST', headers: { 'x-test-signature': 'bad', 'x-id': 'nb' }, body: '{}' }));
    expect(plainRefusal.direct).toMatchObject({ status: 401, body: { code: 'unauthenticated' } });
  });

  it('leaves other methods, other paths and ids it would have to decode to the app', async () => {
    for (const [path, method] of [
      [`/hooks/${connectionId}`, 'GET'],
      [`/hooks/${connectionId}/more`, 'POST'],
      ['/hooks/', 'POST'],
      ['/hooks/con%5Fx', 'POST'],
      ['/hooks/?x=1', 'POST'],
    ] as const) {
      const res = await both(path, () => ({ method, headers: { 'x-test-signature': 'good', 'x-id': 'f' }, ...(method === 'POST' ? { body: '{}' } : {}) }), false);
      expect(res.direct.status, `${method} ${path}`).toBeGreaterThanOrEqual(400);
      expect(comparable(res.direct), `${method} ${path}`).toEqual(comparable(res.plain));
    }
  });

  it('counts its requests under the route the app names', async () => {
    const count = async () => {
      const text = (await send(direct, '/metrics', {})).body as string;
      const line = text.split('\n').find((l) => l.startsWith('hub_http_requests_total{') && l.includes(`route="${HOOK_ROUTE}"`) && l.includes('status="202"'));
      return line ? Number(line.split(' ').at(-1)) : 0;
    };
    const before = await count();
    await both(`/hooks/${connectionId}`, (w) => good(`g-${w}`));
    expect(await count()).toBe(before + 2);
  });

  it('drops a request whose sender hangs up mid-body, storing nothing, and goes on serving', async () => {
    const { port } = new URL(direct);
    await new Promise<void>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.write(`POST /hooks/${connectionId} HTTP/1.1\r\nHost: x\r\nx-test-signature: good\r\nx-id: h\r\ncontent-length: 100\r\n\r\n{"partial":`);
        setTimeout(() => {
          socket.destroy();
          resolve();
        }, 50);
      });
      socket.on('error', reject);
    });
    const after = await send(direct, `/hooks/${connectionId}`, good('h-after'));
    expect(after.status).toBe(202);
    const inbox = (await t.call('GET', '/v1/inbox?limit=100')).body.data as { deliveryId: string }[];
    expect(inbox.some((r) => r.deliveryId === 'h')).toBe(false);
  });
});

describe('the direct webhook path with CORS on', () => {
  it('passes a request with an Origin on to the app, which adds the CORS headers', async () => {
    const hub = await createTestHub({ connectors: [...CONNECTORS, vendor], config: { corsOrigins: ['https://app.example'] } });
    const id = (await hub.call('POST', '/v1/connections', { body: { connectorId: vendor.id, name: 'vendor', config: {} } })).body.id;
    let passed = 0;
    const app = getRequestListener(hub.hub.app.fetch);
    const base = await serve(
      hookListener(hub.hub.deps, (req, res) => {
        passed++;
        return app(req, res);
      }),
    );
    try {
      const cross = await fetch(`${base}/hooks/${id}`, { ...good('cors-1'), headers: { ...good('cors-1').headers, origin: 'https://app.example' } });
      expect(cross.status).toBe(202);
      expect(cross.headers.get('access-control-allow-origin')).toBe('https://app.example');
      expect(passed).toBe(1);
      const server = await fetch(`${base}/hooks/${id}`, good('cors-2'));
      expect(server.status).toBe(202);
      expect(passed).toBe(1);
    } finally {
      await hub.close();
    }
  });
});
