import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HubError } from '../errors.ts';
import { createLogger, type Logger } from '../lib/log.ts';
import { systemClock } from '../lib/clock.ts';
import { createSqliteStore, type SqliteStore } from '../store/sqlite.ts';
import { createJobQueue, type JobQueue } from './queue.ts';
import { batchedHandler, createWorker, type JobHandler, type Worker } from './worker.ts';

// Real time here: the worker's poll, renewal and stop timeouts are timers, not the injected clock.
async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

function captureLog(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { lines, log: createLogger('debug', {}, (line) => lines.push(JSON.parse(line) as Record<string, unknown>)) };
}

describe.each([false, true])('worker (groupWrites: %s)', (groupWrites) => {
  let store: SqliteStore;
  let queue: JobQueue;
  const workers: Worker[] = [];

  const worker = (handlers: Record<string, JobHandler>, options: { concurrency?: number; pollIntervalMs?: number; log?: Logger; lanes?: Record<string, number> } = {}) => {
    const w = createWorker({ queue, handlers, owner: `w${workers.length}`, pollIntervalMs: 20, ...options });
    workers.push(w);
    return w;
  };
  const state = async (id: string) => (await queue.get(id))?.state;

  beforeEach(() => {
    store = createSqliteStore({ path: ':memory:', clock: systemClock });
    queue = createJobQueue({ store, clock: systemClock, retry: { baseMs: 1000 }, groupWrites });
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop({ timeoutMs: 100 })));
    await store.close();
  });

  it('runs a job and records its result', async () => {
    const w = worker({ 'sync.orders': async (job) => ({ echoed: job.payload.n }) });
    w.start();
    const { job } = await queue.enqueue({ type: 'sync.orders', payload: { n: 7 } });
    await waitFor(async () => (await state(job.id)) === 'succeeded');
    expect((await queue.get(job.id))?.result).toEqual({ echoed: 7 });
  });

  it('counts its claims and outcomes and tells when it is idle', async () => {
    await queue.enqueue({ type: 'ok', payload: {} });
    await queue.enqueue({ type: 'bad', payload: {}, maxAttempts: 1 });
    const w = worker({ ok: async () => ({ done: true }), bad: async () => Promise.reject(new Error('no')) });
    expect(w.stats().idle).toBe(false);
    w.start();
    await waitFor(() => w.stats().idle);
    expect(w.stats()).toEqual({ claimed: 2, succeeded: 1, retried: 0, dead: 1, claimFailures: 0, idle: true });
    await queue.enqueue({ type: 'ok', payload: {} });
    await waitFor(() => w.stats().succeeded === 2 && w.stats().idle);
  });

  it('never runs more jobs at once than its concurrency', async () => {
    let active = 0;
    let peak = 0;
    const w = worker(
      {
        t: async () => {
          peak = Math.max(peak, ++active);
          await sleep(15);
          active--;
        },
      },
      { concurrency: 3 },
    );
    for (let i = 0; i < 12; i++) await queue.enqueue({ type: 't', payload: { i } });
    w.start();
    await waitFor(async () => (await queue.countByState()).succeeded === 12);
    expect(peak).toBe(3);
    expect(w.inFlight()).toBe(0);
  });

  it('runs a type with a lane of its own beside the others: neither holds the other up', async () => {
    const longGate = deferred();
    const hookGate = deferred();
    let hooks = 0;
    let peakHooks = 0;
    const claims: number[] = [];
    const counting: JobQueue = { ...queue, claim: async (owner, o) => {
      const jobs = await queue.claim(owner, o);
      if (o?.types) claims.push(jobs.length);
      return jobs;
    } };
    const w = createWorker({
      queue: counting,
      owner: 'lanes',
      pollIntervalMs: 20,
      concurrency: 1,
      lanes: { hook: 4 },
      handlers: {
        long: () => longGate.promise,
        other: async () => undefined,
        hook: async (job) => {
          peakHooks = Math.max(peakHooks, ++hooks);
          if (job.payload.held) await hookGate.promise;
          else await sleep(2);
          hooks--;
        },
      },
    });
    workers.push(w);
    // A long job fills the other lane; a burst of hooks still goes through, four at a time, in batches.
    const { job: long } = await queue.enqueue({ type: 'long', payload: {} });
    for (let i = 0; i < 12; i++) await queue.enqueue({ type: 'hook', payload: { i } });
    w.start();
    await waitFor(async () => (await store.table('jobs').count({ type: 'hook', state: 'succeeded' })) === 12);
    expect(await state(long.id)).toBe('running');
    expect(peakHooks).toBe(4);
    expect(Math.max(...claims)).toBe(4);
    longGate.resolve();
    await waitFor(async () => (await state(long.id)) === 'succeeded');
    // Hooks that hang fill their own lane only: a job of another type still runs.
    for (let i = 0; i < 6; i++) await queue.enqueue({ type: 'hook', payload: { held: true } });
    await waitFor(() => w.inFlight() === 4);
    const { job: other } = await queue.enqueue({ type: 'other', payload: {} });
    await waitFor(async () => (await state(other.id)) === 'succeeded');
    expect(await store.table('jobs').count({ type: 'hook', state: 'queued' })).toBe(2);
    hookGate.resolve();
    await waitFor(async () => (await store.table('jobs').count({ type: 'hook', state: 'succeeded' })) === 18);
    await waitFor(() => w.stats().idle);
    expect(w.stats()).toMatchObject({ claimed: 20, succeeded: 20, idle: true });
  });

  it('wakes on an enqueue without waiting for its poll', async () => {
    const w = worker({ t: async () => undefined, h: async () => undefined }, { pollIntervalMs: 60_000, lanes: { h: 2 } });
    w.start();
    await sleep(20); // its first claims found nothing; the next poll is a minute away
    for (const type of ['t', 'h', 't']) {
      const started = Date.now();
      const { job } = await queue.enqueue({ type, payload: {} });
      await waitFor(async () => (await state(job.id)) === 'succeeded', 1000);
      expect(Date.now() - started).toBeLessThan(1000);
    }
  });

  it('waits for an in-flight job on stop and claims nothing after', async () => {
    const gate = deferred();
    const w = worker({ t: () => gate.promise });
    w.start();
    const { job } = await queue.enqueue({ type: 't', payload: {} });
    await waitFor(() => w.inFlight() === 1);

    let stopped = false;
    const stopping = w.stop().then(() => (stopped = true));
    const { job: late } = await queue.enqueue({ type: 't', payload: {} });
    await sleep(50);
    expect(stopped).toBe(false);
    gate.resolve();
    await stopping;
    expect(await state(job.id)).toBe('succeeded');
    await sleep(50);
    expect(await state(late.id)).toBe('queued');
  });

  it('aborts a stuck handler when stop times out, leaving its lease to expire', async () => {
    let signal: AbortSignal | undefined;
    const w = worker({ t: (_job, ctx) => ((signal = ctx.signal), new Promise(() => undefined)) });
    w.start();
    const { job } = await queue.enqueue({ type: 't', payload: {} });
    await waitFor(() => w.inFlight() === 1);
    const started = Date.now();
    await w.stop({ timeoutMs: 50 });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(signal?.aborted).toBe(true);
    expect(await queue.get(job.id)).toMatchObject({ state: 'running', leaseOwner: w.owner });
  });

  it('keeps running after a handler throws', async () => {
    const w = worker({
      boom: async () => {
        throw new Error('kaput');
      },
      ok: async () => ({ fine: true }),
    });
    w.start();
    const { job: bad } = await queue.enqueue({ type: 'boom', payload: {}, maxAttempts: 1 });
    const { job: retried } = await queue.enqueue({ type: 'boom', payload: {} });
    await waitFor(async () => (await state(bad.id)) === 'dead');
    const { job: good } = await queue.enqueue({ type: 'ok', payload: {} });
    await waitFor(async () => (await state(good.id)) === 'succeeded');
    expect((await queue.get(bad.id))?.lastError).toMatchObject({ message: 'kaput' });
    expect(await queue.get(retried.id)).toMatchObject({ state: 'queued', attempts: 1 });
  });

  it('buries a job of an unknown type with a clear message', async () => {
    const w = worker({});
    w.start();
    const { job } = await queue.enqueue({ type: 'no.such.type', payload: {} });
    await waitFor(async () => (await state(job.id)) === 'dead');
    const dead = await queue.get(job.id);
    expect(dead?.attempts).toBe(1);
    expect(dead?.lastError).toMatchObject({ code: 'unknown_job_type', message: expect.stringContaining('no.such.type') });
  });

  it('buries a job at once when its handler throws a non-retryable HubError', async () => {
    const w = worker({
      t: async () => {
        throw new HubError('upstream_auth_failed', 'token revoked');
      },
    });
    w.start();
    const { job } = await queue.enqueue({ type: 't', payload: {} });
    await waitFor(async () => (await state(job.id)) === 'dead');
    expect((await queue.get(job.id))?.attempts).toBe(1);
  });

  it('records progress and renews the lease of a long job', async () => {
    queue = createJobQueue({ store, clock: systemClock, leaseMs: 150, groupWrites });
    const w = worker({
      t: async (_job, ctx) => {
        await ctx.progress({ step: 1 });
        await sleep(400);
        await ctx.progress({ step: 2 });
        return { ok: true };
      },
    });
    w.start();
    const { job } = await queue.enqueue({ type: 't', payload: {} });
    await sleep(350); // more than twice the lease: only renewals keep it
    expect(await queue.claim('thief')).toEqual([]);
    await waitFor(async () => (await state(job.id)) === 'succeeded');
    expect(await queue.get(job.id)).toMatchObject({ attempts: 1, progress: { step: 2 }, result: { ok: true } });
  });

  it('aborts a handler whose lease was taken away', async () => {
    queue = createJobQueue({ store, clock: systemClock, leaseMs: 60, groupWrites });
    const aborted = deferred();
    const w = worker({
      t: (_job, ctx) =>
        new Promise((_resolve, reject) =>
          ctx.signal.addEventListener('abort', () => {
            aborted.resolve();
            reject(ctx.signal.reason);
          }),
        ),
    });
    w.start();
    const { job } = await queue.enqueue({ type: 't', payload: {} });
    await waitFor(() => w.inFlight() === 1);
    // Another writer moves the row on: the next renewal finds a newer version and must give the job up.
    await store.table('jobs').update(job.id, { leaseOwner: 'someone-else' });
    await aborted.promise;
    await waitFor(() => w.inFlight() === 0);
    expect(await queue.get(job.id)).toMatchObject({ state: 'running', leaseOwner: 'someone-else' });
  });

  it('logs a failing claim and tries again after the poll interval', async () => {
    const { log, lines } = captureLog();
    let failures = 1;
    const flaky: JobQueue = {
      ...queue,
      claim: (owner, options) => {
        if (failures-- > 0) return Promise.reject(new HubError('store_unavailable'));
        return queue.claim(owner, options);
      },
    };
    const w = createWorker({ queue: flaky, handlers: { t: async () => undefined }, pollIntervalMs: 20, log });
    workers.push(w);
    const { job } = await queue.enqueue({ type: 't', payload: {} });
    w.start();
    await waitFor(async () => (await state(job.id)) === 'succeeded');
    expect(lines.some((l) => l.level === 'error' && String(l.msg).includes('claiming jobs failed'))).toBe(true);
  });

  it('hands the jobs a lane claims at once to a batched handler together, up to its batch size, each with its own outcome', async () => {
    const batches: number[][] = [];
    const handler = batchedHandler(async (jobs) => {
      batches.push(jobs.map((j) => Number(j.payload.n)));
      return jobs.map((j) => (j.payload.n === 4 ? { ok: false, error: new HubError('validation_failed', 'four is refused') } : { ok: true, result: { twice: Number(j.payload.n) * 2 } }));
    }, 3);
    const ids: string[] = [];
    for (let n = 0; n < 7; n++) ids.push((await queue.enqueue({ type: 'hook', payload: { n }, maxAttempts: 1 })).job.id);
    worker({ hook: handler }, { lanes: { hook: 8 } }).start();
    await waitFor(async () => (await Promise.all(ids.map(state))).every((s) => s === 'succeeded' || s === 'dead'));
    expect(batches).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
    expect((await queue.get(ids[5]!))?.result).toEqual({ twice: 10 });
    expect(await state(ids[4]!)).toBe('dead');
  });

  it('fails each job of a batch that throws, or that answers the wrong number of outcomes', async () => {
    let calls = 0;
    const handler = batchedHandler(async (jobs) => {
      calls++;
      if (calls === 1) throw new Error('the batch fell over');
      return jobs.slice(1).map(() => ({ ok: true, result: {} }));
    }, 10);
    const first = await Promise.all([1, 2].map((n) => queue.enqueue({ type: 'hook', payload: { n }, maxAttempts: 1 })));
    const w = worker({ hook: handler }, { lanes: { hook: 10 } });
    w.start();
    await waitFor(async () => (await Promise.all(first.map((r) => state(r.job.id)))).every((s) => s === 'dead'));
    expect((await queue.get(first[0]!.job.id))?.lastError).toMatchObject({ message: 'the batch fell over' });
    // Both in one write, so that one claim takes both.
    const second = await store.transaction((tx) => Promise.all([3, 4].map((n) => queue.enqueue({ type: 'hook', payload: { n }, maxAttempts: 1 }, tx))));
    await waitFor(async () => (await Promise.all(second.map((r) => state(r.job.id)))).every((s) => s === 'dead'));
    expect((await queue.get(second[1]!.job.id))?.lastError).toMatchObject({ message: expect.stringContaining('answered 1 outcomes for 2 jobs') });
  });
});
