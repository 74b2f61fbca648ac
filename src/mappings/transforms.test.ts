import { describe, expect, it } from 'vitest';
import { makeCoercer, type CoerceSpec } from './coerce.ts';
import type { Step } from './document.ts';
import { BAD, lastReason } from './failure.ts';
import { makeStep } from './transforms.ts';

function step(s: Step) {
  const made = makeStep(s);
  if (!made.ok) throw new Error(made.message);
  return (x: unknown) => {
    const out = made.value.fn(x);
    return out === BAD ? `${lastReason().code}: ${lastReason().message}` : out;
  };
}

function coerce(spec: CoerceSpec) {
  const made = makeCoercer(spec);
  if (!made.ok) throw new Error(made.message);
  return (x: unknown) => {
    const out = made.value(x);
    return out === BAD ? `${lastReason().code}: ${lastReason().message}` : out;
  };
}

describe('transforms', () => {
  it('pass missing values through untouched', () => {
    for (const s of ['trim', { case: 'upper' }, { round: 2 }, { join: ',' }, { lookup: { table: {} } }] as Step[]) {
      expect(step(s)(undefined)).toBeUndefined();
      expect(step(s)(null)).toBeNull();
    }
  });

  it('say which transform failed and on what', () => {
    expect(step({ round: 2 })('abc')).toBe('transform_failed: round needs a number or a decimal, found the text "abc"');
    expect(step({ join: ',' })('a,b')).toBe('transform_failed: join needs an array, found the text "a,b"');
    expect(step({ split: ',' })({ a: 1 })).toBe('transform_failed: split needs text, found an object');
    expect(step('fromMinor')(12.5)).toBe('transform_failed: fromMinor needs an integer number of minor units, found the number 12.5');
    expect(step({ formatDate: 'yyyy' })('soon')).toBe('transform_failed: formatDate needs an ISO 8601 date-time or epoch milliseconds, found the text "soon"');
    expect(step('toMinor')('1e300')).toMatch(/^transform_failed: toMinor: .* beyond the safe integer range$/);
    expect(step({ lookup: { table: { a: 1 } } })('b')).toBe('lookup_miss: the text "b" is not in the lookup table and there is no fallback');
  });

  it('write numbers as text where text is needed', () => {
    expect(step({ pad: { length: 6 } })(42)).toBe('000042');
    expect(step({ pad: { length: 4, side: 'end', char: '.' } })('ab')).toBe('ab..');
    expect(step({ case: 'upper' })(true)).toBe('TRUE');
    expect(step({ trim: 'start' })('  a  ')).toBe('a  ');
  });

  it('format epoch milliseconds and ISO text alike', () => {
    expect(step({ formatDate: { pattern: 'yyyy-MM-dd HH:mm', timeZone: 'America/New_York' } })(Date.UTC(2024, 0, 1, 12))).toBe('2024-01-01 07:00');
    expect(step({ formatDate: 'dd.MM.yyyy' })('2024-12-31T23:00:00-02:00')).toBe('01.01.2025');
  });

  it('refuse unknown transforms and bad parameters when made', () => {
    expect(makeStep('reverse' as Step)).toMatchObject({ ok: false, code: 'unknown_transform' });
    expect(makeStep({ round: 2, trim: 'both' } as Step)).toMatchObject({ ok: false, code: 'unknown_transform' });
    expect(makeStep({ formatDate: 'yyyy QQ' })).toMatchObject({ ok: false, code: 'bad_date_format' });
    expect(makeStep({ multiply: Number.POSITIVE_INFINITY })).toMatchObject({ ok: false });
  });
});

describe('coercion', () => {
  it('refuses what cannot be converted, with the reason', () => {
    expect(coerce({ type: 'integer' })('12abc')).toBe('coercion_failed: cannot make an integer of the text "12abc"');
    expect(coerce({ type: 'integer' })('9007199254740993')).toBe('coercion_failed: cannot make an integer of the text "9007199254740993": it is beyond ±9007199254740991');
    expect(coerce({ type: 'integer' })(true)).toBe('coercion_failed: cannot make an integer of the boolean true');
    expect(coerce({ type: 'number' })(Number.NaN)).toBe('coercion_failed: cannot make a number of the number NaN');
    expect(coerce({ type: 'boolean' })('maybe')).toBe('coercion_failed: cannot make a boolean of the text "maybe"');
    expect(coerce({ type: 'boolean' })(2)).toBe('coercion_failed: cannot make a boolean of the number 2');
    expect(coerce({ type: 'string' })([1])).toBe('coercion_failed: cannot make text of an array');
    expect(coerce({ type: 'decimal' })({})).toBe('coercion_failed: cannot make a decimal of an object');
    expect(coerce({ type: 'date-time' })(12)).toBe('coercion_failed: cannot make a date-time of the number 12 (expected iso)');
  });

  it('keeps values of the right type as they are', () => {
    expect(coerce({ type: 'integer' })(-3)).toBe(-3);
    expect(coerce({ type: 'integer' })(' 4.000 ')).toBe(4);
    expect(coerce({ type: 'number' })(-0.5)).toBe(-0.5);
    expect(coerce({ type: 'decimal' })('00012.340')).toBe('12.340');
    expect(coerce({ type: 'decimal', scale: 0, rounding: 'floor' })(-1.5)).toBe('-2');
    expect(coerce({ type: 'boolean' })(0)).toBe(false);
    expect(coerce({ type: 'string' })(false)).toBe('false');
    expect(coerce({ type: 'date-time', formats: ['epoch-millis'] })('0')).toBe('1970-01-01T00:00:00.000Z');
  });

  it('refuses options that contradict each other', () => {
    expect(makeCoercer({ type: 'decimal', decimalSeparator: ',', groupSeparator: ',' })).toMatchObject({ ok: false });
    expect(makeCoercer({ type: 'date-time', timeZone: 'Nowhere/Land' })).toMatchObject({ ok: false, code: 'bad_time_zone' });
  });
});
