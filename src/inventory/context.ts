// What every inventory operation runs with: the open transaction, the tenant, the time, and the request it serves.
import { appendEvent } from '../events/log.ts';
import type { Db } from '../store/types.ts';
import type { StockSession } from './stock-batch.ts';

export interface InventoryContext {
  /** An open transaction (or the store, for reads): every write of one operation commits together. */
  db: Db;
  workspaceId: string;
  /** ISO time of the operation: stamps movements and events. */
  now: string;
  correlationId?: string | null;
  /**
   * Working rows shared by the stock operations run one after another in this transaction (see StockSession); the
   * caller flushes it. Without one, each operation reads and writes its own.
   */
  session?: StockSession;
}

/** Appends a domain event in the operation's transaction. */
export function emit(ctx: InventoryContext, type: string, subject: string, data: Record<string, unknown>) {
  return appendEvent(ctx.db, { type, workspaceId: ctx.workspaceId, subject, data, correlationId: ctx.correlationId ?? null }, ctx.now, ctx.session?.fanOut);
}

/** Runs `fn` in one transaction with a context bound to it. */
export function inTransaction<R>(
  db: Db,
  base: Omit<InventoryContext, 'db'>,
  fn: (ctx: InventoryContext) => Promise<R>,
): Promise<R> {
  return db.transaction((tx) => fn({ ...base, db: tx }));
}
