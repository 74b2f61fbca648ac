import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isHubError } from '../src/errors.ts';
import { COUNT_CHUNK_ROWS, createSqliteStore, STATEMENTS_KEPT, type SqliteStore } from '../src/store/sqlite.ts';
import type { Db, Where } from '../src/store/types.ts';
import { spyStatements } from './helpers.ts';
import { describeStoreContract } from './store-contract.ts';

describeStoreContract('sqlite (memory)', { create: async () => createSqliteStore({ path: ':memory:' }) });

describeStoreContract('sqlite (file, WAL)', {
  create: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hub-store-'));
    return Object.assign(createSqliteStore({ path: join(dir, 'hub.db') }), { dir });
  },
  destroy: async (store) => {
    await store.close();
    rmSync((store as unknown as { dir: string }).dir, { recursive: true, force: true });
  },
});

describe('sqlite store transactions', () => {
  it('fails loudly, instead of hanging, when the store itself is used inside its own transaction', async () => {
    const store = createSqliteStore({ path: ':memory:', lockTimeoutMs: 100 });
    await expect(
      store.transaction(async () => {
        await store.table('workspaces').get('ws_x');
      }),
    ).rejects.toThrow(/transaction handle/);
    // and the store is usable afterwards
    expect(await store.table('workspaces').count()).toBe(0);
    await store.close();
  });

  it('lets other callers wait for a transaction that ends in time', async () => {
    const store = createSqliteStore({ path: ':memory:', lockTimeoutMs: 1000 });
    let inserted = false;
    const tx = store.transaction(async (t) => {
      await new Promise((r) => setTimeout(r, 50));
      await t.table('workspaces').insert({ name: 'A', slug: 'a', currency: 'EUR', timezone: 'UTC' });
      inserted = true;
    });
    const count = await store.table('workspaces').count();
    expect(inserted).toBe(true);
    expect(count).toBe(1);
    await tx;
    await store.close();
  });
});

describe('sqlite store on disk', () => {
  it('keeps rows across reopen and adds nothing twice when migrating again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hub-store-'));
    const path = join(dir, 'hub.db');
    const a = createSqliteStore({ path });
    const row = await a.table('workspaces').insert({ name: 'A', slug: 'a', currency: 'EUR', timezone: 'UTC' });
    await a.close();
    const b = createSqliteStore({ path });
    expect(await b.table('workspaces').get(row.id)).toEqual(row);
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('drops an index of its own that the schema replaced, and leaves an operator\'s index alone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hub-store-'));
    const path = join(dir, 'hub.db');
    await createSqliteStore({ path }).close();
    const raw = new Database(path);
    // An earlier release's index (its name follows the store's pattern) and one an operator added by hand.
    raw.exec('CREATE INDEX "webhook_deliveries__endpointId__orderingKey__state" ON "webhook_deliveries" ("endpointId", "orderingKey", "state")');
    raw.exec('CREATE INDEX "ops_deliveries_by_event" ON "webhook_deliveries" ("eventId")');
    raw.close();
    await createSqliteStore({ path }).close();
    const check = new Database(path);
    const names = (check.prepare(`PRAGMA index_list("webhook_deliveries")`).all() as { name: string }[]).map((r) => r.name);
    check.close();
    expect(names).not.toContain('webhook_deliveries__endpointId__orderingKey__state');
    expect(names).toContain('webhook_deliveries__endpointId__orderingKey__state__id');
    expect(names).toContain('ops_deliveries_by_event');
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('sqlite store beside another process on the same file', () => {
  const ws = (slug: string) => ({ name: slug, slug, currency: 'EUR', timezone: 'UTC' });
  /** Another writer on the file (as an import process or a second hub would be): holds the write lock for `ms`. */
  function holdWriteLock(path: string, ms: number): Promise<void> {
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    other.prepare(`INSERT INTO "workspaces" ("id", "name", "slug", "currency", "timezone", "version", "createdAt", "updatedAt") VALUES (?, 'other', ?, 'EUR', 'UTC', 1, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')`).run(`ws_other${ms}`, `other-${ms}`);
    return new Promise((resolve) =>
      setTimeout(() => {
        other.exec('COMMIT');
        other.close();
        resolve();
      }, ms),
    );
  }

  it('waits for the other writer without stopping the event loop, and tells its busy listeners', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hub-store-busy-'));
    const store = createSqliteStore({ path: join(dir, 'hub.db') });
    try {
      let waits = 0;
      store.onBusy(() => waits++);
      const released = holdWriteLock(store.path, 120);
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 10);
      const started = Date.now();
      const [row, inTx] = await Promise.all([
        store.table('workspaces').insert(ws('a')),
        store.transaction((tx) => tx.table('workspaces').insert(ws('b'))),
      ]);
      clearInterval(ticker);
      await released;
      expect(Date.now() - started).toBeGreaterThanOrEqual(100);
      // SQLite's own busy wait would have blocked the loop for the whole 120 ms: no tick could run.
      expect(ticks).toBeGreaterThanOrEqual(5);
      expect(waits).toBeGreaterThan(0);
      expect((await store.table('workspaces').get(row.id))?.slug).toBe('a');
      expect((await store.table('workspaces').get(inTx.id))?.slug).toBe('b');
      expect(await store.table('workspaces').count()).toBe(3);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails a write and a transaction with store_unavailable once the other writer keeps the lock past the timeout, and recovers after', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hub-store-busy-'));
    const store = createSqliteStore({ path: join(dir, 'hub.db'), lockTimeoutMs: 60 });
    try {
      const released = holdWriteLock(store.path, 250);
      const write = store.table('workspaces').insert(ws('a'));
      const tx = store.transaction((t) => t.table('workspaces').insert(ws('b')));
      await expect(write).rejects.toMatchObject({ code: 'store_unavailable' });
      await expect(tx).rejects.toMatchObject({ code: 'store_unavailable' });
      await released;
      await store.transaction((t) => t.table('workspaces').insert(ws('c')));
      await store.table('workspaces').insert(ws('d'));
      expect((await store.table('workspaces').query()).items.map((w) => w.slug).sort()).toEqual(['c', 'd', 'other-250']);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('never runs a waiting statement inside a transaction of its own process that began meanwhile', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hub-store-busy-'));
    const store = createSqliteStore({ path: join(dir, 'hub.db') });
    try {
      // A root write waits for the other process; the moment it lets go, this process begins a transaction that
      // is rolled back. The write must land outside it (not be undone with it), whichever retries first.
      for (let i = 0; i < 8; i++) {
        const other = new Database(store.path);
        other.exec('BEGIN IMMEDIATE');
        const write = store.table('workspaces').insert(ws(`kept-${i}`));
        await new Promise((r) => setTimeout(r, 8));
        other.exec('COMMIT');
        other.close();
        const undone = store.transaction(async (t) => {
          await t.table('workspaces').insert(ws(`undone-${i}`));
          await new Promise((r) => setTimeout(r, 20));
          throw new Error('undone');
        });
        const kept = await write;
        await expect(undone).rejects.toThrow('undone');
        expect((await store.table('workspaces').get(kept.id))?.slug).toBe(`kept-${i}`);
      }
      expect(await store.table('workspaces').count({ slug: { startsWith: 'undone' } })).toBe(0);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('holds its next transaction back when asked to yield, so that the other process gets the lock between two', async () => {
    const store = createSqliteStore({ path: ':memory:' });
    try {
      await store.transaction((t) => t.table('workspaces').insert(ws('a')));
      store.yieldWrites(80);
      const started = Date.now();
      let readDuring = false;
      const tx = store.transaction((t) => t.table('workspaces').insert(ws('b')));
      // Reads outside transactions are not held back.
      setTimeout(() => void store.table('workspaces').count().then(() => (readDuring = true)), 5);
      await tx;
      expect(Date.now() - started).toBeGreaterThanOrEqual(75);
      expect(readDuring).toBe(true);
    } finally {
      await store.close();
    }
  });
});

describe('sqlite store: list pages (expectMany)', () => {
  // Past one stretch read in id order (IN_ORDER_STRETCH, 2,000), so that pages come from both ways of finding them.
  const N = 2600;
  const states = (i: number) => (i % 500 === 7 ? 'dead' : i < 10 ? 'paused' : i >= N - 40 ? 'pending' : 'delivered');
  async function seeded() {
    const store = createSqliteStore({ path: ':memory:' });
    await store.transaction(async (tx) => {
      for (let i = 0; i < N; i++) {
        await tx.table('webhook_deliveries').insert({
          id: `whd_${String(i).padStart(26, '0')}`,
          workspaceId: i % 13 === 0 ? 'wsp_other' : 'wsp_main',
          endpointId: `whe_${i % 3}`,
          eventId: `evt_${i}`,
          eventType: 'stock.updated',
          orderingKey: null,
          state: states(i) as 'delivered',
          attempts: 1,
          totalAttempts: 1,
          nextAttemptAt: new Date(1_700_000_000_000 + i * 1000).toISOString(),
        });
      }
    });
    return store;
  }
  const filters = [
    {},
    { state: 'delivered' },
    { state: 'dead' },
    { state: 'paused' },
    { state: 'waiting' },
    { endpointId: 'whe_1' },
    { endpointId: 'whe_2', state: 'pending' },
    { endpointId: { in: ['whe_0', 'whe_2'] }, eventId: 'evt_2005' },
    { $or: [{ state: 'dead' }, { endpointId: 'whe_1' }] },
  ];

  it('answers the same pages as without it, in both directions, whatever the filter matches', async () => {
    const store = await seeded();
    const table = store.table('webhook_deliveries');
    for (const filter of filters) {
      for (const direction of ['desc', 'asc'] as const) {
        for (const limit of [50, 7]) {
          const pages = async (expectMany: boolean) => {
            const out: { ids: string[]; next: string | null }[] = [];
            let cursor: string | null = null;
            do {
              const page = await table.query({ where: { workspaceId: 'wsp_main', ...filter } as never, orderBy: { field: 'id', direction }, limit, cursor, expectMany });
              out.push({ ids: page.items.map((r) => r.id), next: page.nextCursor });
              cursor = page.nextCursor;
            } while (cursor && out.length < 60);
            return out;
          };
          const plain = await pages(false);
          expect(await pages(true), `${JSON.stringify(filter)} ${direction} ${limit}`).toEqual(plain);
        }
      }
    }
    await store.close();
  });

  it('scans every match in short pages along the key: the same rows, none sorted, each page a stretch at most', async () => {
    const store = await seeded();
    const table = store.table('webhook_deliveries');
    for (const filter of filters) {
      for (const direction of ['desc', 'asc'] as const) {
        const rows = async (scan: boolean) => {
          const ids: string[] = [];
          let pages = 0;
          let cursor: string | null = null;
          do {
            const page = await table.query({ where: { workspaceId: 'wsp_main', ...filter } as never, orderBy: { field: 'id', direction }, limit: 50, cursor, scan });
            expect(page.items.length).toBeLessThanOrEqual(50);
            ids.push(...page.items.map((r) => r.id));
            cursor = page.nextCursor;
            pages++;
          } while (cursor);
          return { ids, pages };
        };
        const plain = await rows(false);
        const scanned = await rows(true);
        expect(scanned.ids, `${JSON.stringify(filter)} ${direction}`).toEqual(plain.ids);
        // A sparse filter takes a page per stretch of 2,000 rows: two for these 2,600, with none or few in each.
        expect(scanned.pages).toBeLessThanOrEqual(Math.max(plain.pages, 2) + 1);
      }
    }
    const spy = spyStatements(store, 'SELECT', 'all');
    const first = await table.query({ where: { workspaceId: 'wsp_main', state: 'dead' }, orderBy: { field: 'id', direction: 'asc' }, limit: 50, scan: true });
    // The first stretch's few dead ones, and a cursor past it.
    expect(first.items.length).toBeLessThan(50);
    expect(first.nextCursor).not.toBeNull();
    expect(spy.seen).toHaveLength(1);
    expect(spy.plan(spy.seen[0]!).join(' | ')).toMatch(/^SEARCH webhook_deliveries USING INDEX sqlite_autoindex_webhook_deliveries_1 \(id<\?\)$/);
    await store.close();
  });

  it('reads a page of many matches along the key, and few matches along their filter\'s index, sorting neither all', async () => {
    const store = await seeded();
    const spy = spyStatements(store, 'SELECT', 'all');
    const list = (where: Record<string, unknown>) =>
      store.table('webhook_deliveries').query({ where: { workspaceId: 'wsp_main', ...where } as never, orderBy: { field: 'id', direction: 'desc' }, limit: 50, expectMany: true });
    const plansOf = async (where: Record<string, unknown>) => {
      spy.seen.length = 0;
      const page = await list(where);
      return { page, plans: spy.seen.map((s) => spy.plan(s).join(' | ')) };
    };

    // Many match: the page is in the newest stretch, read by the primary key, in order.
    for (const where of [{}, { state: 'delivered' }, { endpointId: 'whe_1' }]) {
      const { page, plans } = await plansOf(where);
      expect(page.items).toHaveLength(50);
      expect(plans, JSON.stringify(where)).toHaveLength(1);
      expect(plans[0]).toMatch(/^SEARCH webhook_deliveries USING INDEX sqlite_autoindex_webhook_deliveries_1 \(id>\?\)$/);
      expect(plans[0]).not.toMatch(/TEMP B-TREE/);
    }
    // Few match: the stretch has too few, and the state's index finds them (not the workspace's, which is every row).
    const dead = await plansOf({ state: 'dead' });
    expect(dead.page.items.map((r) => r.state)).toEqual(dead.page.items.map(() => 'dead'));
    expect(dead.plans.at(-1)).toMatch(/USING INDEX webhook_deliveries__state__nextAttemptAt__id \(state=\?/);
    // An event's deliveries by the (endpointId, eventId) index.
    const event = await plansOf({ endpointId: { in: ['whe_0', 'whe_1', 'whe_2'] }, eventId: 'evt_2005' });
    expect(event.page.items.map((r) => r.eventId)).toEqual(['evt_2005']);
    expect(event.plans).toHaveLength(1);
    expect(event.plans[0]).toMatch(/USING INDEX webhook_deliveries__endpointId__eventId \(endpointId=\? AND eventId=\?\)/);
    await store.close();
  });
});

describe('sqlite store: large counts walk an index in chunks (countChunkRows)', () => {
  const N = 100;
  const rows = Array.from({ length: N }, (_, i) => ({
    workspaceId: i % 11 === 0 ? 'wsp_other' : 'wsp_main',
    endpointId: `whe_${i % 3}`,
    eventId: `evt_${i}`,
    orderingKey: i % 5 === 0 ? null : `key_${i % 7}`,
    state: (i % 4 === 0 ? 'dead' : 'delivered') as 'delivered',
  }));
  async function seeded(countChunkRows: number) {
    const store = createSqliteStore({ path: ':memory:', countChunkRows });
    await store.transaction(async (tx) => {
      // One instant for all: the walk's position ties on createdAt, and goes on by rowid.
      for (const r of rows) await tx.table('webhook_deliveries').insert({ ...r, eventType: 'stock.updated', attempts: 1, totalAttempts: 1, nextAttemptAt: '2026-03-01T00:00:00.000Z' });
    });
    return store;
  }
  // Walked along (endpointId, eventId), (endpointId, state, createdAt), (state, nextAttemptAt, id), (workspaceId,
  // createdAt) and (endpointId, orderingKey, state, id); the last three are counted in one statement.
  const filters: Where[] = [
    { endpointId: 'whe_1' },
    { endpointId: 'whe_1', state: 'delivered' },
    { state: 'dead' },
    { workspaceId: 'wsp_main' },
    { endpointId: 'whe_2', orderingKey: 'key_3' },
    { endpointId: 'whe_0', orderingKey: null },
    { state: { in: ['dead', 'delivered'] } },
    { orderingKey: 'key_1' },
    {},
  ];
  const expected = (f: Where) => rows.filter((r) => Object.entries(f).every(([k, v]) => (v !== null && typeof v === 'object' ? (v as { in: unknown[] }).in.includes(r[k as 'state']) : r[k as 'state'] === v))).length;

  it('counts the same whatever the chunk, around its multiples', async () => {
    for (const chunk of [1, 6, 7, 8, 33, 34, 35, 1_000_000]) {
      const store = await seeded(chunk);
      for (const f of filters) expect(await store.table('webhook_deliveries').count(f), `${JSON.stringify(f)} in chunks of ${chunk}`).toBe(expected(f));
      await store.close();
    }
  });

  it('lets the event loop run between chunks, each read along its index from where the last ended, with no sort', async () => {
    const turnsOf = async (store: SqliteStore, f: Where) => {
      let turns = 0;
      let counting = true;
      const spin = () => {
        if (!counting) return;
        turns++;
        setImmediate(spin);
      };
      setImmediate(spin);
      const n = await store.table('webhook_deliveries').count(f);
      counting = false;
      return { n, turns };
    };
    const store = await seeded(7);
    const spy = spyStatements(store, 'SELECT', 'get');
    expect(await turnsOf(store, { endpointId: 'whe_1' })).toMatchObject({ n: expected({ endpointId: 'whe_1' }), turns: expect.toSatisfy((t: number) => t >= 4) });
    const walked = spy.seen.filter((s) => s.sql.includes('INDEXED BY'));
    expect(walked.length).toBeGreaterThanOrEqual(5);
    for (const s of walked) expect(spy.plan(s).join(' | ')).toMatch(/^SEARCH webhook_deliveries USING COVERING INDEX webhook_deliveries__endpointId__eventId \(endpointId=\?( AND eventId>\?)?\)$/);
    // In one statement, the same count gives the loop no turn.
    const whole = await seeded(1_000_000);
    expect((await turnsOf(whole, { endpointId: 'whe_1' })).turns).toBeLessThanOrEqual(1);
    await Promise.all([store.close(), whole.close()]);
  });

  it('counts in one statement inside a transaction, which holds the lock anyway', async () => {
    const store = await seeded(7);
    const spy = spyStatements(store, 'SELECT', 'get');
    expect(await store.transaction((tx) => tx.table('webhook_deliveries').count({ endpointId: 'whe_1' }))).toBe(expected({ endpointId: 'whe_1' }));
    expect(spy.seen.map((s) => s.sql)).toEqual(['SELECT COUNT(*) AS n FROM "webhook_deliveries" WHERE "endpointId" = ?']);
    await store.close();
  });
});

describe('sqlite store: prepared statements', () => {
  it('keeps at most STATEMENTS_KEPT of them, those not used for longest dropped, however many queries differ', async () => {
    const store = createSqliteStore({ path: ':memory:' });
    const workspaces = store.table('workspaces');
    await workspaces.insert({ name: 'A', slug: 'a', currency: 'EUR', timezone: 'UTC' });
    const generations = store as unknown as { statements: Map<string, unknown>; olderStatements: Map<string, unknown> };
    const kept = () => new Set([...generations.statements.keys(), ...generations.olderStatements.keys()]);
    const hot = `SELECT COUNT(*) AS n FROM (SELECT 1 FROM "workspaces" WHERE 1=1 LIMIT ${COUNT_CHUNK_ROWS})`;
    const first = 'SELECT * FROM "workspaces" WHERE 1=1 ORDER BY id ASC LIMIT 2';
    // A page size of each value an API caller may ask, and a filter: a statement each.
    for (let limit = 1; limit <= 1000; limit++) {
      expect((await workspaces.query({ limit })).items).toHaveLength(1);
      expect((await workspaces.query({ where: { slug: 'a' }, limit })).items).toHaveLength(1);
      if (limit % 100 === 0) expect(await workspaces.count()).toBe(1);
      expect(kept().size).toBeLessThanOrEqual(STATEMENTS_KEPT);
    }
    expect(kept().size).toBeGreaterThanOrEqual(STATEMENTS_KEPT / 2);
    // Used now and then, it stayed; the first page size, not asked for since, went.
    expect(kept().has(hot)).toBe(true);
    expect(kept().has(first)).toBe(false);
    expect(await workspaces.count()).toBe(1);
    await store.close();
  });
});

describe('sqlite store: transaction bodies run ahead of the write lock (runAhead)', () => {
  // Two connections on one file: the store under test, and another writer that changes rows between a body's run
  // ahead and its turn under the lock (as the other thread of a hub does).
  async function twoConnections() {
    const dir = mkdtempSync(join(tmpdir(), 'hub-store-ahead-'));
    const path = join(dir, 'hub.db');
    const store = createSqliteStore({ path });
    const other = createSqliteStore({ path });
    const ws = await store.table('workspaces').insert({ name: 'a', slug: 'a', currency: 'EUR', timezone: 'UTC' });
    const done = async () => {
      await store.close();
      await other.close();
      rmSync(dir, { recursive: true, force: true });
    };
    return { store, other, ws, done };
  }
  const byName = async (store: ReturnType<typeof createSqliteStore>) => (await store.table('workspaces').query({ limit: 10 })).items.map((w) => w.name).sort();
  /** One transaction that may run ahead: what its body answered, and how many times the body ran (`run` counts from 1). */
  async function ranAhead<R>(store: ReturnType<typeof createSqliteStore>, body: (tx: Db, run: number) => Promise<R>): Promise<{ answer: R; runs: number }> {
    let runs = 0;
    const answer = await store.transaction((tx) => body(tx, ++runs), { runAhead: true });
    return { answer, runs };
  }

  it('makes the statements of a body that ran ahead, once, under the lock, as if it had run there', async () => {
    const { store, ws, done } = await twoConnections();
    const { answer, runs } = await ranAhead(store, async (tx) => {
      const w = (await tx.table('workspaces').get(ws.id))!;
      const moved = await tx.table('workspaces').updateFrom(w, { name: `${w.name}!` });
      await tx.table('workspaces').insert({ name: `copy of ${w.name}`, slug: 'copy', currency: 'EUR', timezone: 'UTC' });
      return moved.name;
    });
    expect(answer).toBe('a!');
    expect(runs).toBe(1);
    expect(await byName(store)).toEqual(['a!', 'copy of a']);
    expect((await store.table('workspaces').get(ws.id))!.version).toBe(2);
    expect(store.writeLockStats()).toMatchObject({ aheadReplayed: 1, aheadRerun: 0, commits: 1 });
    await done();
  });

  it('runs the body again under the lock when a row it read changed after it ran ahead: nothing is made of a stale read', async () => {
    const { store, other, ws, done } = await twoConnections();
    const { answer, runs } = await ranAhead(store, async (tx, run) => {
      const w = (await tx.table('workspaces').get(ws.id))!;
      // Only an insert follows the read (no compare-and-set): the read's own check is what catches the change.
      if (run === 1) await other.table('workspaces').update(ws.id, { name: 'b' });
      await tx.table('workspaces').insert({ name: `copy of ${w.name}`, slug: 'copy', currency: 'EUR', timezone: 'UTC' });
      return w.name;
    });
    expect(answer).toBe('b');
    expect(runs).toBe(2);
    expect(await byName(store)).toEqual(['b', 'copy of b']);
    expect(store.writeLockStats()).toMatchObject({ aheadReplayed: 0, aheadRerun: 1 });
    await done();
  });

  it('gives the body the store\'s own refusal when a write it made ahead fails under the lock', async () => {
    const { store, other, done } = await twoConnections();
    const { answer, runs } = await ranAhead(store, async (tx, run) => {
      if (run === 1) await other.table('workspaces').insert({ name: 'theirs', slug: 'dup', currency: 'EUR', timezone: 'UTC' });
      try {
        await tx.table('workspaces').insert({ name: 'ours', slug: 'dup', currency: 'EUR', timezone: 'UTC' });
        return 'inserted';
      } catch (err) {
        if (isHubError(err, 'already_exists')) return 'duplicate';
        throw err;
      }
    });
    expect(answer).toBe('duplicate');
    expect(runs).toBe(2);
    expect(await byName(store)).toEqual(['a', 'theirs']);
    expect(store.writeLockStats()).toMatchObject({ aheadReplayed: 0, aheadRerun: 1 });
    await done();
  });

  it('runs under the lock a body whose write cannot be kept for later, even when the body caught that', async () => {
    const { store, ws, done } = await twoConnections();
    const { answer, runs } = await ranAhead(store, async (tx) => {
      try {
        // An update from an id alone answers the row written (RETURNING): it cannot be made later.
        await tx.table('workspaces').update(ws.id, { name: 'x' });
      } catch {
        return 'caught';
      }
      return 'updated';
    });
    expect(answer).toBe('updated');
    expect(runs).toBe(2);
    expect(await byName(store)).toEqual(['x']);
    expect(store.writeLockStats()).toMatchObject({ aheadReplayed: 0, aheadRerun: 0 });
    await done();
  });

  it('refuses under the lock a body refused ahead, and writes nothing of it; other bodies of the group commit', async () => {
    const { store, done } = await twoConnections();
    const bad = store.transaction(
      async (tx) => {
        await tx.table('workspaces').insert({ name: 'fine', slug: 'fine', currency: 'EUR', timezone: 'UTC' });
        await tx.table('workspaces').insert({ name: 'bad', slug: 'bad', currency: 'euro', timezone: 'UTC' });
      },
      { runAhead: true },
    );
    const good = store.transaction(async (tx) => tx.table('workspaces').insert({ name: 'good', slug: 'good', currency: 'EUR', timezone: 'UTC' }), { runAhead: true });
    await expect(bad).rejects.toMatchObject({ code: 'validation_failed' });
    await good;
    expect(await byName(store)).toEqual(['a', 'good']);
    expect(store.writeLockStats()).toMatchObject({ aheadReplayed: 1, aheadRerun: 0 });
    await done();
  });
});
