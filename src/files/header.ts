// The column names of a table file (CSV, XLSX), settled once from the header row before any record is read. Every
// record becomes { [name]: text }, so a blank or repeated name would silently lose values, and a missing required
// column would fail every row the same way: all three stop the file up front, with the names spelled out.
import { fileFailure, optionError, rowField } from './failure.ts';

function list(names: string[]): string {
  return names.map((n) => JSON.stringify(n)).join(', ');
}

function duplicates(names: string[]): string[] {
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const n of names) (seen.has(n) ? twice : seen).add(n);
  return [...twice];
}

/** A list-of-column-names option (columns, requiredColumns): names trimmed, none blank. */
export function checkNames(option: string, names: unknown): string[] | undefined {
  if (names === undefined) return undefined;
  if (!Array.isArray(names) || names.some((n) => typeof n !== 'string' || n.trim() === '')) {
    throw optionError(option, `${option} must be a list of non-blank column names`);
  }
  return names.map((n: string) => n.trim());
}

/** The `columns` option: names the caller gives, checked like a header before any byte is read. */
export function checkColumnsOption(columns: string[] | undefined): string[] | undefined {
  const dup = columns ? duplicates(columns) : [];
  if (dup.length > 0) throw optionError('columns', `columns names ${list(dup)} more than once`);
  return columns;
}

/**
 * Sets one field of a record. Plain assignment would make a column named "__proto__" replace the record's
 * prototype instead of holding a value.
 */
export function setField(record: Record<string, string>, name: string, value: string): void {
  if (name === '__proto__') Object.defineProperty(record, name, { value, enumerable: true, writable: true, configurable: true });
  else record[name] = value;
}

export interface HeaderSpec {
  /** Names that replace the header's, one for one. */
  columns?: string[];
  requiredColumns?: string[];
}

/**
 * The names records are keyed by, from the header row's cells (`row` is where it is, for the errors). `hint` is
 * added to a missing-columns message (a CSV reader's guess that the delimiter is wrong).
 */
export function resolveColumns(header: string[], row: number, spec: HeaderSpec, hint = ''): string[] {
  let names: string[];
  if (spec.columns) {
    if (spec.columns.length !== header.length) {
      throw fileFailure({
        row,
        column: null,
        code: 'column_count',
        message: `The header has ${header.length} columns but ${spec.columns.length} column names were given to replace them`,
      });
    }
    names = spec.columns;
  } else {
    names = header.map((h, i) => (i === 0 ? h.replace(/^\uFEFF/, '') : h).trim());
    const blank = names.indexOf('');
    if (blank >= 0) {
      throw fileFailure({
        row,
        column: null,
        code: 'blank_column',
        message: `Header column ${blank + 1} has no name; every column needs one (the header is ${list(names)})`,
      });
    }
    const dup = duplicates(names);
    if (dup.length > 0) {
      const message = `The header names ${list(dup)} more than once; each column needs its own name`;
      throw fileFailure(
        { row, column: dup[0]!, code: 'duplicate_column', message },
        { errors: dup.map((d) => ({ field: rowField(null, d), code: 'duplicate_column', message: `The column ${JSON.stringify(d)} appears more than once` })) },
      );
    }
  }
  const missing = (spec.requiredColumns ?? []).filter((r) => !names.includes(r));
  if (missing.length > 0) {
    const message = `The header lacks the required column${missing.length > 1 ? 's' : ''} ${list(missing)}; it has ${list(names)}${hint}`;
    throw fileFailure(
      { row, column: missing[0]!, code: 'missing_columns', message },
      { errors: missing.map((m) => ({ field: rowField(null, m), code: 'missing_column', message: `The required column ${JSON.stringify(m)} is missing` })) },
    );
  }
  return names;
}
