// Exact money: decimal strings in, fixed-point bigints (millionths) inside, decimal strings out. No binary floats
// ever touch a cost or a value, so sums and averages are the same on every machine and in every replay.

/** Fractional digits kept internally: unit costs and values are exact to a millionth. */
export const SCALE = 6;
const UNIT = 10n ** BigInt(SCALE);
const MONEY = /^(-?)(0|[1-9]\d{0,17})(?:\.(\d{1,6}))?$/;

/** Micro-units (millionths) of a decimal string such as "12.50"; undefined when it is not one. */
export function parseDecimal(text: string): bigint | undefined {
  const m = MONEY.exec(text);
  if (!m) return undefined;
  const micros = BigInt(m[2]!) * UNIT + BigInt((m[3] ?? '').padEnd(SCALE, '0'));
  return m[1] ? -micros : micros;
}

/** Like parseDecimal, for values the schema has already checked. */
export function toMicros(text: string): bigint {
  const v = parseDecimal(text);
  if (v === undefined) throw new Error(`Not a decimal: ${JSON.stringify(text)}`);
  return v;
}

/** Divides and rounds half to even (banker's rounding): no drift when many roundings are summed. */
export function divRound(numerator: bigint, denominator: bigint): bigint {
  if (denominator === 0n) throw new RangeError('Division by zero');
  if (denominator < 0n) return divRound(-numerator, -denominator);
  const q = numerator / denominator;
  const r = numerator % denominator;
  if (r === 0n) return q;
  const twice = (r < 0n ? -r : r) * 2n;
  const away = twice > denominator || (twice === denominator && q % 2n !== 0n);
  if (!away) return q;
  return numerator < 0n ? q - 1n : q + 1n;
}

/** Rounds micro-units to `digits` fractional digits (0..6), half to even; the result is still in micro-units. */
export function roundMicros(value: bigint, digits: number): bigint {
  if (digits >= SCALE) return value;
  const step = 10n ** BigInt(SCALE - digits);
  return divRound(value, step) * step;
}

/** "12.5" → "12.50": at least `minDigits` fractional digits, trailing zeros beyond them dropped. */
export function formatMicros(value: bigint, minDigits = 2): string {
  const negative = value < 0n;
  const abs = negative ? -value : value;
  const whole = abs / UNIT;
  let frac = (abs % UNIT).toString().padStart(SCALE, '0');
  let end = frac.length;
  while (end > minDigits && frac[end - 1] === '0') end--;
  frac = frac.slice(0, end);
  return `${negative ? '-' : ''}${whole}${frac ? `.${frac}` : ''}`;
}

/** The value of `quantity` units at `unitCost` micro-units each: exact. */
export function times(unitCost: bigint, quantity: number): bigint {
  return unitCost * BigInt(quantity);
}

/**
 * The moving weighted average unit cost after `quantity` units arrive at `unitCost`, when `onHand` units were held
 * at `average`. Stock below zero (backorders) carries no value, so it counts as zero.
 */
export function nextAverage(onHand: number, average: bigint, quantity: number, unitCost: bigint): bigint {
  const held = onHand > 0 ? BigInt(onHand) : 0n;
  const total = held + BigInt(quantity);
  if (total <= 0n) return unitCost;
  return divRound(held * average + BigInt(quantity) * unitCost, total);
}

const digitsCache = new Map<string, number>();

/** Minor-unit digits of an ISO 4217 currency (2 for EUR, 0 for JPY, 3 for KWD). */
export function currencyDigits(currency: string): number {
  let d = digitsCache.get(currency);
  if (d === undefined) {
    try {
      d = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
    } catch {
      d = 2;
    }
    digitsCache.set(currency, d);
  }
  return d;
}

/** A value rounded to the currency's minor units, as a string with exactly that many digits. */
export function formatMoney(value: bigint, currency: string): string {
  const digits = currencyDigits(currency);
  const rounded = formatMicros(roundMicros(value, digits), digits);
  return rounded;
}
