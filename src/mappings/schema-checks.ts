// Save-time checks of a mapping against its schemas: source paths the source schema does not have, target fields
// the target schema does not have, rule types that do not fit, and required target fields nothing fills.
import type { MappingDocument } from './document.ts';
import { outputTypes, type CondIR, type FieldIR, type MappingIssue, type ValueIR } from './ir.ts';
import { normalizeMapping } from './normalize.ts';
import { formatPath, type ParsedPath } from './path.ts';
import { pointerJoin } from './pointer.ts';
import { allowedTypes, requiredOf, stepInto, type SchemaNode } from './schema-walk.ts';
import type { JsonType } from './transforms.ts';

export interface Report {
  errors: MappingIssue[];
  warnings: MappingIssue[];
}

type Walk = { kind: 'known'; nodes: SchemaNode[] } | { kind: 'open' } | { kind: 'unknown'; at: number; closed: boolean };

/** Follows a path's segments through a schema. */
export function walkPath(start: SchemaNode[], segments: readonly (string | number)[]): Walk {
  let nodes = start;
  for (let i = 0; i < segments.length; i++) {
    const next: SchemaNode[] = [];
    let open = false;
    let closed = true;
    for (const n of nodes) {
      const r = stepInto(n, segments[i]!);
      if (r.kind === 'known') next.push(...r.nodes);
      else if (r.kind === 'open') open = true;
      else closed &&= r.closed;
    }
    if (next.length === 0) return open ? { kind: 'open' } : { kind: 'unknown', at: i, closed };
    nodes = next;
  }
  return { kind: 'known', nodes };
}

interface Scope {
  current: SchemaNode[] | undefined;
  root: SchemaNode[];
}

/** Checks every source path of `fields` against the source schema. */
export function checkSourcePaths(fields: FieldIR[], schema: SchemaNode, report: Report): void {
  const check = (path: ParsedPath, scope: Scope, pointer: string): SchemaNode[] | undefined => {
    const start = path.scope === 'root' ? scope.root : scope.current;
    if (!start) return undefined;
    const w = walkPath(start, path.segments);
    if (w.kind === 'known') return w.nodes;
    if (w.kind === 'unknown') {
      const where = w.at === 0 ? (path.scope === 'root' ? 'the record' : 'here') : formatPath(path.scope, path.segments.slice(0, w.at));
      const issue = {
        path: pointer,
        code: 'source_path_unknown',
        message: `The source schema has no ${JSON.stringify(String(path.segments[w.at]))} at ${where} (path ${path.text})`,
      };
      (w.closed ? report.errors : report.warnings).push(issue);
    }
    return undefined;
  };
  const cond = (c: CondIR, scope: Scope, pointer: string): void => {
    if ('items' in c) c.items.forEach((item) => cond(item, scope, pointer));
    else if ('item' in c) cond(c.item, scope, pointer);
    else check(c.path, scope, pointer);
  };
  const value = (v: ValueIR, scope: Scope): void => {
    if (v.when) cond(v.when, scope, pointerJoin(v.pointer, 'when'));
    const e = v.expr;
    switch (e.kind) {
      case 'path':
        e.paths.forEach((p) => check(p, scope, v.pointer));
        return;
      case 'concat':
        e.parts.forEach((p) => typeof p !== 'string' && value(p, scope));
        return;
      case 'cases':
        e.cases.forEach((c) => {
          cond(c.when, scope, v.pointer);
          value(c.then, scope);
        });
        if (e.otherwise) value(e.otherwise, scope);
        return;
      case 'object': {
        const current = e.base ? check(e.base, scope, v.pointer) : scope.current;
        e.fields.forEach((f) => value(f, { current, root: scope.root }));
        return;
      }
      case 'use':
        if (e.base) check(e.base, scope, v.pointer);
        return;
      case 'each': {
        const arrays = check(e.path, scope, v.pointer);
        const items = arrays && walkPath(arrays, [0]);
        const element: Scope = { current: items?.kind === 'known' ? items.nodes : undefined, root: scope.root };
        if (e.filter) cond(e.filter, element, pointerJoin(v.pointer, 'filter'));
        if (e.element.kind === 'object') e.element.fields.forEach((f) => value(f, element));
        if (e.element.kind === 'value') value(e.element.value, element);
        return;
      }
      case 'const':
        return;
    }
  };
  fields.forEach((f) => value(f, { current: [schema], root: [schema] }));
}

function fits(out: JsonType, allowed: Set<JsonType>): boolean {
  return allowed.has(out) || (out === 'integer' && allowed.has('number'));
}

function mayBeMissing(f: FieldIR): boolean {
  return f.missing === 'omit' && !f.hasDefault && !(f.expr.kind === 'const' && f.expr.value !== undefined && !f.when);
}

export interface TargetContext {
  /** Reused mappings by id (already resolved and checked for cycles). */
  docs: Map<string, MappingDocument>;
}

/** Checks `fields` (which build one object) against the target schema at `nodes`. */
export function checkTargetFields(fields: FieldIR[], nodes: SchemaNode[], pointer: string, ctx: TargetContext, report: Report, depth = 0): void {
  if (depth > 16) return;
  for (const f of fields) {
    const w = walkPath(nodes, [f.name]);
    if (w.kind === 'unknown') {
      const issue = { path: f.pointer, code: 'target_field_unknown', message: `The target schema has no field ${JSON.stringify(f.name)}` };
      (w.closed ? report.errors : report.warnings).push(issue);
      continue;
    }
    if (w.kind === 'known') checkTargetValue(f, w.nodes, ctx, report, depth, f.missing === 'null' && mayBeMissing({ ...f, missing: 'omit' }));
  }
  const names = new Set(fields.map((f) => f.name));
  for (const n of nodes) {
    for (const req of requiredOf(n)) {
      const field = fields.find((f) => f.name === req);
      if (!names.has(req)) {
        report.errors.push({ path: pointer, code: 'target_required_unfilled', message: `The target requires ${JSON.stringify(req)}, which no field fills` });
      } else if (field && mayBeMissing(field)) {
        report.warnings.push({
          path: field.pointer,
          code: 'target_required_may_be_missing',
          message: `The target requires ${JSON.stringify(req)}, but its value can be missing and is then omitted: give it a default or set missing to error`,
        });
      }
    }
  }
}

function checkTargetValue(v: ValueIR, nodes: SchemaNode[], ctx: TargetContext, report: Report, depth: number, canBeNull: boolean): void {
  const allowed = allowedTypes(nodes[0]!);
  const out = outputTypes(v);
  if (allowed && out) {
    const types = canBeNull ? [...out, 'null' as const] : out;
    const bad = [...new Set(types.filter((t) => !fits(t, allowed)))];
    if (bad.length > 0) {
      const message = `The rule gives ${bad.join(' or ')}, but the target field allows ${[...allowed].join(' or ')}`;
      const issue = { path: v.pointer, code: 'type_mismatch', message };
      (bad.length === new Set(types).size ? report.errors : report.warnings).push(issue);
    }
  }
  const e = v.expr;
  if (e.kind === 'object') checkTargetFields(e.fields, nodes, pointerJoin(v.pointer, 'fields'), ctx, report, depth + 1);
  if (e.kind === 'use') checkReused(e.id, nodes, v.pointer, ctx, report, depth);
  if (e.kind === 'each') {
    const items = walkPath(nodes, [0]);
    if (items.kind !== 'known') return;
    if (e.element.kind === 'object') checkTargetFields(e.element.fields, items.nodes, pointerJoin(v.pointer, 'fields'), ctx, report, depth + 1);
    if (e.element.kind === 'value') checkTargetValue(e.element.value, items.nodes, ctx, report, depth + 1, false);
    if (e.element.kind === 'use') checkReused(e.element.id, items.nodes, v.pointer, ctx, report, depth);
  }
}

function checkReused(id: string, nodes: SchemaNode[], pointer: string, ctx: TargetContext, report: Report, depth: number): void {
  const doc = ctx.docs.get(id);
  const ir = doc && normalizeMapping(doc).ir;
  if (!ir) return;
  // Problems inside the reused mapping are its own; here only whether it fills what this place requires.
  const inner: Report = { errors: [], warnings: [] };
  checkTargetFields(ir.fields, nodes, pointer, ctx, inner, depth + 1);
  for (const issue of inner.errors) report.errors.push({ ...issue, path: pointer, message: `${issue.message} (in reused mapping "${id}")` });
  for (const issue of inner.warnings) report.warnings.push({ ...issue, path: pointer, message: `${issue.message} (in reused mapping "${id}")` });
}
