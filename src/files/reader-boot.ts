// Starting a reading worker (read-worker.ts), apart from decide.ts so that a process can start one before it loads
// anything else: this module needs only Node. A worker boots a Node environment and loads the mapping compiler and
// the schemas (~150 ms), then waits for its job, which decideInWorker posts to it.
import type { Worker } from 'node:worker_threads';
import { siblingEntry, startThread } from '../lib/thread.ts';
import type { FileSpec } from './index.ts';

/** The heap a reading worker may use (its old generation), unless the caller says otherwise. */
export const WORKER_HEAP_MB = 128;

const WORKER_ENTRY = siblingEntry(import.meta.url, 'read-worker');

/**
 * The worker's young generation is a trade: at 8 MB scavenges take ~15-20% of the worker's time (the chunk being
 * built survives each one), at 16 MB half that, for 5-15 MB more memory. (What survives is mostly one read's
 * records: see SPOOL_READ_BYTES in stage.ts.)
 * - CSV: 16 MB. Where few rows change, reading is the slow half (the applying thread idles 45% of the time on a file
 *   that changes nothing). With 64 KiB reads, 32 MB here ran no faster, and 8 MB slower.
 * - XML and workbooks: 32 MB. Reading is the slow half (the applying thread waits on it 40% of the time): on
 *   bench/import's XML file 3-7% faster than 16 MB (which was ~8% faster than 8 MB), for a peak of 164-168 MB
 *   against 146-150 (with 256 KiB reads).
 */
function youngGenerationMb(format: FileSpec['format']): number {
  return format === 'csv' ? 16 : 32;
}

export interface ReaderWorker {
  worker: Worker;
  format: FileSpec['format'];
  maxHeapMb: number;
  /** Why it stopped before it was given a job, if it did. */
  failed: unknown;
  exited: boolean;
}

/**
 * A reading worker for files of `format`, loading its modules; it reads once it is posted `{ job, ahead }`. Its
 * heap is bounded, so the peak is: its live data is a few chunks, but one XML record may be 16M characters.
 */
export function startReader(format: FileSpec['format'], maxHeapMb = WORKER_HEAP_MB): ReaderWorker {
  const worker = startThread(WORKER_ENTRY, { resourceLimits: { maxOldGenerationSizeMb: maxHeapMb, maxYoungGenerationSizeMb: youngGenerationMb(format) } });
  const reader: ReaderWorker = { worker, format, maxHeapMb, failed: null, exited: false };
  // Until decideInWorker takes it, a worker that fails is noted here (and not taken), not an unhandled 'error'.
  const onError = (err: unknown) => void (reader.failed = err);
  const onExit = () => void (reader.exited = true);
  worker.on('error', onError);
  worker.on('exit', onExit);
  return reader;
}

let prestarted: ReaderWorker | null = null;

/**
 * Starts a reading worker now, for the import this process is about to run (import-process.ts starts one before it
 * loads the rest of the hub, so that the two load side by side).
 */
export function prestartReader(format: FileSpec['format']): void {
  prestarted ??= startReader(format);
}

/** The prestarted worker when it suits (same format and heap, still alive), else null; a worker is taken once. */
export function takePrestarted(format: FileSpec['format'], maxHeapMb: number): ReaderWorker | null {
  const reader = prestarted;
  prestarted = null;
  if (!reader) return null;
  if (reader.format === format && reader.maxHeapMb === maxHeapMb && !reader.failed && !reader.exited) {
    reader.worker.removeAllListeners('error');
    reader.worker.removeAllListeners('exit');
    return reader;
  }
  void reader.worker.terminate();
  return null;
}

/** Stops a prestarted worker nobody took (an import that failed before reading). */
export async function dropPrestarted(): Promise<void> {
  const reader = prestarted;
  prestarted = null;
  if (reader) await reader.worker.terminate();
}
