// /v1/mappings over HTTP: versions, activation, validation and preview (nothing saved), reuse between stored
// mappings, and the bad documents the issue names.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestHub, expectProblem, type TestHub } from './helpers.ts';

let t: TestHub;
beforeEach(async () => {
  t = await createTestHub();
});
afterEach(() => t.close());

const productRow = (extra: Record<string, unknown> = {}) => ({
  id: 'shop-product',
  source: { name: 'shop/product', schema: { type: 'object', properties: { code: { type: 'string' }, title: { type: 'string' }, min: { type: 'string' } } } },
  target: { name: 'product', schema: 'hub:api/product-create' },
  fields: { sku: { from: 'code', transform: ['trim'] }, name: 'title', reorderPoint: { from: 'min', type: 'integer' } },
  examples: [{ input: { code: ' A-1 ', title: 'Tee', min: '5' }, output: { sku: 'A-1', name: 'Tee', reorderPoint: 5 } }],
  ...extra,
});

async function versions(key: string): Promise<number> {
  return (await t.call('GET', `/v1/mappings/${key}/versions`)).body.data.length;
}

describe('mappings API', () => {
  it('creates a mapping as version 1, adds versions, and rolls back by activating an older one', async () => {
    const created = await t.call('POST', '/v1/mappings', { body: { document: productRow() } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ key: 'shop-product', activeVersion: 1, latestVersion: 1, targetName: 'product' });
    expect(created.headers.get('location')).toBe('/v1/mappings/shop-product');
    const v2doc = productRow({ title: 'v2', fields: { sku: { from: 'code', transform: ['trim'] }, name: 'title', reorderPoint: { from: 'min', type: 'integer', default: 0 } } });
    const v2 = await t.call('POST', '/v1/mappings/shop-product/versions', { body: { document: v2doc } });
    expect(v2.status).toBe(201);
    expect(v2.body).toMatchObject({ number: 2, hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect((await t.call('GET', '/v1/mappings/shop-product')).body).toMatchObject({ source: 'workspace', activeVersion: 2, document: { title: 'v2' } });
    const back = await t.call('POST', '/v1/mappings/shop-product/activate', { body: { version: 1 } });
    expect(back.body.activeVersion).toBe(1);
    expect((await t.call('GET', '/v1/mappings/shop-product/versions/2')).body.document.title).toBe('v2');
    expect(await versions('shop-product')).toBe(2);
    expectProblem(await t.call('POST', '/v1/mappings/shop-product/activate', { body: { version: 9 } }), 422, 'unknown_reference');
    expectProblem(await t.call('POST', '/v1/mappings', { body: { document: productRow() } }), 409, 'already_exists');
    expectProblem(await t.call('POST', '/v1/mappings', { body: { document: productRow({ id: 'shipped' }) } }), 400, 'validation_failed');
    expectProblem(await t.call('POST', '/v1/mappings/shop-product/versions', { body: { document: productRow({ id: 'other' }) } }), 400, 'validation_failed');
    expectProblem(await t.call('GET', '/v1/mappings/shop-product/versions/7'), 404, 'not_found');
    const events = (await t.hub.deps.store.table('events').query({ where: { type: { startsWith: 'mapping.' } } })).items.map((e) => e.type);
    expect(events).toEqual(['mapping.created', 'mapping.version_created', 'mapping.activated']);
  });

  it('refuses invalid documents with a pointer to each problem, and says so on validate without saving', async () => {
    const bad = productRow({ fields: { sku: { from: 'code', transform: ['explode'] }, name: { from: 'title[' } } });
    const res = expectProblem(await t.call('POST', '/v1/mappings', { body: { document: bad } }), 400, 'validation_failed');
    expect(res.errors.map((e: { field: string }) => e.field).every((f: string) => f.startsWith('/document/fields/'))).toBe(true);
    const unfillable = productRow({ fields: { sku: 'code' } });
    const missing = expectProblem(await t.call('POST', '/v1/mappings', { body: { document: unfillable } }), 400, 'validation_failed');
    expect(missing.errors).toEqual(expect.arrayContaining([expect.objectContaining({ field: '/document/fields', code: 'target_required_unfilled', message: expect.stringContaining('name') })]));
    const report = await t.call('POST', '/v1/mappings/validate', { body: { document: bad } });
    expect(report.status).toBe(200);
    expect(report.body.valid).toBe(false);
    expect(report.body.errors[0].path).toMatch(/^\/fields\//);
    expect((await t.call('POST', '/v1/mappings/validate', { body: { document: productRow() } })).body).toMatchObject({ valid: true, errors: [] });
    expectProblem(await t.call('POST', '/v1/mappings/validate', { body: { document: 'not an object' } }), 400, 'validation_failed');
    expect((await t.call('GET', '/v1/mappings')).body.data).toEqual([]);
  });

  it('previews sample records with per-record errors, and saves nothing', async () => {
    await t.call('POST', '/v1/mappings', { body: { document: productRow() } });
    const res = await t.call('POST', '/v1/mappings/shop-product/preview', { body: { records: [{ code: 'A', title: 'x', min: '2' }, { code: 'B', title: 'y', min: 'many' }, 'nope'] } });
    expect(res.status).toBe(200);
    expect(res.body.records[0]).toEqual({ index: 0, ok: true, value: { sku: 'A', name: 'x', reorderPoint: 2 } });
    expect(res.body.records[1]).toMatchObject({ index: 1, ok: false, errors: [expect.objectContaining({ recordIndex: 1, targetPath: '/reorderPoint', sourcePath: 'min' })] });
    expect(res.body.records[2].ok).toBe(false);
    const draft = await t.call('POST', '/v1/mappings/shop-product/preview', { body: { records: [{ code: 'c' }], document: productRow({ fields: { sku: 'code', name: { const: 'Draft' } }, examples: [{ input: { code: 'c' }, output: { sku: 'c', name: 'Draft' } }] }) } });
    expect(draft.body.records[0].value).toEqual({ sku: 'c', name: 'Draft' });
    expect(await versions('shop-product')).toBe(1);
    expectProblem(await t.call('POST', '/v1/mappings/nope/preview', { body: { records: [{}] } }), 404, 'not_found');
    expectProblem(await t.call('POST', '/v1/mappings/shop-product/preview', { body: { records: [] } }), 400, 'validation_failed');
  });

  it('keeps hostile paths and constants inert', async () => {
    const hostile = "]); process.exit(1); //";
    const doc = { id: 'hostile', source: { name: 's' }, target: { name: 't' }, fields: { [hostile]: { const: '`${process.exit(1)}`' }, b: `[${JSON.stringify(hostile)}]` }, examples: [{ input: {}, output: { [hostile]: '`${process.exit(1)}`' } }] };
    const res = await t.call('POST', '/v1/mappings/hostile/preview', { body: { records: [{ [hostile]: 'data' }], document: doc } });
    expect(res.body.records[0].value).toEqual({ [hostile]: '`${process.exit(1)}`', b: 'data' });
  });

  it('resolves reuse among stored mappings, refuses cycles, and will not delete a mapping in use', async () => {
    const address = { id: 'address', source: { name: 'a' }, target: { name: 'b' }, fields: { city: 'town' }, examples: [{ input: { town: 'Oslo' }, output: { city: 'Oslo' } }] };
    const customer = { id: 'customer', source: { name: 'a' }, target: { name: 'b' }, fields: { where: { from: 'addr', use: 'address' } }, examples: [{ input: { addr: { town: 'Rome' } }, output: { where: { city: 'Rome' } } }] };
    expectProblem(await t.call('POST', '/v1/mappings', { body: { document: customer } }), 400, 'validation_failed');
    expect((await t.call('POST', '/v1/mappings', { body: { document: address } })).status).toBe(201);
    expect((await t.call('POST', '/v1/mappings', { body: { document: customer } })).status).toBe(201);
    const cyclic = { ...address, fields: { city: 'town', back: { from: 'x', use: 'customer' } }, examples: [{ input: { town: 'Oslo' }, output: { city: 'Oslo' } }] };
    const cycle = expectProblem(await t.call('POST', '/v1/mappings/address/versions', { body: { document: cyclic } }), 400, 'validation_failed');
    expect(JSON.stringify(cycle.errors)).toMatch(/cycle/);
    expectProblem(await t.call('DELETE', '/v1/mappings/address'), 409, 'in_use');
    expect((await t.call('DELETE', '/v1/mappings/customer')).status).toBe(204);
    expect((await t.call('DELETE', '/v1/mappings/address')).status).toBe(204);
    expectProblem(await t.call('GET', '/v1/mappings/address'), 404, 'not_found');
  });

  it('needs the mappings scope to write', async () => {
    const key = await t.call('POST', '/v1/api-keys', { body: { name: 'reader', scopes: ['mappings:read'] } });
    expect((await t.call('POST', '/v1/mappings/validate', { key: key.body.secret, body: { document: productRow() } })).status).toBe(200);
    expectProblem(await t.call('POST', '/v1/mappings', { key: key.body.secret, body: { document: productRow() } }), 403, 'insufficient_scope');
  });
});
