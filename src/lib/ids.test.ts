import { describe, expect, it } from 'vitest';
import { newId, ulid } from './ids.ts';

describe('ulid', () => {
  it('sorts in creation order, even within one millisecond', () => {
    const ids = Array.from({ length: 1000 }, () => ulid(1_700_000_000_000));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(1000);
  });

  it('sorts across milliseconds, with fresh randomness in each, however many pools of random bytes it takes', () => {
    const start = 1_800_000_000_000;
    const ids = Array.from({ length: 2000 }, (_, i) => ulid(start + i));
    expect([...ids].sort()).toEqual(ids);
    const randomParts = new Set(ids.map((id) => id.slice(10)));
    expect(randomParts.size).toBe(2000);
    // Random, not a counter: the last characters of consecutive milliseconds are not a sequence.
    const steps = new Set(ids.slice(1).map((id, i) => id.charCodeAt(25) - ids[i]!.charCodeAt(25)));
    expect(steps.size).toBeGreaterThan(10);
  });

  it('fits Appwrite row id rules with a prefix', () => {
    const id = newId('con');
    expect(id).toMatch(/^[a-z]+_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(id.length).toBeLessThanOrEqual(36);
  });
});
