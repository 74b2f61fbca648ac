import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { makePatternReader, makePatternWriter } from './date-pattern.ts';
import { civilFromMs, isoFromMs, parseEpoch, parseIso } from './date-time.ts';
import { isTimeZone, localToUtc, offsetAt } from './time-zone.ts';

const iso = (text: string, zone?: string) => {
  const t = parseIso(text, zone);
  return Number.isNaN(t) ? 'invalid' : new Date(t).toISOString();
};

describe('ISO 8601', () => {
  it('reads dates, times, fractions and offsets', () => {
    expect(iso('2024-03-05')).toBe('2024-03-05T00:00:00.000Z');
    expect(iso('2024-03-05T10:15')).toBe('2024-03-05T10:15:00.000Z');
    expect(iso('2024-03-05 10:15:30')).toBe('2024-03-05T10:15:30.000Z');
    expect(iso('2024-03-05T10:15:30.5Z')).toBe('2024-03-05T10:15:30.500Z');
    expect(iso('2024-03-05T10:15:30.123456789+01:00')).toBe('2024-03-05T09:15:30.123Z');
    expect(iso('2024-03-05T10:15:30-0530')).toBe('2024-03-05T15:45:30.000Z');
    expect(iso('2024-03-05T10:15:30+09')).toBe('2024-03-05T01:15:30.000Z');
  });

  it('reads wall times without an offset in the given zone', () => {
    expect(iso('2024-07-01T12:00', 'Europe/Paris')).toBe('2024-07-01T10:00:00.000Z');
    expect(iso('2024-01-01T12:00', 'Europe/Paris')).toBe('2024-01-01T11:00:00.000Z');
    expect(iso('2024-07-01T12:00Z', 'Europe/Paris')).toBe('2024-07-01T12:00:00.000Z');
  });

  it('refuses what is not a real instant', () => {
    for (const bad of ['2024-02-30', '2023-02-29', '2024-13-01', '2024-01-01T24:00', '2024-01-01T10:60', '2024-1-1', '2024-01-01T10:00+25:00', '20240101', 'x']) {
      expect([bad, iso(bad)]).toEqual([bad, 'invalid']);
    }
  });

  it('writes instants exactly as Date#toISOString does (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: -62_000_000_000_000, max: 253_402_300_799_999 }), (t) => {
        expect(isoFromMs(t)).toBe(new Date(t).toISOString());
      }),
    );
  });

  it('reads back what it writes (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 253_402_300_799_999 }), (t) => {
        expect(parseIso(isoFromMs(t))).toBe(t);
      }),
    );
  });

  it('breaks instants into calendar fields with the weekday', () => {
    expect(civilFromMs(Date.UTC(2024, 1, 29, 23, 59, 58, 7))).toEqual({ year: 2024, month: 2, day: 29, hour: 23, minute: 59, second: 58, ms: 7, weekday: 4 });
  });

  it('reads epoch seconds and milliseconds from numbers and text', () => {
    expect(parseEpoch(1_700_000_000, 1000)).toBe(1_700_000_000_000);
    expect(parseEpoch('1700000000123', 1)).toBe(1_700_000_000_123);
    expect(parseEpoch('1.5', 1000)).toBe(1500);
    expect(parseEpoch('soon', 1)).toBeNaN();
  });
});

describe('time zones', () => {
  it('knows IANA zones and refuses unknown ones', () => {
    expect(isTimeZone('America/New_York')).toBe(true);
    expect(isTimeZone('Mars/Olympus')).toBe(false);
  });

  it('gives offsets across daylight saving time', () => {
    expect(offsetAt('America/New_York', Date.UTC(2024, 0, 15))).toBe(-5 * 3_600_000);
    expect(offsetAt('America/New_York', Date.UTC(2024, 6, 15))).toBe(-4 * 3_600_000);
    expect(offsetAt('Asia/Kathmandu', Date.UTC(2024, 6, 15))).toBe(5.75 * 3_600_000);
  });

  it('moves a skipped wall time forward and takes the first of a repeated one', () => {
    const ny = (y: number, mo: number, d: number, h: number, mi: number) => new Date(localToUtc('America/New_York', Date.UTC(y, mo - 1, d, h, mi))).toISOString();
    expect(ny(2024, 3, 10, 2, 30)).toBe('2024-03-10T07:30:00.000Z');
    expect(ny(2024, 11, 3, 1, 30)).toBe('2024-11-03T05:30:00.000Z');
    expect(ny(2024, 11, 3, 3, 0)).toBe('2024-11-03T08:00:00.000Z');
  });
});

describe('date patterns', () => {
  const read = (pattern: string, text: string, zone = 'UTC') => {
    const r = makePatternReader(pattern, zone);
    if (!r.ok) throw new Error(r.message);
    const t = r.read(text);
    return Number.isNaN(t) ? 'invalid' : new Date(t).toISOString();
  };
  const write = (pattern: string, t: number, zone = 'UTC') => {
    const w = makePatternWriter(pattern, zone);
    if (!w.ok) throw new Error(w.message);
    return w.write(t);
  };

  it('reads common vendor formats', () => {
    expect(read('dd/MM/yyyy', '31/01/2024')).toBe('2024-01-31T00:00:00.000Z');
    expect(read('MM/dd/yyyy HH:mm', '01/31/2024 13:45')).toBe('2024-01-31T13:45:00.000Z');
    expect(read('yyyyMMdd', '20240131')).toBe('2024-01-31T00:00:00.000Z');
    expect(read('d MMM yy h:mm a', '5 Mar 24 1:05 pm')).toBe('2024-03-05T13:05:00.000Z');
    expect(read('yyyy-MM-dd HH:mm:ss.SSS XXX', '2024-03-05 10:00:00.250 +02:00')).toBe('2024-03-05T08:00:00.250Z');
    expect(read("yyyy-MM-dd'T'HH:mm", '2024-03-05T10:00', 'Asia/Tokyo')).toBe('2024-03-05T01:00:00.000Z');
    expect(read('dd/MM/yyyy', '30/02/2024')).toBe('invalid');
    expect(read('dd/MM/yyyy', '2024-01-31')).toBe('invalid');
  });

  it('refuses patterns it cannot read', () => {
    expect(makePatternReader('dd/QQ/yyyy', 'UTC')).toMatchObject({ ok: false });
    expect(makePatternReader('HH:mm', 'UTC')).toMatchObject({ ok: false, message: expect.stringMatching(/needs a year/) });
    expect(makePatternReader('yyyy-MM-dd hh:mm', 'UTC')).toMatchObject({ ok: false, message: expect.stringMatching(/AM\/PM/) });
    expect(makePatternReader("yyyy 'open", 'UTC')).toMatchObject({ ok: false });
    expect(makePatternReader('yyyyy', 'UTC')).toMatchObject({ ok: false });
  });

  it('writes patterns in a time zone', () => {
    const t = Date.UTC(2024, 6, 1, 22, 5, 9, 42);
    expect(write('yyyy-MM-dd HH:mm:ss.SSS', t)).toBe('2024-07-01 22:05:09.042');
    expect(write('EEE d MMM yy, h:mm a XXX', t, 'Europe/Paris')).toBe('Tue 2 Jul 24, 12:05 AM +02:00');
    expect(write("dd/MM/yyyy 'at' HH'h' X", t, 'America/St_Johns')).toBe('01/07/2024 at 19h -0230');
    expect(write('XX', t)).toBe('Z');
  });

  it('reads back what it writes (property)', () => {
    const pattern = 'yyyy-MM-dd HH:mm:ss.SSS';
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 253_402_300_799_999 }), (t) => {
        expect(read(pattern, write(pattern, t))).toBe(new Date(t).toISOString());
      }),
    );
  });
});
