// The Appwrite endpoint the function bundles see in tests: TablesDB requests go through to the TablesDB test server,
// and `Functions.createExecution` requests are checked against Appwrite's published spec and recorded, answered as
// Appwrite answers an async execution (202 and the queued execution), so tests can run the worker it asked for.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadSpec } from './appwrite/spec.ts';
import type { TablesDbServer } from './appwrite/tablesdb-server.ts';

export interface RecordedExecution {
  functionId: string;
  async: boolean;
  body: string;
  key: string | undefined;
}

export interface AppwriteFront {
  /** Endpoint including /v1, for APPWRITE_FUNCTION_API_ENDPOINT. */
  url: string;
  executions: RecordedExecution[];
  violations: string[];
  /** Answer the next `count` execution requests with this status (Appwrite's error body). */
  failExecutions(status: number, count: number): void;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export async function startAppwriteFront(tables: TablesDbServer): Promise<AppwriteFront> {
  const spec = loadSpec();
  const upstream = new URL(tables.url);
  const executions: RecordedExecution[] = [];
  const violations: string[] = [];
  let failures = { status: 0, count: 0 };

  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const url = new URL(req.url ?? '/', 'http://front');
      const route = url.pathname.slice(spec.basePath.length);
      const execution = /^\/functions\/([^/]+)\/executions$/.exec(route);
      if (req.method === 'POST' && execution) {
        const match = spec.match('POST', route);
        if (!match) violations.push(`POST ${route}: not in the spec`);
        else {
          const { problems } = spec.checkRequest(match, url.searchParams, body.toString('utf8'), String(req.headers['content-type'] ?? ''));
          violations.push(...problems.map((p) => `POST ${route}: ${p}`));
        }
        if (req.headers['x-appwrite-project'] !== tables.projectId) violations.push(`POST ${route}: wrong or no X-Appwrite-Project`);
        const params = JSON.parse(body.toString('utf8') || '{}') as { body?: string; async?: boolean };
        const key = typeof req.headers['x-appwrite-key'] === 'string' ? req.headers['x-appwrite-key'] : undefined;
        executions.push({ functionId: execution[1]!, async: params.async === true, body: params.body ?? '', key });
        if (failures.count > 0) {
          failures.count--;
          res.writeHead(failures.status, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ message: 'Server Error', code: failures.status, type: 'general_server_error', version: '1.8.1' }));
          return;
        }
        const now = new Date().toISOString();
        res.writeHead(202, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            $id: `exec${executions.length}`,
            $createdAt: now,
            $updatedAt: now,
            $permissions: [],
            functionId: execution[1],
            deploymentId: 'dep1',
            trigger: 'http',
            status: 'waiting',
            requestMethod: 'POST',
            requestPath: '/',
            requestHeaders: [],
            responseStatusCode: 0,
            responseBody: '',
            responseHeaders: [],
            logs: '',
            errors: '',
            duration: 0,
          }),
        );
        return;
      }
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) {
        if (v === undefined || k === 'host' || k === 'content-length' || k === 'connection') continue;
        headers.set(k, Array.isArray(v) ? v.join(', ') : v);
      }
      const answer = await fetch(new URL(`${url.pathname}${url.search}`, upstream.origin), {
        method: req.method,
        headers,
        body: req.method === 'GET' || req.method === 'HEAD' || body.length === 0 ? undefined : body,
      });
      const out = Buffer.from(await answer.arrayBuffer());
      // As it came: a 204 (a deleted row) has no body and no type, and node-appwrite parses any JSON-typed body.
      const type = answer.headers.get('content-type');
      res.writeHead(answer.status, type ? { 'content-type': type } : {});
      res.end(out);
    })().catch((err: unknown) => {
      violations.push(`front failed: ${String(err)}`);
      if (!res.headersSent) res.writeHead(502).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${spec.basePath}`,
    executions,
    violations,
    failExecutions(status, count) {
      failures = { status, count };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
