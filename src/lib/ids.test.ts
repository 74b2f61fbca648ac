import { describe, expect, it } from 'vitest';
import { newId, ulid } from './ids.ts';

describe('ulid', () => {
  it('sorts in creation order, even within one millisecond', () => {
    const ids = Array.from({ length: 1000 }, () => ulid(1_700_000_000_000));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(1000);
  });

  it('fits Appwrite row id rules with a prefix', () => {
    const id = newId('con');
    expect(id).toMatch(/^[a-z]+_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(id.length).toBeLessThanOrEqual(36);
  });
});
