import { describe, expect, it } from 'vitest';
import { HubError } from '../errors.ts';
import { backoffDelay, MAX_RETRY_AFTER_MS, retryAfterOf } from './backoff.ts';

describe('backoffDelay', () => {
  it('doubles the cap with each attempt', () => {
    const top = () => 1;
    expect([1, 2, 3, 4].map((a) => backoffDelay(a, { baseMs: 1000 }, top))).toEqual([1000, 2000, 4000, 8000]);
  });

  it('spreads delays across the whole range (full jitter)', () => {
    expect(backoffDelay(4, { baseMs: 1000 }, () => 0.25)).toBe(2000);
  });

  it('never waits less than half the base, so a retry is never immediate', () => {
    expect(backoffDelay(3, { baseMs: 1000 }, () => 0)).toBe(500);
  });

  it('never exceeds maxMs, even after very many attempts', () => {
    expect(backoffDelay(5000, { baseMs: 1000, maxMs: 60_000 }, () => 1)).toBe(60_000);
  });

  it('treats an attempt below one as the first', () => {
    expect(backoffDelay(0, { baseMs: 1000 }, () => 1)).toBe(1000);
  });
});

describe('retryAfterOf', () => {
  it('reads retryAfterMs from a HubError extra member', () => {
    expect(retryAfterOf(new HubError('upstream_rate_limited', 'slow down', { extra: { retryAfterMs: 7000 } }))).toBe(7000);
  });

  it('reads retryAfterMs set on any error', () => {
    expect(retryAfterOf(Object.assign(new Error('x'), { retryAfterMs: 1500 }))).toBe(1500);
  });

  it('reads a Retry-After header in seconds', () => {
    expect(retryAfterOf(new HubError('rate_limited', 'x', { headers: { 'retry-after': '30' } }))).toBe(30_000);
  });

  it('caps an absurd hint at one day', () => {
    expect(retryAfterOf({ retryAfterMs: 1e12 })).toBe(MAX_RETRY_AFTER_MS);
  });

  it('ignores missing, negative and non-numeric hints', () => {
    expect(retryAfterOf(new Error('x'))).toBeUndefined();
    expect(retryAfterOf({ retryAfterMs: -5 })).toBeUndefined();
    expect(retryAfterOf({ headers: { 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT' } })).toBeUndefined();
    expect(retryAfterOf('boom')).toBeUndefined();
  });
});

describe('equal jitter', () => {
  it('stays between half and all of the doubling cap', () => {
    const o = { baseMs: 500, maxMs: 30_000, jitter: 'equal' as const };
    expect([1, 2, 3].map((a) => backoffDelay(a, o, () => 0))).toEqual([250, 500, 1000]);
    expect([1, 2, 3].map((a) => backoffDelay(a, o, () => 1))).toEqual([500, 1000, 2000]);
    expect(backoffDelay(40, o, () => 1)).toBe(30_000);
  });
});
