// Read-only answers about stock: what an item has where, and whether a set of lines could be reserved now.
import type { InventoryItemsRow, ProductsRow } from '../store/types.ts';
import { loadLocations, resolveProducts, type ProductRef } from './catalog.ts';
import type { InventoryContext } from './context.ts';
import { available } from './stock-batch.ts';

export interface Availability {
  inventoryItemId: string;
  productId: string;
  sku: string;
  onHand: number;
  reserved: number;
  available: number;
  allowBackorders: boolean;
  locations: { locationId: string; code: string; active: boolean; onHand: number; reserved: number; available: number }[];
}

export async function availabilityOf(ctx: InventoryContext, item: InventoryItemsRow, product: ProductsRow): Promise<Availability> {
  const locations = await loadLocations(ctx);
  const levels = await ctx.db.table('stock_levels').query({ where: { workspaceId: ctx.workspaceId, inventoryItemId: item.id }, limit: 1000 });
  const byLocation = new Map(levels.items.map((l) => [l.locationId, l]));
  return {
    inventoryItemId: item.id,
    productId: product.id,
    sku: product.sku,
    onHand: item.onHand,
    reserved: item.reserved,
    available: available(item),
    allowBackorders: product.allowBackorders,
    locations: locations
      .filter((loc) => byLocation.has(loc.id))
      .map((loc) => {
        const l = byLocation.get(loc.id)!;
        return { locationId: loc.id, code: loc.code, active: loc.active, onHand: l.onHand, reserved: l.reserved, available: available(l) };
      }),
  };
}

export interface CheckLine extends Omit<ProductRef, 'pointer'> {
  quantity: number;
  locationId?: string;
}

export interface CheckResult {
  sufficient: boolean;
  lines: { sku: string; locationId: string | null; requested: number; available: number; shortfall: number; backorderable: boolean }[];
}

/**
 * Whether the lines could be reserved now, counting lines of the same SKU together, at active locations (or the
 * location a line names). Nothing is reserved.
 */
export async function checkStock(ctx: InventoryContext, lines: CheckLine[]): Promise<CheckResult> {
  const entries = await resolveProducts(ctx, lines.map((l, i) => ({ sku: l.sku, productId: l.productId, pointer: `/lines/${i}` })));
  const active = new Set((await loadLocations(ctx)).filter((l) => l.active).map((l) => l.id));
  const used = new Map<string, number>();
  const out: CheckResult['lines'] = [];
  for (const [i, line] of lines.entries()) {
    const { product, item } = entries[i]!;
    const levels = await ctx.db.table('stock_levels').query({ where: { workspaceId: ctx.workspaceId, inventoryItemId: item.id }, limit: 1000 });
    const eligible = levels.items.filter((l) => active.has(l.locationId) && (!line.locationId || l.locationId === line.locationId));
    const key = `${item.id}|${line.locationId ?? '*'}`;
    const free = Math.max(eligible.reduce((sum, l) => sum + Math.max(available(l), 0), 0) - (used.get(key) ?? 0), 0);
    used.set(key, (used.get(key) ?? 0) + line.quantity);
    const shortfall = Math.max(line.quantity - free, 0);
    out.push({ sku: product.sku, locationId: line.locationId ?? null, requested: line.quantity, available: free, shortfall, backorderable: product.allowBackorders });
  }
  return { sufficient: out.every((l) => l.shortfall === 0 || l.backorderable), lines: out };
}
