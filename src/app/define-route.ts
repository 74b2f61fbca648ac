// One declaration per operation: from it come the Hono route, its auth and scope check, body and query validation,
// idempotency, and its entry in the OpenAPI document. What is documented is what is enforced.
import type { Context, Hono, MiddlewareHandler } from 'hono';
import type { ValidateFunction } from 'ajv/dist/2020.js';
import type { Action, Resource } from '../auth/scopes.ts';
import { HubError } from '../errors.ts';
import { compileSchema, validatorFor, type JsonSchema } from '../schemas/registry.ts';
import { assertValid, toFieldErrors } from '../schemas/validate.ts';
import type { HubEnv } from './deps.ts';
import { guard } from './middleware/auth.ts';
import { idempotency } from './middleware/idempotency.ts';

export type Method = 'get' | 'post' | 'patch' | 'put' | 'delete';

export interface QueryParam {
  name: string;
  description: string;
  schema: JsonSchema & { type: 'string' | 'integer' | 'boolean' };
  required?: boolean;
}

export interface ResponseSpec {
  description: string;
  /**
   * A schema id (`hub:tables/connections`), `problem`, `{ list: id }` for a page of rows, `{ extend: id, properties,
   * required }` for a row with more members (a secret shown once), or an inline schema.
   */
  schema?: string | { list: string } | { extend: string; properties: Record<string, JsonSchema>; required: string[] } | JsonSchema;
  /** For representations of table rows: the private fields are dropped in the document too. */
  headers?: string[];
  /** A file rather than JSON: its media types (the body is documented as binary). */
  contentTypes?: string[];
}

export interface RouteSpec {
  method: Method;
  /** OpenAPI style: /v1/connections/{id} */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tag: string;
  /** false for public routes; otherwise the scope the caller needs. */
  auth: false | { resource: Resource; action: Action };
  body?: { schema: string; required?: boolean; form?: boolean };
  query?: QueryParam[];
  /**
   * Query parameters are the caller's own, taken as they come and never refused (a webhook address that a vendor
   * or a user gave some of their own); `query` is then empty.
   */
  openQuery?: boolean;
  ifMatch?: boolean;
  /** The handler reads the body itself as a file (these media types), streamed, with this size limit documented. */
  upload?: { contentTypes: string[]; description: string };
  responses: Record<number, ResponseSpec>;
}

export interface RouteInput<B> {
  body: B;
  query: Record<string, string | number | boolean | undefined>;
}

export type RouteHandler<B> = (c: Context<HubEnv>, input: RouteInput<B>) => Response | Promise<Response>;

export interface RouteTable {
  specs: RouteSpec[];
  add<B = undefined>(spec: RouteSpec, handler: RouteHandler<B>): void;
}

const NO_QUERY: QueryParam[] = [];

/**
 * Query validators by their schema's text. Route specs are built anew by every app (createApp), and Ajv keeps
 * what it compiled for as long as it lives: compiled once per process, an app after the first costs 2-4 ms rather
 * than 64-92, and a process that builds many apps (the tests, a function runtime) does not pile up copies.
 */
const queryValidators = new Map<string, ValidateFunction>();

function querySchemaOf(spec: RouteSpec): JsonSchema {
  const params = spec.query ?? NO_QUERY;
  return {
    type: 'object',
    additionalProperties: false,
    properties: Object.fromEntries(params.map((p) => [p.name, p.schema])),
    required: params.filter((p) => p.required).map((p) => p.name),
  };
}

function compiledQuery(schema: JsonSchema): ValidateFunction {
  const text = JSON.stringify(schema);
  let validate = queryValidators.get(text);
  if (!validate) queryValidators.set(text, (validate = compileSchema(schema)));
  return validate;
}

/**
 * Compiles a route's body and query validators now. Routes compile them on their first request, so that a process
 * compiles only what it serves (an Appwrite function's cold start, a CLI command); tests call this for every route.
 */
export function compileRouteValidators(spec: RouteSpec): void {
  compiledQuery(querySchemaOf(spec));
  if (spec.body) validatorFor(spec.body.schema);
}

function queryValidator(spec: RouteSpec) {
  const params = spec.query ?? NO_QUERY;
  const schema = querySchemaOf(spec);
  let validate: ValidateFunction | undefined;
  const anyRequired = params.some((p) => p.required);
  return (c: Context<HubEnv>) => {
    if (spec.openQuery || (!anyRequired && !c.req.url.includes('?'))) return {};
    const raw = c.req.queries();
    const out: Record<string, string | number | boolean> = {};
    for (const [name, values] of Object.entries(raw)) {
      if (values.length > 1) {
        throw new HubError('invalid_query', `Query parameter ${name} is given more than once`, {
          errors: [{ field: `/query/${name}`, code: 'duplicate', message: 'is given more than once' }],
        });
      }
      const p = params.find((x) => x.name === name);
      const v = values[0]!;
      // Query strings are text: convert what the parameter's schema says is a number or boolean, then validate.
      if (p?.schema.type === 'integer' && /^-?\d{1,15}$/.test(v)) out[name] = Number(v);
      else if (p?.schema.type === 'boolean' && (v === 'true' || v === 'false')) out[name] = v === 'true';
      else out[name] = v;
    }
    validate ??= compiledQuery(schema);
    if (!validate(out)) {
      throw new HubError('invalid_query', 'The query parameters are not valid', {
        errors: toFieldErrors(validate.errors, '/query'),
      });
    }
    return out;
  };
}

function isJsonType(contentType: string): boolean {
  const t = contentType.split(';')[0]!.trim().toLowerCase();
  return t === 'application/json' || t.endsWith('+json');
}

async function readBody(c: Context<HubEnv>, spec: NonNullable<RouteSpec['body']>): Promise<unknown> {
  const text = await c.req.text();
  if (text.length === 0) {
    if (spec.required === false) return {};
    throw new HubError('validation_failed', 'The request needs a body', {
      errors: [{ field: '/', code: 'required', message: 'a body is required' }],
    });
  }
  const type = c.req.header('content-type') ?? '';
  if (spec.form && type.split(';')[0]!.trim().toLowerCase() === 'application/x-www-form-urlencoded') {
    const form = new URLSearchParams(text);
    const out: Record<string, string> = {};
    for (const [k, v] of form) {
      if (k in out) throw new HubError('validation_failed', `Form field ${k} is given more than once`);
      out[k] = v;
    }
    return out;
  }
  if (!isJsonType(type)) {
    throw new HubError('unsupported_media_type', `Send the body as application/json${spec.form ? ' or application/x-www-form-urlencoded' : ''}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new HubError('invalid_json', `The body is not valid JSON: ${(err as Error).message}`);
  }
}

export function createRouteTable(app: Hono<HubEnv>): RouteTable {
  const specs: RouteSpec[] = [];
  return {
    specs,
    add<B>(spec: RouteSpec, handler: RouteHandler<B>) {
      specs.push(spec);
      const honoPath = spec.path.replace(/\{(\w+)\}/g, ':$1');
      const chain: MiddlewareHandler<HubEnv>[] = [];
      if (spec.auth) {
        chain.push(guard(spec.auth.resource, spec.auth.action));
        // An upload is not buffered to fingerprint it: the same file sent twice is recognised by its checksum.
        if (spec.method === 'post' && !spec.upload) chain.push(idempotency());
      }
      const parseQuery = queryValidator(spec);
      let bodyValidator: ValidateFunction | undefined; // on the first request (compileRouteValidators)
      const final = async (c: Context<HubEnv>) => {
        const query = parseQuery(c);
        let body: unknown = undefined;
        if (spec.body) {
          bodyValidator ??= validatorFor(spec.body.schema);
          body = assertValid(bodyValidator, await readBody(c, spec.body), 'The body');
        }
        return handler(c, { body: body as B, query });
      };
      app.on([spec.method.toUpperCase()], [honoPath], ...(chain as [MiddlewareHandler<HubEnv>]), final);
    },
  };
}
