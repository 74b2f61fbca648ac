// A workspace's mappings: stored documents with immutable versions (one active), over the mappings shipped as
// files (read-only, shared by all workspaces; a workspace mapping with the same key takes precedence).
import { HubError } from '../errors.ts';
import type { Db, MappingsRow, MappingVersionsRow } from '../store/types.ts';
import type { MappingDocument } from './document.ts';
import { checkDocument } from './document-check.ts';
import { compileMapping, type CompiledMapping } from './compile.ts';
import { collectUses, type ResolveMapping } from './reuse.ts';

/** How deep `use` chains are followed when loading what a document reuses (cycles are the validator's to report). */
const MAX_REUSE_DEPTH = 32;

export interface ResolvedMapping {
  key: string;
  source: 'workspace' | 'file';
  document: MappingDocument;
  mapping: MappingsRow | null;
  versionNumber: number | null;
}

export async function findMapping(db: Db, workspaceId: string, key: string): Promise<MappingsRow | null> {
  const page = await db.table('mappings').query({ where: { workspaceId, key }, limit: 1 });
  return page.items[0] ?? null;
}

export async function findVersion(db: Db, mapping: MappingsRow, number: number): Promise<MappingVersionsRow | null> {
  const page = await db.table('mapping_versions').query({ where: { workspaceId: mapping.workspaceId, mappingId: mapping.id, number }, limit: 1 });
  return page.items[0] ?? null;
}

/** The document that runs for a key: the workspace's active version, else the shipped file; null when neither. */
export async function resolveMapping(db: Db, workspaceId: string, key: string, files: ReadonlyMap<string, MappingDocument>): Promise<ResolvedMapping | null> {
  const mapping = await findMapping(db, workspaceId, key);
  if (mapping) {
    const version = await findVersion(db, mapping, mapping.activeVersion);
    if (!version) throw new HubError('internal_error', `Mapping ${key} has no version ${mapping.activeVersion}`);
    return { key, source: 'workspace', document: version.document as unknown as MappingDocument, mapping, versionNumber: version.number };
  }
  const file = files.get(key);
  return file ? { key, source: 'file', document: file, mapping: null, versionNumber: null } : null;
}

/**
 * Loads every mapping the document reuses (transitively) so that validation and compilation, which resolve
 * synchronously, can find them. Unknown ids are left for the validator to report.
 */
export async function reuseResolver(db: Db, workspaceId: string, doc: unknown, files: ReadonlyMap<string, MappingDocument>): Promise<ResolveMapping> {
  const loaded = new Map<string, MappingDocument>();
  const usesOf = (d: unknown) => (checkDocument(d).length === 0 ? collectUses(d as MappingDocument).map((u) => u.id) : []);
  let frontier = usesOf(doc);
  for (let depth = 0; frontier.length && depth < MAX_REUSE_DEPTH; depth++) {
    const next: string[] = [];
    for (const id of new Set(frontier)) {
      if (loaded.has(id)) continue;
      const found = await resolveMapping(db, workspaceId, id, files);
      if (!found) continue;
      loaded.set(id, found.document);
      next.push(...usesOf(found.document));
    }
    frontier = next;
  }
  return (id) => loaded.get(id);
}

/**
 * The compiled mapping that runs for a key (workspace version, else the shipped file), with what it reuses;
 * null when there is none. Compiling is cached by content hash, so calling this per record costs two reads.
 */
export async function compiledMappingFor(db: Db, workspaceId: string, key: string, files: ReadonlyMap<string, MappingDocument>): Promise<CompiledMapping | null> {
  const found = await resolveMapping(db, workspaceId, key, files);
  if (!found) return null;
  // A document that reuses nothing compiles the same way every time: keep the result by the document (a shipped
  // file) or by the immutable version it came from, rather than hash and check it again per record.
  const selfContained = collectUses(found.document).length === 0;
  const cacheKey = selfContained ? (found.mapping ? `${found.mapping.id}@${found.versionNumber}` : found.document) : null;
  const cached = cacheKey === null ? undefined : compiledCache.get(cacheKey);
  if (cached) return cached;
  const compiled = compileMapping(found.document, { resolve: await reuseResolver(db, workspaceId, found.document, files) });
  if (cacheKey !== null) {
    if (compiledCache.size >= MAX_COMPILED) compiledCache.delete(compiledCache.keys().next().value!);
    compiledCache.set(cacheKey, compiled);
  }
  return compiled;
}

const MAX_COMPILED = 500;
const compiledCache = new Map<string | MappingDocument, CompiledMapping>();
