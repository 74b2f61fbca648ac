// API key and client secret material: generated with 256 bits of entropy, stored only as SHA-256 hashes.
// A fast hash is right here (unlike passwords): the secrets are random, so there is nothing to brute-force.
import { randomBytes } from 'node:crypto';
import { sha256Hex } from '../lib/secrets.ts';
import type { ApiKeysRow, Db } from '../store/types.ts';

export const API_KEY_PREFIX = 'hub_sk_';
export const CLIENT_SECRET_PREFIX = 'hub_cs_';

export function generateSecret(prefix: string): { secret: string; hash: string; display: string } {
  const secret = prefix + randomBytes(32).toString('base64url');
  return { secret, hash: hashSecret(secret), display: secret.slice(0, prefix.length + 6) };
}

export function hashSecret(secret: string): string {
  return sha256Hex(secret);
}

export function looksLikeApiKey(token: string): boolean {
  return token.startsWith(API_KEY_PREFIX) && token.length > API_KEY_PREFIX.length + 20 && token.length < 200;
}

/** Writes a new API key row with fresh secret material; the secret is returned to be shown once, never stored. */
export async function insertApiKey(
  db: Db,
  input: { workspaceId: string; name: string; scopes: string[]; expiresAt?: string | null; rateLimitPerMinute?: number | null; createdBy: string },
): Promise<{ key: ApiKeysRow; secret: string }> {
  const { secret, hash, display } = generateSecret(API_KEY_PREFIX);
  const key = await db.table('api_keys').insert({
    workspaceId: input.workspaceId,
    name: input.name,
    prefix: display,
    hash,
    scopes: input.scopes,
    expiresAt: input.expiresAt ?? null,
    rateLimitPerMinute: input.rateLimitPerMinute ?? null,
    createdBy: input.createdBy,
  });
  return { key, secret };
}
