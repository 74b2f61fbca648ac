// The canonical inventory on the Appwrite store (TablesDB test server, every request checked against the published
// API), where transactions are optimistic and really interleave: no oversell, and the invariants of random
// concurrent workloads hold.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importOrder, reserveOrder } from '../../src/inventory/orders.ts';
import { receiveStock } from '../../src/inventory/movements.ts';
import { isHubError } from '../../src/errors.ts';
import { createAppwriteStore } from '../../src/store/appwrite.ts';
import { createInventoryFixture } from '../inventory-fixture.ts';
import { checkInvariants, createWorld, runWorkload, workloadArb } from '../inventory-model.ts';
import { startTablesDbServer, type TablesDbServer } from './tablesdb-server.ts';

let server: TablesDbServer;
beforeAll(async () => {
  server = await startTablesDbServer();
});
afterAll(() => server.close());

async function appwriteFixture() {
  server.reset();
  const store = createAppwriteStore({ endpoint: server.url, projectId: server.projectId, apiKey: server.apiKey, sleep: (ms) => new Promise((r) => setTimeout(r, ms)) });
  await store.provision();
  return createInventoryFixture(store);
}

describe('inventory on the Appwrite store', () => {
  it('reserves a scarce SKU for concurrent orders without overselling', async () => {
    const f = await appwriteFixture();
    try {
      const loc = await f.location('WH', 1);
      await f.product('HOT');
      await f.run((ctx) => receiveStock(ctx, { locationId: loc.id, lines: [{ sku: 'HOT', quantity: 5, unitCost: '2' }] }));
      const orders = [];
      for (let i = 0; i < 12; i++) {
        orders.push((await f.run((ctx) => importOrder(ctx, { channel: 'web', externalId: `${i}`, reserve: false, lines: [{ sku: 'HOT', quantity: 1 }] }, 'USD'))).order);
      }
      const outcomes = await Promise.allSettled(orders.map((o) => reserveOrder(f.store, f.base(), o.id)));
      const won = outcomes.filter((o) => o.status === 'fulfilled').length;
      for (const o of outcomes) if (o.status === 'rejected') expect(isHubError(o.reason, 'insufficient_stock'), String(o.reason)).toBe(true);
      expect(won).toBe(5);
      const item = (await f.store.table('inventory_items').query()).items[0]!;
      expect(item).toMatchObject({ onHand: 5, reserved: 5 });
      expect(server.violations).toEqual([]);
    } finally {
      await f.close();
    }
  }, 60_000);

  it('keeps every invariant under random concurrent workloads', async () => {
    await fc.assert(
      fc.asyncProperty(workloadArb(8, 5), async (rounds) => {
        const f = await appwriteFixture();
        try {
          const world = await createWorld(f);
          await runWorkload(world, rounds);
          await checkInvariants(world);
          expect(server.violations).toEqual([]);
        } finally {
          await f.close();
        }
      }),
      // A failure is shrunk, and each shrinking run costs a second or more here: stop shrinking before the test's
      // timeout, so the failure is reported with its seed and error rather than lost to a bare "timed out".
      { numRuns: 10, plugins: [fc.interruptAfterTimeLimit(90_000, { failOnInterrupt: true })] },
    );
  }, 120_000);
});
