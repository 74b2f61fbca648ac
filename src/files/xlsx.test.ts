import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { crc32, deflateRawSync } from 'node:zlib';
import ExcelJS from 'exceljs';
import { describe, expect, it } from 'vitest';
import { HubError } from '../errors.ts';
import { drain, fileErrorOf, inChunks, retainedHeap, unzip, type ZipEntry } from './testing.ts';
import type { XlsxOptions } from './types.ts';
import { readXlsx } from './xlsx.ts';

async function workbook(build: (book: ExcelJS.Workbook) => void): Promise<Buffer> {
  const book = new ExcelJS.Workbook();
  build(book);
  return Buffer.from(await book.xlsx.writeBuffer());
}

/** A zip of `entries` in that order, deflated, sizes in the local headers. */
function zip(entries: ZipEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const { name, data } of entries) {
    const nameBytes = Buffer.from(name);
    const packed = deflateRawSync(data);
    const fields = Buffer.alloc(26);
    fields.writeUInt16LE(20, 0);
    fields.writeUInt16LE(8, 4);
    fields.writeUInt32LE(crc32(data), 10);
    fields.writeUInt32LE(packed.length, 14);
    fields.writeUInt32LE(data.length, 18);
    fields.writeUInt16LE(nameBytes.length, 22);
    const local = Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), fields, nameBytes, packed]);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    fields.copy(central, 6);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, nameBytes);
    locals.push(local);
    offset += local.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

/**
 * exceljs (like Excel) writes the shared strings after the sheets, so its reader parks each sheet in a temporary
 * file until the zip has been read; with the workbook parts first, sheets are read while they stream in.
 */
function streamable(xlsx: Buffer): Buffer {
  const first = ['xl/workbook.xml', 'xl/_rels/workbook.xml.rels', 'xl/sharedStrings.xml', 'xl/styles.xml'];
  const entries = unzip(xlsx);
  return zip([...first.flatMap((n) => entries.filter((e) => e.name === n)), ...entries.filter((e) => !first.includes(e.name))]);
}

const read = (xlsx: Buffer, options?: XlsxOptions) => drain(readXlsx(inChunks(xlsx, 4096), options));

const stockBook = () =>
  workbook((book) => {
    const sheet = book.addWorksheet('Stock');
    sheet.addRow(['Sku', 'Qty', 'Price', 'Counted', 'Total', 'Note', 'Active']);
    for (let i = 1; i <= 2000; i++) sheet.addRow([`SKU-${i}`, i, i / 4, new Date(Date.UTC(2026, 0, 1 + (i % 28))), { formula: `B${i + 1}*2`, result: i * 2 }, `note ${i}`, i % 2 === 0]);
    book.addWorksheet('Locations').addRows([['Code', 'Name'], ['A-1', 'Aisle 1']]);
  });

describe('readXlsx: values', () => {
  const mixed = () =>
    workbook((book) => {
      const sheet = book.addWorksheet('Data');
      // Row 1 stays empty: the header is the first row with anything in it.
      sheet.getRow(2).values = ['Sku', 'Qty', 'Price', 'When', 'Total', 'Note', 'Flag', 'Link'];
      // A formatted but empty cell past the header is not a column.
      sheet.getRow(2).getCell(12).numFmt = '0.00';
      sheet.getRow(3).values = [
        'TEE-1',
        5,
        0.1,
        new Date(Date.UTC(2026, 10, 20)),
        { formula: 'B3*2', result: 10 },
        { richText: [{ text: 'Hello ' }, { font: { bold: true }, text: 'World' }] },
        true,
        { text: 'site', hyperlink: 'https://example.com' },
      ];
      sheet.getRow(4).values = ['MUG-2', 1234567.5, null, new Date(Date.UTC(2026, 10, 20, 9, 15, 30)), { formula: 'B4*2' }, '', false];
      sheet.getCell('D4').numFmt = 'yyyy-mm-dd hh:mm:ss';
      // Row 5 is left empty; row 6 has a formula with a date result, a text result and an error.
      sheet.getRow(6).values = ['CAP-3', { error: '#N/A' }, null, { formula: 'D3+1', result: new Date(Date.UTC(2026, 10, 21)) }, { formula: 'A6&"!"', result: 'CAP-3!' }];
      sheet.getCell('D6').numFmt = 'dd/mm/yyyy';
    });

  it.each([
    ['as exceljs writes it', (b: Buffer) => b],
    ['with the sheets streamed', streamable],
  ])('gives every value as text (%s)', async (_, layout) => {
    const { items, failure } = await read(layout(await mixed()));
    expect(failure).toBeNull();
    expect(items).toEqual([
      {
        kind: 'record',
        row: 3,
        value: { Sku: 'TEE-1', Qty: '5', Price: '0.1', When: '2026-11-20', Total: '10', Note: 'Hello World', Flag: 'TRUE', Link: 'site' },
      },
      {
        kind: 'record',
        row: 4,
        value: { Sku: 'MUG-2', Qty: '1234567.5', Price: '', When: '2026-11-20T09:15:30', Total: '', Note: '', Flag: 'FALSE', Link: '' },
      },
      {
        kind: 'record',
        row: 6,
        value: { Sku: 'CAP-3', Qty: '#N/A', Price: '', When: '2026-11-21', Total: 'CAP-3!', Note: '', Flag: '', Link: '' },
      },
    ]);
  });

  it('gives a row with a value beyond the header as an error item, and reads on', async () => {
    const xlsx = await workbook((book) => book.addWorksheet('S').addRows([['Sku', 'Qty'], ['A', 1], ['B', 2, '', 'stray'], ['C', 3]]));
    const { items, failure } = await read(xlsx);
    expect(failure).toBeNull();
    expect(items).toEqual([
      { kind: 'record', row: 2, value: { Sku: 'A', Qty: '1' } },
      { kind: 'error', row: 3, error: { row: 3, column: null, code: 'field_count', message: "Row 3 has a value in column D, beyond the header's 2 columns" } },
      { kind: 'record', row: 4, value: { Sku: 'C', Qty: '3' } },
    ]);
  });

  it('gives nothing for an empty sheet or a header alone', async () => {
    expect(await read(await workbook((book) => book.addWorksheet('Empty')))).toEqual({ items: [], values: [], failure: null });
    expect(await read(await workbook((book) => book.addWorksheet('H').addRow(['Sku'])))).toEqual({ items: [], values: [], failure: null });
  });
});

describe('readXlsx: sheets and header', () => {
  it('reads the first sheet by default, or the one named or numbered', async () => {
    const xlsx = await stockBook();
    const first = await read(xlsx);
    expect(first.values).toHaveLength(2000);
    expect(first.items[0]).toEqual({
      kind: 'record',
      row: 2,
      value: { Sku: 'SKU-1', Qty: '1', Price: '0.25', Counted: '2026-01-02', Total: '2', Note: 'note 1', Active: 'FALSE' },
    });
    const locations = [{ kind: 'record', row: 2, value: { Code: 'A-1', Name: 'Aisle 1' } }];
    expect((await read(xlsx, { sheet: 'Locations' })).items).toEqual(locations);
    expect((await read(xlsx, { sheet: 2 })).items).toEqual(locations);
  });

  it('stops when the sheet is not there, naming the sheets there are', async () => {
    const xlsx = await stockBook();
    expect(fileErrorOf((await read(xlsx, { sheet: 'Bins' })).failure)).toEqual({
      row: null,
      column: null,
      code: 'sheet_not_found',
      message: 'The workbook has no sheet named "Bins"; its sheets are "Stock", "Locations"',
    });
    expect(fileErrorOf((await read(xlsx, { sheet: 3 })).failure).message).toBe('The workbook has no sheet 3; its sheets are "Stock", "Locations"');
  });

  it('checks required columns and duplicate names before any record', async () => {
    const { items, failure } = await read(await stockBook(), { requiredColumns: ['Sku', 'Bin', 'Lot'] });
    expect(items).toEqual([]);
    expect(fileErrorOf(failure)).toMatchObject({ row: 1, column: 'Bin', code: 'missing_columns' });
    expect(failure!.message).toContain('"Bin", "Lot"');
    const dup = await workbook((book) => book.addWorksheet('S').addRows([['Sku', 'Sku'], ['A', 'B']]));
    expect(fileErrorOf((await read(dup)).failure).code).toBe('duplicate_column');
  });

  it('refuses options that cannot work before reading anything', () => {
    const input = Readable.from([]);
    expect(() => readXlsx(input, { sheet: 0 })).toThrow(/sheet/);
    expect(() => readXlsx(input, { sheet: '' })).toThrow(HubError);
    expect(() => readXlsx(input, { requiredColumns: [' '] })).toThrow(/requiredColumns/);
  });
});

describe('readXlsx: memory', () => {
  it('reads 50,000 rows with flat memory', async () => {
    const rows = 50_000;
    const xlsx = await workbook((book) => {
      const sheet = book.addWorksheet('Counts');
      sheet.addRow(['Sku', 'Qty', 'Price']);
      for (let i = 1; i <= rows; i++) sheet.addRow([i, i % 17, i / 4]);
    });
    const before = retainedHeap();
    let peak = 0;
    let count = 0;
    for await (const item of readXlsx(inChunks(xlsx, 16_384))) {
      if (item.kind !== 'record') throw new Error(`unexpected ${JSON.stringify(item)}`);
      count++;
      if (count % 10_000 === 0) peak = Math.max(peak, retainedHeap() - before);
    }
    expect(count).toBe(rows);
    expect(peak).toBeLessThan(20 * 1024 * 1024);
  });
});

describe('readXlsx: a file that is not a readable workbook stops, never hangs or crashes', () => {
  it.each([
    ['random bytes', () => randomBytes(5000)],
    ['a CSV file', () => Buffer.from('Sku,Qty\nA,1\n')],
    ['an empty file', () => Buffer.alloc(0)],
  ])('%s', async (_, bytes) => {
    const { items, failure } = await read(bytes());
    expect(items).toEqual([]);
    expect(fileErrorOf(failure).code).toBe('corrupt_file');
  });

  it.each([
    ['as exceljs writes it', (b: Buffer) => b],
    ['with the sheets streamed', streamable],
  ])('a truncated workbook (%s)', async (_, layout) => {
    const xlsx = layout(await stockBook());
    for (const keep of [0.3, 0.6, 0.9]) {
      const { failure } = await read(xlsx.subarray(0, Math.floor(xlsx.length * keep)));
      expect(fileErrorOf(failure)).toMatchObject({ code: 'corrupt_file', message: expect.stringMatching(/^The file is not a readable Excel workbook/) });
    }
  });

  it('a workbook with damaged compressed data', async () => {
    const xlsx = Buffer.from(await stockBook());
    for (let i = 3000; i < 3400; i++) xlsx[i]! ^= 0x55;
    expect(fileErrorOf((await read(xlsx)).failure).code).toBe('corrupt_file');
  });

  it('a zip that is not a workbook', async () => {
    const archive = zip([{ name: 'readme.txt', data: Buffer.from('hello') }]);
    expect(fileErrorOf((await read(archive)).failure)).toMatchObject({ code: 'corrupt_file', message: expect.stringContaining('xl/workbook.xml') });
  });
});

describe('readXlsx: the source failing', () => {
  function failingSource(xlsx: Buffer) {
    const input = new Readable({ read() {} });
    for (let i = 0; i < xlsx.length; i += 1024) input.push(xlsx.subarray(i, i + 1024));
    return input;
  }

  it('stops with source_failed after the rows already read', async () => {
    const input = failingSource(streamable(await stockBook()));
    const seen: number[] = [];
    let failure: unknown;
    try {
      for await (const item of readXlsx(input)) {
        seen.push(item.row);
        if (seen.length === 10) input.destroy(new Error('connection reset'));
      }
    } catch (err) {
      failure = err;
    }
    expect(failure).toBeInstanceOf(HubError);
    expect(fileErrorOf(failure as HubError)).toEqual({ row: null, column: null, code: 'source_failed', message: 'The file could not be read to its end: connection reset' });
    expect(seen.slice(0, 10)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(seen.length).toBeLessThan(2000);
  });

  it('stops with source_failed while exceljs still waits for the shared strings', async () => {
    const input = new Readable({ read() {} });
    const xlsx = await stockBook();
    input.push(xlsx.subarray(0, xlsx.length >> 1));
    setTimeout(() => input.destroy(new Error('connection reset')), 20);
    const { items, failure } = await drain(readXlsx(input));
    expect(items).toEqual([]);
    expect(fileErrorOf(failure).code).toBe('source_failed');
  });

  it('destroys the source when the caller stops early', async () => {
    const input = inChunks(streamable(await stockBook()), 4096);
    for await (const item of readXlsx(input)) if (item.row === 5) break;
    expect(input.destroyed).toBe(true);
  });
});
