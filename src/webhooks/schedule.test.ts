import { describe, expect, it } from 'vitest';
import { MAX_RETRY_AFTER_MS, parseSchedule, retryDelay, STANDARD_SCHEDULE_MS } from './schedule.ts';

describe('retry schedule', () => {
  it('is the Standard Webhooks schedule: ten attempts spanning 75 h 35 min 5 s', () => {
    expect(STANDARD_SCHEDULE_MS).toHaveLength(10);
    const total = STANDARD_SCHEDULE_MS.reduce((a, b) => a + b, 0);
    expect(total).toBe(((75 * 60 + 35) * 60 + 5) * 1000);
  });

  it('jitters each delay by at most a tenth, and gives up after the last attempt', () => {
    for (let attempts = 1; attempts < STANDARD_SCHEDULE_MS.length; attempts++) {
      const base = STANDARD_SCHEDULE_MS[attempts]!;
      expect(retryDelay(STANDARD_SCHEDULE_MS, attempts, undefined, () => 0)).toBe(Math.round(base * 0.9));
      expect(retryDelay(STANDARD_SCHEDULE_MS, attempts, undefined, () => 1)).toBe(Math.round(base * 1.1));
    }
    expect(retryDelay(STANDARD_SCHEDULE_MS, 10, undefined, () => 0.5)).toBeNull();
  });

  it('lets a Retry-After replace the scheduled delay, capped at a day', () => {
    expect(retryDelay(STANDARD_SCHEDULE_MS, 3, 7000, () => 0.5)).toBe(7000);
    expect(retryDelay(STANDARD_SCHEDULE_MS, 3, 90 * 86_400_000, () => 0.5)).toBe(MAX_RETRY_AFTER_MS);
    // Spent is spent: a Retry-After does not buy an eleventh attempt.
    expect(retryDelay(STANDARD_SCHEDULE_MS, 10, 1000, () => 0.5)).toBeNull();
  });

  it('parses an operator schedule and names a bad entry', () => {
    expect(parseSchedule('0, 500ms, 5s, 2m, 1h')).toEqual([0, 500, 5000, 120_000, 3_600_000]);
    expect(() => parseSchedule('0,5x')).toThrow('"5x" is not a duration');
    expect(() => parseSchedule('0,,5s')).toThrow('"" is not a duration');
    expect(() => parseSchedule('-5s')).toThrow('"-5s"');
  });
});
