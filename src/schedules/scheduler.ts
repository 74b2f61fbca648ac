// Starts the runs of due schedules as `exchange.run` jobs. The same tick serves the embedded hub (a timer) and
// Appwrite (the scheduler function's cron): any number of processes may tick at once, since a schedule's slot is
// claimed by a compare-and-set on its version and the job's dedupe key names the slot. Two runs of one schedule
// never overlap: while the job of the last run is queued or running, a due slot is skipped, not queued behind it.
import { HubError, isHubError } from '../errors.ts';
import { EXCHANGE_JOB, type ExchangeJobPayload } from '../files/runs.ts';
import type { JobQueue } from '../jobs/queue.ts';
import type { Clock } from '../lib/clock.ts';
import type { Logger } from '../lib/log.ts';
import type { Db, JobsRow, NewRow, SchedulesRow, Store } from '../store/types.ts';
import { assertTiming, nextRunAfter, type MaintenanceWindow } from './timing.ts';

export interface ScheduleInput {
  name: string;
  exchangeId: string;
  cron: string;
  timezone: string;
  status?: 'enabled' | 'paused';
  maintenanceWindows?: MaintenanceWindow[];
}

export type SchedulePatch = Partial<ScheduleInput>;

export interface TickResult {
  started: { scheduleId: string; jobId: string }[];
  skipped: { scheduleId: string; reason: 'overlap' }[];
}

const ACTIVE_JOB: ReadonlySet<JobsRow['state']> = new Set(['queued', 'running']);

function nextIso(s: Pick<SchedulesRow, 'cron' | 'timezone' | 'maintenanceWindows' | 'status'>, after: number): string | null {
  if (s.status !== 'enabled') return null;
  const next = nextRunAfter({ cron: s.cron, timezone: s.timezone, maintenanceWindows: s.maintenanceWindows as MaintenanceWindow[] }, new Date(after));
  return next ? next.toISOString() : null;
}

async function checkExchange(db: Db, workspaceId: string, exchangeId: string): Promise<void> {
  const exchange = await db.table('exchanges').get(exchangeId);
  if (!exchange || exchange.workspaceId !== workspaceId) {
    throw new HubError('unknown_reference', `There is no exchange ${exchangeId}`, { errors: [{ field: '/exchangeId', code: 'unknown', message: `there is no exchange ${exchangeId}` }] });
  }
}

export async function createSchedule(db: Db, clock: Clock, workspaceId: string, input: ScheduleInput): Promise<SchedulesRow> {
  assertTiming(input);
  await checkExchange(db, workspaceId, input.exchangeId);
  const row: NewRow<SchedulesRow> = {
    workspaceId,
    name: input.name,
    exchangeId: input.exchangeId,
    cron: input.cron.trim(),
    timezone: input.timezone,
    status: input.status ?? 'enabled',
    maintenanceWindows: input.maintenanceWindows ?? [],
    nextRunAt: null,
    lastRunAt: null,
    lastJobId: null,
    lastOutcome: null,
    runningJobId: null,
  };
  row.nextRunAt = nextIso(row, clock.now());
  return db.table('schedules').insert(row);
}

export async function updateSchedule(db: Db, clock: Clock, row: SchedulesRow, patch: SchedulePatch, ifVersion: number): Promise<SchedulesRow> {
  assertTiming(patch);
  if (patch.exchangeId !== undefined) await checkExchange(db, row.workspaceId, patch.exchangeId);
  const merged = { ...row, ...patch, ...(patch.cron ? { cron: patch.cron.trim() } : {}) };
  return db.table('schedules').update(
    row.id,
    { ...patch, ...(patch.cron ? { cron: merged.cron } : {}), nextRunAt: nextIso(merged, clock.now()) },
    { ifVersion },
  );
}

/** Is the schedule's last job still queued or running? */
async function isRunning(db: Db, schedule: SchedulesRow): Promise<boolean> {
  if (!schedule.runningJobId) return false;
  const job = await db.table('jobs').get(schedule.runningJobId);
  return job !== null && ACTIVE_JOB.has(job.state);
}

/**
 * Starts a run of the schedule's exchange now ("run now", or a due slot). Refused with `conflict` while the last
 * run is still going. `slot` (the due time) makes the job idempotent across processes ticking at once.
 */
export async function startScheduleRun(store: Store, queue: JobQueue, clock: Clock, schedule: SchedulesRow, options: { slot?: string; trigger: 'schedule' | 'manual' }): Promise<{ schedule: SchedulesRow; job: JobsRow }> {
  return store.transaction(async (tx) => {
    const fresh = await tx.table('schedules').get(schedule.id);
    if (!fresh) throw new HubError('not_found', `Schedule ${schedule.id} does not exist`);
    if (await isRunning(tx, fresh)) {
      throw new HubError('conflict', `Schedule ${fresh.name} is still running (job ${fresh.runningJobId}); runs of one schedule never overlap`, { extra: { jobId: fresh.runningJobId } });
    }
    const payload: ExchangeJobPayload = { exchangeId: fresh.exchangeId, scheduleId: fresh.id, trigger: options.trigger };
    const { job } = await queue.enqueue(
      { type: EXCHANGE_JOB, workspaceId: fresh.workspaceId, payload: payload as unknown as Record<string, unknown>, maxAttempts: 5, dedupeKey: options.slot ? `schedule:${fresh.id}:${options.slot}` : null },
      tx,
    );
    const now = new Date(clock.now()).toISOString();
    const saved = await tx.table('schedules').update(
      fresh.id,
      { runningJobId: job.id, lastJobId: job.id, lastRunAt: now, lastOutcome: 'started', ...(options.slot ? { nextRunAt: nextIso(fresh, clock.now()) } : {}) },
      { ifVersion: fresh.version },
    );
    return { schedule: saved, job };
  });
}

/** Starts every due schedule (up to `limit`); safe to call from any number of processes at once. */
export async function tickSchedules(deps: { store: Store; queue: JobQueue; clock: Clock; log?: Logger }, limit = 100): Promise<TickResult> {
  const now = new Date(deps.clock.now()).toISOString();
  const due = await deps.store.table('schedules').query({ where: { status: 'enabled', nextRunAt: { lte: now } }, limit });
  const result: TickResult = { started: [], skipped: [] };
  for (const schedule of due.items) {
    try {
      const { job } = await startScheduleRun(deps.store, deps.queue, deps.clock, schedule, { slot: schedule.nextRunAt!, trigger: 'schedule' });
      result.started.push({ scheduleId: schedule.id, jobId: job.id });
    } catch (err) {
      if (isHubError(err, 'conflict') && err.extra?.jobId) {
        // Still running: this slot is skipped, and the schedule waits for its next one.
        await deps.store.table('schedules').update(schedule.id, { lastOutcome: 'skipped_overlap', nextRunAt: nextIso(schedule, deps.clock.now()) }, { ifVersion: schedule.version }).catch(() => undefined);
        result.skipped.push({ scheduleId: schedule.id, reason: 'overlap' });
      } else if (!isHubError(err, 'version_conflict') && !isHubError(err, 'not_found')) {
        // Another process took this slot (version conflict) or the schedule went away: nothing to do. Else say so.
        deps.log?.error('could not start a scheduled run', { scheduleId: schedule.id, err });
      }
    }
  }
  return result;
}

/** The embedded scheduler: ticks every `intervalMs` until stopped. */
export function startScheduler(deps: { store: Store; queue: JobQueue; clock: Clock; log: Logger }, intervalMs: number): { stop(): Promise<void> } {
  let stopped = false;
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    if (stopped) return;
    running = running.then(() => tickSchedules(deps).catch((err: unknown) => deps.log.error('scheduler tick failed', { err })));
  }, intervalMs);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
