// The checkpointer's thread (see checkpointer.ts): a connection of its own to the SQLite file that copies committed
// WAL pages into the database (a PASSIVE checkpoint: it waits for no reader or writer, and none waits for it).
// Posts what each checkpoint did, and failures; `stop` ends it.
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';
import type { FromCheckpointer, CheckpointerData, ToCheckpointer } from './checkpointer.ts';
import { isBusy } from './sqlite-busy.ts';

const port = parentPort;
if (!port) throw new Error('checkpoint-thread.ts runs as a worker thread (see checkpointer.ts)');
const { path, everyMs } = (workerData as { data: CheckpointerData }).data;
const post = (m: FromCheckpointer) => port.postMessage(m);

const db = new Database(path, { fileMustExist: true });
// A writer's lock is never waited for: a checkpoint that finds one busy tries again at its next turn.
db.pragma('busy_timeout = 0');

/** WAL frames past which a checkpoint that copied everything also starts the WAL over (SQLite's own threshold). */
const RESTART_FRAMES = 1000;

let seen: unknown = null;
let behind = false;
/** The last checkpoint's result, to count only the frames each one copied (the WAL only grows until it starts over). */
let last = { log: 0, checkpointed: 0 };
type Result = { busy: number; log: number; checkpointed: number };

function tick(): void {
  try {
    // data_version changes when another connection commits: nothing new and nothing left over, nothing to do.
    const version = db.pragma('data_version', { simple: true });
    if (version === seen && !behind) return;
    const [r] = db.pragma('wal_checkpoint(PASSIVE)') as Result[];
    seen = version;
    // Frames a reader still needed, or written while this one ran: the next turn copies them.
    behind = r!.log > r!.checkpointed;
    // A passive checkpoint copies, but never starts the WAL over: a writer does that when it begins with every frame
    // copied, which under a steady stream of commits is seldom, and the file would grow to the backstop. Everything
    // copied, a RESTART does it now. It holds the write lock only to copy what was committed since (mostly nothing,
    // so no fsync) and to reset the WAL's header; allowed no wait, it gives up when a writer or a reader is under
    // way, and the next turn tries again. A hub writer that meets its lock waits a moment, as for any other process.
    let restarted = false;
    if (!behind && r!.log >= RESTART_FRAMES) {
      try {
        const [again] = db.pragma('wal_checkpoint(RESTART)') as Result[];
        restarted = again!.busy === 0;
      } catch (err) {
        if (!isBusy(err)) throw err;
      }
    }
    const copied = r!.log < last.log ? r!.checkpointed : r!.checkpointed - last.checkpointed;
    last = restarted ? { log: 0, checkpointed: 0 } : r!;
    post({ t: 'checkpoint', copied, restarted });
  } catch (err) {
    behind = true;
    // Another connection's checkpoint or lock under way is not a failure: the next turn's.
    if (!isBusy(err)) post({ t: 'failed', code: (err as { code?: string }).code ?? 'unknown', message: (err as Error).message });
  }
}

const timer = setInterval(tick, everyMs);
port.on('message', (m: ToCheckpointer) => {
  if (m.t !== 'stop') return;
  clearInterval(timer);
  db.close();
  port.close();
});
post({ t: 'ready' });
