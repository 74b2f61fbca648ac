// Appwrite's published server OpenAPI document as a test oracle: route matching, request checks and response checks.
// Schemas there are OpenAPI 3.0 style (`nullable`, `x-nullable`, `x-*` annotations), so they are adapted before ajv.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

/** Appwrite's spec beside the repository (shared/specs, as CI has it), or where HUB_APPWRITE_SPEC says. */
export const DEFAULT_SPEC_PATH =
  process.env.HUB_APPWRITE_SPEC ?? fileURLToPath(new URL('../../../shared/specs/appwrite/open-api3-1.8.x-server.json', import.meta.url));

type Json = Record<string, any>;

export interface SpecParam {
  name: string;
  in: 'path' | 'query' | 'header';
  required: boolean;
  schema: Json;
}

/** One `x-appwrite.methods` entry: a route can serve several SDK methods with different required sets. */
interface SdkMethod {
  name: string;
  parameters: string[];
  required: string[];
}

export interface SpecOperation {
  method: string;
  template: string;
  operationId: string;
  params: SpecParam[];
  bodyProps: Set<string>;
  bodyRequired: string[];
  /** How the body is sent: 'application/json', 'multipart/form-data' (uploads), or null for no body. */
  bodyMediaType: string | null;
  /** Multipart properties declared `format: binary`: they must arrive as file parts. */
  binaryProps: Set<string>;
  /** Compiled on first use: the spec has some two hundred bodies and a test touches a few. */
  bodyValidator(): ValidateFunction | null;
  sdkMethods: SdkMethod[];
  security: string[][];
  successStatus: number;
  /** The documented success body, and for routes serving several SDK methods each method's model. */
  responseSchemas: Json[];
}

export interface RouteMatch {
  operation: SpecOperation;
  pathParams: Record<string, string>;
}

export interface ParsedRequest {
  query: Record<string, unknown>;
  /** JSON members, or multipart fields: text as strings, `name[]` parts as arrays, file parts as FormFile. */
  body: Record<string, unknown>;
}

/** A file part of a multipart/form-data body. */
export interface FormFile {
  filename: string;
  contentType: string;
  data: Buffer;
}

export interface Spec {
  /** Path prefix of every route, from the spec's first `servers` URL (e.g. `/v1`). */
  basePath: string;
  version: string;
  /** The operation for a method and a path below basePath, or null if the spec has none. */
  match(method: string, path: string): RouteMatch | null;
  /**
   * Decode and check query string and body (JSON, or multipart/form-data where the operation takes it) against the
   * operation; problems are sentences. A multipart body must be given as bytes: file parts are binary.
   */
  checkRequest(match: RouteMatch, search: URLSearchParams, rawBody: string | Buffer, contentType: string): { parsed: ParsedRequest; problems: string[] };
  /** Check a response against the documented success response (tests only); a null status or undefined body is not checked. */
  checkResponse(method: string, path: string, status: number | null, body: unknown): string[];
}

interface Matcher {
  regex: RegExp;
  names: string[];
  /** One entry per segment, 1 for a literal: literal segments win over parameters. */
  rank: number[];
  operations: Map<string, SpecOperation>;
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const cache = new Map<string, Spec>();

export function loadSpec(path: string = DEFAULT_SPEC_PATH): Spec {
  let spec = cache.get(path);
  if (!spec) {
    spec = buildSpec(JSON.parse(readFileSync(path, 'utf8')) as Json);
    cache.set(path, spec);
  }
  return spec;
}

/** OpenAPI 3.0 → JSON Schema draft-07 as ajv reads it: `x-nullable` becomes `nullable`, refs point into one document, `oneOf` reads as `anyOf`. */
function adapt(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(adapt);
  if (!schema || typeof schema !== 'object') return schema;
  const out: Json = {};
  for (const [key, value] of Object.entries(schema as Json)) {
    if (key === 'x-nullable') {
      if (value === true) out.nullable = true;
    } else if (key === '$ref' && typeof value === 'string') {
      out.$ref = value.replace(/^#\//, 'appwrite#/');
    } else if (key.startsWith('x-') || key === 'example' || key === 'description') {
      continue;
    } else if (key === 'oneOf') {
      // The column unions overlap (every column model fits columnBoolean), so "exactly one" can never hold:
      // read them as the plain unions the SDK generator makes of them.
      out.anyOf = adapt(value);
    } else {
      out[key] = adapt(value);
    }
  }
  if (out.nullable === true && out.type === undefined) delete out.nullable;
  return out;
}

function createAjv(doc: Json): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: true, logger: false });
  addFormats(ajv);
  for (const format of ['phone', 'enum', 'ip', 'datetime']) ajv.addFormat(format, true);
  ajv.addSchema({ $id: 'appwrite', components: adapt(doc.components ?? {}) } as Json);
  return ajv;
}

function buildSpec(doc: Json): Spec {
  const basePath = new URL(String(doc.servers?.[0]?.url ?? 'http://localhost/v1')).pathname.replace(/\/$/, '');
  const ajv = createAjv(doc);
  const matchers: Matcher[] = [];
  const responseValidators = new Map<Json, ValidateFunction>();

  for (const [template, item] of Object.entries(doc.paths as Json)) {
    const segments = template.split('/').filter(Boolean);
    const names: string[] = [];
    const source = segments
      .map((segment) => {
        const param = /^\{(.+)\}$/.exec(segment);
        if (!param) return escapeRegex(segment);
        names.push(param[1]!);
        return '([^/]+)';
      })
      .join('/');
    const matcher: Matcher = {
      regex: new RegExp(`^/${source}/?$`),
      names,
      rank: segments.map((s) => (s.startsWith('{') ? 0 : 1)),
      operations: new Map(),
    };
    for (const [method, op] of Object.entries(item as Json)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      matcher.operations.set(method.toUpperCase(), buildOperation(ajv, method.toUpperCase(), template, op as Json));
    }
    matchers.push(matcher);
  }
  // Most specific first: `/tablesdb/transactions` must win over `/tablesdb/{databaseId}`.
  matchers.sort((a, b) => compareRank(b.rank, a.rank));

  return {
    basePath,
    version: String(doc.info?.version ?? ''),
    match(method, path) {
      for (const matcher of matchers) {
        const operation = matcher.operations.get(method.toUpperCase());
        if (!operation) continue;
        const m = matcher.regex.exec(path);
        if (!m) continue;
        const pathParams: Record<string, string> = {};
        try {
          matcher.names.forEach((name, i) => (pathParams[name] = decodeURIComponent(m[i + 1]!)));
        } catch {
          continue;
        }
        return { operation, pathParams };
      }
      return null;
    },
    checkRequest: checkRequest,
    checkResponse(method, path, status, body) {
      const matched = this.match(method, path);
      if (!matched) return [`${method} ${path}: no such operation`];
      const { operation } = matched;
      if (status !== null && status !== operation.successStatus) return [`${operation.operationId}: status ${status}, the spec documents ${operation.successStatus}`];
      if (body === undefined || operation.responseSchemas.length === 0) return [];
      const problems: string[] = [];
      for (const schema of operation.responseSchemas) {
        let validate = responseValidators.get(schema);
        if (!validate) {
          validate = ajv.compile(adapt(schema) as Json);
          responseValidators.set(schema, validate);
        }
        if (validate(body)) return [];
        problems.push(...(validate.errors ?? []).map((e) => `${operation.operationId} response${e.instancePath} ${e.message}`));
      }
      return problems;
    },
  };
}

function buildOperation(ajv: Ajv, method: string, template: string, op: Json): SpecOperation {
  const content = (op.requestBody?.content ?? {}) as Json;
  const bodyMediaType = ['application/json', 'multipart/form-data'].find((type) => content[type]?.schema) ?? null;
  const bodySchema = bodyMediaType ? (content[bodyMediaType].schema as Json) : undefined;
  let compiled: ValidateFunction | null = null;
  const bodyValidator = (): ValidateFunction | null => {
    if (!bodySchema) return null;
    if (!compiled) {
      // The published body schemas leave additionalProperties open; a parameter the spec does not name is a violation.
      const strict: Json = { ...(adapt(bodySchema) as Json), additionalProperties: false };
      delete strict.required; // checked in checkRequest against x-appwrite.methods, which knows multi-method routes
      compiled = ajv.compile(strict);
    }
    return compiled;
  };
  const responses = (op.responses ?? {}) as Json;
  const successStatus = Number(Object.keys(responses).find((code) => code.startsWith('2')) ?? 200);
  const sdkMethods = ((op['x-appwrite']?.methods ?? []) as Json[]).map((m) => ({
    name: String(m.name),
    parameters: (m.parameters ?? []) as string[],
    required: (m.required ?? []) as string[],
  }));
  return {
    method,
    template,
    operationId: String(op.operationId ?? `${method} ${template}`),
    params: ((op.parameters ?? []) as SpecParam[]).map((p) => ({ ...p, required: p.required === true })),
    bodyProps: new Set(Object.keys((bodySchema?.properties ?? {}) as Json)),
    bodyRequired: (bodySchema?.required ?? []) as string[],
    bodyMediaType,
    binaryProps: new Set(Object.entries((bodySchema?.properties ?? {}) as Json).filter(([, s]) => (s as Json).format === 'binary').map(([name]) => name)),
    bodyValidator,
    sdkMethods,
    security: ((op.security ?? []) as Json[]).map((s) => Object.keys(s)),
    successStatus,
    responseSchemas: [
      responses[String(successStatus)]?.content?.['application/json']?.schema as Json | undefined,
      ...((op['x-appwrite']?.methods ?? []) as Json[]).flatMap((m) => ((m.responses ?? []) as Json[]).map((r) => (r.model ? { $ref: r.model } : undefined))),
    ].filter((s, i, all): s is Json => s !== undefined && all.findIndex((o) => JSON.stringify(o) === JSON.stringify(s)) === i),
  };
}

function checkRequest(match: RouteMatch, search: URLSearchParams, rawBody: string | Buffer, contentType: string) {
  const { operation } = match;
  const problems: string[] = [];
  const query = decodeQuery(operation, search, problems);
  let body: Record<string, unknown> = {};
  // What ajv sees: file parts stand in as strings, which is what `type: string, format: binary` describes.
  let checked: Record<string, unknown> | null = null;
  if (operation.bodyMediaType === 'multipart/form-data') {
    const form = decodeForm(operation, typeof rawBody === 'string' ? Buffer.from(rawBody, 'utf8') : rawBody, contentType, problems);
    body = form.body;
    checked = form.checked;
  } else if (operation.method !== 'GET' && rawBody.toString().trim() !== '') {
    rawBody = rawBody.toString();
    if (!/^application\/json\b/i.test(contentType)) {
      problems.push(`${operation.operationId}: body sent as "${contentType || 'no content type'}", the spec takes application/json`);
    } else {
      try {
        const parsed: unknown = JSON.parse(rawBody);
        if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) problems.push(`${operation.operationId}: body is not a JSON object`);
        else body = parsed as Record<string, unknown>;
      } catch {
        problems.push(`${operation.operationId}: body is not valid JSON`);
      }
    }
  }
  const validateBody = operation.bodyValidator();
  if (validateBody) {
    if (!validateBody(checked ?? body)) {
      for (const e of validateBody.errors ?? []) {
        const where = e.keyword === 'additionalProperties' ? `unknown body parameter "${String(e.params.additionalProperty)}"` : `body${e.instancePath} ${e.message}`;
        problems.push(`${operation.operationId}: ${where}`);
      }
    }
  } else {
    for (const key of Object.keys(body)) problems.push(`${operation.operationId}: unknown body parameter "${key}" (the operation takes no body)`);
  }
  const given = new Set([...Object.keys(match.pathParams), ...Object.keys(query), ...Object.keys(body)]);
  if (operation.sdkMethods.length > 0) {
    const fits = operation.sdkMethods.some((m) => m.required.every((r) => given.has(r)) && [...given].every((g) => m.parameters.includes(g)));
    if (!fits) {
      const names = operation.sdkMethods.map((m) => `${m.name}(${m.required.join(', ')})`).join(' or ');
      problems.push(`${operation.operationId}: parameters ${JSON.stringify([...given])} fit none of ${names}`);
    }
  } else {
    for (const name of operation.bodyRequired) if (!(name in body)) problems.push(`${operation.operationId}: missing required body parameter "${name}"`);
  }
  return { parsed: { query, body }, problems };
}

/**
 * A multipart/form-data body as Appwrite (PHP) reads it: `name[]` parts make an array, a `format: binary`
 * property must be a file part and any other property a text part; text parts of boolean and integer properties
 * are coerced as PHP's validators read them.
 */
function decodeForm(operation: SpecOperation, raw: Buffer, contentType: string, problems: string[]): { body: Record<string, unknown>; checked: Record<string, unknown> } {
  const body: Record<string, unknown> = {};
  const checked: Record<string, unknown> = {};
  const boundary = /^multipart\/form-data\s*;.*\bboundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!boundary) {
    if (raw.length > 0 || operation.bodyRequired.length > 0) problems.push(`${operation.operationId}: body sent as "${contentType || 'no content type'}", the spec takes multipart/form-data`);
    return { body, checked };
  }
  const parts = parseMultipart(raw, boundary[1] ?? boundary[2]!);
  if (!parts) {
    problems.push(`${operation.operationId}: the multipart/form-data body is malformed`);
    return { body, checked };
  }
  const schemas = (operation.bodyValidator()?.schema as Json | undefined)?.properties as Json | undefined;
  for (const part of parts) {
    const bracket = /^([^[\]]+)\[\]$/.exec(part.name);
    const name = bracket ? bracket[1]! : part.name;
    const schema = (schemas?.[name] ?? {}) as Json;
    const isFile = part.filename !== null;
    if (operation.binaryProps.has(name) !== isFile) {
      problems.push(`${operation.operationId}: "${part.name}" sent as a ${isFile ? 'file' : 'text'} part, the spec takes ${isFile ? 'text' : 'a file (format: binary)'}`);
    }
    if (Boolean(bracket) !== (schema.type === 'array') && schemas?.[name]) {
      problems.push(`${operation.operationId}: "${part.name}" ${bracket ? 'sent as an array, the spec takes one value' : 'sent as one value, the spec takes an array (name[])'}`);
    }
    const value: unknown = isFile
      ? ({ filename: part.filename!, contentType: part.contentType, data: part.data } satisfies FormFile)
      : part.data.toString('utf8');
    const view: unknown = isFile ? part.filename : schema.type === 'boolean' || schema.type === 'integer' || schema.type === 'number' ? coerceScalar(schema, value as string) ?? value : value;
    if (bracket) {
      ((body[name] ??= []) as unknown[]).push(value);
      ((checked[name] ??= []) as unknown[]).push(view);
    } else {
      if (name in body) problems.push(`${operation.operationId}: "${name}" sent twice`);
      body[name] = value;
      checked[name] = view;
    }
  }
  return { body, checked };
}

/** One part of a multipart body; `filename` is null for a text field. */
interface FormPart {
  name: string;
  filename: string | null;
  contentType: string;
  data: Buffer;
}

/** RFC 7578 parts, or null if the body does not follow the framing (names and filenames as WHATWG FormData escapes them). */
export function parseMultipart(raw: Buffer, boundary: string): FormPart[] | null {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: FormPart[] = [];
  let at = raw.indexOf(delimiter);
  if (at !== 0) return null;
  for (;;) {
    at += delimiter.length;
    if (raw.subarray(at, at + 2).toString() === '--') return parts;
    if (raw.subarray(at, at + 2).toString() !== '\r\n') return null;
    const headerEnd = raw.indexOf('\r\n\r\n', at + 2);
    if (headerEnd < 0) return null;
    const next = raw.indexOf(Buffer.from(`\r\n--${boundary}`), headerEnd + 4);
    if (next < 0) return null;
    const headers = new Map<string, string>();
    for (const line of raw.subarray(at + 2, headerEnd).toString('utf8').split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const disposition = headers.get('content-disposition') ?? '';
    const name = /;\s*name="([^"]*)"/i.exec(disposition);
    if (!/^form-data\b/i.test(disposition) || !name) return null;
    const filename = /;\s*filename="([^"]*)"/i.exec(disposition);
    const unescape = (text: string) => text.replace(/%22/g, '"').replace(/%0D/gi, '\r').replace(/%0A/gi, '\n');
    parts.push({
      name: unescape(name[1]!),
      filename: filename ? unescape(filename[1]!) : null,
      contentType: headers.get('content-type') ?? (filename ? 'application/octet-stream' : 'text/plain'),
      data: raw.subarray(headerEnd + 4, next),
    });
    at = next + 2;
  }
}

/** Query strings as node-appwrite writes them: `queries[0]=…&queries[1]=…` (Client.flatten); `queries[]=` also reads as an array. */
function decodeQuery(operation: SpecOperation, search: URLSearchParams, problems: string[]): Record<string, unknown> {
  const byName = new Map(operation.params.filter((p) => p.in === 'query').map((p) => [p.name, p]));
  const arrays = new Map<string, { index: number; value: string }[]>();
  const out: Record<string, unknown> = {};
  let position = 0;
  for (const [rawKey, value] of search) {
    position++;
    const bracket = /^([^[\]]+)\[(\d*)\]$/.exec(rawKey);
    const name = bracket ? bracket[1]! : rawKey;
    const param = byName.get(name);
    if (!param) {
      problems.push(`${operation.operationId}: unknown query parameter "${rawKey}"`);
      continue;
    }
    if (param.schema.type === 'array') {
      const list = arrays.get(name) ?? [];
      list.push({ index: bracket?.[2] ? Number(bracket[2]) : 1e9 + position, value });
      arrays.set(name, list);
      continue;
    }
    if (bracket) {
      problems.push(`${operation.operationId}: query parameter "${name}" is not an array`);
      continue;
    }
    const coerced = coerceScalar(param.schema, value);
    if (coerced === undefined) problems.push(`${operation.operationId}: query parameter "${name}" is not a valid ${String(param.schema.type)}`);
    else out[name] = coerced;
  }
  for (const [name, list] of arrays) out[name] = list.sort((a, b) => a.index - b.index).map((e) => e.value);
  for (const param of byName.values()) {
    if (param.required && !(param.name in out)) problems.push(`${operation.operationId}: missing required query parameter "${param.name}"`);
  }
  return out;
}

function coerceScalar(schema: Json, value: string): unknown {
  switch (schema.type) {
    case 'boolean':
      return value === 'true' || value === '1' ? true : value === 'false' || value === '0' ? false : undefined;
    case 'integer':
      return /^-?\d+$/.test(value) ? Number(value) : undefined;
    case 'number':
      return value.trim() !== '' && Number.isFinite(Number(value)) ? Number(value) : undefined;
    default:
      return value;
  }
}

function compareRank(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? -1) - (b[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
