// The names and paths the file transports accept. A file name comes from whoever drops files into a folder or
// onto a server, and it is later joined to a directory, reported and moved: so it is one plain name, never a path,
// never hidden (a leading dot is how uploaders, this hub included, mark files still being written). Configured
// folder paths are checked here too, so a schedule cannot point a transport outside the place it was given.
import { HubError, type FieldError } from '../../errors.ts';

/** Most filesystems and SFTP servers refuse longer names (NAME_MAX). */
export const MAX_NAME_BYTES = 255;
/** PATH_MAX on Linux; a configured path longer than this is a mistake, not a folder. */
export const MAX_PATH_BYTES = 4096;
const MAX_PATTERN_CHARS = 1000;

// C0 and C1 controls and DEL: they break logs and reports and some servers refuse them.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// Lone surrogates cannot be written as UTF-8, so such a name could not be reported or sent to a server.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function invalid(field: string, code: string, message: string): HubError {
  return new HubError('validation_failed', message, { errors: [{ field, code, message }] });
}

/** Why `name` is not an acceptable file name, or null when it is. */
function nameProblem(name: unknown): string | null {
  if (typeof name !== 'string' || name === '') return 'A file name must be a non-empty text';
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) return `A file name must be at most ${MAX_NAME_BYTES} bytes long`;
  if (name.includes('/') || name.includes('\\')) return 'A file name must not contain / or \\';
  if (CONTROL.test(name)) return 'A file name must not contain control characters';
  if (LONE_SURROGATE.test(name)) return 'A file name must be valid Unicode text';
  if (name.startsWith('.')) return 'A file name must not start with a dot (hidden and temporary files)';
  return null;
}

/** True when `name` would pass checkFileName; for skipping files a listing should not show. */
export function isFileName(name: unknown): name is string {
  return nameProblem(name) === null;
}

/** Returns `name` when it is one plain file name as exchanged; throws validation_failed (code 'file_name'). */
export function checkFileName(name: string, field = '/name'): string {
  const problem = nameProblem(name);
  if (problem !== null) throw invalid(field, 'file_name', `${problem}: ${JSON.stringify(name)}`);
  return name;
}

function checkSegments(path: string, field: string): string[] {
  if (Buffer.byteLength(path, 'utf8') > MAX_PATH_BYTES) throw invalid(field, 'path', `A path must be at most ${MAX_PATH_BYTES} bytes long`);
  if (path.includes('\\')) throw invalid(field, 'path', `A path must use / between folders, not \\: ${JSON.stringify(path)}`);
  if (CONTROL.test(path) || LONE_SURROGATE.test(path)) throw invalid(field, 'path', `A path must not contain control characters: ${JSON.stringify(path)}`);
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    // 'a//b', './a' and 'a/' are the same folder as 'a/b' and 'a'; only '..' could lead somewhere else.
    if (segment === '' || segment === '.') continue;
    if (segment === '..') throw invalid(field, 'path', `A path must not contain '..': ${JSON.stringify(path)}`);
    if (Buffer.byteLength(segment, 'utf8') > MAX_NAME_BYTES) throw invalid(field, 'path', `A folder name must be at most ${MAX_NAME_BYTES} bytes long`);
    segments.push(segment);
  }
  return segments;
}

/**
 * Checks a configured folder below a transport's root: relative, no '..', no backslash, no control characters.
 * Returns it normalised ('a/b', no leading, trailing or doubled '/', no '.'); '' (also for '' and '.') is the root.
 * Folder names may start with a dot; only exchanged file names may not.
 */
export function checkRelativePath(path: string, field = '/path'): string {
  if (typeof path !== 'string') throw invalid(field, 'path', 'A path must be a text');
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) throw invalid(field, 'path', `A path must be relative, not ${JSON.stringify(path)}`);
  return checkSegments(path, field).join('/');
}

/**
 * Checks a folder on a remote server: relative to the login folder or absolute there (where the server puts the
 * account is the server's business), but without '..', so a configured path says plainly where files go.
 * Returns it normalised: '' is the login folder, '/' the server's root.
 */
export function checkRemotePath(path: string, field = '/path'): string {
  if (typeof path !== 'string') throw invalid(field, 'path', 'A path must be a text');
  const segments = checkSegments(path, field).join('/');
  return path.startsWith('/') ? `/${segments}` : segments;
}

/** Joins a normalised folder (from checkRelativePath or checkRemotePath) and a name with '/'. */
export function joinPath(folder: string, name: string): string {
  if (folder === '') return name;
  return folder.endsWith('/') ? `${folder}${name}` : `${folder}/${name}`;
}

type Token = { kind: 'star' } | { kind: 'one' } | { kind: 'char'; c: string } | { kind: 'set'; negate: boolean; ranges: [number, number][] };

const compiled = new Map<string, Token[]>();

/**
 * A glob as tokens over code points (so '?' is one character even outside the basic plane). Not a RegExp: a
 * pattern like `*a*a*a*a*b` backtracks for minutes in one, where the matcher below stays linear in the pattern
 * times the name.
 */
function compilePattern(pattern: string, field: string): Token[] {
  const chars = [...pattern];
  const tokens: Token[] = [];
  const bad = (why: string) => invalid(field, 'pattern', `The pattern ${JSON.stringify(pattern)} is not valid: ${why}`);
  let i = 0;
  const literal = (): string => {
    if (i >= chars.length) throw bad('it ends with \\');
    return chars[i++]!;
  };
  while (i < chars.length) {
    const c = chars[i++]!;
    if (c === '*') {
      // Runs of '*' mean the same as one.
      if (tokens.at(-1)?.kind !== 'star') tokens.push({ kind: 'star' });
    } else if (c === '?') {
      tokens.push({ kind: 'one' });
    } else if (c === '\\') {
      tokens.push({ kind: 'char', c: literal() });
    } else if (c === '[') {
      let negate = false;
      if (chars[i] === '!' || chars[i] === '^') {
        negate = true;
        i++;
      }
      const ranges: [number, number][] = [];
      for (let first = true; ; first = false) {
        if (i >= chars.length) throw bad('a [ is not closed');
        let from = chars[i++]!;
        // A ']' right after '[' or '[!' is a member, as in shells.
        if (from === ']' && !first) break;
        if (from === '\\') from = literal();
        let to = from;
        if (chars[i] === '-' && chars[i + 1] !== undefined && chars[i + 1] !== ']') {
          i++;
          to = chars[i++]!;
          if (to === '\\') to = literal();
          if (to.codePointAt(0)! < from.codePointAt(0)!) throw bad(`the range ${from}-${to} is backwards`);
        }
        ranges.push([from.codePointAt(0)!, to.codePointAt(0)!]);
      }
      tokens.push({ kind: 'set', negate, ranges });
    } else {
      tokens.push({ kind: 'char', c });
    }
  }
  return tokens;
}

function matchesOne(token: Token, c: string): boolean {
  switch (token.kind) {
    case 'one':
      return true;
    case 'char':
      return token.c === c;
    case 'set': {
      const code = c.codePointAt(0)!;
      return token.ranges.some(([from, to]) => code >= from && code <= to) !== token.negate;
    }
    default:
      return false;
  }
}

/** Whole-name glob match; on a mismatch after a '*' the star takes one more character (no nested backtracking). */
function globMatch(tokens: Token[], name: string): boolean {
  const chars = [...name];
  let p = 0;
  let n = 0;
  let starP = -1;
  let starN = 0;
  while (n < chars.length) {
    const token = tokens[p];
    if (token?.kind === 'star') {
      starP = p++;
      starN = n;
    } else if (token !== undefined && matchesOne(token, chars[n]!)) {
      p++;
      n++;
    } else if (starP >= 0) {
      p = starP + 1;
      n = ++starN;
    } else {
      return false;
    }
  }
  while (tokens[p]?.kind === 'star') p++;
  return p === tokens.length;
}

/** Checks a configured name pattern (see matchesPattern) and returns it; validation_failed, code 'pattern'. */
export function checkPattern(pattern: string, field = '/pattern'): string {
  if (typeof pattern !== 'string' || pattern === '') throw invalid(field, 'pattern', 'A pattern must be a non-empty text');
  if (pattern.length > MAX_PATTERN_CHARS) throw invalid(field, 'pattern', `A pattern must be at most ${MAX_PATTERN_CHARS} characters long`);
  if (pattern.includes('/')) throw invalid(field, 'pattern', 'A pattern matches file names, so it must not contain /');
  patternTokens(pattern, field);
  return pattern;
}

function patternTokens(pattern: string, field: string): Token[] {
  let tokens = compiled.get(pattern);
  if (!tokens) {
    tokens = compilePattern(pattern, field);
    // Patterns come from a handful of schedules; the bound only guards against a caller feeding it user input.
    if (compiled.size >= 1000) compiled.clear();
    compiled.set(pattern, tokens);
  }
  return tokens;
}

/**
 * Whether the whole of `name` matches the glob `pattern`: `*` any run of characters, `?` one character, `[abc]`,
 * `[a-z]` one of a set, `[!abc]` (or `[^abc]`) one not in it, `\` makes the next character literal. Case-sensitive
 * on every platform, so a schedule picks the same files wherever the hub runs: `*.csv` does not match `STOCK.CSV`
 * (write `*.[cC][sS][vV]` for both). Throws validation_failed for a pattern that is not valid (an unclosed '[').
 */
export function matchesPattern(name: string, pattern: string): boolean {
  return globMatch(patternTokens(pattern, '/pattern'), name);
}

/**
 * The name a file gets in an archive (or error) folder that already holds one of its name: the time of the move
 * goes before the extension, `stock.csv` → `stock.20261122T010203Z.csv`, so archived files still sort and open by
 * their extension. `attempt` (2, 3, …) is for the rare second clash within the same second: `stock.20261122T010203Z-2.csv`.
 * A name too long to take the stamp is shortened before it.
 */
export function archiveName(name: string, now: Date, attempt = 1): string {
  const stamp = now.toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '') + (attempt > 1 ? `-${attempt}` : '');
  const dot = name.lastIndexOf('.');
  let stem = dot > 0 ? name.slice(0, dot) : name;
  let ext = dot > 0 ? name.slice(dot) : '';
  // An "extension" too long to keep beside the stamp is not one; shortening the whole name keeps it non-hidden.
  if (Buffer.byteLength(`x.${stamp}${ext}`, 'utf8') > MAX_NAME_BYTES) {
    stem = name;
    ext = '';
  }
  const fixed = Buffer.byteLength(`.${stamp}${ext}`, 'utf8');
  while (stem !== '' && Buffer.byteLength(stem, 'utf8') + fixed > MAX_NAME_BYTES) stem = [...stem].slice(0, -1).join('');
  return `${stem}.${stamp}${ext}`;
}

/** Runs one check, keeping its field errors so that all of a configuration's mistakes are reported at once. */
export function collect<T>(errors: FieldError[], check: () => T): T | undefined {
  try {
    return check();
  } catch (err) {
    if (!(err instanceof HubError) || !err.errors) throw err;
    errors.push(...err.errors);
    return undefined;
  }
}

/** Throws the collected mistakes of `what` ("The SFTP transport") as one validation_failed, if there are any. */
export function throwIfAny(errors: FieldError[], what: string): void {
  if (errors.length === 0) return;
  const message = errors.length === 1 ? errors[0]!.message : `${what}'s configuration has ${errors.length} mistakes`;
  throw new HubError('validation_failed', message, { errors });
}

/**
 * Where a source moves finished files: `archivePath` and `errorPath` (default `archive` and `error` beside the
 * waiting folder `path`), each checked by `check`. Neither may be the waiting folder itself: a finished file left
 * there would be imported again on every run.
 */
export function finishFolders(
  path: string,
  options: { archivePath?: string; errorPath?: string },
  check: (path: string, field: string) => string,
  errors: FieldError[],
): { archive: string | undefined; error: string | undefined } {
  const folders = {
    archive: collect(errors, () => check(options.archivePath ?? joinPath(path, 'archive'), '/archivePath')),
    error: collect(errors, () => check(options.errorPath ?? joinPath(path, 'error'), '/errorPath')),
  };
  for (const [outcome, field] of [['archive', '/archivePath'], ['error', '/errorPath']] as const) {
    if (folders[outcome] === path) errors.push({ field, code: 'same_folder', message: `${field.slice(1)} must not be the folder files wait in` });
  }
  return folders;
}
