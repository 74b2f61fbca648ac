// Type coercion (`type` on a rule): one function per rule, made once, that turns a present value into the wanted
// type, returns undefined for an empty text (missing), or BAD with a reason. Never throws.
import { makePatternReader } from './date-pattern.ts';
import { isoFromMs, isValidInstant, parseEpoch, parseIso } from './date-time.ts';
import { canonicalDecimal, decimalFromNumber, parseDecimalText, toScale, type DecimalFormat } from './decimal.ts';
import type { RoundingMode, ValueType } from './document.ts';
import { BAD, describeValue, reject } from './failure.ts';
import { isTimeZone } from './time-zone.ts';

/** A step of a rule's pipeline: missing (undefined/null) and BAD pass through untouched. */
export type StepFn = (value: unknown) => unknown;
/** A thing made from a rule's options, or why it could not be (with a stable code when more specific than `bad_option`). */
export type Made<T> = { ok: true; value: T } | { ok: false; message: string; code?: string };

export interface CoerceSpec {
  type: ValueType;
  scale?: number;
  rounding?: RoundingMode;
  decimalSeparator?: '.' | ',';
  groupSeparator?: string;
  formats?: string[];
  timeZone?: string;
  trueValues?: string[];
  falseValues?: string[];
}

const TRUE_TEXTS = ['true', 'yes', 'y', '1', 'on'];
const FALSE_TEXTS = ['false', 'no', 'n', '0', 'off'];

function fail(type: string, value: unknown, why = ''): typeof BAD {
  return reject('coercion_failed', `cannot make ${type} of ${describeValue(value)}${why}`);
}

function isBlank(s: string): boolean {
  return s.length === 0 || s.trim().length === 0;
}

export function toText(x: unknown): unknown {
  if (typeof x === 'string' || x === undefined || x === null || x === BAD) return x;
  if (typeof x === 'number') return Number.isFinite(x) ? String(x) : fail('text', x);
  if (typeof x === 'boolean') return x ? 'true' : 'false';
  return fail('text', x);
}

/** Reads a number or numeric text as a canonical decimal string; undefined for blank text, BAD otherwise. */
export function readDecimal(x: unknown, format: DecimalFormat | undefined, type = 'a decimal'): string | undefined | typeof BAD {
  if (typeof x === 'string') {
    const fast = format === undefined ? canonicalDecimal(x) : undefined;
    if (fast !== undefined) return fast;
    if (isBlank(x)) return undefined;
    return parseDecimalText(x, format) ?? fail(type, x);
  }
  if (typeof x === 'number') return decimalFromNumber(x) ?? fail(type, x);
  return fail(type, x);
}

function makeDecimal(spec: CoerceSpec, format: DecimalFormat | undefined): StepFn {
  const { scale } = spec;
  const mode = spec.rounding ?? 'half-up';
  return (x) => {
    if (x === undefined || x === null || x === BAD) return x;
    const dec = readDecimal(x, format);
    if (typeof dec !== 'string' || scale === undefined) return dec;
    return toScale(dec, scale, mode);
  };
}

function makeInteger(spec: CoerceSpec, format: DecimalFormat | undefined): StepFn {
  const mode = spec.rounding;
  return (x) => {
    if (typeof x === 'number' && Number.isSafeInteger(x)) return x;
    if (x === undefined || x === null || x === BAD) return x;
    if (typeof x === 'boolean' || typeof x === 'object') return fail('an integer', x);
    let dec = readDecimal(x, format, 'an integer');
    if (typeof dec !== 'string') return dec;
    const dot = dec.indexOf('.');
    if (dot >= 0) {
      if (mode !== undefined) dec = toScale(dec, 0, mode);
      else if (/^0+$/.test(dec.slice(dot + 1))) dec = dec.slice(0, dot);
      else return fail('an integer', x, ': it has a fraction (set `rounding` or add a `round` transform)');
    }
    const n = Number(dec);
    return Number.isSafeInteger(n) ? n : fail('an integer', x, ': it is beyond ±9007199254740991');
  };
}

function makeNumber(format: DecimalFormat | undefined): StepFn {
  return (x) => {
    if (typeof x === 'number') return Number.isFinite(x) ? x : fail('a number', x);
    if (x === undefined || x === null || x === BAD) return x;
    if (typeof x !== 'string') return fail('a number', x);
    const dec = readDecimal(x, format, 'a number');
    return typeof dec === 'string' ? Number(dec) : dec;
  };
}

function makeBoolean(spec: CoerceSpec): StepFn {
  const trues = new Set((spec.trueValues ?? TRUE_TEXTS).map((s) => s.trim().toLowerCase()));
  const falses = new Set((spec.falseValues ?? FALSE_TEXTS).map((s) => s.trim().toLowerCase()));
  return (x) => {
    if (typeof x === 'boolean' || x === undefined || x === null || x === BAD) return x;
    if (typeof x === 'number') return x === 1 ? true : x === 0 ? false : fail('a boolean', x);
    if (typeof x !== 'string') return fail('a boolean', x);
    const key = x.trim().toLowerCase();
    if (trues.has(key)) return true;
    if (falses.has(key)) return false;
    return key === '' ? undefined : fail('a boolean', x);
  };
}

export type DateReader = (value: unknown) => number;

/** Reads a date-time in one of `formats` (default ISO 8601); NaN when none fits. */
export function makeDateReader(formats: readonly string[] | undefined, zone: string | undefined): Made<DateReader> {
  const tz = zone ?? 'UTC';
  if (!isTimeZone(tz)) return { ok: false, code: 'bad_time_zone', message: `"${tz}" is not a known IANA time zone` };
  const readers: DateReader[] = [];
  for (const format of formats ?? ['iso']) {
    if (format === 'iso') {
      readers.push((x) => (typeof x === 'string' ? parseIso(x.length > 0 && x.charCodeAt(x.length - 1) <= 32 ? x.trim() : x, tz) : NaN));
    } else if (format === 'epoch-seconds') readers.push((x) => parseEpoch(x, 1000));
    else if (format === 'epoch-millis') readers.push((x) => parseEpoch(x, 1));
    else {
      const made = makePatternReader(format, tz);
      if (!made.ok) return { ok: false, code: 'bad_date_format', message: `the date format "${format}" ${made.message}` };
      const read = made.read;
      readers.push((x) => (typeof x === 'string' ? read(x) : NaN));
    }
  }
  const only = readers[0]!;
  if (readers.length === 1) return { ok: true, value: only };
  return {
    ok: true,
    value: (x) => {
      for (let i = 0; i < readers.length; i++) {
        const t = readers[i]!(x);
        if (t === t) return t;
      }
      return NaN;
    },
  };
}

function makeDateTime(spec: CoerceSpec): Made<StepFn> {
  const made = makeDateReader(spec.formats, spec.timeZone);
  if (!made.ok) return made;
  const read = made.value;
  const expected = (spec.formats ?? ['iso']).join(', ');
  // A file repeats one timestamp on row after row: the last text read and its result are kept.
  let lastText: string | null = null;
  let lastIso = '';
  return {
    ok: true,
    value: (x) => {
      if (x === undefined || x === null || x === BAD) return x;
      if (x === lastText) return lastIso;
      const t = read(x);
      if (isValidInstant(t)) {
        const iso = isoFromMs(t);
        if (typeof x === 'string') {
          lastText = x;
          lastIso = iso;
        }
        return iso;
      }
      if (typeof x === 'string' && isBlank(x)) return undefined;
      return fail('a date-time', x, ` (expected ${expected})`);
    },
  };
}

/** The coercion function of a rule's `type` and its options, or why the options are not valid. */
export function makeCoercer(spec: CoerceSpec): Made<StepFn> {
  const format: DecimalFormat | undefined =
    spec.decimalSeparator || spec.groupSeparator ? { decimalSeparator: spec.decimalSeparator, groupSeparator: spec.groupSeparator } : undefined;
  if (format?.groupSeparator && format.groupSeparator === (format.decimalSeparator ?? '.')) {
    return { ok: false, message: 'groupSeparator and decimalSeparator must differ' };
  }
  switch (spec.type) {
    case 'string':
      return { ok: true, value: toText };
    case 'integer':
      return { ok: true, value: makeInteger(spec, format) };
    case 'number':
      return { ok: true, value: makeNumber(format) };
    case 'decimal':
      return { ok: true, value: makeDecimal(spec, format) };
    case 'boolean':
      return { ok: true, value: makeBoolean(spec) };
    case 'date-time':
      return makeDateTime(spec);
  }
}
