import { afterEach, describe, expect, it } from 'vitest';
import { testConfig } from '../config.ts';
import { createHub, MAINTENANCE_JOB, type Hub } from '../hub.ts';
import type { JobHandler } from '../jobs/worker.ts';
import { createJobQueue } from '../jobs/queue.ts';
import { createManualClock, systemClock } from '../lib/clock.ts';
import { createSqliteStore } from '../store/sqlite.ts';
import type { Store } from '../store/types.ts';
import { countWaitingJobs, drainJobs, runSchedulerTick, workerBudget } from './jobs.ts';
import { createWorkspace } from '../bootstrap.ts';
import { appendEvent } from '../events/log.ts';
import { createCipher } from '../lib/secrets.ts';
import { createEndpoint } from '../webhooks/manage.ts';
import { spyStatements } from '../../test/helpers.ts';
import { startReceiver } from '../../test/webhook-receiver.ts';

const hubs: Hub[] = [];
afterEach(async () => {
  for (const hub of hubs.splice(0)) await hub.close(100).catch(() => undefined);
});

function hubOn(store: Store, handlers: Record<string, JobHandler> = {}, clock = systemClock): Hub {
  const config = testConfig({ workerConcurrency: 2 });
  config.webhooks.allow = ['127.0.0.1/32'];
  const hub = createHub({ config, store, encryptionKey: Buffer.alloc(32, 1), clock, handlers });
  hubs.push(hub);
  return hub;
}

const budget = { budgetMs: 5000, graceMs: 1000, checkEveryMs: 5 };

describe('drainJobs', () => {
  it('runs every due job and stops when none is left', async () => {
    const store = createSqliteStore({ path: ':memory:' });
    const seen: string[] = [];
    const hub = hubOn(store, {
      'test.ok': async (job) => void seen.push(job.id),
      'test.retry': async () => {
        throw new Error('try later');
      },
      'test.bury': async () => {
        throw Object.assign(new Error('never'), { retryable: false });
      },
    });
    for (const type of ['test.ok', 'test.ok', 'test.ok', 'test.retry', 'test.bury']) await hub.queue.enqueue({ type, payload: {} });
    const report = await drainJobs(hub, budget);
    expect(report).toMatchObject({ claimed: 5, succeeded: 3, retried: 1, dead: 1, stoppedBy: 'idle' });
    expect(seen).toHaveLength(3);
    // the retried job waits for its backoff: not due, so not counted as waiting
    expect(await countWaitingJobs(store, systemClock)).toEqual({ due: 0, expired: 0, deliveries: 0 });
  });

  it('runs jobs that jobs enqueue in the same execution', async () => {
    const store = createSqliteStore({ path: ':memory:' });
    const hub = hubOn(store, {
      'test.parent': async () => {
        await hub.queue.enqueue({ type: 'test.child', payload: {} });
      },
      'test.child': async () => undefined,
    });
    await hub.queue.enqueue({ type: 'test.parent', payload: {} });
    expect(await drainJobs(hub, budget)).toMatchObject({ claimed: 2, succeeded: 2, stoppedBy: 'idle' });
  });

  it('stops claiming when the budget is spent and leaves the rest queued', async () => {
    const store = createSqliteStore({ path: ':memory:' });
    const hub = hubOn(store, { 'test.slow': () => new Promise((resolve) => setTimeout(resolve, 60)) });
    for (let i = 0; i < 6; i++) await hub.queue.enqueue({ type: 'test.slow', payload: {} });
    const report = await drainJobs(hub, { budgetMs: 40, graceMs: 500, checkEveryMs: 5 });
    expect(report.stoppedBy).toBe('budget');
    expect(report.claimed).toBe(2); // one batch at concurrency 2, finished within the grace period
    expect(report.succeeded).toBe(2);
    expect((await countWaitingJobs(store, systemClock)).due).toBe(4);
  });

  it('counts a backlog up to its limit along the claims\' indexes, not by sorting all of it', async () => {
    const store = createSqliteStore({ path: ':memory:' });
    const queue = createJobQueue({ store, clock: systemClock });
    for (let i = 0; i < 12; i++) await queue.enqueue({ type: 'test.slow', payload: { i } });
    const reads = spyStatements(store, 'SELECT', 'all');
    expect(await countWaitingJobs(store, systemClock, 5)).toEqual({ due: 5, expired: 0, deliveries: 0 });
    const due = reads.seen.filter((r) => /"state" = \? AND "(runAt|nextAttemptAt)" <=? \?/.test(r.sql));
    expect(due).toHaveLength(3);
    for (const read of due) expect(reads.plan(read).join(' | '), read.sql).not.toMatch(/TEMP B-TREE/);
    await store.close();
  });

  it('gives up when every claim fails', async () => {
    const store = createSqliteStore({ path: ':memory:' });
    const hub = hubOn(store);
    await store.close();
    const report = await drainJobs(hub, budget);
    expect(report).toMatchObject({ claimed: 0, stoppedBy: 'store_failing' });
  });

  it('answers at once when nothing is due', async () => {
    const hub = hubOn(createSqliteStore({ path: ':memory:' }));
    const report = await drainJobs(hub, budget);
    expect(report).toMatchObject({ claimed: 0, stoppedBy: 'idle' });
    expect(report.ms).toBeLessThan(1000);
  });
});

describe('workerBudget', () => {
  it('uses 80% of the timeout to claim and 10% to finish', () => {
    expect(workerBudget(900)).toEqual({ budgetMs: 720_000, graceMs: 90_000 });
    expect(workerBudget(60)).toEqual({ budgetMs: 48_000, graceMs: 6_000 });
  });
});

describe('webhook deliveries on Appwrite', () => {
  it('are sent by the worker execution after its jobs, including those its jobs created', async () => {
    const store = createSqliteStore({ path: ':memory:' });
    const receiver = await startReceiver();
    try {
      const { workspace } = await createWorkspace(store, systemClock, { name: 'Acme', actor: 'test' });
      const now = new Date().toISOString();
      const hub = hubOn(store, {
        'test.emit': async () => void (await appendEvent(store, { type: 'stock.updated', workspaceId: workspace.id, data: {} }, new Date().toISOString())),
      });
      await createEndpoint(store, { cipher: createCipher(Buffer.alloc(32, 1)), policy: hub.deps.webhooks.policy }, workspace.id, { url: receiver.url, eventTypes: ['stock.*'] }, now);
      await appendEvent(store, { type: 'stock.updated', workspaceId: workspace.id, data: {} }, now);
      await hub.queue.enqueue({ type: 'test.emit', payload: {} });
      // The scheduler sees due work (a job and a delivery) and asks for a worker execution.
      expect(await countWaitingJobs(store, systemClock)).toMatchObject({ due: 1, deliveries: 1 });
      const report = await drainJobs(hub, budget);
      expect(report).toMatchObject({ succeeded: 1, deliveries: 2, stoppedBy: 'idle' });
      expect(receiver.received).toHaveLength(2);
      expect(await countWaitingJobs(store, systemClock)).toEqual({ due: 0, expired: 0, deliveries: 0 });
    } finally {
      await receiver.close();
    }
  });
});

describe('runSchedulerTick', () => {
  it('enqueues maintenance once an hour and asks for a worker while jobs wait', async () => {
    const store = createSqliteStore({ path: ':memory:' });
    const clock = createManualClock(Date.parse('2026-03-01T12:00:00Z'));
    const hub = hubOn(store, {}, clock);
    const asked: string[] = [];
    const first = await runSchedulerTick(hub, (reason) => asked.push(reason));
    expect(first).toMatchObject({ maintenance: { created: true }, due: 1, expired: 0, dispatched: true });
    clock.advance(60_000);
    const second = await runSchedulerTick(hub, (reason) => asked.push(reason));
    expect(second.maintenance).toEqual({ jobId: first.maintenance.jobId, created: false });
    clock.advance(3_600_000);
    const nextHour = await runSchedulerTick(hub, (reason) => asked.push(reason));
    expect(nextHour.maintenance.created).toBe(true);
    expect((await store.table('jobs').get(first.maintenance.jobId))?.type).toBe(MAINTENANCE_JOB);
    expect(asked).toEqual(['due_jobs', 'due_jobs', 'due_jobs']);
  });

  it('starts due file exchange schedules as jobs, once per slot', async () => {
    const store = createSqliteStore({ path: ':memory:' });
    const clock = createManualClock(Date.parse('2026-03-01T12:00:00Z'));
    const hub = hubOn(store, {}, clock);
    const { workspace } = await createWorkspace(store, clock, { name: 'Acme', actor: 'test' });
    const exchange = await store.table('exchanges').insert({ workspaceId: workspace.id, name: 'x', direction: 'import', file: { format: 'csv' }, mapping: null, action: 'stock.count', policy: 'reject-all', dataset: null, datasetParams: null, fileName: null, transport: { type: 'folder' }, transportSecret: null });
    const { createSchedule } = await import('../schedules/scheduler.ts');
    const schedule = await createSchedule(store, clock, workspace.id, { name: 'every 5', exchangeId: exchange.id, cron: '*/5 * * * *', timezone: 'UTC' });
    expect((await runSchedulerTick(hub, () => {})).schedules).toEqual({ started: 0, skipped: 0 });
    clock.advance(5 * 60_000);
    expect((await runSchedulerTick(hub, () => {})).schedules).toEqual({ started: 1, skipped: 0 });
    expect((await runSchedulerTick(hub, () => {})).schedules).toEqual({ started: 0, skipped: 0 });
    const jobs = (await store.table('jobs').query({ where: { type: 'exchange.run' } })).items;
    expect(jobs).toEqual([expect.objectContaining({ payload: { exchangeId: exchange.id, scheduleId: schedule.id, trigger: 'schedule' } })]);
  });

  it('asks for a worker when a lease expired, naming why', async () => {
    const store = createSqliteStore({ path: ':memory:' });
    const clock = createManualClock(Date.parse('2026-03-01T12:00:00Z'));
    const queue = createJobQueue({ store, clock, leaseMs: 30_000 });
    await queue.enqueue({ type: 'test.any', payload: {} });
    await queue.claim('an-execution-that-died');
    const hub = hubOn(store, {}, clock);
    const asked: string[] = [];
    // the hour's maintenance job is due; the claimed job's lease still runs
    expect(await runSchedulerTick(hub, (r) => asked.push(r))).toMatchObject({ due: 1, expired: 0 });
    clock.advance(31_000);
    expect(await runSchedulerTick(hub, (r) => asked.push(r))).toMatchObject({ due: 1, expired: 1, dispatched: true });
    expect(asked).toEqual(['due_jobs', 'expired_lease']);
  });
});
