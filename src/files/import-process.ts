// The entry of an import process (import-child.ts starts it): one staged file imported into the hub's SQLite file
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
import { stagedAt } from './stage.ts';

const send = (m: ChildMessage) => new Promise<void>((resolve) => process.send!(m, undefined, undefined, () => resolve()));

async function run(task: ImportTask): Promise<ChildMessage> {
  const store = createSqliteStore({ path: task.dbPath, cacheMb: task.cacheMb });
  process.on('message', (m: ParentMessage) => {
    if (m.t === 'yield') store.yieldWrites(m.ms);
  });
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

// The parent gone (the hub stopped or crashed): stop here; the run resumes after its cursor when the job retries.
process.on('disconnect', () => process.exit(0));
process.once('message', (m: ParentMessage) => {
  if (m.t !== 'start') return;
  void run(m.task).then(async (result) => {
    await send(result);
    process.disconnect();
  });
});
