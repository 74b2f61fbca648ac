// The generic connector's HTTP client: safe URL joining, auth, a timeout per attempt, retries with backoff, and
// upstream failures mapped onto the hub's error codes, without a credential ever reaching a message or a log.
import { setTimeout as wait } from 'node:timers/promises';
import type { ConnectorContext } from '../../src/connectors/define.ts';
import { HubError, type FieldError } from '../../src/errors.ts';
import { backoffDelay as sharedBackoff } from '../../src/lib/backoff.ts';
import configSchema from './config.schema.json' with { type: 'json' };

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';

export type HttpAuthConfig =
  | { type: 'none' }
  | { type: 'api_key'; headerName?: string; in?: 'header' | 'query'; queryParam?: string }
  | { type: 'bearer' }
  | { type: 'basic' };

/** The connection's configuration as stored: every field but baseUrl may be left to its schema default. */
export type HttpConnectorConfig = {
  baseUrl: string;
  auth?: HttpAuthConfig;
  testPath?: string;
  testMethod?: 'GET' | 'HEAD';
  timeoutMs?: number;
  maxRetries?: number;
  headers?: Record<string, string>;
};

export type ResolvedHttpConfig = Required<Omit<HttpConnectorConfig, 'auth'>> & {
  auth: Exclude<HttpAuthConfig, { type: 'api_key' }> | { type: 'api_key'; headerName: string; in: 'header' | 'query'; queryParam?: string };
};

export type HttpCredentials = { apiKey?: string; token?: string; username?: string; password?: string };

export type QueryValue = string | number | boolean | null | undefined;

export interface HttpRequest {
  method: HttpMethod;
  /** Relative to the base URL, starting with `/`; may carry a query string. */
  path: string;
  query?: Record<string, QueryValue | readonly QueryValue[]>;
  /** A string or bytes are sent as they are; anything else as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  /** Parsed JSON when the server says JSON, else text; null when the body is empty. */
  body: unknown;
  /** Of the attempt that answered. */
  latencyMs: number;
  attempts: number;
}

export interface HttpClient {
  readonly config: ResolvedHttpConfig;
  request(req: HttpRequest): Promise<HttpResponse>;
}

const METHODS = new Set<string>(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const IDEMPOTENT = new Set<string>(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);
const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);
/** The longest Retry-After the hub sits out inside one request; a longer one is handed to the caller (a job reschedules). */
export const MAX_RETRY_AFTER_MS = 60_000;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;
/** A generic client cannot know what is big; this keeps one odd endpoint from exhausting memory. */
export const MAX_BODY_BYTES = 10 * 1024 * 1024;
const UNREACHABLE = new Set(['EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'UND_ERR_CONNECT_TIMEOUT']);
const TLS_FAILURE = /CERT|SSL|TLS|SELF_SIGNED/;

const defaults = configSchema.properties;

/** Fills in the schema's defaults: a stored config may predate a field or simply leave it out. */
export function resolveHttpConfig(config: HttpConnectorConfig): ResolvedHttpConfig {
  const auth = config.auth ?? { type: 'none' };
  return {
    baseUrl: config.baseUrl,
    auth:
      auth.type === 'api_key'
        ? {
            type: 'api_key',
            headerName: auth.headerName ?? defaults.auth.properties.headerName.default,
            in: auth.in ?? (defaults.auth.properties.in.default as 'header' | 'query'),
            ...(auth.queryParam === undefined ? {} : { queryParam: auth.queryParam }),
          }
        : auth,
    testPath: config.testPath ?? defaults.testPath.default,
    testMethod: config.testMethod ?? (defaults.testMethod.default as 'GET' | 'HEAD'),
    timeoutMs: config.timeoutMs ?? defaults.timeoutMs.default,
    maxRetries: config.maxRetries ?? defaults.maxRetries.default,
    headers: config.headers ?? {},
  };
}

/** Exponential backoff with "equal jitter": between half and all of base·2^attempt (attempt 0 is the first retry). */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  return sharedBackoff(attempt + 1, { baseMs: BACKOFF_BASE_MS, maxMs: BACKOFF_MAX_MS, jitter: 'equal' }, random);
}

/**
 * Retry-After is either delay-seconds or an HTTP-date (RFC 9110 §10.2.3,
 * https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3); returns milliseconds, or undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function invalid(errors: FieldError[], message: string): HubError {
  return new HubError('validation_failed', message, { errors });
}

/** Mirrors the credentials schema, because a value that breaks a header makes fetch throw an error that quotes it. */
function checkCredentials(auth: ResolvedHttpConfig['auth'], creds: HttpCredentials): FieldError[] {
  const errors: FieldError[] = [];
  const need = (field: keyof HttpCredentials, allowEmpty = false) => {
    const value = creds[field];
    if (typeof value !== 'string' || (!allowEmpty && value === '')) {
      errors.push({ field: `/${field}`, code: 'required', message: `is required when auth.type is ${auth.type}` });
    } else if (/[\u0000-\u001f\u007f]/.test(value)) {
      errors.push({ field: `/${field}`, code: 'pattern', message: 'must not contain control characters or line breaks' });
    } else if ((field === 'apiKey' || field === 'token') && !/^[!-~]+$/.test(value)) {
      errors.push({ field: `/${field}`, code: 'pattern', message: 'must be printable ASCII without spaces' });
    } else if (field === 'username' && value.includes(':')) {
      errors.push({ field: '/username', code: 'pattern', message: 'must not contain a colon (RFC 7617)' });
    }
  };
  if (auth.type === 'api_key') need('apiKey');
  if (auth.type === 'bearer') need('token');
  if (auth.type === 'basic') {
    need('username');
    need('password', true);
  }
  return errors;
}

function parseBaseUrl(baseUrl: string): URL {
  const refuse = (message: string) => invalid([{ field: '/baseUrl', code: 'format', message }], 'The base URL is not valid');
  const base = URL.canParse(baseUrl) ? new URL(baseUrl) : undefined;
  if (!base || (base.protocol !== 'http:' && base.protocol !== 'https:')) throw refuse('must be an absolute http or https URL');
  if (base.username || base.password || base.search || base.hash) throw refuse('must not carry user:password, a query or a fragment');
  return base;
}

/** Joins base and path so that the result can only ever be at or below the base path on the same origin. */
function joinUrl(base: URL, path: unknown): URL {
  const refuse = (message: string) => invalid([{ field: '/path', code: 'format', message }], `The request path ${message}`);
  if (typeof path !== 'string' || !path.startsWith('/') || path.startsWith('//')) {
    throw refuse('must start with a single "/" and be relative to the base URL');
  }
  if (/[\\#\u0000-\u001f\u007f]/.test(path)) throw refuse('must not contain backslashes, fragments or control characters');
  const pathname = path.split('?')[0] ?? '';
  // The URL parser resolves dot segments, %2e-encoded ones included, so refuse them rather than reason about where they land.
  if (pathname.split('/').some((segment) => /^(\.|%2e){1,2}$/i.test(segment))) throw refuse('must not contain "." or ".." segments');
  const basePath = base.pathname.replace(/\/+$/, '');
  const url = new URL(basePath + path, base.origin);
  if (url.origin !== base.origin || !(url.pathname === basePath || url.pathname.startsWith(`${basePath}/`))) {
    throw refuse('must stay below the base URL');
  }
  return url;
}

function appendQuery(url: URL, query: HttpRequest['query']): void {
  for (const [name, raw] of Object.entries(query ?? {})) {
    for (const value of Array.isArray(raw) ? raw : [raw]) {
      if (value !== null && value !== undefined) url.searchParams.append(name, String(value));
    }
  }
}

function encodeBody(body: unknown, headers: Headers): string | Uint8Array | undefined {
  if (body === undefined) return undefined;
  const [type, encoded] =
    typeof body === 'string' ? ['text/plain; charset=utf-8', body]
    : body instanceof Uint8Array ? ['application/octet-stream', body]
    : ['application/json', JSON.stringify(body)];
  if (!headers.has('content-type')) headers.set('content-type', type);
  return encoded;
}

async function readBody(res: Response): Promise<Uint8Array> {
  const tooLarge = () =>
    new HubError('upstream_error', `The answer is larger than ${MAX_BODY_BYTES} bytes`, {
      extra: { status: res.status },
      retryable: false,
    });
  if (Number(res.headers.get('content-length')) > MAX_BODY_BYTES) {
    await res.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  if (!res.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res.body) {
    total += chunk.byteLength;
    if (total > MAX_BODY_BYTES) throw tooLarge(); // leaving the loop cancels the stream
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

const JSON_TYPE = /^\s*application\/(?:[\w.+-]*\+)?json\s*(?:;|$)/i;

export function createHttpClient(config: HttpConnectorConfig, given: HttpCredentials, ctx: ConnectorContext): HttpClient {
  const cfg = resolveHttpConfig(config);
  const credentials: HttpCredentials = given ?? {};
  const base = parseBaseUrl(cfg.baseUrl);
  if (cfg.auth.type === 'api_key' && cfg.auth.in === 'query' && !cfg.auth.queryParam) {
    const error = { field: '/auth/queryParam', code: 'required', message: 'is required when auth.in is query' };
    throw invalid([error], 'The auth configuration is not valid');
  }
  const missing = checkCredentials(cfg.auth, credentials);
  if (missing.length) throw invalid(missing, `The credentials do not fit auth.type ${cfg.auth.type}`);
  const sleep = ctx.sleep ?? ((ms: number) => wait(ms));
  const { auth } = cfg;
  const basic =
    auth.type === 'basic' ? Buffer.from(`${credentials.username}:${credentials.password ?? ''}`, 'utf8').toString('base64') : '';

  // Every secret in its raw and URL-encoded form, so that a server echoing one back (in a body or a Location) is redacted.
  // A user name is redacted only when long enough to be a key (some systems take the API key as the user name);
  // a short one would blank out ordinary words.
  const username = (credentials.username ?? '').length >= 8 ? credentials.username : undefined;
  const secrets = [credentials.apiKey, credentials.token, credentials.password, username, basic]
    .filter((s): s is string => typeof s === 'string' && s !== '')
    .flatMap((s) => [s, encodeURIComponent(s)])
    .sort((a, b) => b.length - a.length);
  const redact = (text: string): string => secrets.reduce((out, s) => out.split(s).join('[redacted]'), text);

  function buildHeaders(req: HttpRequest): Headers {
    const headers = new Headers({
      accept: 'application/json, text/plain;q=0.9, */*;q=0.8',
      'user-agent': 'integration-hub (generic http)',
    });
    const set = (source: string, entries: Record<string, string> | undefined) => {
      for (const [name, value] of Object.entries(entries ?? {})) {
        try {
          headers.set(name, value);
        } catch {
          const error = { field: `/${source}/${name}`, code: 'format', message: 'is not a valid HTTP header' };
          throw invalid([error], `The header ${name} is not valid`);
        }
      }
    };
    set('headers', cfg.headers);
    set('headers', req.headers);
    // Auth goes last so that neither the static nor the per-request headers can replace it.
    if (auth.type === 'api_key' && auth.in === 'header') headers.set(auth.headerName, credentials.apiKey ?? '');
    if (auth.type === 'bearer') headers.set('authorization', `Bearer ${credentials.token ?? ''}`);
    if (auth.type === 'basic') headers.set('authorization', `Basic ${basic}`);
    return headers;
  }

  type Where = { method: string; path: string };
  type Answer = { attempts: number; text: string; location?: string | null; retryAfterMs?: number | undefined };

  function statusError(status: number, where: Where, info: Answer): HubError {
    const target = `${where.method} ${where.path}`;
    const extra: Record<string, unknown> = { status, method: where.method, path: where.path, attempts: info.attempts };
    if (info.text) extra.upstreamBody = redact(info.text.slice(0, 1000));
    if (info.retryAfterMs !== undefined) extra.retryAfterMs = info.retryAfterMs;
    const headers = info.retryAfterMs === undefined ? {} : { headers: { 'retry-after': String(Math.ceil(info.retryAfterMs / 1000)) } };
    if (status >= 300 && status < 400) {
      if (info.location) extra.location = redactLocation(info.location, base);
      const message = `The server answered ${target} with a redirect (HTTP ${status}); redirects are not followed.`;
      return new HubError('upstream_rejected', message, { extra });
    }
    if (status === 401 || status === 403) {
      return new HubError('upstream_auth_failed', `The server refused the credentials for ${target} (HTTP ${status}).`, { extra });
    }
    if (status === 429) {
      return new HubError('upstream_rate_limited', `The server is rate limiting ${target} (HTTP 429).`, { extra, ...headers });
    }
    if (status >= 400 && status < 500) {
      return new HubError('upstream_rejected', `The server rejected ${target} (HTTP ${status}).`, { extra });
    }
    const tries = info.attempts === 1 ? '1 attempt' : `${info.attempts} attempts`;
    return new HubError('upstream_error', `The server failed on ${target} (HTTP ${status}) after ${tries}.`, { extra, ...headers });
  }

  function redactLocation(location: string, requestBase: URL): string {
    try {
      const url = new URL(location, requestBase);
      url.username = '';
      url.password = '';
      if (auth.type === 'api_key' && auth.queryParam && url.searchParams.has(auth.queryParam)) {
        url.searchParams.set(auth.queryParam, 'redacted');
      }
      return redact(url.href);
    } catch {
      return redact(location.slice(0, 500));
    }
  }

  function networkError(err: unknown, where: Where, attempts: number): HubError {
    if (err instanceof HubError) return err;
    const target = `${where.method} ${where.path}`;
    const extra: Record<string, unknown> = { method: where.method, path: where.path, attempts };
    const name = err instanceof Error ? err.name : '';
    // Only our own AbortSignal.timeout aborts, and body reads report it as AbortError in some undici versions.
    if (name === 'TimeoutError' || name === 'AbortError') {
      return new HubError('upstream_timeout', `${base.host} did not answer ${target} within ${cfg.timeoutMs} ms.`, { extra });
    }
    const cause = (err as { cause?: { code?: unknown; errors?: { code?: unknown }[] } } | undefined)?.cause;
    const code = String(cause?.code ?? cause?.errors?.[0]?.code ?? 'unknown');
    extra.networkCode = code;
    const unreachable = (message: string, retryable?: boolean) =>
      new HubError('upstream_unreachable', message, { extra, cause: err, ...(retryable === undefined ? {} : { retryable }) });
    if (code === 'ENOTFOUND') return unreachable(`The host name ${base.hostname} could not be resolved.`);
    if (code === 'ECONNREFUSED') return unreachable(`${base.host} refused the connection.`);
    // A certificate problem does not heal in a second; retrying only delays the admin's fix.
    if (TLS_FAILURE.test(code)) return unreachable(`The TLS certificate of ${base.host} is not trusted (${code}).`, false);
    if (UNREACHABLE.has(code)) return unreachable(`Could not reach ${base.host} (${code}).`);
    return new HubError('upstream_error', `The connection to ${base.host} failed during ${target} (${code}).`, { extra, cause: err });
  }

  async function request(req: HttpRequest): Promise<HttpResponse> {
    const method = String(req.method ?? '').toUpperCase();
    if (!METHODS.has(method)) {
      const error = { field: '/method', code: 'enum', message: `must be one of: ${[...METHODS].join(', ')}` };
      throw invalid([error], 'The method is not valid');
    }
    const url = joinUrl(base, req.path);
    appendQuery(url, req.query);
    if (auth.type === 'api_key' && auth.in === 'query') url.searchParams.set(auth.queryParam ?? '', credentials.apiKey ?? '');
    const headers = buildHeaders(req);
    if (req.body !== undefined && (method === 'GET' || method === 'HEAD')) {
      const error = { field: '/body', code: 'not', message: `is not allowed with ${method}` };
      throw invalid([error], `A ${method} request cannot have a body`);
    }
    const body = encodeBody(req.body, headers);
    // Messages and logs name the path without its query: the caller's query may carry anything.
    const where = { method, path: req.path.split('?')[0] ?? req.path };
    const idempotent = IDEMPOTENT.has(method);

    for (let attempt = 0; ; attempt++) {
      const attempts = attempt + 1;
      const canRetry = attempt < cfg.maxRetries;
      const retryIn = async (delayMs: number, reason: Record<string, unknown>) => {
        ctx.log.warn('http request will be retried', { ...where, ...reason, attempt: attempts, delayMs });
        await sleep(delayMs);
      };
      const started = ctx.clock.now();
      let res: Response;
      let bytes: Uint8Array;
      try {
        // redirect 'manual': following would resend credentials to wherever the Location points.
        const signal = AbortSignal.timeout(cfg.timeoutMs);
        res = await ctx.fetch(url, { method, headers, body, redirect: 'manual', signal });
        bytes = await readBody(res);
      } catch (err) {
        const failure = networkError(err, where, attempts);
        // A POST or PATCH that timed out or lost its connection may already have been carried out: sending it again
        // could create a second order or payment. Only a caller holding an idempotency key can decide that.
        if (failure.retryable && idempotent && canRetry) {
          await retryIn(backoffDelay(attempt), { code: failure.code });
          continue;
        }
        throw failure;
      }
      const latencyMs = ctx.clock.now() - started;
      const status = res.status;
      const text = new TextDecoder().decode(bytes);
      const isJson = JSON_TYPE.test(res.headers.get('content-type') ?? '');

      if (status >= 200 && status < 300) {
        let parsed: unknown = text === '' ? null : text;
        if (isJson && text !== '') {
          try {
            parsed = JSON.parse(text);
          } catch {
            const message = `The server declared JSON for ${where.method} ${where.path} but sent something else.`;
            throw new HubError('upstream_error', message, { extra: { status, ...where }, retryable: false });
          }
        }
        ctx.log.debug('http request', { ...where, status, latencyMs, attempts });
        return { status, headers: Object.fromEntries(res.headers), body: parsed, latencyMs, attempts };
      }

      if (RETRY_STATUSES.has(status)) {
        const retryAfterMs =
          status === 429 || status === 503 ? parseRetryAfter(res.headers.get('retry-after'), ctx.clock.now()) : undefined;
        if (retryAfterMs !== undefined && retryAfterMs > MAX_RETRY_AFTER_MS) {
          // Waiting minutes inside one request would hold a worker hostage; hand the wait to the caller instead.
          // 503 stays upstream_error: the server is down for a while, not throttling the hub.
          const seconds = Math.ceil(retryAfterMs / 1000);
          const extra = { status, ...where, attempts, retryAfterMs };
          const message = `The server asked the hub to wait ${seconds} s before repeating ${where.method} ${where.path} (HTTP ${status}).`;
          const code = status === 429 ? 'upstream_rate_limited' : 'upstream_error';
          throw new HubError(code, message, { extra, headers: { 'retry-after': String(seconds) } });
        }
        // A 429 (https://www.rfc-editor.org/rfc/rfc6585#section-4) comes from a rate limiter that turned the request
        // away before any handler ran, so even a POST or PATCH can be sent again. A 5xx makes no such promise: the
        // handler may have written before it failed, so only idempotent methods (RFC 9110 §9.2.2) are repeated.
        if (canRetry && (status === 429 || idempotent)) {
          await retryIn(retryAfterMs ?? backoffDelay(attempt), { status });
          continue;
        }
        throw statusError(status, where, { attempts, text, retryAfterMs });
      }
      throw statusError(status, where, { attempts, text, location: res.headers.get('location') });
    }
  }

  return { config: cfg, request };
}
