// The generic HTTP connector's definition: its schemas, the registry entry, and testConnection against a loopback server.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectorContext } from '../../src/connectors/define.ts';
import { isHubError } from '../../src/errors.ts';
import { systemClock } from '../../src/lib/clock.ts';
import { silentLogger } from '../../src/lib/log.ts';
import { compileSchema } from '../../src/schemas/registry.ts';
import { toFieldErrors } from '../../src/schemas/validate.ts';
import { CONNECTORS, getConnector, listConnectors } from '../index.ts';
import { createHttpConnection, httpConnector, type HttpConnectorConfig, type HttpCredentials } from './index.ts';

describe('the registry', () => {
  it('finds the http connector by id', () => {
    expect(getConnector('http')).toBe(httpConnector);
    expect(listConnectors().map((c) => c.id)).toContain('http');
    expect(CONNECTORS).toContain(httpConnector);
  });

  it('answers undefined for an unknown id', () => {
    expect(getConnector('nope')).toBeUndefined();
  });

  it('holds unique ids', () => {
    const ids = listConnectors().map((c) => c.id);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('the definition', () => {
  it('describes itself', () => {
    expect(httpConnector).toMatchObject({ id: 'http', name: 'Generic HTTP (REST)', category: 'generic', capabilities: ['test', 'request'] });
  });
});

describe('the config schema', () => {
  const validate = compileSchema(httpConnector.configSchema);
  const fieldsOf = (config: unknown) => (validate(config) ? [] : toFieldErrors(validate.errors).map((e) => e.field));

  it.each<[string, unknown]>([
    ['a bare base URL', { baseUrl: 'https://erp.example.com' }],
    ['a base URL with a path', { baseUrl: 'http://10.0.0.5:8080/api/v2/' }],
    ['an API key in a header', { baseUrl: 'https://x.example', auth: { type: 'api_key' } }],
    ['an API key in a named header', { baseUrl: 'https://x.example', auth: { type: 'api_key', in: 'header', headerName: 'Api-Token' } }],
    ['an API key in the query', { baseUrl: 'https://x.example', auth: { type: 'api_key', in: 'query', queryParam: 'api_key' } }],
    ['bearer', { baseUrl: 'https://x.example', auth: { type: 'bearer' } }],
    ['basic', { baseUrl: 'https://x.example', auth: { type: 'basic' } }],
    [
      'every option',
      {
        baseUrl: 'https://x.example/api',
        auth: { type: 'none' },
        testPath: '/health?deep=1',
        testMethod: 'HEAD',
        timeoutMs: 60000,
        maxRetries: 0,
        headers: { 'X-Tenant': 'acme', Accept: 'application/json' },
      },
    ],
  ])('accepts %s', (_name, config) => {
    expect(fieldsOf(config)).toEqual([]);
  });

  it.each<[string, unknown, string]>([
    ['no base URL', {}, '/baseUrl'],
    ['an ftp base URL', { baseUrl: 'ftp://x.example' }, '/baseUrl'],
    ['a relative base URL', { baseUrl: '/api' }, '/baseUrl'],
    ['user:password in the base URL', { baseUrl: 'https://u:p@x.example' }, '/baseUrl'],
    ['a query in the base URL', { baseUrl: 'https://x.example/?key=1' }, '/baseUrl'],
    ['an unknown field', { baseUrl: 'https://x.example', retries: 2 }, '/retries'],
    ['an unknown auth type', { baseUrl: 'https://x.example', auth: { type: 'oauth2' } }, '/auth/type'],
    ['a query API key without its parameter', { baseUrl: 'https://x.example', auth: { type: 'api_key', in: 'query' } }, '/auth/queryParam'],
    ['a header name on bearer auth', { baseUrl: 'https://x.example', auth: { type: 'bearer', headerName: 'X' } }, '/auth/headerName'],
    ['a header name with a space', { baseUrl: 'https://x.example', auth: { type: 'api_key', headerName: 'X Key' } }, '/auth/headerName'],
    ['a test path without a slash', { baseUrl: 'https://x.example', testPath: 'health' }, '/testPath'],
    ['POST as the test method', { baseUrl: 'https://x.example', testMethod: 'POST' }, '/testMethod'],
    ['a timeout under a second', { baseUrl: 'https://x.example', timeoutMs: 200 }, '/timeoutMs'],
    ['a timeout over a minute', { baseUrl: 'https://x.example', timeoutMs: 120000 }, '/timeoutMs'],
    ['eleven retries', { baseUrl: 'https://x.example', maxRetries: 11 }, '/maxRetries'],
    ['an Authorization header', { baseUrl: 'https://x.example', headers: { AUTHORIZATION: 'Bearer x' } }, '/headers'],
    ['a non-string header', { baseUrl: 'https://x.example', headers: { 'X-N': 1 } }, '/headers/X-N'],
    ['a header value with a line break', { baseUrl: 'https://x.example', headers: { 'X-N': 'a\r\nb' } }, '/headers/X-N'],
    ['too many headers', { baseUrl: 'https://x.example', headers: Object.fromEntries(Array.from({ length: 31 }, (_, i) => [`X-${i}`, 'v'])) }, '/headers'],
  ])('rejects %s', (_name, config, field) => {
    expect(fieldsOf(config)).toContain(field);
  });
});

describe('the credentials schema', () => {
  const validate = compileSchema(httpConnector.credentialsSchema);

  it('accepts each kind of credential, and none', () => {
    for (const creds of [{}, { apiKey: 'k-1' }, { token: 'a.b.c' }, { username: 'sk_test', password: '' }]) expect(validate(creds)).toBe(true);
  });

  it('rejects unknown fields, line breaks and a colon in the user name', () => {
    for (const creds of [{ secret: 'x' }, { apiKey: 'k\n' }, { token: 'a b' }, { username: 'a:b', password: 'p' }]) expect(validate(creds)).toBe(false);
  });
});

describe('testConnection', () => {
  let server: Server;
  let origin: string;
  let handler: (req: IncomingMessage, res: ServerResponse) => void;
  const seen: { method: string; url: string; auth: string | undefined }[] = [];
  const ctx: ConnectorContext = { fetch: globalThis.fetch, clock: systemClock, log: silentLogger, sleep: async () => undefined };

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization });
      handler(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(() => void (seen.length = 0));
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const answer = (status: number, headers: Record<string, string> = {}) => (_req: IncomingMessage, res: ServerResponse) =>
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end('{}');
  const connect = (config: Partial<HttpConnectorConfig> = {}, credentials: HttpCredentials = {}) =>
    createHttpConnection({ baseUrl: `${origin}/api`, ...config }, credentials, ctx);

  it('applies the schema defaults: GET / with the default retry policy', async () => {
    handler = answer(200);
    const result = await httpConnector.create({ baseUrl: `${origin}/api` }, {}, ctx).testConnection();
    expect(result).toMatchObject({ ok: true, status: 200 });
    expect(seen).toEqual([{ method: 'GET', url: '/api/', auth: undefined }]);
  });

  it('reports success in one sentence with the latency', async () => {
    handler = answer(200);
    const result = await connect({ testPath: '/health', testMethod: 'HEAD', auth: { type: 'bearer' } }, { token: 't0k' }).testConnection();
    expect(result.ok).toBe(true);
    expect(result.message).toMatch(new RegExp(`^Reached ${origin}/api/health in \\d+ ms \\(HTTP 200\\)\\.$`));
    expect(result.latencyMs).toBeGreaterThanOrEqual(0);
    expect(seen).toEqual([{ method: 'HEAD', url: '/api/health', auth: 'Bearer t0k' }]);
  });

  it('tells the admin the credentials were refused on 401', async () => {
    handler = answer(401);
    const result = await connect({ auth: { type: 'bearer' } }, { token: 'wrong-token' }).testConnection();
    expect(result).toMatchObject({ ok: false, status: 401, code: 'upstream_auth_failed', message: 'The server refused the credentials (HTTP 401).' });
    expect(result.message).not.toContain('wrong-token');
  });

  it('points at the base URL and test path on 404', async () => {
    handler = answer(404);
    const result = await connect({ testPath: '/me' }).testConnection();
    expect(result).toMatchObject({ ok: false, status: 404, code: 'upstream_rejected' });
    expect(result.message).toContain(`${origin}/api/me`);
  });

  it('names the redirect target instead of following it', async () => {
    handler = answer(301, { location: 'https://new.example/api/' });
    const result = await connect().testConnection();
    expect(result).toMatchObject({ ok: false, status: 301, code: 'upstream_rejected' });
    expect(result.message).toContain('https://new.example/api/');
    expect(seen).toHaveLength(1);
  });

  it('answers at once on 503 and 429 rather than retrying while the admin waits', async () => {
    handler = answer(503);
    expect(await connect({ maxRetries: 5 }).testConnection()).toMatchObject({ ok: false, status: 503, code: 'upstream_error' });
    handler = answer(429, { 'retry-after': '30' });
    expect(await connect({ maxRetries: 5 }).testConnection()).toMatchObject({ ok: false, status: 429, code: 'upstream_rate_limited' });
    expect(seen).toHaveLength(2);
  });

  it('reports a 2xx that claims JSON but is not', async () => {
    handler = (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('<html>');
    const result = await connect().testConnection();
    expect(result).toMatchObject({ ok: false, status: 200, code: 'upstream_error' });
    expect(result.message).toContain('declared JSON');
  });

  it('reports a server that does not answer in time', async () => {
    handler = () => undefined;
    const result = await connect({ timeoutMs: 200 }).testConnection();
    expect(result).toMatchObject({ ok: false, code: 'upstream_timeout' });
    expect(result.status).toBeUndefined();
  });

  it('reports a closed port as unreachable', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const result = await connect({ baseUrl: `http://127.0.0.1:${port}` }).testConnection();
    expect(result).toMatchObject({ ok: false, code: 'upstream_unreachable' });
    expect(result.message).toContain('refused the connection');
  });

  it('refuses to create a connection whose auth lacks its credential', () => {
    try {
      httpConnector.create({ baseUrl: origin, auth: { type: 'api_key' } }, {}, ctx);
      expect.unreachable();
    } catch (err) {
      expect(isHubError(err, 'validation_failed')).toBe(true);
      expect(isHubError(err) && err.errors).toEqual([{ field: '/apiKey', code: 'required', message: 'is required when auth.type is api_key' }]);
    }
  });

  it('offers request with the connection settings', async () => {
    handler = (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"items":[1]}');
    const res = await connect({ auth: { type: 'api_key' } }, { apiKey: 'k1' }).request({ method: 'GET', path: '/items' });
    expect(res.body).toEqual({ items: [1] });
  });
});
