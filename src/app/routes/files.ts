// File exchange over HTTP: /v1/exchanges (configured imports and exports, run now), /v1/imports (a one-off upload),
// /v1/file-runs (every file imported or exported, its failed rows and a CSV report), and /v1/exports/{dataset}
// (download an export now). Schedules that run exchanges are in schedules.ts. The readers, writers and checks are
// imported where a handler needs them: they bring exceljs and friends, which most requests never touch.
import { Readable } from 'node:stream';
import type { Context } from 'hono';
import { auditRequest } from '../../audit/log.ts';
import { HubError } from '../../errors.ts';
import { DATASET_NAMES, type DatasetName } from '../../files/datasets.ts';
import type { ExchangeInput, ExchangePatch } from '../../files/exchanges.ts';
import { adhocImportSpec, contentTypeOf, EXCHANGE_JOB, IMPORT_ACTIONS, importSpecOf, newRunRow, POLICIES, spoolPath, type ExchangeJobPayload, type ImportSpec } from '../../files/runs.ts';
import type { WriteSpec } from '../../files/write.ts';
import { newId } from '../../lib/ids.ts';
import { resolveMapping } from '../../mappings/repository.ts';
import type { ExchangesRow } from '../../store/types.ts';
import type { HubEnv } from '../deps.ts';
import type { RouteTable } from '../define-route.ts';
import { expectVersion, jsonWithEtag, present, respondResource } from '../http.ts';
import { LIST_PARAMS, listOwned, loadOwned, PROBLEM } from './common.ts';

const EXCHANGE = 'hub:tables/exchanges';
const RUN = 'hub:tables/file_runs';
const RUN_ERROR = 'hub:tables/file_run_errors';
const TAG = 'Files';
const READ = { resource: 'files', action: 'read' } as const;
const WRITE = { resource: 'files', action: 'write' } as const;
const FILE_TYPES = ['text/csv', 'application/xml', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'];

const publicExchange = (row: ExchangesRow) => present('exchanges', row) as ExchangesRow;
const workspaceOf = (c: Context<HubEnv>) => c.get('principal').workspaceId;

const JOB_ACCEPTED = {
  type: 'object',
  required: ['jobId'],
  properties: { jobId: { type: 'string' }, runId: { type: 'string' }, state: { type: 'string' } },
};

function queryError(name: string, message: string): HubError {
  return new HubError('validation_failed', `${name} ${message}`, { errors: [{ field: `/query/${name}`, code: 'invalid', message }] });
}

/** The import an upload asks for: an exchange's, or one given by the query (mapping, action, format and options). */
async function uploadSpec(c: Context<HubEnv>, q: Record<string, unknown>, fields: Record<string, string>): Promise<{ spec: ImportSpec; exchangeId: string | null }> {
  const get = (name: string) => (q[name] as string | undefined) ?? fields[name];
  const exchangeId = get('exchange');
  if (exchangeId) {
    const exchange = await loadOwned(c, 'exchanges', exchangeId);
    if (exchange.direction !== 'import') throw queryError('exchange', `names an export; uploads go to an import exchange`);
    return { spec: importSpecOf(exchange), exchangeId: exchange.id };
  }
  const spec = adhocImportSpec(
    { action: get('action'), mapping: get('mapping'), policy: get('policy'), format: get('format'), delimiter: get('delimiter'), encoding: get('encoding'), recordPath: get('recordPath'), isArray: get('isArray'), sheet: get('sheet') },
    { field: (part) => `/query/${part}`, label: (part) => part },
  );
  const mapping = spec.mapping;
  if (mapping && !(await resolveMapping(c.get('deps').store, workspaceOf(c), mapping, c.get('deps').mappings))) {
    throw new HubError('unknown_reference', `There is no mapping "${mapping}"`, { errors: [{ field: '/query/mapping', code: 'unknown', message: `there is no mapping "${mapping}"` }] });
  }
  return { spec, exchangeId: null };
}

/** A run's failed rows, in file order, as records for the CSV report. */
async function* reportRows(c: Context<HubEnv>, runId: string): AsyncGenerator<Record<string, unknown>> {
  const table = c.get('deps').store.table('file_run_errors');
  let cursor: string | null = null;
  do {
    const page = await table.query({ where: { runId }, orderBy: { field: 'seq' }, limit: 1000, cursor });
    for (const e of page.items) yield { row: e.row, column: e.column, field: e.field, code: e.code, message: e.message };
    cursor = page.nextCursor;
  } while (cursor);
}

export function registerFileRoutes(routes: RouteTable): void {
  routes.add<ExchangeInput>(
    {
      method: 'post',
      path: '/v1/exchanges',
      operationId: 'createExchange',
      summary: 'Configure a file import or export',
      description:
        'An import takes files from a folder, an SFTP server or an Appwrite Storage bucket, maps each record and applies it ' +
        '(`action`), with the `policy` reject-all (default) or keep-good. An export writes a dataset through a mapping to a file ' +
        'at a folder, SFTP, Storage or by email. Everything is checked when saved: file options, the mapping against the action, secrets.',
      tag: TAG,
      auth: WRITE,
      body: { schema: 'hub:api/exchange-create' },
      responses: { 201: { description: 'The exchange', schema: EXCHANGE, headers: ['ETag', 'Location'] } },
    },
    async (c, { body }) => {
      const { store, cipher, mappings } = c.get('deps');
      const { createExchange } = await import('../../files/exchanges.ts');
      const row = await store.transaction(async (tx) => {
        const created = await createExchange(tx, { cipher, mappings }, workspaceOf(c), body);
        await auditRequest(tx, c, { action: 'exchange.created', resourceType: 'exchange', resourceId: created.id, details: { name: body.name, direction: body.direction, transport: body.transport.type } });
        return created;
      });
      c.header('Location', `/v1/exchanges/${row.id}`);
      return jsonWithEtag(c, publicExchange(row), 201);
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/exchanges',
      operationId: 'listExchanges',
      summary: 'List exchanges, newest first',
      tag: TAG,
      auth: READ,
      query: [...LIST_PARAMS, { name: 'direction', description: 'Only imports or only exports.', schema: { type: 'string', enum: ['import', 'export'] } }],
      responses: { 200: { description: 'A page of exchanges', schema: { list: EXCHANGE } } },
    },
    (c, { query }) => listOwned(c, 'exchanges', query, { direction: query.direction as string | undefined }),
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/exchanges/{id}',
      operationId: 'getExchange',
      summary: 'Get an exchange',
      tag: TAG,
      auth: READ,
      responses: { 200: { description: 'The exchange', schema: EXCHANGE, headers: ['ETag'] }, 404: PROBLEM('No such exchange') },
    },
    async (c) => respondResource(c, publicExchange(await loadOwned(c, 'exchanges', c.req.param('id')!))),
  );

  routes.add<ExchangePatch>(
    {
      method: 'patch',
      path: '/v1/exchanges/{id}',
      operationId: 'updateExchange',
      summary: 'Change an exchange (checked again as a whole)',
      tag: TAG,
      auth: WRITE,
      body: { schema: 'hub:api/exchange-update' },
      ifMatch: true,
      responses: { 200: { description: 'The exchange', schema: EXCHANGE, headers: ['ETag'] }, 404: PROBLEM('No such exchange'), 412: PROBLEM('Stale If-Match') },
    },
    async (c, { body }) => {
      const { store, cipher, mappings } = c.get('deps');
      const { updateExchange } = await import('../../files/exchanges.ts');
      const row = await store.transaction(async (tx) => {
        const exchange = await loadOwned(c, 'exchanges', c.req.param('id')!, tx);
        const saved = await updateExchange(tx, { cipher, mappings }, exchange, body, expectVersion(c, exchange));
        await auditRequest(tx, c, { action: 'exchange.updated', resourceType: 'exchange', resourceId: exchange.id, details: { fields: Object.keys(body) } });
        return saved;
      });
      return jsonWithEtag(c, publicExchange(row));
    },
  );

  routes.add(
    {
      method: 'delete',
      path: '/v1/exchanges/{id}',
      operationId: 'deleteExchange',
      summary: 'Delete an exchange (refused while a schedule runs it); its runs stay',
      tag: TAG,
      auth: WRITE,
      responses: { 204: { description: 'Deleted' }, 404: PROBLEM('No such exchange'), 409: PROBLEM('A schedule runs it') },
    },
    async (c) => {
      const { store } = c.get('deps');
      await store.transaction(async (tx) => {
        const exchange = await loadOwned(c, 'exchanges', c.req.param('id')!, tx);
        const used = await tx.table('schedules').count({ workspaceId: exchange.workspaceId, exchangeId: exchange.id });
        if (used > 0) throw new HubError('in_use', `${used} schedule${used === 1 ? '' : 's'} run${used === 1 ? 's' : ''} this exchange; delete or change them first`);
        await tx.table('exchanges').delete(exchange.id);
        await auditRequest(tx, c, { action: 'exchange.deleted', resourceType: 'exchange', resourceId: exchange.id });
      });
      return c.body(null, 204);
    },
  );

  routes.add(
    {
      method: 'post',
      path: '/v1/exchanges/{id}/run',
      operationId: 'runExchange',
      summary: 'Run an exchange now (as a job)',
      description: 'An import takes every waiting file, one run each; an export writes one file. Follow the job at /v1/jobs/{jobId} and the runs at /v1/file-runs?jobId=….',
      tag: TAG,
      auth: WRITE,
      responses: { 202: { description: 'Queued', schema: JOB_ACCEPTED }, 404: PROBLEM('No such exchange') },
    },
    async (c) => {
      const { store, queue } = c.get('deps');
      const exchange = await loadOwned(c, 'exchanges', c.req.param('id')!);
      const payload: ExchangeJobPayload = { exchangeId: exchange.id, trigger: 'manual' };
      const { job } = await store.transaction(async (tx) => {
        const queued = await queue.enqueue({ type: EXCHANGE_JOB, workspaceId: exchange.workspaceId, payload: payload as unknown as Record<string, unknown>, maxAttempts: 5 }, tx);
        await auditRequest(tx, c, { action: 'exchange.run', resourceType: 'exchange', resourceId: exchange.id, details: { jobId: queued.job.id } });
        return queued;
      });
      return c.json({ jobId: job.id }, 202);
    },
  );

  routes.add(
    {
      method: 'post',
      path: '/v1/imports',
      operationId: 'uploadImport',
      summary: 'Import an uploaded file (one-off)',
      description:
        'Send the file as the raw body (text/csv, application/xml, the xlsx type, or application/octet-stream) or as the `file` part of ' +
        'multipart/form-data. Name an import exchange (`exchange`), or give `action`, `mapping`, `format` (csv, xml, xlsx), `policy` and ' +
        'the format options (`delimiter`, `encoding`, `recordPath`, `sheet`). The file is stored, checksummed and imported by a job; ' +
        'the same file is not applied twice for the same exchange (or mapping and action).',
      tag: TAG,
      auth: WRITE,
      query: [
        { name: 'exchange', description: 'An import exchange whose settings to use.', schema: { type: 'string', maxLength: 36 } },
        { name: 'action', description: 'What each record does (without an exchange).', schema: { type: 'string', enum: [...IMPORT_ACTIONS] } },
        { name: 'mapping', description: 'The mapping applied to each record.', schema: { type: 'string', maxLength: 128 } },
        { name: 'format', description: 'csv (default), xml or xlsx.', schema: { type: 'string', enum: ['csv', 'xml', 'xlsx'] } },
        { name: 'policy', description: 'reject-all (default) or keep-good.', schema: { type: 'string', enum: [...POLICIES] } },
        { name: 'fileName', description: 'The file name to record (multipart uploads carry their own).', schema: { type: 'string', maxLength: 255 } },
        { name: 'delimiter', description: 'CSV delimiter (default ,).', schema: { type: 'string', maxLength: 4 } },
        { name: 'encoding', description: 'CSV encoding: utf-8 (default) or latin1.', schema: { type: 'string', enum: ['utf-8', 'latin1'] } },
        { name: 'recordPath', description: 'XML: path of the repeating record element, e.g. Orders/Order.', schema: { type: 'string', maxLength: 500 } },
        { name: 'isArray', description: 'XML: element names that are always lists, comma-separated (e.g. Line), so one child is still a list.', schema: { type: 'string', maxLength: 500 } },
        { name: 'sheet', description: 'XLSX: the sheet name (default the first).', schema: { type: 'string', maxLength: 100 } },
      ],
      upload: { contentTypes: [...FILE_TYPES, 'application/octet-stream', 'multipart/form-data'], description: 'The file, raw or as the multipart part "file".' },
      responses: {
        202: { description: 'Stored; a job imports it', schema: JOB_ACCEPTED, headers: ['Location'] },
        404: PROBLEM('No such exchange'),
        413: PROBLEM('The file is larger than HUB_MAX_UPLOAD_BYTES'),
        422: PROBLEM('No such mapping'),
      },
    },
    async (c, { query }) => {
      const { store, queue, config, clock, uploads } = c.get('deps');
      const runId = newId('run');
      const { receiveUpload } = await import('../../files/upload.ts');
      const upload = await receiveUpload(c.req.raw, spoolPath(config.files.spoolDir, runId), config.files.maxUploadBytes);
      let shelved: ImportSpec['file']['format'] | null = null;
      try {
        const { spec, exchangeId } = await uploadSpec(c, query, upload.fields);
        const fileName = ((query.fileName as string | undefined) ?? upload.fileName ?? 'upload').slice(0, 255);
        // Where the job runs elsewhere (Appwrite), the file goes where it can fetch it, before the job exists.
        if (uploads) {
          await uploads.put(runId, spec.file.format, upload.staged);
          shelved = spec.file.format;
        }
        const { job } = await store.transaction(async (tx) => {
          const jobId = newId('job');
          await tx.table('file_runs').insert({
            ...newRunRow({ clock }, { workspaceId: workspaceOf(c), direction: 'import', trigger: 'upload', spec: spec as unknown as Record<string, unknown>, exchangeId, jobId, fileName, state: 'queued' }),
            id: runId,
            checksum: upload.staged.checksum,
            bytes: upload.staged.bytes,
          });
          const queued = await queue.enqueue({ id: jobId, type: EXCHANGE_JOB, workspaceId: workspaceOf(c), payload: { runId, trigger: 'upload' } satisfies ExchangeJobPayload as unknown as Record<string, unknown>, maxAttempts: 5 }, tx);
          await auditRequest(tx, c, { action: 'file.uploaded', resourceType: 'file_run', resourceId: runId, details: { fileName, bytes: upload.staged.bytes, checksum: upload.staged.checksum } });
          return queued;
        });
        if (shelved) await upload.staged.remove();
        c.header('Location', `/v1/file-runs/${runId}`);
        return c.json({ jobId: job.id, runId, state: 'queued' }, 202);
      } catch (err) {
        await upload.staged.remove();
        if (shelved) await uploads!.finish(runId, shelved, 'error').catch(() => undefined);
        throw err;
      }
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/file-runs',
      operationId: 'listFileRuns',
      summary: 'List file runs (imports and exports), newest first',
      tag: TAG,
      auth: READ,
      query: [
        ...LIST_PARAMS,
        { name: 'exchangeId', description: 'Runs of this exchange.', schema: { type: 'string', maxLength: 36 } },
        { name: 'jobId', description: 'Runs of this job.', schema: { type: 'string', maxLength: 36 } },
        { name: 'state', description: 'Runs in this state.', schema: { type: 'string', enum: ['queued', 'running', 'succeeded', 'partial', 'rejected', 'failed', 'duplicate'] } },
      ],
      responses: { 200: { description: 'A page of runs', schema: { list: RUN } } },
    },
    (c, { query }) =>
      listOwned(c, 'file_runs', query, { exchangeId: query.exchangeId as string | undefined, jobId: query.jobId as string | undefined, state: query.state as string | undefined }),
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/file-runs/{id}',
      operationId: 'getFileRun',
      summary: 'Get a run: state, rows read, applied, skipped and failed, and what stopped it',
      tag: TAG,
      auth: READ,
      responses: { 200: { description: 'The run', schema: RUN, headers: ['ETag'] }, 404: PROBLEM('No such run') },
    },
    async (c) => respondResource(c, await loadOwned(c, 'file_runs', c.req.param('id')!)),
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/file-runs/{id}/errors',
      operationId: 'listFileRunErrors',
      summary: 'The failed rows of a run, in file order',
      tag: TAG,
      auth: READ,
      query: LIST_PARAMS,
      responses: { 200: { description: 'A page of failed rows', schema: { list: RUN_ERROR } }, 404: PROBLEM('No such run') },
    },
    async (c, { query }) => {
      const run = await loadOwned(c, 'file_runs', c.req.param('id')!);
      const page = await c.get('deps').store.table('file_run_errors').query({ where: { runId: run.id }, orderBy: { field: 'seq' }, limit: (query.limit as number | undefined) ?? 50, cursor: (query.cursor as string | undefined) ?? null });
      return c.json({ data: page.items, nextCursor: page.nextCursor });
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/file-runs/{id}/report',
      operationId: 'downloadFileRunReport',
      summary: 'The failed rows of a run as CSV (row, column, field, code, message)',
      tag: TAG,
      auth: READ,
      responses: { 200: { description: 'The report', contentTypes: ['text/csv'] }, 404: PROBLEM('No such run') },
    },
    async (c) => {
      const run = await loadOwned(c, 'file_runs', c.req.param('id')!);
      // The export writer: the report is opened in spreadsheets, so its cells get the same formula guard.
      const { writeRecords } = await import('../../files/write.ts');
      const csv = writeRecords(reportRows(c, run.id), { format: 'csv', options: { columns: ['row', 'column', 'field', 'code', 'message'] } });
      return new Response(Readable.toWeb(csv) as ReadableStream, {
        headers: { 'Content-Type': 'text/csv; charset=utf-8', 'Content-Disposition': `attachment; filename="${run.id}-report.csv"` },
      });
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/exports/{dataset}',
      operationId: 'downloadExport',
      summary: 'Download a dataset now as CSV, XML or XLSX (streamed)',
      description: `Datasets: ${DATASET_NAMES.join(', ')}. An optional mapping turns each record into the file's record; records it refuses are left out. Cells a spreadsheet would run as formulas are prefixed with an apostrophe.`,
      tag: TAG,
      auth: READ,
      query: [
        { name: 'format', description: 'csv (default), xml or xlsx.', schema: { type: 'string', enum: ['csv', 'xml', 'xlsx'] } },
        { name: 'mapping', description: 'An export mapping applied to each record.', schema: { type: 'string', maxLength: 128 } },
        { name: 'since', description: 'Movements and orders from this time (ISO 8601).', schema: { type: 'string', maxLength: 40 } },
        { name: 'until', description: 'Movements and orders before this time.', schema: { type: 'string', maxLength: 40 } },
      ],
      responses: { 200: { description: 'The file', contentTypes: FILE_TYPES }, 404: PROBLEM('No such dataset') },
    },
    async (c, { query }) => {
      const dataset = c.req.param('dataset') as DatasetName;
      if (!DATASET_NAMES.includes(dataset)) throw new HubError('not_found', `There is no dataset "${dataset}" (there are ${DATASET_NAMES.join(', ')})`);
      const format = ((query.format as string | undefined) ?? 'csv') as WriteSpec['format'];
      const params = { ...(query.since ? { since: query.since } : {}), ...(query.until ? { until: query.until } : {}) };
      const counts = { read: 0, written: 0, failed: 0 };
      const [{ exportRecords }, { writeRecords }] = await Promise.all([import('../../files/runner.ts'), import('../../files/write.ts')]);
      const records = await exportRecords(c.get('deps'), workspaceOf(c), { dataset, params, mapping: (query.mapping as string | undefined) ?? null }, counts);
      // Pull the first record before answering, so that bad parameters are a 400 rather than a broken download.
      const iterator = records[Symbol.asyncIterator]();
      const first = await iterator.next();
      const all = (async function* () {
        if (!first.done) yield first.value;
        for (let r = await iterator.next(); !r.done; r = await iterator.next()) yield r.value;
      })();
      const stream = writeRecords(all, { format } as WriteSpec);
      const name = `${dataset}-${new Date(c.get('deps').clock.now()).toISOString().slice(0, 10)}.${format}`;
      return new Response(Readable.toWeb(stream) as ReadableStream, { headers: { 'Content-Type': contentTypeOf(format), 'Content-Disposition': `attachment; filename="${name}"` } });
    },
  );
}
