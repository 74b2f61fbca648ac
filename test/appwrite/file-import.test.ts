// The import pipeline on the Appwrite store (through node-appwrite, against the spec-checking TablesDB server):
// batches in Appwrite transactions, with their cursor, failed rows and the checksum marker.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importStaged, type ImportPlan } from '../../src/files/import.ts';
import { stageFile } from '../../src/files/stage.ts';
import { loadFileMappings } from '../../src/mappings/files.ts';
import { compiledMappingFor } from '../../src/mappings/repository.ts';
import { createAppwriteStore } from '../../src/store/appwrite.ts';
import { createInventoryFixture, type InventoryFixture } from '../inventory-fixture.ts';
import { startTablesDbServer, type TablesDbServer } from './tablesdb-server.ts';

let server: TablesDbServer;
let f: InventoryFixture;
let dir: string;

beforeAll(async () => {
  server = await startTablesDbServer();
  const store = createAppwriteStore({ endpoint: server.url, projectId: server.projectId, apiKey: server.apiKey, sleep: (ms) => new Promise((r) => setTimeout(r, ms)) });
  await store.provision();
  f = await createInventoryFixture(store);
  await f.location('LON-1');
  for (const sku of ['A', 'B', 'C']) await f.product(sku);
  dir = mkdtempSync(join(tmpdir(), 'hub-aw-import-'));
});
afterAll(async () => {
  await f.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function importText(text: string, plan: Omit<ImportPlan, 'mapping'> & { mapping: string }) {
  const staged = await stageFile(Readable.from([Buffer.from(text)]), join(dir, `${Date.now()}-${Math.random()}.spool`));
  const mapping = await compiledMappingFor(f.store, f.workspaceId, plan.mapping, loadFileMappings());
  const run = await f.store.table('file_runs').insert({ workspaceId: f.workspaceId, exchangeId: null, scheduleId: null, jobId: null, direction: 'import', trigger: 'manual', state: 'running', spec: {}, fileName: 'f.csv', rowsRead: 0, rowsApplied: 0, rowsSkipped: 0, rowsFailed: 0, cursor: 0, startedAt: new Date(f.clock.now()).toISOString() });
  return importStaged({ store: f.store, clock: f.clock, currency: 'EUR', batchSize: 2 }, run, { ...plan, mapping }, staged);
}

describe('file imports on Appwrite', () => {
  it('applies good rows in batches, reports the bad one, and takes the same file once', async () => {
    const text = 'SKU,Location,On Hand\nA,LON-1,4\nNOPE,LON-1,1\nB,LON-1,6\nC,LON-1,2\n';
    const plan = { file: { format: 'csv' as const }, mapping: 'csv-stock-count-in', action: 'stock.count' as const, policy: 'keep-good' as const, scope: 'aw' };
    const run = await importText(text, plan);
    expect(run).toMatchObject({ state: 'partial', rowsRead: 4, rowsApplied: 3, rowsFailed: 1, cursor: 4 });
    const items = (await f.store.table('inventory_items').query({ where: { workspaceId: f.workspaceId } })).items;
    expect(Object.fromEntries(items.map((i) => [i.sku, i.onHand]))).toEqual({ A: 4, B: 6, C: 2 });
    expect((await importText(text, plan)).state).toBe('duplicate');
    const rejected = await importText('SKU,Location,On Hand\nA,LON-1,9\nNOPE,LON-1,1\n', { ...plan, policy: 'reject-all', scope: 'aw2' });
    expect(rejected).toMatchObject({ state: 'rejected', rowsApplied: 0, rowsFailed: 1 });
    expect(server.violations).toEqual([]);
  });
});
