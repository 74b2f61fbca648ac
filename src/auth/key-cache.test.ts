import { describe, expect, it } from 'vitest';
import { createManualClock } from '../lib/clock.ts';
import type { ApiKeysRow } from '../store/types.ts';
import { createKeyCache } from './key-cache.ts';

const row = { id: 'key_1' } as ApiKeysRow;

describe('createKeyCache', () => {
  it('keeps a row for its time to live', () => {
    const clock = createManualClock();
    const cache = createKeyCache(clock, 1000);
    cache.set('h', row, cache.generation());
    expect(cache.get('h')).toBe(row);
    clock.advance(1000);
    expect(cache.get('h')).toBeUndefined();
  });

  it('ignores a read that started before a clear, so a revoked key is never cached again', () => {
    const cache = createKeyCache(createManualClock(), 1000);
    const before = cache.generation();
    cache.clear(); // a revocation commits while the read is in flight
    cache.set('h', row, before);
    expect(cache.get('h')).toBeUndefined();
  });

  it('caches nothing with a zero time to live', () => {
    const cache = createKeyCache(createManualClock(), 0);
    cache.set('h', row, cache.generation());
    expect(cache.get('h')).toBeUndefined();
  });
});
