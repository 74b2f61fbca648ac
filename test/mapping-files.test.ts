// The mappings that ship in mappings/: every file is valid, its golden examples pass, the file exchange finds the
// ids it uses, the import and export mappings round-trip, and a directory of broken files is reported, not thrown.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { XMLBuilder, XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lazyFileMappings, loadFileMappings, readMappingFiles, validateMappingFiles, type FileReport } from '../src/mappings/files.ts';
import { compileMapping, type MappingDocument } from '../src/mappings/index.ts';

/** The ids the file exchange uses, and the line mapping order-xml-out reuses. */
const SHIPPED_IDS = [
  'csv-product-in',
  'csv-stock-count-in',
  'csv-order-line-in',
  'xml-order-in',
  'product-csv-out',
  'stock-level-csv-out',
  'order-xml-out',
  'order-line-xml-out',
];

const XML_OPTIONS = { ignoreAttributes: false, attributeNamePrefix: '@_' } as const;

describe('the shipped mapping files', () => {
  const reports = validateMappingFiles();
  const mappings = loadFileMappings();

  /** Compiles a shipped mapping, resolving `use` among the shipped files. */
  function compiled(id: string) {
    const doc = mappings.get(id);
    if (!doc) throw new Error(`no shipped mapping ${id}`);
    return compileMapping(doc, { resolve: (ref) => mappings.get(ref) });
  }

  function apply(id: string, record: unknown): Record<string, unknown> {
    const result = compiled(id).apply(record);
    if (!result.ok) throw new Error(`${id} failed: ${JSON.stringify(result.errors)}`);
    return result.value;
  }

  it('every file in mappings/ is valid, passes its golden examples and has no warnings', () => {
    expect(reports.length).toBeGreaterThanOrEqual(SHIPPED_IDS.length);
    const problems = reports.filter((r) => !r.valid || r.warnings.length > 0);
    expect(problems, JSON.stringify(problems, null, 2)).toEqual([]);
  });

  it('every id the file exchange uses is shipped, each in the file named after it', () => {
    const byId = new Map(reports.map((r) => [r.id, r.file]));
    for (const id of SHIPPED_IDS) expect(byId.get(id), id).toBe(`${id}.json`);
  });

  it('every shipped mapping has a golden example that maps and one that must fail', () => {
    for (const { file, document } of readMappingFiles().files) {
      const examples = document.examples ?? [];
      expect(examples.some((e) => e.output !== undefined), file).toBe(true);
      expect(examples.some((e) => (e.errors?.length ?? 0) > 0), file).toBe(true);
    }
  });

  it('loadFileMappings returns every shipped mapping by its id', () => {
    for (const id of SHIPPED_IDS) expect(mappings.get(id)?.id, id).toBe(id);
    expect(mappings.size).toBe(reports.length);
  });

  it('money stays an exact decimal string in every golden output', () => {
    const moneyKeys = new Set(['unitPrice', 'unitCost', 'averageCost', 'value', 'Price', 'Unit Price', 'Average Cost', 'Value']);
    const walk = (value: unknown, at: string): void => {
      if (Array.isArray(value)) value.forEach((v, i) => walk(v, `${at}/${i}`));
      else if (value && typeof value === 'object') {
        for (const [k, v] of Object.entries(value)) {
          if (moneyKeys.has(k)) expect(typeof v, `${at}/${k}`).toBe('string');
          walk(v, `${at}/${k}`);
        }
      }
    };
    for (const { file, document } of readMappingFiles().files) (document.examples ?? []).forEach((e, i) => walk(e.output, `${file}#${i}`));
  });

  it('a catalogue CSV read with csv-parse maps row by row, a bad row failing alone', () => {
    const csv = [
      'SKU,Name,Description,Barcode,Unit,Reorder Point,Safety Stock,Lead Time (days),Allow Backorders,Status,Supplier',
      'TEE-BLK-M,"Classic Tee, Black, M",,5012345678900,each,"1,200",5,14,Yes,active,Acme',
      ' MUG-01 ,Enamel Mug,,,,,,,,,',
      ',No SKU,,,,,,,,,',
    ].join('\n');
    const rows = parseCsv(csv, { columns: true, skip_empty_lines: true }) as Record<string, string>[];
    const batch = compiled('csv-product-in').applyMany(rows);
    expect(batch.values).toEqual([
      {
        sku: 'TEE-BLK-M',
        name: 'Classic Tee, Black, M',
        barcode: '5012345678900',
        unitOfMeasure: 'each',
        reorderPoint: 1200,
        safetyStock: 5,
        leadTimeDays: 14,
        allowBackorders: true,
        status: 'active',
      },
      { sku: 'MUG-01', name: 'Enamel Mug', unitOfMeasure: 'each' },
      undefined,
    ]);
    expect(batch.errors.map((e) => [e.recordIndex, e.targetPath, e.code])).toEqual([[2, '/sku', 'missing_value']]);
  });

  it('a product exported with product-csv-out is imported again by csv-product-in unchanged', () => {
    const product = {
      id: 'prd_01JD3Q8Z5K7M2N4P6R8T0V2X4Y',
      workspaceId: 'wks_01JD3Q7Y4J6L1M3N5P7Q9S1T3V',
      sku: 'TEE-BLK-M',
      name: 'Classic Tee, Black, M',
      description: null,
      barcode: null,
      attributes: {},
      unitOfMeasure: 'box',
      reorderPoint: null,
      safetyStock: 0,
      leadTimeDays: 21,
      allowBackorders: true,
      status: 'archived',
      inventoryItemId: 'itm_01JD3Q8Z5K7M2N4P6R8T0V2X4Z',
      version: 1,
      createdAt: '2026-11-01T10:00:00.000Z',
      updatedAt: '2026-11-01T10:00:00.000Z',
    };
    const row = apply('product-csv-out', product);
    expect(Object.values(row).every((v) => typeof v === 'string')).toBe(true);
    expect(apply('csv-product-in', row)).toEqual({
      sku: 'TEE-BLK-M',
      name: 'Classic Tee, Black, M',
      unitOfMeasure: 'box',
      safetyStock: 0,
      leadTimeDays: 21,
      allowBackorders: true,
      status: 'archived',
    });
  });

  it('an order exported with order-xml-out and written as XML is imported again by xml-order-in', () => {
    const order = {
      id: 'ord_01JD3Q8Z5K7M2N4P6R8T0V2X60',
      workspaceId: 'wks_01JD3Q7Y4J6L1M3N5P7Q9S1T3V',
      channel: 'b2b',
      externalId: 'SO-1001',
      status: 'open',
      allocationStatus: 'allocated',
      currency: 'EUR',
      customer: { email: 'ann.lee@example.com', name: 'Ann Lee' },
      shippingAddress: null,
      lines: [
        { lineId: '1', sku: 'TEE-BLK-M', productId: 'prd_01JD3Q8Z5K7M2N4P6R8T0V2X4Y', quantity: 2, unitPrice: '9.90', locationId: null },
        { lineId: '2', sku: 'MUG-ENAMEL-01', productId: 'prd_01JD3Q8Z5K7M2N4P6R8T0V2X50', quantity: 1, unitPrice: null },
      ],
      placedAt: '2026-11-20T09:15:00.000Z',
      version: 2,
      createdAt: '2026-11-20T09:16:00.000Z',
      updatedAt: '2026-11-20T09:20:00.000Z',
    };
    const element = apply('order-xml-out', order);
    const xml = new XMLBuilder(XML_OPTIONS).build({ Orders: { Order: element } }) as string;
    expect(xml).toContain('<Order id="SO-1001" channel="b2b">');
    const parsed = new XMLParser({ ...XML_OPTIONS, parseTagValue: false, isArray: (name: string) => name === 'Line' }).parse(xml);
    expect(apply('xml-order-in', parsed.Orders.Order)).toEqual({
      channel: 'b2b',
      externalId: 'SO-1001',
      status: 'open',
      currency: 'EUR',
      customer: { email: 'ann.lee@example.com', name: 'Ann Lee' },
      placedAt: '2026-11-20T09:15:00.000Z',
      lines: [
        { lineId: '1', sku: 'TEE-BLK-M', quantity: 2, unitPrice: '9.90' },
        { lineId: '2', sku: 'MUG-ENAMEL-01', quantity: 1 },
      ],
    });
  });
});

describe('a directory of broken mapping files', () => {
  let dir: string;
  let reports: FileReport[];

  const target = { name: 'demo/out', schema: { type: 'object', required: ['sku'], additionalProperties: false, properties: { sku: { type: 'string' }, qty: { type: 'integer' } } } };
  const mapping = (id: string, fields: MappingDocument['fields'], examples: MappingDocument['examples']): MappingDocument => ({
    id,
    source: { name: 'demo/in' },
    target,
    fields,
    ...(examples ? { examples } : {}),
  });
  const ok = (id: string) => mapping(id, { sku: { from: 'sku', missing: 'error' }, qty: { from: 'qty', type: 'integer' } }, [{ input: { sku: 'A', qty: '2' }, output: { sku: 'A', qty: 2 } }]);
  const files: Record<string, unknown> = {
    'a-valid.json': ok('demo-valid'),
    'b-not-json.json': '{ "id": "broken", "fields": { ',
    'c-unknown-operator.json': mapping('demo-operator', { sku: { from: 'sku', uppercase: true } as never }, [{ input: { sku: 'A' }, output: { sku: 'A' } }]),
    'd-unknown-transform.json': mapping('demo-transform', { sku: { from: 'sku', transform: ['shout'] } as never }, [{ input: { sku: 'A' }, output: { sku: 'A' } }]),
    'e-wrong-example.json': mapping('demo-example', { sku: { from: 'sku', missing: 'error' }, qty: { from: 'qty', type: 'integer' } }, [
      { input: { sku: 'A', qty: '2' }, output: { sku: 'A', qty: '2' } },
    ]),
    'f-cycle-one.json': mapping('demo-cycle-one', { sku: { from: 'sku', missing: 'error' }, qty: { use: 'demo-cycle-two' } }, [{ input: { sku: 'A' }, output: { sku: 'A' } }]),
    'g-cycle-two.json': mapping('demo-cycle-two', { sku: { from: 'sku', missing: 'error' }, qty: { use: 'demo-cycle-one' } }, [{ input: { sku: 'A' }, output: { sku: 'A' } }]),
    'h-same-id.json': ok('demo-valid'),
    'i-no-examples.json': mapping('demo-no-examples', { sku: { from: 'sku', missing: 'error' } }, undefined),
    // j reuses k, another file: valid ones resolve `use` across files.
    'j-uses-valid.json': {
      id: 'demo-uses-valid',
      source: { name: 'demo/wrapper' },
      target: { name: 'demo/wrapped' },
      fields: { wrapped: { from: 'item', use: 'demo-sku' } },
      examples: [{ input: { item: { sku: 'C' } }, output: { wrapped: { sku: 'C' } } }],
    },
    'k-sku.json': mapping('demo-sku', { sku: 'sku' }, [{ input: { sku: 'B' }, output: { sku: 'B' } }]),
    // l reuses i, which is invalid (no examples): l cannot run either.
    'l-uses-invalid.json': {
      id: 'demo-uses-invalid',
      source: { name: 'demo/wrapper' },
      target: { name: 'demo/wrapped' },
      fields: { wrapped: { from: 'item', use: 'demo-no-examples' } },
      examples: [{ input: { item: { sku: 'C' } }, output: { wrapped: { sku: 'C' } } }],
    },
    'readme.txt': 'not a mapping: ignored',
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hub-mapping-files-'));
    for (const [name, content] of Object.entries(files)) {
      writeFileSync(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content, null, 2));
    }
    reports = validateMappingFiles(dir);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const report = (file: string): FileReport => {
    const r = reports.find((x) => x.file === file);
    if (!r) throw new Error(`no report for ${file}`);
    return r;
  };
  const codes = (file: string) => report(file).errors.map((e) => e.code);

  it('reports one result per .json file, sorted by name, and ignores other files', () => {
    expect(reports.map((r) => r.file)).toEqual(Object.keys(files).filter((f) => f.endsWith('.json')).sort());
  });

  it('reports a file that is not JSON as invalid_json, without an id', () => {
    expect(report('b-not-json.json')).toMatchObject({ id: null, valid: false });
    expect(codes('b-not-json.json')).toEqual(['invalid_json']);
  });

  it('reports an unknown operator and an unknown transform by name', () => {
    expect(report('c-unknown-operator.json').valid).toBe(false);
    expect(report('c-unknown-operator.json').errors).toContainEqual(expect.objectContaining({ path: '/fields/sku/uppercase', code: 'unknown_operator' }));
    expect(report('d-unknown-transform.json').valid).toBe(false);
    expect(report('d-unknown-transform.json').errors).toContainEqual(expect.objectContaining({ path: '/fields/sku/transform/0', code: 'unknown_transform' }));
  });

  it('reports a golden example whose expected output is wrong as example_mismatch, saying where', () => {
    expect(report('e-wrong-example.json').valid).toBe(false);
    expect(report('e-wrong-example.json').errors).toEqual([expect.objectContaining({ path: '/examples/0', code: 'example_mismatch' })]);
    expect(report('e-wrong-example.json').errors[0]!.message).toContain('/qty');
  });

  it('reports both mappings of a use cycle as mapping_cycle', () => {
    for (const file of ['f-cycle-one.json', 'g-cycle-two.json']) {
      expect(report(file).valid, file).toBe(false);
      expect(codes(file), file).toContain('mapping_cycle');
    }
  });

  it('reports the second file with an id already taken as duplicate_id, and keeps the first', () => {
    expect(report('h-same-id.json')).toMatchObject({ id: 'demo-valid', valid: false });
    expect(codes('h-same-id.json')).toEqual(['duplicate_id']);
    expect(report('a-valid.json')).toMatchObject({ id: 'demo-valid', valid: true, errors: [] });
  });

  it('reports a mapping without golden examples as examples_missing', () => {
    expect(report('i-no-examples.json')).toMatchObject({ id: 'demo-no-examples', valid: false });
    expect(codes('i-no-examples.json')).toEqual(['examples_missing']);
  });

  it('reports a mapping that reuses an invalid one as dependency_invalid', () => {
    expect(report('l-uses-invalid.json').valid).toBe(false);
    expect(codes('l-uses-invalid.json')).toEqual(['dependency_invalid']);
  });

  it('keeps the valid files valid, a use between two files included', () => {
    const valid = reports.filter((r) => r.valid).map((r) => r.file);
    expect(valid).toEqual(['a-valid.json', 'j-uses-valid.json', 'k-sku.json']);
  });

  it('loadFileMappings leaves the invalid files out instead of throwing', () => {
    const loaded = loadFileMappings(dir);
    expect([...loaded.keys()].sort()).toEqual(['demo-sku', 'demo-uses-valid', 'demo-valid']);
    expect(loaded.get('demo-valid')?.fields).toEqual(ok('demo-valid').fields);
  });

  it('finds no mappings, and reports none, in a directory that does not exist', () => {
    expect(validateMappingFiles(join(dir, 'missing'))).toEqual([]);
    expect(loadFileMappings(join(dir, 'missing')).size).toBe(0);
  });

  it('lazyFileMappings reads the directory when first used, not when made, and then answers as loadFileMappings', () => {
    const later = mkdtempSync(join(tmpdir(), 'hub-lazy-mappings-'));
    try {
      const lazy = lazyFileMappings(later);
      // Written after the map was made: a map that read the directory when made would not have it.
      writeFileSync(join(later, 'a-valid.json'), JSON.stringify(ok('demo-valid')));
      writeFileSync(join(later, 'b-not-json.json'), '{ "id": ');
      expect(lazy.has('demo-valid')).toBe(true);
      expect(lazy.size).toBe(1);
      expect([...lazy.keys()]).toEqual(['demo-valid']);
      expect([...lazy]).toEqual([...loadFileMappings(later)]);
      expect(lazy.get('demo-valid')?.fields).toEqual(ok('demo-valid').fields);
    } finally {
      rmSync(later, { recursive: true, force: true });
    }
  });
});
