// `npm run hub -- import FILE --mapping ID --action A`: imports a local file in this process, on the same database
// as the running hub, through the same pipeline as scheduled imports (staged, checksummed, checked, applied in
// batches, a run with its report), with a progress bar on stderr.
import { open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { Transform } from 'node:stream';
import type { HubConfig } from '../src/config.ts';
import { HubError } from '../src/errors.ts';
import { importStaged } from '../src/files/import.ts';
import { adhocImportSpec, importSpecOf, newRunRow, spoolPath, type ImportSpec } from '../src/files/runs.ts';
import { stageFile, type StagedFile } from '../src/files/stage.ts';
import type { Clock } from '../src/lib/clock.ts';
import { newId } from '../src/lib/ids.ts';
import { loadFileMappings } from '../src/mappings/files.ts';
import { compiledMappingFor } from '../src/mappings/repository.ts';
import type { FileRunsRow, Store, WorkspacesRow } from '../src/store/types.ts';

export interface ImportArgs {
  file: string;
  workspace: WorkspacesRow;
  exchange?: string;
  mapping?: string;
  action?: string;
  policy?: string;
  format?: string;
  delimiter?: string;
  recordPath?: string;
  sheet?: string;
}

export interface ImportIo {
  out(line: string): void;
  /** Progress output; `redraw` lines replace the previous one (a terminal), others are appended (a log). */
  progress(line: string, redraw: boolean): void;
  tty: boolean;
}

function usage(message: string): HubError {
  return new HubError('validation_failed', message, { errors: [{ field: '/args', code: 'usage', message }] });
}

async function specFrom(store: Store, args: ImportArgs): Promise<{ spec: ImportSpec; exchangeId: string | null }> {
  if (args.exchange) {
    const exchange = (await store.table('exchanges').get(args.exchange)) ?? (await store.table('exchanges').query({ where: { workspaceId: args.workspace.id, name: args.exchange }, limit: 1 })).items[0];
    if (!exchange || exchange.workspaceId !== args.workspace.id || exchange.direction !== 'import') throw usage(`No import exchange "${args.exchange}" in ${args.workspace.slug}`);
    return { spec: importSpecOf(exchange), exchangeId: exchange.id };
  }
  const format = args.format ?? (/\.xlsx$/i.test(args.file) ? 'xlsx' : /\.xml$/i.test(args.file) ? 'xml' : 'csv');
  const kebab = (part: string) => `--${part.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  const spec = adhocImportSpec({ action: args.action, mapping: args.mapping, policy: args.policy, format, delimiter: args.delimiter, recordPath: args.recordPath, sheet: args.sheet }, { field: kebab, label: kebab });
  return { spec, exchangeId: null };
}

/** Counts the bytes the reader has taken, for a progress bar that is right for every format. */
function metered(staged: StagedFile, onBytes: (n: number) => void): StagedFile {
  return {
    ...staged,
    open: () => {
      let n = 0;
      return staged.open().pipe(
        new Transform({
          transform(chunk: Buffer, _e, done) {
            n += chunk.length;
            onBytes(n);
            done(null, chunk);
          },
        }),
      );
    },
  };
}

function bar(fraction: number, width = 24): string {
  const full = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return `[${'#'.repeat(full)}${'-'.repeat(width - full)}]`;
}

const n = (v: number) => v.toLocaleString('en-US');

export async function importCommand(store: Store, config: HubConfig, clock: Clock, args: ImportArgs, io: ImportIo): Promise<number> {
  const info = await stat(args.file).catch(() => null);
  if (!info?.isFile()) throw usage(`No file at ${args.file}`);
  const { spec, exchangeId } = await specFrom(store, args);
  const mapping = spec.mapping ? await compiledMappingFor(store, args.workspace.id, spec.mapping, loadFileMappings()) : null;
  if (spec.mapping && !mapping) throw usage(`No mapping "${spec.mapping}" (shipped files are in mappings/; workspace mappings at /v1/mappings)`);
  const runId = newId('run');
  const staged = await stageFile(await open(args.file, 'r'), spoolPath(config.files.spoolDir, runId));
  let run: FileRunsRow = await store.table('file_runs').insert({
    ...newRunRow({ clock }, { workspaceId: args.workspace.id, direction: 'import', trigger: 'cli', spec: spec as unknown as Record<string, unknown>, exchangeId, fileName: basename(args.file) }),
    id: runId,
    checksum: staged.checksum,
    bytes: staged.bytes,
  });
  io.out(`Importing ${basename(args.file)} (${n(staged.bytes)} bytes, ${staged.checksum.slice(0, 19)}…) as run ${run.id}`);
  let bytes = 0;
  let pass = spec.policy === 'reject-all' ? 'checking' : 'importing';
  let lastDraw = 0;
  const draw = (force = false) => {
    const now = Date.now();
    if (!force && now - lastDraw < (io.tty ? 100 : 5000)) return;
    lastDraw = now;
    io.progress(`${pass.padEnd(9)} ${bar(bytes / Math.max(1, staged.bytes))} ${Math.floor((bytes / Math.max(1, staged.bytes)) * 100)}%  ${n(run.rowsRead)} rows, ${n(run.rowsApplied)} applied, ${n(run.rowsFailed)} failed`, io.tty);
  };
  try {
    run = await importStaged(
      {
        store,
        clock,
        currency: args.workspace.currency,
        // As the hub's runner: Appwrite transactions take fewer operations.
        batchSize: store.kind === 'appwrite' ? 50 : undefined,
        onProgress: (r) => {
          if (r.rowsTotal != null && pass === 'checking') pass = 'importing';
          run = r;
          draw();
        },
      },
      run,
      { file: spec.file, mapping, action: spec.action, policy: spec.policy, scope: spec.scope },
      metered(staged, (b) => {
        bytes = b;
        draw();
      }),
    );
  } finally {
    await staged.remove();
  }
  draw(true);
  if (io.tty) io.progress('', false);
  io.out(`${run.state}: ${n(run.rowsRead)} rows read, ${n(run.rowsApplied)} applied, ${n(run.rowsSkipped)} skipped, ${n(run.rowsFailed)} failed`);
  if (run.error) io.out(`  ${(run.error as { message: string }).message}`);
  const errors = (await store.table('file_run_errors').query({ where: { runId: run.id }, orderBy: { field: 'seq' }, limit: 10 })).items;
  for (const e of errors) io.out(`  row ${e.row ?? '-'}${e.column ? ` (${e.column})` : ''}: ${e.code}: ${e.message}`);
  if (run.rowsFailed > errors.length) io.out(`  … every failed row: GET /v1/file-runs/${run.id}/report`);
  return run.state === 'succeeded' || run.state === 'duplicate' ? 0 : 1;
}
