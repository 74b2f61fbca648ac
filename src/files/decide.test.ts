import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isHubError } from '../errors.ts';
import { loadFileMappings } from '../mappings/files.ts';
import { compileMapping } from '../mappings/compile.ts';
import { decideInWorker, decideItems, makeDecider, packChunk, readerStats, unpackChunk, type Decided } from './decide.ts';
import { dropPrestarted, prestartReader, takePrestarted, WORKER_HEAP_MB } from './reader-boot.ts';
import { readFileChunks } from './index.ts';
import { createReadStream } from 'node:fs';

const dir = mkdtempSync(join(tmpdir(), 'hub-decide-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('chunks as a worker posts them', () => {
  it('come back as they went: values, failures, text repeated or not, nested values, missing fields', () => {
    const items: Decided[] = [];
    for (let i = 0; i < 50; i++) {
      if (i % 7 === 3) items.push({ row: i + 2, failures: [{ row: i + 2, column: 'On Hand', field: '/onHand', code: 'coercion_failed', message: 'not a number' }] });
      else items.push({ row: i + 2, value: { sku: `SKU-${i}`, locationCode: `WH${i % 3}`, onHand: i, ...(i % 2 ? { unitCost: '1.50' } : {}), lines: [{ sku: 'A', quantity: i }], flag: i % 5 === 0, none: null } });
    }
    const packed = packChunk(items);
    expect(unpackChunk(structuredClone(packed))).toEqual(items);
    // Repeated text travels once: the location and the cost columns are dictionaries, the SKU column is not.
    const at = (key: string) => packed.columns[packed.keys.indexOf(key)]!;
    const locations = at('locationCode');
    expect('dict' in locations && locations.dict.filter((v) => v !== undefined).sort()).toEqual(['WH0', 'WH1', 'WH2']);
    expect('dict' in at('unitCost')).toBe(true);
    expect('values' in at('sku')).toBe(true);
    expect('values' in at('lines')).toBe(true);
  });

  it('an empty chunk and a chunk of failures only', () => {
    expect(unpackChunk(packChunk([]))).toEqual([]);
    const failed: Decided[] = [{ row: 2, failures: [{ row: 2, column: null, field: null, code: 'x', message: 'y' }] }];
    expect(unpackChunk(structuredClone(packChunk(failed)))).toEqual(failed);
  });
});

describe('reading in a worker thread', () => {
  const mapping = compileMapping(loadFileMappings().get('csv-stock-count-in')!);
  const job = (path: string, skip = 0) => ({ path, file: { format: 'csv' } as const, mapping: { document: mapping.document, uses: [...mapping.uses] }, schema: null, skip });
  async function all(source: AsyncIterable<Decided[]>): Promise<Decided[]> {
    const out: Decided[] = [];
    for await (const chunk of source) out.push(...chunk);
    return out;
  }

  it('gives the items the import thread would, after the cursor', async () => {
    const path = join(dir, 'stock.csv');
    const rows = ['SKU,Location,On Hand,Counted At'];
    for (let i = 0; i < 2500; i++) rows.push(i === 1234 ? `S${i},WH1,n/a,21/11/2026 23:30` : `S${i},WH${i % 4},${i},21/11/2026 23:30`);
    writeFileSync(path, `${rows.join('\n')}\n`);
    const here = await all(decideItems(readFileChunks(createReadStream(path), { format: 'csv' }), makeDecider(mapping, null), 7));
    const there = await all(decideInWorker(job(path, 7)));
    expect(there).toEqual(here);
    expect(there).toHaveLength(2493);
    expect(there.filter((d) => d.failures)).toEqual([expect.objectContaining({ row: 1236 })]);
  });

  it('takes a worker started ahead when it suits, once, and otherwise starts its own', async () => {
    const path = join(dir, 'ahead.csv');
    writeFileSync(path, 'SKU,Location,On Hand,Counted At\nA,WH1,3,21/11/2026 23:30\nB,WH2,4,21/11/2026 23:30\n');
    const started = readerStats.workers;
    prestartReader('csv');
    const ahead = takePrestarted('csv', WORKER_HEAP_MB);
    expect(ahead).not.toBeNull();
    // Taken once; one of another format or heap is stopped, not used.
    expect(takePrestarted('csv', WORKER_HEAP_MB)).toBeNull();
    prestartReader('xml');
    expect(takePrestarted('csv', WORKER_HEAP_MB)).toBeNull();
    await ahead!.worker.terminate();
    // decideInWorker takes the prestarted one: the same items, and the slot is empty after.
    prestartReader('csv');
    const items = await all(decideInWorker(job(path)));
    expect(items.map((d) => d.value?.sku)).toEqual(['A', 'B']);
    expect(takePrestarted('csv', WORKER_HEAP_MB)).toBeNull();
    expect(readerStats.workers - started).toBe(1);
    // One nobody takes is stopped by dropPrestarted (an import process then exits).
    prestartReader('csv');
    await dropPrestarted();
    expect(takePrestarted('csv', WORKER_HEAP_MB)).toBeNull();
  });

  it('ends with the file failure the reader throws, after the items before it', async () => {
    const path = join(dir, 'broken.csv');
    writeFileSync(path, 'SKU,Location,On Hand\nA,WH1,1\nB,WH1,"2\nC,WH1,3\n');
    const seen: Decided[] = [];
    const err = await (async () => {
      try {
        for await (const chunk of decideInWorker(job(path))) seen.push(...chunk);
      } catch (e) {
        return e;
      }
    })();
    expect(seen).toHaveLength(1);
    expect(isHubError(err, 'validation_failed') && err.extra?.fileError).toMatchObject({ code: 'malformed_csv' });
  });

  it('a file that cannot be read is a failure worth another try', async () => {
    const err = await all(decideInWorker(job(join(dir, 'missing.csv')))).catch((e) => e);
    expect(err).toMatchObject({ code: 'validation_failed', retryable: true, extra: { fileError: { code: 'source_failed' } } });
  });
});

describe('a record too large for the reading worker', () => {
  it('is refused as record_too_large, not retried', async () => {
    const path = join(dir, 'huge.xml');
    // Under the reader's 16M-character limit, but a million distinct values do not fit in a 24 MB heap.
    const values = Array.from({ length: 1_000_000 }, (_, i) => `<N>${i}</N>`).join('');
    writeFileSync(path, `<Report><Item><SKU>A</SKU>${values}</Item></Report>`);
    const small = join(dir, 'small.xml');
    writeFileSync(small, '<Report><Item><SKU>A</SKU><Note>fine</Note></Item></Report>');
    const job = { path, file: { format: 'xml', options: { recordPath: 'Report/Item' } } as const, mapping: null, schema: null, skip: 0 };
    // The same heap reads an ordinary file.
    const items: Decided[] = [];
    for await (const chunk of decideInWorker({ ...job, path: small }, { maxHeapMb: 24 })) items.push(...chunk);
    expect(items).toEqual([{ row: 1, value: { SKU: 'A', Note: 'fine' } }]);
    const err = await (async () => {
      try {
        for await (const _chunk of decideInWorker(job, { maxHeapMb: 24 })) void _chunk;
      } catch (e) {
        return e;
      }
    })();
    expect(err).toMatchObject({ code: 'validation_failed', retryable: false, extra: { fileError: { code: 'record_too_large', message: expect.stringContaining('ran out of memory (24 MB)') } } });
  }, 30_000);
});
