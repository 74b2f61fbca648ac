import { describe, expect, it } from 'vitest';
import { createCipher, generateEncryptionKey, parseEncryptionKey, safeEqual } from './secrets.ts';

describe('createCipher', () => {
  const key = parseEncryptionKey(generateEncryptionKey())!;
  const cipher = createCipher(key);

  it('round-trips and never repeats a ciphertext', () => {
    const a = cipher.encryptJson({ token: 's3cret' });
    expect(a).not.toContain('s3cret');
    expect(cipher.encryptJson({ token: 's3cret' })).not.toBe(a);
    expect(cipher.decryptJson(a)).toEqual({ token: 's3cret' });
  });

  it('rejects a tampered ciphertext', () => {
    const parts = cipher.encrypt('hello').split('.');
    parts[4] = Buffer.from('jello').toString('base64url');
    expect(() => cipher.decrypt(parts.join('.'))).toThrow(/integrity/);
  });

  it('names a key mismatch instead of failing obscurely', () => {
    const other = createCipher(parseEncryptionKey(generateEncryptionKey())!);
    expect(() => other.decrypt(cipher.encrypt('x'))).toThrow(/another key/);
  });
});

describe('parseEncryptionKey', () => {
  it('takes 64 hex characters or 32 bytes of base64, nothing else', () => {
    expect(parseEncryptionKey('ab'.repeat(32))?.length).toBe(32);
    expect(parseEncryptionKey(Buffer.alloc(32, 7).toString('base64'))?.length).toBe(32);
    expect(parseEncryptionKey(Buffer.alloc(32, 7).toString('base64url'))?.length).toBe(32);
    expect(parseEncryptionKey('short')).toBeNull();
    expect(parseEncryptionKey(Buffer.alloc(16).toString('base64'))).toBeNull();
  });
});

describe('safeEqual', () => {
  it('compares strings of different lengths without throwing', () => {
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('abc', 'abcd')).toBe(false);
  });
});
