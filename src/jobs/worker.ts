// The in-process worker: claims jobs from the queue up to a concurrency bound, runs their handlers, renews their
// leases while they run, and records each outcome. Delivery is at least once: handlers must be idempotent.
import { hostname } from 'node:os';
import { randomToken } from '../lib/ids.ts';
import { createSleeper } from '../lib/wake.ts';
import { silentLogger, type Logger } from '../lib/log.ts';
import type { JobsRow } from '../store/rows.generated.ts';
import { isLeaseLost, type JobQueue } from './queue.ts';

export interface JobContext {
  /** Aborted when the worker stops past its timeout or the lease is lost: stop work, another worker will retry. */
  signal: AbortSignal;
  /** Saves progress on the job row (and proves the lease is still held: it throws once it is lost). Not from inside a transaction. */
  progress(p: Record<string, unknown>): Promise<void>;
  log: Logger;
}

export type JobHandler = (job: JobsRow, ctx: JobContext) => Promise<Record<string, unknown> | void>;

/** What one job of a batch came to: its result, or the error its handler would have thrown. */
export type BatchOutcome = { ok: true; result: Record<string, unknown> | void } | { ok: false; error: unknown };

/**
 * A handler for jobs that cost less together (a burst of inbound webhooks: one transaction, each row read once).
 * The jobs a lane claims at once call it in one turn of the event loop; they are handed to `run` together, up to
 * `maxBatch` at a time, one batch after another. Each job still succeeds or fails on its own: `run` answers an
 * outcome per job, in order, and a batch that throws fails each of its jobs with that error.
 */
export function batchedHandler(run: (jobs: JobsRow[]) => Promise<BatchOutcome[]>, maxBatch: number): JobHandler {
  type Waiting = { job: JobsRow; resolve: (r: Record<string, unknown> | void) => void; reject: (e: unknown) => void };
  let gathering: Waiting[] = [];
  let queue = Promise.resolve();
  const size = Math.max(1, Math.floor(maxBatch));
  async function runBatch(batch: Waiting[]): Promise<void> {
    let outcomes: BatchOutcome[];
    try {
      outcomes = await run(batch.map((w) => w.job));
      if (outcomes.length !== batch.length) throw new Error(`A batch handler answered ${outcomes.length} outcomes for ${batch.length} jobs`);
    } catch (error) {
      outcomes = batch.map(() => ({ ok: false, error }));
    }
    batch.forEach((w, i) => {
      const o = outcomes[i]!;
      if (o.ok) w.resolve(o.result);
      else w.reject(o.error);
    });
  }
  return (job) =>
    new Promise((resolve, reject) => {
      gathering.push({ job, resolve, reject });
      if (gathering.length > 1) return;
      queueMicrotask(() => {
        const taken = gathering;
        gathering = [];
        for (let i = 0; i < taken.length; i += size) {
          const batch = taken.slice(i, i + size);
          queue = queue.then(() => runBatch(batch));
        }
      });
    });
}

export interface WorkerOptions {
  queue: JobQueue;
  handlers: Record<string, JobHandler>;
  /** The lease owner name (≤ 64 characters); default host, pid and a random suffix. */
  owner?: string;
  /** Jobs run at once, of the types without a lane of their own. */
  concurrency?: number;
  /**
   * Job types with slots of their own (type → how many run at once), claimed in batches of that size: a burst of
   * short jobs (inbound webhooks) neither waits behind long ones (imports) nor keeps them from running.
   */
  lanes?: Record<string, number>;
  /** How long to sleep when there is no work (an enqueue in this process wakes the worker sooner). */
  pollIntervalMs?: number;
  /** Default a third of the queue's lease, so that two renewals can fail before the lease runs out. */
  renewEveryMs?: number;
  log?: Logger;
}

export interface Worker {
  readonly owner: string;
  start(): void;
  /** Stops claiming at once, waits for running jobs up to timeoutMs, then aborts their signals and returns. */
  stop(options?: { timeoutMs?: number }): Promise<void>;
  /** Claims now instead of at the end of the current poll interval. */
  wake(): void;
  inFlight(): number;
  /** What this worker has done since it started (an Appwrite worker execution reports it, and stops when idle). */
  stats(): WorkerStats;
}

export interface WorkerStats {
  claimed: number;
  succeeded: number;
  /** Failed and queued again with backoff. */
  retried: number;
  /** Failed for good. */
  dead: number;
  /** Claims that failed in a row (the store is failing); reset by a successful claim. */
  claimFailures: number;
  /** Nothing runs, and a claim made after the last recorded outcome found nothing due. */
  idle: boolean;
}

interface Lane {
  types?: string[];
  excludeTypes?: string[];
  concurrency: number;
  running: number;
  /** When a claim last found nothing (ms), until something may have changed: the lane waits for a poke or a poll. */
  emptyAt: number | null;
  poked: boolean;
}

const takes = (lane: Lane, type: string) => (lane.types ? lane.types.includes(type) : !lane.excludeTypes?.includes(type));

interface Running {
  /** The latest row of the lease: every write returns a new version, and the next write must name it. */
  row: JobsRow;
  controller: AbortController;
  /** Lease writes of one job run one after another, else a renewal and a progress write conflict with each other. */
  chain: Promise<unknown>;
  renewTimer: ReturnType<typeof setInterval>;
  /** Set when stop() gave up on it: its outcome is no longer written and its lease is left to expire. */
  abandoned: boolean;
  done: Promise<void>;
}

function defaultOwner(): string {
  return `${hostname().slice(0, 40)}:${process.pid}:${randomToken(6)}`.slice(0, 64);
}

function unknownType(type: string): Error {
  // Not retryable: no retry makes a handler appear, and a dead job with this message is what an operator needs.
  return Object.assign(new Error(`No handler is registered for job type "${type}"`), {
    code: 'unknown_job_type',
    retryable: false,
  });
}

export function createWorker(options: WorkerOptions): Worker {
  const { queue, handlers } = options;
  const owner = options.owner ?? defaultOwner();
  const concurrency = Math.max(1, Math.floor(options.concurrency ?? 4));
  const laneTypes = Object.keys(options.lanes ?? {});
  const lanes: Lane[] = [
    { excludeTypes: laneTypes.length ? laneTypes : undefined, concurrency, running: 0, emptyAt: null, poked: true },
    ...Object.entries(options.lanes ?? {}).map(([type, n]) => ({ types: [type], concurrency: Math.max(1, Math.floor(n)), running: 0, emptyAt: null, poked: true })),
  ];
  const pollIntervalMs = options.pollIntervalMs ?? 500;
  const renewEveryMs = options.renewEveryMs ?? Math.max(10, Math.floor(queue.leaseMs / 3));
  const log = (options.log ?? silentLogger).child({ worker: owner });
  const running = new Map<string, Running>();

  let started = false;
  let stopping = false;
  let loop: Promise<void> | null = null;
  let stopped: Promise<void> | null = null;
  let unsubscribe: (() => void) | null = null;
  const sleeper = createSleeper();
  // Counters, and a sequence that orders claims and outcomes so "idle" means an empty claim after the last outcome.
  const counts = { claimed: 0, succeeded: 0, retried: 0, dead: 0, claimFailures: 0 };
  let sequence = 0;
  let lastEmptyClaim = -1;
  let lastOutcome = 0;

  /** Something changed for these lanes (all by default): they claim on the next pass, not after a poll interval. */
  const poke = (matching: (lane: Lane) => boolean = () => true) => {
    for (const lane of lanes) if (matching(lane)) lane.poked = true;
    sleeper.wake();
  };
  const wake = () => poke();
  const sleep = (ms: number) => sleeper.sleep(ms, () => stopping);

  function serial<T>(entry: Running, op: () => Promise<T>): Promise<T> {
    const result = entry.chain.then(op);
    entry.chain = result.catch(() => undefined);
    return result;
  }

  function onLeaseLost(entry: Running, err: unknown): void {
    if (!entry.controller.signal.aborted) {
      log.warn('job lease lost; aborting its handler', { jobId: entry.row.id, err });
      entry.controller.abort(err);
    }
    clearInterval(entry.renewTimer);
  }

  async function execute(entry: Running, jobLog: Logger): Promise<void> {
    const job = entry.row;
    const handler = Object.hasOwn(handlers, job.type) ? handlers[job.type] : undefined;
    let outcome: { ok: true; result: unknown } | { ok: false; error: unknown };
    if (!handler) outcome = { ok: false, error: unknownType(job.type) };
    else {
      const ctx: JobContext = {
        signal: entry.controller.signal,
        log: jobLog,
        progress: async (p) => {
          // After stop() gave up, the store may be closing: the handler hears of it through its signal instead.
          if (entry.abandoned) throw entry.controller.signal.reason;
          await serial(entry, async () => {
            entry.row = await queue.setProgress(entry.row, p);
          });
        },
      };
      try {
        outcome = { ok: true, result: await handler(job, ctx) };
      } catch (error) {
        outcome = { ok: false, error };
      }
    }
    clearInterval(entry.renewTimer);
    if (entry.abandoned) {
      jobLog.info('job finished after the worker stopped; its lease is left to expire', { ok: outcome.ok });
      return;
    }
    try {
      if (outcome.ok) {
        await serial(entry, () => queue.complete(entry.row, outcome.result));
        counts.succeeded++;
        lastOutcome = ++sequence;
        jobLog.debug('job succeeded');
      } else {
        const after = await serial(entry, () => queue.fail(entry.row, outcome.error));
        if (after.state === 'dead') counts.dead++;
        else counts.retried++;
        lastOutcome = ++sequence;
        jobLog.warn(after.state === 'dead' ? 'job failed for good' : 'job failed; will retry', {
          err: outcome.error,
          state: after.state,
          runAt: after.runAt,
        });
      }
    } catch (err) {
      // The lease was lost (another worker reclaimed it) or the store is down: either way the job's row is not
      // ours to write now, and lease expiry hands it to a worker again.
      if (isLeaseLost(err)) jobLog.warn('job outcome not recorded: the lease was lost', { ok: outcome.ok });
      else jobLog.error('job outcome not recorded', { err, ok: outcome.ok });
    }
  }

  function run(job: JobsRow, lane: Lane): void {
    const jobLog = log.child({ jobId: job.id, type: job.type, attempt: job.attempts });
    const entry: Running = {
      row: job,
      controller: new AbortController(),
      chain: Promise.resolve(),
      renewTimer: setInterval(() => {
        serial(entry, async () => {
          entry.row = await queue.renewLease(entry.row);
        }).catch((err) => {
          if (isLeaseLost(err)) onLeaseLost(entry, err);
          else jobLog.warn('lease renewal failed; will try again', { err });
        });
      }, renewEveryMs),
      abandoned: false,
      done: Promise.resolve(),
    };
    running.set(job.id, entry);
    lane.running++;
    entry.done = execute(entry, jobLog)
      .catch((err) => jobLog.error('job runner failed', { err }))
      .finally(() => {
        clearInterval(entry.renewTimer);
        running.delete(job.id);
        lane.running--;
        // A slot is free: claim the next job now rather than at the end of the poll interval.
        poke((l) => l === lane);
      });
  }

  async function runLoop(): Promise<void> {
    while (!stopping) {
      sleeper.reset();
      let delay = pollIntervalMs;
      const claimedAt = ++sequence;
      let foundNone = true;
      for (const lane of lanes) {
        if (stopping) break;
        const free = lane.concurrency - lane.running;
        if (free <= 0) {
          foundNone = false;
          continue;
        }
        // A lane found empty is not asked again on every other lane's wake-up: only when poked, or a poll later
        // (less a little, as a timer may fire a fraction of a millisecond early by this clock).
        if (!lane.poked && lane.emptyAt !== null && performance.now() - lane.emptyAt < pollIntervalMs - 2) continue;
        lane.poked = false;
        try {
          const jobs = await queue.claim(owner, { limit: free, types: lane.types, excludeTypes: lane.excludeTypes });
          counts.claimFailures = 0;
          counts.claimed += jobs.length;
          lane.emptyAt = jobs.length === 0 ? performance.now() : null;
          if (jobs.length > 0) foundNone = false;
          // Jobs claimed while stop() was called are still run: they are leased to us, and stop() waits for them.
          for (const job of jobs) run(job, lane);
          // A full batch suggests more is due: go again at once.
          if (jobs.length === free) delay = 0;
        } catch (err) {
          foundNone = false;
          counts.claimFailures++;
          log.error('claiming jobs failed; will retry after the poll interval', { err });
        }
      }
      // Idle means every lane looked and found nothing due.
      if (foundNone) lastEmptyClaim = claimedAt;
      // With no free slot, the next wake comes from a finishing job; the poll interval is only a backstop.
      if (delay > 0 && !stopping) await sleep(delay);
      else await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  async function drain(timeoutMs: number): Promise<void> {
    stopping = true;
    unsubscribe?.();
    sleeper.wake();
    await loop;
    const pending = [...running.values()];
    if (pending.length === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      Promise.all(pending.map((e) => e.done)).then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (!timedOut) return;
    for (const entry of running.values()) {
      entry.abandoned = true;
      // Renewing would keep the lease of a stuck handler alive for ever; stopping it lets another worker reclaim.
      clearInterval(entry.renewTimer);
      entry.controller.abort(new Error('The worker stopped before the job finished'));
    }
    log.warn('worker stopped with jobs still running; their leases will expire', { jobs: [...running.keys()] });
  }

  return {
    owner,

    start() {
      if (started) return;
      started = true;
      unsubscribe = queue.onEnqueue((job) => poke((lane) => takes(lane, job.type)));
      loop = runLoop();
      log.info('worker started', { concurrency, pollIntervalMs });
    },

    stop({ timeoutMs = 30_000 } = {}) {
      // A second call waits for the first rather than returning before the jobs are settled.
      stopped ??= drain(timeoutMs);
      return stopped;
    },

    wake,

    inFlight() {
      return running.size;
    },

    stats() {
      return { ...counts, idle: running.size === 0 && lastEmptyClaim > lastOutcome };
    },
  };
}
