// Columns of the test TablesDB: how each type is created, shown (the spec's column* models) and enforced on row writes.
// Messages follow utopia-php/database 3.5.0 (Validator/Structure.php), which Appwrite 1.8.1 wraps as row_invalid_structure.
import { fail, type ErrorType } from './errors.ts';

export type ColumnKind =
  | 'string' | 'varchar' | 'text' | 'mediumtext' | 'longtext'
  | 'integer' | 'float' | 'boolean' | 'datetime' | 'email' | 'enum' | 'url';

export const COLUMN_KINDS: readonly ColumnKind[] = [
  'string', 'varchar', 'text', 'mediumtext', 'longtext', 'integer', 'float', 'boolean', 'datetime', 'email', 'enum', 'url',
];

export interface Column {
  key: string;
  kind: ColumnKind;
  required: boolean;
  array: boolean;
  size: number;
  min?: number | bigint;
  max?: number | bigint;
  default: unknown;
  elements?: string[];
  encrypt?: boolean;
  createdAt: string;
  updatedAt: string;
  /** Appwrite creates columns in a worker: the create response says `processing`, later reads say `available`. */
  announced: boolean;
}

// Fixed sizes of the text types (Appwrite Attributes/{Text,Mediumtext,Longtext}/Create.php).
const TEXT_SIZES: Partial<Record<ColumnKind, number>> = { text: 65535, mediumtext: 16777215, longtext: 4294967295 };
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const KEY = /^[A-Za-z0-9][A-Za-z0-9._-]{0,35}$/;

/**
 * MariaDB compares utf8mb4 text with a case- and accent-insensitive collation (utf8mb4_general_ci, the default
 * for the charset Appwrite's databases use), so equality, LIKE, ORDER BY and unique indexes all ignore case.
 */
export function foldText(text: string): string {
  return text.normalize('NFD').replace(/\p{M}+/gu, '').toLowerCase();
}

/** Appwrite's datetime output: UTC with milliseconds and an explicit `+00:00` offset. */
export function formatDatetime(ms: number): string {
  return new Date(ms).toISOString().replace('Z', '+00:00');
}

export function nowIso(): string {
  return formatDatetime(Date.now());
}

const DATETIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?(Z|[+-]\d{2}:?\d{2})?$/;

/** Milliseconds for a datetime string Appwrite would accept (no offset means UTC, as PHP runs in UTC), else null. */
export function parseDatetime(value: unknown): number | null {
  if (typeof value !== 'string') return null;
  const m = DATETIME.exec(value.trim());
  if (!m) return null;
  let iso = `${m[1]}-${m[2]}-${m[3]}T${m[4] ?? '00'}:${m[5] ?? '00'}:${m[6] ?? '00'}.${(m[7] ?? '0').padEnd(3, '0').slice(0, 3)}`;
  const zone = m[8] ?? 'Z';
  iso += zone === 'Z' ? 'Z' : zone.includes(':') ? zone : `${zone.slice(0, 3)}:${zone.slice(3)}`;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : ms;
}

export function isValidKey(key: unknown): key is string {
  return typeof key === 'string' && KEY.test(key);
}

/** A column from a create-column body (the spec's tablesDBCreate*Column request bodies). */
export function defineColumn(kind: ColumnKind, body: Record<string, unknown>): Column {
  const key = body.key;
  if (!isValidKey(key)) fail('general_argument_invalid', 'Invalid `key` param: Key must contain at most 36 chars. Valid chars are a-z, A-Z, 0-9, period, hyphen, and underscore. Can\'t start with a special char');
  const required = body.required === true;
  const array = body.array === true;
  const def = body.default ?? null;
  const now = nowIso();
  const column: Column = { key, kind, required, array, size: 0, default: def, createdAt: now, updatedAt: now, announced: false };
  if (kind === 'string' || kind === 'varchar') {
    const size = Number(body.size);
    const max = kind === 'varchar' ? 16381 : 1073741824;
    if (!Number.isInteger(size) || size < 1 || size > max) fail('general_argument_invalid', `Invalid \`size\` param: Value must be a valid range between 1 and ${max}`);
    column.size = size;
  } else if (TEXT_SIZES[kind] !== undefined) {
    column.size = TEXT_SIZES[kind]!;
  }
  if (kind === 'string' || kind === 'varchar' || TEXT_SIZES[kind] !== undefined) column.encrypt = body.encrypt === true;
  if (kind === 'enum') {
    const elements = body.elements as string[];
    if (!Array.isArray(elements) || elements.length === 0) fail('general_argument_invalid', 'Invalid `elements` param: Value must be a valid array');
    column.elements = elements;
  }
  if (kind === 'integer' || kind === 'float') {
    // Appwrite fills absent bounds with PHP_INT_MIN/PHP_INT_MAX (integers) or ±PHP_FLOAT_MAX (floats).
    column.min = (body.min as number | null | undefined) ?? (kind === 'integer' ? INT64_MIN : -Number.MAX_VALUE);
    column.max = (body.max as number | null | undefined) ?? (kind === 'integer' ? INT64_MAX : Number.MAX_VALUE);
    if (Number(column.min) > Number(column.max)) fail('column_value_invalid', 'Minimum value must be lesser than maximum value');
  }
  if (required && def !== null) fail('column_default_unsupported', 'Cannot set default value for required column');
  if (array && def !== null) fail('column_default_unsupported', 'Cannot set default value for array columns');
  if (def !== null) {
    const problem = checkScalar(column, def);
    if (problem) fail('column_value_invalid', problem);
    column.default = normalizeScalar(column, def);
  }
  return column;
}

/** The spec's column* response model for a column. */
export function columnModel(column: Column): Record<string, unknown> {
  const status = column.announced ? 'available' : 'processing';
  const out: Record<string, unknown> = {
    key: column.key,
    type: modelType(column.kind),
    status,
    error: '',
    required: column.required,
    array: column.array,
    $createdAt: column.createdAt,
    $updatedAt: column.updatedAt,
  };
  switch (column.kind) {
    case 'string':
    case 'varchar':
      Object.assign(out, { size: column.size, default: column.default, encrypt: column.encrypt ?? false });
      break;
    case 'text':
    case 'mediumtext':
    case 'longtext':
      Object.assign(out, { default: column.default, encrypt: column.encrypt ?? false });
      break;
    case 'integer':
    case 'float':
      Object.assign(out, { min: column.min, max: column.max, default: column.default });
      break;
    case 'enum':
      Object.assign(out, { elements: column.elements, format: 'enum', default: column.default });
      break;
    case 'email':
    case 'url':
    case 'datetime':
      Object.assign(out, { format: column.kind, default: column.default });
      break;
    case 'boolean':
      out.default = column.default;
      break;
  }
  return out;
}

function modelType(kind: ColumnKind): string {
  if (kind === 'float') return 'double';
  if (kind === 'email' || kind === 'enum' || kind === 'url') return 'string';
  return kind;
}

export function isTextKind(kind: ColumnKind): boolean {
  return !['integer', 'float', 'boolean'].includes(kind);
}

/** Why a single (non-array) value does not fit the column, or null. */
export function checkScalar(column: Column, value: unknown): string | null {
  const label = `Attribute "${column.key}" has invalid ${['email', 'enum', 'url', 'integer', 'float'].includes(column.kind) ? 'format' : 'type'}.`;
  switch (column.kind) {
    case 'integer': {
      if (typeof value !== 'number' || !Number.isInteger(value)) return `${label} Value must be a valid integer`;
      return inRange(value, column) ? null : `${label} Value must be a valid range between ${column.min} and ${column.max}`;
    }
    case 'float':
      if (typeof value !== 'number' || !Number.isFinite(value)) return `${label} Value must be a valid float`;
      return inRange(value, column) ? null : `${label} Value must be a valid range between ${column.min} and ${column.max}`;
    case 'boolean':
      return typeof value === 'boolean' ? null : `${label} Value must be a valid boolean`;
    case 'datetime':
      return parseDatetime(value) !== null ? null : `${label} Value must be valid date between 0000-01-01 00:00:00 and 9999-12-31 23:59:59.`;
    case 'email':
      return typeof value === 'string' && /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value) ? null : `${label} Value must be a valid email address`;
    case 'url':
      return typeof value === 'string' && isUrl(value) ? null : `${label} Value must be a valid URL`;
    case 'enum':
      return typeof value === 'string' && column.elements!.includes(value) ? null : `${label} Value must be one of (${column.elements!.join(', ')})`;
    default:
      if (typeof value !== 'string' || [...value].length > column.size) return `${label} Value must be a valid string and no longer than ${column.size} chars`;
      return null;
  }
}

function inRange(value: number, column: Column): boolean {
  return value >= Number(column.min) && value <= Number(column.max);
}

function isUrl(value: string): boolean {
  try {
    return Boolean(new URL(value).host) || value.includes('://');
  } catch {
    return false;
  }
}

/** Stored form of a valid value: datetimes are rewritten as `…+00:00`. */
export function normalizeScalar(column: Column, value: unknown): unknown {
  if (column.kind === 'datetime' && typeof value === 'string') return formatDatetime(parseDatetime(value)!);
  return value;
}

/**
 * Checks a full row (after merging a patch) against the columns, like utopia's Structure validator, and returns the
 * normalized row data. Throws row_invalid_structure (or `structureError` inside a transaction commit).
 */
export function checkRow(
  columns: Column[],
  data: Record<string, unknown>,
  structureError: ErrorType = 'row_invalid_structure',
): Record<string, unknown> {
  const invalid = (message: string): never => fail(structureError, `Invalid document structure: ${message}`);
  const byKey = new Map(columns.map((c) => [c.key, c]));
  for (const key of Object.keys(data)) if (!byKey.has(key)) invalid(`Unknown attribute: "${key}"`);
  const out: Record<string, unknown> = {};
  for (const column of columns) {
    const value = data[column.key];
    if (column.required && (value === undefined || value === null)) invalid(`Missing required attribute "${column.key}"`);
    if (value === undefined || value === null) {
      out[column.key] = null;
      continue;
    }
    if (column.array) {
      if (!Array.isArray(value)) invalid(`Attribute "${column.key}" must be an array`);
      out[column.key] = (value as unknown[]).map((child, i) => {
        if (child === null && !column.required) return null;
        const problem = checkScalar(column, child);
        if (problem) invalid(problem.replace(`"${column.key}"`, `"${column.key}['${i}']"`));
        return normalizeScalar(column, child);
      });
      continue;
    }
    const problem = checkScalar(column, value);
    if (problem) invalid(problem);
    out[column.key] = normalizeScalar(column, value);
  }
  return out;
}
