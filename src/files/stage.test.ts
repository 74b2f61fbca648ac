import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stageFile } from './stage.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hub-stage-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const sha = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
// Larger than one copy buffer (256 KiB), and not a multiple of it.
const content = Buffer.from(Array.from({ length: 30_000 }, (_, i) => `SKU-${i},WH${i % 7},${i % 500}\n`).join(''));

describe('stageFile', () => {
  it.each([
    ['a stream', () => Readable.from([content.subarray(0, 100_000), content.subarray(100_000)])],
    ['an open local file', async () => {
      writeFileSync(join(dir, 'in.csv'), content);
      return open(join(dir, 'in.csv'), 'r');
    }],
  ])('copies %s whole into the spool, with its size and SHA-256', async (_label, input) => {
    const staged = await stageFile(await input(), join(dir, 'spool', 'run.csv'));
    expect(staged).toMatchObject({ path: join(dir, 'spool', 'run.csv'), bytes: content.length, checksum: sha(content) });
    expect(readFileSync(staged.path).equals(content)).toBe(true);
    const back: Buffer[] = [];
    for await (const chunk of staged.open()) back.push(chunk as Buffer);
    expect(Buffer.concat(back).equals(content)).toBe(true);
    await staged.remove();
    expect(readdirSync(join(dir, 'spool'))).toEqual([]);
  });

  it('closes the local file it was given, and copies an empty one', async () => {
    writeFileSync(join(dir, 'empty.csv'), '');
    const handle = await open(join(dir, 'empty.csv'), 'r');
    const staged = await stageFile(handle, join(dir, 'empty.spool'));
    expect(staged).toMatchObject({ bytes: 0, checksum: sha(Buffer.alloc(0)) });
    await expect(handle.stat()).rejects.toMatchObject({ code: 'EBADF' });
  });

  it.each([
    ['a stream', () => Readable.from([content])],
    ['an open local file', async () => {
      writeFileSync(join(dir, 'in.csv'), content);
      return open(join(dir, 'in.csv'), 'r');
    }],
  ])('refuses %s larger than maxBytes as too_large, leaving nothing behind', async (_label, input) => {
    await expect(stageFile(await input(), join(dir, 'spool', 'big.csv'), { maxBytes: 300_000 })).rejects.toMatchObject({ code: 'too_large' });
    expect(readdirSync(join(dir, 'spool'))).toEqual([]);
  });

  it('leaves nothing at the spool path when the stream fails mid-file', async () => {
    const failing = new Readable({
      read() {
        this.push(content.subarray(0, 1000));
        this.destroy(Object.assign(new Error('connection dropped'), { code: 'ECONNRESET' }));
      },
    });
    await expect(stageFile(failing, join(dir, 'spool', 'dropped.csv'))).rejects.toThrow('connection dropped');
    expect(readdirSync(join(dir, 'spool'))).toEqual([]);
  });
});
