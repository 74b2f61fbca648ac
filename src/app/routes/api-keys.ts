// API keys of the workspace: create (the secret is shown once), list, read, change, revoke, rotate with a grace period.
import { auditRequest } from '../../audit/log.ts';
import { checkScopes } from '../../auth/scopes.ts';
import { insertApiKey } from '../../auth/secrets.ts';
import { HubError } from '../../errors.ts';
import type { ApiKeysRow } from '../../store/types.ts';
import type { RouteTable } from '../define-route.ts';
import { expectVersion, jsonWithEtag, present, respondResource } from '../http.ts';
import { LIST_PARAMS, listOwned, loadOwned, nowIso, PROBLEM } from './common.ts';

interface KeyCreate {
  name: string;
  scopes: string[];
  expiresAt?: string;
  rateLimitPerMinute?: number;
}
type KeyUpdate = Partial<{ name: string; scopes: string[]; expiresAt: string | null; rateLimitPerMinute: number | null }>;

const KEY = 'hub:tables/api_keys';
const WITH_SECRET = {
  extend: KEY,
  required: ['secret'],
  properties: { secret: { type: 'string', description: 'The key. Shown this once; store it now.' } },
};

function futureOrNull(value: string | null | undefined, now: number, field: string): void {
  if (value && Date.parse(value) <= now) {
    throw new HubError('validation_failed', 'The expiry must lie in the future', {
      errors: [{ field, code: 'future', message: 'must be a time in the future' }],
    });
  }
}

export function registerApiKeyRoutes(routes: RouteTable): void {
  routes.add<KeyCreate>(
    {
      method: 'post',
      path: '/v1/api-keys',
      operationId: 'createApiKey',
      summary: 'Create an API key',
      description: 'The key is returned once, in `secret`. A caller can only grant scopes it holds itself.',
      tag: 'API keys',
      auth: { resource: 'keys', action: 'write' },
      body: { schema: 'hub:api/api-key-create' },
      responses: { 201: { description: 'The key, with its secret', schema: WITH_SECRET } },
    },
    async (c, { body }) => {
      const { store, clock } = c.get('deps');
      const principal = c.get('principal');
      checkScopes(body.scopes, principal.scopes);
      futureOrNull(body.expiresAt, clock.now(), '/expiresAt');
      const { key: row, secret } = await store.transaction(async (tx) => {
        const created = await insertApiKey(tx, { ...body, workspaceId: principal.workspaceId, createdBy: `${principal.type}:${principal.id}` });
        await auditRequest(tx, c, { action: 'api_key.created', resourceType: 'api_key', resourceId: created.key.id, details: { scopes: created.key.scopes } });
        return created;
      });
      c.get('deps').keyCache.clear();
      return jsonWithEtag(c, { ...present('api_keys', row), secret, version: row.version }, 201, `/v1/api-keys/${row.id}`);
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/api-keys',
      operationId: 'listApiKeys',
      summary: 'List the API keys of the workspace, newest first',
      tag: 'API keys',
      auth: { resource: 'keys', action: 'read' },
      query: LIST_PARAMS,
      responses: { 200: { description: 'A page of keys', schema: { list: KEY } } },
    },
    (c, { query }) => listOwned(c, 'api_keys', query),
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/api-keys/{id}',
      operationId: 'getApiKey',
      summary: 'Get an API key (never its secret)',
      tag: 'API keys',
      auth: { resource: 'keys', action: 'read' },
      responses: { 200: { description: 'The key', schema: KEY, headers: ['ETag'] }, 404: PROBLEM('No such key in this workspace') },
    },
    async (c) => respondResource(c, present('api_keys', await loadOwned(c, 'api_keys', c.req.param('id')!)) as ApiKeysRow),
  );

  routes.add<KeyUpdate>(
    {
      method: 'patch',
      path: '/v1/api-keys/{id}',
      operationId: 'updateApiKey',
      summary: 'Rename a key or change its scopes, expiry or rate limit',
      tag: 'API keys',
      auth: { resource: 'keys', action: 'write' },
      body: { schema: 'hub:api/api-key-update' },
      ifMatch: true,
      responses: { 200: { description: 'The key', schema: KEY, headers: ['ETag'] }, 404: PROBLEM('No such key'), 412: PROBLEM('Stale If-Match') },
    },
    async (c, { body }) => {
      const { store, clock } = c.get('deps');
      if (body.scopes) checkScopes(body.scopes, c.get('principal').scopes);
      futureOrNull(body.expiresAt, clock.now(), '/expiresAt');
      const row = await store.transaction(async (tx) => {
        const key = await loadOwned(c, 'api_keys', c.req.param('id')!, tx);
        if (key.revokedAt) throw new HubError('conflict', 'A revoked key cannot be changed');
        const updated = await tx.table('api_keys').update(key.id, body, { ifVersion: expectVersion(c, key) });
        await auditRequest(tx, c, { action: 'api_key.updated', resourceType: 'api_key', resourceId: key.id, details: { fields: Object.keys(body) } });
        return updated;
      });
      c.get('deps').keyCache.clear();
      return jsonWithEtag(c, present('api_keys', row) as ApiKeysRow);
    },
  );

  routes.add(
    {
      method: 'post',
      path: '/v1/api-keys/{id}/revoke',
      operationId: 'revokeApiKey',
      summary: 'Revoke a key at once (revoking twice is harmless)',
      tag: 'API keys',
      auth: { resource: 'keys', action: 'write' },
      responses: { 200: { description: 'The revoked key', schema: KEY }, 404: PROBLEM('No such key') },
    },
    async (c) => {
      const { store } = c.get('deps');
      const row = await store.transaction(async (tx) => {
        const key = await loadOwned(c, 'api_keys', c.req.param('id')!, tx);
        if (key.revokedAt) return key;
        const updated = await tx.table('api_keys').update(key.id, { revokedAt: nowIso(c) }, { ifVersion: key.version });
        await auditRequest(tx, c, { action: 'api_key.revoked', resourceType: 'api_key', resourceId: key.id });
        return updated;
      });
      c.get('deps').keyCache.clear();
      return jsonWithEtag(c, present('api_keys', row) as ApiKeysRow);
    },
  );

  routes.add<{ gracePeriodSeconds?: number }>(
    {
      method: 'post',
      path: '/v1/api-keys/{id}/rotate',
      operationId: 'rotateApiKey',
      summary: 'Replace a key with a new one; the old one keeps working for a grace period',
      tag: 'API keys',
      auth: { resource: 'keys', action: 'write' },
      body: { schema: 'hub:api/api-key-rotate', required: false },
      responses: { 201: { description: 'The new key, with its secret', schema: WITH_SECRET }, 404: PROBLEM('No such key'), 409: PROBLEM('The key is revoked or already rotated') },
    },
    async (c, { body }) => {
      const { store, clock, config } = c.get('deps');
      const grace = body.gracePeriodSeconds ?? config.keyGraceSeconds;
      const { key: fresh, secret } = await store.transaction(async (tx) => {
        const old = await loadOwned(c, 'api_keys', c.req.param('id')!, tx);
        if (old.revokedAt) throw new HubError('conflict', 'A revoked key cannot be rotated');
        if (old.rotatedToId) throw new HubError('conflict', `This key was already rotated to ${old.rotatedToId}; rotate that one`);
        const graceEnd = clock.now() + grace * 1000;
        const oldExpiry = old.expiresAt ? Date.parse(old.expiresAt) : Infinity;
        const created = await insertApiKey(tx, {
          workspaceId: old.workspaceId,
          name: old.name,
          scopes: old.scopes,
          expiresAt: old.expiresAt ?? null,
          rateLimitPerMinute: old.rateLimitPerMinute ?? null,
          createdBy: `${c.get('principal').type}:${c.get('principal').id}`,
        });
        const key = created.key;
        await tx.table('api_keys').update(
          old.id,
          { rotatedToId: key.id, expiresAt: new Date(Math.min(graceEnd, oldExpiry)).toISOString() },
          { ifVersion: old.version },
        );
        await auditRequest(tx, c, { action: 'api_key.rotated', resourceType: 'api_key', resourceId: old.id, details: { newKeyId: key.id, gracePeriodSeconds: grace } });
        return created;
      });
      c.get('deps').keyCache.clear();
      return jsonWithEtag(c, { ...present('api_keys', fresh), secret, version: fresh.version }, 201, `/v1/api-keys/${fresh.id}`);
    },
  );
}
