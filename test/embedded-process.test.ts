// The embedded hub as users run it: a real process, a data directory, signals. Slow-ish (seconds), so kept few.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createJobQueue } from '../src/jobs/queue.ts';
import { createSqliteStore } from '../src/store/sqlite.ts';

const root = join(import.meta.dirname, '..');
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

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

function run(script: string, env: Record<string, string>): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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

describe('npm start (src/main.ts)', () => {
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
