import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createSqliteStore } from '../src/store/sqlite.ts';
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
});
