// Route handlers for Appwrite Storage (1.8.1): buckets, files and downloads, with Appwrite's chunked upload protocol
// (src/Appwrite/Platform/Modules/Storage/Http/Buckets/Files/*). Files live in memory; tests keep them small.
import { createHash } from 'node:crypto';
import { checkId, checkPermissions, listModels, now, type Handler, type HandlerRequest, type ServerState } from './context.ts';
import { fail } from './errors.ts';
import { planQueries, parseQueries, runPlan, type Item, type Schema } from './queries.ts';
import type { FormFile } from './spec.ts';

/** Storage error types with status and message (app/config/errors.php at 1.8.1), beside the TablesDB ones in errors.ts. */
const STORAGE_ERRORS = {
  storage_file_already_exists: [409, 'A storage file with the requested ID already exists.'],
  storage_file_not_found: [404, 'The requested file could not be found.'],
  storage_file_empty: [400, 'Empty file passed to the endpoint.'],
  storage_file_type_unsupported: [400, 'The given file extension is not supported.'],
  storage_invalid_file_size: [400, 'The file size is either not valid or exceeds the maximum allowed size. Please check the file or the value of the _APP_STORAGE_LIMIT environment variable.'],
  storage_bucket_already_exists: [409, 'A storage bucket with the requested ID already exists. Try again with a different ID or use ID.unique() to generate a unique ID.'],
  storage_bucket_not_found: [404, 'Storage bucket with the requested ID could not be found.'],
  storage_invalid_content_range: [400, 'The content range is invalid. Please check the value of the Content-Range header.'],
  storage_invalid_range: [416, 'The requested range is not satisfiable. Please check the value of the Range header.'],
  storage_invalid_appwrite_id: [400, 'The value for x-appwrite-id header is invalid. Please check the value of the x-appwrite-id header is a valid id and not unique().'],
} as const satisfies Record<string, readonly [number, string]>;

export type StorageErrorType = keyof typeof STORAGE_ERRORS;

/** An Appwrite storage error; the server answers it with Appwrite's body like an AppwriteError. */
export class StorageError extends Error {
  readonly code: number;
  constructor(
    readonly type: StorageErrorType,
    message?: string,
  ) {
    super(message ?? STORAGE_ERRORS[type][1]);
    this.code = STORAGE_ERRORS[type][0];
  }
}

function refuse(type: StorageErrorType, message?: string): never {
  throw new StorageError(type, message);
}

/** APP_LIMIT_UPLOAD_CHUNK_SIZE: Appwrite numbers a chunk by `start / 5 MB`, so every chunk but the last must be exactly this. */
export const UPLOAD_CHUNK_SIZE = 5 * 1024 * 1024;
/** _APP_STORAGE_LIMIT's default: a bucket's maximumFileSize default and bound. */
const STORAGE_LIMIT = 30_000_000;
/** APP_STORAGE_READ_BUFFER: files above it are neither encrypted nor compressed, and ranges above it are cut. */
const READ_BUFFER = 20 * 1000 * 1000;
/** MAX_OUTPUT_CHUNK_SIZE: what an open-ended or oversized range request gets. */
const MAX_OUTPUT_CHUNK = 10 * 1024 * 1024;

export interface StoredFile {
  $id: string;
  bucketId: string;
  $createdAt: string;
  $updatedAt: string;
  $permissions: string[];
  name: string;
  signature: string;
  mimeType: string;
  sizeOriginal: number;
  chunksTotal: number;
  chunksUploaded: number;
  encryption: boolean;
  compression: string;
  /** Insertion order, Appwrite's default sort and tie-breaker. */
  sequence: number;
  /** Chunks received so far, by number (1-based), until the last one arrives. */
  chunks: Map<number, Buffer>;
  /** The whole content once every chunk is in. */
  data: Buffer | null;
}

export interface Bucket {
  model: Record<string, unknown> & { $id: string; enabled: boolean; maximumFileSize: number; allowedFileExtensions: string[]; encryption: boolean; compression: string };
  files: Map<string, StoredFile>;
  nextSequence: number;
}

/** The attributes listFiles may query (Queries/Files.php ALLOWED_ATTRIBUTES plus Base's $id and dates). */
const FILE_SCHEMA: Schema = new Map([
  ['name', { kind: 'string', array: false }],
  ['signature', { kind: 'string', array: false }],
  ['mimeType', { kind: 'string', array: false }],
  ['sizeOriginal', { kind: 'integer', array: false }],
  ['chunksTotal', { kind: 'integer', array: false }],
  ['chunksUploaded', { kind: 'integer', array: false }],
  ['$id', { kind: 'string', array: false }],
  ['$createdAt', { kind: 'datetime', array: false }],
  ['$updatedAt', { kind: 'datetime', array: false }],
]);
const SORT_SCHEMA: Schema = new Map([...FILE_SCHEMA, ['$sequence', { kind: 'sequence', array: false }]]);
/** The query methods Appwrite's Base validator takes (Limit, Offset, Cursor, Filter, Order: no select). */
const NOT_FILTERS = new Set(['limit', 'offset', 'cursorAfter', 'cursorBefore', 'orderAsc', 'orderDesc']);

function findBucket(state: ServerState, id: string): Bucket {
  return state.buckets.get(id) ?? refuse('storage_bucket_not_found');
}

function findFile(bucket: Bucket, id: string): StoredFile {
  return bucket.files.get(id) ?? refuse('storage_file_not_found');
}

function fileModel(file: StoredFile): Record<string, unknown> {
  const { sequence: _sequence, chunks: _chunks, data: _data, ...model } = file;
  return model;
}

function bucketModel(bucket: Bucket): Record<string, unknown> {
  let totalSize = 0;
  for (const file of bucket.files.values()) totalSize += file.data?.length ?? 0;
  return { ...bucket.model, totalSize };
}

function text(name: string, value: unknown, max: number): string {
  if (typeof value !== 'string' || value.length > max) fail('general_argument_invalid', `Invalid \`${name}\` param: Value must be a valid string and at most ${max} chars`);
  return value as string;
}

/** What libmagic would roughly say; Appwrite sniffs the content, not the name. */
function sniffMimeType(data: Buffer): string {
  if (data.subarray(0, 4).equals(Buffer.from('PK\u0003\u0004', 'latin1'))) return 'application/zip';
  if (data.includes(0)) return 'application/octet-stream';
  const head = data.subarray(0, 256).toString('utf8').trimStart();
  if (head.startsWith('<?xml')) return 'text/xml';
  return 'text/plain';
}

const createBucket: Handler = (state, req) => {
  const id = checkId('bucketId', req.body.bucketId, true);
  if (state.buckets.has(id)) refuse('storage_bucket_already_exists');
  const maximumFileSize = req.body.maximumFileSize ?? STORAGE_LIMIT;
  if (!Number.isInteger(maximumFileSize) || maximumFileSize < 1 || maximumFileSize > STORAGE_LIMIT) {
    fail('general_argument_invalid', `Invalid \`maximumFileSize\` param: Value must be a valid range between 1 and ${STORAGE_LIMIT}`);
  }
  const at = now();
  const bucket: Bucket = {
    model: {
      $id: id,
      $createdAt: at,
      $updatedAt: at,
      $permissions: checkPermissions(req.body.permissions, ['read', 'create', 'update', 'delete']) ?? [],
      fileSecurity: req.body.fileSecurity ?? false,
      name: text('name', req.body.name, 128),
      enabled: req.body.enabled ?? true,
      maximumFileSize,
      allowedFileExtensions: (req.body.allowedFileExtensions as string[] | undefined) ?? [],
      compression: req.body.compression ?? 'none',
      encryption: req.body.encryption ?? true,
      antivirus: req.body.antivirus ?? true,
      transformations: req.body.transformations ?? true,
    },
    files: new Map(),
    nextSequence: 1,
  };
  state.buckets.set(id, bucket);
  return { body: bucketModel(bucket) };
};

function fileItems(bucket: Bucket): Item[] {
  return [...bucket.files.values()].map((f) => ({ ...fileModel(f), $sequence: f.sequence }));
}

const listFiles: Handler = (state, req) => {
  const bucket = findBucket(state, req.path.bucketId!);
  const queries = parseQueries((req.query.queries as string[] | undefined) ?? []);
  for (const q of queries) {
    if (q.method === 'select') fail('general_query_invalid', 'Invalid query: Invalid query method: select');
    const named = NOT_FILTERS.has(q.method) ? (q.method.startsWith('order') ? [q.attribute] : []) : filterAttributes(q);
    for (const attribute of named) if (!FILE_SCHEMA.has(attribute)) fail('general_query_invalid', `Invalid query: Attribute not found in schema: ${attribute}`);
  }
  const plan = planQueries(queries, SORT_SCHEMA);
  let items = fileItems(bucket);
  const term = typeof req.query.search === 'string' ? req.query.search.toLowerCase() : '';
  // The `search` attribute is "<fileId> <name>" under a fulltext index.
  if (term) items = items.filter((f) => `${String(f.$id)} ${String(f.name)}`.toLowerCase().includes(term));
  const result = runPlan(items, plan, SORT_SCHEMA, (id) => items.find((f) => f.$id === id) ?? null, 'File');
  return {
    body: {
      total: req.query.total === false ? 0 : result.total,
      files: result.items.map(({ $sequence: _drop, ...model }) => model),
    },
  };
};

function filterAttributes(q: { method: string; attribute: string; values: unknown[] }): string[] {
  if (q.method === 'or' || q.method === 'and') return (q.values as (typeof q)[]).flatMap(filterAttributes);
  return [q.attribute];
}

interface ContentRange {
  start: number;
  end: number;
  size: number;
}

/** `bytes <start>-<end>/<size>` as Request::contentRangeStart/End/Size read it; anything else is refused. */
function contentRange(header: string): ContentRange {
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(header.trim());
  if (!m) refuse('storage_invalid_content_range');
  const [start, end, size] = [Number(m![1]), Number(m![2]), Number(m![3])];
  if (end > size) refuse('storage_invalid_content_range');
  return { start, end, size };
}

/**
 * One upload request: a whole file, or one chunk of Appwrite's protocol (content-range; every chunk after the first
 * names the file in x-appwrite-id). Chunks may arrive in any order (node-appwrite sends up to 8 at once after the
 * first); the file is complete when every chunk is in. What real Appwrite would silently mis-store is noted.
 */
const createFile: Handler = (state, req) => {
  const bucket = findBucket(state, req.path.bucketId!);
  let fileId = checkId('fileId', req.body.fileId, true);
  const permissions = checkPermissions(req.body.permissions, ['read', 'update', 'delete']) ?? [];
  const part = req.body.file as FormFile | undefined;
  if (!part || !Buffer.isBuffer(part.data)) refuse('storage_file_empty');
  const data = part!.data;
  let size = data.length;
  let chunk = 1;
  let chunks = 1;
  const rangeHeader = req.headers['content-range'];
  if (rangeHeader) {
    const range = contentRange(rangeHeader);
    size = range.size;
    fileId = req.headers['x-appwrite-id'] || fileId;
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,35}$/.test(fileId)) refuse('storage_invalid_appwrite_id');
    chunks = Math.ceil(size / UPLOAD_CHUNK_SIZE);
    chunk = Math.floor(range.start / UPLOAD_CHUNK_SIZE) + 1;
    checkChunk(req, range, data.length, chunk, chunks);
  }
  const extensions = bucket.model.allowedFileExtensions;
  const extension = /\.([^./]+)$/.exec(part!.filename)?.[1]?.toLowerCase() ?? '';
  if (extensions.length > 0 && !extensions.includes(extension)) refuse('storage_file_type_unsupported', 'File extension not allowed');
  if (size > bucket.model.maximumFileSize) refuse('storage_invalid_file_size', 'File size not allowed');

  let file = bucket.files.get(fileId);
  if (file && file.chunksUploaded === file.chunksTotal) {
    if (!rangeHeader) refuse('storage_file_already_exists');
    return { status: 200, body: fileModel(file) };
  }
  if (file && (file.sizeOriginal !== size || file.chunksTotal !== chunks)) {
    req.note(`storageCreateFile: chunk of file ${fileId} gives size ${size}, its first chunk gave ${file.sizeOriginal}`);
  }
  if (!file) {
    const at = now();
    file = {
      $id: fileId,
      bucketId: bucket.model.$id,
      $createdAt: at,
      $updatedAt: at,
      $permissions: permissions,
      name: part!.filename,
      signature: '',
      mimeType: '',
      sizeOriginal: size,
      chunksTotal: chunks,
      chunksUploaded: 0,
      encryption: false,
      compression: 'none',
      sequence: bucket.nextSequence++,
      chunks: new Map(),
      data: null,
    };
    bucket.files.set(fileId, file);
  }
  file.chunks.set(chunk, data);
  file.chunksUploaded = file.chunks.size;
  file.$updatedAt = now();
  if (file.chunksUploaded === file.chunksTotal) {
    const whole = Buffer.concat([...file.chunks.entries()].sort(([a], [b]) => a - b).map(([, b]) => b));
    if (whole.length !== file.sizeOriginal) req.note(`storageCreateFile: file ${fileId} assembled to ${whole.length} bytes, content-range said ${file.sizeOriginal}`);
    file.data = whole;
    file.chunks = new Map();
    file.signature = createHash('md5').update(whole).digest('hex');
    file.mimeType = sniffMimeType(whole);
    file.encryption = bucket.model.encryption && whole.length <= READ_BUFFER;
    file.compression = whole.length <= READ_BUFFER ? bucket.model.compression : 'none';
  }
  return { body: fileModel(file) };
};

/** The protocol as Appwrite relies on it: it places a chunk by `start / 5 MB` and trusts the client for the rest. */
function checkChunk(req: HandlerRequest, range: ContentRange, length: number, chunk: number, chunks: number): void {
  const problems: string[] = [];
  if (range.start % UPLOAD_CHUNK_SIZE !== 0) problems.push(`chunk starts at ${range.start}, not on a ${UPLOAD_CHUNK_SIZE}-byte boundary`);
  if (range.end - range.start + 1 !== length) problems.push(`content-range ${range.start}-${range.end} covers ${range.end - range.start + 1} bytes, the file part has ${length}`);
  if (range.end >= range.size) problems.push(`content-range end ${range.end} is not below the size ${range.size}`);
  const expected = chunk < chunks ? UPLOAD_CHUNK_SIZE : range.size - (chunks - 1) * UPLOAD_CHUNK_SIZE;
  if (length !== expected) problems.push(`chunk ${chunk} of ${chunks} has ${length} bytes, Appwrite expects ${expected}`);
  if (chunk > 1 && !req.headers['x-appwrite-id']) problems.push(`chunk ${chunk} sent without x-appwrite-id`);
  for (const p of problems) req.note(`storageCreateFile: ${p}`);
}

const getFile: Handler = (state, req) => ({ body: fileModel(findFile(findBucket(state, req.path.bucketId!), req.path.fileId!)) });

const updateFile: Handler = (state, req) => {
  const file = findFile(findBucket(state, req.path.bucketId!), req.path.fileId!);
  if (req.body.name !== undefined && req.body.name !== null) file.name = text('name', req.body.name, 255);
  const permissions = checkPermissions(req.body.permissions, ['read', 'update', 'delete']);
  if (permissions) file.$permissions = permissions;
  file.$updatedAt = now();
  return { body: fileModel(file) };
};

const deleteFile: Handler = (state, req) => {
  const bucket = findBucket(state, req.path.bucketId!);
  findFile(bucket, req.path.fileId!);
  bucket.files.delete(req.path.fileId!);
  return {};
};

/** The file's bytes; a Range request gets 206 with Appwrite's quirks (a one-byte range is refused: start must be below end). */
const downloadFile: Handler = (state, req) => {
  const file = findFile(findBucket(state, req.path.bucketId!), req.path.fileId!);
  // Until the last chunk is in there is no file on the device (Download/Get.php: "File not found in <path>").
  if (!file.data) refuse('storage_file_not_found', `File not found in ${file.bucketId}/${file.$id}`);
  const data = file.data!;
  const headers: Record<string, string> = {
    'content-type': file.mimeType,
    'cache-control': 'private, max-age=3888000',
    'content-disposition': `attachment; filename="${file.name}"`,
  };
  const rangeHeader = req.headers.range;
  if (!rangeHeader) return { raw: { data, headers } };
  const m = /^(\w+)=(\d*)-(\d*)$/.exec(rangeHeader.trim());
  const start = m?.[2] ? Number(m[2]) : NaN;
  let end: number | null = m?.[3] ? Number(m[3]) : null;
  if (end === null || end - start > READ_BUFFER) end = Math.min(start + MAX_OUTPUT_CHUNK - 1, data.length - 1);
  if (!m || m[1] !== 'bytes' || !Number.isFinite(start) || start >= end || end >= data.length) refuse('storage_invalid_range');
  return {
    status: 206,
    raw: {
      data: data.subarray(start, end + 1),
      headers: { ...headers, 'accept-ranges': 'bytes', 'content-range': `bytes ${start}-${end}/${data.length}` },
    },
  };
};

export const STORAGE_HANDLERS: Record<string, Handler> = {
  storageCreateBucket: createBucket,
  storageListBuckets: (state, req) => listModels([...state.buckets.values()].map(bucketModel), req, 'buckets', ['name']),
  storageGetBucket: (state, req) => ({ body: bucketModel(findBucket(state, req.path.bucketId!)) }),
  storageDeleteBucket: (state, req) => {
    findBucket(state, req.path.bucketId!);
    state.buckets.delete(req.path.bucketId!);
    return {};
  },
  storageListFiles: listFiles,
  storageCreateFile: createFile,
  storageGetFile: getFile,
  storageUpdateFile: updateFile,
  storageDeleteFile: deleteFile,
  storageGetFileDownload: downloadFile,
};
