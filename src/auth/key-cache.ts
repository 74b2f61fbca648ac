// A short-lived cache of API key rows by hash: it spares the store a read on every authenticated request.
// Changes made through this process's API clear it at once; changes made by another process (the CLI, another
// Appwrite execution) show within `ttlMs`. Expiry is still checked against the clock on every request.
import type { Clock } from '../lib/clock.ts';
import type { ApiKeysRow } from '../store/types.ts';

export interface KeyCache {
  get(hash: string): ApiKeysRow | null | undefined;
  /** Take before reading the store; `set` ignores a read that started before the last `clear`. */
  generation(): number;
  /** `null` caches "no such key" too, so a flood of wrong keys does not reach the store each time. */
  set(hash: string, row: ApiKeysRow | null, generation: number): void;
  clear(): void;
}

export function createKeyCache(clock: Clock, ttlMs: number, maxEntries = 10_000): KeyCache {
  const entries = new Map<string, { row: ApiKeysRow | null; at: number }>();
  let gen = 0;
  return {
    generation: () => gen,
    get(hash) {
      if (ttlMs <= 0) return undefined;
      const e = entries.get(hash);
      if (!e) return undefined;
      if (clock.now() - e.at >= ttlMs) {
        entries.delete(hash);
        return undefined;
      }
      return e.row;
    },
    set(hash, row, generation) {
      if (ttlMs <= 0 || generation !== gen) return;
      if (entries.size >= maxEntries) entries.delete(entries.keys().next().value!);
      entries.set(hash, { row, at: clock.now() });
    },
    clear() {
      gen++;
      entries.clear();
    },
  };
}
