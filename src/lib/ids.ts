// Time-ordered identifiers: a Crockford base32 ULID, monotonic within a millisecond, so ids sort in creation order.
// 26 characters (30 with a prefix) fits Appwrite's row id rules (≤ 36 of [A-Za-z0-9._-], not starting with a symbol).
import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
/** Random bytes are drawn 4 KiB at a time: one call per 256 ids, not one per millisecond (ids are not secrets). */
const POOL_BYTES = 4096;
let pool: Buffer = Buffer.alloc(0);
let poolAt = 0;
let lastTime = -1;
let timePart = '';
/** The 16 random characters of the last id, as alphabet indexes; incremented within one millisecond. */
const random = new Uint8Array(16);

function encodeTime(time: number): string {
  let out = '';
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[time % 32] + out;
    time = Math.floor(time / 32);
  }
  return out;
}

function drawRandom(): void {
  if (poolAt + 16 > pool.length) {
    pool = randomBytes(POOL_BYTES);
    poolAt = 0;
  }
  for (let i = 0; i < 16; i++) random[i] = pool[poolAt + i]! & 31;
  poolAt += 16;
}

function incrementRandom(): void {
  for (let i = 15; i >= 0; i--) {
    if (random[i]! < 31) {
      random[i]!++;
      return;
    }
    random[i] = 0;
  }
  // 32^16 ids in one millisecond: wrap-around is not a practical concern
}

export function ulid(now: number = Date.now()): string {
  if (now <= lastTime) incrementRandom();
  else {
    lastTime = now;
    timePart = encodeTime(now);
    drawRandom();
  }
  let out = timePart;
  for (let i = 0; i < 16; i++) out += ALPHABET[random[i]!];
  return out;
}

/** An id with a short type prefix (`con_01J…`): readable in logs, still time-ordered within a type. */
export function newId(prefix: string): string {
  return `${prefix}_${ulid()}`;
}

/** URL-safe random token (for secrets), `bytes` of entropy. */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}
