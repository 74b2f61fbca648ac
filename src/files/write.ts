// The export side of the scheduled file exchange: records (a dataset, or any other source) written as CSV, XML or
// XLSX bytes while the consumer reads them. A record is pulled only when the stream wants more bytes, so an export
// of millions of rows holds about one chunk at a time, and a failing source ends the stream with its error.
//
// CSV and XLSX are tables, records are trees. Nested objects are flattened into dotted column names
// ({ address: { city } } → address.city); arrays become JSON text in one cell (lines → [{"sku":...}]), since
// spreading them over numbered columns makes a table whose width depends on the data. A column may also name an
// object (columns: ['customer']): its cell is then the object as JSON. Without `columns`, the first record's
// flattened keys are the columns (an object that is null there is one column, holding JSON where later records
// have it); a later record's keys that are not among them are left out and counted in `stats` (an exchange can
// warn), rather than failing an export that is already half sent. Values: null and undefined are empty cells,
// booleans 'true'/'false', dates ISO 8601, numbers numbers (numeric cells in XLSX), NaN and Infinity empty.
//
// Spreadsheets run text that starts with = + - @ TAB or CR as a formula (OWASP "CSV injection"), so such text is
// written with a leading ' unless it is a plain number (-5, +1.5e3), which a spreadsheet reads as that number.
// The ' is visible to a program reading the file back: neutralising is lossy on purpose.
import { PassThrough, Readable, type Writable } from 'node:stream';
import ExcelJS from 'exceljs';
import { HubError } from '../errors.ts';
import { optionError } from './failure.ts';
import { checkColumnsOption, checkNames } from './header.ts';

export interface CsvWriteOptions {
  /** Default ','. */
  delimiter?: string;
  /** Default '"'; a field holding the quote, the delimiter, a line break or another common delimiter is quoted. */
  quote?: string;
  /** Default true: the first line names the columns. */
  header?: boolean;
  /** The columns, in order. Default: the keys of the first record, flattened. */
  columns?: string[];
  /** Default false. A byte order mark makes Excel read the file as UTF-8 rather than the local code page. */
  bom?: boolean;
  /** Default 'crlf', as RFC 4180 has it. */
  recordDelimiter?: 'lf' | 'crlf';
}

export interface XmlWriteOptions {
  /** Default 'Records'. */
  rootElement?: string;
  /** Default 'Record': the element of each record, so it reads back with recordPath 'Records/Record'. */
  recordElement?: string;
  /** Default true: starts with <?xml version="1.0" encoding="UTF-8"?>. */
  declaration?: boolean;
}

export interface XlsxWriteOptions {
  /** Default 'Sheet1'; Excel's rules: 1 to 31 characters, none of : \ / ? * [ ], no ' at either end. */
  sheetName?: string;
  /** As for CSV. */
  columns?: string[];
  /** Default true. */
  header?: boolean;
}

export type WriteSpec =
  | { format: 'csv'; options?: CsvWriteOptions }
  | { format: 'xml'; options?: XmlWriteOptions }
  | { format: 'xlsx'; options?: XlsxWriteOptions };

/** What writing has done so far; final once the stream has ended. */
export interface WriteStats {
  records: number;
  /** Values not written because their column is not among the file's (CSV, XLSX). */
  droppedValues: number;
  /** The first names of such columns. */
  droppedColumns: string[];
  /** XLSX cells cut to Excel's limit of 32,767 characters. */
  truncatedCells: number;
}

export interface ExportStream extends Readable {
  readonly stats: WriteStats;
}

type Rec = Record<string, unknown>;
export type RecordSource = AsyncIterable<Rec> | Iterable<Rec>;

/** Flattening stops here (the rest of a deeper object is one JSON cell): far deeper than any record we export. */
const MAX_DEPTH = 16;
/** Text gathered before it is handed to the stream: big enough to make the per-chunk cost vanish. */
const CHUNK_CHARS = 64 * 1024;
const MAX_DROPPED_NAMES = 20;
const EXCEL_MAX_CHARS = 32_767;
const EXCEL_MAX_ROWS = 1_048_576;
/** XLSX rows between looks at whether the consumer keeps up. */
const XLSX_PACE_ROWS = 100;

const PLAIN_NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** `value` made safe to put in a spreadsheet cell: text a spreadsheet would run as a formula gets a leading '. */
export function neutralizeCell(value: string): string {
  const c = value.charCodeAt(0);
  // = + - @ TAB CR
  if (c !== 61 && c !== 43 && c !== 45 && c !== 64 && c !== 9 && c !== 13) return value;
  return PLAIN_NUMBER.test(value) ? value : `'${value}`;
}

/** Writes `records` in the format of `spec`; the options are checked here, before any record is pulled. */
export function writeRecords(records: RecordSource, spec: WriteSpec): ExportStream {
  const stats: WriteStats = { records: 0, droppedValues: 0, droppedColumns: [], truncatedCells: 0 };
  switch (spec?.format) {
    case 'csv':
      return textStream(records, csvEncoder(csvSettings(spec.options ?? {}), stats), stats);
    case 'xml':
      return textStream(records, xmlEncoder(xmlSettings(spec.options ?? {})), stats);
    case 'xlsx':
      return xlsxStream(records, xlsxSettings(spec.options ?? {}), stats);
    default:
      // Specs come from stored exchange configuration, which the type system does not check.
      throw optionError('format', `format must be csv, xml or xlsx, not ${JSON.stringify((spec as { format?: unknown } | undefined)?.format)}`);
  }
}

// ---------------------------------------------------------------------------------------------------- options

function checkKeys(options: object, allowed: string[]): void {
  const unknown = Object.keys(options).find((k) => !allowed.includes(k));
  if (unknown !== undefined) throw optionError(unknown, `${JSON.stringify(unknown)} is not an option; the options are ${allowed.join(', ')}`);
}

function checkBoolean(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw optionError(name, `${name} must be true or false`);
  return value;
}

function checkColumns(value: unknown): string[] | undefined {
  const columns = checkColumnsOption(checkNames('columns', value));
  if (columns?.length === 0) throw optionError('columns', 'columns must name at least one column');
  return columns;
}

interface CsvSettings {
  delimiter: string;
  quote: string;
  header: boolean;
  columns: string[] | undefined;
  bom: boolean;
  eol: string;
}

function csvSettings(o: CsvWriteOptions): CsvSettings {
  checkKeys(o, ['delimiter', 'quote', 'header', 'columns', 'bom', 'recordDelimiter']);
  const delimiter = o.delimiter ?? ',';
  const quote = o.quote ?? '"';
  if (typeof delimiter !== 'string' || delimiter === '' || /[\r\n]/.test(delimiter)) {
    throw optionError('delimiter', 'delimiter must be a non-empty text without line breaks');
  }
  if (typeof quote !== 'string' || quote.length !== 1 || delimiter.includes(quote) || /[\r\n]/.test(quote)) {
    throw optionError('quote', 'quote must be one character, not part of the delimiter and not a line break');
  }
  const recordDelimiter = o.recordDelimiter ?? 'crlf';
  if (recordDelimiter !== 'lf' && recordDelimiter !== 'crlf') throw optionError('recordDelimiter', "recordDelimiter must be 'lf' or 'crlf'");
  return {
    delimiter,
    quote,
    header: checkBoolean('header', o.header, true),
    columns: checkColumns(o.columns),
    bom: checkBoolean('bom', o.bom, false),
    eol: recordDelimiter === 'lf' ? '\n' : '\r\n',
  };
}

// XML 1.0 (fifth edition) names, without ':' so that a namespace-aware reader does not look for a prefix.
const NAME_START = 'A-Z_a-z\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF\\u200C\\u200D\\u2070-\\u218F\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD\\u{10000}-\\u{EFFFF}';
const NAME_CHAR = `${NAME_START}\\-.0-9\\u00B7\\u0300-\\u036F\\u203F\\u2040`;
const XML_NAME = new RegExp(`^[${NAME_START}][${NAME_CHAR}]*$`, 'u');
const NOT_NAME_CHAR = new RegExp(`[^${NAME_CHAR}]`, 'gu');

interface XmlSettings {
  root: string;
  record: string;
  declaration: boolean;
}

function xmlSettings(o: XmlWriteOptions): XmlSettings {
  checkKeys(o, ['rootElement', 'recordElement', 'declaration']);
  const name = (option: 'rootElement' | 'recordElement', fallback: string) => {
    const value = o[option] ?? fallback;
    if (typeof value !== 'string' || !XML_NAME.test(value)) {
      throw optionError(option, `${option} must be an XML element name (a letter or _ first, then letters, digits, _ - .), without a namespace prefix`);
    }
    return value;
  };
  return { root: name('rootElement', 'Records'), record: name('recordElement', 'Record'), declaration: checkBoolean('declaration', o.declaration, true) };
}

interface XlsxSettings {
  sheetName: string;
  columns: string[] | undefined;
  header: boolean;
}

function xlsxSettings(o: XlsxWriteOptions): XlsxSettings {
  checkKeys(o, ['sheetName', 'columns', 'header']);
  const sheetName = o.sheetName ?? 'Sheet1';
  if (typeof sheetName !== 'string' || sheetName.length < 1 || sheetName.length > 31 || /[:\\/?*[\]]/.test(sheetName) || /^'|'$/.test(sheetName)) {
    throw optionError('sheetName', "sheetName must be 1 to 31 characters, none of : \\ / ? * [ ], and not start or end with '");
  }
  return { sheetName, columns: checkColumns(o.columns), header: checkBoolean('header', o.header, true) };
}

// ----------------------------------------------------------------------------------------------- tables

type Cell = string | number | null;

function isPlainObject(v: unknown): v is Rec {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function cellOf(v: unknown): Cell {
  switch (typeof v) {
    case 'string':
      return v;
    case 'number':
      // NaN and Infinity are no value a spreadsheet or a reader of the file could take.
      return Number.isFinite(v) ? v : null;
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      return v.toString();
    case 'undefined':
      return null;
  }
  if (v === null) return null;
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  return JSON.stringify(v) ?? null;
}

function flatten(obj: Rec, prefix: string, out: Map<string, Cell>, depth: number): void {
  for (const key of Object.keys(obj)) {
    const v = obj[key];
    if (v === undefined) continue;
    const name = prefix + key;
    if (isPlainObject(v) && depth < MAX_DEPTH) flatten(v, `${name}.`, out, depth + 1);
    else out.set(name, cellOf(v));
  }
}

/** The cell of a column that names an object rather than a value: the object as JSON. */
function objectCell(record: Rec, column: string): Cell {
  let v: unknown = record;
  for (const part of column.split('.')) {
    if (!isPlainObject(v)) return null;
    v = v[part];
  }
  return v === undefined ? null : isPlainObject(v) ? JSON.stringify(v) : cellOf(v);
}

function checkRecord(record: unknown, n: number): Rec {
  if (isPlainObject(record)) return record;
  throw new HubError('validation_failed', `Record ${n} is not an object`, { errors: [{ field: `/records/${n - 1}`, code: 'type', message: 'must be an object' }] });
}

/** Turns records into rows of cells, settling the columns from the first record when none are given. */
class Tabulator {
  columns: string[] | null;
  #names: Set<string> | null;

  constructor(
    columns: string[] | undefined,
    private readonly stats: WriteStats,
  ) {
    this.columns = columns ?? null;
    this.#names = columns ? new Set(columns) : null;
  }

  cells(record: Rec): Cell[] {
    const flat = new Map<string, Cell>();
    flatten(record, '', flat, 0);
    if (!this.columns) {
      this.columns = [...flat.keys()];
      this.#names = new Set(this.columns);
    }
    const out: Cell[] = new Array(this.columns.length);
    for (let i = 0; i < out.length; i++) {
      const c = this.columns[i]!;
      out[i] = flat.has(c) ? flat.get(c)! : objectCell(record, c);
    }
    for (const key of flat.keys()) if (!this.#names!.has(key) && !this.#coveredByObjectColumn(key)) this.#dropped(key);
    return out;
  }

  #coveredByObjectColumn(key: string): boolean {
    for (let i = key.indexOf('.'); i > 0; i = key.indexOf('.', i + 1)) if (this.#names!.has(key.slice(0, i))) return true;
    return false;
  }

  #dropped(key: string): void {
    this.stats.droppedValues++;
    const names = this.stats.droppedColumns;
    if (names.length < MAX_DROPPED_NAMES && !names.includes(key)) names.push(key);
  }
}

// ------------------------------------------------------------------------------------------- text formats

interface Encoder {
  start(): string;
  record(record: Rec): string;
  end(): string;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');
}

function csvEncoder(s: CsvSettings, stats: WriteStats): Encoder {
  const table = new Tabulator(s.columns, stats);
  // Also quoted: text holding another common delimiter, so that a spreadsheet splitting on that one cannot cut a
  // field in two and start a cell with what followed (",=1+1" read with ';' would otherwise be two cells).
  const needsQuotes = new RegExp(`[\\r\\n,;\\t|${escapeRegExp(s.quote)}]|${escapeRegExp(s.delimiter)}`);
  const quotes = new RegExp(escapeRegExp(s.quote), 'g');
  const doubled = s.quote + s.quote;
  const field = (cell: Cell): string => {
    if (cell === null) return '';
    const text = typeof cell === 'number' ? String(cell) : neutralizeCell(cell);
    return needsQuotes.test(text) ? s.quote + text.replace(quotes, doubled) + s.quote : text;
  };
  const line = (cells: Cell[]): string => {
    if (cells.length === 0) return '';
    const text = cells.map(field).join(s.delimiter);
    // A line with one empty field is a blank line, which readers skip: quote it to keep the record.
    return (text === '' ? doubled : text) + s.eol;
  };
  let headed = !s.header;
  const head = () => {
    if (headed || !table.columns) return '';
    headed = true;
    return line(table.columns);
  };
  return {
    start: () => (s.bom ? '\uFEFF' : '') + head(),
    record(record) {
      const cells = table.cells(record);
      return head() + line(cells);
    },
    end: () => '',
  };
}

// Characters XML 1.0 does not allow at all (they are dropped: no escape can carry them), and lone surrogates.
const NOT_XML_CHAR = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const XML_SPECIAL = /[&<>\r]/g;
const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '\r': '&#13;' };
const XML_NEEDS_WORK = /[&<>\r\u0000-\u0008\u000B\u000C\u000E-\u001F\uD800-\uDFFF\uFFFE\uFFFF]/;

function xmlText(text: string): string {
  if (!XML_NEEDS_WORK.test(text)) return text;
  // A raw CR would reach the reader as LF (XML normalizes line ends), so it is written as a reference.
  return text.replace(NOT_XML_CHAR, '').replace(XML_SPECIAL, (c) => XML_ESCAPES[c]!);
}

/** Keys seen before and their element names; bounded, since records with free-form keys could grow it forever. */
const xmlNames = new Map<string, string>();

/**
 * A record key as an element name. A key that is not an XML name is made one rather than refused, because
 * free-form keys (product attributes like "size EU") would otherwise fail a whole export: each character that
 * cannot be in a name becomes _, and _ goes in front of one that cannot start it ("1st" → "_1st").
 */
export function xmlElementName(key: string): string {
  let name = xmlNames.get(key);
  if (name !== undefined) return name;
  if (XML_NAME.test(key)) name = key;
  else {
    name = key.replace(NOT_NAME_CHAR, '_');
    if (!XML_NAME.test(name)) name = `_${name}`;
  }
  if (xmlNames.size >= 10_000) xmlNames.clear();
  xmlNames.set(key, name);
  return name;
}

function xmlElement(name: string, v: unknown, depth: number): string {
  if (v === undefined) return '';
  if (Array.isArray(v)) {
    // Repeated elements, as a reader of the file expects a list; a list directly inside a list has no element
    // name of its own and goes as JSON text.
    let out = '';
    for (const item of v) out += Array.isArray(item) ? `<${name}>${xmlText(JSON.stringify(item))}</${name}>` : xmlElement(name, item, depth);
    return out;
  }
  if (isPlainObject(v)) {
    const inner = depth < MAX_DEPTH ? xmlChildren(v, depth + 1) : xmlText(JSON.stringify(v));
    return inner === '' ? `<${name}/>` : `<${name}>${inner}</${name}>`;
  }
  const cell = cellOf(v);
  return cell === null || cell === '' ? `<${name}/>` : `<${name}>${xmlText(String(cell))}</${name}>`;
}

function xmlChildren(obj: Rec, depth: number): string {
  let out = '';
  for (const key of Object.keys(obj)) out += xmlElement(xmlElementName(key), obj[key], depth);
  return out;
}

function xmlEncoder(s: XmlSettings): Encoder {
  return {
    start: () => `${s.declaration ? '<?xml version="1.0" encoding="UTF-8"?>\n' : ''}<${s.root}>\n`,
    record(record) {
      const inner = xmlChildren(record, 0);
      return inner === '' ? `<${s.record}/>\n` : `<${s.record}>${inner}</${s.record}>\n`;
    },
    end: () => `</${s.root}>\n`,
  };
}

type AnyIterator = Iterator<unknown> | AsyncIterator<unknown>;

function iteratorOf(records: RecordSource): AnyIterator {
  const r = records as Partial<AsyncIterable<Rec> & Iterable<Rec>>;
  const it = r[Symbol.asyncIterator]?.() ?? r[Symbol.iterator]?.();
  if (!it) throw new TypeError('records must be iterable');
  return it;
}

/** Stops the source early (a generator's finally blocks run); its own failure to stop is of no use to anyone. */
function release(it: AnyIterator | null): void {
  if (!it?.return) return;
  Promise.resolve()
    .then(() => it.return!())
    .catch(() => {});
}

function withStats(stream: Readable, stats: WriteStats): ExportStream {
  return Object.defineProperty(stream, 'stats', { value: stats, enumerable: true }) as ExportStream;
}

function textStream(records: RecordSource, encoder: Encoder, stats: WriteStats): ExportStream {
  let it: AnyIterator | null = null;
  let busy = false;
  const stream = new Readable({
    read() {
      if (busy) return;
      busy = true;
      void fill();
    },
    destroy(err, callback) {
      release(it);
      callback(err);
    },
  });

  /** Encodes records until a chunk's worth of text is ready (or the records end), then pushes it. */
  async function fill(): Promise<void> {
    let text = '';
    try {
      if (!it) {
        it = iteratorOf(records);
        text = encoder.start();
      }
      while (text.length < CHUNK_CHARS) {
        const step = await it.next();
        if (stream.destroyed) return;
        if (step.done) {
          text += encoder.end();
          if (text !== '') stream.push(Buffer.from(text, 'utf8'));
          stream.push(null);
          return;
        }
        stats.records++;
        text += encoder.record(checkRecord(step.value, stats.records));
      }
    } catch (err) {
      stream.destroy(err as Error);
      return;
    }
    busy = false;
    stream.push(Buffer.from(text, 'utf8'));
  }

  return withStats(stream, stats);
}

// ------------------------------------------------------------------------------------------------- xlsx

// Characters a cell cannot hold as XML text: controls are dropped (exceljs would drop them silently too), and a CR
// is made the LF that an XML parser would make of it anyway, so the result is the same in every reader. Excel's own
// _xHHHH_ escapes would keep them, but exceljs' streaming reader (readXlsx) does not undo those escapes.
const NOT_CELL_CHAR = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F\uFFFE\uFFFF]/g;
const CR = /\r\n?/g;

/** Cell text made safe: controls dropped first, so that none can hide a formula from neutralizeCell. */
function excelText(text: string, stats: WriteStats): string {
  text = neutralizeCell(text.replace(NOT_CELL_CHAR, '')).replace(CR, '\n');
  if (text.length <= EXCEL_MAX_CHARS) return text;
  stats.truncatedCells++;
  return text.slice(0, EXCEL_MAX_CHARS - (/[\uD800-\uDBFF]/.test(text[EXCEL_MAX_CHARS - 1]!) ? 1 : 0));
}

/**
 * A cell as exceljs writes it. Text goes as rich text because that is what exceljs writes as an inline string
 * (t="inlineStr"); plain strings it would write as t="str", which is a formula's cached result. Never a formula.
 */
function excelValue(cell: Cell, stats: WriteStats): ExcelJS.CellValue {
  if (cell === null || cell === '') return null;
  if (typeof cell === 'number') return cell;
  return { richText: [{ text: excelText(cell, stats) }] };
}

/** Resolves once `stream` has room (its 'drain'), or it or `out` (the export, whose consumer may leave) is gone. */
function drained(stream: Writable, out: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      out.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    if (out !== stream) out.on('close', done);
  });
}

/** Text the sheet's compressor may hold before rows wait for it (it is compressed 64 KiB at a time). */
const MAX_UNCOMPRESSED = 1024 * 1024;

/**
 * The compressor of the sheet's part inside exceljs' zip. exceljs writes the sheet's XML into it without waiting
 * (its StreamBuf ignores what write() returns), so when compression falls behind (it runs on the thread pool, which
 * a busy process shares) the text piles up there: 22 MB over 80,000 rows with the pool kept busy. Not part of
 * exceljs' API: when it is not where expected, only the output is waited for.
 */
function compressorOf(sheet: ExcelJS.Worksheet): { stream: Writable; pending(): number } | null {
  const pipes = (sheet as unknown as { _stream?: { pipes?: unknown[] } })._stream?.pipes;
  // archiver's own stream (readable-stream's, which has no writableLength): what is written and not yet read.
  const first = pipes?.[0] as (Writable & { _writableState?: { length?: number }; _readableState?: { length?: number } }) | undefined;
  if (!first || typeof first.on !== 'function' || typeof first._writableState?.length !== 'number') return null;
  return { stream: first, pending: () => (first._writableState?.length ?? 0) + (first._readableState?.length ?? 0) };
}

/** Resolves once the consumer has taken enough of what is written, and the compressor caught up, that more may be produced. */
function room(out: PassThrough, sheet: ExcelJS.Worksheet): Promise<void> {
  return new Promise((resolve) => {
    // A turn of the event loop first: compression runs on the thread pool and reaches `out` only between turns.
    setImmediate(async () => {
      const zip = compressorOf(sheet);
      if (zip && zip.pending() > MAX_UNCOMPRESSED && !zip.stream.destroyed && !out.destroyed) await drained(zip.stream, out);
      if (out.writableNeedDrain && !out.destroyed) await drained(out, out);
      resolve();
    });
  });
}

interface ZipArchive {
  on(event: 'error', listener: (err: Error) => void): void;
  abort(): void;
}

/**
 * exceljs' streaming writer does not wait for its output (its buffers take whatever is written), so it is paced
 * here instead: rows are added while the consumer keeps up, and production waits while `out` is full.
 * useSharedStrings is off because the shared-strings table holds every distinct text until the end.
 */
function xlsxStream(records: RecordSource, s: XlsxSettings, stats: WriteStats): ExportStream {
  const out = new PassThrough();
  const book = new ExcelJS.stream.xlsx.WorkbookWriter({ stream: out, useSharedStrings: false, useStyles: false });
  const zip = (book as unknown as { zip: ZipArchive }).zip;
  const sheet = book.addWorksheet(s.sheetName);
  const table = new Tabulator(s.columns, stats);
  let it: AnyIterator | null = null;
  let rows = 0;
  let headed = !s.header;

  const addRow = (cells: Cell[]) => {
    if (++rows > EXCEL_MAX_ROWS) {
      const message = `An XLSX sheet holds at most ${EXCEL_MAX_ROWS} rows; export fewer records, or as CSV`;
      throw new HubError('validation_failed', message, { errors: [{ field: '/records', code: 'too_many_rows', message }] });
    }
    sheet.addRow(cells.map((c) => excelValue(c, stats))).commit();
  };
  const head = () => {
    if (headed || !table.columns) return;
    headed = true;
    addRow(table.columns);
  };

  async function produce(): Promise<void> {
    it = iteratorOf(records);
    try {
      head();
      for (;;) {
        const step = await it.next();
        if (out.destroyed) return;
        if (step.done) break;
        stats.records++;
        const cells = table.cells(checkRecord(step.value, stats.records));
        head();
        addRow(cells);
        if (stats.records % XLSX_PACE_ROWS === 0) await room(out, sheet);
        if (out.destroyed) return;
      }
    } finally {
      // The consumer may have gone before the first record was asked for, when there was nothing to release yet.
      if (out.destroyed) release(it);
    }
    sheet.commit();
    await book.commit();
  }

  zip.on('error', (err) => out.destroy(err));
  out.on('close', () => {
    if (!out.writableFinished) {
      zip.abort();
      release(it);
    }
  });
  // Started on the next turn, so that the caller has attached its listeners before anything can fail.
  setImmediate(() =>
    produce().catch((err: unknown) => {
      zip.abort();
      out.destroy(err as Error);
    }),
  );
  return withStats(out, stats);
}
