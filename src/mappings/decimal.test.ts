import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalDecimal, decimalFromNumber, decimalToMinor, minorToDecimal, multiplyDecimal, parseDecimalText, toScale } from './decimal.ts';

describe('decimals', () => {
  it('reads decimal text into a canonical form', () => {
    const cases: [string, string | undefined][] = [
      ['12.50', '12.50'], ['+007.5', '7.5'], ['.5', '0.5'], ['5.', '5'], ['-0.00', '0.00'], ['-12', '-12'],
      ['1.5e3', '1500'], ['1.25E-2', '0.0125'], ['0', '0'], ['', undefined], ['1.2.3', undefined], ['abc', undefined],
      ['1e', undefined], ['--1', undefined], ['1e99999', undefined], ['Infinity', undefined], [' 1', undefined],
    ];
    for (const [text, want] of cases) expect([text, canonicalDecimal(text)]).toEqual([text, want]);
  });

  it('reads localised text with separators', () => {
    expect(parseDecimalText(' 1.234.567,89 ', { decimalSeparator: ',', groupSeparator: '.' })).toBe('1234567.89');
    expect(parseDecimalText("1'000.5", { groupSeparator: "'" })).toBe('1000.5');
    expect(parseDecimalText('1.5', { decimalSeparator: ',' })).toBeUndefined();
  });

  it('writes numbers as the decimal they show, never a binary expansion', () => {
    expect(decimalFromNumber(0.1)).toBe('0.1');
    expect(decimalFromNumber(1e21)).toBe('1000000000000000000000');
    expect(decimalFromNumber(1.5e-7)).toBe('0.00000015');
    expect(decimalFromNumber(-0)).toBe('0');
    expect(decimalFromNumber(Number.NaN)).toBeUndefined();
  });

  it('rounds in every mode', () => {
    const modes = ['half-up', 'half-even', 'half-down', 'up', 'down', 'ceiling', 'floor'] as const;
    const table: Record<string, string[]> = {
      '2.5': ['3', '2', '2', '3', '2', '3', '2'],
      '3.5': ['4', '4', '3', '4', '3', '4', '3'],
      '-2.5': ['-3', '-2', '-2', '-3', '-2', '-2', '-3'],
      '2.51': ['3', '3', '3', '3', '2', '3', '2'],
      '-0.4': ['0', '0', '0', '-1', '0', '0', '-1'],
    };
    for (const [value, want] of Object.entries(table)) expect([value, modes.map((m) => toScale(value, 0, m))]).toEqual([value, want]);
    expect(toScale('1.005', 2)).toBe('1.01');
    expect(toScale('12', 2)).toBe('12.00');
    expect(toScale('9.999', 2)).toBe('10.00');
  });

  it('multiplies exactly', () => {
    expect(multiplyDecimal('19.99', '3')).toBe('59.97');
    expect(multiplyDecimal('0.1', '0.2')).toBe('0.02');
    expect(multiplyDecimal('-1.5', '-2')).toBe('3.0');
  });

  it('converts minor units both ways with the currency scale', () => {
    expect(decimalToMinor('12.34', 2)).toBe(1234);
    expect(decimalToMinor('12.345', 2, 'half-even')).toBe(1234);
    expect(decimalToMinor('-0.001', 2)).toBe(0);
    expect(decimalToMinor('12', 0)).toBe(12);
    expect(decimalToMinor('99999999999999999', 2)).toBeUndefined();
    expect(minorToDecimal(1234, 2)).toBe('12.34');
    expect(minorToDecimal(-5, 2)).toBe('-0.05');
    expect(minorToDecimal('1234', 3)).toBe('1.234');
    expect(minorToDecimal(1.5, 2)).toBeUndefined();
  });

  it('round-trips minor units through decimals (property)', () => {
    fc.assert(
      fc.property(fc.maxSafeInteger(), fc.integer({ min: 0, max: 8 }), (minor, scale) => {
        const dec = minorToDecimal(minor, scale)!;
        expect(decimalToMinor(dec, scale)).toBe(minor === 0 ? 0 : minor);
      }),
    );
  });

  it('round-trips decimals through minor units at their own scale (property)', () => {
    const decimal = fc
      .tuple(fc.boolean(), fc.bigInt({ min: 0n, max: 10n ** 15n }), fc.integer({ min: 0, max: 4 }))
      .map(([neg, digits, scale]) => ({ dec: minorToDecimal(neg ? -digits : digits, scale)!, scale }));
    fc.assert(
      fc.property(decimal, ({ dec, scale }) => {
        const minor = decimalToMinor(dec, scale);
        if (minor !== undefined) expect(minorToDecimal(minor, scale)).toBe(dec);
        expect(canonicalDecimal(dec)).toBe(dec);
      }),
    );
  });

  it('agrees with the number it was read from (property)', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (n) => {
        expect(Number(decimalFromNumber(n))).toBe(n === 0 ? 0 : n);
      }),
    );
  });
});

describe('group separators', () => {
  it('accepts digits grouped in threes and refuses anything else rather than misreading it', () => {
    expect(parseDecimalText('1,234,567.50', { groupSeparator: ',' })).toBe('1234567.50');
    expect(parseDecimalText('-1,234', { groupSeparator: ',' })).toBe('-1234');
    expect(parseDecimalText('1.234,5', { groupSeparator: '.', decimalSeparator: ',' })).toBe('1234.5');
    expect(parseDecimalText('1234.5', { groupSeparator: ',' })).toBe('1234.5');
    for (const bad of ['4,75', '1,2,3', '12,34.5', '1,234.5,6', ',123']) expect(parseDecimalText(bad, { groupSeparator: ',' }), bad).toBeUndefined();
  });
});
