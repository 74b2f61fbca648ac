import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { HubError } from '../errors.ts';
import { MAX_RECORD_CHARS, readCsv } from './csv.ts';
import { byteByByte, drain, fileErrorOf, inChunks, retainedHeap } from './testing.ts';
import type { CsvOptions } from './types.ts';

const read = (data: string | Uint8Array, options?: CsvOptions) => drain(readCsv(inChunks(data, 7), options));

describe('readCsv: records', () => {
  it('reads the header and gives each row as { header: text }, row being its line', async () => {
    const { items, failure } = await read('Sku,Qty,Price\nTEE-1,2,9.90\nMUG-2, 1 ,\n');
    expect(failure).toBeNull();
    expect(items).toEqual([
      { kind: 'record', row: 2, value: { Sku: 'TEE-1', Qty: '2', Price: '9.90' } },
      // Values are kept exactly: no trimming, no casting, an empty field is ''.
      { kind: 'record', row: 3, value: { Sku: 'MUG-2', Qty: ' 1 ', Price: '' } },
    ]);
  });

  it('reads CRLF, LF and CR line ends, even mixed, and a file without a final line break', async () => {
    const { items } = await read('Sku,Qty\r\nA,1\nB,2\rC,3\r\nD,4');
    expect(items.map((i) => [i.row, i.kind === 'record' && i.value])).toEqual([
      [2, { Sku: 'A', Qty: '1' }],
      [3, { Sku: 'B', Qty: '2' }],
      [4, { Sku: 'C', Qty: '3' }],
      [5, { Sku: 'D', Qty: '4' }],
    ]);
  });

  it('strips a UTF-8 byte order mark and trims header names', async () => {
    const { values } = await read('\uFEFF Sku , Qty \nA,1\n');
    expect(values).toEqual([{ Sku: 'A', Qty: '1' }]);
    expect(Object.keys(values[0]!)[0]).toBe('Sku');
  });

  it.each([
    [';', 'Sku;Name\nA;x,y\n'],
    ['\t', 'Sku\tName\nA\tx,y\n'],
  ])('reads the delimiter %j', async (delimiter, text) => {
    const { values, failure } = await read(text, { delimiter });
    expect(failure).toBeNull();
    expect(values).toEqual([{ Sku: 'A', Name: 'x,y' }]);
  });

  it('reads quoted fields holding delimiters, line breaks and doubled quotes, and counts lines across them', async () => {
    const text = 'Sku,Name,Note\nA,"Tee, black","He said ""hi"""\nB,"two\nlines","three\r\nlines\nhere"\nC,plain,x\n';
    const { items } = await read(text);
    expect(items).toEqual([
      { kind: 'record', row: 2, value: { Sku: 'A', Name: 'Tee, black', Note: 'He said "hi"' } },
      { kind: 'record', row: 3, value: { Sku: 'B', Name: 'two\nlines', Note: 'three\r\nlines\nhere' } },
      // B's record spans lines 3 to 6: one break in Name, two in Note.
      { kind: 'record', row: 7, value: { Sku: 'C', Name: 'plain', Note: 'x' } },
    ]);
  });

  it('honours another quote character', async () => {
    const { values } = await read("Sku,Name\nA,'x,''y'''\n", { quote: "'" });
    expect(values).toEqual([{ Sku: 'A', Name: "x,'y'" }]);
  });

  it('skips blank lines but still counts them', async () => {
    const { items } = await read('\nSku,Qty\n\nA,1\n\n\nB,2\n');
    expect(items.map((i) => [i.row, i.kind === 'record' && i.value.Sku])).toEqual([
      [4, 'A'],
      [7, 'B'],
    ]);
  });

  it('gives a row with too many or too few fields as an error item, and reads on', async () => {
    const { items, failure } = await read('Sku,Qty\nA,1\nB,2,extra\nC\nD,4\n');
    expect(failure).toBeNull();
    expect(items).toEqual([
      { kind: 'record', row: 2, value: { Sku: 'A', Qty: '1' } },
      { kind: 'error', row: 3, error: { row: 3, column: null, code: 'field_count', message: 'Line 3 has 3 fields where the header has 2' } },
      { kind: 'error', row: 4, error: { row: 4, column: null, code: 'field_count', message: 'Line 4 has 1 field where the header has 2' } },
      { kind: 'record', row: 5, value: { Sku: 'D', Qty: '4' } },
    ]);
  });

  it('reads latin1 when told to', async () => {
    const { values, failure } = await read(Buffer.from('Sku,Name\nA,Café crème\n', 'latin1'), { encoding: 'latin1' });
    expect(failure).toBeNull();
    expect(values).toEqual([{ Sku: 'A', Name: 'Café crème' }]);
  });

  it('decodes characters split across chunks (a byte at a time)', async () => {
    const text = '\uFEFFSku,Name\r\nA,Café €5 😀 日本\r\nB,"ß\r\nü"\r\n';
    const { items, failure } = await drain(readCsv(byteByByte(text)));
    expect(failure).toBeNull();
    expect(items).toEqual([
      { kind: 'record', row: 2, value: { Sku: 'A', Name: 'Café €5 😀 日本' } },
      { kind: 'record', row: 3, value: { Sku: 'B', Name: 'ß\r\nü' } },
    ]);
  });

  it('reads a file without a header when given the column names', async () => {
    const { items } = await read('A,1\nB,2\n', { header: false, columns: ['Sku', 'Qty'] });
    expect(items).toEqual([
      { kind: 'record', row: 1, value: { Sku: 'A', Qty: '1' } },
      { kind: 'record', row: 2, value: { Sku: 'B', Qty: '2' } },
    ]);
  });

  it('renames the header with columns, then checks required columns against the new names', async () => {
    const { values } = await read('Artikel,Menge\nA,1\n', { columns: ['Sku', 'Qty'], requiredColumns: ['Sku'] });
    expect(values).toEqual([{ Sku: 'A', Qty: '1' }]);
    const wrongCount = await read('Artikel,Menge,Preis\nA,1,2\n', { columns: ['Sku', 'Qty'] });
    expect(fileErrorOf(wrongCount.failure).code).toBe('column_count');
  });

  it('keeps a column named __proto__ as a value, not as the prototype', async () => {
    const { values } = await read('__proto__,Sku\nx,A\n');
    expect(Object.getPrototypeOf(values[0])).toBe(Object.prototype);
    expect(Object.entries(values[0]!)).toEqual([
      ['__proto__', 'x'],
      ['Sku', 'A'],
    ]);
  });
});

describe('readCsv: empty files', () => {
  it.each([
    ['an empty file', ''],
    ['blank lines', '\n\r\n\n'],
    ['a byte order mark alone', '\uFEFF'],
  ])('gives nothing and no error for %s', async (_, text) => {
    expect(await read(text, { requiredColumns: ['Sku'] })).toEqual({ items: [], values: [], failure: null });
  });

  it('gives nothing for a header alone, after checking it', async () => {
    expect(await read('Sku,Qty\n', { requiredColumns: ['Sku'] })).toEqual({ items: [], values: [], failure: null });
    expect(fileErrorOf((await read('Sku,Qty\n', { requiredColumns: ['Price'] })).failure).code).toBe('missing_columns');
  });
});

describe('readCsv: a header that cannot be used stops the file before any record', () => {
  it('lists every missing required column', async () => {
    const { items, failure } = await read('Sku,Name\nA,x\n', { requiredColumns: ['Sku', 'Qty', 'Price'] });
    expect(items).toEqual([]);
    expect(fileErrorOf(failure)).toEqual({
      row: 1,
      column: 'Qty',
      code: 'missing_columns',
      message: 'The header lacks the required columns "Qty", "Price"; it has "Sku", "Name"',
    });
    expect(failure!.errors).toEqual([
      { field: '/file/columns/Qty', code: 'missing_column', message: 'The required column "Qty" is missing' },
      { field: '/file/columns/Price', code: 'missing_column', message: 'The required column "Price" is missing' },
    ]);
  });

  it('says when the delimiter looks wrong', async () => {
    const { failure } = await read('Sku;Qty;Price\nA;1;2\n', { requiredColumns: ['Sku', 'Qty'] });
    const error = fileErrorOf(failure);
    expect(error.code).toBe('missing_columns');
    expect(error.message).toBe(
      'The header lacks the required columns "Sku", "Qty"; it has "Sku;Qty;Price". The whole header was read as one column: the file seems to be separated by a semicolon, not a comma',
    );
  });

  it('refuses duplicate header names', async () => {
    const { items, failure } = await read('Sku,Qty,Sku\nA,1,B\n');
    expect(items).toEqual([]);
    expect(fileErrorOf(failure)).toMatchObject({ row: 1, column: 'Sku', code: 'duplicate_column' });
    expect(failure!.message).toContain('"Sku"');
  });

  it('refuses a header column without a name', async () => {
    expect(fileErrorOf((await read('Sku,,Qty\nA,x,1\n')).failure)).toMatchObject({ row: 1, code: 'blank_column' });
  });
});

describe('readCsv: a file that cannot be read on stops, the rows before it given', () => {
  it('stops at a quote that is never closed, naming the line the record starts on', async () => {
    const { values, failure } = await read('Sku,Name\nA,x\nB,"never closed\nC,y\nD,z\n');
    expect(values).toEqual([{ Sku: 'A', Name: 'x' }]);
    expect(fileErrorOf(failure)).toEqual({
      row: 3,
      column: 'Name',
      code: 'malformed_csv',
      message: 'Line 3: a quote opened in the record starting here is never closed',
    });
    expect(failure!.errors).toEqual([{ field: '/file/rows/3/Name', code: 'malformed_csv', message: failure!.message }]);
  });

  it('stops at text after a closing quote, and at a quote inside an unquoted field', async () => {
    expect(fileErrorOf((await read('Sku,Name\nA,"x"y\n')).failure)).toMatchObject({ row: 2, code: 'malformed_csv' });
    expect(fileErrorOf((await read('Sku,Name\nA,x\n\nB,12" pipe\n')).failure)).toMatchObject({ row: 4, column: 'Name', code: 'malformed_csv' });
  });

  it('stops when an unclosed quote would make the rest of a large file one field', async () => {
    const rest = 'x,y\n'.repeat(MAX_RECORD_CHARS / 2);
    const { values, failure } = await read(`Sku,Name\nA,x\nB,"oops\n${rest}`);
    expect(values).toEqual([{ Sku: 'A', Name: 'x' }]);
    expect(fileErrorOf(failure)).toMatchObject({ row: 3, code: 'record_too_large' });
  });

  it('stops at invalid UTF-8, naming its line', async () => {
    const data = Buffer.concat([Buffer.from('Sku,Name\nA,x\nB,Caf'), Buffer.from([0xe9]), Buffer.from('\nC,y\n')]);
    const { failure } = await drain(readCsv(byteByByte(data)));
    expect(fileErrorOf(failure)).toEqual({
      row: 3,
      column: null,
      code: 'invalid_encoding',
      message: 'Line 3 is not valid UTF-8 (at byte offset 18); save the file as UTF-8, or read it as latin1',
    });
  });

  it('stops at a UTF-8 character cut off by the end of the file', async () => {
    const data = Buffer.concat([Buffer.from('Sku,Name\nA,x\n'), Buffer.from('€').subarray(0, 2)]);
    expect(fileErrorOf((await read(data)).failure)).toMatchObject({ row: 3, code: 'invalid_encoding' });
  });

  it('stops with source_failed when the source fails midway, after the rows already read', async () => {
    const input = new Readable({ read() {} });
    input.push('Sku,Qty\n');
    for (let i = 1; i <= 50; i++) input.push(`S${i},${i}\n`);
    const seen: number[] = [];
    let failure: unknown;
    try {
      for await (const item of readCsv(input)) {
        seen.push(item.row);
        if (seen.length === 10) input.destroy(new Error('connection reset'));
      }
    } catch (err) {
      failure = err;
    }
    expect(failure).toBeInstanceOf(HubError);
    expect(fileErrorOf(failure as HubError)).toEqual({
      row: null,
      column: null,
      code: 'source_failed',
      message: 'The file could not be read to its end: connection reset',
    });
    expect((failure as HubError).retryable).toBe(true);
    expect(seen.slice(0, 10)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  });
});

describe('readCsv: options and resources', () => {
  it('refuses options that cannot work before reading anything', () => {
    const input = Readable.from(['x']);
    expect(() => readCsv(input, { header: false })).toThrow(HubError);
    expect(() => readCsv(input, { delimiter: '' })).toThrow(/delimiter/);
    expect(() => readCsv(input, { quote: '""' })).toThrow(/quote/);
    expect(() => readCsv(input, { columns: ['Sku', 'Sku'] })).toThrow(/more than once/);
    expect(() => readCsv(input, { requiredColumns: [''] })).toThrow(/requiredColumns/);
    expect(() => readCsv(input, { header: false, columns: ['Sku'], requiredColumns: ['Qty'] })).toThrow('requiredColumns names Qty, which columns does not');
  });

  it('destroys the source when the caller stops early', async () => {
    const input = inChunks(`Sku\n${'A\n'.repeat(10_000)}`, 1000);
    for await (const item of readCsv(input)) if (item.row === 5) break;
    expect(input.destroyed).toBe(true);
  });

  it('reads 200,000 rows with flat memory', async () => {
    const rows = 200_000;
    function* file() {
      yield 'Sku,Name,Qty,Price,Location\n';
      let block = '';
      for (let i = 1; i <= rows; i++) {
        block += `SKU-${i},"Widget, size ${i % 7}",${i % 13},${(i % 1000) / 10},A-${i % 50}\n`;
        if (block.length > 60_000) {
          yield block;
          block = '';
        }
      }
      yield block;
    }
    const before = retainedHeap();
    let peak = 0;
    let count = 0;
    let last = 0;
    for await (const item of readCsv(Readable.from(file()))) {
      if (item.kind !== 'record') throw new Error(`unexpected ${JSON.stringify(item)}`);
      count++;
      last = item.row;
      if (count % 50_000 === 0) peak = Math.max(peak, retainedHeap() - before);
    }
    expect(count).toBe(rows);
    expect(last).toBe(rows + 1);
    // The file is ~9 MB of text and 200k records; what the reader keeps stays far below either.
    expect(peak).toBeLessThan(20 * 1024 * 1024);
  });
});
