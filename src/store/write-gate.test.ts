import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { startThread } from '../lib/thread.ts';
import { createSqliteStore, readLockStats, WRITE_LOCK_SLOTS } from './sqlite.ts';
import { createWriteGate } from './write-gate.ts';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('the write gate', () => {
  it('lets one holder in at a time, and wakes a waiter at the release', async () => {
    const gate = createWriteGate();
    const order: string[] = [];
    await gate.acquire(1000);
    const b = gate.acquire(1000).then(() => order.push('b'));
    await new Promise((r) => setTimeout(r, 20));
    expect(order).toEqual([]);
    gate.release();
    await b;
    expect(order).toEqual(['b']);
    gate.release();
  });

  it('gives up after its timeout, leaving the gate to the next one', async () => {
    const gate = createWriteGate();
    await gate.acquire(1000);
    await expect(gate.acquire(30)).rejects.toMatchObject({ code: 'store_unavailable' });
    gate.release();
    await gate.acquire(100);
    gate.release();
  });

  it('is freed for a thread that ended while it held it', async () => {
    const gate = createWriteGate();
    const holder = startThread(pathToFileURL(join(import.meta.dirname, '../../test/fixtures/gate-holder.ts')).href, { data: gate.buffer });
    await new Promise<void>((resolve, reject) => {
      holder.once('message', () => resolve());
      holder.once('error', reject);
    });
    let got = false;
    const waiting = gate.acquire(5000).then(() => (got = true));
    await new Promise((r) => setTimeout(r, 30));
    expect(got).toBe(false);
    // As the host does: the id kept from the start (an exited worker's threadId reads -1).
    const id = holder.threadId;
    holder.on('exit', () => gate.releaseFor(id));
    await holder.terminate();
    expect(holder.threadId).toBe(-1);
    await waiting;
    expect(got).toBe(true);
    // Another thread's end does not free the gate from its holder.
    gate.releaseFor(id);
    gate.releaseFor(-1);
    let again = false;
    const next = gate.acquire(5000).then(() => (again = true));
    await new Promise((r) => setTimeout(r, 30));
    expect(again).toBe(false);
    gate.release();
    await next;
    gate.release();
  });

  it('keeps two connections to one file from finding it locked', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gate-'));
    dirs.push(dir);
    const gate = createWriteGate();
    const a = createSqliteStore({ path: join(dir, 'hub.db'), gate });
    const b = createSqliteStore({ path: join(dir, 'hub.db'), gate });
    let busy = 0;
    a.onBusy(() => busy++);
    b.onBusy(() => busy++);
    const write = (store: typeof a, n: number) =>
      store.transaction(async (tx) => {
        await tx.table('workspaces').insert({ name: `w${n}`, slug: `w-${n}`, currency: 'USD', timezone: 'UTC' });
        // Hold the transaction across a turn of the event loop, as a real one does between its statements.
        await new Promise((r) => setImmediate(r));
      });
    await Promise.all(Array.from({ length: 40 }, (_, n) => write(n % 2 ? a : b, n)));
    expect(busy).toBe(0);
    expect(await a.table('workspaces').count()).toBe(40);
    await a.close();
    await b.close();
  });

  it('adds up what each connection took of the write lock: time held, time waited, commits', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gate-'));
    dirs.push(dir);
    const gate = createWriteGate();
    // As npm start shares them between its threads: shared memory the other thread's figures are read from.
    const shared = new Float64Array(new SharedArrayBuffer(WRITE_LOCK_SLOTS * 8));
    const a = createSqliteStore({ path: join(dir, 'hub.db'), gate });
    const b = createSqliteStore({ path: join(dir, 'hub.db'), gate, lockStats: shared });
    expect(a.writeLockStats()).toEqual({ heldMs: 0, waitedMs: 0, commits: 0, aheadReplayed: 0, aheadRerun: 0 });
    // a holds the lock for ~150 ms; b's transaction, begun meanwhile, waits for it.
    let holding!: () => void;
    const held = new Promise<void>((r) => (holding = r));
    const long = a.transaction(async (tx) => {
      await tx.table('workspaces').insert({ name: 'a', slug: 'a', currency: 'USD', timezone: 'UTC' });
      holding();
      await new Promise((r) => setTimeout(r, 150));
    });
    await held;
    await b.transaction(async (tx) => void (await tx.table('workspaces').insert({ name: 'b', slug: 'b', currency: 'USD', timezone: 'UTC' })));
    await long;
    const sa = a.writeLockStats();
    expect(sa.commits).toBe(1);
    expect(sa.heldMs).toBeGreaterThanOrEqual(140);
    expect(sa.waitedMs).toBeLessThan(50);
    const sb = readLockStats(shared);
    expect(sb).toEqual(b.writeLockStats());
    expect(sb.commits).toBe(1);
    expect(sb.waitedMs).toBeGreaterThanOrEqual(100);
    expect(sb.heldMs).toBeLessThan(sb.waitedMs);
    // A transaction that fails held the lock too; its group still ends in a COMMIT, of nothing.
    await expect(b.transaction(async () => Promise.reject(new Error('no')))).rejects.toThrow('no');
    expect(b.writeLockStats().commits).toBe(2);
    await a.close();
    await b.close();
  });
});
