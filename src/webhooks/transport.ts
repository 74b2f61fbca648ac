// One signed webhook POST over HTTP(S), as the delivery worker needs it: every outcome is a value (never a throw)
// with a stable failure code the retry policy can branch on. It uses undici's Agent (keep-alive pools per origin)
// through its dispatch API rather than fetch or node:http. Not fetch: the SSRF guard has to sit in the connection's
// `lookup`, which fetch does not expose. Not node:http: deliveries run at thousands per second, and its client cost
// twice undici's CPU per request here (76-88 µs against 34-42 µs, 20,000 POSTs to a loopback receiver). undici is
// the 6.x line, which node-appwrite brings already, so a function bundle holds one copy of it. One URL parse per
// distinct endpoint, and one small handler object per send.
import { isIP } from 'node:net';
import { Agent, type Dispatcher } from 'undici';
import { MAX_RETRY_AFTER_MS } from '../lib/backoff.ts';
import { SSRF_BLOCKED, type AddressPolicy } from './ssrf.ts';

export interface WebhookRequest {
  url: string;
  headers: Record<string, string>;
  body: string | Uint8Array;
  /** Covers the whole exchange: connect, response headers and body. */
  timeoutMs: number;
}

export interface WebhookResponse {
  status: number;
  latencyMs: number;
  /** At most maxResponseBytes of the body, decoded as UTF-8 (lossy). */
  body: string;
  /** Milliseconds from a Retry-After header (seconds or HTTP-date), capped at 24 h; undefined when absent/invalid. */
  retryAfterMs?: number;
  /** A redirect's target, reported and never followed: following it would bypass the endpoint's validation. */
  location?: string;
}

export interface WebhookFailure {
  /** 'timeout' | 'connection_refused' | 'connection_reset' | 'dns_failed' | 'ssrf_blocked' | 'tls_failed' | 'invalid_url' | 'request_failed' */
  code: string;
  /** Names the host, never the path, query or headers, which may carry secrets. */
  message: string;
  latencyMs: number;
}

export type WebhookResult = { ok: true; response: WebhookResponse } | { ok: false; error: WebhookFailure };

export interface Transport {
  send(req: WebhookRequest): Promise<WebhookResult>;
  /** Destroys the pooled sockets; later sends fail with request_failed. */
  close(): void;
}

export interface TransportOptions {
  policy: AddressPolicy;
  /** How much of a response body to keep (default 1024 bytes); the rest is read and discarded. */
  maxResponseBytes?: number;
  /** Concurrent sockets per origin (default 64). */
  maxSockets?: number;
  /** The clock latencies are measured with (default performance.now). */
  now?: () => number;
}

const DEFAULT_MAX_RESPONSE_BYTES = 1024;
const DEFAULT_MAX_SOCKETS = 64;
/** A receiver that sends more than this is not answering a webhook: stop reading rather than tie up the socket. */
const MAX_DRAIN_BYTES = 1024 * 1024;
const URL_CACHE_SIZE = 1000;

/** What one URL turns into, computed once per distinct URL. */
interface Target {
  /** scheme://host[:port], what the agent pools connections by. */
  origin: string;
  /** The path and query, as sent. */
  path: string;
  secure: boolean;
  /** host[:port], for messages. */
  host: string;
  /** An IP-literal host the policy refuses: Node skips `lookup` for literals, so the guard must judge them here. */
  blocked: boolean;
}

interface Settings {
  now: () => number;
  maxResponseBytes: number;
}

/** Why the transport itself ended an exchange (its own timeout, an oversized body): the error that follows is ours. */
const ENDED_HERE = new Error('ended by the webhook transport');

/** One send: undici calls it as the request goes out, as its response arrives, and as it ends or fails. */
class Exchange implements Dispatcher.DispatchHandlers {
  abort: ((err?: Error) => void) | undefined;
  timer: NodeJS.Timeout | undefined;
  status = 0;
  retryAfter: string | undefined;
  location: string | undefined;
  readonly chunks: Buffer[] = [];
  kept = 0;
  received = 0;
  done = false;

  constructor(
    readonly target: Target,
    readonly timeoutMs: number,
    readonly start: number,
    readonly settings: Settings,
    readonly resolve: (result: WebhookResult) => void,
  ) {}

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
    // Timed out while it waited for a free connection: it must not go out now.
    if (this.done) abort(ENDED_HERE);
  }

  onHeaders(status: number, rawHeaders: Buffer[]): boolean {
    this.status = status;
    // Only two headers matter; the names are compared only when their length fits.
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!;
      if (name.length === 11 && name.toString('latin1').toLowerCase() === 'retry-after') this.retryAfter ??= rawHeaders[i + 1]!.toString('latin1');
      else if (name.length === 8 && name.toString('latin1').toLowerCase() === 'location') this.location ??= rawHeaders[i + 1]!.toString('utf8');
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.received += chunk.length;
    const room = this.settings.maxResponseBytes - this.kept;
    if (room > 0) {
      const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
      this.chunks.push(part);
      this.kept += part.length;
    }
    if (this.received > MAX_DRAIN_BYTES) {
      // What was kept is the answer; the connection, with the rest of the body on it, is dropped.
      succeed(this);
      this.abort?.(ENDED_HERE);
      return false;
    }
    return true;
  }

  onComplete(): void {
    succeed(this);
  }

  onError(err: Error): void {
    fail(this, err);
  }
}

export function createTransport(options: TransportOptions): Transport {
  const { policy } = options;
  const settings: Settings = {
    now: options.now ?? (() => performance.now()),
    maxResponseBytes: options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
  };
  const agent = new Agent({
    connections: options.maxSockets ?? DEFAULT_MAX_SOCKETS,
    pipelining: 1,
    // The send's own timer covers the whole exchange; undici's would end it earlier with codes of their own.
    headersTimeout: 0,
    bodyTimeout: 0,
    connect: { lookup: policy.lookup, timeout: 0 },
  });
  const targets = new Map<string, Target | null>();
  let closed = false;

  const parseTarget = (url: string): Target | null => {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return null;
    }
    const secure = parsed.protocol === 'https:';
    if (!secure && parsed.protocol !== 'http:') return null;
    // URL keeps the brackets of an IPv6 host; the policy wants the bare address.
    const hostname = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname;
    return {
      origin: parsed.origin,
      path: parsed.pathname + parsed.search,
      secure,
      host: parsed.host,
      blocked: isIP(hostname) !== 0 && !policy.allows(hostname),
    };
  };

  const targetFor = (url: string): Target | null => {
    let target = targets.get(url);
    if (target === undefined) {
      target = parseTarget(url);
      // Endpoints are few; the bound only stops a stream of unique URLs from growing the map for ever.
      if (targets.size >= URL_CACHE_SIZE) targets.delete(targets.keys().next().value!);
      targets.set(url, target);
    }
    return target;
  };

  const send = (req: WebhookRequest): Promise<WebhookResult> => {
    const start = settings.now();
    if (closed) return Promise.resolve(failure('request_failed', 'The webhook transport is closed.', start, settings));
    const target = targetFor(req.url);
    if (!target) return Promise.resolve(failure('invalid_url', 'The URL is not a valid http:// or https:// URL.', start, settings));
    if (target.blocked) {
      return Promise.resolve(failure(SSRF_BLOCKED, `Refusing to connect to ${target.host}: it is not a public address.`, start, settings));
    }
    return new Promise((resolve) => {
      const ex = new Exchange(target, req.timeoutMs, start, settings, resolve);
      ex.timer = setTimeout(onTimeout, req.timeoutMs, ex);
      try {
        agent.dispatch({ origin: target.origin, path: target.path, method: 'POST', headers: req.headers, body: req.body }, ex);
      } catch (err) {
        fail(ex, err);
      }
    });
  };

  const close = (): void => {
    closed = true;
    void agent.destroy().catch(() => {});
    targets.clear();
  };

  return { send, close };
}

function onTimeout(ex: Exchange): void {
  settle(ex, failure('timeout', `${ex.target.host} did not answer within ${ex.timeoutMs} ms.`, ex.start, ex.settings));
  // Not yet started (waiting for a connection): onConnect aborts it when its turn comes.
  ex.abort?.(ENDED_HERE);
}

function succeed(ex: Exchange): void {
  if (ex.done) return;
  const body = ex.chunks.length === 1 ? ex.chunks[0]! : Buffer.concat(ex.chunks, ex.kept);
  const result: WebhookResponse = { status: ex.status, latencyMs: ex.settings.now() - ex.start, body: body.toString('utf8') };
  const retryAfterMs = parseRetryAfter(ex.retryAfter);
  if (retryAfterMs !== undefined) result.retryAfterMs = retryAfterMs;
  if (ex.location !== undefined) result.location = ex.location;
  settle(ex, { ok: true, response: result });
}

function fail(ex: Exchange, err: unknown): void {
  if (ex.done) return; // the errors that follow our own abort after a timeout or an oversized body
  const code = failureCode(err, ex.target.secure);
  settle(ex, failure(code, failureMessage(code, err, ex.target), ex.start, ex.settings));
}

function settle(ex: Exchange, result: WebhookResult): void {
  if (ex.done) return;
  ex.done = true;
  clearTimeout(ex.timer);
  ex.resolve(result);
}

function failure(code: string, message: string, start: number, settings: Settings): WebhookResult {
  return { ok: false, error: { code, message, latencyMs: settings.now() - start } };
}

const CODES: Readonly<Record<string, string>> = {
  [SSRF_BLOCKED]: 'ssrf_blocked',
  ECONNREFUSED: 'connection_refused',
  ECONNRESET: 'connection_reset', // includes "socket hang up"
  EPIPE: 'connection_reset',
  ENOTFOUND: 'dns_failed',
  EAI_AGAIN: 'dns_failed',
  EAI_FAIL: 'dns_failed',
  EAI_NODATA: 'dns_failed',
  ETIMEDOUT: 'timeout',
  ERR_INVALID_URL: 'invalid_url',
  // undici's own: the other side closed the socket (before or during the response); its timeouts, if set.
  UND_ERR_SOCKET: 'connection_reset',
  UND_ERR_CONNECT_TIMEOUT: 'timeout',
  UND_ERR_HEADERS_TIMEOUT: 'timeout',
  UND_ERR_BODY_TIMEOUT: 'timeout',
};

/** Certificate failures (CERT_*, UNABLE_TO_*, self-signed) and handshake failures from Node's TLS or OpenSSL. */
const TLS_CODE = /^(?:ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT$|SELF_SIGNED_CERT_IN_CHAIN$|HOSTNAME_MISMATCH$)/;

/** The stable failure code for an error from the socket, DNS, TLS or the SSRF guard. */
export function failureCode(err: unknown, secure: boolean): string {
  const code = errorCode(err);
  if (code === undefined) return 'request_failed';
  // OpenSSL reports a failed handshake (a plain-HTTP port, an unknown protocol version) as the bare errno EPROTO.
  if (code === 'EPROTO' && secure) return 'tls_failed';
  return CODES[code] ?? (TLS_CODE.test(code) ? 'tls_failed' : 'request_failed');
}

function failureMessage(code: string, err: unknown, target: Target): string {
  switch (code) {
    case 'ssrf_blocked':
      return (err as Error).message; // written by the guard: host and address only
    case 'connection_refused':
      return `${target.host} refused the connection.`;
    case 'connection_reset':
      return `${target.host} closed the connection before the response was complete.`;
    case 'dns_failed':
      return `The host name of ${target.host} could not be resolved.`;
    case 'tls_failed':
      return `The TLS connection to ${target.host} failed (${errorCode(err)}).`;
    case 'timeout':
      return `The connection to ${target.host} timed out.`;
    default:
      // Not err.message: some quote header names or values, and headers carry the signature.
      return `The request to ${target.host} failed (${errorCode(err) ?? 'unknown error'}).`;
  }
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Retry-After as milliseconds: delta-seconds or an HTTP-date (all three RFC 9110 date forms start with a day name,
 * which also keeps Date.parse from reading stray numbers as dates). Capped so a bad header cannot park a delivery
 * for months.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Math.min(Number(text) * 1000, MAX_RETRY_AFTER_MS);
  if (!/^[A-Za-z]{3}/.test(text)) return undefined;
  // asctime dates carry no zone, and Date.parse would read them as local time; HTTP dates are always GMT.
  const at = Date.parse(/GMT$/i.test(text) ? text : `${text} GMT`);
  return Number.isNaN(at) ? undefined : Math.min(Math.max(0, at - nowMs), MAX_RETRY_AFTER_MS);
}
