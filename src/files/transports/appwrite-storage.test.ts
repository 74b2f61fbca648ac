// The Appwrite Storage transport against the local Appwrite test server, which checks every request (multipart
// uploads and the chunked upload protocol included) against Appwrite's published OpenAPI document.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { Client, Query, Storage } from 'node-appwrite';
import { InputFile } from 'node-appwrite/file';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_SPEC_PATH, loadSpec } from '../../../test/appwrite/spec.ts';
import { startTablesDbServer, type TablesDbServer } from '../../../test/appwrite/tablesdb-server.ts';
import { rejectedHubError, thrownHubError } from '../../../test/hub-error.ts';
import { createManualClock } from '../../lib/clock.ts';
import { createStorageSource, createStorageTarget, type StorageOptions } from './appwrite-storage.ts';

const BUCKET = 'exchange';
const CHUNK = 5 * 1024 * 1024;
let server: TablesDbServer;
let storage: Storage;
const responseProblems: string[] = [];

/** A node-appwrite client for setting up files; every answer it gets is checked against the spec's response schemas. */
function connect(): Storage {
  const spec = loadSpec();
  const client = new Client().setEndpoint(server.url).setProject(server.projectId).setKey(server.apiKey);
  const call = client.call.bind(client);
  client.call = async (method, url, headers, params, responseType) => {
    const result: unknown = await call(method, url, headers, params, responseType);
    if (responseType !== 'arrayBuffer') responseProblems.push(...spec.checkResponse(method.toUpperCase(), url.pathname.slice(spec.basePath.length), null, result));
    return result;
  };
  return new Storage(client);
}

function options(extra: Partial<StorageOptions> = {}): StorageOptions {
  return { endpoint: server.url, projectId: server.projectId, apiKey: server.apiKey, bucketId: BUCKET, ...extra };
}

async function upload(name: string, content: string | Buffer): Promise<string> {
  const file = await storage.createFile({ bucketId: BUCKET, fileId: 'unique()', file: InputFile.fromBuffer(Buffer.from(content), name) });
  return file.$id;
}

async function names(): Promise<string[]> {
  const { files } = await storage.listFiles({ bucketId: BUCKET, queries: [Query.limit(500)] });
  return files.map((f) => f.name).sort();
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function sha(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Deterministic bytes that are not all alike, so a misplaced chunk changes the hash. */
function bytes(size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    out[i] = x >>> 16;
  }
  return out;
}

function raw(path: string, init: { method?: string; headers?: Record<string, string>; body?: FormData } = {}): Promise<Response> {
  return fetch(`${server.url}${path}`, {
    method: init.method ?? 'GET',
    headers: { 'x-appwrite-project': server.projectId, 'x-appwrite-key': server.apiKey, ...init.headers },
    body: init.body,
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!existsSync(DEFAULT_SPEC_PATH))('Appwrite Storage transport', () => {
  beforeAll(async () => {
    server = await startTablesDbServer();
  });
  afterAll(async () => {
    await server?.close();
  });
  beforeEach(async () => {
    server.reset();
    responseProblems.length = 0;
    storage = connect();
    await storage.createBucket({ bucketId: BUCKET, name: 'File exchange' });
  });
  afterEach(() => {
    expect(server.violations).toEqual([]);
    expect(responseProblems).toEqual([]);
  });

  describe('list', () => {
    it('pages through the bucket and reports files under the prefix that match the pattern, oldest first', async () => {
      await upload('inbox/z-first.csv', 'first');
      await sleep(5);
      await Promise.all(Array.from({ length: 104 }, (_, i) => upload(`inbox/order-${String(i).padStart(3, '0')}.csv`, `row ${i}`)));
      for (const name of ['inbox/readme.txt', 'inbox/sub/nested.csv', 'inbox/.hidden.csv', 'INBOX/shouted.csv', 'outbox/x.csv', 'archive/old.csv']) await upload(name, 'other');
      await sleep(5);
      await upload('inbox/a-last.csv', 'last');

      const listed = await createStorageSource({ ...options(), pattern: '*.csv' }).list();
      const listCalls = server.requests.filter((r) => r.method === 'GET' && r.path.endsWith(`/buckets/${BUCKET}/files`)).length;

      const { files } = await storage.listFiles({ bucketId: BUCKET, queries: [Query.limit(500)] });
      const expected = files
        .filter((f) => /^inbox\/[^/.][^/]*\.csv$/.test(f.name))
        .sort((a, b) => Date.parse(a.$createdAt) - Date.parse(b.$createdAt) || (a.name < b.name ? -1 : 1))
        .map((f) => f.name.slice('inbox/'.length));
      expect(listed.map((f) => f.name)).toEqual(expected);
      expect(listed).toHaveLength(106);
      expect(listed[0]).toEqual({ name: 'z-first.csv', size: 5, modifiedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/) });
      expect(listed.at(-1)!.name).toBe('a-last.csv');
      expect(listCalls).toBe(2);
    });

    it('matches ? as exactly one character and leaves out uploads still in progress', async () => {
      await upload('inbox/order-01.csv', 'a');
      await upload('inbox/order-1.csv', 'b');
      await upload('inbox/order-123.csv', 'c');
      // the first chunk of a two-chunk upload: Appwrite lists the file before its last chunk is in
      const form = new FormData();
      form.append('fileId', 'halfway');
      form.append('file', new Blob([bytes(CHUNK)]), 'inbox/order-02.csv');
      const first = await raw(`/storage/buckets/${BUCKET}/files`, { method: 'POST', headers: { 'content-range': `bytes 0-${CHUNK - 1}/${CHUNK + 10}` }, body: form });
      expect(first.status).toBe(201);
      expect(await first.json()).toMatchObject({ $id: 'halfway', chunksTotal: 2, chunksUploaded: 1 });

      const listed = await createStorageSource({ ...options(), pattern: 'order-??.csv' }).list();
      expect(listed.map((f) => f.name)).toEqual(['order-01.csv']);
    });

    it('reports a missing bucket as not_found', async () => {
      const error = await rejectedHubError(createStorageSource(options({ bucketId: 'nope' })).list());
      expect(error.code).toBe('not_found');
      expect(error.message).toContain('storage_bucket_not_found');
    });
  });

  describe('open', () => {
    it('streams the exact bytes of a file', async () => {
      const content = bytes(300_000, 7);
      await upload('inbox/stock.csv', content);
      const data = await collect(await createStorageSource(options()).open('stock.csv'));
      expect(sha(data)).toBe(sha(content));
    });

    it('hands over the first bytes before the server has sent the rest', async () => {
      const content = bytes(2_000_000, 3);
      await upload('inbox/big.csv', content);
      const held = server.interruptDownloads({ afterBytes: 100_000, mode: 'hold' });
      const stream = await Promise.race([
        createStorageSource(options()).open('big.csv'),
        sleep(10_000).then(() => {
          throw new Error('open() waited for the whole body');
        }),
      ]);
      const iterator = stream[Symbol.asyncIterator]();
      const first = (await iterator.next()).value as Buffer;
      expect(first.length).toBeGreaterThan(0);
      expect(first.length).toBeLessThanOrEqual(100_000);
      held.release();
      const rest: Buffer[] = [first];
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) rest.push(next.value as Buffer);
      expect(sha(Buffer.concat(rest))).toBe(sha(content));
    });

    it('fails the stream with upstream_unreachable when the connection drops mid-file', async () => {
      await upload('inbox/big.csv', bytes(500_000));
      server.interruptDownloads({ afterBytes: 50_000, mode: 'drop' });
      const stream = await createStorageSource(options()).open('big.csv');
      const error = await rejectedHubError(collect(stream));
      expect(error.code).toBe('upstream_unreachable');
      expect(error.retryable).toBe(true);
    });

    it('reports a file that is not there as not_found', async () => {
      await upload('inbox/other.csv', 'x');
      const error = await rejectedHubError(createStorageSource(options()).open('gone.csv'));
      expect(error.code).toBe('not_found');
    });

    it('refuses a name that is a path', async () => {
      const error = await rejectedHubError(createStorageSource(options()).open('../archive/x.csv'));
      expect(error.code).toBe('validation_failed');
    });
  });

  describe('finish', () => {
    it('renames a file into archive/ or error/, adding a timestamp when the name is taken', async () => {
      const clock = createManualClock(Date.parse('2026-03-01T12:00:00Z'));
      const source = createStorageSource({ ...options(), clock });
      await upload('inbox/a.csv', 'one');
      await source.finish('a.csv', 'archive');
      expect(await names()).toEqual(['archive/a.csv']);

      await upload('inbox/a.csv', 'two');
      await source.finish('a.csv', 'archive');
      await upload('inbox/a.csv', 'three');
      await source.finish('a.csv', 'archive');
      await upload('inbox/b', 'four');
      await source.finish('b', 'error');
      await upload('inbox/b', 'five');
      await source.finish('b', 'error');
      expect(await names()).toEqual(['archive/a-20260301-120000-2.csv', 'archive/a-20260301-120000.csv', 'archive/a.csv', 'error/b', 'error/b-20260301-120000']);
      expect(await source.list()).toEqual([]);
    });

    it('reports a file that went away as not_found', async () => {
      const error = await rejectedHubError(createStorageSource(options()).finish('gone.csv', 'archive'));
      expect(error.code).toBe('not_found');
    });
  });

  describe('put', () => {
    it('uploads a file of more than 5 MB in chunks, which reads back byte for byte', async () => {
      const content = bytes(12 * 1024 * 1024 + 123, 11);
      const target = createStorageTarget(options());
      const { location } = await target.put('stock.xlsx', Readable.from([content.subarray(0, 1_000_000), content.subarray(1_000_000)]), {
        contentType: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
      });
      const fileId = location.split('/')[1]!;
      expect(location).toBe(`${BUCKET}/${fileId}`);
      const uploads = server.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/files'));
      expect(uploads.map((r) => r.status)).toEqual([201, 201, 201]);
      const file = await storage.getFile({ bucketId: BUCKET, fileId });
      expect(file).toMatchObject({ name: 'exports/stock.xlsx', sizeOriginal: content.length, chunksTotal: 3, chunksUploaded: 3 });

      const data = await collect(await createStorageSource({ ...options(), prefix: 'exports/', archivePrefix: 'done/' }).open('stock.xlsx'));
      expect(sha(data)).toBe(sha(content));
    });

    it('replaces a file of the same name only after the new one is in place', async () => {
      const target = createStorageTarget(options());
      const first = await target.put('stock.csv', Readable.from(['sku,qty\nA,1\n']), { contentType: 'text/csv' });
      const second = await target.put('stock.csv', Readable.from(['sku,qty\nA,2\n']), { contentType: 'text/csv' });
      expect(second.location).not.toBe(first.location);
      expect(await names()).toEqual(['exports/stock.csv']);
      // the new file was renamed into place before the old one was deleted
      const order = server.requests.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path.split('/').at(-1)}`);
      const newId = second.location.split('/')[1]!;
      const oldId = first.location.split('/')[1]!;
      expect(order.slice(-3)).toEqual(['POST files', `PUT ${newId}`, `DELETE ${oldId}`]);
      const data = await collect(await createStorageSource({ ...options(), prefix: 'exports/' }).open('stock.csv'));
      expect(data.toString()).toBe('sku,qty\nA,2\n');
    });

    it('leaves nothing behind when the export fails mid-stream', async () => {
      const before = (await readdir(tmpdir())).filter((n) => n.startsWith('hub-storage-')).length;
      const broken = new Readable({
        read() {
          this.push('sku,qty\n');
          this.destroy(new Error('the export broke'));
        },
      });
      await expect(createStorageTarget(options()).put('stock.csv', broken, { contentType: 'text/csv' })).rejects.toThrow('the export broke');
      expect(await names()).toEqual([]);
      expect((await readdir(tmpdir())).filter((n) => n.startsWith('hub-storage-')).length).toBe(before);
    });

    it('refuses a name that is a path', async () => {
      const error = await rejectedHubError(createStorageTarget(options()).put('a/b.csv', Readable.from(['x']), { contentType: 'text/csv' }));
      expect(error.code).toBe('validation_failed');
    });
  });

  describe('errors', () => {
    it('maps a refused API key to upstream_auth_failed', async () => {
      const source = createStorageSource(options({ apiKey: 'wrong' }));
      expect((await rejectedHubError(source.list())).code).toBe('upstream_auth_failed');
      const target = createStorageTarget(options({ apiKey: 'wrong' }));
      const error = await rejectedHubError(target.put('x.csv', Readable.from(['x']), { contentType: 'text/csv' }));
      expect(error.code).toBe('upstream_auth_failed');
      expect(error.retryable).toBe(false);
    });

    it('maps a wrong project id to upstream_auth_failed', async () => {
      expect((await rejectedHubError(createStorageSource(options({ projectId: 'other' })).list())).code).toBe('upstream_auth_failed');
    });

    it('maps 5xx to a retryable upstream_error and 429 to upstream_rate_limited', async () => {
      server.injectFaults({ status: 503, count: 1 });
      const failed = await rejectedHubError(createStorageSource(options()).list());
      expect({ code: failed.code, retryable: failed.retryable }).toEqual({ code: 'upstream_error', retryable: true });
      server.injectFaults({ status: 429, count: 1 });
      expect((await rejectedHubError(createStorageSource(options()).list())).code).toBe('upstream_rate_limited');
    });

    it('maps a download refused after the lookup to the same codes', async () => {
      await upload('inbox/a.csv', 'x');
      server.injectFaults({ status: 500, count: 1, match: (method, path) => path.endsWith('/download') });
      expect((await rejectedHubError(createStorageSource(options()).open('a.csv'))).code).toBe('upstream_error');
    });

    it('maps a server that cannot be reached to upstream_unreachable', async () => {
      const closed = await startTablesDbServer();
      const url = closed.url;
      await closed.close();
      const error = await rejectedHubError(createStorageSource(options({ endpoint: url })).list());
      expect({ code: error.code, retryable: error.retryable }).toEqual({ code: 'upstream_unreachable', retryable: true });
    });

    it('refuses settings that cannot work, naming each field', () => {
      const error = thrownHubError(() =>
        createStorageSource({ ...options(), endpoint: 'ftp://x', bucketId: '_bad', prefix: 'inbox/', archivePrefix: 'inbox/done-', pattern: 'a/*' }),
      );
      expect(error.code).toBe('validation_failed');
      expect(error.errors?.map((e) => e.field)).toEqual(['/endpoint', '/bucketId', '/archivePrefix', '/pattern']);
      expect(thrownHubError(() => createStorageTarget({ ...options(), apiKey: '' })).errors?.map((e) => e.field)).toEqual(['/apiKey']);
    });
  });

  describe('the test server', () => {
    it('checks multipart uploads against the spec', async () => {
      const form = new FormData();
      form.append('fileId', 'f1');
      form.append('file', 'not a file part');
      form.append('permission', 'read("any")');
      const res = await raw(`/storage/buckets/${BUCKET}/files`, { method: 'POST', body: form });
      expect(res.status).toBe(400);
      expect(server.violations.join('\n')).toMatch(/"file" sent as a text part.*\n.*unknown body parameter "permission"/);
      server.violations.length = 0;
    });

    it('flags chunks that are not where Appwrite would put them', async () => {
      const form = new FormData();
      form.append('fileId', 'odd');
      form.append('file', new Blob([bytes(1000)]), 'odd.csv');
      const res = await raw(`/storage/buckets/${BUCKET}/files`, { method: 'POST', headers: { 'content-range': 'bytes 0-999/3000' }, body: form });
      expect(res.status).toBe(201);
      expect(server.violations).toEqual([
        expect.stringContaining('chunk 1 of 1 has 1000 bytes, Appwrite expects 3000'),
        expect.stringContaining('file odd assembled to 1000 bytes, content-range said 3000'),
      ]);
      server.violations.length = 0;
      const bad = await raw(`/storage/buckets/${BUCKET}/files`, { method: 'POST', headers: { 'content-range': 'bytes 0-999' }, body: form });
      expect(await bad.json()).toMatchObject({ code: 400, type: 'storage_invalid_content_range' });
      server.violations.length = 0;
    });

    it('answers Range requests with 206, and refuses what Appwrite refuses with 416', async () => {
      const content = bytes(1000, 5);
      const fileId = await upload('a.bin', content);
      const part = await raw(`/storage/buckets/${BUCKET}/files/${fileId}/download`, { headers: { range: 'bytes=10-19' } });
      expect(part.status).toBe(206);
      expect(part.headers.get('content-range')).toBe('bytes 10-19/1000');
      expect(Buffer.from(await part.arrayBuffer())).toEqual(content.subarray(10, 20));
      const single = await raw(`/storage/buckets/${BUCKET}/files/${fileId}/download`, { headers: { range: 'bytes=5-5' } });
      expect(single.status).toBe(416);
      expect(await single.json()).toMatchObject({ type: 'storage_invalid_range' });
    });
  });
});
