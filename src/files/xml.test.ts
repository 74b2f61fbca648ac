import { Readable } from 'node:stream';
import fc from 'fast-check';
import { XMLParser } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { HubError } from '../errors.ts';
import { byteByByte, drain, fileErrorOf, inChunks, retainedHeap } from './testing.ts';
import type { XmlOptions } from './types.ts';
import { readXml } from './xml.ts';

const ORDERS: XmlOptions = { recordPath: 'Orders/Order', isArray: ['Line'] };
const read = (xml: string | Uint8Array, options: XmlOptions = ORDERS) => drain(readXml(inChunks(xml, 5), options));

/** fast-xml-parser with the options the hub's XML mappings are written against (mappings/xml-order-in.json). */
function fxp(isArray: string[]) {
  return new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@_',
    parseTagValue: false,
    isArray: (name: string) => isArray.includes(name),
    processEntities: true,
    htmlEntities: false,
  });
}

describe('readXml: records', () => {
  it('gives each record element as fast-xml-parser would, with attributes and isArray elements', async () => {
    const xml = `<?xml version="1.0" encoding="UTF-8"?>
<Orders batch="7">
  <Header><Order id="not-a-record"/></Header>
  <Order id="SO-1" channel="b2b">
    <PlacedAt>2026-11-20T09:15:00Z</PlacedAt>
    <Customer><Email> ann@example.com </Email><Name/></Customer>
    <Lines>
      <Line number="1"><Sku>TEE-BLK-M</Sku><Qty>2</Qty><Price>9.90</Price></Line>
      <Line number="2"><Sku>MUG-01</Sku><Qty>1</Qty></Line>
    </Lines>
  </Order>
  <Order id="SO-2"><Lines><Line><Sku>TEE</Sku><Qty>1</Qty></Line></Lines><Tag>a</Tag><Tag>b</Tag></Order>
</Orders>`;
    const { items, failure } = await read(xml);
    expect(failure).toBeNull();
    expect(items).toEqual([
      {
        kind: 'record',
        row: 1,
        value: {
          '@_id': 'SO-1',
          '@_channel': 'b2b',
          PlacedAt: '2026-11-20T09:15:00Z',
          Customer: { Email: 'ann@example.com', Name: '' },
          Lines: {
            Line: [
              { '@_number': '1', Sku: 'TEE-BLK-M', Qty: '2', Price: '9.90' },
              { '@_number': '2', Sku: 'MUG-01', Qty: '1' },
            ],
          },
        },
      },
      { kind: 'record', row: 2, value: { '@_id': 'SO-2', Lines: { Line: [{ Sku: 'TEE', Qty: '1' }] }, Tag: ['a', 'b'] } },
    ]);
    // The same, key order included, as a whole-document parse.
    const whole = fxp(['Line']).parse(xml).Orders.Order;
    expect(JSON.stringify(items.map((i) => i.kind === 'record' && i.value))).toBe(JSON.stringify(whole));
  });

  it('gives an object for every record: text alone is #text, an empty record {}', async () => {
    const { values } = await read('<Orders><Order>  just text </Order><Order/><Order></Order></Orders>');
    expect(values).toEqual([{ '#text': 'just text' }, {}, {}]);
  });

  it('round-trips escaped text and CDATA, and decodes character references', async () => {
    const xml = '<Orders><Order><Name>Fish &amp; Chips &lt;b&gt; &quot;q&quot; &apos;s&apos;</Name><Note><![CDATA[a<b && c]]></Note><Mixed> x <![CDATA[ <y> ]]> z </Mixed><Ref>Caf&#233; &#x20AC;</Ref></Order></Orders>';
    const { values } = await read(xml);
    // CDATA is kept exactly (untrimmed) and joined to the trimmed text around it, as fast-xml-parser does.
    expect(values).toEqual([{ Name: 'Fish & Chips <b> "q" \'s\'', Note: 'a<b && c', Mixed: 'x <y> z', Ref: 'Café €' }]);
    // fast-xml-parser (htmlEntities off) would leave &#233; as written; XML says it is é.
    expect(fxp([]).parse('<Ref>Caf&#233;</Ref>').Ref).toBe('Caf&#233;');
  });

  it('joins text split by comments and child elements the way fast-xml-parser does', async () => {
    const xml = '<Orders><Order id="1"> a <!-- note --> b<X>1</X> tail <?pi data?></Order></Orders>';
    const { values } = await read(xml);
    expect(values).toEqual([{ X: '1', '#text': 'a  btail', '@_id': '1' }]);
  });

  it('renames and refuses element names as fast-xml-parser does, the refusal failing only its record', async () => {
    const { items, failure } = await read('<Orders><Order><toString>1</toString></Order><Order><__proto__>x</__proto__></Order><Order><constructor/></Order><Order/></Orders>');
    expect(failure).toBeNull();
    expect(items).toEqual([
      { kind: 'record', row: 1, value: { __toString: '1' } },
      { kind: 'error', row: 2, error: { row: 2, column: null, code: 'forbidden_name', message: 'Record 2 has an element named "__proto__", which is refused' } },
      { kind: 'error', row: 3, error: expect.objectContaining({ code: 'forbidden_name' }) },
      { kind: 'record', row: 4, value: {} },
    ]);
  });

  it('reads a deeper record path, and only there', async () => {
    const xml = '<Export><Orders><Order n="1"/></Orders><Archive><Orders><Order n="2"/></Orders></Archive><Orders><Order n="3"/></Orders></Export>';
    const { values } = await read(xml, { recordPath: '/Export/Orders/Order' });
    expect(values).toEqual([{ '@_n': '1' }, { '@_n': '3' }]);
  });

  it('gives nothing when the record path never matches, or the file is empty', async () => {
    expect(await read('<Orders><Order/></Orders>', { recordPath: 'Export/Order' })).toEqual({ items: [], values: [], failure: null });
    expect(await read('<Order/>', { recordPath: 'Orders/Order' })).toEqual({ items: [], values: [], failure: null });
    expect(await read('')).toEqual({ items: [], values: [], failure: null });
    expect(await read('\uFEFF \n')).toEqual({ items: [], values: [], failure: null });
  });

  it('decodes characters split across chunks (a byte at a time)', async () => {
    const { values, failure } = await drain(readXml(byteByByte('\uFEFF<Orders><Order n="ü€"><Name>Café 😀 日本</Name></Order></Orders>'), ORDERS));
    expect(failure).toBeNull();
    expect(values).toEqual([{ Name: 'Café 😀 日本', '@_n': 'ü€' }]);
  });

  it('agrees with fast-xml-parser on generated records', async () => {
    const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
    const text = fc.string({ unit: fc.constantFrom('a', 'b', ' ', '\n', '&', '<', '>', '"', "'", 'é', '€'), maxLength: 8 });
    // Line breaks in attribute values are left out: XML turns them into spaces and fast-xml-parser does not.
    const attributeText = fc.string({ unit: fc.constantFrom('a', ' ', '&', '<', '"', "'", 'ß'), maxLength: 6 });
    const attributes = fc.uniqueArray(fc.tuple(fc.constantFrom('id', 'n', 'Line', 'p:q'), attributeText), { selector: (a) => a[0], maxLength: 3 });
    type Node = { text: string } | { cdata: string } | { comment: string } | { name: string; attributes: [string, string][]; children: Node[] };
    const { element } = fc.letrec<{ node: Node; element: Node }>((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        text.map((t) => ({ text: t })),
        fc.string({ unit: fc.constantFrom('x', ' ', '<', '&', '\n'), maxLength: 5 }).map((c) => ({ cdata: c })),
        fc.string({ unit: fc.constantFrom('c', ' '), maxLength: 4 }).map((c) => ({ comment: c })),
        tie('element'),
      ),
      element: fc.record({
        name: fc.constantFrom('Line', 'Sku', 'Qty', 'Note', 'toString', 'p:Tag'),
        attributes,
        children: fc.array(tie('node'), { maxLength: 5 }),
      }),
    }));
    const serialize = (n: Node): string => {
      if ('text' in n) return escape(n.text);
      if ('cdata' in n) return `<![CDATA[${n.cdata}]]>`;
      if ('comment' in n) return `<!--${n.comment}-->`;
      const attrs = n.attributes.map(([k, v]) => ` ${k}="${escape(v)}"`).join('');
      return n.children.length === 0 ? `<${n.name}${attrs}/>` : `<${n.name}${attrs}>${n.children.map(serialize).join('')}</${n.name}>`;
    };
    const parser = fxp(['Line', 'Qty']);
    await fc.assert(
      fc.asyncProperty(fc.array(element, { minLength: 1, maxLength: 3 }), async (records) => {
        const fragments = records.map((r) => serialize({ ...(r as { name: string; attributes: [string, string][]; children: Node[] }), name: 'Order' }));
        const { values, failure } = await read(`<Orders>${fragments.join('\n')}</Orders>`, { recordPath: 'Orders/Order', isArray: ['Line', 'Qty'] });
        expect(failure).toBeNull();
        const expected = fragments.map((f) => {
          const v: unknown = parser.parse(f).Order;
          return typeof v === 'string' ? (v === '' ? {} : { '#text': v }) : v;
        });
        expect(JSON.stringify(values)).toBe(JSON.stringify(expected));
      }),
      { numRuns: 300 },
    );
  });
});

describe('readXml: security', () => {
  it('refuses a DOCTYPE (billion laughs) without expanding anything', async () => {
    const lol = `<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  ${Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`).join('\n  ')}
]>
<Orders><Order><Note>&lol9;</Note></Order></Orders>`;
    const { items, failure } = await read(lol);
    expect(items).toEqual([]);
    const error = fileErrorOf(failure);
    expect(error).toMatchObject({ row: null, column: null, code: 'doctype_refused' });
    expect(error.message).not.toContain('lollol');
  });

  it('refuses a DOCTYPE with an external entity, reading no file', async () => {
    const xxe = '<?xml version="1.0"?><!DOCTYPE Orders [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Orders><Order><Note>&xxe;</Note></Order></Orders>';
    const { items, failure } = await read(xxe);
    expect(items).toEqual([]);
    expect(fileErrorOf(failure).code).toBe('doctype_refused');
    expect(JSON.stringify(failure!.extra)).not.toContain('root:');
  });

  it('refuses any DOCTYPE, even a harmless one', async () => {
    expect(fileErrorOf((await read('<!DOCTYPE Orders><Orders><Order/></Orders>')).failure).code).toBe('doctype_refused');
  });

  it('stops at an entity XML does not define', async () => {
    const { values, failure } = await read('<Orders><Order n="1"/><Order><Note>&nbsp;</Note></Order></Orders>');
    expect(values).toEqual([{ '@_n': '1' }]);
    expect(fileErrorOf(failure)).toMatchObject({ row: 2, code: 'undefined_entity' });
  });
});

describe('readXml: a file that cannot be read on stops, the records before it given', () => {
  it('stops at a truncated file, saying where', async () => {
    const { values, failure } = await read('<Orders>\n<Order n="1"/>\n<Order n="2"><Lines><Line>');
    expect(values).toEqual([{ '@_n': '1' }]);
    expect(fileErrorOf(failure)).toEqual({
      row: 2,
      column: null,
      code: 'truncated_file',
      message: 'The file ends before the XML is complete (line 3, column 27): unclosed tag: Line',
    });
  });

  it('stops at malformed XML, saying where', async () => {
    const { values, failure } = await read('<Orders>\n<Order n="1"/>\n<Order><Sku>A</Qty></Order></Orders>');
    expect(values).toEqual([{ '@_n': '1' }]);
    const error = fileErrorOf(failure);
    expect(error).toMatchObject({ row: 2, code: 'malformed_xml' });
    expect(error.message).toMatch(/^At line 3, column \d+: /);
  });

  it('stops at invalid UTF-8, saying where', async () => {
    const data = Buffer.concat([Buffer.from('<Orders>\n<Order n="1"/>\n<Order>Caf'), Buffer.from([0xe9]), Buffer.from('</Order></Orders>')]);
    const { values, failure } = await drain(readXml(byteByByte(data), ORDERS));
    expect(values).toEqual([{ '@_n': '1' }]);
    expect(fileErrorOf(failure)).toEqual({
      row: 2,
      column: null,
      code: 'invalid_encoding',
      message: 'The file is not valid UTF-8 at line 3, column 11 (byte offset 34)',
    });
  });

  it('stops when one record would fill memory', async () => {
    function* file() {
      yield '<Orders><Order n="1"/><Order>';
      for (let i = 0; i < 17; i++) yield `<Line>${'x'.repeat(1 << 20)}</Line>`;
      yield '</Order></Orders>';
    }
    const { values, failure } = await drain(readXml(Readable.from(file()), ORDERS));
    expect(values).toEqual([{ '@_n': '1' }]);
    expect(fileErrorOf(failure)).toMatchObject({ row: 2, code: 'record_too_large' });
  });

  it('refuses an encoding other than UTF-8', async () => {
    const { failure } = await read('<?xml version="1.0" encoding="ISO-8859-1"?><Orders/>');
    expect(fileErrorOf(failure).code).toBe('unsupported_encoding');
  });

  it('stops with source_failed when the source fails midway, after the records already read', async () => {
    const input = new Readable({ read() {} });
    input.push('<Orders>');
    for (let i = 1; i <= 50; i++) input.push(`<Order n="${i}"/>`);
    const seen: number[] = [];
    let failure: unknown;
    try {
      for await (const item of readXml(input, ORDERS)) {
        seen.push(item.row);
        if (seen.length === 10) input.destroy(new Error('connection reset'));
      }
    } catch (err) {
      failure = err;
    }
    expect(failure).toBeInstanceOf(HubError);
    expect(fileErrorOf(failure as HubError)).toMatchObject({ row: null, code: 'source_failed', message: 'The file could not be read to its end: connection reset' });
    expect(seen.slice(0, 10)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });
});

describe('readXml: options and resources', () => {
  it('refuses options that cannot work before reading anything', () => {
    const input = Readable.from(['<a/>']);
    expect(() => readXml(input, { recordPath: '' })).toThrow(/recordPath/);
    expect(() => readXml(input, { recordPath: 'Orders//Order' })).toThrow(/recordPath/);
    expect(() => readXml(input, {} as XmlOptions)).toThrow(HubError);
  });

  it('destroys the source when the caller stops early', async () => {
    const input = inChunks(`<Orders>${'<Order/>'.repeat(10_000)}</Orders>`, 1000);
    for await (const item of readXml(input, ORDERS)) if (item.row === 5) break;
    expect(input.destroyed).toBe(true);
  });

  it('reads 100,000 records with flat memory', async () => {
    const records = 100_000;
    function* file() {
      yield '<?xml version="1.0" encoding="UTF-8"?>\n<Orders>\n';
      let block = '';
      for (let i = 1; i <= records; i++) {
        block += `<Order id="${i}"><Channel>web</Channel><Number>SO-${i}</Number><Line><Sku>SKU-${i}</Sku><Qty>2</Qty><Price>9.99</Price></Line><Line><Sku>SKU-${i + 1}</Sku><Qty>1</Qty></Line></Order>\n`;
        if (block.length > 60_000) {
          yield block;
          block = '';
        }
      }
      yield `${block}</Orders>\n`;
    }
    const before = retainedHeap();
    let peak = 0;
    let count = 0;
    for await (const item of readXml(Readable.from(file()), ORDERS)) {
      if (item.kind !== 'record') throw new Error(`unexpected ${JSON.stringify(item)}`);
      count++;
      if (count % 25_000 === 0) peak = Math.max(peak, retainedHeap() - before);
    }
    expect(count).toBe(records);
    // The file is ~16 MB; what the reader keeps stays far below it.
    expect(peak).toBeLessThan(20 * 1024 * 1024);
  });
});
