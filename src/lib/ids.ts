// Time-ordered identifiers: a Crockford base32 ULID, monotonic within a millisecond, so ids sort in creation order.
// 26 characters (30 with a prefix) fits Appwrite's row id rules (≤ 36 of [A-Za-z0-9._-], not starting with a symbol).
import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
let lastTime = -1;
let lastRandom: Uint8Array = new Uint8Array(16);

function encodeTime(time: number): string {
  let out = '';
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[time % 32] + out;
    time = Math.floor(time / 32);
  }
  return out;
}

function incrementRandom(random: Uint8Array): Uint8Array {
  const next = random.slice();
  for (let i = next.length - 1; i >= 0; i--) {
    if (next[i]! < 31) {
      next[i]!++;
      return next;
    }
    next[i] = 0;
  }
  return next; // 32^16 ids in one millisecond: wrap-around is not a practical concern
}

export function ulid(now: number = Date.now()): string {
  if (now <= lastTime) {
    lastRandom = incrementRandom(lastRandom);
    now = lastTime;
  } else {
    lastTime = now;
    const bytes = randomBytes(16);
    lastRandom = bytes.map((b) => b & 31);
  }
  let random = '';
  for (const v of lastRandom) random += ALPHABET[v];
  return encodeTime(now) + random;
}

/** An id with a short type prefix (`con_01J…`): readable in logs, still time-ordered within a type. */
export function newId(prefix: string): string {
  return `${prefix}_${ulid()}`;
}

/** URL-safe random token (for secrets), `bytes` of entropy. */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}
