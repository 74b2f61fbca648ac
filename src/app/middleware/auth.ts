// Authentication: an API key (Authorization: Bearer or X-API-Key) or an OAuth access token (Bearer JWT).
// Every failure is the same 401 without detail on which part failed, so keys cannot be probed.
import type { Context, MiddlewareHandler } from 'hono';
import { hashSecret, looksLikeApiKey } from '../../auth/secrets.ts';
import { requireScope, type Action, type Principal, type Resource } from '../../auth/scopes.ts';
import { HubError } from '../../errors.ts';
import type { AppDeps, HubEnv } from '../deps.ts';
import { clientIp } from '../http.ts';
import { applyRateLimit } from './rate-limit.ts';

const LAST_USED_EVERY_MS = 60_000;
const lastUsedWrites = new Map<string, number>();

function credentialsOf(c: Context<HubEnv>): string | null {
  const header = c.req.header('authorization');
  if (header !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw new HubError('unauthenticated', 'Use "Authorization: Bearer <key or token>"');
    return m[1]!;
  }
  return c.req.header('x-api-key')?.trim() || null;
}

/** Records when a key or client was last used, at most once a minute each, off the request's path. */
function touch(deps: AppDeps, table: 'api_keys' | 'oauth_clients', id: string, now: number): void {
  const last = lastUsedWrites.get(id) ?? 0;
  if (now - last < LAST_USED_EVERY_MS) return;
  lastUsedWrites.set(id, now);
  if (lastUsedWrites.size > 100_000) lastUsedWrites.clear();
  const at = new Date(now).toISOString();
  queueMicrotask(() => {
    deps.store
      .table(table)
      .get(id)
      .then((row) => row && deps.store.table(table).update(id, { lastUsedAt: at }, { ifVersion: row.version }))
      .catch((err: unknown) => deps.log.debug('lastUsedAt not recorded', { id, err }));
  });
}

async function principalFromApiKey(deps: AppDeps, secret: string): Promise<Principal> {
  const hash = hashSecret(secret);
  let key = deps.keyCache.get(hash);
  if (key === undefined) {
    const generation = deps.keyCache.generation();
    key = (await deps.store.table('api_keys').query({ where: { hash }, limit: 1 })).items[0] ?? null;
    deps.keyCache.set(hash, key, generation);
  }
  const now = deps.clock.now();
  if (!key || key.revokedAt || (key.expiresAt && Date.parse(key.expiresAt) <= now)) {
    throw new HubError('unauthenticated', 'The API key is not valid, or it was revoked or has expired');
  }
  touch(deps, 'api_keys', key.id, now);
  return {
    type: 'api_key',
    id: key.id,
    workspaceId: key.workspaceId,
    scopes: key.scopes,
    rateLimitPerMinute: key.rateLimitPerMinute ?? null,
  };
}

async function principalFromToken(deps: AppDeps, token: string): Promise<Principal> {
  const claims = await deps.tokens.verify(token);
  // A revoked client's tokens stop working at once, not when they expire.
  const client = await deps.store.table('oauth_clients').get(claims.clientId);
  if (!client || client.revokedAt || client.workspaceId !== claims.workspaceId) {
    throw new HubError('unauthenticated', 'The access token is not valid');
  }
  touch(deps, 'oauth_clients', client.id, deps.clock.now());
  return { type: 'oauth_client', id: client.id, workspaceId: client.workspaceId, scopes: claims.scopes, rateLimitPerMinute: null };
}

/**
 * The guard of every authenticated route, as one middleware (each async layer costs on the hot path):
 * authenticate, then rate-limit the principal, then check the scope the route needs.
 */
export function guard(resource: Resource, action: Action): MiddlewareHandler<HubEnv> {
  return async (c, next) => {
    const principal = await authenticate(c);
    applyRateLimit(c, principal);
    requireScope(principal, resource, action);
    await next();
  };
}

function principalOf(deps: AppDeps, credential: string): Promise<Principal> {
  if (looksLikeApiKey(credential)) return principalFromApiKey(deps, credential);
  if (credential.split('.').length === 3) return principalFromToken(deps, credential);
  throw new HubError('unauthenticated', 'The API key is not valid, or it was revoked or has expired');
}

/**
 * The budget of failed authentications per client address (API keys, tokens and OAuth clients alike): spent, it
 * answers 429 before any credential is looked at, which slows down guessing.
 */
export function assertAuthAllowed(c: Context<HubEnv>): void {
  const d = c.get('deps').rateLimiter.check(`authfail:${clientIp(c) ?? 'local'}`, AUTH_FAILURES_PER_MINUTE, false);
  if (d.remaining <= 0) {
    throw new HubError('rate_limited', 'Too many failed authentication attempts from this address', {
      headers: { 'Retry-After': String(d.retryAfterSeconds) },
    });
  }
}

export function recordAuthFailure(c: Context<HubEnv>): void {
  c.get('deps').rateLimiter.check(`authfail:${clientIp(c) ?? 'local'}`, AUTH_FAILURES_PER_MINUTE, true);
}

async function authenticate(c: Context<HubEnv>): Promise<Principal> {
  const deps = c.get('deps');
  assertAuthAllowed(c);
  try {
    const credential = credentialsOf(c);
    if (!credential) throw new HubError('unauthenticated', 'Send an API key (Authorization: Bearer … or X-API-Key) or an access token');
    const principal = await principalOf(deps, credential);
    c.set('principal', principal);
    return principal;
  } catch (err) {
    if (err instanceof HubError && err.code === 'unauthenticated') {
      recordAuthFailure(c);
      throw new HubError('unauthenticated', err.message, { headers: { 'WWW-Authenticate': 'Bearer realm="hub"' } });
    }
    throw err;
  }
}

/** Failed authentications allowed per address and minute before 429 (slows down guessing). */
export const AUTH_FAILURES_PER_MINUTE = 30;
