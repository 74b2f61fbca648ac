// Exact decimals written as strings ("12.50"): reading text and numbers, rounding, multiplying, minor units.
// Money never passes through a binary float here; the common case (text already at the wanted scale) allocates
// nothing, and BigInt arithmetic is used only when digits must actually move.
import type { RoundingMode } from './document.ts';

export interface DecimalFormat {
  /** The decimal separator of the input text (default `.`). */
  decimalSeparator?: '.' | ',';
  /** A thousands separator to drop from the input text. */
  groupSeparator?: string;
}

/** Exponents beyond this are refused rather than expanded into megabytes of zeros. */
const MAX_EXPONENT = 400;

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/**
 * The canonical form of a plain decimal text (`-?(0|[1-9]\d*)(\.\d+)?`, never `-0`), or undefined when the text is
 * not a decimal. Accepts a leading `+`, leading zeros, `.5`, `5.`, and an exponent (`1.5e3`).
 */
export function canonicalDecimal(s: string): string | undefined {
  const n = s.length;
  let i = 0;
  let neg = false;
  let plus = false;
  const first = s.charCodeAt(0);
  if (first === 45) {
    neg = true;
    i = 1;
  } else if (first === 43) {
    plus = true;
    i = 1;
  }
  const intStart = i;
  while (i < n && isDigit(s.charCodeAt(i))) i++;
  const intEnd = i;
  let fracStart = i;
  let fracEnd = i;
  let dot = false;
  if (i < n && s.charCodeAt(i) === 46) {
    dot = true;
    fracStart = ++i;
    while (i < n && isDigit(s.charCodeAt(i))) i++;
    fracEnd = i;
  }
  if (intEnd === intStart && fracEnd === fracStart) return undefined;
  let exp = 0;
  if (i < n && (s.charCodeAt(i) | 32) === 101) {
    i++;
    let expNeg = false;
    if (s.charCodeAt(i) === 45 || s.charCodeAt(i) === 43) expNeg = s.charCodeAt(i++) === 45;
    const expStart = i;
    while (i < n && isDigit(s.charCodeAt(i))) i++;
    if (i === expStart || i - expStart > 4) return undefined;
    exp = Number(s.slice(expStart, i));
    if (exp > MAX_EXPONENT) return undefined;
    if (expNeg) exp = -exp;
  }
  if (i !== n) return undefined;
  const intLen = intEnd - intStart;
  const leadingZero = intLen > 1 && s.charCodeAt(intStart) === 48;
  if (!plus && exp === 0 && intLen > 0 && !leadingZero && (!dot || fracEnd > fracStart) && !neg) return s;
  return normalizeParts(neg, s.slice(intStart, intEnd), s.slice(fracStart, fracEnd), exp);
}

function normalizeParts(neg: boolean, intDigits: string, frac: string, exp: number): string {
  if (exp !== 0) {
    const all = intDigits + frac;
    let point = intDigits.length + exp;
    let digits = all;
    if (point < 0) {
      digits = '0'.repeat(-point) + all;
      point = 0;
    } else if (point > all.length) {
      digits = all + '0'.repeat(point - all.length);
    }
    intDigits = digits.slice(0, point);
    frac = digits.slice(point);
    // An exponent only moves the point: trailing zeros it brings into the fraction carry no meaning.
    frac = frac.replace(/0+$/, '');
  }
  let k = 0;
  while (k < intDigits.length - 1 && intDigits.charCodeAt(k) === 48) k++;
  intDigits = intDigits.slice(k) || '0';
  const zero = intDigits === '0' && !/[1-9]/.test(frac);
  return (neg && !zero ? '-' : '') + intDigits + (frac ? `.${frac}` : '');
}

/** Reads decimal text with the given separators; undefined when it is not a decimal. */
export function parseDecimalText(text: string, format?: DecimalFormat): string | undefined {
  let s = text.trim();
  const group = format?.groupSeparator;
  if (group && s.includes(group)) {
    // Separators must group the integer digits in threes ("1,234,567.5"): "4,75" read with "," as the group
    // separator is a European decimal, not 475, and is refused rather than misread.
    const decimalAt = s.indexOf(format?.decimalSeparator ?? '.');
    const whole = decimalAt === -1 ? s : s.slice(0, decimalAt);
    const rest = decimalAt === -1 ? '' : s.slice(decimalAt);
    const groups = whole.replace(/^[-+]/, '').split(group);
    if (rest.includes(group) || !/^\d{1,3}$/.test(groups[0]!) || groups.slice(1).some((g) => !/^\d{3}$/.test(g))) return undefined;
    s = whole.split(group).join('') + rest;
  }
  if (format?.decimalSeparator === ',') {
    if (s.includes('.')) return undefined;
    s = s.replace(',', '.');
  }
  return canonicalDecimal(s);
}

/** The exact decimal a finite number shows (its shortest round-trip form, as `String(n)`). */
export function decimalFromNumber(n: number): string | undefined {
  if (!Number.isFinite(n)) return undefined;
  return canonicalDecimal(String(n));
}

export function fractionDigits(dec: string): number {
  const dot = dec.indexOf('.');
  return dot < 0 ? 0 : dec.length - dot - 1;
}

function format(neg: boolean, digits: bigint, scale: number): string {
  let s = digits.toString();
  if (scale > 0) {
    if (s.length <= scale) s = '0'.repeat(scale - s.length + 1) + s;
    s = `${s.slice(0, s.length - scale)}.${s.slice(s.length - scale)}`;
  }
  return (neg && digits !== 0n ? '-' : '') + s;
}

function unscaled(dec: string): { neg: boolean; digits: bigint; scale: number } {
  const neg = dec.charCodeAt(0) === 45;
  const body = neg ? dec.slice(1) : dec;
  const dot = body.indexOf('.');
  return {
    neg,
    digits: BigInt(dot < 0 ? body : body.slice(0, dot) + body.slice(dot + 1)),
    scale: dot < 0 ? 0 : body.length - dot - 1,
  };
}

function roundsAway(mode: RoundingMode, neg: boolean, q: bigint, r: bigint, p: bigint): boolean {
  if (r === 0n) return false;
  const twice = r * 2n;
  switch (mode) {
    case 'half-up':
      return twice >= p;
    case 'half-down':
      return twice > p;
    case 'half-even':
      return twice > p || (twice === p && q % 2n === 1n);
    case 'up':
      return true;
    case 'down':
      return false;
    case 'ceiling':
      return !neg;
    case 'floor':
      return neg;
  }
}

/** A canonical decimal with exactly `scale` fraction digits: padded with zeros, or rounded with `mode`. */
export function toScale(dec: string, scale: number, mode: RoundingMode = 'half-up'): string {
  const have = fractionDigits(dec);
  if (have === scale) return dec;
  if (have < scale) return (have === 0 ? `${dec}.` : dec) + '0'.repeat(scale - have);
  const { neg, digits } = unscaled(dec);
  const p = 10n ** BigInt(have - scale);
  let q = digits / p;
  if (roundsAway(mode, neg, q, digits % p, p)) q += 1n;
  return format(neg, q, scale);
}

/** The exact product of two canonical decimals (its scale is the sum of theirs). */
export function multiplyDecimal(a: string, b: string): string {
  const x = unscaled(a);
  const y = unscaled(b);
  return format(x.neg !== y.neg, x.digits * y.digits, x.scale + y.scale);
}

/** Integer minor units of a canonical decimal (`12.34`, scale 2 -> 1234), or undefined beyond safe integers. */
export function decimalToMinor(dec: string, scale: number, mode: RoundingMode = 'half-up'): number | undefined {
  const scaled = toScale(dec, scale, mode);
  const n = Number(scale === 0 ? scaled : scaled.replace('.', ''));
  if (!Number.isSafeInteger(n)) return undefined;
  return n === 0 ? 0 : n;
}

/** The decimal of integer minor units (1234, scale 2 -> "12.34"); undefined when `minor` is not an integer. */
export function minorToDecimal(minor: number | bigint | string, scale: number): string | undefined {
  let digits: bigint;
  if (typeof minor === 'bigint') digits = minor;
  else if (typeof minor === 'number') {
    if (!Number.isSafeInteger(minor)) return undefined;
    digits = BigInt(minor);
  } else {
    const t = minor.trim();
    if (!/^[+-]?\d{1,40}$/.test(t)) return undefined;
    digits = BigInt(t);
  }
  const neg = digits < 0n;
  return format(neg, neg ? -digits : digits, scale);
}
