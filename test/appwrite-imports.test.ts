// File imports on Appwrite, whose transactions hold a bounded number of operations (100 on the Free plan): a batch
// that writes more goes in halves, later batches stay that small, and a record that alone writes too much fails
// with that reason. Runs the library hub on the TablesDB test server, which refuses a transaction's 101st operation.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkspace } from '../src/bootstrap.ts';
import { testConfig } from '../src/config.ts';
import { createHub } from '../src/hub.ts';
import { systemClock } from '../src/lib/clock.ts';
import { createAppwriteStore } from '../src/store/appwrite.ts';
import { startTablesDbServer, type TablesDbServer } from './appwrite/tablesdb-server.ts';

let server: TablesDbServer;
const dirs: string[] = [];
let hubs = 0;

beforeAll(async () => {
  server = await startTablesDbServer();
  await createAppwriteStore({ endpoint: server.url, projectId: server.projectId, apiKey: server.apiKey }).provision();
}, 60_000);

afterAll(async () => {
  await server?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A hub over the test server, its store bounded at `writes` operations per transaction, with a workspace of its own. */
async function appwriteHub(writes?: number) {
  const store = createAppwriteStore({ endpoint: server.url, projectId: server.projectId, apiKey: server.apiKey, writesPerTransaction: writes });
  const dir = mkdtempSync(join(tmpdir(), 'hub-aw-imports-'));
  dirs.push(dir);
  const defaults = testConfig();
  const config = testConfig({ publicUrl: 'http://hub.test', files: { ...defaults.files, dir, spoolDir: join(dir, 'spool') }, webhooks: { ...defaults.webhooks, allow: ['127.0.0.1/32'] } });
  const hub = createHub({ config, store, encryptionKey: Buffer.alloc(32, 7), clock: systemClock });
  const boot = await createWorkspace(store, systemClock, { name: `Imports ${++hubs}`, actor: 'test' });
  const call = async (method: string, path: string, body?: string, type = 'application/json') => {
    const res = await hub.app.request(path, { method, headers: { authorization: `Bearer ${boot.secret}`, 'content-type': type }, body });
    return { status: res.status, json: (await res.json()) as any };
  };
  return { hub, call, workspaceId: boot.workspace.id };
}

/** Uploads a file for import and runs the worker until its job is done; answers the file run. */
async function importFile(t: Awaited<ReturnType<typeof appwriteHub>>, query: string, body: string): Promise<any> {
  const up = await t.call('POST', `/v1/imports?${query}`, body, 'text/csv');
  expect(up.status, JSON.stringify(up.json)).toBe(202);
  t.hub.worker.start(); // once per hub: it runs until the hub closes
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; ) {
    const run = (await t.call('GET', `/v1/file-runs/${up.json.runId}`)).json;
    if (run.finishedAt) {
      expect(t.hub.worker.stats()).toMatchObject({ retried: 0, dead: 0 });
      return run;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the import did not finish');
}

async function stockFixture(t: Awaited<ReturnType<typeof appwriteHub>>, products: number) {
  expect((await t.call('POST', '/v1/locations', JSON.stringify({ code: 'L1', name: 'Shelf' }))).status).toBe(201);
  const skus = Array.from({ length: products }, (_, i) => `AW-${i}`);
  for (const sku of skus) expect((await t.call('POST', '/v1/products', JSON.stringify({ sku, name: sku }))).status).toBe(201);
  return skus;
}

describe('a transaction on Appwrite', () => {
  it('refuses the write past the bound with transaction_too_large, and keeps nothing of the transaction', async () => {
    const store = createAppwriteStore({ endpoint: server.url, projectId: server.projectId, apiKey: server.apiKey, writesPerTransaction: 10 });
    const { workspace } = await createWorkspace(store, systemClock, { name: `Bound ${++hubs}`, actor: 'test' });
    const location = (n: number) => ({ workspaceId: workspace.id, code: `B-${n}`, name: `Bin ${n}`, type: 'warehouse' as const, address: null, priority: 0, active: true });
    const err = await store
      .transaction(async (tx) => {
        for (let n = 0; n < 11; n++) await tx.table('locations').insert(location(n));
      })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'transaction_too_large' });
    expect((err as Error).message).toContain('HUB_APPWRITE_TRANSACTION_WRITES');
    expect(await store.table('locations').count({ workspaceId: workspace.id })).toBe(0);
    // Ten go.
    await store.transaction(async (tx) => {
      for (let n = 0; n < 10; n++) await tx.table('locations').insert(location(n));
    });
    expect(await store.table('locations').count({ workspaceId: workspace.id })).toBe(10);
  });
});

describe('file imports on Appwrite', () => {
  it('applies a count of 60 rows with an endpoint subscribed, in batches that fit a transaction', async () => {
    const t = await appwriteHub();
    try {
      const skus = await stockFixture(t, 60);
      const endpoint = await t.call('POST', '/v1/webhooks/endpoints', JSON.stringify({ url: 'http://127.0.0.1:9/hook', eventTypes: ['stock.*'] }));
      expect(endpoint.status).toBe(201);
      const csv = 'SKU,Location,On Hand\n' + skus.map((sku, i) => `${sku},L1,${i + 1}`).join('\n') + '\n';
      const run = await importFile(t, 'action=stock.count&mapping=csv-stock-count-in&policy=keep-good&fileName=count.csv', csv);
      expect(run).toMatchObject({ state: 'succeeded', rowsRead: 60, rowsApplied: 60, rowsFailed: 0, cursor: 60 });
      let onHand = 0;
      for (let cursor = ''; ; ) {
        const page = (await t.call('GET', `/v1/stock-levels?limit=100${cursor ? `&cursor=${cursor}` : ''}`)).json;
        onHand += page.data.reduce((s: number, l: { onHand: number }) => s + l.onHand, 0);
        if (!page.nextCursor) break;
        cursor = page.nextCursor;
      }
      expect(onHand).toBe((60 * 61) / 2);
      // Every stock event has its delivery: the fan-out went in the same transactions.
      const stats = (await t.call('GET', '/v1/webhooks/stats')).json;
      expect(stats.published).toBeGreaterThanOrEqual(60);
      expect(stats.pending).toBe(stats.published);
    } finally {
      await t.hub.close(1000);
    }
  }, 120_000);

  it('checks a reject-all file in halves, and rejects it whole for one bad row', async () => {
    const t = await appwriteHub();
    try {
      const skus = await stockFixture(t, 80);
      const rows = skus.map((sku, i) => `${i === 70 ? 'NOPE' : sku},L1,${i + 1}`);
      const run = await importFile(t, 'action=stock.count&mapping=csv-stock-count-in&policy=reject-all&fileName=count.csv', 'SKU,Location,On Hand\n' + rows.join('\n') + '\n');
      expect(run).toMatchObject({ state: 'rejected', rowsApplied: 0, rowsFailed: 1 });
      const errors = (await t.call('GET', `/v1/file-runs/${run.id}/errors`)).json.data;
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ row: 72 });
      expect(errors[0].code).not.toBe('transaction_too_large');
      const levels = (await t.call('GET', '/v1/stock-levels?limit=100')).json.data;
      expect(levels.filter((l: { onHand: number }) => l.onHand !== 0)).toEqual([]);
    } finally {
      await t.hub.close(1000);
    }
  }, 120_000);

  it('fails an order too large for one transaction with that reason, and applies the others (a bound of 30 operations)', async () => {
    const t = await appwriteHub(30);
    try {
      const skus = await stockFixture(t, 20);
      // In stock, so that each line of an order is allocated: a reservation written for each.
      const count = await importFile(t, 'action=stock.count&mapping=csv-stock-count-in&policy=keep-good&fileName=count.csv', 'SKU,Location,On Hand\n' + skus.map((sku) => `${sku},L1,10`).join('\n') + '\n');
      expect(count).toMatchObject({ state: 'succeeded', rowsApplied: 20 });
      const line = (order: string, n: number, sku: string) => `${order},shop,${n},${sku},1,1.00,USD,11/20/2026 09:15,,,,Paid`;
      const rows = [line('2001', 1, skus[0]!), ...skus.map((sku, i) => line('2002', i + 1, sku)), line('2003', 1, skus[1]!)];
      const csv = 'Order Number,Channel,Line,SKU,Qty,Unit Price,Currency,Order Date,Customer Email,First Name,Last Name,Status\n' + rows.join('\n') + '\n';
      const run = await importFile(t, 'action=order.lines&mapping=csv-order-line-in&policy=keep-good&fileName=orders.csv', csv);
      expect(run).toMatchObject({ state: 'partial', rowsRead: 22, rowsApplied: 2, rowsFailed: 20 });
      const errors = (await t.call('GET', `/v1/file-runs/${run.id}/errors`)).json.data;
      expect(errors.map((e: { code: string }) => e.code)).toContain('transaction_too_large');
      const orders = (await t.call('GET', '/v1/orders?limit=10')).json.data.map((o: { externalId: string }) => o.externalId).sort();
      expect(orders).toEqual(['2001', '2003']);
    } finally {
      await t.hub.close(1000);
    }
  }, 300_000);
});
