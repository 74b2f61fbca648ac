// When a failed delivery is tried again: the Standard Webhooks schedule (immediately, 5 s, 5 min, 30 min, 2 h,
// 5 h, 10 h, 14 h, 20 h, 24 h: ten attempts over three days), with jitter so that the retries of an outage do not
// all land on the receiver in the same second. Operators may shorten it (HUB_WEBHOOK_RETRY_SCHEDULE).

const S = 1000;
const M = 60 * S;
const H = 60 * M;

/** The delay before each attempt, counted from the failure of the one before; the first is the event itself. */
export const STANDARD_SCHEDULE_MS: readonly number[] = [0, 5 * S, 5 * M, 30 * M, 2 * H, 5 * H, 10 * H, 14 * H, 20 * H, 24 * H];

/** How far a retry may be moved either way: a tenth of its delay. */
const JITTER = 0.1;
/** A Retry-After longer than this is read as this: a bad header must not park a delivery for a month. */
export const MAX_RETRY_AFTER_MS = 24 * H;

const UNIT_MS: Record<string, number> = { ms: 1, s: S, m: M, h: H };

/**
 * Reads a schedule written as comma-separated durations (`0,5s,5m,30m,2h`); the first entry is the delay of the
 * first attempt and is normally 0. Throws a sentence naming the bad entry.
 */
export function parseSchedule(raw: string): number[] {
  const entries = raw.split(',').map((s) => s.trim());
  if (entries.length < 1 || entries.length > 50) throw new Error('a retry schedule has 1 to 50 entries');
  return entries.map((entry) => {
    const match = /^(\d{1,9})(ms|s|m|h)?$/.exec(entry);
    if (!match) throw new Error(`"${entry}" is not a duration such as 0, 500ms, 5s, 5m or 2h`);
    return Number(match[1]) * UNIT_MS[match[2] ?? 'ms']!;
  });
}

/**
 * The delay before the next attempt after `attempts` attempts of this cycle have failed, or null when the schedule
 * is spent (the delivery is dead). A Retry-After from the receiver replaces the scheduled delay: it said when.
 */
export function retryDelay(schedule: readonly number[], attempts: number, retryAfterMs: number | undefined, random: () => number): number | null {
  if (attempts >= schedule.length) return null;
  if (retryAfterMs !== undefined) return Math.min(Math.max(0, retryAfterMs), MAX_RETRY_AFTER_MS);
  const base = schedule[attempts]!;
  return Math.round(base * (1 - JITTER + 2 * JITTER * random()));
}
