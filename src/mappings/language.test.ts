import { describe, expect, it } from 'vitest';
import { compileMapping } from './compile.ts';
import type { MappingDocument, Rule } from './document.ts';

function mapping(fields: Record<string, Rule>, extra: Partial<MappingDocument> = {}): MappingDocument {
  return { id: 'test', source: { name: 'source' }, target: { name: 'target' }, fields, ...extra };
}

/** Maps one record and returns the value, failing the test with the errors when it does not map. */
function map(fields: Record<string, Rule>, record: unknown, extra: Partial<MappingDocument> = {}): Record<string, unknown> {
  const result = compileMapping(mapping(fields, extra)).apply(record);
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.value;
}

function errorsOf(fields: Record<string, Rule>, record: unknown, extra: Partial<MappingDocument> = {}) {
  const result = compileMapping(mapping(fields, extra)).apply(record, 3);
  if (result.ok) throw new Error(`expected errors, got ${JSON.stringify(result.value)}`);
  return result.errors;
}

describe('paths', () => {
  const record = { a: { b: { c: 1 } }, items: [{ sku: 'x' }, { sku: 'y' }], 'unit.price': '2.5', $weird: 7, 'Order Number': 'A-1' };

  it('reads nested objects, array indexes and the last element', () => {
    expect(map({ c: 'a.b.c', first: 'items[0].sku', last: 'items[-1].sku', ab: 'a["b"].c' }, record)).toEqual({ c: 1, first: 'x', last: 'y', ab: 1 });
  });

  it('reads names with dots, a leading $ or spaces when quoted or bare', () => {
    expect(map({ p: '["unit.price"]', w: '["$weird"]', n: 'Order Number' }, record)).toEqual({ p: '2.5', w: 7, n: 'A-1' });
  });

  it('reads the whole record with $ and from the top with $root', () => {
    expect(map({ all: { from: '$', transform: [] }, c: '$root.a.b.c', d: '$.a.b.c' }, { a: { b: { c: 2 } } })).toEqual({ all: { a: { b: { c: 2 } } }, c: 2, d: 2 });
  });

  it('takes the first present of several paths', () => {
    expect(map({ sku: { from: ['variant.sku', 'sku', 'id'] } }, { sku: 'S', id: 'I' })).toEqual({ sku: 'S' });
  });

  it('leaves out a field whose path runs past the end of the data', () => {
    expect(map({ x: 'a.b.zz.q', y: 'items[5].sku', z: 'a.b.c' }, record)).toEqual({ z: 1 });
  });
});

describe('constants, defaults and the missing policy', () => {
  it('writes constants of every JSON type as they are', () => {
    expect(map({ s: { const: 'x' }, n: { const: 1.5 }, b: { const: false }, z: { const: null }, o: { const: { a: [1, { b: 2 }] } } }, {})).toEqual({
      s: 'x', n: 1.5, b: false, z: null, o: { a: [1, { b: 2 }] },
    });
  });

  it('gives each record its own copy of an object constant', () => {
    const m = compileMapping(mapping({ o: { const: { list: [1] } } }));
    const a = m.apply({});
    const b = m.apply({});
    if (!a.ok || !b.ok) throw new Error('failed');
    (a.value.o as { list: number[] }).list.push(2);
    expect(b.value.o).toEqual({ list: [1] });
  });

  it('uses the default when the value is missing or null', () => {
    expect(map({ c: { from: 'currency', default: 'USD' }, d: { from: 'd', default: 'x' } }, { d: null })).toEqual({ c: 'USD', d: 'x' });
  });

  it('omits missing fields by default, writes null or fails when the mapping says so', () => {
    expect(map({ a: 'a', b: 'b' }, { a: 1 })).toEqual({ a: 1 });
    expect(map({ a: 'a', b: 'b' }, { a: 1 }, { missing: 'null' })).toEqual({ a: 1, b: null });
    const errors = errorsOf({ a: 'a', b: 'b' }, { a: 1 }, { missing: 'error' });
    expect(errors).toEqual([{ recordIndex: 3, targetPath: '/b', sourcePath: 'b', code: 'missing_value', message: 'there is no value at b' }]);
  });

  it('lets a field override the mapping policy', () => {
    expect(map({ a: { from: 'a', missing: 'null' }, b: 'b' }, {})).toEqual({ a: null });
    expect(errorsOf({ a: { from: 'a', missing: 'error' }, b: 'b' }, {}, { missing: 'null' })[0]?.targetPath).toBe('/a');
  });
});

describe('type coercion', () => {
  it('coerces to text, integer, number, decimal and boolean', () => {
    const fields: Record<string, Rule> = {
      s: { from: 'n', type: 'string' },
      i: { from: 'si', type: 'integer' },
      f: { from: 'sf', type: 'number' },
      d: { from: 'sd', type: 'decimal', scale: 2 },
      b: { from: 'sb', type: 'boolean' },
    };
    expect(map(fields, { n: 42, si: ' 7 ', sf: '2.5e3', sd: '12.5', sb: 'Yes' })).toEqual({ s: '42', i: 7, f: 2500, d: '12.50', b: true });
  });

  it('reads decimals with a comma and group separators exactly', () => {
    expect(map({ d: { from: 'p', type: 'decimal', decimalSeparator: ',', groupSeparator: '.' } }, { p: '1.234,50' })).toEqual({ d: '1234.50' });
    expect(map({ d: { from: 'p', type: 'decimal', groupSeparator: ',' } }, { p: '1,234.5' })).toEqual({ d: '1234.5' });
  });

  it('rounds decimals half-up by default and half-even on request', () => {
    expect(map({ a: { from: 'x', type: 'decimal', scale: 1 }, b: { from: 'x', type: 'decimal', scale: 1, rounding: 'half-even' } }, { x: '0.25' })).toEqual({ a: '0.3', b: '0.2' });
  });

  it('refuses an integer with a fraction unless told how to round', () => {
    expect(errorsOf({ i: { from: 'x', type: 'integer' } }, { x: '2.5' })[0]?.code).toBe('coercion_failed');
    expect(map({ i: { from: 'x', type: 'integer', rounding: 'half-up' } }, { x: '2.5' })).toEqual({ i: 3 });
  });

  it('treats an empty text as missing for every type but string', () => {
    expect(map({ i: { from: 'x', type: 'integer', default: 0 }, s: { from: 'x', type: 'string' } }, { x: '  ' })).toEqual({ i: 0, s: '  ' });
  });

  it('reads custom true and false texts', () => {
    expect(map({ b: { from: 'x', type: 'boolean', trueValues: ['Y'], falseValues: ['N'] } }, { x: 'n' })).toEqual({ b: false });
  });

  it('reads date-times in ISO, patterns and epochs, in a time zone, as UTC', () => {
    const fields: Record<string, Rule> = {
      iso: { from: 'iso', type: 'date-time' },
      uk: { from: 'uk', type: 'date-time', formats: ['dd/MM/yyyy HH:mm'], timeZone: 'Europe/London' },
      compact: { from: 'compact', type: 'date-time', formats: ['iso', 'yyyyMMdd'] },
      secs: { from: 'secs', type: 'date-time', formats: ['epoch-seconds'] },
    };
    const record = { iso: '2024-03-05T10:15:00-05:00', uk: '01/07/2024 09:30', compact: '20240229', secs: 1_700_000_000 };
    expect(map(fields, record)).toEqual({
      iso: '2024-03-05T15:15:00.000Z',
      uk: '2024-07-01T08:30:00.000Z',
      compact: '2024-02-29T00:00:00.000Z',
      secs: '2023-11-14T22:13:20.000Z',
    });
  });
});

describe('transforms', () => {
  it('applies transforms in order', () => {
    const fields: Record<string, Rule> = {
      name: { from: 'name', transform: ['trim', { case: 'title' }] },
      code: { from: 'code', transform: [{ replace: { find: '-', with: '' } }, { case: 'upper' }, { pad: { length: 8, char: '0' } }] },
      tags: { from: 'tags', transform: [{ split: { separator: ',', trim: true, removeEmpty: true } }] },
      joined: { from: 'list', transform: [{ join: ' | ' }] },
    };
    const record = { name: '  ada LOVELACE ', code: 'ab-12', tags: 'a, b,,c', list: ['x', null, 3] };
    expect(map(fields, record)).toEqual({ name: 'Ada Lovelace', code: '0000AB12', tags: ['a', 'b', 'c'], joined: 'x | 3' });
  });

  it('rounds, multiplies and converts minor units exactly', () => {
    const fields: Record<string, Rule> = {
      rounded: { from: 'price', transform: [{ round: { scale: 1, mode: 'half-even' } }] },
      gross: { from: 'price', transform: [{ multiply: '1.2' }, { round: 2 }] },
      cents: { from: 'price', transform: ['toMinor'] },
      amount: { from: 'cents', transform: ['fromMinor'] },
      yen: { from: 'cents', transform: [{ fromMinor: 0 }] },
    };
    expect(map(fields, { price: '19.95', cents: 1234 })).toEqual({ rounded: '20.0', gross: '23.94', cents: 1995, amount: '12.34', yen: '1234' });
  });

  it('formats dates with a pattern in a time zone', () => {
    const fields: Record<string, Rule> = {
      day: { from: 'at', transform: [{ formatDate: 'yyyy-MM-dd' }] },
      paris: { from: 'at', transform: [{ formatDate: { pattern: "EEE d MMM yyyy 'at' HH:mm XXX", timeZone: 'Europe/Paris' } }] },
      parsed: { from: 'us', transform: [{ parseDate: { formats: ['MM/dd/yyyy hh:mm a'], timeZone: 'America/New_York' } }, { formatDate: 'HH:mm' }] },
    };
    expect(map(fields, { at: '2024-07-01T22:30:00Z', us: '07/01/2024 01:05 PM' })).toEqual({
      day: '2024-07-01',
      paris: 'Tue 2 Jul 2024 at 00:30 +02:00',
      parsed: '17:05',
    });
  });

  it('looks values up with a fallback, and fails without one', () => {
    const status: Rule = { from: 's', transform: [{ lookup: { table: { paid: 'PAID', '1': 'ONE' }, fallback: 'OTHER' } }] };
    expect(map({ a: status, b: { ...status, from: 'n' }, c: { ...status, from: 'x' } }, { s: 'paid', n: 1, x: 'refunded' })).toEqual({ a: 'PAID', b: 'ONE', c: 'OTHER' });
    const strict: Rule = { from: 's', transform: [{ lookup: { table: { Paid: 1 }, ignoreCase: true } }] };
    expect(map({ a: strict }, { s: 'PAID' })).toEqual({ a: 1 });
    expect(errorsOf({ a: strict }, { s: 'void' })[0]).toMatchObject({ code: 'lookup_miss', targetPath: '/a', sourcePath: 's' });
  });
});

describe('concatenation and templates', () => {
  it('joins present parts with a separator and skips missing ones', () => {
    const name: Rule = { concat: ['first', 'middle', 'last'], separator: ' ' };
    expect(map({ name }, { first: 'Ada', last: 'Lovelace' })).toEqual({ name: 'Ada Lovelace' });
    expect(map({ name }, {})).toEqual({});
  });

  it('fills a template, and leaves it missing when a placeholder is', () => {
    const code: Rule = { template: '{order}-{line} {{x}}' };
    expect(map({ code }, { order: 'A1', line: 2 })).toEqual({ code: 'A1-2 {x}' });
    expect(map({ code, other: { const: 1 } }, { order: 'A1' })).toEqual({ other: 1 });
  });
});

describe('conditions', () => {
  it('keeps a value only when its condition holds', () => {
    const fields: Record<string, Rule> = {
      eq: { from: 'v', when: { path: 'kind', equals: 'digital' } },
      ex: { from: 'v', when: { path: 'code', exists: true } },
      nex: { from: 'v', when: { path: 'code', exists: false }, default: 'none' },
      re: { from: 'v', when: { path: 'sku', matches: '^sku-\\d+$', ignoreCase: true } },
      inn: { from: 'v', when: { path: 'n', in: [1, 2] } },
      all: { from: 'v', when: { all: [{ path: 'n', equals: 2 }, { not: { path: 'kind', equals: 'x' } }] } },
      any: { from: 'v', when: { any: [{ path: 'n', equals: 9 }, { path: 'obj', equals: { a: [1] } }] } },
    };
    expect(map(fields, { v: 'V', kind: 'digital', code: 'c', sku: 'SKU-12', n: 2, obj: { a: [1] } })).toEqual({
      eq: 'V', ex: 'V', nex: 'none', re: 'V', inn: 'V', all: 'V', any: 'V',
    });
    expect(map(fields, { v: 'V', kind: 'x', sku: 'other', n: 3 })).toEqual({ nex: 'V' });
  });

  it('chooses the first case that holds, else the else branch', () => {
    const rule: Rule = {
      cases: [
        { when: { path: 'qty', equals: 0 }, then: { const: 'none' } },
        { when: { path: 'qty', in: [1, 2] }, then: { template: 'few ({qty})' } },
      ],
      else: { from: 'label', transform: [{ case: 'upper' }] },
    };
    expect([0, 2, 5].map((qty) => map({ r: rule }, { qty, label: 'many' }).r)).toEqual(['none', 'few (2)', 'MANY']);
  });
});

describe('nested objects and arrays', () => {
  it('builds nested objects, from the record or from a nested value', () => {
    const fields: Record<string, Rule> = {
      customer: { fields: { email: 'email', name: { from: 'customer.name' } } },
      address: { from: 'shipping', fields: { city: 'city', country: { from: 'country_code', default: 'US' } } },
    };
    expect(map(fields, { email: 'a@b', customer: { name: 'Ada' }, shipping: { city: 'Paris' } })).toEqual({
      customer: { email: 'a@b', name: 'Ada' },
      address: { city: 'Paris', country: 'US' },
    });
  });

  it('maps each element through a sub-mapping, filters and reaches the root', () => {
    const lines: Rule = {
      each: 'line_items',
      filter: { path: 'quantity', exists: true },
      fields: { sku: 'sku', qty: { from: 'quantity', type: 'integer' }, currency: '$root.currency' },
    };
    const record = { currency: 'EUR', line_items: [{ sku: 'a', quantity: '2' }, { sku: 'b' }, { sku: 'c', quantity: 1 }] };
    expect(map({ lines }, record)).toEqual({ lines: [{ sku: 'a', qty: 2, currency: 'EUR' }, { sku: 'c', qty: 1, currency: 'EUR' }] });
  });

  it('maps elements to values, copies them, and flattens nested arrays', () => {
    const fields: Record<string, Rule> = {
      skus: { each: 'items', value: { from: 'sku', transform: [{ case: 'upper' }] } },
      copy: { each: 'tags' },
      all: { each: 'orders', value: { each: 'lines', value: 'sku' }, flatten: true },
    };
    const record = { items: [{ sku: 'a' }, { sku: 'b' }], tags: ['x', 'y'], orders: [{ lines: [{ sku: 1 }, { sku: 2 }] }, { lines: [{ sku: 3 }] }] };
    expect(map(fields, record)).toEqual({ skus: ['A', 'B'], copy: ['x', 'y'], all: [1, 2, 3] });
  });
});

describe('reuse by id', () => {
  const address: MappingDocument = mapping({ city: 'city', zip: { from: 'zip', type: 'string' } }, { id: 'address' });
  const line: MappingDocument = mapping({ sku: 'sku', ship: { use: 'address', from: 'to' } }, { id: 'line' });
  const resolve = (id: string) => ({ address, line })[id];

  it('applies another mapping to a nested value and to each element', () => {
    const doc = mapping({ billing: { from: 'billing', use: 'address' }, lines: { each: 'lines', use: 'line' } }, { id: 'order' });
    const record = { billing: { city: 'Oslo', zip: 150 }, lines: [{ sku: 'a', to: { city: 'Rome', zip: '00100' } }] };
    const result = compileMapping(doc, { resolve }).apply(record);
    expect(result).toEqual({ ok: true, value: { billing: { city: 'Oslo', zip: '150' }, lines: [{ sku: 'a', ship: { city: 'Rome', zip: '00100' } }] } });
  });

  it('reports errors inside a reused mapping at the outer paths', () => {
    const doc = mapping({ lines: { each: 'lines', use: 'line' } }, { id: 'order' });
    const result = compileMapping(doc, { resolve }).apply({ lines: [{ sku: 'a', to: { zip: { bad: 1 } } }] }, 9);
    expect(result).toEqual({
      ok: false,
      errors: [{ recordIndex: 9, targetPath: '/lines/0/ship/zip', sourcePath: 'lines[0].to.zip', code: 'coercion_failed', message: 'cannot make text of an object' }],
    });
  });
});

describe('reverse mappings', () => {
  it('maps back with a separate document', () => {
    const forward = { price_cents: 1999, placed: '05/03/2024 10:15', tags: 'a,b' };
    const toCanonical = { price: { from: 'price_cents', transform: ['fromMinor'] }, placedAt: { from: 'placed', type: 'date-time', formats: ['dd/MM/yyyy HH:mm'], timeZone: 'Europe/London' }, tags: { from: 'tags', transform: [{ split: ',' }] } } as Record<string, Rule>;
    const toVendor = { price_cents: { from: 'price', transform: ['toMinor'] }, placed: { from: 'placedAt', transform: [{ formatDate: { pattern: 'dd/MM/yyyy HH:mm', timeZone: 'Europe/London' } }] }, tags: { from: 'tags', transform: [{ join: ',' }] } } as Record<string, Rule>;
    const canonical = map(toCanonical, forward);
    expect(canonical).toEqual({ price: '19.99', placedAt: '2024-03-05T10:15:00.000Z', tags: ['a', 'b'] });
    expect(map(toVendor, canonical)).toEqual(forward);
  });
});
