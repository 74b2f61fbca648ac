// One phase of bench/import in a process of its own (see import.ts); prints one JSON line: items, seconds, peak RSS.
// The import runs with the hub's defaults (batch size, page cache, a reading worker for files of 4 MiB and more).
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';

import { once } from 'node:events';
import { parse } from 'csv-parse';
import { XMLParser } from 'fast-xml-parser';
import { createWorkspace } from '../src/bootstrap.ts';
import { importStaged } from '../src/files/import.ts';
import { importInProcess, importTask } from '../src/files/import-child.ts';
import { stageFile } from '../src/files/stage.ts';
import { inTransaction } from '../src/inventory/context.ts';
import { createProduct } from '../src/inventory/products.ts';
import { systemClock } from '../src/lib/clock.ts';
import { loadFileMappings } from '../src/mappings/files.ts';
import { compiledMappingFor } from '../src/mappings/repository.ts';
import { createSqliteStore, type SqliteStore } from '../src/store/sqlite.ts';
import type { FileRunsRow, Store } from '../src/store/types.ts';

const SKUS = 100_000;
const LOCATIONS = 10;
const sku = (i: number) => `SKU-${String(i).padStart(6, '0')}`;
/** The count stored before the nightly file: one level in ten holds stock. */
const base = (i: number, l: number) => ((i + l) % 10 === 0 ? ((i * 7 + l) % 500) + 1 : 0);
/** The nightly file: the stored count, but one row in a hundred moved by one. */
const nightly = (i: number, l: number) => base(i, l) + ((i * 31 + l) % 100 === 0 ? 1 : 0);

function done(items: number, started: number, extra: Record<string, unknown> = {}) {
  const seconds = (performance.now() - started) / 1000;
  console.log(JSON.stringify({ items, seconds, maxRssMb: process.resourceUsage().maxRSS / 1024, ...extra }));
}

async function writeLines(path: string, lines: Iterable<string>) {
  const out = createWriteStream(path);
  for (const line of lines) if (!out.write(line)) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
}

async function generate(dir: string, rows: number, xmlRecords: number, changedRows: number) {
  const csv = function* (count: number, value: (i: number, l: number) => number) {
    yield 'SKU,Location,On Hand,Unit Cost,Counted At\n';
    for (let r = 0; r < count; r++) {
      const i = Math.floor(r / LOCATIONS) % SKUS;
      const l = r % LOCATIONS;
      yield `${sku(i)},WH${l},${value(i, l)},,21/11/2026 23:30\n`;
    }
  };
  await writeLines(join(dir, 'stock.csv'), csv(rows, nightly));
  await writeLines(join(dir, 'changed.csv'), csv(changedRows, (i, l) => base(i, l) + 1000));
  await writeLines(join(dir, 'seed.csv'), (function* () {
    yield 'SKU,Location,On Hand\n';
    for (let i = 0; i < SKUS; i++) for (let l = 0; l < LOCATIONS; l++) if (base(i, l) > 0) yield `${sku(i)},WH${l},${base(i, l)}\n`;
  })());
  // XML covers SKUs the all-change file does not touch, with the nightly counts and again one in a hundred moved.
  const first = Math.ceil(changedRows / LOCATIONS);
  await writeLines(join(dir, 'stock.xml'), (function* () {
    yield '<?xml version="1.0" encoding="UTF-8"?>\n<StockReport generated="2026-11-21T23:30:00Z" warehouse="3PL North">\n';
    for (let r = 0; r < xmlRecords; r++) {
      const i = (first + Math.floor(r / LOCATIONS)) % SKUS;
      const l = r % LOCATIONS;
      const count = nightly(i, l) + ((i * 17 + l) % 100 === 0 ? 1 : 0);
      yield `  <Item line="${r + 1}"><SKU>${sku(i)}</SKU><Description>Cotton tee, black, size M &amp; co.</Description><Location>WH${l}</Location><Bin>A-${String(r % 97).padStart(2, '0')}-${r % 9}</Bin><Lot>L${2026000 + (r % 5000)}</Lot><OnHand>${count}</OnHand><CountedAt>2026-11-21T23:30:00Z</CountedAt><Counter>scanner-${r % 12}</Counter></Item>\n`;
    }
    yield '</StockReport>\n';
  })());
}

function newRun(store: Store, workspaceId: string, fileName: string) {
  return store.table('file_runs').insert({ workspaceId, exchangeId: null, scheduleId: null, jobId: null, direction: 'import', trigger: 'cli', state: 'running', spec: {}, fileName, rowsRead: 0, rowsApplied: 0, rowsSkipped: 0, rowsFailed: 0, cursor: 0, startedAt: new Date().toISOString() });
}

/**
 * A file arriving at a running hub: staged (copied and checksummed), then imported as a run, by an import process
 * as the hub does with a file this large (BENCH_IN_HUB: in this process, as the hub does with small files). What
 * the hub does once when it starts (open the store, load and check the shipped mappings) is done before `arrived`
 * is taken, which the import is timed from. `importRss` is told the import process's peak RSS.
 */
async function importFile(store: SqliteStore, path: string, format: 'csv' | 'xml', scope: string, arrived?: (at: number) => void, importRss?: (mb: number) => void): Promise<FileRunsRow> {
  const workspace = (await store.table('workspaces').query({ limit: 1 })).items[0]!;
  const mapping = await compiledMappingFor(store, workspace.id, format === 'csv' ? 'csv-stock-count-in' : 'xml-stock-count-in', loadFileMappings());
  arrived?.(performance.now());
  const staged = await stageFile(await open(path, 'r'), `${path}.${scope}.spool`);
  try {
    const run = await newRun(store, workspace.id, path);
    const file = format === 'csv' ? ({ format: 'csv' } as const) : ({ format: 'xml', options: { recordPath: 'StockReport/Item' } } as const);
    const plan = { file, mapping, action: 'stock.count', policy: 'keep-good', scope } as const;
    const env = { currency: 'EUR', workerMinBytes: process.env.BENCH_NO_WORKER ? Infinity : undefined };
    if (!importRss) return await importStaged({ store, clock: systemClock, ...env }, run, plan, staged);
    const done = await importInProcess(importTask({ dbPath: store.path, cacheMb: store.cacheMb }, run, plan, staged, env), { onBusy: (l) => store.onBusy(l) });
    importRss(done.maxRssMb);
    return done.run;
  } finally {
    await staged.remove();
  }
}

const [phase, ...args] = process.argv.slice(2);
const started = performance.now();
switch (phase) {
  case 'generate':
    await generate(args[0]!, Number(args[1]), Number(args[2]), Number(args[3]));
    done(0, started);
    break;
  case 'seed': {
    const store = createSqliteStore({ path: args[1]!, clock: systemClock });
    const { workspace } = await createWorkspace(store, systemClock, { name: 'Bench', actor: 'bench' });
    for (let l = 0; l < LOCATIONS; l++) await store.table('locations').insert({ workspaceId: workspace.id, code: `WH${l}`, name: `Warehouse ${l}`, type: 'warehouse', address: null, priority: l, active: true });
    const ctxBase = { workspaceId: workspace.id, now: new Date().toISOString(), correlationId: null };
    for (let i = 0; i < SKUS; i += 1000) {
      await inTransaction(store, ctxBase, async (ctx) => {
        for (let j = i; j < i + 1000; j++) await createProduct(ctx, { sku: sku(j), name: `Product ${j}` });
      });
    }
    const run = await importFile(store, join(args[0]!, 'seed.csv'), 'csv', 'seed');
    await store.close();
    done(run.rowsApplied, started, { state: run.state });
    break;
  }
  case 'baseline':
    done(0, started);
    break;
  case 'csv-parse': {
    let n = 0;
    for await (const _record of createReadStream(args[0]!).pipe(parse({ columns: true }))) n++;
    done(n, started);
    break;
  }
  case 'fxp': {
    const doc = new XMLParser({ ignoreAttributes: false, isArray: (name) => name === 'Item' }).parse(readFileSync(args[0]!));
    done((doc.StockReport.Item as unknown[]).length, started);
    break;
  }
  case 'import': {
    const store = createSqliteStore({ path: args[0]!, clock: systemClock });
    let arrived = started;
    // The peak of the process that imports: the import process's, or this one's when it imports (BENCH_IN_HUB).
    let importRssMb: number | undefined;
    const inHub = Boolean(process.env.BENCH_IN_HUB);
    const run = await importFile(store, args[1]!, args[2] as 'csv' | 'xml', `bench-${Date.now()}`, (at) => (arrived = at), inHub ? undefined : (mb) => (importRssMb = mb));
    done(run.rowsRead, arrived, { state: run.state, applied: run.rowsApplied, ...(importRssMb === undefined ? {} : { maxRssMb: importRssMb, hubRssMb: process.resourceUsage().maxRSS / 1024 }) });
    await store.close();
    break;
  }
  default:
    throw new Error(`unknown phase ${phase}`);
}
