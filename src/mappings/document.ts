// The mapping document as TypeScript types: the same language schemas/mapping.schema.json defines for ajv.
import type { JsonSchema } from '../schemas/registry.ts';

export type MissingPolicy = 'omit' | 'null' | 'error';
export type RoundingMode = 'half-up' | 'half-even' | 'half-down' | 'up' | 'down' | 'ceiling' | 'floor';
export type ValueType = 'string' | 'integer' | 'number' | 'decimal' | 'boolean' | 'date-time';

export interface MappingSide {
  name: string;
  /** A registered schema's id, or an inline JSON Schema. */
  schema?: string | JsonSchema;
}

export interface MappingExample {
  description?: string;
  input: unknown;
  output?: unknown;
  errors?: string[];
}

export interface MappingDocument {
  $schema?: string;
  id: string;
  version?: number;
  title?: string;
  description?: string;
  source: MappingSide;
  target: MappingSide;
  missing?: MissingPolicy;
  fields: Record<string, Rule>;
  examples?: MappingExample[];
}

/** A path string is shorthand for `{ from: path }`. */
export type Rule = string | ValueRule;

export interface ValueRule {
  description?: string;
  from?: string | string[];
  const?: unknown;
  template?: string;
  concat?: Rule[];
  separator?: string;
  cases?: { when: Condition; then: Rule }[];
  else?: Rule;
  fields?: Record<string, Rule>;
  use?: string;
  each?: string;
  value?: Rule;
  filter?: Condition;
  flatten?: boolean;
  when?: Condition;
  transform?: Step[];
  type?: ValueType;
  scale?: number;
  rounding?: RoundingMode;
  decimalSeparator?: '.' | ',';
  groupSeparator?: string;
  formats?: string[];
  timeZone?: string;
  trueValues?: string[];
  falseValues?: string[];
  default?: unknown;
  missing?: MissingPolicy;
}

export interface Condition {
  description?: string;
  path?: string;
  equals?: unknown;
  exists?: boolean;
  matches?: string;
  ignoreCase?: boolean;
  in?: unknown[];
  all?: Condition[];
  any?: Condition[];
  not?: Condition;
}

export type StepName = 'trim' | 'toMinor' | 'fromMinor' | 'parseDate';

export interface StepObject {
  trim?: 'both' | 'start' | 'end';
  case?: 'lower' | 'upper' | 'title';
  round?: number | { scale: number; mode?: RoundingMode };
  multiply?: number | string;
  split?: string | { separator: string; trim?: boolean; removeEmpty?: boolean };
  join?: string;
  pad?: { length: number; char?: string; side?: 'start' | 'end' };
  toMinor?: number | { scale?: number; mode?: RoundingMode };
  fromMinor?: number | { scale?: number };
  parseDate?: { formats?: string[]; timeZone?: string };
  formatDate?: string | { pattern: string; timeZone?: string };
  lookup?: { table: Record<string, unknown>; fallback?: unknown; ignoreCase?: boolean };
  replace?: { find: string; with: string };
}

export type Step = StepName | StepObject;

/** Keys of a rule object that give it its value; exactly one (or `fields`/`use`, optionally with `from`). */
export const SOURCE_KEYS = ['from', 'const', 'template', 'concat', 'cases', 'each', 'fields', 'use'] as const;
