// The Appwrite store against the TablesDB test server (every request checked against Appwrite's published
// OpenAPI), and against a live Appwrite when APPWRITE_ENDPOINT, APPWRITE_PROJECT and APPWRITE_API_KEY are set.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isHubError } from '../src/errors.ts';
import { createAppwriteStore, type AppwriteStore } from '../src/store/appwrite.ts';
import type { Store } from '../src/store/types.ts';
import { startTablesDbServer, type TablesDbServer } from './appwrite/tablesdb-server.ts';
import { describeStoreContract } from './store-contract.ts';

let server: TablesDbServer;
beforeAll(async () => {
  server = await startTablesDbServer();
});
afterAll(async () => {
  await server.close();
});

async function freshStore(options: Partial<Parameters<typeof createAppwriteStore>[0]> = {}): Promise<AppwriteStore> {
  server.reset();
  const store = createAppwriteStore({ endpoint: server.url, projectId: server.projectId, apiKey: server.apiKey, sleep: async () => undefined, ...options });
  await store.provision();
  return store;
}

describeStoreContract('appwrite (TablesDB test server)', {
  // real (jittered) backoff: the contract runs concurrent transactions that must converge
  create: () => freshStore({ sleep: (ms) => new Promise((r) => setTimeout(r, ms)) }),
  destroy: async (store: Store) => {
    await store.close();
    // every request the adapter sent must be one Appwrite's published API allows
    expect(server.violations).toEqual([]);
  },
});

describe('appwrite store against an unreliable Appwrite', () => {
  it('retries 5xx and 429 answers and then succeeds', async () => {
    const store = await freshStore();
    server.injectFaults({ status: 503, count: 2 });
    const ws = await store.table('workspaces').insert({ name: 'A', slug: 'a', currency: 'EUR', timezone: 'UTC' });
    server.injectFaults({ status: 429, count: 2 });
    expect(await store.table('workspaces').get(ws.id)).toEqual(ws);
    expect(server.violations).toEqual([]);
  });

  it('gives up with a retryable store_unavailable, writing nothing twice', async () => {
    const store = await freshStore({ maxAttempts: 3 });
    server.injectFaults({ status: 500, count: 3 });
    try {
      await store.table('workspaces').insert({ name: 'A', slug: 'a', currency: 'EUR', timezone: 'UTC' });
      expect.unreachable();
    } catch (err) {
      expect(isHubError(err, 'store_unavailable')).toBe(true);
      expect((err as { retryable: boolean }).retryable).toBe(true);
    }
    expect(await store.table('workspaces').count()).toBe(0);
  });

  it('treats a request that never answers as a timeout and retries it', async () => {
    const store = await freshStore({ requestTimeoutMs: 200 });
    server.injectFaults({ status: 'timeout', count: 1 });
    const ws = await store.table('workspaces').insert({ name: 'A', slug: 'a', currency: 'EUR', timezone: 'UTC' });
    expect(await store.table('workspaces').get(ws.id)).toEqual(ws);
  });
});

const live = process.env.APPWRITE_ENDPOINT && process.env.APPWRITE_PROJECT && process.env.APPWRITE_API_KEY;
if (live) {
  describeStoreContract('appwrite (live)', {
    create: async () => {
      const store = createAppwriteStore({
        endpoint: process.env.APPWRITE_ENDPOINT!,
        projectId: process.env.APPWRITE_PROJECT!,
        apiKey: process.env.APPWRITE_API_KEY!,
        databaseId: `hub_test_${Date.now().toString(36)}`,
      });
      await store.provision();
      return store;
    },
    destroy: async (store) => {
      const s = store as AppwriteStore;
      await s.tables.delete({ databaseId: s.databaseId }).catch(() => undefined);
    },
  });
} else {
  describe('appwrite (live)', () => {
    it.skip('runs when APPWRITE_ENDPOINT, APPWRITE_PROJECT and APPWRITE_API_KEY are set (not set here)', () => undefined);
  });
}
