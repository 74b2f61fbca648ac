// The reading half of an import: each record of a staged file read, mapped to the action's input and checked
// against the action's schema, or failed with the reasons a report shows. It runs on the import's own thread for
// small files, and in a worker thread for large ones (read-worker.ts), so parsing, mapping and validating one batch
// overlap with applying the batch before on the main thread; both give the same items in the same order.
import { HubError, isHubError, type ErrorCode, type FieldError } from '../errors.ts';
import type { CompiledMapping, PortableMapping } from '../mappings/compile.ts';
import { validatorFor } from '../schemas/registry.ts';
import { toFieldErrors } from '../schemas/validate.ts';
import { fileFailure, isFileFailure, reasonOf } from './failure.ts';
import { readFileChunks, type FileSpec, type ReadItem, type RecordError } from './index.ts';
import { startReader, takePrestarted, WORKER_HEAP_MB } from './reader-boot.ts';

/** One failed row as the report lists it. */
export interface RowFailure {
  row: number | null;
  column: string | null;
  field: string | null;
  code: string;
  message: string;
}

/** A record as the import sees it: the action's input, or why the row failed. */
export type Decided = { row: number; value: Record<string, unknown>; failures?: undefined } | { row: number; value?: undefined; failures: RowFailure[] };

export const MAX_MESSAGE = 1000;
/** Items handed over at a time (one message when a worker reads). */
const CHUNK = 1000;
/** Chunks a worker may be ahead of the import (more than a batch grows to, so it reads on while one commits). */
const AHEAD = 8;

export function failureOfRead(error: RecordError): RowFailure {
  return { row: error.row, column: error.column, field: null, code: error.code, message: error.message.slice(0, MAX_MESSAGE) };
}

/** What a reader needs, as plain data a worker can be given. */
export interface DecideJob {
  path: string;
  file: FileSpec;
  /** The mapping with the mappings it reuses, or null when records are the input as they are. */
  mapping: PortableMapping | null;
  /** The schema each input is checked against here; null when the mapping already checks its target. */
  schema: string | null;
  /** Items (records and unreadable rows) to pass over: the run's cursor. */
  skip: number;
}

/** Maps and checks one read item. */
export function makeDecider(mapping: CompiledMapping | null, schema: string | null): (item: ReadItem) => Decided {
  const validate = schema === null ? null : validatorFor(schema);
  return (item) => {
    const row = item.row;
    if (item.kind === 'error') return { row, failures: [failureOfRead(item.error)] };
    let input = item.value;
    if (mapping) {
      const r = mapping.apply(input, row);
      if (!r.ok) {
        return { row, failures: r.errors.slice(0, 20).map((e) => ({ row, column: e.sourcePath, field: e.targetPath || null, code: e.code, message: e.message.slice(0, MAX_MESSAGE) })) };
      }
      input = r.value;
    }
    if (validate && !validate(input)) {
      return { row, failures: toFieldErrors(validate.errors).slice(0, 20).map((e) => ({ row, column: null, field: e.field || null, code: e.code, message: e.message.slice(0, MAX_MESSAGE) })) };
    }
    return { row, value: input };
  };
}

/**
 * The decided items of `source` after the first `skip`, in chunks. A failure of the file as a whole is thrown (as
 * the readers throw it) after the chunks before it.
 */
export async function* decideItems(source: AsyncIterable<ReadItem[]>, decide: (item: ReadItem) => Decided, skip: number): AsyncGenerator<Decided[]> {
  let seen = 0;
  let chunk: Decided[] = [];
  try {
    for await (const items of source) {
      for (const item of items) {
        if (seen++ < skip) continue;
        chunk.push(decide(item));
        if (chunk.length >= CHUNK) {
          yield chunk;
          chunk = [];
        }
      }
    }
  } catch (err) {
    if (chunk.length) yield chunk;
    throw err;
  }
  if (chunk.length) yield chunk;
}

/**
 * A chunk as a worker posts it: the inputs column by column, a column of text that repeats (a location, a date)
 * as a dictionary and indexes. The structured clone copies this several times faster than one object per record
 * (measured: ~0.4 µs a record to copy and rebuild, against ~1.2 µs), and the copy runs on the importing thread.
 */
export interface PackedChunk {
  rows: Float64Array;
  keys: string[];
  columns: ({ values: unknown[] } | { dict: unknown[]; index: Uint32Array })[];
  /** Items that failed, by position in the chunk. */
  failures: [number, RowFailure[]][];
}

export function packChunk(items: Decided[]): PackedChunk {
  const n = items.length;
  const rows = new Float64Array(n);
  const keys: string[] = [];
  const at = new Map<string, number>();
  const cols: unknown[][] = [];
  const failures: [number, RowFailure[]][] = [];
  for (let i = 0; i < n; i++) {
    const item = items[i]!;
    rows[i] = item.row;
    if (item.failures) {
      failures.push([i, item.failures]);
      continue;
    }
    const value = item.value;
    for (const key in value) {
      let c = at.get(key);
      if (c === undefined) {
        at.set(key, (c = keys.length));
        keys.push(key);
        cols.push(new Array(n));
      }
      cols[c]![i] = value[key];
    }
  }
  const columns = cols.map((values) => {
    const dict = new Map<unknown, number>();
    const index = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (v !== undefined && typeof v !== 'string') return { values };
      let d = dict.get(v);
      if (d === undefined) {
        if (dict.size * 4 >= n) return { values };
        dict.set(v, (d = dict.size));
      }
      index[i] = d;
    }
    return { dict: [...dict.keys()], index };
  });
  return { rows, keys, columns, failures };
}

export function unpackChunk(chunk: PackedChunk): Decided[] {
  const n = chunk.rows.length;
  const out: Decided[] = new Array(n);
  const failed = new Map(chunk.failures);
  // A loop, not Array.from(index, fn): that goes through the typed array's iterator, one result object per value
  // (a sampling profile of a million-row import: 160 MB of them, an eighth of what the importing thread allocated).
  const cols = chunk.columns.map((c) => {
    if ('values' in c) return c.values;
    const values = new Array<unknown>(n);
    for (let i = 0; i < n; i++) values[i] = c.dict[c.index[i]!];
    return values;
  });
  const keys = chunk.keys;
  for (let i = 0; i < n; i++) {
    const row = chunk.rows[i]!;
    const failures = failed.get(i);
    if (failures) {
      out[i] = { row, failures };
      continue;
    }
    const value: Record<string, unknown> = {};
    for (let k = 0; k < keys.length; k++) {
      const v = cols[k]![i];
      if (v !== undefined) value[keys[k]!] = v;
    }
    out[i] = { row, value };
  }
  return out;
}

/** Messages of a reading worker. */
export type WorkerMessage =
  | { t: 'items'; chunk: PackedChunk }
  | { t: 'end' }
  | { t: 'fatal'; error: RecordError; retryable: boolean }
  | { t: 'failed'; message: string; code?: ErrorCode; errors?: FieldError[]; retryable?: boolean };

/** Workers started so far (for tests that need to know which path ran). */
export const readerStats = { workers: 0 };

/**
 * The same items as decideItems over the file at job.path, read, mapped and checked in a worker thread. The worker
 * runs at most a few chunks ahead; it is stopped when the consumer stops. A worker that dies is an error a retry may
 * cure (the run resumes at its cursor).
 */
export async function* decideInWorker(job: DecideJob, options: { maxHeapMb?: number } = {}): AsyncGenerator<Decided[]> {
  const maxHeapMb = options.maxHeapMb ?? WORKER_HEAP_MB;
  const { worker } = takePrestarted(job.file.format, maxHeapMb) ?? startReader(job.file.format, maxHeapMb);
  worker.postMessage({ job, ahead: AHEAD });
  readerStats.workers++;
  const inbox: WorkerMessage[] = [];
  let broken: unknown = null;
  let exited = false;
  /** The last row handed to the import, for a message if the worker runs out of memory. */
  let lastRow = 0;
  let wake: (() => void) | null = null;
  const poke = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  worker.on('message', (m: WorkerMessage) => {
    inbox.push(m);
    poke();
  });
  worker.on('error', (err) => {
    broken = err;
    poke();
  });
  worker.on('exit', () => {
    exited = true;
    poke();
  });
  try {
    for (;;) {
      while (inbox.length === 0) {
        if ((broken as { code?: string } | null)?.code === 'ERR_WORKER_OUT_OF_MEMORY') {
          // Not something another try cures: a record too large for the reader's heap.
          throw fileFailure({ row: null, column: null, code: 'record_too_large', message: `Reading the file ran out of memory (${maxHeapMb} MB) after row ${lastRow}: a record is too large` });
        }
        if (broken || exited) {
          throw new HubError('internal_error', `The file reader stopped: ${broken ? reasonOf(broken) : 'it exited'}`, { cause: broken ?? undefined, retryable: true });
        }
        await new Promise<void>((resolve) => (wake = resolve));
      }
      const m = inbox.shift()!;
      if (m.t === 'items') {
        worker.postMessage(1);
        const items = unpackChunk(m.chunk);
        lastRow = items[items.length - 1]?.row ?? lastRow;
        yield items;
      } else if (m.t === 'end') return;
      else if (m.t === 'fatal') throw fileFailure(m.error, { retryable: m.retryable });
      else if (m.code) throw new HubError(m.code, m.message, { errors: m.errors, retryable: m.retryable });
      else throw new HubError('internal_error', `The file reader failed: ${m.message}`, { retryable: true });
    }
  } finally {
    await worker.terminate();
  }
}

/** In a worker: reads the job's file and posts its chunks, staying at most `ahead` chunks in front of the import. */
export async function runReadWorker(job: DecideJob, decide: (item: ReadItem) => Decided, ahead: number, port: { postMessage(m: WorkerMessage): void; on(event: 'message', fn: () => void): void }, open: () => NodeJS.ReadableStream): Promise<void> {
  let inFlight = 0;
  let wake: (() => void) | null = null;
  port.on('message', () => {
    inFlight--;
    const w = wake;
    wake = null;
    w?.();
  });
  try {
    for await (const items of decideItems(readFileChunks(open() as never, job.file), decide, job.skip)) {
      port.postMessage({ t: 'items', chunk: packChunk(items) });
      if (++inFlight >= ahead) await new Promise<void>((resolve) => (wake = resolve));
    }
    port.postMessage({ t: 'end' });
  } catch (err) {
    if (isFileFailure(err)) port.postMessage({ t: 'fatal', error: err.extra!.fileError as RecordError, retryable: err.retryable });
    else if (isHubError(err)) port.postMessage({ t: 'failed', message: err.message, code: err.code, errors: err.errors, retryable: err.retryable });
    else port.postMessage({ t: 'failed', message: reasonOf(err) });
  }
}
