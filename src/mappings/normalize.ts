// Turns a mapping document (already valid against schemas/mapping.schema.json) into the checked IR, collecting
// every semantic problem with a JSON pointer: bad paths, conflicting sources, options that do not fit the type,
// bad patterns and time zones, constants and defaults that cannot be coerced.
import { makeCoercer, type CoerceSpec } from './coerce.ts';
import type { Condition, MappingDocument, MissingPolicy, Rule, ValueRule } from './document.ts';
import { BAD, lastReason } from './failure.ts';
import type { CondIR, ElementIR, ExprIR, FieldIR, MappingIR, MappingIssue, ValueIR } from './ir.ts';
import { parsePath, parseTemplate, type ParsedPath } from './path.ts';
import { pointerJoin } from './pointer.ts';
import { makeStep } from './transforms.ts';

interface Ctx {
  errors: MappingIssue[];
  warnings: MappingIssue[];
  uses: { id: string; pointer: string }[];
}

function path(ctx: Ctx, text: string, pointer: string): ParsedPath | undefined {
  const parsed = parsePath(text);
  if (parsed.ok) return parsed.path;
  ctx.errors.push({ path: pointer, code: 'bad_path', message: `The path ${JSON.stringify(text)} ${parsed.message}` });
  return undefined;
}

const OPTION_TYPES: Record<string, string[]> = {
  scale: ['decimal'],
  rounding: ['decimal', 'integer'],
  decimalSeparator: ['integer', 'number', 'decimal'],
  groupSeparator: ['integer', 'number', 'decimal'],
  formats: ['date-time'],
  timeZone: ['date-time'],
  trueValues: ['boolean'],
  falseValues: ['boolean'],
};

export function normalizeCondition(ctx: Ctx, cond: Condition, pointer: string): CondIR | undefined {
  const combinators = (['all', 'any', 'not'] as const).filter((k) => cond[k] !== undefined);
  const tests = (['equals', 'exists', 'matches', 'in'] as const).filter((k) => Object.hasOwn(cond, k));
  if (combinators.length + (cond.path !== undefined ? 1 : 0) !== 1 || (cond.path !== undefined && tests.length !== 1)) {
    ctx.errors.push({
      path: pointer,
      code: 'rule_conflict',
      message: 'A condition is either `path` with exactly one of equals, exists, matches, in; or exactly one of all, any, not',
    });
    return undefined;
  }
  if (cond.all || cond.any) {
    const list = (cond.all ?? cond.any)!;
    const items = list.map((c, i) => normalizeCondition(ctx, c, pointerJoin(pointer, cond.all ? 'all' : 'any', i)));
    return items.every((c) => c) ? { kind: cond.all ? 'all' : 'any', items: items as CondIR[] } : undefined;
  }
  if (cond.not) {
    const item = normalizeCondition(ctx, cond.not, pointerJoin(pointer, 'not'));
    return item && { kind: 'not', item };
  }
  const p = path(ctx, cond.path!, pointerJoin(pointer, 'path'));
  if (!p) return undefined;
  switch (tests[0]) {
    case 'equals':
      return { kind: 'equals', path: p, value: cond.equals };
    case 'exists':
      return { kind: 'exists', path: p, exists: cond.exists! };
    case 'in':
      return { kind: 'in', path: p, values: cond.in! };
    default:
      try {
        return { kind: 'matches', path: p, regex: new RegExp(cond.matches!, cond.ignoreCase ? 'iu' : 'u') };
      } catch (err) {
        ctx.errors.push({ path: pointerJoin(pointer, 'matches'), code: 'bad_pattern', message: `Not a valid regular expression: ${(err as Error).message}` });
        return undefined;
      }
  }
}

/** Which of the rule's keys give it its value, as the combinations the language allows. */
function sourceOf(ctx: Ctx, rule: ValueRule, pointer: string): string | undefined {
  const has = (k: keyof ValueRule) => Object.hasOwn(rule, k);
  const primary = (['const', 'template', 'concat', 'cases', 'each'] as const).filter(has);
  const shaping = (['fields', 'use'] as const).filter(has);
  const conflict = (message: string): undefined => {
    ctx.errors.push({ path: pointer, code: 'rule_conflict', message });
    return undefined;
  };
  if (primary.length > 1) return conflict(`A rule has one source, not ${primary.join(' and ')}`);
  const first = primary[0];
  if (first && has('from')) return conflict(`A rule has one source, not from and ${first}`);
  if (first && first !== 'each' && shaping.length > 0) return conflict(`${shaping[0]} cannot be combined with ${first}`);
  if (shaping.length > 1) return conflict('A rule has fields or use, not both');
  if (has('value') && first !== 'each') return conflict('`value` belongs with `each`');
  if (first === 'each' && has('value') && shaping.length > 0) return conflict(`With each, give one of fields, use or value, not ${shaping[0]} and value`);
  for (const k of ['filter', 'flatten'] as const) if (has(k) && first !== 'each') return conflict(`\`${k}\` belongs with \`each\``);
  if (has('separator') && first !== 'concat') return conflict('`separator` belongs with `concat`');
  if (has('else') && first !== 'cases') return conflict('`else` belongs with `cases`');
  if (first) return first;
  if (shaping[0]) return shaping[0];
  if (has('from')) return 'from';
  return conflict('A rule needs a source: one of from, const, template, concat, cases, each, fields, use');
}

function checkOptions(ctx: Ctx, rule: ValueRule, pointer: string): boolean {
  let ok = true;
  for (const [option, types] of Object.entries(OPTION_TYPES)) {
    if (!Object.hasOwn(rule, option)) continue;
    if (!rule.type || !types.includes(rule.type)) {
      ctx.errors.push({ path: pointerJoin(pointer, option), code: 'rule_conflict', message: `\`${option}\` applies only with type ${types.join(' or ')}` });
      ok = false;
    }
  }
  return ok;
}

function pipeline(v: ValueIR, value: unknown): unknown {
  let x = value;
  for (const step of v.steps) x = step.fn(x);
  return v.coerce ? v.coerce(x) : x;
}

function elementOf(ctx: Ctx, rule: ValueRule, pointer: string, policy: MissingPolicy): ElementIR | undefined {
  if (rule.fields) {
    const fields = normalizeFields(ctx, rule.fields, pointerJoin(pointer, 'fields'), policy);
    return fields && { kind: 'object', fields };
  }
  if (rule.use !== undefined) {
    ctx.uses.push({ id: rule.use, pointer: pointerJoin(pointer, 'use') });
    return { kind: 'use', id: rule.use };
  }
  if (rule.value !== undefined) {
    const value = normalizeValue(ctx, rule.value, pointerJoin(pointer, 'value'), policy);
    return value && { kind: 'value', value };
  }
  return { kind: 'copy' };
}

function exprOf(ctx: Ctx, rule: ValueRule, pointer: string, policy: MissingPolicy): { expr: ExprIR; sourcePath: string | null } | undefined {
  const source = sourceOf(ctx, rule, pointer);
  if (!source) return undefined;
  const at = (k: string) => pointerJoin(pointer, k);
  const froms = rule.from === undefined ? [] : Array.isArray(rule.from) ? rule.from : [rule.from];
  const paths = froms.map((f, i) => path(ctx, f, Array.isArray(rule.from) ? pointerJoin(pointer, 'from', i) : at('from')));
  if (paths.some((p) => !p)) return undefined;
  const base = paths[0];
  if ((source === 'fields' || source === 'use') && paths.length > 1) {
    ctx.errors.push({ path: at('from'), code: 'rule_conflict', message: `With ${source}, \`from\` is one path` });
    return undefined;
  }
  switch (source) {
    case 'from':
      return { expr: { kind: 'path', paths: paths as ParsedPath[] }, sourcePath: paths.map((p) => p!.text).join(' | ') };
    case 'const':
      return { expr: { kind: 'const', value: rule.const }, sourcePath: null };
    case 'template': {
      const t = parseTemplate(rule.template!);
      if (!t.ok) {
        ctx.errors.push({ path: at('template'), code: 'bad_path', message: `The template ${t.message}` });
        return undefined;
      }
      const parts = t.parts.map((p): string | ValueIR =>
        'text' in p ? p.text : plainValue(at('template'), { kind: 'path', paths: [p.path] }, p.path.text),
      );
      const sources = t.parts.flatMap((p) => ('path' in p ? [p.path.text] : []));
      return { expr: { kind: 'concat', parts, separator: '', strict: true }, sourcePath: sources.join(', ') || null };
    }
    case 'concat': {
      const parts = rule.concat!.map((r, i) => normalizeValue(ctx, r, pointerJoin(pointer, 'concat', i), policy));
      if (parts.some((p) => !p)) return undefined;
      const sources = (parts as ValueIR[]).flatMap((p) => (p.sourcePath ? [p.sourcePath] : []));
      return { expr: { kind: 'concat', parts: parts as ValueIR[], separator: rule.separator ?? '', strict: false }, sourcePath: sources.join(', ') || null };
    }
    case 'cases': {
      const cases = rule.cases!.map((c, i) => ({
        when: normalizeCondition(ctx, c.when, pointerJoin(pointer, 'cases', i, 'when')),
        then: normalizeValue(ctx, c.then, pointerJoin(pointer, 'cases', i, 'then'), policy),
      }));
      const otherwise = rule.else === undefined ? undefined : normalizeValue(ctx, rule.else, at('else'), policy);
      if (cases.some((c) => !c.when || !c.then) || (rule.else !== undefined && !otherwise)) return undefined;
      return { expr: { kind: 'cases', cases: cases as { when: CondIR; then: ValueIR }[], otherwise }, sourcePath: null };
    }
    case 'each': {
      const p = path(ctx, rule.each!, at('each'));
      const filter = rule.filter ? normalizeCondition(ctx, rule.filter, at('filter')) : undefined;
      const element = elementOf(ctx, rule, pointer, policy);
      if (!p || !element || (rule.filter && !filter)) return undefined;
      return { expr: { kind: 'each', path: p, element, filter, flatten: rule.flatten === true, missing: policy }, sourcePath: p.text };
    }
    case 'fields': {
      const fields = normalizeFields(ctx, rule.fields!, at('fields'), policy);
      return fields && { expr: { kind: 'object', base, fields }, sourcePath: base?.text ?? null };
    }
    default:
      ctx.uses.push({ id: rule.use!, pointer: at('use') });
      return { expr: { kind: 'use', base, id: rule.use! }, sourcePath: base?.text ?? null };
  }
}

function plainValue(pointer: string, expr: ExprIR, sourcePath: string | null): ValueIR {
  return { pointer, expr, when: undefined, steps: [], coerce: undefined, type: undefined, hasDefault: false, default: undefined, sourcePath };
}

export function normalizeValue(ctx: Ctx, rule: Rule, pointer: string, policy: MissingPolicy): ValueIR | undefined {
  if (typeof rule === 'string') {
    const p = path(ctx, rule, pointer);
    return p && plainValue(pointer, { kind: 'path', paths: [p] }, p.text);
  }
  const made = exprOf(ctx, rule, pointer, rule.missing ?? policy);
  const when = rule.when ? normalizeCondition(ctx, rule.when, pointerJoin(pointer, 'when')) : undefined;
  let ok = made !== undefined && (!rule.when || when !== undefined);
  const v = made ? plainValue(pointer, made.expr, made.sourcePath) : undefined;
  (rule.transform ?? []).forEach((step, i) => {
    const s = makeStep(step);
    if (s.ok) v?.steps.push(s.value);
    else {
      ctx.errors.push({ path: pointerJoin(pointer, 'transform', i), code: s.code ?? 'bad_option', message: s.message });
      ok = false;
    }
  });
  if (!checkOptions(ctx, rule, pointer)) ok = false;
  if (rule.type && v) {
    const c = makeCoercer(rule as CoerceSpec);
    if (c.ok) {
      v.coerce = c.value;
      v.type = rule.type;
    } else {
      ctx.errors.push({ path: pointer, code: c.code ?? 'bad_option', message: c.message });
      ok = false;
    }
  }
  if (!ok || !v) return undefined;
  v.when = when;
  if (v.expr.kind === 'const' && (v.steps.length > 0 || v.coerce)) {
    // Constants go through their pipeline once, here, so that a bad one is reported when the mapping is saved.
    const value = pipeline(v, v.expr.value);
    if (value === BAD) {
      ctx.errors.push({ path: pointerJoin(pointer, 'const'), code: 'bad_constant', message: `The constant ${lastReason().message}` });
      return undefined;
    }
    v.expr = { kind: 'const', value };
    v.steps = [];
    v.coerce = undefined;
  }
  if (Object.hasOwn(rule, 'default')) {
    const value = v.coerce ? v.coerce(rule.default) : rule.default;
    if (value === BAD || value === undefined) {
      const why = value === BAD ? lastReason().message : 'is empty';
      ctx.errors.push({ path: pointerJoin(pointer, 'default'), code: 'bad_default', message: `The default ${why}` });
      return undefined;
    }
    v.hasDefault = true;
    v.default = value;
  }
  return v;
}

function normalizeFields(ctx: Ctx, fields: Record<string, Rule>, pointer: string, policy: MissingPolicy): FieldIR[] | undefined {
  const out: FieldIR[] = [];
  let ok = true;
  for (const [name, rule] of Object.entries(fields)) {
    const fieldPolicy = (typeof rule === 'object' && rule.missing) || policy;
    const v = normalizeValue(ctx, rule, pointerJoin(pointer, name), fieldPolicy);
    if (v) out.push({ ...v, name, missing: fieldPolicy });
    else ok = false;
  }
  return ok ? out : undefined;
}

/** The IR of a document that passed the mapping schema, with every semantic error and warning found. */
export function normalizeMapping(doc: MappingDocument): { ir: MappingIR | undefined; errors: MappingIssue[]; warnings: MappingIssue[] } {
  const ctx: Ctx = { errors: [], warnings: [], uses: [] };
  const fields = normalizeFields(ctx, doc.fields, '/fields', doc.missing ?? 'omit');
  const ir = fields && ctx.errors.length === 0 ? { id: doc.id, fields, uses: ctx.uses } : undefined;
  return { ir, errors: ctx.errors, warnings: ctx.warnings };
}
