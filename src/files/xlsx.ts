// Reads one sheet of an Excel workbook (.xlsx) as the file streams in, row by row, with exceljs' streaming reader;
// the first non-empty row is the header and every later row becomes { [header]: text }, exactly like a CSV
// record, so the same mappings read both. Every value is given as text the way a person reading the sheet would
// type it into a CSV: numbers in their shortest decimal form, dates as ISO 8601, formulas as their cached result,
// rich text as plain text, TRUE/FALSE, an error cell as its code (#N/A), an empty cell as ''.
//
// Dates: a spreadsheet date has no time zone, so it is given as wall time without an offset (2026-11-20, or
// 2026-11-20T09:15:00 when it has a time) and the mapping's timeZone decides what instant it is. Knowing which
// numbers are dates needs the cells' number formats, hence styles: 'cache' (a few kB of styles.xml), not 'ignore'.
//
// exceljs alone can hang or crash on a bad file, so two things are guarded here. A truncated or corrupt zip is
// reported only as an 'error' event on exceljs' internal unzip stream while exceljs itself waits forever for the
// rest of an entry; a failing source is not passed on by the pipe exceljs uses. So the source reaches exceljs
// through a feed stream that watches both, and every wait on exceljs races against them.
import { PassThrough, pipeline, type Readable, type Writable } from 'node:stream';
import type ExcelJS from 'exceljs';
import type { HubError } from '../errors.ts';
import { fileFailure, isFileFailure, optionError, reasonOf, sourceFailure } from './failure.ts';
import { checkNames, resolveColumns, setField } from './header.ts';
import type { ReadItem, TextRecord, XlsxOptions } from './types.ts';

let excelUtils: typeof import('exceljs/lib/utils/utils.js').default | undefined;

/** The parts of exceljs' streaming reader used here (its type declarations leave them out). */
interface SheetReader extends AsyncIterable<ExcelJS.Row> {
  name?: string;
}
interface WorkbookReader extends AsyncIterable<SheetReader> {
  model?: { sheets?: { name: string }[] };
  properties?: { model?: { date1904?: boolean } };
}

interface XlsxSettings {
  sheet: string | number | undefined;
  requiredColumns: string[] | undefined;
}

function settings(options: XlsxOptions): XlsxSettings {
  const { sheet } = options;
  if (sheet !== undefined && !(typeof sheet === 'string' ? sheet !== '' : Number.isInteger(sheet) && sheet >= 1)) {
    throw optionError('sheet', 'sheet must be a sheet name or a position from 1');
  }
  return { sheet, requiredColumns: checkNames('requiredColumns', options.requiredColumns) };
}

/** Reads one sheet of the workbook in `input`; see ReadItem for what arrives and what is thrown. */
export function readXlsx(input: Readable, options: XlsxOptions = {}): AsyncIterable<ReadItem<TextRecord>> {
  return xlsxItems(input, settings(options));
}

/** Hands the source to exceljs and tells `onZip` which stream exceljs pipes it into (its unzipper). */
class Feed extends PassThrough {
  constructor(private readonly onZip: (zip: Writable) => void) {
    super();
  }

  override pipe<T extends NodeJS.WritableStream>(destination: T, options?: { end?: boolean }): T {
    this.onZip(destination as unknown as Writable);
    return super.pipe(destination, options);
  }
}

function corrupt(cause: unknown): HubError {
  return fileFailure(
    { row: null, column: null, code: 'corrupt_file', message: `The file is not a readable Excel workbook (.xlsx): ${reasonOf(cause)}` },
    { cause },
  );
}

async function* xlsxItems(input: Readable, s: XlsxSettings): AsyncGenerator<ReadItem<TextRecord>> {
  let failure: HubError | null = null;
  /** Rejects the wait in progress, if any. */
  let interrupt: ((failure: HubError) => void) | null = null;
  const stop = (f: HubError) => {
    failure ??= f;
    interrupt?.(failure);
  };
  const feed = new Feed((zip) => zip.on('error', (err) => stop(corrupt(err))));
  pipeline(input, feed, (err) => {
    if (err) stop(sourceFailure(err));
  });
  // The next item from exceljs, or the stop if it comes first. Not Promise.race against one long-lived "stopped"
  // promise: each race would leave a reaction on it, one per row, held until the file ends.
  const next = <T>(it: AsyncIterator<T>) =>
    new Promise<IteratorResult<T>>((resolve, reject) => {
      if (failure) return reject(failure);
      interrupt = reject;
      it.next().then(resolve, reject);
    });
  // Loaded with the first workbook: exceljs is some 20 MB of heap that CSV and XML imports never need.
  const { default: excel } = await import('exceljs');
  // exceljs' own date-format test and serial conversion, so a formula's date result reads like a date cell.
  excelUtils ??= (await import('exceljs/lib/utils/utils.js')).default;
  const book = new excel.stream.xlsx.WorkbookReader(feed, {
    sharedStrings: 'cache',
    hyperlinks: 'ignore',
    styles: 'cache',
    worksheets: 'emit',
  }) as unknown as WorkbookReader;

  try {
    let found = false;
    const sheets = book[Symbol.asyncIterator]();
    for (let step = await next(sheets); !step.done; step = await next(sheets)) {
      const sheet = step.value;
      const rows = sheet[Symbol.asyncIterator]();
      if (found || !isWanted(sheet, book, s)) {
        // Read to its end all the same: exceljs only closes and removes a sheet's temporary file once it has been.
        for (let row = await next(rows); !row.done; row = await next(rows));
        continue;
      }
      found = true;
      yield* sheetItems(rows, next, s, book.properties?.model?.date1904 === true);
    }
    if (!found) {
      const names = book.model?.sheets?.map((x) => x.name);
      throw names ? sheetNotFound(s.sheet, names) : corrupt(new Error('it has no workbook part (xl/workbook.xml)'));
    }
  } catch (err) {
    throw isFileFailure(err) ? err : corrupt(err);
  } finally {
    // Also when the caller stops early: the source is released now, and exceljs, left waiting, is dropped.
    input.destroy();
    feed.destroy();
  }
}

function sheetNotFound(wanted: string | number | undefined, names: string[]): HubError {
  const message =
    names.length === 0
      ? 'The workbook has no sheets'
      : `The workbook has no sheet ${typeof wanted === 'number' ? wanted : `named ${JSON.stringify(wanted)}`}; its sheets are ${names.map((n) => JSON.stringify(n)).join(', ')}`;
  return fileFailure({ row: null, column: null, code: 'sheet_not_found', message });
}

/** Whether `sheet` is the one asked for; throws as soon as the workbook's sheet list shows it is not there. */
function isWanted(sheet: SheetReader, book: WorkbookReader, s: XlsxSettings): boolean {
  const names = book.model?.sheets?.map((x) => x.name);
  if (!names) {
    // The sheet list (xl/workbook.xml) comes after this sheet in the zip, so its name is not known yet.
    if (s.sheet === undefined) return true;
    throw fileFailure({
      row: null,
      column: null,
      code: 'sheet_not_found',
      message: 'This workbook stores its list of sheets after the sheets themselves, so a sheet cannot be picked by name or position while reading it; read its first sheet (no sheet option) or save it again with Excel',
    });
  }
  const wanted = s.sheet === undefined ? names[0] : typeof s.sheet === 'number' ? names[s.sheet - 1] : names.find((n) => n === s.sheet);
  if (wanted === undefined) throw sheetNotFound(s.sheet, names);
  return sheet.name === wanted;
}

async function* sheetItems(
  rows: AsyncIterator<ExcelJS.Row>,
  next: <T>(it: AsyncIterator<T>) => Promise<IteratorResult<T>>,
  s: XlsxSettings,
  date1904: boolean,
): AsyncGenerator<ReadItem<TextRecord>> {
  let names: string[] | null = null;
  for (let step = await next(rows); !step.done; step = await next(rows)) {
    const row = step.value;
    const texts: string[] = [];
    for (let c = 1; c <= row.cellCount; c++) texts.push(cellText(row.getCell(c), date1904));
    // Formatted but empty cells make exceljs give rows and cells that hold nothing.
    while (texts.length > 0 && texts[texts.length - 1] === '') texts.pop();
    if (texts.length === 0) continue;
    if (names === null) {
      names = resolveColumns(texts, row.number, s);
      continue;
    }
    if (texts.length > names.length) {
      const message = `Row ${row.number} has a value in column ${columnLetters(texts.length)}, beyond the header's ${names.length} columns`;
      yield { kind: 'error', row: row.number, error: { row: row.number, column: null, code: 'field_count', message } };
      continue;
    }
    const value: TextRecord = {};
    for (let i = 0; i < names.length; i++) setField(value, names[i]!, texts[i] ?? '');
    yield { kind: 'record', row: row.number, value };
  }
}

function columnLetters(n: number): string {
  let letters = '';
  for (; n > 0; n = Math.floor((n - 1) / 26)) letters = String.fromCharCode(65 + ((n - 1) % 26)) + letters;
  return letters;
}

/** A date as the wall time it shows: the date alone at midnight, else to the second (or millisecond). */
function wallTime(date: Date): string {
  if (Number.isNaN(date.getTime())) return '';
  const iso = date.toISOString();
  if (iso.endsWith('T00:00:00.000Z')) return iso.slice(0, 10);
  return iso.slice(0, iso.endsWith('.000Z') ? 19 : 23);
}

function cellText(cell: ExcelJS.Cell, date1904: boolean): string {
  const v = cell.value;
  if (v !== null && typeof v === 'object' && !(v instanceof Date) && ('formula' in v || 'sharedFormula' in v)) {
    const result = v.result;
    // A cached error result reaches exceljs' streaming reader as NaN: there is nothing to give but ''.
    if (typeof result === 'number') {
      if (Number.isNaN(result)) return '';
      if (excelUtils!.isDateFmt(cell.numFmt)) return wallTime(excelUtils!.excelToDate(result, date1904));
    }
    return valueText(result);
  }
  return valueText(v);
}

function valueText(v: ExcelJS.CellValue): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  if (typeof v === 'boolean') return v ? 'TRUE' : 'FALSE';
  if (v instanceof Date) return wallTime(v);
  if ('richText' in v) return v.richText.map((r) => r.text ?? '').join('');
  if ('error' in v) return v.error;
  if ('text' in v) return valueText(v.text);
  return '';
}
