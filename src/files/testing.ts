// Shared by the file readers' tests (not used by the readers): run a reader to its end or its failure, feed bytes
// in awkward chunks, measure the heap a reader keeps, which is how "memory stays flat" is tested, and read the
// zip an XLSX is.
import { Readable } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';
import { inflateRawSync } from 'node:zlib';
import { expect } from 'vitest';
import { HubError } from '../errors.ts';
import type { ReadItem, RecordError } from './types.ts';

export interface Outcome<V> {
  items: ReadItem<V>[];
  /** The records' values alone, in order. */
  values: V[];
  failure: HubError | null;
}

/** Reads everything; a HubError thrown by the reader is returned as `failure`, anything else fails the test. */
export async function drain<V>(reader: AsyncIterable<ReadItem<V>>): Promise<Outcome<V>> {
  const items: ReadItem<V>[] = [];
  let failure: HubError | null = null;
  try {
    for await (const item of reader) items.push(item);
  } catch (err) {
    if (!(err instanceof HubError)) throw err;
    failure = err;
  }
  return { items, values: items.flatMap((i) => (i.kind === 'record' ? [i.value] : [])), failure };
}

/** The RecordError a fatal failure carries, after checking it is the readers' kind of failure. */
export function fileErrorOf(failure: HubError | null): RecordError {
  expect(failure).toBeInstanceOf(HubError);
  expect(failure!.code).toBe('validation_failed');
  const error = failure!.extra?.fileError as RecordError;
  expect(error).toMatchObject({ code: expect.any(String), message: expect.any(String) });
  expect(failure!.message).toBe(error.message);
  return error;
}

function bytes(data: string | Uint8Array): Buffer {
  return typeof data === 'string' ? Buffer.from(data) : Buffer.from(data);
}

/** A source that gives one byte at a time, so every multi-byte character is split across chunks. */
export function byteByByte(data: string | Uint8Array): Readable {
  return Readable.from([...bytes(data)].map((b) => Buffer.from([b])));
}

export function inChunks(data: string | Uint8Array, size: number): Readable {
  const all = bytes(data);
  const chunks: Buffer[] = [];
  for (let i = 0; i < all.length; i += size) chunks.push(all.subarray(i, i + size));
  return Readable.from(chunks);
}

let collect: (() => void) | undefined;

/**
 * Heap in use after a full collection. It collects twice: V8 frees the memory of dead ArrayBuffers (Buffers) on a
 * background thread after a collection, and the next collection waits for that. Read after one, arrayBuffers still
 * counted dead ones: megabytes of a busy XLSX export's 1 MB chunks, more when other work starves that thread.
 */
export function retainedHeap(): number {
  if (!collect) {
    v8.setFlagsFromString('--expose-gc');
    collect = vm.runInNewContext('gc') as () => void;
  }
  collect();
  collect();
  return process.memoryUsage().heapUsed;
}

export interface ZipEntry {
  name: string;
  data: Buffer;
}

/** The entries of a zip, read through its central directory (enough for the archives exceljs writes). */
export function unzip(zip: Buffer): ZipEntry[] {
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const entries: ZipEntry[] = [];
  let p = zip.readUInt32LE(end + 16);
  for (let i = zip.readUInt16LE(end + 10); i > 0; i--) {
    const nameLength = zip.readUInt16LE(p + 28);
    const local = zip.readUInt32LE(p + 42);
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const stored = zip.subarray(start, start + zip.readUInt32LE(p + 20));
    entries.push({ name: zip.toString('utf8', p + 46, p + 46 + nameLength), data: zip.readUInt16LE(p + 10) === 8 ? inflateRawSync(stored) : Buffer.from(stored) });
    p += 46 + nameLength + zip.readUInt16LE(p + 30) + zip.readUInt16LE(p + 32);
  }
  return entries;
}
