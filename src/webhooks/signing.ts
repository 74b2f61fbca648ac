// Standard Webhooks signing for the hub's outbound deliveries (https://www.standardwebhooks.com): endpoint secrets,
// the `webhook-signature` header and the three `webhook-*` headers. It sits on the delivery hot path (thousands of
// signed deliveries a second), so callers decode each endpoint's secret once with `secretKey` and pass key Buffers
// in, and the body is fed to the HMAC as it is instead of being copied into one big signed string.
import { createHmac, randomBytes } from 'node:crypto';
import { HubError } from '../errors.ts';

const SECRET_PREFIX = 'whsec_';
// The spec's bounds for a symmetric signing secret: 24 bytes (192 bits) to 64 bytes (512 bits).
const MIN_KEY_BYTES = 24;
const MAX_KEY_BYTES = 64;
// Canonical, padded standard base64 only: Buffer.from(…, 'base64') would silently skip stray characters, and a
// secret that decodes differently here than in the consumer's library would fail every delivery without a clue why.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// The spec asks that ids cannot contain '.', which delimits the signed content `id.timestamp.body`; this is the
// ULID-with-prefix alphabet the hub's ids use, with a bound that keeps the id usable as a consumer's dedupe key.
const MESSAGE_ID = /^[A-Za-z0-9_-]{1,255}$/;

/** A new endpoint secret: 'whsec_' + base64 of 32 random bytes. */
export function generateSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64');
}

/**
 * The key bytes of a 'whsec_…' secret (also accepts bare base64, as the official library does); throws
 * HubError('validation_failed', …) with a field error at `pointer` when it is not base64 of 24..64 bytes.
 * The messages never repeat the secret: they end up in problem documents and logs.
 */
export function secretKey(secret: string, pointer = '/secret'): Buffer {
  // Secrets arrive from stored credentials and request bodies typed only by a schema, so a non-string is possible.
  const text = typeof secret === 'string' && secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  if (typeof text !== 'string' || text === '' || !BASE64.test(text)) {
    throw invalidSecret(pointer, 'format', "must be 'whsec_' followed by standard base64");
  }
  const key = Buffer.from(text, 'base64');
  if (key.length < MIN_KEY_BYTES || key.length > MAX_KEY_BYTES) {
    throw invalidSecret(pointer, 'length', `must encode ${MIN_KEY_BYTES} to ${MAX_KEY_BYTES} bytes, not ${key.length}`);
  }
  return key;
}

function invalidSecret(pointer: string, code: string, message: string): HubError {
  return new HubError('validation_failed', `The webhook secret ${message}`, { errors: [{ field: pointer, code, message }] });
}

/**
 * 'v1,<base64 HMAC-SHA256(key, `${id}.${timestamp}.${body}`)>' for each key, space separated (rotation: current key
 * first, then the previous one during its grace period). `timestampSeconds` is unix seconds; `body` is exactly the
 * bytes sent (a string is signed as its UTF-8 encoding).
 */
export function signatureHeader(id: string, timestampSeconds: number, body: string | Uint8Array, keys: readonly Buffer[]): string {
  // Both checks guard the '.' delimiters: a safe non-negative integer prints as plain digits (never '1.5' or '1e+21').
  if (!MESSAGE_ID.test(id)) throw new RangeError('A webhook id must be 1 to 255 characters of [A-Za-z0-9_-]');
  if (!Number.isSafeInteger(timestampSeconds) || timestampSeconds < 0) {
    throw new RangeError('A webhook timestamp must be a non-negative integer number of seconds');
  }
  // An empty header would go out looking signed and fail at every consumer; that is the caller's bug to hear about.
  if (keys.length === 0) throw new RangeError('Signing a webhook needs at least one key');
  const prefix = `${id}.${timestampSeconds}.`;
  let header = '';
  for (const key of keys) {
    const digest = createHmac('sha256', key).update(prefix).update(body).digest('base64');
    header += header === '' ? `v1,${digest}` : ` v1,${digest}`;
  }
  return header;
}

/** The three headers: webhook-id, webhook-timestamp, webhook-signature. */
export function standardHeaders(id: string, timestampSeconds: number, body: string | Uint8Array, keys: readonly Buffer[]): Record<string, string> {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': signatureHeader(id, timestampSeconds, body, keys),
  };
}
