// How the file readers fail and where their bytes come from. A problem that stops a file is a HubError
// 'validation_failed' (the hub's one code for "your input is not acceptable") carrying the RecordError in
// extra.fileError and as a FieldError, so the API and the exchange log show the same thing; the fields are
// JSON-pointer-like paths into the file (/file/rows/12/Sku, /file/columns/Sku) because the file is the "body".
import type { Readable } from 'node:stream';
import { HubError, type FieldError } from '../errors.ts';
import { escapePointer } from '../mappings/pointer.ts';
import type { RecordError } from './types.ts';

export function rowField(row: number | null, column: string | null = null): string {
  if (row === null) return column === null ? '/file' : `/file/columns/${escapePointer(column)}`;
  return column === null ? `/file/rows/${row}` : `/file/rows/${row}/${escapePointer(column)}`;
}

export function fileFailure(
  error: RecordError,
  options: { errors?: FieldError[]; cause?: unknown; retryable?: boolean } = {},
): HubError {
  return new HubError('validation_failed', error.message, {
    extra: { fileError: error },
    errors: options.errors ?? [{ field: rowField(error.row, error.column), code: error.code, message: error.message }],
    cause: options.cause,
    // A broken connection is worth another try; a broken file is not.
    retryable: options.retryable ?? false,
  });
}

export function isFileFailure(err: unknown): err is HubError {
  return err instanceof HubError && err.extra?.fileError !== undefined;
}

/** An error's message, for a sentence about it. */
export function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function sourceFailure(cause: unknown): HubError {
  return fileFailure(
    { row: null, column: null, code: 'source_failed', message: `The file could not be read to its end: ${reasonOf(cause)}` },
    { cause, retryable: true },
  );
}

/** A reader called with options that cannot work: the caller's mistake, reported before any byte is read. */
export function optionError(option: string, message: string): HubError {
  return new HubError('validation_failed', message, { errors: [{ field: `/options/${option}`, code: 'invalid_option', message }] });
}

/**
 * The bytes of a source, as Uint8Array whatever the stream gives (strings are UTF-8 encoded). A failing source
 * becomes the fatal 'source_failed'; a consumer that stops early ends the loop, which destroys the source.
 */
export async function* readChunks(input: Readable): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of input) yield typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Uint8Array);
  } catch (err) {
    throw sourceFailure(err);
  }
}
