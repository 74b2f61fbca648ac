// Small HTTP helpers shared by the routes: JSON bodies, ETags, pagination envelopes, client addresses.
import type { Context } from 'hono';
import { HubError } from '../errors.ts';
import { redactHeaders } from '../lib/redact.ts';
import { tableSpec } from '../schemas/tables.ts';
import type { TableName } from '../store/types.ts';
import type { HubEnv } from './deps.ts';

const privateFields = new Map<string, string[]>();

/** Tables whose `headers` may hold credentials: an endpoint's to send, an inbound webhook's as it came. */
const HEADER_TABLES = new Set<TableName>(['webhook_endpoints', 'inbox']);

/**
 * The API representation of a row: the stored row without its private fields (hashes, ciphertexts), and with the
 * values of credential-bearing headers redacted (lib/redact.ts).
 */
export function present<T extends Record<string, unknown>>(table: TableName, row: T): Record<string, unknown> {
  let hidden = privateFields.get(table);
  if (!hidden) {
    hidden = tableSpec(table).columns.filter((c) => c.private).map((c) => c.name);
    privateFields.set(table, hidden);
  }
  const headers = HEADER_TABLES.has(table) && row.headers ? redactHeaders(row.headers as Record<string, string>) : undefined;
  if (hidden.length === 0 && !headers) return row;
  const out: Record<string, unknown> = { ...row };
  for (const f of hidden) delete out[f];
  if (headers) out.headers = headers;
  return out;
}

export function etagOf(row: { version: number }): string {
  return `"v${row.version}"`;
}

/**
 * Reads If-Match: undefined when absent, the version it names otherwise. `*` matches any version. A value that is
 * not one of our ETags can never match the stored row, so it fails with version_conflict rather than being ignored.
 */
export function ifMatchVersion(c: Context<HubEnv>): number | undefined | 'any' {
  const raw = c.req.header('if-match');
  if (raw === undefined) return undefined;
  const value = raw.trim();
  if (value === '*') return 'any';
  const m = /^(?:W\/)?"v(\d{1,15})"$/.exec(value);
  if (!m) throw new HubError('version_conflict', 'If-Match does not name a version of this resource');
  return Number(m[1]);
}

/** Checks If-Match against the row; returns the version to update at (optimistic concurrency). */
export function expectVersion(c: Context<HubEnv>, row: { version: number }): number {
  const wanted = ifMatchVersion(c);
  if (wanted === undefined || wanted === 'any') return row.version;
  if (wanted !== row.version) {
    throw new HubError('version_conflict', `The resource is at ${etagOf(row)}, not "v${wanted}"`, {
      extra: { currentEtag: etagOf(row) },
    });
  }
  return wanted;
}

/**
 * A JSON response with the request's collected headers, built as a plain-headers Response (the fast path of
 * @hono/node-server). Prefer it to c.json on routes that matter for throughput.
 */
export function sendJson(c: Context<HubEnv>, status: number, body: unknown, extra?: Record<string, string>): Response {
  c.set('headersSent', true);
  return new Response(status === 304 ? null : JSON.stringify(body), {
    status,
    headers: { ...c.get('resHeaders'), 'content-type': 'application/json', ...extra },
  });
}

export function jsonWithEtag(
  c: Context<HubEnv>,
  body: Record<string, unknown> & { version: number },
  status: 200 | 201 = 200,
  location?: string,
) {
  const extra: Record<string, string> = { etag: etagOf(body) };
  if (location) extra.location = location;
  return sendJson(c, status, body, extra);
}

/** A GET of one resource: 304 when If-None-Match names the current version. */
export function respondResource(c: Context<HubEnv>, body: Record<string, unknown> & { version: number }) {
  const inm = c.req.header('if-none-match');
  const tag = etagOf(body);
  if (inm && inm.split(',').some((t) => t.trim().replace(/^W\//, '') === tag)) return sendJson(c, 304, null, { etag: tag });
  return jsonWithEtag(c, body);
}

export function listResponse(c: Context<HubEnv>, data: unknown[], nextCursor: string | null) {
  if (!nextCursor) return sendJson(c, 200, { data, nextCursor });
  const url = new URL(c.req.url);
  url.searchParams.set('cursor', nextCursor);
  return sendJson(c, 200, { data, nextCursor }, { link: `<${url.pathname}${url.search}>; rel="next"` });
}

export function clientIp(c: Context<HubEnv>): string | null {
  const deps = c.get('deps');
  if (deps.config.trustProxy) {
    const fwd = c.req.header('x-forwarded-for');
    if (fwd) return fwd.split(',')[0]!.trim().slice(0, 64);
  }
  const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming;
  return incoming?.socket?.remoteAddress ?? null;
}
