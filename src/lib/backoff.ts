// Retry delays: exponential backoff with jitter (jobs, connectors, the Appwrite store), and the retry hints an
// error may carry.

export interface BackoffOptions {
  /** The cap of the first retry's delay; later caps double. Default 1 s. */
  baseMs?: number;
  /** No delay exceeds this. Default 1 h. */
  maxMs?: number;
  /**
   * `full` (default): uniform in [baseMs/2, cap], which spreads a thundering herd best. `equal`: uniform in
   * [cap/2, cap], for retries inside one call where the wait should grow steadily.
   */
  jitter?: 'full' | 'equal';
}

export const DEFAULT_BASE_MS = 1000;
export const DEFAULT_MAX_MS = 3_600_000;
/** A vendor's Retry-After beyond this is treated as this: a bad header must not park a job for months. */
export const MAX_RETRY_AFTER_MS = 86_400_000;

/**
 * The delay before retry number `attempt` (1 after the first failure): uniform in [0, min(maxMs, baseMs·2^(attempt−1))]
 * ("full jitter", which spreads a thundering herd best), but never below baseMs/2 so that a retry is never immediate.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const baseMs = options.baseMs ?? DEFAULT_BASE_MS;
  const maxMs = options.maxMs ?? DEFAULT_MAX_MS;
  const n = Number.isFinite(attempt) ? Math.max(1, Math.floor(attempt)) : 1;
  // 2 ** n overflows to Infinity for huge n, which min() then caps: no special case needed.
  const cap = Math.min(maxMs, baseMs * 2 ** (n - 1));
  const r = Math.min(1, Math.max(0, random()));
  if (options.jitter === 'equal') return Math.round(cap / 2 + r * (cap / 2));
  const floor = Math.min(cap, baseMs / 2);
  return Math.round(Math.max(floor, r * cap));
}

function positiveMs(value: unknown): number | undefined {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : undefined;
}

/**
 * How long the failed operation asked us to wait, if it said: `retryAfterMs` on the error or in a HubError's
 * `extra`, else a `Retry-After` header in seconds (the HTTP-date form is left to the connector that received it).
 */
export function retryAfterOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { retryAfterMs?: unknown; extra?: { retryAfterMs?: unknown }; headers?: Record<string, unknown> };
  const ms = positiveMs(e.retryAfterMs) ?? positiveMs(e.extra?.retryAfterMs);
  if (ms !== undefined) return Math.min(ms, MAX_RETRY_AFTER_MS);
  const header = e.headers?.['retry-after'] ?? e.headers?.['Retry-After'];
  const seconds = positiveMs(header);
  return seconds === undefined ? undefined : Math.min(seconds * 1000, MAX_RETRY_AFTER_MS);
}
