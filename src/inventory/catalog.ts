// Looks up what requests name (SKUs, product ids, locations) in bulk, and reports every unknown one at once.
import { HubError, type FieldError } from '../errors.ts';
import type { InventoryItemsRow, LocationsRow, ProductsRow } from '../store/types.ts';
import type { InventoryContext } from './context.ts';
import type { StockSession, WorkingItem } from './stock-batch.ts';

export interface CatalogEntry {
  product: ProductsRow;
  item: InventoryItemsRow;
}

const CHUNK = 200;

/** A few rows by id are cheaper as primary-key reads than as one query. */
const FEW = 8;

async function productsWhere(ctx: InventoryContext, field: 'sku' | 'id', values: string[]): Promise<ProductsRow[]> {
  if (field === 'id' && values.length <= FEW) {
    const rows = await Promise.all(values.map((id) => ctx.db.table('products').get(id)));
    return rows.filter((p): p is ProductsRow => p !== null && p.workspaceId === ctx.workspaceId);
  }
  const out: ProductsRow[] = [];
  for (let i = 0; i < values.length; i += CHUNK) {
    const slice = values.slice(i, i + CHUNK);
    const page = await ctx.db.table('products').query({ where: { workspaceId: ctx.workspaceId, [field]: { in: slice } }, limit: slice.length });
    out.push(...page.items);
  }
  return out;
}

async function itemsOf(ctx: InventoryContext, products: ProductsRow[]): Promise<Map<string, InventoryItemsRow>> {
  const ids = products.map((p) => p.inventoryItemId);
  const byId = new Map<string, InventoryItemsRow>();
  if (ids.length <= FEW) {
    for (const it of await Promise.all(ids.map((id) => ctx.db.table('inventory_items').get(id)))) if (it && it.workspaceId === ctx.workspaceId) byId.set(it.id, it);
    return byId;
  }
  for (let i = 0; i < ids.length; i += CHUNK) {
    const slice = ids.slice(i, i + CHUNK);
    const page = await ctx.db.table('inventory_items').query({ where: { workspaceId: ctx.workspaceId, id: { in: slice } }, limit: slice.length });
    for (const it of page.items) byId.set(it.id, it);
  }
  return byId;
}

export interface ProductRef {
  sku?: string;
  productId?: string;
  /** JSON pointer of the reference in the request, for the error. */
  pointer: string;
}

/**
 * Resolves each reference (by SKU or product id) to its product and inventory item. Unknown ones fail together
 * with `unknown_reference`, one field error each, before anything is written. In a stock session, what the session
 * has read is not read again, and the item is the session's working row.
 */
export async function resolveProducts(ctx: InventoryContext, refs: ProductRef[]): Promise<CatalogEntry[]> {
  const s = ctx.session;
  const skus = [...new Set(refs.filter((r) => r.sku !== undefined && !s?.productsBySku.has(r.sku)).map((r) => r.sku!))];
  const ids = [...new Set(refs.filter((r) => r.sku === undefined && r.productId !== undefined && !s?.productsById.has(r.productId)).map((r) => r.productId!))];
  const products = [...(skus.length ? await productsWhere(ctx, 'sku', skus) : []), ...(ids.length ? await productsWhere(ctx, 'id', ids) : [])];
  const items = await itemsOf(ctx, s ? products.filter((p) => !s.items.has(p.inventoryItemId)) : products);
  s?.rememberProducts(products, items);
  const bySku = s?.productsBySku ?? new Map(products.map((p) => [p.sku, p]));
  const byId = s?.productsById ?? new Map(products.map((p) => [p.id, p]));
  const errors: FieldError[] = [];
  const out: CatalogEntry[] = [];
  for (const ref of refs) {
    const product = ref.sku !== undefined ? bySku.get(ref.sku) : ref.productId !== undefined ? byId.get(ref.productId) : undefined;
    const item = product ? (s?.items.get(product.inventoryItemId)?.row ?? items.get(product.inventoryItemId)) : undefined;
    if (!product || !item) {
      errors.push(
        ref.sku !== undefined
          ? { field: `${ref.pointer}/sku`, code: 'unknown', message: `there is no product with SKU "${ref.sku}"` }
          : ref.productId !== undefined
            ? { field: `${ref.pointer}/productId`, code: 'unknown', message: `there is no product ${ref.productId}` }
            : { field: ref.pointer, code: 'required', message: 'needs a sku or a productId' },
      );
      continue;
    }
    out.push({ product, item });
  }
  if (errors.length) throw new HubError('unknown_reference', errors.length === 1 ? errors[0]!.message.replace(/^there/, 'There') : `${errors.length} products do not exist`, { errors });
  return out;
}

/**
 * Reads into the session, in a few queries, the products, items, locations and levels that the stock operations
 * about to run name (SKU at a location code), so that they do not read them one by one. Unknown ones are left for
 * the operations to report.
 */
export async function preloadStock(ctx: InventoryContext & { session: StockSession }, pairs: { sku: string; locationCode: string }[]): Promise<void> {
  const s = ctx.session;
  const skus = [...new Set(pairs.map((p) => p.sku))].filter((sku) => !s.productsBySku.has(sku));
  if (skus.length) {
    const products = await productsWhere(ctx, 'sku', skus);
    s.rememberProducts(products, await itemsOf(ctx, products));
  }
  const codes = [...new Set(pairs.map((p) => p.locationCode))].filter((code) => !s.locationsByCode.has(code));
  for (let i = 0; i < codes.length; i += CHUNK) {
    const slice = codes.slice(i, i + CHUNK);
    for (const loc of (await ctx.db.table('locations').query({ where: { workspaceId: ctx.workspaceId, code: { in: slice } }, limit: slice.length })).items) s.rememberLocation(loc);
  }
  const byLocation = new Map<string, WorkingItem[]>();
  for (const p of pairs) {
    const loc = s.locationsByCode.get(p.locationCode);
    const product = s.productsBySku.get(p.sku);
    const item = product && s.items.get(product.inventoryItemId);
    if (!loc || !item) continue;
    const list = byLocation.get(loc.id) ?? [];
    list.push(item);
    byLocation.set(loc.id, list);
  }
  for (const [locationId, items] of byLocation) await s.loadLevels(ctx.db, items, locationId);
}

/** The workspace's location with this code, or `unknown_reference` at `pointer`. */
export async function locationByCode(ctx: InventoryContext, code: string, pointer = '/locationCode'): Promise<LocationsRow> {
  const s = ctx.session;
  let loc = s?.locationsByCode.get(code);
  if (!loc) {
    loc = (await ctx.db.table('locations').query({ where: { workspaceId: ctx.workspaceId, code }, limit: 1 })).items[0];
    if (loc) s?.rememberLocation(loc);
  }
  if (!loc) {
    throw new HubError('unknown_reference', `There is no location with code "${code}"`, {
      errors: [{ field: pointer, code: 'unknown', message: `there is no location with code "${code}"` }],
    });
  }
  return loc;
}

/** Every location of the workspace, in allocation order (priority, then code). */
export async function loadLocations(ctx: InventoryContext): Promise<LocationsRow[]> {
  const page = await ctx.db.table('locations').query({ where: { workspaceId: ctx.workspaceId }, limit: 1000 });
  return page.items.sort((a, b) => a.priority - b.priority || (a.code < b.code ? -1 : a.code > b.code ? 1 : 0));
}

/** Several locations as resolveLocation checks them, read in one query; the first bad one is the error. */
export async function resolveLocations(ctx: InventoryContext, refs: { id: string; pointer: string }[], mustBeActive = true): Promise<LocationsRow[]> {
  const ids = [...new Set(refs.map((r) => r.id))];
  const s = ctx.session;
  if (ids.length === 1) {
    const loc = await resolveLocation(ctx, refs[0]!.id, refs[0]!.pointer, mustBeActive);
    return refs.map(() => loc);
  }
  if (s && ids.every((id) => s.locationsById.has(id))) return refs.map((r) => checkedLocation(ctx, s.locationsById.get(r.id)!, r.id, r.pointer, mustBeActive));
  const found = new Map<string, LocationsRow>();
  for (let i = 0; i < ids.length; i += CHUNK) {
    const slice = ids.slice(i, i + CHUNK);
    for (const loc of (await ctx.db.table('locations').query({ where: { workspaceId: ctx.workspaceId, id: { in: slice } }, limit: slice.length })).items) {
      found.set(loc.id, loc);
      s?.rememberLocation(loc);
    }
  }
  return refs.map((r) => checkedLocation(ctx, found.get(r.id) ?? null, r.id, r.pointer, mustBeActive));
}

/** A location of the workspace, or `unknown_reference` at the pointer. Inactive ones are refused when `mustBeActive`. */
export async function resolveLocation(ctx: InventoryContext, id: string, pointer: string, mustBeActive = true): Promise<LocationsRow> {
  const s = ctx.session;
  let loc = s?.locationsById.get(id) ?? null;
  if (!loc) {
    loc = await ctx.db.table('locations').get(id);
    if (loc && loc.workspaceId === ctx.workspaceId) s?.rememberLocation(loc);
  }
  return checkedLocation(ctx, loc, id, pointer, mustBeActive);
}

function checkedLocation(ctx: InventoryContext, loc: LocationsRow | null, id: string, pointer: string, mustBeActive: boolean): LocationsRow {
  if (!loc || loc.workspaceId !== ctx.workspaceId) {
    throw new HubError('unknown_reference', `There is no location ${id}`, { errors: [{ field: pointer, code: 'unknown', message: `there is no location ${id}` }] });
  }
  if (mustBeActive && !loc.active) {
    throw new HubError('invalid_transition', `Location ${loc.code} is inactive`, { errors: [{ field: pointer, code: 'inactive', message: 'the location is inactive' }] });
  }
  return loc;
}
