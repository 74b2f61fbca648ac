// /v1/products: the catalogue. Creating a product creates its inventory item; deleting is for mistakes only.
import { createProduct, deleteProduct, updateProduct, type ProductInput, type ProductPatch } from '../../../inventory/products.ts';
import type { RouteTable } from '../../define-route.ts';
import { expectVersion, jsonWithEtag, respondResource } from '../../http.ts';
import { LIST_PARAMS, listOwned, loadOwned, PROBLEM } from '../common.ts';
import { pathParam, runInventory } from './shared.ts';

const PRODUCT = 'hub:tables/products';

export function registerProductRoutes(routes: RouteTable): void {
  routes.add<ProductInput>(
    {
      method: 'post',
      path: '/v1/products',
      operationId: 'createProduct',
      summary: 'Create a product (and its inventory item)',
      tag: 'Products',
      auth: { resource: 'products', action: 'write' },
      body: { schema: 'hub:api/product-create' },
      responses: { 201: { description: 'The product', schema: PRODUCT, headers: ['ETag', 'Location'] }, 409: PROBLEM('A product with this SKU exists') },
    },
    async (c, { body }) => {
      const product = await runInventory(c, (ctx) => createProduct(ctx, body));
      return jsonWithEtag(c, product, 201, `/v1/products/${product.id}`);
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/products',
      operationId: 'listProducts',
      summary: 'List products, newest first',
      tag: 'Products',
      auth: { resource: 'products', action: 'read' },
      query: [
        ...LIST_PARAMS,
        { name: 'sku', description: 'Only the product with this SKU.', schema: { type: 'string', maxLength: 100 } },
        { name: 'barcode', description: 'Only products with this barcode.', schema: { type: 'string', maxLength: 64 } },
        { name: 'status', description: 'Only products in this status.', schema: { type: 'string', enum: ['active', 'archived'] } },
      ],
      responses: { 200: { description: 'A page of products', schema: { list: PRODUCT } } },
    },
    (c, { query }) => listOwned(c, 'products', query, { sku: query.sku as string | undefined, barcode: query.barcode as string | undefined, status: query.status as string | undefined }),
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/products/{id}',
      operationId: 'getProduct',
      summary: 'Get a product',
      tag: 'Products',
      auth: { resource: 'products', action: 'read' },
      responses: { 200: { description: 'The product', schema: PRODUCT, headers: ['ETag'] }, 404: PROBLEM('No such product') },
    },
    async (c) => respondResource(c, await loadOwned(c, 'products', pathParam(c, 'id'))),
  );

  routes.add<ProductPatch>(
    {
      method: 'patch',
      path: '/v1/products/{id}',
      operationId: 'updateProduct',
      summary: 'Change a product',
      tag: 'Products',
      auth: { resource: 'products', action: 'write' },
      body: { schema: 'hub:api/product-update' },
      ifMatch: true,
      responses: { 200: { description: 'The product', schema: PRODUCT, headers: ['ETag'] }, 404: PROBLEM('No such product'), 409: PROBLEM('Another product has this SKU'), 412: PROBLEM('Stale If-Match') },
    },
    async (c, { body }) => {
      const saved = await runInventory(c, async (ctx) => {
        const product = await loadOwned(c, 'products', pathParam(c, 'id'), ctx.db);
        return updateProduct(ctx, product, body, expectVersion(c, product));
      });
      return jsonWithEtag(c, saved);
    },
  );

  routes.add(
    {
      method: 'delete',
      path: '/v1/products/{id}',
      operationId: 'deleteProduct',
      summary: 'Delete a product that has no stock history (archive the others)',
      tag: 'Products',
      auth: { resource: 'products', action: 'write' },
      ifMatch: true,
      responses: { 204: { description: 'Deleted' }, 404: PROBLEM('No such product'), 409: PROBLEM('The product has stock history'), 412: PROBLEM('Stale If-Match') },
    },
    async (c) => {
      await runInventory(c, async (ctx) => {
        const product = await loadOwned(c, 'products', pathParam(c, 'id'), ctx.db);
        await deleteProduct(ctx, product, expectVersion(c, product));
      });
      return c.body(null, 204);
    },
  );
}
