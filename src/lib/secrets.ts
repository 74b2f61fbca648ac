// Secrets at rest and in comparison: AES-256-GCM for credentials, SHA-256 for high-entropy tokens (API keys,
// client secrets), and constant-time comparison of digests.
import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { HubError } from '../errors.ts';

const VERSION = 'v1';

export interface Cipher {
  /** Short fingerprint of the key, stored with each ciphertext so a wrong key is told apart from tampering. */
  readonly keyId: string;
  encrypt(plaintext: string): string;
  decrypt(ciphertext: string): string;
  encryptJson(value: unknown): string;
  decryptJson<T = unknown>(ciphertext: string): T;
}

export function sha256Hex(input: string | Buffer): string {
  return createHash('sha256').update(input).digest('hex');
}

/** Constant-time equality of two strings of any length (compares their SHA-256 digests). */
export function safeEqual(a: string | Buffer, b: string | Buffer): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db);
}

/** Parses a 32-byte key given as 64 hex characters or as base64/base64url. Returns null when it is not one. */
export function parseEncryptionKey(text: string): Buffer | null {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) {
    const b = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (b.length === 32) return b;
  }
  return null;
}

export function generateEncryptionKey(): string {
  return randomBytes(32).toString('base64');
}

export function createCipher(key: Buffer): Cipher {
  if (key.length !== 32) throw new Error('An AES-256 key has 32 bytes');
  const keyId = sha256Hex(key).slice(0, 8);
  const cipher: Cipher = {
    keyId,
    encrypt(plaintext) {
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', key, iv);
      // The key id is bound as associated data: a ciphertext moved under another key id fails to open.
      c.setAAD(Buffer.from(`${VERSION}.${keyId}`));
      const body = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
      return [VERSION, keyId, iv.toString('base64url'), c.getAuthTag().toString('base64url'), body.toString('base64url')].join('.');
    },
    decrypt(ciphertext) {
      const parts = ciphertext.split('.');
      if (parts.length !== 5 || parts[0] !== VERSION) throw new HubError('internal_error', 'A stored secret is not in a known format');
      const [, kid, iv, tag, body] = parts as [string, string, string, string, string];
      if (kid !== keyId) {
        throw new HubError('internal_error', `A stored secret was encrypted with another key (${kid}); check HUB_ENCRYPTION_KEY`);
      }
      try {
        const d = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
        d.setAAD(Buffer.from(`${VERSION}.${keyId}`));
        d.setAuthTag(Buffer.from(tag, 'base64url'));
        return Buffer.concat([d.update(Buffer.from(body, 'base64url')), d.final()]).toString('utf8');
      } catch (err) {
        throw new HubError('internal_error', 'A stored secret failed its integrity check', { cause: err });
      }
    },
    encryptJson: (value) => cipher.encrypt(JSON.stringify(value)),
    decryptJson: <T,>(text: string) => JSON.parse(cipher.decrypt(text)) as T,
  };
  return cipher;
}
