// JSON pointers (RFC 6901): where in a mapping document a problem is, and where in a target record an error is.

export function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

export function pointerJoin(base: string, ...segments: (string | number)[]): string {
  return base + segments.map((s) => `/${escapePointer(String(s))}`).join('');
}

/** The segments of a pointer ("" is the whole value). */
export function pointerSegments(pointer: string): string[] {
  if (pointer === '' || pointer === '/') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** The value at `pointer` in a parsed JSON document; undefined where the path is not there. */
export function valueAtPointer(document: unknown, pointer: string): unknown {
  let value = document;
  for (const segment of pointerSegments(pointer)) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, segment)) return undefined;
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}
