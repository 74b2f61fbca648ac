import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { currencyDigits, divRound, formatMicros, formatMoney, nextAverage, parseDecimal, roundMicros, toMicros } from './decimal.ts';

describe('decimal', () => {
  it('parses decimal strings into exact micro-units', () => {
    expect(parseDecimal('12.5')).toBe(12_500_000n);
    expect(parseDecimal('0.000001')).toBe(1n);
    expect(parseDecimal('-3')).toBe(-3_000_000n);
  });

  it('refuses what is not a plain decimal', () => {
    for (const bad of ['', '1e3', '01.5', '1.', '.5', '1.2345678', 'NaN', ' 1', '1,5', '+1', '0x10']) {
      expect(parseDecimal(bad), bad).toBeUndefined();
    }
  });

  it('formats with at least the minimum digits and no trailing zeros beyond', () => {
    expect(formatMicros(12_500_000n)).toBe('12.50');
    expect(formatMicros(3_333_333n)).toBe('3.333333');
    expect(formatMicros(-1n)).toBe('-0.000001');
    expect(formatMicros(7_000_000n, 0)).toBe('7');
  });

  it('rounds half to even', () => {
    expect(divRound(5n, 2n)).toBe(2n);
    expect(divRound(7n, 2n)).toBe(4n);
    expect(divRound(-5n, 2n)).toBe(-2n);
    expect(divRound(-7n, 2n)).toBe(-4n);
    expect(divRound(10n, 3n)).toBe(3n);
    expect(divRound(20n, 3n)).toBe(7n);
    expect(roundMicros(toMicros('2.345'), 2)).toBe(toMicros('2.34'));
    expect(roundMicros(toMicros('2.355'), 2)).toBe(toMicros('2.36'));
  });

  it('averages costs by weight, treating backordered stock as worthless', () => {
    expect(nextAverage(10, toMicros('2'), 10, toMicros('4'))).toBe(toMicros('3'));
    expect(nextAverage(0, toMicros('9'), 3, toMicros('1.5'))).toBe(toMicros('1.5'));
    expect(nextAverage(-5, toMicros('9'), 3, toMicros('1.5'))).toBe(toMicros('1.5'));
    expect(nextAverage(2, toMicros('1'), 1, toMicros('0'))).toBe(toMicros('0.666667'));
  });

  it('formats money in the currency minor units', () => {
    expect(currencyDigits('EUR')).toBe(2);
    expect(currencyDigits('JPY')).toBe(0);
    expect(formatMoney(toMicros('1234.565'), 'USD')).toBe('1234.56');
    expect(formatMoney(toMicros('1234.5'), 'JPY')).toBe('1234');
  });

  it('round-trips every decimal it formats', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }), (v) => {
        expect(parseDecimal(formatMicros(v))).toBe(v);
      }),
    );
  });

  it('keeps the average between the old average and the new cost', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.bigInt({ min: 0n, max: 10n ** 12n }), fc.integer({ min: 1, max: 1e6 }), fc.bigInt({ min: 0n, max: 10n ** 12n }), (q, a, n, c) => {
        const avg = nextAverage(q, a, n, c);
        const lo = a < c ? a : c;
        const hi = a < c ? c : a;
        expect(avg >= lo && avg <= hi).toBe(true);
      }),
    );
  });
});
