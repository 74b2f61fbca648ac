// Jobs on Appwrite Functions: a worker execution drains the due jobs within a time budget, and the scheduler's cron
// tick enqueues periodic work and starts a worker execution whenever jobs wait, so a lost execution never loses a job.
import type { Hub } from '../hub.ts';
import type { Clock } from '../lib/clock.ts';
import type { Store } from '../store/types.ts';

export interface WorkerBudget {
  /** Stop claiming after this long. */
  budgetMs: number;
  /** Then wait this long for running jobs before leaving their leases to expire. */
  graceMs: number;
}

/**
 * 80% of the execution's timeout to claim and run jobs, 10% more for the last ones to finish: the execution must
 * answer before Appwrite kills it, or its outcome writes are lost (the leases would still hand the jobs on).
 * Appwrite does not tell a function its timeout, hence HUB_WORKER_TIMEOUT_SECONDS (config.workerTimeoutSeconds),
 * which must follow the `worker` timeout in appwrite.json.
 */
export function workerBudget(seconds: number): WorkerBudget {
  return { budgetMs: Math.floor(seconds * 800), graceMs: Math.floor(seconds * 100) };
}

export interface DrainReport {
  claimed: number;
  succeeded: number;
  /** Failed and queued again with backoff. */
  retried: number;
  /** Failed for good (attempts spent or not retryable). */
  dead: number;
  /** Webhook delivery attempts made after the jobs ran out. */
  deliveries: number;
  /** `idle`: nothing due was left; `budget`: time ran out; `store_failing`: claims kept failing. */
  stoppedBy: 'idle' | 'budget' | 'store_failing';
  ms: number;
}

export interface DrainOptions extends WorkerBudget {
  /** How often the idle and budget conditions are checked. */
  checkEveryMs?: number;
  now?: () => number;
}

const MAX_CLAIM_FAILURES = 5;

/**
 * Runs the hub's worker until no job is due (an empty claim made after the last job finished, with none running)
 * or the budget is spent. Give it a hub of its own: its worker can be started and stopped once.
 */
export async function drainJobs(hub: Hub, options: DrainOptions): Promise<DrainReport> {
  const now = options.now ?? Date.now;
  const started = now();
  let stoppedBy: DrainReport['stoppedBy'] = 'idle';
  hub.worker.start();
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, options.checkEveryMs ?? 25));
    const stats = hub.worker.stats();
    if (stats.idle) break;
    if (stats.claimFailures >= MAX_CLAIM_FAILURES) {
      stoppedBy = 'store_failing';
      break;
    }
    if (now() - started >= options.budgetMs) {
      stoppedBy = 'budget';
      break;
    }
  }
  await hub.worker.stop({ timeoutMs: options.graceMs });
  // Then the webhook deliveries that are due (those the jobs just created among them), pass after pass.
  let deliveries = 0;
  while (stoppedBy === 'idle') {
    if (now() - started >= options.budgetMs) {
      stoppedBy = 'budget';
      break;
    }
    const attempts = await hub.dispatcher.runOnce();
    if (attempts === 0) break;
    deliveries += attempts;
  }
  const { claimed, succeeded, retried, dead } = hub.worker.stats();
  return { claimed, succeeded, retried, dead, deliveries, stoppedBy, ms: now() - started };
}

export interface WaitingJobs {
  /** Queued jobs whose time has come (up to the limit counted). */
  due: number;
  /** Running jobs whose lease expired: their worker execution died or timed out. */
  expired: number;
  /** Webhook deliveries due, or stranded by an expired lease. */
  deliveries: number;
}

/** How many jobs and deliveries wait for a worker, counted up to `limit` each (enough to decide, cheap to ask). */
export async function countWaitingJobs(store: Store, clock: Clock, limit = 100): Promise<WaitingJobs> {
  const now = new Date(clock.now()).toISOString();
  const jobs = store.table('jobs');
  const deliveries = store.table('webhook_deliveries');
  // Due ones in their index's order, so that a backlog is counted up to `limit`, not read whole and sorted by id
  // (expired leases are few).
  const [due, expired, pending, stranded] = await Promise.all([
    jobs.query({ where: { state: 'queued', runAt: { lte: now } }, orderBy: { field: 'runAt' }, limit }),
    jobs.query({ where: { state: 'running', leaseUntil: { lt: now } }, limit }),
    deliveries.query({ where: { state: 'pending', nextAttemptAt: { lte: now } }, orderBy: { field: 'nextAttemptAt' }, limit }),
    deliveries.query({ where: { state: 'sending', nextAttemptAt: { lt: now } }, orderBy: { field: 'nextAttemptAt' }, limit }),
  ]);
  return { due: due.items.length, expired: expired.items.length, deliveries: pending.items.length + stranded.items.length };
}

export interface TickReport extends WaitingJobs {
  maintenance: { jobId: string; created: boolean };
  /** Schedules whose run was started (a job each), and those skipped because their last run was still going. */
  schedules: { started: number; skipped: number };
  /** Whether a worker execution was asked for. */
  dispatched: boolean;
}

/**
 * The scheduler's minute: enqueue the hourly maintenance (one job per hour whichever tick or retry gets there
 * first), start the runs of due file exchange schedules, then ask for a worker execution when any job or webhook delivery is due or stranded by an expired lease. Any worker
 * execution claims expired leases first, so this is what turns a lost execution into a late job, not a lost one.
 */
export async function runSchedulerTick(hub: Hub, requestWorker: (reason: string) => void): Promise<TickReport> {
  const { clock, store } = hub.deps;
  const { enqueueMaintenance } = await import('../hub.ts');
  const { job, created } = await enqueueMaintenance(hub.queue, clock);
  // Due file exchange schedules become jobs before the count, so this minute's worker execution runs them.
  const { tickSchedules } = await import('../schedules/scheduler.ts');
  const ticked = await tickSchedules({ store, queue: hub.queue, clock, log: hub.deps.log });
  const waiting = await countWaitingJobs(store, clock);
  const dispatched = waiting.due + waiting.expired + waiting.deliveries > 0;
  if (dispatched) requestWorker(waiting.expired > 0 ? 'expired_lease' : waiting.due > 0 ? 'due_jobs' : 'due_deliveries');
  return { maintenance: { jobId: job.id, created }, schedules: { started: ticked.started.length, skipped: ticked.skipped.length }, ...waiting, dispatched };
}
