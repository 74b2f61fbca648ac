// The helpers compiled mappings call: sentinels, safe property access, and building run-time errors. Everything
// here runs only on the slow path (an error) except the few tiny predicates.
import type { Site } from './codegen.ts';
import { toText } from './coerce.ts';
import { BAD, describeValue, lastReason, SHAPE } from './failure.ts';
import { formatPath, joinPathText, readPath } from './path.ts';
import { cloneJson } from './transforms.ts';

/** One failure of one record: where in the output, from where in the input, a stable code and a sentence. */
export interface MappingRunError {
  recordIndex: number;
  /** JSON pointer into the target record ("" for the record itself). */
  targetPath: string;
  /** The source path of the rule, as the mapping writes it, with concrete indexes; null when there is none. */
  sourcePath: string | null;
  code: string;
  message: string;
}

function push(E: MappingRunError[], targetPath: string, sourcePath: string | null, code: string, message: string): void {
  E.push({ recordIndex: 0, targetPath, sourcePath, code, message });
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => deepEqual(x, bb[i]));
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** For `$root…` source paths: the part after `$root`, relative ("" becomes "$"). */
function afterRoot(sourcePath: string): string {
  const rest = sourcePath.slice(5);
  return rest === '' ? '$' : rest.startsWith('.') ? rest.slice(1) : rest;
}

export const helpers = {
  BAD,
  SHAPE,
  isArr: Array.isArray,
  hasOwn: Object.hasOwn,
  clone: cloneJson,
  toText,
  deepEq: deepEqual,
  matchText(re: RegExp, value: unknown): boolean {
    if (typeof value === 'string') return re.test(value);
    return typeof value === 'number' && re.test(String(value));
  },
  inList(values: unknown[], value: unknown): boolean {
    for (const v of values) if (v === value || (typeof v === 'object' && deepEqual(v, value))) return true;
    return false;
  },
  /** Sets a field named `__proto__` as an own property instead of calling the prototype setter. */
  defineField(target: object, key: string, value: unknown): void {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  },
  failShape(E: MappingRunError[], site: Site, cur: unknown, root: unknown): void {
    const path = site.path!;
    const read = readPath(path.scope === 'root' ? root : cur, path.segments);
    const at = read.failedAt ?? 0;
    const where = formatPath(path.scope, path.segments.slice(0, at));
    const wanted = typeof path.segments[at] === 'number' ? 'an array' : 'an object';
    push(E, site.targetPath, site.sourcePath, 'wrong_shape', `${path.text}: expected ${wanted} at ${where}, found ${describeValue(read.value)}`);
  },
  failValue(E: MappingRunError[], site: Site): void {
    const { code, message } = lastReason();
    push(E, site.targetPath, site.sourcePath, code, message);
  },
  failMissing(E: MappingRunError[], site: Site): void {
    const message = site.sourcePath ? `there is no value at ${site.sourcePath}` : 'the rule gave no value';
    push(E, site.targetPath, site.sourcePath, 'missing_value', message);
  },
  failNotArray(E: MappingRunError[], site: Site, value: unknown): void {
    push(E, site.targetPath, site.sourcePath, 'wrong_shape', `${site.sourcePath}: expected an array, found ${describeValue(value)}`);
  },
  failElementMissing(E: MappingRunError[], site: Site, outIndex: number, index: number): void {
    push(E, `${site.targetPath}/${outIndex}`, `${site.sourcePath}[${index}]`, 'missing_value', 'the element gave no value');
  },
  /** Puts the errors of one array element (from `mark` on) under the element's target and source paths. */
  rebaseEach(E: MappingRunError[], mark: number, site: Site, outIndex: number, index: number): void {
    const target = `${site.targetPath}/${outIndex}`;
    const source = `${site.sourcePath}[${index}]`;
    for (let i = mark; i < E.length; i++) {
      const e = E[i]!;
      e.targetPath = target + e.targetPath;
      if (e.sourcePath !== null && !e.sourcePath.startsWith('$root')) e.sourcePath = joinPathText(source, e.sourcePath);
    }
  },
  /** Puts the errors of a reused mapping (from `mark` on) under the field and the value it was applied to. */
  rebaseUse(E: MappingRunError[], mark: number, site: Site): void {
    const base = site.sourcePath ?? '$';
    for (let i = mark; i < E.length; i++) {
      const e = E[i]!;
      e.targetPath = site.targetPath + e.targetPath;
      if (e.sourcePath === null) continue;
      const rel = e.sourcePath.startsWith('$root') ? afterRoot(e.sourcePath) : e.sourcePath;
      e.sourcePath = joinPathText(base, rel);
    }
  },
};

export type Helpers = typeof helpers;
