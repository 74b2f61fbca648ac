// The file exchange through the API, on the local folder transport: exchanges, runs now and on schedules, uploads
// in the three formats, exports and downloads, reports, and the bad inputs the issue names.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readCsv, readXlsx } from '../src/files/index.ts';
import { writeRecords } from '../src/files/write.ts';
import { tickSchedules } from '../src/schedules/scheduler.ts';
import { createTestHub, runDueJobs, type TestHub } from './helpers.ts';

let t: TestHub;
let root: string;
let files: string;

async function raw(method: string, path: string, body: string | Buffer | FormData, headers: Record<string, string> = {}) {
  const res = await t.hub.app.request(path, { method, body, headers: { Authorization: `Bearer ${t.adminKey}`, ...headers } });
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, text, body: json };
}

async function download(path: string): Promise<{ status: number; headers: Headers; bytes: Buffer }> {
  const res = await t.hub.app.request(path, { headers: { Authorization: `Bearer ${t.adminKey}` } });
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
}

async function records(bytes: Buffer, kind: 'csv' | 'xlsx' = 'csv') {
  const out: Record<string, unknown>[] = [];
  for await (const item of kind === 'csv' ? readCsv(Readable.from([bytes])) : readXlsx(Readable.from([bytes]))) if (item.kind === 'record') out.push(item.value);
  return out;
}

async function onHand(sku: string): Promise<number> {
  return (await t.hub.deps.store.table('inventory_items').query({ where: { sku } })).items[0]?.onHand ?? 0;
}

async function runs(query = '') {
  const res = await t.call('GET', `/v1/file-runs${query}`);
  expect(res.status).toBe(200);
  return res.body.data as any[];
}

beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), 'hub-files-'));
  files = join(root, 'files');
  mkdirSync(files);
  t = await createTestHub({ config: { files: { dir: files, spoolDir: join(root, 'spool'), maxUploadBytes: 5 * 1024 * 1024, smtpUrl: undefined, mailFrom: 'hub@test', schedulerIntervalMs: 1000, runRetentionDays: 90 } } as never });
  for (const code of ['LON-1', 'MAN-2']) expect((await t.call('POST', '/v1/locations', { body: { code, name: code, type: 'warehouse' } })).status).toBe(201);
  for (const sku of ['TEE-BLK-M', 'MUG-01', 'CAP-RED']) expect((await t.call('POST', '/v1/products', { body: { sku, name: `Product ${sku}` } })).status).toBe(201);
});
afterEach(async () => {
  await t.close();
  rmSync(root, { recursive: true, force: true });
});

const STOCK_EXCHANGE = {
  name: '3PL nightly stock',
  direction: 'import',
  file: { format: 'csv', options: { requiredColumns: ['SKU', 'Location', 'On Hand'] } },
  mapping: 'csv-stock-count-in',
  action: 'stock.count',
  policy: 'keep-good',
  transport: { type: 'folder', path: '3pl/inbox', pattern: '*.csv', archivePath: '3pl/archive', errorPath: '3pl/error' },
};

function drop(name: string, text: string | Buffer) {
  mkdirSync(join(files, '3pl/inbox'), { recursive: true });
  writeFileSync(join(files, '3pl/inbox', name), text);
}

describe('import exchanges over a folder', () => {
  it('imports every waiting file, archives it, and keeps a run per file', async () => {
    const created = await t.call('POST', '/v1/exchanges', { body: STOCK_EXCHANGE });
    expect(created.status).toBe(201);
    expect(created.body).not.toHaveProperty('transportSecret');
    drop('stock-1.csv', 'SKU,Location,On Hand\nTEE-BLK-M,LON-1,40\nMUG-01,LON-1,12\n');
    drop('stock-2.csv', 'SKU,Location,On Hand\nCAP-RED,MAN-2,"1,250"\n');
    drop('notes.txt', 'not a stock file');
    const run = await t.call('POST', `/v1/exchanges/${created.body.id}/run`);
    expect(run.status).toBe(202);
    expect(await runDueJobs(t.hub)).toBe(1);
    const list = await runs(`?exchangeId=${created.body.id}`);
    expect(list.map((r) => [r.fileName, r.state, r.rowsApplied]).sort()).toEqual([
      ['stock-1.csv', 'succeeded', 2],
      ['stock-2.csv', 'succeeded', 1],
    ]);
    expect(list[0].checksum).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await onHand('TEE-BLK-M')).toBe(40);
    expect(await onHand('CAP-RED')).toBe(1250);
    expect(readdirSync(join(files, '3pl/inbox'))).toEqual(['notes.txt']);
    expect(readdirSync(join(files, '3pl/archive')).sort()).toEqual(['stock-1.csv', 'stock-2.csv']);
    const job = await t.call('GET', `/v1/jobs/${run.body.jobId}`);
    expect(job.body).toMatchObject({ state: 'succeeded', result: { files: 2 } });
  });

  it('moves a rejected file to the error folder with a report of every bad row', async () => {
    const created = await t.call('POST', '/v1/exchanges', { body: { ...STOCK_EXCHANGE, policy: 'reject-all' } });
    drop('bad.csv', 'SKU,Location,On Hand\nTEE-BLK-M,LON-1,40\nNOPE,LON-1,1\nMUG-01,LON-1,=1+1\nCAP-RED,LON-1\n');
    await t.call('POST', `/v1/exchanges/${created.body.id}/run`);
    await runDueJobs(t.hub);
    const [run] = await runs();
    expect(run).toMatchObject({ state: 'rejected', rowsRead: 4, rowsApplied: 0, rowsFailed: 3, rowsSkipped: 1, location: 'error/bad.csv' });
    expect(await onHand('TEE-BLK-M')).toBe(0);
    expect(existsSync(join(files, '3pl/error/bad.csv'))).toBe(true);
    const errors = await t.call('GET', `/v1/file-runs/${run.id}/errors`);
    expect(errors.body.data.map((e: any) => [e.row, e.code])).toEqual([
      [3, 'unknown'],
      [4, 'coercion_failed'],
      [5, 'field_count'],
    ]);
    const report = await download(`/v1/file-runs/${run.id}/report`);
    expect(report.status).toBe(200);
    expect(report.headers.get('content-type')).toContain('text/csv');
    const rows = await records(report.bytes);
    expect(rows.map((r) => [r.row, r.column, r.code])).toEqual([
      ['3', '', 'unknown'],
      ['4', 'On Hand', 'coercion_failed'],
      ['5', '', 'field_count'],
    ]);
  });

  it('does not apply a file again that was imported before (same checksum)', async () => {
    const created = await t.call('POST', '/v1/exchanges', { body: STOCK_EXCHANGE });
    const text = 'SKU,Location,On Hand\nTEE-BLK-M,LON-1,40\n';
    drop('a.csv', text);
    await t.call('POST', `/v1/exchanges/${created.body.id}/run`);
    await runDueJobs(t.hub);
    await t.call('POST', '/v1/stock/adjustments', { body: { locationId: (await t.call('GET', '/v1/locations')).body.data.find((l: any) => l.code === 'LON-1').id, reason: 'found', lines: [{ sku: 'TEE-BLK-M', quantity: 2 }] } });
    drop('a-again.csv', text);
    await t.call('POST', `/v1/exchanges/${created.body.id}/run`);
    await runDueJobs(t.hub);
    const list = await runs();
    expect(list.find((r) => r.fileName === 'a-again.csv')).toMatchObject({ state: 'duplicate', rowsApplied: 0, error: { code: 'duplicate_file' } });
    expect(await onHand('TEE-BLK-M')).toBe(42);
  });

  it('refuses exchanges that could never work, naming the fields', async () => {
    const bad = async (body: unknown) => {
      const res = await t.call('POST', '/v1/exchanges', { body });
      expect(res.status, JSON.stringify(res.body)).toBeGreaterThanOrEqual(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      return res.body.errors.map((e: any) => e.field);
    };
    expect(await bad({ ...STOCK_EXCHANGE, transport: { type: 'folder', path: '../../etc' } })).toContain('/transport/path');
    expect(await bad({ ...STOCK_EXCHANGE, mapping: 'no-such-mapping' })).toEqual(['/mapping']);
    expect(await bad({ ...STOCK_EXCHANGE, action: 'stock.adjust' })).toEqual(['/mapping']);
    expect(await bad({ ...STOCK_EXCHANGE, file: { format: 'csv', options: { delimiter: '' } } })).toEqual(['/file/options/delimiter']);
    expect(await bad({ ...STOCK_EXCHANGE, file: { format: 'xml', options: {} } })).toEqual(['/file/options/recordPath']);
    expect(await bad({ ...STOCK_EXCHANGE, transport: { type: 'email', to: ['a@b.c'] } })).toEqual(['/transport/type']);
    expect(await bad({ ...STOCK_EXCHANGE, transport: { type: 'sftp', host: 'sftp.example.com', username: 'u', hostKey: 'SHA256:' + 'A'.repeat(43) } })).toEqual(['/secrets']);
    const { action: _a, ...noAction } = STOCK_EXCHANGE;
    expect(await bad(noAction)).toEqual(['/action']);
    expect(await bad({ name: 'x', direction: 'export', file: { format: 'csv' }, transport: { type: 'folder' } })).toEqual(['/dataset']);
    expect(await bad({ name: 'x', direction: 'export', dataset: 'stock-levels', fileName: '../up.csv', file: { format: 'csv' }, transport: { type: 'folder' } })).toEqual(['/fileName']);
    expect((await t.call('GET', '/v1/exchanges')).body.data).toEqual([]);
  });

  it('refuses a folder that leaves the files directory through a symlink, at run time, and keeps going', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'hub-outside-'));
    writeFileSync(join(outside, 'secret.csv'), 'SKU,Location,On Hand\nTEE-BLK-M,LON-1,999\n');
    const { symlinkSync } = await import('node:fs');
    symlinkSync(outside, join(files, 'escape'));
    const created = await t.call('POST', '/v1/exchanges', { body: { ...STOCK_EXCHANGE, name: 'escape', transport: { type: 'folder', path: 'escape' } } });
    expect(created.status).toBe(201);
    await t.call('POST', `/v1/exchanges/${created.body.id}/run`);
    await runDueJobs(t.hub);
    expect(await onHand('TEE-BLK-M')).toBe(0);
    const jobs = (await t.call('GET', '/v1/jobs?type=exchange.run')).body.data;
    expect(jobs[0]).toMatchObject({ state: 'dead', lastError: { code: 'validation_failed' } });
    rmSync(outside, { recursive: true, force: true });
  });
});

describe('uploads (POST /v1/imports)', () => {
  it('imports a raw CSV body and a multipart upload; the same file twice is applied once', async () => {
    const csv = 'SKU,Location,On Hand\nTEE-BLK-M,LON-1,7\n';
    const res = await raw('POST', '/v1/imports?action=stock.count&mapping=csv-stock-count-in&policy=keep-good&fileName=stock.csv', csv, { 'Content-Type': 'text/csv' });
    expect(res.status).toBe(202);
    expect(res.headers.get('location')).toBe(`/v1/file-runs/${res.body.runId}`);
    expect((await t.call('GET', `/v1/file-runs/${res.body.runId}`)).body).toMatchObject({ state: 'queued', fileName: 'stock.csv', trigger: 'upload' });
    await runDueJobs(t.hub);
    expect((await t.call('GET', `/v1/file-runs/${res.body.runId}`)).body).toMatchObject({ state: 'succeeded', rowsApplied: 1 });
    expect(await onHand('TEE-BLK-M')).toBe(7);

    // An Idempotency-Key does not make the hub buffer the upload; the same file is known by its checksum anyway.
    const keyed = await raw('POST', '/v1/imports?action=stock.count&mapping=csv-stock-count-in', csv, { 'Content-Type': 'text/csv', 'Idempotency-Key': 'k1' });
    expect(keyed.status).toBe(202);
    await runDueJobs(t.hub);
    expect((await t.call('GET', `/v1/file-runs/${keyed.body.runId}`)).body).toMatchObject({ state: 'duplicate' });

    const form = new FormData();
    form.set('action', 'stock.count');
    form.set('mapping', 'csv-stock-count-in');
    form.set('file', new Blob([csv], { type: 'text/csv' }), 'again.csv');
    const again = await raw('POST', '/v1/imports', form);
    expect(again.status).toBe(202);
    await runDueJobs(t.hub);
    expect((await t.call('GET', `/v1/file-runs/${again.body.runId}`)).body).toMatchObject({ state: 'duplicate', fileName: 'again.csv' });
    expect(readdirSync(join(root, 'spool'))).toEqual([]);
  });

  it('imports XML order records and an XLSX product list', async () => {
    const xml = `<?xml version="1.0"?><Orders><Order id="SO-5001" channel="b2b"><PlacedAt>2026-11-20T09:15:00Z</PlacedAt><Currency>EUR</Currency><Customer><Email>ann@example.com</Email><Name>Ann</Name></Customer><Lines><Line number="1"><Sku>MUG-01</Sku><Qty>2</Qty><Price>4.50</Price></Line></Lines></Order></Orders>`;
    const res = await raw('POST', '/v1/imports?action=order.import&mapping=xml-order-in&format=xml&recordPath=Orders/Order&isArray=Line&policy=keep-good', xml, { 'Content-Type': 'application/xml' });
    expect(res.status).toBe(202);
    await runDueJobs(t.hub);
    const xmlRun = (await t.call('GET', `/v1/file-runs/${res.body.runId}`)).body;
    expect(xmlRun, JSON.stringify((await t.call('GET', `/v1/file-runs/${res.body.runId}/errors`)).body)).toMatchObject({ state: 'succeeded', rowsRead: 1, rowsApplied: 1 });
    const orders = (await t.call('GET', '/v1/orders')).body.data;
    expect(orders).toEqual([expect.objectContaining({ externalId: 'SO-5001', channel: 'b2b' })]);

    const xlsx = await streamToBuffer(writeRecords([{ SKU: 'NEW-1', Name: 'New one' }, { SKU: 'NEW-2', Name: 'Second' }], { format: 'xlsx' }));
    const up = await raw('POST', '/v1/imports?action=product.upsert&mapping=csv-product-in&format=xlsx&policy=keep-good', xlsx, { 'Content-Type': 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet' });
    expect(up.status).toBe(202);
    await runDueJobs(t.hub);
    expect((await t.call('GET', `/v1/file-runs/${up.body.runId}`)).body).toMatchObject({ state: 'succeeded', rowsRead: 2, rowsApplied: 2 });
    expect((await t.call('GET', '/v1/products?sku=NEW-2')).body.data[0]).toMatchObject({ name: 'Second' });
  });

  it('refuses uploads it cannot take, with problem details, and keeps nothing', async () => {
    const tooBig = await raw('POST', '/v1/imports?action=stock.count', Buffer.alloc(6 * 1024 * 1024, 65), { 'Content-Type': 'text/csv' });
    expect(tooBig.status).toBe(413);
    expect(tooBig.body).toMatchObject({ code: 'payload_too_large' });
    const noAction = await raw('POST', '/v1/imports', 'a,b\n1,2\n', { 'Content-Type': 'text/csv' });
    expect(noAction.status).toBe(400);
    expect(noAction.body.errors[0].field).toBe('/query/action');
    const badMapping = await raw('POST', '/v1/imports?action=stock.count&mapping=nope', 'a\n1\n', { 'Content-Type': 'text/csv' });
    expect(badMapping.status).toBe(422);
    const noFile = new FormData();
    noFile.set('action', 'stock.count');
    expect((await raw('POST', '/v1/imports', noFile)).status).toBe(400);
    const xmlNoPath = await raw('POST', '/v1/imports?action=stock.count&format=xml', '<a/>', { 'Content-Type': 'application/xml' });
    expect(xmlNoPath.body.errors[0].field).toBe('/query/recordPath');
    expect(await runs()).toEqual([]);
    expect(existsSync(join(root, 'spool')) ? readdirSync(join(root, 'spool')) : []).toEqual([]);
  });

  it('fails a run whose staged upload is gone (another machine staged it), for good and saying why', async () => {
    const res = await raw('POST', '/v1/imports?action=stock.count&mapping=csv-stock-count-in', 'SKU,Location,On Hand\nMUG-01,LON-1,1\n', { 'Content-Type': 'text/csv' });
    rmSync(join(root, 'spool'), { recursive: true, force: true });
    await runDueJobs(t.hub);
    expect((await t.call('GET', `/v1/file-runs/${res.body.runId}`)).body).toMatchObject({ state: 'failed', error: { code: 'upload_missing' } });
    expect((await t.call('GET', `/v1/jobs/${res.body.jobId}`)).body.state).toBe('succeeded');
  });

  it('refuses XML with a DOCTYPE (no entity is expanded) and reports it in the run', async () => {
    const bomb = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><Stock><Row><SKU>&lol2;</SKU></Row></Stock>`;
    const res = await raw('POST', '/v1/imports?action=stock.count&format=xml&recordPath=Stock/Row&policy=keep-good', bomb, { 'Content-Type': 'application/xml' });
    await runDueJobs(t.hub);
    const run = (await t.call('GET', `/v1/file-runs/${res.body.runId}`)).body;
    expect(run).toMatchObject({ state: 'rejected', rowsApplied: 0, error: { code: 'doctype_refused' } });
  });
});

async function streamToBuffer(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

describe('exports', () => {
  beforeEach(async () => {
    drop('s.csv', 'SKU,Location,On Hand\nTEE-BLK-M,LON-1,40\nMUG-01,MAN-2,3\n');
    const ex = await t.call('POST', '/v1/exchanges', { body: STOCK_EXCHANGE });
    await t.call('POST', `/v1/exchanges/${ex.body.id}/run`);
    await runDueJobs(t.hub);
    await t.call('POST', '/v1/products', { body: { sku: 'EVIL', name: '=HYPERLINK("http://evil.example","click")' } });
  });

  it('downloads datasets as CSV and XLSX, with formulas neutralised', async () => {
    const csv = await download('/v1/exports/stock-levels?format=csv');
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-disposition')).toMatch(/attachment; filename="stock-levels-\d{4}-\d\d-\d\d\.csv"/);
    const levels = await records(csv.bytes);
    expect(levels.map((r) => [r.sku, r.locationCode, r.onHand]).sort()).toEqual([
      ['MUG-01', 'MAN-2', '3'],
      ['TEE-BLK-M', 'LON-1', '40'],
    ]);
    const products = await records((await download('/v1/exports/products?format=xlsx')).bytes, 'xlsx');
    expect(products.find((p) => p.sku === 'EVIL')!.name).toBe(`'=HYPERLINK("http://evil.example","click")`);
    expect((await t.call('GET', '/v1/exports/nothing')).status).toBe(404);
  });

  it('writes an export exchange to a folder, on demand and as a run', async () => {
    const ex = await t.call('POST', '/v1/exchanges', { body: { name: 'valuation', direction: 'export', dataset: 'inventory-value', file: { format: 'csv' }, fileName: 'value-{date}.csv', transport: { type: 'folder', path: 'accounts' } } });
    expect(ex.status).toBe(201);
    await t.call('POST', `/v1/exchanges/${ex.body.id}/run`);
    await runDueJobs(t.hub);
    const [run] = await runs(`?exchangeId=${ex.body.id}`);
    expect(run).toMatchObject({ direction: 'export', state: 'succeeded', rowsApplied: 2, fileName: 'value-2026-03-01.csv' });
    const written = await records(readFileSync(join(files, 'accounts', 'value-2026-03-01.csv')));
    expect(written).toHaveLength(2);
    expect(Object.keys(written[0]!)).toEqual(expect.arrayContaining(['sku', 'locationCode', 'onHand']));
  });
});

describe('schedules', () => {
  let exchangeId: string;
  beforeEach(async () => {
    exchangeId = (await t.call('POST', '/v1/exchanges', { body: STOCK_EXCHANGE })).body.id;
  });

  it('runs at the cron time in its time zone, shows next and last run, and pauses', async () => {
    const created = await t.call('POST', '/v1/schedules', { body: { name: 'nightly', exchangeId, cron: '30 2 * * *', timezone: 'America/New_York' } });
    expect(created.status).toBe(201);
    // The test clock is 2026-03-01T12:00Z; 02:30 in New York (EST, UTC-5) is 07:30Z the next day.
    expect(created.body.nextRunAt).toBe('2026-03-02T07:30:00.000Z');
    expect((await tickSchedules(t.hub.deps)).started).toEqual([]);
    drop('n.csv', 'SKU,Location,On Hand\nMUG-01,LON-1,5\n');
    t.clock.set(Date.parse('2026-03-02T07:30:00Z'));
    const tick = await tickSchedules(t.hub.deps);
    expect(tick.started).toHaveLength(1);
    // Another process ticking at the same moment starts nothing more.
    expect((await tickSchedules(t.hub.deps)).started).toEqual([]);
    await runDueJobs(t.hub);
    expect(await onHand('MUG-01')).toBe(5);
    const after = (await t.call('GET', `/v1/schedules/${created.body.id}`)).body;
    expect(after).toMatchObject({ lastRunAt: '2026-03-02T07:30:00.000Z', lastOutcome: 'started', nextRunAt: '2026-03-03T07:30:00.000Z' });
    const [run] = await runs();
    expect(run).toMatchObject({ scheduleId: created.body.id, trigger: 'schedule' });
    const paused = await t.call('PATCH', `/v1/schedules/${created.body.id}`, { body: { status: 'paused' } });
    expect(paused.body).toMatchObject({ status: 'paused', nextRunAt: null });
    t.clock.set(Date.parse('2026-03-04T00:00:00Z'));
    expect((await tickSchedules(t.hub.deps)).started).toEqual([]);
  });

  it('never overlaps two runs, skips maintenance windows, and runs now on request', async () => {
    const s = (await t.call('POST', '/v1/schedules', { body: { name: 'hourly', exchangeId, cron: '0 * * * *', timezone: 'UTC', maintenanceWindows: [{ start: '13:00', end: '15:00' }] } })).body;
    expect(s.nextRunAt).toBe('2026-03-01T15:00:00.000Z');
    t.clock.set(Date.parse('2026-03-01T15:00:00Z'));
    expect((await tickSchedules(t.hub.deps)).started).toHaveLength(1);
    // The job has not run yet: the 16:00 slot is skipped, and "run now" is refused.
    t.clock.set(Date.parse('2026-03-01T16:00:00Z'));
    expect((await tickSchedules(t.hub.deps)).skipped).toEqual([{ scheduleId: s.id, reason: 'overlap' }]);
    const now = await t.call('POST', `/v1/schedules/${s.id}/run`);
    expect(now.status).toBe(409);
    expect((await t.call('GET', `/v1/schedules/${s.id}`)).body).toMatchObject({ lastOutcome: 'skipped_overlap', nextRunAt: '2026-03-01T17:00:00.000Z' });
    await runDueJobs(t.hub);
    const again = await t.call('POST', `/v1/schedules/${s.id}/run`);
    expect(again.status).toBe(202);
  });

  it('refuses bad schedules, naming the fields', async () => {
    const bad = await t.call('POST', '/v1/schedules', { body: { name: 'x', exchangeId, cron: '99 * * * *', timezone: 'Nowhere/City' } });
    expect(bad.status).toBe(400);
    expect(bad.body.errors.map((e: any) => e.field).sort()).toEqual(['/cron', '/timezone']);
    const unknown = await t.call('POST', '/v1/schedules', { body: { name: 'x', exchangeId: 'exc_nope', cron: '@daily', timezone: 'UTC' } });
    expect(unknown.status).toBe(422);
    const window = await t.call('POST', '/v1/schedules', { body: { name: 'x', exchangeId, cron: '@daily', timezone: 'UTC', maintenanceWindows: [{ start: '24:00', end: '01:00' }] } });
    expect(window.status).toBe(400);
    expect((await t.call('DELETE', `/v1/exchanges/${exchangeId}`)).status).toBe(204);
  });

  it('keeps an exchange that a schedule runs', async () => {
    await t.call('POST', '/v1/schedules', { body: { name: 'x', exchangeId, cron: '@daily', timezone: 'UTC' } });
    const res = await t.call('DELETE', `/v1/exchanges/${exchangeId}`);
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('in_use');
  });
});

describe('retention', () => {
  it('deletes finished runs and their reports after HUB_FILE_RUN_RETENTION_DAYS, and spool files no run will read', async () => {
    const DAY = 86_400_000;
    const csv = 'SKU,Location,On Hand\nTEE-BLK-M,LON-1,7\nNOPE,LON-1,1\n';
    const old = (await raw('POST', '/v1/imports?action=stock.count&mapping=csv-stock-count-in&policy=keep-good', csv, { 'Content-Type': 'text/csv' })).body.runId;
    await runDueJobs(t.hub);
    expect((await t.call('GET', `/v1/file-runs/${old}/errors`)).body.data).toHaveLength(1);
    t.clock.advance(60 * DAY);
    const recent = (await raw('POST', '/v1/imports?action=stock.count&mapping=csv-stock-count-in&policy=keep-good', `${csv}MUG-01,LON-1,2\n`, { 'Content-Type': 'text/csv' })).body.runId;
    await runDueJobs(t.hub);
    t.clock.advance(31 * DAY);

    // Spool: a run that resumes from its file keeps it; a finished or unknown run's file and a dead stage's part go,
    // once a day old; a fresh file (an upload whose run is being made) stays.
    const store = t.hub.deps.store;
    const spool = join(root, 'spool');
    mkdirSync(spool, { recursive: true });
    const running = await store.table('file_runs').insert({ workspaceId: t.workspace.id, exchangeId: null, scheduleId: null, jobId: null, direction: 'import', trigger: 'manual', state: 'running', spec: {}, fileName: 'x.csv', rowsRead: 0, rowsApplied: 0, rowsSkipped: 0, rowsFailed: 0, cursor: 0, startedAt: new Date(t.clock.now()).toISOString() });
    // Ages by the hub's clock, which maintenance goes by.
    const written = (name: string, ageMs: number) => {
      writeFileSync(join(spool, name), 'x');
      const when = new Date(t.clock.now() - ageMs);
      utimesSync(join(spool, name), when, when);
    };
    const aged = (name: string) => written(name, 2 * DAY);
    aged(`${running.id}.spool`);
    aged(`${recent}.spool`);
    aged('run_gone.spool');
    aged('run_gone.spool.abc123.part');
    written('run_fresh.spool', 60_000);

    await t.hub.queue.enqueue({ type: 'maintenance.cleanup', payload: {} });
    await runDueJobs(t.hub);
    expect((await t.call('GET', `/v1/file-runs/${old}`)).status).toBe(404);
    expect(await store.table('file_run_errors').count({ runId: old })).toBe(0);
    expect((await t.call('GET', `/v1/file-runs/${recent}`)).body).toMatchObject({ state: 'partial' });
    expect(await store.table('file_run_errors').count({ runId: recent })).toBe(1);
    expect(readdirSync(spool).sort()).toEqual([`${running.id}.spool`, 'run_fresh.spool'].sort());

    // The checksum marker outlives its run: the old file is still not applied twice.
    const again = (await raw('POST', '/v1/imports?action=stock.count&mapping=csv-stock-count-in&policy=keep-good', csv, { 'Content-Type': 'text/csv' })).body.runId;
    await runDueJobs(t.hub);
    expect((await t.call('GET', `/v1/file-runs/${again}`)).body).toMatchObject({ state: 'duplicate' });
  });
});
