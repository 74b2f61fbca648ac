// Before a file is parsed it is copied to a local spool file while its SHA-256 is taken. That one read decides
// three things before anything is applied: the checksum (the same file is never applied twice), that the whole
// file could be fetched (an SFTP connection dropped mid-file fails here, with nothing applied), and a local copy
// the import can read twice (reject-all checks every row before applying any) and resume from after a crash.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface StagedFile {
  path: string;
  /** `sha256:<hex>` */
  checksum: string;
  bytes: number;
  open(): Readable;
  remove(): Promise<void>;
}

/**
 * Copies `input` to `path` (its folder made if missing) and hashes it on the way. The bytes go to a temporary name
 * first, so a failing input leaves nothing at `path`, and a file found at `path` is always whole.
 */
export async function stageFile(input: Readable, path: string, options: { maxBytes?: number } = {}): Promise<StagedFile> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.${randomBytes(6).toString('hex')}.part`;
  const hash = createHash('sha256');
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      if (options.maxBytes !== undefined && bytes > options.maxBytes) {
        done(Object.assign(new Error(`The file is larger than ${options.maxBytes} bytes`), { code: 'too_large' }));
        return;
      }
      hash.update(chunk);
      done(null, chunk);
    },
  });
  try {
    await pipeline(input, meter, createWriteStream(temp));
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  return stagedAt(path, `sha256:${hash.digest('hex')}`, bytes);
}

/** A spool file already on disk (a resumed run finds it again by path). */
export function stagedAt(path: string, checksum: string, bytes: number): StagedFile {
  return {
    path,
    checksum,
    bytes,
    open: () => createReadStream(path, { highWaterMark: 256 * 1024 }),
    remove: () => rm(path, { force: true }),
  };
}
