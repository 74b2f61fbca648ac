// OAuth2 client credentials end to end: clients, the token endpoint, JWKS, and access tokens on the API.
import { SignJWT, base64url, createLocalJWKSet, decodeProtectedHeader, generateKeyPair, jwtVerify, type JWK } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestHub, expectProblem, type CallResult, type TestHub } from './helpers.ts';

const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };

let t: TestHub;

beforeEach(async () => {
  t = await createTestHub();
});

afterEach(async () => {
  await t.close();
});

interface CreatedClient {
  id: string;
  secret: string;
  body: Record<string, any>;
}

async function createClient(scopes: string[], extra: Record<string, unknown> = {}, key = t.adminKey): Promise<CreatedClient> {
  const res = await t.call('POST', '/v1/oauth/clients', { key, body: { name: `client ${scopes.join(' ')}`, scopes, ...extra } });
  expect(res.status, res.text).toBe(201);
  return { id: res.body.clientId, secret: res.body.clientSecret, body: res.body };
}

function form(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString();
}

function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

function requestToken(fields: Record<string, string>, headers: Record<string, string> = {}): Promise<CallResult> {
  return t.call('POST', '/v1/oauth/token', { key: null, rawBody: form(fields), headers: { ...FORM, ...headers } });
}

async function tokenFor(client: CreatedClient, scope?: string): Promise<string> {
  const fields: Record<string, string> = { grant_type: 'client_credentials', client_id: client.id, client_secret: client.secret };
  if (scope !== undefined) fields.scope = scope;
  const res = await requestToken(fields);
  expect(res.status, res.text).toBe(200);
  return res.body.access_token as string;
}

function bearer(token: string) {
  return { key: null, headers: { Authorization: `Bearer ${token}` } };
}

/** Replaces the character at `index` by another one of the base64url alphabet. */
function flipChar(s: string, index: number): string {
  const ch = s[index]!;
  return s.slice(0, index) + (ch === 'A' ? 'B' : 'A') + s.slice(index + 1);
}

describe('OAuth clients', () => {
  it('creates a client and shows its secret once', async () => {
    const res = await t.call('POST', '/v1/oauth/clients', { body: { name: 'ERP sync', scopes: ['connections:read'], tokenTtlSeconds: 600 } });
    expect(res.status).toBe(201);
    expect(res.body.clientId).toMatch(/^cli_/);
    expect(res.body.id).toBe(res.body.clientId);
    expect(res.body.clientSecret).toMatch(/^hub_cs_/);
    expect(res.body).toMatchObject({ name: 'ERP sync', scopes: ['connections:read'], tokenTtlSeconds: 600, revokedAt: null });
    expect(res.body).not.toHaveProperty('secretHash');
    expect(res.headers.get('location')).toBe(`/v1/oauth/clients/${res.body.clientId}`);
  });

  it('defaults the token lifetime to 15 minutes', async () => {
    const client = await createClient(['connections:read']);
    expect(client.body.tokenTtlSeconds).toBe(900);
  });

  it('never returns the secret or its hash when reading or listing clients', async () => {
    const client = await createClient(['connections:read']);
    const one = await t.call('GET', `/v1/oauth/clients/${client.id}`);
    expect(one.status).toBe(200);
    expect(one.body.id).toBe(client.id);
    const list = await t.call('GET', '/v1/oauth/clients');
    expect(list.status).toBe(200);
    expect(list.body.data.map((c: { id: string }) => c.id)).toContain(client.id);
    for (const text of [one.text, list.text]) {
      expect(text).not.toContain('secretHash');
      expect(text).not.toContain('clientSecret');
      expect(text).not.toContain(client.secret);
    }
  });

  it('keeps only a hash of the secret in the store', async () => {
    const client = await createClient(['connections:read']);
    const { store } = t.hub.deps;
    const stored = JSON.stringify([
      await store.table('oauth_clients').query({ where: {}, limit: 100 }),
      await store.table('audit_log').query({ where: {}, limit: 100 }),
      await store.table('events').query({ where: {}, limit: 100 }),
    ]);
    expect(stored).toContain(client.id);
    expect(stored).not.toContain(client.secret);
  });

  // The schema says "The secret is shown once; only its hash is stored", but with an Idempotency-Key the idempotency
  // middleware stores the whole 201 body, secret included, in clear in idempotency_keys.responseBody for 24 hours.
  it('keeps the secret out of the store when the request carries an Idempotency-Key', async () => {
    const res = await t.call('POST', '/v1/oauth/clients', { body: { name: 'idempotent', scopes: ['connections:read'] }, headers: { 'Idempotency-Key': 'create-client-1' } });
    expect(res.status).toBe(201);
    const rows = await t.hub.deps.store.table('idempotency_keys').query({ where: {}, limit: 100 });
    expect(rows.items.length).toBe(1);
    expect(JSON.stringify(rows.items)).not.toContain(res.body.clientSecret);
  });

  it('refuses to create a client with scopes the caller does not hold', async () => {
    const keyRes = await t.call('POST', '/v1/api-keys', { body: { name: 'client admin', scopes: ['oauth_clients:write'] } });
    expect(keyRes.status).toBe(201);
    const res = await t.call('POST', '/v1/oauth/clients', { key: keyRes.body.secret, body: { name: 'too strong', scopes: ['*'] } });
    const problem = expectProblem(res, 400, 'validation_failed');
    expect(problem.errors).toEqual(expect.arrayContaining([expect.objectContaining({ field: '/scopes/0' })]));
    expect((await t.call('GET', '/v1/oauth/clients')).body.data).toEqual([]);
  });

  it('lets a caller create a client with a scope it holds', async () => {
    const keyRes = await t.call('POST', '/v1/api-keys', { body: { name: 'client admin', scopes: ['oauth_clients:write', 'connections:read'] } });
    const res = await t.call('POST', '/v1/oauth/clients', { key: keyRes.body.secret, body: { name: 'reader', scopes: ['connections:read'] } });
    expect(res.status).toBe(201);
  });
});

describe('the token endpoint', () => {
  it('issues a token for form-encoded client credentials', async () => {
    const client = await createClient(['connections:read', 'events:read']);
    const res = await requestToken({ grant_type: 'client_credentials', client_id: client.id, client_secret: client.secret });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 900, scope: 'connections:read events:read' });
    expect(res.body.access_token.split('.')).toHaveLength(3);
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('issues a token for HTTP Basic client authentication', async () => {
    const client = await createClient(['connections:read'], { tokenTtlSeconds: 120 });
    const res = await requestToken({ grant_type: 'client_credentials' }, { Authorization: basic(client.id, client.secret) });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ token_type: 'Bearer', expires_in: 120, scope: 'connections:read' });
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('accepts a JSON body too', async () => {
    const client = await createClient(['connections:read']);
    const res = await t.call('POST', '/v1/oauth/token', {
      key: null,
      body: { grant_type: 'client_credentials', client_id: client.id, client_secret: client.secret },
    });
    expect(res.status).toBe(200);
    expect(res.body.token_type).toBe('Bearer');
  });

  it('issues a token with a narrower scope on request', async () => {
    const client = await createClient(['connections:write', 'events:read']);
    const res = await requestToken({ grant_type: 'client_credentials', client_id: client.id, client_secret: client.secret, scope: 'connections:read' });
    expect(res.status).toBe(200);
    expect(res.body.scope).toBe('connections:read');
    const token = res.body.access_token as string;
    expect((await t.call('GET', '/v1/connections', bearer(token))).status).toBe(200);
    expectProblem(await t.call('GET', '/v1/events', bearer(token)), 403, 'insufficient_scope');
    expectProblem(
      await t.call('POST', '/v1/connections', { ...bearer(token), body: { connectorId: 'http', name: 'x', config: { baseUrl: 'http://127.0.0.1:9' } } }),
      403,
      'insufficient_scope',
    );
  });

  it('refuses a scope the client lacks with invalid_scope', async () => {
    const client = await createClient(['connections:read']);
    const res = await requestToken({ grant_type: 'client_credentials', client_id: client.id, client_secret: client.secret, scope: 'connections:write' });
    const problem = expectProblem(res, 400, 'invalid_scope');
    expect(problem.error).toBe('invalid_scope');
    expect(problem.error_description).toEqual(expect.any(String));
  });

  // RFC 6749 §5.2: invalid_scope is for a scope that is "invalid, unknown, malformed, or exceeds the scope granted".
  it('refuses an unknown or malformed scope even for a client that holds every scope', async () => {
    const client = await createClient(['*']);
    for (const scope of ['nonsense', 'widgets:read', 'connections:delete']) {
      const res = await requestToken({ grant_type: 'client_credentials', client_id: client.id, client_secret: client.secret, scope });
      expectProblem(res, 400, 'invalid_scope');
    }
  });

  it('refuses a wrong secret with invalid_client', async () => {
    const client = await createClient(['connections:read']);
    const res = await requestToken({ grant_type: 'client_credentials', client_id: client.id, client_secret: `${client.secret}x` });
    const problem = expectProblem(res, 401, 'invalid_client');
    expect(problem.error).toBe('invalid_client');
    expect(res.text).not.toContain(client.secret);
  });

  it('refuses an unknown client with invalid_client', async () => {
    const res = await requestToken({ grant_type: 'client_credentials', client_id: 'cli_DOESNOTEXIST', client_secret: 'hub_cs_nothing' });
    expectProblem(res, 401, 'invalid_client');
    const long = await requestToken({ grant_type: 'client_credentials', client_id: 'c'.repeat(64), client_secret: 'hub_cs_nothing' });
    expectProblem(long, 401, 'invalid_client');
  });

  it('refuses missing client credentials with invalid_client and a Basic challenge', async () => {
    const res = await requestToken({ grant_type: 'client_credentials' });
    expectProblem(res, 401, 'invalid_client');
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic /);
  });

  it('refuses credentials sent both by HTTP Basic and in the form', async () => {
    const client = await createClient(['connections:read']);
    const res = await requestToken(
      { grant_type: 'client_credentials', client_id: client.id, client_secret: client.secret },
      { Authorization: basic(client.id, client.secret) },
    );
    expectProblem(res, 401, 'invalid_client');
  });

  // RFC 6749 §5.2: a client that tried HTTP Basic gets 401 with a WWW-Authenticate header for that scheme.
  it('challenges with WWW-Authenticate: Basic when Basic credentials are wrong', async () => {
    const client = await createClient(['connections:read']);
    const res = await requestToken({ grant_type: 'client_credentials' }, { Authorization: basic(client.id, 'hub_cs_wrong') });
    expectProblem(res, 401, 'invalid_client');
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic /);
  });

  it('refuses Basic credentials without a colon with invalid_client', async () => {
    const res = await requestToken({ grant_type: 'client_credentials' }, { Authorization: `Basic ${Buffer.from('just-an-id').toString('base64')}` });
    expectProblem(res, 401, 'invalid_client');
  });

  // src/app/routes/oauth.ts decodes the Basic user and password with decodeURIComponent, which throws on a lone '%'.
  it('refuses Basic credentials with a broken percent-encoding as invalid_client, not as a server error', async () => {
    const res = await requestToken({ grant_type: 'client_credentials' }, { Authorization: `Basic ${Buffer.from('cli_x:100%').toString('base64')}` });
    expectProblem(res, 401, 'invalid_client');
  });

  it('refuses another grant type with unsupported_grant_type', async () => {
    const client = await createClient(['connections:read']);
    const res = await requestToken({ grant_type: 'password', client_id: client.id, client_secret: client.secret });
    const problem = expectProblem(res, 400, 'unsupported_grant_type');
    expect(problem.error).toBe('unsupported_grant_type');
  });

  it('refuses a request without grant_type with validation_failed', async () => {
    const client = await createClient(['connections:read']);
    const res = await requestToken({ client_id: client.id, client_secret: client.secret });
    const problem = expectProblem(res, 400, 'validation_failed');
    expect(problem.errors).toEqual(expect.arrayContaining([expect.objectContaining({ field: '/grant_type' })]));
  });

  // RFC 6749 §3.2: "The authorization server MUST ignore unrecognized request parameters." Client libraries send
  // e.g. `audience` or `resource` (RFC 8707); schemas/api/oauth-token-request.schema.json has additionalProperties: false.
  it('ignores unrecognised request parameters', async () => {
    const client = await createClient(['connections:read']);
    const res = await requestToken({ grant_type: 'client_credentials', client_id: client.id, client_secret: client.secret, audience: 'hub-api' });
    expect(res.status).toBe(200);
  });

  it('refuses a body that is neither form-encoded nor JSON', async () => {
    const res = await t.call('POST', '/v1/oauth/token', { key: null, rawBody: 'grant_type=client_credentials', headers: { 'Content-Type': 'text/plain' } });
    expectProblem(res, 415, 'unsupported_media_type');
  });
});

describe('access tokens on the API', () => {
  it('authorises a request the token scope allows', async () => {
    const client = await createClient(['connections:read']);
    const token = await tokenFor(client);
    const res = await t.call('GET', '/v1/connections', bearer(token));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ data: [], nextCursor: null });
  });

  it('refuses a request the token scope does not allow with insufficient_scope', async () => {
    const client = await createClient(['connections:read']);
    const token = await tokenFor(client);
    const problem = expectProblem(await t.call('GET', '/v1/audit-log', bearer(token)), 403, 'insufficient_scope');
    expect(problem.requiredScope).toBe('audit:read');
  });

  it('records the client as the actor of what it changes', async () => {
    const client = await createClient(['connections:write']);
    const token = await tokenFor(client);
    const created = await t.call('POST', '/v1/connections', { ...bearer(token), body: { connectorId: 'http', name: 'by token', config: { baseUrl: 'http://127.0.0.1:9' } } });
    expect(created.status).toBe(201);
    const audit = await t.call('GET', `/v1/audit-log?resourceId=${created.body.id}`);
    expect(audit.body.data[0]).toMatchObject({ actorType: 'oauth_client', actorId: client.id, action: 'connection.created' });
  });

  it('publishes the public signing keys without private members', async () => {
    const res = await t.call('GET', '/.well-known/jwks.json', { key: null });
    expect(res.status).toBe(200);
    expect(res.body.keys.length).toBeGreaterThanOrEqual(1);
    for (const key of res.body.keys as JWK[]) {
      expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', kid: expect.any(String) });
      for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) expect(key).not.toHaveProperty(secret);
    }
  });

  it('issues tokens a third party can verify with the published keys', async () => {
    const client = await createClient(['connections:read', 'events:read']);
    const token = await tokenFor(client);
    const jwks = createLocalJWKSet((await t.call('GET', '/.well-known/jwks.json', { key: null })).body);
    const { payload, protectedHeader } = await jwtVerify(token, jwks, {
      issuer: 'http://hub.test',
      audience: 'hub-api',
      currentDate: new Date(t.clock.now()),
    });
    expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: 'at+jwt' });
    expect(payload).toMatchObject({ sub: client.id, ws: t.workspace.id, scope: 'connections:read events:read' });
    expect(payload.exp! - payload.iat!).toBe(900);
    expect(payload.iat).toBe(Math.floor(t.clock.now() / 1000));
  });

  it('rejects a token whose payload was changed', async () => {
    const client = await createClient(['connections:read']);
    const token = await tokenFor(client);
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const claims = JSON.parse(new TextDecoder().decode(base64url.decode(payload)));
    const widened = base64url.encode(JSON.stringify({ ...claims, scope: '*' }));
    for (const forged of [`${header}.${widened}.${signature}`, `${header}.${flipChar(payload, 10)}.${signature}`]) {
      const res = await t.call('GET', '/v1/connections', bearer(forged));
      expectProblem(res, 401, 'unauthenticated');
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
    }
  });

  it('rejects a token whose signature was changed', async () => {
    const client = await createClient(['connections:read']);
    const token = await tokenFor(client);
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const res = await t.call('GET', '/v1/connections', bearer(`${header}.${payload}.${flipChar(signature, 20)}`));
    expectProblem(res, 401, 'unauthenticated');
  });

  it('rejects a token with the same claims signed by another key', async () => {
    const client = await createClient(['connections:read']);
    const token = await tokenFor(client);
    const { kid } = decodeProtectedHeader(token);
    const { privateKey } = await generateKeyPair('ES256');
    const now = Math.floor(t.clock.now() / 1000);
    for (const headerKid of [kid!, 'sk_UNKNOWN']) {
      const forged = await new SignJWT({ ws: t.workspace.id, scope: 'connections:read' })
        .setProtectedHeader({ alg: 'ES256', kid: headerKid, typ: 'at+jwt' })
        .setIssuer('http://hub.test')
        .setAudience('hub-api')
        .setSubject(client.id)
        .setIssuedAt(now)
        .setExpirationTime(now + 900)
        .setJti('tok_forged')
        .sign(privateKey);
      expectProblem(await t.call('GET', '/v1/connections', bearer(forged)), 401, 'unauthenticated');
    }
  });

  it('rejects an unsigned token', async () => {
    const client = await createClient(['connections:read']);
    const token = await tokenFor(client);
    const [, payload] = token.split('.') as [string, string];
    const none = base64url.encode(JSON.stringify({ alg: 'none', typ: 'at+jwt' }));
    expectProblem(await t.call('GET', '/v1/connections', bearer(`${none}.${payload}.`)), 401, 'unauthenticated');
  });

  it('rejects a token once it has expired', async () => {
    const client = await createClient(['connections:read'], { tokenTtlSeconds: 60 });
    const token = await tokenFor(client);
    t.clock.advance(59_000);
    expect((await t.call('GET', '/v1/connections', bearer(token))).status).toBe(200);
    t.clock.advance(2_000);
    const problem = expectProblem(await t.call('GET', '/v1/connections', bearer(token)), 401, 'unauthenticated');
    expect(problem.detail).toMatch(/expired/);
  });

  it('stops a revoked client at once: its tokens fail and it gets no new ones', async () => {
    const client = await createClient(['connections:read']);
    const token = await tokenFor(client);
    expect((await t.call('GET', '/v1/connections', bearer(token))).status).toBe(200);

    const revoked = await t.call('POST', `/v1/oauth/clients/${client.id}/revoke`);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revokedAt).toBe(new Date(t.clock.now()).toISOString());
    expect(revoked.text).not.toContain('secretHash');

    expectProblem(await t.call('GET', '/v1/connections', bearer(token)), 401, 'unauthenticated');
    expectProblem(await requestToken({ grant_type: 'client_credentials', client_id: client.id, client_secret: client.secret }), 401, 'invalid_client');
    // revoking twice is harmless
    expect((await t.call('POST', `/v1/oauth/clients/${client.id}/revoke`)).status).toBe(200);
  });

  it('keeps a token inside the workspace of its client', async () => {
    const other = await t.addWorkspace('Globex');
    const theirs = await t.call('POST', '/v1/connections', {
      key: other.secret,
      body: { connectorId: 'http', name: 'Globex ERP', config: { baseUrl: 'http://127.0.0.1:9' } },
    });
    expect(theirs.status).toBe(201);
    const client = await createClient(['connections:write']);
    const token = await tokenFor(client);

    expectProblem(await t.call('GET', `/v1/connections/${theirs.body.id}`, bearer(token)), 404, 'not_found');
    expectProblem(await t.call('PATCH', `/v1/connections/${theirs.body.id}`, { ...bearer(token), body: { name: 'mine now' } }), 404, 'not_found');
    expectProblem(await t.call('DELETE', `/v1/connections/${theirs.body.id}`, bearer(token)), 404, 'not_found');
    expect((await t.call('GET', '/v1/connections', bearer(token))).body.data).toEqual([]);
    expect((await t.call('GET', `/v1/connections/${theirs.body.id}`, { key: other.secret })).body.name).toBe('Globex ERP');
  });

  it('does not let another workspace read or revoke a client', async () => {
    const client = await createClient(['connections:read']);
    const other = await t.addWorkspace('Globex');
    expectProblem(await t.call('GET', `/v1/oauth/clients/${client.id}`, { key: other.secret }), 404, 'not_found');
    expectProblem(await t.call('POST', `/v1/oauth/clients/${client.id}/revoke`, { key: other.secret }), 404, 'not_found');
    expect((await t.call('GET', '/v1/oauth/clients', { key: other.secret })).body.data).toEqual([]);
    expect((await t.call('GET', '/v1/connections', bearer(await tokenFor(client)))).status).toBe(200);
  });
});
