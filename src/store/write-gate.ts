// A write gate between the threads of one process that write to the same SQLite file (the hub's main thread and its
// job worker's thread): each takes the gate before it begins a write transaction and gives it back after the
// commit. Without it, the one that found the file locked polled for it (SQLITE_BUSY, then a pause of 1-4 ms): in
// bench/webhooks' end-to-end run the main thread spent a fifth of its time in such pauses, the lock long free. The
// gate wakes a waiter at the release. It is a plain mutex: a thread that dies waiting leaves nothing behind, and
// one that dies holding it is released by its host (releaseFor). Other processes on the file (an import process)
// are still waited for the SQLite way.
import { threadId } from 'node:worker_threads';
import { HubError } from '../errors.ts';

/** Atomics.waitAsync (Node 20 has it; TypeScript's lib here does not name it yet). */
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, index: number, value: number, timeoutMs?: number): { value: Promise<string> | string } }).waitAsync;

/** The one slot: the thread holding the gate, as 1 + its threadId (0: free). */
const HOLDER = 0;

export interface WriteGate {
  /** The shared memory, to post to another thread (openWriteGate there). */
  readonly buffer: SharedArrayBuffer;
  /** Waits until this thread holds the gate (up to timeoutMs, then store_unavailable). */
  acquire(timeoutMs: number): Promise<void>;
  release(): void;
  /** Frees the gate if the thread `deadThreadId` held it (one that ended mid-transaction): called by its host. */
  releaseFor(deadThreadId: number): void;
}

export function createWriteGate(): WriteGate {
  return openWriteGate(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
}

export function openWriteGate(buffer: SharedArrayBuffer): WriteGate {
  const a = new Int32Array(buffer);
  const me = threadId + 1;
  const free = (holder: number) => {
    if (Atomics.compareExchange(a, HOLDER, holder, 0) === holder) Atomics.notify(a, HOLDER);
  };
  return {
    buffer,
    async acquire(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const holder = Atomics.compareExchange(a, HOLDER, 0, me);
        if (holder === 0) return;
        const left = deadline - Date.now();
        if (left <= 0) throw new HubError('store_unavailable', `Waited ${timeoutMs} ms for the other thread's write to finish`);
        await waitAsync(a, HOLDER, holder, left).value;
      }
    },
    release() {
      free(me);
    },
    releaseFor(deadThreadId) {
      // A worker's threadId reads -1 once it has exited: the host keeps the id it had.
      if (deadThreadId >= 0) free(deadThreadId + 1);
    },
  };
}
