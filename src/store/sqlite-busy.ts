// Whether a better-sqlite3 error is another connection's lock (SQLITE_BUSY and its kinds, SQLITE_LOCKED): the
// statement may go through once that connection is done. A module of its own, so that a thread with a bare connection
// (checkpoint-thread.ts) need not load the store.
export function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code === 'SQLITE_LOCKED');
}
