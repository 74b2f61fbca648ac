// The Appwrite function context to a Fetch Request and a Fetch Response back to a context response: the whole
// adapter between the Appwrite Node runtime and the Hono app, like hono's own src/adapter/* files.
import { STATUS_CODES } from 'node:http';
import { ERROR_CODES, HubError, toProblem, type ErrorCode } from '../errors.ts';
import { APPWRITE_HEADERS, type AppwriteRequest, type AppwriteResponse, type AppwriteResponseObject } from './context.ts';

const NO_BODY_METHODS = new Set(['GET', 'HEAD']);
// Framing headers describe the connection the runtime already consumed (the body arrives whole), not the request.
const DROPPED_REQUEST_HEADERS = new Set(['transfer-encoding', 'connection', 'keep-alive', APPWRITE_HEADERS.key]);
// The runtime's server writes the body with its own length; a stale one from the app would corrupt the response.
const DROPPED_RESPONSE_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive']);

/** The request URL: the path and the RAW query string as the client sent them (never rebuilt from the decoded req.query). */
export function requestUrl(req: AppwriteRequest): string {
  const scheme = req.scheme === 'https' ? 'https' : 'http';
  const defaultPort = scheme === 'https' ? 443 : 80;
  const port = Number(req.port);
  const host = req.host || 'localhost';
  const authority = Number.isInteger(port) && port > 0 && port !== defaultPort ? `${host}:${port}` : host;
  const path = req.path ? (req.path.startsWith('/') ? req.path : `/${req.path}`) : '/';
  const query = req.queryString ? `?${req.queryString}` : '';
  try {
    // new URL() keeps percent-escapes as they are (%2A stays %2A): Hono decodes, once, where it should.
    return new URL(`${scheme}://${authority}${path}${query}`).href;
  } catch {
    // a Host header that is not a host name must not turn a request into a crash
    return new URL(`${path}${query}`, 'http://localhost').href;
  }
}

/**
 * A Fetch Request for the Hono app. The body is req.bodyBinary itself: the bytes a webhook signature was computed
 * over reach the app untouched (bodyText would re-encode invalid UTF-8, bodyJson would re-serialise).
 */
export function toFetchRequest(req: AppwriteRequest): Request {
  const method = (req.method || 'GET').toUpperCase();
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || DROPPED_REQUEST_HEADERS.has(name.toLowerCase())) continue;
    for (const v of Array.isArray(value) ? value : [value]) {
      try {
        headers.append(name, v);
      } catch {
        // a header value Fetch refuses (a raw control character) is left out rather than failing the request
      }
    }
  }
  const bytes = req.bodyBinary;
  const hasBody = !NO_BODY_METHODS.has(method) && bytes !== undefined && bytes.length > 0;
  return new Request(requestUrl(req), {
    method,
    headers,
    // a view on the same memory, so no copy and no re-encoding
    body: hasBody ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length) : null,
  });
}

function codeForStatus(status: number): ErrorCode | undefined {
  return (Object.keys(ERROR_CODES) as ErrorCode[]).find((code) => ERROR_CODES[code].status === status);
}

/**
 * An RFC 9457 body for a status that came without one. Appwrite shows its own HTML error page in place of an empty
 * body of 400 or more, which an API client cannot read; this keeps every error machine-readable.
 */
export function emptyErrorProblem(status: number, requestId?: string | null): Record<string, unknown> {
  const code = codeForStatus(status);
  const detail = `The hub answered ${status} without details`;
  if (code) return toProblem(new HubError(code, detail), requestId ?? undefined);
  const doc: Record<string, unknown> = { type: 'about:blank', title: STATUS_CODES[status] ?? 'Error', status, detail };
  if (requestId) doc.instance = requestId;
  return doc;
}

/** Response headers for res.binary: lower-case names, set-cookie kept one value per cookie. */
export function responseHeaders(response: Response): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of response.headers) {
    if (DROPPED_RESPONSE_HEADERS.has(name) || name === 'set-cookie') continue;
    out[name] = value;
  }
  const cookies = response.headers.getSetCookie();
  if (cookies.length === 1) out['set-cookie'] = cookies[0]!;
  else if (cookies.length > 1) out['set-cookie'] = cookies;
  return out;
}

/**
 * Status, headers and body bytes of a Fetch Response as the context response object the function must return.
 * Every status of 400 or more carries a body: an empty one is replaced by a problem+json document.
 */
export async function sendFetchResponse(res: AppwriteResponse, response: Response): Promise<AppwriteResponseObject> {
  const status = response.status;
  const headers = responseHeaders(response);
  const body = Buffer.from(await response.arrayBuffer());
  if (status >= 400 && body.length === 0) {
    const requestId = response.headers.get('x-request-id');
    headers['content-type'] = 'application/problem+json';
    return res.binary(Buffer.from(JSON.stringify(emptyErrorProblem(status, requestId))), status, headers);
  }
  return res.binary(body, status, headers);
}

/** A problem+json answer built without the hub (bad trigger, configuration errors, crashes). */
export function problemResponse(
  res: AppwriteResponse,
  code: ErrorCode,
  detail: string,
  extra: Record<string, unknown> = {},
): AppwriteResponseObject {
  const err = new HubError(code, detail, { extra });
  return res.binary(Buffer.from(JSON.stringify(toProblem(err))), err.status, { 'content-type': 'application/problem+json' });
}
