// Inbound webhook verifiers: the `/hooks/{connectionId}` receiver calls `verify(raw)` before it parses anything, so
// these see attacker-controlled headers and bytes. Two schemes cover most senders: Standard Webhooks (and Svix,
// which it came from) and the plain "HMAC-SHA256 of the body in a header" most vendors use (GitHub, Shopify, …);
// a secret token in a header or the URL covers those that sign nothing (ShipStation).
// Configuration is checked when a verifier is built; `verify` itself never throws. Its failure reasons are short
// internal strings for the log only: the HTTP layer answers 401 without them, so a prober learns nothing.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { RawRequest, VerifyResult, WebhookVerifier } from '../connectors/define.ts';
import { HubError } from '../errors.ts';
import { valueAtPointer } from '../mappings/pointer.ts';
import { secretKey } from './signing.ts';

const DEFAULT_TOLERANCE_SECONDS = 300;
// Delivery ids become dedupe keys in storage; anything longer is not a real sender's id.
const MAX_DELIVERY_ID = 255;
// Plain digits only (parseInt would take '12abc' or '1e3' apart), and few enough of them to stay a safe integer.
const TIMESTAMP = /^[0-9]{1,15}$/;
// An HMAC-SHA256 digest (32 bytes) encoded canonically: fixing the shape before decoding means malformed input is a
// plain mismatch, and the buffers handed to timingSafeEqual always have equal lengths.
const V1_SIGNATURE = /^[A-Za-z0-9+/]{43}=$/;
const HEX_DIGEST = /^[0-9a-fA-F]{64}$/;
// Padding is optional because some senders strip it; the 43 characters alone fix the 32 bytes.
const BASE64_DIGEST = /^[A-Za-z0-9+/]{43}=?$/;
// RFC 9110 token: Headers.get throws on anything else, and verify must not, so header names are checked up front.
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export interface StandardWebhooksVerifierConfig {
  /** Seconds either side of now a webhook-timestamp may be; default 300. */
  toleranceSeconds?: number;
}

/**
 * Verifies Standard Webhooks deliveries against any of `secrets` ('whsec_…'; several during a rotation). `now` is
 * a millisecond clock. Throws HubError('validation_failed') at construction for a bad secret or tolerance.
 */
export function standardWebhooksVerifier(
  secrets: readonly string[],
  config: StandardWebhooksVerifierConfig,
  now: () => number,
): WebhookVerifier {
  if (secrets.length === 0) throw invalidConfig('/secrets', 'required', 'at least one secret is required');
  const keys = secrets.map((s, i) => secretKey(s, `/secrets/${i}`));
  const tolerance = toleranceOf(config.toleranceSeconds);
  return {
    verify(request: RawRequest): VerifyResult {
      const id = request.headers.get('webhook-id');
      const timestamp = request.headers.get('webhook-timestamp');
      const signatures = request.headers.get('webhook-signature');
      if (!id || !timestamp || !signatures) return fail('missing_headers');
      const timeCheck = checkTimestamp(timestamp, tolerance, now);
      if (timeCheck) return timeCheck;

      // Digests are computed once, and only when there is a well-formed v1 entry to compare them with. The signed
      // content uses the headers' text as received, as the sender signed it.
      let expected: Buffer[] | undefined;
      for (const entry of signatures.split(' ')) {
        // Other versions (v1a is ed25519) are skipped, not failed: a sender may add them beside a v1 signature.
        if (!entry.startsWith('v1,')) continue;
        const encoded = entry.slice(3);
        if (!V1_SIGNATURE.test(encoded)) continue;
        const given = Buffer.from(encoded, 'base64');
        expected ??= keys.map((key) => createHmac('sha256', key).update(`${id}.${timestamp}.`).update(request.body).digest());
        for (const digest of expected) {
          // An id longer than the column is kept as its hash: the same on every retry, so it still dedupes.
          if (timingSafeEqual(digest, given)) return { ok: true, deliveryId: id.length > MAX_DELIVERY_ID ? sha256Id(id) : id };
        }
      }
      return fail('signature_mismatch');
    },
  };
}

export interface HmacVerifierConfig {
  /** Header holding the signature, e.g. 'x-signature' (case-insensitive). */
  signatureHeader: string;
  /** How the digest is written. Hex is accepted in either case; base64 is standard base64, padding optional. */
  encoding: 'hex' | 'base64';
  /** Optional prefix before the digest in the header, e.g. 'sha256=' (GitHub style); matched exactly. */
  prefix?: string;
  /**
   * When set: the header holding a unix-seconds timestamp; the signed content becomes `${timestamp}.${body}` and
   * the timestamp must be within toleranceSeconds (default 300).
   */
  timestampHeader?: string;
  toleranceSeconds?: number;
  /**
   * Header carrying the sender's delivery id, e.g. 'x-delivery-id': checked as a header name, and kept with the
   * webhook's headers, but not what duplicates are dropped on. The signature does not cover it: anyone holding one
   * signed request (an inbox reader, a log) could send it again under new ids, and have it applied each time. The
   * delivery id is 'sha256:' + hex SHA-256 of the raw body, so a resend, whatever its id header says, dedupes.
   */
  deliveryIdHeader?: string;
  /**
   * A JSON pointer into the verified body to the sender's own id for the event (EasyPost: `/id`, its `evt_…`): the
   * delivery id is then that, which the signature covers as well, and which stays the same when the sender changes
   * the body between retries (EasyPost's event carries `pending_urls`, `completed_urls` and `status`). A body without
   * it, or not JSON, dedupes on its hash. The body is read only once the signature checks out.
   */
  deliveryIdField?: string;
  /**
   * 'NFKD': the secret's Unicode is normalized to NFKD before its UTF-8 bytes become the key, as EasyPost does (its
   * published fixture: secret "sécret"). Without it, a secret with an accent or a ligature never verifies.
   */
  normalizeSecret?: 'NFKD';
}

/**
 * Verifies an HMAC-SHA256 signature of the raw body (or of `${timestamp}.${body}`) carried in one header. The
 * secret is used as its UTF-8 bytes, as vendors that hand out such secrets do. `now` is a millisecond clock.
 * Throws HubError('validation_failed') at construction for an empty secret or a bad header name or tolerance.
 */
export function hmacVerifier(secret: string, config: HmacVerifierConfig, now: () => number): WebhookVerifier {
  if (typeof secret !== 'string' || secret === '') throw invalidConfig('/secret', 'required', 'a secret is required');
  checkHeaderName('/signatureHeader', config.signatureHeader);
  if (config.timestampHeader !== undefined) checkHeaderName('/timestampHeader', config.timestampHeader);
  if (config.deliveryIdHeader !== undefined) checkHeaderName('/deliveryIdHeader', config.deliveryIdHeader);
  if (config.encoding !== 'hex' && config.encoding !== 'base64') {
    throw invalidConfig('/encoding', 'enum', "must be 'hex' or 'base64'");
  }
  if (config.normalizeSecret !== undefined && config.normalizeSecret !== 'NFKD') throw invalidConfig('/normalizeSecret', 'enum', "must be 'NFKD'");
  const idField = config.deliveryIdField;
  if (idField !== undefined && (typeof idField !== 'string' || !ID_POINTER.test(idField))) throw invalidConfig('/deliveryIdField', 'format', 'must be a JSON pointer such as /id');
  const key = Buffer.from(config.normalizeSecret ? secret.normalize(config.normalizeSecret) : secret, 'utf8');
  const tolerance = toleranceOf(config.toleranceSeconds);
  const prefix = config.prefix ?? '';
  const digestShape = config.encoding === 'hex' ? HEX_DIGEST : BASE64_DIGEST;
  return {
    verify(request: RawRequest): VerifyResult {
      const header = request.headers.get(config.signatureHeader);
      if (!header) return fail('missing_headers');
      // The header's shape is checked before any hashing, so garbage costs nothing however large the body.
      if (!header.startsWith(prefix)) return fail('signature_mismatch');
      const encoded = header.slice(prefix.length);
      if (!digestShape.test(encoded)) return fail('signature_mismatch');
      const hmac = createHmac('sha256', key);
      if (config.timestampHeader !== undefined) {
        const timestamp = request.headers.get(config.timestampHeader);
        if (!timestamp) return fail('missing_headers');
        const timeCheck = checkTimestamp(timestamp, tolerance, now);
        if (timeCheck) return timeCheck;
        hmac.update(`${timestamp}.`);
      }
      const expected = hmac.update(request.body).digest();
      if (!timingSafeEqual(expected, Buffer.from(encoded, config.encoding))) return fail('signature_mismatch');
      return { ok: true, deliveryId: (idField !== undefined ? idIn(request.body, idField) : undefined) ?? sha256Id(request.body) };
    },
  };
}

export interface TokenVerifierConfig {
  /** The header carrying the token (ShipStation lets a webhook carry custom headers); the query is then not read. */
  header?: string;
  /** Else the query parameter carrying it; default 'token'. */
  param?: string;
}

/** Shortest secret a bare token may be: it is the whole proof, with no signature or timestamp behind it. */
export const MIN_TOKEN = 24;
const QUERY_PARAM = /^[A-Za-z0-9_.~-]{1,64}$/;

/**
 * For senders that sign nothing (ShipStation's webhooks carry no signature, but may carry custom headers): a secret
 * token in a header of the sender's webhook settings, or in the query of the address (`/hooks/{id}?token=…`),
 * compared in constant time. Both sides are hashed first, so the compare takes the same time whatever the given
 * token's length. The delivery id is the body's SHA-256, as for plain HMAC: a resend of the same body dedupes. The
 * receiver never stores or logs the query; a token header is stored with the request, and shown redacted when its
 * name says so (token, secret, key, auth: X-Hub-Token).
 */
export function tokenVerifier(secret: string, config: TokenVerifierConfig = {}): WebhookVerifier {
  if (typeof secret !== 'string' || secret.length < MIN_TOKEN) throw invalidConfig('/secret', 'minLength', `must be at least ${MIN_TOKEN} characters for a bare token`);
  if (config.header !== undefined) checkHeaderName('/tokenHeader', config.header);
  const param = config.param ?? 'token';
  if (!QUERY_PARAM.test(param)) throw invalidConfig('/tokenParam', 'format', 'must be a query parameter name of letters, digits, _ . ~ -');
  const expected = createHash('sha256').update(secret, 'utf8').digest();
  const given = (request: RawRequest): string | null => {
    if (config.header !== undefined) return request.headers.get(config.header);
    const q = request.url.indexOf('?');
    return q === -1 ? null : new URLSearchParams(request.url.slice(q + 1)).get(param);
  };
  return {
    verify(request: RawRequest): VerifyResult {
      const token = given(request);
      if (!token) return fail('missing_token');
      if (!timingSafeEqual(createHash('sha256').update(token, 'utf8').digest(), expected)) return fail('token_mismatch');
      return { ok: true, deliveryId: sha256Id(request.body) };
    },
  };
}

/** A JSON pointer to one value, not the whole document. */
const ID_POINTER = /^(\/[^/]*)+$/;

/** The string or number at `pointer` in a JSON body, as a delivery id (hashed past 255 characters); else undefined. */
function idIn(body: Uint8Array, pointer: string): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch {
    return undefined;
  }
  value = valueAtPointer(value, pointer);
  const id = typeof value === 'string' ? value : typeof value === 'number' && Number.isFinite(value) ? String(value) : '';
  if (id === '') return undefined;
  return id.length > MAX_DELIVERY_ID ? sha256Id(id) : id;
}

/** A delivery id made from bytes the signature covers: 'sha256:' and their hex SHA-256. */
function sha256Id(data: string | Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function fail(reason: string): VerifyResult {
  return { ok: false, reason };
}

/** Null when the timestamp header is well formed and within `tolerance` seconds of now. */
function checkTimestamp(text: string, tolerance: number, now: () => number): VerifyResult | null {
  if (!TIMESTAMP.test(text)) return fail('bad_timestamp');
  const nowSeconds = Math.floor(now() / 1000);
  return Math.abs(nowSeconds - Number(text)) > tolerance ? fail('timestamp_out_of_tolerance') : null;
}

function toleranceOf(value: number | undefined): number {
  if (value === undefined) return DEFAULT_TOLERANCE_SECONDS;
  if (!Number.isFinite(value) || value < 0) throw invalidConfig('/toleranceSeconds', 'minimum', 'must be a number of seconds, 0 or more');
  return value;
}

function checkHeaderName(pointer: string, name: string): void {
  if (typeof name !== 'string' || !HEADER_NAME.test(name)) throw invalidConfig(pointer, 'format', 'must be an HTTP header name');
}

function invalidConfig(pointer: string, code: string, message: string): HubError {
  return new HubError('validation_failed', `The webhook verifier's ${pointer.slice(1)} ${message}`, {
    errors: [{ field: pointer, code, message }],
  });
}
