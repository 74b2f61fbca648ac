// A hub in memory for tests: SQLite ':memory:', a clock the test can move, a bootstrapped workspace and admin key,
// and a `call` helper over app.request() (no port, no server).
import { createWorkspace, type CreatedKey } from '../src/bootstrap.ts';
import { testConfig, type HubConfig } from '../src/config.ts';
import { createHub, type Hub, type HubOptions } from '../src/hub.ts';
import { createManualClock } from '../src/lib/clock.ts';
import { createSqliteStore, type SqliteStore } from '../src/store/sqlite.ts';
import type { WorkspacesRow } from '../src/store/types.ts';

export interface CallOptions {
  key?: string | null;
  body?: unknown;
  /** Sent as is (no JSON encoding, no content type unless given in headers). */
  rawBody?: string;
  headers?: Record<string, string>;
}

export interface CallResult {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

export interface TestHub {
  hub: Hub;
  clock: ReturnType<typeof createManualClock>;
  workspace: WorkspacesRow;
  adminKey: string;
  call(method: string, path: string, options?: CallOptions): Promise<CallResult>;
  /** Another workspace with its own admin key, to test isolation. */
  addWorkspace(name: string): Promise<{ workspace: WorkspacesRow } & CreatedKey>;
  close(): Promise<void>;
}

export async function createTestHub(
  options: { config?: Partial<HubConfig> } & Partial<Omit<HubOptions, 'config' | 'store' | 'encryptionKey'>> = {},
): Promise<TestHub> {
  const clock = createManualClock(Date.parse('2026-03-01T12:00:00Z'));
  const store = createSqliteStore({ path: ':memory:', clock });
  const config = testConfig({ publicUrl: 'http://hub.test', ...options.config });
  const hub = createHub({ clock, ...options, config, store, encryptionKey: Buffer.alloc(32, 7) });
  const first = await createWorkspace(store, clock, { name: 'Acme', slug: 'acme', actor: 'test' });

  const call = async (method: string, path: string, opts: CallOptions = {}): Promise<CallResult> => {
    const headers: Record<string, string> = { ...opts.headers };
    const key = opts.key === undefined ? first.secret : opts.key;
    if (key !== null && !Object.keys(headers).some((h) => h.toLowerCase() === 'authorization')) headers.Authorization = `Bearer ${key}`;
    let body: string | undefined = opts.rawBody;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['Content-Type'] ??= 'application/json';
    }
    const res = await hub.app.request(path, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, headers: res.headers, body: parsed, text };
  };

  return {
    hub,
    clock,
    workspace: first.workspace,
    adminKey: first.secret,
    call,
    addWorkspace: (name) => createWorkspace(store, clock, { name, actor: 'test' }),
    close: () => hub.close(1000),
  };
}

/** Asserts the RFC 9457 shape and returns the document. */
export function expectProblem(res: CallResult, status: number, code: string): Record<string, any> {
  if (res.status !== status || res.body?.code !== code) {
    throw new Error(`expected ${status} ${code}, got ${res.status} ${res.text}`);
  }
  if (!res.headers.get('content-type')?.startsWith('application/problem+json')) throw new Error('not application/problem+json');
  for (const k of ['type', 'title', 'status', 'detail', 'code']) if (!(k in res.body)) throw new Error(`problem lacks ${k}`);
  return res.body;
}

/**
 * Runs every job that is due, one at a time, through the hub's handlers (as the worker would, without its loop and
 * timers); returns how many ran. Jobs enqueued by the jobs run are run too.
 */
/**
 * Claims every due job at once and starts their handlers in one turn, as the worker does with a lane's claim (so
 * that batched handlers see them together); then records each outcome. Returns how many ran.
 */
export async function runDueJobsTogether(hub: Hub, limit = 1000): Promise<number> {
  const ctx = { signal: new AbortController().signal, progress: async () => {}, log: hub.deps.log };
  const jobs = await hub.queue.claim('test-runner', { limit });
  const outcomes = await Promise.allSettled(
    jobs.map((job) => {
      const handler = hub.handlers[job.type];
      return handler ? handler(job, ctx) : Promise.reject(new Error(`no handler for ${job.type}`));
    }),
  );
  for (const [i, o] of outcomes.entries()) {
    if (o.status === 'fulfilled') await hub.queue.complete(jobs[i]!, o.value);
    else await hub.queue.fail(jobs[i]!, o.reason);
  }
  return jobs.length;
}

export async function runDueJobs(hub: Hub, limit = 10_000): Promise<number> {
  let ran = 0;
  const ctx = { signal: new AbortController().signal, progress: async () => {}, log: hub.deps.log };
  while (ran < limit) {
    const [job] = await hub.queue.claim('test-runner');
    if (!job) return ran;
    const handler = hub.handlers[job.type];
    try {
      if (!handler) throw new Error(`no handler for ${job.type}`);
      await hub.queue.complete(job, await handler(job, ctx));
    } catch (err) {
      await hub.queue.fail(job, err);
    }
    ran++;
  }
  return ran;
}

/** A statement `spyStatements` saw run: its SQL, its parameters, and what it answered. */
export interface SpiedStatement {
  sql: string;
  params: unknown[];
  result: unknown;
}

/**
 * Records each statement whose SQL starts with `prefix` as the store runs it by `method` (run, get or all, or a list
 * of them), from now on; `plan` reads SQLite's query plan of one, to check which index a statement takes.
 */
export function spyStatements(store: SqliteStore, prefix: string, method: 'run' | 'get' | 'all' | readonly ('run' | 'get' | 'all')[]) {
  const seen: SpiedStatement[] = [];
  const methods: readonly string[] = typeof method === 'string' ? [method] : method;
  const stmt = store.stmt.bind(store);
  store.stmt = (sql: string) => {
    const s = stmt(sql);
    if (!sql.startsWith(prefix)) return s;
    return new Proxy(s, {
      get(target, key) {
        if (typeof key === 'string' && methods.includes(key)) {
          return (...params: unknown[]) => {
            const result = (target[key as 'run'] as (...a: unknown[]) => unknown)(...params);
            seen.push({ sql, params, result });
            return result;
          };
        }
        const value = Reflect.get(target, key);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  };
  const plan = (s: Pick<SpiedStatement, 'sql' | 'params'>) => (stmt(`EXPLAIN QUERY PLAN ${s.sql}`).all(...s.params) as { detail: string }[]).map((r) => r.detail);
  return { seen, plan };
}
