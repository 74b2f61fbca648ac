// The OpenAPI document and the docs pages: the document is complete, self-contained and valid, it hides what never
// leaves the store, and real responses match what it promises (so code and docs cannot drift apart unnoticed).
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../src/errors.ts';
import { compileRouteValidators } from '../src/app/define-route.ts';
import { TABLE_SPECS } from '../src/schemas/tables.ts';
import { createTestHub, type CallResult, type TestHub } from './helpers.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
const DOC_ID = 'hub-openapi.json';
const METHODS = ['get', 'post', 'patch', 'put', 'delete'];

type Json = Record<string, any>;

let t: TestHub;
let doc: Json;
let ajv: Ajv2020;

beforeAll(async () => {
  t = await createTestHub();
  const res = await t.call('GET', '/v1/openapi.json', { key: null });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  doc = res.body;
  ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  // The whole document under one id: its internal `#/components/schemas/…` references then resolve as they are.
  ajv.addSchema(doc, DOC_ID);
});

afterAll(async () => {
  await t.close();
});

/** Escapes one JSON pointer segment (RFC 6901). */
const seg = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

function resolvePointer(root: unknown, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  let node: any = root;
  for (const raw of ref.slice(2).split('/')) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || !(key in node)) return undefined;
    node = node[key];
  }
  return node;
}

function collectRefs(node: unknown, at = '#', out: { at: string; ref: string }[] = []): { at: string; ref: string }[] {
  if (Array.isArray(node)) node.forEach((v, i) => collectRefs(v, `${at}/${i}`, out));
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string') out.push({ at, ref: v });
      else collectRefs(v, `${at}/${seg(k)}`, out);
    }
  }
  return out;
}

/** The validator of the documented response of an operation, for one status and media type. */
function responseValidator(path: string, method: string, status: number, mediaType = 'application/json'): ValidateFunction {
  const pointer = `#/paths/${seg(path)}/${method}/responses/${status}/content/${seg(mediaType)}/schema`;
  expect(resolvePointer(doc, pointer), `${method.toUpperCase()} ${path} documents no ${status} ${mediaType} body`).toBeDefined();
  return ajv.compile({ $ref: `${DOC_ID}${pointer}` });
}

function expectDocumented(res: CallResult, path: string, method: string, mediaType = 'application/json'): void {
  expect(res.headers.get('content-type')?.split(';')[0]).toBe(mediaType);
  const validate = responseValidator(path, method, res.status, mediaType);
  const ok = validate(res.body);
  expect(ok, `${method.toUpperCase()} ${path} ${res.status} does not match the document: ${ajv.errorsText(validate.errors)}\n${res.text}`).toBe(true);
}

describe('the OpenAPI document', () => {
  it('is OpenAPI 3.1.0 with info, servers, paths and components', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    expect(doc.servers).toEqual([{ url: 'http://hub.test' }]);
    expect(Object.keys(doc.paths).length).toBeGreaterThan(0);
    expect(Object.keys(doc.components.schemas).length).toBeGreaterThan(0);
    expect(Object.keys(doc.components.securitySchemes)).toEqual(expect.arrayContaining(['bearer', 'apiKeyHeader', 'oauth2']));
  });

  it('is served the same on every request', async () => {
    const again = await t.call('GET', '/v1/openapi.json', { key: 'not a key' });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(doc);
  });

  it('resolves every $ref inside the document', () => {
    const refs = collectRefs(doc);
    expect(refs.length).toBeGreaterThan(0);
    const broken = refs.filter(({ ref }) => resolvePointer(doc, ref) === undefined);
    expect(broken).toEqual([]);
  });

  it('leaves none of the store-only annotations in the document', () => {
    const text = JSON.stringify(doc);
    for (const word of ['x-hub-private', 'x-hub-table', '"$id"', 'hub:common', 'hub:tables/', 'hub:api/']) expect(text).not.toContain(word);
  });

  it('has component schemas that all compile with a JSON Schema 2020-12 validator', () => {
    const failures: string[] = [];
    for (const name of Object.keys(doc.components.schemas)) {
      try {
        ajv.compile({ $ref: `${DOC_ID}#/components/schemas/${seg(name)}` });
      } catch (err) {
        failures.push(`${name}: ${(err as Error).message}`);
      }
      // and on their own, outside the document, when they reference nothing
      if (!JSON.stringify(doc.components.schemas[name]).includes('$ref')) {
        const alone = new Ajv2020({ strict: false });
        addFormats(alone);
        alone.compile(doc.components.schemas[name]);
      }
    }
    expect(failures).toEqual([]);
  });

  it('describes problems with every error code of the error table', () => {
    expect(doc.components.schemas.Problem.properties.code.enum.sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it('has an operation for every declared route, with its method and operationId', () => {
    const specs = t.hub.app.routeSpecs;
    expect(specs.length).toBeGreaterThan(10);
    for (const spec of specs) {
      const op = doc.paths[spec.path]?.[spec.method];
      expect(op, `${spec.method} ${spec.path} is missing`).toBeDefined();
      expect(op.operationId).toBe(spec.operationId);
      expect(op.summary).toBe(spec.summary);
      for (const [, name] of spec.path.matchAll(/\{(\w+)\}/g)) {
        expect(op.parameters).toEqual(expect.arrayContaining([expect.objectContaining({ name, in: 'path', required: true })]));
      }
      for (const q of spec.query ?? []) {
        expect(op.parameters).toEqual(expect.arrayContaining([expect.objectContaining({ name: q.name, in: 'query' })]));
      }
    }
  });

  it('compiles every route\'s body and query validators (each route compiles its own on its first request)', () => {
    const failures: string[] = [];
    for (const spec of t.hub.app.routeSpecs) {
      try {
        compileRouteValidators(spec);
      } catch (err) {
        failures.push(`${spec.method} ${spec.path}: ${(err as Error).message}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('documents no operation the app does not declare', () => {
    const declared = new Set(t.hub.app.routeSpecs.map((s) => `${s.method} ${s.path}`));
    const documented = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item as Json)
        .filter((m) => METHODS.includes(m))
        .map((m) => `${m} ${path}`),
    );
    expect(documented.filter((d) => !declared.has(d))).toEqual([]);
    expect(documented.length).toBe(declared.size);
  });

  it('has unique operationIds', () => {
    const ids = Object.values(doc.paths).flatMap((item) => Object.values(item as Json).map((op: Json) => op.operationId));
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('lists 401, 403 and 429 problems and a security requirement on every authenticated operation', () => {
    for (const spec of t.hub.app.routeSpecs) {
      const op = doc.paths[spec.path][spec.method];
      if (!spec.auth) {
        expect(op.security, spec.operationId).toEqual([]);
        continue;
      }
      expect(op.security.length, spec.operationId).toBeGreaterThan(0);
      for (const requirement of op.security) {
        for (const scheme of Object.keys(requirement)) expect(doc.components.securitySchemes).toHaveProperty(scheme);
      }
      expect(op.security).toContainEqual({ oauth2: [`${spec.auth.resource}:${spec.auth.action}`] });
      for (const status of ['401', '403', '429']) {
        expect(op.responses[status]?.content?.['application/problem+json']?.schema, `${spec.operationId} ${status}`).toEqual({
          $ref: '#/components/schemas/Problem',
        });
      }
    }
  });

  it('has a request body on every route that takes one, and none on the others', () => {
    for (const spec of t.hub.app.routeSpecs) {
      const op = doc.paths[spec.path][spec.method];
      if (spec.upload) {
        // A file upload: the declared media types, streamed by the handler itself.
        expect(Object.keys(op.requestBody.content), spec.operationId).toEqual(spec.upload.contentTypes);
        continue;
      }
      if (!spec.body) {
        expect(op.requestBody, spec.operationId).toBeUndefined();
        continue;
      }
      expect(op.requestBody.required, spec.operationId).toBe(spec.body.required !== false);
      const schema = op.requestBody.content['application/json']?.schema;
      expect(schema?.$ref, spec.operationId).toMatch(/^#\/components\/schemas\//);
      expect(resolvePointer(doc, schema.$ref)).toBeDefined();
      if (spec.body.form) expect(op.requestBody.content).toHaveProperty(['application/x-www-form-urlencoded']);
      // a body that fails validation is answered with 400: it is documented
      expect(op.responses['400'], spec.operationId).toBeDefined();
    }
  });

  it('documents a success response for every operation', () => {
    for (const spec of t.hub.app.routeSpecs) {
      const statuses = Object.keys(doc.paths[spec.path][spec.method].responses).map(Number);
      expect(statuses.some((s) => s >= 200 && s < 300), spec.operationId).toBe(true);
    }
  });

  it('never shows private fields in the representations', () => {
    const { schemas } = doc.components;
    expect(schemas.ApiKey.properties).not.toHaveProperty('hash');
    expect(schemas.ApiKey.required).not.toContain('hash');
    expect(schemas.OAuthClient.properties).not.toHaveProperty('secretHash');
    expect(schemas.OAuthClient.required).not.toContain('secretHash');
    expect(schemas.Connection.properties).not.toHaveProperty('credentials');
    expect(schemas.Connection.required).not.toContain('credentials');
    expect(schemas.Connection.properties).toHaveProperty('credentialFields');
    // the same for every column a table marks private
    for (const table of TABLE_SPECS.values()) {
      const component = schemas[table.title];
      if (!component) continue; // not returned by any operation (checked below)
      for (const col of table.columns.filter((c) => c.private)) {
        expect(component.properties, `${table.title}.${col.name}`).not.toHaveProperty(col.name);
      }
    }
    // internal tables that no operation returns are not published at all
    for (const internal of ['SigningKey', 'IdempotencyRecord']) expect(schemas).not.toHaveProperty(internal);
  });
});

describe('the docs pages', () => {
  it('serves an HTML page that loads the bundled Swagger UI', async () => {
    const res = await t.call('GET', '/docs', { key: null });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.text).toContain('/docs/assets/swagger-ui-bundle.js');
    expect(res.text).toContain('/docs/assets/swagger-ui.css');
    expect(res.text).toContain('/v1/openapi.json');
  });

  it('serves the Swagger UI script and stylesheet with their content types', async () => {
    const js = await t.call('GET', '/docs/assets/swagger-ui-bundle.js', { key: null });
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/^(text|application)\/javascript/);
    expect(js.text).toContain('SwaggerUIBundle');
    const css = await t.call('GET', '/docs/assets/swagger-ui.css', { key: null });
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    expect(css.text).toContain('.swagger-ui');
  });

  it('answers 404 for an unknown asset or a path traversal, never with file contents', async () => {
    const paths = [
      '/docs/assets/nothing.js',
      '/docs/assets/package.json',
      '/docs/assets/index.html',
      '/docs/assets/..%2Fpackage.json',
      '/docs/assets/%2e%2e%2fpackage.json',
      '/docs/assets/..%2F..%2F..%2Fpackage.json',
      '/docs/assets/..%5Cpackage.json',
      '/docs/assets/%2e%2e/package.json',
      '/docs/assets/../../package.json',
    ];
    for (const path of paths) {
      const res = await t.call('GET', path, { key: null });
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type'), path).toMatch(/^application\/problem\+json/);
      expect(res.text, path).not.toContain('"dependencies"');
      expect(res.text, path).not.toContain('"version"');
    }
  });

  // src/app/routes/system.ts looks the name up in a plain object (DOCS_ASSETS[file]), so inherited names such as
  // `constructor` pass the allow-list and readFile then fails: 500 instead of 404.
  it('answers 404 for asset names that are properties of every object', async () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const res = await t.call('GET', `/docs/assets/${name}`, { key: null });
      expect(res.status, name).toBe(404);
    }
  });

  it('lists every error code with an anchor', async () => {
    const res = await t.call('GET', '/docs/errors', { key: null });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    for (const [code, e] of Object.entries(ERROR_CODES)) {
      expect(res.text).toContain(`id="error-${code}"`);
      expect(res.text).toContain(String(e.status));
    }
  });

  it('points the type of a problem at its entry in the error list', async () => {
    const problem = await t.call('GET', '/v1/workspace', { key: null });
    expect(problem.status).toBe(401);
    const type = new URL(problem.body.type, 'http://hub.test');
    expect(type.pathname).toBe('/docs/errors');
    expect(type.hash).toBe(`#error-${problem.body.code}`);
    const page = await t.call('GET', type.pathname, { key: null });
    expect(page.text).toContain(`id="${type.hash.slice(1)}"`);
  });
});

describe('real responses against the document', () => {
  it('refuses bodies that differ from the document (the check is not vacuous)', async () => {
    const res = await t.call('GET', '/v1/workspace');
    const validate = responseValidator('/v1/workspace', 'get', 200);
    expect(validate(res.body)).toBe(true);
    expect(validate({ ...res.body, id: undefined })).toBe(false);
    expect(validate({ ...res.body, secret: 'x' })).toBe(false);
    expect(validate({ ...res.body, createdAt: 'yesterday' })).toBe(false);
  });

  it('matches GET /v1/workspace', async () => {
    expectDocumented(await t.call('GET', '/v1/workspace'), '/v1/workspace', 'get');
  });

  it('matches POST /v1/connections and GET /v1/connections', async () => {
    const created = await t.call('POST', '/v1/connections', {
      body: { connectorId: 'http', name: 'Warehouse ERP', config: { baseUrl: 'http://127.0.0.1:9' }, credentials: { token: 'abc' } },
    });
    expect(created.status).toBe(201);
    expectDocumented(created, '/v1/connections', 'post');
    expect(created.body.credentialFields).toEqual(['token']);
    expect(created.body).not.toHaveProperty('credentials');
    const list = await t.call('GET', '/v1/connections');
    expect(list.body.data.length).toBeGreaterThan(0);
    expectDocumented(list, '/v1/connections', 'get');
    expectDocumented(await t.call('GET', `/v1/connections/${created.body.id}`), '/v1/connections/{id}', 'get');
  });

  it('matches GET /v1/events', async () => {
    await t.call('POST', '/v1/connections', { body: { connectorId: 'http', name: 'For events', config: { baseUrl: 'http://127.0.0.1:9' } } });
    const res = await t.call('GET', '/v1/events');
    expect(res.body.data.length).toBeGreaterThan(0);
    expectDocumented(res, '/v1/events', 'get');
  });

  it('matches GET /v1/audit-log', async () => {
    await t.call('POST', '/v1/connections', { body: { connectorId: 'http', name: 'For audit', config: { baseUrl: 'http://127.0.0.1:9' } } });
    const res = await t.call('GET', '/v1/audit-log');
    expect(res.body.data.length).toBeGreaterThan(0);
    expectDocumented(res, '/v1/audit-log', 'get');
  });

  it('matches GET /v1/api-keys, GET /v1/oauth/clients and GET /v1/jobs', async () => {
    await t.call('POST', '/v1/oauth/clients', { body: { name: 'listed', scopes: ['connections:read'] } });
    expectDocumented(await t.call('GET', '/v1/api-keys'), '/v1/api-keys', 'get');
    expectDocumented(await t.call('GET', '/v1/oauth/clients'), '/v1/oauth/clients', 'get');
    expectDocumented(await t.call('GET', '/v1/jobs'), '/v1/jobs', 'get');
  });

  it('matches a 401 problem', async () => {
    const res = await t.call('GET', '/v1/connections', { key: null });
    expect(res.status).toBe(401);
    expectDocumented(res, '/v1/connections', 'get', 'application/problem+json');
  });

  it('matches a 400 problem with field errors', async () => {
    const res = await t.call('POST', '/v1/connections', { body: { connectorId: 'http' } });
    expect(res.status).toBe(400);
    expect(res.body.errors.length).toBeGreaterThan(0);
    expectDocumented(res, '/v1/connections', 'post', 'application/problem+json');
  });

  it('matches the token response of POST /v1/oauth/token', async () => {
    const client = await t.call('POST', '/v1/oauth/clients', { body: { name: 'token doc', scopes: ['connections:read'] } });
    const res = await t.call('POST', '/v1/oauth/token', {
      key: null,
      body: { grant_type: 'client_credentials', client_id: client.body.clientId, client_secret: client.body.clientSecret },
    });
    expectDocumented(res, '/v1/oauth/token', 'post');
  });

  // The 201 schemas are allOf [ApiKey | OAuthClient, { secret | clientId, clientSecret }], but ApiKey and OAuthClient
  // have additionalProperties: false, so no body can carry the required secret and match: the schema is unsatisfiable.
  it('matches the 201 of POST /v1/oauth/clients, which carries the secret', async () => {
    const res = await t.call('POST', '/v1/oauth/clients', { body: { name: 'doc check', scopes: ['connections:read'] } });
    expect(res.status).toBe(201);
    expectDocumented(res, '/v1/oauth/clients', 'post');
  });

  it('matches the 201 of POST /v1/api-keys, which carries the secret', async () => {
    const res = await t.call('POST', '/v1/api-keys', { body: { name: 'doc check', scopes: ['connections:read'] } });
    expect(res.status).toBe(201);
    expectDocumented(res, '/v1/api-keys', 'post');
  });
});
