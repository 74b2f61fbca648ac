// Idempotency-Key on POST: the first request with a key runs and its response is stored; a retry with the same
// key and the same request gets that stored response; the same key with another request gets 422.
// Keys are scoped to the workspace and kept for 24 hours.
import type { MiddlewareHandler } from 'hono';
import { HubError, isHubError } from '../../errors.ts';
import { sha256Hex } from '../../lib/secrets.ts';
import type { IdempotencyKeysRow } from '../../store/types.ts';
import type { HubEnv } from '../deps.ts';

export const IDEMPOTENCY_TTL_MS = 24 * 3600_000;
/** An in-progress record older than this belongs to a request that died; a retry may take it over. */
const ABANDONED_AFTER_MS = 60_000;
const REPLAYED_HEADERS = ['content-type', 'etag', 'location'];

export function idempotency(): MiddlewareHandler<HubEnv> {
  return async (c, next) => {
    const key = c.req.header('idempotency-key');
    if (key === undefined) return next();
    if (!/^[\x21-\x7e]{1,255}$/.test(key)) {
      throw new HubError('invalid_idempotency_key', 'Idempotency-Key must be 1 to 255 visible ASCII characters', {
        errors: [{ field: '/headers/idempotency-key', code: 'format', message: 'must be 1 to 255 visible ASCII characters' }],
      });
    }
    const { store, clock, cipher } = c.get('deps');
    const table = store.table('idempotency_keys');
    const workspaceId = c.get('principal').workspaceId;
    const id = `idem_${sha256Hex(`${workspaceId}\u0000${key}`).slice(0, 31)}`;
    const url = new URL(c.req.url);
    const fingerprint = sha256Hex(`${c.req.method} ${url.pathname}${url.search}\n${await c.req.text()}`);
    const now = clock.now();

    let record: IdempotencyKeysRow | null = await table.get(id);
    if (record && Date.parse(record.expiresAt) <= now) {
      await table.delete(id, { ifVersion: record.version }).catch(() => undefined);
      record = null;
    }
    if (record) {
      if (record.fingerprint !== fingerprint) {
        throw new HubError('idempotency_key_reused', 'This Idempotency-Key was used with a different request; use a new key');
      }
      if (record.state === 'completed') {
        const headers = new Headers((record.responseHeaders ?? {}) as Record<string, string>);
        headers.set('Idempotent-Replayed', 'true');
        headers.set('X-Request-Id', c.get('requestId'));
        headers.set('X-Content-Type-Options', 'nosniff');
        const status = record.responseStatus ?? 200;
        // Stored encrypted: a response may carry a secret shown once (a new API key, a client secret).
        const body = record.responseBody ? cipher.decrypt(record.responseBody) : null;
        return new Response(status === 204 || status === 304 ? null : body, { status, headers });
      }
      if (now - Date.parse(record.updatedAt) < ABANDONED_AFTER_MS) {
        throw new HubError('idempotency_key_in_progress', 'A request with this Idempotency-Key is still running; retry shortly', {
          headers: { 'Retry-After': '1' },
        });
      }
      try {
        record = await table.update(id, { state: 'in_progress' }, { ifVersion: record.version });
      } catch (err) {
        if (isHubError(err, 'version_conflict')) throw new HubError('idempotency_key_in_progress', undefined, { headers: { 'Retry-After': '1' } });
        throw err;
      }
    } else {
      try {
        record = await table.insert({
          id,
          workspaceId,
          key,
          fingerprint,
          state: 'in_progress',
          expiresAt: new Date(now + IDEMPOTENCY_TTL_MS).toISOString(),
        });
      } catch (err) {
        // another request with the same key got there first
        if (isHubError(err, 'already_exists')) throw new HubError('idempotency_key_in_progress', undefined, { headers: { 'Retry-After': '1' } });
        throw err;
      }
    }

    c.set('idempotencyKey', key);
    await next();

    const res = c.res;
    // Server errors and throttling are not outcomes worth repeating: free the key so a retry runs again.
    if (res.status >= 500 || res.status === 429) {
      await table.delete(id).catch(() => undefined);
      return;
    }
    const headers: Record<string, string> = {};
    for (const h of REPLAYED_HEADERS) {
      const v = res.headers.get(h);
      if (v !== null) headers[h] = v;
    }
    await table.update(id, {
      state: 'completed',
      responseStatus: res.status,
      responseHeaders: headers,
      responseBody: cipher.encrypt(await res.clone().text()),
    });
  };
}
