// The contract every Store adapter must pass. Run it with a factory: describeStoreContract('sqlite', () => ...).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isHubError, type ErrorCode } from '../src/errors.ts';
import type { Store } from '../src/store/types.ts';

export interface StoreFactory {
  create(): Promise<Store>;
  /** Called after each test with the store it made. */
  destroy?(store: Store): Promise<void>;
}

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  try {
    await promise;
  } catch (err) {
    if (isHubError(err, code)) return;
    throw new Error(`expected ${code}, got ${String(err)}`);
  }
  throw new Error(`expected ${code}, but it succeeded`);
}

export function describeStoreContract(name: string, factory: StoreFactory): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;

    beforeEach(async () => {
      store = await factory.create();
    });
    afterEach(async () => {
      if (factory.destroy) await factory.destroy(store);
      else await store.close();
    });

    const workspace = (slug: string) => ({ name: `Workspace ${slug}`, slug, currency: 'EUR', timezone: 'Europe/Berlin' });
    const job = (type: string, runAt: string, extra: Record<string, unknown> = {}) => ({
      type,
      payload: { n: 1 },
      state: 'queued' as const,
      runAt,
      attempts: 0,
      maxAttempts: 5,
      ...extra,
    });

    describe('insert and get', () => {
      it('fills id, version and timestamps, and reads back the same row', async () => {
        const row = await store.table('workspaces').insert(workspace('acme'));
        expect(row.id).toMatch(/^ws_/);
        expect(row.version).toBe(1);
        expect(row.createdAt).toBe(row.updatedAt);
        expect(await store.table('workspaces').get(row.id)).toEqual(row);
      });

      it('answers insert with the same shape as a later get (absent nullable fields are null)', async () => {
        const row = await store.table('jobs').insert(job('t.x', '2026-01-01T00:00:00.000Z'));
        expect(row.leaseOwner).toBeNull();
        expect(await store.table('jobs').get(row.id)).toEqual(row);
      });

      it('keeps a given id', async () => {
        const row = await store.table('workspaces').insert({ id: 'ws_given', ...workspace('given') });
        expect(row.id).toBe('ws_given');
      });

      it('answers null for a missing id', async () => {
        expect(await store.table('workspaces').get('ws_missing')).toBeNull();
      });

      it('round-trips JSON objects, arrays, nulls and integers', async () => {
        const row = await store.table('jobs').insert(
          job('t.x', '2026-01-01T00:00:00.000Z', { payload: { a: [1, { b: 'ü' }], c: null }, lastError: null, workspaceId: null }),
        );
        const got = await store.table('jobs').get(row.id);
        expect(got?.payload).toEqual({ a: [1, { b: 'ü' }], c: null });
        expect(got?.lastError).toBeNull();
        expect(got?.attempts).toBe(0);
      });

      it('refuses a row that breaks its schema, writing nothing', async () => {
        await expectCode(store.table('workspaces').insert({ ...workspace('bad'), currency: 'euro' }), 'validation_failed');
        await expectCode(
          store.table('workspaces').insert({ ...workspace('bad2'), extra: 1 } as unknown as ReturnType<typeof workspace>),
          'validation_failed',
        );
        expect(await store.table('workspaces').count()).toBe(0);
      });

      it('refuses a duplicate id or unique key with already_exists', async () => {
        await store.table('workspaces').insert({ id: 'ws_1', ...workspace('one') });
        await expectCode(store.table('workspaces').insert({ id: 'ws_1', ...workspace('other') }), 'already_exists');
        try {
          await store.table('workspaces').insert(workspace('one'));
          expect.unreachable();
        } catch (err) {
          expect(isHubError(err, 'already_exists')).toBe(true);
          expect((err as { errors: { field: string }[] }).errors.map((e) => e.field)).toContain('/slug');
        }
        expect(await store.table('workspaces').count()).toBe(1);
      });
    });

    describe('update and delete', () => {
      it('merges a patch and bumps the version', async () => {
        const row = await store.table('workspaces').insert(workspace('acme'));
        const updated = await store.table('workspaces').update(row.id, { name: 'Renamed' });
        expect(updated).toMatchObject({ name: 'Renamed', slug: 'acme', version: 2 });
        expect(await store.table('workspaces').get(row.id)).toEqual(updated);
      });

      it('updates only at the expected version', async () => {
        const row = await store.table('workspaces').insert(workspace('acme'));
        await store.table('workspaces').update(row.id, { name: 'A' }, { ifVersion: 1 });
        await expectCode(store.table('workspaces').update(row.id, { name: 'B' }, { ifVersion: 1 }), 'version_conflict');
        expect((await store.table('workspaces').get(row.id))?.name).toBe('A');
      });

      it('updates from a row as read: the row it answers is the row a get then reads, and a stale one is refused', async () => {
        const table = store.table('webhook_endpoints');
        const ws = await store.table('workspaces').insert(workspace('acme'));
        const row = await table.insert({ workspaceId: ws.id, url: 'https://example.com/h', eventTypes: ['*'], headers: { 'x-a': '1' }, status: 'enabled', secret: 'sealed' });
        // A JSON field, a null and a string: what the answer holds must be what is stored.
        const updated = await table.updateFrom(row, { eventTypes: ['order.*', 'stock.*'], rateLimitPerSecond: 5, failingSince: null, description: 'x' });
        expect(updated).toMatchObject({ version: 2, eventTypes: ['order.*', 'stock.*'], rateLimitPerSecond: 5, description: 'x' });
        expect(await table.get(row.id)).toEqual(updated);
        await expectCode(table.updateFrom(row, { description: 'stale' }), 'version_conflict');
        await expectCode(table.updateFrom(updated, { rateLimitPerSecond: -1 }), 'validation_failed');
        await expectCode(table.updateFrom(updated, { workspaceId: 'ws_other' } as Record<string, unknown>), 'validation_failed');
        expect((await table.get(row.id))?.description).toBe('x');
        await table.delete(row.id);
        await expectCode(table.updateFrom(updated, { description: 'gone' }), 'not_found');
      });

      it('refuses to update a missing row, an invalid patch or an identity field', async () => {
        await expectCode(store.table('workspaces').update('ws_none', { name: 'x' }), 'not_found');
        const row = await store.table('workspaces').insert(workspace('acme'));
        await expectCode(store.table('workspaces').update(row.id, { currency: 'x' }), 'validation_failed');
        const key = await store.table('api_keys').insert({
          workspaceId: row.id,
          name: 'k',
          prefix: 'hub_x',
          hash: 'h',
          scopes: ['*'],
        });
        await expectCode(
          store.table('api_keys').update(key.id, { workspaceId: 'ws_other' } as Record<string, unknown>),
          'validation_failed',
        );
        expect(await store.table('workspaces').get(row.id)).toEqual(row);
      });

      it('surfaces a unique clash on update as already_exists', async () => {
        await store.table('workspaces').insert(workspace('a'));
        const b = await store.table('workspaces').insert(workspace('b'));
        await expectCode(store.table('workspaces').update(b.id, { slug: 'a' }), 'already_exists');
      });

      it('deletes, optionally at a version', async () => {
        const row = await store.table('workspaces').insert(workspace('acme'));
        await expectCode(store.table('workspaces').delete(row.id, { ifVersion: 7 }), 'version_conflict');
        await store.table('workspaces').delete(row.id, { ifVersion: 1 });
        expect(await store.table('workspaces').get(row.id)).toBeNull();
        await expectCode(store.table('workspaces').delete(row.id), 'not_found');
      });
    });

    describe('upsert', () => {
      it('inserts, then replaces the given fields of the same id, keeping createdAt', async () => {
        const t = store.table('workspaces');
        const first = await t.upsert({ id: 'ws_up', ...workspace('up') });
        expect(first.created).toBe(true);
        expect(first.row.version).toBe(1);
        const second = await t.upsert({ id: 'ws_up', ...workspace('up'), name: 'Renamed' });
        expect(second.created).toBe(false);
        expect(second.row).toMatchObject({ name: 'Renamed', version: 2, createdAt: first.row.createdAt });
        expect(await t.get('ws_up')).toEqual(second.row);
      });

      it('converges under concurrent upserts of one id, losing none', async () => {
        const t = store.table('jobs');
        const results = await Promise.all(
          Array.from({ length: 6 }, (_, i) => t.upsert({ id: 'job_same', ...job('t.x', '2026-01-01T00:00:00.000Z', { attempts: i }) })),
        );
        expect(results.filter((r) => r.created)).toHaveLength(1);
        expect((await t.get('job_same'))?.version).toBe(6);
      });

      it('still refuses a clash on another unique key', async () => {
        await store.table('workspaces').insert(workspace('taken'));
        await expectCode(store.table('workspaces').upsert({ id: 'ws_other', ...workspace('taken') }), 'already_exists');
      });
    });

    describe('query', () => {
      beforeEach(async () => {
        const t = store.table('jobs');
        for (let i = 0; i < 25; i++) {
          await t.insert(
            job(i % 2 ? 'order.created' : 'stock.updated', `2026-01-01T00:00:${String(i % 5).padStart(2, '0')}.000Z`, {
              attempts: i,
              workspaceId: i < 20 ? 'ws_a' : null,
              dedupeKey: `k${i}`,
            }),
          );
        }
      });

      it('filters by equality, comparison, set membership, prefix, null and $or', async () => {
        const t = store.table('jobs');
        expect(await t.count({ type: 'order.created' })).toBe(12);
        expect(await t.count({ attempts: { gte: 10, lt: 15 } })).toBe(5);
        expect(await t.count({ attempts: { in: [1, 2, 300] } })).toBe(2);
        expect(await t.count({ attempts: { in: [] } })).toBe(0);
        expect(await t.count({ type: { startsWith: 'order.' } })).toBe(12);
        expect(await t.count({ type: { startsWith: 'ORDER.' } })).toBe(0);
        expect(await t.count({ workspaceId: null })).toBe(5);
        expect(await t.count({ workspaceId: { isNull: false } })).toBe(20);
        expect(await t.count({ workspaceId: { ne: 'ws_a' } })).toBe(5);
        expect(await t.count({ type: { notIn: ['order.created'] } })).toBe(13);
        expect(await t.count({ attempts: { notIn: [1, 2, 300] } })).toBe(23);
        expect(await t.count({ attempts: { notIn: [] } })).toBe(25);
        expect(await t.count({ workspaceId: { notIn: ['ws_a', 'ws_b'] } })).toBe(5);
        expect(await t.exists({ type: 'order.created', attempts: { gte: 20 } })).toBe(true);
        expect(await t.exists({ type: 'order.created', attempts: { in: [0, 2, 4] } })).toBe(false);
        expect(await t.exists({ type: 'ORDER.CREATED' })).toBe(false);
        expect(await t.count({ $or: [{ attempts: 0 }, { attempts: 24 }] })).toBe(2);
        expect(await t.count({ $or: [{ type: 'stock.updated' }, { attempts: { gt: 22 } }] })).toBe(14);
      });

      it('pages through every row exactly once, in order, with ties broken by id', async () => {
        const t = store.table('jobs');
        for (const direction of ['asc', 'desc'] as const) {
          const seen: { id: string; runAt: string }[] = [];
          let cursor: string | null = null;
          let pages = 0;
          do {
            const page = await t.query({ orderBy: { field: 'runAt', direction }, cursor, limit: 4 });
            seen.push(...page.items);
            cursor = page.nextCursor;
            pages++;
          } while (cursor);
          expect(pages).toBe(7);
          expect(new Set(seen.map((r) => r.id)).size).toBe(25);
          const sorted = [...seen].sort((a, b) =>
            a.runAt === b.runAt ? (a.id < b.id ? -1 : 1) : a.runAt < b.runAt ? -1 : 1,
          );
          expect(seen).toEqual(direction === 'asc' ? sorted : sorted.reverse());
        }
      });

      it('picks fields: the same rows and pages as query, holding id and the fields named', async () => {
        const t = store.table('jobs');
        const where = { type: 'order.created' as const, attempts: { gte: 3 } };
        const whole = await t.query({ where, orderBy: { field: 'runAt' }, limit: 4 });
        const picked = await t.pick(['type', 'attempts'], { where, orderBy: { field: 'runAt' }, limit: 4 });
        expect(picked.items.map((r) => ({ id: r.id, type: r.type, attempts: r.attempts }))).toEqual(whole.items.map((r) => ({ id: r.id, type: r.type, attempts: r.attempts })));
        for (const r of picked.items) expect(Object.keys(r).sort()).toEqual(expect.arrayContaining(['attempts', 'id', 'type']));
        expect(picked.items.every((r) => !('payload' in r) && !('version' in r))).toBe(true);
        const next = await t.pick(['attempts'], { where, orderBy: { field: 'runAt' }, limit: 4, cursor: picked.nextCursor });
        expect(next.items.map((r) => r.id)).toEqual((await t.query({ where, orderBy: { field: 'runAt' }, limit: 4, cursor: whole.nextCursor })).items.map((r) => r.id));
        await expectCode(t.pick(['nope' as 'type']), 'invalid_query');
      });

      it('pages by id by default and combines a filter with the cursor', async () => {
        const t = store.table('jobs');
        const first = await t.query({ where: { type: 'order.created' }, limit: 10 });
        expect(first.items).toHaveLength(10);
        const second = await t.query({ where: { type: 'order.created' }, limit: 10, cursor: first.nextCursor });
        expect(second.items).toHaveLength(2);
        expect(second.nextCursor).toBeNull();
        expect(first.items[9]!.id < second.items[0]!.id).toBe(true);
      });

      it('refuses unknown fields, JSON fields, bad cursors and bad limits', async () => {
        const t = store.table('jobs');
        await expectCode(t.query({ where: { nope: 1 } }), 'invalid_query');
        await expectCode(t.query({ where: { payload: 'x' } }), 'invalid_query');
        await expectCode(t.query({ orderBy: { field: 'payload' } }), 'invalid_query');
        await expectCode(t.query({ cursor: 'not-a-cursor' }), 'invalid_cursor');
        await expectCode(t.query({ limit: 0 }), 'invalid_query');
        await expectCode(t.query({ limit: 1001 }), 'invalid_query');
      });

      it('treats filter values as data, never as query text', async () => {
        const t = store.table('jobs');
        expect(await t.count({ type: "x' OR '1'='1" })).toBe(0);
        expect(await t.count({ type: { startsWith: '%' } })).toBe(0);
        expect(await t.count()).toBe(25);
      });

      it('deletes what matches and says how many', async () => {
        const t = store.table('jobs');
        expect(await t.deleteWhere({ workspaceId: null })).toBe(5);
        expect(await t.count()).toBe(20);
      });

      it('deletes every match in a transaction, more than a page of them, or refuses the lot past its bound', async () => {
        const t = store.table('jobs');
        for (let i = 0; i < 130; i++) await t.insert(job('bulk.delete', '2026-02-01T00:00:00.000Z', { workspaceId: 'ws_bulk' }));
        const inOne = store.transaction((tx) => tx.table('jobs').deleteWhere({ workspaceId: 'ws_bulk' }));
        if (store.writesPerTransaction >= 130) {
          expect(await inOne).toBe(130);
          expect(await t.count({ workspaceId: 'ws_bulk' })).toBe(0);
        } else {
          await expect(inOne).rejects.toMatchObject({ code: 'transaction_too_large' });
          expect(await t.count({ workspaceId: 'ws_bulk' })).toBe(130);
        }
      });

      it('deletes at most a limit of what matches, a chunk at a time', async () => {
        const t = store.table('jobs');
        expect(await t.deleteWhere({ workspaceId: 'ws_a', type: 'order.created' }, { limit: 4 })).toBe(4);
        expect(await t.count({ workspaceId: 'ws_a', type: 'order.created' })).toBe(6);
        expect(await t.count()).toBe(21);
        expect(await t.deleteWhere({ workspaceId: 'ws_a', type: 'order.created' }, { limit: 4 })).toBe(4);
        expect(await t.deleteWhere({ workspaceId: 'ws_a', type: 'order.created' }, { limit: 4 })).toBe(2);
        expect(await t.deleteWhere({ workspaceId: 'ws_a', type: 'order.created' }, { limit: 4 })).toBe(0);
        expect(await t.count()).toBe(15);
        for (const limit of [0, -1, 1.5, Number.NaN]) {
          await expect(t.deleteWhere({ workspaceId: null }, { limit })).rejects.toMatchObject({ code: 'invalid_query' });
        }
        expect(await t.count()).toBe(15);
      });
    });

    describe('increment', () => {
      it('adds atomically and keeps within bounds', async () => {
        const t = store.table('jobs');
        const row = await t.insert(job('t.x', '2026-01-01T00:00:00.000Z'));
        await Promise.all(Array.from({ length: 40 }, () => t.increment(row.id, 'attempts', 1, { max: 30 }).catch(() => null)));
        const after = await t.get(row.id);
        expect(after?.attempts).toBe(30);
        expect(after?.version).toBe(1);
        await expectCode(t.increment(row.id, 'attempts', -31, { min: 0 }), 'bound_exceeded');
        expect((await t.increment(row.id, 'attempts', -30, { min: 0 })).attempts).toBe(0);
        await expectCode(t.increment('job_missing', 'attempts', 1), 'not_found');
      });
    });

    describe('transaction', () => {
      it('commits every write together', async () => {
        const id = await store.transaction(async (tx) => {
          const ws = await tx.table('workspaces').insert(workspace('acme'));
          await tx.table('jobs').insert(job('t.x', '2026-01-01T00:00:00.000Z', { workspaceId: ws.id }));
          return ws.id;
        });
        expect(await store.table('workspaces').get(id)).not.toBeNull();
        expect(await store.table('jobs').count({ workspaceId: id })).toBe(1);
      });

      it('writes nothing when the function throws', async () => {
        await expect(
          store.transaction(async (tx) => {
            await tx.table('workspaces').insert(workspace('acme'));
            await tx.table('jobs').insert(job('t.x', '2026-01-01T00:00:00.000Z'));
            throw new Error('boom');
          }),
        ).rejects.toThrow('boom');
        expect(await store.table('workspaces').count()).toBe(0);
        expect(await store.table('jobs').count()).toBe(0);
      });

      it('rolls back on a failing write inside', async () => {
        await store.table('workspaces').insert(workspace('taken'));
        await expectCode(
          store.transaction(async (tx) => {
            await tx.table('workspaces').insert(workspace('fresh'));
            await tx.table('workspaces').insert(workspace('taken'));
          }),
          'already_exists',
        );
        expect(await store.table('workspaces').count()).toBe(1);
      });

      it('joins an outer transaction when nested', async () => {
        await expect(
          store.transaction(async (tx) => {
            await tx.transaction(async (inner) => {
              await inner.table('workspaces').insert(workspace('inner'));
            });
            throw new Error('outer fails');
          }),
        ).rejects.toThrow('outer fails');
        expect(await store.table('workspaces').count()).toBe(0);
      });

      it('keeps concurrent read-modify-write transactions from losing updates', async () => {
        const t = store.table('jobs');
        const row = await t.insert(job('t.x', '2026-01-01T00:00:00.000Z'));
        const bump = () =>
          store.transaction(async (tx) => {
            const cur = await tx.table('jobs').get(row.id);
            await new Promise((r) => setTimeout(r, 1));
            await tx.table('jobs').update(row.id, { attempts: cur!.attempts + 1 }, { ifVersion: cur!.version });
          });
        await Promise.all(Array.from({ length: 10 }, bump));
        expect((await t.get(row.id))?.attempts).toBe(10);
      });
    });

    it('answers a ping', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}
