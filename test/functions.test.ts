// The three Appwrite function bundles, built as `npm run build` builds them and called as Appwrite's Node runtime
// calls them (test/appwrite-runtime.ts), with their data on the TablesDB test server.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFunctions, MAX_BUNDLE_BYTES, type BundleReport } from '../scripts/build-functions.ts';
import type { AppwriteFunction } from '../src/appwrite/context.ts';
import { createWorkspace } from '../src/bootstrap.ts';
import { createJobQueue } from '../src/jobs/queue.ts';
import { createManualClock, systemClock } from '../src/lib/clock.ts';
import { sha256Hex } from '../src/lib/secrets.ts';
import { createAppwriteStore, type AppwriteStore } from '../src/store/appwrite.ts';
import { startAppwriteFront, type AppwriteFront } from './appwrite-front.ts';
import { invoke, type RawRequest } from './appwrite-runtime.ts';
import { startTablesDbServer, type TablesDbServer } from './appwrite/tablesdb-server.ts';
import { startReceiver } from './webhook-receiver.ts';
import { Webhook } from 'standardwebhooks';
import { Client, Storage } from 'node-appwrite';

const outRoot = mkdtempSync(join(tmpdir(), 'hub-functions-'));
const savedEnv = { ...process.env };
let reports: BundleReport[];
let server: TablesDbServer;
let front: AppwriteFront;
let store: AppwriteStore;
let adminKey: string;
let workspaceId: string;
let requestsAtImport = -1;
const fns: Record<'api' | 'worker' | 'scheduler', AppwriteFunction> = {} as never;

beforeAll(async () => {
  reports = await buildFunctions({ outDir: (name) => join(outRoot, name) });
  server = await startTablesDbServer();
  front = await startAppwriteFront(server);
  store = createAppwriteStore({ endpoint: server.url, projectId: server.projectId, apiKey: server.apiKey });
  await store.provision();
  const boot = await createWorkspace(store, systemClock, { name: 'Acme', slug: 'acme', actor: 'test' });
  adminKey = boot.secret;
  workspaceId = boot.workspace.id;
  Object.assign(process.env, {
    APPWRITE_FUNCTION_API_ENDPOINT: front.url,
    APPWRITE_FUNCTION_PROJECT_ID: server.projectId,
    HUB_ENCRYPTION_KEY: Buffer.alloc(32, 9).toString('base64'),
    HUB_PUBLIC_URL: 'https://hub.example.test',
    HUB_LOG_LEVEL: 'info',
    HUB_WEBHOOK_ALLOW: '127.0.0.1/32',
  });
  const before = server.requests.length;
  for (const name of ['api', 'worker', 'scheduler'] as const) {
    fns[name] = ((await import(pathToFileURL(join(outRoot, name, 'main.js')).href)) as { default: AppwriteFunction }).default;
  }
  requestsAtImport = server.requests.length - before;
}, 120_000);

afterAll(async () => {
  process.env = savedEnv;
  await front?.close();
  await server?.close();
  rmSync(outRoot, { recursive: true, force: true });
});

/** One execution as Appwrite starts it: its dynamic key and trigger headers added to what the client sent. */
function call(fn: 'api' | 'worker' | 'scheduler', request: RawRequest & { trigger?: string; key?: string | null }) {
  const headers: Record<string, string | string[]> = { host: 'hub.example.test', 'x-forwarded-proto': 'https', ...request.headers };
  if (request.key !== null) headers['x-appwrite-key'] = request.key ?? server.apiKey;
  headers['x-appwrite-trigger'] = request.trigger ?? 'http';
  headers['x-appwrite-execution-id'] = `exec_${Math.random().toString(36).slice(2)}`;
  return invoke(fns[fn], { ...request, headers });
}

const bearer = () => ({ authorization: `Bearer ${adminKey}` });

describe('function bundles', () => {
  it('builds api, worker and scheduler under 2 MB without the SQLite store', () => {
    expect(reports.map((r) => r.name)).toEqual(['api', 'worker', 'scheduler']);
    for (const r of reports) {
      expect(r.bytes).toBeLessThan(MAX_BUNDLE_BYTES);
      expect(r.inputs.some((i) => i.includes('better-sqlite3') || i.endsWith('src/store/sqlite.ts'))).toBe(false);
      // the runtime's own package.json says commonjs: ours must say module next to main.js
      expect(JSON.parse(readFileSync(join(outRoot, r.name, 'package.json'), 'utf8'))).toEqual({ type: 'module' });
    }
    expect(existsSync(join(outRoot, 'api', 'main.js'))).toBe(true);
  });

  it('does no I/O at import: a cold start pays only for what an execution needs', () => {
    expect(requestsAtImport).toBe(0);
    for (const fn of Object.values(fns)) expect(typeof fn).toBe('function');
  });
});

describe('api function', () => {
  it('answers a REST call with the key, through the bundle onto TablesDB', async () => {
    const res = await call('api', { method: 'GET', url: '/v1/workspace', headers: bearer() });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ id: workspaceId, slug: 'acme' });
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers.etag).toMatch(/^"v\d+"$/);
  });

  it('creates a connection from a JSON body and finds its event with an encoded query', async () => {
    const body = { connectorId: 'http', name: 'erp', config: { baseUrl: 'https://erp.example.com/api', auth: { type: 'bearer' }, testPath: '/health' }, credentials: { token: 't0k' } };
    const created = await call('api', {
      method: 'POST',
      url: '/v1/connections',
      headers: { ...bearer(), 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ connectorId: 'http', name: 'erp' });
    expect(created.json.credentials).toBeUndefined();
    const events = await call('api', { method: 'GET', url: '/v1/events?type=connection.%2A', headers: bearer() });
    expect(events.status).toBe(200);
    expect(events.json.data.map((e: { type: string; subject: string }) => [e.type, e.subject])).toContainEqual(['connection.created', created.json.id]);
  });

  it('runs the inventory through the bundle onto TablesDB: receive, import an order, reserve, value', async () => {
    const post = async (url: string, body: unknown) => {
      const res = await call('api', { method: 'POST', url, headers: { ...bearer(), 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (res.status >= 300) throw new Error(`${url}: ${res.status} ${JSON.stringify(res.json)}`);
      return res.json;
    };
    const loc = await post('/v1/locations', { code: 'FN1', name: 'Function warehouse' });
    await post('/v1/products', { sku: 'FN-SKU', name: 'Through the bundle' });
    await post('/v1/stock/receipts', { locationId: loc.id, lines: [{ sku: 'FN-SKU', quantity: 3, unitCost: '2.50' }] });
    const order = await post('/v1/orders', { channel: 'fn', externalId: '1', lines: [{ sku: 'FN-SKU', quantity: 2 }] });
    expect(order).toMatchObject({ allocationStatus: 'allocated', allocations: [{ quantity: 2, locationId: loc.id }] });
    const value = await call('api', { method: 'GET', url: '/v1/reports/inventory-value?groupBy=sku', headers: bearer() });
    expect(value.json.lines).toContainEqual(expect.objectContaining({ sku: 'FN-SKU', onHand: 3, value: '7.50' }));
  });

  it('serves the shipped mappings, copied beside the bundle', async () => {
    const res = await call('api', { method: 'GET', url: '/v1/mappings/shipped', headers: bearer() });
    expect(res.status).toBe(200);
    expect(res.json.data.map((m: { key: string }) => m.key)).toEqual(expect.arrayContaining(['csv-product-in', 'xml-order-in', 'stock-level-csv-out']));
  });

  it('hands the body bytes to the hub unchanged (the idempotency fingerprint is over them)', async () => {
    // Webhook routes (/hooks/...) do not exist yet; the idempotency record is what hashes a raw body today.
    const raw = '{\n\t"connectorId" : "http",   "name":"caf\u00e9 \u2603 \ud83d\ude80",\r\n "config":{"baseUrl":"https://x.example.com","auth":{"type":"none"}} }';
    const request = { method: 'POST', url: '/v1/connections', headers: { ...bearer(), 'content-type': 'application/json', 'idempotency-key': 'bytes-1' }, body: Buffer.from(raw, 'utf8') };
    const first = await call('api', request);
    expect(first.status).toBe(201);
    const recordId = `idem_${sha256Hex(`${workspaceId}\u0000bytes-1`).slice(0, 31)}`;
    const record = await store.table('idempotency_keys').get(recordId);
    expect(record?.fingerprint).toBe(sha256Hex(`POST /v1/connections\n${raw}`));
    const replay = await call('api', request);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    // the same JSON with other whitespace is another request: a re-serialising adapter would have replayed it
    const reformatted = await call('api', { ...request, body: Buffer.from(JSON.stringify(JSON.parse(raw))) });
    expect(reformatted.status).toBe(422);
    expect(reformatted.json.code).toBe('idempotency_key_reused');
  });

  it('answers a missing key with a 401 problem document', async () => {
    const res = await call('api', { method: 'GET', url: '/v1/workspace' });
    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(res.json).toMatchObject({ status: 401, code: 'unauthenticated' });
  });

  it('gives an error the app sends without a body a problem document', async () => {
    // Hono answers HEAD with the GET status and no body; Appwrite would show its HTML page for an empty 404.
    const res = await call('api', { method: 'HEAD', url: '/v1/no-such-route' });
    expect(res.status).toBe(404);
    expect(res.body.length).toBeGreaterThan(0);
    expect(res.json).toMatchObject({ status: 404, code: 'not_found' });
  });

  it('refuses a schedule or event trigger with a 400 problem', async () => {
    for (const trigger of ['schedule', 'event']) {
      const res = await call('api', { method: 'GET', url: '/v1/workspace', headers: bearer(), trigger });
      expect(res.status).toBe(400);
      expect(res.json).toMatchObject({ code: 'validation_failed', trigger, accepted: ['http'] });
    }
  });

  it('uses the dynamic key of each execution', async () => {
    const stale = await call('api', { method: 'GET', url: '/v1/workspace', headers: bearer(), key: 'dynamic_expired' });
    expect(stale.status).toBe(500);
    expect(stale.json.code).toBe('internal_error');
    const fresh = await call('api', { method: 'GET', url: '/v1/workspace', headers: bearer() });
    expect(fresh.status).toBe(200);
  });

  it('names APPWRITE_API_KEY when no dynamic key arrives', async () => {
    const res = await call('api', { method: 'GET', url: '/v1/workspace', headers: bearer(), key: null });
    expect(res.status).toBe(500);
    expect(res.json).toMatchObject({ code: 'internal_error', variables: ['APPWRITE_API_KEY'] });
  });

  it('names HUB_ENCRYPTION_KEY when it is missing or not a key, in a problem document', async () => {
    const key = process.env.HUB_ENCRYPTION_KEY;
    try {
      for (const value of [undefined, 'not-a-key']) {
        if (value === undefined) delete process.env.HUB_ENCRYPTION_KEY;
        else process.env.HUB_ENCRYPTION_KEY = value;
        const res = await call('api', { method: 'GET', url: '/v1/workspace', headers: bearer() });
        expect(res.status).toBe(500);
        expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
        expect(res.json.code).toBe('internal_error');
        expect(res.json.variables).toEqual(['HUB_ENCRYPTION_KEY']);
        expect(res.json.detail).toContain('openssl rand -base64 32');
        expect(res.errors.join('\n')).toContain('HUB_ENCRYPTION_KEY');
      }
    } finally {
      process.env.HUB_ENCRYPTION_KEY = key;
    }
    expect((await call('api', { method: 'GET', url: '/v1/workspace', headers: bearer() })).status).toBe(200);
  });
});

describe('webhooks on Appwrite', () => {
  it('takes a signed webhook at the api function; the worker function applies it and delivers the resulting event', async () => {
    const receiver = await startReceiver();
    try {
      const json = (method: string, url: string, body: unknown) =>
        call('api', { method, url, headers: { ...bearer(), 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect((await json('POST', '/v1/locations', { code: 'AW-1', name: 'Appwrite shelf' })).status).toBe(201);
      expect((await json('POST', '/v1/products', { sku: 'AW-TEE', name: 'Tee' })).status).toBe(201);
      const endpoint = await json('POST', '/v1/webhooks/endpoints', { url: receiver.url, eventTypes: ['stock.updated'] });
      expect(endpoint.status).toBe(201);
      const secret = 'whsec_' + Buffer.alloc(32, 3).toString('base64');
      const conn = await json('POST', '/v1/connections', {
        connectorId: 'webhook',
        name: 'pos',
        config: { verification: { scheme: 'standard-webhooks' }, routes: [{ event: 'stock.*', mapping: 'webhook-stock-change-in', action: 'stock.adjust' }] },
        credentials: { secret },
      });
      expect(conn.status).toBe(201);
      const body = JSON.stringify({ type: 'stock.changed', data: { sku: 'AW-TEE', location: 'AW-1', change: 4 } });
      const signature = new Webhook(secret).sign('msg_aw_1', new Date(), body);
      const hook = await call('api', {
        method: 'POST',
        url: `/hooks/${conn.json.id}`,
        headers: { 'content-type': 'application/json', 'webhook-id': 'msg_aw_1', 'webhook-timestamp': String(Math.floor(Date.now() / 1000)), 'webhook-signature': signature },
        body,
      });
      expect(hook.status, JSON.stringify(hook.json)).toBe(202);
      const run = await call('worker', { method: 'POST', url: '/', body: '{}' });
      expect(run.json).toMatchObject({ succeeded: 1, deliveries: 1, stoppedBy: 'idle' });
      expect(receiver.received).toHaveLength(1);
      const payload = new Webhook(endpoint.json.secret).verify(receiver.received[0]!.body, receiver.received[0]!.headers) as { type: string; data: { levels: unknown[] } };
      expect(payload.type).toBe('stock.updated');
    } finally {
      await receiver.close();
    }
  });
  it('disables, enables and replays an endpoint with more deliveries than one Appwrite transaction may write', async () => {
    const json = (method: string, url: string, body?: unknown) =>
      call('api', { method, url, headers: { ...bearer(), 'content-type': 'application/json' }, body: body === undefined ? '' : JSON.stringify(body) });
    const endpoint = await json('POST', '/v1/webhooks/endpoints', { url: 'http://127.0.0.1:9/backlog', eventTypes: ['stock.updated'] });
    expect(endpoint.status).toBe(201);
    const endpointId = endpoint.json.endpoint.id as string;
    // 120 deliveries due in a day: more than the 100 operations one transaction may stage, none sent meanwhile.
    const deliveries = store.table('webhook_deliveries');
    const due = new Date(Date.now() + 86_400_000).toISOString();
    for (let i = 0; i < 120; i++) {
      await deliveries.insert({ workspaceId, endpointId, eventId: `evt_backlog_${i}`, eventType: 'stock.updated', orderingKey: null, state: 'pending', attempts: 0, totalAttempts: 0, nextAttemptAt: due });
    }
    const states = async () => {
      const byState: Record<string, number> = {};
      for (const state of ['pending', 'paused', 'dead'] as const) byState[state] = await deliveries.count({ endpointId, state });
      return byState;
    };

    // The first 97 paused with the endpoint's own write, its audit entry and the job that pauses the rest, a
    // transaction at a time, in the worker execution the api starts.
    const worker = async () => (await call('worker', { method: 'POST', url: '/', body: '{}' })).json;
    const disabled = await json('POST', `/v1/webhooks/endpoints/${endpointId}/disable`);
    expect(disabled.status, JSON.stringify(disabled.json)).toBe(200);
    expect(disabled.json.status).toBe('disabled');
    expect(await states()).toEqual({ pending: 23, paused: 97, dead: 0 });
    expect(await worker()).toMatchObject({ succeeded: 1, stoppedBy: 'idle' });
    expect(await states()).toEqual({ pending: 0, paused: 120, dead: 0 });

    const enabled = await json('POST', `/v1/webhooks/endpoints/${endpointId}/enable`);
    expect(enabled.status, JSON.stringify(enabled.json)).toBe(200);
    expect(enabled.json.status).toBe('enabled');
    expect(await states()).toEqual({ pending: 97, paused: 23, dead: 0 });
    // The job resumes the rest; the same execution then sends what is due (to a loopback address the SSRF guard refuses).
    expect(await worker()).toMatchObject({ succeeded: 1, stoppedBy: 'idle' });
    const after = await states();
    expect(after.paused).toBe(0);
    expect(after.pending! + after.dead!).toBe(120);

    // Replaying the failed ones: each call takes what one transaction holds and says where to go on.
    for (const { id } of (await deliveries.query({ where: { endpointId }, limit: 120 })).items) await deliveries.update(id, { state: 'dead' });
    const replay = (since: string) => json('POST', `/v1/webhooks/endpoints/${endpointId}/replay`, { scope: 'failed', since });
    const first = await replay('2000-01-01T00:00:00Z');
    expect(first.status, JSON.stringify(first.json)).toBe(200);
    expect(first.json).toMatchObject({ replayed: 98, hasMore: true });
    // A project whose plan stages another number says so, and the pages follow it.
    process.env.HUB_APPWRITE_TRANSACTION_WRITES = '20';
    let second;
    try {
      second = await replay(first.json.nextSince);
    } finally {
      delete process.env.HUB_APPWRITE_TRANSACTION_WRITES;
    }
    expect(second.json).toMatchObject({ replayed: 18, hasMore: true });
    const third = await replay(second.json.nextSince);
    expect(third.json).toMatchObject({ replayed: 4, hasMore: false });
    expect(await states()).toEqual({ pending: 120, paused: 0, dead: 0 });

    // Deleting it: the endpoint at once, its 120 deliveries by the job it queues, a transaction's worth at a time.
    const deleted = await call('api', { method: 'DELETE', url: `/v1/webhooks/endpoints/${endpointId}`, headers: bearer() });
    expect(deleted.status, JSON.stringify(deleted.json)).toBe(204);
    expect((await json('GET', `/v1/webhooks/endpoints/${endpointId}`)).status).toBe(404);
    expect(await worker()).toMatchObject({ succeeded: 1, stoppedBy: 'idle' });
    expect(await deliveries.count({ endpointId })).toBe(0);
    // Hundreds of staged writes, each a request the test server checks against Appwrite's OpenAPI document: 13-16 s
    // on a quiet machine of ours, past the suite's 20 s default on a busy one.
  }, 60_000);
});

describe('file uploads on Appwrite', () => {
  it('keeps an upload in Storage for the worker execution, which imports it and archives it there', async () => {
    const storage = new Storage(new Client().setEndpoint(server.url).setProject(server.projectId).setKey(server.apiKey));
    await storage.createBucket({ bucketId: 'exchange-inbox', name: 'File exchange: files to import' });
    const json = (url: string, body: unknown) => call('api', { method: 'POST', url, headers: { ...bearer(), 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect((await json('/v1/locations', { code: 'UP-1', name: 'Upload shelf' })).status).toBe(201);
    expect((await json('/v1/products', { sku: 'UP-TEE', name: 'Tee' })).status).toBe(201);
    const before = front.executions.length;
    const upload = await call('api', {
      method: 'POST',
      url: '/v1/imports?action=stock.count&mapping=csv-stock-count-in&policy=keep-good&fileName=nightly.csv',
      headers: { ...bearer(), 'content-type': 'text/csv' },
      body: 'SKU,Location,On Hand\nUP-TEE,UP-1,12\nNOPE,UP-1,1\n',
    });
    expect(upload.status, JSON.stringify(upload.json)).toBe(202);
    const runId = upload.json.runId as string;
    // The file is in the bucket before the job exists; the api execution kept no copy of its own.
    const names = async () => (await storage.listFiles({ bucketId: 'exchange-inbox' })).files.map((f) => f.name);
    expect(await names()).toContain(`uploads/${runId}.csv`);

    const [execution] = front.executions.slice(before);
    expect(execution).toMatchObject({ functionId: 'worker', async: true });
    const run = await call('worker', { method: 'POST', url: '/', body: execution!.body });
    expect(run.json).toMatchObject({ claimed: 1, succeeded: 1 });
    const done = await call('api', { method: 'GET', url: `/v1/file-runs/${runId}`, headers: bearer() });
    expect(done.json).toMatchObject({ state: 'partial', rowsApplied: 1, rowsFailed: 1, trigger: 'upload' });
    expect(await names()).toContain(`archive/${runId}.csv`);
    expect(await names()).not.toContain(`uploads/${runId}.csv`);
  });
});

describe('jobs on Appwrite', () => {
  it('starts a worker execution when the API enqueues, and the worker runs the job', async () => {
    // A dead job of the workspace; retrying it through the API puts it back in the queue.
    const queue = createJobQueue({ store, clock: systemClock });
    const { job } = await queue.enqueue({ type: 'maintenance.cleanup', payload: {}, workspaceId, maxAttempts: 1 });
    const [claimed] = await queue.claim('test');
    await queue.fail(claimed!, Object.assign(new Error('boom'), { retryable: false }));
    const before = front.executions.length;
    const retried = await call('api', { method: 'POST', url: `/v1/jobs/${job.id}/retry`, headers: bearer() });
    expect(retried.status).toBe(200);
    expect(front.executions.slice(before)).toEqual([{ functionId: 'worker', async: true, body: JSON.stringify({ jobId: job.id }), key: server.apiKey }]);

    // Appwrite then runs the worker with that body; createExecution executions arrive with the http trigger.
    const run = await call('worker', { method: 'POST', url: '/', body: front.executions.at(-1)!.body });
    expect(run.status).toBe(200);
    expect(run.json).toMatchObject({ claimed: 1, succeeded: 1, retried: 0, dead: 0, stoppedBy: 'idle', continued: false });
    expect((await store.table('jobs').get(job.id))?.state).toBe('succeeded');
    expect(run.logs.some((l) => l.includes('worker execution finished'))).toBe(true);
  });

  it('re-dispatches a job whose worker execution was lost, on the scheduler tick', async () => {
    // A job claimed ten minutes ago by an execution that never finished: its lease has run out.
    const past = createManualClock(Date.now() - 600_000);
    const stale = createJobQueue({ store, clock: past, leaseMs: 30_000 });
    const { job } = await stale.enqueue({ type: 'maintenance.cleanup', payload: {} });
    expect((await stale.claim('lost-execution')).map((j) => j.id)).toEqual([job.id]);

    const before = front.executions.length;
    const tick = await call('scheduler', { method: 'POST', url: '/', trigger: 'schedule' });
    expect(tick.status).toBe(200);
    expect(tick.json).toMatchObject({ expired: 1, dispatched: true, maintenance: { created: true } });
    // the new maintenance job and the re-dispatch share one worker execution
    expect(front.executions.slice(before).map((e) => e.functionId)).toEqual(['worker']);

    const again = await call('scheduler', { method: 'POST', url: '/', trigger: 'schedule' });
    expect(again.json.maintenance).toEqual({ jobId: tick.json.maintenance.jobId, created: false });

    const run = await call('worker', { method: 'POST', url: '/', body: front.executions.at(-1)!.body });
    expect(run.json).toMatchObject({ claimed: 2, succeeded: 2, stoppedBy: 'idle' });
    expect((await store.table('jobs').get(job.id))?.state).toBe('succeeded');

    const quiet = await call('scheduler', { method: 'POST', url: '/', trigger: 'schedule' });
    expect(quiet.json).toMatchObject({ due: 0, expired: 0, dispatched: false });
  });

  it('logs a failed dispatch instead of failing the request', async () => {
    const queue = createJobQueue({ store, clock: systemClock });
    const { job } = await queue.enqueue({ type: 'maintenance.cleanup', payload: {}, workspaceId, maxAttempts: 1 });
    const [claimed] = await queue.claim('test');
    await queue.fail(claimed!, Object.assign(new Error('boom'), { retryable: false }));
    front.failExecutions(503, 10);
    const res = await call('api', { method: 'POST', url: `/v1/jobs/${job.id}/retry`, headers: bearer() });
    front.failExecutions(0, 0);
    expect(res.status).toBe(200);
    expect(res.errors.join('\n')).toContain('could not start a worker execution');
    // the scheduler's next tick finds the queued job and asks again
    const tick = await call('scheduler', { method: 'POST', url: '/', trigger: 'http' });
    expect(tick.json).toMatchObject({ due: 1, dispatched: true });
    expect((await call('worker', { method: 'POST', url: '/' })).json).toMatchObject({ succeeded: 1 });
  });

  it('refuses an event trigger on the worker and the scheduler', async () => {
    for (const fn of ['worker', 'scheduler'] as const) {
      const res = await call(fn, { method: 'POST', url: '/', trigger: 'event' });
      expect(res.status).toBe(400);
      expect(res.json.code).toBe('validation_failed');
    }
  });

  it('sent only requests Appwrite publishes', () => {
    expect(server.violations).toEqual([]);
    expect(front.violations).toEqual([]);
  });
});
