import { afterEach, describe, expect, it, vi } from 'vitest';
import { compileMapping } from './compile.ts';
import type { MappingDocument, Rule } from './document.ts';
import { assertInert, UnsafeSourceError } from './inert.ts';

/** Strings that would run, break out of a literal, or pollute a prototype if they ever became code. */
const HOSTILE = [
  '"]); process.exit(1); //',
  "']); process.exit(1); //",
  '`; process.exit(1); `',
  '${process.exit(1)}',
  '} ); globalThis.hacked = 1; ( {',
  '*/ globalThis.hacked = 1; /*',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'line\nbreak',
  'line\u2028separator',
  'paragraph\u2029separator',
  'back\\slash',
  'quote"s and \'s',
  '\u0000nul',
  '</script><script>alert(1)</script>',
];

function doc(fields: Record<string, Rule>): MappingDocument {
  return { id: 'hostile', source: { name: 's' }, target: { name: 't' }, fields };
}

const exit = vi.spyOn(process, 'exit').mockImplementation(() => {
  throw new Error('process.exit was called');
});

afterEach(() => {
  expect(exit).not.toHaveBeenCalled();
  expect((globalThis as Record<string, unknown>).hacked).toBeUndefined();
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(Object.prototype).not.toHaveProperty('polluted');
});

describe('hostile strings stay data', () => {
  it('writes hostile constants exactly', () => {
    const fields = Object.fromEntries(HOSTILE.map((h, i) => [`f${i}`, { const: h }]));
    const m = compileMapping(doc(fields));
    expect(m.apply({})).toEqual({ ok: true, value: Object.fromEntries(HOSTILE.map((h, i) => [`f${i}`, h])) });
    for (const h of HOSTILE) expect(m.source).not.toContain(h);
  });

  it('uses hostile target field names as own properties, without touching prototypes', () => {
    const fields = Object.fromEntries(HOSTILE.map((h, i) => [h, { const: i }]));
    const result = compileMapping(doc(fields)).apply({});
    if (!result.ok) throw new Error('failed');
    expect(Object.getPrototypeOf(result.value)).toBe(Object.prototype);
    for (const [i, h] of HOSTILE.entries()) expect(Object.getOwnPropertyDescriptor(result.value, h)?.value).toBe(i);
    expect(JSON.parse(JSON.stringify(result.value))).toEqual(JSON.parse(JSON.stringify(Object.fromEntries(HOSTILE.map((h, i) => [h, i])))));
  });

  it('writes a field named __proto__ as an own property even when it may be omitted', () => {
    const m = compileMapping(doc({ a: 'a', ['__proto__']: { fields: { polluted: { const: true } } }, b: '__proto__x' }));
    const result = m.apply({ a: 1 });
    if (!result.ok) throw new Error('failed');
    expect(Object.getPrototypeOf(result.value)).toBe(Object.prototype);
    expect(Object.hasOwn(result.value, '__proto__')).toBe(true);
    expect(JSON.stringify(result.value)).toBe('{"a":1,"__proto__":{"polluted":true}}');
  });

  it('reads hostile path segments as plain property names', () => {
    // Through JSON, as records arrive: `__proto__` is then an own key, as JSON.parse makes it.
    const record = JSON.parse(JSON.stringify(Object.fromEntries(HOSTILE.map((h, i) => [h, { v: i }]))));
    const fields = Object.fromEntries(HOSTILE.map((h, i) => [`f${i}`, `[${JSON.stringify(h)}].v`]));
    const result = compileMapping(doc(fields)).apply(record);
    expect(result).toEqual({ ok: true, value: Object.fromEntries(HOSTILE.map((_, i) => [`f${i}`, i])) });
  });

  it('never walks to a prototype when a record lacks __proto__, constructor or toString', () => {
    const m = compileMapping(doc({ p: '__proto__', c: 'constructor', t: 'toString', n: 'constructor.name', h: 'a.hasOwnProperty', k: 'k' }));
    expect(m.apply({ a: {}, k: 1 })).toEqual({ ok: true, value: { k: 1 } });
    const own = JSON.parse('{"__proto__": {"polluted": "yes"}, "constructor": {"name": "c"}}');
    expect(m.apply(own)).toEqual({ ok: true, value: { p: { polluted: 'yes' }, c: { name: 'c' }, n: 'c' } });
  });

  it('keeps hostile text inert in templates, separators, lookups, defaults and conditions', () => {
    const evil = HOSTILE[0]!;
    const fields: Record<string, Rule> = {
      t: { template: `${evil}{a}${HOSTILE[2]}` },
      c: { concat: ['a', 'a'], separator: HOSTILE[3] },
      l: { from: 'k', transform: [{ lookup: { table: { [evil]: HOSTILE[4] }, fallback: HOSTILE[5] } }] },
      d: { from: 'missing', default: HOSTILE[6] },
      w: { from: 'a', when: { path: 'k', equals: evil } },
      r: { from: 'a', transform: [{ replace: { find: 'x', with: HOSTILE[1]! } }] },
      f: { from: 'at', transform: [{ formatDate: `'${HOSTILE[10]!.replace(/'/g, "''")}' yyyy` }] },
    };
    const m = compileMapping(doc(fields));
    expect(m.apply({ a: 'x', k: evil, at: '2024-01-01T00:00:00Z' })).toEqual({
      ok: true,
      value: { t: `${evil}x${HOSTILE[2]}`, c: `x${HOSTILE[3]}x`, l: HOSTILE[4], d: HOSTILE[6], w: 'x', r: HOSTILE[1], f: `${HOSTILE[10]} 2024` },
    });
  });

  it('puts no text of the mapping into the generated source', () => {
    const m = compileMapping(doc({ customerEmail: 'customer.email', label: { const: 'SECRET-LABEL' }, code: { template: 'ORD-{id}' } }));
    for (const text of ['customerEmail', 'customer', 'email', 'SECRET-LABEL', 'ORD-']) expect(m.source).not.toContain(text);
    expect(() => assertInert(m.source)).not.toThrow();
  });
});

describe('assertInert', () => {
  it('refuses source with a quote, a backtick, a backslash or a slash', () => {
    for (const bad of ['v0 = "x";', 'v0 = `x`;', "v0 = 'x';", 'v0 = a\\u0041;', 'v0 = 1 // x']) {
      expect(() => assertInert(bad)).toThrow(UnsafeSourceError);
    }
  });

  it('refuses words the generator never writes', () => {
    expect(() => assertInert('process.exit(1);')).toThrow(/unexpected word "process"/);
    expect(() => assertInert('v0 = k1 + k2; if (v0 != null) return v0;')).not.toThrow();
  });
});
