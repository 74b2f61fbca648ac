// The gateway's HTTP contract on a real resource (connections): bodies, validation, ETags, idempotency,
// rate limits and pagination. Every bad request is answered 4xx and changes nothing.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestHub, expectProblem, type TestHub } from './helpers.ts';

let t: TestHub;
beforeEach(async () => {
  t = await createTestHub();
});
afterEach(async () => {
  await t.close();
});

const valid = (name = 'erp') => ({ connectorId: 'http', name, config: { baseUrl: 'http://127.0.0.1:9' } });

async function nothingWritten() {
  expect(await t.hub.deps.store.table('connections').count()).toBe(0);
  expect(await t.hub.deps.store.table('events').count({ type: { startsWith: 'connection.' } })).toBe(0);
  expect(await t.hub.deps.store.table('audit_log').count({ action: { startsWith: 'connection.' } })).toBe(0);
}

describe('request bodies', () => {
  it('refuses a body that is not JSON', async () => {
    const res = await t.call('POST', '/v1/connections', { rawBody: '{"connectorId": "http",', headers: { 'Content-Type': 'application/json' } });
    expectProblem(res, 400, 'invalid_json');
    await nothingWritten();
  });

  it('refuses a body of another media type with 415', async () => {
    expectProblem(await t.call('POST', '/v1/connections', { rawBody: 'connectorId=http', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } }), 415, 'unsupported_media_type');
    expectProblem(await t.call('POST', '/v1/connections', { rawBody: JSON.stringify(valid()) }), 415, 'unsupported_media_type');
    await nothingWritten();
  });

  it('refuses an empty body and a body that is not an object', async () => {
    expectProblem(await t.call('POST', '/v1/connections', { rawBody: '', headers: { 'Content-Type': 'application/json' } }), 400, 'validation_failed');
    for (const body of [[], 'text', 42, null]) {
      expectProblem(await t.call('POST', '/v1/connections', { body }), 400, 'validation_failed');
    }
    await nothingWritten();
  });

  it('names every failing field: wrong types, missing and unknown fields', async () => {
    const res = await t.call('POST', '/v1/connections', { body: { connectorId: 7, config: 'x', extra: true } });
    const problem = expectProblem(res, 400, 'validation_failed');
    const fields = problem.errors.map((e: { field: string }) => e.field).sort();
    expect(fields).toEqual(['/config', '/connectorId', '/extra', '/name']);
    await nothingWritten();
  });

  it('validates the config against the connector and points into it', async () => {
    const res = await t.call('POST', '/v1/connections', { body: { ...valid(), config: { baseUrl: 'ftp://nope', timeoutMs: 'slow' } } });
    const problem = expectProblem(res, 400, 'validation_failed');
    const fields = problem.errors.map((e: { field: string }) => e.field);
    expect(fields).toContain('/config/baseUrl');
    expect(fields).toContain('/config/timeoutMs');
    expectProblem(await t.call('POST', '/v1/connections', { body: { ...valid(), connectorId: 'sap' } }), 400, 'connector_unknown');
    await nothingWritten();
  });

  it('refuses a body over the size limit with 413', async () => {
    const big = { ...valid(), config: { baseUrl: 'http://127.0.0.1:9', headers: { 'X-Pad': 'x'.repeat(2 * 1024 * 1024) } } };
    expectProblem(await t.call('POST', '/v1/connections', { body: big }), 413, 'payload_too_large');
    await nothingWritten();
  });
});

describe('ETags', () => {
  it('answers 304 to If-None-Match with the current ETag', async () => {
    const created = await t.call('POST', '/v1/connections', { body: valid() });
    const etag = created.headers.get('etag')!;
    expect(etag).toBe('"v1"');
    const again = await t.call('GET', `/v1/connections/${created.body.id}`, { headers: { 'If-None-Match': etag } });
    expect(again.status).toBe(304);
    expect((await t.call('GET', `/v1/connections/${created.body.id}`, { headers: { 'If-None-Match': '"v9"' } })).status).toBe(200);
  });

  it('updates at the version read, and refuses a stale or malformed If-Match with 412, changing nothing', async () => {
    const { body } = await t.call('POST', '/v1/connections', { body: valid() });
    const first = await t.call('PATCH', `/v1/connections/${body.id}`, { body: { name: 'crm' }, headers: { 'If-Match': '"v1"' } });
    expect(first.status, first.text).toBe(200);
    expect(first.headers.get('etag')).toBe('"v2"');
    const stale = expectProblem(await t.call('PATCH', `/v1/connections/${body.id}`, { body: { name: 'lost' }, headers: { 'If-Match': '"v1"' } }), 412, 'version_conflict');
    expect(stale.currentEtag).toBe('"v2"');
    expectProblem(await t.call('PATCH', `/v1/connections/${body.id}`, { body: { name: 'lost' }, headers: { 'If-Match': 'garbage' } }), 412, 'version_conflict');
    expectProblem(await t.call('DELETE', `/v1/connections/${body.id}`, { headers: { 'If-Match': '"v1"' } }), 412, 'version_conflict');
    expect((await t.call('GET', `/v1/connections/${body.id}`)).body).toMatchObject({ name: 'crm', version: 2 });
    expect((await t.call('PATCH', `/v1/connections/${body.id}`, { body: { name: 'any' }, headers: { 'If-Match': '*' } })).status).toBe(200);
    expect((await t.call('DELETE', `/v1/connections/${body.id}`, { headers: { 'If-Match': '"v3"' } })).status).toBe(204);
    expectProblem(await t.call('GET', `/v1/connections/${body.id}`), 404, 'not_found');
  });
});

describe('Idempotency-Key', () => {
  it('answers a retry with the stored response and creates once', async () => {
    const headers = { 'Idempotency-Key': 'create-erp-1' };
    const a = await t.call('POST', '/v1/connections', { body: valid(), headers });
    const b = await t.call('POST', '/v1/connections', { body: valid(), headers });
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(b.body).toEqual(a.body);
    expect(b.headers.get('idempotent-replayed')).toBe('true');
    expect(b.headers.get('location')).toBe(a.headers.get('location'));
    expect(await t.hub.deps.store.table('connections').count()).toBe(1);
  });

  it('refuses the same key with another body with 422, and writes nothing', async () => {
    const headers = { 'Idempotency-Key': 'k-1' };
    await t.call('POST', '/v1/connections', { body: valid('one'), headers });
    expectProblem(await t.call('POST', '/v1/connections', { body: valid('two'), headers }), 422, 'idempotency_key_reused');
    expectProblem(await t.call('POST', '/v1/api-keys', { body: { name: 'k', scopes: ['*'] }, headers }), 422, 'idempotency_key_reused');
    expect(await t.hub.deps.store.table('connections').count()).toBe(1);
  });

  it('stores a validation failure too, so a retry of the same bad request gets the same answer', async () => {
    const headers = { 'Idempotency-Key': 'bad-1' };
    const a = await t.call('POST', '/v1/connections', { body: { nope: 1 }, headers });
    const b = await t.call('POST', '/v1/connections', { body: { nope: 1 }, headers });
    expect(a.status).toBe(400);
    expect(b.body).toEqual(a.body);
  });

  it('scopes keys to the workspace', async () => {
    const other = await t.addWorkspace('Other');
    const headers = { 'Idempotency-Key': 'same' };
    expect((await t.call('POST', '/v1/connections', { body: valid(), headers })).status).toBe(201);
    const theirs = await t.call('POST', '/v1/connections', { key: other.secret, body: valid(), headers });
    expect(theirs.status).toBe(201);
    expect(theirs.headers.get('idempotent-replayed')).toBeNull();
  });

  it('refuses a malformed key and lets a key expire after a day', async () => {
    expectProblem(await t.call('POST', '/v1/connections', { body: valid(), headers: { 'Idempotency-Key': 'has space' } }), 400, 'invalid_idempotency_key');
    expectProblem(await t.call('POST', '/v1/connections', { body: valid(), headers: { 'Idempotency-Key': 'x'.repeat(256) } }), 400, 'invalid_idempotency_key');
    const headers = { 'Idempotency-Key': 'day' };
    await t.call('POST', '/v1/connections', { body: valid('a'), headers });
    t.clock.advance(24 * 3600_000 + 1);
    expect((await t.call('POST', '/v1/connections', { body: valid('b'), headers })).status).toBe(201);
  });

  it('lets concurrent requests with one key create once', async () => {
    const headers = { 'Idempotency-Key': 'race' };
    const results = await Promise.all(Array.from({ length: 5 }, () => t.call('POST', '/v1/connections', { body: valid(), headers })));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201).length).toBeGreaterThanOrEqual(1);
    expect(statuses.every((s) => s === 201 || s === 409)).toBe(true);
    expect(await t.hub.deps.store.table('connections').count()).toBe(1);
  });
});

describe('rate limits', () => {
  it('announces the budget and answers 429 with Retry-After when it is spent', async () => {
    const key = (await t.call('POST', '/v1/api-keys', { body: { name: 'slow', scopes: ['*'], rateLimitPerMinute: 3 } })).body;
    for (let i = 0; i < 3; i++) {
      const res = await t.call('GET', '/v1/connections', { key: key.secret });
      expect(res.status).toBe(200);
      expect(res.headers.get('ratelimit-limit')).toBe('3');
      expect(res.headers.get('ratelimit-remaining')).toBe(String(2 - i));
    }
    const limited = await t.call('GET', '/v1/connections', { key: key.secret });
    expectProblem(limited, 429, 'rate_limited');
    expect(limited.headers.get('retry-after')).toBe('20');
    expect(limited.headers.get('ratelimit-remaining')).toBe('0');
    expect((await t.call('GET', '/v1/connections')).status).toBe(200); // other keys are not affected
    t.clock.advance(20_000);
    expect((await t.call('GET', '/v1/connections', { key: key.secret })).status).toBe(200);
  });
});

describe('pagination', () => {
  it('pages with a cursor and a Link header, newest first, without gaps or repeats', async () => {
    for (let i = 0; i < 5; i++) await t.call('POST', '/v1/connections', { body: valid(`c${i}`) });
    const names: string[] = [];
    let path: string | null = '/v1/connections?limit=2';
    let pages = 0;
    while (path) {
      const res = await t.call('GET', path);
      expect(res.status).toBe(200);
      names.push(...res.body.data.map((c: { name: string }) => c.name));
      const link = res.headers.get('link');
      if (res.body.nextCursor) expect(link).toContain('rel="next"');
      path = res.body.nextCursor ? `/v1/connections?limit=2&cursor=${encodeURIComponent(res.body.nextCursor)}` : null;
      pages++;
    }
    expect(pages).toBe(3);
    expect(names).toEqual(['c4', 'c3', 'c2', 'c1', 'c0']);
  });

  it('refuses bad limits, bad cursors, repeated and unknown parameters', async () => {
    for (const q of ['limit=0', 'limit=201', 'limit=abc', 'cursor=%25%25', 'cursor=bm90LWEtY3Vyc29y', 'limit=1&limit=2', 'colour=red', 'status=paused']) {
      const res = await t.call('GET', `/v1/connections?${q}`);
      expect(res.status, q).toBe(400);
      expect(['invalid_query', 'invalid_cursor']).toContain(res.body.code);
    }
  });

  it('filters a list by its documented parameters', async () => {
    await t.call('POST', '/v1/connections', { body: valid('on') });
    await t.call('POST', '/v1/connections', { body: { ...valid('off'), status: 'disabled' } });
    const res = await t.call('GET', '/v1/connections?status=disabled&connectorId=http');
    expect(res.body.data.map((c: { name: string }) => c.name)).toEqual(['off']);
  });
});
