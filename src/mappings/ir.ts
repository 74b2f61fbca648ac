// The checked, parsed form of a mapping document that the code generator and the validator both walk.
import type { StepFn } from './coerce.ts';
import type { MissingPolicy, ValueType } from './document.ts';
import type { ParsedPath } from './path.ts';
import type { JsonType, MadeStep } from './transforms.ts';

/** A problem found in a mapping document: a JSON pointer into the document, a stable code and a sentence. */
export interface MappingIssue {
  path: string;
  code: string;
  message: string;
}

export type CondIR =
  | { kind: 'equals'; path: ParsedPath; value: unknown }
  | { kind: 'exists'; path: ParsedPath; exists: boolean }
  | { kind: 'matches'; path: ParsedPath; regex: RegExp }
  | { kind: 'in'; path: ParsedPath; values: unknown[] }
  | { kind: 'all' | 'any'; items: CondIR[] }
  | { kind: 'not'; item: CondIR };

export type ElementIR =
  | { kind: 'copy' }
  | { kind: 'object'; fields: FieldIR[] }
  | { kind: 'value'; value: ValueIR }
  | { kind: 'use'; id: string };

export type ExprIR =
  | { kind: 'path'; paths: ParsedPath[] }
  | { kind: 'const'; value: unknown }
  /** Template (strict: any missing part makes the whole missing; text parts are literal) or concat. */
  | { kind: 'concat'; parts: (string | ValueIR)[]; separator: string; strict: boolean }
  | { kind: 'cases'; cases: { when: CondIR; then: ValueIR }[]; otherwise: ValueIR | undefined }
  | { kind: 'object'; base: ParsedPath | undefined; fields: FieldIR[] }
  | { kind: 'each'; path: ParsedPath; element: ElementIR; filter: CondIR | undefined; flatten: boolean; missing: MissingPolicy }
  | { kind: 'use'; base: ParsedPath | undefined; id: string };

export interface ValueIR {
  /** JSON pointer of the rule in the mapping document. */
  pointer: string;
  expr: ExprIR;
  when: CondIR | undefined;
  steps: MadeStep[];
  coerce: StepFn | undefined;
  type: ValueType | undefined;
  hasDefault: boolean;
  default: unknown;
  /** The source path shown in run-time errors, or null when the value does not come from one. */
  sourcePath: string | null;
}

export interface FieldIR extends ValueIR {
  name: string;
  missing: MissingPolicy;
}

export interface MappingIR {
  id: string;
  fields: FieldIR[];
  /** Every `use` in the document, with where it is. */
  uses: { id: string; pointer: string }[];
}

/** The JSON types a value rule can give, or undefined when that depends on the record. */
export function outputTypes(v: ValueIR): JsonType[] | undefined {
  let types: JsonType[] | undefined;
  if (v.type) types = [v.type === 'integer' ? 'integer' : v.type === 'number' ? 'number' : v.type === 'boolean' ? 'boolean' : 'string'];
  else if (v.steps.length > 0) types = v.steps[v.steps.length - 1]!.output;
  else types = exprTypes(v);
  if (types && v.hasDefault) types = [...types, typeOfJson(v.default)];
  return types;
}

function typeOfJson(value: unknown): JsonType {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value as JsonType;
}

function exprTypes(v: ValueIR): JsonType[] | undefined {
  const e = v.expr;
  switch (e.kind) {
    case 'const':
      return e.value === undefined ? [] : [typeOfJson(e.value)];
    case 'concat':
      return ['string'];
    case 'object':
    case 'use':
      return ['object'];
    case 'each':
      return ['array'];
    case 'cases': {
      const all: JsonType[] = [];
      for (const branch of [...e.cases.map((c) => c.then), ...(e.otherwise ? [e.otherwise] : [])]) {
        const t = outputTypes(branch);
        if (!t) return undefined;
        all.push(...t);
      }
      return all;
    }
    case 'path':
      return undefined;
  }
}
