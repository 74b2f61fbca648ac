// Credentials and API keys through the gateway: every way a credential can be wrong, and the key lifecycle.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AUTH_FAILURES_PER_MINUTE } from '../src/app/middleware/auth.ts';
import { createTestHub, expectProblem, type TestHub } from './helpers.ts';

let t: TestHub;
beforeEach(async () => {
  t = await createTestHub();
});
afterEach(async () => {
  await t.close();
});

async function createKey(scopes: string[], extra: Record<string, unknown> = {}) {
  const res = await t.call('POST', '/v1/api-keys', { body: { name: 'test key', scopes, ...extra } });
  expect(res.status, res.text).toBe(201);
  return res.body as { id: string; secret: string; version: number };
}

describe('credentials', () => {
  it('refuses a request without credentials with 401 and a WWW-Authenticate challenge', async () => {
    const res = await t.call('GET', '/v1/workspace', { key: null });
    expectProblem(res, 401, 'unauthenticated');
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('refuses malformed Authorization headers', async () => {
    for (const value of ['Basic dXNlcjpwYXNz', 'Bearer', 'Bearer a b', 'hub_sk_x', 'Token abc']) {
      expectProblem(await t.call('GET', '/v1/workspace', { headers: { Authorization: value } }), 401, 'unauthenticated');
    }
  });

  it('refuses an unknown key, a key-shaped string and a truncated key alike', async () => {
    const fake = 'hub_sk_' + 'A'.repeat(43);
    for (const key of [fake, t.adminKey.slice(0, -1), 'not-a-key', 'a.b.c']) {
      const problem = expectProblem(await t.call('GET', '/v1/workspace', { key }), 401, 'unauthenticated');
      expect(JSON.stringify(problem)).not.toContain(key);
    }
  });

  it('accepts a key as Bearer or as X-API-Key', async () => {
    expect((await t.call('GET', '/v1/workspace')).status).toBe(200);
    expect((await t.call('GET', '/v1/workspace', { key: null, headers: { 'X-API-Key': t.adminKey } })).status).toBe(200);
  });

  it('refuses a key without the scope the route needs, naming the scope', async () => {
    const key = await createKey(['connections:read']);
    expect((await t.call('GET', '/v1/connections', { key: key.secret })).status).toBe(200);
    const problem = expectProblem(
      await t.call('POST', '/v1/connections', { key: key.secret, body: { connectorId: 'http', name: 'x', config: { baseUrl: 'http://127.0.0.1:9' } } }),
      403,
      'insufficient_scope',
    );
    expect(problem.requiredScope).toBe('connections:write');
    expectProblem(await t.call('GET', '/v1/api-keys', { key: key.secret }), 403, 'insufficient_scope');
    expect((await t.call('GET', '/v1/connections', { key: null })).status).toBe(401);
  });

  it('lets write imply read and wildcards cover resources', async () => {
    const writer = await createKey(['connections:write']);
    expect((await t.call('GET', '/v1/connections', { key: writer.secret })).status).toBe(200);
    const reader = await createKey(['*:read']);
    expect((await t.call('GET', '/v1/events', { key: reader.secret })).status).toBe(200);
    expectProblem(await t.call('PATCH', '/v1/workspace', { key: reader.secret, body: { name: 'x' } }), 403, 'insufficient_scope');
  });

  it('slows down guessing: too many failed attempts from one address get 429', async () => {
    for (let i = 0; i < AUTH_FAILURES_PER_MINUTE; i++) await t.call('GET', '/v1/workspace', { key: 'hub_sk_' + 'B'.repeat(43) });
    const res = await t.call('GET', '/v1/workspace');
    expectProblem(res, 429, 'rate_limited');
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    t.clock.advance(60_000);
    expect((await t.call('GET', '/v1/workspace')).status).toBe(200);
  });
});

describe('API keys', () => {
  it('shows the secret once and stores only its hash', async () => {
    const key = await createKey(['connections:read']);
    expect(key.secret).toMatch(/^hub_sk_[A-Za-z0-9_-]{43}$/);
    const got = await t.call('GET', `/v1/api-keys/${key.id}`);
    expect(got.status).toBe(200);
    expect(got.text).not.toContain(key.secret);
    expect(got.body).not.toHaveProperty('hash');
    expect(got.body).not.toHaveProperty('secret');
    expect(got.body.prefix).toBe(key.secret.slice(0, 13));
    const list = await t.call('GET', '/v1/api-keys');
    expect(list.text).not.toContain(key.secret);
    expect(list.body.data.every((k: object) => !('hash' in k))).toBe(true);
    const stored = await t.hub.deps.store.table('api_keys').get(key.id);
    expect(JSON.stringify(stored)).not.toContain(key.secret);
  });

  it('records when a key was last used', async () => {
    const key = await createKey(['workspace:read']);
    await t.call('GET', '/v1/workspace', { key: key.secret });
    await new Promise((r) => setTimeout(r, 20));
    const stored = await t.hub.deps.store.table('api_keys').get(key.id);
    expect(stored?.lastUsedAt).toBe(new Date(t.clock.now()).toISOString());
  });

  it('refuses scopes the caller does not hold and resources that do not exist', async () => {
    const limited = await createKey(['keys:write', 'connections:read']);
    const res = await t.call('POST', '/v1/api-keys', { key: limited.secret, body: { name: 'escalate', scopes: ['connections:read', '*'] } });
    const problem = expectProblem(res, 400, 'validation_failed');
    expect(problem.errors).toEqual([expect.objectContaining({ field: '/scopes/1', code: 'scope_not_held' })]);
    const typo = expectProblem(await t.call('POST', '/v1/api-keys', { body: { name: 'typo', scopes: ['conections:read'] } }), 400, 'validation_failed');
    expect(typo.errors[0]).toMatchObject({ field: '/scopes/0', code: 'unknown_resource' });
    const badShape = expectProblem(await t.call('POST', '/v1/api-keys', { body: { name: 'bad', scopes: ['connections:delete'] } }), 400, 'validation_failed');
    expect(badShape.errors[0].field).toBe('/scopes/0');
    expect((await t.call('GET', '/v1/api-keys')).body.data).toHaveLength(2); // admin + limited
  });

  it('refuses an expiry in the past, and stops a key when it expires', async () => {
    const past = new Date(t.clock.now() - 1000).toISOString();
    expectProblem(await t.call('POST', '/v1/api-keys', { body: { name: 'old', scopes: ['*'], expiresAt: past } }), 400, 'validation_failed');
    const key = await createKey(['workspace:read'], { expiresAt: new Date(t.clock.now() + 60_000).toISOString() });
    expect((await t.call('GET', '/v1/workspace', { key: key.secret })).status).toBe(200);
    t.clock.advance(60_001);
    expectProblem(await t.call('GET', '/v1/workspace', { key: key.secret }), 401, 'unauthenticated');
  });

  it('revokes a key at once and records who did it', async () => {
    const key = await createKey(['workspace:read']);
    const res = await t.call('POST', `/v1/api-keys/${key.id}/revoke`);
    expect(res.status).toBe(200);
    expect(res.body.revokedAt).toBeTruthy();
    expectProblem(await t.call('GET', '/v1/workspace', { key: key.secret }), 401, 'unauthenticated');
    expect((await t.call('POST', `/v1/api-keys/${key.id}/revoke`)).status).toBe(200); // twice is harmless
    expectProblem(await t.call('PATCH', `/v1/api-keys/${key.id}`, { body: { name: 'again' } }), 409, 'conflict');
    const audit = await t.call('GET', `/v1/audit-log?resourceId=${key.id}`);
    expect(audit.body.data.map((e: { action: string }) => e.action)).toEqual(['api_key.revoked', 'api_key.created']);
    expect(audit.body.data[0]).toMatchObject({ actorType: 'api_key', resourceType: 'api_key' });
  });

  it('rotates a key: the new one works at once, the old one until its grace period ends', async () => {
    const old = await createKey(['workspace:read']);
    const res = await t.call('POST', `/v1/api-keys/${old.id}/rotate`, { body: { gracePeriodSeconds: 3600 } });
    expect(res.status, res.text).toBe(201);
    const fresh = res.body as { id: string; secret: string; scopes: string[] };
    expect(fresh.secret).not.toBe(old.secret);
    expect(fresh.scopes).toEqual(['workspace:read']);
    expect((await t.call('GET', '/v1/workspace', { key: old.secret })).status).toBe(200);
    expect((await t.call('GET', '/v1/workspace', { key: fresh.secret })).status).toBe(200);
    const oldRow = (await t.call('GET', `/v1/api-keys/${old.id}`)).body;
    expect(oldRow.rotatedToId).toBe(fresh.id);
    expectProblem(await t.call('POST', `/v1/api-keys/${old.id}/rotate`), 409, 'conflict');
    t.clock.advance(3600_001);
    expectProblem(await t.call('GET', '/v1/workspace', { key: old.secret }), 401, 'unauthenticated');
    expect((await t.call('GET', '/v1/workspace', { key: fresh.secret })).status).toBe(200);
  });

  it('rotates with the default grace period when no body is sent', async () => {
    const old = await createKey(['workspace:read']);
    const res = await t.call('POST', `/v1/api-keys/${old.id}/rotate`);
    expect(res.status, res.text).toBe(201);
    const oldRow = (await t.call('GET', `/v1/api-keys/${old.id}`)).body;
    expect(Date.parse(oldRow.expiresAt) - t.clock.now()).toBe(t.hub.deps.config.keyGraceSeconds * 1000);
  });

  it('changes a key with PATCH, at the version it was read', async () => {
    const key = await createKey(['workspace:read']);
    const first = await t.call('PATCH', `/v1/api-keys/${key.id}`, { body: { name: 'renamed', rateLimitPerMinute: 5 }, headers: { 'If-Match': '"v1"' } });
    expect(first.status, first.text).toBe(200);
    expect(first.body).toMatchObject({ name: 'renamed', rateLimitPerMinute: 5, version: 2 });
    expectProblem(await t.call('PATCH', `/v1/api-keys/${key.id}`, { body: { name: 'stale' }, headers: { 'If-Match': '"v1"' } }), 412, 'version_conflict');
  });
});

describe('workspaces', () => {
  it('isolate tenants: a key of one workspace gets 404 for anything of another', async () => {
    const other = await t.addWorkspace('Other Co');
    const conn = await t.call('POST', '/v1/connections', { body: { connectorId: 'http', name: 'erp', config: { baseUrl: 'http://127.0.0.1:9' } } });
    expect(conn.status).toBe(201);
    const id = conn.body.id as string;
    const k = other.secret;
    expectProblem(await t.call('GET', `/v1/connections/${id}`, { key: k }), 404, 'not_found');
    expectProblem(await t.call('PATCH', `/v1/connections/${id}`, { key: k, body: { name: 'mine' } }), 404, 'not_found');
    expectProblem(await t.call('DELETE', `/v1/connections/${id}`, { key: k }), 404, 'not_found');
    expectProblem(await t.call('POST', `/v1/connections/${id}/test`, { key: k }), 404, 'not_found');
    const adminKeyId = (await t.call('GET', '/v1/api-keys')).body.data[0].id as string;
    expectProblem(await t.call('POST', `/v1/api-keys/${adminKeyId}/revoke`, { key: k }), 404, 'not_found');
    expect((await t.call('GET', '/v1/connections', { key: k })).body.data).toEqual([]);
    expect((await t.call('GET', '/v1/events', { key: k })).body.data).toEqual([]);
    expect((await t.call('GET', '/v1/audit-log', { key: k })).body.data.every((e: { workspaceId: string }) => e.workspaceId === other.workspace.id)).toBe(true);
    const ws = await t.call('GET', '/v1/workspace', { key: k });
    expect(ws.body.id).toBe(other.workspace.id);
    // and nothing of the first workspace changed
    expect((await t.call('GET', `/v1/connections/${id}`)).body.name).toBe('erp');
    expect((await t.call('GET', '/v1/workspace')).status).toBe(200);
  });

  it('updates the workspace settings and refuses an unknown time zone', async () => {
    const res = await t.call('PATCH', '/v1/workspace', { body: { currency: 'EUR', timezone: 'Europe/Berlin' } });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ currency: 'EUR', timezone: 'Europe/Berlin', version: 2 });
    const bad = expectProblem(await t.call('PATCH', '/v1/workspace', { body: { timezone: 'Mars/Olympus' } }), 400, 'validation_failed');
    expect(bad.errors[0].field).toBe('/timezone');
    expectProblem(await t.call('PATCH', '/v1/workspace', { body: { currency: 'euro' } }), 400, 'validation_failed');
    expectProblem(await t.call('PATCH', '/v1/workspace', { body: {} }), 400, 'validation_failed');
  });
});
