// Connections: a configured link to one external system through a connector. Config is validated against the
// connector's schema; credentials are validated, encrypted at rest and never returned.
import type { Context } from 'hono';
import { auditRequest } from '../../audit/log.ts';
import type { ConnectorDefinition, TestResult } from '../../connectors/define.ts';
import { HubError, isHubError } from '../../errors.ts';
import { appendEvent } from '../../events/log.ts';
import { connectionChanged } from '../../webhooks/inbound.ts';
import { compileSchema } from '../../schemas/registry.ts';
import { assertValid } from '../../schemas/validate.ts';
import type { ConnectionsRow } from '../../store/types.ts';
import type { HubEnv } from '../deps.ts';
import type { RouteTable } from '../define-route.ts';
import { expectVersion, jsonWithEtag, present, respondResource } from '../http.ts';
import { LIST_PARAMS, listOwned, loadOwned, nowIso, PROBLEM } from './common.ts';

const CONNECTION = 'hub:tables/connections';

interface ConnectionCreate {
  connectorId: string;
  name: string;
  config: Record<string, unknown>;
  credentials?: Record<string, unknown>;
  status?: 'active' | 'disabled';
}
type ConnectionUpdate = Partial<Omit<ConnectionCreate, 'connectorId'>>;

function connectorOf(c: Context<HubEnv>, id: string, pointer = '/connectorId'): ConnectorDefinition<any, any> {
  const def = c.get('deps').connectors.find((d) => d.id === id);
  if (!def) {
    throw new HubError('connector_unknown', `There is no connector "${id}"`, {
      errors: [{ field: pointer, code: 'unknown', message: `must be one of: ${c.get('deps').connectors.map((d) => d.id).join(', ')}` }],
    });
  }
  return def;
}

function checkConfig(def: ConnectorDefinition<any, any>, config: unknown): void {
  assertValid(compileSchema(def.configSchema), config, `The ${def.name} configuration`, '/config');
}

function checkCredentials(def: ConnectorDefinition<any, any>, credentials: unknown): void {
  assertValid(compileSchema(def.credentialsSchema), credentials, `The ${def.name} credentials`, '/credentials');
}

/**
 * Builds the connector's instance once with what is about to be saved: settings only a connector can judge (a
 * webhook secret that is not base64, a verifier header name) are refused now rather than at the first use.
 */
function checkInstance(c: Context<HubEnv>, def: ConnectorDefinition<any, any>, config: unknown, credentials: Record<string, unknown>): void {
  const deps = c.get('deps');
  def.create(config, credentials, { fetch: deps.fetch, clock: deps.clock, log: deps.log });
}

function publicConnection(row: ConnectionsRow) {
  return present('connections', row) as ConnectionsRow;
}

async function runTest(c: Context<HubEnv>, row: ConnectionsRow): Promise<TestResult> {
  const deps = c.get('deps');
  const def = connectorOf(c, row.connectorId);
  const credentials = row.credentials ? deps.cipher.decryptJson<Record<string, unknown>>(row.credentials) : {};
  const started = performance.now();
  try {
    const instance = def.create(row.config, credentials, { fetch: deps.fetch, clock: deps.clock, log: deps.log.child({ connectionId: row.id }) });
    return await instance.testConnection();
  } catch (err) {
    // A connector that throws instead of reporting is still a failed test, not a failed request.
    const latencyMs = Math.round(performance.now() - started);
    if (isHubError(err)) return { ok: false, latencyMs, message: err.message, code: err.code };
    deps.log.warn('connection test threw', { connectionId: row.id, err });
    return { ok: false, latencyMs, message: 'The connector failed unexpectedly while testing', code: 'internal_error' };
  }
}

export function registerConnectionRoutes(routes: RouteTable): void {
  routes.add(
    {
      method: 'get',
      path: '/v1/connectors',
      operationId: 'listConnectors',
      summary: 'List the connectors this hub offers, with their configuration and credentials schemas',
      tag: 'Connections',
      auth: { resource: 'connections', action: 'read' },
      responses: { 200: { description: 'The connectors', schema: { type: 'object', properties: { data: { type: 'array', items: { type: 'object' } } } } } },
    },
    (c) =>
      c.json({
        data: c.get('deps').connectors.map((d) => ({
          id: d.id,
          name: d.name,
          category: d.category,
          description: d.description,
          capabilities: d.capabilities,
          configSchema: d.configSchema,
          credentialsSchema: d.credentialsSchema,
        })),
      }),
  );

  routes.add<ConnectionCreate>(
    {
      method: 'post',
      path: '/v1/connections',
      operationId: 'createConnection',
      summary: 'Create a connection',
      tag: 'Connections',
      auth: { resource: 'connections', action: 'write' },
      body: { schema: 'hub:api/connection-create' },
      responses: { 201: { description: 'The connection', schema: CONNECTION, headers: ['ETag', 'Location'] }, 409: PROBLEM('A connection with this name exists') },
    },
    async (c, { body }) => {
      const { store, cipher } = c.get('deps');
      const def = connectorOf(c, body.connectorId);
      checkConfig(def, body.config);
      const credentials = body.credentials ?? {};
      checkCredentials(def, credentials);
      checkInstance(c, def, body.config, credentials);
      const workspaceId = c.get('principal').workspaceId;
      const row = await store.transaction(async (tx) => {
        const conn = await tx.table('connections').insert({
          workspaceId,
          connectorId: def.id,
          name: body.name,
          config: body.config,
          credentials: Object.keys(credentials).length ? cipher.encryptJson(credentials) : null,
          credentialFields: Object.keys(credentials).sort(),
          status: body.status ?? 'active',
          lastTestedAt: null,
          lastTestResult: null,
        });
        await auditRequest(tx, c, { action: 'connection.created', resourceType: 'connection', resourceId: conn.id, details: { connectorId: def.id } });
        await appendEvent(tx, { type: 'connection.created', workspaceId, subject: conn.id, data: { connection: publicConnection(conn) }, correlationId: c.get('requestId') }, nowIso(c));
        return conn;
      });
      return jsonWithEtag(c, publicConnection(row), 201, `/v1/connections/${row.id}`);
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/connections',
      operationId: 'listConnections',
      summary: 'List connections, newest first',
      tag: 'Connections',
      auth: { resource: 'connections', action: 'read' },
      query: [
        ...LIST_PARAMS,
        { name: 'connectorId', description: 'Only connections of this connector.', schema: { type: 'string', maxLength: 64 } },
        { name: 'status', description: 'Only connections in this status.', schema: { type: 'string', enum: ['active', 'disabled'] } },
      ],
      responses: { 200: { description: 'A page of connections', schema: { list: CONNECTION } } },
    },
    (c, { query }) => listOwned(c, 'connections', query, { connectorId: query.connectorId as string | undefined, status: query.status as string | undefined }),
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/connections/{id}',
      operationId: 'getConnection',
      summary: 'Get a connection (credentials are never returned, only which ones are set)',
      tag: 'Connections',
      auth: { resource: 'connections', action: 'read' },
      responses: { 200: { description: 'The connection', schema: CONNECTION, headers: ['ETag'] }, 404: PROBLEM('No such connection') },
    },
    async (c) => respondResource(c, publicConnection(await loadOwned(c, 'connections', c.req.param('id')!))),
  );

  routes.add<ConnectionUpdate>(
    {
      method: 'patch',
      path: '/v1/connections/{id}',
      operationId: 'updateConnection',
      summary: 'Change a connection; `credentials` replaces all stored credentials',
      tag: 'Connections',
      auth: { resource: 'connections', action: 'write' },
      body: { schema: 'hub:api/connection-update' },
      ifMatch: true,
      responses: { 200: { description: 'The connection', schema: CONNECTION, headers: ['ETag'] }, 404: PROBLEM('No such connection'), 412: PROBLEM('Stale If-Match') },
    },
    async (c, { body }) => {
      const { store, cipher } = c.get('deps');
      const row = await store.transaction(async (tx) => {
        const conn = await loadOwned(c, 'connections', c.req.param('id')!, tx);
        const def = connectorOf(c, conn.connectorId);
        if (body.config !== undefined) checkConfig(def, body.config);
        const patch: Partial<ConnectionsRow> = {};
        if (body.name !== undefined) patch.name = body.name;
        if (body.status !== undefined) patch.status = body.status;
        if (body.config !== undefined) patch.config = body.config;
        if (body.credentials !== undefined) {
          checkCredentials(def, body.credentials);
          patch.credentials = Object.keys(body.credentials).length ? cipher.encryptJson(body.credentials) : null;
          patch.credentialFields = Object.keys(body.credentials).sort();
        }
        if (body.config !== undefined || body.credentials !== undefined) {
          const credentials = body.credentials ?? (conn.credentials ? cipher.decryptJson<Record<string, unknown>>(conn.credentials) : {});
          checkInstance(c, def, body.config ?? conn.config, credentials);
        }
        const updated = await tx.table('connections').update(conn.id, patch, { ifVersion: expectVersion(c, conn) });
        connectionChanged(conn.id);
        await auditRequest(tx, c, { action: 'connection.updated', resourceType: 'connection', resourceId: conn.id, details: { fields: Object.keys(body) } });
        await appendEvent(tx, { type: 'connection.updated', workspaceId: conn.workspaceId, subject: conn.id, data: { connection: publicConnection(updated) }, correlationId: c.get('requestId') }, nowIso(c));
        return updated;
      });
      return jsonWithEtag(c, publicConnection(row));
    },
  );

  routes.add(
    {
      method: 'delete',
      path: '/v1/connections/{id}',
      operationId: 'deleteConnection',
      summary: 'Delete a connection and its stored credentials',
      tag: 'Connections',
      auth: { resource: 'connections', action: 'write' },
      ifMatch: true,
      responses: { 204: { description: 'Deleted' }, 404: PROBLEM('No such connection'), 412: PROBLEM('Stale If-Match') },
    },
    async (c) => {
      const { store } = c.get('deps');
      await store.transaction(async (tx) => {
        const conn = await loadOwned(c, 'connections', c.req.param('id')!, tx);
        await tx.table('connections').delete(conn.id, { ifVersion: expectVersion(c, conn) });
        connectionChanged(conn.id);
        await auditRequest(tx, c, { action: 'connection.deleted', resourceType: 'connection', resourceId: conn.id });
        await appendEvent(tx, { type: 'connection.deleted', workspaceId: conn.workspaceId, subject: conn.id, data: { connection: { id: conn.id, connectorId: conn.connectorId, name: conn.name } }, correlationId: c.get('requestId') }, nowIso(c));
      });
      return c.body(null, 204);
    },
  );

  routes.add(
    {
      method: 'post',
      path: '/v1/connections/{id}/test',
      operationId: 'testConnection',
      summary: 'Test a connection against the remote system',
      description: 'Answers 200 with `ok: false` when the remote system fails: the test ran, and its result says why.',
      tag: 'Connections',
      auth: { resource: 'connections', action: 'write' },
      responses: {
        200: {
          description: 'The test result',
          schema: { type: 'object', required: ['ok', 'latencyMs', 'message'], properties: { ok: { type: 'boolean' }, latencyMs: { type: 'number' }, message: { type: 'string' }, status: { type: 'integer' }, code: { type: 'string' } } },
        },
        404: PROBLEM('No such connection'),
      },
    },
    async (c) => {
      const { store } = c.get('deps');
      const conn = await loadOwned(c, 'connections', c.req.param('id')!);
      // The remote call happens outside any transaction: it can take seconds.
      const result = await runTest(c, conn);
      await store.transaction(async (tx) => {
        await tx.table('connections').update(conn.id, { lastTestedAt: nowIso(c), lastTestResult: { ...result } });
        await auditRequest(tx, c, { action: 'connection.tested', resourceType: 'connection', resourceId: conn.id, details: { ok: result.ok } });
      });
      return c.json(result);
    },
  );
}
