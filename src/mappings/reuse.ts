// Reuse of mappings by id (`use`): finding every reused mapping a document reaches, and refusing ids that cannot
// be found, documents that are not valid, and cycles (A uses B uses A), before anything is compiled.
import type { MappingDocument, Rule } from './document.ts';
import { checkDocument } from './document-check.ts';
import type { MappingIssue } from './ir.ts';
import { pointerJoin } from './pointer.ts';

export type ResolveMapping = (id: string) => MappingDocument | undefined;

/** Every `use` in a (schema-valid) document, with its JSON pointer. */
export function collectUses(doc: MappingDocument): { id: string; pointer: string }[] {
  const out: { id: string; pointer: string }[] = [];
  const rule = (r: Rule | undefined, at: string): void => {
    if (r === undefined || typeof r === 'string') return;
    if (r.use !== undefined) out.push({ id: r.use, pointer: pointerJoin(at, 'use') });
    if (r.fields) fields(r.fields, pointerJoin(at, 'fields'));
    r.concat?.forEach((c, i) => rule(c, pointerJoin(at, 'concat', i)));
    r.cases?.forEach((c, i) => rule(c.then, pointerJoin(at, 'cases', i, 'then')));
    rule(r.else, pointerJoin(at, 'else'));
    rule(r.value, pointerJoin(at, 'value'));
  };
  const fields = (f: Record<string, Rule>, at: string): void => {
    for (const [name, r] of Object.entries(f)) rule(r, pointerJoin(at, name));
  };
  fields(doc.fields, '/fields');
  return out;
}

export interface ResolvedReuse {
  /** Every mapping reached through `use`, by id. */
  docs: Map<string, MappingDocument>;
  issues: MappingIssue[];
}

/** Resolves the reused mappings `doc` reaches; problems deeper down are reported at the `use` in `doc` that leads there. */
export function resolveReuse(doc: MappingDocument, resolve: ResolveMapping | undefined): ResolvedReuse {
  const docs = new Map<string, MappingDocument>();
  const issues: MappingIssue[] = [];
  const seen = new Set<string>();
  const report = (issue: MappingIssue) => {
    const key = `${issue.path}|${issue.code}|${issue.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      issues.push(issue);
    }
  };
  const visit = (d: MappingDocument, chain: string[], top: string | undefined): void => {
    for (const use of collectUses(d)) {
      const at = top ?? use.pointer;
      const via = chain.length > 1 ? ` (reached through ${chain.slice(1).join(' -> ')})` : '';
      if (chain.includes(use.id)) {
        report({ path: at, code: 'mapping_cycle', message: `Reused mappings form a cycle: ${[...chain, use.id].join(' -> ')}` });
        continue;
      }
      if (docs.has(use.id)) continue;
      const found = resolve?.(use.id);
      if (!found) {
        report({ path: at, code: 'mapping_not_found', message: `There is no mapping with id "${use.id}"${via}` });
        continue;
      }
      const problems = checkDocument(found);
      if (problems.length > 0) {
        report({ path: at, code: 'mapping_invalid', message: `The reused mapping "${use.id}" is not valid${via}: ${problems[0]!.message}` });
        continue;
      }
      docs.set(use.id, found);
      visit(found, [...chain, use.id], at);
    }
  };
  visit(doc, [doc.id], undefined);
  return { docs, issues };
}
