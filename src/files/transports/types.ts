// Where exchanged files come from and go: a local folder, an Appwrite Storage bucket, an SFTP server, and (for
// exports only) email. The file exchange sees only these two shapes, so a schedule runs the same over any of them.
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';

/** A file waiting in a source. */
export interface SourceFile {
  /** The name the exchange reports and moves; never a path (no '/', '\\', '..'). */
  name: string;
  /** Bytes, when the transport knows them. */
  size: number | null;
  /** ISO-8601, when the transport knows it. */
  modifiedAt: string | null;
}

/** Where imports read files from. */
export interface FileSource {
  /** Files waiting to be imported whose names match the source's pattern, oldest first, then by name. */
  list(): Promise<SourceFile[]>;
  /**
   * The file's bytes as a stream. A failure before the first byte rejects; a failure mid-file (a dropped
   * connection) is the stream's 'error' event. Transport failures are HubErrors: 'upstream_unreachable' (cannot
   * connect, dropped mid-file; retryable), 'upstream_auth_failed' (credentials or a host key that does not match
   * the pinned one), 'not_found' (the file went away), so the exchange reports them and leaves the file in place.
   */
  open(name: string): Promise<Readable>;
  /**
   * The same file opened for reading, where the transport has it on a local disk (the folder transport): staging
   * copies it through one buffer instead of a stream's buffer per chunk. The caller closes the handle.
   */
  openFile?(name: string): Promise<FileHandle>;
  /** After an import: moves the file out of the way, to the archive (applied) or the error place (rejected). */
  finish(name: string, outcome: 'archive' | 'error'): Promise<void>;
  close(): Promise<void>;
}

export interface PutInfo {
  /** e.g. 'text/csv', 'application/xml', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'. */
  contentType: string;
}

/** Where exports are written. */
export interface FileTarget {
  /**
   * Writes the whole stream as `name`; readers of the target never see a half-written file (a temporary name
   * then a rename, where the transport has one). Resolves to where it went (a path, a file id, a message id).
   */
  put(name: string, body: Readable, info: PutInfo): Promise<{ location: string }>;
  close(): Promise<void>;
}
