// The durable job queue: jobs are rows in the `jobs` table, claimed with a lease through optimistic versioning, so
// the same code runs on any Store backend and any number of workers in any number of processes.
import { HubError, isHubError } from '../errors.ts';
import type { Clock } from '../lib/clock.ts';
import { silentLogger, type Logger } from '../lib/log.ts';
import type { JobsRow } from '../store/rows.generated.ts';
import type { Db, FieldOps, RowPatch, Store, Where } from '../store/types.ts';
import { backoffDelay, retryAfterOf, type BackoffOptions } from '../lib/backoff.ts';

export type JobState = JobsRow['state'];
export const JOB_STATES: readonly JobState[] = ['queued', 'running', 'succeeded', 'dead', 'cancelled'];

export interface EnqueueInput {
  /** The job's id, when the caller must know it before the write (to point another row at it). */
  id?: string;
  type: string;
  payload: Record<string, unknown>;
  workspaceId?: string | null;
  /** Not before this time; default now. */
  runAt?: string | Date;
  /** A second enqueue with the same key returns the first job (for the life of its row, whatever its state). */
  dedupeKey?: string | null;
  /** 1..100, default 10. */
  maxAttempts?: number;
  correlationId?: string | null;
}

export interface EnqueueResult {
  job: JobsRow;
  created: boolean;
}

export interface ClaimOptions {
  /** 1..1000, default 1. */
  limit?: number;
  /** Only these job types. */
  types?: string[];
  /** None of these job types (a worker's other lanes take them). */
  excludeTypes?: string[];
}

export type EnqueueListener = (job: JobsRow) => void;

export interface JobQueue {
  readonly leaseMs: number;
  /** Pass a transaction's `Db` to write the job together with the change that caused it. */
  enqueue(input: EnqueueInput, db?: Db): Promise<EnqueueResult>;
  /** Leases up to `limit` due jobs to `owner`; expired leases first, then queued jobs by runAt. */
  claim(owner: string, options?: ClaimOptions): Promise<JobsRow[]>;
  /** The methods below take the latest row this lease returned; they throw a lease-lost error (see isLeaseLost). */
  complete(job: JobsRow, result?: unknown): Promise<JobsRow>;
  /** Retries with backoff, or buries the job when the error is not retryable or attempts are spent. */
  fail(job: JobsRow, error: unknown): Promise<JobsRow>;
  renewLease(job: JobsRow): Promise<JobsRow>;
  setProgress(job: JobsRow, progress: Record<string, unknown>): Promise<JobsRow>;
  /** Cancels a queued job; a cancelled one is returned as is; any other state is a `conflict`. */
  cancel(id: string): Promise<JobsRow>;
  /** Puts a dead or cancelled job back in the queue with a fresh set of attempts (an operator's "try again"). */
  retry(id: string): Promise<JobsRow>;
  get(id: string): Promise<JobsRow | null>;
  countByState(): Promise<Record<JobState, number>>;
  /** Called after each new job is inserted (in this process only); returns the unsubscribe function. */
  onEnqueue(listener: EnqueueListener): () => void;
}

export interface JobQueueOptions {
  store: Store;
  clock: Clock;
  log?: Logger;
  /** How long a claim holds a job before another worker may take it over. Default 30 s. */
  leaseMs?: number;
  retry?: BackoffOptions;
  /** For backoff jitter; tests inject a fixed one. */
  random?: () => number;
  /**
   * Writes claims and outcomes in transactions: on a store that commits the transactions that queue up together
   * (SQLite), a claim of many jobs, and the outcomes of jobs that finish together, then cost one commit instead of one
   * each. Leave it off where a transaction costs extra round trips (Appwrite).
   */
  groupWrites?: boolean;
}

const DEFAULT_MAX_ATTEMPTS = 10;
const MAX_OWNER_LENGTH = 64;
const MAX_ERROR_MESSAGE = 2000;

/** True for the error the queue throws when a job is no longer leased by the caller (another worker has it). */
export function isLeaseLost(err: unknown): err is HubError {
  return isHubError(err, 'conflict') && err.extra?.reason === 'lease_lost';
}

function leaseLost(job: JobsRow, cause?: unknown): HubError {
  return new HubError('conflict', `Job ${job.id} is no longer leased by ${job.leaseOwner ?? 'this worker'}`, {
    extra: { reason: 'lease_lost', jobId: job.id },
    cause,
  });
}

function toIso(value: string | Date, field: string): string {
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) {
    throw new HubError('validation_failed', `${field} is not a valid time`, {
      errors: [{ field: `/${field}`, code: 'format', message: 'is not a valid date-time' }],
    });
  }
  // Normalised to toISOString() so that the store's string comparisons on runAt and leaseUntil order by time.
  return d.toISOString();
}

/** What a failure leaves in `lastError`: a stable code and a bounded message, never a stack. */
function describeError(err: unknown): { code: string; message: string } {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return {
      code: typeof code === 'string' && code ? code : 'handler_failed',
      message: err.message.slice(0, MAX_ERROR_MESSAGE),
    };
  }
  return { code: 'handler_failed', message: String(err).slice(0, MAX_ERROR_MESSAGE) };
}

function isRetryable(err: unknown): boolean {
  if (err instanceof HubError) return err.retryable;
  // Plain errors are retryable unless they say otherwise: a transient failure must not bury a job.
  return !(typeof err === 'object' && err !== null && (err as { retryable?: unknown }).retryable === false);
}

function asResult(result: unknown): Record<string, unknown> | null {
  if (result === undefined || result === null) return null;
  if (typeof result === 'object' && !Array.isArray(result)) return result as Record<string, unknown>;
  // The column holds an object: wrap anything else rather than fail a job whose work is already done.
  return { value: result };
}

export function createJobQueue(options: JobQueueOptions): JobQueue {
  const { store, clock } = options;
  const log = options.log ?? silentLogger;
  const leaseMs = options.leaseMs ?? 30_000;
  const retry = options.retry ?? {};
  const random = options.random ?? Math.random;
  const listeners = new Set<EnqueueListener>();
  const jobs = (db: Db = store) => db.table('jobs');
  const write = <T>(fn: (db: Db) => Promise<T>): Promise<T> => (options.groupWrites ? store.transaction(fn) : fn(store));
  const nowIso = () => new Date(clock.now()).toISOString();
  const inMs = (ms: number) => new Date(clock.now() + ms).toISOString();

  function notify(job: JobsRow): void {
    // The wake-up is a hint: a listener's failure must not fail the enqueue, whose row is already written.
    for (const listener of listeners) {
      try {
        listener(job);
      } catch (err) {
        log.warn('job enqueue listener failed', { err, jobId: job.id });
      }
    }
  }

  /** Writes to a job only while its lease is the one the caller holds: the version proves nobody else wrote since. */
  async function updateLeased(job: JobsRow, patch: RowPatch<JobsRow>): Promise<JobsRow> {
    if (job.state !== 'running' || !job.leaseOwner) throw leaseLost(job);
    try {
      return await write((db) => jobs(db).updateFrom(job, patch));
    } catch (err) {
      if (isHubError(err, 'version_conflict') || isHubError(err, 'not_found')) throw leaseLost(job, err);
      throw err;
    }
  }

  /** Claims one candidate; null when another worker got there first or the job was buried instead. */
  async function claimOne(db: Db, owner: string, candidate: JobsRow): Promise<JobsRow | null> {
    const at = nowIso();
    const expired = candidate.state === 'running';
    const lostLease = {
      code: 'lease_expired',
      message: `The lease of ${candidate.leaseOwner ?? 'a worker'} expired before the job finished`,
      attempt: candidate.attempts,
      at,
    };
    try {
      if (expired && candidate.attempts >= candidate.maxAttempts) {
        await jobs(db).updateFrom(candidate, { state: 'dead', finishedAt: at, leaseOwner: null, leaseUntil: null, lastError: lostLease });
        log.warn('job dead: lease expired on its last attempt', { jobId: candidate.id, type: candidate.type });
        return null;
      }
      const patch: RowPatch<JobsRow> = {
        state: 'running',
        leaseOwner: owner,
        leaseUntil: inMs(leaseMs),
        attempts: candidate.attempts + 1,
      };
      if (expired) patch.lastError = lostLease;
      return await jobs(db).updateFrom(candidate, patch);
    } catch (err) {
      if (isHubError(err, 'version_conflict') || isHubError(err, 'not_found')) return null;
      throw err;
    }
  }

  return {
    leaseMs,

    async enqueue(input, db = store) {
      const row = {
        ...(input.id ? { id: input.id } : {}),
        type: input.type,
        payload: input.payload,
        workspaceId: input.workspaceId ?? null,
        state: 'queued' as const,
        runAt: input.runAt === undefined ? nowIso() : toIso(input.runAt, 'runAt'),
        attempts: 0,
        maxAttempts: input.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
        dedupeKey: input.dedupeKey ?? null,
        correlationId: input.correlationId ?? null,
      };
      let job: JobsRow;
      try {
        job = await jobs(db).insert(row);
      } catch (err) {
        if (!row.dedupeKey || !isHubError(err, 'already_exists')) throw err;
        // On SQLite a failed statement leaves an open transaction usable, so this read joins it.
        const { items } = await jobs(db).query({ where: { dedupeKey: row.dedupeKey }, limit: 1 });
        if (!items[0]) throw err;
        return { job: items[0], created: false };
      }
      // Inside a transaction this fires before the commit; a worker that wakes too early finds the row on its
      // next poll (on the same SQLite connection its claim waits for the commit anyway; a worker on another thread is
      // woken after it, by afterCommit in worker-host.ts).
      notify(job);
      return { job, created: true };
    },

    async claim(owner, { limit = 1, types, excludeTypes } = {}) {
      if (!owner || owner.length > MAX_OWNER_LENGTH) {
        throw new HubError('validation_failed', `A lease owner is 1 to ${MAX_OWNER_LENGTH} characters`);
      }
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
        throw new HubError('validation_failed', 'The claim limit must be an integer from 1 to 1000');
      }
      const now = nowIso();
      const type: FieldOps = {};
      if (types) type.in = types;
      if (excludeTypes?.length) type.notIn = excludeTypes;
      const typeFilter: Where = Object.keys(type).length ? { type } : {};
      // Fetch more than needed: candidates another worker wins are skipped and the next ones taken instead.
      const fetch = Math.min(1000, limit * 2 + 8);
      const orderBy = { field: 'runAt', direction: 'asc' as const };
      // Most claims on a busy embedded hub find nothing (every lane is woken by each new job; a lane asks again when a
      // job of it ends). Two reads outside a transaction answer those without taking the write lock, which on SQLite
      // is also the write gate the other thread waits for: in bench/webhooks' end-to-end run the worker's thread
      // committed 565 transactions per 10,000 webhooks instead of 858-915.
      if (options.groupWrites) {
        const expiredAny = await jobs().exists({ ...typeFilter, state: 'running', leaseUntil: { lt: now } });
        if (!expiredAny && !(await jobs().exists({ ...typeFilter, state: 'queued', runAt: { lte: now } }))) return [];
      }
      return write(async (db) => {
        // Expired leases first: their jobs have waited longest, and a crashed worker's work should resume soonest.
        const expired = await jobs(db).query({
          where: { ...typeFilter, state: 'running', leaseUntil: { lt: now } },
          orderBy,
          limit: fetch,
        });
        const due = await jobs(db).query({ where: { ...typeFilter, state: 'queued', runAt: { lte: now } }, orderBy, limit: fetch });
        const claimed: JobsRow[] = [];
        for (const candidate of [...expired.items, ...due.items]) {
          if (claimed.length >= limit) break;
          const job = await claimOne(db, owner, candidate);
          if (job) claimed.push(job);
        }
        return claimed;
      });
    },

    complete(job, result) {
      return updateLeased(job, {
        state: 'succeeded',
        finishedAt: nowIso(),
        result: asResult(result),
        leaseOwner: null,
        leaseUntil: null,
      });
    },

    async fail(job, error) {
      const at = nowIso();
      const lastError = { ...describeError(error), attempt: job.attempts, at };
      if (!isRetryable(error) || job.attempts >= job.maxAttempts) {
        const dead = await updateLeased(job, { state: 'dead', finishedAt: at, lastError, leaseOwner: null, leaseUntil: null });
        log.warn('job dead', { jobId: job.id, type: job.type, attempts: job.attempts, code: lastError.code });
        return dead;
      }
      const delay = Math.max(backoffDelay(job.attempts, retry, random), retryAfterOf(error) ?? 0);
      return updateLeased(job, { state: 'queued', runAt: inMs(delay), lastError, leaseOwner: null, leaseUntil: null });
    },

    renewLease(job) {
      return updateLeased(job, { leaseUntil: inMs(leaseMs) });
    },

    setProgress(job, progress) {
      return updateLeased(job, { progress });
    },

    async cancel(id) {
      // Retried because a version conflict here may be a mere progress write racing us, not a claim.
      for (let tries = 0; tries < 5; tries++) {
        const job = await jobs().get(id);
        if (!job) throw new HubError('not_found', `Job ${id} does not exist`);
        if (job.state === 'cancelled') return job;
        if (job.state !== 'queued') throw new HubError('conflict', `Job ${id} is ${job.state}; only a queued job can be cancelled`);
        try {
          return await jobs().update(id, { state: 'cancelled', finishedAt: nowIso() }, { ifVersion: job.version });
        } catch (err) {
          if (!isHubError(err, 'version_conflict')) throw err;
        }
      }
      throw new HubError('conflict', `Job ${id} kept changing while it was being cancelled`, { retryable: true });
    },

    async retry(id) {
      const job = await jobs().get(id);
      if (!job) throw new HubError('not_found', `Job ${id} does not exist`);
      if (job.state !== 'dead' && job.state !== 'cancelled') {
        throw new HubError('conflict', `Job ${id} is ${job.state}; only a dead or cancelled job can be retried`);
      }
      // Finished jobs are never written by a worker again, so a version conflict here means a concurrent retry.
      const row = await jobs().update(
        id,
        { state: 'queued', runAt: nowIso(), attempts: 0, leaseOwner: null, leaseUntil: null, finishedAt: null },
        { ifVersion: job.version },
      );
      notify(row);
      return row;
    },

    get(id) {
      return jobs().get(id);
    },

    async countByState() {
      const counts = await Promise.all(JOB_STATES.map((state) => jobs().count({ state })));
      return Object.fromEntries(JOB_STATES.map((state, i) => [state, counts[i] ?? 0])) as Record<JobState, number>;
    },

    onEnqueue(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
  };
}
