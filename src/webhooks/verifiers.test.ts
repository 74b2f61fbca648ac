// Inbound verification: what a real sender (the official Standard Webhooks library, a GitHub-style HMAC sender)
// produces must pass, every kind of tampering must fail with its reason, and no input at all may make verify throw.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import type { RawRequest, VerifyResult, WebhookVerifier } from '../connectors/define.ts';
import { HubError } from '../errors.ts';
import { generateSecret, secretKey, standardHeaders } from './signing.ts';
import { hmacVerifier, standardWebhooksVerifier, tokenVerifier } from './verifiers.ts';

const NOW_MS = Date.parse('2026-01-01T00:00:00Z');
const NOW_S = NOW_MS / 1000;
const clock = () => NOW_MS;

function request(headers: Record<string, string>, body: string | Uint8Array): RawRequest {
  return { method: 'POST', url: 'https://hub.example/hooks/con_1', headers: new Headers(headers), body: typeof body === 'string' ? Buffer.from(body) : body };
}

/** These verifiers answer synchronously; the seam's type also allows a promise, which would be a regression here. */
function verifyNow(webhooks: WebhookVerifier, raw: RawRequest): VerifyResult {
  const result = webhooks.verify(raw);
  if (result instanceof Promise) throw new Error('verify returned a promise');
  return result;
}

function hubError(fn: () => unknown): HubError {
  try {
    fn();
  } catch (err) {
    if (err instanceof HubError) return err;
    throw err;
  }
  throw new Error('expected a HubError');
}

/** Any string a Headers object will hold (it refuses NUL, CR, LF and characters above U+00FF). */
const headerValue = fc
  .oneof(
    fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: 300 }),
    fc.string({ unit: fc.constantFrom('v', '1', 'a', ',', ' ', '=', '+', '/', 'A', '.', '0'), maxLength: 120 }),
    fc.base64String({ maxLength: 60 }).map((s) => `v1,${s}`),
  )
  .filter((value) => {
    try {
      new Headers({ x: value });
      return true;
    } catch {
      return false;
    }
  });

describe('standardWebhooksVerifier', () => {
  const secret = generateSecret();
  const verifier = standardWebhooksVerifier([secret], {}, clock);
  const body = '{"type":"stock.changed","data":{"sku":"A-1"}}';
  const signed = (overrides: { id?: string; ts?: number; body?: string | Uint8Array; secrets?: string[] } = {}) =>
    standardHeaders(overrides.id ?? 'msg_1', overrides.ts ?? NOW_S, overrides.body ?? body, (overrides.secrets ?? [secret]).map((s) => secretKey(s))) as Record<
      'webhook-id' | 'webhook-timestamp' | 'webhook-signature',
      string
    >;

  it('accepts what the official library signs, JSON or not, and takes webhook-id as the delivery id', () => {
    const wh = new Webhook(secret);
    for (const payload of [body, 'Grüße aus Zürich — 发货 ✓', '']) {
      const headers = {
        'webhook-id': 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W',
        'webhook-timestamp': String(NOW_S),
        'webhook-signature': wh.sign('msg_2KWPBgLlAfxdpx2AI54pPJ85f4W', new Date(NOW_MS), payload),
      };
      expect(verifyNow(verifier, request(headers, payload)), payload).toEqual({ ok: true, deliveryId: 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W' });
    }
  });

  it('accepts the reference vector at its own time', () => {
    const headers = { 'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek', 'webhook-timestamp': '1614265330', 'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=' };
    const vectorVerifier = standardWebhooksVerifier(['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'], {}, () => 1614265330_000);
    expect(verifyNow(vectorVerifier, request(headers, '{"test": 2432232314}'))).toEqual({ ok: true, deliveryId: 'msg_p5jXN8AQM9LWM0D4loKWxJek' });
  });

  it('accepts any configured secret (rotation on the receiving side) and header names in any case', () => {
    const old = generateSecret();
    const both = standardWebhooksVerifier([generateSecret(), old], {}, clock);
    const headers = signed({ secrets: [old] });
    const shouted = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toUpperCase(), v]));
    expect(verifyNow(both, request(shouted, body))).toEqual({ ok: true, deliveryId: 'msg_1' });
  });

  it('verifies the exact bytes: empty and non-UTF-8 bodies included', () => {
    const bytes = new Uint8Array([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x80]);
    expect(verifyNow(verifier, request(signed({ body: bytes }), bytes)).ok).toBe(true);
    expect(verifyNow(verifier, request(signed({ body: '' }), new Uint8Array()))).toEqual({ ok: true, deliveryId: 'msg_1' });
    expect(verifyNow(verifier, request(signed({ body: bytes }), bytes.subarray(1))).ok).toBe(false);
  });

  it('rejects a body changed by one byte, a changed id and a changed timestamp', () => {
    const tampered = Buffer.from(body);
    tampered.writeUInt8(tampered.readUInt8(10) ^ 1, 10);
    expect(verifyNow(verifier, request(signed(), tampered))).toEqual({ ok: false, reason: 'signature_mismatch' });
    expect(verifyNow(verifier, request({ ...signed(), 'webhook-id': 'msg_2' }, body))).toEqual({ ok: false, reason: 'signature_mismatch' });
    expect(verifyNow(verifier, request({ ...signed(), 'webhook-timestamp': String(NOW_S + 1) }, body))).toEqual({ ok: false, reason: 'signature_mismatch' });
  });

  it('keeps timestamps within the tolerance, either side of now', () => {
    expect(verifyNow(verifier, request(signed({ ts: NOW_S - 300 }), body)).ok).toBe(true);
    expect(verifyNow(verifier, request(signed({ ts: NOW_S + 300 }), body)).ok).toBe(true);
    expect(verifyNow(verifier, request(signed({ ts: NOW_S - 301 }), body))).toEqual({ ok: false, reason: 'timestamp_out_of_tolerance' });
    expect(verifyNow(verifier, request(signed({ ts: NOW_S + 301 }), body))).toEqual({ ok: false, reason: 'timestamp_out_of_tolerance' });
    const strict = standardWebhooksVerifier([secret], { toleranceSeconds: 10 }, clock);
    expect(verifyNow(strict, request(signed({ ts: NOW_S - 11 }), body))).toEqual({ ok: false, reason: 'timestamp_out_of_tolerance' });
    expect(verifyNow(strict, request(signed({ ts: NOW_S - 10 }), body)).ok).toBe(true);
  });

  it('rejects timestamps that are not plain integer seconds', () => {
    for (const ts of ['12abc', '1.5', '-5', '1e9', ' 0x10', `${NOW_S}.0`, '9'.repeat(16)]) {
      expect(verifyNow(verifier, request({ ...signed(), 'webhook-timestamp': ts }, body)), ts).toEqual({ ok: false, reason: 'bad_timestamp' });
    }
  });

  it('needs all three headers', () => {
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
      const headers: Record<string, string> = signed();
      delete headers[name];
      expect(verifyNow(verifier, request(headers, body)), name).toEqual({ ok: false, reason: 'missing_headers' });
      expect(verifyNow(verifier, request({ ...signed(), [name]: '' }, body)), name).toEqual({ ok: false, reason: 'missing_headers' });
    }
  });

  it('ignores other signature versions, and fails when only those are present', () => {
    const v1 = signed()['webhook-signature'];
    const v1a = `v1a,${randomBytes(64).toString('base64')}`;
    expect(verifyNow(verifier, request({ ...signed(), 'webhook-signature': v1a }, body))).toEqual({ ok: false, reason: 'signature_mismatch' });
    expect(verifyNow(verifier, request({ ...signed(), 'webhook-signature': `${v1a} ${v1}` }, body)).ok).toBe(true);
    // A v1a entry carrying a valid HMAC is still not a v1 signature.
    expect(verifyNow(verifier, request({ ...signed(), 'webhook-signature': v1.replace('v1,', 'v1a,') }, body)).ok).toBe(false);
  });

  it('treats malformed signature entries as a mismatch', () => {
    const digest = signed()['webhook-signature'].slice(3);
    for (const sig of ['v1,', 'v1,!!!!', `v1,${digest.slice(0, -1)}`, `v1,${digest}=`, `v1,${digest.replace('=', '')}`, `v1,${Buffer.from(digest, 'base64').toString('base64url')}`, `V1,${digest}`, `v1 ${digest}`, digest]) {
      expect(verifyNow(verifier, request({ ...signed(), 'webhook-signature': sig }, body)), sig).toEqual({ ok: false, reason: 'signature_mismatch' });
    }
  });

  it('rejects a signature made with another secret', () => {
    expect(verifyNow(verifier, request(signed({ secrets: [generateSecret()] }), body))).toEqual({ ok: false, reason: 'signature_mismatch' });
  });

  it('keeps a delivery id past 255 characters as its hash, the same on every resend', () => {
    expect(verifyNow(verifier, request(signed({ id: 'm'.repeat(255) }), body))).toEqual({ ok: true, deliveryId: 'm'.repeat(255) });
    const longId = 'm'.repeat(256);
    const headers = { ...signed(), 'webhook-id': longId, 'webhook-signature': new Webhook(secret).sign(longId, new Date(NOW_MS), body) };
    const hashed = { ok: true, deliveryId: `sha256:${createHash('sha256').update(longId).digest('hex')}` };
    expect(verifyNow(verifier, request(headers, body))).toEqual(hashed);
    expect(verifyNow(verifier, request(headers, body))).toEqual(hashed);
    // A long id is still signed: another long id under the same signature is refused.
    expect(verifyNow(verifier, request({ ...headers, 'webhook-id': 'n'.repeat(256) }, body))).toEqual({ ok: false, reason: 'signature_mismatch' });
  });

  it('checks its configuration when built', () => {
    expect(hubError(() => standardWebhooksVerifier([], {}, clock)).errors?.[0]?.field).toBe('/secrets');
    const bad = hubError(() => standardWebhooksVerifier([secret, 'whsec_c2hvcnQ='], {}, clock));
    expect(bad.code).toBe('validation_failed');
    expect(bad.errors?.[0]?.field).toBe('/secrets/1');
    expect(hubError(() => standardWebhooksVerifier([secret], { toleranceSeconds: -1 }, clock)).errors?.[0]?.field).toBe('/toleranceSeconds');
    expect(hubError(() => standardWebhooksVerifier([secret], { toleranceSeconds: Number.NaN }, clock)).code).toBe('validation_failed');
  });

  it('never throws, whatever the headers and body', () => {
    fc.assert(
      fc.property(fc.option(headerValue), fc.option(headerValue), fc.option(headerValue), fc.uint8Array({ maxLength: 200 }), (id, ts, sig, bytes) => {
        const headers: Record<string, string> = {};
        if (id !== null) headers['webhook-id'] = id;
        if (ts !== null) headers['webhook-timestamp'] = ts;
        if (sig !== null) headers['webhook-signature'] = sig;
        const result = verifyNow(verifier, request(headers, bytes));
        expect(result.ok).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it('survives a huge signature header', () => {
    const entries = Array.from({ length: 20_000 }, () => `v1,${randomBytes(32).toString('base64')}`).join(' ');
    const huge = { ...signed(), 'webhook-signature': `${entries} ${'A'.repeat(100_000)}` };
    expect(verifyNow(verifier, request(huge, body))).toEqual({ ok: false, reason: 'signature_mismatch' });
    expect(verifyNow(verifier, request({ ...huge, 'webhook-signature': `${entries} ${signed()['webhook-signature']}` }, body)).ok).toBe(true);
  });
});

describe('hmacVerifier', () => {
  const secret = 'shpss_0123456789abcdef';
  const body = '{"id":820982911946154500,"email":"jon@example.com"}';
  const mac = (content: string | Buffer, key = secret) => createHmac('sha256', key).update(content).digest();
  const bodyId = (content: string | Uint8Array) => `sha256:${createHash('sha256').update(content).digest('hex')}`;

  it('accepts a hex digest in either case, and a base64 one with or without padding', () => {
    const hex = hmacVerifier(secret, { signatureHeader: 'X-Signature', encoding: 'hex' }, clock);
    const digest = mac(body);
    expect(verifyNow(hex, request({ 'x-signature': digest.toString('hex') }, body))).toEqual({ ok: true, deliveryId: bodyId(body) });
    expect(verifyNow(hex, request({ 'x-signature': digest.toString('hex').toUpperCase() }, body)).ok).toBe(true);

    const b64 = hmacVerifier(secret, { signatureHeader: 'x-shopify-hmac-sha256', encoding: 'base64' }, clock);
    expect(verifyNow(b64, request({ 'X-Shopify-Hmac-Sha256': digest.toString('base64') }, body)).ok).toBe(true);
    expect(verifyNow(b64, request({ 'x-shopify-hmac-sha256': digest.toString('base64').replace('=', '') }, body)).ok).toBe(true);
  });

  it("strips a GitHub-style 'sha256=' prefix and requires it when configured", () => {
    const github = hmacVerifier(secret, { signatureHeader: 'x-hub-signature-256', encoding: 'hex', prefix: 'sha256=' }, clock);
    const hex = mac(body).toString('hex');
    expect(verifyNow(github, request({ 'x-hub-signature-256': `sha256=${hex}` }, body)).ok).toBe(true);
    expect(verifyNow(github, request({ 'x-hub-signature-256': hex }, body))).toEqual({ ok: false, reason: 'signature_mismatch' });
    expect(verifyNow(github, request({ 'x-hub-signature-256': `sha1=${hex}` }, body))).toEqual({ ok: false, reason: 'signature_mismatch' });
  });

  it('signs `${timestamp}.${body}` when a timestamp header is configured, within the tolerance', () => {
    const config = { signatureHeader: 'x-signature', encoding: 'hex', timestampHeader: 'x-timestamp', toleranceSeconds: 60 } as const;
    const timed = hmacVerifier(secret, config, clock);
    const at = (ts: number | string) => ({ 'x-timestamp': String(ts), 'x-signature': mac(`${ts}.${body}`).toString('hex') });
    expect(verifyNow(timed, request(at(NOW_S - 60), body)).ok).toBe(true);
    expect(verifyNow(timed, request(at(NOW_S - 61), body))).toEqual({ ok: false, reason: 'timestamp_out_of_tolerance' });
    expect(verifyNow(timed, request(at(NOW_S + 61), body))).toEqual({ ok: false, reason: 'timestamp_out_of_tolerance' });
    expect(verifyNow(timed, request(at('1.5e9'), body))).toEqual({ ok: false, reason: 'bad_timestamp' });
    expect(verifyNow(timed, request({ ...at(NOW_S), 'x-timestamp': String(NOW_S - 1) }, body))).toEqual({ ok: false, reason: 'signature_mismatch' });
    expect(verifyNow(timed, request({ 'x-signature': mac(`${NOW_S}.${body}`).toString('hex') }, body))).toEqual({ ok: false, reason: 'missing_headers' });
    // The body's own signature is not enough once a timestamp is part of the signed content.
    expect(verifyNow(timed, request({ 'x-timestamp': String(NOW_S), 'x-signature': mac(body).toString('hex') }, body)).ok).toBe(false);
  });

  it("verifies EasyPost's published signature, whose secret is normalized to NFKD first", () => {
    // EasyPost's client-library fixtures (specs beside the repository, as CI has them): an event body, its secret
    // "sécret" and the X-Hmac-Signature EasyPost sends for it.
    const specs = new URL('../../../shared/specs/easypost/', import.meta.url);
    const fixture = JSON.parse(readFileSync(new URL('client-library-fixtures.json', specs), 'utf8')).webhooks as { secret: string; hmac_signature: string };
    let event = readFileSync(new URL('event-body.json', specs));
    if (event.at(-1) === 0x0a) event = event.subarray(0, -1);
    const easypost = { signatureHeader: 'X-Hmac-Signature', encoding: 'hex' as const, prefix: 'hmac-sha256-hex=' };
    const req = request({ 'x-hmac-signature': fixture.hmac_signature }, event);
    expect(verifyNow(hmacVerifier(fixture.secret, { ...easypost, normalizeSecret: 'NFKD' }, clock), req)).toEqual({ ok: true, deliveryId: bodyId(event) });
    expect(verifyNow(hmacVerifier(fixture.secret, easypost, clock), req)).toEqual({ ok: false, reason: 'signature_mismatch' });
    expect(hubError(() => hmacVerifier(secret, { ...easypost, normalizeSecret: 'NFC' as never }, clock)).errors?.[0]?.field).toBe('/normalizeSecret');
  });

  it("takes the delivery id from a signed field of the body when told to: EasyPost's event id survives a retry's changed body", () => {
    const specs = new URL('../../../shared/specs/easypost/', import.meta.url);
    const fixture = JSON.parse(readFileSync(new URL('client-library-fixtures.json', specs), 'utf8')).webhooks as { secret: string; hmac_signature: string };
    let event = readFileSync(new URL('event-body.json', specs));
    if (event.at(-1) === 0x0a) event = event.subarray(0, -1);
    const config = { signatureHeader: 'X-Hmac-Signature', encoding: 'hex' as const, prefix: 'hmac-sha256-hex=', normalizeSecret: 'NFKD' as const, deliveryIdField: '/id' };
    const verifier = hmacVerifier(fixture.secret, config, clock);
    expect(verifyNow(verifier, request({ 'x-hmac-signature': fixture.hmac_signature }, event))).toEqual({ ok: true, deliveryId: 'evt_1' });
    // The same event sent again once its first URL answered: its lists and status changed, and so its signature.
    const parsed = JSON.parse(event.toString('utf8'));
    const retry = JSON.stringify({ ...parsed, pending_urls: [], completed_urls: parsed.pending_urls, status: 'completed' });
    const key = Buffer.from(fixture.secret.normalize('NFKD'), 'utf8');
    const signature = 'hmac-sha256-hex=' + createHmac('sha256', key).update(retry).digest('hex');
    expect(verifyNow(verifier, request({ 'x-hmac-signature': signature }, retry))).toEqual({ ok: true, deliveryId: 'evt_1' });
    // Only after the signature: a forged body with the same id is refused as ever.
    expect(verifyNow(verifier, request({ 'x-hmac-signature': fixture.hmac_signature }, retry)).ok).toBe(false);

    // No such field, a field that is not a string or number, or a body that is not JSON: the body's hash.
    const signedBy = (content: string) => request({ 'x-signature': mac(content).toString('hex') }, content);
    const byField = (pointer: string) => hmacVerifier(secret, { signatureHeader: 'x-signature', encoding: 'hex', deliveryIdField: pointer }, clock);
    for (const content of ['{"other":1}', '{"id":""}', '{"id":{"x":1}}', '{"id":null}', 'not json', '[1,2]']) {
      expect(verifyNow(byField('/id'), signedBy(content)), content).toEqual({ ok: true, deliveryId: bodyId(content) });
    }
    expect(verifyNow(byField('/data/n'), signedBy('{"data":{"n":42}}'))).toEqual({ ok: true, deliveryId: '42' });
    const long = JSON.stringify({ id: 'x'.repeat(300) });
    expect(verifyNow(byField('/id'), signedBy(long))).toEqual({ ok: true, deliveryId: bodyId('x'.repeat(300)) });
    expect(hubError(() => byField('id')).errors?.[0]?.field).toBe('/deliveryIdField');
    expect(hubError(() => byField('')).errors?.[0]?.field).toBe('/deliveryIdField');
  });

  it('takes the delivery id from a hash of the signed body, never from an unsigned header, so any resend dedupes', () => {
    const withHeader = hmacVerifier(secret, { signatureHeader: 'x-signature', encoding: 'hex', deliveryIdHeader: 'X-Delivery-Id' }, clock);
    const sig = { 'x-signature': mac(body).toString('hex') };
    // The header is not signed: a captured request resent under a new id must not count as a new delivery.
    for (const id of ['d-42', 'attacker-1', 'd'.repeat(256)]) {
      expect(verifyNow(withHeader, request({ ...sig, 'x-delivery-id': id }, body))).toEqual({ ok: true, deliveryId: bodyId(body) });
    }
    expect(verifyNow(withHeader, request(sig, body))).toEqual({ ok: true, deliveryId: bodyId(body) });

    const plain = hmacVerifier(secret, { signatureHeader: 'x-signature', encoding: 'hex' }, clock);
    const first = verifyNow(plain, request(sig, body));
    const resend = verifyNow(plain, request(sig, body));
    const other = verifyNow(plain, request({ 'x-signature': mac('{}').toString('hex') }, '{}'));
    expect(first).toEqual(resend);
    expect(first.ok && other.ok && first.deliveryId !== other.deliveryId).toBe(true);
  });

  it('rejects digests of the wrong length, garbage, a tampered body and another secret, as a mismatch', () => {
    const hex = hmacVerifier(secret, { signatureHeader: 'x-signature', encoding: 'hex' }, clock);
    const b64 = hmacVerifier(secret, { signatureHeader: 'x-signature', encoding: 'base64' }, clock);
    const digest = mac(body);
    for (const [verifier, sig] of [
      [hex, digest.toString('hex').slice(0, 63)],
      [hex, `${digest.toString('hex')}00`],
      [hex, digest.subarray(0, 31).toString('hex')],
      [hex, `${digest.toString('hex').slice(0, 62)}zz`],
      [hex, digest.toString('base64')],
      [b64, digest.subarray(0, 31).toString('base64')],
      [b64, Buffer.concat([digest, Buffer.from([0])]).toString('base64')],
      [b64, digest.toString('base64url').replace(/^./, '-')],
      [b64, digest.toString('hex')],
      [b64, '%%% not a digest'],
    ] as const) {
      expect(verifyNow(verifier, request({ 'x-signature': sig }, body)), sig).toEqual({ ok: false, reason: 'signature_mismatch' });
    }
    expect(verifyNow(hex, request({ 'x-signature': digest.toString('hex') }, `${body} `))).toEqual({ ok: false, reason: 'signature_mismatch' });
    expect(verifyNow(hex, request({ 'x-signature': mac(body, 'another').toString('hex') }, body))).toEqual({ ok: false, reason: 'signature_mismatch' });
    expect(verifyNow(hex, request({}, body))).toEqual({ ok: false, reason: 'missing_headers' });
  });

  it('verifies non-UTF-8 and empty bodies byte for byte', () => {
    const hex = hmacVerifier(secret, { signatureHeader: 'x-signature', encoding: 'hex' }, clock);
    const bytes = Buffer.from([0xff, 0x00, 0xc3, 0x28]);
    expect(verifyNow(hex, request({ 'x-signature': mac(bytes).toString('hex') }, bytes)).ok).toBe(true);
    expect(verifyNow(hex, request({ 'x-signature': mac('').toString('hex') }, new Uint8Array())).ok).toBe(true);
  });

  it('checks its configuration when built', () => {
    expect(hubError(() => hmacVerifier('', { signatureHeader: 'x-signature', encoding: 'hex' }, clock)).errors?.[0]?.field).toBe('/secret');
    expect(hubError(() => hmacVerifier(secret, { signatureHeader: 'x signature', encoding: 'hex' }, clock)).errors?.[0]?.field).toBe('/signatureHeader');
    expect(hubError(() => hmacVerifier(secret, { signatureHeader: 'x-signature', encoding: 'hex', timestampHeader: '' }, clock)).errors?.[0]?.field).toBe('/timestampHeader');
    expect(hubError(() => hmacVerifier(secret, { signatureHeader: 'x-signature', encoding: 'hex', deliveryIdHeader: 'x:id' }, clock)).errors?.[0]?.field).toBe('/deliveryIdHeader');
    expect(hubError(() => hmacVerifier(secret, { signatureHeader: 'x-signature', encoding: 'base32' as 'hex' }, clock)).errors?.[0]?.field).toBe('/encoding');
  });

  it('never throws, whatever the headers and body', () => {
    const verifier = hmacVerifier(
      secret,
      { signatureHeader: 'x-signature', encoding: 'base64', prefix: 'v1,', timestampHeader: 'x-timestamp', deliveryIdHeader: 'x-id' },
      clock,
    );
    fc.assert(
      fc.property(fc.option(headerValue), fc.option(headerValue), fc.option(headerValue), fc.uint8Array({ maxLength: 200 }), (sig, ts, id, bytes) => {
        const headers: Record<string, string> = {};
        if (sig !== null) headers['x-signature'] = sig;
        if (ts !== null) headers['x-timestamp'] = ts;
        if (id !== null) headers['x-id'] = id;
        expect(verifyNow(verifier, request(headers, bytes)).ok).toBe(false);
      }),
      { numRuns: 500 },
    );
    expect(verifyNow(verifier, request({ 'x-signature': 'v1,'.repeat(100_000), 'x-timestamp': '9'.repeat(100_000) }, body)).ok).toBe(false);
  });
});

describe('tokenVerifier', () => {
  const token = 'tok_' + 'k'.repeat(28);
  const body = '{"resource_url":"https://ssapi.example/shipments?batchId=1","resource_type":"SHIP_NOTIFY"}';
  const sha = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  const at = (url: string, headers: Record<string, string> = {}): RawRequest => ({ method: 'POST', url, headers: new Headers(headers), body: Buffer.from(body) });

  it('takes the token from the query of the address, by default `token`, or from a parameter named so', () => {
    const verifier = tokenVerifier(token);
    expect(verifyNow(verifier, at(`/hooks/con_1?token=${token}`))).toEqual({ ok: true, deliveryId: sha });
    expect(verifyNow(verifier, at(`/hooks/con_1?a=1&token=${encodeURIComponent(token)}&b=2`))).toEqual({ ok: true, deliveryId: sha });
    expect(verifyNow(tokenVerifier(token, { param: 'k' }), at(`/hooks/con_1?k=${token}`)).ok).toBe(true);
    expect(verifyNow(tokenVerifier(token, { param: 'k' }), at(`/hooks/con_1?token=${token}`))).toEqual({ ok: false, reason: 'missing_token' });
  });

  it('takes it from a header when told to, and then not from the query', () => {
    const verifier = tokenVerifier(token, { header: 'X-Hub-Token' });
    expect(verifyNow(verifier, at('/hooks/con_1', { 'x-hub-token': token }))).toEqual({ ok: true, deliveryId: sha });
    expect(verifyNow(verifier, at(`/hooks/con_1?token=${token}`))).toEqual({ ok: false, reason: 'missing_token' });
  });

  it('refuses a missing, empty, shorter, longer or different token', () => {
    const verifier = tokenVerifier(token);
    for (const url of ['/hooks/con_1', '/hooks/con_1?', '/hooks/con_1?token=', '/hooks/con_1?tok=' + token]) {
      expect(verifyNow(verifier, at(url)), url).toEqual({ ok: false, reason: 'missing_token' });
    }
    for (const other of [token.slice(0, -1), token + 'x', token.toUpperCase(), 'x'.repeat(10_000)]) {
      expect(verifyNow(verifier, at(`/hooks/con_1?token=${other}`))).toEqual({ ok: false, reason: 'token_mismatch' });
    }
  });

  it('dedupes resends on the body, whatever the address says', () => {
    const verifier = tokenVerifier(token);
    const first = verifyNow(verifier, at(`/hooks/con_1?token=${token}`));
    const again = verifyNow(verifier, at(`/hooks/con_1?token=${token}&retry=1`));
    expect(again).toEqual(first);
  });

  it('refuses, when built, a token under 24 characters or a bad header or parameter name', () => {
    expect(hubError(() => tokenVerifier('short-token')).errors?.[0]).toMatchObject({ field: '/secret', code: 'minLength' });
    expect(hubError(() => tokenVerifier(token, { header: 'bad header' })).errors?.[0]?.field).toBe('/tokenHeader');
    expect(hubError(() => tokenVerifier(token, { param: 'a&b' })).errors?.[0]?.field).toBe('/tokenParam');
  });
});
