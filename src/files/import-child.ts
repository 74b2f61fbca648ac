// Large imports of an embedded hub run in a process of their own (import-process.ts), on the same SQLite file:
//  - its heap is sized for the import, not for the API: a CSV import runs with a young generation of 2 × 8 MB, where
//    the API process keeps V8's 2 × 16 MB, which its request throughput needs (importProcessProfile); and glibc
//    keeps one malloc arena for its threads (importProcessEnv);
//  - its batches no longer run on the API's event loop, and a crash or an out-of-memory stops the import, not the hub;
//  - the hub's writes wait for the import's transactions (whenFree, without stopping the loop), and each wait asks
//    the import process to let the hub have the next turn (yieldWrites).
// The run is the same as in the hub process (importStaged): committed batch by batch with its cursor, so a process
// that dies is retried by the job and resumes after the last batch it committed.
import { fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { HubError, type ErrorCode, type FieldError } from '../errors.ts';
import { portableMapping, type PortableMapping } from '../mappings/compile.ts';
import type { FileRunsRow } from '../store/types.ts';
import { announceDeliveries } from '../webhooks/fanout.ts';
import { readsInWorker, type ImportAction, type ImportPlan, type ImportPolicy } from './import.ts';
import type { StagedFile } from './stage.ts';
import type { FileSpec } from './index.ts';

export interface ImportProcessOptions {
  /** The hub's SQLite file. */
  dbPath: string;
  /** Its page cache in the import process, MB. */
  cacheMb: number;
  /** The hub's connections' WAL backstop when its checkpointer runs (SqliteStoreOptions.walAutoCheckpoint). */
  walAutoCheckpoint?: number;
  /** Files at least this large are imported in a process of their own; smaller ones in the hub's. */
  minBytes: number;
  /** Subscribes to the hub store's waits for the write lock (SqliteStore.onBusy). */
  onBusy?: (listener: () => void) => () => void;
}

/** Everything the import process needs, as plain data. */
export interface ImportTask {
  dbPath: string;
  cacheMb: number;
  walAutoCheckpoint?: number;
  runId: string;
  file: FileSpec;
  mapping: PortableMapping | null;
  action: ImportAction;
  policy: ImportPolicy;
  scope: string;
  staged: { path: string; checksum: string; bytes: number };
  currency: string;
  batchSize?: number;
  maxBatchSize?: number;
  workerMinBytes?: number;
}

/** The task of importing `staged` as `run` by `plan`, in an import process on the SQLite file `dbPath`. */
export function importTask(
  where: { dbPath: string; cacheMb: number; walAutoCheckpoint?: number },
  run: FileRunsRow,
  plan: ImportPlan,
  staged: StagedFile,
  env: { currency: string; batchSize?: number; maxBatchSize?: number; workerMinBytes?: number },
): ImportTask {
  const { mapping, ...rest } = plan;
  return {
    ...rest,
    ...env,
    dbPath: where.dbPath,
    cacheMb: where.cacheMb,
    walAutoCheckpoint: where.walAutoCheckpoint,
    runId: run.id,
    mapping: mapping ? portableMapping(mapping) : null,
    staged: { path: staged.path, checksum: staged.checksum, bytes: staged.bytes },
  };
}

export type ParentMessage = { t: 'start'; task: ImportTask } | { t: 'yield'; ms: number };
export type ChildMessage =
  | { t: 'progress'; run: FileRunsRow }
  | { t: 'deliveries' }
  | { t: 'done'; run: FileRunsRow; maxRssKb: number }
  | { t: 'failed'; code: ErrorCode; message: string; errors?: FieldError[]; retryable: boolean };

/**
 * How an import process runs, by format. A CSV import's applying thread allocates fast and keeps little: a young
 * generation of 2 × 8 MB (V8's default is 2 × 16) and a heap limit under 1 GiB (below which V8 grows the heap 2×
 * rather than 4× after a collection) keep a million-row import under 150 MB. Measured on bench/import's nightly
 * file with one malloc arena (importProcessEnv) and 64 KiB reads (stage.ts), alternating: 2 × 8 MB with a 16 MB
 * young generation for the reading worker (decide.ts) took 5.0-5.9 s and peaked at 122-125 MB; 2 × 6 MB was no
 * faster; 2 × 16 MB no faster either, at 153-157 MB. (With 256 KiB reads, 2 × 4 MB took 5.9-7.1 s at 133-142 MB,
 * and 2 × 6 MB went over the line in some runs.) Its batches stop at 2,000 records, so that a batch's
 * garbage still dies young in the smaller generation: at 4,000 it was promoted, and the import ran 5-10% slower.
 * XML and workbooks are read by a worker thread whose young generation the flags would override (reading is the
 * slow half there), so they keep V8's defaults and the hub's batches.
 */
export function importProcessProfile(format: FileSpec['format']): { execArgv: string[]; maxBatchSize?: number } {
  return format === 'csv' ? { execArgv: ['--max-semi-space-size=8', '--max-old-space-size=1000'], maxBatchSize: 2000 } : { execArgv: [] };
}

/**
 * The import process's environment: the hub's, with one malloc arena (unless the operator set MALLOC_ARENA_MAX).
 * glibc gives each thread that allocates an arena of its own; the applying thread, the reading worker and SQLite
 * then each keep freed memory in theirs. One arena peaked 8-12 MB lower on bench/import (CSV 136-140 MB against
 * 146-152 at the same flags; XML 159-163 against 164-178), at the same speed.
 */
export function importProcessEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...env, MALLOC_ARENA_MAX: env.MALLOC_ARENA_MAX ?? '1' };
}

/**
 * How long the import process holds back its next transaction when the hub waits for the write lock: longer than
 * the hub's pause between two tries (whenFree, at most 4 ms), so that one of them lands in it.
 */
const YIELD_MS = 10;

const ENTRY = new URL(`./import-process${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

/** From the TypeScript sources (tests, npm run dev) the import process loads tsx first. */
function loaderFlags(): string[] {
  if (!ENTRY.pathname.endsWith('.ts')) return [];
  return ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href];
}

export interface ImportHooks {
  /** After each committed batch, with the run as stored. */
  onProgress?: (run: FileRunsRow) => Promise<void> | void;
  /**
   * Aborting stops the process (the hub stopping, a lost lease); the run resumes after its cursor when the job is
   * retried. A hub that dies closes the IPC channel, and the import process stops itself.
   */
  signal?: AbortSignal;
  onBusy?: ImportProcessOptions['onBusy'];
}

/** Imports the task's staged file in an import process; resolves with the finished run and the process's peak RSS. */
export function importInProcess(task: ImportTask, hooks: ImportHooks = {}): Promise<{ run: FileRunsRow; maxRssMb: number }> {
  return new Promise((resolve, reject) => {
    if (hooks.signal?.aborted) return reject(new HubError('internal_error', 'The import was stopped before it started', { retryable: true }));
    const profile = importProcessProfile(task.file.format);
    if (profile.maxBatchSize) task = { ...task, maxBatchSize: Math.min(task.maxBatchSize ?? profile.maxBatchSize, profile.maxBatchSize) };
    // Its reading worker, when it has one, is started before it loads the hub (import-process.ts).
    const child = fork(ENTRY, [task.file.format, readsInWorker(task.staged.bytes, task.workerMinBytes) ? 'worker' : 'thread'], {
      execArgv: [...profile.execArgv, ...loaderFlags()],
      env: importProcessEnv(process.env),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    let settled = false;
    let lastYield = 0;
    const unsubscribe = hooks.onBusy?.(() => {
      const now = Date.now();
      if (now - lastYield < YIELD_MS / 2 || !child.connected) return;
      lastYield = now;
      child.send({ t: 'yield', ms: YIELD_MS } satisfies ParentMessage);
    });
    const abort = () => child.kill('SIGTERM');
    hooks.signal?.addEventListener('abort', abort, { once: true });
    const finish = (err: Error | null, value?: { run: FileRunsRow; maxRssMb: number }) => {
      if (settled) return;
      settled = true;
      unsubscribe?.();
      hooks.signal?.removeEventListener('abort', abort);
      if (err) reject(err);
      else resolve(value!);
    };
    let progress: Promise<void> = Promise.resolve();
    let answered = false;
    child.on('message', (m: ChildMessage) => {
      if (m.t === 'progress') {
        // In order, one at a time. A report that fails stops the import, as it does in the hub's process: the job
        // saving it has lost its lease, and another worker will resume the run.
        progress = progress.then(() => hooks.onProgress?.(m.run)).catch((err: unknown) => {
          child.kill('SIGTERM');
          finish(err instanceof Error ? err : new HubError('internal_error', String(err), { retryable: true }));
        });
      } else if (m.t === 'deliveries') announceDeliveries();
      else if (m.t === 'done' || m.t === 'failed') {
        answered = true;
        const outcome: [Error | null, { run: FileRunsRow; maxRssMb: number }?] =
          m.t === 'failed' ? [new HubError(m.code, m.message, { errors: m.errors, retryable: m.retryable })] : [null, { run: m.run, maxRssMb: m.maxRssKb / 1024 }];
        void progress.then(() => finish(...outcome));
      }
    });
    child.on('error', (err) => finish(new HubError('internal_error', `The import process could not run: ${err.message}`, { cause: err, retryable: true })));
    child.on('exit', (code, signal) => {
      if (answered) return;
      const how = signal ? `was stopped (${signal})` : `exited with code ${code}`;
      // Before its answer: it crashed, ran out of memory or was stopped. The run resumes after its last batch.
      finish(new HubError('internal_error', `The import process ${how} before the run finished`, { retryable: true }));
    });
    child.send({ t: 'start', task } satisfies ParentMessage);
  });
}
