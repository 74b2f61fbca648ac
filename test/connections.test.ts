// Connections end to end: credentials encrypted at rest, testing against a live local system, and the events and
// audit entries each change leaves behind.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestHub, expectProblem, type TestHub } from './helpers.ts';

let server: Server;
let baseUrl: string;
const seen: { path: string; auth: string | undefined }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ path: req.url ?? '', auth: req.headers.authorization });
    if (req.headers.authorization !== 'Bearer good-token') {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"nope"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

let t: TestHub;
beforeEach(async () => {
  t = await createTestHub();
  seen.length = 0;
});
afterEach(async () => {
  await t.close();
});

const bearer = (token: string) => ({
  connectorId: 'http',
  name: 'warehouse',
  config: { baseUrl, auth: { type: 'bearer' }, testPath: '/ping' },
  credentials: { token },
});

describe('connections', () => {
  it('encrypts credentials at rest and never returns them', async () => {
    const res = await t.call('POST', '/v1/connections', { body: bearer('good-token') });
    expect(res.status, res.text).toBe(201);
    expect(res.headers.get('location')).toBe(`/v1/connections/${res.body.id}`);
    expect(res.body.credentialFields).toEqual(['token']);
    expect(res.body).not.toHaveProperty('credentials');
    expect(res.text).not.toContain('good-token');
    const row = await t.hub.deps.store.table('connections').get(res.body.id);
    expect(row?.credentials).toMatch(/^v1\./);
    expect(JSON.stringify(row)).not.toContain('good-token');
    expect(t.hub.deps.cipher.decryptJson(row!.credentials!)).toEqual({ token: 'good-token' });
    const got = await t.call('GET', `/v1/connections/${res.body.id}`);
    expect(got.text).not.toContain('good-token');
  });

  it('lists the connectors with their schemas', async () => {
    const res = await t.call('GET', '/v1/connectors');
    const http = res.body.data.find((c: { id: string }) => c.id === 'http');
    expect(http).toMatchObject({ category: 'generic', capabilities: ['test', 'request'] });
    expect(http.configSchema.properties.baseUrl).toBeTruthy();
  });

  it('tests a connection against the remote system and records the result', async () => {
    const { body } = await t.call('POST', '/v1/connections', { body: bearer('good-token') });
    const res = await t.call('POST', `/v1/connections/${body.id}/test`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: true, status: 200 });
    expect(seen).toEqual([{ path: '/ping', auth: 'Bearer good-token' }]);
    const after = (await t.call('GET', `/v1/connections/${body.id}`)).body;
    expect(after.lastTestResult).toMatchObject({ ok: true });
    expect(after.lastTestedAt).toBe(new Date(t.clock.now()).toISOString());
  });

  it('reports a failing remote system as ok: false, not as an error of the hub', async () => {
    const { body } = await t.call('POST', '/v1/connections', { body: bearer('bad-token') });
    const refused = await t.call('POST', `/v1/connections/${body.id}/test`);
    expect(refused.status).toBe(200);
    expect(refused.body).toMatchObject({ ok: false, status: 401 });
    expect(refused.text).not.toContain('bad-token');
    const down = await t.call('POST', '/v1/connections', { body: { ...bearer('x'), name: 'down', config: { baseUrl: 'http://127.0.0.1:9', auth: { type: 'bearer' } } } });
    const unreachable = await t.call('POST', `/v1/connections/${down.body.id}/test`);
    expect(unreachable.status).toBe(200);
    expect(unreachable.body.ok).toBe(false);
  });

  it('replaces credentials on update, validating them against the connector', async () => {
    const { body } = await t.call('POST', '/v1/connections', { body: bearer('bad-token') });
    const res = await t.call('PATCH', `/v1/connections/${body.id}`, { body: { credentials: { token: 'good-token' } } });
    expect(res.status, res.text).toBe(200);
    expect((await t.call('POST', `/v1/connections/${body.id}/test`)).body.ok).toBe(true);
    const bad = expectProblem(await t.call('PATCH', `/v1/connections/${body.id}`, { body: { credentials: { tokn: 'x' } } }), 400, 'validation_failed');
    expect(bad.errors[0].field).toMatch(/^\/credentials/);
    expectProblem(await t.call('PATCH', `/v1/connections/${body.id}`, { body: { config: { baseUrl: 'not a url' } } }), 400, 'validation_failed');
    expect((await t.call('POST', `/v1/connections/${body.id}/test`)).body.ok).toBe(true);
  });

  it('refuses a second connection with the same name in a workspace', async () => {
    await t.call('POST', '/v1/connections', { body: bearer('a') });
    const dup = expectProblem(await t.call('POST', '/v1/connections', { body: bearer('b') }), 409, 'already_exists');
    expect(dup.errors.map((e: { field: string }) => e.field)).toContain('/name');
    const other = await t.addWorkspace('Other');
    expect((await t.call('POST', '/v1/connections', { key: other.secret, body: bearer('c') })).status).toBe(201);
  });

  it('appends an event and an audit entry with each change, in the same transaction', async () => {
    const { body } = await t.call('POST', '/v1/connections', { body: bearer('a'), headers: { 'X-Request-Id': 'req-create-1' } });
    await t.call('PATCH', `/v1/connections/${body.id}`, { body: { name: 'renamed' } });
    await t.call('DELETE', `/v1/connections/${body.id}`);
    const events = (await t.call('GET', '/v1/events?type=connection.*')).body;
    expect(events.data.map((e: { type: string }) => e.type)).toEqual(['connection.created', 'connection.updated', 'connection.deleted']);
    expect(events.data[0]).toMatchObject({ subject: body.id, source: 'urn:hub', correlationId: 'req-create-1', workspaceId: t.workspace.id });
    expect(JSON.stringify(events)).not.toContain('"credentials"');
    const audit = (await t.call('GET', `/v1/audit-log?resourceId=${body.id}`)).body.data;
    expect(audit.map((a: { action: string }) => a.action)).toEqual(['connection.deleted', 'connection.updated', 'connection.created']);
    expect(audit[2]).toMatchObject({ requestId: 'req-create-1', actorType: 'api_key' });
  });
});

describe('the event feed', () => {
  it('continues from `after`, filters by type patterns and subject, and refuses bad patterns', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await t.call('POST', '/v1/connections', { body: { ...bearer('a'), name: `c${i}` } })).body.id);
    await t.call('PATCH', '/v1/workspace', { body: { name: 'Acme Ltd' } });
    const first = (await t.call('GET', '/v1/events?limit=2')).body;
    expect(first.data).toHaveLength(2);
    expect(first.hasMore).toBe(true);
    const rest = (await t.call('GET', `/v1/events?after=${first.nextCursor}`)).body;
    expect(rest.data.map((e: { type: string }) => e.type)).toEqual(['connection.created', 'workspace.updated']);
    expect(rest.hasMore).toBe(false);
    const idle = (await t.call('GET', `/v1/events?after=${rest.nextCursor}`)).body;
    expect(idle).toEqual({ data: [], nextCursor: rest.nextCursor, hasMore: false });
    expect((await t.call('GET', '/v1/events?type=workspace.updated,connection.deleted')).body.data).toHaveLength(1);
    expect((await t.call('GET', `/v1/events?subject=${ids[1]}`)).body.data).toHaveLength(1);
    for (const bad of ['order.', 'ORDER.*', '*.x']) expectProblem(await t.call('GET', `/v1/events?type=${bad}`), 400, 'invalid_query');
    const one = await t.call('GET', `/v1/events/${first.data[0].id}`);
    expect(one.body.id).toBe(first.data[0].id);
    const other = await t.addWorkspace('Other');
    expectProblem(await t.call('GET', `/v1/events/${first.data[0].id}`, { key: other.secret }), 404, 'not_found');
  });
});

describe('jobs API', () => {
  it('shows the workspace its own jobs only', async () => {
    const mine = await t.hub.queue.enqueue({ type: 'demo.thing', payload: {}, workspaceId: t.workspace.id });
    await t.hub.queue.enqueue({ type: 'demo.system', payload: {} });
    const list = (await t.call('GET', '/v1/jobs')).body.data;
    expect(list.map((j: { id: string }) => j.id)).toEqual([mine.job.id]);
    expect((await t.call('GET', `/v1/jobs/${mine.job.id}`)).body.state).toBe('queued');
    expect((await t.call('GET', '/v1/jobs?state=dead')).body.data).toEqual([]);
    const other = await t.addWorkspace('Other');
    expectProblem(await t.call('GET', `/v1/jobs/${mine.job.id}`, { key: other.secret }), 404, 'not_found');
  });
});
