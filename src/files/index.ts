// The file readers of the scheduled file exchange: CSV, XML and XLSX read as the file streams in, all giving the
// same ReadItem stream (types.ts), so the exchange picks a reader by the file's format and runs one loop.
import type { Readable } from 'node:stream';
import { chunksOfOne } from './chunks.ts';
import { readCsv, readCsvChunks } from './csv.ts';
import { optionError } from './failure.ts';
import type { CsvOptions, ReadItem, XlsxOptions, XmlOptions } from './types.ts';
import { readXlsx } from './xlsx.ts';
import { readXml, readXmlChunks } from './xml.ts';

export { readCsv } from './csv.ts';
export { readXml } from './xml.ts';
export { readXlsx } from './xlsx.ts';
export type { CsvOptions, FileFormat, ReadItem, RecordError, SourceError, SourceRecord, TextRecord, XlsxOptions, XmlOptions } from './types.ts';

/** A format with its options, as an exchange's configuration names them. */
export type FileSpec =
  | { format: 'csv'; options?: CsvOptions }
  | { format: 'xml'; options: XmlOptions }
  | { format: 'xlsx'; options?: XlsxOptions };

/** As readFile, the items of a chunk of the file at a time (XLSX rows come one at a time). */
export function readFileChunks(input: Readable, spec: FileSpec): AsyncIterable<ReadItem[]> {
  if (spec.format === 'csv') return readCsvChunks(input, spec.options);
  if (spec.format === 'xml') return readXmlChunks(input, spec.options);
  return chunksOfOne(readFile(input, spec));
}

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
