// The folder transport, the embedded hub's default: files dropped into a folder under the hub's files directory
// are imported, exports are written into one. The files directory is the admin's; the folders inside it come from
// schedules, so every configured path is checked twice: as text when the transport is created (no '..', nothing
// absolute) and on the disk each time it is used (a symbolic link inside the files directory must not lead a
// schedule out of it). Folders are created on first use, so a fresh install works without preparing any.
import { randomBytes } from 'node:crypto';
import { constants, createWriteStream } from 'node:fs';
import { copyFile, lstat, mkdir, open, readdir, realpath, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HubError, type FieldError } from '../../errors.ts';
import { systemClock, type Clock } from '../../lib/clock.ts';
import { archiveName, checkFileName, checkPattern, checkRelativePath, collect, finishFolders, isFileName, joinPath, matchesPattern, throwIfAny } from './names.ts';
import type { FileSource, FileTarget, PutInfo, SourceFile } from './types.ts';

export interface FolderOptions {
  /** The hub's files directory: absolute, set by the admin. Created when missing. */
  root: string;
  /** For the timestamp a clashing archive name gets. */
  clock?: Clock;
}

export interface FolderSourceOptions extends FolderOptions {
  /** The folder files wait in, relative to root; default '' (root itself). */
  path?: string;
  /** Glob on file names (see matchesPattern); default '*'. */
  pattern?: string;
  /** Where imported files are moved, relative to root (like path); default 'archive' inside the source folder. */
  archivePath?: string;
  /** Where rejected files are moved, relative to root; default 'error' inside the source folder. */
  errorPath?: string;
}

export interface FolderTargetOptions extends FolderOptions {
  /** The folder exports are written to, relative to root; default '' (root itself). */
  path?: string;
}

/** How many stamped names finish() tries before it gives up on a folder that keeps clashing. */
const MAX_ARCHIVE_ATTEMPTS = 100;

function invalid(field: string, code: string, message: string): HubError {
  return new HubError('validation_failed', message, { errors: [{ field, code, message }] });
}

function codeOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}


function checkRoot(root: unknown, errors: FieldError[]): string {
  if (typeof root !== 'string' || root === '' || !isAbsolute(root)) {
    errors.push({ field: '/root', code: 'path', message: 'The files directory must be an absolute path' });
    return '';
  }
  return root;
}

/** Whether `real` (a resolved path) is `realRoot` or below it. */
function isInside(realRoot: string, real: string): boolean {
  const rel = relative(realRoot, real);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/** A folder below the root, found (or made) segment by segment on the disk. */
interface Folder {
  realRoot: string;
  /** The folder's resolved path. */
  dir: string;
}

/**
 * Resolves `rel` below `root`, creating missing folders. Each segment is resolved before the next is created, so
 * a symbolic link that leads outside is refused before anything is made at the other end of it.
 */
async function resolveFolder(root: string, rel: string, field: string): Promise<Folder> {
  await mkdir(root, { recursive: true });
  const realRoot = await realpath(root);
  let dir = realRoot;
  for (const segment of rel === '' ? [] : rel.split('/')) {
    const next = join(dir, segment);
    let real: string;
    try {
      real = await realpath(next);
    } catch (err) {
      if (codeOf(err) !== 'ENOENT') throw err;
      // EEXIST: made meanwhile, or a symbolic link to nowhere (which still does not resolve below).
      await mkdir(next).catch((e: unknown) => {
        if (codeOf(e) !== 'EEXIST') throw e;
      });
      try {
        real = await realpath(next);
      } catch (err2) {
        if (codeOf(err2) !== 'ENOENT') throw err2;
        throw invalid(field, 'path', `The folder '${rel}' goes through a symbolic link that leads nowhere`);
      }
    }
    if (!isInside(realRoot, real)) throw invalid(field, 'path_outside_root', `The folder '${rel}' leads outside the files directory (through a symbolic link)`);
    dir = real;
  }
  const st = await stat(dir);
  if (!st.isDirectory()) throw invalid(field, 'not_a_folder', `'${rel}' in the files directory is a file, not a folder`);
  return { realRoot, dir };
}

export function createFolderSource(options: FolderSourceOptions): FileSource {
  const errors: FieldError[] = [];
  const root = checkRoot(options.root, errors);
  const path = collect(errors, () => checkRelativePath(options.path ?? '', '/path')) ?? '';
  const pattern = collect(errors, () => checkPattern(options.pattern ?? '*', '/pattern')) ?? '*';
  const targets = finishFolders(path, options, checkRelativePath, errors);
  throwIfAny(errors, "The folder transport");
  const clock = options.clock ?? systemClock;

  async function waitingFile(name: string): Promise<{ folder: Folder; file: string }> {
    checkFileName(name);
    const folder = await resolveFolder(root, path, '/path');
    return { folder, file: join(folder.dir, name) };
  }

  async function openFile(name: string): Promise<FileHandle> {
    const { folder, file } = await waitingFile(name);
    let real: string;
    try {
      real = await realpath(file);
    } catch (err) {
      if (codeOf(err) === 'ENOENT') throw new HubError('not_found', `No file '${name}' in '${path || '.'}'`);
      throw err;
    }
    if (!isInside(folder.realRoot, real)) throw invalid('/name', 'path_outside_root', `'${name}' leads outside the files directory (a symbolic link)`);
    const handle = await open(real, 'r');
    try {
      // Checked on the open file, not the name: what is read is what was checked.
      if (!(await handle.stat()).isFile()) throw new HubError('not_found', `'${name}' in '${path || '.'}' is not a file`);
    } catch (err) {
      await handle.close();
      throw err;
    }
    return handle;
  }

  return {
    async list(): Promise<SourceFile[]> {
      const { realRoot, dir } = await resolveFolder(root, path, '/path');
      const found: (SourceFile & { mtimeMs: number })[] = [];
      for (const name of await readdir(dir)) {
        // Hidden and temporary files (uploads in progress, ours included) are skipped without a word.
        if (!isFileName(name) || !matchesPattern(name, pattern)) continue;
        const full = join(dir, name);
        try {
          let st = await lstat(full);
          if (st.isSymbolicLink()) {
            const real = await realpath(full);
            if (!isInside(realRoot, real)) continue;
            st = await stat(real);
          }
          if (!st.isFile()) continue;
          found.push({ name, size: st.size, modifiedAt: new Date(st.mtimeMs).toISOString(), mtimeMs: st.mtimeMs });
        } catch (err) {
          // Moved away between the listing and the look at it.
          if (codeOf(err) === 'ENOENT') continue;
          throw err;
        }
      }
      found.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      return found.map(({ name, size, modifiedAt }) => ({ name, size, modifiedAt }));
    },

    async open(name: string): Promise<Readable> {
      return (await openFile(name)).createReadStream();
    },

    openFile,

    async finish(name: string, outcome: 'archive' | 'error'): Promise<void> {
      const { folder, file } = await waitingFile(name);
      try {
        await lstat(file);
      } catch (err) {
        if (codeOf(err) === 'ENOENT') throw new HubError('not_found', `No file '${name}' in '${path || '.'}'`);
        throw err;
      }
      const field = outcome === 'archive' ? '/archivePath' : '/errorPath';
      const target = await resolveFolder(root, targets[outcome]!, field);
      if (target.dir === folder.dir) throw invalid(field, 'same_folder', `${field.slice(1)} leads back to the folder files wait in`);
      const now = new Date(clock.now());
      // Checked, then renamed: rename() replaces silently, and one exchange at a time finishes a source's files.
      for (let attempt = 0; attempt < MAX_ARCHIVE_ATTEMPTS; attempt++) {
        const candidate = join(target.dir, attempt === 0 ? name : archiveName(name, now, attempt));
        if (await exists(candidate)) continue;
        await move(file, candidate);
        return;
      }
      throw new HubError('conflict', `The ${outcome} folder already holds ${MAX_ARCHIVE_ATTEMPTS} files named like '${name}'`);
    },

    async close(): Promise<void> {},
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return false;
    throw err;
  }
}

async function move(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    // The archive may be a mount of its own; then the move is a copy (never over an existing file) and a delete.
    if (codeOf(err) !== 'EXDEV') throw err;
    await copyFile(from, to, constants.COPYFILE_EXCL);
    await unlink(from);
  }
}

/** The name an export has while it is written: hidden, so list() and people's tools ignore it, and unique. */
function temporaryName(name: string): string {
  const random = randomBytes(6).toString('hex');
  // Only as much of the name as fits, so that a 255-byte name still gets a temporary one the disk accepts.
  const hint = Buffer.byteLength(name) <= 200 ? name : 'export';
  return `.${hint}.${random}.part`;
}

export function createFolderTarget(options: FolderTargetOptions): FileTarget {
  const errors: FieldError[] = [];
  const root = checkRoot(options.root, errors);
  const path = collect(errors, () => checkRelativePath(options.path ?? '', '/path')) ?? '';
  throwIfAny(errors, "The folder transport");

  return {
    async put(name: string, body: Readable, _info: PutInfo): Promise<{ location: string }> {
      checkFileName(name);
      const { dir } = await resolveFolder(root, path, '/path');
      const temporary = join(dir, temporaryName(name));
      try {
        // 'wx': never write into a file that someone else made; flush: on the disk before it gets its real name.
        await pipeline(body, createWriteStream(temporary, { flags: 'wx', flush: true }));
        await rename(temporary, join(dir, name));
      } catch (err) {
        await unlink(temporary).catch(() => {});
        throw err;
      }
      return { location: joinPath(path, name) };
    },

    async close(): Promise<void> {},
  };
}
