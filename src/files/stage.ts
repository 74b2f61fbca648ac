// Before a file is parsed it is copied to a local spool file while its SHA-256 is taken. That one read decides
// three things before anything is applied: the checksum (the same file is never applied twice), that the whole
// file could be fetched (an SFTP connection dropped mid-file fails here, with nothing applied), and a local copy
// the import can read twice (reject-all checks every row before applying any) and resume from after a crash.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
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

/** How much of a file one read takes when staging it (a copy: larger reads, fewer calls). */
const READ_BYTES = 256 * 1024;
/**
 * How much of a staged file one read takes when it is imported. Every record of a read is parsed before the first
 * is handed on, so the read's records are all alive at once, and each scavenge of the reader copies them: at 256 KiB
 * (~7,500 rows of bench/import's CSV) the reading worker spent a quarter of its time collecting garbage. At 64 KiB a
 * million-row CSV import peaked 10-13 MB lower (122-125 MB against 133-142) and the 200,000-record XML import 10-15
 * MB lower, at the same speed or better; 16 and 32 KiB read slower.
 */
const SPOOL_READ_BYTES = 64 * 1024;

/** A spool file for reading (the import's reading worker opens it by path). */
export function openSpool(path: string): Readable {
  return createReadStream(path, { highWaterMark: SPOOL_READ_BYTES });
}

/**
 * Copies `input` to `path` (its folder made if missing) and hashes it on the way. The bytes go to a temporary name
 * first, so a failing input leaves nothing at `path`, and a file found at `path` is always whole.
 *
 * A local file (an open FileHandle, which `stageFile` closes) is copied through one reused buffer. A stream hands
 * over a new buffer per chunk, and for a large file those buffers, freed only by a later collection and then kept
 * by the allocator, stayed in the process for the whole import: ~25 MB of a 35 MB file.
 */
export async function stageFile(input: Readable | FileHandle, path: string, options: { maxBytes?: number } = {}): Promise<StagedFile> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.${randomBytes(6).toString('hex')}.part`;
  const hash = createHash('sha256');
  let bytes = 0;
  const tooLarge = () => Object.assign(new Error(`The file is larger than ${options.maxBytes} bytes`), { code: 'too_large' });
  if (!('pipe' in input)) {
    try {
      await copyHandle(input, temp, (chunk) => {
        if (options.maxBytes !== undefined && bytes + chunk.length > options.maxBytes) throw tooLarge();
        bytes += chunk.length;
        hash.update(chunk);
      });
      await rename(temp, path);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    } finally {
      await input.close();
    }
    return stagedAt(path, `sha256:${hash.digest('hex')}`, bytes);
  }
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      if (options.maxBytes !== undefined && bytes > options.maxBytes) {
        done(tooLarge());
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

/** Copies the whole of `from` to a new file at `to`, showing each chunk to `see` before it is written. */
async function copyHandle(from: FileHandle, to: string, see: (chunk: Buffer) => void): Promise<void> {
  const out = await open(to, 'wx');
  try {
    const buffer = Buffer.allocUnsafeSlow(READ_BYTES);
    for (;;) {
      const { bytesRead } = await from.read(buffer, 0, READ_BYTES, null);
      if (bytesRead === 0) break;
      const chunk = buffer.subarray(0, bytesRead);
      see(chunk);
      for (let at = 0; at < bytesRead; ) at += (await out.write(chunk, at, bytesRead - at)).bytesWritten;
    }
  } finally {
    await out.close();
  }
}

/** A spool file already on disk (a resumed run finds it again by path). */
export function stagedAt(path: string, checksum: string, bytes: number): StagedFile {
  return {
    path,
    checksum,
    bytes,
    open: () => openSpool(path),
    remove: () => rm(path, { force: true }),
  };
}
