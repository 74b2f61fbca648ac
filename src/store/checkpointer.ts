// Background WAL checkpoints for the embedded hub. Left to itself, SQLite copies the WAL back into the database file
// (a checkpoint) in the commit that takes the WAL past 1,000 pages: the committing connection does the copying and
// the fsyncs while it holds the write lock, so every other writer waits, and the requests in that commit wait with
// it. In bench/webhooks' end-to-end run those commits took ~10 ms each and made up half of the worker's commit time
// and two thirds of the main thread's. The checkpointer does the copying on a thread of its own, with a connection
// of its own, outside the lock (a PASSIVE checkpoint waits for no reader or writer, and none waits for it). The
// hub's connections keep SQLite's own checkpoint only as a backstop (BACKSTOP_PAGES), for when it falls behind or
// is not running.
import type { Worker } from 'node:worker_threads';
import type { Logger } from '../lib/log.ts';
import { siblingEntry, startThread, stopThread } from '../lib/thread.ts';

export interface CheckpointerData {
  /** The database file. */
  path: string;
  /** How often the thread looks for committed pages to copy. */
  everyMs: number;
}

export type ToCheckpointer = { t: 'stop' };
export type FromCheckpointer =
  | { t: 'ready' }
  | { t: 'checkpoint'; copied: number; restarted: boolean }
  | { t: 'failed'; code: string; message: string };

/**
 * The WAL size (pages) at which a hub connection checkpoints in its own commit after all, when the checkpointer runs:
 * 64 MB at 4 KB pages. SQLite's default, used without the checkpointer, is 1,000.
 */
export const BACKSTOP_PAGES = 16_384;

const ENTRY = siblingEntry(import.meta.url, 'checkpoint-thread');
/** After a thread that failed, the next starts this much later, doubling up to a minute. */
const RESTART_MS = 1000;
const MAX_RESTART_MS = 60_000;

export interface CheckpointerStats {
  /** Checkpoints run (turns that found nothing new to copy are not counted). */
  checkpoints: number;
  /** WAL frames (pages) copied into the database file. */
  pagesCopied: number;
  /** Times the WAL was started over from its beginning once everything in it was copied. */
  restarts: number;
  /** Checkpoints that failed (another connection's checkpoint under way is not a failure: it is the next turn's). */
  failures: number;
}

export interface Checkpointer {
  /** Resolves once the thread has opened the file (it goes on retrying after a failure; this waits for the first). */
  readonly ready: Promise<void>;
  stats(): CheckpointerStats;
  /** Ends the thread and closes its connection (the last connection to close checkpoints whatever is left). */
  stop(): Promise<void>;
}

export function startCheckpointer(options: { path: string; everyMs: number; log: Logger }): Checkpointer {
  const { log } = options;
  const stats: CheckpointerStats = { checkpoints: 0, pagesCopied: 0, restarts: 0, failures: 0 };
  let thread: Worker | null = null;
  let stopping = false;
  let stopped: Promise<void> | null = null;
  let restartTimer: ReturnType<typeof setTimeout> | undefined;
  let restartMs = RESTART_MS;
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));

  function start(): void {
    const t = startThread(ENTRY, { data: { path: options.path, everyMs: options.everyMs } satisfies CheckpointerData, resourceLimits: { maxOldGenerationSizeMb: 32 } });
    thread = t;
    // It only waits on a timer: it must not keep the process alive.
    t.unref();
    t.on('message', (m: FromCheckpointer) => {
      if (m.t === 'ready') {
        restartMs = RESTART_MS;
        log.info('checkpointer started', { everyMs: options.everyMs });
        markReady();
      } else if (m.t === 'checkpoint') {
        stats.checkpoints++;
        stats.pagesCopied += m.copied;
        if (m.restarted) stats.restarts++;
      } else if (m.t === 'failed') {
        stats.failures++;
        // One line per failure would flood the log at ten turns a second: the first, then every hundredth.
        if (stats.failures % 100 === 1) log.warn('a WAL checkpoint failed; the next turn tries again', { code: m.code, message: m.message, failures: stats.failures });
      }
    });
    t.on('error', (err) => log.error('the checkpointer thread failed', { err }));
    t.on('exit', () => {
      if (thread === t) thread = null;
      if (stopping) return;
      log.error('the checkpointer thread ended; starting another (meanwhile the connections checkpoint themselves at the backstop)', { inMs: restartMs, backstopPages: BACKSTOP_PAGES });
      restartTimer = setTimeout(start, restartMs);
      restartTimer.unref();
      restartMs = Math.min(restartMs * 2, MAX_RESTART_MS);
    });
  }
  start();

  return {
    ready,
    stats: () => ({ ...stats }),
    stop() {
      stopped ??= (async () => {
        stopping = true;
        clearTimeout(restartTimer);
        const t = thread;
        if (!t) return;
        // A checkpoint under way finishes first; one stuck in the file system is not waited for past this.
        if (await stopThread(t, { t: 'stop' } satisfies ToCheckpointer, 5000)) log.warn('the checkpointer thread did not stop in time; it was ended');
      })();
      return stopped;
    },
  };
}
