// The mappings that ship as files in mappings/: read at start, available read-only to every workspace, each
// validated (with its golden examples) by `npm run validate` in CI.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MappingDocument } from './document.ts';
import type { MappingIssue } from './ir.ts';
import { collectUses } from './reuse.ts';
import { validateMapping } from './validate-mapping.ts';

/**
 * HUB_MAPPINGS_DIR when set; else mappings/ beside a function bundle (dist/main.js, dist/mappings; this code may
 * sit in dist/chunks/), else the repository's mappings/ (this file is src/mappings/files.ts).
 */
export const MAPPINGS_DIR =
  process.env.HUB_MAPPINGS_DIR ??
  [new URL('./mappings/', import.meta.url), ...(/\/chunks\/[^/]+$/.test(import.meta.url) ? [new URL('../mappings/', import.meta.url)] : []), new URL('../../mappings/', import.meta.url)]
    .map((u) => fileURLToPath(u))
    .find((dir) => existsSync(dir)) ??
  fileURLToPath(new URL('../../mappings/', import.meta.url));

export interface MappingFile {
  file: string;
  document: MappingDocument;
}

export interface FileReport {
  file: string;
  id: string | null;
  valid: boolean;
  errors: MappingIssue[];
  warnings: MappingIssue[];
}

/** Reads every *.json of the directory (none when it does not exist); a file that is not JSON is reported. */
export function readMappingFiles(dir = MAPPINGS_DIR): { files: MappingFile[]; unreadable: FileReport[] } {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json')).sort();
  } catch {
    return { files: [], unreadable: [] };
  }
  const files: MappingFile[] = [];
  const unreadable: FileReport[] = [];
  for (const name of names) {
    try {
      files.push({ file: name, document: JSON.parse(readFileSync(join(dir, name), 'utf8')) as MappingDocument });
    } catch (err) {
      unreadable.push({ file: name, id: null, valid: false, errors: [{ path: '', code: 'invalid_json', message: (err as Error).message }], warnings: [] });
    }
  }
  return { files, unreadable };
}

/** Validates every mapping file against the language, its schemas, the other files it reuses and its examples. */
export function validateMappingFiles(dir = MAPPINGS_DIR): FileReport[] {
  return checkMappingFiles(dir).reports;
}

function checkMappingFiles(dir: string): { reports: FileReport[]; files: MappingFile[] } {
  const { files, unreadable } = readMappingFiles(dir);
  const byId = new Map<string, MappingDocument>();
  const reports = [...unreadable];
  for (const f of files) {
    const id = typeof f.document?.id === 'string' ? f.document.id : null;
    if (id && byId.has(id)) {
      reports.push({ file: f.file, id, valid: false, errors: [{ path: '/id', code: 'duplicate_id', message: `another file already has the id ${id}` }], warnings: [] });
      continue;
    }
    if (id) byId.set(id, f.document);
  }
  for (const f of files) {
    const id = typeof f.document?.id === 'string' ? f.document.id : null;
    if (reports.some((r) => r.file === f.file)) continue;
    const result = validateMapping(f.document, { resolve: (ref) => byId.get(ref) });
    const problems = [...result.errors];
    if (!f.document.examples?.length) problems.push({ path: '/examples', code: 'examples_missing', message: 'every shipped mapping needs at least one golden example' });
    reports.push({ file: f.file, id, valid: problems.length === 0, errors: problems, warnings: result.warnings });
  }
  // A mapping that reuses an invalid one cannot run either (the loader leaves invalid files out).
  const fileOf = new Map(files.map((f) => [f.file, f.document]));
  for (let changed = true; changed; ) {
    changed = false;
    const invalidIds = new Set(reports.filter((r) => !r.valid && r.id).map((r) => r.id!));
    for (const r of reports) {
      if (!r.valid) continue;
      const bad = collectUses(fileOf.get(r.file)!).find((u) => invalidIds.has(u.id));
      if (!bad) continue;
      r.valid = false;
      r.errors.push({ path: bad.pointer, code: 'dependency_invalid', message: `it reuses ${bad.id}, which is not valid` });
      changed = true;
    }
  }
  // By code point: file names need no collation, and localeCompare loads ICU's collator into every process.
  return { reports: reports.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0)), files };
}

const loaded = new Map<string, ReadonlyMap<string, MappingDocument>>();

/**
 * The valid file mappings by id (invalid ones are left out: `npm run validate` fails CI on them). Read and
 * checked once per process and directory: every hub of the process shares them.
 */
export function loadFileMappings(dir = MAPPINGS_DIR): ReadonlyMap<string, MappingDocument> {
  let found = loaded.get(dir);
  if (!found) {
    const { reports, files } = checkMappingFiles(dir);
    const valid = new Set(reports.filter((r) => r.valid).map((r) => r.file));
    found = new Map(files.filter((f) => valid.has(f.file)).map((f) => [f.document.id, f.document]));
    loaded.set(dir, found);
  }
  return found;
}

/**
 * loadFileMappings(dir), read and checked when first used rather than when asked for. A hub holds this: checking
 * the shipped files (their schemas compiled, their examples run) took ~0.2 s of its ~0.9 s start, which an Appwrite
 * function paid at every cold start, before its first request, whether or not it used a mapping.
 */
export function lazyFileMappings(dir = MAPPINGS_DIR): ReadonlyMap<string, MappingDocument> {
  let found: ReadonlyMap<string, MappingDocument> | null = null;
  const map = () => (found ??= loadFileMappings(dir));
  return {
    get size() {
      return map().size;
    },
    get: (key) => map().get(key),
    has: (key) => map().has(key),
    forEach: (fn, thisArg) => map().forEach(fn, thisArg),
    entries: () => map().entries(),
    keys: () => map().keys(),
    values: () => map().values(),
    [Symbol.iterator]: () => map()[Symbol.iterator](),
  };
}
