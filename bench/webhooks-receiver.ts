// The webhook receiver for bench/webhooks.ts: a plain node:http server (keep-alive) that answers every POST with
// 200 "ok" as fast as it can and counts what it got: requests, distinct webhook-ids, and when the first request and
// the last new id arrived (epoch ms, sub-millisecond: performance.timeOrigin + performance.now(), comparable across
// processes on one machine). GET /stats reads the counters, GET /ids the ids seen, GET /reset clears everything.
// Prints {"port":…} then serves.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const now = () => performance.timeOrigin + performance.now();
let requests = 0;
let ids = new Set<string>();
let firstAt = 0;
let lastNewAt = 0;

const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  if (req.method === 'GET') {
    let body: string;
    if (req.url === '/stats') body = JSON.stringify({ requests, distinct: ids.size, firstAt, lastNewAt });
    else if (req.url === '/ids') body = JSON.stringify([...ids]);
    else {
      requests = 0;
      ids = new Set();
      firstAt = lastNewAt = 0;
      body = '{}';
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    return void res.end(body);
  }
  const at = now();
  requests++;
  if (firstAt === 0) firstAt = at;
  const id = req.headers['webhook-id'];
  if (typeof id === 'string' && !ids.has(id)) {
    ids.add(id);
    lastNewAt = at;
  }
  req.resume();
  req.on('end', () => res.end('ok'));
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port }) + '\n');
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
