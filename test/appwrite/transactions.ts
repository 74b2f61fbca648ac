// TablesDB transactions: staged operations, the view a transaction reads, and the all-or-nothing commit.
// Follows Appwrite 1.8.1 src/Appwrite/Platform/Modules/Databases/Http/Databases/Transactions/* and TransactionState.php.
import { formatDatetime } from './columns.ts';
import {
  cloneRows, createRow, deleteRow, incrementRow, rowKey, selectRows, updateRow, upsertRow,
  type Rows, type TableState, type WriteContext,
} from './engine.ts';
import { fail } from './errors.ts';
import { parseQueries } from './queries.ts';

export type StagedAction =
  | 'create' | 'update' | 'upsert' | 'delete' | 'increment' | 'decrement'
  | 'bulkCreate' | 'bulkUpdate' | 'bulkUpsert' | 'bulkDelete';

export const STAGED_ACTIONS: readonly StagedAction[] = [
  'create', 'update', 'upsert', 'delete', 'increment', 'decrement', 'bulkCreate', 'bulkUpdate', 'bulkUpsert', 'bulkDelete',
];

export interface StagedOp {
  action: StagedAction;
  databaseId: string;
  tableId: string;
  rowId: string | null;
  data: any;
  /** Logical time when staged: a row committed later than this makes the commit conflict. */
  stagedAt: number;
}

export interface Transaction {
  id: string;
  createdAt: string;
  updatedAt: string;
  status: 'pending' | 'committing' | 'committed' | 'failed';
  expiresAt: number;
  ops: StagedOp[];
}

/** APP_LIMIT_DATABASE_TRANSACTION (the Free plan's limit on Cloud). */
export const MAX_OPERATIONS = 100;
/** APP_DATABASE_TXN_TTL_MIN / _MAX / _DEFAULT, in seconds. */
export const TTL = { min: 60, max: 3600, default: 300 } as const;

export function transactionModel(tx: Transaction): Record<string, unknown> {
  return {
    $id: tx.id,
    $createdAt: tx.createdAt,
    $updatedAt: tx.updatedAt,
    status: tx.status,
    operations: tx.ops.length,
    expiresAt: formatDatetime(tx.expiresAt),
  };
}

/**
 * The checks a staged write makes (Documents/Create.php, Update.php, Upsert.php, Delete.php): found, pending,
 * not expired, room for `adding` more operations. Increment, decrement and the bulk update/delete routes answer a
 * missing or settled transaction with general_bad_request instead.
 */
export function requireStageable(tx: Transaction | undefined, adding: number, loose = false): Transaction {
  if (!tx || tx.status !== 'pending') {
    if (loose) fail('general_bad_request', 'Invalid or non‑pending transaction');
    if (!tx) fail('transaction_not_found');
    fail('transaction_not_ready');
  }
  if (Date.now() > tx.expiresAt) fail('transaction_expired');
  if (tx.ops.length + adding > MAX_OPERATIONS) {
    fail('transaction_limit_exceeded', `Transaction already has ${tx.ops.length} operations, adding ${adding} would exceed the maximum of ${MAX_OPERATIONS}`);
  }
  return tx;
}

function applyOp(table: TableState, rows: Rows, op: StagedOp, ctx: WriteContext, newId: () => string): void {
  const data = op.data ?? {};
  switch (op.action) {
    case 'create':
      createRow(table, rows, op.rowId!, data, null, ctx);
      break;
    case 'update':
      updateRow(table, rows, op.rowId!, data, null, ctx);
      break;
    case 'upsert':
      upsertRow(table, rows, op.rowId!, data, null, ctx);
      break;
    case 'delete':
      deleteRow(table, rows, op.rowId!, ctx);
      break;
    case 'increment':
    case 'decrement':
      incrementRow(
        table, rows, op.rowId!, String(data.column), Number(data.value ?? 1),
        (op.action === 'increment' ? data.max : data.min) ?? null, op.action === 'increment' ? 1 : -1, ctx,
      );
      break;
    case 'bulkCreate':
      for (const doc of data as Record<string, unknown>[]) createRow(table, rows, String(doc.$id ?? newId()), doc, null, ctx);
      break;
    case 'bulkUpsert':
      for (const doc of data as Record<string, unknown>[]) upsertRow(table, rows, String(doc.$id ?? newId()), doc, null, ctx);
      break;
    case 'bulkUpdate':
      for (const row of selectRows(table, rows, parseQueries(data.queries ?? []))) updateRow(table, rows, row.$id, data.data ?? {}, null, ctx);
      break;
    case 'bulkDelete':
      for (const row of selectRows(table, rows, parseQueries(data.queries ?? []))) deleteRow(table, rows, row.$id, ctx);
      break;
  }
}

/**
 * What a read with `transactionId` sees: committed rows with the transaction's staged writes replayed on top
 * (read your own writes). Settled or unknown transactions read committed data, as TransactionState does.
 */
export function transactionView(tx: Transaction | undefined, table: TableState, newId: () => string): Rows {
  if (!tx || tx.status !== 'pending') return table.rows;
  const ops = tx.ops.filter((op) => op.databaseId === table.databaseId && op.tableId === table.id);
  if (ops.length === 0) return table.rows;
  const rows = cloneRows(table.rows);
  const ctx: WriteContext = { mode: 'commit', version: Number.MAX_SAFE_INTEGER, now: formatDatetime(Date.now()) };
  for (const op of ops) {
    try {
      applyOp(table, rows, op, ctx, newId);
    } catch {
      // A write that would fail at commit leaves the view as it was.
    }
  }
  return rows;
}

/**
 * Replays the staged operations in order on copies of the touched tables and swaps them in only if all succeed.
 * Conflicts follow Transactions/Update.php: an update, upsert or delete of a row that this commit has not touched
 * yet runs withRequestTimestamp(time staged), so a row committed after it was staged raises transaction_conflict;
 * a duplicate id or unique value raises it too. Increments and creates are not timestamp-checked.
 */
export function commitTransaction(
  tx: Transaction,
  findTable: (databaseId: string, tableId: string) => TableState | undefined,
  version: number,
  newId: () => string,
): void {
  const work = new Map<TableState, Rows>();
  const touched = new Set<string>();
  const now = formatDatetime(Date.now());
  for (const op of tx.ops) {
    const table = findTable(op.databaseId, op.tableId);
    if (!table) fail('document_not_found', `Table '${op.tableId}' of a staged operation no longer exists.`);
    let rows = work.get(table!);
    if (!rows) {
      rows = cloneRows(table!.rows);
      work.set(table!, rows);
    }
    const ctx: WriteContext = {
      mode: 'commit',
      version,
      now,
      beforeWrite(t, key, existing, action) {
        const id = `${t.databaseId}\u0000${t.id}\u0000${key}`;
        const checked = action === 'update' || action === 'upsert' || action === 'delete';
        if (checked && !touched.has(id) && existing && existing.version > op.stagedAt) {
          fail('transaction_conflict');
        }
        touched.add(id);
      },
    };
    applyOp(table!, rows, op, ctx, newId);
  }
  for (const [table, rows] of work) table.rows = rows;
}

/** Whether a row exists as the transaction sees it (staged update/delete need one, Update.php/Delete.php). */
export function rowVisible(tx: Transaction, table: TableState, id: string, newId: () => string): boolean {
  return transactionView(tx, table, newId).byId.has(rowKey(id));
}
