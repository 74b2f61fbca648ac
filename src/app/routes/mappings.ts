// /v1/mappings: declarative field mappings with immutable versions and an active one; validate and preview
// without saving. Mappings shipped in mappings/ are readable by key too (read-only).
import type { Context } from 'hono';
import { auditRequest } from '../../audit/log.ts';
import { HubError } from '../../errors.ts';
import { appendEvent } from '../../events/log.ts';
import type { MappingDocument } from '../../mappings/document.ts';
import { hashMapping } from '../../mappings/hash.ts';
import { MAX_PREVIEW_RECORDS, previewMapping } from '../../mappings/preview.ts';
import { collectUses } from '../../mappings/reuse.ts';
import { findMapping, findVersion, resolveMapping, reuseResolver } from '../../mappings/repository.ts';
import { validateMapping } from '../../mappings/validate-mapping.ts';
import type { Db, MappingsRow, MappingVersionsRow } from '../../store/types.ts';
import type { HubEnv } from '../deps.ts';
import type { RouteTable } from '../define-route.ts';
import { jsonWithEtag, listResponse, sendJson } from '../http.ts';
import { LIST_PARAMS, listOwned, nowIso, PROBLEM } from './common.ts';

const MAPPING = 'hub:tables/mappings';
const VERSION = 'hub:tables/mapping_versions';
const REPORT = {
  type: 'object',
  required: ['valid', 'errors', 'warnings'],
  properties: { valid: { type: 'boolean' }, errors: { type: 'array', items: { type: 'object' } }, warnings: { type: 'array', items: { type: 'object' } } },
};
const WITH_DOCUMENT = {
  type: 'object',
  required: ['key', 'source', 'document'],
  properties: { key: { type: 'string' }, source: { type: 'string', enum: ['workspace', 'file'] }, document: { type: 'object' }, mapping: { anyOf: [{ $ref: MAPPING }, { type: 'null' }] }, activeVersion: { type: ['integer', 'null'] } },
};

const key = (c: Context<HubEnv>) => c.req.param('key')!;
/** Path words beside /v1/mappings/{key}: a mapping with such an id could not be addressed. */
const RESERVED_KEYS = new Set(['shipped', 'validate']);
const workspaceOf = (c: Context<HubEnv>) => c.get('principal').workspaceId;

/** Validates a document for saving (its reuses resolved in the workspace) or fails with validation_failed. */
async function checkForSave(c: Context<HubEnv>, db: Db, document: unknown): Promise<void> {
  const resolve = await reuseResolver(db, workspaceOf(c), document, c.get('deps').mappings);
  const { valid, errors } = validateMapping(document, { resolve });
  if (!valid) {
    throw new HubError('validation_failed', 'The mapping is not valid', {
      errors: errors.map((e) => ({ field: `/document${e.path}`, code: e.code, message: e.message })),
    });
  }
}

async function loadMapping(c: Context<HubEnv>, db: Db = c.get('deps').store): Promise<MappingsRow> {
  const row = await findMapping(db, workspaceOf(c), key(c));
  if (!row) throw new HubError('not_found', `Mapping ${key(c)} does not exist in this workspace`);
  return row;
}

async function addVersion(c: Context<HubEnv>, db: Db, mapping: MappingsRow | null, document: MappingDocument): Promise<{ mapping: MappingsRow; version: MappingVersionsRow }> {
  const ws = workspaceOf(c);
  const number = mapping ? mapping.latestVersion + 1 : 1;
  const fields = { title: document.title ?? null, sourceName: document.source.name, targetName: document.target.name };
  const row = mapping
    ? await db.table('mappings').update(mapping.id, { ...fields, latestVersion: number }, { ifVersion: mapping.version })
    : await db.table('mappings').insert({ workspaceId: ws, key: document.id, ...fields, activeVersion: 1, latestVersion: 1 });
  const version = await db.table('mapping_versions').insert({
    workspaceId: ws,
    mappingId: row.id,
    number,
    document: document as unknown as Record<string, unknown>,
    hash: hashMapping(document),
    createdBy: c.get('principal').id,
  });
  return { mapping: row, version };
}

export function registerMappingRoutes(routes: RouteTable): void {
  routes.add<{ document: unknown }>(
    {
      method: 'post',
      path: '/v1/mappings/validate',
      operationId: 'validateMapping',
      summary: 'Validate a mapping document without saving it',
      description: 'Always 200 when the request is well formed: the report says whether the mapping is valid, with a JSON pointer into the document for each error and warning.',
      tag: 'Mappings',
      auth: { resource: 'mappings', action: 'read' },
      body: { schema: 'hub:api/mapping-validate' },
      responses: { 200: { description: 'The validation report', schema: REPORT } },
    },
    async (c, { body }) => {
      const resolve = await reuseResolver(c.get('deps').store, workspaceOf(c), body.document, c.get('deps').mappings);
      return sendJson(c, 200, validateMapping(body.document, { resolve }));
    },
  );

  routes.add<{ document: MappingDocument }>(
    {
      method: 'post',
      path: '/v1/mappings',
      operationId: 'createMapping',
      summary: "Create a mapping: the document (validated) becomes version 1, active; its id is the mapping's key",
      tag: 'Mappings',
      auth: { resource: 'mappings', action: 'write' },
      body: { schema: 'hub:api/mapping-create' },
      responses: { 201: { description: 'The mapping', schema: MAPPING, headers: ['ETag', 'Location'] }, 400: PROBLEM('The document is not a valid mapping'), 409: PROBLEM('A mapping with this key exists') },
    },
    async (c, { body }) => {
      const { store } = c.get('deps');
      if (RESERVED_KEYS.has(body.document.id)) {
        throw new HubError('validation_failed', `"${body.document.id}" is a word of the API, not a mapping id`, { errors: [{ field: '/document/id', code: 'reserved', message: 'is reserved' }] });
      }
      await checkForSave(c, store, body.document);
      const { mapping } = await store.transaction(async (tx) => {
        if (await findMapping(tx, workspaceOf(c), body.document.id)) {
          throw new HubError('already_exists', `Mapping ${body.document.id} exists; add a version to it instead`, { errors: [{ field: '/document/id', code: 'unique', message: 'is already taken' }] });
        }
        const created = await addVersion(c, tx, null, body.document);
        await auditRequest(tx, c, { action: 'mapping.created', resourceType: 'mapping', resourceId: created.mapping.id, details: { key: body.document.id } });
        await appendEvent(tx, { type: 'mapping.created', workspaceId: workspaceOf(c), subject: created.mapping.id, data: { mapping: created.mapping }, correlationId: c.get('requestId') }, nowIso(c));
        return created;
      });
      return jsonWithEtag(c, mapping, 201, `/v1/mappings/${encodeURIComponent(mapping.key)}`);
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/mappings',
      operationId: 'listMappings',
      summary: "List the workspace's mappings (the shipped ones are at /v1/mappings/shipped)",
      tag: 'Mappings',
      auth: { resource: 'mappings', action: 'read' },
      query: LIST_PARAMS,
      responses: { 200: { description: 'A page of mappings', schema: { list: MAPPING } } },
    },
    (c, { query }) => listOwned(c, 'mappings', query),
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/mappings/shipped',
      operationId: 'listShippedMappings',
      summary: 'The mappings that ship with the hub (files in mappings/), read-only',
      tag: 'Mappings',
      auth: { resource: 'mappings', action: 'read' },
      responses: { 200: { description: 'The shipped mappings', schema: { type: 'object', required: ['data'], properties: { data: { type: 'array', items: { type: 'object' } } } } } },
    },
    (c) =>
      sendJson(c, 200, {
        data: [...c.get('deps').mappings.values()].map((d) => ({ key: d.id, title: d.title ?? null, description: d.description ?? null, source: d.source, target: d.target })),
      }),
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/mappings/{key}',
      operationId: 'getMapping',
      summary: 'The mapping that runs for a key: the workspace’s active version, or the shipped file',
      tag: 'Mappings',
      auth: { resource: 'mappings', action: 'read' },
      responses: { 200: { description: 'The mapping and its active document', schema: WITH_DOCUMENT }, 404: PROBLEM('No such mapping') },
    },
    async (c) => {
      const found = await resolveMapping(c.get('deps').store, workspaceOf(c), key(c), c.get('deps').mappings);
      if (!found) throw new HubError('not_found', `Mapping ${key(c)} does not exist`);
      return sendJson(c, 200, { key: found.key, source: found.source, document: found.document, mapping: found.mapping, activeVersion: found.versionNumber });
    },
  );

  routes.add<{ document: MappingDocument; activate?: boolean }>(
    {
      method: 'post',
      path: '/v1/mappings/{key}/versions',
      operationId: 'createMappingVersion',
      summary: 'Add an immutable version (active at once unless `activate` is false)',
      tag: 'Mappings',
      auth: { resource: 'mappings', action: 'write' },
      body: { schema: 'hub:api/mapping-version-create' },
      responses: { 201: { description: 'The new version', schema: VERSION, headers: ['Location'] }, 400: PROBLEM('The document is not a valid mapping'), 404: PROBLEM('No such mapping') },
    },
    async (c, { body }) => {
      const { store } = c.get('deps');
      if (body.document.id !== key(c)) {
        throw new HubError('validation_failed', `The document's id must be ${key(c)}`, { errors: [{ field: '/document/id', code: 'const', message: `must be ${JSON.stringify(key(c))}` }] });
      }
      await checkForSave(c, store, body.document);
      const version = await store.transaction(async (tx) => {
        const mapping = await loadMapping(c, tx);
        const added = await addVersion(c, tx, mapping, body.document);
        if (body.activate !== false) await tx.table('mappings').update(mapping.id, { activeVersion: added.version.number });
        await auditRequest(tx, c, { action: 'mapping.version_created', resourceType: 'mapping', resourceId: mapping.id, details: { version: added.version.number } });
        await appendEvent(tx, { type: 'mapping.version_created', workspaceId: workspaceOf(c), subject: mapping.id, data: { key: mapping.key, version: added.version.number, active: body.activate !== false }, correlationId: c.get('requestId') }, nowIso(c));
        return added.version;
      });
      return sendJson(c, 201, version, { location: `/v1/mappings/${encodeURIComponent(key(c))}/versions/${version.number}` });
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/mappings/{key}/versions',
      operationId: 'listMappingVersions',
      summary: "A mapping's versions, newest first",
      tag: 'Mappings',
      auth: { resource: 'mappings', action: 'read' },
      query: LIST_PARAMS,
      responses: { 200: { description: 'A page of versions', schema: { list: VERSION } }, 404: PROBLEM('No such mapping') },
    },
    async (c, { query }) => {
      const mapping = await loadMapping(c);
      const page = await c.get('deps').store.table('mapping_versions').query({
        where: { workspaceId: mapping.workspaceId, mappingId: mapping.id },
        orderBy: { field: 'number', direction: 'desc' },
        limit: (query.limit as number | undefined) ?? 50,
        cursor: (query.cursor as string | undefined) ?? null,
      });
      return listResponse(c, page.items, page.nextCursor);
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/mappings/{key}/versions/{number}',
      operationId: 'getMappingVersion',
      summary: 'One version of a mapping',
      tag: 'Mappings',
      auth: { resource: 'mappings', action: 'read' },
      responses: { 200: { description: 'The version', schema: VERSION }, 404: PROBLEM('No such mapping or version') },
    },
    async (c) => {
      const number = Number(c.req.param('number'));
      const version = Number.isSafeInteger(number) && number > 0 ? await findVersion(c.get('deps').store, await loadMapping(c), number) : null;
      if (!version) throw new HubError('not_found', `Mapping ${key(c)} has no version ${c.req.param('number')}`);
      return sendJson(c, 200, version);
    },
  );

  routes.add<{ version: number }>(
    {
      method: 'post',
      path: '/v1/mappings/{key}/activate',
      operationId: 'activateMappingVersion',
      summary: 'Choose the version that runs (roll forward or back)',
      tag: 'Mappings',
      auth: { resource: 'mappings', action: 'write' },
      body: { schema: 'hub:api/mapping-activate' },
      responses: { 200: { description: 'The mapping', schema: MAPPING, headers: ['ETag'] }, 404: PROBLEM('No such mapping'), 422: PROBLEM('No such version') },
    },
    async (c, { body }) => {
      const saved = await c.get('deps').store.transaction(async (tx) => {
        const mapping = await loadMapping(c, tx);
        if (!(await findVersion(tx, mapping, body.version))) {
          throw new HubError('unknown_reference', `Mapping ${mapping.key} has no version ${body.version}`, { errors: [{ field: '/version', code: 'unknown', message: `must be between 1 and ${mapping.latestVersion}` }] });
        }
        const row = await tx.table('mappings').update(mapping.id, { activeVersion: body.version }, { ifVersion: mapping.version });
        await auditRequest(tx, c, { action: 'mapping.activated', resourceType: 'mapping', resourceId: mapping.id, details: { version: body.version } });
        await appendEvent(tx, { type: 'mapping.activated', workspaceId: workspaceOf(c), subject: mapping.id, data: { key: mapping.key, version: body.version, previous: mapping.activeVersion }, correlationId: c.get('requestId') }, nowIso(c));
        return row;
      });
      return jsonWithEtag(c, saved);
    },
  );

  routes.add(
    {
      method: 'delete',
      path: '/v1/mappings/{key}',
      operationId: 'deleteMapping',
      summary: 'Delete a mapping and its versions (refused while another mapping of the workspace reuses it)',
      tag: 'Mappings',
      auth: { resource: 'mappings', action: 'write' },
      responses: { 204: { description: 'Deleted' }, 404: PROBLEM('No such mapping'), 409: PROBLEM('Another mapping reuses it') },
    },
    async (c) => {
      const { store, mappings: files } = c.get('deps');
      await store.transaction(async (tx) => {
        const mapping = await loadMapping(c, tx);
        // Without a shipped file of the same key to fall back on, a mapping another one uses cannot go.
        if (!files.has(mapping.key)) {
          const others = await tx.table('mappings').query({ where: { workspaceId: mapping.workspaceId }, limit: 1000 });
          for (const other of others.items) {
            if (other.id === mapping.id) continue;
            const doc = (await findVersion(tx, other, other.activeVersion))?.document as MappingDocument | undefined;
            if (doc && collectUses(doc).some((u) => u.id === mapping.key)) throw new HubError('in_use', `Mapping ${other.key} reuses ${mapping.key}`);
          }
        }
        await tx.table('mapping_versions').deleteWhere({ workspaceId: mapping.workspaceId, mappingId: mapping.id });
        await tx.table('mappings').delete(mapping.id);
        await auditRequest(tx, c, { action: 'mapping.deleted', resourceType: 'mapping', resourceId: mapping.id, details: { key: mapping.key } });
        await appendEvent(tx, { type: 'mapping.deleted', workspaceId: workspaceOf(c), subject: mapping.id, data: { key: mapping.key }, correlationId: c.get('requestId') }, nowIso(c));
      });
      return c.body(null, 204);
    },
  );

  routes.add<{ records: unknown[]; version?: number; document?: unknown }>(
    {
      method: 'post',
      path: '/v1/mappings/{key}/preview',
      operationId: 'previewMapping',
      summary: `Map up to ${MAX_PREVIEW_RECORDS} sample records with the active version (or a given version, or an unsaved document); nothing is saved`,
      tag: 'Mappings',
      auth: { resource: 'mappings', action: 'read' },
      body: { schema: 'hub:api/mapping-preview' },
      responses: {
        200: { description: 'The validation report and, when valid, each record mapped or its errors (record index, target path, source path, reason)', schema: { type: 'object', required: ['validation', 'records'] } },
        404: PROBLEM('No such mapping or version'),
      },
    },
    async (c, { body }) => {
      const { store, mappings: files } = c.get('deps');
      let document: unknown = body.document;
      if (document === undefined) {
        if (body.version !== undefined) {
          const version = await findVersion(store, await loadMapping(c), body.version);
          if (!version) throw new HubError('not_found', `Mapping ${key(c)} has no version ${body.version}`);
          document = version.document;
        } else {
          const found = await resolveMapping(store, workspaceOf(c), key(c), files);
          if (!found) throw new HubError('not_found', `Mapping ${key(c)} does not exist`);
          document = found.document;
        }
      }
      const resolve = await reuseResolver(store, workspaceOf(c), document, files);
      return sendJson(c, 200, previewMapping(document, body.records, { resolve }));
    },
  );
}
