// Retention (the hourly maintenance job) prunes the busy tables a chunk at a time along their indexes, in every
// workspace, and keeps what is still in use: every DELETE it runs is checked for its size and its query plan.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAINTENANCE_JOB } from '../src/hub.ts';
import { PRUNE_CHUNK, pruneRows } from '../src/store/prune.ts';
import type { SqliteStore } from '../src/store/sqlite.ts';
import type { Db } from '../src/store/types.ts';
import type { RunResult } from 'better-sqlite3';
import { createTestHub, spyStatements, type TestHub } from './helpers.ts';

const DAY = 86_400_000;
/** Past one chunk, so that every table takes at least two. */
const OLD = PRUNE_CHUNK + 100;

let t: TestHub;
let store: SqliteStore;
/** Every DELETE the store ran: its SQL, parameters and result (rows changed). */
let deletes: ReturnType<typeof spyStatements>;

beforeEach(async () => {
  t = await createTestHub();
  store = t.hub.deps.store as SqliteStore;
  deletes = spyStatements(store, 'DELETE', 'run');
});
afterEach(() => t.close());

const iso = () => new Date(t.clock.now()).toISOString();
const ids = { endpoint: 'whe_01JTEST0000000000000000001', connection: 'con_01JTEST0000000000000000001', event: 'evt_01JTEST0000000000000000001' };

/** Rows of every pruned table in the workspace, stamped with the hub's clock as it now is. */
async function seed(db: Db, workspaceId: string, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    await db.table('events').insert({ type: 'stock.updated', source: 'urn:hub', subject: `s${i % 7}`, time: iso(), workspaceId, correlationId: null, data: { i } });
    const delivery = await db.table('webhook_deliveries').insert({
      workspaceId,
      endpointId: ids.endpoint,
      eventId: `evt_${tag}${workspaceId.slice(-8)}${i}`,
      eventType: 'stock.updated',
      orderingKey: null,
      state: 'delivered',
      attempts: 1,
      totalAttempts: 1,
      nextAttemptAt: iso(),
    });
    await db.table('webhook_attempts').insert({ workspaceId, endpointId: ids.endpoint, deliveryId: delivery.id, eventId: ids.event, attempt: 1, at: iso(), ok: true, status: 200, latencyMs: 3 });
    await db.table('inbox').insert({ workspaceId, connectionId: ids.connection, deliveryId: `${tag}-${workspaceId}-${i}`, headers: {}, body: 'e30=', receivedAt: iso(), status: 'processed', jobId: null });
  }
}

async function runMaintenance(): Promise<Record<string, number>> {
  await t.hub.queue.enqueue({ type: MAINTENANCE_JOB, payload: {} });
  const [job] = await t.hub.queue.claim('test', { types: [MAINTENANCE_JOB] });
  const ctx = { signal: new AbortController().signal, progress: async () => {}, log: t.hub.deps.log };
  return (await t.hub.handlers[MAINTENANCE_JOB]!(job!, ctx)) as Record<string, number>;
}

describe('retention', () => {
  it('prunes every workspace a chunk at a time along an index, and keeps what is recent or still open', async () => {
    const other = (await t.addWorkspace("Other")).workspace.id;
    const workspaces = [t.workspace.id, other];
    for (const w of workspaces) {
      await store.transaction(async (tx) => {
        await seed(tx, w, OLD, 'old');
        // Still open, however old: a delivery on its way, a webhook not yet applied.
        await tx.table('webhook_deliveries').insert({ workspaceId: w, endpointId: ids.endpoint, eventId: `evt_open${w.slice(-8)}`, eventType: 'stock.updated', orderingKey: null, state: 'pending', attempts: 0, totalAttempts: 0, nextAttemptAt: iso() });
        await tx.table('inbox').insert({ workspaceId: w, connectionId: ids.connection, deliveryId: `open-${w}`, headers: {}, body: 'e30=', receivedAt: iso(), status: 'received', jobId: null });
      });
    }
    const counts = async () => {
      const out: Record<string, number> = {};
      for (const table of ['events', 'webhook_deliveries', 'webhook_attempts', 'inbox'] as const) out[table] = await store.table(table).count({ workspaceId: { in: workspaces } });
      return out;
    };
    const seeded = await counts();
    t.clock.advance(31 * DAY); // past every retention (events 30 days, the rest 14)
    for (const w of workspaces) await store.transaction((tx) => seed(tx, w, 3, 'new'));

    const result = await runMaintenance();
    // Every event made so far is old: those seeded, and those of making the workspaces.
    expect(result).toMatchObject({ eventsDeleted: seeded.events, attemptsDeleted: 2 * OLD, deliveriesDeleted: 2 * OLD, inboxDeleted: 2 * OLD });
    expect(await counts()).toEqual({ events: 6, webhook_deliveries: 2 + 6, webhook_attempts: 6, inbox: 2 + 6 });

    // No DELETE took more than a chunk, and each found its rows along an index rather than by reading the table.
    const pruning = deletes.seen.filter((d) => d.sql.includes(' LIMIT ?'));
    expect(pruning.length).toBeGreaterThanOrEqual(4 * 2 * 2);
    expect(Math.max(...pruning.map((d) => (d.result as RunResult).changes))).toBe(PRUNE_CHUNK);
    for (const d of new Map(pruning.map((d) => [d.sql, d])).values()) {
      const plan = deletes.plan(d);
      expect(plan.filter((line) => /^SCAN /.test(line)), `${d.sql}\n${plan.join('\n')}`).toEqual([]);
    }
  });

  it('gives other writers the lock between chunks', async () => {
    await store.transaction((tx) => seed(tx, t.workspace.id, 400, 'old'));
    const order: string[] = [];
    const pruning = pruneRows(store, 'events', { workspaceId: t.workspace.id }, 50).then(() => order.push('pruned'));
    // Once the first chunk is gone, another writer comes along.
    while (deletes.seen.length === 0) await new Promise((r) => setImmediate(r));
    await store.transaction((tx) => tx.table('events').insert({ type: 'x.y', source: 'urn:hub', subject: null, time: iso(), workspaceId: t.workspace.id, correlationId: null, data: {} })).then(() => order.push('written'));
    await pruning;
    expect(order).toEqual(['written', 'pruned']);
    expect(deletes.seen.length).toBeGreaterThan(2);
  });
});
