// Checks a mapping document against schemas/mapping.schema.json and names each problem in the language's terms:
// an unknown key in a rule is an unknown operator, an unknown step an unknown transform.
import { validatorFor } from '../schemas/registry.ts';
import { toFieldErrors } from '../schemas/validate.ts';
import type { MappingDocument } from './document.ts';
import type { MappingIssue } from './ir.ts';

const UNKNOWN_TRANSFORM = { code: 'unknown_transform', message: 'is not a known transform' };

function classify(path: string, keyword: string): { code: string; message?: string } {
  if (keyword === 'additionalProperties') {
    if (/\/transform\/\d+\/[^/]+$/.test(path)) return UNKNOWN_TRANSFORM;
    if (/\/transform\/\d+\/[^/]+\/.+$/.test(path)) return { code: 'bad_option', message: 'is not a parameter of this transform' };
    if (path.startsWith('/fields/')) return { code: 'unknown_operator', message: 'is not an operator of the mapping language' };
    return { code: 'unknown_property' };
  }
  if (keyword === 'enum' && /\/transform\/\d+$/.test(path)) return UNKNOWN_TRANSFORM;
  if (keyword === 'maxProperties' && /\/transform\/\d+$/.test(path)) {
    return { code: 'rule_conflict', message: 'has more than one transform: write one step per transform' };
  }
  if (keyword === 'type') return { code: 'wrong_type' };
  return { code: keyword === 'required' ? 'required' : 'schema_violation' };
}

/** Mappings nest rules in rules; past this depth a document is refused before anything recurses into it. */
export const MAX_DOCUMENT_DEPTH = 64;

/** Whether a JSON value nests deeper than `limit`, measured without recursion. */
function deeperThan(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > limit) return true;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

/** The document's problems against the mapping schema (empty when it conforms). */
export function checkDocument(doc: unknown): MappingIssue[] {
  if (deeperThan(doc, MAX_DOCUMENT_DEPTH)) {
    return [{ path: '', code: 'too_deep', message: `The mapping nests deeper than ${MAX_DOCUMENT_DEPTH} levels` }];
  }
  const validate = validatorFor('hub:mapping');
  if (validate(doc)) return [];
  const seen = new Set<string>();
  const issues: MappingIssue[] = [];
  for (const e of toFieldErrors(validate.errors)) {
    const path = e.field === '/' ? '' : e.field;
    const { code, message } = classify(path, e.code);
    // A rule that is neither text nor an object fails both branches of the schema: one problem, said once.
    if (seen.has(`${path}|${code}`)) continue;
    seen.add(`${path}|${code}`);
    issues.push({ path, code, message: `${path || 'The mapping'} ${message ?? e.message}` });
  }
  return issues;
}

export function isMappingDocument(doc: unknown): doc is MappingDocument {
  return checkDocument(doc).length === 0;
}
