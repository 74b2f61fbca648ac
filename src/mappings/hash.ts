// Content hashes of mapping documents: canonical JSON (sorted keys, no whitespace) hashed with SHA-256, so the same
// content gives the same hash whatever its key order or formatting.
import { createHash } from 'node:crypto';

/** JSON with object keys sorted at every level; `undefined` members are left out, as JSON.stringify does. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.keys(value)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
  return `{${entries.join(',')}}`;
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The content hash of one mapping document (what an ETag or a stored version can carry). */
export function hashMapping(doc: unknown): string {
  return sha256(canonicalJson(doc));
}
