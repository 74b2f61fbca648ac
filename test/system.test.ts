// Operational routes and the global middleware: health, metrics, request ids, CORS, the body limit, unknown routes,
// and a sweep over every declared route with malformed input that must never end in a server error.
import { afterEach, describe, expect, it } from 'vitest';
import type { RateLimiter } from '../src/app/middleware/rate-limit.ts';
import { ERROR_CODES } from '../src/errors.ts';
import { createTestHub, expectProblem, type CallOptions, type CallResult, type TestHub } from './helpers.ts';

const hubs: TestHub[] = [];

async function hub(options: Parameters<typeof createTestHub>[0] = {}): Promise<TestHub> {
  const t = await createTestHub(options);
  hubs.push(t);
  return t;
}

afterEach(async () => {
  // a test may have closed the store already; closing again must not hide the test's own result
  await Promise.all(hubs.splice(0).map((t) => t.close().catch(() => undefined)));
});

const HTTP_CONFIG = { baseUrl: 'http://127.0.0.1:9' };

function expectErrorShape(res: CallResult, what: string): void {
  expect(res.headers.get('content-type'), `${what}: ${res.text.slice(0, 200)}`).toMatch(/^application\/problem\+json/);
  expect(Object.keys(ERROR_CODES), `${what}: ${res.text.slice(0, 200)}`).toContain(res.body?.code);
  expect(res.body.status, what).toBe(res.status);
}

describe('GET /', () => {
  it('returns a small JSON index that points at the docs and the OpenAPI document', async () => {
    const t = await hub();
    const res = await t.call('GET', '/', { key: null });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.body).toMatchObject({ docs: '/docs', openapi: '/v1/openapi.json' });
    expect(JSON.stringify(res.body).length).toBeLessThan(1000);
  });
});

describe('GET /health', () => {
  it('reports ok without credentials', async () => {
    const t = await hub();
    const res = await t.call('GET', '/health', { key: null });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'ok', checks: { store: { status: 'ok' } } });
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect((await t.call('GET', '/health/live', { key: null })).body).toEqual({ status: 'ok' });
  });

  it('reports failing with 503 when the store is closed', async () => {
    const t = await hub();
    await t.hub.deps.store.close();
    const res = await t.call('GET', '/health', { key: null });
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ status: 'failing', checks: { store: { status: 'failing' } } });
    expect(res.headers.get('cache-control')).toBe('no-store');
    // the process is still alive: liveness does not depend on the store
    expect((await t.call('GET', '/health/live', { key: null })).status).toBe(200);
    // shutting down after the store is gone must not throw
    await expect(t.close()).resolves.toBeUndefined();
  });
});

describe('GET /metrics', () => {
  const SAMPLE = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})? (-?[0-9.e+-]+|\+Inf|-Inf|NaN)$/;

  it('serves the Prometheus text format with the hub metrics', async () => {
    const t = await hub();
    const created = await t.call('POST', '/v1/connections', { body: { connectorId: 'http', name: 'ERP', config: HTTP_CONFIG } });
    expect(created.status).toBe(201);
    await t.call('GET', `/v1/connections/${created.body.id}`);
    await t.call('GET', '/v1/connections/con_DOESNOTEXIST');
    await t.call('GET', '/no/such/route', { key: null });

    const res = await t.call('GET', '/metrics', { key: null });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const lines = res.text.split('\n').filter(Boolean);
    for (const line of lines) {
      if (line.startsWith('#')) expect(line).toMatch(/^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/);
      else expect(line).toMatch(SAMPLE);
    }
    expect(res.text).toContain('# TYPE hub_http_requests_total counter');
    expect(res.text).toContain('hub_http_requests_total{method="GET",route="/v1/connections/:id",status="200"} 1');
    expect(res.text).toContain('hub_http_requests_total{method="GET",route="/v1/connections/:id",status="404"} 1');
    expect(res.text).toContain('hub_http_requests_total{method="POST",route="/v1/connections",status="201"} 1');
    // labelled by route pattern, never by the concrete path (unbounded cardinality)
    expect(res.text).not.toContain(created.body.id);
    expect(res.text).not.toContain('con_DOESNOTEXIST');
    expect(res.text).not.toContain('/no/such/route');
    expect(res.text).toContain('# TYPE hub_http_request_duration_seconds histogram');
    expect(res.text).toMatch(/^hub_http_request_duration_seconds_bucket\{method="GET",route="\/v1\/connections\/:id",le="\+Inf"\} 2$/m);
    expect(res.text).toContain('hub_http_request_duration_seconds_count{method="GET",route="/v1/connections/:id"} 2');
    expect(res.text).toContain('# TYPE hub_jobs gauge');
    for (const state of ['queued', 'running', 'succeeded', 'dead', 'cancelled']) expect(res.text).toContain(`hub_jobs{state="${state}"} 0`);
    expect(res.text).toContain('hub_webhook_deliveries{state="dead"} 0');
    expect(res.text).toContain('# HELP hub_webhook_deliveries_total');
    expect(res.text).toContain('# TYPE hub_webhook_deliveries_total counter');
  });

  it('counts queued jobs', async () => {
    const t = await hub();
    await t.hub.queue.enqueue({ workspaceId: t.workspace.id, type: 'test.noop', payload: {} });
    const res = await t.call('GET', '/metrics', { key: null });
    expect(res.text).toContain('hub_jobs{state="queued"} 1');
  });

  it('asks for the metrics token when one is configured', async () => {
    const t = await hub({ config: { metricsToken: 's3cret' } });
    const none = await t.call('GET', '/metrics', { key: null });
    expect(none.status).toBe(401);
    expect(none.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(none.body.code).toBe('unauthenticated');
    expect(none.text).not.toContain('hub_http_requests_total');
    expect((await t.call('GET', '/metrics', { key: 's3cre' })).status).toBe(401);
    expect((await t.call('GET', '/metrics', { key: 's3crett' })).status).toBe(401);
    expect((await t.call('GET', '/metrics', { key: t.adminKey })).status).toBe(401);
    expect((await t.call('GET', '/metrics', { key: null, headers: { Authorization: 's3cret' } })).status).toBe(401);
    const ok = await t.call('GET', '/metrics', { key: 's3cret' });
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('hub_http_requests_total');
  });
});

describe('X-Request-Id', () => {
  it('echoes a valid given id on the response and in a problem instance', async () => {
    const t = await hub();
    const id = 'client-42_a.b:c';
    const ok = await t.call('GET', '/v1/workspace', { headers: { 'X-Request-Id': id } });
    expect(ok.headers.get('x-request-id')).toBe(id);
    const problem = await t.call('GET', '/v1/workspace', { key: null, headers: { 'X-Request-Id': id } });
    expect(expectProblem(problem, 401, 'unauthenticated').instance).toBe(id);
    expect(problem.headers.get('x-request-id')).toBe(id);
  });

  it('replaces an invalid id with a generated one', async () => {
    const t = await hub();
    for (const given of ['has spaces in it', 'a'.repeat(300), 'semi;colon', '']) {
      const res = await t.call('GET', '/v1/nothing-here', { key: null, headers: { 'X-Request-Id': given } });
      const generated = res.headers.get('x-request-id');
      expect(generated).toMatch(/^req_[A-Za-z0-9_-]+$/);
      expect(generated).not.toBe(given);
      expect(res.body.instance).toBe(generated);
    }
  });

  it('puts an id on every response, successful or not', async () => {
    const t = await hub({ config: { maxBodyBytes: 2048 } });
    const responses = [
      await t.call('GET', '/'),
      await t.call('GET', '/health'),
      await t.call('GET', '/v1/workspace'),
      await t.call('GET', '/v1/workspace', { key: null }),
      await t.call('GET', '/v1/no-such-route'),
      await t.call('GET', '/v1/connections/con_DOESNOTEXIST'),
      await t.call('POST', '/v1/connections', { rawBody: 'x'.repeat(4096), headers: { 'Content-Type': 'application/json' } }),
      await t.call('GET', '/docs/errors'),
    ];
    const ids = responses.map((r) => r.headers.get('x-request-id'));
    for (const id of ids) expect(id).toMatch(/^req_/);
    expect(new Set(ids).size).toBe(ids.length);
    for (const r of responses) expect(r.headers.get('x-content-type-options')).toBe('nosniff');
  });
});

describe('unknown routes', () => {
  it('answers 404 route_not_found as problem+json', async () => {
    const t = await hub();
    for (const [method, path] of [
      ['GET', '/v2/connections'],
      ['GET', '/v1/connections/con_1/nope'],
      ['POST', '/nothing'],
      ['GET', '/.env'],
    ] as const) {
      const res = await t.call(method, path);
      const problem = expectProblem(res, 404, 'route_not_found');
      expect(problem.detail).toContain(method);
    }
    // without credentials too: an unknown route says so, it does not ask for a key
    expectProblem(await t.call('GET', '/v1/unknown', { key: null }), 404, 'route_not_found');
  });

  it('answers a method a route does not have with a problem, not a server error', async () => {
    const t = await hub();
    const res = await t.call('DELETE', '/v1/workspace');
    expect([404, 405]).toContain(res.status);
    expectErrorShape(res, 'DELETE /v1/workspace');
  });
});

describe('CORS', () => {
  const ORIGIN = 'https://app.example.com';

  it('answers a preflight from a listed origin', async () => {
    const t = await hub({ config: { corsOrigins: [ORIGIN] } });
    const res = await t.call('OPTIONS', '/v1/connections', {
      key: null,
      headers: { Origin: ORIGIN, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization, idempotency-key, if-match, content-type' },
    });
    expect(res.status).toBeLessThan(300);
    expect(res.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    const methods = (res.headers.get('access-control-allow-methods') ?? '').split(',').map((m) => m.trim());
    expect(methods).toEqual(expect.arrayContaining(['POST', 'PATCH', 'DELETE']));
    const allowed = (res.headers.get('access-control-allow-headers') ?? '').toLowerCase().split(',').map((h) => h.trim());
    expect(allowed).toEqual(expect.arrayContaining(['authorization', 'idempotency-key', 'if-match', 'content-type']));
    expect(res.headers.get('vary')).toMatch(/origin/i);
    expect(res.headers.get('x-request-id')).toBeTruthy();
  });

  it('adds CORS headers to responses for a listed origin, errors included', async () => {
    const t = await hub({ config: { corsOrigins: [ORIGIN] } });
    const ok = await t.call('GET', '/v1/connections', { headers: { Origin: ORIGIN } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(ok.headers.get('access-control-expose-headers')).toMatch(/X-Request-Id/i);
    const denied = await t.call('GET', '/v1/connections', { key: null, headers: { Origin: ORIGIN } });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('access-control-allow-origin')).toBe(ORIGIN);
  });

  it('gives an origin that is not listed no Access-Control-Allow-Origin', async () => {
    const t = await hub({ config: { corsOrigins: [ORIGIN] } });
    for (const origin of ['https://evil.example.com', 'https://app.example.com.evil.net', 'http://app.example.com', 'null']) {
      const pre = await t.call('OPTIONS', '/v1/connections', { key: null, headers: { Origin: origin, 'Access-Control-Request-Method': 'POST' } });
      expect(pre.headers.get('access-control-allow-origin'), origin).toBeNull();
      const get = await t.call('GET', '/v1/connections', { headers: { Origin: origin } });
      expect(get.headers.get('access-control-allow-origin'), origin).toBeNull();
    }
  });

  it('sends no CORS headers at all when no origins are configured', async () => {
    const t = await hub();
    const pre = await t.call('OPTIONS', '/v1/connections', { key: null, headers: { Origin: ORIGIN, 'Access-Control-Request-Method': 'POST' } });
    const get = await t.call('GET', '/v1/connections', { headers: { Origin: ORIGIN } });
    for (const res of [pre, get]) {
      const cors = [...res.headers.keys()].filter((h) => h.startsWith('access-control-'));
      expect(cors).toEqual([]);
    }
  });
});

describe('the body limit', () => {
  const big = { connectorId: 'http', name: 'Too big', config: { ...HTTP_CONFIG, headers: { 'X-Padding': 'p'.repeat(900) } }, padding: 'x'.repeat(10_000) };

  it('refuses a larger body with 413 payload_too_large and creates nothing', async () => {
    const t = await hub({ config: { maxBodyBytes: 2048 } });
    const body = JSON.stringify(big);
    expect(body.length).toBeGreaterThan(10_000);
    const res = await t.call('POST', '/v1/connections', { rawBody: body, headers: { 'Content-Type': 'application/json' } });
    const problem = expectProblem(res, 413, 'payload_too_large');
    expect(problem.maxBytes).toBe(2048);
    expect((await t.call('GET', '/v1/connections')).body.data).toEqual([]);
    // a body inside the limit still goes through
    const small = await t.call('POST', '/v1/connections', { body: { connectorId: 'http', name: 'Small', config: HTTP_CONFIG } });
    expect(small.status).toBe(201);
  });

  function streamOf(text: string, chunk = 512): ReadableStream<Uint8Array> {
    const bytes = new TextEncoder().encode(text);
    let at = 0;
    return new ReadableStream({
      pull(controller) {
        if (at >= bytes.length) return controller.close();
        controller.enqueue(bytes.slice(at, at + chunk));
        at += chunk;
      },
    });
  }

  async function postStream(t: TestHub, text: string): Promise<Response> {
    const init = {
      method: 'POST',
      headers: { Authorization: `Bearer ${t.adminKey}`, 'Content-Type': 'application/json' },
      body: streamOf(text),
      duplex: 'half',
    } as RequestInit;
    const req = new Request('http://hub.test/v1/connections', init);
    expect(req.headers.get('content-length')).toBeNull();
    return t.hub.app.fetch(req);
  }

  it('refuses a larger body sent without Content-Length', async () => {
    const t = await hub({ config: { maxBodyBytes: 2048 } });
    const res = await postStream(t, JSON.stringify(big));
    expect(res.status).toBe(413);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(((await res.json()) as { code: string }).code).toBe('payload_too_large');
    expect((await t.call('GET', '/v1/connections')).body.data).toEqual([]);
  });

  it('accepts a body inside the limit sent without Content-Length', async () => {
    const t = await hub({ config: { maxBodyBytes: 2048 } });
    const res = await postStream(t, JSON.stringify({ connectorId: 'http', name: 'Streamed', config: HTTP_CONFIG }));
    expect(res.status).toBe(201);
    expect((await t.call('GET', '/v1/connections')).body.data.map((c: { name: string }) => c.name)).toEqual(['Streamed']);
  });
});

describe('no request produces a server error', () => {
  /** Lets every request through, so that the sweep reaches the handlers instead of stopping at 429. */
  const unlimited: RateLimiter = {
    check: (_key, perMinute) => ({ limit: perMinute, remaining: perMinute, resetSeconds: 0, retryAfterSeconds: 0, allowed: true }),
  };
  const PARAMS = ['x', 'con_DOESNOTEXIST', 'z'.repeat(300), '%00'];

  /** A small deterministic generator (mulberry32), so a failure can be reproduced. */
  function random(seed: number): () => number {
    let a = seed;
    return () => {
      a = (a + 0x6d2b79f5) | 0;
      let r = Math.imul(a ^ (a >>> 15), 1 | a);
      r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
      return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
    };
  }

  function garbage(next: () => number, length: number): string {
    let s = '';
    for (let i = 0; i < length; i++) s += String.fromCharCode(0x21 + Math.floor(next() * 94));
    return s;
  }

  function pathsOf(path: string, extra: string[] = []): string[] {
    return /\{\w+\}/.test(path) ? [...PARAMS, ...extra].map((p) => path.replace(/\{\w+\}/g, p)) : [path];
  }

  type Variant = { name: string; query?: string; options: CallOptions };

  function variants(method: string, adminKey: string): Variant[] {
    const json = { 'Content-Type': 'application/json' };
    const out: Variant[] = [
      { name: 'no credentials', options: { key: null } },
      { name: 'no body', options: { key: adminKey } },
      { name: 'junk query', query: '?limit=abc&cursor=%%%&zzz=1', options: { key: adminKey } },
      { name: 'repeated query', query: '?limit=1&limit=2&cursor=', options: { key: adminKey } },
      {
        name: 'junk precondition headers',
        options: { key: adminKey, headers: { 'If-Match': 'garbage', 'If-None-Match': '"v99999999999999999999"', 'Idempotency-Key': ' ' } },
      },
    ];
    if (method !== 'GET') {
      out.push(
        { name: 'not json', options: { key: adminKey, rawBody: 'not json', headers: json } },
        { name: 'an array', options: { key: adminKey, rawBody: '[]', headers: json } },
        { name: 'truncated json', options: { key: adminKey, rawBody: '{"a":', headers: json } },
        { name: 'null', options: { key: adminKey, rawBody: 'null', headers: json } },
        { name: 'deep json', options: { key: adminKey, rawBody: '['.repeat(5000) + ']'.repeat(5000), headers: json } },
        { name: 'wrong content type', options: { key: adminKey, rawBody: '{}', headers: { 'Content-Type': 'text/plain' } } },
        { name: 'no content type', options: { key: adminKey, rawBody: '{"name":"x"}' } },
        { name: 'form body', options: { key: adminKey, rawBody: 'a=1&a=2&%%%', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } } },
        { name: 'wrong types', options: { key: adminKey, body: { name: 42, scopes: 'x', config: [], connectorId: null, grant_type: {} } } },
      );
    }
    return out;
  }

  async function sweep(t: TestHub, make: (method: string) => Variant[], ids: string[] = []): Promise<{ count: number; failures: string[] }> {
    const failures: string[] = [];
    let count = 0;
    for (const spec of t.hub.app.routeSpecs) {
      const method = spec.method.toUpperCase();
      for (const path of pathsOf(spec.path, ids)) {
        for (const v of make(method)) {
          const what = `${method} ${path.slice(0, 80)}${v.query ?? ''} (${v.name})`;
          count++;
          const res = await t.call(method, path + (v.query ?? ''), v.options);
          if (res.status >= 500) failures.push(`${what}: ${res.status} ${res.text.slice(0, 200)}`);
          else if (res.status >= 400) {
            try {
              expectErrorShape(res, what);
            } catch (err) {
              failures.push(`${what}: ${(err as Error).message}`);
            }
          }
        }
      }
    }
    return { count, failures };
  }

  it('answers malformed requests on every declared route below 500, with problem documents', async () => {
    // the connection test must not leave the machine: its fetch fails as an unreachable host would
    const t = await hub({ rateLimiter: unlimited, fetch: async () => Promise.reject(new TypeError('fetch failed')) });
    const existing = await t.call('POST', '/v1/connections', { body: { connectorId: 'http', name: 'Swept', config: HTTP_CONFIG } });
    expect(existing.status).toBe(201);
    const { count, failures } = await sweep(t, (method) => variants(method, t.adminKey), [existing.body.id]);
    expect(count).toBeGreaterThan(300);
    expect(failures).toEqual([]);
  });

  it('answers garbage Authorization headers on every declared route below 500, with problem documents', async () => {
    const t = await hub({ rateLimiter: unlimited });
    const next = random(20260301);
    const { count, failures } = await sweep(t, (method) => {
      const b64 = (s: string) => Buffer.from(s).toString('base64');
      const headers = [
        garbage(next, 1 + Math.floor(next() * 60)),
        `Bearer ${garbage(next, 40)}`,
        `Bearer ${garbage(next, 10)}.${garbage(next, 10)}.${garbage(next, 10)}`,
        'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.',
        `Bearer hub_sk_${garbage(next, 43)}`,
        'Bearer ',
        `Basic ${b64(`${garbage(next, 8).replace(/[%:]/g, '')}:${garbage(next, 8).replace(/%/g, '')}`)}`,
        'Basic !!!not-base64!!!',
        `Digest ${garbage(next, 30)}`,
      ];
      // with a token request body, so that the token endpoint gets as far as reading the client credentials
      const body = method === 'GET' ? {} : { rawBody: 'grant_type=client_credentials', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } };
      return headers.map((h, i) => ({
        name: `garbage authorization ${i}: ${h}`,
        options: { key: null, ...body, headers: { ...body.headers, Authorization: h } },
      }));
    });
    expect(count).toBeGreaterThan(300);
    expect(failures).toEqual([]);
  });

  it('limits failed authentications from one address with 429 rate_limited', async () => {
    const t = await hub();
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push((await t.call('GET', '/v1/workspace', { key: `hub_sk_${'x'.repeat(30)}${i}` })).status);
    expect(statuses.slice(0, 30).every((s) => s === 401)).toBe(true);
    const limited = await t.call('GET', '/v1/workspace', { key: 'nope' });
    const problem = expectProblem(limited, 429, 'rate_limited');
    expect(problem.detail).toMatch(/authentication/);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    // the bucket refills with time
    t.clock.advance(60_000);
    expect((await t.call('GET', '/v1/workspace')).status).toBe(200);
  });
});
