// Writes the JavaScript of a compiled mapping from its IR. The source holds only generated identifiers, numeric
// indexes into the constants array K, and fixed keywords: every name, path segment, pattern and constant of the
// mapping stays data, passed in through K (checked by assertInert before anything is compiled).
import type { MissingPolicy } from './document.ts';
import type { CondIR, ElementIR, ExprIR, FieldIR, MappingIR, ValueIR } from './ir.ts';
import { pointerJoin } from './pointer.ts';
import type { ParsedPath } from './path.ts';
import type { StepFn } from './coerce.ts';

/** What a run-time error needs to say where it happened. */
export interface Site {
  targetPath: string;
  sourcePath: string | null;
  path?: ParsedPath;
}

export interface Generated {
  /** Body of `function (K, F, U, H)` that returns the mapping's run function. */
  source: string;
  consts: unknown[];
  fns: StepFn[];
  /** Ids of reused mappings, in the order of U. */
  uses: string[];
}

interface Frame {
  cur: string;
  root: string;
}

/** Helpers the generated code takes from H (see runtime.ts). */
export const HELPERS = [
  'BAD', 'SHAPE', 'isArr', 'hasOwn', 'clone', 'toText', 'deepEq', 'matchText', 'inList', 'defineField',
  'failShape', 'failValue', 'failMissing', 'failNotArray', 'failElementMissing', 'rebaseEach', 'rebaseUse',
] as const;

/** Names inherited from Object.prototype: read as own properties only, so `__proto__` never walks to a prototype. */
function inherited(name: string): boolean {
  return name in Object.prototype || name === '__proto__';
}

class Gen {
  readonly consts: unknown[] = [];
  readonly fns: StepFn[] = [];
  readonly uses: string[] = [];
  readonly functions: string[] = [];
  private readonly constIndex = new Map<unknown, number>();
  private counter = 0;

  k(value: unknown): string {
    const shareable = typeof value === 'string' || typeof value === 'number';
    let i = shareable ? this.constIndex.get(value) : undefined;
    if (i === undefined) {
      i = this.consts.push(value) - 1;
      if (shareable) this.constIndex.set(value, i);
    }
    return `k${i}`;
  }

  f(fn: StepFn): string {
    return `f${this.fns.push(fn) - 1}`;
  }

  u(id: string): string {
    let i = this.uses.indexOf(id);
    if (i < 0) i = this.uses.push(id) - 1;
    return `u${i}`;
  }

  v(): string {
    return `v${this.counter++}`;
  }

  /** Reads `path` into the already declared `into`; a wrong shape on the way gives SHAPE. */
  get(out: string[], path: ParsedPath, frame: Frame, into: string): void {
    out.push(`${into} = ${path.scope === 'root' ? frame.root : frame.cur};`);
    let close = '';
    for (const seg of path.segments) {
      const key = this.k(seg);
      if (typeof seg === 'number') {
        const read = seg < 0 ? `${into}[${into}.length + ${key}]` : `${into}[${key}]`;
        out.push(`if (${into} != null) { if (!isArr(${into})) ${into} = SHAPE; else { ${into} = ${read};`);
      } else {
        const read = inherited(seg) ? `hasOwn(${into}, ${key}) ? ${into}[${key}] : undefined` : `${into}[${key}]`;
        out.push(`if (${into} != null) { if (typeof ${into} !== 'object' || isArr(${into})) ${into} = SHAPE; else { ${into} = ${read};`);
      }
      close += '}}';
    }
    if (close) out.push(close);
  }

  /** Reads a path and reports a wrong shape at once; `into` is missing (undefined) afterwards in that case. */
  getChecked(out: string[], path: ParsedPath, frame: Frame, into: string, targetPath: string): void {
    this.get(out, path, frame, into);
    const site: Site = { targetPath, sourcePath: path.text, path };
    out.push(`if (${into} === SHAPE) { failShape(E, ${this.k(site)}, ${frame.cur}, ${frame.root}); ${into} = undefined; }`);
  }

  /** Evaluates a condition into a new boolean variable, whose name it returns. */
  cond(out: string[], c: CondIR, frame: Frame): string {
    const name = this.v();
    switch (c.kind) {
      case 'all':
      case 'any': {
        out.push(`let ${name} = ${c.kind === 'all' ? 'false' : 'true'};`);
        let close = '';
        c.items.forEach((item, i) => {
          const inner: string[] = [];
          const r = this.cond(inner, item, frame);
          out.push(...inner);
          const last = i === c.items.length - 1;
          if (c.kind === 'all') out.push(last ? `if (${r}) ${name} = true;` : `if (${r}) {`);
          else out.push(last ? `if (!${r}) ${name} = false;` : `if (!${r}) {`);
          if (!last) close += '}';
        });
        if (close) out.push(close);
        return name;
      }
      case 'not': {
        const r = this.cond(out, c.item, frame);
        out.push(`const ${name} = !${r};`);
        return name;
      }
      default: {
        const value = this.v();
        out.push(`let ${value};`);
        this.get(out, c.path, frame, value);
        out.push(`if (${value} === SHAPE) ${value} = undefined;`);
        if (c.kind === 'exists') out.push(`const ${name} = ${c.exists ? '' : '!'}(${value} != null);`);
        else if (c.kind === 'matches') out.push(`const ${name} = matchText(${this.k(c.regex)}, ${value});`);
        else if (c.kind === 'in') out.push(`const ${name} = inList(${this.k(c.values)}, ${value});`);
        else if (typeof c.value === 'object' && c.value !== null) out.push(`const ${name} = deepEq(${value}, ${this.k(c.value)});`);
        else out.push(`const ${name} = ${value} === ${this.k(c.value)};`);
        return name;
      }
    }
  }

  /** A JSON constant: objects are copied per record so that no two outputs share one. */
  constant(value: unknown): string {
    if (value === undefined) return 'undefined';
    return typeof value === 'object' && value !== null ? `clone(${this.k(value)})` : this.k(value);
  }

  /**
   * Emits a value rule into the declared variable `into`. With a policy (a target field) a missing value becomes
   * the default, or omitted (undefined), null, or an error; without one (a part of another rule) it stays undefined.
   */
  value(out: string[], v: ValueIR, frame: Frame, into: string, targetPath: string, policy: MissingPolicy | undefined): void {
    const site = this.k({ targetPath, sourcePath: v.sourcePath } satisfies Site);
    const body: string[] = [];
    this.expr(body, v.expr, frame, into, targetPath);
    if (v.when) {
      const c = this.cond(out, v.when, frame);
      out.push(`if (${c}) {`, ...body, '}');
    } else out.push(...body);
    const fns = [...v.steps.map((s) => s.fn), ...(v.coerce ? [v.coerce] : [])];
    let missing = v.hasDefault ? `${into} = ${this.constant(v.default)};` : `${into} = undefined;`;
    if (!v.hasDefault && policy === 'null') missing = `${into} = null;`;
    if (!v.hasDefault && policy === 'error') missing = `failMissing(E, ${site}); ${into} = undefined;`;
    if (fns.length > 0) {
      const call = fns.reduce((acc, fn) => `${this.f(fn)}(${acc})`, into);
      out.push(`if (${into} != null) ${into} = ${call};`);
      out.push(`if (${into} === BAD) { failValue(E, ${site}); ${into} = undefined; } else if (${into} == null) { ${missing} }`);
    } else if (v.expr.kind !== 'const' || v.when || v.expr.value === undefined) {
      // A constant null is written as null; everywhere else null from the source counts as missing.
      out.push(`if (${into} == null) { ${missing} }`);
    }
  }

  expr(out: string[], e: ExprIR, frame: Frame, into: string, targetPath: string): void {
    switch (e.kind) {
      case 'path': {
        this.getChecked(out, e.paths[0]!, frame, into, targetPath);
        for (const p of e.paths.slice(1)) {
          out.push(`if (${into} == null) {`);
          this.getChecked(out, p, frame, into, targetPath);
          out.push('}');
        }
        return;
      }
      case 'const':
        out.push(`${into} = ${this.constant(e.value)};`);
        return;
      case 'concat':
        return this.concat(out, e, frame, into, targetPath);
      case 'cases': {
        let close = '';
        for (const c of e.cases) {
          const r = this.cond(out, c.when, frame);
          out.push(`if (${r}) {`);
          this.value(out, c.then, frame, into, targetPath, undefined);
          out.push('} else {');
          close += '}';
        }
        if (e.otherwise) this.value(out, e.otherwise, frame, into, targetPath, undefined);
        out.push(close);
        return;
      }
      case 'object': {
        if (!e.base) return this.fields(out, e.fields, frame, into, targetPath);
        const base = this.v();
        out.push(`let ${base};`);
        this.getChecked(out, e.base, frame, base, targetPath);
        out.push(`if (${base} != null) {`);
        this.fields(out, e.fields, { cur: base, root: frame.root }, into, targetPath);
        out.push('}');
        return;
      }
      case 'use': {
        const site = this.k({ targetPath, sourcePath: e.base?.text ?? '$' } satisfies Site);
        const unit = this.u(e.id);
        let arg = frame.cur;
        if (e.base) {
          arg = this.v();
          out.push(`let ${arg};`);
          this.getChecked(out, e.base, frame, arg, targetPath);
        }
        const mark = this.v();
        out.push(`if (${arg} != null) { const ${mark} = E.length; ${into} = ${unit}(${arg}, ${arg}, E); if (E.length !== ${mark}) rebaseUse(E, ${mark}, ${site}); }`);
        return;
      }
      case 'each':
        return this.each(out, e, frame, into, targetPath);
    }
  }

  concat(out: string[], e: Extract<ExprIR, { kind: 'concat' }>, frame: Frame, into: string, targetPath: string): void {
    const parts: string[] = [];
    for (const part of e.parts) {
      if (typeof part === 'string') {
        parts.push(this.k(part));
        continue;
      }
      const p = this.v();
      out.push(`let ${p};`);
      this.value(out, part, frame, p, targetPath, undefined);
      const site = this.k({ targetPath, sourcePath: part.sourcePath } satisfies Site);
      out.push(`${p} = toText(${p}); if (${p} === BAD) { failValue(E, ${site}); ${p} = undefined; }`);
      parts.push(p);
    }
    const vars = parts.filter((p) => p.startsWith('v'));
    if (e.strict) {
      const present = vars.map((p) => `${p} !== undefined`).join(' && ') || 'true';
      out.push(`${into} = ${present} ? ${parts.join(' + ')} : undefined;`);
      return;
    }
    const sep = this.k(e.separator);
    out.push(`${into} = undefined;`);
    for (const p of parts) {
      out.push(`if (${p} !== undefined) ${into} = ${into} === undefined ? ${p} : ${into} + ${sep} + ${p};`);
    }
  }

  each(out: string[], e: Extract<ExprIR, { kind: 'each' }>, frame: Frame, into: string, targetPath: string): void {
    const site = this.k({ targetPath, sourcePath: e.path.text, path: e.path } satisfies Site);
    const arr = this.v();
    const list = this.v();
    const i = this.v();
    const el = this.v();
    const mark = this.v();
    const ev = this.v();
    // The position an element would have in the output (filtered elements do not count): errors report it even
    // when earlier elements failed and so never reached the output.
    const pos = this.v();
    out.push(`let ${arr};`);
    this.getChecked(out, e.path, frame, arr, targetPath);
    out.push(`if (${arr} != null) { if (!isArr(${arr})) failNotArray(E, ${site}, ${arr}); else {`);
    out.push(`const ${list} = [];`, `let ${pos} = -1;`, `for (let ${i} = 0; ${i} < ${arr}.length; ${i}++) {`, `const ${el} = ${arr}[${i}];`);
    const elFrame: Frame = { cur: el, root: frame.root };
    if (e.filter) {
      const c = this.cond(out, e.filter, elFrame);
      out.push(`if (!${c}) continue;`);
    }
    out.push(`${pos}++;`, `const ${mark} = E.length;`);
    out.push(`let ${ev} = ${this.element(e.element, frame.root, el)};`);
    if (e.element.kind === 'use') {
      const useSite = this.k({ targetPath: '', sourcePath: '$' } satisfies Site);
      out.push(`if (E.length !== ${mark}) rebaseUse(E, ${mark}, ${useSite});`);
    }
    out.push(`if (E.length !== ${mark}) { rebaseEach(E, ${mark}, ${site}, ${pos}, ${i}); continue; }`);
    const onMissing =
      e.missing === 'null' ? `${ev} = null;` : e.missing === 'error' ? `failElementMissing(E, ${site}, ${pos}, ${i}); continue;` : 'continue;';
    out.push(`if (${ev} == null) { ${onMissing} }`);
    if (e.flatten) {
      const j = this.v();
      out.push(`if (isArr(${ev})) { for (let ${j} = 0; ${j} < ${ev}.length; ${j}++) ${list}.push(${ev}[${j}]); } else ${list}.push(${ev});`);
    } else out.push(`${list}.push(${ev});`);
    out.push('}', `${into} = ${list};`, '}}');
  }

  /** The expression giving one element's value: the element itself, or a call of its own generated function. */
  element(element: ElementIR, root: string, el: string): string {
    if (element.kind === 'copy') return el;
    if (element.kind === 'use') return `${this.u(element.id)}(${el}, ${el}, E)`;
    const name = `e${this.functions.length}`;
    this.functions.push('');
    const body: string[] = [];
    const result = this.v();
    body.push(`let ${result};`);
    const frame = { cur: 'r', root: 'root' };
    if (element.kind === 'object') this.fields(body, element.fields, frame, result, '');
    else this.value(body, element.value, frame, result, '', undefined);
    this.functions[Number(name.slice(1))] = `function ${name}(r, root, E) {\n${body.join('\n')}\nreturn ${result};\n}`;
    return `${name}(${el}, ${root}, E)`;
  }

  /** Builds an object from fields into `into`: one literal up to the first field that may be left out. */
  fields(out: string[], fields: FieldIR[], frame: Frame, into: string, prefix: string): void {
    const vars = fields.map((field) => {
      const name = this.v();
      out.push(`let ${name};`);
      this.value(out, field, frame, name, pointerJoin(prefix, field.name), field.missing);
      return name;
    });
    const mayOmit = (f: FieldIR) => !f.hasDefault && f.missing === 'omit' && !(f.expr.kind === 'const' && f.expr.value !== undefined && !f.when);
    let n = fields.findIndex(mayOmit);
    if (n < 0) n = fields.length;
    // Computed keys: a field named `__proto__` becomes an own property, never the prototype.
    const entries = fields.map((f, i) => `[${this.k(f.name)}]: ${vars[i]}`);
    if (n === fields.length) {
      out.push(`${into} = { ${entries.join(', ')} };`);
      return;
    }
    // Usually every field is present: then one literal gives every record the same shape, and the slow path
    // below (fields added one by one) is for records with gaps.
    const present = fields.flatMap((f, i) => (mayOmit(f) ? [`${vars[i]} !== undefined`] : [])).join(' && ');
    out.push(`if (${present}) ${into} = { ${entries.join(', ')} }; else {`);
    out.push(`${into} = { ${entries.slice(0, n).join(', ')} };`);
    for (let i = n; i < fields.length; i++) {
      const f = fields[i]!;
      const key = this.k(f.name);
      const set = f.name === '__proto__' ? `defineField(${into}, ${key}, ${vars[i]});` : `${into}[${key}] = ${vars[i]};`;
      out.push(mayOmit(f) ? `if (${vars[i]} !== undefined) ${set}` : set);
    }
    out.push('}');
  }
}

/** The generated source of a mapping and the data it needs. */
export function generate(ir: MappingIR): Generated {
  const gen = new Gen();
  const body: string[] = [];
  const result = gen.v();
  body.push(`let ${result};`);
  gen.fields(body, ir.fields, { cur: 'r', root: 'root' }, result, '');
  const prologue = [
    `const ${HELPERS.map((h) => `${h} = H.${h}`).join(', ')};`,
    ...gen.consts.map((_, i) => `const k${i} = K[${i}];`),
    ...gen.fns.map((_, i) => `const f${i} = F[${i}];`),
    ...gen.uses.map((_, i) => `const u${i} = U[${i}];`),
  ];
  const source = [
    "'use strict';",
    ...prologue,
    ...gen.functions,
    `return function run(r, root, E) {\n${body.join('\n')}\nreturn ${result};\n};`,
  ].join('\n');
  return { source, consts: gen.consts, fns: gen.fns, uses: gen.uses };
}
