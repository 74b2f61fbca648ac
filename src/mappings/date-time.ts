// Calendar arithmetic, ISO 8601 reading and writing, and epoch numbers: the fast core of date-time coercion.
// Hand-written rather than `new Date(text)`: the platform parser accepts far too much and is several times slower.
import { localToUtc } from './time-zone.ts';

export const MS_PER_DAY = 86_400_000;
/** The range `Date` supports. */
const MAX_MS = 8.64e15;

export function isLeapYear(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

export function daysInMonth(y: number, month: number): number {
  return month === 2 && isLeapYear(y) ? 29 : (DAYS[month - 1] ?? 0);
}

/** Days from 1970-01-01 to a civil date (month 1-12), valid for every year. */
export function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

/** Milliseconds since the epoch of a UTC wall time (month 1-12); every year, unlike Date.UTC's 0-99 quirk. */
export function utcFromParts(y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number): number {
  return daysFromCivil(y, mo, d) * MS_PER_DAY + h * 3_600_000 + mi * 60_000 + s * 1000 + ms;
}

export interface CivilTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  ms: number;
  /** 0 = Sunday. */
  weekday: number;
}

/** Breaks milliseconds since the epoch (already shifted into a zone if wanted) into calendar fields. */
export function civilFromMs(t: number): CivilTime {
  const days = Math.floor(t / MS_PER_DAY);
  let rest = t - days * MS_PER_DAY;
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const hour = Math.floor(rest / 3_600_000);
  rest -= hour * 3_600_000;
  const minute = Math.floor(rest / 60_000);
  rest -= minute * 60_000;
  const second = Math.floor(rest / 1000);
  return { year, month, day, hour, minute, second, ms: rest - second * 1000, weekday: (((days + 4) % 7) + 7) % 7 };
}

const TWO = Array.from({ length: 100 }, (_, i) => (i < 10 ? `0${i}` : String(i)));
const THREE = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));

export function pad2(n: number): string {
  return TWO[n] ?? String(n).padStart(2, '0');
}

export function pad3(n: number): string {
  return THREE[n] ?? String(n).padStart(3, '0');
}

/** `YYYY-MM-DDTHH:mm:ss.sssZ`, as Date#toISOString writes it, without allocating a Date for years 0-9999. */
export function isoFromMs(t: number): string {
  const c = civilFromMs(t);
  if (c.year < 0 || c.year > 9999) return new Date(t).toISOString();
  const y = c.year;
  const yyyy = y >= 1000 ? String(y) : String(y).padStart(4, '0');
  return `${yyyy}-${TWO[c.month]}-${TWO[c.day]}T${TWO[c.hour]}:${TWO[c.minute]}:${TWO[c.second]}.${THREE[c.ms]}Z`;
}

export function isValidInstant(t: number): boolean {
  return t === t && t >= -MAX_MS && t <= MAX_MS;
}

function digits(s: string, at: number, count: number): number {
  let n = 0;
  for (let i = at; i < at + count; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}

/**
 * Reads ISO 8601 / RFC 3339 text: `2024-03-05`, `2024-03-05T10:15`, `…:30`, `…:30.123`, each optionally with `Z` or an
 * offset (`+01:00`, `+0100`, `+01`); `T` may be a space. Text without an offset is wall time in `zone`.
 * Returns milliseconds since the epoch, or NaN.
 */
export function parseIso(s: string, zone?: string): number {
  const n = s.length;
  if (n < 10 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45) return NaN;
  const y = digits(s, 0, 4);
  const mo = digits(s, 5, 2);
  const d = digits(s, 8, 2);
  if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo)) return NaN;
  let h = 0;
  let mi = 0;
  let sec = 0;
  let ms = 0;
  let i = 10;
  if (i < n) {
    const sep = s.charCodeAt(i);
    if (sep !== 84 && sep !== 116 && sep !== 32) return NaN;
    if (n < 16 || s.charCodeAt(13) !== 58) return NaN;
    h = digits(s, 11, 2);
    mi = digits(s, 14, 2);
    if (h < 0 || h > 23 || mi < 0 || mi > 59) return NaN;
    i = 16;
    if (i < n && s.charCodeAt(i) === 58) {
      sec = digits(s, 17, 2);
      if (sec < 0 || sec > 59) return NaN;
      i = 19;
      if (i < n && (s.charCodeAt(i) === 46 || s.charCodeAt(i) === 44)) {
        const start = ++i;
        while (i < n && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) i++;
        const len = i - start;
        if (len < 1 || len > 9) return NaN;
        ms = digits(s, start, Math.min(3, len)) * (len === 1 ? 100 : len === 2 ? 10 : 1);
      }
    }
  }
  const local = utcFromParts(y, mo, d, h, mi, sec, ms);
  if (i === n) return localToUtc(zone ?? 'UTC', local);
  const z = s.charCodeAt(i);
  if (z === 90 || z === 122) return i + 1 === n ? local : NaN;
  if (z !== 43 && z !== 45) return NaN;
  const oh = digits(s, i + 1, 2);
  let om = 0;
  const rest = n - (i + 3);
  if (rest === 3 && s.charCodeAt(i + 3) === 58) om = digits(s, i + 4, 2);
  else if (rest === 2) om = digits(s, i + 3, 2);
  else if (rest !== 0) return NaN;
  if (oh < 0 || oh > 23 || om < 0 || om > 59) return NaN;
  const offset = (oh * 60 + om) * 60_000;
  return z === 43 ? local - offset : local + offset;
}

/** Epoch seconds or milliseconds from a number or numeric text; NaN when it is neither. */
export function parseEpoch(value: unknown, unitMs: number): number {
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(value)) n = Number(value);
  else return NaN;
  return Number.isFinite(n) ? Math.round(n * unitMs) : NaN;
}
