import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createManualClock } from '../../lib/clock.ts';
import { createFolderSource, createFolderTarget } from './folder.ts';
import { configFailure, failingBody, failure, putFile } from './testing.ts';

const CSV = { contentType: 'text/csv' };

let base: string;
/** The files directory under test; `outside` is a sibling a schedule must never reach. */
let root: string;
let outside: string;

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'hub-folder-'));
  root = join(base, 'files');
  outside = join(base, 'outside');
  await mkdir(root);
  await mkdir(outside);
});

afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

const put = (rel: string, content: string | Buffer, mtime?: string) => putFile(root, rel, content, mtime);

describe('folder source: list', () => {
  it('lists matching regular files, oldest first and then by name, with size and time', async () => {
    await put('in/b.csv', 'bb', '2026-03-01T10:00:00Z');
    await put('in/a.csv', 'a', '2026-03-01T10:00:00Z');
    await put('in/old.csv', 'old!', '2026-01-01T00:00:00Z');
    await put('in/notes.txt', 'x', '2025-01-01T00:00:00Z');
    const files = await createFolderSource({ root, path: 'in', pattern: '*.csv' }).list();
    expect(files).toEqual([
      { name: 'old.csv', size: 4, modifiedAt: '2026-01-01T00:00:00.000Z' },
      { name: 'a.csv', size: 1, modifiedAt: '2026-03-01T10:00:00.000Z' },
      { name: 'b.csv', size: 2, modifiedAt: '2026-03-01T10:00:00.000Z' },
    ]);
  });

  it('leaves out hidden and temporary files, folders, and links that lead outside the files directory', async () => {
    await put('in/ok.csv', 'x');
    await put('in/.hidden.csv', 'x');
    await put('in/.ok.csv.1a2b3c.part', 'x');
    await mkdir(join(root, 'in', 'folder.csv'));
    await writeFile(join(outside, 'secret.csv'), 'secret');
    await symlink(join(outside, 'secret.csv'), join(root, 'in', 'escape.csv'));
    await symlink(join(root, 'nowhere.csv'), join(root, 'in', 'dangling.csv'));
    // A link to a file that is inside the files directory is that file.
    await put('shared/inside.csv', 'shared');
    await symlink(join(root, 'shared', 'inside.csv'), join(root, 'in', 'linked.csv'));
    const names = (await createFolderSource({ root, path: 'in' }).list()).map((f) => f.name);
    expect(names.sort()).toEqual(['linked.csv', 'ok.csv']);
  });

  it('matches the pattern case-sensitively against the whole name', async () => {
    await put('stock-1.csv', 'x');
    await put('STOCK-2.CSV', 'x');
    await put('stock-3.csv.bak', 'x');
    const names = async (pattern: string) => (await createFolderSource({ root, pattern }).list()).map((f) => f.name).sort();
    expect(await names('stock-*.csv')).toEqual(['stock-1.csv']);
    expect(await names('[sS][tT]*.[cC][sS][vV]')).toEqual(['STOCK-2.CSV', 'stock-1.csv']);
    expect(await names('*')).toEqual(['STOCK-2.CSV', 'stock-1.csv', 'stock-3.csv.bak']);
  });

  it('creates a missing folder on first use, so a fresh install lists nothing instead of failing', async () => {
    const fresh = join(base, 'not-yet');
    expect(await createFolderSource({ root: fresh, path: 'imports/stock' }).list()).toEqual([]);
    expect(existsSync(join(fresh, 'imports', 'stock'))).toBe(true);
  });

  it('refuses a folder path that is a file', async () => {
    await put('in', 'not a folder');
    const err = await failure(createFolderSource({ root, path: 'in' }).list());
    expect(err.code).toBe('validation_failed');
    expect(err.errors?.[0]).toMatchObject({ field: '/path', code: 'not_a_folder' });
  });
});

describe('folder source: open', () => {
  it('streams the file', async () => {
    await put('in/stock.csv', 'Sku,Qty\nA,1\n');
    const stream = await createFolderSource({ root, path: 'in' }).open('stock.csv');
    expect(await text(stream)).toBe('Sku,Qty\nA,1\n');
  });

  it('says not_found for a file that went away, and for a folder', async () => {
    await mkdir(join(root, 'in', 'sub.csv'), { recursive: true });
    const source = createFolderSource({ root, path: 'in' });
    expect((await failure(source.open('gone.csv'))).code).toBe('not_found');
    expect((await failure(source.open('sub.csv'))).code).toBe('not_found');
  });

  it.each(['../files/x.csv', '.hidden', '..', 'a/b.csv', ''])('refuses the name %j before touching the disk', async (name) => {
    const err = await failure(createFolderSource({ root: join(base, 'never-made') }).open(name));
    expect(err.code).toBe('validation_failed');
    expect(err.errors?.[0]).toMatchObject({ field: '/name', code: 'file_name' });
    expect(existsSync(join(base, 'never-made'))).toBe(false);
  });

  it('refuses a file that is a link to outside the files directory', async () => {
    await writeFile(join(outside, 'secret.csv'), 'secret');
    await mkdir(join(root, 'in'));
    await symlink(join(outside, 'secret.csv'), join(root, 'in', 'secret.csv'));
    const err = await failure(createFolderSource({ root, path: 'in' }).open('secret.csv'));
    expect(err.code).toBe('validation_failed');
    expect(err.errors?.[0]).toMatchObject({ field: '/name', code: 'path_outside_root' });
  });
});

describe('folder source: finish', () => {
  it("moves an imported file to 'archive' and a rejected one to 'error' inside the folder by default", async () => {
    await put('in/good.csv', 'good');
    await put('in/bad.csv', 'bad');
    const source = createFolderSource({ root, path: 'in' });
    await source.finish('good.csv', 'archive');
    await source.finish('bad.csv', 'error');
    expect(await readFile(join(root, 'in', 'archive', 'good.csv'), 'utf8')).toBe('good');
    expect(await readFile(join(root, 'in', 'error', 'bad.csv'), 'utf8')).toBe('bad');
    expect(await source.list()).toEqual([]);
  });

  it('takes archivePath and errorPath relative to the files directory', async () => {
    await put('in/a.csv', 'a');
    await put('in/b.csv', 'b');
    const source = createFolderSource({ root, path: 'in', archivePath: 'done/2026', errorPath: 'rejected' });
    await source.finish('a.csv', 'archive');
    await source.finish('b.csv', 'error');
    expect(await readFile(join(root, 'done', '2026', 'a.csv'), 'utf8')).toBe('a');
    expect(await readFile(join(root, 'rejected', 'b.csv'), 'utf8')).toBe('b');
  });

  it('gives a file whose name is already archived a stamped name, and counts clashes in the same second', async () => {
    const clock = createManualClock(Date.parse('2026-11-22T01:02:03.500Z'));
    const source = createFolderSource({ root, path: 'in', clock });
    for (const content of ['first', 'second', 'third']) {
      await put('in/stock.csv', content);
      await source.finish('stock.csv', 'archive');
    }
    const archive = join(root, 'in', 'archive');
    expect((await readdir(archive)).sort()).toEqual(['stock.20261122T010203Z-2.csv', 'stock.20261122T010203Z.csv', 'stock.csv']);
    expect(await readFile(join(archive, 'stock.csv'), 'utf8')).toBe('first');
    expect(await readFile(join(archive, 'stock.20261122T010203Z.csv'), 'utf8')).toBe('second');
    expect(await readFile(join(archive, 'stock.20261122T010203Z-2.csv'), 'utf8')).toBe('third');
  });

  it('says not_found for a file that is not there and moves nothing', async () => {
    const source = createFolderSource({ root, path: 'in' });
    expect((await failure(source.finish('gone.csv', 'archive'))).code).toBe('not_found');
    expect(existsSync(join(root, 'in', 'archive'))).toBe(false);
  });

  it('refuses an archive folder that is a link to outside, and leaves the file where it was', async () => {
    await put('in/a.csv', 'a');
    await symlink(outside, join(root, 'in', 'archive'));
    const err = await failure(createFolderSource({ root, path: 'in' }).finish('a.csv', 'archive'));
    expect(err.errors?.[0]).toMatchObject({ field: '/archivePath', code: 'path_outside_root' });
    expect(await readdir(outside)).toEqual([]);
    expect(existsSync(join(root, 'in', 'a.csv'))).toBe(true);
  });
});

describe('folder target: put', () => {
  it('writes the whole stream under its name and says where, relative to the files directory', async () => {
    const target = createFolderTarget({ root, path: 'exports/daily' });
    const result = await target.put('stock.csv', Readable.from([Buffer.from('Sku,Qty\n'), Buffer.from('A,1\n')]), CSV);
    expect(result).toEqual({ location: 'exports/daily/stock.csv' });
    expect(await readFile(join(root, 'exports', 'daily', 'stock.csv'), 'utf8')).toBe('Sku,Qty\nA,1\n');
    expect(await readdir(join(root, 'exports', 'daily'))).toEqual(['stock.csv']);
    await target.close();
  });

  it('replaces an earlier export of the same name', async () => {
    await put('out/stock.csv', 'old');
    await createFolderTarget({ root, path: 'out' }).put('stock.csv', Readable.from(['new']), CSV);
    expect(await readFile(join(root, 'out', 'stock.csv'), 'utf8')).toBe('new');
  });

  it('leaves no file and no temporary file when the body fails halfway, and keeps an earlier export intact', async () => {
    await put('out/stock.csv', 'the earlier export');
    const target = createFolderTarget({ root, path: 'out' });
    await expect(target.put('stock.csv', failingBody(['Sku,Qty\n', 'A,1\n']), CSV)).rejects.toThrow('the export failed halfway');
    await expect(target.put('new.csv', failingBody([]), CSV)).rejects.toThrow('the export failed halfway');
    expect(await readdir(join(root, 'out'))).toEqual(['stock.csv']);
    expect(await readFile(join(root, 'out', 'stock.csv'), 'utf8')).toBe('the earlier export');
  });

  it('writes under a hidden temporary name until the body is complete', async () => {
    const seen: string[][] = [];
    const body = Readable.from(
      (async function* () {
        yield Buffer.from('part 1\n');
        // Between two chunks, a reader of the folder sees only the hidden temporary file.
        await vi.waitFor(async () => expect(await readdir(join(root, 'out'))).toHaveLength(1));
        seen.push(await readdir(join(root, 'out')));
        yield Buffer.from('part 2\n');
      })(),
    );
    await createFolderTarget({ root, path: 'out' }).put('stock.csv', body, CSV);
    expect(seen[0]).toHaveLength(1);
    expect(seen[0]![0]).toMatch(/^\.stock\.csv\.[0-9a-f]{12}\.part$/);
    expect(await createFolderSource({ root, path: 'out' }).list().then((l) => l.map((f) => f.name))).toEqual(['stock.csv']);
  });

  it.each(['../escape.csv', '.hidden.csv', 'a/b.csv', 'x\u0000.csv'])('refuses the name %j', async (name) => {
    const err = await failure(createFolderTarget({ root }).put(name, Readable.from(['x']), CSV));
    expect(err.errors?.[0]).toMatchObject({ field: '/name', code: 'file_name' });
    expect(await readdir(root)).toEqual([]);
    expect(await readdir(base)).toEqual(['files', 'outside']);
  });
});

describe('folder transport: configuration and traversal', () => {
  it.each(['../x', '/etc', 'a/../../b', '..', 'a\\..\\b'])('refuses the path %j for sources and targets', (path) => {
    const err = configFailure(() => createFolderSource({ root, path }));
    expect(err.errors?.[0]).toMatchObject({ field: '/path', code: 'path' });
    expect(configFailure(() => createFolderTarget({ root, path })).errors?.[0]).toMatchObject({ field: '/path' });
  });

  it('refuses archive and error paths that leave the files directory or are the source folder, all at once', () => {
    const err = configFailure(() => createFolderSource({ root, path: 'in', archivePath: '../archive', errorPath: 'in/' }));
    expect(err.errors).toEqual([
      expect.objectContaining({ field: '/archivePath', code: 'path' }),
      expect.objectContaining({ field: '/errorPath', code: 'same_folder' }),
    ]);
    expect(err.message).toContain('2 mistakes');
  });

  it('refuses a root that is not absolute and a pattern that is not valid', () => {
    expect(configFailure(() => createFolderTarget({ root: 'files' })).errors?.[0]).toMatchObject({ field: '/root' });
    expect(configFailure(() => createFolderSource({ root, pattern: '[a' })).errors?.[0]).toMatchObject({ field: '/pattern', code: 'pattern' });
  });

  it('refuses a folder that is a link to outside the files directory, and makes nothing there', async () => {
    await symlink(outside, join(root, 'linked'));
    const source = createFolderSource({ root, path: 'linked/in' });
    const err = await failure(source.list());
    expect(err.errors?.[0]).toMatchObject({ field: '/path', code: 'path_outside_root' });
    const err2 = await failure(createFolderTarget({ root, path: 'linked' }).put('x.csv', Readable.from(['x']), CSV));
    expect(err2.errors?.[0]).toMatchObject({ field: '/path', code: 'path_outside_root' });
    expect(await readdir(outside)).toEqual([]);
  });

  it('refuses a folder that is a link to nowhere', async () => {
    await symlink(join(base, 'missing'), join(root, 'dangling'));
    const err = await failure(createFolderSource({ root, path: 'dangling' }).list());
    expect(err.errors?.[0]).toMatchObject({ field: '/path', code: 'path' });
    expect(existsSync(join(base, 'missing'))).toBe(false);
  });

  it('follows a link that stays inside the files directory', async () => {
    await put('real/in/a.csv', 'a');
    await symlink(join(root, 'real'), join(root, 'alias'));
    const source = createFolderSource({ root, path: 'alias/in' });
    expect((await source.list()).map((f) => f.name)).toEqual(['a.csv']);
    expect(await text(await source.open('a.csv'))).toBe('a');
  });
});
