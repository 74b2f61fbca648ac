// Shared state and helpers of the test TablesDB's route handlers: lookups, ids, permissions and list queries.
import { formatDatetime } from './columns.ts';
import type { DatabaseState, TableState } from './engine.ts';
import { fail } from './errors.ts';
import { parseQueries, planQueries, project, runPlan, type Field, type Item, type Schema } from './queries.ts';
import type { Bucket } from './routes-storage.ts';
import type { Transaction } from './transactions.ts';

export interface ServerState {
  databases: Map<string, DatabaseState>;
  transactions: Map<string, Transaction>;
  /** Storage buckets with their files (routes-storage.ts). */
  buckets: Map<string, Bucket>;
  /** Logical clock: every committed write takes the next value. */
  clock: number;
}

export interface HandlerRequest {
  path: Record<string, string>;
  query: Record<string, unknown>;
  body: Record<string, any>;
  /** Request headers, lower-case names (the chunked upload protocol rides on content-range and x-appwrite-id). */
  headers: Record<string, string>;
  /** Records a protocol problem the spec cannot express (e.g. a chunk that is not where Appwrite expects it). */
  note(problem: string): void;
}

/** A handler's answer; the status defaults to the success status the spec documents for the operation. */
export interface HandlerResult {
  status?: number;
  body?: unknown;
  /** Bytes sent as they are instead of a JSON body (file downloads), with their headers. */
  raw?: { data: Buffer; headers: Record<string, string> };
}

export type Handler = (state: ServerState, req: HandlerRequest) => HandlerResult;

export function createState(): ServerState {
  return { databases: new Map(), transactions: new Map(), buckets: new Map(), clock: 0 };
}

export function tick(state: ServerState): number {
  return ++state.clock;
}

export function now(): string {
  return formatDatetime(Date.now());
}

let idCounter = 0;

/** Like Appwrite's ID::unique(): a hex timestamp (seconds, then microseconds) and random padding, 20 chars. */
export function newId(): string {
  const ms = Date.now();
  const micros = (ms % 1000) * 1000 + (idCounter++ % 1000);
  let pad = '';
  for (let i = 0; i < 7; i++) pad += Math.floor(Math.random() * 16).toString(16);
  return (Math.floor(ms / 1000).toString(16) + micros.toString(16).padStart(5, '0') + pad).slice(0, 20);
}

const UID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,35}$/;

/** UID / CustomId validators (utopia Key): 36 chars of a-z, A-Z, 0-9, period, hyphen, underscore; no leading special. */
export function checkId(name: string, value: unknown, custom = false): string {
  if (custom && value === 'unique()') return newId();
  if (typeof value !== 'string' || !UID.test(value)) {
    fail('general_argument_invalid', `Invalid \`${name}\` param: UID must contain at most 36 chars. Valid chars are a-z, A-Z, 0-9, and underscore. Can't start with a leading underscore`);
  }
  return value as string;
}

const PERMISSION = /^(read|create|update|delete|write)\("([A-Za-z0-9:._/-]+)"\)$/;

/**
 * Permission strings, with `write` expanded to the types it stands for and types outside `allowed` refused
 * (Permission::aggregate and the Permissions validator).
 */
export function checkPermissions(value: unknown, allowed: string[]): string[] | null {
  if (value === undefined || value === null) return null;
  const out: string[] = [];
  for (const p of value as string[]) {
    const m = PERMISSION.exec(p);
    if (!m) fail('general_argument_invalid', `Invalid \`permissions\` param: Permission "${p}" is not a valid permission string`);
    const types = m![1] === 'write' ? ['update', 'delete', ...(allowed.includes('create') ? ['create'] : [])] : [m![1]!];
    for (const type of types) {
      if (!allowed.includes(type) && m![1] !== 'write') fail('general_argument_invalid', `Invalid \`permissions\` param: Permission "${type}" is not allowed. Must be one of: ${allowed.join(', ')}.`);
      const entry = `${type}("${m![2]}")`;
      if (!out.includes(entry)) out.push(entry);
    }
  }
  return out;
}

export function findDatabase(state: ServerState, id: string): DatabaseState {
  const db = state.databases.get(id);
  if (!db) fail('database_not_found');
  return db!;
}

export function findTable(state: ServerState, databaseId: string, tableId: string): TableState {
  const table = findDatabase(state, databaseId).tables.get(tableId);
  if (!table) fail('table_not_found');
  return table!;
}

export function lookupTable(state: ServerState): (databaseId: string, tableId: string) => TableState | undefined {
  return (databaseId, tableId) => state.databases.get(databaseId)?.tables.get(tableId);
}

/**
 * Lists models (databases, tables, columns, indexes, transactions) with `queries`, the optional `search` term
 * and `total`, querying any scalar field of the model.
 */
export function listModels(
  models: Record<string, unknown>[],
  req: HandlerRequest,
  group: string,
  searchFields: string[] = [],
): Record<string, unknown> {
  const schema: Schema = new Map();
  for (const model of models) {
    for (const [k, v] of Object.entries(model)) {
      const field: Field | null =
        k === '$createdAt' || k === '$updatedAt' || k === 'expiresAt' ? { kind: 'datetime', array: false }
          : typeof v === 'string' ? { kind: 'string', array: false }
            : typeof v === 'boolean' ? { kind: 'boolean', array: false }
              : typeof v === 'number' ? { kind: 'float', array: false } : null;
      if (field && !schema.has(k)) schema.set(k, field);
    }
  }
  for (const k of ['$id', '$createdAt', '$updatedAt']) if (!schema.has(k)) schema.set(k, { kind: k === '$id' ? 'string' : 'datetime', array: false });
  schema.set('$sequence', { kind: 'sequence', array: false });
  const plan = planQueries(parseQueries((req.query.queries as string[] | undefined) ?? []), schema);
  const term = typeof req.query.search === 'string' ? req.query.search.toLowerCase() : '';
  let items: Item[] = models.map((m, i) => ({ ...m, $sequence: i + 1 }));
  if (term) items = items.filter((m) => searchFields.some((f) => String(m[f] ?? '').toLowerCase().includes(term)));
  const idField = models.length > 0 && !('$id' in models[0]!) ? 'key' : '$id';
  const result = runPlan(items, plan, schema, (id) => items.find((m) => m[idField] === id) ?? null, group);
  const strip = ({ $sequence: _drop, ...rest }: Item) => rest;
  return {
    total: req.query.total === false ? 0 : result.total,
    [group]: result.items.map((m) => strip(project(m, plan.selects))),
  };
}
