import { describe, expect, it } from 'vitest';
import { HubError } from '../../errors.ts';
import {
  archiveName,
  checkFileName,
  checkPattern,
  checkRelativePath,
  checkRemotePath,
  isFileName,
  joinPath,
  matchesPattern,
  MAX_NAME_BYTES,
} from './names.ts';

/** The validation failure `run` throws: code, field and field code checked, the message returned. */
function refusal(run: () => unknown, field: string, code: string): string {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(HubError);
    const e = err as HubError;
    expect(e.code).toBe('validation_failed');
    expect(e.errors).toEqual([{ field, code, message: e.message }]);
    return e.message;
  }
  throw new Error('expected a validation failure');
}

describe('checkFileName', () => {
  it.each(['stock.csv', 'Stock 2026-11-22.CSV', 'ärger.xml', 'a', 'x'.repeat(MAX_NAME_BYTES), 'no-extension', 'a..b', 'emoji-📦.csv'])(
    'accepts %j and returns it',
    (name) => {
      expect(checkFileName(name)).toBe(name);
      expect(isFileName(name)).toBe(true);
    },
  );

  it.each([
    ['', 'non-empty'],
    ['.', 'dot'],
    ['..', 'dot'],
    ['.hidden.csv', 'dot'],
    ['.stock.csv.a1b2.part', 'dot'],
    ['in/stock.csv', '/ or \\'],
    ['/etc/passwd', '/ or \\'],
    ['..\\x.csv', '/ or \\'],
    ['a\u0000b.csv', 'control'],
    ['line\nbreak.csv', 'control'],
    ['tab\t.csv', 'control'],
    ['del\u007f.csv', 'control'],
    ['c1\u0085.csv', 'control'],
    ['x'.repeat(MAX_NAME_BYTES + 1), 'bytes'],
    // 128 two-byte characters: 128 characters but 256 bytes.
    ['é'.repeat(128), 'bytes'],
    ['lone\uD800.csv', 'Unicode'],
  ])('refuses %j', (name, why) => {
    const message = refusal(() => checkFileName(name, '/source/name'), '/source/name', 'file_name');
    expect(message).toContain(why);
    expect(isFileName(name)).toBe(false);
  });

  it('refuses what is not a text', () => {
    refusal(() => checkFileName(42 as unknown as string), '/name', 'file_name');
    expect(isFileName(undefined)).toBe(false);
  });
});

describe('checkRelativePath', () => {
  it.each([
    ['', ''],
    ['.', ''],
    ['./', ''],
    ['in', 'in'],
    ['in/', 'in'],
    ['./in//today/', 'in/today'],
    ['exchange/in/archive', 'exchange/in/archive'],
    ['.exchange/in', '.exchange/in'],
    ['a..b/c', 'a..b/c'],
  ])('accepts %j as %j', (path, normal) => {
    expect(checkRelativePath(path)).toBe(normal);
  });

  it.each([
    ['/etc', 'relative'],
    ['/', 'relative'],
    ['C:/files', 'relative'],
    ['..', '..'],
    ['../x', '..'],
    ['a/../../b', '..'],
    ['a/..', '..'],
    ['a\\b', '\\'],
    ['..\\..\\x', '\\'],
    ['a\u0000b', 'control'],
    ['a\nb', 'control'],
    [`a/${'x'.repeat(256)}`, 'at most'],
  ])('refuses %j', (path, why) => {
    expect(refusal(() => checkRelativePath(path, '/archivePath'), '/archivePath', 'path')).toContain(why);
  });
});

describe('checkRemotePath', () => {
  it('accepts relative and absolute paths and normalises them', () => {
    expect(checkRemotePath('')).toBe('');
    expect(checkRemotePath('in/')).toBe('in');
    expect(checkRemotePath('/')).toBe('/');
    expect(checkRemotePath('//srv/./ftp/in/')).toBe('/srv/ftp/in');
  });

  it.each(['/srv/../etc', '../up', 'in/..', 'a\\b', 'a\u0001'])('refuses %j', (path) => {
    refusal(() => checkRemotePath(path), '/path', 'path');
  });

  it('joins a folder and a name', () => {
    expect(joinPath('', 'a.csv')).toBe('a.csv');
    expect(joinPath('/', 'a.csv')).toBe('/a.csv');
    expect(joinPath('in/x', 'a.csv')).toBe('in/x/a.csv');
  });
});

describe('matchesPattern', () => {
  it.each([
    ['stock.csv', '*', true],
    ['stock.csv', '*.csv', true],
    ['stock.csv.bak', '*.csv', false],
    ['xstock.csv', 'stock*', false],
    ['stock-1.csv', 'stock-?.csv', true],
    ['stock-12.csv', 'stock-?.csv', false],
    // Case-sensitive on every platform.
    ['STOCK.CSV', '*.csv', false],
    ['STOCK.CSV', '*.[cC][sS][vV]', true],
    ['stock-a.csv', 'stock-[abc].csv', true],
    ['stock-d.csv', 'stock-[abc].csv', false],
    ['stock-7.csv', 'stock-[0-9].csv', true],
    ['stock-x.csv', 'stock-[0-9].csv', false],
    ['stock-x.csv', 'stock-[!0-9].csv', true],
    ['stock-7.csv', 'stock-[^0-9].csv', false],
    ['].csv', '[]a].csv', true],
    ['a.csv', '[]a].csv', true],
    ['a].csv', '[]a].csv', false],
    ['-.csv', '[a-].csv', true],
    // Regular-expression characters are literal.
    ['a+b(1).csv', 'a+b(1).csv', true],
    ['aab1.csv', 'a+b(1).csv', false],
    ['stockXcsv', 'stock.csv', false],
    ['what?.csv', 'what\\?.csv', true],
    ['whatX.csv', 'what\\?.csv', false],
    ['report*.csv', 'report\\*.csv', true],
    ['reportX.csv', 'report\\*.csv', false],
    // '?' is one character, even outside the basic plane.
    ['📦.csv', '?.csv', true],
    ['orders 2026-11.xml', 'orders ????-??.xml', true],
  ])('%j against %j is %s', (name, pattern, expected) => {
    expect(matchesPattern(name, pattern)).toBe(expected);
  });

  it('stays fast on a pattern with many stars against a long near-miss', () => {
    const started = performance.now();
    // A backtracking regular expression takes minutes over this; the matcher must not.
    expect(matchesPattern('a'.repeat(1000), `${'*a'.repeat(30)}*b`)).toBe(false);
    expect(matchesPattern(`${'a'.repeat(1000)}b`, `${'*a'.repeat(30)}*b`)).toBe(true);
    expect(performance.now() - started).toBeLessThan(200);
  });

  it.each([
    ['', 'non-empty'],
    ['[abc', 'not closed'],
    ['stock-[z-a].csv', 'backwards'],
    ['x\\', 'ends with'],
    ['in/*.csv', 'must not contain /'],
  ])('refuses the pattern %j', (pattern, why) => {
    expect(refusal(() => checkPattern(pattern, '/source/pattern'), '/source/pattern', 'pattern')).toContain(why);
  });

  it('throws for an invalid pattern rather than matching nothing', () => {
    refusal(() => matchesPattern('a.csv', '[a'), '/pattern', 'pattern');
  });
});

describe('archiveName', () => {
  const now = new Date('2026-11-22T01:02:03.456Z');

  it('puts the UTC time of the move before the extension', () => {
    expect(archiveName('stock.csv', now)).toBe('stock.20261122T010203Z.csv');
    expect(archiveName('orders.2026.xml', now)).toBe('orders.2026.20261122T010203Z.xml');
    expect(archiveName('README', now)).toBe('README.20261122T010203Z');
  });

  it('counts further clashes in the same second', () => {
    expect(archiveName('stock.csv', now, 2)).toBe('stock.20261122T010203Z-2.csv');
  });

  it('shortens a long name so the result is still a valid name', () => {
    const long = `${'é'.repeat(120)}.csv`;
    const renamed = archiveName(long, now);
    expect(Buffer.byteLength(renamed)).toBeLessThanOrEqual(MAX_NAME_BYTES);
    expect(renamed).toMatch(/^é+\.20261122T010203Z\.csv$/);
    expect(checkFileName(renamed)).toBe(renamed);
    const longExtension = `a.${'x'.repeat(250)}`;
    const renamed2 = archiveName(longExtension, now);
    expect(Buffer.byteLength(renamed2)).toBeLessThanOrEqual(MAX_NAME_BYTES);
    expect(renamed2).toMatch(/^a\.x+\.20261122T010203Z$/);
    expect(isFileName(renamed2)).toBe(true);
  });
});
