// The last guard before generated source is compiled: it may contain only generated identifiers, fixed words,
// numbers and punctuation. No quote, backtick or backslash survives, so no text of a mapping can be in it.
import { HELPERS } from './codegen.ts';

const FIXED_LITERALS = ["'use strict';", "'object'"];

const WORDS = new Set<string>([
  'const', 'let', 'if', 'else', 'for', 'return', 'continue', 'function', 'typeof', 'undefined', 'null', 'true', 'false',
  'length', 'push', 'run', 'r', 'root', 'E', 'K', 'F', 'U', 'H', ...HELPERS,
]);

const GENERATED = /^[kfuve]\d+$/;

export class UnsafeSourceError extends Error {
  constructor(detail: string) {
    super(`Generated mapping code failed the inertness check: ${detail}`);
    this.name = 'UnsafeSourceError';
  }
}

/** Throws unless `source` is made only of what the code generator itself writes. */
export function assertInert(source: string): void {
  let rest = source;
  for (const literal of FIXED_LITERALS) rest = rest.split(literal).join(' ');
  const bad = /[^A-Za-z0-9_\s.,;:(){}[\]=!<>&|?+\-]/.exec(rest);
  if (bad) throw new UnsafeSourceError(`unexpected character ${JSON.stringify(bad[0])}`);
  for (const word of rest.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []) {
    if (!WORDS.has(word) && !GENERATED.test(word)) throw new UnsafeSourceError(`unexpected word ${JSON.stringify(word)}`);
  }
}
