// A stand-in for Appwrite's Node runtime server (open-runtimes runtimes/node/versions/latest/src/server.js, read and
// re-described here, not copied): it turns a raw HTTP request into the function context exactly as the runtime does,
// calls the entrypoint, and turns what the entrypoint returns into the response the runtime would write.
import type { AppwriteContext, AppwriteFunction, AppwriteResponseObject, ResponseHeaders } from '../src/appwrite/context.ts';

export interface RawRequest {
  method?: string;
  /** Path and query exactly as on the request line, e.g. "/v1/events?type=connection.%2A". */
  url?: string;
  /** Any case; the runtime lowercases them. An array is a header sent several times (Node keeps only set-cookie so). */
  headers?: Record<string, string | string[]>;
  body?: Buffer | string;
}

export interface RuntimeResult {
  status: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
  text: string;
  /** JSON.parse(text), or undefined when the body is not JSON. */
  json: any;
  logs: string[];
  errors: string[];
  /** What the entrypoint returned, before the runtime post-processed it. */
  output: unknown;
}

// Headers Node's http module keeps only the first of when repeated (IncomingMessage#headers).
const SINGLE = new Set(['age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after', 'server', 'user-agent']);

/** Request headers as Node's http module gives them: lowercased, repeats joined with ", " (cookie "; "), set-cookie an array. */
function nodeHeaders(raw: Record<string, string | string[]>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(raw)) {
    const key = name.toLowerCase();
    const values = Array.isArray(value) ? value : [value];
    if (key === 'set-cookie') out[key] = values;
    else if (SINGLE.has(key)) out[key] = values[0]!;
    else out[key] = values.join(key === 'cookie' ? '; ' : ', ');
  }
  return out;
}

function stringify(messages: unknown[]): string {
  return messages
    .map((m) => (m instanceof Error ? (m.stack ?? String(m)) : typeof m === 'string' ? m : JSON.stringify(m)))
    .join(' ')
    .slice(0, 8000);
}

export function createRuntimeContext(request: RawRequest): { context: AppwriteContext; logs: string[]; errors: string[] } {
  const logs: string[] = [];
  const errors: string[] = [];
  const incoming = nodeHeaders({ host: 'localhost:3000', ...request.headers });
  const bodyBinary = Buffer.isBuffer(request.body) ? request.body : Buffer.from(request.body ?? '', 'utf8');

  // Headers: lowercased, the runtime's own x-open-runtimes-* removed.
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(incoming)) if (!k.startsWith('x-open-runtimes-')) headers[k] = v;

  const hostHeader = String(incoming.host);
  const scheme = typeof incoming['x-forwarded-proto'] === 'string' ? incoming['x-forwarded-proto'] : 'http';
  const defaultPort = scheme === 'https' ? '443' : '80';
  const host = hostHeader.includes(':') ? hostHeader.split(':')[0]! : hostHeader;
  const port = Number(hostHeader.includes(':') ? hostHeader.split(':')[1] : defaultPort);
  const rawUrl = request.url ?? '/';
  // As the runtime does it: split on "?" and keep the first two parts (text after a second "?" is lost).
  const path = rawUrl.includes('?') ? rawUrl.split('?')[0]! : rawUrl;
  const queryString = rawUrl.includes('?') ? rawUrl.split('?')[1]! : '';
  const query: Record<string, string> = {};
  for (const param of queryString.split('&')) {
    const [key, ...rest] = param.split('=');
    if (key) query[key] = rest.join('=');
  }
  const url = `${scheme}://${host}${String(port) === defaultPort ? '' : `:${port}`}${path}${queryString === '' ? '' : `?${queryString}`}`;

  const res = {
    text(body: string, statusCode = 200, hdrs: ResponseHeaders = {}): AppwriteResponseObject {
      return this.binary(Buffer.from(body, 'utf8'), statusCode, hdrs);
    },
    binary(bytes: Buffer | Uint8Array, statusCode = 200, hdrs: ResponseHeaders = {}): AppwriteResponseObject {
      return { body: bytes, statusCode, headers: hdrs };
    },
    json(obj: unknown, statusCode = 200, hdrs: ResponseHeaders = {}): AppwriteResponseObject {
      hdrs['content-type'] = 'application/json';
      return this.text(JSON.stringify(obj), statusCode, hdrs);
    },
    empty(): AppwriteResponseObject {
      return this.text('', 204, {});
    },
    redirect(location: string, statusCode = 301, hdrs: ResponseHeaders = {}): AppwriteResponseObject {
      hdrs.location = location;
      return this.text('', statusCode, hdrs);
    },
  };

  const context: AppwriteContext = {
    req: {
      get bodyBinary() {
        return bodyBinary;
      },
      get bodyText() {
        return bodyBinary.toString();
      },
      get bodyJson() {
        return JSON.parse(bodyBinary.toString()) as unknown; // throws on an empty body, like the runtime
      },
      headers,
      method: request.method ?? 'GET',
      host,
      scheme,
      port,
      path,
      queryString,
      query,
      url,
    },
    res,
    log: (...m: unknown[]) => void logs.push(stringify(m)),
    error: (...m: unknown[]) => void errors.push(stringify(m)),
  };
  return { context, logs, errors };
}

/** Calls the entrypoint like the runtime: a throw or a missing return becomes an empty 500, as on Appwrite. */
export async function invoke(fn: AppwriteFunction, request: RawRequest): Promise<RuntimeResult> {
  const { context, logs, errors } = createRuntimeContext(request);
  let output: unknown;
  let final: { body: unknown; statusCode: number; headers: Record<string, string | string[]> };
  try {
    output = await fn(context);
    if (output === null || output === undefined) {
      errors.push('Return statement missing. return context.res.empty() if no response is expected.');
      final = { body: '', statusCode: 500, headers: {} };
    } else {
      const o = output as Partial<AppwriteResponseObject>;
      final = { body: o.body ?? '', statusCode: o.statusCode ?? 200, headers: (o.headers ?? {}) as Record<string, string | string[]> };
    }
  } catch (err) {
    errors.push(stringify([err]));
    final = { body: '', statusCode: 500, headers: {} };
  }
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(final.headers)) if (!k.toLowerCase().startsWith('x-open-runtimes-')) headers[k.toLowerCase()] = v;
  const contentType = String(headers['content-type'] ?? 'text/plain').toLowerCase();
  headers['content-type'] = !contentType.startsWith('multipart/') && !contentType.includes('charset=') ? `${contentType}; charset=utf-8` : contentType;
  const body = Buffer.isBuffer(final.body)
    ? final.body
    : final.body instanceof Uint8Array
      ? Buffer.from(final.body)
      : Buffer.from(String(final.body), 'utf8');
  const text = body.toString('utf8');
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: final.statusCode, headers, body, text, json, logs, errors, output };
}
