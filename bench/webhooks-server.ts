// The baseline for bench/webhooks.ts's inbound figure: a bare Hono app on @hono/node-server with one route that does
// the least an honest webhook receiver does. It reads the raw body, checks a Standard-Webhooks-style signature (the
// same three headers, the same 5-minute timestamp window, `v1,` base64 HMAC-SHA256 of `id.timestamp.body`, a
// constant-time compare), stores the request with ONE better-sqlite3 insert (WAL, synchronous=NORMAL) keyed by the
// webhook-id, and answers 202. Usage: webhooks-server.ts <sqlite file> <whsec_ secret>. Prints {"port":…} then serves.
import { serve } from '@hono/node-server';
import Database from 'better-sqlite3';
import { Hono } from 'hono';
import { createHmac, timingSafeEqual } from 'node:crypto';

const [file, secret] = process.argv.slice(2);
if (!file || !secret?.startsWith('whsec_')) throw new Error('usage: webhooks-server.ts <sqlite file> <whsec_ secret>');
const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
const TOLERANCE_SECONDS = 300;
const TIMESTAMP = /^[0-9]{1,15}$/;
const V1_SIGNATURE = /^[A-Za-z0-9+/]{43}=$/;

const db = new Database(file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec('CREATE TABLE IF NOT EXISTS hooks (id TEXT PRIMARY KEY, body TEXT) STRICT');
const insert = db.prepare('INSERT OR IGNORE INTO hooks (id, body) VALUES (?, ?)');

function verified(id: string | undefined, timestamp: string | undefined, signatures: string | undefined, body: Buffer): boolean {
  if (!id || !timestamp || !signatures || id.length > 255 || !TIMESTAMP.test(timestamp)) return false;
  if (Math.abs(Math.floor(Date.now() / 1000) - Number(timestamp)) > TOLERANCE_SECONDS) return false;
  let expected: Buffer | undefined;
  for (const entry of signatures.split(' ')) {
    if (!entry.startsWith('v1,')) continue;
    const encoded = entry.slice(3);
    if (!V1_SIGNATURE.test(encoded)) continue;
    expected ??= createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest();
    if (timingSafeEqual(expected, Buffer.from(encoded, 'base64'))) return true;
  }
  return false;
}

const app = new Hono();
app.post('/hooks/:connectionId', async (c) => {
  const body = Buffer.from(await c.req.arrayBuffer());
  const id = c.req.header('webhook-id');
  if (!verified(id, c.req.header('webhook-timestamp'), c.req.header('webhook-signature'), body)) return c.json({ error: 'bad signature' }, 401);
  const duplicate = insert.run(id, body.toString('utf8')).changes === 0;
  return c.json({ id, duplicate }, 202);
});

const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => {
  process.stdout.write(JSON.stringify({ port: info.port }) + '\n');
});
process.on('SIGTERM', () =>
  server.close(() => {
    db.close();
    process.exit(0);
  }),
);
