// bench/inventory: reservations per second, one hot SKU and spread over 10,000 SKUs, through the library (one
// order per call from 16 concurrent callers, and batches of 100 orders per call) and through HTTP (POST
// /v1/allocations and /v1/allocations/batch from autocannon against a hub process), against a baseline of
// single-row SQLite updates on the same kind of file in the same run. Checks that nothing is oversold.
// Target (issue 4): ≥ 5,000 reservations/s on one hot SKU through the library, zero oversell.
// BENCH_ORDERS sets the orders per round (default 10,000).
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWorkspace } from '../src/bootstrap.ts';
import { isHubError } from '../src/errors.ts';
import { inTransaction } from '../src/inventory/context.ts';
import { receiveStock } from '../src/inventory/movements.ts';
import { importOrder, reserveOrder, reserveOrders } from '../src/inventory/orders.ts';
import { createProduct } from '../src/inventory/products.ts';
import { systemClock } from '../src/lib/clock.ts';
import { createSqliteStore } from '../src/store/sqlite.ts';

const ORDERS = Number(process.env.BENCH_ORDERS ?? 10_000);
const SKUS = 10_000;
const CONCURRENCY = 16;
const root = join(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'hub-bench-inv-'));
const file = join(dir, 'hub.db');

function baseline(n: number): number {
  const db = new Database(join(dir, 'baseline.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE levels (id TEXT PRIMARY KEY, on_hand INTEGER NOT NULL, reserved INTEGER NOT NULL) STRICT');
  db.prepare('INSERT INTO levels VALUES (?, ?, 0)').run('hot', n);
  const update = db.prepare('UPDATE levels SET reserved = reserved + 1 WHERE id = ? AND on_hand - reserved >= 1');
  const started = performance.now();
  for (let i = 0; i < n; i++) update.run('hot');
  const rate = n / ((performance.now() - started) / 1000);
  db.close();
  return rate;
}

let store = createSqliteStore({ path: file });
const { workspace, secret } = await createWorkspace(store, systemClock, { name: 'Bench', actor: 'bench' });
const base = () => ({ workspaceId: workspace.id, now: new Date().toISOString(), correlationId: null });
const run = <R>(fn: Parameters<typeof inTransaction<R>>[2]) => inTransaction(store, base(), fn);

const location = await store.table('locations').insert({ workspaceId: workspace.id, code: 'WH', name: 'Warehouse', type: 'warehouse', address: null, priority: 1, active: true });

console.log(`setting up: 2 hot SKUs, ${SKUS} spread SKUs, ${6 * ORDERS} orders…`);
const hotStock = Math.floor(ORDERS * 0.9);
await run((ctx) => createProduct(ctx, { sku: 'HOT', name: 'Hot' }));
await run((ctx) => createProduct(ctx, { sku: 'HOT-HTTP', name: 'Hot (HTTP)' }));
await run((ctx) => createProduct(ctx, { sku: 'HOT-BATCH', name: 'Hot (batches)' }));
await run((ctx) => receiveStock(ctx, { locationId: location.id, lines: [{ sku: 'HOT', quantity: hotStock, unitCost: '1' }, { sku: 'HOT-HTTP', quantity: hotStock, unitCost: '1' }, { sku: 'HOT-BATCH', quantity: hotStock, unitCost: '1' }] }));
for (let i = 0; i < SKUS; i += 100) {
  await run(async (ctx) => {
    for (let j = i; j < i + 100; j++) await createProduct(ctx, { sku: `S${j}`, name: `Spread ${j}` });
  });
  await run((ctx) => receiveStock(ctx, { locationId: location.id, lines: Array.from({ length: 100 }, (_, k) => ({ sku: `S${i + k}`, quantity: 10, unitCost: '2.5' })) }));
}

async function makeOrders(tag: string, skuOf: (i: number) => string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < ORDERS; i += 200) {
    await run(async (ctx) => {
      for (let j = i; j < Math.min(i + 200, ORDERS); j++) {
        ids.push((await importOrder(ctx, { channel: 'bench', externalId: `${tag}-${j}`, reserve: false, lines: [{ sku: skuOf(j), quantity: 1 }] }, 'USD')).order.id);
      }
    });
  }
  return ids;
}
const spreadSku = (i: number) => `S${(i * 7919) % SKUS}`;
const hotOrders = await makeOrders('hot', () => 'HOT');
const spreadOrders = await makeOrders('spread', spreadSku);
const hotHttpOrders = await makeOrders('hot-http', () => 'HOT-HTTP');
const spreadHttpOrders = await makeOrders('spread-http', spreadSku);
const hotBatchOrders = await makeOrders('hot-batch', () => 'HOT-BATCH');
const spreadBatchOrders = await makeOrders('spread-batch', spreadSku);

async function library(ids: string[]) {
  let ok = 0;
  let refused = 0;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < ids.length) {
        const id = ids[next++]!;
        try {
          await reserveOrder(store, base(), id);
          ok++;
        } catch (err) {
          if (!isHubError(err, 'insufficient_stock')) throw err;
          refused++;
        }
      }
    }),
  );
  return { rate: ids.length / ((performance.now() - started) / 1000), ok, refused };
}

async function batched(ids: string[], size = 100) {
  let ok = 0;
  let refused = 0;
  const started = performance.now();
  for (let i = 0; i < ids.length; i += size) {
    for (const r of await reserveOrders(store, base(), ids.slice(i, i + size))) {
      if (r.status === 'reserved') ok++;
      else if (r.status === 'insufficient_stock') refused++;
      else throw new Error(`unexpected ${r.status}`);
    }
  }
  return { rate: ids.length / ((performance.now() - started) / 1000), ok, refused };
}

async function oversold(sku: string): Promise<number> {
  const item = (await store.table('inventory_items').query({ where: { workspaceId: workspace.id, sku } })).items[0]!;
  return Math.max(item.reserved - item.onHand, 0);
}

const base1 = baseline(ORDERS * 5);
const hot = await library(hotOrders);
const spread = await library(spreadOrders);
const hotBatch = await batched(hotBatchOrders);
const spreadBatch = await batched(spreadBatchOrders);
const hotOversold = (await oversold('HOT')) + (await oversold('HOT-BATCH'));
await store.close();

// HTTP: a hub process over the same file; autocannon posts one allocation per prepared order.
const child = spawn(process.execPath, [...(process.env.BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/srvprof'] : []), '--import', 'tsx', 'bench/inventory-server.ts', file], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise<number>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve((JSON.parse(d.toString().split('\n')[0]!) as { port: number }).port)));
// fetch (undici: keep-alive, Nagle off) from 32 concurrent callers; autocannon writes a POST's headers and body
// in separate segments and stalls on delayed ACKs, which measures the client, not the hub.
async function http(path: string, bodies: string[]) {
  let next = 0;
  let created = 0;
  let refused = 0;
  const latencies: number[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++]!;
        const t0 = performance.now();
        const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' }, body });
        const json = (await res.json()) as { results?: { status: string }[] };
        latencies.push(performance.now() - t0);
        if (res.status === 201) created++;
        else if (res.status === 409) refused++;
        else if (res.status === 200 && json.results) {
          for (const r of json.results) r.status === 'reserved' ? created++ : refused++;
        } else throw new Error(`HTTP ${res.status}`);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { rate: (created + refused) / seconds, p99: Math.round(latencies[Math.floor(latencies.length * 0.99)]! * 10) / 10, created, refused };
}
const keyId = ((await (await fetch(`http://127.0.0.1:${port}/v1/api-keys`, { headers: { authorization: `Bearer ${secret}` } })).json()) as { data: { id: string }[] }).data[0]!.id;
await fetch(`http://127.0.0.1:${port}/v1/api-keys/${keyId}`, { method: 'PATCH', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' }, body: JSON.stringify({ rateLimitPerMinute: 1_000_000 }) });
const hotHttp = await http('/v1/allocations', hotHttpOrders.map((orderId) => JSON.stringify({ orderId })));
const spreadHttp = await http('/v1/allocations', spreadHttpOrders.map((orderId) => JSON.stringify({ orderId })));
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
store = createSqliteStore({ path: file });
const httpOversold = await oversold('HOT-HTTP');
await store.close();
rmSync(dir, { recursive: true, force: true });

const f = (n: number) => Math.round(n).toLocaleString('en-US');
const x = (n: number) => `${(n / base1).toFixed(3)}×`;
console.log(`\nbaseline: single-row SQLite update (WAL, synchronous=NORMAL): ${f(base1)}/s`);
console.log(`library, hot SKU:    ${f(hot.rate)} reservations/s (${x(hot.rate)} baseline); ${hot.ok} reserved, ${hot.refused} refused for lack of stock (stock ${hotStock}); oversold: ${hotOversold}`);
console.log(`library, 10k SKUs:   ${f(spread.rate)} reservations/s (${x(spread.rate)} baseline); ${spread.ok} reserved, ${spread.refused} refused`);
console.log(`library, hot SKU, batches of 100:   ${f(hotBatch.rate)} reservations/s (${x(hotBatch.rate)} baseline); ${hotBatch.ok} reserved, ${hotBatch.refused} refused`);
console.log(`library, 10k SKUs, batches of 100:  ${f(spreadBatch.rate)} reservations/s (${x(spreadBatch.rate)} baseline); ${spreadBatch.ok} reserved, ${spreadBatch.refused} refused`);
console.log(`HTTP, hot SKU:       ${f(hotHttp.rate)} reservations/s (${x(hotHttp.rate)} baseline), p99 ${hotHttp.p99} ms; ${hotHttp.created} reserved, ${hotHttp.refused} refused (409); oversold: ${httpOversold}`);
console.log(`HTTP, 10k SKUs:      ${f(spreadHttp.rate)} reservations/s (${x(spreadHttp.rate)} baseline), p99 ${spreadHttp.p99} ms; ${spreadHttp.created} reserved, ${spreadHttp.refused} refused`);
const ok = (r: number) => (r >= 5000 ? 'met' : 'NOT met');
console.log(`target ≥ 5,000/s on the hot SKU through the library: one order per call ${ok(hot.rate)}, batches ${ok(hotBatch.rate)}; oversold: ${hotOversold + httpOversold === 0 ? 'none' : 'SOME'}`);
