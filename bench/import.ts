// bench/import: file imports end to end (staged, read, mapped, checked, applied to SQLite in batches with their
// run bookkeeping) against the parser alone on the same file, in the same run. Every phase runs in a child process
// of its own, so each peak RSS (getrusage maxrss) is that phase's and nothing else's.
//
//   CSV: a 3PL stock file of ROWS rows (100,000 SKUs × 10 locations) imported as stock counts, against csv-parse
//        iterating the same file with columns: true. Two files: a nightly file that repeats the stored counts but
//        for 1% (most nights), and, on a slice of CHANGED_ROWS, one where every count changes (a first import:
//        every row writes a movement, two level events and their webhook fan-out).
//   XML: a 200,000-record stock report (~58 MB) through the streaming reader and the xml-stock-count-in mapping,
//        against fast-xml-parser parsing the whole document.
//
// The phases run the hub bundled by esbuild with the reading worker and the import process as entries of their own,
// on Node with the flags of `npm start` (read from package.json; none today), as `npm start` runs it: a file this
// large is imported by an import process (src/files/import-child.ts, with V8 flags for the import), and its peak
// RSS is the import's (the hub process's own is shown beside it). The nightly import runs again in the hub's own
// process (as the hub imports files under HUB_IMPORT_PROCESS_MIN_BYTES, and as it imported every file before), under
// tsx from the sources (as `npm run dev` runs the hub), and on one thread (no reading worker), to show what each costs.
//
// Usage: npx tsx bench/import.ts [--rows 1000000] [--xml-records 200000] [--changed-rows 50000] [--rounds 2]
// The parsers alone run on plain Node: they are the yardstick, not the hub. Each is timed from when its
// modules are loaded; an import from when the file reaches a hub that is up (its store open, its mappings loaded),
// through staging, the run, and the run's last write.
// Targets (issue 7): CSV >= 0.5x csv-parse rows/s at <= 150 MB peak RSS; XML <= 200 MB and >= 2x fast-xml-parser.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { startFlags } from '../scripts/build-hub.ts';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const n = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} needs a positive integer`);
  return n;
}

const ROWS = arg('rows', 1_000_000);
const XML_RECORDS = arg('xml-records', 200_000);
const CHANGED_ROWS = arg('changed-rows', 50_000);
const ROUNDS = arg('rounds', 2);
const PHASE = fileURLToPath(new URL('./import-phase.ts', import.meta.url));

interface PhaseResult {
  items: number;
  seconds: number;
  /** The importing process's peak: the import process's, or the phase's own. */
  maxRssMb: number;
  /** When an import process imported: the peak of the process that started it (the hub). */
  hubRssMb?: number;
  state?: string;
  applied?: number;
}

function phase(name: string, ...args: string[]): PhaseResult {
  return phaseWith('bundle', name, ...args);
}

const START_FLAGS = startFlags();

/**
 * How a phase runs: the bundle with the start flags (default), the same importing in the hub's own process, the
 * TypeScript sources under tsx (as `npm run dev`), the bundle with the start flags but no reading worker, or plain
 * (the parsers).
 */
type Mode = 'bundle' | 'in-hub' | 'tsx' | 'one-thread' | 'plain';

function phaseWith(mode: Mode, name: string, ...args: string[]): PhaseResult {
  const flags = mode === 'plain' ? [] : START_FLAGS;
  const argv = mode === 'tsx' ? ['--import', 'tsx', PHASE, name, ...args] : [...flags, BUNDLED, name, ...args];
  // The bundle sits in node_modules/.cache: it is told where the shipped mappings are, as a deployment is.
  const env = { ...process.env, HUB_MAPPINGS_DIR: fileURLToPath(new URL('../mappings/', import.meta.url)), ...(mode === 'one-thread' ? { BENCH_NO_WORKER: '1' } : {}), ...(mode === 'in-hub' ? { BENCH_IN_HUB: '1' } : {}) };
  const out = execFileSync(process.execPath, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24, env });
  const last = out.trim().split('\n').pop()!;
  return JSON.parse(last) as PhaseResult;
}

// Inside node_modules so that the bundle finds the packages it leaves external.
const BUILD = fileURLToPath(new URL('../node_modules/.cache/bench-import/', import.meta.url));
const BUNDLED = join(BUILD, 'import-phase.js');
await build({
  entryPoints: [PHASE, ...['read-worker', 'import-process'].map((entry) => fileURLToPath(new URL(`../src/files/${entry}.ts`, import.meta.url)))],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  outdir: BUILD,
  entryNames: '[name]',
  logLevel: 'warning',
});

const rate = (r: PhaseResult) => r.items / r.seconds;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

const dir = mkdtempSync(join(tmpdir(), 'hub-bench-import-'));
try {
  const db = join(dir, 'seed.db');
  console.log(`bench/import: ${fmt(ROWS)}-row stock CSV, ${fmt(XML_RECORDS)}-record XML, ${fmt(CHANGED_ROWS)} rows that all change (node ${process.versions.node}${START_FLAGS.length ? ` ${START_FLAGS.join(' ')}` : ''}, as npm start runs it)`);
  phase('generate', dir, String(ROWS), String(XML_RECORDS), String(CHANGED_ROWS));
  console.log(`files: stock.csv ${(statSync(join(dir, 'stock.csv')).size / 1e6).toFixed(1)} MB, stock.xml ${(statSync(join(dir, 'stock.xml')).size / 1e6).toFixed(1)} MB`);
  const seed = phase('seed', dir, db);
  console.log(`seed: 100,000 products, 10 locations, the stored counts (${fmt(seed.items)} levels) in ${seed.seconds.toFixed(1)} s`);

  // Each import starts from its own copy of the seeded database. The nightly CSV and the XML run ROUNDS times,
  // alternating with their parser: this machine's speed drifts by a third within minutes, and the best round of
  // each side is the least disturbed one.
  const work = join(dir, 'work.db');
  const importFrom = (mode: Mode, file: string, format: string) => {
    copyFileSync(db, work);
    try {
      return phaseWith(mode, 'import', work, join(dir, file), format);
    } finally {
      rmSync(work, { force: true });
      rmSync(`${work}-wal`, { force: true });
      rmSync(`${work}-shm`, { force: true });
    }
  };
  // The fastest round's rate, with the highest peak RSS of any round.
  const best = (results: PhaseResult[]) => ({ ...results.reduce((a, b) => (rate(b) > rate(a) ? b : a)), maxRssMb: Math.max(...results.map((r) => r.maxRssMb)) });
  const parses: PhaseResult[] = [];
  const nightlies: PhaseResult[] = [];
  const fxps: PhaseResult[] = [];
  const xmls: PhaseResult[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    parses.push(phaseWith('plain', 'csv-parse', join(dir, 'stock.csv')));
    nightlies.push(importFrom('bundle', 'stock.csv', 'csv'));
    fxps.push(phaseWith('plain', 'fxp', join(dir, 'stock.xml')));
    xmls.push(importFrom('bundle', 'stock.xml', 'xml'));
  }
  const [parse, nightly, fxp, xml] = [best(parses), best(nightlies), best(fxps), best(xmls)];
  const oneThread = importFrom('one-thread', 'stock.csv', 'csv');
  const inHub = importFrom('in-hub', 'stock.csv', 'csv');
  const underTsx = importFrom('tsx', 'stock.csv', 'csv');
  const baseline = phase('baseline');
  const baselineTsx = phaseWith('tsx', 'baseline');
  const changedParse = phaseWith('plain', 'csv-parse', join(dir, 'changed.csv'));
  const changed = importFrom('bundle', 'changed.csv', 'csv');

  const row = (label: string, r: PhaseResult, base?: PhaseResult) =>
    console.log(`${label.padEnd(44)} ${fmt(rate(r)).padStart(10)} /s ${r.seconds.toFixed(2).padStart(8)} s ${r.maxRssMb.toFixed(0).padStart(6)} MB${base ? `   ${(rate(r) / rate(base)).toFixed(2)}x` : ''}${r.state ? `   ${r.state}, ${fmt(r.applied ?? 0)} applied` : ''}${r.hubRssMb ? `; the hub process ${r.hubRssMb.toFixed(0)} MB` : ''}`);
  console.log('');
  console.log(`rounds: ${ROUNDS} (best of each shown); every round: csv-parse ${parses.map((r) => fmt(rate(r))).join(', ')} /s; import ${nightlies.map((r) => fmt(rate(r))).join(', ')} /s; fast-xml-parser ${fxps.map((r) => fmt(rate(r))).join(', ')} /s; XML import ${xmls.map((r) => fmt(rate(r))).join(', ')} /s`);
  // Each import against the parser run just before it: the pairs see the same state of the machine.
  const paired = (imports: PhaseResult[], parsers: PhaseResult[]) => imports.map((r, i) => `${(rate(r) / rate(parsers[i]!)).toFixed(2)}x`).join(', ');
  console.log(`per round, against the parser run just before: CSV ${paired(nightlies, parses)} (peaks ${nightlies.map((r) => r.maxRssMb.toFixed(0)).join(', ')} MB); XML ${paired(xmls, fxps)} (peaks ${xmls.map((r) => r.maxRssMb.toFixed(0)).join(', ')} MB)`);
  console.log(`${'phase'.padEnd(44)} ${'items'.padStart(13)} ${'time'.padStart(10)} ${'peak RSS'.padStart(9)}   vs parser`);
  row('csv-parse alone (nightly file)', parse);
  row('import, nightly file (1% of counts change)', nightly, parse);
  row('  the same on one thread (no reading worker)', oneThread, parse);
  row('  the same in the hub\'s own process', inHub, parse);
  row('  the same under tsx (as npm run dev runs)', underTsx, parse);
  console.log(`${'  (a process that only loads the hub)'.padEnd(44)} ${''.padStart(13)} ${''.padStart(10)} ${baseline.maxRssMb.toFixed(0).padStart(6)} MB   (${baselineTsx.maxRssMb.toFixed(0)} MB under tsx)`);
  row('csv-parse alone (all-change file)', changedParse);
  row('import, every count changes', changed, changedParse);
  row('fast-xml-parser, whole document', fxp);
  row('import, XML stock report (streamed)', xml, fxp);
  console.log('');
  console.log(`targets: CSV import >= 0.50x csv-parse at <= 150 MB (nightly ${(rate(nightly) / rate(parse)).toFixed(2)}x, ${nightly.maxRssMb.toFixed(0)} MB); XML <= 200 MB and >= 2x fast-xml-parser (${(rate(xml) / rate(fxp)).toFixed(2)}x, ${xml.maxRssMb.toFixed(0)} MB)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
