// Property: random concurrent receive / adjust / transfer / import / reserve / release / fulfil / cancel
// workloads never break an invariant of the canonical model (embedded SQLite).
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { createInventoryFixture } from './inventory-fixture.ts';
import { checkInvariants, createWorld, runWorkload, workloadArb } from './inventory-model.ts';

describe('inventory invariants under concurrent random workloads', () => {
  it('keeps available = on hand - reserved, no oversell, and a ledger that replays to the stored state', async () => {
    await fc.assert(
      fc.asyncProperty(workloadArb(20, 8), async (rounds) => {
        const f = await createInventoryFixture();
        try {
          const world = await createWorld(f);
          await runWorkload(world, rounds);
          await checkInvariants(world);
        } finally {
          await f.close();
        }
      }),
      // As in the Appwrite suite: shrinking stops before the test's timeout, so a failure keeps its seed and error.
      { numRuns: 100, plugins: [fc.interruptAfterTimeLimit(90_000, { failOnInterrupt: true })] },
    );
  }, 120_000);
});
