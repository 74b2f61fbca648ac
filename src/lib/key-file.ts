// The embedded hub's encryption key: HUB_ENCRYPTION_KEY when set, otherwise data/encryption.key, created on first
// start with 0600 permissions. Losing this file means losing the stored credentials: back it up with the database.
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../config.ts';
import { generateEncryptionKey, parseEncryptionKey } from './secrets.ts';

export function resolveEncryptionKey(given: string | undefined, dataDir: string): { key: Buffer; source: string; created: boolean } {
  if (given !== undefined) {
    const key = parseEncryptionKey(given);
    if (!key) throw new ConfigError(['HUB_ENCRYPTION_KEY must be 32 bytes, as 64 hex characters or base64 (generate one with: openssl rand -base64 32)']);
    return { key, source: 'HUB_ENCRYPTION_KEY', created: false };
  }
  const file = join(dataDir, 'encryption.key');
  if (existsSync(file)) {
    const key = parseEncryptionKey(readFileSync(file, 'utf8'));
    if (!key) throw new ConfigError([`${file} does not hold a valid key (32 bytes, hex or base64)`]);
    if (process.platform !== 'win32' && (statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
    return { key, source: file, created: false };
  }
  const text = generateEncryptionKey();
  writeFileSync(file, text + '\n', { mode: 0o600, flag: 'wx' });
  return { key: parseEncryptionKey(text)!, source: file, created: true };
}
