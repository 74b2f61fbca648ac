// What the file exchange leaves behind, cleared by the hourly maintenance job: finished runs and the failed rows
// of their reports after their retention, and spool files no run will read again. The checksum markers
// (file_imports) stay: they are what keeps an old file from being applied a second time, and they are small.
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pruneRows } from '../store/prune.ts';
import type { Store } from '../store/types.ts';
import { FINISHED_STATES } from './runs.ts';

/** A spool file younger than this is left alone whatever its run says: it may be an upload whose run is being made. */
const SPOOL_GRACE_MS = 86_400_000;

/** Deletes runs that finished before `cutoff` (ISO 8601) with their failed rows; says how many runs. */
export async function deleteFinishedRuns(store: Store, cutoff: string): Promise<number> {
  let deleted = 0;
  for (;;) {
    const page = await store.table('file_runs').pick(['id'], { where: { state: { in: [...FINISHED_STATES] }, finishedAt: { lt: cutoff } }, limit: 200 });
    const ids = page.items.map((r) => r.id);
    if (ids.length === 0) return deleted;
    // The failed rows first: a crash between the two leaves runs to delete next time, never rows without a run.
    // A chunk at a time: one run may have failed on a million rows.
    await pruneRows(store, 'file_run_errors', { runId: { in: ids } });
    deleted += await store.table('file_runs').deleteWhere({ id: { in: ids } });
  }
}

/**
 * Deletes spool files older than a day whose run is finished or gone (a run deleted, an upload whose run was
 * never made), and half-written ones (`.part`) of stages that died. A running run's spool is what it resumes from.
 */
export async function sweepSpool(store: Store, spoolDir: string, now: number): Promise<number> {
  let names: string[];
  try {
    names = await readdir(spoolDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  let deleted = 0;
  for (const name of names) {
    const path = join(spoolDir, name);
    const info = await stat(path).catch(() => null);
    if (!info?.isFile() || now - info.mtimeMs < SPOOL_GRACE_MS) continue;
    if (name.endsWith('.spool')) {
      const run = await store.table('file_runs').get(name.slice(0, -'.spool'.length));
      if (run && !FINISHED_STATES.includes(run.state)) continue;
    } else if (!name.endsWith('.part')) continue;
    await rm(path, { force: true });
    deleted++;
  }
  return deleted;
}
