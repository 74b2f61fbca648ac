import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { type FileSpec, readFile } from './index.ts';
import { drain } from './testing.ts';

describe('readFile', () => {
  it('reads each format with its reader, all giving the same items', async () => {
    const csv = await drain(readFile(Readable.from(['Sku,Qty\nA,1\n']), { format: 'csv' }));
    const xml = await drain(readFile(Readable.from(['<Rows><Row><Sku>A</Sku><Qty>1</Qty></Row></Rows>']), { format: 'xml', options: { recordPath: 'Rows/Row' } }));
    expect(csv.items).toEqual([{ kind: 'record', row: 2, value: { Sku: 'A', Qty: '1' } }]);
    expect(xml.items).toEqual([{ kind: 'record', row: 1, value: { Sku: 'A', Qty: '1' } }]);
  });

  it('refuses a format it does not know before reading anything', () => {
    expect(() => readFile(Readable.from([]), { format: 'json' } as unknown as FileSpec)).toThrow('format must be csv, xml or xlsx, not "json"');
  });
});
