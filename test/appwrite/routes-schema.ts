// Route handlers for databases, tables, columns and indexes (the spec's tablesDB* schema operations).
import { columnModel, COLUMN_KINDS, defineColumn, isTextKind, isValidKey, type Column, type ColumnKind } from './columns.ts';
import {
  checkId, checkPermissions, findDatabase, findTable, listModels, now,
  type Handler, type HandlerRequest, type ServerState,
} from './context.ts';
import { uniqueIndexProblem, type DatabaseState, type Index, type TableState } from './engine.ts';
import { fail } from './errors.ts';

const TABLE_PERMISSIONS = ['read', 'create', 'update', 'delete'];
const INTERNAL_INDEXABLE = new Set(['$id', '$createdAt', '$updatedAt']);

function databaseModel(db: DatabaseState): Record<string, unknown> {
  return { $id: db.id, name: db.name, $createdAt: db.createdAt, $updatedAt: db.updatedAt, enabled: db.enabled, type: 'tablesdb' };
}

function indexModel(index: Index): Record<string, unknown> {
  return {
    $id: index.key,
    $createdAt: index.createdAt,
    $updatedAt: index.updatedAt,
    key: index.key,
    type: index.type,
    status: index.error ? 'failed' : index.announced ? 'available' : 'processing',
    error: index.error,
    columns: index.columns,
    lengths: index.lengths,
    orders: index.orders,
  };
}

/** Rough MariaDB row width, for the table model's bytesUsed (utf8mb4 text takes four bytes a character). */
function bytesOf(column: Column): number {
  const width = column.kind === 'string' || column.kind === 'varchar' ? column.size * 4 + 2
    : isTextKind(column.kind) ? (column.kind === 'datetime' ? 8 : column.kind === 'enum' || column.kind === 'email' || column.kind === 'url' ? 1022 : 12)
      : column.kind === 'boolean' ? 1 : 8;
  return column.array ? 12 : width;
}

function tableModel(table: TableState): Record<string, unknown> {
  return {
    $id: table.id,
    $createdAt: table.createdAt,
    $updatedAt: table.updatedAt,
    $permissions: table.permissions,
    databaseId: table.databaseId,
    name: table.name,
    enabled: table.enabled,
    rowSecurity: table.rowSecurity,
    columns: table.columns.map(columnModel),
    indexes: table.indexes.map(indexModel),
    bytesMax: 65535,
    bytesUsed: table.columns.reduce((sum, c) => sum + bytesOf(c), 0),
  };
}

/** Announces what a worker would have finished by the time a later read happens. */
function settle(table: TableState): void {
  for (const c of table.columns) c.announced = true;
  for (const i of table.indexes) i.announced = true;
}

function addColumn(table: TableState, column: Column): Column {
  if (table.columns.some((c) => c.key === column.key)) fail('column_already_exists');
  table.columns.push(column);
  table.updatedAt = now();
  return column;
}

function addIndex(table: TableState, body: Record<string, any>): Index {
  if (!isValidKey(body.key)) fail('general_argument_invalid', 'Invalid `key` param: Key must contain at most 36 chars. Valid chars are a-z, A-Z, 0-9, period, hyphen, and underscore. Can\'t start with a special char');
  if (table.indexes.some((i) => i.key === body.key)) fail('column_index_already_exists');
  const type = body.type as Index['type'];
  if (!['key', 'unique', 'fulltext'].includes(type)) fail('column_index_invalid', `Index type "${String(type)}" is not supported by this table.`);
  const columns = (body.columns ?? body.attributes ?? []) as string[];
  if (columns.length === 0) fail('column_index_invalid', 'Index must have at least one column.');
  for (const key of columns) {
    const column = table.columns.find((c) => c.key === key);
    if (!column && !INTERNAL_INDEXABLE.has(key)) fail('column_unknown', `Unknown column: ${key}. Verify the column name or create the column.`);
    if (type === 'fulltext' && column && !isTextKind(column.kind)) fail('column_index_invalid', 'Fulltext index can only be created on text columns.');
    if (column?.array && type !== 'key') fail('column_index_invalid', 'Creating indexes on array columns is not currently supported.');
  }
  const orders = ((body.orders ?? []) as string[]).map((o) => o.toUpperCase());
  if (orders.length > columns.length) fail('column_index_invalid', 'Invalid index: more orders than columns.');
  const time = now();
  const index: Index = {
    key: body.key,
    type,
    columns,
    orders,
    lengths: (body.lengths ?? []) as number[],
    createdAt: time,
    updatedAt: time,
    announced: false,
    error: '',
  };
  index.error = uniqueIndexProblem(table, index);
  table.indexes.push(index);
  return index;
}

/** An inline column of createTable (`columns[]`: key, type, size, required, default, array, elements, min, max). */
function inlineColumn(def: Record<string, unknown>): Column {
  const type = String(def.type ?? '');
  const kind = (type === 'double' ? 'float' : type) as ColumnKind;
  if (!COLUMN_KINDS.includes(kind)) fail('general_argument_invalid', `Invalid \`columns\` param: column type "${type}" is not supported by this server.`);
  const column = defineColumn(kind, { required: false, ...def });
  column.announced = true;
  return column;
}

const createColumn = (kind: ColumnKind): Handler => (state, req) => {
  const table = findTable(state, req.path.databaseId!, req.path.tableId!);
  const column = addColumn(table, defineColumn(kind, req.body));
  const body = columnModel(column);
  column.announced = true;
  return { body };
};

function columnOf(req: HandlerRequest, state: ServerState): { table: TableState; column: Column } {
  const table = findTable(state, req.path.databaseId!, req.path.tableId!);
  const column = table.columns.find((c) => c.key === req.path.key);
  if (!column) fail('column_not_found');
  return { table, column: column! };
}

export const SCHEMA_HANDLERS: Record<string, Handler> = {
  tablesDBList: (state, req) => ({ body: listModels([...state.databases.values()].map(databaseModel), req, 'databases', ['$id', 'name']) }),
  tablesDBCreate: (state, req) => {
    const id = checkId('databaseId', req.body.databaseId, true);
    if (state.databases.has(id)) fail('database_already_exists');
    const time = now();
    const db: DatabaseState = { id, name: String(req.body.name), enabled: req.body.enabled ?? true, createdAt: time, updatedAt: time, tables: new Map() };
    state.databases.set(id, db);
    return { body: databaseModel(db) };
  },
  tablesDBGet: (state, req) => ({ body: databaseModel(findDatabase(state, req.path.databaseId!)) }),
  tablesDBUpdate: (state, req) => {
    const db = findDatabase(state, req.path.databaseId!);
    if (typeof req.body.name === 'string') db.name = req.body.name;
    if (typeof req.body.enabled === 'boolean') db.enabled = req.body.enabled;
    db.updatedAt = now();
    return { body: databaseModel(db) };
  },
  tablesDBDelete: (state, req) => {
    findDatabase(state, req.path.databaseId!);
    state.databases.delete(req.path.databaseId!);
    return {};
  },

  tablesDBListTables: (state, req) => {
    const db = findDatabase(state, req.path.databaseId!);
    for (const t of db.tables.values()) settle(t);
    return { body: listModels([...db.tables.values()].map(tableModel), req, 'tables', ['$id', 'name']) };
  },
  tablesDBCreateTable: (state, req) => {
    const db = findDatabase(state, req.path.databaseId!);
    const id = checkId('tableId', req.body.tableId, true);
    if (db.tables.has(id)) fail('table_already_exists');
    const time = now();
    const table: TableState = {
      id,
      databaseId: db.id,
      name: String(req.body.name),
      permissions: checkPermissions(req.body.permissions, TABLE_PERMISSIONS) ?? [],
      rowSecurity: req.body.rowSecurity === true,
      enabled: req.body.enabled ?? true,
      createdAt: time,
      updatedAt: time,
      columns: [],
      indexes: [],
      rows: { byId: new Map(), nextSequence: 1 },
    };
    for (const def of (req.body.columns ?? []) as Record<string, unknown>[]) addColumn(table, inlineColumn(def));
    for (const def of (req.body.indexes ?? []) as Record<string, unknown>[]) addIndex(table, def).announced = true;
    db.tables.set(id, table);
    return { body: tableModel(table) };
  },
  tablesDBGetTable: (state, req) => {
    const table = findTable(state, req.path.databaseId!, req.path.tableId!);
    settle(table);
    return { body: tableModel(table) };
  },
  tablesDBUpdateTable: (state, req) => {
    const table = findTable(state, req.path.databaseId!, req.path.tableId!);
    if (typeof req.body.name === 'string') table.name = req.body.name;
    const permissions = checkPermissions(req.body.permissions, TABLE_PERMISSIONS);
    if (permissions) table.permissions = permissions;
    if (typeof req.body.rowSecurity === 'boolean') table.rowSecurity = req.body.rowSecurity;
    if (typeof req.body.enabled === 'boolean') table.enabled = req.body.enabled;
    table.updatedAt = now();
    return { body: tableModel(table) };
  },
  tablesDBDeleteTable: (state, req) => {
    findTable(state, req.path.databaseId!, req.path.tableId!);
    findDatabase(state, req.path.databaseId!).tables.delete(req.path.tableId!);
    return {};
  },

  tablesDBListColumns: (state, req) => {
    const table = findTable(state, req.path.databaseId!, req.path.tableId!);
    settle(table);
    return { body: listModels(table.columns.map(columnModel), req, 'columns') };
  },
  ...Object.fromEntries(
    COLUMN_KINDS.map((kind) => [`tablesDBCreate${kind.charAt(0).toUpperCase()}${kind.slice(1)}Column`, createColumn(kind)]),
  ),
  tablesDBGetColumn: (state, req) => ({ body: columnModel(columnOf(req, state).column) }),
  tablesDBDeleteColumn: (state, req) => {
    const { table, column } = columnOf(req, state);
    table.columns = table.columns.filter((c) => c !== column);
    table.indexes = table.indexes.filter((i) => !i.columns.includes(column.key));
    for (const [key, stored] of table.rows.byId) {
      const { [column.key]: _dropped, ...rest } = stored.row;
      table.rows.byId.set(key, { ...stored, row: rest as typeof stored.row });
    }
    return {};
  },

  tablesDBListIndexes: (state, req) => {
    const table = findTable(state, req.path.databaseId!, req.path.tableId!);
    settle(table);
    return { body: listModels(table.indexes.map(indexModel), req, 'indexes') };
  },
  tablesDBCreateIndex: (state, req) => {
    const table = findTable(state, req.path.databaseId!, req.path.tableId!);
    const index = addIndex(table, req.body);
    const body = indexModel(index);
    index.announced = true;
    return { body };
  },
  tablesDBGetIndex: (state, req) => {
    const index = findTable(state, req.path.databaseId!, req.path.tableId!).indexes.find((i) => i.key === req.path.key);
    if (!index) fail('column_index_not_found');
    return { body: indexModel(index!) };
  },
  tablesDBDeleteIndex: (state, req) => {
    const table = findTable(state, req.path.databaseId!, req.path.tableId!);
    if (!table.indexes.some((i) => i.key === req.path.key)) fail('column_index_not_found');
    table.indexes = table.indexes.filter((i) => i.key !== req.path.key);
    return {};
  },
};
