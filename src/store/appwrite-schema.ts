// The Appwrite TablesDB layout of the hub's tables, derived from the table schemas: what appwrite.json declares
// (npm run appwrite:schema) and what the Appwrite store provisions. One derivation, so the two cannot disagree.
import { createHash } from 'node:crypto';
import { TABLE_SPECS, type ColumnSpec, type TableSpec } from '../schemas/tables.ts';

export const DEFAULT_DATABASE_ID = 'hub';

/** Longest varchar Appwrite 1.8 accepts (spec: createVarcharColumn `size`). */
const MAX_VARCHAR = 16381;

export interface AppwriteColumn {
  key: string;
  type: 'varchar' | 'longtext' | 'integer' | 'float' | 'boolean' | 'enum';
  required: boolean;
  array: false;
  size?: number;
  elements?: string[];
}

export interface AppwriteIndex {
  key: string;
  type: 'key' | 'unique';
  columns: string[];
  orders: ('asc' | 'desc')[];
}

export interface AppwriteTable {
  $id: string;
  $permissions: string[];
  databaseId: string;
  name: string;
  enabled: true;
  rowSecurity: false;
  columns: AppwriteColumn[];
  indexes: AppwriteIndex[];
}

/** Our `id` is Appwrite's `$id`; every other column is stored under its own name. */
export function appwriteField(field: string): string {
  return field === 'id' ? '$id' : field;
}

/**
 * Column types. Timestamps are varchar, not Appwrite datetime: Appwrite rewrites datetimes as `+00:00`, and the
 * hub compares and pages on the exact ISO strings it wrote. JSON objects and arrays are stored as text.
 */
function columnOf(col: ColumnSpec): AppwriteColumn {
  const required = col.required && !col.nullable;
  switch (col.kind) {
    case 'integer':
      return { key: col.name, type: 'integer', required, array: false };
    case 'real':
      return { key: col.name, type: 'float', required, array: false };
    case 'boolean':
      return { key: col.name, type: 'boolean', required, array: false };
    case 'json':
      return { key: col.name, type: 'longtext', required, array: false };
    case 'text':
      if (col.enum) return { key: col.name, type: 'enum', required, array: false, elements: col.enum };
      if (col.maxLength !== undefined && col.maxLength <= MAX_VARCHAR) return { key: col.name, type: 'varchar', required, array: false, size: col.maxLength };
      return { key: col.name, type: 'longtext', required, array: false };
  }
}

/** Appwrite keys: up to 36 characters of [A-Za-z0-9_-]. */
const MAX_KEY = 36;
const DIGEST = /_[0-9a-f]{8}$/;

/**
 * An index's key: ix_ or uq_ and its columns joined by _. One too long for Appwrite is cut, and ends in a digest
 * of the whole key, so that two long keys sharing a beginning stay two indexes (a bare cut would make the second
 * one's create answer 409, taken for "already there").
 */
export function indexKey(fields: string[], unique: boolean): string {
  const full = `${unique ? 'uq' : 'ix'}_${fields.join('_')}`.replace(/[^A-Za-z0-9_-]/g, '');
  if (full.length <= MAX_KEY) return full;
  return `${full.slice(0, MAX_KEY - 9)}_${createHash('sha256').update(full).digest('hex').slice(0, 8)}`;
}

/**
 * Whether an index key reads as one the hub derives (indexKey), given the table's columns: ix_/uq_ and column names
 * joined by _; at Appwrite's length limit also cut short, with or without the digest (releases before it cut bare).
 */
export function isHubIndexKey(key: string, columns: ReadonlySet<string>): boolean {
  const m = /^(ix|uq)_(.+)$/.exec(key);
  if (!m) return false;
  const cut = key.length === MAX_KEY;
  // Column names may hold underscores themselves: try every way of cutting the rest into known columns. In a cut
  // key the last one may be the beginning of a column's name.
  const splits = (rest: string): boolean => {
    if (columns.has(rest) || (cut && rest !== '' && [...columns].some((c) => c.startsWith(rest)))) return true;
    for (let i = rest.indexOf('_'); i > 0; i = rest.indexOf('_', i + 1)) {
      if (columns.has(rest.slice(0, i)) && splits(rest.slice(i + 1))) return true;
    }
    return false;
  };
  const rest = m[2]!;
  return splits(rest) || (cut && DIGEST.test(rest) && splits(rest.replace(DIGEST, '').replace(/_+$/, '')));
}

export function appwriteTable(spec: TableSpec, databaseId = DEFAULT_DATABASE_ID): AppwriteTable {
  return {
    $id: spec.name,
    $permissions: [], // server-side only: the functions use an API key, no client ever reads these tables
    databaseId,
    name: spec.name,
    enabled: true,
    rowSecurity: false,
    columns: spec.columns.filter((c) => c.name !== 'id').map(columnOf),
    indexes: spec.indexes.map((idx) => ({
      key: indexKey(idx.fields, idx.unique),
      type: idx.unique ? 'unique' : 'key',
      columns: idx.fields.map(appwriteField),
      orders: idx.fields.map(() => 'asc' as const),
    })),
  };
}

export function appwriteTables(databaseId = DEFAULT_DATABASE_ID): AppwriteTable[] {
  return [...TABLE_SPECS.values()].map((spec) => appwriteTable(spec, databaseId));
}

/**
 * Storage buckets of the scheduled file exchange on Appwrite (the embedded hub uses folders): files to import, and
 * exports. Server-side only, like the tables; 30 MB is the largest file the Appwrite spec allows.
 */
export function appwriteBuckets() {
  const bucket = (id: string, name: string) => ({
    $id: id,
    $permissions: [],
    fileSecurity: false,
    name,
    enabled: true,
    maximumFileSize: 30_000_000,
    allowedFileExtensions: ['csv', 'xml', 'xlsx', 'txt', 'json'],
    compression: 'none',
    encryption: true,
    antivirus: true,
    transformations: false,
  });
  return [bucket('exchange-inbox', 'File exchange: files to import'), bucket('exchange-outbox', 'File exchange: exports')];
}

/** The generated part of appwrite.json: the database, its tables and the storage buckets. */
export function appwriteSchemaSection(databaseId = DEFAULT_DATABASE_ID) {
  return {
    tablesDB: [{ $id: databaseId, name: 'Integration hub', enabled: true }],
    tables: appwriteTables(databaseId),
    buckets: appwriteBuckets(),
  };
}
