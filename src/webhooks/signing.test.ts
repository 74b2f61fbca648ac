// Outbound signing: pinned against the reference vector and proven against the official `standardwebhooks` library,
// because a consumer verifies our deliveries with that library (or a port of it), not with our own verifier.
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { HubError } from '../errors.ts';
import { generateSecret, secretKey, signatureHeader, standardHeaders } from './signing.ts';
import { standardWebhooksVerifier } from './verifiers.ts';

// The spec's own header example ('v1,K5oZfz…') gives no secret, so it cannot be reproduced. This is the vector
// the Standard Webhooks (and Svix) libraries test themselves with; the official library also produces it.
const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};

const nowSeconds = () => Math.floor(Date.now() / 1000);

function request(headers: Record<string, string>, body: string | Uint8Array) {
  return { method: 'POST', url: 'https://hub.example/hooks/con_1', headers: new Headers(headers), body: typeof body === 'string' ? Buffer.from(body) : body };
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

describe('signatureHeader', () => {
  it('reproduces the reference vector, and so does the official library', () => {
    const key = secretKey(VECTOR.secret);
    expect(signatureHeader(VECTOR.id, VECTOR.timestamp, VECTOR.body, [key])).toBe(VECTOR.signature);
    expect(new Webhook(VECTOR.secret).sign(VECTOR.id, new Date(VECTOR.timestamp * 1000), VECTOR.body)).toBe(VECTOR.signature);
  });

  it('signs a string as its UTF-8 bytes, so string and byte bodies sign alike', () => {
    const key = secretKey(generateSecret());
    const body = '{"name":"Grüße 🚚"}';
    expect(signatureHeader('msg_1', 1700000000, body, [key])).toBe(signatureHeader('msg_1', 1700000000, new TextEncoder().encode(body), [key]));
  });

  it('puts one v1 entry per key, current key first', () => {
    const current = secretKey(generateSecret());
    const previous = secretKey(generateSecret());
    const both = signatureHeader('msg_1', 1700000000, '{}', [current, previous]);
    expect(both).toBe(`${signatureHeader('msg_1', 1700000000, '{}', [current])} ${signatureHeader('msg_1', 1700000000, '{}', [previous])}`);
    expect(both).toMatch(/^v1,[A-Za-z0-9+/]{43}= v1,[A-Za-z0-9+/]{43}=$/);
  });

  it("refuses ids and timestamps that could move the '.' delimiters, and an empty key list", () => {
    const key = secretKey(generateSecret());
    for (const id of ['', 'msg.1', 'msg 1', 'msg/1', 'x'.repeat(256)]) {
      expect(() => signatureHeader(id, 1700000000, '{}', [key]), id).toThrow(RangeError);
    }
    expect(() => signatureHeader('x'.repeat(255), 1700000000, '{}', [key])).not.toThrow();
    for (const ts of [1.5, -1, Number.NaN, Number.POSITIVE_INFINITY, 1e21]) {
      expect(() => signatureHeader('msg_1', ts, '{}', [key]), String(ts)).toThrow(RangeError);
    }
    expect(() => signatureHeader('msg_1', 1700000000, '{}', [])).toThrow(RangeError);
  });
});

describe('standardHeaders: interoperability with the official library', () => {
  it('is verified by the official library for a JSON body and a non-ASCII body', () => {
    const secret = generateSecret();
    const wh = new Webhook(secret);
    const json = JSON.stringify({ type: 'stock.changed', data: { sku: 'A-1', onHand: 3 } });
    expect(wh.verify(json, standardHeaders('del_01JABC', nowSeconds(), json, [secretKey(secret)]))).toEqual(JSON.parse(json));

    const text = 'Lieferung für Zürich: 5 × Kiste, 发货 ✓';
    expect(() => wh.verify(text, standardHeaders('del_01JABD', nowSeconds(), text, [secretKey(secret)]), { jsonParse: false })).not.toThrow();
    expect(() => wh.verify(text, standardHeaders('del_01JABD', nowSeconds(), `${text}!`, [secretKey(secret)]), { jsonParse: false })).toThrow();
  });

  it('during a rotation, verifies under either secret alone, with the official library and with ours', () => {
    const current = generateSecret();
    const previous = generateSecret();
    const body = '{"type":"order.created"}';
    const headers = standardHeaders('del_rot', nowSeconds(), body, [secretKey(current), secretKey(previous)]);
    expect(headers['webhook-signature']!.split(' ')).toHaveLength(2);
    for (const secret of [current, previous]) {
      expect(() => new Webhook(secret).verify(body, headers)).not.toThrow();
      expect(standardWebhooksVerifier([secret], {}, Date.now).verify(request(headers, body))).toEqual({ ok: true, deliveryId: 'del_rot' });
    }
    expect(() => new Webhook(generateSecret()).verify(body, headers)).toThrow();
  });

  it('returns exactly the three headers', () => {
    const headers = standardHeaders('del_1', 1700000000, '{}', [secretKey(generateSecret())]);
    expect(Object.keys(headers).sort()).toEqual(['webhook-id', 'webhook-signature', 'webhook-timestamp']);
    expect(headers['webhook-id']).toBe('del_1');
    expect(headers['webhook-timestamp']).toBe('1700000000');
  });
});

describe('generateSecret', () => {
  it("is 'whsec_' and base64 of 32 bytes, usable by the official library", () => {
    const secret = generateSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(secretKey(secret)).toHaveLength(32);
    expect(() => new Webhook(secret)).not.toThrow();
  });

  it('never repeats', () => {
    const secrets = new Set(Array.from({ length: 200 }, generateSecret));
    expect(secrets.size).toBe(200);
  });
});

describe('secretKey', () => {
  it("takes 'whsec_' secrets and bare base64 alike", () => {
    const bytes = randomBytes(32);
    expect(secretKey(`whsec_${bytes.toString('base64')}`).equals(bytes)).toBe(true);
    expect(secretKey(bytes.toString('base64')).equals(bytes)).toBe(true);
  });

  it('accepts the bounds of 24 and 64 bytes', () => {
    expect(secretKey(`whsec_${randomBytes(24).toString('base64')}`)).toHaveLength(24);
    expect(secretKey(`whsec_${randomBytes(64).toString('base64')}`)).toHaveLength(64);
  });

  it('rejects what is not base64, naming the field and never echoing the secret', () => {
    for (const bad of ['', 'whsec_', 'whsec_not base64 at all!', `whsec_${randomBytes(32).toString('base64url')}_-`, `whsec_${randomBytes(32).toString('base64').slice(0, -1)}`]) {
      const err = hubError(() => secretKey(bad));
      expect(err.code, bad).toBe('validation_failed');
      expect(err.errors).toEqual([expect.objectContaining({ field: '/secret', code: 'format' })]);
      if (bad.length > 6) expect(err.message).not.toContain(bad.slice(6));
    }
    expect(hubError(() => secretKey(undefined as unknown as string)).code).toBe('validation_failed');
  });

  it('rejects keys shorter than 24 bytes or longer than 64, at the given pointer', () => {
    const short = hubError(() => secretKey(`whsec_${randomBytes(23).toString('base64')}`, '/endpoints/0/secret'));
    expect(short.code).toBe('validation_failed');
    expect(short.errors).toEqual([expect.objectContaining({ field: '/endpoints/0/secret', code: 'length' })]);
    const long = hubError(() => secretKey(randomBytes(65).toString('base64')));
    expect(long.errors).toEqual([expect.objectContaining({ field: '/secret', code: 'length' })]);
  });
});
