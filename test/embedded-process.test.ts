// The embedded hub as users run it: a real process, a data directory, signals. Slow-ish (seconds), so kept few.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { buildHub, startFlags } from '../scripts/build-hub.ts';
import { createJobQueue } from '../src/jobs/queue.ts';
import { createSqliteStore } from '../src/store/sqlite.ts';

const root = join(import.meta.dirname, '..');
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** Standard Webhooks' timestamp and signature headers, both of one instant (two clock reads may fall either side of a second). */
function signed(secret: string, id: string, body: string): Record<string, string> {
  const at = new Date();
  return { 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': new Webhook(secret).sign(id, at, body) };
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'hub-proc-'));
  dirs.push(d);
  return d;
}

interface Proc {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  waitFor(re: RegExp, ms?: number): Promise<RegExpMatchArray>;
  exit: Promise<number | null>;
}

function run(script: string, env: Record<string, string>, nodeArgs = ['--import', 'tsx']): Proc {
  const child = spawn(process.execPath, [...nodeArgs, script], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    out: () => out,
    err: () => err,
    exit,
    waitFor: (re, ms = 15_000) =>
      new Promise((resolve, reject) => {
        const started = Date.now();
        const tick = () => {
          const m = re.exec(out);
          if (m) return resolve(m);
          if (Date.now() - started > ms) return reject(new Error(`timed out waiting for ${re}; stdout: ${out}; stderr: ${err}`));
          setTimeout(tick, 25);
        };
        tick();
      }),
  };
}

describe('npm start (the bundle of src/main.ts)', () => {
  it('builds, loads the file exchange\'s packages only on demand, runs as the start script says, and imports a large upload in an import process, through its reading worker', async () => {
    // What `npm start` runs: prestart's bundle, with the node flags of the start script.
    const scripts = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.prestart).toBe('tsx scripts/build-hub.ts');
    const flags = startFlags();
    const out = join(root, 'dist', `hub-test-${process.pid}`);
    dirs.push(out);
    const main = await buildHub(out);
    // What a start loads: main.js and the chunks its static imports reach. The file exchange's packages are not among
    // them (they load with the first file job): ssh2 alone holds 16 MB.
    const started = new Set<string>();
    const queue = ['main.js'];
    const packages = new Set<string>();
    while (queue.length) {
      const file = queue.shift()!;
      if (started.has(file)) continue;
      started.add(file);
      for (const m of readFileSync(join(out, file), 'utf8').matchAll(/^import\s[^;]*?from\s*"([^"]+)"|^import\s*"([^"]+)"/gm)) {
        const spec = (m[1] ?? m[2])!;
        if (spec.startsWith('./')) queue.push(spec.slice(2));
        else packages.add(spec);
      }
    }
    expect(packages).toContain('better-sqlite3');
    for (const onDemand of ['ssh2', 'ssh2-sftp-client', 'nodemailer', 'node-appwrite', 'exceljs']) expect(packages).not.toContain(onDemand);
    const data = tempDir();
    const hub = run(main, { HUB_DATA_DIR: data, HUB_PORT: '0', HUB_LOG_LEVEL: 'info' }, flags);
    try {
      const [, url] = await hub.waitFor(/Hub running at (http:\/\/\S+)/);
      const [key] = await hub.waitFor(/hub_sk_[A-Za-z0-9_-]{43}/);
      const call = async (method: string, path: string, body?: unknown) => {
        const res = await fetch(`${url}${path}`, { method, headers: { Authorization: `Bearer ${key}`, ...(body ? { 'Content-Type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
        return { status: res.status, body: (await res.json()) as any };
      };
      expect((await call('POST', '/v1/locations', { code: 'WH1', name: 'WH1', type: 'warehouse' })).status).toBe(201);
      expect((await call('POST', '/v1/products', { sku: 'A', name: 'A' })).status).toBe(201);
      // Over the 4 MiB from which a file is imported by an import process, and read there in a worker thread: 170,000
      // counts of 0 (what is stored), the last one 7. In a bundle whose import process or worker cannot load, the run
      // never finishes (its job is retried) and this waits in vain.
      const rows = Array.from({ length: 170_000 }, (_, i) => `A,WH1,${i === 169_999 ? 7 : 0},,21/11/2026 23:30\n`);
      const csv = `SKU,Location,On Hand,Unit Cost,Counted At\n${rows.join('')}`;
      expect(csv.length).toBeGreaterThan(4 * 1024 * 1024);
      const res = await fetch(`${url}/v1/imports?action=stock.count&mapping=csv-stock-count-in&policy=keep-good`, { method: 'POST', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'text/csv' }, body: csv });
      expect(res.status).toBe(202);
      const { runId } = (await res.json()) as { runId: string };
      let runState: any;
      await vi.waitFor(async () => {
        runState = (await call('GET', `/v1/file-runs/${runId}`)).body;
        expect(['succeeded', 'partial', 'failed', 'rejected']).toContain(runState.state);
      }, { timeout: 60_000, interval: 250 });
      expect(runState).toMatchObject({ state: 'succeeded', rowsRead: 170_000, rowsApplied: 170_000, rowsFailed: 0 });
      const levels = (await call('GET', '/v1/stock-levels?sku=A')).body.data;
      expect(levels.map((l: any) => l.onHand)).toEqual([7]);
      // The import ran on the job worker's thread (worker-thread.js beside main.js), which forked its process.
      expect(hub.out() + hub.err()).toMatch(/worker thread started/);
      expect(hub.out() + hub.err()).toMatch(/import process finished.*"state":"succeeded"/);
      // The WAL was copied into the file by the checkpointer's thread (checkpoint-thread.js beside main.js), not in
      // the commits of the hub's connections.
      expect(hub.out()).toMatch(/checkpointer started.*"everyMs":100/);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      const counter = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(metrics)?.[1]);
      expect(counter('hub_sqlite_checkpoints_total')).toBeGreaterThan(0);
      expect(counter('hub_sqlite_checkpoint_pages_total')).toBeGreaterThan(0);
      expect(counter('hub_sqlite_checkpoint_failures_total')).toBe(0);
      // Each thread's use of the one write lock: the API's writes on the main thread, the import's job on the worker's.
      for (const thread of ['main', 'worker']) {
        const held = new RegExp(`^hub_sqlite_write_lock_held_seconds_total\\{thread="${thread}"\\} ([\\d.e-]+)$`, 'm').exec(metrics);
        expect(Number(held?.[1])).toBeGreaterThan(0);
        expect(metrics).toMatch(new RegExp(`^hub_sqlite_commits_total\\{thread="${thread}"\\} [1-9]\\d*$`, 'm'));
      }
      expect(hub.err()).not.toMatch(/error/i);
    } finally {
      hub.child.kill('SIGTERM');
      expect(await hub.exit).toBe(0);
    }
    // Stopped cleanly, the last connection closed took what was left: no WAL remains beside the database.
    expect(() => statSync(join(data, 'hub.db-wal'))).toThrow();
  }, 120_000);
});

describe('npm run dev (src/main.ts)', () => {
  it('bootstraps once, serves the API, survives a restart and stops cleanly on SIGTERM', async () => {
    const data = tempDir();
    const env = { HUB_DATA_DIR: data, HUB_PORT: '0', HUB_LOG_LEVEL: 'warn' };
    const first = run('src/main.ts', env);
    const [, url] = await first.waitFor(/Hub running at (http:\/\/\S+)/);
    const [key] = await first.waitFor(/hub_sk_[A-Za-z0-9_-]{43}/);
    expect(first.out()).toContain(`${url}/docs`);
    const ws = await fetch(`${url}/v1/workspace`, { headers: { Authorization: `Bearer ${key}` } });
    expect(ws.status).toBe(200);
    expect((statSync(join(data, 'encryption.key')).mode & 0o777).toString(8)).toBe('600');
    first.child.kill('SIGTERM');
    expect(await first.exit).toBe(0);

    const second = run('src/main.ts', env);
    const [, url2] = await second.waitFor(/Hub running at (http:\/\/\S+)/);
    expect(second.out()).not.toMatch(/hub_sk_/);
    expect((await fetch(`${url2}/v1/workspace`, { headers: { Authorization: `Bearer ${key}` } })).status).toBe(200);
    second.child.kill('SIGINT');
    expect(await second.exit).toBe(0);
  }, 60_000);

  it('names the bad variable and exits 2 without a stack trace', async () => {
    const cases: [Record<string, string>, string][] = [
      [{ HUB_PORT: 'eighty' }, 'HUB_PORT'],
      [{ HUB_ENCRYPTION_KEY: 'too-short' }, 'HUB_ENCRYPTION_KEY'],
      [{ HUB_CORS_ORIGINS: 'not an origin' }, 'HUB_CORS_ORIGINS'],
    ];
    for (const [env, needle] of cases) {
      const p = run('src/main.ts', Object.assign({ HUB_DATA_DIR: tempDir(), HUB_PORT: '0' }, env));
      expect(await p.exit).toBe(2);
      expect(p.err()).toContain(needle);
      expect(p.err()).not.toMatch(/\n\s+at /);
    }
  }, 60_000);
});

describe('jobs across processes', () => {
  it('reclaims the job of a worker killed with SIGKILL once its lease ends', async () => {
    const db = join(tempDir(), 'hub.db');
    const store = createSqliteStore({ path: db });
    const queue = createJobQueue({ store, clock: { now: () => Date.now() }, leaseMs: 1000 });
    const { job } = await queue.enqueue({ type: 'test.sleep', payload: { ms: 60_000 } });
    const doomed = run('test/fixtures/worker-process.ts', { HUB_DB: db, HUB_JOB_LEASE_MS: '1000' });
    await doomed.waitFor(new RegExp(`started ${job.id}`));
    doomed.child.kill('SIGKILL');
    await doomed.exit;
    expect((await queue.get(job.id))?.state).toBe('running');
    // a fresh worker takes it over after the lease; make the job short this time
    await store.table('jobs').update(job.id, { payload: { ms: 10 } });
    const rescuer = run('test/fixtures/worker-process.ts', { HUB_DB: db, HUB_JOB_LEASE_MS: '1000' });
    await rescuer.waitFor(new RegExp(`finished ${job.id}`), 20_000);
    // The handler prints before the worker records the outcome: wait for that commit rather than race it.
    await vi.waitFor(async () => expect(await queue.get(job.id)).toMatchObject({ state: 'succeeded', attempts: 2 }), { timeout: 5000, interval: 50 });
    rescuer.child.kill('SIGTERM');
    expect(await rescuer.exit).toBe(0);
    await store.close();
  }, 60_000);

  it('finishes the running job before stopping on SIGTERM', async () => {
    const db = join(tempDir(), 'hub.db');
    const store = createSqliteStore({ path: db });
    const queue = createJobQueue({ store, clock: { now: () => Date.now() } });
    const { job } = await queue.enqueue({ type: 'test.sleep', payload: { ms: 1500 } });
    const p = run('test/fixtures/worker-process.ts', { HUB_DB: db, HUB_JOB_LEASE_MS: '30000' });
    await p.waitFor(new RegExp(`started ${job.id}`));
    p.child.kill('SIGTERM');
    expect(await p.exit).toBe(0);
    expect(p.out().indexOf(`finished ${job.id}`)).toBeLessThan(p.out().indexOf('stopped'));
    expect((await queue.get(job.id))?.state).toBe('succeeded');
    await store.close();
  }, 60_000);
});

describe('the job worker\'s thread', () => {
  it('applies inbound webhooks on its thread, tells the main thread of the deliveries, and stops with the hub', async () => {
    const data = tempDir();
    const hub = run('src/main.ts', { HUB_DATA_DIR: data, HUB_PORT: '0', HUB_LOG_LEVEL: 'info', HUB_WEBHOOK_ALLOW: '127.0.0.1/32' });
    const received: string[] = [];
    const receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        received.push(body);
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', () => resolve()));
    try {
      const [, url] = await hub.waitFor(/Hub running at (http:\/\/\S+)/);
      const [key] = await hub.waitFor(/hub_sk_[A-Za-z0-9_-]{43}/);
      await hub.waitFor(/worker thread started/);
      const call = async (method: string, path: string, body?: unknown) => {
        const res = await fetch(`${url}${path}`, { method, headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' }, body: body ? JSON.stringify(body) : undefined });
        return { status: res.status, body: (await res.json()) as any };
      };
      await call('POST', '/v1/locations', { code: 'LON-1', name: 'London' });
      await call('POST', '/v1/products', { sku: 'TEE-1', name: 'Tee' });
      const port = (receiver.address() as { port: number }).port;
      expect((await call('POST', '/v1/webhooks/endpoints', { url: `http://127.0.0.1:${port}/hook`, eventTypes: ['stock.*'] })).status).toBe(201);
      const secret = 'whsec_' + Buffer.alloc(32, 3).toString('base64');
      const routes = [{ event: 'stock.*', mapping: 'webhook-stock-change-in', action: 'stock.adjust' }];
      const conn = await call('POST', '/v1/connections', { connectorId: 'webhook', name: 'pos', config: { verification: { scheme: 'standard-webhooks' }, routes }, credentials: { secret } });
      for (let i = 0; i < 20; i++) {
        const body = JSON.stringify({ type: 'stock.changed', data: { sku: 'TEE-1', location: 'LON-1', change: 1 } });
        const headers = { 'content-type': 'application/json', 'webhook-id': `m${i}`, ...signed(secret, `m${i}`, body) };
        expect((await fetch(`${url}/hooks/${conn.body.id}`, { method: 'POST', headers, body })).status).toBe(202);
      }
      await vi.waitFor(async () => expect((await call('GET', '/v1/stock-levels?sku=TEE-1')).body.data[0]?.onHand).toBe(20), { timeout: 15_000, interval: 50 });
      // The events were written on the worker's thread; the main thread's dispatcher heard of them and sent them.
      await vi.waitFor(() => expect(received.length).toBeGreaterThanOrEqual(20), { timeout: 15_000, interval: 50 });
      // A change to the connection made through the main thread reaches the worker's thread at once, not when its
      // cached read of the connection (5 s) runs out: a webhook that no route takes any more is ignored. (One more
      // webhook first, applied: the worker's thread has read the connection within the last moment.)
      const hook = async (id: string) => {
        const body = JSON.stringify({ type: 'stock.changed', data: { sku: 'TEE-1', location: 'LON-1', change: 1 } });
        const headers = { 'content-type': 'application/json', 'webhook-id': id, ...signed(secret, id, body) };
        return ((await (await fetch(`${url}/hooks/${conn.body.id}`, { method: 'POST', headers, body })).json()) as { id: string }).id;
      };
      await hook('m-before');
      await vi.waitFor(async () => expect((await call('GET', '/v1/stock-levels?sku=TEE-1')).body.data[0]?.onHand).toBe(21), { timeout: 4_000, interval: 20 });
      const changed = await call('PATCH', `/v1/connections/${conn.body.id}`, { config: { verification: { scheme: 'standard-webhooks' }, routes: [{ ...routes[0], event: 'order.*' }] } });
      expect(changed.status).toBe(200);
      const after = await hook('m-after');
      await vi.waitFor(async () => expect((await call('GET', `/v1/inbox/${after}`)).body).toMatchObject({ status: 'ignored', result: { code: 'no_route' } }), { timeout: 3_000, interval: 20 });
      expect((await call('GET', '/v1/stock-levels?sku=TEE-1')).body.data[0]?.onHand).toBe(21);
    } finally {
      hub.child.kill('SIGTERM');
      expect(await hub.exit).toBe(0);
      receiver.close();
    }
    expect(hub.out()).toMatch(/"stopped"/);
    expect(hub.err()).not.toMatch(/error/i);
    expect(hub.out()).not.toMatch(/"level":"error"/);
  }, 60_000);
});
