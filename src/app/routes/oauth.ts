// OAuth2 client credentials (RFC 6749 §4.4): clients of the workspace, and the token endpoint that trades a
// client's id and secret for a short-lived JWT. Token errors carry RFC 6749's `error` member inside problem+json.
import type { Context } from 'hono';
import { auditRequest } from '../../audit/log.ts';
import { checkScopes, coversScope, isScope } from '../../auth/scopes.ts';
import { CLIENT_SECRET_PREFIX, generateSecret, hashSecret } from '../../auth/secrets.ts';
import { HubError } from '../../errors.ts';
import { safeEqual } from '../../lib/secrets.ts';
import type { OauthClientsRow } from '../../store/types.ts';
import type { HubEnv } from '../deps.ts';
import type { RouteTable } from '../define-route.ts';
import { jsonWithEtag, present, respondResource } from '../http.ts';
import { assertAuthAllowed, recordAuthFailure } from '../middleware/auth.ts';
import { LIST_PARAMS, listOwned, loadOwned, nowIso, PROBLEM } from './common.ts';

const CLIENT = 'hub:tables/oauth_clients';

interface TokenRequest {
  grant_type: string;
  client_id?: string;
  client_secret?: string;
  scope?: string;
}

function oauthError(code: 'invalid_client' | 'invalid_grant' | 'unsupported_grant_type' | 'invalid_scope', message: string, extraHeaders?: Record<string, string>) {
  return new HubError(code, message, { extra: { error: code, error_description: message }, headers: extraHeaders });
}

/** Client authentication by HTTP Basic (preferred by RFC 6749 §2.3.1) or by form fields, not both. */
const BASIC_CHALLENGE = { 'WWW-Authenticate': 'Basic realm="hub"' };

function clientCredentials(c: Context<HubEnv>, body: TokenRequest): { id: string; secret: string; basic: boolean } {
  const header = c.req.header('authorization');
  if (header?.toLowerCase().startsWith('basic ')) {
    if (body.client_id !== undefined || body.client_secret !== undefined) {
      throw oauthError('invalid_client', 'Authenticate with HTTP Basic or with client_id and client_secret, not both');
    }
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i < 0) throw oauthError('invalid_client', 'The Basic credentials are malformed', BASIC_CHALLENGE);
    try {
      // RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined
      return { id: decodeURIComponent(decoded.slice(0, i)), secret: decodeURIComponent(decoded.slice(i + 1)), basic: true };
    } catch {
      throw oauthError('invalid_client', 'The Basic credentials are not validly encoded', BASIC_CHALLENGE);
    }
  }
  if (!body.client_id || !body.client_secret) {
    throw oauthError('invalid_client', 'Send the client id and secret (HTTP Basic, or client_id and client_secret)', BASIC_CHALLENGE);
  }
  return { id: body.client_id, secret: body.client_secret, basic: false };
}

export function registerOAuthRoutes(routes: RouteTable): void {
  routes.add<TokenRequest>(
    {
      method: 'post',
      path: '/v1/oauth/token',
      operationId: 'issueToken',
      summary: 'Issue an access token for a client (client credentials grant)',
      description: 'Form-encoded as RFC 6749 prescribes (JSON is accepted too). The token is an ES256 JWT; verify it with `/.well-known/jwks.json`.',
      tag: 'OAuth',
      auth: false,
      body: { schema: 'hub:api/oauth-token-request', form: true },
      responses: {
        200: {
          description: 'The access token',
          schema: {
            type: 'object',
            required: ['access_token', 'token_type', 'expires_in', 'scope'],
            properties: { access_token: { type: 'string' }, token_type: { const: 'Bearer' }, expires_in: { type: 'integer' }, scope: { type: 'string' } },
          },
        },
        400: PROBLEM('unsupported_grant_type, invalid_scope'),
        401: PROBLEM('invalid_client'),
      },
    },
    async (c, { body }) => {
      const { store, tokens } = c.get('deps');
      if (body.grant_type !== 'client_credentials') {
        throw oauthError('unsupported_grant_type', 'Only the client_credentials grant is supported');
      }
      // Failed client authentications count against the same per-address budget as failed API keys.
      assertAuthAllowed(c);
      let creds: ReturnType<typeof clientCredentials>;
      try {
        creds = clientCredentials(c, body);
      } catch (err) {
        recordAuthFailure(c);
        throw err;
      }
      const client = creds.id.length <= 36 ? await store.table('oauth_clients').get(creds.id) : null;
      // Compare even when the client is unknown, so response time does not tell which ids exist.
      const ok = safeEqual(client?.secretHash ?? '0'.repeat(64), hashSecret(creds.secret));
      if (!client || !ok || client.revokedAt) {
        recordAuthFailure(c);
        // RFC 6749 §5.2: a client that authenticated with the Authorization header is answered with a challenge
        throw oauthError('invalid_client', 'Client authentication failed', creds.basic ? BASIC_CHALLENGE : undefined);
      }
      let scopes = client.scopes;
      if (body.scope !== undefined && body.scope.trim() !== '') {
        const asked = [...new Set(body.scope.trim().split(/\s+/))];
        const refused = asked.filter((s) => !isScope(s) || !coversScope(client.scopes, s));
        if (refused.length) throw oauthError('invalid_scope', `The client may not request: ${refused.join(' ')}`);
        scopes = asked;
      }
      const { token, expiresIn } = await tokens.issue({ clientId: client.id, workspaceId: client.workspaceId, scopes, ttlSeconds: client.tokenTtlSeconds });
      c.header('Cache-Control', 'no-store');
      c.header('Pragma', 'no-cache');
      return c.json({ access_token: token, token_type: 'Bearer', expires_in: expiresIn, scope: scopes.join(' ') });
    },
  );

  routes.add<{ name: string; scopes: string[]; tokenTtlSeconds?: number }>(
    {
      method: 'post',
      path: '/v1/oauth/clients',
      operationId: 'createOAuthClient',
      summary: 'Create an OAuth client; its secret is returned once',
      tag: 'OAuth',
      auth: { resource: 'oauth_clients', action: 'write' },
      body: { schema: 'hub:api/oauth-client-create' },
      responses: {
        201: {
          description: 'The client, with `clientId` and `clientSecret` (shown once)',
          schema: { extend: CLIENT, required: ['clientId', 'clientSecret'], properties: { clientId: { type: 'string' }, clientSecret: { type: 'string', description: 'Shown this once; store it now.' } } },
        },
      },
    },
    async (c, { body }) => {
      const { store } = c.get('deps');
      const principal = c.get('principal');
      checkScopes(body.scopes, principal.scopes);
      const { secret, hash } = generateSecret(CLIENT_SECRET_PREFIX);
      const row = await store.transaction(async (tx) => {
        const client = await tx.table('oauth_clients').insert({
          workspaceId: principal.workspaceId,
          name: body.name,
          secretHash: hash,
          scopes: body.scopes,
          tokenTtlSeconds: body.tokenTtlSeconds ?? 900,
          createdBy: `${principal.type}:${principal.id}`,
        });
        await auditRequest(tx, c, { action: 'oauth_client.created', resourceType: 'oauth_client', resourceId: client.id, details: { scopes: client.scopes } });
        return client;
      });
      return jsonWithEtag(c, { ...present('oauth_clients', row), clientId: row.id, clientSecret: secret, version: row.version }, 201, `/v1/oauth/clients/${row.id}`);
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/oauth/clients',
      operationId: 'listOAuthClients',
      summary: 'List the OAuth clients of the workspace, newest first',
      tag: 'OAuth',
      auth: { resource: 'oauth_clients', action: 'read' },
      query: LIST_PARAMS,
      responses: { 200: { description: 'A page of clients', schema: { list: CLIENT } } },
    },
    (c, { query }) => listOwned(c, 'oauth_clients', query),
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/oauth/clients/{id}',
      operationId: 'getOAuthClient',
      summary: 'Get an OAuth client (never its secret)',
      tag: 'OAuth',
      auth: { resource: 'oauth_clients', action: 'read' },
      responses: { 200: { description: 'The client', schema: CLIENT }, 404: PROBLEM('No such client') },
    },
    async (c) => respondResource(c, present('oauth_clients', await loadOwned(c, 'oauth_clients', c.req.param('id')!)) as OauthClientsRow),
  );

  routes.add(
    {
      method: 'post',
      path: '/v1/oauth/clients/{id}/revoke',
      operationId: 'revokeOAuthClient',
      summary: 'Revoke a client: it gets no new tokens and its current tokens stop working at once',
      tag: 'OAuth',
      auth: { resource: 'oauth_clients', action: 'write' },
      responses: { 200: { description: 'The revoked client', schema: CLIENT }, 404: PROBLEM('No such client') },
    },
    async (c) => {
      const { store } = c.get('deps');
      const row = await store.transaction(async (tx) => {
        const client = await loadOwned(c, 'oauth_clients', c.req.param('id')!, tx);
        if (client.revokedAt) return client;
        const updated = await tx.table('oauth_clients').update(client.id, { revokedAt: nowIso(c) }, { ifVersion: client.version });
        await auditRequest(tx, c, { action: 'oauth_client.revoked', resourceType: 'oauth_client', resourceId: client.id });
        return updated;
      });
      return jsonWithEtag(c, present('oauth_clients', row) as OauthClientsRow);
    },
  );
}
