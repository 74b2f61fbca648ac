import { describe, expect, it } from 'vitest';
import { formatPath, parsePath, parseTemplate } from './path.ts';

function segments(text: string) {
  const r = parsePath(text);
  if (!r.ok) throw new Error(r.message);
  return [r.path.scope, r.path.segments];
}

function failure(text: string): string {
  const r = parsePath(text);
  return r.ok ? 'parsed' : r.message;
}

describe('parsePath', () => {
  it('reads names, indexes, quoted names and scopes', () => {
    expect(segments('a.b.c')).toEqual(['current', ['a', 'b', 'c']]);
    expect(segments('line_items[0].sku')).toEqual(['current', ['line_items', 0, 'sku']]);
    expect(segments('items[-1]')).toEqual(['current', ['items', -1]]);
    expect(segments('["unit.price"]["a]b"]')).toEqual(['current', ['unit.price', 'a]b']]);
    expect(segments('Order Number')).toEqual(['current', ['Order Number']]);
    expect(segments('$')).toEqual(['current', []]);
    expect(segments('$.a[1]')).toEqual(['current', ['a', 1]]);
    expect(segments('$root.currency')).toEqual(['root', ['currency']]);
    expect(segments('$root[0]')).toEqual(['root', [0]]);
    expect(segments('[3]')).toEqual(['current', [3]]);
  });

  it('refuses malformed paths with a reason', () => {
    expect(failure('')).toBe('is empty');
    expect(failure('a..b')).toMatch(/empty name/);
    expect(failure('.a')).toMatch(/empty name/);
    expect(failure('a.')).toMatch(/ends with/);
    expect(failure('a[')).toMatch(/unclosed/);
    expect(failure('a[x]')).toMatch(/neither an index nor a quoted name/);
    expect(failure('a["x]')).toMatch(/unterminated/);
    expect(failure('a]')).toMatch(/without `\[`/);
    expect(failure('a[0]b')).toMatch(/needs `.`/);
    expect(failure('$weird')).toMatch(/starts with `\$`/);
    expect(failure(' padded')).toMatch(/must be quoted/);
    expect(failure(Array.from({ length: 40 }, () => 'a').join('.'))).toMatch(/deeper than/);
  });

  it('writes paths back canonically, quoting what needs quotes', () => {
    expect(formatPath('current', ['a', 0, 'b.c', '$x', 'ok'])).toBe('a[0]["b.c"]["$x"].ok');
    expect(formatPath('root', ['a'])).toBe('$root.a');
    expect(formatPath('current', [])).toBe('$');
    for (const text of ['a[0]["b.c"]', '$root.a.b', '["line\\nbreak"]']) {
      const p = parsePath(text);
      expect(p.ok && p.path.text).toBe(text);
    }
  });
});

describe('parseTemplate', () => {
  it('splits text and placeholders, with escaped braces', () => {
    const r = parseTemplate('{a}-{b[0]} {{x}} {["c}"]}');
    expect(r.ok && r.parts.map((p) => ('text' in p ? p.text : p.path.text))).toEqual(['a', '-', 'b[0]', ' {x} ', '["c}"]']);
  });

  it('refuses unbalanced braces and bad placeholder paths', () => {
    expect(parseTemplate('{a').ok).toBe(false);
    expect(parseTemplate('a}').ok).toBe(false);
    expect(parseTemplate('{a..b}').ok).toBe(false);
  });
});
