import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../lib/log.ts';

type LogRecord = { level: string; msg: string } & Record<string, unknown>;
import { BACKSTOP_PAGES, startCheckpointer, type Checkpointer } from './checkpointer.ts';
import { createSqliteStore, type SqliteStore } from './sqlite.ts';

const dirs: string[] = [];
const open: { store?: SqliteStore; checkpointer?: Checkpointer }[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) await Promise.all([o.store?.close(), o.checkpointer?.stop()]);
  dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));
});

function tempDb(): string {
  const dir = mkdtempSync(join(tmpdir(), 'hub-checkpointer-'));
  dirs.push(dir);
  return join(dir, 'hub.db');
}

const walBytes = (path: string) => {
  try {
    return statSync(`${path}-wal`).size;
  } catch {
    return 0;
  }
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Writes `batches` transactions of 50 events of ~2 KB each (~100 KB, ~25 WAL pages a transaction); answers the largest WAL seen. */
async function write(store: SqliteStore, path: string, batches: number): Promise<number> {
  let largest = 0;
  const data = { note: 'x'.repeat(2000) };
  for (let b = 0; b < batches; b++) {
    await store.transaction(async (tx) => {
      for (let i = 0; i < 50; i++) {
        await tx.table('events').insert({ type: 'test.written', source: 'test', subject: `s${i}`, time: new Date().toISOString(), workspaceId: 'ws_test', correlationId: null, data });
      }
    });
    largest = Math.max(largest, walBytes(path));
    // As a hub's writes come: with gaps between them, in which the checkpointer's copying ends and the WAL starts over.
    await sleep(2);
  }
  return largest;
}

function collectingLogger(records: LogRecord[]) {
  return createLogger('debug', {}, (line) => void records.push(JSON.parse(line) as LogRecord));
}

describe('the WAL checkpointer', () => {
  it('copies the WAL into the database file in the background, and starts it over, so that it stays small while the hub writes', async () => {
    // The same writes, ~20 MB in 200 transactions, without the checkpointer: the WAL takes all of it, as the
    // backstop (16,384 pages, 64 MB) is not reached.
    const alone = tempDb();
    const plain = createSqliteStore({ path: alone, walAutoCheckpoint: BACKSTOP_PAGES });
    open.push({ store: plain });
    const without = await write(plain, alone, 200);
    expect(without).toBeGreaterThan(16 * 1024 * 1024);

    const path = tempDb();
    const store = createSqliteStore({ path, walAutoCheckpoint: BACKSTOP_PAGES });
    const checkpointer = startCheckpointer({ path, everyMs: 10, log: collectingLogger([]) });
    open.push({ store, checkpointer });
    await checkpointer.ready;
    const largest = await write(store, path, 200);
    const stats = checkpointer.stats();
    // Measured: 6-10 MB. Over the 1,000 frames (4 MB) at which a checkpoint that copied everything starts the WAL
    // over, as a writer under way (every few milliseconds here) puts that off to the next turn.
    expect(largest).toBeLessThan(without * 0.6);
    expect(stats.restarts).toBeGreaterThan(2);
    // Every frame written was copied by the checkpointer (the first 300 or so may still be in the WAL).
    expect(stats.pagesCopied).toBeGreaterThan(without / 4096 - 1000);
    expect(stats.failures).toBe(0);
    expect(await store.table('events').count({ workspaceId: 'ws_test' })).toBe(10_000);
  });

  it('lets the last connection to close take what is left, and reads the same rows after', async () => {
    const path = tempDb();
    const store = createSqliteStore({ path, walAutoCheckpoint: BACKSTOP_PAGES });
    const checkpointer = startCheckpointer({ path, everyMs: 60_000, log: collectingLogger([]) });
    await checkpointer.ready;
    await write(store, path, 10);
    await store.close();
    await checkpointer.stop();
    // Stopping twice is stopping once.
    await checkpointer.stop();
    expect(walBytes(path)).toBe(0);
    const db = new Database(path, { readonly: true });
    expect((db.prepare('SELECT COUNT(*) AS n FROM events').get() as { n: number }).n).toBe(500);
    db.close();
  });

  it('says so in the log when its thread cannot open the file, and tries again later without failing the hub', async () => {
    const path = join(tempDb(), 'no-such-dir', 'hub.db');
    const records: LogRecord[] = [];
    const checkpointer = startCheckpointer({ path, everyMs: 10, log: collectingLogger(records) });
    open.push({ checkpointer });
    for (let i = 0; i < 100 && !records.some((r) => r.msg.startsWith('the checkpointer thread ended')); i++) await sleep(20);
    expect(records.find((r) => r.msg === 'the checkpointer thread failed')).toBeDefined();
    expect(records.find((r) => r.msg.startsWith('the checkpointer thread ended'))).toMatchObject({ level: 'error', inMs: 1000 });
    await checkpointer.stop();
  });
});
