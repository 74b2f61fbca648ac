// A store with one workspace and a few locations and products, and shorthands over the inventory library.
import { createWorkspace } from '../src/bootstrap.ts';
import { inTransaction, type InventoryContext } from '../src/inventory/context.ts';
import { createProduct, type ProductInput } from '../src/inventory/products.ts';
import { createManualClock } from '../src/lib/clock.ts';
import { createSqliteStore } from '../src/store/sqlite.ts';
import type { LocationsRow, ProductsRow, Store } from '../src/store/types.ts';

export interface InventoryFixture {
  store: Store;
  clock: ReturnType<typeof createManualClock>;
  workspaceId: string;
  base(): Omit<InventoryContext, 'db'>;
  run<R>(fn: (ctx: InventoryContext) => Promise<R>): Promise<R>;
  /** A context over the store itself, for reads. */
  ctx(): InventoryContext;
  location(code: string, priority?: number): Promise<LocationsRow>;
  product(sku: string, extra?: Partial<ProductInput>): Promise<ProductsRow>;
  close(): Promise<void>;
}

export async function createInventoryFixture(store?: Store): Promise<InventoryFixture> {
  const clock = createManualClock(Date.parse('2026-03-01T12:00:00Z'));
  const s = store ?? createSqliteStore({ path: ':memory:', clock });
  const { workspace } = await createWorkspace(s, clock, { name: 'Acme', actor: 'test' });
  const base = () => ({ workspaceId: workspace.id, now: new Date(clock.now()).toISOString(), correlationId: null });
  const run = <R>(fn: (ctx: InventoryContext) => Promise<R>) => inTransaction(s, base(), fn);
  return {
    store: s,
    clock,
    workspaceId: workspace.id,
    base,
    run,
    ctx: () => ({ ...base(), db: s }),
    location: (code, priority = 10) =>
      s.table('locations').insert({ workspaceId: workspace.id, code, name: `Location ${code}`, type: 'warehouse', address: null, priority, active: true }),
    product: (sku, extra = {}) => run((ctx) => createProduct(ctx, { sku, name: `Product ${sku}`, ...extra })),
    close: () => s.close(),
  };
}
