// The file readers of the scheduled file exchange: CSV, XML and XLSX read as the file streams in, all giving the
// same ReadItem stream (types.ts), so the exchange picks a reader by the file's format and runs one loop.
import type { Readable } from 'node:stream';
import { readCsv } from './csv.ts';
import { optionError } from './failure.ts';
import type { CsvOptions, ReadItem, XlsxOptions, XmlOptions } from './types.ts';
import { readXlsx } from './xlsx.ts';
import { readXml } from './xml.ts';

export { readCsv } from './csv.ts';
export { readXml } from './xml.ts';
export { readXlsx } from './xlsx.ts';
export type { CsvOptions, FileFormat, ReadItem, RecordError, SourceError, SourceRecord, TextRecord, XlsxOptions, XmlOptions } from './types.ts';

/** A format with its options, as an exchange's configuration names them. */
export type FileSpec =
  | { format: 'csv'; options?: CsvOptions }
  | { format: 'xml'; options: XmlOptions }
  | { format: 'xlsx'; options?: XlsxOptions };

/** Reads `input` with the reader of `spec.format`; options are checked before any byte is read. */
export function readFile(input: Readable, spec: FileSpec): AsyncIterable<ReadItem> {
  switch (spec.format) {
    case 'csv':
      return readCsv(input, spec.options);
    case 'xml':
      return readXml(input, spec.options);
    case 'xlsx':
      return readXlsx(input, spec.options);
    default:
      // Specs come from stored exchange configuration, which the type system does not check.
      throw optionError('format', `format must be csv, xml or xlsx, not ${JSON.stringify((spec as { format: unknown }).format)}`);
  }
}
