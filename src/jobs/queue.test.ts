import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HubError, isHubError } from '../errors.ts';
import { createManualClock } from '../lib/clock.ts';
import { createSqliteStore, type SqliteStore } from '../store/sqlite.ts';
import { spyStatements } from '../../test/helpers.ts';
import { createJobQueue, isLeaseLost, type JobQueue } from './queue.ts';

const LEASE = 30_000;

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection, but it succeeded');
}

// Both ways of writing: one statement per claim and outcome (Appwrite), or transactions that commit together (SQLite).
describe.each([false, true])('job queue (groupWrites: %s)', (groupWrites) => {
  let clock: ReturnType<typeof createManualClock>;
  let store: SqliteStore;
  let queue: JobQueue;

  beforeEach(() => {
    clock = createManualClock();
    store = createSqliteStore({ path: ':memory:', clock });
    // random() = 1 makes each backoff its cap, so the tests can name exact times.
    queue = createJobQueue({ store, clock, leaseMs: LEASE, retry: { baseMs: 1000, maxMs: 60_000 }, random: () => 1, groupWrites });
  });
  afterEach(async () => {
    await store.close();
  });

  const iso = (offsetMs = 0) => new Date(clock.now() + offsetMs).toISOString();

  it('enqueues, claims and completes a job', async () => {
    const { job, created } = await queue.enqueue({ type: 'sync.orders', payload: { since: 1 }, workspaceId: 'ws_1', correlationId: 'c1' });
    expect(created).toBe(true);
    expect(job).toMatchObject({ state: 'queued', attempts: 0, maxAttempts: 10, runAt: iso(), correlationId: 'c1' });

    const [claimed, ...rest] = await queue.claim('w1');
    expect(rest).toEqual([]);
    expect(claimed).toMatchObject({ id: job.id, state: 'running', leaseOwner: 'w1', leaseUntil: iso(LEASE), attempts: 1 });
    expect(await queue.claim('w2')).toEqual([]);

    const done = await queue.complete(claimed!, { imported: 3 });
    expect(done).toMatchObject({ state: 'succeeded', result: { imported: 3 }, finishedAt: iso(), leaseOwner: null, leaseUntil: null });
    expect(await queue.countByState()).toEqual({ queued: 0, running: 0, succeeded: 1, dead: 0, cancelled: 0 });
  });

  it('claims due jobs in runAt order and leaves future ones', async () => {
    const later = await queue.enqueue({ type: 't', payload: {}, runAt: iso(-1000) });
    const sooner = await queue.enqueue({ type: 't', payload: {}, runAt: new Date(clock.now() - 5000) });
    await queue.enqueue({ type: 't', payload: {}, runAt: iso(60_000) });
    const claimed = await queue.claim('w1', { limit: 10 });
    expect(claimed.map((j) => j.id)).toEqual([sooner.job.id, later.job.id]);
  });

  it('claims jobs due at the same time in id order, reading only what it takes, however many share the time', async () => {
    const runAt = iso(-1000);
    const jobs = [];
    for (let i = 0; i < 30; i++) jobs.push((await queue.enqueue({ type: 't', payload: { i }, runAt })).job.id);
    const reads = spyStatements(store, 'SELECT * FROM "jobs"', 'all');
    expect((await queue.claim('w1', { limit: 4 })).map((j) => j.id)).toEqual(jobs.slice(0, 4));
    // In the (state, runAt, id) index's order: a claim stops at what it fetches, rather than sort every job due.
    // (Expired leases are few, and sorted: the (state, leaseUntil) index finds them.)
    const due = reads.seen.filter((read) => read.sql.includes('"state" = ? AND "runAt" <= ?'));
    expect(due).toHaveLength(1);
    expect(reads.plan(due[0]!).join(' | ')).toMatch(/^SEARCH jobs USING INDEX jobs__state__runAt__id \(state=\? AND runAt<\?\)$/);
  });

  it('claims only the requested types', async () => {
    await queue.enqueue({ type: 'a', payload: {} });
    const b = await queue.enqueue({ type: 'b', payload: {} });
    expect((await queue.claim('w1', { limit: 5, types: ['b'] })).map((j) => j.id)).toEqual([b.job.id]);
  });

  it('claims every type but the excluded ones', async () => {
    await queue.enqueue({ type: 'a', payload: {} });
    const b = await queue.enqueue({ type: 'b', payload: {} });
    await queue.enqueue({ type: 'c', payload: {} });
    expect((await queue.claim('w1', { limit: 5, excludeTypes: ['a', 'c'] })).map((j) => j.id)).toEqual([b.job.id]);
    expect(await queue.claim('w1', { limit: 5, excludeTypes: ['a', 'c'] })).toEqual([]);
    expect(await queue.claim('w1', { limit: 5, types: ['a', 'c'], excludeTypes: ['a'] })).toHaveLength(1);
  });

  it('returns the existing job for a dedupe key it has seen', async () => {
    const first = await queue.enqueue({ type: 't', payload: { n: 1 }, dedupeKey: 'order:42' });
    const second = await queue.enqueue({ type: 't', payload: { n: 2 }, dedupeKey: 'order:42' });
    expect(second.created).toBe(false);
    expect(second.job).toEqual(first.job);
    expect(await store.table('jobs').count()).toBe(1);
  });

  it('deduplicates inside a transaction too, and the transaction still commits', async () => {
    const first = await queue.enqueue({ type: 't', payload: {}, dedupeKey: 'k' });
    const inTx = await store.transaction(async (tx) => {
      await queue.enqueue({ type: 'other', payload: {} }, tx);
      return queue.enqueue({ type: 't', payload: {}, dedupeKey: 'k' }, tx);
    });
    expect(inTx).toEqual({ job: first.job, created: false });
    expect(await store.table('jobs').count()).toBe(2);
  });

  it('writes no job when the transaction that enqueued it throws', async () => {
    const err = await rejection(
      store.transaction(async (tx) => {
        await queue.enqueue({ type: 't', payload: {} }, tx);
        throw new Error('the causing change failed');
      }),
    );
    expect(String(err)).toContain('the causing change failed');
    expect(await store.table('jobs').count()).toBe(0);
    expect(await queue.claim('w1')).toEqual([]);
  });

  it('tells listeners about new jobs but not about deduplicated ones', async () => {
    const seen: string[] = [];
    const off = queue.onEnqueue((job) => seen.push(job.id));
    const { job } = await queue.enqueue({ type: 't', payload: {}, dedupeKey: 'd' });
    await queue.enqueue({ type: 't', payload: {}, dedupeKey: 'd' });
    off();
    await queue.enqueue({ type: 't', payload: {} });
    expect(seen).toEqual([job.id]);
  });

  it('refuses a runAt that is not a time', async () => {
    expect(isHubError(await rejection(queue.enqueue({ type: 't', payload: {}, runAt: 'soon' })), 'validation_failed')).toBe(true);
  });

  it('retries a failed job with growing backoff and not before its runAt', async () => {
    await queue.enqueue({ type: 't', payload: {} });
    let [job] = await queue.claim('w1');
    const retried = await queue.fail(job!, new Error('upstream hiccup'));
    expect(retried).toMatchObject({ state: 'queued', runAt: iso(1000), leaseOwner: null, leaseUntil: null });
    expect(retried.lastError).toEqual({ code: 'handler_failed', message: 'upstream hiccup', attempt: 1, at: iso() });

    clock.advance(999);
    expect(await queue.claim('w1')).toEqual([]);
    clock.advance(1);
    [job] = await queue.claim('w1');
    expect(job?.attempts).toBe(2);
    expect((await queue.fail(job!, new HubError('upstream_timeout'))).runAt).toBe(iso(2000));
  });

  it('waits at least as long as the error asks', async () => {
    await queue.enqueue({ type: 't', payload: {} });
    const [job] = await queue.claim('w1');
    const err = new HubError('upstream_rate_limited', 'slow down', { extra: { retryAfterMs: 45_000 } });
    const retried = await queue.fail(job!, err);
    expect(retried.runAt).toBe(iso(45_000));
    expect(retried.lastError).toMatchObject({ code: 'upstream_rate_limited' });
  });

  it('buries a job after its last attempt', async () => {
    await queue.enqueue({ type: 't', payload: {}, maxAttempts: 2 });
    let [job] = await queue.claim('w1');
    await queue.fail(job!, new Error('one'));
    clock.advance(1000);
    [job] = await queue.claim('w1');
    const dead = await queue.fail(job!, new Error('two'));
    expect(dead).toMatchObject({ state: 'dead', attempts: 2, finishedAt: iso(), leaseOwner: null });
    expect(dead.lastError).toMatchObject({ message: 'two', attempt: 2 });
    clock.advance(3_600_000);
    expect(await queue.claim('w1')).toEqual([]);
  });

  it('buries a job at once on a non-retryable HubError', async () => {
    await queue.enqueue({ type: 't', payload: {} });
    const [job] = await queue.claim('w1');
    const dead = await queue.fail(job!, new HubError('upstream_rejected', 'SKU unknown'));
    expect(dead).toMatchObject({ state: 'dead', attempts: 1 });
    expect(dead.lastError).toMatchObject({ code: 'upstream_rejected', message: 'SKU unknown' });
  });

  it('lets another owner reclaim a job whose lease expired, and the first owner loses it', async () => {
    await queue.enqueue({ type: 't', payload: {} });
    const [first] = await queue.claim('w1');
    clock.advance(LEASE - 1);
    expect(await queue.claim('w2')).toEqual([]);
    clock.advance(2);
    const [second] = await queue.claim('w2');
    expect(second).toMatchObject({ id: first!.id, leaseOwner: 'w2', attempts: 2 });
    expect(second?.lastError).toMatchObject({ code: 'lease_expired', attempt: 1 });

    expect(isLeaseLost(await rejection(queue.complete(first!)))).toBe(true);
    expect(isLeaseLost(await rejection(queue.renewLease(first!)))).toBe(true);
    expect(isLeaseLost(await rejection(queue.fail(first!, new Error('late'))))).toBe(true);
    expect((await queue.complete(second!)).state).toBe('succeeded');
  });

  it('buries a reclaimed job whose attempts are spent', async () => {
    await queue.enqueue({ type: 't', payload: {}, maxAttempts: 1 });
    await queue.claim('w1');
    clock.advance(LEASE + 1);
    expect(await queue.claim('w2')).toEqual([]);
    const [dead] = (await store.table('jobs').query()).items;
    expect(dead).toMatchObject({ state: 'dead', attempts: 1, leaseOwner: null });
    expect(String(dead?.lastError?.message)).toMatch(/lease of w1 expired/);
  });

  it('keeps a renewed lease and records progress', async () => {
    await queue.enqueue({ type: 't', payload: {} });
    let [job] = await queue.claim('w1');
    clock.advance(LEASE - 1000);
    job = await queue.renewLease(job!);
    expect(job.leaseUntil).toBe(iso(LEASE));
    job = await queue.setProgress(job, { done: 5, of: 10 });
    clock.advance(2000);
    expect(await queue.claim('w2')).toEqual([]);
    expect(await queue.complete(job)).toMatchObject({ state: 'succeeded', progress: { done: 5, of: 10 } });
  });

  it('refuses a write with a stale row of its own lease', async () => {
    await queue.enqueue({ type: 't', payload: {} });
    const [job] = await queue.claim('w1');
    await queue.renewLease(job!);
    expect(isLeaseLost(await rejection(queue.complete(job!)))).toBe(true);
  });

  it('cancels a queued job but not a running one', async () => {
    const a = await queue.enqueue({ type: 't', payload: {} });
    const b = await queue.enqueue({ type: 't', payload: {}, runAt: iso(1) });
    expect((await queue.cancel(b.job.id)).state).toBe('cancelled');
    expect((await queue.cancel(b.job.id)).state).toBe('cancelled');
    await queue.claim('w1');
    expect(isHubError(await rejection(queue.cancel(a.job.id)), 'conflict')).toBe(true);
    expect(isHubError(await rejection(queue.cancel('job_missing')), 'not_found')).toBe(true);
    clock.advance(10);
    expect(await queue.claim('w1')).toEqual([]);
    expect(await queue.countByState()).toMatchObject({ running: 1, cancelled: 1 });
  });
});

describe.each([false, true])('job queue across two store instances on one SQLite file (groupWrites: %s)', (groupWrites) => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hub-jobs-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('never lets two workers claim the same job', async () => {
    const clock = createManualClock();
    const path = join(dir, 'hub.db');
    const stores = [createSqliteStore({ path, clock }), createSqliteStore({ path, clock })];
    const queues = stores.map((store) => createJobQueue({ store, clock, groupWrites }));
    const total = 120;
    for (let i = 0; i < total; i++) await queues[i % 2]!.enqueue({ type: 't', payload: { i } });

    const claims = new Map<string, string[]>();
    const drain = async (queue: JobQueue, owner: string) => {
      for (;;) {
        const jobs = await queue.claim(owner, { limit: 3 });
        if (jobs.length === 0 && (await queue.countByState()).queued === 0) return;
        for (const job of jobs) claims.set(job.id, [...(claims.get(job.id) ?? []), owner]);
      }
    };
    await Promise.all([drain(queues[0]!, 'a1'), drain(queues[1]!, 'b1'), drain(queues[0]!, 'a2'), drain(queues[1]!, 'b2')]);

    expect(claims.size).toBe(total);
    expect([...claims.values()].filter((owners) => owners.length !== 1)).toEqual([]);
    // Both instances did some of the work, or the test proved nothing about contention.
    const owners = new Set([...claims.values()].flat());
    expect(owners.has('a1') || owners.has('a2')).toBe(true);
    expect(owners.has('b1') || owners.has('b2')).toBe(true);
    expect(await stores[1]!.table('jobs').count({ state: 'running', attempts: 1 })).toBe(total);
    await Promise.all(stores.map((s) => s.close()));
  });
});
