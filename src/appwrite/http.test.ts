import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { createRuntimeContext } from '../../test/appwrite-runtime.ts';
import { emptyErrorProblem, problemResponse, requestUrl, sendFetchResponse, toFetchRequest } from './http.ts';

const echo = new Hono();
echo.all('*', async (c) => {
  const bytes = new Uint8Array(await c.req.arrayBuffer());
  return c.json({
    method: c.req.method,
    url: c.req.url,
    path: c.req.path,
    types: c.req.queries('type') ?? [],
    q: c.req.query('q') ?? null,
    hex: Buffer.from(bytes).toString('hex'),
    signature: c.req.header('x-signature') ?? null,
    key: c.req.header('x-appwrite-key') ?? null,
    cookie: c.req.header('cookie') ?? null,
  });
});

async function viaAdapter(request: Parameters<typeof createRuntimeContext>[0]) {
  const { context } = createRuntimeContext(request);
  const out = await sendFetchResponse(context.res, await echo.fetch(toFetchRequest(context.req)));
  return { out, body: JSON.parse(Buffer.from(out.body as Buffer).toString('utf8')) };
}

describe('toFetchRequest', () => {
  it('hands the body bytes to the app exactly as they arrived', async () => {
    // invalid UTF-8, a BOM, odd whitespace: any re-encoding would change these bytes
    const raw = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{ "a" :\t"é" ,\r\n"b":1 }'), Buffer.from([0xff, 0xfe, 0x00])]);
    const { body } = await viaAdapter({ method: 'POST', url: '/hooks/x', body: raw, headers: { 'Content-Type': 'application/json', 'X-Signature': 'v1,abc' } });
    expect(body.hex).toBe(raw.toString('hex'));
    expect(body.signature).toBe('v1,abc');
  });

  it('keeps the raw query string, so encoded characters are decoded once by the app', async () => {
    const { body } = await viaAdapter({ url: '/v1/events?type=connection.%2A&type=order.created&q=a%26b%3Dc+d' });
    expect(body.types).toEqual(['connection.*', 'order.created']);
    expect(body.q).toBe('a&b=c d');
    expect(body.url).toBe('http://localhost:3000/v1/events?type=connection.%2A&type=order.created&q=a%26b%3Dc+d');
  });

  it('builds the URL from scheme, host and port, leaving out a default port', () => {
    const { context } = createRuntimeContext({ url: '/a%20b/c?x=1', headers: { host: 'hub.example.com:443', 'x-forwarded-proto': 'https' } });
    expect(requestUrl(context.req)).toBe('https://hub.example.com/a%20b/c?x=1');
    const other = createRuntimeContext({ url: '/', headers: { host: 'hub.example.com:8443', 'x-forwarded-proto': 'https' } });
    expect(requestUrl(other.context.req)).toBe('https://hub.example.com:8443/');
  });

  it('sends no body with GET or HEAD, even when the runtime has bytes', () => {
    for (const method of ['GET', 'HEAD']) {
      const { context } = createRuntimeContext({ method, url: '/', body: 'ignored' });
      expect(toFetchRequest(context.req).body).toBeNull();
    }
  });

  it('passes headers through but keeps the dynamic Appwrite key away from the app', async () => {
    const { body } = await viaAdapter({ url: '/', headers: { 'x-appwrite-key': 'dynamic_secret', cookie: ['a=1', 'b=2'] } });
    expect(body.key).toBeNull();
    expect(body.cookie).toBe('a=1; b=2');
  });
});

describe('sendFetchResponse', () => {
  const { context } = createRuntimeContext({});

  it('passes status, headers and bytes through', async () => {
    const headers = new Headers({ 'content-type': 'image/png', etag: '"v1"', 'content-length': '3' });
    headers.append('set-cookie', 'a=1');
    headers.append('set-cookie', 'b=2; Path=/');
    const out = await sendFetchResponse(context.res, new Response(new Uint8Array([0, 10, 255]), { status: 201, headers }));
    expect(out.statusCode).toBe(201);
    expect([...(out.body as Buffer)]).toEqual([0, 10, 255]);
    expect(out.headers).toEqual({ 'content-type': 'image/png', etag: '"v1"', 'set-cookie': ['a=1', 'b=2; Path=/'] });
  });

  it('keeps an empty body below 400 empty', async () => {
    const out = await sendFetchResponse(context.res, new Response(null, { status: 204 }));
    expect(out.statusCode).toBe(204);
    expect((out.body as Buffer).length).toBe(0);
  });

  it('gives an empty 405 a problem+json body instead of letting Appwrite show an HTML page', async () => {
    const out = await sendFetchResponse(context.res, new Response(null, { status: 405, headers: { allow: 'GET', 'x-request-id': 'req_1' } }));
    expect(out.statusCode).toBe(405);
    expect(out.headers['content-type']).toBe('application/problem+json');
    expect(out.headers.allow).toBe('GET');
    expect(JSON.parse((out.body as Buffer).toString())).toEqual({
      type: 'about:blank',
      title: 'Method Not Allowed',
      status: 405,
      detail: 'The hub answered 405 without details',
      instance: 'req_1',
    });
  });

  it('names the hub error code when the status has one', () => {
    expect(emptyErrorProblem(401)).toMatchObject({ code: 'unauthenticated', type: '/docs/errors#error-unauthenticated' });
    expect(emptyErrorProblem(404)).toMatchObject({ code: 'not_found', status: 404 });
  });

  it('builds a problem response without the hub', () => {
    const out = problemResponse(context.res, 'validation_failed', 'nope', { trigger: 'event' });
    expect(out.statusCode).toBe(400);
    expect(JSON.parse((out.body as Buffer).toString())).toMatchObject({ code: 'validation_failed', detail: 'nope', trigger: 'event', status: 400 });
  });
});
