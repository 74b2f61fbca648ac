import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { JsonSchema } from '../schemas/registry.ts';
import type { MappingDocument, Rule } from './document.ts';
import { previewMapping } from './preview.ts';
import { assertValidMapping, validateMapping, type ValidateOptions } from './validate-mapping.ts';

const sourceSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  $defs: { money: { type: 'string' }, line: { type: 'object', additionalProperties: false, properties: { sku: { type: 'string' }, qty: { type: 'integer' } } } },
  properties: {
    id: { type: 'integer' },
    total: { $ref: '#/$defs/money' },
    customer: { type: 'object', additionalProperties: false, properties: { email: { type: 'string' } } },
    lines: { type: 'array', items: { $ref: '#/$defs/line' } },
    attributes: { type: 'object', additionalProperties: { type: 'string' } },
    note: { type: 'string' },
  },
};

const targetSchema: JsonSchema = {
  type: 'object',
  required: ['id', 'total', 'lines'],
  additionalProperties: false,
  properties: {
    id: { type: 'string' },
    total: { type: 'string' },
    count: { type: 'number' },
    email: { type: 'string' },
    lines: { type: 'array', items: { type: 'object', required: ['sku', 'quantity'], properties: { sku: { type: 'string' }, quantity: { type: 'integer' } } } },
    shipTo: { type: 'object', required: ['city'], properties: { city: { type: 'string' } } },
    gift: { type: 'string' },
  },
};

/** No target schema: for tests of the source side only. */
const untyped = { target: { name: 'canonical/order' } };

function doc(fields: Record<string, Rule>, extra: Partial<MappingDocument> = {}): MappingDocument {
  return {
    id: 'order',
    source: { name: 'shop/order', schema: sourceSchema },
    target: { name: 'canonical/order', schema: targetSchema },
    fields,
    ...extra,
  };
}

const good: Record<string, Rule> = {
  id: { from: 'id', type: 'string', missing: 'error' },
  total: { from: 'total', type: 'decimal', scale: 2, missing: 'error' },
  lines: { each: 'lines', missing: 'error', fields: { sku: { from: 'sku', missing: 'error' }, quantity: { from: 'qty', type: 'integer', default: 1 } } },
  email: 'customer.email',
  gift: { from: 'attributes.gift_note', when: { path: 'note', exists: true } },
};

function codes(fields: Record<string, Rule> | unknown, options: ValidateOptions = {}, extra: Partial<MappingDocument> = {}) {
  const isDocument = typeof fields === 'object' && fields !== null && 'source' in fields;
  const r = validateMapping(isDocument ? fields : doc(fields as Record<string, Rule>, extra), options);
  return { errors: r.errors.map((e) => [e.path, e.code]), warnings: r.warnings.map((e) => [e.path, e.code]), valid: r.valid };
}

describe('validateMapping: the document', () => {
  it('accepts a good mapping with no errors', () => {
    const r = validateMapping(doc({ ...good, gift: 'attributes.gift_note' }));
    expect(r).toEqual({ valid: true, errors: [], warnings: [] });
  });

  it('reports unknown operators and transforms', () => {
    expect(codes({ ...good, a: { frm: 'id' }, b: { from: 'id', transform: ['reverse', { shout: true }, { pad: { length: 2, colour: 'red' } }] } }).errors).toEqual([
      ['/fields/a/frm', 'unknown_operator'],
      ['/fields/b/transform/0', 'unknown_transform'],
      ['/fields/b/transform/1/shout', 'unknown_transform'],
      ['/fields/b/transform/2/pad/colour', 'bad_option'],
    ]);
  });

  it('reports values of the wrong type and a missing id', () => {
    expect(codes({ ...good, a: { from: 'id', scale: '2' }, b: 5 }).errors).toEqual([
      ['/fields/a/scale', 'wrong_type'],
      ['/fields/b', 'wrong_type'],
    ]);
    expect(codes({ source: { name: 's' }, target: { name: 't' }, fields: { a: 'a' } }).errors).toEqual([['/id', 'required']]);
  });

  it('reports bad path syntax wherever a path is', () => {
    expect(codes({ ...good, a: 'a..b', b: { template: 'x {a[} y' }, c: { from: 'id', when: { path: 'x[y]', exists: true } }, d: { each: '$x' } }).errors).toEqual([
      ['/fields/a', 'bad_path'],
      ['/fields/b/template', 'bad_path'],
      ['/fields/c/when/path', 'bad_path'],
      ['/fields/d/each', 'bad_path'],
    ]);
  });

  it('reports conflicting sources and options that do not fit the type', () => {
    expect(codes({ ...good, a: { from: 'id', const: 1 }, b: { from: 'id', value: 'x' }, c: { from: 'id', scale: 2 }, d: { type: 'string' } }).errors).toEqual([
      ['/fields/a', 'rule_conflict'],
      ['/fields/b', 'rule_conflict'],
      ['/fields/c/scale', 'rule_conflict'],
      ['/fields/d', 'rule_conflict'],
    ]);
  });

  it('reports bad patterns, time zones, date formats, defaults and constants', () => {
    const fields: Record<string, Rule> = {
      ...good,
      a: { from: 'note', when: { path: 'note', matches: '([' } },
      b: { from: 'note', type: 'date-time', timeZone: 'Mars/Olympus' },
      c: { from: 'note', type: 'date-time', formats: ['dd/QQ/yyyy'] },
      d: { from: 'note', type: 'integer', default: 'many' },
      e: { const: 'abc', type: 'decimal' },
      f: { from: 'note', transform: [{ formatDate: { pattern: 'yyyy', timeZone: 'Nowhere/Land' } }] },
    };
    expect(codes(fields).errors).toEqual([
      ['/fields/a/when/matches', 'bad_pattern'],
      ['/fields/b', 'bad_time_zone'],
      ['/fields/c', 'bad_date_format'],
      ['/fields/d/default', 'bad_default'],
      ['/fields/e/const', 'bad_constant'],
      ['/fields/f/transform/0', 'bad_time_zone'],
    ]);
  });
});

describe('validateMapping: reused mappings', () => {
  const a = doc({ ...good, shipTo: { from: 'customer', use: 'b' } }, { id: 'a' });
  const b: MappingDocument = { id: 'b', source: { name: 's' }, target: { name: 't' }, fields: { city: { use: 'c' } } };
  const c: MappingDocument = { id: 'c', source: { name: 's' }, target: { name: 't' }, fields: { x: { use: 'a' } } };

  it('reports a cycle through reused mappings at the use that leads to it', () => {
    const r = validateMapping(a, { resolve: (id) => ({ a, b, c })[id] });
    expect(r.errors).toEqual([{ path: '/fields/shipTo/use', code: 'mapping_cycle', message: 'Reused mappings form a cycle: a -> b -> c -> a' }]);
  });

  it('reports a reused id that cannot be found, and a reused mapping that is not valid', () => {
    expect(codes(a, { resolve: () => undefined }).errors).toEqual([['/fields/shipTo/use', 'mapping_not_found']]);
    const broken = { ...b, fields: { city: { frm: 'x' } } } as unknown as MappingDocument;
    expect(codes(a, { resolve: () => broken }).errors).toEqual([['/fields/shipTo/use', 'mapping_invalid']]);
  });

  it('checks what a reused mapping fills against the target', () => {
    const address: MappingDocument = { id: 'b', source: { name: 's' }, target: { name: 't' }, fields: { town: 'city' } };
    const r = codes(doc({ ...good, shipTo: { from: 'customer', use: 'b' } }), { resolve: () => address });
    expect(r.errors).toEqual([['/fields/shipTo', 'target_required_unfilled']]);
    expect(r.warnings).toEqual([['/fields/shipTo', 'target_field_unknown']]);
  });
});

describe('validateMapping: schemas', () => {
  it('reports a schema id it cannot resolve, and resolves ids through schemaFor', () => {
    expect(codes(good, {}, { source: { name: 's', schema: 'hub:test/unknown' } }).errors).toEqual([['/source/schema', 'schema_unknown']]);
    const schemaFor = (id: string) => (id === 'hub:test/order-source' ? sourceSchema : undefined);
    expect(codes(good, { schemaFor }, { source: { name: 's', schema: 'hub:test/order-source' } }).valid).toBe(true);
  });

  it('reports an inline schema ajv cannot compile', () => {
    expect(codes(good, {}, { target: { name: 't', schema: { type: 'object', properties: { a: { type: 'strin' } } } } }).errors).toEqual([['/target/schema', 'schema_invalid']]);
  });

  it('reports source paths the source schema does not have, following $ref, items and additionalProperties', () => {
    const r = codes({ ...good, a: 'customer.phone', b: { each: 'lines', fields: { sku: 'skew', quantity: 'qty' } }, c: 'attributes.anything', d: 'nope' }, {}, untyped);
    expect(r.errors).toEqual([
      ['/fields/a', 'source_path_unknown'],
      ['/fields/b/fields/sku', 'source_path_unknown'],
      ['/fields/d', 'source_path_unknown'],
    ]);
  });

  it('only warns about an undeclared source path when the schema leaves properties open', () => {
    const open = { ...sourceSchema, additionalProperties: undefined };
    const r = codes({ ...good, d: 'nope' }, {}, { ...untyped, source: { name: 's', schema: open } });
    expect(r.errors).toEqual([]);
    expect(r.warnings).toEqual([['/fields/d', 'source_path_unknown']]);
  });

  it('reports required target fields the mapping cannot fill, at every level', () => {
    const fields: Record<string, Rule> = { total: good.total!, lines: { each: 'lines', fields: { sku: 'sku' } }, shipTo: { fields: { street: 'note' } } };
    expect(codes(fields).errors).toEqual([
      ['/fields/lines/fields', 'target_required_unfilled'],
      ['/fields/shipTo/fields', 'target_required_unfilled'],
      ['/fields', 'target_required_unfilled'],
    ]);
  });

  it('warns when a required target field may be left out', () => {
    expect(codes({ ...good, id: 'id' }).warnings).toContainEqual(['/fields/id', 'target_required_may_be_missing']);
  });

  it('reports target fields the target schema does not have, and types that do not fit', () => {
    const r = codes({ ...good, extra: 'id', count: { from: 'total', type: 'decimal' }, email: { from: 'id', type: 'integer' } });
    expect(r.errors).toEqual([
      ['/fields/email', 'type_mismatch'],
      ['/fields/extra', 'target_field_unknown'],
      ['/fields/count', 'type_mismatch'],
    ]);
  });

  it('accepts an integer rule for a number field', () => {
    expect(codes({ ...good, count: { from: 'id', type: 'integer' } }).errors).toEqual([]);
  });
});

describe('validateMapping: examples', () => {
  const record = { id: 7, total: '3', lines: [{ sku: 'a' }], customer: { email: 'x@y' } };
  const output = { id: '7', total: '3.00', lines: [{ sku: 'a', quantity: 1 }], email: 'x@y' };

  it('runs the examples and accepts matching outputs and expected errors', () => {
    const examples = [{ input: record, output }, { input: { ...record, total: 'abc' }, errors: ['coercion_failed'] }];
    expect(validateMapping(doc(good, { examples }))).toMatchObject({ valid: true, errors: [] });
  });

  it('reports the first difference of an example that does not match', () => {
    const r = validateMapping(doc(good, { examples: [{ input: record, output: { ...output, total: '3.10' } }] }));
    expect(r.errors).toEqual([{ path: '/examples/0', code: 'example_mismatch', message: 'Example 0: /total: got "3.00", expected "3.10"' }]);
  });
});

describe('previewMapping', () => {
  it('maps sample records of a valid mapping, each with its value or errors', () => {
    const preview = previewMapping(doc(good), [{ id: 1, total: '2', lines: [] }, { id: 2, lines: [] }]);
    expect(preview.validation.valid).toBe(true);
    expect(preview.records).toEqual([
      { index: 0, ok: true, value: { id: '1', total: '2.00', lines: [] } },
      { index: 1, ok: false, errors: [{ recordIndex: 1, targetPath: '/total', sourcePath: 'total', code: 'missing_value', message: 'there is no value at total' }] },
    ]);
  });

  it('maps nothing when the mapping is not valid', () => {
    expect(previewMapping(doc({ a: 'a..b' }), [{}]).records).toEqual([]);
  });
});

describe('assertValidMapping', () => {
  it('throws validation_failed with one field error per problem', () => {
    try {
      assertValidMapping(doc({ a: 'a..b' }, untyped));
      throw new Error('expected a throw');
    } catch (err) {
      expect(err).toMatchObject({ code: 'validation_failed', status: 400, errors: [{ field: '/fields/a', code: 'bad_path' }] });
    }
    expect(assertValidMapping(doc(good)).valid).toBe(true);
  });
});

describe('the language reference', () => {
  it('opens with an example that is valid and whose golden example holds', () => {
    const text = readFileSync(new URL('../../docs/mapping-language.md', import.meta.url), 'utf8');
    const example = JSON.parse(text.split('```json\n')[1]!.split('```')[0]!) as MappingDocument;
    const schemaFor = (id: string) => (id === 'hub:canonical/order-line' ? { type: 'object' } : undefined);
    expect(validateMapping(example, { schemaFor })).toEqual({ valid: true, errors: [], warnings: [] });
  });
});
