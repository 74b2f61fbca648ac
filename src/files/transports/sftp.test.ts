import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer, text } from 'node:stream/consumers';
import SftpClient from 'ssh2-sftp-client';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { generateTestKeyPair, startSftpServer, type SftpTestServer } from '../../../test/sftp-server.ts';
import { HubError } from '../../errors.ts';
import { createManualClock } from '../../lib/clock.ts';
import { createSftpSource, createSftpTarget, hostKeyFingerprint, type SftpOptions } from './sftp.ts';
import type { FileSource, FileTarget } from './types.ts';
import { configFailure, failingBody, failure, putFile } from './testing.ts';

const CSV = { contentType: 'text/csv' };
const bobKey = generateTestKeyPair();
const carolKey = generateTestKeyPair({ passphrase: 'open sesame', cipher: 'aes256-ctr', rounds: 1 });
const strangerKey = generateTestKeyPair();

let base: string;
/** What the server serves as '/'. */
let root: string;
let server: SftpTestServer;
/** Transports made in a test, closed after it. */
let opened: (FileSource | FileTarget)[] = [];

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'hub-sftp-'));
  root = join(base, 'served');
  await mkdir(root);
  server = await startSftpServer({
    root,
    users: [
      { username: 'alice', password: 'correct horse' },
      { username: 'bob', publicKey: bobKey.public },
      { username: 'carol', publicKey: carolKey.public },
    ],
  });
});

afterAll(async () => {
  await server.close();
  await rm(base, { recursive: true, force: true });
});

beforeEach(async () => {
  await rm(root, { recursive: true, force: true });
  await mkdir(root);
  server.setFaults({});
});

afterEach(async () => {
  await Promise.all(opened.map((t) => t.close()));
  opened = [];
});

function login(overrides: Partial<SftpOptions> = {}): SftpOptions {
  return { host: server.host, port: server.port, username: 'alice', password: 'correct horse', hostKey: server.hostKeyFingerprint, timeoutMs: 5000, ...overrides };
}

function source(options: Parameters<typeof createSftpSource>[0]): FileSource {
  const s = createSftpSource(options);
  opened.push(s);
  return s;
}

function target(options: Parameters<typeof createSftpTarget>[0]): FileTarget {
  const t = createSftpTarget(options);
  opened.push(t);
  return t;
}

const put = (rel: string, content: string | Buffer, mtime?: string) => putFile(root, rel, content, mtime);

describe('sftp source and target over a password login', () => {
  it('lists, reads, archives and writes, over one connection', async () => {
    await put('in/b.csv', 'Sku,Qty\nB,2\n', '2026-03-01T10:00:00Z');
    await put('in/a.csv', 'Sku,Qty\nA,1\n', '2026-03-01T10:00:00Z');
    await put('in/old.csv', 'Sku,Qty\nO,0\n', '2026-01-01T00:00:00Z');
    await put('in/.uploading.csv.part', 'x');
    await put('in/notes.txt', 'x');
    await mkdir(join(root, 'in', 'folder.csv'));
    const connectionsBefore = server.connections;
    const src = source({ ...login(), path: 'in', pattern: '*.csv' });

    expect(await src.list()).toEqual([
      { name: 'old.csv', size: 12, modifiedAt: '2026-01-01T00:00:00.000Z' },
      { name: 'a.csv', size: 12, modifiedAt: '2026-03-01T10:00:00.000Z' },
      { name: 'b.csv', size: 12, modifiedAt: '2026-03-01T10:00:00.000Z' },
    ]);
    expect(await text(await src.open('a.csv'))).toBe('Sku,Qty\nA,1\n');
    await src.finish('a.csv', 'archive');
    await src.finish('b.csv', 'error');
    expect(await readFile(join(root, 'in', 'archive', 'a.csv'), 'utf8')).toBe('Sku,Qty\nA,1\n');
    expect(await readFile(join(root, 'in', 'error', 'b.csv'), 'utf8')).toBe('Sku,Qty\nB,2\n');
    expect((await src.list()).map((f) => f.name)).toEqual(['old.csv']);
    expect(server.connections - connectionsBefore).toBe(1);

    const out = target({ ...login(), path: 'out/daily' });
    const result = await out.put('stock.csv', Readable.from(['Sku,Qty\n', 'A,1\n']), CSV);
    expect(result).toEqual({ location: 'out/daily/stock.csv' });
    expect(await readFile(join(root, 'out', 'daily', 'stock.csv'), 'utf8')).toBe('Sku,Qty\nA,1\n');
    expect(await readdir(join(root, 'out', 'daily'))).toEqual(['stock.csv']);
  });

  it('reads and writes a file of several hundred kilobytes byte for byte', async () => {
    const data = randomBytes(700_000);
    const out = target({ ...login(), path: 'big' });
    await out.put('data.bin', Readable.from([data.subarray(0, 123_457), data.subarray(123_457)]), CSV);
    expect((await readFile(join(root, 'big', 'data.bin'))).equals(data)).toBe(true);
    const read = await buffer(await source({ ...login(), path: 'big' }).open('data.bin'));
    expect(read.equals(data)).toBe(true);
  });

  it('reads ahead: several READs in flight, the file passed on in order, byte for byte', async () => {
    const data = randomBytes(1 << 20);
    await put('in/big.bin', data);
    const before = { ...server.reads };
    server.reads.mostInFlight = 0;
    const read = await buffer(await source({ ...login(), path: 'in' }).open('big.bin'));
    expect(read.equals(data)).toBe(true);
    // One READ at a time (a round trip per 32 KB) was the way before.
    expect(server.reads.mostInFlight).toBeGreaterThanOrEqual(8);
    // READs of the most ssh2 asks of a server that is not OpenSSH (34,000 bytes less its 2 KB of overhead: more, and
    // it would split each in two), then one that finds the end: none past the size the file was opened with.
    expect(server.reads.total - before.total).toBe(Math.ceil(data.length / (34_000 - 2048)) + 1);
  });

  it('reads a file from a server that answers short, asking for the rest of each answer, then no more than it gives', async () => {
    const data = randomBytes(4 << 20);
    await put('in/short.bin', data);
    server.setFaults({ maxReadBytes: 10_000 });
    const before = server.reads.total;
    const read = await buffer(await source({ ...login(), path: 'in' }).open('short.bin'));
    expect(read.equals(data)).toBe(true);
    // At least 420 answers of 10,000 bytes and the end. The 16 READs of ~32 KB sent first take 4 each; after them the
    // READs ask for 10,000 bytes (asking ~32 KB throughout would take ~530).
    const reads = server.reads.total - before;
    expect(reads).toBeGreaterThanOrEqual(Math.ceil(data.length / 10_000) + 1);
    expect(reads).toBeLessThanOrEqual(Math.ceil(data.length / 10_000) + 1 + 16 * 3);
  });

  it('writes ahead: several WRITEs in flight, the file whole and in place', async () => {
    const data = randomBytes(2 << 20);
    const chunks = Array.from({ length: 64 }, (_, i) => data.subarray(i * 32_768, (i + 1) * 32_768));
    server.writes.mostInFlight = 0;
    await target({ ...login(), path: 'out' }).put('big.bin', Readable.from(chunks), CSV);
    expect((await readFile(join(root, 'out', 'big.bin'))).equals(data)).toBe(true);
    // One WRITE at a time (a round trip per chunk) was the way before.
    expect(server.writes.mostInFlight).toBeGreaterThanOrEqual(8);
  });

  it('fails an export whose WRITEs the server refuses mid-file, leaving no file and no temporary file', async () => {
    await put('out/stock.csv', 'the earlier export');
    const data = randomBytes(2 << 20);
    server.setFaults({ failWritesPast: 1 << 20 });
    const out = target({ ...login(), path: 'out' });
    const err = await failure(out.put('stock.csv', Readable.from(Array.from({ length: 64 }, (_, i) => data.subarray(i * 32_768, (i + 1) * 32_768))), CSV));
    expect(err.code).toBe('upstream_error');
    expect(err.message).toContain('No space left on device');
    expect(await readdir(join(root, 'out'))).toEqual(['stock.csv']);
    expect(await readFile(join(root, 'out', 'stock.csv'), 'utf8')).toBe('the earlier export');
    // The connection is still good for the next export.
    server.setFaults({});
    await out.put('next.csv', Readable.from(['ok']), CSV);
    expect(await readFile(join(root, 'out', 'next.csv'), 'utf8')).toBe('ok');
  });

  it('gives a file whose name is already archived a stamped name, and never overwrites an archived file', async () => {
    const clock = createManualClock(Date.parse('2026-11-22T01:02:03.500Z'));
    const src = source({ ...login(), path: 'in', archivePath: 'done', clock });
    for (const content of ['first', 'second', 'third']) {
      await put('in/stock.csv', content);
      await src.finish('stock.csv', 'archive');
    }
    expect((await readdir(join(root, 'done'))).sort()).toEqual(['stock.20261122T010203Z-2.csv', 'stock.20261122T010203Z.csv', 'stock.csv']);
    expect(await readFile(join(root, 'done', 'stock.csv'), 'utf8')).toBe('first');
    expect(await readFile(join(root, 'done', 'stock.20261122T010203Z-2.csv'), 'utf8')).toBe('third');
  });

  it('takes absolute paths on the server, and lists links to files', async () => {
    await put('abs/in/real.csv', 'real');
    await symlink(join(root, 'abs', 'in', 'real.csv'), join(root, 'abs', 'in', 'link.csv'));
    const src = source({ ...login(), path: '/abs/in' });
    expect((await src.list()).map((f) => f.name).sort()).toEqual(['link.csv', 'real.csv']);
    expect(await text(await src.open('link.csv'))).toBe('real');
  });

  it('replaces an earlier export with posix-rename, and by removing it first on a server without', async () => {
    await put('out/stock.csv', 'old');
    await target({ ...login(), path: 'out' }).put('stock.csv', Readable.from(['new']), CSV);
    expect(await readFile(join(root, 'out', 'stock.csv'), 'utf8')).toBe('new');

    const plain = await startSftpServer({ root, users: [{ username: 'alice', password: 'correct horse' }], posixRename: false });
    try {
      const out = target({ ...login({ port: plain.port, hostKey: plain.hostKeyFingerprint }), path: 'out' });
      await out.put('stock.csv', Readable.from(['newer']), CSV);
      await out.put('stock.csv', Readable.from(['newest']), CSV);
      expect(await readFile(join(root, 'out', 'stock.csv'), 'utf8')).toBe('newest');
      expect(await readdir(join(root, 'out'))).toEqual(['stock.csv']);
      await out.close();
    } finally {
      await plain.close();
    }
  });

  it('creates missing folders for exports, also ones whose names start with a dot', async () => {
    const out = target({ ...login(), path: '.exchange/out/2026' });
    expect(await out.put('a.csv', Readable.from(['a']), CSV)).toEqual({ location: '.exchange/out/2026/a.csv' });
    expect(await readFile(join(root, '.exchange', 'out', '2026', 'a.csv'), 'utf8')).toBe('a');
  });

  it('leaves no file and no temporary file when the body fails, and keeps an earlier export intact', async () => {
    await put('out/stock.csv', 'the earlier export');
    const out = target({ ...login(), path: 'out' });
    await expect(out.put('stock.csv', failingBody(['Sku,Qty\n', 'A,1\n']), CSV)).rejects.toThrow('the export failed halfway');
    await expect(out.put('new.csv', failingBody([]), CSV)).rejects.toThrow('the export failed halfway');
    expect(await readdir(join(root, 'out'))).toEqual(['stock.csv']);
    expect(await readFile(join(root, 'out', 'stock.csv'), 'utf8')).toBe('the earlier export');
    // The connection is still good for the next export.
    await out.put('next.csv', Readable.from(['ok']), CSV);
    expect(await readFile(join(root, 'out', 'next.csv'), 'utf8')).toBe('ok');
  });

  it('says not_found for a missing file or folder, and refuses bad names', async () => {
    await mkdir(join(root, 'in'));
    const src = source({ ...login(), path: 'in' });
    expect((await failure(src.open('gone.csv'))).code).toBe('not_found');
    expect((await failure(src.finish('gone.csv', 'archive'))).code).toBe('not_found');
    expect((await failure(source({ ...login(), path: 'nowhere' }).list())).code).toBe('not_found');
    for (const name of ['../x.csv', '.hidden', 'a/b.csv']) {
      expect((await failure(src.open(name))).errors?.[0]).toMatchObject({ field: '/name', code: 'file_name' });
      expect((await failure(target(login()).put(name, Readable.from(['x']), CSV))).errors?.[0]).toMatchObject({ field: '/name' });
    }
  });

  it('fails a read when the file ends before the size it had when opened', async () => {
    await put('in/shrinks.csv', 'x'.repeat(100_000));
    const stream = await source({ ...login(), path: 'in' }).open('shrinks.csv');
    await truncate(join(root, 'in', 'shrinks.csv'), 40_000);
    const err = await failure(text(stream));
    expect(err.code).toBe('upstream_error');
    expect(err.message).toContain('ended after 40000 of its 100000 bytes');
  });
});

describe('sftp logins', () => {
  beforeEach(async () => {
    await put('in/a.csv', 'a');
  });

  it('logs in with a private key', async () => {
    const src = source({ ...login({ username: 'bob', password: undefined, privateKey: bobKey.private }), path: 'in' });
    expect((await src.list()).map((f) => f.name)).toEqual(['a.csv']);
    expect(server.authAttempts.at(-1)).toEqual({ username: 'bob', method: 'publickey', accepted: true });
  });

  it('logs in with an encrypted private key and its passphrase', async () => {
    const src = source({ ...login({ username: 'carol', password: undefined, privateKey: carolKey.private, passphrase: 'open sesame' }), path: 'in' });
    expect(await text(await src.open('a.csv'))).toBe('a');
  });

  it('reports a refused password as upstream_auth_failed, not worth retrying', async () => {
    const err = await failure(source({ ...login({ password: 'wrong' }), path: 'in' }).list());
    expect(err.code).toBe('upstream_auth_failed');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain("refused the password of 'alice'");
    expect(err.message).not.toContain('wrong');
    expect(server.authAttempts.at(-1)).toEqual({ username: 'alice', method: 'password', accepted: false });
  });

  it('reports a key the server does not know as upstream_auth_failed', async () => {
    const err = await failure(source({ ...login({ username: 'bob', password: undefined, privateKey: strangerKey.private }), path: 'in' }).list());
    expect(err.code).toBe('upstream_auth_failed');
  });

  it('refuses a server whose host key is not the pinned one, names its key, and sends no credentials', async () => {
    const other = hostKeyFingerprint(Buffer.from(generateTestKeyPair().public.split(' ')[1]!, 'base64'));
    const attempts = server.authAttempts.length;
    const connections = server.connections;
    const err = await failure(source({ ...login({ hostKey: other }), path: 'in' }).list());
    expect(err.code).toBe('upstream_auth_failed');
    expect(err.message).toContain(server.hostKeyFingerprint);
    expect(err.message).toContain(other);
    expect(err.extra).toEqual({ hostKey: server.hostKeyFingerprint });
    expect(server.connections).toBe(connections + 1);
    expect(server.authAttempts.length).toBe(attempts);
  });

  it('pins the fingerprint exactly as ssh-keygen prints it', () => {
    const blob = Buffer.from(server.hostPublicKey.split(' ')[1]!, 'base64');
    expect(hostKeyFingerprint(blob)).toBe(server.hostKeyFingerprint);
    expect(server.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });
});

describe('sftp connection failures', () => {
  it('reports a closed port as upstream_unreachable, worth retrying', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const err = await failure(source(login({ port })).list());
    expect(err.code).toBe('upstream_unreachable');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('refused the connection');
  });

  it('gives up on a server that accepts the connection and never speaks, within the timeout', async () => {
    const sockets = new Set<Socket>();
    const mute = createServer((socket) => void sockets.add(socket));
    await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
    try {
      const started = Date.now();
      const err = await failure(source(login({ port: (mute.address() as AddressInfo).port, timeoutMs: 300 })).list());
      expect(err.code).toBe('upstream_unreachable');
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => mute.close(() => resolve()));
    }
  });

  it('fails the stream with upstream_unreachable when the connection drops mid-file, then connects again', async () => {
    const data = randomBytes(1 << 20);
    await put('in/big.bin', data);
    const src = source({ ...login(), path: 'in' });
    server.setFaults({ dropAfterBytes: 300_000 });
    let received = 0;
    const stream = await src.open('big.bin');
    stream.on('data', (chunk: Buffer) => (received += chunk.length));
    const err = await failure(new Promise((resolve, reject) => stream.on('end', resolve).on('error', reject)));
    expect(err.code).toBe('upstream_unreachable');
    expect(err.retryable).toBe(true);
    expect(received).toBeLessThanOrEqual(300_000);

    server.setFaults({});
    expect((await buffer(await src.open('big.bin'))).equals(data)).toBe(true);
  });

  it('fails a paused stream when the connection drops, instead of leaving it waiting forever', async () => {
    await put('in/big.bin', randomBytes(1 << 20));
    const stream = await source({ ...login(), path: 'in' }).open('big.bin');
    const errors: unknown[] = [];
    stream.on('error', (e) => errors.push(e));
    // Fill the stream's buffer and leave it paused: no read is in flight when the connection goes.
    stream.pause();
    stream.read(0);
    await vi.waitFor(() => expect(stream.readableLength).toBeGreaterThanOrEqual(stream.readableHighWaterMark), { timeout: 3000 });
    server.dropConnections();
    await vi.waitFor(() => expect(errors).toHaveLength(1), { timeout: 3000 });
    expect(errors[0]).toBeInstanceOf(HubError);
    expect((errors[0] as HubError).code).toBe('upstream_unreachable');
  });

  it('fails the first read of a file opened just before the connection dropped', async () => {
    await put('in/a.csv', 'a');
    const stream = await source({ ...login(), path: 'in' }).open('a.csv');
    server.dropConnections();
    await new Promise((r) => setTimeout(r, 100));
    const outcome = await Promise.race([text(stream).catch((e: unknown) => e), new Promise((r) => setTimeout(() => r('hung'), 3000))]);
    expect(outcome).toBeInstanceOf(HubError);
    expect((outcome as HubError).code).toBe('upstream_unreachable');
  });

  it('gives up on a request the server never answers, and connects again for the next', async () => {
    await put('in/a.csv', 'a');
    const src = source({ ...login({ timeoutMs: 1000 }), path: 'in' });
    expect((await src.list()).map((f) => f.name)).toEqual(['a.csv']);
    const connections = server.connections;
    server.setFaults({ stall: true });
    const err = await failure(src.list());
    expect(err.code).toBe('upstream_unreachable');
    expect(err.message).toContain('did not answer within 1000 ms while listing in');
    server.setFaults({});
    expect((await src.list()).map((f) => f.name)).toEqual(['a.csv']);
    expect(server.connections).toBe(connections + 1);
  });

  it('fails an export whose connection drops, and the next export connects again', async () => {
    await put('in/x.csv', 'x');
    const out = target({ ...login(), path: 'out' });
    await out.put('first.csv', Readable.from(['1']), CSV);
    const body = Readable.from(
      (async function* () {
        yield Buffer.from('part 1\n');
        server.dropConnections();
        await new Promise((r) => setTimeout(r, 100));
        yield Buffer.from('part 2\n');
      })(),
    );
    const err = await failure(out.put('second.csv', body, CSV));
    expect(err.code).toBe('upstream_unreachable');
    expect(existsSync(join(root, 'out', 'second.csv'))).toBe(false);
    await out.put('third.csv', Readable.from(['3']), CSV);
    expect(await readFile(join(root, 'out', 'third.csv'), 'utf8')).toBe('3');
  });
});

describe('sftp configuration', () => {
  it.each([
    [{ hostKey: undefined }, '/hostKey', 'host_key'],
    [{ hostKey: 'SHA256:short' }, '/hostKey', 'host_key'],
    [{ hostKey: 'MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48' }, '/hostKey', 'host_key'],
    [{ password: undefined }, '/password', 'required'],
    [{ privateKey: bobKey.private }, '/privateKey', 'conflict'],
    [{ password: undefined, privateKey: 'not a key' }, '/privateKey', 'private_key'],
    [{ password: undefined, privateKey: bobKey.public }, '/privateKey', 'private_key'],
    [{ password: undefined, privateKey: carolKey.private }, '/privateKey', 'private_key'],
    [{ password: undefined, privateKey: carolKey.private, passphrase: 'wrong' }, '/privateKey', 'private_key'],
    [{ passphrase: 'x' }, '/passphrase', 'conflict'],
    [{ port: 0 }, '/port', 'port'],
    [{ port: 70000 }, '/port', 'port'],
    [{ host: '' }, '/host', 'host'],
    [{ host: 'sftp.example.com/in' }, '/host', 'host'],
    [{ username: '' }, '/username', 'required'],
    [{ timeoutMs: 0 }, '/timeoutMs', 'timeout'],
  ] as [Partial<SftpOptions>, string, string][])('refuses %j', (overrides, field, code) => {
    const err = configFailure(() => createSftpTarget({ ...login(), ...overrides } as SftpOptions));
    expect(err.errors).toEqual([expect.objectContaining({ field, code })]);
  });

  it.each(['../up', 'in/../../etc', 'a\\b'])('refuses the path %j', (path) => {
    expect(configFailure(() => createSftpSource({ ...login(), path })).errors?.[0]).toMatchObject({ field: '/path', code: 'path' });
    expect(configFailure(() => createSftpTarget({ ...login(), path })).errors?.[0]).toMatchObject({ field: '/path', code: 'path' });
  });

  it('reports all mistakes at once, archive folders included', () => {
    const err = configFailure(() => createSftpSource({ ...login({ hostKey: '' }), path: 'in', archivePath: 'in', pattern: '[' }));
    expect(err.errors?.map((e) => e.field)).toEqual(['/hostKey', '/pattern', '/archivePath']);
  });

  it('does not connect before it is used', () => {
    const connections = server.connections;
    opened.push(createSftpSource(login()), createSftpTarget(login()));
    expect(server.connections).toBe(connections);
  });
});

describe('the test SFTP server', () => {
  async function rawClient(): Promise<SftpClient> {
    const client = new SftpClient('test', { error: () => {}, end: () => {}, close: () => {} });
    await client.connect({ host: server.host, port: server.port, username: 'alice', password: 'correct horse' });
    return client;
  }

  it("keeps clients inside its root: '..' stops there and links out of it are refused", async () => {
    await writeFile(join(base, 'secret.txt'), 'secret');
    await symlink(join(base, 'secret.txt'), join(root, 'escape.txt'));
    await put('inside.txt', 'inside');
    const client = await rawClient();
    try {
      expect(((await client.get('../../inside.txt')) as Buffer).toString()).toBe('inside');
      await expect(client.get('escape.txt')).rejects.toThrow(/denied|Outside/i);
      await expect(client.put(Buffer.from('x'), '../outside.txt')).resolves.toBeDefined();
      expect(existsSync(join(root, 'outside.txt'))).toBe(true);
      expect(existsSync(join(base, 'outside.txt'))).toBe(false);
    } finally {
      await client.end();
    }
  });

  it('refuses to replace a file with RENAME, as OpenSSH does, and replaces it with posix-rename', async () => {
    await put('a.txt', 'a');
    await put('b.txt', 'b');
    const client = await rawClient();
    try {
      await expect(client.rename('a.txt', 'b.txt')).rejects.toThrow();
      await client.posixRename('a.txt', 'b.txt');
      expect(await readFile(join(root, 'b.txt'), 'utf8')).toBe('a');
    } finally {
      await client.end();
    }
  });
});
