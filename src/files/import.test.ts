import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createInventoryFixture, type InventoryFixture } from '../../test/inventory-fixture.ts';
import { verifyLedger } from '../inventory/valuation.ts';
import { loadFileMappings } from '../mappings/files.ts';
import { compiledMappingFor } from '../mappings/repository.ts';
import type { FileRunsRow } from '../store/types.ts';
import { readerStats } from './decide.ts';
import { importStaged, type ImportAction, type ImportPlan, type ImportPolicy } from './import.ts';
import type { FileSpec } from './index.ts';
import { stageFile } from './stage.ts';

let f: InventoryFixture;
let dir: string;

beforeEach(async () => {
  f = await createInventoryFixture();
  dir = mkdtempSync(join(tmpdir(), 'hub-import-'));
  await f.location('LON-1');
  await f.location('MAN-2');
  for (const sku of ['A', 'B', 'C', 'D']) await f.product(sku);
});
afterEach(async () => {
  await f.close();
  rmSync(dir, { recursive: true, force: true });
});

let runs = 0;
/** Where records are read, mapped and checked: every case runs both ways, and must come out the same. */
let readIn: 'thread' | 'worker' = 'thread';
const workerMinBytes = () => (readIn === 'worker' ? 0 : Infinity);
async function newRun(): Promise<FileRunsRow> {
  return f.store.table('file_runs').insert({
    workspaceId: f.workspaceId,
    exchangeId: null,
    scheduleId: null,
    jobId: null,
    direction: 'import',
    trigger: 'manual',
    state: 'running',
    spec: {},
    fileName: `file-${++runs}.csv`,
    rowsRead: 0,
    rowsApplied: 0,
    rowsSkipped: 0,
    rowsFailed: 0,
    cursor: 0,
    startedAt: new Date(f.clock.now()).toISOString(),
  });
}

async function importText(text: string, options: { mapping?: string | null; action?: ImportAction; policy?: ImportPolicy; file?: FileSpec; scope?: string; batchSize?: number } = {}) {
  const staged = await stageFile(Readable.from([Buffer.from(text)]), join(dir, `${runs + 1}.spool`));
  const mapping = options.mapping === null ? null : await compiledMappingFor(f.store, f.workspaceId, options.mapping ?? 'csv-stock-count-in', loadFileMappings());
  const plan: ImportPlan = { file: options.file ?? { format: 'csv' }, mapping, action: options.action ?? 'stock.count', policy: options.policy ?? 'keep-good', scope: options.scope ?? 'test' };
  const run = await newRun();
  const done = await importStaged({ store: f.store, clock: f.clock, currency: 'EUR', batchSize: options.batchSize ?? 3, workerMinBytes: workerMinBytes() }, run, plan, staged);
  const errors = (await f.store.table('file_run_errors').query({ where: { runId: run.id }, orderBy: { field: 'seq' }, limit: 1000 })).items;
  return { run: done, errors };
}

async function onHand(sku: string) {
  return (await f.store.table('inventory_items').query({ where: { sku } })).items[0]!.onHand;
}

const STOCK = 'SKU,Location,On Hand\nA,LON-1,10\nB,LON-1,20\nC,MAN-2,5\nD,MAN-2,7\nA,MAN-2,1\n';

for (const mode of ['thread', 'worker'] as const) {
  describe(`records read in a ${mode}`, () => {
    beforeEach(() => {
      readIn = mode;
    });

    describe('importing stock counts', () => {
      it('applies every row, in batches, with a ledger that balances', async () => {
        const workers = readerStats.workers;
        const { run, errors } = await importText(STOCK);
        expect(readerStats.workers - workers).toBe(readIn === 'worker' ? 1 : 0);
        expect(run).toMatchObject({ state: 'succeeded', rowsRead: 5, rowsApplied: 5, rowsFailed: 0, cursor: 5, error: null });
        expect(errors).toEqual([]);
        expect(await onHand('A')).toBe(11);
        expect(await onHand('B')).toBe(20);
        expect((await verifyLedger(f.ctx())).discrepancies).toEqual([]);
      });

      it('keep-good: applies the good rows and reports each bad one with its row, column and reason', async () => {
        const text = 'SKU,Location,On Hand\nA,LON-1,10\nB,LON-1,n/a\nNOPE,LON-1,3\nC,XXX,4\nD,MAN-2,7\nA,LON-1\n';
        const { run, errors } = await importText(text);
        expect(run).toMatchObject({ state: 'partial', rowsRead: 6, rowsApplied: 2, rowsFailed: 4 });
        expect(errors.map((e) => [e.row, e.code])).toEqual([
          [3, 'coercion_failed'],
          [4, 'unknown'],
          [5, 'unknown'],
          [7, 'field_count'],
        ]);
        expect(errors[0]).toMatchObject({ column: 'On Hand', field: '/onHand' });
        expect(errors[1]!.message).toContain('NOPE');
        expect(errors[2]!.message).toContain('XXX');
        expect(await onHand('A')).toBe(10);
        expect(await onHand('D')).toBe(7);
        expect(await onHand('B')).toBe(0);
      });

      it('reject-all: one bad row and nothing is applied, every bad row reported', async () => {
        const text = 'SKU,Location,On Hand\nA,LON-1,10\nNOPE,LON-1,3\nB,LON-1,4\nC,LON-1,-1\n';
        const { run, errors } = await importText(text, { policy: 'reject-all' });
        expect(run).toMatchObject({ state: 'rejected', rowsRead: 4, rowsApplied: 0, rowsFailed: 2, rowsSkipped: 2, error: { code: 'rows_failed' } });
        expect(errors.map((e) => e.row)).toEqual([3, 5]);
        expect(await f.store.table('movements').count()).toBe(0);
      });

      it('reject-all: a clean file is checked, then applied', async () => {
        const { run } = await importText(STOCK, { policy: 'reject-all' });
        expect(run).toMatchObject({ state: 'succeeded', rowsRead: 5, rowsTotal: 5, rowsApplied: 5 });
        expect(await onHand('A')).toBe(11);
      });

      it('does not apply the same file twice in one scope', async () => {
        const first = await importText('SKU,Location,On Hand\nA,LON-1,10\n', { mapping: 'csv-stock-count-in' });
        expect(first.run.state).toBe('succeeded');
        const again = await importText('SKU,Location,On Hand\nA,LON-1,10\n');
        expect(again.run).toMatchObject({ state: 'duplicate', rowsApplied: 0, error: { code: 'duplicate_file' } });
        const elsewhere = await importText('SKU,Location,On Hand\nA,LON-1,10\n', { scope: 'other' });
        expect(elsewhere.run.state).toBe('succeeded');
      });

      it('marks a file applied when its first batch was refused and retried row by row', async () => {
        const text = 'SKU,Location,On Hand\nA,LON-1,3\nNOPE,LON-1,1\n';
        expect((await importText(text, { scope: 'mixed' })).run).toMatchObject({ state: 'partial', rowsApplied: 1 });
        expect((await importText(text, { scope: 'mixed' })).run).toMatchObject({ state: 'duplicate', rowsApplied: 0 });
      });

      it('stops at a broken file: keep-good keeps the rows before the break, reject-all applies nothing', async () => {
        const text = 'SKU,Location,On Hand\nA,LON-1,10\nB,LON-1,20\nC,LON-1,"30\nD,LON-1,40\n';
        const kept = await importText(text, { batchSize: 1 });
        expect(kept.run).toMatchObject({ state: 'partial', rowsApplied: 2, error: { code: 'malformed_csv', row: 4 } });
        const rejected = await importText(text.replace('A,LON-1,10', 'A,LON-1,11'), { policy: 'reject-all' });
        expect(rejected.run).toMatchObject({ state: 'rejected', rowsApplied: 0, error: { code: 'malformed_csv' } });
        expect(await onHand('A')).toBe(10);
      });

      it('refuses an empty file and a header without the required columns', async () => {
        const empty = await importText('');
        expect(empty.run).toMatchObject({ state: 'rejected', error: { code: 'empty_file' } });
        const headerOnly = await importText('SKU,Location,On Hand\n', { policy: 'reject-all' });
        expect(headerOnly.run).toMatchObject({ state: 'rejected', error: { code: 'empty_file' } });
        const header = await importText('SKU,Where,Count\nA,LON-1,1\n', { file: { format: 'csv', options: { requiredColumns: ['SKU', 'Location', 'On Hand'] } } });
        expect(header.run).toMatchObject({ state: 'rejected', rowsApplied: 0, error: { code: 'missing_columns' } });
      });
    });

    describe('importing order lines', () => {
      const HEAD = 'Order Number,Channel,Line,SKU,Qty,Unit Price,Currency\n';
      it('gathers consecutive rows of one order into one order', async () => {
        const text = `${HEAD}1001,web,1,A,1,9.99,EUR\n1001,web,2,B,2,5.00,EUR\n1002,web,1,C,1,1.00,EUR\n`;
        const { run } = await importText(text, { mapping: 'csv-order-line-in', action: 'order.lines' });
        expect(run).toMatchObject({ state: 'succeeded', rowsRead: 3, rowsApplied: 3 });
        const orders = (await f.store.table('orders').query({ orderBy: { field: 'externalId' } })).items;
        expect(orders.map((o) => [o.externalId, (o.lines as unknown[]).length])).toEqual([
          ['1001', 2],
          ['1002', 1],
        ]);
      });

      it('refuses lines of an order that come back after another order', async () => {
        const text = `${HEAD}1001,web,1,A,1,9.99,EUR\n1002,web,1,C,1,1.00,EUR\n1001,web,2,B,2,5.00,EUR\n`;
        const { run, errors } = await importText(text, { mapping: 'csv-order-line-in', action: 'order.lines' });
        expect(run).toMatchObject({ state: 'partial', rowsApplied: 2, rowsFailed: 1 });
        expect(errors).toEqual([expect.objectContaining({ row: 4, code: 'order_split' })]);
      });

      it('fails a whole order when one of its SKUs is unknown', async () => {
        const text = `${HEAD}1001,web,1,A,1,9.99,EUR\n1001,web,2,NOPE,2,5.00,EUR\n1002,web,1,C,1,1.00,EUR\n`;
        const { run, errors } = await importText(text, { mapping: 'csv-order-line-in', action: 'order.lines' });
        expect(run).toMatchObject({ state: 'partial', rowsApplied: 1, rowsFailed: 2 });
        expect(errors[0]).toMatchObject({ row: 2, code: 'unknown' });
        expect(await f.store.table('orders').count()).toBe(1);
      });
    });

    describe('counts that repeat what is stored', () => {
      it('skips them, but a SKU counted twice in a batch still ends at its last count', async () => {
        await importText('SKU,Location,On Hand\nA,LON-1,5\n', { scope: 'first' });
        const { run } = await importText('SKU,Location,On Hand\nA,LON-1,7\nA,LON-1,5\nB,LON-1,0\n', { batchSize: 10, scope: 'second' });
        expect(run).toMatchObject({ state: 'succeeded', rowsApplied: 3 });
        expect(await onHand('A')).toBe(5);
        expect(await f.store.table('movements').count({ sku: 'A' })).toBe(3);
      });
    });

    describe('a run that stops half-way', () => {
      it('resumes after its cursor: no row applied twice, an order never split', async () => {
        const { Readable: R } = await import('node:stream');
        const text =
          'Order Number,Channel,Line,SKU,Qty,Unit Price,Currency\n' +
          '1,web,1,A,1,1.00,EUR\n1,web,2,B,1,1.00,EUR\n2,web,1,C,1,1.00,EUR\nx,web,1,A,n/a,1.00,EUR\n2,web,2,D,2,1.00,EUR\n3,web,1,A,1,1.00,EUR\n';
        const staged = await stageFile(R.from([Buffer.from(text)]), join(dir, 'resume.spool'));
        const mapping = await compiledMappingFor(f.store, f.workspaceId, 'csv-order-line-in', loadFileMappings());
        const plan: ImportPlan = { file: { format: 'csv' }, mapping, action: 'order.lines', policy: 'keep-good', scope: 'resume' };
        let run = await newRun();
        // The store goes away at the second batch's transaction, as a killed process would leave it.
        let calls = 0;
        const flaky = Object.create(f.store) as typeof f.store;
        flaky.transaction = (fn) => {
          if (++calls >= 3) return Promise.reject(new (class extends Error { retryable = true; })('gone'));
          return f.store.transaction(fn);
        };
        await expect(importStaged({ store: flaky, clock: f.clock, currency: 'EUR', batchSize: 1, workerMinBytes: workerMinBytes() }, run, plan, staged)).rejects.toThrow('gone');
        run = (await f.store.table('file_runs').get(run.id))!;
        expect(run.state).toBe('running');
        expect(run.cursor).toBeGreaterThan(0);
        const done = await importStaged({ store: f.store, clock: f.clock, currency: 'EUR', batchSize: 1, workerMinBytes: workerMinBytes() }, run, plan, staged);
        expect(done).toMatchObject({ state: 'partial', rowsRead: 6, rowsApplied: 5, rowsFailed: 1 });
        const orders = (await f.store.table('orders').query({ orderBy: { field: 'externalId' } })).items;
        expect(orders.map((o) => [o.externalId, (o.lines as unknown[]).length])).toEqual([
          ['1', 2],
          ['2', 2],
          ['3', 1],
        ]);
        expect(await f.store.table('file_run_errors').count({ runId: run.id })).toBe(1);
      });
    });
  });
}

describe('batch sizes', () => {
  async function run(rows: number, env: { batchSize: number; maxBatchSize: number; slowMs?: number }) {
    const text = `SKU,Location,On Hand\n${Array.from({ length: rows }, (_, i) => `${'ABCD'[i % 4]},${i % 8 < 4 ? 'LON-1' : 'MAN-2'},${i}`).join('\n')}\n`;
    const staged = await stageFile(Readable.from([Buffer.from(text)]), join(dir, `sizes-${env.batchSize}-${env.maxBatchSize}.spool`));
    const mapping = await compiledMappingFor(f.store, f.workspaceId, 'csv-stock-count-in', loadFileMappings());
    const store = Object.create(f.store) as typeof f.store;
    store.transaction = (fn) => f.store.transaction(async (tx) => {
      if (env.slowMs) await new Promise((r) => setTimeout(r, env.slowMs));
      return fn(tx);
    });
    const sizes: number[] = [];
    let last = 0;
    const done = await importStaged(
      { store, clock: f.clock, currency: 'EUR', batchSize: env.batchSize, maxBatchSize: env.maxBatchSize, workerMinBytes: Infinity, onProgress: (r) => void (sizes.push(r.rowsRead - last), (last = r.rowsRead)) },
      await newRun(),
      { file: { format: 'csv' }, mapping, action: 'stock.count', policy: 'keep-good', scope: `sizes-${env.batchSize}` },
      staged,
    );
    expect(done).toMatchObject({ state: 'succeeded', rowsRead: rows, rowsApplied: rows });
    return sizes;
  }

  it('grow while transactions commit quickly, up to the most allowed', async () => {
    // On an idle machine: 4, 8, 16, 32, 32, 32, 32, 32, 12. A slow commit (a loaded CI machine) only stops the growth.
    const sizes = await run(200, { batchSize: 4, maxBatchSize: 32 });
    expect(sizes[0]).toBe(4);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(200);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(32);
    expect(sizes.length).toBeLessThan(50);
    expect(sizes.slice(0, -1).every((n, i) => i === 0 || n === sizes[i - 1] || n === 2 * sizes[i - 1]!)).toBe(true);
  });

  it('shrink when a transaction holds the store long, down to 50', async () => {
    expect(await run(300, { batchSize: 100, maxBatchSize: 100, slowMs: 210 })).toEqual([100, 50, 50, 50, 50]);
  });
});
