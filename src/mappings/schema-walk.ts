// Reading JSON Schemas the way a mapping needs: which properties and items a path reaches (through $ref, allOf,
// anyOf, oneOf), which types a place allows, and which properties are required. Approximate where the full
// semantics would need an instance; it errs toward "allowed".
import { ajv, getSchema, type JsonSchema } from '../schemas/registry.ts';
import type { Segment } from './path.ts';
import type { JsonType } from './transforms.ts';

export type SchemaFor = (ref: string) => JsonSchema | undefined;

/** Resolves a schema id through the hub's registry; undefined when it is not registered. */
export const registrySchemaFor: SchemaFor = (ref) => {
  try {
    return getSchema(ref);
  } catch {
    return undefined;
  }
};

/** A schema and the document its local `$ref`s resolve in. */
export interface SchemaNode {
  schema: JsonSchema | boolean;
  root: JsonSchema;
}

const MAX_REF_DEPTH = 32;

function pointerGet(root: JsonSchema, pointer: string): unknown {
  let cur: unknown = root;
  for (const raw of pointer.split('/').slice(1)) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (typeof cur !== 'object' || cur === null || !Object.hasOwn(cur, key)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function deref(node: SchemaNode, depth = 0): SchemaNode | undefined {
  const s = node.schema;
  if (typeof s !== 'object' || typeof s.$ref !== 'string' || depth > MAX_REF_DEPTH) return node;
  const ref = s.$ref;
  let target: SchemaNode | undefined;
  if (ref.startsWith('#')) {
    const found = pointerGet(node.root, ref.slice(1));
    target = found === undefined ? undefined : { schema: found as JsonSchema, root: node.root };
  } else {
    const fn = ajv.getSchema(ref);
    const base = ref.split('#')[0]!;
    const rootFn = ajv.getSchema(base);
    target = fn ? { schema: fn.schema as JsonSchema, root: (rootFn?.schema as JsonSchema | undefined) ?? (fn.schema as JsonSchema) } : undefined;
  }
  return target && deref(target, depth + 1);
}

/** The node and every schema it is combined with ($ref, allOf, anyOf, oneOf), flattened. */
export function expand(node: SchemaNode, depth = 0): SchemaNode[] {
  const d = deref(node);
  if (!d || depth > MAX_REF_DEPTH) return [];
  const out = [d];
  if (typeof d.schema === 'object') {
    for (const key of ['allOf', 'anyOf', 'oneOf'] as const) {
      const list = d.schema[key];
      if (Array.isArray(list)) for (const s of list) out.push(...expand({ schema: s as JsonSchema, root: d.root }, depth + 1));
    }
  }
  return out;
}

export type StepResult =
  /** The segment is declared; its schemas. */
  | { kind: 'known'; nodes: SchemaNode[] }
  /** The schema allows it without describing it (additionalProperties true or a schema, no items, `{}`). */
  | { kind: 'open' }
  /** Not declared; `closed` when the schema forbids it (additionalProperties: false, or the wrong type). */
  | { kind: 'unknown'; closed: boolean };

function declaredTypes(s: JsonSchema): string[] | undefined {
  return typeof s.type === 'string' ? [s.type] : Array.isArray(s.type) ? (s.type as string[]) : undefined;
}

/** What one path segment (a property name or an index) reaches from `node`. */
export function stepInto(node: SchemaNode, seg: Segment): StepResult {
  const nodes = expand(node);
  const found: SchemaNode[] = [];
  let open = false;
  let closed = false;
  const want = typeof seg === 'number' ? 'array' : 'object';
  for (const n of nodes) {
    const s = n.schema;
    if (s === false) continue;
    if (s === true) {
      open = true;
      continue;
    }
    const types = declaredTypes(s);
    if (types && !types.includes(want)) {
      closed = true;
      continue;
    }
    if (typeof seg === 'number') {
      const prefix = Array.isArray(s.prefixItems) ? (s.prefixItems as JsonSchema[]) : [];
      if (seg >= 0 && seg < prefix.length) found.push({ schema: prefix[seg]!, root: n.root });
      else if (s.items !== undefined && s.items !== false) found.push({ schema: s.items as JsonSchema, root: n.root });
      else if (s.items === undefined && prefix.length === 0) open = true;
      continue;
    }
    const props = s.properties as Record<string, JsonSchema> | undefined;
    if (props && Object.hasOwn(props, seg)) {
      found.push({ schema: props[seg]!, root: n.root });
      continue;
    }
    const patterns = s.patternProperties as Record<string, JsonSchema> | undefined;
    const match = patterns && Object.entries(patterns).find(([p]) => new RegExp(p, 'u').test(seg));
    if (match) {
      found.push({ schema: match[1], root: n.root });
      continue;
    }
    if (s.additionalProperties === false || s.unevaluatedProperties === false) closed = true;
    else if (s.additionalProperties !== undefined) open = true;
    else if (!props && !patterns) open = true;
  }
  if (found.length > 0) return { kind: 'known', nodes: found };
  if (open && !closed) return { kind: 'open' };
  return { kind: 'unknown', closed };
}

/** The JSON types a schema allows, or undefined when it does not say. */
export function allowedTypes(node: SchemaNode): Set<JsonType> | undefined {
  let result: Set<JsonType> | undefined;
  const add = (types: Iterable<JsonType>) => {
    result ??= new Set();
    for (const t of types) result.add(t);
  };
  const d = deref(node);
  if (!d || typeof d.schema !== 'object') return undefined;
  const s = d.schema;
  const own = declaredTypes(s) as JsonType[] | undefined;
  if (own) add(own.includes('number') ? [...own, 'integer'] : own);
  for (const key of ['anyOf', 'oneOf'] as const) {
    if (!Array.isArray(s[key])) continue;
    const branches = (s[key] as JsonSchema[]).map((b) => allowedTypes({ schema: b, root: d.root }));
    if (branches.every((b) => b)) add(branches.flatMap((b) => [...b!]));
  }
  if (Array.isArray(s.allOf)) {
    for (const b of s.allOf as JsonSchema[]) {
      const t = allowedTypes({ schema: b, root: d.root });
      if (t && result) result = new Set([...result].filter((x) => t.has(x)));
      else if (t) result = t;
    }
  }
  return result;
}

/** Required property names of an object schema (its own and its allOf branches'). */
export function requiredOf(node: SchemaNode): string[] {
  const d = deref(node);
  if (!d || typeof d.schema !== 'object') return [];
  const own = Array.isArray(d.schema.required) ? (d.schema.required as string[]) : [];
  const fromAll = Array.isArray(d.schema.allOf) ? (d.schema.allOf as JsonSchema[]).flatMap((b) => requiredOf({ schema: b, root: d.root })) : [];
  return [...new Set([...own, ...fromAll])];
}
