// bench/webhooks: three figures for the hub's webhooks, all over loopback, each against a baseline in the same run.
//  1. Inbound accept rate: POST /hooks/{connectionId} of a hub process (run as npm start runs it: the bundle of
//     src/main.ts with the start script's node flags; worker and dispatcher off, so it only accepts: verify +
//     dedupe + store the raw request and add it to its job (a burst gathers into one job per 64) + 202) against a
//     bare Hono route in its own process that verifies the same signature and does one SQLite insert
//     (bench/webhooks-server.ts). autocannon,
//     50 connections, alternating rounds; every request carries a webhook-id never sent before.
//     Target: hub ≥ 0.6× the baseline's requests/s, hub p99 ≤ 20 ms.
//  2. Outbound deliveries/s: a hub created in this process over a SQLite file drains N pre-created events (distinct
//     subjects, one endpoint) to a receiver process (bench/webhooks-receiver.ts), against the same N signed POSTs
//     sent straight to that receiver with a keep-alive node:http agent at the same concurrency (256), no database.
//     Target: ≥ 5,000 deliveries/s.
//  3. End to end: signed stock webhooks into a normal hub process (worker and dispatcher on), applied as stock changes
//     whose stock.* events go out to the receiver; from the first send to the last event received. Sent 50 at a
//     time over node:http keep-alive, spread over 20 SKUs (BENCH_SKUS): each SKU is a subject whose events go out in
//     order, one after another. Two bursts into one hub: the first right after it started, the second, measured,
//     once the first is delivered. A hub serves for days: the first seconds of a process (V8 compiling and
//     optimizing the hot code, validators compiled, caches filled) cost it about half again as much CPU per event,
//     and the cold burst's figures are printed beside the warmed one's. The CPU each process used is printed
//     (Linux): they share the machine. Target: ≥ 2,000 events/s. The baseline, in rounds alternating with the
//     hub's, warmed up by a first burst too: a relay (bench/webhooks-server.ts given the receiver) that verifies,
//     stores each webhook with one insert, answers 202, then signs and POSTs an event built from it, with none of the
//     hub's mapping, ledger, retries, ordering or crash safety. The target is absolute; the ratio tells what it asks
//     of the machine at hand (the machines these runs get differ by 2-3× in speed).
// BENCH_SECONDS (10) and BENCH_ROUNDS (2) set the inbound rounds, BENCH_DELIVERIES (20,000) the outbound deliveries
// per round, BENCH_WARMUP (5,000) and BENCH_WEBHOOKS (5,000) the end-to-end bursts, BENCH_E2E_ROUNDS (2) their
// rounds. BENCH_PROF=1 writes CPU profiles of the hub processes to /tmp/hub-webhooks-prof. It prints; it fails only
// when it would not be measuring what it says.
import autocannon from 'autocannon';
import Database from 'better-sqlite3';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { buildHub, startFlags } from '../scripts/build-hub.ts';
import { createWorkspace } from '../src/bootstrap.ts';
import { testConfig } from '../src/config.ts';
import { appendEvent } from '../src/events/log.ts';
import { createHub } from '../src/hub.ts';
import { systemClock } from '../src/lib/clock.ts';
import { createSqliteStore } from '../src/store/sqlite.ts';
import type { EventsRow } from '../src/store/types.ts';
import { webhookPayload } from '../src/webhooks/dispatcher.ts';
import { createEndpoint, deliveryLedger } from '../src/webhooks/manage.ts';
import { STANDARD_SCHEDULE_MS } from '../src/webhooks/schedule.ts';
import { secretKey, standardHeaders } from '../src/webhooks/signing.ts';
import { apiClient, type ApiCall } from '../test/api-client.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const DELIVERIES = Number(process.env.BENCH_DELIVERIES ?? 20_000);
const WEBHOOKS = Number(process.env.BENCH_WEBHOOKS ?? 5_000);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 5_000);
const E2E_ROUNDS = Number(process.env.BENCH_E2E_ROUNDS ?? 2);
// BENCH_ONLY=inbound,outbound,e2e runs some of the three (to investigate one); the summary then shows those.
const ONLY = new Set((process.env.BENCH_ONLY ?? 'inbound,outbound,e2e').split(',').map((s) => s.trim()));
// BENCH_HUB_FLAGS replaces the start script's node flags for the hub processes ("" for Node's defaults), to compare.
const HUB_FLAGS = process.env.BENCH_HUB_FLAGS !== undefined ? process.env.BENCH_HUB_FLAGS.split(' ').filter(Boolean) : startFlags();
const PROF = process.env.BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/hub-webhooks-prof'] : [];
const CONNECTIONS = 50;
const OUT_CONCURRENCY = 256;
const E2E_CONCURRENCY = 50;
const SKUS = Number(process.env.BENCH_SKUS ?? 20);
const SECRET = 'whsec_' + Buffer.alloc(32, 5).toString('base64');
const KEY = secretKey(SECRET);
const root = join(import.meta.dirname, '..');
const RUN = randomBytes(4).toString('hex');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const epochNow = () => performance.timeOrigin + performance.now();
const f = (n: number) => Math.round(n).toLocaleString('en-US');

// ---------------------------------------------------------------------------------------------------------------
// Children and temp dirs, cleaned up on every way out.

const children = new Set<ChildProcess>();
const dirs: string[] = [];
function tempDir(tag: string): string {
  const dir = mkdtempSync(join(tmpdir(), `hub-bench-webhooks-${tag}-`));
  dirs.push(dir);
  return dir;
}
function cleanupNow(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}
process.on('exit', cleanupNow);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    cleanupNow();
    process.exit(130);
  });
}

interface Child {
  child: ChildProcess;
  output: () => string;
}

/** Spawns `node [flags] --import tsx <args>` (or, `bundled`, `node [flags] <args>`) and resolves once its output matches `ready`. */
function startChild(name: string, args: string[], ready: RegExp, env: Record<string, string> = {}, flags: string[] = [], bundled = false): Promise<Child & { match: RegExpExecArray }> {
  const child = spawn(process.execPath, [...flags, ...(bundled ? [] : ['--import', 'tsx']), ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString();
    if (out.length > 100_000) out = out.slice(-50_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = () => {
      const match = ready.exec(out);
      if (match) return resolve({ child, output: () => out, match });
      if (child.exitCode !== null || Date.now() - started > 60_000) return reject(new Error(`${name} did not start: ${out}`));
      setTimeout(tick, 20);
    };
    tick();
  });
}

/** CPU a process has used so far, in ms (Linux: /proc/<pid>/stat at 100 ticks/s; elsewhere NaN). */
function cpuMsOf(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

async function stopChild(c: Child): Promise<void> {
  if (c.child.exitCode !== null || c.child.signalCode !== null) return void children.delete(c.child);
  const exited = new Promise((r) => c.child.once('exit', r));
  c.child.kill('SIGTERM');
  await Promise.race([exited, sleep(15_000)]);
  if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  children.delete(c.child);
}

interface HubProcess extends Child {
  base: string;
  key: string;
  dataDir: string;
  api: ApiCall;
}

/** The hub bundled as `npm start` bundles it (built once per run, removed at exit). */
let hubBundle: Promise<string> | null = null;
function bundledHub(): Promise<string> {
  if (!hubBundle) {
    const out = join(root, 'dist', `hub-bench-${process.pid}`);
    dirs.push(out);
    hubBundle = buildHub(out);
  }
  return hubBundle;
}

/** The embedded hub as `npm start` runs it (the bundle, the start script's node flags), on a free port, over a fresh data directory. */
async function startHub(tag: string, env: Record<string, string>): Promise<HubProcess> {
  const dataDir = tempDir(tag);
  const c = await startChild(
    `the hub (${tag})`,
    [await bundledHub()],
    /Hub running at (http:\/\/\S+)[\s\S]*(hub_sk_[A-Za-z0-9_-]{43})/,
    { HUB_DATA_DIR: dataDir, HUB_PORT: '0', HUB_LOG_LEVEL: 'warn', HUB_RATE_LIMIT_PER_MINUTE: '10000000', ...env },
    [...HUB_FLAGS, ...PROF],
    true,
  );
  const base = c.match[1]!;
  const key = c.match[2]!;
  return { ...c, base, key, dataDir, api: apiClient(base, key) };
}

/** A `webhook` connection taking Standard Webhooks stock changes: stock.* → webhook-stock-change-in → stock.adjust. */
async function createWebhookConnection(hub: HubProcess): Promise<string> {
  const conn = await hub.api('POST', '/v1/connections', {
    connectorId: 'webhook',
    name: 'pos',
    config: { verification: { scheme: 'standard-webhooks' }, routes: [{ event: 'stock.*', mapping: 'webhook-stock-change-in', action: 'stock.adjust' }] },
    credentials: { secret: SECRET },
  });
  return conn.id as string;
}

// ---------------------------------------------------------------------------------------------------------------
// Signed inbound webhooks, built ahead so that the client's work per request stays tiny.

interface Signed {
  headers: Record<string, string>;
  body: string;
}

let idCounter = 0;
/** A stock change +1 of SKU-(i % 20) at LON-1, with a webhook-id no other request of this run carries. */
function signedWebhook(timestamp: string, iso: string): Signed {
  const i = idCounter++;
  const id = `msg_${RUN}_${i}`;
  const body = `{"type":"stock.changed","timestamp":"${iso}","data":{"sku":"SKU-${i % SKUS}","location":"LON-1","change":1,"reference":{"type":"bench","id":"${id}"}}}`;
  const signature = 'v1,' + createHmac('sha256', KEY).update(`${id}.${timestamp}.${body}`).digest('base64');
  return { headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': signature }, body };
}

function signedPool(size: number): Signed[] {
  // Right before use: the receivers accept timestamps within 5 minutes of their clock.
  const timestamp = String(Math.floor(Date.now() / 1000));
  const iso = new Date().toISOString();
  return Array.from({ length: size }, () => signedWebhook(timestamp, iso));
}

// The pool is signed with node:crypto directly (fast); the official library must agree with it.
{
  const sample = signedPool(1)[0]!;
  new Webhook(SECRET).verify(sample.body, sample.headers);
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Inbound accept rate.

interface InboundTarget {
  name: string;
  port: number;
  path: string;
  /** Rows stored so far (the hub's inbox, the baseline's table). */
  stored: () => number;
  /** Requests/s expected, to size the pool; updated after each run. */
  estimate: number;
  /** The server's process, whose CPU time is read (Linux). */
  pid: number | undefined;
}

interface InboundResult {
  rps: number;
  p50: number;
  p99: number;
  sent: number;
  accepted: number;
  stored: number;
  signedLate: number;
  /** The server's CPU time per request accepted, µs: steadier than requests/s on a machine whose speed drifts. */
  cpuUs: number;
}

async function measureInbound(t: InboundTarget, seconds: number): Promise<InboundResult> {
  const pool: (Signed | undefined)[] = signedPool(Math.ceil(t.estimate * seconds * 1.5) + 5_000);
  let next = 0;
  let signedLate = 0;
  let notFresh = 0;
  const timestamp = String(Math.floor(Date.now() / 1000));
  const iso = new Date().toISOString();
  const before = t.stored();
  const cpu0 = cpuMsOf(t.pid);
  const r = await autocannon({
    url: `http://127.0.0.1:${t.port}`,
    connections: CONNECTIONS,
    duration: seconds,
    requests: [
      {
        method: 'POST',
        setupRequest: (req) => {
          let item = pool[next];
          if (item) pool[next] = undefined;
          else {
            item = signedWebhook(timestamp, iso);
            signedLate++;
          }
          next++;
          req.path = t.path;
          req.headers = item.headers;
          req.body = item.body;
          return req;
        },
        onResponse: (status, body) => {
          if (status === 202 && !body.includes('"duplicate":false')) notFresh++;
        },
      },
    ],
  });
  await sleep(300); // requests in flight when the clock ran out still land
  const cpuUs = ((cpuMsOf(t.pid) - cpu0) * 1000) / r['2xx'];
  const stored = t.stored() - before;
  if (r.non2xx || r.errors) throw new Error(`${t.name}: ${r.non2xx} non-2xx answers and ${r.errors} errors: the benchmark is not measuring what it says`);
  if (notFresh) throw new Error(`${t.name}: ${notFresh} answers were not {"duplicate":false}: a webhook-id repeated`);
  // Every 2xx is a stored row, and no row without a fresh id: stored lies between the two.
  if (stored < r['2xx'] || stored > next) throw new Error(`${t.name}: ${stored} rows stored for ${r['2xx']} accepted of ${next} sent`);
  t.estimate = Math.max(t.estimate, r.requests.average);
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, sent: next, accepted: r['2xx'], stored, signedLate, cpuUs };
}

async function inbound() {
  const hub = await startHub('inbound', { HUB_WORKER_CONCURRENCY: '0', HUB_WEBHOOK_CONCURRENCY: '0' });
  const connectionId = await createWebhookConnection(hub);
  const hubDb = new Database(join(hub.dataDir, 'hub.db'));
  const bareDir = tempDir('bare');
  const bare = await startChild('the baseline server', ['bench/webhooks-server.ts', join(bareDir, 'bare.db'), SECRET], /\{"port":(\d+)\}/);
  const bareDb = new Database(join(bareDir, 'bare.db'));
  const count = (db: Database.Database, table: string) => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  const targets = {
    hub: { name: 'hub', port: Number(new URL(hub.base).port), path: `/hooks/${connectionId}`, stored: () => count(hubDb, 'inbox'), estimate: 10_000, pid: hub.child.pid },
    bare: { name: 'baseline', port: Number(bare.match[1]), path: `/hooks/${connectionId}`, stored: () => count(bareDb, 'hooks'), estimate: 10_000, pid: bare.child.pid },
  } satisfies Record<string, InboundTarget>;

  // One by hand first: the hub accepts it as new, and a resend of it as a duplicate (what every request must avoid).
  const one = signedPool(1)[0]!;
  for (const duplicate of [false, true]) {
    const res = await fetch(`${hub.base}${targets.hub.path}`, { method: 'POST', headers: one.headers, body: one.body });
    const json = (await res.json()) as { duplicate?: boolean };
    if (res.status !== 202 || json.duplicate !== duplicate) throw new Error(`the hub answered ${res.status} ${JSON.stringify(json)}`);
  }

  await measureInbound(targets.hub, 2); // warm up both (JIT, SQLite page cache)
  await measureInbound(targets.bare, 2);
  const rounds: { hub: InboundResult; bare: InboundResult }[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    // alternate, so drift in the machine's load hits both alike
    const b = await measureInbound(targets.bare, SECONDS);
    const h = await measureInbound(targets.hub, SECONDS);
    rounds.push({ hub: h, bare: b });
    console.log(
      `  inbound round ${i + 1}: baseline ${f(b.rps)} req/s (p99 ${b.p99} ms) · hub ${f(h.rps)} req/s (p99 ${h.p99} ms) · ratio ${(h.rps / b.rps).toFixed(2)}` +
        ` · CPU per request: baseline ${f(b.cpuUs)} µs, hub ${f(h.cpuUs)} µs` +
        ` · ${f(h.stored)} + ${f(b.stored)} rows stored for ${f(h.accepted)} + ${f(b.accepted)} accepted${h.signedLate + b.signedLate ? ` (${h.signedLate + b.signedLate} signed late: pool too small)` : ''}`,
    );
  }
  hubDb.close();
  bareDb.close();
  await stopChild(hub);
  await stopChild(bare);
  const best = (k: 'hub' | 'bare') => rounds.map((r) => r[k]).sort((a, b) => b.rps - a.rps)[0]!;
  return { hub: best('hub'), bare: best('bare') };
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Outbound deliveries/s.

interface ReceiverStats {
  requests: number;
  distinct: number;
  firstAt: number;
  lastNewAt: number;
}

async function startReceiver() {
  const c = await startChild('the receiver', ['bench/webhooks-receiver.ts'], /\{"port":(\d+)\}/);
  const url = `http://127.0.0.1:${c.match[1]}`;
  const get = async <T>(path: string) => (await (await fetch(url + path)).json()) as T;
  return {
    ...c,
    url: `${url}/hook`,
    stats: () => get<ReceiverStats>('/stats'),
    ids: () => get<string[]>('/ids'),
    reset: () => get<unknown>('/reset'),
  };
}
type Receiver = Awaited<ReturnType<typeof startReceiver>>;

function stockData(i: number) {
  return {
    inventoryItemId: `inv_bench${String(i).padStart(17, '0')}`,
    productId: `prd_bench${String(i % SKUS).padStart(17, '0')}`,
    sku: `SKU-${i % SKUS}`,
    locationId: 'loc_bench00000000000000001',
    onHand: i,
    reserved: 0,
    available: i,
    previous: { onHand: i - 1, reserved: 0, available: i - 1 },
  };
}

/** N signed POSTs straight to the receiver: node:http keep-alive agent, 256 in flight, no database. */
async function rawBaseline(receiver: Receiver, n: number, round: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: OUT_CONCURRENCY });
  const url = new URL(receiver.url);
  const now = new Date().toISOString();
  const post = (id: string, body: string) =>
    new Promise<number>((resolve, reject) => {
      const headers = {
        'content-type': 'application/json',
        'user-agent': 'inventory-hub-webhooks/1',
        ...standardHeaders(id, Math.floor(Date.now() / 1000), body, [KEY]),
        'content-length': String(Buffer.byteLength(body)),
      };
      const req = http.request({ hostname: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, headers }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  await receiver.reset();
  let next = 0;
  let failed = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: OUT_CONCURRENCY }, async () => {
      while (next < n) {
        const i = next++;
        // The body the hub would send for such an event (same shape, same size), built and signed per send as it is.
        const id = `evt_raw${RUN}${round}${String(i).padStart(12, '0')}`;
        const event = { id, type: 'stock.updated', time: now, subject: `inv_raw_${i}`, correlationId: null, data: stockData(i) } as unknown as EventsRow;
        const status = await post(id, webhookPayload(event));
        if (status < 200 || status >= 300) failed++;
      }
    }),
  );
  const rate = n / ((performance.now() - started) / 1000);
  agent.destroy();
  const got = await receiver.stats();
  if (failed || got.distinct !== n) throw new Error(`raw baseline: ${failed} failed, the receiver saw ${got.distinct} of ${n}`);
  return rate;
}

async function outbound(receiver: Receiver) {
  const dir = tempDir('outbound');
  const file = join(dir, 'hub.db');
  const config = testConfig({
    logLevel: 'warn',
    webhooks: { allow: ['127.0.0.1/32'], retrySchedule: [...STANDARD_SCHEDULE_MS], timeoutMs: 15_000, disableAfterMs: 5 * 86_400_000, concurrency: OUT_CONCURRENCY, attemptRetentionDays: 14 },
  });
  const encryptionKey = Buffer.alloc(32, 9);
  let setup: { workspaceId: string; endpointId: string } | undefined;

  async function hubRound(round: number): Promise<{ rate: number; seedSeconds: number }> {
    // A fresh hub each round over the same file (the dispatcher cannot be restarted once stopped).
    const store = createSqliteStore({ path: file });
    const hub = createHub({ config, store, encryptionKey });
    try {
      if (!setup) {
        const { workspace } = await createWorkspace(store, systemClock, { name: 'Bench', actor: 'bench' });
        const { endpoint } = await createEndpoint(store, { cipher: hub.deps.cipher, policy: hub.deps.webhooks.policy }, workspace.id, { url: receiver.url, eventTypes: ['stock.*'] }, new Date().toISOString());
        setup = { workspaceId: workspace.id, endpointId: endpoint.id };
      }
      const { workspaceId, endpointId } = setup;
      const seedStarted = performance.now();
      for (let i = 0; i < DELIVERIES; i += 500) {
        await store.transaction(async (tx) => {
          const now = new Date().toISOString();
          for (let j = i; j < Math.min(i + 500, DELIVERIES); j++) {
            // Distinct subjects: no delivery waits behind another (ordering is per subject).
            await appendEvent(tx, { type: 'stock.updated', workspaceId, subject: `inv_r${round}_${j}`, data: stockData(j) }, now);
          }
        });
      }
      const seedSeconds = (performance.now() - seedStarted) / 1000;
      const before = await deliveryLedger(store, workspaceId, endpointId);
      if (before.byState.pending !== DELIVERIES) throw new Error(`outbound: ${before.byState.pending} deliveries pending, expected ${DELIVERIES}`);
      await receiver.reset();

      const started = performance.now();
      hub.dispatcher.start();
      let lastProgress = started;
      let last = 0;
      for (;;) {
        const { delivered, dead, retried } = hub.dispatcher.stats();
        if (delivered >= DELIVERIES) break;
        if (dead || retried) throw new Error(`outbound: ${retried} deliveries failed and were retried, ${dead} dead: not measuring successful deliveries`);
        if (delivered > last) [last, lastProgress] = [delivered, performance.now()];
        else if (performance.now() - lastProgress > 30_000) throw new Error(`outbound: stuck at ${delivered} of ${DELIVERIES} delivered`);
        await sleep(2);
      }
      const rate = DELIVERIES / ((performance.now() - started) / 1000);
      await hub.dispatcher.stop();
      const ledger = await deliveryLedger(store, workspaceId, endpointId);
      const got = await receiver.stats();
      if (ledger.pending || ledger.dead || ledger.delivered !== ledger.published || got.distinct !== DELIVERIES) {
        throw new Error(`outbound: deliveries missing: ledger ${JSON.stringify(ledger)}, the receiver saw ${got.distinct} of ${DELIVERIES} ids`);
      }
      return { rate, seedSeconds };
    } finally {
      await hub.close(5000);
    }
  }

  // Alternate, as above, and keep each side's best round (the first round also warms up the JIT for both).
  const rounds: { hub: number; raw: number; seedSeconds: number }[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const raw = await rawBaseline(receiver, DELIVERIES, round);
    const { rate: hub, seedSeconds } = await hubRound(round);
    rounds.push({ hub, raw, seedSeconds });
    console.log(`  outbound round ${round + 1}: raw HTTP ${f(raw)}/s · hub ${f(hub)} deliveries/s · ratio ${(hub / raw).toFixed(2)} (seeding ${f(DELIVERIES)} events took ${seedSeconds.toFixed(1)} s)`);
  }
  return { hub: Math.max(...rounds.map((r) => r.hub)), raw: Math.max(...rounds.map((r) => r.raw)) };
}

// ---------------------------------------------------------------------------------------------------------------
// 3. End to end.

interface Burst {
  /** Events delivered (distinct webhook-ids the receiver got) during the burst. */
  events: number;
  seconds: number;
  acceptSeconds: number;
  drainSeconds: number;
  /** Requests the receiver got during the burst: more than events when some were resent. */
  requests: number;
  senderCpuMs: number;
  /** CPU of the process under test: the hub, or the baseline relay. */
  hubCpuMs: number;
  receiverCpuMs: number;
  /** The hub's write lock: the share of the burst each thread held it (hub_sqlite_write_lock_held_seconds_total). */
  lockHeld?: Record<string, number>;
  /** Transactions run ahead of the lock during the burst: replayed as they ran, or rerun under it (hub_sqlite_run_ahead_total). */
  ranAhead?: { replayed: number; rerun: number };
}

interface BurstTarget {
  label: string;
  /** Where the webhooks go. */
  url: string;
  pid: number | undefined;
  /** Once the receiver has every event: whether the target has nothing left to do (it throws when something failed). */
  done: () => Promise<boolean>;
  /** Seconds each thread has held the write lock so far, and transactions run ahead of it (the hub's /metrics). */
  lockSeconds?: () => Promise<{ held: Record<string, number>; replayed: number; rerun: number }>;
}

/**
 * Sends the pool to the target, 50 at a time over node:http keep-alive, and waits until everything it caused is
 * delivered. The sender shares the machine with the hub: node:http on a keep-alive agent costs it a fraction of what
 * fetch does (fetch took 0.85 ms of CPU per webhook here, 60% of a core, which the hub then lacked).
 */
async function burst(receiver: Receiver, target: BurstTarget, pool: Signed[], label: string): Promise<Burst> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: E2E_CONCURRENCY });
  const url = new URL(target.url);
  const post = ({ headers, body }: Signed) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request({ hostname: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  const before = await receiver.stats();
  const lock0 = await target.lockSeconds?.();
  let next = 0;
  let failed = 0;
  let duplicates = 0;
  const cpu0 = process.cpuUsage();
  const hubCpu0 = cpuMsOf(target.pid);
  const receiverCpu0 = cpuMsOf(receiver.child.pid);
  const t0 = epochNow();
  await Promise.all(
    Array.from({ length: E2E_CONCURRENCY }, async () => {
      while (next < pool.length) {
        const res = await post(pool[next++]!);
        if (res.status !== 202) failed++;
        else if (!res.text.includes('"duplicate":false')) duplicates++;
      }
    }),
  );
  const t1 = epochNow();
  const cpu = process.cpuUsage(cpu0);
  agent.destroy();
  if (failed || duplicates) throw new Error(`end to end (${target.label}, ${label}): ${failed} webhooks refused, ${duplicates} taken as duplicates`);

  // Settled: the receiver has every delivery, and the target nothing left to do. The receiver is polled (a separate
  // process); the target only once deliveries have stopped arriving, because the hub's ledger and inbox queries cost
  // it milliseconds each, and the end of the run is the receiver's own clock anyway.
  const deadline = Date.now() + 120_000;
  let got: ReceiverStats;
  for (;;) {
    got = await receiver.stats();
    const quiet = epochNow() - Math.max(got.lastNewAt, t1) > 300;
    const late = Date.now() > deadline;
    if ((got.distinct - before.distinct >= pool.length && quiet) || late) {
      if (await target.done()) break;
      if (late) throw new Error(`end to end (${target.label}, ${label}): not settled after 120 s: receiver ${JSON.stringify(got)}`);
    }
    await sleep(50);
  }
  // Read before anything else, which costs the target and the receiver CPU of their own.
  const hubCpuMs = cpuMsOf(target.pid) - hubCpu0;
  const receiverCpuMs = cpuMsOf(receiver.child.pid) - receiverCpu0;
  const end = got.lastNewAt;
  const lock1 = await target.lockSeconds?.();
  const lockHeld = lock0 && lock1 ? Object.fromEntries(Object.entries(lock1.held).map(([thread, s]) => [thread, (s - (lock0.held[thread] ?? 0)) / ((end - t0) / 1000)])) : undefined;
  const ranAhead = lock0 && lock1 ? { replayed: lock1.replayed - lock0.replayed, rerun: lock1.rerun - lock0.rerun } : undefined;
  return {
    lockHeld,
    ranAhead,
    events: got.distinct - before.distinct,
    seconds: (end - t0) / 1000,
    acceptSeconds: (t1 - t0) / 1000,
    drainSeconds: (end - t1) / 1000,
    requests: got.requests - before.requests,
    senderCpuMs: (cpu.user + cpu.system) / 1000,
    hubCpuMs,
    receiverCpuMs,
  };
}

/** The end-to-end baseline: the relay (bench/webhooks-server.ts given the receiver), warmed up by a first burst. */
async function startRelay(receiver: Receiver): Promise<{ measure: () => Promise<Burst>; stop: () => Promise<void> }> {
  const dir = tempDir('relay');
  const relay = await startChild('the baseline relay', ['bench/webhooks-server.ts', join(dir, 'relay.db'), SECRET, receiver.url], /\{"port":(\d+)\}/);
  const base = `http://127.0.0.1:${relay.match[1]}`;
  const target: BurstTarget = {
    label: 'baseline relay',
    url: `${base}/hooks/relay`,
    pid: relay.child.pid,
    done: async () => {
      const { failed } = (await (await fetch(`${base}/relay-stats`)).json()) as { failed: number };
      if (failed) throw new Error(`end to end (baseline relay): ${failed} relayed webhooks failed`);
      return true;
    },
  };
  await burst(receiver, target, signedPool(WARMUP), 'first');
  return { measure: () => burst(receiver, target, signedPool(WEBHOOKS), 'measured'), stop: () => stopChild(relay) };
}

async function endToEnd(receiver: Receiver): Promise<{ cold: Burst; warm: Burst }> {
  const hub = await startHub('e2e', { HUB_WEBHOOK_ALLOW: '127.0.0.1/32' });
  await hub.api('POST', '/v1/locations', { code: 'LON-1', name: 'London' });
  for (let i = 0; i < SKUS; i++) await hub.api('POST', '/v1/products', { sku: `SKU-${i}`, name: `Product ${i}` });
  await hub.api('POST', '/v1/webhooks/endpoints', { url: receiver.url, eventTypes: ['stock.*'] });
  const connectionId = await createWebhookConnection(hub);
  await receiver.reset();
  const target: BurstTarget = {
    label: 'hub',
    url: `${hub.base}/hooks/${connectionId}`,
    pid: hub.child.pid,
    // Nothing left in the inbox to apply, nothing left to deliver, and the receiver has every delivery.
    done: async () => {
      const waiting = await hub.api('GET', '/v1/inbox?status=received&limit=1');
      const ledger = (await hub.api('GET', '/v1/webhooks/stats')) as { published: number; delivered: number; pending: number; dead: number };
      const got = await receiver.stats();
      if (ledger.dead) throw new Error(`end to end (hub): ${ledger.dead} deliveries dead`);
      return waiting.data.length === 0 && ledger.pending === 0 && got.distinct === ledger.delivered;
    },
    lockSeconds: async () => {
      const text = await (await fetch(`${hub.base}/metrics`)).text();
      const held: Record<string, number> = {};
      for (const m of text.matchAll(/^hub_sqlite_write_lock_held_seconds_total\{thread="(\w+)"\} (\S+)$/gm)) held[m[1]!] = Number(m[2]);
      const ahead = { replayed: 0, rerun: 0 };
      for (const m of text.matchAll(/^hub_sqlite_run_ahead_total\{outcome="(replayed|rerun)",thread="\w+"\} (\S+)$/gm)) ahead[m[1] as 'replayed' | 'rerun'] += Number(m[2]);
      return { held, ...ahead };
    },
  };

  // First a burst into the hub as it started (its code not yet optimized by the JIT, its caches empty), then the
  // measured one into the same hub, warmed up.
  const cold = await burst(receiver, target, signedPool(WARMUP), 'cold');
  const warm = await burst(receiver, target, signedPool(WEBHOOKS), 'warm');

  // What had to arrive, over both bursts: every stock event the hub wrote.
  const events: { id: string }[] = [];
  for (let after = ''; ; ) {
    const page = await hub.api('GET', `/v1/events?type=stock.*&limit=1000${after ? `&after=${after}` : ''}`);
    events.push(...page.data);
    if (!page.hasMore) break;
    after = page.nextCursor;
  }
  const ledger = (await hub.api('GET', '/v1/webhooks/stats')) as { published: number };
  const received = new Set(await receiver.ids());
  const missing = events.filter((e) => !received.has(e.id)).length;
  const failedInbox = await hub.api('GET', '/v1/inbox?status=failed&limit=5');
  let onHand = 0;
  for (let after = ''; ; ) {
    const page = await hub.api('GET', `/v1/stock-levels?limit=200${after ? `&cursor=${after}` : ''}`);
    onHand += (page.data as { onHand: number }[]).reduce((s, l) => s + l.onHand, 0);
    if (!page.nextCursor) break;
    after = page.nextCursor;
  }
  const sent = WARMUP + WEBHOOKS;
  if (missing || events.length !== ledger.published || events.length < sent || failedInbox.data.length || onHand !== sent) {
    throw new Error(
      `end to end: ${missing} of ${events.length} stock events not received, ledger ${JSON.stringify(ledger)}, ` +
        `${failedInbox.data.length} inbox rows failed, ${onHand} units on hand for ${sent} webhooks of +1`,
    );
  }
  await stopChild(hub);
  return { cold, warm };
}

// ---------------------------------------------------------------------------------------------------------------

const rate = (b: Burst) => b.events / b.seconds;

/**
 * The relay and the hub in alternating rounds (BENCH_E2E_ROUNDS, 2), so that drift in the machine's speed hits both
 * alike; the best round of each is kept, the hub's by its warmed burst.
 */
async function endToEndRounds(receiver: Receiver): Promise<{ hub: { cold: Burst; warm: Burst }; relay: Burst }> {
  const relay = await startRelay(receiver);
  const rounds: { hub: { cold: Burst; warm: Burst }; relay: Burst }[] = [];
  try {
    for (let round = 0; round < E2E_ROUNDS; round++) {
      const r = { relay: await relay.measure(), hub: await endToEnd(receiver) };
      rounds.push(r);
      console.log(
        `  end to end round ${round + 1}: baseline relay ${f(rate(r.relay))} events/s · hub ${f(rate(r.hub.warm))} events/s warmed up ` +
          `(${f(rate(r.hub.cold))} cold) · ratio ${(rate(r.hub.warm) / rate(r.relay)).toFixed(2)} · the warmed burst: accepting ${r.hub.warm.acceptSeconds.toFixed(2)} s, ` +
          `draining after ${r.hub.warm.drainSeconds.toFixed(2)} s, ${f((r.hub.warm.hubCpuMs * 1000) / r.hub.warm.events)} µs of CPU per event` +
          (r.hub.warm.ranAhead ? `, ${f(r.hub.warm.ranAhead.replayed)} transactions run ahead of the lock, ${f(r.hub.warm.ranAhead.rerun)} rerun under it` : ''),
      );
    }
  } finally {
    await relay.stop();
  }
  return {
    hub: rounds.map((r) => r.hub).sort((a, b) => rate(b.warm) - rate(a.warm))[0]!,
    relay: rounds.map((r) => r.relay).sort((a, b) => rate(b) - rate(a))[0]!,
  };
}

async function main() {
  console.log(`bench/webhooks  inbound: ${CONNECTIONS} connections, ${ROUNDS} rounds of ${SECONDS} s · outbound: ${f(DELIVERIES)} deliveries × ${ROUNDS} rounds · end to end: ${f(WARMUP)} + ${f(WEBHOOKS)} webhooks`);
  const inb = ONLY.has('inbound') ? await inbound() : null;
  const receiver = ONLY.has('outbound') || ONLY.has('e2e') ? await startReceiver() : null;
  const out = receiver && ONLY.has('outbound') ? await outbound(receiver) : null;
  const e2e = receiver && ONLY.has('e2e') ? await endToEndRounds(receiver) : null;
  if (receiver) await stopChild(receiver);

  const met = (ok: boolean) => (ok ? 'met' : 'NOT met');
  console.log('\nsummary (best round of each):');
  if (inb) {
    const ratio = inb.hub.rps / inb.bare.rps;
    console.log(
      `inbound accept: hub ${f(inb.hub.rps)} req/s p99 ${inb.hub.p99} ms (${f(inb.hub.cpuUs)} µs of CPU per request); ` +
        `baseline ${f(inb.bare.rps)} req/s p99 ${inb.bare.p99} ms (${f(inb.bare.cpuUs)} µs); ratio ${ratio.toFixed(2)} ` +
        `(target ≥ 0.6: ${met(ratio >= 0.6)}; p99 ≤ 20 ms: ${met(inb.hub.p99 <= 20)})`,
    );
  }
  if (out) console.log(`outbound: ${f(out.hub)} deliveries/s (baseline raw HTTP ${f(out.raw)}/s, ratio ${(out.hub / out.raw).toFixed(2)}) (target ≥ 5,000/s: ${met(out.hub >= 5000)})`);
  if (e2e) {
    const { hub, relay } = e2e;
    const line = (b: Burst, sent: number, what = 'the hub') =>
      `${f(sent)} webhooks → ${f(b.events)} events delivered in ${b.seconds.toFixed(2)} s: ${f(b.events / b.seconds)} events/s; ` +
      `accepting took ${b.acceptSeconds.toFixed(2)} s (${f(sent / b.acceptSeconds)} webhooks/s), draining after the last accept ${b.drainSeconds.toFixed(2)} s` +
      `; CPU used: ${what} ${f(b.hubCpuMs)} ms (${f((b.hubCpuMs * 1000) / b.events)} µs per event), the sender ${f(b.senderCpuMs)} ms, the receiver ${f(b.receiverCpuMs)} ms` +
      (b.requests !== b.events ? `; ${b.requests - b.events} deliveries were resends` : '') +
      (b.lockHeld ? `; the write lock held ${Object.entries(b.lockHeld).map(([t, share]) => `${Math.round(share * 100)}% by the ${t} thread`).join(', ')}` : '') +
      (b.ranAhead ? `; transactions run ahead of it ${f(b.ranAhead.replayed)}, rerun under it ${f(b.ranAhead.rerun)}` : '');
    const eps = rate(hub.warm);
    console.log(`end to end, warmed up: ${line(hub.warm, WEBHOOKS)}; ratio to the baseline relay ${(eps / rate(relay)).toFixed(2)} (target ≥ 2,000/s: ${met(eps >= 2000)})`);
    console.log(`end to end, the baseline relay (warmed up, same bursts): ${line(relay, WEBHOOKS, 'the relay')}`);
    console.log(`end to end, the first burst after the hub started (cold, for comparison): ${line(hub.cold, WARMUP)}`);
  }
}

try {
  await main();
} finally {
  cleanupNow();
}
