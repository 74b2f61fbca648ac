// `npm start` runs the job worker on a thread of its own (worker-thread.ts), with its own connection to the SQLite
// file: inbound webhooks are applied, files exchanged and maintenance run on a second core, while the main thread
// answers requests and sends deliveries. Each tells the other of work it made, once what made it has committed.
import type { Worker } from 'node:worker_threads';
import type { HubConfig } from '../config.ts';
import type { Logger } from '../lib/log.ts';
import { siblingEntry, startThread, stopThread } from '../lib/thread.ts';
import type { Store } from '../store/types.ts';
import type { WriteGate } from '../store/write-gate.ts';
import { announceDeliveries } from '../webhooks/fanout.ts';
import { onConnectionChanged } from '../webhooks/inbound.ts';
import type { JobQueue } from './queue.ts';

export interface WorkerThreadData {
  config: HubConfig;
  dbPath: string;
  encryptionKey: Uint8Array;
  appwrite: { endpoint?: string; projectId?: string; apiKey?: string };
  /** The write gate the two threads' connections share (write-gate.ts). */
  gate: SharedArrayBuffer;
  /** Where the thread's connection adds up its use of the write lock, for the main thread's metrics (SqliteStoreOptions.lockStats). */
  lockStats?: Float64Array;
}

export type ToThread = { t: 'wake' } | { t: 'busy' } | { t: 'connection'; id: string } | { t: 'stop'; timeoutMs: number };
export type FromThread = { t: 'ready' } | { t: 'deliveries' } | { t: 'stopped' };

const ENTRY = siblingEntry(import.meta.url, 'worker-thread');
/** After a thread that died, the next one starts this much later (a thread that cannot start is not spun). */
const RESTART_MS = 1000;

/**
 * Calls `send` once the transactions open or queued on `store` now have committed (a transaction queued now commits
 * with them or after them), however many times it is asked meanwhile: a hint to another connection must not arrive
 * before the rows it tells of can be read there.
 */
export function afterCommit(store: Pick<Store, 'transaction'>, send: () => void): () => void {
  let waiting = false;
  let again = false;
  const hint = () => {
    if (waiting) {
      again = true;
      return;
    }
    waiting = true;
    void store
      .transaction(async () => undefined)
      .catch(() => undefined)
      .finally(() => {
        waiting = false;
        send();
        if (again) {
          again = false;
          hint();
        }
      });
  };
  return hint;
}

export interface WorkerThread {
  /** Lets the running jobs finish (up to timeoutMs), closes the thread's database, and ends the thread. */
  stop(timeoutMs: number): Promise<void>;
}

export interface WorkerHostDeps {
  store: Store;
  queue: JobQueue;
  gate: WriteGate;
  log: Logger;
  /** The main thread's store's busy waits: an import process (forked by the worker's thread) is asked to yield. */
  onBusy(listener: () => void): () => void;
}

export function startWorkerThread(data: WorkerThreadData, deps: WorkerHostDeps): WorkerThread {
  const { log } = deps;
  let thread: Worker | null = null;
  let stopping = false;
  let stopped: Promise<void> | null = null;
  let restartTimer: ReturnType<typeof setTimeout> | undefined;

  const post = (m: ToThread) => thread?.postMessage(m);
  const wake = afterCommit(deps.store, () => post({ t: 'wake' }));
  // What the worker's thread must hear of: jobs queued here; this thread waiting for the file (an import process
  // there then yields); connections changed here (its receivers' cached routes and secrets).
  const unsubscribe = [deps.queue.onEnqueue(() => wake()), deps.onBusy(() => post({ t: 'busy' })), onConnectionChanged((id) => post({ t: 'connection', id }))];

  function start(): void {
    const t = startThread(ENTRY, { data });
    // Read now: once the thread has exited, its threadId reads -1.
    const threadId = t.threadId;
    thread = t;
    t.on('message', (m: FromThread) => {
      if (m.t === 'deliveries') announceDeliveries();
      else if (m.t === 'ready') log.info('worker thread started');
    });
    t.on('error', (err) => log.error('the worker thread failed', { err }));
    t.on('exit', (code) => {
      if (thread === t) thread = null;
      // Ended inside a transaction (terminated, or crashed): its connection is gone, and so must its hold be.
      deps.gate.releaseFor(threadId);
      if (stopping) return;
      log.error('the worker thread ended; starting another', { code, inMs: RESTART_MS });
      restartTimer = setTimeout(start, RESTART_MS);
    });
  }
  start();

  return {
    stop(timeoutMs) {
      stopped ??= (async () => {
        stopping = true;
        for (const off of unsubscribe) off();
        clearTimeout(restartTimer);
        const t = thread;
        if (!t) return;
        // The thread answers once its jobs are settled or abandoned (their leases then expire): a little over its own
        // timeout, then it is ended however far it got.
        if (await stopThread(t, { t: 'stop', timeoutMs } satisfies ToThread, timeoutMs + 2000)) log.warn('the worker thread did not stop in time; it was ended');
      })();
      return stopped;
    },
  };
}
