// The composition root: builds every part of the hub from a config and a store. `npm start`, the tests and the
// Appwrite functions all start here, so they run the same code.
import { createApp, type HubApp } from './app/create-app.ts';
import type { AppDeps } from './app/deps.ts';
import { createMemoryRateLimiter, type RateLimiter } from './app/middleware/rate-limit.ts';
import { createKeyCache } from './auth/key-cache.ts';
import { createTokenService } from './auth/tokens.ts';
import type { HubConfig } from './config.ts';
import type { ConnectorDefinition } from './connectors/define.ts';
import { CONNECTORS } from '../connectors/index.ts';
import type { MappingDocument } from './mappings/document.ts';
import { lazyFileMappings } from './mappings/files.ts';
import { createJobQueue, JOB_STATES, type JobQueue } from './jobs/queue.ts';
import { createWorker, type JobHandler, type Worker } from './jobs/worker.ts';
import { systemClock, type Clock } from './lib/clock.ts';
import { createLogger, type Logger } from './lib/log.ts';
import { CollectedGauge, createHubMetrics } from './lib/metrics.ts';
import { createCipher } from './lib/secrets.ts';
import { compileRowValidators } from './store/rows.ts';
import type { Store } from './store/types.ts';
import { createDispatcher, type Dispatcher } from './webhooks/dispatcher.ts';
import { onDeliveriesCreated } from './webhooks/fanout.ts';
import { createInboundReceiver, INBOX_BATCH, inboxHandler, INBOX_JOB } from './webhooks/inbound.ts';
import { ENDPOINT_MOVE_JOB, ENDPOINT_PURGE_JOB, endpointMoveHandler, endpointPurgeHandler, queueTheRest } from './webhooks/manage.ts';
import { createAddressPolicy } from './webhooks/ssrf.ts';
import type { ImportProcessOptions } from './files/import-child.ts';
import type { FilesDeps } from './files/runner.ts';
import { EXCHANGE_JOB } from './files/runs.ts';
import { deleteFinishedRuns, sweepSpool } from './files/retention.ts';
import { pruneEachWorkspace, pruneRows } from './store/prune.ts';
import type { UploadShelf } from './files/upload-shelf.ts';
import { startScheduler } from './schedules/scheduler.ts';
import type { TransportEnv } from './files/transports/index.ts';
import { createTransport, type Transport } from './webhooks/transport.ts';

export interface HubOptions {
  config: HubConfig;
  store: Store;
  /** The 32-byte key that encrypts credentials and signing keys. */
  encryptionKey: Buffer;
  clock?: Clock;
  log?: Logger;
  fetch?: typeof fetch;
  connectors?: readonly ConnectorDefinition<any, any>[];
  /** The shipped mappings (default: the valid files of mappings/). */
  mappings?: ReadonlyMap<string, MappingDocument>;
  rateLimiter?: RateLimiter;
  /** Extra job handlers by type (built-in maintenance handlers are always there). */
  handlers?: Record<string, JobHandler>;
  /** How outbound webhooks are sent (default: HTTP with the SSRF guard of config.webhooks.allow). */
  transport?: Transport;
  /** For webhook retry jitter; tests fix it. */
  random?: () => number;
  /** Appwrite project defaults for Storage transports (endpoint, project, API key). */
  appwrite?: TransportEnv['appwrite'];
  /** Inbound webhooks one job gathers and one transaction applies (default 64 on SQLite, 1 on Appwrite); tests set 1 to apply one by one. */
  inboxBatch?: number;
  /** Records per import transaction (default 1000 on SQLite, 50 on Appwrite). */
  importBatchSize?: number;
  /** Large imports in a process of their own (an embedded hub on a SQLite file; main.ts sets it). */
  importProcess?: ImportProcessOptions;
}

export interface Hub {
  app: HubApp;
  deps: AppDeps;
  queue: JobQueue;
  worker: Worker;
  /** Sends outbound webhooks; `start()` it beside the worker. */
  dispatcher: Dispatcher;
  /** Called when webhook deliveries are written in this process (the Appwrite api function starts a worker). */
  onDeliveriesCreated(listener: () => void): () => void;
  /** Starts the embedded scheduler: due schedules become jobs (Appwrite's scheduler function ticks instead). */
  startScheduler(): void;
  /** The job handlers the worker runs, by type (tests run jobs through them one by one). */
  handlers: Readonly<Record<string, JobHandler>>;
  /**
   * Does now what the first webhooks would otherwise wait for: reads and checks the shipped mapping files and
   * compiles the row validators. The worker's thread calls it before it takes jobs.
   */
  warm(): void;
  /** Stops the worker and the dispatcher (waiting for work in flight up to the timeout) and closes the store. */
  close(timeoutMs?: number): Promise<void>;
}

export const MAINTENANCE_JOB = 'maintenance.cleanup';
export const MAINTENANCE_EVERY_MS = 3600_000;

/** Enqueues this hour's maintenance job: one per hour, whichever process or tick gets there first. */
export function enqueueMaintenance(queue: JobQueue, clock: Clock) {
  const hour = Math.floor(clock.now() / MAINTENANCE_EVERY_MS);
  return queue.enqueue({ type: MAINTENANCE_JOB, payload: {}, dedupeKey: `${MAINTENANCE_JOB}:${hour}`, maxAttempts: 3 });
}

const DAY_MS = 86_400_000;

/**
 * Deletes what has outlived its use: expired idempotency records, finished jobs, old events, file runs and
 * spool files past their retention. The audit log is kept. Idempotent, so at-least-once delivery is fine.
 */
function maintenanceHandler(store: Store, clock: Clock, config: HubConfig): JobHandler {
  return async () => {
    const now = clock.now();
    const before = (days: number) => new Date(now - days * DAY_MS).toISOString();
    // Each table pruned a chunk at a time along an index (store/prune.ts), so that webhooks and the worker go on.
    const idempotencyDeleted = await pruneRows(store, 'idempotency_keys', { expiresAt: { lt: new Date(now).toISOString() } });
    const jobsCutoff = before(config.jobRetentionDays);
    // runAt bounds the scan of the (state, runAt) index: a job runs at or after runAt, so one finished before the
    // cutoff was due before it too (a job cancelled before it was due goes once its runAt has passed the cutoff).
    const jobsDeleted = await pruneRows(store, 'jobs', { state: { in: ['succeeded', 'cancelled', 'dead'] }, runAt: { lt: jobsCutoff }, finishedAt: { lt: jobsCutoff } });
    const eventsCutoff = before(config.eventRetentionDays);
    const eventsDeleted = await pruneEachWorkspace(store, 'events', (workspaceId) => ({ workspaceId, time: { lt: eventsCutoff } }));
    // Attempt logs, finished deliveries and applied inbound webhooks: kept for inspection and replay, then dropped.
    const attemptsCutoff = before(config.webhooks.attemptRetentionDays);
    const attemptsDeleted = await pruneEachWorkspace(store, 'webhook_attempts', (workspaceId) => ({ workspaceId, at: { lt: attemptsCutoff } }));
    // createdAt bounds the scan of the (workspaceId, createdAt) index: a delivery last changed before the cutoff was made before it.
    const deliveriesDeleted = await pruneEachWorkspace(store, 'webhook_deliveries', (workspaceId) => ({
      workspaceId,
      createdAt: { lt: jobsCutoff },
      state: { in: ['delivered', 'dead'] },
      updatedAt: { lt: jobsCutoff },
    }));
    const inboxDeleted = await pruneEachWorkspace(store, 'inbox', (workspaceId) => ({
      workspaceId,
      receivedAt: { lt: jobsCutoff },
      status: { in: ['processed', 'ignored', 'failed'] },
    }));
    const fileRunsDeleted = await deleteFinishedRuns(store, before(config.files.runRetentionDays));
    const spoolFilesDeleted = await sweepSpool(store, config.files.spoolDir, now);
    return { idempotencyDeleted, jobsDeleted, eventsDeleted, attemptsDeleted, deliveriesDeleted, inboxDeleted, fileRunsDeleted, spoolFilesDeleted };
  };
}

/** The Storage upload shelf, its module (the Storage transport) loaded on first use: most requests never upload. */
function lazyStorageShelf(options: Parameters<typeof import('./files/upload-shelf.ts').createStorageShelf>[0]): UploadShelf {
  let shelf: Promise<UploadShelf> | undefined;
  const get = () => (shelf ??= import('./files/upload-shelf.ts').then((m) => m.createStorageShelf(options)));
  return {
    put: async (runId, format, staged) => (await get()).put(runId, format, staged),
    fetch: async (runId, format, path) => (await get()).fetch(runId, format, path),
    finish: async (runId, format, outcome) => (await get()).finish(runId, format, outcome),
  };
}

/**
 * The file exchange's job handler, loaded on its first job: readers, writers and transports pull in exceljs, ssh2
 * and nodemailer, which an API-only process (an Appwrite function answering requests) never needs to parse.
 */
function lazyExchangeHandler(deps: FilesDeps): JobHandler {
  let loaded: Promise<JobHandler> | undefined;
  return async (job, ctx) => {
    loaded ??= import('./files/runner.ts').then((m) => m.exchangeHandler(deps));
    return (await loaded)(job, ctx);
  };
}

export function createHub(options: HubOptions): Hub {
  const { config, store } = options;
  const clock = options.clock ?? systemClock;
  const log = options.log ?? createLogger(config.logLevel);
  const cipher = createCipher(options.encryptionKey);
  const metrics = createHubMetrics();
  // On SQLite, transactions that queue up commit together: claims and outcomes of many jobs cost one commit.
  const queue = createJobQueue({ store, clock, leaseMs: config.jobLeaseMs, log: log.child({ part: 'jobs' }), groupWrites: store.kind === 'sqlite' });
  metrics.registry.register(
    new CollectedGauge('hub_jobs', 'Jobs by state.', async () => {
      const counts = await queue.countByState();
      return JOB_STATES.map((state) => ({ labels: { state }, value: counts[state] ?? 0 }));
    }),
  );
  const policy = createAddressPolicy({ allow: config.webhooks.allow });
  // As many sockets per receiver as deliveries may be in flight: one slow endpoint still cannot take them all from
  // the others, since each endpoint's deliveries are bounded by what is due for it.
  const transport = options.transport ?? createTransport({ policy, maxSockets: Math.max(1, config.webhooks.concurrency) });
  const fetchFn = options.fetch ?? globalThis.fetch;
  const connectors = options.connectors ?? CONNECTORS;
  const mappings = options.mappings ?? lazyFileMappings();
  // On SQLite a burst of webhooks gathers into a job per batch (Appwrite keeps a job, and an execution, for each).
  const inboxBatch = options.inboxBatch ?? (store.kind === 'appwrite' ? INBOX_BATCH.appwrite : INBOX_BATCH.sqlite);
  const inboundDeps = { store, clock, cipher, log: log.child({ part: 'inbound' }), fetch: fetchFn, connectors, mappings, queue, webhooksPerJob: inboxBatch };
  const receiver = createInboundReceiver(inboundDeps);
  const dispatcher = createDispatcher({
    store,
    clock,
    cipher,
    transport,
    config: { ...config.webhooks, concurrency: Math.max(1, config.webhooks.concurrency) },
    log: log.child({ part: 'dispatcher' }),
    random: options.random,
    attemptsCounter: metrics.deliveries,
    // An endpoint it disables gets its backlog paused by a job, as an API disable does.
    queueTheRest: (tx, endpoint) => queueTheRest(tx, queue, endpoint, 'disabled'),
    // Its bounds follow store.writesPerTransaction (Appwrite's per-transaction operations): dispatcherBounds.
  });
  // On Appwrite the execution that receives an upload is not the one that imports it: uploads wait in Storage.
  const aw = options.appwrite;
  const uploads = store.kind === 'appwrite' && aw?.endpoint && aw.projectId && aw.apiKey ? lazyStorageShelf({ endpoint: aw.endpoint, projectId: aw.projectId, apiKey: aw.apiKey, fetch: options.fetch }) : undefined;
  const handlers: Record<string, JobHandler> = {
    [MAINTENANCE_JOB]: maintenanceHandler(store, clock, config),
    [INBOX_JOB]: inboxHandler(inboundDeps, receiver, inboxBatch),
    [ENDPOINT_PURGE_JOB]: endpointPurgeHandler(store),
    [ENDPOINT_MOVE_JOB]: endpointMoveHandler(store, clock),
    [EXCHANGE_JOB]: lazyExchangeHandler({
      store,
      clock,
      cipher,
      log: log.child({ part: 'files' }),
      mappings,
      spoolDir: config.files.spoolDir,
      // Appwrite transactions take fewer operations; on SQLite batches grow while they commit quickly.
      batchSize: options.importBatchSize ?? (store.kind === 'appwrite' ? 50 : 1000),
      maxBatchSize: options.importBatchSize ?? (store.kind === 'appwrite' ? 50 : 4000),
      // A function execution is small and its bundle has no reading worker: Appwrite reads on the import's thread.
      workerMinBytes: store.kind === 'appwrite' ? Infinity : undefined,
      importProcess: options.importProcess,
      uploads,
      transports: { filesDir: config.files.dir, smtpUrl: config.files.smtpUrl, mailFrom: config.files.mailFrom, appwrite: options.appwrite, fetch: options.fetch },
    }),
    ...options.handlers,
  };
  metrics.registry.register(
    // Not delivered ones: kept for the retention period, a million or more, and counting them stopped this thread for
    // 77 ms a million at each scrape. Their rate is hub_webhook_deliveries_total{outcome="delivered"}.
    new CollectedGauge('hub_webhook_deliveries', 'Outbound webhook deliveries on their way or dead, by state.', async () => {
      const table = store.table('webhook_deliveries');
      const states = ['pending', 'waiting', 'sending', 'paused', 'dead'] as const;
      const counts = await Promise.all(states.map((state) => table.count({ state })));
      return states.map((state, i) => ({ labels: { state }, value: counts[i] ?? 0 }));
    }),
  );
  const worker = createWorker({
    queue,
    handlers,
    concurrency: Math.max(1, config.workerConcurrency),
    lanes: { [INBOX_JOB]: config.inboxConcurrency },
    log: log.child({ part: 'worker' }),
  });
  const deps: AppDeps = {
    config,
    store,
    clock,
    log,
    cipher,
    tokens: createTokenService({ store, cipher, clock, issuer: config.publicUrl }),
    metrics,
    rateLimiter: options.rateLimiter ?? createMemoryRateLimiter(clock),
    keyCache: createKeyCache(clock, config.authCacheMs),
    fetch: fetchFn,
    connectors,
    mappings,
    queue,
    webhooks: { policy, receiver },
    dispatcher,
    uploads,
  };
  let scheduler: ReturnType<typeof startScheduler> | undefined;
  return {
    app: createApp(deps),
    deps,
    queue,
    worker,
    dispatcher,
    handlers,
    onDeliveriesCreated,
    warm() {
      void mappings.size;
      compileRowValidators();
    },
    startScheduler() {
      scheduler ??= startScheduler({ store, queue, clock, log: log.child({ part: 'scheduler' }) }, config.files.schedulerIntervalMs);
    },
    async close(timeoutMs = config.shutdownTimeoutMs) {
      await scheduler?.stop();
      await Promise.all([worker.stop({ timeoutMs }), dispatcher.stop(timeoutMs)]);
      receiver.close();
      if (!options.transport) transport.close();
      await store.close();
    },
  };
}
