// A write gate between the threads of one process that write to the same SQLite file (the hub's main thread and its
// job worker's thread): each takes the gate before it begins a write transaction and gives it back after the
// commit. Without it, the one that found the file locked polled for it (SQLITE_BUSY, then a pause of 1-4 ms): in
// bench/webhooks' end-to-end run the main thread spent a fifth of its time in such pauses, the lock long free. The
// gate hands over at the release, in turn (a ticket lock, so neither thread can take it back ahead of the other).
// Other processes on the file (an import process) are still waited for the SQLite way.
import { HubError } from '../errors.ts';
import { threadId } from 'node:worker_threads';

/** Atomics.waitAsync (Node 20 has it; TypeScript's lib here does not name it yet). */
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, index: number, value: number, timeoutMs?: number): { value: Promise<string> | string } }).waitAsync;

/** Slots of the shared array: the next ticket, the ticket served, the thread holding the gate (0: none; ids are 1 + threadId). */
const NEXT = 0;
const SERVING = 1;
const HOLDER = 2;

export interface WriteGate {
  /** The shared memory, to post to another thread (openWriteGate there). */
  readonly buffer: SharedArrayBuffer;
  /** Waits for this thread's turn (up to timeoutMs, then store_unavailable). */
  acquire(timeoutMs: number): Promise<void>;
  release(): void;
  /** Frees the gate when `deadThreadId` held it (a thread that ended mid-transaction): called by its host. */
  releaseFor(deadThreadId: number): void;
}

export function createWriteGate(): WriteGate {
  return openWriteGate(new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT));
}

export function openWriteGate(buffer: SharedArrayBuffer): WriteGate {
  const a = new Int32Array(buffer);
  const me = threadId + 1;
  const serveNext = () => {
    Atomics.store(a, HOLDER, 0);
    Atomics.add(a, SERVING, 1);
    Atomics.notify(a, SERVING);
  };
  return {
    buffer,
    async acquire(timeoutMs) {
      const ticket = Atomics.add(a, NEXT, 1);
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const serving = Atomics.load(a, SERVING);
        if (serving === ticket) break;
        const left = deadline - Date.now();
        if (left <= 0) {
          // The ticket is spent: the gate must still pass it on, or every later one waits for it for ever.
          void waitForTurnToSkip(a, ticket);
          throw new HubError('store_unavailable', `Waited ${timeoutMs} ms for the other thread's write to finish`);
        }
        await waitAsync(a, SERVING, serving, left).value;
      }
      Atomics.store(a, HOLDER, me);
    },
    release() {
      if (Atomics.load(a, HOLDER) === me) serveNext();
    },
    releaseFor(deadThreadId) {
      if (Atomics.compareExchange(a, HOLDER, deadThreadId + 1, 0) === deadThreadId + 1) {
        Atomics.add(a, SERVING, 1);
        Atomics.notify(a, SERVING);
      }
    },
  };
}

/** A ticket given up on: when its turn comes, it is passed straight on. */
async function waitForTurnToSkip(a: Int32Array, ticket: number): Promise<void> {
  for (;;) {
    const serving = Atomics.load(a, SERVING);
    if (serving === ticket) break;
    await waitAsync(a, SERVING, serving).value;
  }
  Atomics.add(a, SERVING, 1);
  Atomics.notify(a, SERVING);
}
