// The catalogue: products with their inventory items (created together), SKU changes carried to the stock
// rows, and deletion refused once a product has history (archive it instead).
import { HubError } from '../errors.ts';
import { newId } from '../lib/ids.ts';
import type { ProductsRow, RowPatch } from '../store/types.ts';
import { emit, type InventoryContext } from './context.ts';

export interface ProductInput {
  sku: string;
  name: string;
  description?: string | null;
  barcode?: string | null;
  attributes?: Record<string, unknown>;
  unitOfMeasure?: string;
  reorderPoint?: number | null;
  safetyStock?: number;
  leadTimeDays?: number;
  allowBackorders?: boolean;
  status?: 'active' | 'archived';
}

export type ProductPatch = Partial<ProductInput>;

export async function createProduct(ctx: InventoryContext, input: ProductInput): Promise<ProductsRow> {
  const id = newId('prd');
  const inventoryItemId = newId('inv');
  const product = await ctx.db.table('products').insert({
    id,
    workspaceId: ctx.workspaceId,
    sku: input.sku,
    name: input.name,
    description: input.description ?? null,
    barcode: input.barcode ?? null,
    attributes: input.attributes ?? {},
    unitOfMeasure: input.unitOfMeasure ?? 'each',
    reorderPoint: input.reorderPoint ?? null,
    safetyStock: input.safetyStock ?? 0,
    leadTimeDays: input.leadTimeDays ?? 0,
    allowBackorders: input.allowBackorders ?? false,
    status: input.status ?? 'active',
    inventoryItemId,
  });
  await ctx.db.table('inventory_items').insert({
    id: inventoryItemId,
    workspaceId: ctx.workspaceId,
    productId: id,
    sku: input.sku,
    onHand: 0,
    reserved: 0,
    averageCost: '0.00',
    movementSeq: 0,
    lastMovementAt: null,
  });
  await emit(ctx, 'product.created', id, { product });
  return product;
}

export async function updateProduct(ctx: InventoryContext, product: ProductsRow, patch: ProductPatch, ifVersion: number): Promise<ProductsRow> {
  const saved = await ctx.db.table('products').update(product.id, patch as RowPatch<ProductsRow>, { ifVersion });
  if (patch.sku !== undefined && patch.sku !== product.sku) {
    // Stock rows carry the SKU for reports; movements keep the SKU they were recorded under.
    await ctx.db.table('inventory_items').update(product.inventoryItemId, { sku: patch.sku });
    const levels = await ctx.db.table('stock_levels').query({ where: { workspaceId: ctx.workspaceId, inventoryItemId: product.inventoryItemId }, limit: 1000 });
    for (const l of levels.items) await ctx.db.table('stock_levels').update(l.id, { sku: patch.sku });
  }
  const changes = Object.keys(patch).filter((k) => JSON.stringify((patch as Record<string, unknown>)[k]) !== JSON.stringify((product as Record<string, unknown>)[k]));
  if (changes.length) await emit(ctx, 'product.updated', product.id, { product: saved, changes });
  return saved;
}

/** Deletes a product that has never moved stock nor been reserved; anything with history must be archived. */
export async function deleteProduct(ctx: InventoryContext, product: ProductsRow, ifVersion: number): Promise<void> {
  const item = await ctx.db.table('inventory_items').get(product.inventoryItemId);
  const allocated = await ctx.db.table('allocations').exists({ workspaceId: ctx.workspaceId, inventoryItemId: product.inventoryItemId });
  if ((item && (item.movementSeq > 0 || item.reserved !== 0)) || allocated) {
    throw new HubError('in_use', `Product ${product.sku} has stock history; archive it (status "archived") instead of deleting it`, {
      extra: { productId: product.id },
    });
  }
  await ctx.db.table('products').delete(product.id, { ifVersion });
  await ctx.db.table('stock_levels').deleteWhere({ workspaceId: ctx.workspaceId, inventoryItemId: product.inventoryItemId });
  if (item) await ctx.db.table('inventory_items').delete(item.id);
  await emit(ctx, 'product.deleted', product.id, { productId: product.id, sku: product.sku });
}
