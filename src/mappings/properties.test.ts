import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileMapping } from './compile.ts';
import type { MappingDocument, Rule } from './document.ts';

/** One rule of nearly every kind, so arbitrary input reaches every code path of the generated function. */
const everything: MappingDocument = {
  id: 'everything',
  source: { name: 's' },
  target: { name: 't', schema: { type: 'object', properties: { n: { type: 'integer' } } } },
  missing: 'null',
  fields: {
    plain: 'a.b[0].c',
    last: 'list[-1]',
    root: '$root.a',
    n: { from: ['n', 'a.n'], type: 'integer', missing: 'omit' },
    d: { from: 'price', type: 'decimal', scale: 2, default: '0.00' },
    f: { from: 'price', type: 'number' },
    b: { from: 'flag', type: 'boolean' },
    t: { from: 'at', type: 'date-time', formats: ['iso', 'dd/MM/yyyy', 'epoch-millis'], timeZone: 'Europe/Berlin' },
    s: { from: 'name', type: 'string', transform: ['trim', { case: 'title' }, { pad: { length: 3 } }, { replace: { find: 'a', with: 'b' } }] },
    money: { from: 'price', transform: [{ multiply: '1.5' }, { round: { scale: 1, mode: 'half-even' } }, 'toMinor', 'fromMinor'] },
    parts: { from: 'csv', transform: [{ split: ',' }, { join: '|' }] },
    when: { from: 'day', transform: ['parseDate', { formatDate: { pattern: 'EEE d MMM yyyy HH:mm XXX', timeZone: 'Asia/Tokyo' } }] },
    l: { from: 'status', transform: [{ lookup: { table: { a: 1, b: { deep: [1] } }, fallback: null } }] },
    c: { concat: ['name', { const: '-' }, 'price'], separator: ' ' },
    tpl: { template: '{name}/{a.b}' },
    cases: { cases: [{ when: { path: 'flag', equals: true }, then: { const: 'yes' } }, { when: { path: 'name', matches: '^x' }, then: 'name' }], else: { const: 0 } },
    cond: { from: 'name', when: { any: [{ path: 'a', exists: true }, { not: { path: 'list', in: [[1], 'x'] } }] } },
    obj: { from: 'a', fields: { inner: 'b', deep: { fields: { v: '$root.name' } } } },
    each: { each: 'list', filter: { path: 'keep', exists: false }, fields: { v: '$', k: { from: 'k', type: 'string' } }, missing: 'omit' },
    values: { each: 'list', value: { from: '$', type: 'decimal' }, flatten: true },
  },
};

const compiled = compileMapping(everything);

describe('properties', () => {
  it('never throws, never changes its input, and returns plain JSON or only errors, whatever comes in', () => {
    const record = fc.oneof(
      fc.jsonValue(),
      fc.record(
        {
          a: fc.jsonValue(), n: fc.jsonValue(), price: fc.jsonValue(), flag: fc.jsonValue(), at: fc.jsonValue(), name: fc.jsonValue(),
          csv: fc.jsonValue(), day: fc.jsonValue(), status: fc.jsonValue(), list: fc.jsonValue(), ['__proto__']: fc.jsonValue(),
        },
        { requiredKeys: [] },
      ),
    );
    fc.assert(
      fc.property(record, fc.nat(), (input, index) => {
        const before = JSON.stringify(input);
        const result = compiled.apply(input, index);
        expect(JSON.stringify(input)).toBe(before);
        if (result.ok) {
          expect(Object.keys(result)).toEqual(['ok', 'value']);
          // Plain JSON all the way down: no internal marker or undefined leaks into an output.
          expect(JSON.parse(JSON.stringify(result.value))).toStrictEqual(result.value);
        } else {
          expect(Object.keys(result)).toEqual(['ok', 'errors']);
          expect(result.errors.length).toBeGreaterThan(0);
          for (const e of result.errors) {
            expect(e.recordIndex).toBe(index);
            expect(e.targetPath === '' || e.targetPath.startsWith('/')).toBe(true);
            expect(typeof e.code).toBe('string');
            expect(e.code).toMatch(/^[a-z_]+$/);
            expect(e.code).not.toBe('mapping_failed');
          }
        }
        expect(Object.prototype).not.toHaveProperty('deep');
      }),
      { numRuns: 2000 },
    );
  });

  it('writes any field name and any constant exactly', () => {
    const name = fc.string({ unit: 'binary', minLength: 1, maxLength: 30 });
    fc.assert(
      fc.property(fc.dictionary(name, fc.jsonValue(), { minKeys: 1, maxKeys: 8 }), (consts) => {
        const fields: Record<string, Rule> = {};
        for (const [k, v] of Object.entries(consts)) Object.defineProperty(fields, k, { value: { const: v }, enumerable: true });
        const result = compileMapping({ id: 'consts', source: { name: 's' }, target: { name: 't' }, fields }).apply({});
        expect(result).toEqual({ ok: true, value: consts });
      }),
      { numRuns: 200 },
    );
  });

  it('reads any property name through a quoted path', () => {
    const name = fc.string({ unit: 'binary', minLength: 1, maxLength: 30 });
    fc.assert(
      fc.property(name, fc.jsonValue(), (key, value) => {
        const record = JSON.parse(JSON.stringify({ [key]: { v: value } }));
        const result = compileMapping({ id: 'read', source: { name: 's' }, target: { name: 't' }, fields: { out: { from: `[${JSON.stringify(key)}].v`, missing: 'null' } } }).apply(record);
        // the record went through JSON (as every real record does): -0 became 0
        expect(result).toEqual({ ok: true, value: { out: record[key].v ?? null } });
      }),
      { numRuns: 200 },
    );
  });
});
