// UTC offsets of IANA time zones, from the platform's Intl data (no time zone library), cached by quarter hour.

const formatters = new Map<string, Intl.DateTimeFormat>();
const offsets = new Map<string, Map<number, number>>();
/** Zone transitions fall on quarter hours in UTC (offsets are multiples of 15 minutes), so a bucket has one offset. */
const BUCKET_MS = 15 * 60_000;
const MAX_CACHED = 100_000;

export function isUtcZone(zone: string | undefined): boolean {
  return zone === undefined || zone === 'UTC' || zone === 'Etc/UTC' || zone === 'Z';
}

/** Whether the platform knows this IANA time zone. */
export function isTimeZone(zone: string): boolean {
  if (isUtcZone(zone)) return true;
  try {
    formatterFor(zone);
    return true;
  } catch {
    return false;
  }
}

function formatterFor(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(zone, f);
  }
  return f;
}

function computeOffset(zone: string, utcMs: number): number {
  const parts = formatterFor(zone).formatToParts(utcMs);
  const get = (type: string): number => Number(parts.find((p) => p.type === type)?.value ?? 0);
  // Date.UTC reads years 0-99 as 1900-1999: shift such years by 400 (a whole Gregorian cycle) and back.
  const year = get('year');
  const shift = year >= 0 && year < 100 ? 400 : 0;
  const cycleMs = shift ? 146_097 * 86_400_000 : 0;
  const local = Date.UTC(year + shift, get('month') - 1, get('day'), get('hour'), get('minute'), get('second')) - cycleMs;
  return local - utcMs;
}

/** The zone's offset from UTC in milliseconds at the instant `utcMs` (positive east of Greenwich). */
export function offsetAt(zone: string, utcMs: number): number {
  if (isUtcZone(zone)) return 0;
  let cache = offsets.get(zone);
  if (!cache) {
    cache = new Map();
    offsets.set(zone, cache);
  }
  const bucket = Math.floor(utcMs / BUCKET_MS);
  let off = cache.get(bucket);
  if (off === undefined) {
    off = computeOffset(zone, bucket * BUCKET_MS);
    if (cache.size >= MAX_CACHED) cache.clear();
    cache.set(bucket, off);
  }
  return off;
}

/**
 * The instant of a wall-clock time in a zone (`localMs` is that wall time read as if it were UTC). A time skipped
 * by a daylight-saving jump moves forward by the jump; a repeated time takes its first occurrence.
 */
export function localToUtc(zone: string, localMs: number): number {
  if (isUtcZone(zone)) return localMs;
  const o1 = offsetAt(zone, localMs);
  let utc = localMs - o1;
  const o2 = offsetAt(zone, utc);
  if (o1 === o2) return utc;
  utc -= o2 - o1;
  const o3 = offsetAt(zone, utc);
  if (o2 === o3) return utc;
  return localMs - Math.min(o2, o3);
}
