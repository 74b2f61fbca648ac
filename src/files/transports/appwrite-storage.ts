// File exchange over an Appwrite Storage bucket. Storage has no folders, so a "folder" is a name prefix
// ('inbox/orders.csv') and moving a file is renaming it (updateFile). Downloads are streamed with a plain fetch,
// because node-appwrite's getFileDownload buffers the whole file; uploads are spooled to a temporary file so that
// node-appwrite's chunked upload reads 5 MB slices from disk instead of the whole export from memory.
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppwriteException, Client, ID, Query, Storage, type Models } from 'node-appwrite';
// InputFile is not exported from node-appwrite's main entry, only from this subpath.
import { InputFile } from 'node-appwrite/file';
import { HubError, isHubError, type FieldError } from '../../errors.ts';
import { systemClock, type Clock } from '../../lib/clock.ts';
import type { FileSource, FileTarget, PutInfo, SourceFile } from './types.ts';

export interface StorageOptions {
  /** The API endpoint, e.g. https://cloud.appwrite.io/v1. */
  endpoint: string;
  projectId: string;
  apiKey: string;
  bucketId: string;
  /** For downloads (node-appwrite uses its own undici fetch for everything else). */
  fetch?: typeof fetch;
  /** Bound on each metadata request and on the wait for a download's first byte; default 30 s. Uploads are not bounded. */
  requestTimeoutMs?: number;
  /** For the timestamp a clashing archive name gets. */
  clock?: Clock;
}

export interface StorageSourceOptions extends StorageOptions {
  /** Name prefix of waiting files; default 'inbox/'. */
  prefix?: string;
  /** Where applied files are renamed to; default 'archive/'. */
  archivePrefix?: string;
  /** Where rejected files are renamed to; default 'error/'. */
  errorPrefix?: string;
  /** Glob (`*`, `?`) on the name after the prefix; default '*'. */
  pattern?: string;
}

export interface StorageTargetOptions extends StorageOptions {
  /** Name prefix of written files; default 'exports/'. */
  prefix?: string;
}

/** listFiles page size: Appwrite serves up to 5000, but 100 keeps each answer small. */
const PAGE_SIZE = 100;
/** Upload filenames until the file is complete: outside any prefix, hidden-file style, extension kept for bucket rules. */
const PARTIAL = '.partial-';
const UID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,35}$/;

interface Bucket {
  storage: Storage;
  options: StorageOptions;
  timeoutMs: number;
  /** One metadata request, bounded and with Appwrite's errors in the hub's vocabulary. */
  call<T>(what: string, fn: () => Promise<T>): Promise<T>;
  /** Complete files named exactly `name`, oldest first. */
  filesNamed(name: string): Promise<Models.File[]>;
}

export function createStorageSource(options: StorageSourceOptions): FileSource {
  const prefix = options.prefix ?? 'inbox/';
  const archivePrefix = options.archivePrefix ?? 'archive/';
  const errorPrefix = options.errorPrefix ?? 'error/';
  const pattern = options.pattern ?? '*';
  const errors = checkCommon(options);
  checkPrefix(errors, 'prefix', prefix);
  for (const [field, value] of [['archivePrefix', archivePrefix], ['errorPrefix', errorPrefix]] as const) {
    checkPrefix(errors, field, value);
    // A moved file that still lists as waiting would be imported again on every run.
    if (value.startsWith(prefix) && !value.slice(prefix.length).includes('/')) {
      errors.push({ field: `/${field}`, code: 'invalid', message: `${field} must not put finished files where prefix '${prefix}' lists waiting ones` });
    }
  }
  if (typeof pattern !== 'string' || pattern === '' || pattern.includes('/')) {
    errors.push({ field: '/pattern', code: 'invalid', message: 'pattern must be a non-empty glob without "/"' });
  }
  throwIfAny(errors);
  const bucket = connect(options);
  const matches = globToRegExp(pattern);
  const clock = options.clock ?? systemClock;

  /** The oldest complete file waiting under `name`: the one list() reported. */
  async function waiting(name: string): Promise<Models.File> {
    checkName(name);
    const [file] = await bucket.filesNamed(prefix + name);
    if (!file) throw new HubError('not_found', `No file '${prefix}${name}' in bucket ${options.bucketId}`);
    return file;
  }

  return {
    async list(): Promise<SourceFile[]> {
      const files = await listAll(bucket, prefix ? [Query.startsWith('name', prefix)] : []);
      const seen = new Set<string>();
      const out: SourceFile[] = [];
      for (const file of files) {
        // startsWith runs under the database's case-insensitive collation: check the exact prefix here.
        if (!file.name.startsWith(prefix) || !isComplete(file)) continue;
        const name = file.name.slice(prefix.length);
        // Hidden names are left alone: a leading dot marks files still being written, our own uploads included.
        if (!isPlainName(name) || !matches.test(name) || seen.has(name)) continue;
        seen.add(name);
        out.push({ name, size: file.sizeOriginal, modifiedAt: new Date(file.$updatedAt).toISOString() });
      }
      return out;
    },

    async open(name: string): Promise<Readable> {
      const file = await waiting(name);
      return download(bucket, file);
    },

    async finish(name: string, outcome: 'archive' | 'error'): Promise<void> {
      const file = await waiting(name);
      const target = outcome === 'archive' ? archivePrefix : errorPrefix;
      let finalName = target + name;
      for (let n = 1; (await bucket.filesNamed(finalName)).length > 0; n++) finalName = target + stampedName(name, clock.now(), n);
      await bucket.call(`Renaming ${file.name}`, () => bucket.storage.updateFile({ bucketId: options.bucketId, fileId: file.$id, name: finalName }));
    },

    async close(): Promise<void> {
      // stateless HTTP client: nothing to release
    },
  };
}

export function createStorageTarget(options: StorageTargetOptions): FileTarget {
  const prefix = options.prefix ?? 'exports/';
  const errors = checkCommon(options);
  checkPrefix(errors, 'prefix', prefix);
  throwIfAny(errors);
  const bucket = connect(options);

  return {
    /**
     * Spools the body to a temporary file, uploads it under a temporary name, renames it into place and only then
     * deletes what had the name before: a reader sees the old file or the new one, never none or half of one
     * (Appwrite creates the file at the first chunk of a chunked upload).
     */
    async put(name: string, body: Readable, _info: PutInfo): Promise<{ location: string }> {
      checkName(name, prefix);
      const dir = await mkdtemp(join(tmpdir(), 'hub-storage-'));
      const fileId = ID.unique();
      let uploaded = false;
      try {
        const path = join(dir, 'body');
        await pipeline(body, createWriteStream(path));
        // Appwrite stores the part's filename as the name and sniffs the content type itself (info is not sent).
        await toHub(`Uploading ${prefix}${name}`, () => {
          uploaded = true;
          return bucket.storage.createFile({ bucketId: options.bucketId, fileId, file: InputFile.fromPath(path, `${PARTIAL}${fileId}-${name}`) });
        });
        await bucket.call(`Renaming ${prefix}${name}`, () => bucket.storage.updateFile({ bucketId: options.bucketId, fileId, name: prefix + name }));
      } catch (err) {
        if (uploaded) await bucket.storage.deleteFile({ bucketId: options.bucketId, fileId }).catch(() => undefined);
        throw err;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      for (const old of await bucket.filesNamed(prefix + name)) {
        if (old.$id === fileId) continue;
        await bucket.call(`Deleting the previous ${prefix}${name}`, () => bucket.storage.deleteFile({ bucketId: options.bucketId, fileId: old.$id })).catch((err: unknown) => {
          if (!isHubError(err, 'not_found')) throw err;
        });
      }
      return { location: `${options.bucketId}/${fileId}` };
    },

    async close(): Promise<void> {
      // stateless HTTP client: nothing to release
    },
  };
}

function connect(options: StorageOptions): Bucket {
  const client = new Client().setEndpoint(options.endpoint).setProject(options.projectId).setKey(options.apiKey);
  const storage = new Storage(client);
  const timeoutMs = options.requestTimeoutMs ?? 30_000;
  const bucket: Bucket = {
    storage,
    options,
    timeoutMs,
    call: (what, fn) => toHub(what, () => withTimeout(fn(), timeoutMs, what)),
    async filesNamed(name) {
      const files = await listAll(bucket, [Query.equal('name', name)]);
      // equal also runs under the case-insensitive collation
      return files.filter((f) => f.name === name && isComplete(f)).sort(byAge);
    },
  };
  return bucket;
}

/** Every page of listFiles for `filters`, oldest first (then by name). */
async function listAll(bucket: Bucket, filters: string[]): Promise<Models.File[]> {
  const files: Models.File[] = [];
  for (;;) {
    const last = files.at(-1);
    const queries = [...filters, Query.limit(PAGE_SIZE), ...(last ? [Query.cursorAfter(last.$id)] : [])];
    const page = await bucket.call(`Listing bucket ${bucket.options.bucketId}`, () =>
      bucket.storage.listFiles({ bucketId: bucket.options.bucketId, queries, total: false }),
    );
    files.push(...page.files);
    if (page.files.length < PAGE_SIZE) return files.sort(byAge);
  }
}

function byAge(a: Models.File, b: Models.File): number {
  const d = Date.parse(a.$createdAt) - Date.parse(b.$createdAt);
  return d !== 0 ? d : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** A chunked upload in progress is listed with fewer chunks than it will have. */
function isComplete(file: Models.File): boolean {
  return file.chunksUploaded >= file.chunksTotal;
}

/**
 * GET …/download with the headers node-appwrite sends, the body relayed as it arrives. A failure before the first
 * byte rejects; one after it (a dropped connection, a short body) is the stream's 'error', as a HubError.
 */
async function download(bucket: Bucket, file: Models.File): Promise<Readable> {
  const { endpoint, projectId, apiKey, bucketId } = bucket.options;
  const url = `${endpoint.replace(/\/$/, '')}/storage/buckets/${encodeURIComponent(bucketId)}/files/${encodeURIComponent(file.$id)}/download`;
  const controller = new AbortController();
  // Only the wait for the answer is bounded; the body may take as long as the reader does.
  const timer = setTimeout(() => controller.abort(new HubError('upstream_timeout', `Appwrite did not answer the download of ${file.name} within ${bucket.timeoutMs} ms`)), bucket.timeoutMs);
  let response: Response;
  try {
    response = await (bucket.options.fetch ?? fetch)(url, {
      headers: { 'x-appwrite-project': projectId, 'x-appwrite-key': apiKey, accept: '*/*' },
      signal: controller.signal,
    });
  } catch (err) {
    throw isHubError(controller.signal.reason) ? controller.signal.reason : toHubError(err, `Downloading ${file.name}`);
  } finally {
    clearTimeout(timer);
  }
  if (!response.ok || !response.body) {
    const text = await response.text().catch(() => '');
    let parsed: { message?: string; type?: string } = {};
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      // a proxy's HTML error page: the status says enough
    }
    throw toHubError(new AppwriteException(parsed.message ?? (text.slice(0, 200) || response.statusText), response.status, parsed.type ?? '', text), `Downloading ${file.name}`);
  }
  return Readable.from(relay(response.body, file, controller), { objectMode: false });
}

async function* relay(body: ReadableStream<Uint8Array>, file: Models.File, controller: AbortController): AsyncGenerator<Buffer> {
  const reader = body.getReader();
  let received = 0;
  try {
    for (;;) {
      let next: Awaited<ReturnType<typeof reader.read>>;
      try {
        next = await reader.read();
      } catch (err) {
        throw new HubError('upstream_unreachable', `The download of ${file.name} broke off after ${received} bytes: ${reasonOf(err)}`, { cause: err });
      }
      if (next.done) break;
      received += next.value.byteLength;
      yield Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
    }
    if (received !== file.sizeOriginal) {
      throw new HubError('upstream_unreachable', `The download of ${file.name} ended after ${received} of ${file.sizeOriginal} bytes`);
    }
  } finally {
    // Reached early when the reader stops or destroys the stream: drop the connection instead of draining it.
    controller.abort();
    reader.releaseLock();
  }
}

async function toHub<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toHubError(err, what);
  }
}

/** Appwrite's answers in the hub's vocabulary (https://appwrite.io/docs/advanced/platform/response-codes). */
function toHubError(err: unknown, what: string): unknown {
  if (isHubError(err)) return err;
  if (err instanceof AppwriteException) {
    const detail = `${what}: Appwrite answered ${err.code}${err.type ? ` ${err.type}` : ''} (${err.message})`;
    // A wrong project id is a credential problem, not a missing file.
    if (err.code === 401 || err.code === 403 || err.type === 'project_not_found') return new HubError('upstream_auth_failed', detail, { cause: err });
    if (err.code === 404 && (err.type ?? '').startsWith('storage_')) return new HubError('not_found', detail, { cause: err });
    if (err.code === 429) return new HubError('upstream_rate_limited', detail, { cause: err });
    if (err.code >= 500) return new HubError('upstream_error', detail, { cause: err });
    if (err.code === 0) return new HubError('upstream_unreachable', detail, { cause: err });
    return new HubError('upstream_rejected', detail, { cause: err });
  }
  // undici reports connection failures as TypeError('fetch failed') with the socket error as cause
  if (err instanceof TypeError || (err as Error)?.name === 'AbortError') {
    return new HubError('upstream_unreachable', `${what}: Appwrite could not be reached (${reasonOf(err)})`, { cause: err });
  }
  return err;
}

function reasonOf(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  const base = err instanceof Error ? err.message : String(err);
  return cause?.code ? `${base}: ${cause.code}` : cause?.message ? `${base}: ${cause.message}` : base;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new HubError('upstream_timeout', `${what}: Appwrite did not answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** `orders.csv` → `orders-20260301-120000.csv` (then `-2`, `-3` … if that is taken too). */
function stampedName(name: string, nowMs: number, attempt: number): string {
  const iso = new Date(nowMs).toISOString();
  const stamp = `${iso.slice(0, 10).replace(/-/g, '')}-${iso.slice(11, 19).replace(/:/g, '')}${attempt > 1 ? `-${attempt}` : ''}`;
  const dot = name.lastIndexOf('.');
  return dot > 0 ? `${name.slice(0, dot)}-${stamp}${name.slice(dot)}` : `${name}-${stamp}`;
}

/** `*` any run of characters, `?` one character, everything else literal. */
function globToRegExp(glob: string): RegExp {
  const source = [...glob].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('');
  return new RegExp(`^${source}$`, 's');
}

/** A file name the exchange can report and move: one plain, visible name (a private check, see types.ts). */
function isPlainName(name: string): boolean {
  return name !== '' && !name.startsWith('.') && !name.includes('/') && !name.includes('\\') && !name.includes('..') && !/[\u0000-\u001f\u007f]/.test(name);
}

/** Appwrite keeps file names of up to 255 characters (updateFile's Text(255)), prefix included. */
const MAX_STORED_NAME = 255;

function checkName(name: string, prefix = ''): void {
  if (typeof name !== 'string' || !isPlainName(name) || (prefix + name).length > MAX_STORED_NAME) {
    throw new HubError('validation_failed', `'${String(name)}' is not a file name`, {
      errors: [{ field: '/name', code: 'invalid', message: `A file name must be non-empty, not start with a dot, have no "/", "\\", ".." or control characters, and with the prefix fit in ${MAX_STORED_NAME} characters` }],
    });
  }
}

function checkCommon(options: StorageOptions): FieldError[] {
  const errors: FieldError[] = [];
  if (typeof options.endpoint !== 'string' || !/^https?:\/\/[^/]/.test(options.endpoint)) {
    errors.push({ field: '/endpoint', code: 'invalid', message: 'endpoint must be an http(s) URL such as https://cloud.appwrite.io/v1' });
  }
  for (const field of ['projectId', 'apiKey'] as const) {
    if (typeof options[field] !== 'string' || options[field] === '') errors.push({ field: `/${field}`, code: 'required', message: `${field} is required` });
  }
  if (typeof options.bucketId !== 'string' || !UID.test(options.bucketId)) {
    errors.push({ field: '/bucketId', code: 'invalid', message: 'bucketId must be an Appwrite id: up to 36 of a-z, A-Z, 0-9, ".", "-", "_", not starting with a symbol' });
  }
  if (options.requestTimeoutMs !== undefined && !(Number.isInteger(options.requestTimeoutMs) && options.requestTimeoutMs > 0)) {
    errors.push({ field: '/requestTimeoutMs', code: 'invalid', message: 'requestTimeoutMs must be a positive integer' });
  }
  return errors;
}

function checkPrefix(errors: FieldError[], field: string, value: unknown): void {
  if (typeof value !== 'string' || value.includes('\\') || value.split('/').some((s) => s === '..') || value.startsWith(PARTIAL)) {
    errors.push({ field: `/${field}`, code: 'invalid', message: `${field} must be a name prefix such as 'inbox/'` });
  }
}

function throwIfAny(errors: FieldError[]): void {
  if (errors.length > 0) throw new HubError('validation_failed', `The Appwrite Storage settings are not valid: ${errors.map((e) => e.message).join('; ')}`, { errors });
}
