// The job that runs an exchange (`exchange.run`): an import takes every waiting file from its source, one run per
// file (staged, checked, applied, then moved to the archive or error place); an export reads its dataset through
// the mapping into the file format and puts the file at its target. Uploads (POST /v1/imports, the CLI) are runs
// whose file is already staged. A retried job finds the runs it left unfinished and resumes them after their
// cursor, from the spool copy, so a crash never applies a row twice.
import { stat } from 'node:fs/promises';
import { HubError, isHubError } from '../errors.ts';
import type { JobContext, JobHandler } from '../jobs/worker.ts';
import type { Clock } from '../lib/clock.ts';
import type { Logger } from '../lib/log.ts';
import type { Cipher } from '../lib/secrets.ts';
import type { MappingDocument } from '../mappings/document.ts';
import { compiledMappingFor } from '../mappings/repository.ts';
import type { ExchangesRow, FileRunsRow, JobsRow, Store } from '../store/types.ts';
import { readDataset, type DatasetName } from './datasets.ts';
import { exchangeSecrets } from './exchanges.ts';
import { contentTypeOf, exportFileName } from './runs.ts';
import { importStaged, type ImportPlan } from './import.ts';
import { importInProcess, importTask, type ImportProcessOptions } from './import-child.ts';
import { FINISHED_STATES, importSpecOf, newRunRow, spoolPath, type ExchangeJobPayload, type ImportSpec } from './runs.ts';
import type { UploadShelf } from './upload-shelf.ts';
import { stagedAt, stageFile, type StagedFile } from './stage.ts';
import { openSource, openTarget, type TransportConfig, type TransportEnv } from './transports/index.ts';
import { writeRecords, type WriteSpec } from './write.ts';

export { EXCHANGE_JOB, importSpecOf, newRunRow, spoolPath, type ExchangeJobPayload, type ImportSpec, type RunTrigger } from './runs.ts';

export interface FilesDeps {
  store: Store;
  clock: Clock;
  cipher: Cipher;
  log: Logger;
  mappings: ReadonlyMap<string, MappingDocument>;
  spoolDir: string;
  transports: TransportEnv;
  /** Records per import transaction. */
  batchSize?: number;
  /** Where uploads wait when the spool is not shared (Appwrite). */
  uploads?: UploadShelf;
  /** See ImportEnv.maxBatchSize. */
  maxBatchSize?: number;
  /** See ImportEnv.workerMinBytes. */
  workerMinBytes?: number;
  /** Large imports run in a process of their own on the same SQLite file (an embedded hub); unset: in this one. */
  importProcess?: ImportProcessOptions;
}

const FINISHED: ReadonlySet<FileRunsRow['state']> = new Set(FINISHED_STATES);

function errorOf(err: unknown): { code: string; message: string } {
  return { code: isHubError(err) ? err.code : 'run_failed', message: (err instanceof Error ? err.message : String(err)).slice(0, 1000) };
}

export function exchangeHandler(deps: FilesDeps): JobHandler {
  return async (job, ctx) => {
    const payload = job.payload as unknown as ExchangeJobPayload;
    if (payload.runId) return runUpload(deps, job, ctx, payload.runId);
    const exchange = payload.exchangeId ? await deps.store.table('exchanges').get(payload.exchangeId) : null;
    if (!exchange) throw new HubError('not_found', `Exchange ${payload.exchangeId ?? '(none)'} does not exist`, { retryable: false });
    return exchange.direction === 'import' ? runImports(deps, job, ctx, exchange, payload) : runExport(deps, job, ctx, exchange, payload);
  };
}

/** Reports a run's progress on the job (rows done, and the total once a reject-all check has counted them). */
function reporter(ctx: JobContext, clock: Clock, extra: () => Record<string, unknown>) {
  let last = 0;
  return async (run: FileRunsRow) => {
    const now = clock.now();
    if (now - last < 500) return;
    last = now;
    await ctx.progress({ ...extra(), runId: run.id, fileName: run.fileName, rowsRead: run.rowsRead, rowsApplied: run.rowsApplied, rowsFailed: run.rowsFailed, rowsTotal: run.rowsTotal ?? null });
  };
}

async function workspaceCurrency(store: Store, workspaceId: string): Promise<string> {
  return (await store.table('workspaces').get(workspaceId))?.currency ?? 'USD';
}

async function planOf(deps: FilesDeps, workspaceId: string, spec: ImportSpec): Promise<ImportPlan> {
  const mapping = spec.mapping ? await compiledMappingFor(deps.store, workspaceId, spec.mapping, deps.mappings) : null;
  if (spec.mapping && !mapping) throw new HubError('unknown_reference', `There is no mapping "${spec.mapping}"`, { retryable: false });
  return { file: spec.file, mapping, action: spec.action, policy: spec.policy, scope: spec.scope };
}

async function importRun(deps: FilesDeps, ctx: JobContext, run: FileRunsRow, staged: StagedFile, extra: () => Record<string, unknown>): Promise<FileRunsRow> {
  const spec = run.spec as unknown as ImportSpec;
  try {
    const plan = await planOf(deps, run.workspaceId, spec);
    const currency = await workspaceCurrency(deps.store, run.workspaceId);
    const onProgress = reporter(ctx, deps.clock, extra);
    const proc = deps.importProcess;
    if (proc && staged.bytes >= proc.minBytes) {
      const task = importTask(proc, run, plan, staged, { currency, batchSize: deps.batchSize, maxBatchSize: deps.maxBatchSize, workerMinBytes: deps.workerMinBytes });
      const { run: done, maxRssMb } = await importInProcess(task, { onProgress, signal: ctx.signal, onBusy: proc.onBusy });
      ctx.log.info('import process finished', { runId: run.id, state: done.state, peakRssMb: Math.round(maxRssMb) });
      return done;
    }
    return await importStaged({ store: deps.store, clock: deps.clock, currency, batchSize: deps.batchSize, maxBatchSize: deps.maxBatchSize, workerMinBytes: deps.workerMinBytes, onProgress }, run, plan, staged);
  } catch (err) {
    if (isHubError(err) && !err.retryable) {
      return failRun(deps, (await deps.store.table('file_runs').get(run.id)) ?? run, errorOf(err));
    }
    throw err;
  }
}

/** Ends `run` (as last read) as failed, for the reason given. */
function failRun(deps: FilesDeps, run: FileRunsRow, error: { code: string; message: string }): Promise<FileRunsRow> {
  return deps.store.table('file_runs').update(run.id, { state: 'failed', error, finishedAt: new Date(deps.clock.now()).toISOString() }, { ifVersion: run.version });
}

async function runUpload(deps: FilesDeps, job: JobsRow, ctx: JobContext, runId: string) {
  let run = await deps.store.table('file_runs').get(runId);
  if (!run) throw new HubError('not_found', `Run ${runId} does not exist`, { retryable: false });
  const format = (run.spec as unknown as ImportSpec).file.format;
  let staged = stagedAt(spoolPath(deps.spoolDir, run.id), run.checksum ?? '', run.bytes ?? 0);
  if (!FINISHED.has(run.state) && !(await exists(staged.path))) {
    // Received by another machine (an Appwrite api execution): it left the file on the upload shelf.
    const fetched = deps.uploads ? await deps.uploads.fetch(run.id, format, staged.path) : null;
    if (fetched && fetched.checksum !== run.checksum) {
      await fetched.remove();
      return summary(await failRun(deps, run, { code: 'upload_changed', message: `The stored upload (${fetched.checksum}) is not the file that was received (${run.checksum}); upload it again` }));
    }
    if (!fetched) {
      // Staged elsewhere with no shelf between, or cleaned away: nothing to import, say so for good.
      return summary(await failRun(deps, run, { code: 'upload_missing', message: `The uploaded file is not in this process's spool (${deps.spoolDir}); upload it again, or put it where an exchange reads` }));
    }
    staged = fetched;
  }
  if (!FINISHED.has(run.state)) {
    if (run.state === 'queued') run = await deps.store.table('file_runs').update(run.id, { state: 'running', jobId: job.id }, { ifVersion: run.version });
    run = await importRun(deps, ctx, run, staged, () => ({}));
  }
  await staged.remove();
  if (deps.uploads) {
    // Kept as a Storage exchange keeps what it imported; the checksum marker already stops a second apply.
    const applied = run.state === 'succeeded' || run.state === 'partial' || run.state === 'duplicate';
    await deps.uploads.finish(run.id, format, applied ? 'archive' : 'error').catch((err) => deps.log.warn('could not move an imported upload', { runId: run!.id, err }));
  }
  return summary(run);
}

function summary(run: FileRunsRow) {
  return { runId: run.id, state: run.state, fileName: run.fileName, rowsRead: run.rowsRead, rowsApplied: run.rowsApplied, rowsFailed: run.rowsFailed, rowsSkipped: run.rowsSkipped, ...(run.error ? { error: run.error } : {}) };
}

async function runImports(deps: FilesDeps, job: JobsRow, ctx: JobContext, exchange: ExchangesRow, payload: ExchangeJobPayload) {
  const source = openSource(exchange.transport as TransportConfig, exchangeSecrets(deps.cipher, exchange), deps.transports);
  const runsTable = deps.store.table('file_runs');
  const results: ReturnType<typeof summary>[] = [];
  try {
    // Runs this job started before a crash or a lost lease: finish them first, in the order they were started.
    const earlier = (await runsTable.query({ where: { jobId: job.id }, orderBy: { field: 'startedAt' }, limit: 1000 })).items;
    // A file whose run failed (a dropped connection) is still in the source: this attempt takes it again.
    const handled = new Set(earlier.filter((r) => r.state !== 'failed').map((r) => r.fileName));
    for (const run of earlier.filter((r) => !FINISHED.has(r.state))) results.push(summary(await importOne(deps, ctx, source, run)));
    const files = await source.list();
    let index = 0;
    for (const file of files) {
      index++;
      if (handled.has(file.name)) continue;
      const run = await runsTable.insert(newRunRow(deps, { workspaceId: exchange.workspaceId, direction: 'import', trigger: payload.trigger, spec: importSpecOf(exchange) as unknown as Record<string, unknown>, exchangeId: exchange.id, scheduleId: payload.scheduleId ?? null, jobId: job.id, fileName: file.name }));
      results.push(summary(await importOne(deps, ctx, source, run, () => ({ file: index, files: files.length }))));
    }
  } finally {
    await source.close().catch(() => undefined);
  }
  return { exchangeId: exchange.id, files: results.length, runs: results };
}

/** One file: staged from the source, imported, moved out of the way. */
async function importOne(deps: FilesDeps, ctx: JobContext, source: ReturnType<typeof openSource>, run: FileRunsRow, extra: () => Record<string, unknown> = () => ({})): Promise<FileRunsRow> {
  const runs = deps.store.table('file_runs');
  const path = spoolPath(deps.spoolDir, run.id);
  let staged: StagedFile;
  if (run.checksum && run.bytes !== null && run.bytes !== undefined && (await exists(path))) {
    staged = stagedAt(path, run.checksum, run.bytes);
  } else {
    try {
      staged = await stageFile(source.openFile ? await source.openFile(run.fileName!) : await source.open(run.fileName!), path);
    } catch (err) {
      // The file stays where it is; the job is retried (a dropped connection) or the run says why not.
      const failed = await failRun(deps, (await runs.get(run.id)) ?? run, errorOf(err));
      if (isHubError(err) && !err.retryable) return failed;
      throw err;
    }
    run = await runs.update(run.id, { checksum: staged.checksum, bytes: staged.bytes }, { ifVersion: run.version });
  }
  run = await importRun(deps, ctx, run, staged, extra);
  if (run.state !== 'failed') {
    const outcome = run.state === 'rejected' ? 'error' : 'archive';
    try {
      await source.finish(run.fileName!, outcome);
      run = await runs.update(run.id, { location: `${outcome === 'archive' ? 'archive' : 'error'}/${run.fileName}` }, { ifVersion: run.version });
    } catch (err) {
      // Applied, but still in the source: the checksum marker keeps the next run from applying it again.
      deps.log.warn('could not move an imported file', { runId: run.id, file: run.fileName, err });
    }
  }
  await staged.remove();
  return run;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function runExport(deps: FilesDeps, job: JobsRow, ctx: JobContext, exchange: ExchangesRow, payload: ExchangeJobPayload) {
  const runs = deps.store.table('file_runs');
  const earlier = (await runs.query({ where: { jobId: job.id }, limit: 1 })).items[0];
  if (earlier && FINISHED.has(earlier.state) && earlier.state !== 'failed') return summary(earlier);
  const at = new Date(deps.clock.now());
  const fileName = exportFileName(exchange.fileName ?? `${exchange.dataset}-{date}.${(exchange.file as { format: string }).format}`, at);
  let run = earlier ?? (await runs.insert(newRunRow(deps, { workspaceId: exchange.workspaceId, direction: 'export', trigger: payload.trigger, spec: { file: exchange.file, mapping: exchange.mapping ?? null, dataset: exchange.dataset, datasetParams: exchange.datasetParams ?? null }, exchangeId: exchange.id, scheduleId: payload.scheduleId ?? null, jobId: job.id, fileName })));
  const target = openTarget(exchange.transport as TransportConfig, exchangeSecrets(deps.cipher, exchange), deps.transports, { subject: `${exchange.name}: ${fileName}` });
  try {
    const counts = { read: 0, written: 0, failed: 0 };
    const progress = reporter(ctx, deps.clock, () => ({}));
    const records = await exportRecords(deps, exchange.workspaceId, { dataset: exchange.dataset as DatasetName, params: exchange.datasetParams ?? undefined, mapping: exchange.mapping ?? null }, counts, () => progress({ ...run, rowsRead: counts.read, rowsApplied: counts.written, rowsFailed: counts.failed }));
    const file = exchange.file as unknown as WriteSpec;
    const put = await target.put(fileName, writeRecords(records, file), { contentType: contentTypeOf(file.format) });
    run = await runs.update(run.id, { state: 'succeeded', location: put.location, rowsRead: counts.read, rowsApplied: counts.written, rowsFailed: counts.failed, finishedAt: new Date(deps.clock.now()).toISOString() }, { ifVersion: run.version });
  } catch (err) {
    run = await failRun(deps, (await runs.get(run.id)) ?? run, errorOf(err));
    if (!isHubError(err) || err.retryable) throw err;
  } finally {
    await target.close().catch(() => undefined);
  }
  return summary(run);
}

/**
 * The dataset's records through the export mapping (when there is one). A record the mapping refuses is left out
 * and counted, so that one odd product does not cost the accountant the whole valuation file.
 */
export async function exportRecords(
  deps: Pick<FilesDeps, 'store' | 'mappings'>,
  workspaceId: string,
  what: { dataset: DatasetName; params?: Record<string, unknown>; mapping: string | null },
  counts: { read: number; written: number; failed: number },
  onProgress?: () => unknown,
): Promise<AsyncIterable<Record<string, unknown>>> {
  const mapping = what.mapping ? await compiledMappingFor(deps.store, workspaceId, what.mapping, deps.mappings) : null;
  if (what.mapping && !mapping) throw new HubError('unknown_reference', `There is no mapping "${what.mapping}"`, { errors: [{ field: '/mapping', code: 'unknown', message: `there is no mapping "${what.mapping}"` }] });
  const source = readDataset({ db: deps.store, workspaceId }, what.dataset, what.params as never);
  return (async function* () {
    for await (const record of source) {
      counts.read++;
      if (counts.read % 1000 === 0) await onProgress?.();
      if (!mapping) {
        counts.written++;
        yield record;
        continue;
      }
      const r = mapping.apply(record, counts.read);
      if (!r.ok) {
        counts.failed++;
        continue;
      }
      counts.written++;
      yield r.value;
    }
  })();
}

