// A local Appwrite TablesDB (1.8.x) for tests, with Storage buckets and files: the real node-appwrite client talks to
// it over HTTP, every request is checked against Appwrite's published server OpenAPI document (multipart uploads
// included), and faults can be injected for retry tests.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { checkId, createState, type Handler, type ServerState } from './context.ts';
import { APPWRITE_VERSION, AppwriteError, ERRORS, errorResponse, toErrorResponse, type ErrorBody } from './errors.ts';
import { queryFormatProblem } from './queries.ts';
import { ROW_HANDLERS } from './routes-rows.ts';
import { SCHEMA_HANDLERS } from './routes-schema.ts';
import { STORAGE_HANDLERS, StorageError } from './routes-storage.ts';
import { DEFAULT_SPEC_PATH, loadSpec, type RouteMatch, type Spec } from './spec.ts';

export interface TablesDbServer {
  /** Endpoint for node-appwrite: `http://127.0.0.1:<port>/v1`. */
  url: string;
  /** The accepted X-Appwrite-Project. */
  projectId: string;
  /** The accepted X-Appwrite-Key. */
  apiKey: string;
  /** Every request the published spec (or node-appwrite's Query format) does not allow, as a sentence. */
  violations: string[];
  /** Every request: method, path with the `/v1` prefix and without the query string, status (0 while held by a 'timeout' fault). */
  requests: { method: string; path: string; status: number }[];
  /**
   * Make the next `count` requests matching `match` (default any) fail: status 500/503/429 with Appwrite's error body
   * (and Retry-After for 429); 'timeout' (never answer; hold the socket until close); 'reset' (close the connection
   * before doing anything, as a proxy dropping an idle keep-alive connection does); 'lost' (do the work, then close
   * the connection instead of answering).
   */
  injectFaults(fault: { status: 429 | 500 | 503 | 'timeout' | 'reset' | 'lost'; count: number; match?: (method: string, path: string) => boolean }): void;
  /**
   * Make the next `count` (default 1) file downloads send their headers and `afterBytes` bytes, then either wait
   * for `release()` ('hold': shows whether a client reads before the end) or drop the connection ('drop').
   */
  interruptDownloads(options: { afterBytes: number; mode: 'hold' | 'drop'; count?: number }): { release(): void };
  /** Drop all databases, buckets and data, violations, requests, faults and pending download interruptions (held ones are released). */
  reset(): void;
  /** Ages every open transaction past its TTL, as a stalled client's would be: their next operation meets transaction_expired. */
  expireTransactions(): void;
  close(): Promise<void>;
}

type Fault = Parameters<TablesDbServer['injectFaults']>[0];

const HANDLERS: Record<string, Handler> = { ...SCHEMA_HANDLERS, ...ROW_HANDLERS, ...STORAGE_HANDLERS };

/** Path parameters and the validators Appwrite declares for them (UID for ids, Key for column and index keys). */
const PATH_IDS = ['databaseId', 'tableId', 'rowId', 'transactionId', 'bucketId', 'fileId'];
const KEY = /^[A-Za-z0-9][A-Za-z0-9._-]{0,35}$/;

/** The scopes Appwrite names when a request lacks a valid key (app/controllers/shared/api.php, step 9). */
function scopesOf(method: string, template: string): string[] {
  const read = method === 'GET';
  if (template.startsWith('/storage/buckets/{bucketId}/files')) return read ? ['files.read'] : ['files.write'];
  if (template.startsWith('/storage')) return read ? ['buckets.read'] : ['buckets.write'];
  if (template.startsWith('/tablesdb/transactions') || template.includes('/rows')) return read ? ['rows.read', 'documents.read'] : ['rows.write', 'documents.write'];
  if (template.includes('/columns') || template.includes('/indexes') || template.includes('/tables')) return read ? ['tables.read', 'collections.read'] : ['tables.write', 'collections.write'];
  return read ? ['databases.read'] : ['databases.write'];
}

/** JSON with bigints written as plain integers (Appwrite's 64-bit column bounds; node-appwrite reads them as BigInt). */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? `\u0000bigint:${v}` : v)).replace(/"\\u0000bigint:(-?\d+)"/g, '$1');
}

/** Bytes, not text: multipart uploads carry binary file parts. */
function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export async function startTablesDbServer(options: { projectId?: string; apiKey?: string; specPath?: string } = {}): Promise<TablesDbServer> {
  const spec: Spec = loadSpec(options.specPath ?? DEFAULT_SPEC_PATH);
  const projectId = options.projectId ?? 'test-project';
  const apiKey = options.apiKey ?? 'standard_test_key';
  let state: ServerState = createState();
  let faults: Fault[] = [];
  const sockets = new Set<Socket>();
  const violations: string[] = [];
  const requests: TablesDbServer['requests'] = [];
  let interruptions: { afterBytes: number; mode: 'hold' | 'drop'; count: number; released: Promise<void> }[] = [];
  const releases = new Set<() => void>();

  const send = (res: ServerResponse, method: string, path: string, status: number, body?: unknown, headers: Record<string, string> = {}): void => {
    requests.push({ method, path, status });
    if (body === undefined || status === 204) {
      res.writeHead(status, headers).end();
      return;
    }
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(toJson(body));
  };
  const sendError = (res: ServerResponse, method: string, path: string, error: { status: number; body: ErrorBody }, headers: Record<string, string> = {}): void =>
    send(res, method, path, error.status, error.body, headers);

  /** A raw body (a file download), cut short when an interruption is pending. */
  function sendRaw(res: ServerResponse, method: string, path: string, status: number, raw: { data: Buffer; headers: Record<string, string> }): void {
    requests.push({ method, path, status });
    res.writeHead(status, { ...raw.headers, 'content-length': String(raw.data.length) });
    const cut = interruptions.find((i) => i.count > 0);
    if (!cut) {
      res.end(raw.data);
      return;
    }
    cut.count--;
    interruptions = interruptions.filter((i) => i.count > 0);
    res.write(raw.data.subarray(0, cut.afterBytes), () => {
      if (cut.mode === 'drop') res.destroy();
      else void cut.released.then(() => res.end(raw.data.subarray(cut.afterBytes)));
    });
  }

  function takeFault(method: string, path: string): Fault | null {
    const fault = faults.find((f) => f.count > 0 && (f.match ? f.match(method, path) : true));
    if (!fault) return null;
    fault.count--;
    faults = faults.filter((f) => f.count > 0);
    return fault;
  }

  function answerFault(res: ServerResponse, method: string, path: string, fault: Fault): void {
    // 'lost' is answered by handle(), after the work is done.
    if (fault.status === 'reset' || fault.status === 'lost') {
      requests.push({ method, path, status: 0 });
      res.socket?.destroy();
      return;
    }
    if (fault.status === 'timeout') {
      requests.push({ method, path, status: 0 });
      return; // the socket stays open until close()
    }
    if (fault.status === 429) {
      const reset = String(Math.ceil(Date.now() / 1000) + 1);
      sendError(res, method, path, errorResponse('general_rate_limit_exceeded', ERRORS.general_rate_limit_exceeded[1], 429), {
        'retry-after': '1',
        'x-ratelimit-limit': '60',
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': reset,
      });
      return;
    }
    const message = fault.status === 503 ? 'Service temporarily unavailable.' : 'Server Error';
    sendError(res, method, path, errorResponse('general_server_error', message, fault.status));
  }

  /** Spec problems of a matched request; the queries format is checked here too (what node-appwrite's Query writes). */
  function specProblems(match: RouteMatch, search: URLSearchParams, rawBody: Buffer, contentType: string, req: IncomingMessage) {
    const { parsed, problems } = spec.checkRequest(match, search, rawBody, contentType);
    const queryProblems: string[] = [];
    for (const source of [parsed.query.queries, parsed.body.queries]) {
      if (!Array.isArray(source)) continue;
      if (source.length > 100) problems.push(`${match.operation.operationId}: more than 100 queries`);
      for (const raw of source as unknown[]) {
        if (typeof raw !== 'string') continue;
        if (raw.length > 4096) problems.push(`${match.operation.operationId}: a query longer than 4096 characters`);
        const problem = queryFormatProblem(raw);
        if (problem) queryProblems.push(`${match.operation.operationId}: ${problem}`);
      }
    }
    const hasProject = typeof req.headers['x-appwrite-project'] === 'string';
    const hasCredential = ['x-appwrite-key', 'x-appwrite-session', 'x-appwrite-jwt'].some((h) => typeof req.headers[h] === 'string');
    // The spec lists Project with Key/Session/JWT as one security object; Appwrite reads it as Project plus one credential.
    if (!hasProject) problems.push(`${match.operation.operationId}: no X-Appwrite-Project header`);
    if (!hasCredential) problems.push(`${match.operation.operationId}: no X-Appwrite-Key (or session/JWT) header`);
    return { parsed, problems, queryProblems };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawBody = await readBody(req);
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const route = path.startsWith(`${spec.basePath}/`) ? path.slice(spec.basePath.length) : null;
    const match = route === null ? null : spec.match(method, route);
    if (!match) {
      violations.push(`${method} ${path}: the spec has no such operation`);
      const fault = takeFault(method, path);
      if (fault) return answerFault(res, method, path, fault);
      return sendError(res, method, path, toErrorResponse(new AppwriteError('general_route_not_found')));
    }
    const { parsed, problems, queryProblems } = specProblems(match, url.searchParams, rawBody, String(req.headers['content-type'] ?? ''), req);
    for (const p of [...problems, ...queryProblems]) violations.push(`${method} ${path}: ${p}`);

    const fault = takeFault(method, path);
    if (fault && fault.status !== 'lost') return answerFault(res, method, path, fault);

    // Appwrite authenticates before it validates parameters (app/controllers/shared/api.php).
    const project = req.headers['x-appwrite-project'];
    if (typeof project === 'string' && project !== projectId) {
      return sendError(res, method, path, toErrorResponse(new AppwriteError('project_not_found')));
    }
    if (project === undefined || req.headers['x-appwrite-key'] !== apiKey) {
      const scopes = JSON.stringify(scopesOf(method, match.operation.template));
      return sendError(res, method, path, toErrorResponse(new AppwriteError('general_unauthorized_scope', `User (role: guests) missing scopes (${scopes})`)));
    }
    if (problems.length > 0) {
      return sendError(res, method, path, toErrorResponse(new AppwriteError('general_argument_invalid', `Spec violation: ${problems.join('; ')}`)));
    }
    if (queryProblems.length > 0) {
      return sendError(res, method, path, toErrorResponse(new AppwriteError('general_query_invalid', `Invalid query: ${queryProblems.join('; ')}`)));
    }
    const handler = HANDLERS[match.operation.operationId];
    if (!handler) {
      return send(res, method, path, 501, {
        message: `The test TablesDB server does not implement ${match.operation.operationId}.`,
        code: 501,
        type: 'general_not_implemented',
        version: APPWRITE_VERSION,
      });
    }
    try {
      for (const name of PATH_IDS) if (name in match.pathParams) checkId(name, match.pathParams[name]);
      for (const name of ['key', 'column']) {
        if (name in match.pathParams && !KEY.test(match.pathParams[name]!)) throw new AppwriteError('general_argument_invalid', `Invalid \`${name}\` param: Key must contain at most 36 chars.`);
      }
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) if (typeof value === 'string') headers[name] = value;
      const note = (problem: string) => violations.push(`${method} ${path}: ${problem}`);
      const result = handler(state, { path: match.pathParams, query: parsed.query, body: parsed.body, headers, note });
      if (fault?.status === 'lost') {
        requests.push({ method, path, status: 0 });
        res.socket?.destroy();
        return;
      }
      if (result.raw) return sendRaw(res, method, path, result.status ?? match.operation.successStatus, result.raw);
      return send(res, method, path, result.status ?? match.operation.successStatus, result.body);
    } catch (error) {
      if (error instanceof AppwriteError) return sendError(res, method, path, toErrorResponse(error));
      if (error instanceof StorageError) return sendError(res, method, path, errorResponse(error.type, error.message, error.code));
      const message = error instanceof Error ? error.message : String(error);
      return sendError(res, method, path, { status: 500, body: { message: `Test server error: ${message}`, code: 500, type: 'general_unknown', version: APPWRITE_VERSION } });
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' }).end(toJson({ message: String(error), code: 500, type: 'general_unknown', version: APPWRITE_VERSION }));
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}${spec.basePath}`,
    projectId,
    apiKey,
    violations,
    requests,
    injectFaults(fault) {
      faults.push({ ...fault });
    },
    interruptDownloads({ afterBytes, mode, count = 1 }) {
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      releases.add(release);
      interruptions.push({ afterBytes, mode, count, released });
      return { release };
    },
    expireTransactions() {
      for (const tx of state.transactions.values()) if (tx.status === 'pending') tx.expiresAt = Date.now() - 1;
    },
    reset() {
      state = createState();
      faults = [];
      interruptions = [];
      for (const release of releases) release();
      releases.clear();
      violations.length = 0;
      requests.length = 0;
    },
    close() {
      for (const release of releases) release();
      for (const socket of sockets) socket.destroy();
      if (!server.listening) return Promise.resolve();
      return new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}
