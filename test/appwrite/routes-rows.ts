// Route handlers for rows and transactions. Writes with a transactionId are staged and answered like Appwrite 1.8.1
// answers them (Documents/Create.php etc.: a "mock" row built from the staged data); reads with one see the staging.
import { formatDatetime } from './columns.ts';
import {
  checkId, checkPermissions, findTable, listModels, lookupTable, newId, now, tick,
  type Handler, type HandlerRequest, type ServerState,
} from './context.ts';
import {
  cloneRows, createRow, deleteRow, incrementRow, rowKey, rowModel, rowSchema, selectRows, updateRow, upsertRow,
  type Row, type Rows, type TableState, type WriteContext,
} from './engine.ts';
import { fail } from './errors.ts';
import { parseQueries, planQueries, project, runPlan } from './queries.ts';
import {
  commitTransaction, requireStageable, rowVisible, STAGED_ACTIONS, transactionModel, transactionView, TTL,
  type StagedAction, type StagedOp, type Transaction,
} from './transactions.ts';

const ROW_PERMISSIONS = ['read', 'update', 'delete'];
/** APP_LIMIT_DATABASE_BATCH: rows a bulk request may carry. */
const BATCH_LIMIT = 100;

function direct(state: ServerState): WriteContext {
  return { mode: 'direct', version: tick(state), now: now() };
}

function txOf(state: ServerState, req: HandlerRequest): string | null {
  const id = req.body.transactionId ?? req.query.transactionId;
  return id === undefined || id === null ? null : checkId('transactionId', id);
}

function stage(tx: Transaction, state: ServerState, table: TableState, action: StagedAction, rowId: string | null, data: unknown): void {
  tx.ops.push({ action, databaseId: table.databaseId, tableId: table.id, rowId, data, stagedAt: state.clock });
  tx.updatedAt = now();
}

/** The row model Appwrite answers a staged write with: whatever the staged data says, defaults for the rest. */
function mockRow(table: TableState, data: Record<string, unknown>): Record<string, unknown> {
  return { $sequence: 0, $createdAt: '', $updatedAt: '', $permissions: [], ...data, $id: data.$id, $tableId: table.id, $databaseId: table.databaseId };
}

/** Runs several writes on a copy and swaps it in only if all succeed (createDocuments and friends are atomic). */
function atomically<T>(table: TableState, write: (rows: Rows) => T): T {
  const rows = cloneRows(table.rows);
  const result = write(rows);
  table.rows = rows;
  return result;
}

function readRows(state: ServerState, req: HandlerRequest, table: TableState): Rows {
  const txId = req.query.transactionId as string | undefined;
  return txId === undefined ? table.rows : transactionView(state.transactions.get(checkId('transactionId', txId)), table, newId);
}

function rowList(table: TableState, rows: Row[]): Record<string, unknown> {
  return { total: rows.length, rows: rows.map((r) => rowModel(table, r)) };
}

function bulkDocs(req: HandlerRequest): Record<string, unknown>[] {
  const docs = req.body.rows as Record<string, unknown>[];
  if (docs.length > BATCH_LIMIT) fail('general_argument_invalid', `Invalid \`rows\` param: Value must a valid array no longer than ${BATCH_LIMIT} items`);
  return docs.map((doc) => ({ ...doc, $id: doc.$id === undefined || doc.$id === 'unique()' ? newId() : checkId('$id', doc.$id) }));
}

function incrementHandler(direction: 1 | -1): Handler {
  return (state, req) => {
    const table = findTable(state, req.path.databaseId!, req.path.tableId!);
    const value = Number(req.body.value ?? 1);
    const bound = (direction > 0 ? req.body.max : req.body.min) ?? null;
    const txId = txOf(state, req);
    if (txId) {
      const tx = requireStageable(state.transactions.get(txId), 1, true);
      if (!(value > 0)) fail('general_argument_invalid', 'Value must be numeric and greater than 0');
      const data = { column: req.path.column, value, [direction > 0 ? 'max' : 'min']: bound };
      stage(tx, state, table, direction > 0 ? 'increment' : 'decrement', req.path.rowId!, data);
      // Increment.php answers with the delta under the column, not the resulting value.
      return { body: mockRow(table, { $id: req.path.rowId, [req.path.column!]: value }) };
    }
    const row = incrementRow(table, table.rows, req.path.rowId!, req.path.column!, value, bound, direction, direct(state));
    return { body: rowModel(table, row) };
  };
}

export const ROW_HANDLERS: Record<string, Handler> = {
  tablesDBListRows: (state, req) => {
    const table = findTable(state, req.path.databaseId!, req.path.tableId!);
    const schema = rowSchema(table);
    const plan = planQueries(parseQueries((req.query.queries as string[] | undefined) ?? []), schema);
    const rows = readRows(state, req, table);
    const result = runPlan([...rows.byId.values()].map((s) => s.row), plan, schema, (id) => rows.byId.get(rowKey(id))?.row ?? null);
    return {
      body: {
        total: req.query.total === false ? 0 : result.total,
        rows: result.items.map((r) => project(rowModel(table, r as Row), plan.selects)),
      },
    };
  },
  tablesDBGetRow: (state, req) => {
    const table = findTable(state, req.path.databaseId!, req.path.tableId!);
    const plan = planQueries(parseQueries((req.query.queries as string[] | undefined) ?? []), rowSchema(table), 'select');
    const stored = readRows(state, req, table).byId.get(rowKey(req.path.rowId!));
    if (!stored) fail('row_not_found');
    return { body: project(rowModel(table, stored!.row), plan.selects) };
  },
  tablesDBCreateRow: (state, req) => {
    const { data, rows } = req.body;
    const single = data !== undefined && data !== null && Object.keys(data).length > 0;
    const bulk = Array.isArray(rows) && rows.length > 0;
    if (!single && !bulk) fail('row_missing_data');
    if (single && bulk) fail('general_bad_request', 'You can only send one of the following parameters: data, rows');
    if (single && !req.body.rowId) fail('row_missing_data', 'Row ID is required when creating a single row.');
    if (bulk && req.body.rowId) fail('general_bad_request', 'Param "rowId" is not allowed when creating multiple rows, set "$id" on each instead.');
    if (bulk && req.body.permissions) fail('general_bad_request', 'Param "permissions" is disallowed when creating multiple rows, set "$permissions" on each instead');
    const table = findTable(state, req.path.databaseId!, req.path.tableId!);
    const permissions = checkPermissions(req.body.permissions, ROW_PERMISSIONS);
    const txId = txOf(state, req);
    if (single) {
      const id = checkId('rowId', req.body.rowId, true);
      const staged = { ...data, $id: id, $permissions: permissions ?? [] };
      if (txId) {
        stage(requireStageable(state.transactions.get(txId), 1), state, table, 'create', id, staged);
        return { body: mockRow(table, staged) };
      }
      return { body: rowModel(table, createRow(table, table.rows, id, data, permissions, direct(state))) };
    }
    const docs = bulkDocs(req);
    if (txId) {
      stage(requireStageable(state.transactions.get(txId), 1), state, table, 'bulkCreate', null, docs);
      return { body: { total: docs.length, rows: [] } };
    }
    const ctx = direct(state);
    return { body: rowList(table, atomically(table, (r) => docs.map((doc) => createRow(table, r, String(doc.$id), doc, null, ctx)))) };
  },
  tablesDBUpsertRows: (state, req) => {
    const table = findTable(state, req.path.databaseId!, req.path.tableId!);
    const docs = bulkDocs(req);
    const txId = txOf(state, req);
    if (txId) {
      stage(requireStageable(state.transactions.get(txId), 1), state, table, 'bulkUpsert', null, docs);
      return { body: { total: docs.length, rows: [] } };
    }
    const ctx = direct(state);
    return { body: rowList(table, atomically(table, (r) => docs.map((doc) => upsertRow(table, r, String(doc.$id), doc, null, ctx)))) };
  },
  tablesDBUpdateRows: (state, req) => {
    const table = findTable(state, req.path.databaseId!, req.path.tableId!);
    const queries = (req.body.queries ?? []) as string[];
    const data = (req.body.data ?? {}) as Record<string, unknown>;
    const parsed = parseQueries(queries);
    const txId = txOf(state, req);
    if (txId) {
      stage(requireStageable(state.transactions.get(txId), 1, true), state, table, 'bulkUpdate', null, { queries, data });
      return { body: { total: 0, rows: [] } };
    }
    const ctx = direct(state);
    return { body: rowList(table, atomically(table, (r) => selectRows(table, r, parsed).map((row) => updateRow(table, r, row.$id, data, null, ctx)))) };
  },
  tablesDBDeleteRows: (state, req) => {
    const table = findTable(state, req.path.databaseId!, req.path.tableId!);
    const queries = (req.body.queries ?? []) as string[];
    const parsed = parseQueries(queries);
    const txId = txOf(state, req);
    if (txId) {
      stage(requireStageable(state.transactions.get(txId), 1, true), state, table, 'bulkDelete', null, { queries });
      return { body: { total: 0, rows: [] } };
    }
    const ctx = direct(state);
    return { body: rowList(table, atomically(table, (r) => selectRows(table, r, parsed).map((row) => deleteRow(table, r, row.$id, ctx)))) };
  },
  tablesDBUpdateRow: (state, req) => {
    const data = (req.body.data ?? {}) as Record<string, unknown>;
    const permissions = checkPermissions(req.body.permissions, ROW_PERMISSIONS);
    if (Object.keys(data).length === 0 && permissions === null) fail('row_missing_payload');
    const table = findTable(state, req.path.databaseId!, req.path.tableId!);
    const id = req.path.rowId!;
    const txId = txOf(state, req);
    if (txId) {
      const tx = state.transactions.get(txId);
      const current = transactionView(tx, table, newId).byId.get(rowKey(id));
      if (!current) fail('row_not_found');
      const staged = { ...data, $permissions: permissions ?? current!.row.$permissions };
      stage(requireStageable(tx, 1), state, table, 'update', id, staged);
      return { body: { ...rowModel(table, current!.row), ...staged } };
    }
    return { body: rowModel(table, updateRow(table, table.rows, id, data, permissions, direct(state))) };
  },
  tablesDBUpsertRow: (state, req) => {
    const data = (req.body.data ?? {}) as Record<string, unknown>;
    const permissions = checkPermissions(req.body.permissions, ROW_PERMISSIONS);
    if (Object.keys(data).length === 0 && permissions === null) fail('row_missing_payload');
    const table = findTable(state, req.path.databaseId!, req.path.tableId!);
    const id = req.path.rowId!;
    const txId = txOf(state, req);
    if (txId) {
      const tx = state.transactions.get(txId);
      const current = transactionView(tx, table, newId).byId.get(rowKey(id));
      const staged = { ...data, $id: id, ...(permissions ? { $permissions: permissions } : {}) };
      stage(requireStageable(tx, 1), state, table, 'upsert', id, staged);
      return { body: mockRow(table, { ...(current ? rowModel(table, current.row) : {}), ...staged }) };
    }
    return { body: rowModel(table, upsertRow(table, table.rows, id, data, permissions, direct(state))) };
  },
  tablesDBDeleteRow: (state, req) => {
    const table = findTable(state, req.path.databaseId!, req.path.tableId!);
    const id = req.path.rowId!;
    const txId = txOf(state, req);
    if (txId) {
      const tx = state.transactions.get(txId);
      if (!transactionView(tx, table, newId).byId.has(rowKey(id))) fail('row_not_found');
      stage(requireStageable(tx, 1), state, table, 'delete', id, {});
      return {};
    }
    deleteRow(table, table.rows, id, direct(state));
    return {};
  },
  tablesDBIncrementRowColumn: incrementHandler(1),
  tablesDBDecrementRowColumn: incrementHandler(-1),

  tablesDBListTransactions: (state, req) => ({
    body: listModels([...state.transactions.values()].map(transactionModel), req, 'transactions'),
  }),
  tablesDBCreateTransaction: (state, req) => {
    const ttl = req.body.ttl ?? TTL.default;
    if (!Number.isInteger(ttl) || ttl < TTL.min || ttl > TTL.max) {
      fail('general_argument_invalid', `Invalid \`ttl\` param: Value must be a valid range between ${TTL.min} and ${TTL.max.toLocaleString('en-US')}`);
    }
    const time = Date.now();
    const tx: Transaction = { id: newId(), createdAt: formatDatetime(time), updatedAt: formatDatetime(time), status: 'pending', expiresAt: time + ttl * 1000, ops: [] };
    state.transactions.set(tx.id, tx);
    return { body: transactionModel(tx) };
  },
  tablesDBGetTransaction: (state, req) => {
    const tx = state.transactions.get(req.path.transactionId!);
    if (!tx) fail('transaction_not_found');
    return { body: transactionModel(tx!) };
  },
  tablesDBDeleteTransaction: (state, req) => {
    if (!state.transactions.delete(req.path.transactionId!)) fail('transaction_not_found');
    return {};
  },
  tablesDBUpdateTransaction: (state, req) => {
    const { commit, rollback } = req.body;
    if (!commit && !rollback) fail('general_bad_request', 'Either commit or rollback must be true');
    if (commit && rollback) fail('general_bad_request', 'Cannot commit and rollback at the same time');
    const tx = state.transactions.get(req.path.transactionId!);
    if (!tx) fail('transaction_not_found');
    if (tx!.status !== 'pending') fail('transaction_not_ready');
    if (Date.now() > tx!.expiresAt) fail('transaction_expired');
    if (commit) {
      tx!.status = 'committing';
      try {
        commitTransaction(tx!, lookupTable(state), tick(state), newId);
        tx!.status = 'committed';
      } catch (error) {
        tx!.status = 'failed';
        throw error;
      } finally {
        tx!.updatedAt = now();
      }
    } else {
      // Update.php marks a rolled-back transaction `failed` (the model also documents `rolled_back`).
      tx!.status = 'failed';
      tx!.updatedAt = now();
    }
    return { body: transactionModel(tx!) };
  },
  tablesDBCreateOperations: (state, req) => {
    const operations = (req.body.operations ?? []) as Record<string, any>[];
    if (operations.length === 0) fail('general_bad_request', 'Operations array cannot be empty');
    for (const op of operations) {
      const problem = operationProblem(op);
      if (problem) fail('general_argument_invalid', `Invalid \`operations\` param: ${problem}`);
    }
    const tx = state.transactions.get(req.path.transactionId!);
    if (!tx || tx.status !== 'pending') {
      if (!tx) fail('transaction_not_found');
      fail('general_bad_request', 'Invalid or non‑pending transaction');
    }
    requireStageable(tx, operations.length);
    const created = new Set<string>();
    const staged: StagedOp[] = operations.map((op) => {
      const db = state.databases.get(op.databaseId);
      if (!db) fail('database_not_found');
      const table = db!.tables.get(op.tableId);
      if (!table) fail('collection_not_found');
      const rowId = op.rowId === undefined ? null : op.action === 'create' ? checkId('rowId', op.rowId, true) : String(op.rowId);
      const ref = `${table!.databaseId}\u0000${table!.id}\u0000${rowKey(rowId ?? '')}`;
      if (['update', 'delete', 'increment', 'decrement'].includes(op.action) && !created.has(ref) && !rowVisible(tx!, table!, rowId!, newId)) {
        fail('document_not_found');
      }
      if (op.action === 'create') created.add(ref);
      let data = op.data ?? {};
      if (op.action === 'create') data = { ...data, $id: rowId };
      if (op.action === 'bulkCreate' || op.action === 'bulkUpsert') {
        data = (data as Record<string, unknown>[]).map((doc) => ({ ...doc, $id: doc.$id ?? newId() }));
      }
      return { action: op.action, databaseId: table!.databaseId, tableId: table!.id, rowId, data, stagedAt: state.clock };
    });
    tx!.ops.push(...staged);
    tx!.updatedAt = now();
    return { body: transactionModel(tx!) };
  },
};

/** Appwrite's Operation validator (src/Appwrite/Utopia/Database/Validator/Operation.php, type tablesdb). */
function operationProblem(op: Record<string, any>): string | null {
  if (!op || typeof op !== 'object' || Array.isArray(op)) return 'Value must be an array';
  for (const key of ['databaseId', 'action', 'tableId']) {
    if (!(key in op)) return `Missing required key: ${key}`;
    if (typeof op[key] !== 'string' || op[key].trim() === '') return `Key '${key}' must be a non‑empty string`;
  }
  const action = op.action as StagedAction;
  if (!STAGED_ACTIONS.includes(action)) return `Key 'action' must be one of: ${STAGED_ACTIONS.join(', ')}`;
  const needsRow = ['create', 'update', 'upsert', 'delete', 'increment', 'decrement'].includes(action);
  if (needsRow && !('rowId' in op)) return `Key 'rowId' is required for action '${action}'`;
  if ('rowId' in op && (typeof op.rowId !== 'string' || op.rowId.trim() === '')) return "Key 'rowId' must be a non-empty string";
  if (action !== 'delete' && !('data' in op)) return 'Missing required key: data';
  if ('data' in op && (typeof op.data !== 'object' || op.data === null)) return "Key 'data' must be an array";
  if ((action === 'bulkUpdate' || action === 'bulkDelete') && !Array.isArray(op.data?.queries)) return `Key 'queries' is required in data for ${action}`;
  if (action === 'bulkUpdate' && (typeof op.data?.data !== 'object' || op.data.data === null)) return `Key 'data' is required in data for ${action}`;
  if ((action === 'increment' || action === 'decrement') && !('column' in op.data)) return `Key 'column' is required in data for ${action}`;
  if ((action === 'bulkCreate' || action === 'bulkUpsert') && !Array.isArray(op.data)) return `Key 'data' must be an array for ${action}`;
  return null;
}
