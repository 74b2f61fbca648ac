// The generic HTTP client against a real loopback server: auth, URL joining, retries, timeouts and error mapping.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectorContext } from '../../src/connectors/define.ts';
import { createManualClock, systemClock } from '../../src/lib/clock.ts';
import { createLogger } from '../../src/lib/log.ts';
import { rejectedHubError, thrownHubError } from '../../test/hub-error.ts';
import { backoffDelay, createHttpClient, parseRetryAfter, type HttpConnectorConfig, type HttpCredentials } from './client.ts';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

type Handler = (req: IncomingMessage, res: ServerResponse, seen: Seen) => void;

let server: Server;
let origin: string;
let handler: Handler;
const seen: Seen[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const entry = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() };
      seen.push(entry);
      handler(req, res, entry);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(() => {
  seen.length = 0;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

/** Answers with each handler in turn, the last one for every call after. */
function sequence(...handlers: Handler[]): Handler {
  let i = 0;
  return (req, res, s) => handlers[Math.min(i++, handlers.length - 1)]!(req, res, s);
}

function setup(config: Partial<HttpConnectorConfig> = {}, credentials: HttpCredentials = {}, extra: Partial<ConnectorContext> = {}) {
  const delays: number[] = [];
  const lines: string[] = [];
  const ctx: ConnectorContext = {
    fetch: globalThis.fetch,
    clock: systemClock,
    log: createLogger('debug', {}, (line) => lines.push(line)),
    sleep: async (ms) => void delays.push(ms),
    ...extra,
  };
  const client = createHttpClient({ baseUrl: `${origin}/api`, maxRetries: 3, ...config }, credentials, ctx);
  return { client, delays, lines };
}

describe('auth', () => {
  it('sends no credentials with auth none', async () => {
    handler = (_q, res) => json(res, 200, { ok: true });
    const { client } = setup();
    const res = await client.request({ method: 'GET', path: '/items' });
    expect(res).toMatchObject({ status: 200, body: { ok: true }, attempts: 1 });
    expect(seen[0]!.headers.authorization).toBeUndefined();
    expect(seen[0]!.headers['x-api-key']).toBeUndefined();
  });

  it('puts an API key in the default X-API-Key header', async () => {
    handler = (_q, res) => json(res, 200, {});
    await setup({ auth: { type: 'api_key' } }, { apiKey: 'k-123' }).client.request({ method: 'GET', path: '/' });
    expect(seen[0]!.headers['x-api-key']).toBe('k-123');
  });

  it('puts an API key in a custom header that request headers cannot replace', async () => {
    handler = (_q, res) => json(res, 200, {});
    const { client } = setup({ auth: { type: 'api_key', headerName: 'X-Token' }, headers: { 'X-Tenant': 't1' } }, { apiKey: 'k-123' });
    await client.request({ method: 'GET', path: '/', headers: { 'x-token': 'forged', 'x-trace': 'abc' } });
    expect(seen[0]!.headers).toMatchObject({ 'x-token': 'k-123', 'x-tenant': 't1', 'x-trace': 'abc' });
  });

  it('puts an API key in the query when configured so', async () => {
    handler = (_q, res) => json(res, 200, {});
    const { client } = setup({ auth: { type: 'api_key', in: 'query', queryParam: 'api_key' } }, { apiKey: 'k/1+2=' });
    await client.request({ method: 'GET', path: '/items?page=2', query: { tag: ['a', 'b'], skip: undefined } });
    const url = new URL(seen[0]!.url, origin);
    expect(url.pathname).toBe('/api/items');
    expect(url.searchParams.get('api_key')).toBe('k/1+2=');
    expect(url.searchParams.get('page')).toBe('2');
    expect(url.searchParams.getAll('tag')).toEqual(['a', 'b']);
    expect(url.searchParams.has('skip')).toBe(false);
    expect(seen[0]!.headers['x-api-key']).toBeUndefined();
  });

  it('sends a bearer token', async () => {
    handler = (_q, res) => json(res, 200, {});
    await setup({ auth: { type: 'bearer' } }, { token: 'tok.abc' }).client.request({ method: 'GET', path: '/' });
    expect(seen[0]!.headers.authorization).toBe('Bearer tok.abc');
  });

  it('sends basic credentials as RFC 7617 base64 of user:password', async () => {
    handler = (_q, res) => json(res, 200, {});
    await setup({ auth: { type: 'basic' } }, { username: 'ann', password: 'pä:ss' }).client.request({ method: 'GET', path: '/' });
    const header = seen[0]!.headers.authorization ?? '';
    expect(header.startsWith('Basic ')).toBe(true);
    expect(Buffer.from(header.slice(6), 'base64').toString('utf8')).toBe('ann:pä:ss');
  });

  it.each([
    [{ type: 'api_key' } as const, {}, ['/apiKey']],
    [{ type: 'bearer' } as const, { apiKey: 'x' }, ['/token']],
    [{ type: 'basic' } as const, {}, ['/username', '/password']],
    [{ type: 'basic' } as const, { password: 'p' }, ['/username']],
    [{ type: 'api_key', in: 'query' } as const, { apiKey: 'k' }, ['/auth/queryParam']],
  ])('refuses auth %j without its credential', (auth, credentials, fields) => {
    const err = thrownHubError(() => setup({ auth }, credentials));
    expect(err.code).toBe('validation_failed');
    expect(err.errors?.map((e) => e.field)).toEqual(fields);
  });

  it('refuses a credential that would break a header, without quoting it', () => {
    const err = thrownHubError(() => setup({ auth: { type: 'bearer' } }, { token: 'abc\r\nX-Evil: 1' }));
    expect(err.code).toBe('validation_failed');
    expect(err.errors?.[0]?.field).toBe('/token');
    expect(JSON.stringify({ m: err.message, e: err.errors })).not.toContain('abc');
  });
});

describe('URL joining', () => {
  it('appends the path to the base path', async () => {
    handler = (_q, res) => json(res, 200, {});
    const { client } = setup({ baseUrl: `${origin}/api/v2/` });
    await client.request({ method: 'GET', path: '/items/7' });
    expect(seen[0]!.url).toBe('/api/v2/items/7');
  });

  it.each(['http://evil.example/x', '//evil.example/x', 'items', '/../secret', '/a/../../secret', '/%2e%2e/secret', '/a/.%2E/x', '/a\\..\\..\\x', '/a#frag'])(
    'refuses the path %s without sending anything',
    async (path) => {
      handler = (_q, res) => json(res, 200, {});
      const err = await rejectedHubError(setup().client.request({ method: 'GET', path }));
      expect(err.code).toBe('validation_failed');
      expect(err.errors?.[0]?.field).toBe('/path');
      expect(seen).toHaveLength(0);
    },
  );

  it('refuses a base URL with credentials in it', () => {
    expect(thrownHubError(() => setup({ baseUrl: 'https://user:pw@example.com' })).errors?.[0]?.field).toBe('/baseUrl');
  });
});

describe('bodies', () => {
  it('sends objects as JSON and parses JSON answers, problem+json included', async () => {
    handler = (_q, res, s) => json(res, 201, { echo: JSON.parse(s.body) }, { 'content-type': 'application/problem+json; charset=utf-8' });
    const res = await setup().client.request({ method: 'POST', path: '/items', body: { sku: 'A-1', qty: 3 } });
    expect(seen[0]!.headers['content-type']).toBe('application/json');
    expect(res.body).toEqual({ echo: { sku: 'A-1', qty: 3 } });
  });

  it('returns text for other types and null for an empty body', async () => {
    handler = sequence(
      (_q, res) => res.writeHead(200, { 'content-type': 'text/csv' }).end('a,b\n1,2\n'),
      (_q, res) => res.writeHead(204).end(),
    );
    const { client } = setup();
    expect((await client.request({ method: 'GET', path: '/export' })).body).toBe('a,b\n1,2\n');
    expect((await client.request({ method: 'DELETE', path: '/items/1' })).body).toBeNull();
  });
});

describe('retries', () => {
  it('waits the Retry-After seconds of a 429, then succeeds', async () => {
    handler = sequence((_q, res) => json(res, 429, {}, { 'retry-after': '2' }), (_q, res) => json(res, 200, { ok: 1 }));
    const { client, delays } = setup();
    const res = await client.request({ method: 'GET', path: '/items' });
    expect(res).toMatchObject({ status: 200, attempts: 2 });
    expect(delays).toEqual([2000]);
  });

  it('reads Retry-After as an HTTP date against the clock', async () => {
    const clock = createManualClock(Date.parse('2026-03-01T10:00:00Z'));
    handler = sequence((_q, res) => json(res, 503, {}, { 'retry-after': 'Sun, 01 Mar 2026 10:00:05 GMT' }), (_q, res) => json(res, 200, {}));
    const { client, delays } = setup({}, {}, { clock });
    await client.request({ method: 'GET', path: '/' });
    expect(delays).toEqual([5000]);
  });

  it('backs off exponentially on 503 and succeeds on the third attempt', async () => {
    handler = sequence((_q, res) => json(res, 503, {}), (_q, res) => json(res, 503, {}), (_q, res) => json(res, 200, {}));
    const { client, delays, lines } = setup();
    expect((await client.request({ method: 'GET', path: '/' })).attempts).toBe(3);
    expect(delays).toHaveLength(2);
    expect(delays[0]).toBeGreaterThanOrEqual(250);
    expect(delays[0]).toBeLessThanOrEqual(500);
    expect(delays[1]).toBeGreaterThanOrEqual(500);
    expect(delays[1]).toBeLessThanOrEqual(1000);
    expect(lines.filter((l) => l.includes('will be retried'))).toHaveLength(2);
  });

  it.each([
    [503, 'upstream_error'],
    [502, 'upstream_error'],
    [429, 'upstream_rate_limited'],
  ])('gives up after maxRetries on %i with %s', async (status, code) => {
    handler = (_q, res) => json(res, status, {});
    const { client, delays } = setup({ maxRetries: 2 });
    const err = await rejectedHubError(client.request({ method: 'GET', path: '/' }));
    expect(err.code).toBe(code);
    expect(err.extra).toMatchObject({ status, attempts: 3 });
    expect(seen).toHaveLength(3);
    expect(delays).toHaveLength(2);
  });

  it('hands a Retry-After beyond the cap to the caller instead of waiting', async () => {
    handler = (_q, res) => json(res, 429, {}, { 'retry-after': '120' });
    const { client, delays } = setup();
    const err = await rejectedHubError(client.request({ method: 'GET', path: '/' }));
    expect(err.code).toBe('upstream_rate_limited');
    expect(err.extra?.retryAfterMs).toBe(120_000);
    expect(err.headers).toEqual({ 'retry-after': '120' });
    expect(seen).toHaveLength(1);
    expect(delays).toEqual([]);
  });

  it('does not repeat a POST that failed with 500', async () => {
    handler = (_q, res) => json(res, 500, {});
    const { client, delays } = setup();
    const err = await rejectedHubError(client.request({ method: 'POST', path: '/orders', body: { id: 1 } }));
    expect(err.code).toBe('upstream_error');
    expect(seen).toHaveLength(1);
    expect(delays).toEqual([]);
  });

  it('repeats a POST that got 429, since the server did not process it', async () => {
    handler = sequence((_q, res) => json(res, 429, {}, { 'retry-after': '1' }), (_q, res) => json(res, 201, { id: 9 }));
    const { client, delays } = setup();
    expect((await client.request({ method: 'POST', path: '/orders', body: {} })).body).toEqual({ id: 9 });
    expect(delays).toEqual([1000]);
    expect(seen.map((s) => s.body)).toEqual(['{}', '{}']);
  });
});

describe('error mapping', () => {
  it.each([
    [401, 'upstream_auth_failed'],
    [403, 'upstream_auth_failed'],
    [404, 'upstream_rejected'],
    [422, 'upstream_rejected'],
  ])('maps HTTP %i to %s without retrying', async (status, code) => {
    handler = (_q, res) => json(res, status, { error: 'no' });
    const { client, delays } = setup();
    const err = await rejectedHubError(client.request({ method: 'GET', path: '/items' }));
    expect(err.code).toBe(code);
    expect(err.extra).toMatchObject({ status, method: 'GET', path: '/items' });
    expect(err.message).toContain(`HTTP ${status}`);
    expect(delays).toEqual([]);
  });

  it('does not follow a redirect and reports where it pointed', async () => {
    handler = (_q, res) => res.writeHead(302, { location: '/login?next=%2F' }).end();
    const err = await rejectedHubError(setup().client.request({ method: 'GET', path: '/items' }));
    expect(err.code).toBe('upstream_rejected');
    expect(err.extra).toMatchObject({ status: 302, location: `${origin}/login?next=%2F` });
    expect(seen).toHaveLength(1);
  });

  it('times out an attempt that gets no answer', async () => {
    handler = () => undefined; // never answers
    const { client, delays } = setup({ timeoutMs: 200, maxRetries: 1 });
    const started = Date.now();
    const err = await rejectedHubError(client.request({ method: 'GET', path: '/slow' }));
    expect(err.code).toBe('upstream_timeout');
    expect(err.message).toContain('200 ms');
    expect(seen).toHaveLength(2);
    expect(delays).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('does not repeat a POST that timed out', async () => {
    handler = () => undefined;
    const err = await rejectedHubError(setup({ timeoutMs: 200 }).client.request({ method: 'POST', path: '/orders', body: {} }));
    expect(err.code).toBe('upstream_timeout');
    expect(seen).toHaveLength(1);
  });

  it('reports a closed port as unreachable, after retrying a GET', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const { client, delays } = setup({ baseUrl: `http://127.0.0.1:${port}`, maxRetries: 2 });
    const err = await rejectedHubError(client.request({ method: 'GET', path: '/' }));
    expect(err.code).toBe('upstream_unreachable');
    expect(err.extra?.networkCode).toBe('ECONNREFUSED');
    expect(delays).toHaveLength(2);
  });

  it('refuses an answer larger than the body limit', async () => {
    handler = (_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(50 * 1024 * 1024) });
      res.write('[');
    };
    const err = await rejectedHubError(setup().client.request({ method: 'GET', path: '/huge' }));
    expect(err.code).toBe('upstream_error');
    expect(err.retryable).toBe(false);
    expect(seen).toHaveLength(1);
  });
});

describe('secrets', () => {
  const apiKey = 'sk_live_SECRET123456';

  it('never shows a credential in errors or logs, even when the server echoes it', async () => {
    handler = sequence(
      (req, res) => json(res, 503, { echo: req.headers['x-api-key'] }),
      (req, res) => json(res, 401, { error: `invalid key ${String(req.headers['x-api-key'])}` }),
    );
    const { client, lines } = setup({ auth: { type: 'api_key' } }, { apiKey });
    const err = await rejectedHubError(client.request({ method: 'GET', path: '/me' }));
    expect(err.code).toBe('upstream_auth_failed');
    expect(String(err.extra?.upstreamBody)).toContain('[redacted]');
    const everything = JSON.stringify({ message: err.message, extra: err.extra, errors: err.errors, lines });
    expect(everything).not.toContain(apiKey);
  });

  it('redacts a query-parameter key from a redirect location', async () => {
    handler = (req, res) => res.writeHead(301, { location: `https://elsewhere.example${req.url ?? ''}` }).end();
    const { client } = setup({ auth: { type: 'api_key', in: 'query', queryParam: 'key' } }, { apiKey });
    const err = await rejectedHubError(client.request({ method: 'GET', path: '/me' }));
    expect(err.extra?.location).toBe('https://elsewhere.example/api/me?key=redacted');
    expect(JSON.stringify({ message: err.message, extra: err.extra })).not.toContain(apiKey);
  });

  it('redacts basic passwords and their encoded header', async () => {
    handler = (req, res) => json(res, 403, { got: req.headers.authorization });
    const { client } = setup({ auth: { type: 'basic' } }, { username: 'ann', password: 'hunter22' });
    const err = await rejectedHubError(client.request({ method: 'GET', path: '/' }));
    const basic = Buffer.from('ann:hunter22').toString('base64');
    expect(JSON.stringify(err.extra)).not.toContain(basic);
    expect(JSON.stringify(err.extra)).not.toContain('hunter22');
  });
});

describe('backoffDelay and parseRetryAfter', () => {
  it('doubles the ceiling each attempt, jitters within its upper half and caps at 30 s', () => {
    expect([0, 1, 2].map((a) => backoffDelay(a, () => 0))).toEqual([250, 500, 1000]);
    expect([0, 1, 2].map((a) => backoffDelay(a, () => 1))).toEqual([500, 1000, 2000]);
    expect(backoffDelay(20, () => 1)).toBe(30_000);
  });

  it('reads seconds and HTTP dates, and ignores what it cannot read', () => {
    const now = Date.parse('2026-03-01T10:00:00Z');
    expect(parseRetryAfter('7', now)).toBe(7000);
    expect(parseRetryAfter('Sun, 01 Mar 2026 10:01:00 GMT', now)).toBe(60_000);
    expect(parseRetryAfter('Sun, 01 Mar 2026 09:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});
