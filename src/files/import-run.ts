// The body of an import process (import-process.ts loads it): one staged file imported into the hub's SQLite file
// by a process of its own, with a heap sized for the import. It is told the task over IPC, reports each committed
// batch, and exits when the run is done, failed, or its parent is gone (the run then resumes from its cursor).
import { systemClock } from '../lib/clock.ts';
import { compilePortable } from '../mappings/compile.ts';
import { createSqliteStore } from '../store/sqlite.ts';
import { onDeliveriesCreated } from '../webhooks/fanout.ts';
import { isHubError } from '../errors.ts';
import { importStaged } from './import.ts';
import type { ChildMessage, ImportTask, ParentMessage } from './import-child.ts';
import { reasonOf } from './failure.ts';
import { dropPrestarted } from './reader-boot.ts';
import { stagedAt } from './stage.ts';

/** Where a request to let the hub write first goes, once the store is open. */
let yieldTo: ((ms: number) => void) | null = null;

const send = (m: ChildMessage) => new Promise<void>((resolve) => process.send!(m, undefined, undefined, () => resolve()));

async function run(task: ImportTask): Promise<ChildMessage> {
  // Like the hub's connections: with the hub's checkpointer running, a commit of this process checkpoints only at the
  // backstop, instead of copying the WAL while it holds the write lock that the hub waits for.
  const store = createSqliteStore({ path: task.dbPath, cacheMb: task.cacheMb, walAutoCheckpoint: task.walAutoCheckpoint });
  yieldTo = (ms) => store.yieldWrites(ms);
  // The parent's dispatcher is told of deliveries this process writes (else it finds them at its next poll).
  let told = false;
  onDeliveriesCreated(() => {
    if (told) return;
    told = true;
    setImmediate(() => {
      told = false;
      void send({ t: 'deliveries' });
    });
  });
  try {
    const run = await store.table('file_runs').get(task.runId);
    if (!run) return { t: 'failed', code: 'not_found', message: `Run ${task.runId} does not exist`, retryable: false };
    const mapping = task.mapping ? compilePortable(task.mapping) : null;
    const done = await importStaged(
      {
        store,
        clock: systemClock,
        currency: task.currency,
        batchSize: task.batchSize,
        maxBatchSize: task.maxBatchSize,
        workerMinBytes: task.workerMinBytes,
        onProgress: (r) => send({ t: 'progress', run: r }),
      },
      run,
      { file: task.file, mapping, action: task.action, policy: task.policy, scope: task.scope },
      stagedAt(task.staged.path, task.staged.checksum, task.staged.bytes),
    );
    return { t: 'done', run: done, maxRssKb: process.resourceUsage().maxRSS };
  } catch (err) {
    if (isHubError(err)) return { t: 'failed', code: err.code, message: err.message, errors: err.errors, retryable: err.retryable };
    return { t: 'failed', code: 'internal_error', message: reasonOf(err), retryable: true };
  } finally {
    await store.close();
  }
}

/** Takes the parent's messages from here on; `early` are those that came while this module loaded. */
export function serve(early: ParentMessage[]): void {
  let started = false;
  const take = (m: ParentMessage) => {
    if (m.t === 'yield') return void yieldTo?.(m.ms);
    if (m.t !== 'start' || started) return;
    started = true;
    void run(m.task).then(async (result) => {
      await dropPrestarted();
      await send(result);
      process.disconnect();
    });
  };
  process.on('message', take);
  for (const m of early) take(m);
}
