// Large imports of an embedded hub run in an import process of their own (src/files/import-child.ts) on the hub's
// SQLite file. These tests run real import processes (from the TypeScript sources, under tsx) beside a hub on a
// file: the same results as an import in the hub's process, failures that cross back with their codes, a process
// stopped mid-file whose run resumes without applying a row twice, and a hub that keeps writing meanwhile.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWorkspace } from '../src/bootstrap.ts';
import { HubError } from '../src/errors.ts';
import { testConfig } from '../src/config.ts';
import { importProcessEnv, importTask } from '../src/files/import-child.ts';
import { EXCHANGE_JOB } from '../src/files/runner.ts';
import { inTransaction } from '../src/inventory/context.ts';
import { createProduct } from '../src/inventory/products.ts';
import { createHub, type Hub } from '../src/hub.ts';
import type { JobContext } from '../src/jobs/worker.ts';
import type { Logger } from '../src/lib/log.ts';
import { createSqliteStore, type SqliteStore } from '../src/store/sqlite.ts';
import type { JobsRow } from '../src/store/types.ts';

let dir: string;
let store: SqliteStore;
let hub: Hub;
let key: string;
let workspaceId: string;
const logged: { msg: string; fields?: Record<string, unknown> }[] = [];

function logger(): Logger {
  const log: Logger = {
    debug: () => {},
    info: (msg, fields) => void logged.push({ msg, fields }),
    warn: (msg, fields) => void logged.push({ msg, fields }),
    error: (msg, fields) => void logged.push({ msg, fields }),
    child: () => log,
  };
  return log;
}

/** A hub on the store's file whose imports of `minBytes` and more run in an import process. */
function hubFor(minBytes: number): Hub {
  // The contention test writes through the API as fast as it can.
  const config = testConfig({ publicUrl: 'http://hub.test', rateLimitPerMinute: 10_000_000 });
  config.files = { ...config.files, dir: join(dir, 'files'), spoolDir: join(dir, 'spool') };
  return createHub({ config, store, encryptionKey: Buffer.alloc(32, 7), log: logger(), importProcess: { dbPath: store.path, cacheMb: 4, minBytes, onBusy: (l) => store.onBusy(l) } });
}

beforeEach(async () => {
  logged.length = 0;
  dir = mkdtempSync(join(tmpdir(), 'hub-import-process-'));
  store = createSqliteStore({ path: join(dir, 'hub.db') });
  hub = hubFor(0);
  const created = await createWorkspace(store, store.clock, { name: 'Acme', slug: 'acme', actor: 'test' });
  key = created.secret;
  workspaceId = created.workspace.id;
  for (const code of ['WH1', 'WH2']) expect((await call('POST', '/v1/locations', { code, name: code, type: 'warehouse' })).status).toBe(201);
});

afterEach(async () => {
  await hub.close(1000);
  rmSync(dir, { recursive: true, force: true });
});

async function call(method: string, path: string, body?: unknown) {
  const res = await hub.app.request(path, { method, headers: { Authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as any };
}

async function upload(csv: string, policy = 'keep-good'): Promise<string> {
  const res = await hub.app.request(`/v1/imports?action=stock.count&mapping=csv-stock-count-in&policy=${policy}&fileName=stock.csv`, { method: 'POST', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'text/csv' }, body: csv });
  expect(res.status).toBe(202);
  return ((await res.json()) as { runId: string }).runId;
}

/** Runs the one waiting exchange job through its handler, as the hub's worker would, with `ctx` overrides. */
async function runJob(ctx: Partial<JobContext> = {}): Promise<{ job: JobsRow; error?: unknown }> {
  const [job] = await hub.queue.claim('test');
  expect(job?.type).toBe(EXCHANGE_JOB);
  try {
    const result = await hub.handlers[EXCHANGE_JOB]!(job!, { signal: new AbortController().signal, progress: async () => {}, log: hub.deps.log, ...ctx });
    await hub.queue.complete(job!, result);
    return { job: job! };
  } catch (error) {
    await hub.queue.fail(job!, error);
    return { job: job!, error };
  }
}

/** Products P0 … P(n-1), 1,000 per transaction. */
async function products(n: number): Promise<void> {
  for (let i = 0; i < n; i += 1000) {
    await inTransaction(store, { workspaceId, now: new Date().toISOString(), correlationId: null }, async (ctx) => {
      for (let j = i; j < Math.min(n, i + 1000); j++) await createProduct(ctx, { sku: `P${j}`, name: `P${j}` });
    });
  }
}

const HEADER = 'SKU,Location,On Hand,Unit Cost,Counted At\n';
/** `n` products over two locations, each counted to its index + 1. */
function counts(n: number): string {
  let csv = HEADER;
  for (let i = 0; i < n; i++) csv += `P${i},WH${(i % 2) + 1},${i + 1},,21/11/2026 23:30\n`;
  return csv;
}

async function onHandBySku(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let cursor: string | null = null;
  do {
    const page = await store.table('stock_levels').query({ limit: 1000, cursor });
    for (const l of page.items) out.set(l.sku as string, l.onHand);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

describe('an import in an import process', () => {
  it('is how files of HUB_IMPORT_PROCESS_MIN_BYTES and more are imported; smaller ones stay in the hub\'s process', async () => {
    hub = hubFor(64 * 1024);
    await products(3);
    const small = await upload(counts(3));
    expect((await runJob()).error).toBeUndefined();
    expect((await call('GET', `/v1/file-runs/${small}`)).body).toMatchObject({ state: 'succeeded', rowsApplied: 3 });
    expect(logged.filter((l) => l.msg === 'import process finished')).toEqual([]);
    // Over 64 KiB: 3,000 counts of the same three products, the last of each wins.
    let csv = HEADER;
    for (let r = 0; r < 3000; r++) csv += `P${r % 3},WH${(r % 3) % 2 + 1},${r},,21/11/2026 23:30\n`;
    expect(csv.length).toBeGreaterThan(64 * 1024);
    const large = await upload(csv);
    expect((await runJob()).error).toBeUndefined();
    expect((await call('GET', `/v1/file-runs/${large}`)).body).toMatchObject({ state: 'succeeded', rowsApplied: 3000 });
    expect(logged.filter((l) => l.msg === 'import process finished').map((l) => l.fields?.runId)).toEqual([large]);
    expect([...(await onHandBySku())].sort()).toEqual([['P0', 2997], ['P1', 2998], ['P2', 2999]]);
  }, 60_000);

  it('opens the file as the hub\'s connections do: with the hub\'s checkpointer running, checkpointing only at the backstop', () => {
    const run = { id: 'run_1' } as Parameters<typeof importTask>[1];
    const plan = { file: { format: 'csv' }, mapping: null, action: 'stock.count', policy: 'keep-good', scope: 'x' } as Parameters<typeof importTask>[2];
    const staged = { path: '/s', checksum: 'sha256:0', bytes: 1 } as Parameters<typeof importTask>[3];
    expect(importTask({ dbPath: '/d/hub.db', cacheMb: 4, walAutoCheckpoint: 16_384 }, run, plan, staged, { currency: 'USD' })).toMatchObject({ dbPath: '/d/hub.db', walAutoCheckpoint: 16_384 });
    // Without it (the checkpointer off, or a hub other than npm start's), SQLite's own default.
    expect(importTask({ dbPath: '/d/hub.db', cacheMb: 4 }, run, plan, staged, { currency: 'USD' }).walAutoCheckpoint).toBeUndefined();
  });

  it('runs with one malloc arena unless the operator chose a number, and otherwise the hub\'s environment', () => {
    expect(importProcessEnv({ PATH: '/bin', HUB_DATA: '/d' })).toEqual({ PATH: '/bin', HUB_DATA: '/d', MALLOC_ARENA_MAX: '1' });
    expect(importProcessEnv({ MALLOC_ARENA_MAX: '4' })).toEqual({ MALLOC_ARENA_MAX: '4' });
  });

  it('applies the file as the hub would, writes the events and their deliveries, and reports its progress and peak memory', async () => {
    await products(300);
    const endpoint = await call('POST', '/v1/webhooks/endpoints', { url: 'https://example.com/hook', eventTypes: ['stock.*'] });
    expect(endpoint.status).toBe(201);
    const runId = await upload(counts(300));
    const progress: unknown[] = [];
    const { error } = await runJob({ progress: async (p) => void progress.push(p) });
    expect(error).toBeUndefined();
    expect((await call('GET', `/v1/file-runs/${runId}`)).body).toMatchObject({ state: 'succeeded', rowsRead: 300, rowsApplied: 300, rowsFailed: 0 });
    const levels = await onHandBySku();
    expect(levels.size).toBe(300);
    for (let i = 0; i < 300; i++) expect(levels.get(`P${i}`)).toBe(i + 1);
    // Every count wrote a movement and its events, and each stock event its delivery, in the import process.
    expect(await store.table('movements').count()).toBe(300);
    const events = await store.table('events').count({ type: { startsWith: 'stock.' } });
    expect(events).toBeGreaterThanOrEqual(300);
    expect(await store.table('webhook_deliveries').count({ endpointId: endpoint.body.id })).toBe(events);
    const finished = logged.find((l) => l.msg === 'import process finished');
    expect(finished?.fields).toMatchObject({ runId, state: 'succeeded' });
    expect(finished?.fields?.peakRssMb).toBeGreaterThan(20);
  }, 60_000);

  it('brings a file\'s failures back as the hub reports them: bad rows under reject-all, and a file that cannot be read', async () => {
    for (const sku of ['A', 'B']) expect((await call('POST', '/v1/products', { sku, name: sku })).status).toBe(201);
    const rejected = await upload(`${HEADER}A,WH1,5,,21/11/2026 23:30\nB,WH1,lots,,21/11/2026 23:30\nZ,WH9,1,,21/11/2026 23:30\n`, 'reject-all');
    expect((await runJob()).error).toBeUndefined();
    const run = (await call('GET', `/v1/file-runs/${rejected}`)).body;
    expect(run).toMatchObject({ state: 'rejected', rowsApplied: 0, rowsFailed: 2 });
    expect(await store.table('movements').count()).toBe(0);
    const report = await hub.app.request(`/v1/file-runs/${rejected}/report`, { headers: { Authorization: `Bearer ${key}` } });
    expect(await report.text()).toMatch(/3,.*On Hand/);

    // Invalid UTF-8 refuses the file: the run says why and the job is not retried.
    const broken = await upload(Buffer.concat([Buffer.from(`${HEADER}A,WH1,`), Buffer.from([0xff, 0xfe]), Buffer.from(',,21/11/2026 23:30\n')]) as never);
    expect((await runJob()).error).toBeUndefined();
    expect((await call('GET', `/v1/file-runs/${broken}`)).body).toMatchObject({ state: 'rejected', rowsApplied: 0, error: { code: 'invalid_encoding' } });
  }, 60_000);

  // Stopped (the hub shutting down, a lost lease: the job's signal aborts) or its progress report refused (the job
  // row says the lease is gone), once it has committed some batches.
  const stops: [string, (stop: AbortController) => Partial<JobContext>, RegExp][] = [
    ['its job is aborted', (stop) => ({ signal: stop.signal, progress: async () => stop.abort() }), /import process was stopped/],
    ['its progress cannot be saved', () => ({ progress: async () => { throw new HubError('version_conflict', 'The lease of job x was lost', { retryable: true }); } }), /lease of job x was lost/],
  ];
  for (const [how, ctxOf, message] of stops) {
    it(`resumes a run whose import process stops mid-file because ${how}, applying each row once`, async () => {
      const n = 40_000;
      await products(n);
      const runId = await upload(counts(n));
      const first = await runJob(ctxOf(new AbortController()));
      expect(first.error).toMatchObject({ retryable: true, message: expect.stringMatching(message) });
      const midway = (await call('GET', `/v1/file-runs/${runId}`)).body;
      expect(midway.state).toBe('running');
      expect(midway.rowsApplied).toBeGreaterThan(0);
      expect(midway.rowsApplied).toBeLessThan(n);
      // The process is gone: nothing moves on after the job let go of the run.
      await new Promise((r) => setTimeout(r, 300));
      expect((await call('GET', `/v1/file-runs/${runId}`)).body.rowsApplied).toBe(midway.rowsApplied);
      // The job is retried (due at once for the test) and the run resumes after its cursor.
      await store.table('jobs').update(first.job.id, { runAt: new Date(Date.now() - 1000).toISOString() });
      expect((await runJob()).error).toBeUndefined();
      expect((await call('GET', `/v1/file-runs/${runId}`)).body).toMatchObject({ state: 'succeeded', rowsRead: n, rowsApplied: n, rowsFailed: 0 });
      expect(await store.table('movements').count()).toBe(n);
      const levels = await onHandBySku();
      for (let i = 0; i < n; i += 997) expect(levels.get(`P${i}`)).toBe(i + 1);
    }, 120_000);
  }

  it('lets the hub keep writing while the import process commits its batches, without stopping the event loop', async () => {
    const n = 30_000;
    await products(n);
    const runId = await upload(counts(n));
    let done = false;
    const importing = runJob().finally(() => (done = true));
    // Meanwhile the API creates products, one after another, and a timer measures how late it runs.
    let created = 0;
    let worstLateMs = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      worstLateMs = Math.max(worstLateMs, now - last - 10);
      last = now;
    }, 10);
    while (!done) {
      const res = await call('POST', '/v1/products', { sku: `NEW-${created}`, name: 'new' });
      expect(res.status).toBe(201);
      created++;
    }
    clearInterval(ticker);
    expect((await importing).error).toBeUndefined();
    expect((await call('GET', `/v1/file-runs/${runId}`)).body).toMatchObject({ state: 'succeeded', rowsApplied: n });
    expect(created).toBeGreaterThan(10);
    // The import's batches run elsewhere: the hub's loop is never held for a whole batch, let alone a busy wait.
    expect(worstLateMs).toBeLessThan(1000);
    expect(await store.table('products').count({ sku: { startsWith: 'NEW-' } })).toBe(created);
  }, 120_000);
});
