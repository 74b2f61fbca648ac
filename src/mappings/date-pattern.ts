// Date patterns (`dd/MM/yyyy HH:mm`, `yyyyMMdd`, `EEE, d MMM yyyy`): compiled once into a reader or a writer.
// A pattern's literal text becomes an escaped regular expression or output text, never code.
import { civilFromMs, daysInMonth, pad2, pad3, utcFromParts } from './date-time.ts';
import { localToUtc, offsetAt } from './time-zone.ts';

type Field = 'y' | 'M' | 'd' | 'H' | 'h' | 'm' | 's' | 'S' | 'a' | 'X' | 'E';
type Token = { lit: string } | { field: Field; width: number };

const WIDTHS: Record<Field, number[]> = {
  y: [2, 4],
  M: [1, 2, 3],
  d: [1, 2],
  H: [1, 2],
  h: [1, 2],
  m: [1, 2],
  s: [1, 2],
  S: [1, 2, 3],
  a: [1],
  X: [1, 2, 3],
  E: [3],
};

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

export type PatternResult = { ok: true; tokens: Token[] } | { ok: false; message: string };

export function tokenizePattern(pattern: string): PatternResult {
  const tokens: Token[] = [];
  let i = 0;
  const pushLit = (text: string) => {
    const last = tokens[tokens.length - 1];
    if (last && 'lit' in last) last.lit += text;
    else tokens.push({ lit: text });
  };
  while (i < pattern.length) {
    const ch = pattern[i]!;
    if (ch === "'") {
      if (pattern[i + 1] === "'") {
        pushLit("'");
        i += 2;
        continue;
      }
      const end = pattern.indexOf("'", i + 1);
      if (end < 0) return { ok: false, message: 'has an unterminated quoted text' };
      pushLit(pattern.slice(i + 1, end));
      i = end + 1;
      continue;
    }
    if (/[A-Za-z]/.test(ch)) {
      let j = i;
      while (pattern[j] === ch) j++;
      const width = j - i;
      const widths = WIDTHS[ch as Field] as number[] | undefined;
      if (!widths) return { ok: false, message: `has the unknown letter "${ch}" (quote literal text as 'text')` };
      if (!widths.includes(width)) return { ok: false, message: `has "${ch.repeat(width)}": "${ch}" may be repeated ${widths.join(' or ')} times` };
      tokens.push({ field: ch as Field, width });
      i = j;
      continue;
    }
    pushLit(ch);
    i++;
  }
  return { ok: true, tokens };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

function fieldRegExp(field: Field, width: number): string {
  switch (field) {
    case 'M':
      return width === 3 ? '([A-Za-z]{3})' : width === 2 ? '(\\d{2})' : '(\\d{1,2})';
    case 'y':
      return width === 4 ? '(\\d{4})' : '(\\d{2})';
    case 'S':
      return `(\\d{${width}})`;
    case 'a':
      return '([AaPp][Mm])';
    case 'X':
      return '(Z|z|[+-]\\d{2}(?::?\\d{2})?)';
    case 'E':
      return '([A-Za-z]{3})';
    default:
      return width === 2 ? '(\\d{2})' : '(\\d{1,2})';
  }
}

/** A reader for `pattern`: text -> milliseconds since the epoch (NaN when it does not match or is no real date). */
export function makePatternReader(pattern: string, zone: string): { ok: true; read: (s: string) => number } | { ok: false; message: string } {
  const t = tokenizePattern(pattern);
  if (!t.ok) return t;
  const fields: Token[] = [];
  let source = '^';
  for (const token of t.tokens) {
    if ('lit' in token) source += escapeRegExp(token.lit);
    else {
      source += fieldRegExp(token.field, token.width);
      fields.push(token);
    }
  }
  const has = (f: Field) => fields.some((x) => 'field' in x && x.field === f);
  if (!has('y') || !has('M') || !has('d')) return { ok: false, message: 'needs a year (yyyy or yy), a month (MM, M or MMM) and a day (dd or d)' };
  if (has('h') !== has('a')) return { ok: false, message: 'needs both h (12-hour clock) and a (AM/PM), or H (24-hour clock)' };
  const re = new RegExp(`${source}$`);
  const read = (s: string): number => {
    const m = re.exec(s.trim());
    if (!m) return NaN;
    let y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, ms = 0;
    let pm: boolean | undefined;
    let offset: number | undefined;
    for (let k = 0; k < fields.length; k++) {
      const token = fields[k] as { field: Field; width: number };
      const text = m[k + 1]!;
      switch (token.field) {
        case 'y':
          y = token.width === 2 ? 2000 + Number(text) : Number(text);
          break;
        case 'M':
          mo = token.width === 3 ? MONTHS.findIndex((n) => n.toLowerCase() === text.toLowerCase()) + 1 : Number(text);
          break;
        case 'd':
          d = Number(text);
          break;
        case 'H':
        case 'h':
          h = Number(text);
          break;
        case 'm':
          mi = Number(text);
          break;
        case 's':
          sec = Number(text);
          break;
        case 'S':
          ms = Number(text.padEnd(3, '0'));
          break;
        case 'a':
          pm = text.toLowerCase() === 'pm';
          break;
        case 'X':
          if (text === 'Z' || text === 'z') offset = 0;
          else {
            const sign = text[0] === '-' ? -1 : 1;
            const body = text.slice(1).replace(':', '');
            offset = sign * (Number(body.slice(0, 2)) * 60 + Number(body.slice(2) || '0')) * 60_000;
          }
          break;
        case 'E':
          break;
      }
    }
    if (pm !== undefined) {
      if (h < 1 || h > 12) return NaN;
      h = (h % 12) + (pm ? 12 : 0);
    }
    if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo) || h > 23 || mi > 59 || sec > 59) return NaN;
    const local = utcFromParts(y, mo, d, h, mi, sec, ms);
    return offset === undefined ? localToUtc(zone, local) : local - offset;
  };
  return { ok: true, read };
}

function formatOffset(offsetMs: number, width: number): string {
  if (offsetMs === 0) return 'Z';
  const sign = offsetMs < 0 ? '-' : '+';
  const total = Math.abs(offsetMs) / 60_000;
  const hh = pad2(Math.floor(total / 60));
  const mm = pad2(total % 60);
  return width === 1 ? sign + hh + (mm === '00' ? '' : mm) : width === 2 ? sign + hh + mm : `${sign}${hh}:${mm}`;
}

/** A writer for `pattern`: milliseconds since the epoch -> text, as the wall time in `zone`. */
export function makePatternWriter(pattern: string, zone: string): { ok: true; write: (t: number) => string } | { ok: false; message: string } {
  const parsed = tokenizePattern(pattern);
  if (!parsed.ok) return parsed;
  const tokens = parsed.tokens;
  const write = (t: number): string => {
    const offset = offsetAt(zone, t);
    const c = civilFromMs(t + offset);
    let out = '';
    for (const token of tokens) {
      if ('lit' in token) {
        out += token.lit;
        continue;
      }
      const w = token.width;
      switch (token.field) {
        case 'y':
          out += w === 2 ? pad2(((c.year % 100) + 100) % 100) : String(c.year).padStart(4, '0');
          break;
        case 'M':
          out += w === 3 ? MONTHS[c.month - 1] : w === 2 ? pad2(c.month) : String(c.month);
          break;
        case 'd':
          out += w === 2 ? pad2(c.day) : String(c.day);
          break;
        case 'H':
          out += w === 2 ? pad2(c.hour) : String(c.hour);
          break;
        case 'h': {
          const h12 = c.hour % 12 === 0 ? 12 : c.hour % 12;
          out += w === 2 ? pad2(h12) : String(h12);
          break;
        }
        case 'm':
          out += w === 2 ? pad2(c.minute) : String(c.minute);
          break;
        case 's':
          out += w === 2 ? pad2(c.second) : String(c.second);
          break;
        case 'S':
          out += pad3(c.ms).slice(0, w);
          break;
        case 'a':
          out += c.hour < 12 ? 'AM' : 'PM';
          break;
        case 'X':
          out += formatOffset(offset, w);
          break;
        case 'E':
          out += WEEKDAYS[c.weekday];
          break;
      }
    }
    return out;
  };
  return { ok: true, write };
}
