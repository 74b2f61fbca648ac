// Named transforms (`trim`, `case`, `round`, `multiply`, `split`, `join`, `pad`, `toMinor`, `fromMinor`,
// `parseDate`, `formatDate`, `lookup`, `replace`): each made once per rule into a plain function of one value.
import { makeDateReader, readDecimal, toText, type Made, type StepFn } from './coerce.ts';
import { makePatternWriter } from './date-pattern.ts';
import { isoFromMs, isValidInstant } from './date-time.ts';
import { canonicalDecimal, decimalFromNumber, decimalToMinor, minorToDecimal, multiplyDecimal, toScale } from './decimal.ts';
import type { RoundingMode, Step, StepObject } from './document.ts';
import { BAD, describeValue, reject } from './failure.ts';
import { isTimeZone } from './time-zone.ts';

/** JSON types a value can have, for checking rules against the target schema. */
export type JsonType = 'string' | 'integer' | 'number' | 'boolean' | 'array' | 'object' | 'null';

export interface MadeStep {
  name: string;
  fn: StepFn;
  /** The JSON types the step can give; undefined when it depends on the input. */
  output: JsonType[] | undefined;
}

export const TRANSFORM_NAMES = [
  'trim', 'case', 'round', 'multiply', 'split', 'join', 'pad', 'toMinor', 'fromMinor', 'parseDate', 'formatDate', 'lookup', 'replace',
] as const;

function failStep(name: string, value: unknown, expected: string): typeof BAD {
  return reject('transform_failed', `${name} needs ${expected}, found ${describeValue(value)}`);
}

/** Scalar input as text (numbers and booleans written out), or BAD. */
function textOf(name: string, x: unknown): string | typeof BAD {
  const t = toText(x);
  return typeof t === 'string' ? t : failStep(name, x, 'text');
}

export function jsonTypeOf(value: unknown): JsonType {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value as JsonType;
}

function titleCase(s: string): string {
  return s.toLowerCase().replace(/(^|[\s\-_/.(])(\p{L})/gu, (_, sep: string, ch: string) => sep + ch.toUpperCase());
}

function passing(fn: (x: unknown) => unknown): StepFn {
  return (x) => (x === undefined || x === null || x === BAD ? x : fn(x));
}

function makeLookup(spec: NonNullable<StepObject['lookup']>): StepFn {
  const ignoreCase = spec.ignoreCase === true;
  const table = new Map<string, unknown>();
  for (const [k, v] of Object.entries(spec.table)) table.set(ignoreCase ? k.toLowerCase() : k, v);
  const hasFallback = Object.hasOwn(spec, 'fallback');
  const fallback = spec.fallback;
  return passing((x) => {
    if (typeof x === 'object') return failStep('lookup', x, 'text, a number or a boolean');
    const key = typeof x === 'string' ? (ignoreCase ? x.toLowerCase() : x) : String(x);
    const hit = table.get(key);
    if (hit !== undefined || table.has(key)) return cloneJson(hit);
    if (hasFallback) return cloneJson(fallback);
    return reject('lookup_miss', `${describeValue(x)} is not in the lookup table and there is no fallback`);
  });
}

/** A fresh copy of a JSON constant, so that no two records share (and can mutate) one object. */
export function cloneJson<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(cloneJson) as T;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    // A JSON key "__proto__" must stay an own property, never reach the prototype setter.
    Object.defineProperty(out, k, { value: cloneJson(v), enumerable: true, writable: true, configurable: true });
  }
  return out as T;
}

function roundOf(param: NonNullable<StepObject['round']>): { scale: number; mode: RoundingMode } {
  return typeof param === 'number' ? { scale: param, mode: 'half-up' } : { scale: param.scale, mode: param.mode ?? 'half-up' };
}

function decimalInput(name: string, x: unknown): string | typeof BAD {
  const dec = typeof x === 'string' || typeof x === 'number' ? readDecimal(x, undefined) : undefined;
  return typeof dec === 'string' ? dec : failStep(name, x, 'a number or a decimal');
}

function makeStepFn(key: keyof StepObject, spec: StepObject): Made<MadeStep> {
  const ok = (fn: StepFn, output: JsonType[] | undefined): Made<MadeStep> => ({ ok: true, value: { name: key, fn, output } });
  switch (key) {
    case 'trim': {
      const side = spec.trim ?? 'both';
      const f = side === 'start' ? (s: string) => s.trimStart() : side === 'end' ? (s: string) => s.trimEnd() : (s: string) => s.trim();
      return ok(passing((x) => (typeof x === 'string' ? f(x) : textOf('trim', x))), ['string']);
    }
    case 'case': {
      const mode = spec.case!;
      const f = mode === 'lower' ? (s: string) => s.toLowerCase() : mode === 'upper' ? (s: string) => s.toUpperCase() : titleCase;
      return ok(passing((x) => {
        const t = textOf('case', x);
        return t === BAD ? t : f(t);
      }), ['string']);
    }
    case 'round': {
      const { scale, mode } = roundOf(spec.round!);
      return ok(passing((x) => {
        const dec = decimalInput('round', x);
        return dec === BAD ? dec : toScale(dec, scale, mode);
      }), ['string']);
    }
    case 'multiply': {
      const factor = typeof spec.multiply === 'number' ? decimalFromNumber(spec.multiply) : canonicalDecimal(String(spec.multiply).trim());
      if (factor === undefined) return { ok: false, message: 'multiply needs a finite number or a decimal as text' };
      return ok(passing((x) => {
        const dec = decimalInput('multiply', x);
        return dec === BAD ? dec : multiplyDecimal(dec, factor);
      }), ['string']);
    }
    case 'split': {
      const p = typeof spec.split === 'string' ? { separator: spec.split } : spec.split!;
      const { separator } = p;
      return ok(passing((x) => {
        const t = textOf('split', x);
        if (t === BAD) return t;
        let parts = t.split(separator);
        if (p.trim) parts = parts.map((s) => s.trim());
        if (p.removeEmpty) parts = parts.filter((s) => s !== '');
        return parts;
      }), ['array']);
    }
    case 'join': {
      const sep = spec.join!;
      return ok(passing((x) => {
        if (!Array.isArray(x)) return failStep('join', x, 'an array');
        const parts: string[] = [];
        for (const item of x) {
          if (item === undefined || item === null) continue;
          const t = textOf('join', item);
          if (t === BAD) return t;
          parts.push(t);
        }
        return parts.join(sep);
      }), ['string']);
    }
    case 'pad': {
      const { length, side = 'start' } = spec.pad!;
      const char = spec.pad!.char;
      return ok(passing((x) => {
        const t = textOf('pad', x);
        if (t === BAD) return t;
        const c = char ?? (typeof x === 'number' ? '0' : ' ');
        return side === 'start' ? t.padStart(length, c) : t.padEnd(length, c);
      }), ['string']);
    }
    case 'toMinor': {
      const p = spec.toMinor;
      const scale = typeof p === 'number' ? p : (p?.scale ?? 2);
      const mode = typeof p === 'object' ? (p.mode ?? 'half-up') : 'half-up';
      return ok(passing((x) => {
        const dec = decimalInput('toMinor', x);
        if (dec === BAD) return dec;
        return decimalToMinor(dec, scale, mode) ?? reject('transform_failed', `toMinor: ${dec} is beyond the safe integer range`);
      }), ['integer']);
    }
    case 'fromMinor': {
      const p = spec.fromMinor;
      const scale = typeof p === 'number' ? p : (p?.scale ?? 2);
      return ok(passing((x) => {
        const dec = typeof x === 'number' || typeof x === 'string' ? minorToDecimal(x, scale) : undefined;
        return dec ?? failStep('fromMinor', x, 'an integer number of minor units');
      }), ['string']);
    }
    case 'parseDate': {
      const made = makeDateReader(spec.parseDate?.formats, spec.parseDate?.timeZone);
      if (!made.ok) return made;
      const read = made.value;
      return ok(passing((x) => {
        const t = read(x);
        return isValidInstant(t) ? isoFromMs(t) : failStep('parseDate', x, 'a date-time');
      }), ['string']);
    }
    case 'formatDate': {
      const p = typeof spec.formatDate === 'string' ? { pattern: spec.formatDate } : spec.formatDate!;
      const zone = p.timeZone ?? 'UTC';
      if (!isTimeZone(zone)) return { ok: false, code: 'bad_time_zone', message: `"${zone}" is not a known IANA time zone` };
      const writer = makePatternWriter(p.pattern, zone);
      if (!writer.ok) return { ok: false, code: 'bad_date_format', message: `the pattern "${p.pattern}" ${writer.message}` };
      const reader = makeDateReader(['iso', 'epoch-millis'], 'UTC');
      if (!reader.ok) return reader;
      const read = reader.value;
      const write = writer.write;
      return ok(passing((x) => {
        const t = read(x);
        return isValidInstant(t) ? write(t) : failStep('formatDate', x, 'an ISO 8601 date-time or epoch milliseconds');
      }), ['string']);
    }
    case 'lookup': {
      const table = spec.lookup!;
      const types = new Set<JsonType>(Object.values(table.table).map(jsonTypeOf));
      if (Object.hasOwn(table, 'fallback')) types.add(jsonTypeOf(table.fallback));
      return ok(makeLookup(table), [...types]);
    }
    case 'replace': {
      const { find, with: by } = spec.replace!;
      return ok(passing((x) => {
        const t = textOf('replace', x);
        return t === BAD ? t : t.split(find).join(by);
      }), ['string']);
    }
  }
}

/** The function of one transform step, or why it cannot be made (unknown name, bad parameters). */
export function makeStep(step: Step): Made<MadeStep> {
  if (typeof step === 'string') {
    if (step === 'trim' || step === 'toMinor' || step === 'fromMinor' || step === 'parseDate') return makeStepFn(step, { [step]: undefined });
    return { ok: false, code: 'unknown_transform', message: `"${String(step)}" is not a transform` };
  }
  const keys = Object.keys(step);
  if (keys.length !== 1) return { ok: false, code: 'unknown_transform', message: 'a transform step has exactly one transform name as its key' };
  const key = keys[0]!;
  if (!(TRANSFORM_NAMES as readonly string[]).includes(key)) return { ok: false, code: 'unknown_transform', message: `"${key}" is not a transform` };
  return makeStepFn(key as keyof StepObject, step);
}
