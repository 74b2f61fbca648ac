// Rate limiting per principal: a token bucket per key or client, refilled continuously, with the IETF
// RateLimit-* headers on every response and Retry-After on 429.
// In-memory, which is right for the embedded single process; the Appwrite shape swaps in a store-backed limiter.
import type { Context } from 'hono';
import type { Principal } from '../../auth/scopes.ts';
import { HubError } from '../../errors.ts';
import type { Clock } from '../../lib/clock.ts';
import type { HubEnv } from '../deps.ts';

export interface RateDecision {
  limit: number;
  remaining: number;
  /** Seconds until the bucket is full again. */
  resetSeconds: number;
  /** Seconds until the next request would be allowed (0 when allowed now). */
  retryAfterSeconds: number;
  allowed: boolean;
}

export interface RateLimiter {
  /** Checks the bucket `key` with `perMinute` capacity; takes one token when `consume` and one is there. */
  check(key: string, perMinute: number, consume?: boolean): RateDecision;
}

export function createMemoryRateLimiter(clock: Clock, maxBuckets = 100_000): RateLimiter {
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    check(key, perMinute, consume = true) {
      const now = clock.now();
      const ratePerMs = perMinute / 60_000;
      let b = buckets.get(key);
      if (!b) {
        if (buckets.size >= maxBuckets) buckets.delete(buckets.keys().next().value!); // oldest first
        b = { tokens: perMinute, at: now };
        buckets.set(key, b);
      } else {
        b.tokens = Math.min(perMinute, b.tokens + (now - b.at) * ratePerMs);
        b.at = now;
      }
      const allowed = b.tokens >= 1;
      if (allowed && consume) b.tokens -= 1;
      const remaining = Math.floor(b.tokens);
      return {
        limit: perMinute,
        remaining,
        allowed,
        resetSeconds: Math.ceil((perMinute - b.tokens) / ratePerMs / 1000),
        retryAfterSeconds: allowed ? 0 : Math.max(1, Math.ceil((1 - b.tokens) / ratePerMs / 1000)),
      };
    },
  };
}

/** Takes one request from the principal's budget, setting the RateLimit-* headers; throws 429 when it is spent. */
export function applyRateLimit(c: Context<HubEnv>, principal: Principal): void {
  const deps = c.get('deps');
  const perMinute = principal.rateLimitPerMinute ?? deps.config.rateLimitPerMinute;
  const d = deps.rateLimiter.check(`${principal.type}:${principal.id}`, perMinute);
  const limit = String(d.limit);
  const remaining = String(d.remaining);
  const reset = String(d.resetSeconds);
  if (!d.allowed) {
    throw new HubError('rate_limited', `This key may make ${d.limit} requests a minute; try again in ${d.retryAfterSeconds} s`, {
      headers: { 'RateLimit-Limit': limit, 'RateLimit-Remaining': remaining, 'RateLimit-Reset': reset, 'Retry-After': String(d.retryAfterSeconds) },
    });
  }
  const h = c.get('resHeaders');
  h['ratelimit-limit'] = limit;
  h['ratelimit-remaining'] = remaining;
  h['ratelimit-reset'] = reset;
}
