// Exactly once, under fire: a burst of signed inbound webhooks while the hub process is SIGKILLed and restarted
// several times, and while the outbound receivers fail intermittently (500s and dropped connections). Then every
// inbound webhook that got a 2xx was applied exactly once, every resulting event reached every matching endpoint at
// least once (duplicates carry the same webhook-id and body), and the ledger balances with nothing missing.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterAll, describe, expect, it } from 'vitest';
import { apiClient } from './api-client.ts';
import { startReceiver, type Receiver } from './webhook-receiver.ts';

const root = join(import.meta.dirname, '..');
const N = Number(process.env.CRASH_TEST_WEBHOOKS ?? 3000);
const KILLS = 4;
const SENDERS = 24;
const SECRET = 'whsec_' + Buffer.alloc(32, 5).toString('base64');
// Events about one SKU are delivered one after another (ordering per subject): twenty SKUs make twenty such chains.
const SKUS = 20;

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

interface HubProcess {
  child: ChildProcess;
  exited: Promise<void>;
  output: () => string;
}

function startHub(env: Record<string, string>): Promise<HubProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = () => {
      if (/Hub running at/.test(out)) return resolve({ child, exited, output: () => out });
      if (child.exitCode !== null || Date.now() - started > 30_000) return reject(new Error(`the hub did not start: ${out}`));
      setTimeout(tick, 20);
    };
    tick();
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('webhooks under crashes', () => {
  it(`applies ${N} inbound webhooks exactly once and delivers every event, through ${KILLS} SIGKILLs and a flaky receiver`, async () => {
    const data = mkdtempSync(join(tmpdir(), 'hub-crash-'));
    cleanups.push(() => rmSync(data, { recursive: true, force: true }));
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const env = {
      HUB_DATA_DIR: data,
      HUB_PORT: String(port),
      HUB_LOG_LEVEL: 'error',
      HUB_RATE_LIMIT_PER_MINUTE: '1000000',
      HUB_JOB_LEASE_MS: '2000',
      HUB_WEBHOOK_ALLOW: '127.0.0.1/32',
      HUB_WEBHOOK_TIMEOUT_MS: '1000',
      // Short and many: intermittent failures must not bury a delivery, and the test must not wait for hours.
      HUB_WEBHOOK_RETRY_SCHEDULE: '0,50ms,100ms,200ms,300ms,400ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms',
    };

    // Two receivers, each failing about one request in five: a 500, or the connection dropped mid-request.
    const receivers: Receiver[] = [];
    for (let i = 0; i < 2; i++) {
      let n = 0;
      const r = await startReceiver((_req, res) => {
        n++;
        if (n % 11 === 3) return void res.socket?.destroy();
        if (n % 7 === 5) {
          res.statusCode = 500;
          return void res.end('flaky');
        }
        res.end('ok');
      });
      receivers.push(r);
      cleanups.push(() => r.close());
    }

    let hub = await startHub(env);
    cleanups.push(() => void hub.child.kill('SIGKILL'));
    const key = /hub_sk_[A-Za-z0-9_-]{43}/.exec(hub.output())![0];
    const api = apiClient(base, key);

    const loc = await api('POST', '/v1/locations', { code: 'LON-1', name: 'London' });
    void loc;
    for (let i = 0; i < SKUS; i++) await api('POST', '/v1/products', { sku: `TEE-${i}`, name: `Tee ${i}` });
    const endpoints: { id: string; secret: string; receiver: Receiver }[] = [];
    for (const r of receivers) {
      const created = await api('POST', '/v1/webhooks/endpoints', { url: r.url, eventTypes: ['stock.*'] });
      endpoints.push({ id: created.endpoint.id, secret: created.secret, receiver: r });
    }
    const conn = await api('POST', '/v1/connections', {
      connectorId: 'webhook',
      name: 'pos',
      config: { verification: { scheme: 'standard-webhooks' }, routes: [{ event: 'stock.*', mapping: 'webhook-stock-change-in', action: 'stock.adjust' }] },
      credentials: { secret: SECRET },
    });

    // The sender behaves like a real one: a webhook is resent (same id, same body) until it gets a 2xx.
    const signer = new Webhook(SECRET);
    let next = 0;
    let accepted = 0;
    let resends = 0;
    const sendOne = async (i: number) => {
      const id = `msg_${i}`;
      const body = JSON.stringify({ type: 'stock.changed', timestamp: new Date().toISOString(), data: { sku: `TEE-${i % SKUS}`, location: 'LON-1', change: 1, reference: { type: 'pos', id } } });
      for (;;) {
        try {
          const headers = { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(Date.now() / 1000)), 'content-type': 'application/json' };
          const res = await fetch(`${base}/hooks/${conn.id}`, { method: 'POST', headers: { ...headers, 'webhook-signature': signer.sign(id, new Date(), body) }, body });
          await res.arrayBuffer();
          if (res.status === 202) return void accepted++;
        } catch {
          // killed mid-request: resend
        }
        resends++;
        await sleep(50);
      }
    };
    const sending = Promise.all(
      Array.from({ length: SENDERS }, async () => {
        while (next < N) await sendOne(next++);
      }),
    );

    // Meanwhile: SIGKILL and restart, while webhooks arrive, jobs run and deliveries are in flight.
    for (let k = 0; k < KILLS; k++) {
      await sleep(1500);
      hub.child.kill('SIGKILL');
      await hub.exited;
      hub = await startHub(env);
    }
    await sending;
    expect(accepted).toBe(N);

    // Let the hub finish: every inbound webhook applied, every delivery delivered.
    const deadline = Date.now() + 120_000;
    let ledger: any;
    for (;;) {
      const waiting = await api('GET', '/v1/inbox?status=received&limit=1');
      ledger = await api('GET', '/v1/webhooks/stats');
      if (waiting.data.length === 0 && ledger.pending === 0) break;
      if (Date.now() > deadline) throw new Error(`not settled: ${JSON.stringify(ledger)}; ${hub.output().slice(-2000)}`);
      await sleep(250);
    }

    // Applied exactly once: one movement of +1 per webhook, no more, no less.
    const levels = await api('GET', '/v1/stock-levels?limit=100');
    expect(levels.data).toHaveLength(SKUS);
    for (const level of levels.data) expect(level.onHand, level.sku).toBe(N / SKUS);
    const check = await api('GET', '/v1/reports/ledger-check');
    expect(check.ok).toBe(true);
    const failed = await api('GET', '/v1/inbox?status=failed&limit=5');
    expect(failed.data).toEqual([]);

    // Every stock event, to every endpoint, at least once; duplicates only with the same webhook-id and body.
    const events: { id: string; type: string; subject: string }[] = [];
    for (let after = ''; ; ) {
      const page = await api('GET', `/v1/events?type=stock.*&limit=1000${after ? `&after=${after}` : ''}`);
      events.push(...page.data);
      if (!page.hasMore) break;
      after = page.nextCursor;
    }
    expect(events.length).toBeGreaterThanOrEqual(N);
    expect(ledger).toMatchObject({ published: events.length * endpoints.length, delivered: events.length * endpoints.length, pending: 0, dead: 0 });
    for (const endpoint of endpoints) {
      const bodies = new Map<string, string>();
      const wh = new Webhook(endpoint.secret);
      for (const got of endpoint.receiver.received) {
        const id = got.headers['webhook-id']!;
        const seen = bodies.get(id);
        if (seen !== undefined) expect(got.body).toBe(seen);
        bodies.set(id, got.body);
        // Verified against the hub's timestamp window: the hub and this test share a clock.
        expect(() => wh.verify(got.body, got.headers)).not.toThrow();
      }
      const missing = events.filter((e) => !bodies.has(e.id));
      expect(missing).toEqual([]);
      // In order per subject: the first arrival of each event follows the order the events happened in.
      const firstSeen = [...bodies.keys()];
      for (const subject of new Set(events.map((e) => e.subject))) {
        const happened = events.filter((e) => e.subject === subject).map((e) => e.id);
        expect(firstSeen.filter((id) => happened.includes(id))).toEqual(happened);
      }
      expect([...bodies.keys()].every((id) => events.some((e) => e.id === id))).toBe(true);
    }
    hub.child.kill('SIGTERM');
    await hub.exited;
    console.info(`crash test: ${N} webhooks, ${resends} resends, ${KILLS} kills, ${events.length} events, ${receivers.map((r) => r.received.length).join('+')} deliveries received`);
  }, 240_000);
});
