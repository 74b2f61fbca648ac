// A server for bench/api.ts: `hub` serves the real hub (SQLite file, auth, rate limit, metrics); `bare` serves the
// same JSON from a bare Hono route. Prints one JSON line with the port and what to request, then serves.
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWorkspace } from '../src/bootstrap.ts';
import { testConfig } from '../src/config.ts';
import { createHub } from '../src/hub.ts';
import { systemClock } from '../src/lib/clock.ts';
import { createSqliteStore } from '../src/store/sqlite.ts';

const mode = process.argv[2];

async function hubServer() {
  const dir = mkdtempSync(join(tmpdir(), 'hub-bench-'));
  const store = createSqliteStore({ path: join(dir, 'hub.db') });
  const hub = createHub({ config: testConfig({ logLevel: 'warn' }), store, encryptionKey: Buffer.alloc(32, 9) });
  const { secret } = await createWorkspace(store, systemClock, { name: 'Bench', actor: 'bench' });
  const headers = { Authorization: `Bearer ${secret}`, 'Content-Type': 'application/json' };
  const keyId = ((await (await hub.app.request('/v1/api-keys', { headers })).json()) as { data: { id: string }[] }).data[0]!.id;
  // the benchmark measures throughput, not the limiter's refusal: lift this key's limit
  await hub.app.request(`/v1/api-keys/${keyId}`, { method: 'PATCH', headers, body: JSON.stringify({ rateLimitPerMinute: 1_000_000 }) });
  const created = await hub.app.request('/v1/connections', {
    method: 'POST',
    headers,
    body: JSON.stringify({ connectorId: 'http', name: 'erp', config: { baseUrl: 'https://erp.example.com/api', auth: { type: 'bearer' } }, credentials: { token: 't0k3n' } }),
  });
  const connection = (await created.json()) as { id: string };
  return { fetch: hub.app.fetch, path: `/v1/connections/${connection.id}`, headers: { Authorization: headers.Authorization } };
}

function bareServer() {
  const body = JSON.parse(readFileSync(0, 'utf8')) as Record<string, unknown>;
  const app = new Hono();
  app.get('/v1/connections/:id', (c) => c.json(body));
  return { fetch: app.fetch, path: `/v1/connections/${String(body.id)}`, headers: {} };
}

const target = mode === 'hub' ? await hubServer() : bareServer();
const server = serve({ fetch: target.fetch, port: 0, hostname: '127.0.0.1' }, (info) => {
  process.stdout.write(JSON.stringify({ port: info.port, path: target.path, headers: target.headers }) + '\n');
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
