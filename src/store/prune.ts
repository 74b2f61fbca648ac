// Bulk deletes that leave room for everyone else's writes. Retention deletes an hour's worth of old rows from
// each busy table every hour, and one DELETE statement for them held SQLite's one write lock from start to end:
// 240,000 old events of 300,000 took 2.6-3.2 s here, during which no webhook could be accepted. So rows go a chunk
// per transaction, each chunk found along an index, with a pause after each as long as it took: the same 240,000
// went in 1,203 chunks of a median 3.1 ms (the longest 19 ms), 12 s in all.
import type { Page, Store, TableName, Where, WorkspacesRow } from './types.ts';

/** Rows one chunk deletes: ~3 ms of the write lock on SQLite for events with their five indexes. */
export const PRUNE_CHUNK = 200;
/** The longest pause between two chunks. */
const MAX_PAUSE_MS = 50;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Deletes every row of `table` that matches `where`, a chunk per transaction (no more than a transaction of the
 * store holds), pausing after each chunk (pauseAfter). Give a filter that an index leads with, or each chunk scans
 * the table for its rows.
 */
export async function pruneRows(store: Store, table: TableName, where: Where, chunk = PRUNE_CHUNK): Promise<number> {
  const size = Math.max(1, Math.min(chunk, store.writesPerTransaction));
  let deleted = 0;
  for (;;) {
    const started = performance.now();
    const n = await store.transaction((tx) => tx.table(table).deleteWhere(where, { limit: size }));
    deleted += n;
    if (n < size) return deleted;
    await pauseAfter(started);
  }
}

/**
 * Waits as long as the chunk begun at `started` (performance.now()) took, up to 50 ms: work done a chunk per
 * transaction leaves other writers the write lock about half the time, and gets it again at once when they have none.
 */
export function pauseAfter(started: number): Promise<void> {
  return sleep(Math.min(performance.now() - started, MAX_PAUSE_MS));
}

/**
 * pruneRows one workspace at a time, for tables whose index on the field pruned by leads with workspaceId (the
 * busy tables: their writes pay for every index, so retention gets none of its own). Workspaces are never deleted.
 */
export async function pruneEachWorkspace(store: Store, table: TableName, where: (workspaceId: string) => Where, chunk = PRUNE_CHUNK): Promise<number> {
  let deleted = 0;
  for (let cursor: string | null = null; ; ) {
    const page: Page<Pick<WorkspacesRow, 'id'>> = await store.table('workspaces').pick([], { limit: 100, cursor });
    for (const { id } of page.items) deleted += await pruneRows(store, table, where(id), chunk);
    if (!page.nextCursor) return deleted;
    cursor = page.nextCursor;
  }
}
