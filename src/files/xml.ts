// Reads the repeating record elements of an XML file (every <Order> of Orders/Order) as the file streams in, with
// memory flat however large the file: only the record being read is held. saxes tokenizes; each record is built
// straight from saxes' events into the object fast-xml-parser would give for that element with the options the
// hub's XML mappings are written against (mappings/xml-order-in.json):
//   { ignoreAttributes: false, attributeNamePrefix: '@_', parseTagValue: false, processEntities: true,
//     htmlEntities: false, isArray: (name) => options.isArray.includes(name) }
// so attributes are '@_' properties, every value is text (trimmed), an element with only text is that text, an
// empty one is '', text beside child elements or attributes is '#text', a repeated element is an array and an
// isArray element always is. Building directly rather than re-serializing each record and parsing it again with
// fast-xml-parser is what makes this several times faster than a whole-document parse; xml.test.ts checks the
// two agree on generated records. Where they differ, this reader follows XML and fast-xml-parser does not:
// character references (&#233;) are decoded (fast-xml-parser with htmlEntities off leaves them as written),
// line breaks and tabs in attribute values are normalized to spaces, whitespace written as a character reference
// at either end of a value is trimmed too, and processing instructions inside a record are dropped.
//
// A record element holding only text gives { '#text': text } and an empty one {}, so every record is an object.
//
// Security: a DOCTYPE stops the file before anything in it is used ('doctype_refused'; one after the root element
// has begun is malformed XML to saxes, 'malformed_xml'). saxes never expands or fetches entities declared in a
// DTD, and with the DOCTYPE refused none can be declared at all, so external entities (file:///etc/passwd) and
// entity bombs (billion laughs) have nothing to work with; the only entities are XML's five, and any other
// reference stops the file ('undefined_entity').
import type { Readable } from 'node:stream';
import { SaxesParser, type SaxesTagPlain } from 'saxes';
import type { HubError } from '../errors.ts';
import { flatten } from './chunks.ts';
import { fileFailure, isFileFailure, optionError, readChunks, reasonOf } from './failure.ts';
import type { ReadItem, XmlOptions } from './types.ts';
import { InvalidUtf8, Utf8Decoder } from './utf8.ts';

/** More characters than any real record; past it the file stops rather than fill memory with one record. */
const MAX_RECORD_CHARS = 16 << 20;

/**
 * fast-xml-parser refuses these element names outright (they would reach Object.prototype); a record holding one
 * is that record's error.
 */
const FORBIDDEN_NAMES = new Set(['__proto__', 'constructor', 'prototype']);
/** fast-xml-parser renames these to '__' + name, which keeps them from shadowing Object.prototype methods. */
const RENAMED_NAMES = new Set(['hasOwnProperty', 'toString', 'valueOf', '__defineGetter__', '__defineSetter__', '__lookupGetter__', '__lookupSetter__']);

/** An open element of the record being read. */
interface Element {
  name: string;
  attributes: Record<string, string>;
  children: Record<string, unknown> | null;
  /** Text already settled: each run trimmed, then joined, as fast-xml-parser does. */
  text: string | undefined;
  /** Text since the last child or CDATA section; comments do not split a run. */
  run: string;
}

function hasAny(attributes: Record<string, string>): boolean {
  for (const name in attributes) if (Object.hasOwn(attributes, name)) return true;
  return false;
}

interface XmlSettings {
  path: string[];
  arrays: Set<string>;
}

function settings(options: XmlOptions): XmlSettings {
  const recordPath = options?.recordPath;
  const path = typeof recordPath === 'string' ? recordPath.replace(/^\//, '').split('/') : [];
  if (path.length === 0 || path.some((p) => !/^[^\s<>&"']+$/.test(p))) {
    throw optionError('recordPath', "recordPath must be element names from the root separated by '/', e.g. 'Orders/Order'");
  }
  const isArray = options.isArray ?? [];
  if (!Array.isArray(isArray) || isArray.some((n) => typeof n !== 'string')) throw optionError('isArray', 'isArray must be a list of element names');
  return { path, arrays: new Set(isArray) };
}

/** Reads the `recordPath` elements of `input` (UTF-8 bytes); see ReadItem for what arrives and what is thrown. */
export function readXml(input: Readable, options: XmlOptions): AsyncIterable<ReadItem> {
  return flatten(xmlChunks(input, settings(options)));
}

/** As readXml, the records a chunk of the file completes at a time. */
export function readXmlChunks(input: Readable, options: XmlOptions): AsyncIterable<ReadItem[]> {
  return xmlChunks(input, settings(options));
}

async function* xmlChunks(input: Readable, { path, arrays }: XmlSettings): AsyncGenerator<ReadItem[]> {
  const parser = new SaxesParser();
  /** Records finished by the chunk just written, given out before the next one is read. */
  const finished: ReadItem[] = [];
  /** The record element and its open descendants; empty between records. */
  const open: Element[] = [];
  /** Elements open in the document, and how many of them, from the root, follow the record path. */
  let depth = 0;
  let onPath = 0;
  let ordinal = 0;
  let recordStart = 0;
  /** A name fast-xml-parser would refuse, seen in the current record. */
  let forbidden: string | null = null;

  const at = () => `line ${parser.line}, column ${parser.column + 1}`;
  const currentRow = () => (open.length > 0 ? ordinal : null);
  const fail = (code: string, message: string, cause?: unknown): HubError =>
    fileFailure({ row: currentRow(), column: null, code, message }, { cause });
  const checkSize = () => {
    if (parser.position - recordStart > MAX_RECORD_CHARS) {
      throw fail('record_too_large', `Record ${ordinal} (${at()}) is longer than ${MAX_RECORD_CHARS} characters`);
    }
  };

  function settle(el: Element): void {
    if (el.run === '') return;
    const t = el.run.trim();
    el.run = '';
    if (t !== '') el.text = el.text === undefined ? t : el.text + t;
  }

  /** The element's value in fast-xml-parser's shape: children, then '#text', then attributes. */
  function valueOf(el: Element): unknown {
    settle(el);
    const text = el.text === '' ? undefined : el.text;
    const attributes = hasAny(el.attributes);
    if (el.children === null && !attributes) return text ?? '';
    const value = el.children ?? {};
    if (text !== undefined) value['#text'] = text;
    for (const name in el.attributes) {
      const key = `@_${name}`;
      const v = el.attributes[name]!.trim();
      value[key] = arrays.has(key) ? [v] : v;
    }
    return value;
  }

  function addChild(parent: Element, name: string, value: unknown): void {
    if (FORBIDDEN_NAMES.has(name)) {
      forbidden ??= name;
      return;
    }
    const key = RENAMED_NAMES.has(name) ? `__${name}` : name;
    const children = (parent.children ??= {});
    if (!Object.hasOwn(children, key)) children[key] = arrays.has(key) ? [value] : value;
    else {
      const had = children[key];
      if (Array.isArray(had)) had.push(value);
      else children[key] = [had, value];
    }
  }

  parser.on('doctype', () => {
    throw fail(
      'doctype_refused',
      `The file has a DOCTYPE declaration (ending at ${at()}); it is refused because a DTD can define entities that read other files or expand without bound. Send the file without it`,
    );
  });
  parser.on('xmldecl', (decl) => {
    if (decl.encoding !== undefined && !/^(utf-?8|us-ascii)$/i.test(decl.encoding)) {
      throw fail('unsupported_encoding', `The file declares the encoding ${JSON.stringify(decl.encoding)}; only UTF-8 is read`);
    }
  });
  parser.on('opentag', (tag: SaxesTagPlain) => {
    const parent = open[open.length - 1];
    if (parent) {
      settle(parent);
      checkSize();
    } else {
      if (onPath === depth && depth < path.length && tag.name === path[depth]) onPath++;
      depth++;
      if (onPath < path.length) return;
      ordinal++;
      recordStart = parser.position;
      forbidden = null;
    }
    open.push({ name: tag.name, attributes: tag.attributes, children: null, text: undefined, run: '' });
  });
  parser.on('text', (text) => {
    const el = open[open.length - 1];
    if (el) {
      el.run += text;
      checkSize();
    }
  });
  parser.on('cdata', (cdata) => {
    const el = open[open.length - 1];
    if (el) {
      // Kept exactly, untrimmed, as fast-xml-parser keeps CDATA.
      settle(el);
      el.text = (el.text ?? '') + cdata;
    }
  });
  parser.on('closetag', () => {
    const el = open.pop();
    if (el) {
      const value = valueOf(el);
      const parent = open[open.length - 1];
      if (parent) return addChild(parent, el.name, value);
      finished.push(
        forbidden !== null
          ? {
              kind: 'error',
              row: ordinal,
              error: { row: ordinal, column: null, code: 'forbidden_name', message: `Record ${ordinal} has an element named ${JSON.stringify(forbidden)}, which is refused` },
            }
          : { kind: 'record', row: ordinal, value: typeof value === 'object' ? (value as Record<string, unknown>) : value === '' ? {} : { '#text': value } },
      );
    }
    if (onPath === depth) onPath--;
    depth--;
  });

  /** Runs the parser on more text (null: the end); its failure, if any, as the file's. */
  function parse(text: string | null): HubError | null {
    try {
      if (text === null) parser.close();
      else parser.write(text);
      return null;
    } catch (err) {
      if (isFileFailure(err)) return err;
      const problem = reasonOf(err).replace(/^\d+:\d+: /, '');
      if (text === null) return fail('truncated_file', `The file ends before the XML is complete (${at()}): ${problem}`, err);
      if (problem.startsWith('undefined entity')) return fail('undefined_entity', `At ${at()}: an entity reference that XML does not define`, err);
      return fail('malformed_xml', `At ${at()}: ${problem}`, err);
    }
  }

  const decoder = new Utf8Decoder();
  // An empty (or blank) file has no records and is not an error here: the caller reports it as an empty file.
  let blank = true;
  for await (const chunk of readChunks(input)) {
    let text: string;
    try {
      text = decoder.decode(chunk);
    } catch (err) {
      if (!(err instanceof InvalidUtf8)) throw err;
      // Parse up to the bad byte, so the records before it are given and the position says where it is.
      const failure = parse(err.validText);
      if (finished.length) yield finished.splice(0);
      throw failure ?? fail('invalid_encoding', `The file is not valid UTF-8 at ${at()} (byte offset ${err.offset})`, err);
    }
    if (blank && /\S/.test(text)) blank = false;
    const failure = parse(text);
    if (finished.length) yield finished.splice(0);
    if (failure) throw failure;
  }
  try {
    decoder.end();
  } catch (err) {
    throw fail('invalid_encoding', `The file ends in the middle of a UTF-8 character (byte offset ${(err as InvalidUtf8).offset})`, err);
  }
  if (blank) return;
  const failure = parse(null);
  if (finished.length) yield finished.splice(0);
  if (failure) throw failure;
}
