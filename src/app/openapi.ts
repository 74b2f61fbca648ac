// The OpenAPI 3.1 document, generated from the route declarations and the JSON Schemas they name.
// Private table fields are left out of the representations, as they are left out of the responses.
import { ERROR_CODES } from '../errors.ts';
import { COMMON_SCHEMA, getSchema, type JsonSchema } from '../schemas/registry.ts';
import { TABLE_SPECS } from '../schemas/tables.ts';
import type { RouteSpec } from './define-route.ts';

const PROBLEM_SCHEMA: JsonSchema = {
  type: 'object',
  description: 'RFC 9457 problem details. `code` is stable; `errors` lists each failing field as a JSON pointer.',
  required: ['type', 'title', 'status', 'detail', 'code'],
  properties: {
    type: { type: 'string', format: 'uri-reference' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string', enum: Object.keys(ERROR_CODES) },
    instance: { type: 'string', description: 'The request id.' },
    errors: {
      type: 'array',
      items: {
        type: 'object',
        required: ['field', 'code', 'message'],
        properties: { field: { type: 'string' }, code: { type: 'string' }, message: { type: 'string' } },
      },
    },
  },
};

const STRIP = new Set(['$id', '$schema', 'x-hub-table', 'x-hub-private']);

function componentName(id: string): string {
  return String(getSchema(id).title ?? id.replace(/\W+/g, '_'));
}

/** Rewrites references: common definitions are inlined, table and API schemas point at components. */
function rewrite(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rewrite);
  if (!node || typeof node !== 'object') return node;
  const obj = node as JsonSchema;
  const out: JsonSchema = {};
  if (typeof obj.$ref === 'string') {
    const ref = obj.$ref;
    if (ref.startsWith('hub:common#/$defs/') || ref.startsWith('#/$defs/')) {
      const name = ref.slice(ref.lastIndexOf('/') + 1);
      Object.assign(out, rewrite((COMMON_SCHEMA.$defs as Record<string, JsonSchema>)[name]));
    } else if (ref.startsWith('hub:')) {
      out.$ref = `#/components/schemas/${componentName(ref)}`;
    }
  }
  for (const [k, v] of Object.entries(obj)) {
    if (k === '$ref' || STRIP.has(k)) continue;
    out[k] = rewrite(v);
  }
  return out;
}

function publicTableSchema(schema: JsonSchema): JsonSchema {
  const props = { ...(schema.properties as Record<string, JsonSchema>) };
  const hidden = Object.keys(props).filter((k) => props[k]!['x-hub-private'] === true);
  for (const k of hidden) delete props[k];
  return rewrite({ ...schema, properties: props, required: (schema.required as string[]).filter((r) => !hidden.includes(r)) }) as JsonSchema;
}

function responseSchema(schema: RouteSpec['responses'][number]['schema']): JsonSchema | undefined {
  if (schema === undefined) return undefined;
  if (schema === 'problem') return { $ref: '#/components/schemas/Problem' };
  if (typeof schema === 'string') return { $ref: `#/components/schemas/${componentName(schema)}` };
  if ('extend' in schema && typeof schema.extend === 'string') {
    // one object schema: allOf with a closed base (additionalProperties: false) could never match
    const base = publicTableSchema(getSchema(schema.extend));
    return {
      ...base,
      properties: { ...(base.properties as JsonSchema), ...(rewrite(schema.properties) as JsonSchema) },
      required: [...(base.required as string[]), ...(schema.required as string[])],
    };
  }
  if ('list' in schema && typeof schema.list === 'string') {
    return {
      type: 'object',
      required: ['data', 'nextCursor'],
      properties: {
        data: { type: 'array', items: { $ref: `#/components/schemas/${componentName(schema.list)}` } },
        nextCursor: { type: ['string', 'null'], description: 'Pass as `cursor` for the next page; null on the last page.' },
      },
    };
  }
  return rewrite(schema) as JsonSchema;
}

const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } });

function operation(spec: RouteSpec): JsonSchema {
  const parameters: JsonSchema[] = [];
  for (const m of spec.path.matchAll(/\{(\w+)\}/g)) {
    parameters.push({ name: m[1], in: 'path', required: true, schema: { type: 'string', maxLength: 64 } });
  }
  for (const q of spec.query ?? []) {
    parameters.push({ name: q.name, in: 'query', required: q.required === true, description: q.description, schema: q.schema });
  }
  if (spec.ifMatch) {
    parameters.push({ name: 'If-Match', in: 'header', required: false, description: 'The ETag you read; the change fails with 412 if the resource changed since.', schema: { type: 'string' } });
  }
  if (spec.auth && spec.method === 'post' && !spec.upload) {
    parameters.push({ name: 'Idempotency-Key', in: 'header', required: false, description: 'Retries with the same key and body get the stored response for 24 hours.', schema: { type: 'string', maxLength: 255 } });
  }
  const responses: JsonSchema = {};
  for (const [status, r] of Object.entries(spec.responses)) {
    const schema = responseSchema(r.schema);
    const isProblem = r.schema === 'problem';
    responses[status] = r.contentTypes
      ? { description: r.description, content: Object.fromEntries(r.contentTypes.map((t) => [t, { schema: { type: 'string', format: 'binary' } }])) }
      : schema
      ? { description: r.description, content: { [isProblem ? 'application/problem+json' : 'application/json']: { schema } } }
      : { description: r.description };
  }
  if (spec.body || spec.query?.length) responses['400'] ??= problem('The request is not valid (see `errors`)');
  if (spec.body) {
    responses['413'] ??= problem('The body is larger than HUB_MAX_BODY_BYTES');
    responses['415'] ??= problem(`The body is not ${spec.body.form ? 'application/json or application/x-www-form-urlencoded' : 'application/json'}`);
  }
  if (spec.method === 'get' && spec.responses[200]?.headers?.includes('ETag')) {
    responses['304'] ??= { description: 'Not modified: If-None-Match names the current ETag' };
  }
  if (spec.auth) {
    responses['401'] ??= problem('Missing, invalid, revoked or expired credentials');
    responses['403'] ??= problem(`The credentials lack the scope ${spec.auth.resource}:${spec.auth.action}`);
    responses['429'] ??= problem('Rate limited; see Retry-After');
    if (spec.method === 'post' && !spec.upload) {
      responses['400'] ??= problem('The Idempotency-Key is malformed');
      responses['409'] ??= problem('A request with this Idempotency-Key is still running (or another conflict)');
      responses['422'] ??= problem('The Idempotency-Key was used with a different request');
    }
  }
  const op: JsonSchema = {
    operationId: spec.operationId,
    summary: spec.summary,
    tags: [spec.tag],
    parameters,
    responses,
  };
  if (spec.description) op.description = spec.description;
  if (spec.auth) {
    op.security = [{ bearer: [] }, { apiKeyHeader: [] }, { oauth2: [`${spec.auth.resource}:${spec.auth.action}`] }];
    op['x-required-scope'] = `${spec.auth.resource}:${spec.auth.action}`;
  } else {
    op.security = [];
  }
  if (spec.body) {
    const content: JsonSchema = { 'application/json': { schema: { $ref: `#/components/schemas/${componentName(spec.body.schema)}` } } };
    if (spec.body.form) content['application/x-www-form-urlencoded'] = content['application/json'];
    op.requestBody = { required: spec.body.required !== false, content };
  }
  if (spec.upload) {
    op.requestBody = { required: true, description: spec.upload.description, content: Object.fromEntries(spec.upload.contentTypes.map((t) => [t, { schema: t === 'multipart/form-data' ? { type: 'object', required: ['file'], properties: { file: { type: 'string', format: 'binary' } } } : { type: 'string', format: 'binary' } }])) };
  }
  return op;
}

export function buildOpenApi(specs: readonly RouteSpec[], options: { serverUrl: string; version: string }): JsonSchema {
  const schemas: JsonSchema = { Problem: PROBLEM_SCHEMA };
  // only the tables some operation returns: internal ones (signing keys, idempotency records) stay out
  const used = new Set<string>();
  JSON.stringify(specs.map((s) => s.responses), (_k, v: unknown) => {
    if (typeof v === 'string' && v.startsWith('hub:tables/')) used.add(v);
    return v;
  });
  for (const t of TABLE_SPECS.values()) if (used.has(t.schemaId)) schemas[t.title] = publicTableSchema(t.schema);
  for (const spec of specs) {
    if (spec.body) schemas[componentName(spec.body.schema)] = rewrite(getSchema(spec.body.schema));
  }
  const paths: JsonSchema = {};
  for (const spec of specs) {
    const item = (paths[spec.path] ??= {}) as JsonSchema;
    item[spec.method] = operation(spec);
  }
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'Inventory integration hub',
      version: options.version,
      description:
        'REST API of the hub. Authenticate with an API key (`Authorization: Bearer hub_sk_…` or `X-API-Key`) or an OAuth2 ' +
        'client-credentials access token. Errors are RFC 9457 problem documents with a stable `code`; see [the error codes](/docs/errors).',
    },
    servers: [{ url: options.serverUrl }],
    components: {
      schemas,
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'An API key (hub_sk_…) or an OAuth access token.' },
        apiKeyHeader: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
        oauth2: { type: 'oauth2', flows: { clientCredentials: { tokenUrl: '/v1/oauth/token', scopes: {} } } },
      },
    },
    paths,
  };
}
