import { describe, expect, it } from 'vitest';
import { thrownHubError } from '../../test/hub-error.ts';
import { clearMappingCache, compileMapping } from './compile.ts';
import type { MappingDocument } from './document.ts';

const order: MappingDocument = {
  id: 'order',
  source: { name: 'shop/order' },
  target: {
    name: 'canonical/order',
    schema: {
      type: 'object',
      required: ['number', 'total'],
      additionalProperties: false,
      properties: {
        number: { type: 'string', minLength: 2 },
        total: { type: 'string' },
        placedAt: { type: 'string' },
        lines: { type: 'array', items: { type: 'object', required: ['sku'], properties: { sku: { type: 'string' }, qty: { type: 'integer', minimum: 1 } } } },
      },
    },
  },
  fields: {
    number: { from: 'order_number', type: 'string' },
    total: { from: 'total_price', type: 'decimal', scale: 2 },
    placedAt: { from: 'created_at', type: 'date-time' },
    lines: { each: 'line_items', fields: { sku: 'sku', qty: { from: 'quantity', type: 'integer' } } },
  },
};

describe('compileMapping', () => {
  it('gives the same compiled instance for the same content, whatever the key order', () => {
    const a = compileMapping(order);
    const reordered = JSON.parse(JSON.stringify({ fields: order.fields, target: order.target, source: order.source, id: order.id }));
    expect(compileMapping(reordered)).toBe(a);
  });

  it('compiles changed content into a new instance with a new hash', () => {
    const a = compileMapping(order);
    const changed = { ...order, fields: { ...order.fields, number: 'order_number' } };
    const b = compileMapping(changed);
    expect(b).not.toBe(a);
    expect(b.hash).not.toBe(a.hash);
  });

  it('recompiles when a reused mapping changes under the same id', () => {
    const outer: MappingDocument = { ...order, id: 'outer', target: { name: 't' }, fields: { inner: { use: 'inner' } } };
    const v1: MappingDocument = { id: 'inner', source: { name: 's' }, target: { name: 't' }, fields: { a: 'a' } };
    const v2: MappingDocument = { ...v1, fields: { b: 'a' } };
    const first = compileMapping(outer, { resolve: () => v1 });
    const second = compileMapping(outer, { resolve: () => v2 });
    expect(second).not.toBe(first);
    expect(second.apply({ a: 1 })).toEqual({ ok: true, value: { inner: { b: 1 } } });
    clearMappingCache();
    expect(compileMapping(outer, { resolve: () => v1 })).not.toBe(first);
  });

  it('reports each failing array element at its own index, after earlier elements failed too', () => {
    const m = compileMapping({ id: 'each-errors', source: { name: 's' }, target: { name: 't' }, fields: { lines: { each: 'lines', fields: { q: { from: 'q', type: 'integer', missing: 'error' } } } } });
    const r = m.apply({ lines: [{ q: 'a' }, { q: '2' }, { q: 'b' }] });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.map((e) => [e.targetPath, e.sourcePath])).toEqual([['/lines/0/q', 'lines[0].q'], ['/lines/2/q', 'lines[2].q']]);
  });

  it('refuses an invalid document with a validation_failed error listing each problem', () => {
    const err = thrownHubError(() => compileMapping({ ...order, fields: { a: { frm: 'x' }, b: { from: 'a..b' } } }));
    expect(err.code).toBe('validation_failed');
    expect(err.errors?.map((e) => [e.field, e.code])).toEqual([['/fields/a/frm', 'unknown_operator']]);
    const semantic = thrownHubError(() => compileMapping({ ...order, fields: { b: { from: 'a..b' } } }));
    expect(semantic.errors?.map((e) => [e.field, e.code])).toEqual([['/fields/b/from', 'bad_path']]);
  });

  it('refuses a cycle of reused mappings with a clear error instead of overflowing the stack', () => {
    const a: MappingDocument = { id: 'a', source: { name: 's' }, target: { name: 't' }, fields: { x: { use: 'b' } } };
    const b: MappingDocument = { id: 'b', source: { name: 's' }, target: { name: 't' }, fields: { y: { use: 'a' } } };
    const err = thrownHubError(() => compileMapping(a, { resolve: (id) => ({ a, b })[id] }));
    expect(err.errors).toEqual([{ field: '/fields/x/use', code: 'mapping_cycle', message: 'Reused mappings form a cycle: a -> b -> a' }]);
  });

  it('refuses a reused id it cannot find and a target schema id it does not know', () => {
    const a: MappingDocument = { id: 'a', source: { name: 's' }, target: { name: 't' }, fields: { x: { use: 'nowhere' } } };
    expect(thrownHubError(() => compileMapping(a)).errors?.[0]?.code).toBe('mapping_not_found');
    const b: MappingDocument = { ...a, target: { name: 't', schema: 'hub:test/nothing' }, fields: { x: 'x' } };
    expect(thrownHubError(() => compileMapping(b)).errors?.[0]).toMatchObject({ field: '/target/schema', code: 'schema_unknown' });
  });

  it('uses a registered schema id for the target', () => {
    const m = compileMapping({ ...order, target: { name: 'ws', schema: 'hub:common#/$defs/jsonObject' }, fields: { a: 'a' } });
    expect(m.apply({ a: 1 })).toEqual({ ok: true, value: { a: 1 } });
  });
});

describe('apply', () => {
  const m = compileMapping(order);

  it('maps a good record', () => {
    const record = { order_number: 1001, total_price: '25.5', created_at: '2024-01-02T03:04:05Z', line_items: [{ sku: 'a', quantity: '2' }] };
    expect(m.apply(record)).toEqual({
      ok: true,
      value: { number: '1001', total: '25.50', placedAt: '2024-01-02T03:04:05.000Z', lines: [{ sku: 'a', qty: 2 }] },
    });
  });

  it('reports every uncoercible value with record index, target path and source path, and no value', () => {
    const record = { order_number: 1001, total_price: 'abc', created_at: 'yesterday', line_items: [{ sku: 'a', quantity: 1 }, { sku: 'b', quantity: 'x' }] };
    const result = m.apply(record, 41);
    expect(result.ok).toBe(false);
    expect(result).not.toHaveProperty('value');
    if (result.ok) return;
    expect(result.errors.map((e) => [e.recordIndex, e.targetPath, e.sourcePath, e.code])).toEqual([
      [41, '/total', 'total_price', 'coercion_failed'],
      [41, '/placedAt', 'created_at', 'coercion_failed'],
      [41, '/lines/1/qty', 'line_items[1].quantity', 'coercion_failed'],
    ]);
    expect(result.errors[1]?.message).toBe('cannot make a date-time of the text "yesterday" (expected iso)');
  });

  it('reports records of the wrong shape instead of throwing', () => {
    expect(m.apply('text', 2)).toEqual({
      ok: false,
      errors: [{ recordIndex: 2, targetPath: '', sourcePath: '$', code: 'wrong_shape', message: 'a record must be an object, found the text "text"' }],
    });
    const result = m.apply({ order_number: 'A1', total_price: 1, line_items: { sku: 'x' } }, 0);
    expect(result).toMatchObject({ ok: false, errors: [{ targetPath: '/lines', sourcePath: 'line_items', code: 'wrong_shape' }] });
    const nested = compileMapping({ ...order, target: { name: 't' }, fields: { city: 'customer.address.city' } }).apply({ customer: { address: [1] } });
    expect(nested).toMatchObject({ ok: false, errors: [{ message: 'customer.address.city: expected an object at customer.address, found an array' }] });
  });

  it('validates each output against the target schema and names the rule that filled the field', () => {
    const result = m.apply({ order_number: 'A', total_price: 3, line_items: [{ quantity: 0 }] }, 5);
    expect(result).toEqual({
      ok: false,
      errors: [
        { recordIndex: 5, targetPath: '/number', sourcePath: 'order_number', code: 'target_invalid', message: '/number must NOT have fewer than 2 characters (target schema)' },
        { recordIndex: 5, targetPath: '/lines/0/sku', sourcePath: 'line_items[0].sku', code: 'target_invalid', message: '/lines/0/sku is required (target schema)' },
        { recordIndex: 5, targetPath: '/lines/0/qty', sourcePath: 'line_items[0].quantity', code: 'target_invalid', message: '/lines/0/qty must be >= 1 (target schema)' },
      ],
    });
  });

  it('skips output validation when asked to', () => {
    const loose = compileMapping(order, { validateOutput: false });
    expect(loose.apply({ order_number: 'A', total_price: 3 })).toEqual({ ok: true, value: { number: 'A', total: '3.00' } });
  });

  it('maps many records, keeping only whole values', () => {
    const batch = m.applyMany([{ order_number: 'A1', total_price: 1 }, { order_number: 'A2', total_price: 'x' }, 7], 100);
    expect(batch.values).toEqual([{ number: 'A1', total: '1.00' }, undefined, undefined]);
    expect(batch.failed).toBe(2);
    expect(batch.errors.map((e) => e.recordIndex)).toEqual([101, 102]);
  });

  it('does not let one failed record leak errors into the next', () => {
    expect(m.apply({ order_number: 'A1', total_price: 'x' }).ok).toBe(false);
    expect(m.apply({ order_number: 'A1', total_price: '1' })).toEqual({ ok: true, value: { number: 'A1', total: '1.00' } });
  });

  it('caps the errors of one record', () => {
    const fields = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`f${i}`, { from: 'x', type: 'integer' as const }]));
    const wide = compileMapping({ id: 'wide', source: { name: 's' }, target: { name: 't' }, fields });
    const result = wide.apply({ x: 'no' });
    expect(result.ok ? 0 : result.errors.length).toBe(100);
  });
});

describe('documents that would exhaust the stack', () => {
  it('refuses a document nested too deeply with a clear error', () => {
    let rule: Record<string, unknown> = { from: 'x' };
    for (let i = 0; i < 5000; i++) rule = { fields: { f: rule } };
    const err = thrownHubError(() => compileMapping({ id: 'deep', source: { name: 's' }, target: { name: 't' }, fields: { f: rule } }));
    expect(err.errors).toEqual([{ field: '', code: 'too_deep', message: 'The mapping nests deeper than 64 levels' }]);
  });
});
