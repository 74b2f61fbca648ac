// What the dispatcher needs to know of an endpoint, read once and kept for a moment: its row and its signing keys
// decrypted. A change made through this process drops the entry at once; other processes see it within the TTL.
import type { Clock } from '../lib/clock.ts';
import type { Cipher } from '../lib/secrets.ts';
import type { Db, WebhookEndpointsRow } from '../store/types.ts';
import { secretKey } from './signing.ts';

export interface LiveEndpoint {
  row: WebhookEndpointsRow;
  /** The current key, then the previous one while its grace period lasts. */
  keys: Buffer[];
  /** When the previous key stops signing (ms), or Infinity. */
  keysValidUntil: number;
  /** The endpoint's own headers, minus any the hub sets itself. */
  headers: Record<string, string>;
  loadedAt: number;
}

/** Headers an endpoint may not set: the signature scheme, the framing and the hop are the hub's. */
export const RESERVED_HEADER = /^(webhook-.*|content-type|content-length|transfer-encoding|host|connection|keep-alive|upgrade|te|trailer|expect)$/i;

const listeners = new Set<(id: string) => void>();

/** Tells this process's caches that an endpoint changed (or was deleted). */
export function endpointChanged(id: string): void {
  for (const listener of listeners) listener(id);
}

export interface EndpointCache {
  /** The endpoint, read through `db` when not cached or stale; null when it no longer exists. */
  get(db: Db, id: string): Promise<LiveEndpoint | null>;
  /** Whether `entry` is still what get would answer now: not changed through this process, not stale. */
  isCurrent(entry: LiveEndpoint): boolean;
  drop(id: string): void;
  close(): void;
}

export function createEndpointCache(cipher: Cipher, clock: Clock, ttlMs = 2000): EndpointCache {
  const entries = new Map<string, LiveEndpoint>();
  const unsubscribe = (() => {
    const listener = (id: string) => void entries.delete(id);
    listeners.add(listener);
    return () => void listeners.delete(listener);
  })();

  function live(row: WebhookEndpointsRow): LiveEndpoint {
    const now = clock.now();
    const keys = [secretKey(cipher.decrypt(row.secret))];
    let keysValidUntil = Infinity;
    if (row.previousSecret && row.previousSecretExpiresAt) {
      const until = Date.parse(row.previousSecretExpiresAt);
      if (until > now) {
        keys.push(secretKey(cipher.decrypt(row.previousSecret)));
        keysValidUntil = until;
      }
    }
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(row.headers ?? {})) {
      if (!RESERVED_HEADER.test(name) && typeof value === 'string') headers[name.toLowerCase()] = value;
    }
    return { row, keys, keysValidUntil, headers, loadedAt: now };
  }

  const fresh = (entry: LiveEndpoint, now: number) => now - entry.loadedAt < ttlMs && now < entry.keysValidUntil;

  return {
    async get(db, id) {
      const cached = entries.get(id);
      if (cached && fresh(cached, clock.now())) return cached;
      const row = await db.table('webhook_endpoints').get(id);
      if (!row) {
        entries.delete(id);
        return null;
      }
      const entry = live(row);
      entries.set(id, entry);
      return entry;
    },
    isCurrent(entry) {
      return entries.get(entry.row.id) === entry && fresh(entry, clock.now());
    },
    drop(id) {
      entries.delete(id);
    },
    close: unsubscribe,
  };
}
