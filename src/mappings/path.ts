// Source paths (`customer.address.city`, `line_items[0].sku`, `["unit.price"]`, `$root.currency`) parsed into data.
// A path is only ever read as a list of property names and indexes; it never becomes code.

/** A property name, or an array index (negative counts from the end). */
export type Segment = string | number;

export interface ParsedPath {
  /** `current`: the record (or the array element being mapped); `root`: the top-level record. */
  scope: 'current' | 'root';
  segments: Segment[];
  /** The path written canonically, for error messages. */
  text: string;
}

export type PathResult = { ok: true; path: ParsedPath } | { ok: false; message: string };

export const MAX_PATH_SEGMENTS = 32;

const RESERVED = /[.[\]]/;

/** Whether a name can be written bare (`a.b`) rather than quoted (`["a.b"]`). */
function isBareName(name: string): boolean {
  return name !== '' && !RESERVED.test(name) && !name.startsWith('$') && name.trim() === name && !/[{}\u0000-\u001f]/.test(name);
}

export function formatPath(scope: 'current' | 'root', segments: readonly Segment[]): string {
  let out = scope === 'root' ? '$root' : '';
  for (const seg of segments) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (isBareName(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out === '' ? '$' : out;
}

/** Reads a bracket `[…]` starting at `i` (the `[`); returns the segment and the index after `]`. */
function readBracket(text: string, i: number): { seg: Segment; end: number } | string {
  const open = i + 1;
  if (text[open] === '"') {
    let j = open + 1;
    while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
    if (j >= text.length) return 'has an unterminated quoted name';
    if (text[j + 1] !== ']') return 'needs `]` after a quoted name';
    let name: unknown;
    try {
      name = JSON.parse(text.slice(open, j + 1));
    } catch {
      return 'has a quoted name that is not a valid JSON string';
    }
    return { seg: name as string, end: j + 2 };
  }
  const close = text.indexOf(']', open);
  if (close < 0) return 'has an unclosed `[`';
  const inner = text.slice(open, close);
  if (!/^-?\d{1,9}$/.test(inner)) return `has \`[${inner}]\`, which is neither an index nor a quoted name`;
  return { seg: Number(inner), end: close + 1 };
}

export function parsePath(text: string): PathResult {
  if (typeof text !== 'string' || text === '') return { ok: false, message: 'is empty' };
  let scope: 'current' | 'root' = 'current';
  let i = 0;
  if (text === '$' || text === '$root') return { ok: true, path: { scope: text === '$' ? 'current' : 'root', segments: [], text } };
  if (text.startsWith('$root.') || text.startsWith('$root[')) {
    scope = 'root';
    i = text[5] === '.' ? 6 : 5;
  } else if (text.startsWith('$.') || text.startsWith('$[')) {
    i = text[1] === '.' ? 2 : 1;
  } else if (text.startsWith('$')) {
    return { ok: false, message: 'starts with `$`: write `$`, `$.name`, `$root.name`, or quote the name as `["$name"]`' };
  }
  const segments: Segment[] = [];
  let expectName = true;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '[') {
      const r = readBracket(text, i);
      if (typeof r === 'string') return { ok: false, message: r };
      segments.push(r.seg);
      i = r.end;
      expectName = false;
      continue;
    }
    if (ch === '.') {
      if (expectName) return { ok: false, message: 'has an empty name (`..` or a leading `.`)' };
      i++;
      expectName = true;
      if (i >= text.length) return { ok: false, message: 'ends with `.`' };
      if (text[i] === '[') return { ok: false, message: 'has `.[`: write `a[0]` or `a["b"]`' };
      continue;
    }
    if (ch === ']') return { ok: false, message: 'has a `]` without `[`' };
    if (!expectName) return { ok: false, message: 'needs `.` between a bracket and a name' };
    let j = i;
    while (j < text.length && text[j] !== '.' && text[j] !== '[' && text[j] !== ']') j++;
    const name = text.slice(i, j);
    if (!isBareName(name)) {
      return { ok: false, message: `has the name ${JSON.stringify(name)}, which must be quoted as [${JSON.stringify(name)}]` };
    }
    segments.push(name);
    i = j;
    expectName = false;
  }
  if (expectName && segments.length > 0) return { ok: false, message: 'ends with `.`' };
  if (segments.length > MAX_PATH_SEGMENTS) return { ok: false, message: `is deeper than ${MAX_PATH_SEGMENTS} segments` };
  return { ok: true, path: { scope, segments, text: formatPath(scope, segments) } };
}

/** Appends `rel` (a formatted path relative to `base`) to `base`, as error messages show it. */
export function joinPathText(base: string, rel: string): string {
  if (rel === '$') return base;
  if (base === '$') return rel;
  return rel.startsWith('[') ? base + rel : `${base}.${rel}`;
}

/** Reads a path from a plain value, own properties only: the slow path used to explain errors. */
export function readPath(value: unknown, segments: readonly Segment[]): { value: unknown; failedAt?: number } {
  let cur = value;
  for (let i = 0; i < segments.length; i++) {
    if (cur === undefined || cur === null) return { value: undefined };
    const seg = segments[i]!;
    if (typeof seg === 'number') {
      if (!Array.isArray(cur)) return { value: cur, failedAt: i };
      cur = cur[seg < 0 ? cur.length + seg : seg];
    } else {
      if (typeof cur !== 'object' || Array.isArray(cur)) return { value: cur, failedAt: i };
      cur = Object.hasOwn(cur, seg) ? (cur as Record<string, unknown>)[seg] : undefined;
    }
  }
  return { value: cur };
}

export type TemplatePart = { text: string } | { path: ParsedPath };

/** Splits `{order_number}-{line}` into literal text and paths; `{{` and `}}` are literal braces. */
export function parseTemplate(template: string): { ok: true; parts: TemplatePart[] } | { ok: false; message: string } {
  const parts: TemplatePart[] = [];
  let text = '';
  let i = 0;
  while (i < template.length) {
    const ch = template[i]!;
    if (ch === '{' && template[i + 1] === '{') {
      text += '{';
      i += 2;
    } else if (ch === '}') {
      if (template[i + 1] !== '}') return { ok: false, message: 'has a `}` without `{` (write `}}` for a literal brace)' };
      text += '}';
      i += 2;
    } else if (ch === '{') {
      let j = i + 1;
      let inQuote = false;
      while (j < template.length && (inQuote || template[j] !== '}')) {
        if (template[j] === '"') inQuote = !inQuote;
        else if (inQuote && template[j] === '\\') j++;
        j++;
      }
      if (j >= template.length) return { ok: false, message: 'has a `{` without `}`' };
      const parsed = parsePath(template.slice(i + 1, j).trim());
      if (!parsed.ok) return { ok: false, message: `has a placeholder whose path ${parsed.message}` };
      if (text) parts.push({ text });
      text = '';
      parts.push({ path: parsed.path });
      i = j + 1;
    } else {
      text += ch;
      i++;
    }
  }
  if (text) parts.push({ text });
  return { ok: true, parts };
}
