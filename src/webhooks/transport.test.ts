import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MAX_RETRY_AFTER_MS } from '../lib/backoff.ts';
import { createAddressPolicy } from './ssrf.ts';
import { createTransport, failureCode, parseRetryAfter, type Transport, type WebhookResult } from './transport.ts';

interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A loopback receiver that records what reached it and answers with `handler`. */
class Receiver {
  readonly requests: Received[] = [];
  connections = 0;
  readonly server: http.Server;

  constructor(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void = (_req, res) => res.end('ok')) {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        this.requests.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks) });
        handler(req, res);
      });
    });
    this.server.on('connection', () => this.connections++);
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  url(path = '/hook'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const receivers: Receiver[] = [];
async function receiver(handler?: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<Receiver> {
  const r = await new Receiver(handler).start();
  receivers.push(r);
  return r;
}

const loopbackPolicy = createAddressPolicy({ allow: ['127.0.0.1/32', '::1/128'] });
let transport: Transport;

beforeAll(() => {
  transport = createTransport({ policy: loopbackPolicy, maxResponseBytes: 16 });
});

afterAll(() => transport.close());

afterEach(async () => {
  await Promise.all(receivers.splice(0).map((r) => r.stop()));
});

interface PostOverrides {
  body?: string | Uint8Array;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

function post(url: string, overrides: PostOverrides = {}, via = transport) {
  return via.send({
    url,
    headers: overrides.headers ?? { 'content-type': 'application/json' },
    body: overrides.body ?? '{"event":"stock.changed"}',
    timeoutMs: overrides.timeoutMs ?? 5000,
  });
}

function response(result: WebhookResult) {
  if (!result.ok) throw new Error(`expected a response, got ${result.error.code}: ${result.error.message}`);
  return result.response;
}

function failure(result: WebhookResult) {
  if (result.ok) throw new Error(`expected a failure, got status ${result.response.status}`);
  return result.error;
}

/** 'done' when the promise settles within ms, else 'pending'. */
function within(ms: number, promise: Promise<unknown>): Promise<'done' | 'pending'> {
  return Promise.race([promise.then(() => 'done' as const), new Promise<'pending'>((resolve) => setTimeout(resolve, ms, 'pending'))]);
}

/**
 * One turn of the event loop. undici puts a socket back in its pool a turn after its response ended (so that a
 * server closing it despite keep-alive is noticed first); a send made at once takes another socket.
 */
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/** A port nothing listens on: bind one, then let it go. */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('createTransport: responses', () => {
  it('returns the status and the body cut to maxResponseBytes', async () => {
    const r = await receiver((_req, res) => res.end('0123456789abcdefOVERFLOW'.repeat(100)));
    const res = response(await post(r.url()));
    expect(res.status).toBe(200);
    expect(res.body).toBe('0123456789abcdef');
    expect(res.latencyMs).toBeGreaterThanOrEqual(0);
    expect(res.retryAfterMs).toBeUndefined();
    expect(res.location).toBeUndefined();
  });

  it('returns a 500 as a response, not a failure', async () => {
    const r = await receiver((_req, res) => {
      res.statusCode = 500;
      res.end('boom');
    });
    const res = response(await post(r.url()));
    expect(res.status).toBe(500);
    expect(res.body).toBe('boom');
  });

  it('never follows a redirect: the 302 and its location come back, the target gets nothing', async () => {
    const target = await receiver();
    const r = await receiver((_req, res) => {
      res.writeHead(302, { location: target.url('/elsewhere') });
      res.end();
    });
    const res = response(await post(r.url()));
    expect(res.status).toBe(302);
    expect(res.location).toBe(target.url('/elsewhere'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(target.requests).toHaveLength(0);
    expect(target.connections).toBe(0);
  });

  it('reads Retry-After in seconds', async () => {
    const r = await receiver((_req, res) => {
      res.writeHead(429, { 'retry-after': '7' });
      res.end();
    });
    const res = response(await post(r.url()));
    expect(res.status).toBe(429);
    expect(res.retryAfterMs).toBe(7000);
  });

  it('reads Retry-After as an HTTP-date', async () => {
    const r = await receiver((_req, res) => {
      res.writeHead(503, { 'retry-after': new Date(Date.now() + 30_000).toUTCString() });
      res.end();
    });
    const res = response(await post(r.url()));
    expect(res.retryAfterMs).toBeGreaterThan(28_000);
    expect(res.retryAfterMs).toBeLessThanOrEqual(30_000);
  });

  it('delivers the body and headers byte for byte, with a content-length', async () => {
    const r = await receiver();
    const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
    const headers = { 'content-type': 'application/octet-stream', 'webhook-signature': 'v1,c2lnbmF0dXJl', 'webhook-id': 'msg_1' };
    response(await post(r.url('/hook?x=1'), { body: binary, headers }));
    const text = '{"name":"Größe ✓ 📦"}';
    response(await post(r.url(), { body: text }));

    const [first, second] = r.requests;
    expect(first!.method).toBe('POST');
    expect(first!.url).toBe('/hook?x=1');
    expect(first!.body.equals(Buffer.from(binary))).toBe(true);
    expect(first!.headers['content-length']).toBe('256');
    expect(first!.headers['content-type']).toBe('application/octet-stream');
    expect(first!.headers['webhook-signature']).toBe('v1,c2lnbmF0dXJl');
    expect(first!.headers['webhook-id']).toBe('msg_1');
    expect(second!.body.toString('utf8')).toBe(text);
    expect(second!.headers['content-length']).toBe(String(Buffer.byteLength(text)));
  });

  it('reuses one keep-alive socket for sequential sends', async () => {
    const r = await receiver();
    for (let i = 0; i < 5; i++) {
      expect(response(await post(r.url())).status).toBe(200);
      await nextTurn();
    }
    expect(r.requests).toHaveLength(5);
    expect(r.connections).toBe(1);
  });

  it('keeps sends that follow at once on a few sockets, not one each', async () => {
    const r = await receiver();
    for (let i = 0; i < 10; i++) expect(response(await post(r.url())).status).toBe(200);
    expect(r.connections).toBeLessThanOrEqual(2);
  });

  it('drains a long body past the kept prefix and still reuses the socket', async () => {
    const r = await receiver((_req, res) => res.end('x'.repeat(200_000)));
    expect(response(await post(r.url())).body).toBe('x'.repeat(16));
    await nextTurn();
    expect(response(await post(r.url())).body).toBe('x'.repeat(16));
    expect(r.connections).toBe(1);
  });

  it('stops reading a body beyond 1 MiB and drops that socket', async () => {
    let dropped: Promise<void> | undefined;
    const r = await receiver((req, res) => {
      if (req.url === '/small') return res.end('small');
      dropped = new Promise((resolve) => res.on('close', resolve));
      res.on('error', () => undefined);
      res.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024, 'y');
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    const big = response(await post(r.url('/big')));
    expect(big.status).toBe(200);
    expect(big.body).toBe('y'.repeat(16));
    await expect(within(2000, dropped!)).resolves.toBe('done');
    // The next send goes out on another socket (undici may open its replacement before it is needed).
    expect(response(await post(r.url('/small'))).body).toBe('small');
    expect(r.requests.map((q) => q.url)).toEqual(['/big', '/small']);
  });

  it('connects to names through the guard lookup when the policy allows them', async () => {
    const r = await receiver();
    expect(response(await post(`http://localhost:${r.port}/hook`)).status).toBe(200);
    expect(r.requests).toHaveLength(1);
  });
});

describe('createTransport: failures', () => {
  it('times out a receiver that never answers, within about timeoutMs, and abandons the connection', async () => {
    let dropped: Promise<void> | undefined;
    const r = await receiver((req) => {
      dropped = new Promise((resolve) => req.socket.on('close', resolve));
    });
    const started = performance.now();
    const error = failure(await post(r.url(), { timeoutMs: 200 }));
    const elapsed = performance.now() - started;
    expect(error.code).toBe('timeout');
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(1000);
    expect(error.latencyMs).toBeGreaterThanOrEqual(190);
    await expect(within(2000, dropped!)).resolves.toBe('done');
  });

  it('counts the body in the timeout: headers alone are not an answer', async () => {
    const r = await receiver((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
    });
    expect(failure(await post(r.url(), { timeoutMs: 200 })).code).toBe('timeout');
  });

  it('reports a refused connection', async () => {
    const port = await closedPort();
    const error = failure(await post(`http://127.0.0.1:${port}/hook`));
    expect(error.code).toBe('connection_refused');
    expect(error.message).toContain(`127.0.0.1:${port}`);
  });

  it('reports a receiver that drops the connection before answering', async () => {
    const r = await receiver((req) => req.socket.destroy());
    expect(failure(await post(r.url())).code).toBe('connection_reset');
  });

  it('reports a receiver that drops the connection in the middle of the body', async () => {
    const r = await receiver((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial', () => res.socket?.destroy());
    });
    expect(failure(await post(r.url())).code).toBe('connection_reset');
  });

  it('refuses a loopback IP literal when the policy does not allow it, and sends nothing', async () => {
    const r = await receiver();
    const guarded = createTransport({ policy: createAddressPolicy() });
    try {
      expect(failure(await post(r.url(), {}, guarded)).code).toBe('ssrf_blocked');
      expect(failure(await post(`http://[::ffff:127.0.0.1]:${r.port}/hook`, {}, guarded)).code).toBe('ssrf_blocked');
    } finally {
      guarded.close();
    }
    expect(r.connections).toBe(0);
  });

  it('refuses a name that resolves to loopback when the policy does not allow it, and sends nothing', async () => {
    const r = await receiver();
    const guarded = createTransport({ policy: createAddressPolicy() });
    try {
      const error = failure(await post(`http://localhost:${r.port}/hook`, {}, guarded));
      expect(error.code).toBe('ssrf_blocked');
      expect(error.message).toMatch(/localhost/);
    } finally {
      guarded.close();
    }
    expect(r.connections).toBe(0);
  });

  it('reports a name that does not resolve', async () => {
    expect(failure(await post('http://no-such-host.invalid/hook')).code).toBe('dns_failed');
  });

  it('reports a failed TLS handshake', async () => {
    const r = await receiver();
    const error = failure(await post(`https://127.0.0.1:${r.port}/hook`));
    expect(error.code).toBe('tls_failed');
  });

  it('reports invalid URLs without sending', async () => {
    for (const url of ['not a url', 'ftp://127.0.0.1/x', '']) expect(failure(await post(url)).code, url).toBe('invalid_url');
  });

  it('keeps header values out of failure messages', async () => {
    const r = await receiver();
    const error = failure(await post(r.url('/hook?token=s3cret'), { headers: { 'webhook-signature': 'v1,s3cret\n' } }));
    expect(error.code).toBe('request_failed');
    expect(error.message).not.toContain('s3cret');
    const refused = failure(await post(`http://127.0.0.1:${await closedPort()}/hook?token=s3cret`, { headers: { authorization: 'Bearer s3cret' } }));
    expect(refused.message).not.toContain('s3cret');
  });

  it('fails every send after close() instead of throwing', async () => {
    const r = await receiver();
    const closing = createTransport({ policy: loopbackPolicy });
    expect(response(await post(r.url(), {}, closing)).status).toBe(200);
    closing.close();
    expect(failure(await post(r.url(), {}, closing)).code).toBe('request_failed');
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');

  it('reads seconds and HTTP-dates in all three RFC 9110 forms', () => {
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter(' 120 ', now)).toBe(120_000);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:01:00 GMT', now)).toBe(60_000);
    expect(parseRetryAfter('Wednesday, 01-Jan-25 00:01:00 GMT', now)).toBe(60_000);
    expect(parseRetryAfter('Wed Jan  1 00:01:00 2025', now)).toBe(60_000);
  });

  it('caps at 24 hours and floors past dates at zero', () => {
    expect(parseRetryAfter('99999999999', now)).toBe(MAX_RETRY_AFTER_MS);
    expect(parseRetryAfter('Fri, 01 Jan 2100 00:00:00 GMT', now)).toBe(MAX_RETRY_AFTER_MS);
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now)).toBe(0);
  });

  it('ignores what is neither', () => {
    for (const value of [undefined, '', 'soon', '-5', '1.5', '7 seconds', 'Mon, garbage']) {
      expect(parseRetryAfter(value, now), String(value)).toBeUndefined();
    }
  });
});

describe('failureCode', () => {
  const withCode = (code: string) => Object.assign(new Error('x'), { code });

  it.each([
    ['ECONNREFUSED', 'connection_refused'],
    ['ECONNRESET', 'connection_reset'],
    ['EPIPE', 'connection_reset'],
    ['ENOTFOUND', 'dns_failed'],
    ['EAI_AGAIN', 'dns_failed'],
    ['ssrf_blocked', 'ssrf_blocked'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'tls_failed'],
    ['CERT_HAS_EXPIRED', 'tls_failed'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'tls_failed'],
    ['SELF_SIGNED_CERT_IN_CHAIN', 'tls_failed'],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'tls_failed'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'tls_failed'],
    ['ERR_INVALID_URL', 'invalid_url'],
    ['EHOSTUNREACH', 'request_failed'],
  ])('maps %s to %s', (code, expected) => {
    expect(failureCode(withCode(code), true)).toBe(expected);
  });

  it('counts EPROTO as a TLS failure only on https', () => {
    expect(failureCode(withCode('EPROTO'), true)).toBe('tls_failed');
    expect(failureCode(withCode('EPROTO'), false)).toBe('request_failed');
  });

  it('maps errors without a code to request_failed', () => {
    expect(failureCode(new Error('x'), false)).toBe('request_failed');
    expect(failureCode(undefined, false)).toBe('request_failed');
  });
});
