// The baselines for bench/webhooks.ts: a bare Hono app on @hono/node-server with one route that does the least an
// honest webhook receiver does. It reads the raw body, checks a Standard-Webhooks-style signature (the same three
// headers, the same 5-minute timestamp window, `v1,` base64 HMAC-SHA256 of `id.timestamp.body`, a constant-time
// compare), stores the request with ONE better-sqlite3 insert (WAL, synchronous=NORMAL) keyed by the webhook-id, and
// answers 202: the inbound figure's baseline.
// Given a receiver URL it is also the end-to-end figure's baseline, a relay: after answering, it turns each new
// webhook into an outbound one (the JSON parsed, a `stock.changed` event built from its data, serialised and signed
// the same way) and POSTs it to the receiver over undici keep-alive connections (50 at most, as the hub's sender
// uses). What it leaves out is what the hub is for: no mapping, no stock ledger, no retries, no ordering, no record
// of the outbound send, and a crash loses what was not yet sent.
// Usage: webhooks-server.ts <sqlite file> <whsec_ secret> [receiver URL]. Prints {"port":…} then serves.
import { serve } from '@hono/node-server';
import Database from 'better-sqlite3';
import { Hono } from 'hono';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { Pool } from 'undici';

const [file, secret, receiverUrl] = process.argv.slice(2);
if (!file || !secret?.startsWith('whsec_')) throw new Error('usage: webhooks-server.ts <sqlite file> <whsec_ secret> [receiver URL]');
const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
const TOLERANCE_SECONDS = 300;
const TIMESTAMP = /^[0-9]{1,15}$/;
const V1_SIGNATURE = /^[A-Za-z0-9+/]{43}=$/;

const db = new Database(file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec('CREATE TABLE IF NOT EXISTS hooks (id TEXT PRIMARY KEY, body TEXT) STRICT');
const insert = db.prepare('INSERT OR IGNORE INTO hooks (id, body) VALUES (?, ?)');

/** HMAC-SHA256 of `id.timestamp.body`, the bytes a `v1,` signature encodes. */
const mac = (id: string, timestamp: string, body: string | Buffer) => createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest();

function verified(id: string | undefined, timestamp: string | undefined, signatures: string | undefined, body: Buffer): boolean {
  if (!id || !timestamp || !signatures || id.length > 255 || !TIMESTAMP.test(timestamp)) return false;
  if (Math.abs(Math.floor(Date.now() / 1000) - Number(timestamp)) > TOLERANCE_SECONDS) return false;
  let expected: Buffer | undefined;
  for (const entry of signatures.split(' ')) {
    if (!entry.startsWith('v1,')) continue;
    const encoded = entry.slice(3);
    if (!V1_SIGNATURE.test(encoded)) continue;
    expected ??= mac(id, timestamp, body);
    if (timingSafeEqual(expected, Buffer.from(encoded, 'base64'))) return true;
  }
  return false;
}

// The relay's sender, and what it could not send (GET /relay-stats tells).
const receiver = receiverUrl ? new URL(receiverUrl) : null;
const pool = receiver ? new Pool(receiver.origin, { connections: 50, pipelining: 1 }) : null;
let relayFailed = 0;
function relay(id: string, body: Buffer): void {
  const inbound = JSON.parse(body.toString('utf8')) as { type: string; data: { sku: string } };
  const timestamp = String(Math.floor(Date.now() / 1000));
  const eventId = `evt_${id}`;
  const payload = JSON.stringify({ id: eventId, type: 'stock.changed', timestamp: new Date().toISOString(), subject: inbound.data.sku, data: inbound.data });
  const headers = { 'content-type': 'application/json', 'webhook-id': eventId, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${mac(eventId, timestamp, payload).toString('base64')}` };
  pool!
    .request({ origin: receiver!.origin, path: receiver!.pathname, method: 'POST', headers, body: payload })
    .then(async (res) => {
      await res.body.dump();
      if (res.statusCode < 200 || res.statusCode >= 300) relayFailed++;
    })
    .catch(() => void relayFailed++);
}

const app = new Hono();
app.get('/relay-stats', (c) => c.json({ failed: relayFailed }));
app.post('/hooks/:connectionId', async (c) => {
  const body = Buffer.from(await c.req.arrayBuffer());
  const id = c.req.header('webhook-id');
  if (!verified(id, c.req.header('webhook-timestamp'), c.req.header('webhook-signature'), body)) return c.json({ error: 'bad signature' }, 401);
  const duplicate = insert.run(id, body.toString('utf8')).changes === 0;
  if (pool && !duplicate) setImmediate(relay, id!, body);
  return c.json({ id, duplicate }, 202);
});

const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => {
  process.stdout.write(JSON.stringify({ port: info.port }) + '\n');
});
process.on('SIGTERM', () =>
  server.close(() => {
    void pool?.close();
    db.close();
    process.exit(0);
  }),
);
