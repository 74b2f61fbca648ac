// validateMapping: everything that can be known about a mapping before it runs, as errors (it must not be saved)
// and warnings (it may be, but probably should not), each with a JSON pointer into the document.
import { HubError } from '../errors.ts';
import type { JsonSchema } from '../schemas/registry.ts';
import { compileMapping, type CompileOptions } from './compile.ts';
import type { MappingDocument, MappingSide } from './document.ts';
import { checkDocument } from './document-check.ts';
import type { MappingIssue } from './ir.ts';
import { normalizeMapping } from './normalize.ts';
import { pointerJoin } from './pointer.ts';
import { resolveReuse, type ResolveMapping } from './reuse.ts';
import { deepEqual } from './runtime.ts';
import { checkSourcePaths, checkTargetFields, type Report } from './schema-checks.ts';
import { registrySchemaFor, type SchemaFor, type SchemaNode } from './schema-walk.ts';
import { validatorForSchema } from './target-check.ts';

export interface ValidateOptions {
  resolve?: ResolveMapping;
  schemaFor?: SchemaFor;
  /** Run the document's `examples` when everything else is valid (default true). */
  runExamples?: boolean;
}

export interface MappingValidation {
  valid: boolean;
  errors: MappingIssue[];
  warnings: MappingIssue[];
}

function sideSchema(side: MappingSide, pointer: string, schemaFor: SchemaFor, report: Report): SchemaNode | undefined {
  const ref = side.schema;
  if (ref === undefined) return undefined;
  const schema: JsonSchema | undefined = typeof ref === 'string' ? schemaFor(ref) : ref;
  if (!schema) {
    report.errors.push({ path: pointer, code: 'schema_unknown', message: `No schema with id ${JSON.stringify(ref)}` });
    return undefined;
  }
  try {
    validatorForSchema(ref, schema);
  } catch (err) {
    report.errors.push({ path: pointer, code: 'schema_invalid', message: `The schema cannot be compiled: ${(err as Error).message}` });
    return undefined;
  }
  return { schema, root: schema };
}

function firstDifference(actual: unknown, expected: unknown, at = ''): string {
  if (deepEqual(actual, expected)) return '';
  if (typeof actual === 'object' && typeof expected === 'object' && actual && expected && !Array.isArray(actual) && !Array.isArray(expected)) {
    const keys = new Set([...Object.keys(actual), ...Object.keys(expected)]);
    for (const k of keys) {
      const d = firstDifference((actual as Record<string, unknown>)[k], (expected as Record<string, unknown>)[k], pointerJoin(at, k));
      if (d) return d;
    }
  }
  return `${at || 'the record'}: got ${JSON.stringify(actual) ?? 'nothing'}, expected ${JSON.stringify(expected) ?? 'nothing'}`;
}

function runExamples(doc: MappingDocument, options: CompileOptions, report: Report): void {
  let compiled;
  try {
    compiled = compileMapping(doc, options);
  } catch (err) {
    report.errors.push({ path: '', code: 'compile_failed', message: (err as Error).message });
    return;
  }
  (doc.examples ?? []).forEach((example, i) => {
    const path = pointerJoin('/examples', i);
    const result = compiled.apply(example.input, i);
    if (example.errors) {
      const got = result.ok ? [] : result.errors.map((e) => e.code);
      const missing = example.errors.filter((c) => !got.includes(c));
      if (result.ok || missing.length > 0) {
        const message = result.ok ? `expected errors ${example.errors.join(', ')}, but the record mapped` : `expected errors ${missing.join(', ')}, got ${got.join(', ')}`;
        report.errors.push({ path, code: 'example_mismatch', message: `Example ${i}: ${message}` });
      }
      return;
    }
    if (!result.ok) {
      const e = result.errors[0]!;
      report.errors.push({ path, code: 'example_mismatch', message: `Example ${i} failed at ${e.targetPath || 'the record'}: ${e.code}: ${e.message}` });
    } else if (Object.hasOwn(example, 'output') && !deepEqual(result.value, example.output)) {
      report.errors.push({ path, code: 'example_mismatch', message: `Example ${i}: ${firstDifference(result.value, example.output)}` });
    }
  });
}

/**
 * Validates a mapping document before it is saved or used: the mapping schema, the language's rules (operators,
 * transforms, paths, options), reused mappings (found, valid, no cycles), source paths against the source schema,
 * fields, types and required fields against the target schema, and finally the document's own examples.
 */
export function validateMapping(doc: unknown, options: ValidateOptions = {}): MappingValidation {
  const structural = checkDocument(doc);
  if (structural.length > 0) return { valid: false, errors: structural, warnings: [] };
  const d = doc as MappingDocument;
  const { ir, errors, warnings } = normalizeMapping(d);
  const report: Report = { errors: [...errors], warnings: [...warnings] };
  const reuse = resolveReuse(d, options.resolve);
  report.errors.push(...reuse.issues);
  const schemaFor = options.schemaFor ?? registrySchemaFor;
  const source = sideSchema(d.source, '/source/schema', schemaFor, report);
  const target = sideSchema(d.target, '/target/schema', schemaFor, report);
  if (ir && source) checkSourcePaths(ir.fields, source, report);
  if (ir && target && reuse.issues.length === 0) checkTargetFields(ir.fields, [target], '/fields', { docs: reuse.docs }, report);
  if (report.errors.length === 0 && d.examples?.length && options.runExamples !== false) {
    runExamples(d, { resolve: options.resolve, schemaFor }, report);
  }
  return { valid: report.errors.length === 0, errors: report.errors, warnings: report.warnings };
}

/** validateMapping for an API: throws HubError `validation_failed` (one FieldError per error) unless valid. */
export function assertValidMapping(doc: unknown, options: ValidateOptions = {}): MappingValidation {
  const result = validateMapping(doc, options);
  if (!result.valid) {
    const errors = result.errors.map((e) => ({ field: e.path || '/', code: e.code, message: e.message }));
    throw new HubError('validation_failed', 'The mapping is not valid', { errors });
  }
  return result;
}
