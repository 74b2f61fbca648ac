// compileMapping: a mapping document becomes one generated function, once, cached by content hash; apply() then
// runs it per record with no interpretation, never throws, and returns either the whole value or only errors.
import type { ValidateFunction } from 'ajv';
import { HubError } from '../errors.ts';
import type { JsonSchema } from '../schemas/registry.ts';
import { generate } from './codegen.ts';
import type { StepFn } from './coerce.ts';
import type { MappingDocument } from './document.ts';
import { checkDocument } from './document-check.ts';
import { describeValue } from './failure.ts';
import { canonicalJson, hashMapping, sha256 } from './hash.ts';
import { assertInert } from './inert.ts';
import type { FieldIR, MappingIssue } from './ir.ts';
import { normalizeMapping } from './normalize.ts';
import { resolveReuse, type ResolveMapping } from './reuse.ts';
import { helpers, type Helpers, type MappingRunError } from './runtime.ts';
import { registrySchemaFor, type SchemaFor } from './schema-walk.ts';
import { targetErrors, validatorForSchema } from './target-check.ts';

export interface CompileOptions {
  /** Finds a reused mapping by id (`use`). */
  resolve?: ResolveMapping;
  /** Resolves a schema id of `source.schema`/`target.schema`; default: the hub's schema registry. */
  schemaFor?: SchemaFor;
  /** Validate each output against the target schema when the mapping names one (default true). */
  validateOutput?: boolean;
  /**
   * The document and those it reuses passed checkDocument already: a mapping compiled once and handed to another
   * thread or process (compilePortable), where checking it again would first compile the mapping language's own
   * schema (80 ms of an import process's start).
   */
  checked?: boolean;
}

export type MappingResult = { ok: true; value: Record<string, unknown> } | { ok: false; errors: MappingRunError[] };

export interface BatchResult {
  /** One entry per record: its value, or undefined when it failed (never a partial value). */
  values: (Record<string, unknown> | undefined)[];
  errors: MappingRunError[];
  failed: number;
}

export interface CompiledMapping {
  readonly id: string;
  /** Content hash of the document, the reused mappings it reaches, and the target schema. */
  readonly hash: string;
  readonly document: MappingDocument;
  /** The mappings it reuses (`use`), by id: what compiling it again elsewhere (a worker thread) needs. */
  readonly uses: ReadonlyMap<string, MappingDocument>;
  apply(record: unknown, index?: number): MappingResult;
  applyMany(records: readonly unknown[], startIndex?: number): BatchResult;
  /** The generated source, for debugging and tests. */
  readonly source: string;
}

/** A record fails with at most this many errors, so one broken record cannot flood a report. */
export const MAX_ERRORS_PER_RECORD = 100;
const MAX_CACHED = 1000;

type RunFn = (record: unknown, root: unknown, errors: MappingRunError[]) => Record<string, unknown>;
type Factory = (K: unknown[], F: StepFn[], U: RunFn[], H: Helpers) => RunFn;

interface Unit extends CompiledMapping {
  readonly run: RunFn;
}

const cache = new Map<string, Unit>();

/** Forgets every compiled mapping (for tests, or after a deploy changes schemas). */
export function clearMappingCache(): void {
  cache.clear();
}

function invalid(message: string, issues: MappingIssue[]): HubError {
  return new HubError('validation_failed', message, { errors: issues.map((i) => ({ field: i.path, code: i.code, message: i.message })) });
}

function recordError(recordIndex: number, targetPath: string, sourcePath: string | null, code: string, message: string): MappingRunError {
  return { recordIndex, targetPath, sourcePath, code, message };
}

function targetSchemaOf(doc: MappingDocument, schemaFor: SchemaFor): JsonSchema | undefined {
  const ref = doc.target.schema;
  if (ref === undefined) return undefined;
  const schema = typeof ref === 'string' ? schemaFor(ref) : ref;
  if (!schema) {
    throw invalid(`The target schema "${String(ref)}" is not known`, [
      { path: '/target/schema', code: 'schema_unknown', message: `No schema with id "${String(ref)}"` },
    ]);
  }
  return schema;
}

function compileUnit(doc: MappingDocument, options: CompileOptions, forReuse: boolean, stack: string[]): Unit {
  if (stack.includes(doc.id)) {
    throw invalid('Reused mappings form a cycle', [{ path: '', code: 'mapping_cycle', message: `Reused mappings form a cycle: ${[...stack, doc.id].join(' -> ')}` }]);
  }
  const problems = options.checked ? [] : checkDocument(doc);
  if (problems.length > 0) throw invalid(`The mapping "${String((doc as { id?: unknown }).id)}" is not valid`, problems);
  const reuse = resolveReuse(doc, options.resolve);
  if (reuse.issues.length > 0) throw invalid(`The mapping "${doc.id}" reuses mappings that cannot be used`, reuse.issues);
  const validateOutput = !forReuse && options.validateOutput !== false;
  const targetSchema = validateOutput ? targetSchemaOf(doc, options.schemaFor ?? registrySchemaFor) : undefined;
  const hash = sha256(
    canonicalJson({
      doc: hashMapping(doc),
      uses: [...reuse.docs].map(([id, d]) => [id, hashMapping(d)]).sort(),
      target: targetSchema === undefined ? null : hashMapping(targetSchema),
    }),
  );
  const cached = cache.get(hash);
  if (cached) return cached;

  const { ir, errors } = normalizeMapping(doc);
  if (!ir) throw invalid(`The mapping "${doc.id}" is not valid`, errors);
  const generated = generate(ir);
  const units = generated.uses.map((id) => compileUnit(reuse.docs.get(id)!, options, true, [...stack, doc.id]).run);
  assertInert(generated.source);
  // The source holds no text of the mapping (assertInert just proved it); all of it arrives as data through K.
  const factory = new Function('K', 'F', 'U', 'H', generated.source) as Factory;
  const run = factory(generated.consts, generated.fns, units, helpers);
  let validate: ValidateFunction | undefined;
  if (targetSchema !== undefined) {
    try {
      validate = validatorForSchema(doc.target.schema!, targetSchema);
    } catch (err) {
      throw invalid('The target schema cannot be compiled', [{ path: '/target/schema', code: 'schema_invalid', message: (err as Error).message }]);
    }
  }
  const unit = createUnit(doc, hash, generated.source, run, validate, ir.fields, reuse.docs);
  if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value!);
  cache.set(hash, unit);
  return unit;
}

function createUnit(
  doc: MappingDocument,
  hash: string,
  source: string,
  run: RunFn,
  validate: ValidateFunction | undefined,
  fields: FieldIR[],
  uses: ReadonlyMap<string, MappingDocument>,
): Unit {
  // One scratch list per compiled mapping: apply is synchronous and not re-entrant, so it is never shared live.
  const scratch: MappingRunError[] = [];
  const apply = (record: unknown, index = 0): MappingResult => {
    if (typeof record !== 'object' || record === null || Array.isArray(record)) {
      return { ok: false, errors: [recordError(index, '', '$', 'wrong_shape', `a record must be an object, found ${describeValue(record)}`)] };
    }
    const E = scratch;
    E.length = 0;
    let value: Record<string, unknown>;
    try {
      value = run(record, record, E);
    } catch (err) {
      E.length = 0;
      return { ok: false, errors: [recordError(index, '', null, 'mapping_failed', `the mapping failed unexpectedly: ${(err as Error)?.message ?? String(err)}`)] };
    }
    if (E.length > 0) {
      const errors = E.slice(0, MAX_ERRORS_PER_RECORD);
      E.length = 0;
      for (const e of errors) e.recordIndex = index;
      return { ok: false, errors };
    }
    if (validate !== undefined && !validate(value)) return { ok: false, errors: targetErrors(validate, fields, index) };
    return { ok: true, value };
  };
  // A copy: the caller may change its object later; the compiled function would not follow.
  const document = structuredClone(doc);
  return {
    id: doc.id,
    hash,
    document,
    uses,
    source,
    run,
    apply,
    applyMany(records, startIndex = 0) {
      const values: (Record<string, unknown> | undefined)[] = new Array(records.length);
      const errors: MappingRunError[] = [];
      let failed = 0;
      for (let i = 0; i < records.length; i++) {
        const r = apply(records[i], startIndex + i);
        if (r.ok) values[i] = r.value;
        else {
          failed++;
          for (const e of r.errors) errors.push(e);
        }
      }
      return { values, errors, failed };
    },
  };
}

/**
 * Compiles a mapping document (once per content: the same document, reused mappings and target schema give the
 * same instance). Throws a HubError `validation_failed`, with one entry per problem, when the document is not
 * valid, reuses an unknown id, has a cycle of reused mappings, or names a target schema that cannot be had.
 */
/** A compiled mapping as plain data (its document and the ones it reuses), to compile again in another thread or process. */
export interface PortableMapping {
  document: MappingDocument;
  uses: [string, MappingDocument][];
}

export function portableMapping(mapping: CompiledMapping): PortableMapping {
  return { document: mapping.document, uses: [...mapping.uses] };
}

/** Compiles a mapping handed over as plain data (portableMapping) again. */
export function compilePortable(portable: PortableMapping): CompiledMapping {
  const uses = new Map(portable.uses);
  return compileUnit(portable.document, { resolve: (id) => uses.get(id), checked: true }, false, []);
}

export function compileMapping(doc: unknown, options: CompileOptions = {}): CompiledMapping {
  const problems = checkDocument(doc);
  if (problems.length > 0) throw invalid('The mapping is not valid', problems);
  return compileUnit(doc as MappingDocument, options, false, []);
}
