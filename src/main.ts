// `npm start`: the embedded hub in one process: the API on one port, the job worker (on a thread of its own), and a
// SQLite file under data/.
import { getRequestListener, type ServerType } from '@hono/node-server';
import { createServer } from 'node:http';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { bootstrapIfEmpty } from './bootstrap.ts';
import { ConfigError, loadConfig, type HubConfig } from './config.ts';
import { createHub, enqueueMaintenance, MAINTENANCE_EVERY_MS, type Hub } from './hub.ts';
import { startWorkerThread, type WorkerThread } from './jobs/worker-host.ts';
import { resolveEncryptionKey } from './lib/key-file.ts';
import { createLogger } from './lib/log.ts';
import { CollectedCounter } from './lib/metrics.ts';
import { BACKSTOP_PAGES, startCheckpointer, type Checkpointer, type CheckpointerStats } from './store/checkpointer.ts';
import { createSqliteStore, readLockStats, WRITE_LOCK_SLOTS, type WriteLockStats } from './store/sqlite.ts';
import { createWriteGate } from './store/write-gate.ts';
import { hookListener } from './app/hook-listener.ts';

function fail(message: string, code = 2): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

function listen(hub: Hub, config: HubConfig): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    // Webhooks take the direct path (app/hook-listener.ts); every other request, @hono/node-server's listener.
    const server = createServer(hookListener(hub.deps, getRequestListener(hub.app.fetch, { hostname: config.host })));
    server.listen(config.port, config.host, () => resolve(server));
    server.once('error', reject);
  });
}

async function main(): Promise<void> {
  let config: HubConfig;
  try {
    config = loadConfig();
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    fail(`Cannot use the data directory (HUB_DATA_DIR): ${(err as Error).message}`);
  }
  const log = createLogger(config.logLevel);
  let key: ReturnType<typeof resolveEncryptionKey>;
  try {
    key = resolveEncryptionKey(config.encryptionKey, config.dataDir);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  const dbPath = join(config.dataDir, 'hub.db');
  // 0 leaves the jobs to other processes on the same data (an API-only node).
  const threaded = config.workerConcurrency > 0 && config.workerThread;
  const gate = threaded ? createWriteGate() : undefined;
  // WAL checkpoints on a thread of their own, outside the write lock (store/checkpointer.ts); the connections then
  // checkpoint themselves only at the backstop.
  const walAutoCheckpoint = config.sqliteCheckpointMs > 0 ? BACKSTOP_PAGES : undefined;
  // Each thread's connection adds up its use of the file's one write lock here (shared memory, read for /metrics).
  const lockStats = { main: new Float64Array(new SharedArrayBuffer(WRITE_LOCK_SLOTS * 8)), worker: new Float64Array(new SharedArrayBuffer(WRITE_LOCK_SLOTS * 8)) };
  let store;
  try {
    store = createSqliteStore({ path: dbPath, cacheMb: config.sqliteCacheMb, gate, walAutoCheckpoint, lockStats: lockStats.main });
  } catch (err) {
    fail(`Cannot open the database ${dbPath}: ${(err as Error).message}`);
  }
  const checkpointer: Checkpointer | undefined =
    config.sqliteCheckpointMs > 0 ? startCheckpointer({ path: dbPath, everyMs: config.sqliteCheckpointMs, log: log.child({ part: 'checkpointer' }) }) : undefined;
  // Appwrite Storage exchanges of an embedded hub default to this project when it is configured.
  const appwrite = { endpoint: process.env.APPWRITE_ENDPOINT?.trim() || undefined, projectId: process.env.APPWRITE_PROJECT?.trim() || undefined, apiKey: process.env.APPWRITE_API_KEY?.trim() || undefined };
  // Large imports run in a process of their own on this file, with a heap sized for them (files/import-child.ts).
  const importProcess = { dbPath, cacheMb: config.sqliteCacheMb, walAutoCheckpoint, minBytes: config.files.importProcessMinBytes, onBusy: (listener: () => void) => store.onBusy(listener) };
  const hub = createHub({ config, store, encryptionKey: key.key, log, appwrite, importProcess });
  const registry = hub.deps.metrics.registry;
  // The hub's capacity on SQLite is the one writer's: held most of the time, the writes queue (its threads, and an
  // import process, take turns). By thread: main (the API and the dispatcher), worker (jobs, inbound webhooks applied).
  const threads = gate ? (['main', 'worker'] as const) : (['main'] as const);
  const byThread = (key: keyof WriteLockStats, scale = 1) => () => threads.map((thread) => ({ labels: { thread }, value: readLockStats(lockStats[thread])[key] * scale }));
  registry.register(new CollectedCounter('hub_sqlite_write_lock_held_seconds_total', 'Time a connection of the hub held the database\'s write lock, by thread.', byThread('heldMs', 1 / 1000)));
  registry.register(new CollectedCounter('hub_sqlite_write_lock_wait_seconds_total', 'Time the transactions of a connection waited for the write lock, by thread.', byThread('waitedMs', 1 / 1000)));
  registry.register(new CollectedCounter('hub_sqlite_commits_total', 'Group commits (each of one or more transactions), by thread.', byThread('commits')));
  registry.register(
    new CollectedCounter('hub_sqlite_run_ahead_total', 'Transaction bodies run ahead of the write lock, by thread and outcome: replayed as they ran, or rerun under the lock.', () =>
      threads.flatMap((thread) => {
        const stats = readLockStats(lockStats[thread]);
        return [
          { labels: { thread, outcome: 'replayed' }, value: stats.aheadReplayed },
          { labels: { thread, outcome: 'rerun' }, value: stats.aheadRerun },
        ];
      }),
    ),
  );
  if (checkpointer) {
    const stat = (key: keyof CheckpointerStats) => () => checkpointer.stats()[key];
    registry.register(new CollectedCounter('hub_sqlite_checkpoints_total', 'WAL checkpoints run by the checkpointer thread.', stat('checkpoints')));
    registry.register(new CollectedCounter('hub_sqlite_checkpoint_pages_total', 'WAL pages the checkpointer thread copied into the database file.', stat('pagesCopied')));
    registry.register(new CollectedCounter('hub_sqlite_wal_restarts_total', 'Times the checkpointer thread started the WAL over, all of it copied.', stat('restarts')));
    registry.register(new CollectedCounter('hub_sqlite_checkpoint_failures_total', 'WAL checkpoints that failed (each is tried again at the next turn).', stat('failures')));
  }
  const boot = await bootstrapIfEmpty(store, hub.deps.clock);

  let server: ServerType;
  try {
    server = await listen(hub, config);
  } catch (err) {
    await Promise.all([store.close(), checkpointer?.stop()]);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') fail(`Port ${config.port} on ${config.host} is already in use: stop the other process or set HUB_PORT.`);
    if (code === 'EACCES') fail(`Not allowed to listen on port ${config.port}: choose a port above 1024 with HUB_PORT.`);
    fail(`Cannot listen on ${config.host}:${config.port}: ${(err as Error).message}`);
  }
  let workerThread: WorkerThread | undefined;
  if (gate) {
    workerThread = startWorkerThread({ config, dbPath, encryptionKey: key.key, appwrite, gate: gate.buffer, lockStats: lockStats.worker }, { store, queue: hub.queue, gate, log: log.child({ part: 'worker-host' }), onBusy: (listener) => store.onBusy(listener) });
  } else if (config.workerConcurrency > 0) hub.worker.start();
  if (config.webhooks.concurrency > 0) hub.dispatcher.start();
  hub.startScheduler();

  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const base = config.publicUrl.replace(/:\d+$/, `:${port}`);
  const lines = ['', `  Hub running at ${base}`, `  API docs:      ${base}/docs`, `  Data:          ${dbPath}`];
  if (key.created) lines.push(`  Created the encryption key ${key.source} (back it up with the database).`);
  if (boot) {
    lines.push(
      '',
      `  Created workspace "${boot.workspace.name}" (${boot.workspace.id}) and its admin API key.`,
      '  It is shown this once; store it now:',
      '',
      `    ${boot.secret}`,
      '',
      `  Try: curl -H "Authorization: Bearer ${boot.secret}" ${base}/v1/workspace`,
    );
  }
  process.stdout.write(lines.join('\n') + '\n\n');
  log.info('hub started', { port, store: store.kind });
  // The shipped mappings are read and checked when first used (so that a function's cold start or a CLI command
  // skips them); a long-running hub checks them now that it answers, not in its first webhook's or import's time.
  setImmediate(() => void hub.deps.mappings.size);

  const scheduleMaintenance = () =>
    enqueueMaintenance(hub.queue, hub.deps.clock).catch((err: unknown) => log.warn('maintenance not scheduled', { err }));
  void scheduleMaintenance();
  const timer = setInterval(scheduleMaintenance, MAINTENANCE_EVERY_MS);
  timer.unref();

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) {
      log.warn('second signal: exiting at once', { signal });
      process.exit(1);
    }
    stopping = true;
    log.info('shutting down', { signal });
    clearInterval(timer);
    // Stop taking requests, let running jobs finish, then close the database.
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    if ('closeIdleConnections' in server) (server as { closeIdleConnections(): void }).closeIdleConnections();
    await Promise.all([hub.close(), workerThread?.stop(config.shutdownTimeoutMs)]);
    // Last: the last connection to close copies what is left of the WAL into the file.
    await checkpointer?.stop();
    await Promise.race([closed, new Promise((r) => setTimeout(r, 5000).unref())]);
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`The hub failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
