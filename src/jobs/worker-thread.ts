// The job worker's thread (see worker-host.ts): a hub over its own connection to the SQLite file, running only its
// worker. The main thread posts `wake` when it has queued jobs, `busy` when it waits for the file, `connection` when
// one changed, and `stop` to end it; this thread posts `deliveries` when its jobs have created some, so that the main
// thread's dispatcher sends them now.
import { parentPort, workerData } from 'node:worker_threads';
import { createHub } from '../hub.ts';
import { createLogger } from '../lib/log.ts';
import { BACKSTOP_PAGES } from '../store/checkpointer.ts';
import { createSqliteStore } from '../store/sqlite.ts';
import { openWriteGate } from '../store/write-gate.ts';
import { onDeliveriesCreated } from '../webhooks/fanout.ts';
import { connectionChanged } from '../webhooks/inbound.ts';
import { afterCommit, type FromThread, type ToThread, type WorkerThreadData } from './worker-host.ts';

const port = parentPort;
if (!port) throw new Error('worker-thread.ts runs as a worker thread (see worker-host.ts)');
const data = (workerData as { data: WorkerThreadData }).data;
const { config, dbPath } = data;
const log = createLogger(config.logLevel).child({ thread: 'worker' });
const mainBusy = new Set<() => void>();
// The main thread runs the checkpointer when this is set (main.ts): this connection, like its own, keeps only the backstop.
const walAutoCheckpoint = config.sqliteCheckpointMs > 0 ? BACKSTOP_PAGES : undefined;
const store = createSqliteStore({ path: dbPath, cacheMb: config.sqliteCacheMb, gate: openWriteGate(data.gate), walAutoCheckpoint, lockStats: data.lockStats });
const hub = createHub({
  config,
  store,
  encryptionKey: Buffer.from(data.encryptionKey),
  log,
  appwrite: data.appwrite,
  // An import process yields to this thread's waits and to the main thread's (passed on as `busy`).
  importProcess: {
    dbPath,
    cacheMb: config.sqliteCacheMb,
    walAutoCheckpoint,
    minBytes: config.files.importProcessMinBytes,
    onBusy: (listener) => {
      const off = store.onBusy(listener);
      mainBusy.add(listener);
      return () => {
        off();
        mainBusy.delete(listener);
      };
    },
  },
});
const post = (m: FromThread) => port.postMessage(m);
onDeliveriesCreated(afterCommit(store, () => post({ t: 'deliveries' })));

port.on('message', (m: ToThread) => {
  if (m.t === 'wake') hub.worker.wake();
  else if (m.t === 'busy') for (const listener of mainBusy) listener();
  else if (m.t === 'connection') connectionChanged(m.id);
  else if (m.t === 'stop') {
    void hub
      .close(m.timeoutMs)
      .catch((err: unknown) => log.error('the worker thread did not close cleanly', { err }))
      .finally(() => {
        post({ t: 'stopped' });
        port.close();
      });
  }
});
// Measured: the first burst of webhooks after a start waited ~0.7 s for this, compiled on first use.
hub.warm();
hub.worker.start();
post({ t: 'ready' });
