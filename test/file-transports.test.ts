// Exchanges over the remote transports, end to end through the API and the job: SFTP (an in-process ssh2 server,
// host key pinned, a connection that drops mid-file), email (an smtp-server, the attachment compared), and
// Appwrite Storage (the test server that checks every request against Appwrite's published spec).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Client, Storage } from 'node-appwrite';
import { InputFile } from 'node-appwrite/file';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readCsv } from '../src/files/index.ts';
import { startTablesDbServer, type TablesDbServer } from './appwrite/tablesdb-server.ts';
import { createTestHub, runDueJobs, type TestHub } from './helpers.ts';
import { startSftpServer, type SftpTestServer } from './sftp-server.ts';
import { startSmtpServer, type TestSmtpServer } from './smtp-server.ts';

let t: TestHub;
let root: string;

async function setup(extra: { smtpUrl?: string; appwrite?: { endpoint: string; projectId: string; apiKey: string } } = {}) {
  root = mkdtempSync(join(tmpdir(), 'hub-transports-'));
  t = await createTestHub({
    config: { files: { dir: join(root, 'files'), spoolDir: join(root, 'spool'), maxUploadBytes: 1 << 20, smtpUrl: extra.smtpUrl, mailFrom: 'Hub <hub@test>', schedulerIntervalMs: 1000, runRetentionDays: 90 } } as never,
    ...(extra.appwrite ? { appwrite: extra.appwrite } : {}),
  });
  for (const code of ['LON-1']) await t.call('POST', '/v1/locations', { body: { code, name: code, type: 'warehouse' } });
  for (const sku of ['TEE-BLK-M', 'MUG-01']) await t.call('POST', '/v1/products', { body: { sku, name: `Product ${sku}` } });
}

afterEach(async () => {
  await t?.close();
  rmSync(root, { recursive: true, force: true });
});

async function onHand(sku: string): Promise<number> {
  return (await t.hub.deps.store.table('inventory_items').query({ where: { sku } })).items[0]?.onHand ?? 0;
}

async function csvRecords(bytes: Buffer) {
  const out: Record<string, unknown>[] = [];
  for await (const item of readCsv(Readable.from([bytes]))) if (item.kind === 'record') out.push(item.value);
  return out;
}

const STOCK_IMPORT = { name: 'stock', direction: 'import', file: { format: 'csv' }, mapping: 'csv-stock-count-in', action: 'stock.count', policy: 'reject-all' };

describe('SFTP', () => {
  let sftp: SftpTestServer;
  let served: string;
  beforeEach(async () => {
    await setup();
    served = join(root, 'sftp');
    mkdirSync(join(served, 'outbox'), { recursive: true });
    sftp = await startSftpServer({ root: served, users: [{ username: 'hub', password: 's3cret' }] });
  });
  afterEach(() => sftp.close());

  const transport = () => ({ type: 'sftp', host: sftp.host, port: sftp.port, username: 'hub', hostKey: sftp.hostKeyFingerprint, path: 'outbox', pattern: '*.csv', archivePath: 'done', errorPath: 'failed' });

  it('imports from the server, archives there, and keeps the password out of every answer', async () => {
    const big = ['SKU,Location,On Hand', 'TEE-BLK-M,LON-1,40', 'MUG-01,LON-1,9'].join('\n') + '\n';
    writeFileSync(join(served, 'outbox', 'stock.csv'), big);
    const ex = await t.call('POST', '/v1/exchanges', { body: { ...STOCK_IMPORT, transport: transport(), secrets: { password: 's3cret' } } });
    expect(ex.status).toBe(201);
    expect(JSON.stringify(ex.body)).not.toContain('s3cret');
    expect(JSON.stringify((await t.call('GET', `/v1/exchanges/${ex.body.id}`)).body)).not.toContain('s3cret');
    await t.call('POST', `/v1/exchanges/${ex.body.id}/run`);
    await runDueJobs(t.hub);
    expect(await onHand('TEE-BLK-M')).toBe(40);
    expect(readdirSync(join(served, 'outbox'))).toEqual([]);
    expect(readFileSync(join(served, 'done', 'stock.csv'), 'utf8')).toBe(big);
  });

  it('applies nothing when the connection drops mid-file, leaves the file, and succeeds on the retry', async () => {
    const lines = ['SKU,Location,On Hand'];
    // ~100 KB: the connection drops after 64 KB of it.
    for (let i = 0; i < 5000; i++) lines.push(`${i % 2 ? 'MUG-01' : 'TEE-BLK-M'},LON-1,${i % 500}`);
    writeFileSync(join(served, 'outbox', 'big.csv'), lines.join('\n') + '\n');
    sftp.setFaults({ dropAfterBytes: 64 * 1024 });
    const ex = await t.call('POST', '/v1/exchanges', { body: { ...STOCK_IMPORT, transport: transport(), secrets: { password: 's3cret' } } });
    await t.call('POST', `/v1/exchanges/${ex.body.id}/run`);
    await runDueJobs(t.hub);
    const failed = (await t.call('GET', '/v1/file-runs')).body.data;
    expect(failed).toEqual([expect.objectContaining({ fileName: 'big.csv', state: 'failed', rowsApplied: 0, error: expect.objectContaining({ code: 'upstream_unreachable' }) })]);
    expect(await t.hub.deps.store.table('movements').count()).toBe(0);
    expect(existsSync(join(served, 'outbox', 'big.csv'))).toBe(true);
    const job = (await t.call('GET', '/v1/jobs?type=exchange.run')).body.data[0];
    expect(job).toMatchObject({ state: 'queued', attempts: 1 });
    // The network heals; the retried job imports the file.
    sftp.setFaults({});
    t.clock.advance(10 * 60_000);
    await runDueJobs(t.hub);
    const after = (await t.call('GET', '/v1/file-runs')).body.data;
    expect(after.map((r: any) => r.state).sort()).toEqual(['failed', 'succeeded']);
    expect(await onHand('TEE-BLK-M')).toBe(4998 % 500);
    expect(existsSync(join(served, 'done', 'big.csv'))).toBe(true);
  }, 60_000);

  it('refuses a server whose host key is not the pinned one, before sending the password', async () => {
    const ex = await t.call('POST', '/v1/exchanges', { body: { ...STOCK_IMPORT, transport: { ...transport(), hostKey: 'SHA256:' + 'A'.repeat(43) }, secrets: { password: 's3cret' } } });
    writeFileSync(join(served, 'outbox', 'stock.csv'), 'SKU,Location,On Hand\nTEE-BLK-M,LON-1,1\n');
    await t.call('POST', `/v1/exchanges/${ex.body.id}/run`);
    await runDueJobs(t.hub);
    const job = (await t.call('GET', '/v1/jobs?type=exchange.run')).body.data[0];
    expect(job).toMatchObject({ state: 'dead', lastError: { code: 'upstream_auth_failed' } });
    expect(job.lastError.message).toContain(sftp.hostKeyFingerprint);
    expect(sftp.authAttempts.filter((a) => a.method === 'password')).toEqual([]);
  });

  it('writes an export to the server', async () => {
    const ex = await t.call('POST', '/v1/exchanges', { body: { name: 'products out', direction: 'export', dataset: 'products', file: { format: 'csv' }, fileName: 'products.csv', transport: { type: 'sftp', host: sftp.host, port: sftp.port, username: 'hub', hostKey: sftp.hostKeyFingerprint, path: 'inbox' }, secrets: { password: 's3cret' } } });
    expect(ex.status).toBe(201);
    mkdirSync(join(served, 'inbox'));
    await t.call('POST', `/v1/exchanges/${ex.body.id}/run`);
    await runDueJobs(t.hub);
    const rows = await csvRecords(readFileSync(join(served, 'inbox', 'products.csv')));
    expect(rows.map((r) => r.sku).sort()).toEqual(['MUG-01', 'TEE-BLK-M']);
  });
});

describe('email', () => {
  let smtp: TestSmtpServer;
  beforeEach(async () => {
    smtp = await startSmtpServer({ users: { hub: 'mailpw' } });
    await setup({ smtpUrl: smtp.url('hub', 'mailpw') });
  });
  afterEach(() => smtp.close());

  it('mails an export with the file attached, the same bytes as a download', async () => {
    await t.call('POST', '/v1/stock/adjustments', { body: { locationId: (await t.call('GET', '/v1/locations')).body.data[0].id, reason: 'count', lines: [{ sku: 'MUG-01', onHand: 12 }] } });
    const ex = await t.call('POST', '/v1/exchanges', { body: { name: 'levels to the accountant', direction: 'export', dataset: 'stock-levels', file: { format: 'csv' }, fileName: 'levels-{date}.csv', transport: { type: 'email', to: ['accounts@example.com'], subject: 'Stock levels' } } });
    expect(ex.status).toBe(201);
    await t.call('POST', `/v1/exchanges/${ex.body.id}/run`);
    await runDueJobs(t.hub);
    const [mail] = await smtp.waitFor(1);
    expect(mail!.subject).toBe('Stock levels');
    expect(mail!.envelope.rcptTo).toEqual(['accounts@example.com']);
    const attachment = mail!.attachments[0]!;
    expect(attachment.filename).toBe('levels-2026-03-01.csv');
    const res = await t.hub.app.request('/v1/exports/stock-levels?format=csv', { headers: { Authorization: `Bearer ${t.adminKey}` } });
    expect(attachment.content.equals(Buffer.from(await res.arrayBuffer()))).toBe(true);
    const [run] = (await t.call('GET', `/v1/file-runs?exchangeId=${ex.body.id}`)).body.data;
    expect(run).toMatchObject({ state: 'succeeded', direction: 'export', rowsApplied: 1 });
  });

  it('records a refused login as a failed run', async () => {
    await t.close();
    rmSync(root, { recursive: true, force: true });
    await setup({ smtpUrl: smtp.url('hub', 'wrong') });
    const ex = await t.call('POST', '/v1/exchanges', { body: { name: 'x', direction: 'export', dataset: 'products', file: { format: 'csv' }, transport: { type: 'email', to: ['a@example.com'] } } });
    await t.call('POST', `/v1/exchanges/${ex.body.id}/run`);
    await runDueJobs(t.hub);
    const [run] = (await t.call('GET', '/v1/file-runs')).body.data;
    expect(run).toMatchObject({ state: 'failed', error: { code: 'upstream_auth_failed' } });
    expect(smtp.messages).toEqual([]);
  });
});

describe('Appwrite Storage', () => {
  let server: TablesDbServer;
  let storage: Storage;
  beforeEach(async () => {
    server = await startTablesDbServer();
    await setup({ appwrite: { endpoint: server.url, projectId: server.projectId, apiKey: server.apiKey } });
    storage = new Storage(new Client().setEndpoint(server.url).setProject(server.projectId).setKey(server.apiKey));
    await storage.createBucket({ bucketId: 'exchange', name: 'File exchange' });
  });
  afterEach(() => server.close());

  it('imports files from a bucket, renames them into archive/, and exports into it', async () => {
    await storage.createFile({ bucketId: 'exchange', fileId: 'f1', file: InputFile.fromBuffer(Buffer.from('SKU,Location,On Hand\nTEE-BLK-M,LON-1,33\n'), 'inbox/stock.csv') });
    const ex = await t.call('POST', '/v1/exchanges', { body: { ...STOCK_IMPORT, transport: { type: 'appwrite-storage', bucketId: 'exchange' } } });
    expect(ex.status).toBe(201);
    await t.call('POST', `/v1/exchanges/${ex.body.id}/run`);
    await runDueJobs(t.hub);
    expect(await onHand('TEE-BLK-M')).toBe(33);
    const names = (await storage.listFiles({ bucketId: 'exchange' })).files.map((f) => f.name);
    expect(names).toEqual(['archive/stock.csv']);

    const out = await t.call('POST', '/v1/exchanges', { body: { name: 'out', direction: 'export', dataset: 'stock-levels', file: { format: 'xlsx' }, fileName: 'levels.xlsx', transport: { type: 'appwrite-storage', bucketId: 'exchange', prefix: 'exports/' } } });
    await t.call('POST', `/v1/exchanges/${out.body.id}/run`);
    await runDueJobs(t.hub);
    const all = (await storage.listFiles({ bucketId: 'exchange' })).files.map((f) => f.name).sort();
    expect(all).toEqual(['archive/stock.csv', 'exports/levels.xlsx']);
    expect(server.violations).toEqual([]);
  });
});
