// Reads a CSV file as it streams in, one record at a time, with memory flat however large the file. csv-parse does
// the quoting; this file decides what is wrong with a row and what is wrong with the file. A row with more or
// fewer fields than the header is that row's error and reading goes on (so the good rows can be applied); bad
// quoting, invalid UTF-8 or an unusable header stop the file, because what follows can no longer be trusted.
//
// csv-parse runs with its column check relaxed and hands every row over as an array, and this reader
// compares it with the header itself: that is what lets a ragged row become an item instead of a stop, and it
// lets the reader count lines itself, so `row` is the line a record starts on even when a quoted field spans
// lines. Rows are collected while csv-parse works through one chunk and given out before the next chunk is read,
// which is the back-pressure: at most one chunk's rows are held.
import type { Readable } from 'node:stream';
import { parse, type Parser } from 'csv-parse';
import type { HubError } from '../errors.ts';
import { flatten } from './chunks.ts';
import { fileFailure, optionError, readChunks, reasonOf } from './failure.ts';
import { checkColumnsOption, checkNames, resolveColumns, setField } from './header.ts';
import type { CsvOptions, ReadItem, TextRecord } from './types.ts';
import { InvalidUtf8, Utf8Decoder } from './utf8.ts';

/**
 * Longer than any real record; reached when a quote is never closed, which would otherwise make the rest of the
 * file one field held in memory.
 */
export const MAX_RECORD_CHARS = 1 << 20;

interface CsvSettings {
  delimiter: string;
  quote: string;
  latin1: boolean;
  header: boolean;
  columns: string[] | undefined;
  requiredColumns: string[] | undefined;
}

function settings(options: CsvOptions): CsvSettings {
  const delimiter = options.delimiter ?? ',';
  const quote = options.quote ?? '"';
  if (typeof delimiter !== 'string' || delimiter === '' || /[\r\n]/.test(delimiter)) {
    throw optionError('delimiter', 'delimiter must be a non-empty text without line breaks');
  }
  if (typeof quote !== 'string' || quote.length !== 1 || delimiter.includes(quote) || /[\r\n]/.test(quote)) {
    throw optionError('quote', 'quote must be one character, not part of the delimiter and not a line break');
  }
  const encoding = options.encoding ?? 'utf-8';
  if (encoding !== 'utf-8' && encoding !== 'latin1') throw optionError('encoding', "encoding must be 'utf-8' or 'latin1'");
  const header = options.header ?? true;
  const columns = checkColumnsOption(checkNames('columns', options.columns));
  const requiredColumns = checkNames('requiredColumns', options.requiredColumns);
  if (!header) {
    if (!columns) throw optionError('columns', 'A file without a header row needs columns to name its fields');
    const missing = requiredColumns?.filter((r) => !columns.includes(r)) ?? [];
    if (missing.length > 0) throw optionError('requiredColumns', `requiredColumns names ${missing.join(', ')}, which columns does not`);
  }
  return { delimiter, quote, latin1: encoding === 'latin1', header, columns, requiredColumns };
}

/** Reads `input` (bytes) as CSV; see ReadItem for what arrives and what is thrown. */
export function readCsv(input: Readable, options: CsvOptions = {}): AsyncIterable<ReadItem<TextRecord>> {
  return flatten(csvChunks(input, settings(options)));
}

/** As readCsv, the items a chunk of the file holds at a time: a large import is spared one await per record. */
export function readCsvChunks(input: Readable, options: CsvOptions = {}): AsyncIterable<ReadItem<TextRecord>[]> {
  return csvChunks(input, settings(options));
}

async function* csvChunks(input: Readable, s: CsvSettings): AsyncGenerator<ReadItem<TextRecord>[]> {
  const rows: string[][] = [];
  const parser = parse({
    delimiter: s.delimiter,
    quote: s.quote,
    escape: s.quote,
    // csv-parse turns the bytes of each field into text itself; UTF-8 is validated beside it (below).
    encoding: s.latin1 ? 'latin1' : 'utf8',
    bom: !s.latin1,
    // Listed rather than discovered: csv-parse would take the first line end it meets as the only one, and a
    // file that mixes them would then keep a stray CR at the end of its last field.
    record_delimiter: ['\r\n', '\n', '\r'],
    relax_column_count: true,
    max_record_size: MAX_RECORD_CHARS,
  });
  // Records are taken as csv-parse hands them to its readable side, straight into `rows`: an on_record callback
  // would make it build an info object per record (a tenth of the time of a large import), and reading them off
  // the stream would hold each chunk's write until they are read.
  parser.push = (record: unknown) => {
    if (record !== null) rows.push(record as string[]);
    return true;
  };
  // Its failures are taken from the write and end callbacks; this keeps the 'error' event from being unhandled.
  parser.on('error', () => {});
  const decoder = s.latin1 ? null : new Utf8Decoder();
  /** The line the next record starts on. */
  let line = 1;
  /** Line feeds in the chunks before the current one, to say on which line an invalid byte is. */
  let lineFeeds = 0;
  let names = s.header ? null : s.columns!;

  function take(): ReadItem<TextRecord>[] {
    const items: ReadItem<TextRecord>[] = [];
    for (const fields of rows) {
      const row = line;
      line += 1 + lineBreaks(fields);
      // A blank line is not a record (csv-parse gives it as one empty field).
      if (fields.length === 1 && fields[0] === '') continue;
      if (names === null) {
        names = resolveColumns(fields, row, s, delimiterHint(fields, s.delimiter));
        continue;
      }
      if (fields.length !== names.length) {
        const message = `Line ${row} has ${fields.length} field${fields.length === 1 ? '' : 's'} where the header has ${names.length}`;
        items.push({ kind: 'error', row, error: { row, column: null, code: 'field_count', message } });
        continue;
      }
      const value: TextRecord = {};
      for (let i = 0; i < names.length; i++) setField(value, names[i]!, fields[i]!);
      items.push({ kind: 'record', row, value });
    }
    rows.length = 0;
    return items;
  }

  try {
    for await (const chunk of readChunks(input)) {
      if (decoder) {
        try {
          decoder.decode(chunk);
        } catch (err) {
          if (!(err instanceof InvalidUtf8)) throw err;
          throw encodingFailure(err, lineFeeds + countLineFeeds(chunk, err.index) + 1);
        }
        lineFeeds += countLineFeeds(chunk, chunk.length);
      }
      const failed = await feed(parser, chunk);
      const items = take();
      if (items.length) yield items;
      if (failed) throw parseFailure(failed, line, names);
    }
    if (decoder) {
      try {
        decoder.end();
      } catch (err) {
        if (!(err instanceof InvalidUtf8)) throw err;
        throw encodingFailure(err, lineFeeds + 1);
      }
    }
    const failed = await feed(parser, null);
    const items = take();
    if (items.length) yield items;
    if (failed) throw parseFailure(failed, line, names);
  } finally {
    parser.destroy();
  }
}

/** Writes a chunk to csv-parse (null: ends it) and resolves, once it is parsed, to its failure if any. */
function feed(parser: Parser, chunk: Uint8Array | null): Promise<unknown> {
  return new Promise((resolve) => {
    if (chunk) parser.write(chunk, resolve);
    else parser.end(resolve);
  });
}

/** How many lines a record's quoted fields span beyond its first (CRLF, LF and CR each end one line). */
function lineBreaks(fields: string[]): number {
  let n = 0;
  for (const f of fields) {
    if (f.indexOf('\n') < 0 && f.indexOf('\r') < 0) continue;
    for (let i = 0; i < f.length; i++) {
      const c = f.charCodeAt(i);
      if (c === 10 || (c === 13 && f.charCodeAt(i + 1) !== 10)) n++;
    }
  }
  return n;
}

function countLineFeeds(chunk: Uint8Array, end: number): number {
  let n = 0;
  for (let i = chunk.indexOf(10); i >= 0 && i < end; i = chunk.indexOf(10, i + 1)) n++;
  return n;
}

function encodingFailure(err: InvalidUtf8, line: number): HubError {
  return fileFailure(
    {
      row: line,
      column: null,
      code: 'invalid_encoding',
      message: `Line ${line} is not valid UTF-8 (at byte offset ${err.offset}); save the file as UTF-8, or read it as latin1`,
    },
    { cause: err },
  );
}

const DELIMITER_NAMES: Record<string, string> = { ',': 'a comma', ';': 'a semicolon', '\t': 'a tab', '|': 'a bar' };

function describe(delimiter: string): string {
  return DELIMITER_NAMES[delimiter] ?? JSON.stringify(delimiter);
}

/** A header read as one column that holds another delimiter was almost surely split with the wrong one. */
function delimiterHint(header: string[], delimiter: string): string {
  if (header.length !== 1) return '';
  const other = Object.keys(DELIMITER_NAMES).find((d) => d !== delimiter && header[0]!.includes(d));
  return other === undefined
    ? ''
    : `. The whole header was read as one column: the file seems to be separated by ${describe(other)}, not ${describe(delimiter)}`;
}

const QUOTING_PROBLEMS: Record<string, string> = {
  CSV_QUOTE_NOT_CLOSED: 'a quote opened in the record starting here is never closed',
  CSV_INVALID_CLOSING_QUOTE: 'a quoted field has more text after its closing quote (a quote inside a quoted field must be doubled)',
  INVALID_OPENING_QUOTE: 'a field that is not quoted contains a quote (quote the field and double the quote inside it)',
};

/** csv-parse's failure as the file's: its codes become ours, and `row` is the line the broken record starts on. */
function parseFailure(err: unknown, row: number, names: string[] | null): HubError {
  const { code, column } = err as { code?: string; column?: unknown };
  if (code === 'CSV_MAX_RECORD_SIZE') {
    const message = `Line ${row}: the record starting here is longer than ${MAX_RECORD_CHARS} characters; a quote is probably not closed`;
    return fileFailure({ row, column: null, code: 'record_too_large', message }, { cause: err });
  }
  const problem = (code && QUOTING_PROBLEMS[code]) ?? reasonOf(err);
  const columnName = typeof column === 'number' ? (names?.[column] ?? null) : null;
  return fileFailure({ row, column: columnName, code: 'malformed_csv', message: `Line ${row}: ${problem}` }, { cause: err });
}
