// The one shape every file reader (CSV, XML, XLSX) gives its caller, so the coming scheduled file exchange can
// apply any format with the same loop: records and per-record errors arrive in file order on one async iterable,
// and a problem that stops the whole file is thrown as a HubError instead.

export type FileFormat = 'csv' | 'xml' | 'xlsx';

/** A record as a table row gives it: every value text, as a mapping expects; an empty cell is ''. */
export type TextRecord = Record<string, string>;

/** Why a record, or the file, could not be read. */
export interface RecordError {
  /** As SourceRecord.row; null when the problem is not in any one record (an unreadable header, a broken source). */
  row: number | null;
  /** The column (CSV/XLSX header name) at fault, when one is. */
  column: string | null;
  code: string;
  message: string;
}

/** One record read from the file. */
export interface SourceRecord<V = Record<string, unknown>> {
  kind: 'record';
  /**
   * 1-based. CSV: the line the record starts on, counting the header. XLSX: the sheet row number. XML: the
   * ordinal of the record element.
   */
  row: number;
  /** CSV/XLSX: { [header]: text }. XML: the record element as fast-xml-parser gives it (see xml.ts). */
  value: V;
}

/**
 * One record that could not be read while the rest of the file can (a CSV row with the wrong number of fields).
 * It is an item rather than a throw so that a "keep the good rows, report the bad" policy sees every row.
 */
export interface SourceError {
  kind: 'error';
  row: number;
  error: RecordError;
}

/**
 * What a reader yields, in file order. A failure of the file as a whole (bad quoting, invalid UTF-8, a DOCTYPE,
 * a truncated or corrupt file, a failing source) is thrown from the iterator as HubError 'validation_failed'
 * with `extra.fileError: RecordError`; the items yielded before it stay valid, and the caller decides whether a
 * partly read file is applied (keep-good) or not at all (reject-all).
 */
export type ReadItem<V = Record<string, unknown>> = SourceRecord<V> | SourceError;

export interface CsvOptions {
  /** Default ','; ';' and '\t' are common. */
  delimiter?: string;
  /** Default '"'; a quote inside a quoted field is written twice. */
  quote?: string;
  /**
   * Default 'utf-8', where invalid bytes stop the file rather than turn into replacement characters. 'latin1' is
   * ISO-8859-1: every byte is the character of that code, so bytes 0x80-0x9F are control characters, not the
   * Windows-1252 € and curly quotes.
   */
  encoding?: 'utf-8' | 'latin1';
  /** Default true: the first row names the columns. */
  header?: boolean;
  /** The column names when `header` is false; with a header, names that replace the header's (same count). */
  columns?: string[];
  /** Checked against the header before any record is read; missing ones stop the file, all named at once. */
  requiredColumns?: string[];
}

export interface XmlOptions {
  /** The repeating record element as a path of element names from the root, e.g. 'Orders/Order'. */
  recordPath: string;
  /** Element names that are always arrays inside a record, e.g. ['Line']. */
  isArray?: string[];
}

export interface XlsxOptions {
  /** A sheet name or 1-based position in the workbook; default the first sheet. */
  sheet?: string | number;
  requiredColumns?: string[];
}
