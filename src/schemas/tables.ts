// Table layouts derived from the table schemas: the columns, their storage kinds, indexes and id prefixes.
// The SQLite DDL, the Appwrite tables in appwrite.json and the API representations all start here.
import { COMMON_SCHEMA, TABLE_SCHEMAS, type JsonSchema } from './registry.ts';

export type ColumnKind = 'text' | 'integer' | 'real' | 'boolean' | 'json';

export interface ColumnSpec {
  name: string;
  kind: ColumnKind;
  nullable: boolean;
  required: boolean;
  /** Never leaves the store through the API (hashes, ciphertexts). */
  private: boolean;
  maxLength?: number;
  enum?: string[];
  format?: string;
  /** For array columns, the JSON type of the elements when the schema fixes it. */
  itemType?: string;
}

export interface IndexSpec {
  fields: string[];
  unique: boolean;
}

export interface TableSpec {
  name: string;
  schemaId: string;
  title: string;
  idPrefix: string;
  workspaceScoped: boolean;
  columns: ColumnSpec[];
  columnsByName: Map<string, ColumnSpec>;
  indexes: IndexSpec[];
  schema: JsonSchema;
}

interface TableAnnotation {
  name: string;
  idPrefix: string;
  workspaceScoped: boolean;
  indexes: { fields: string[]; unique?: boolean }[];
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SYSTEM_FIELDS = ['id', 'version', 'createdAt', 'updatedAt'];

function resolveRef(ref: string, common: JsonSchema): JsonSchema {
  const m = /^(?:hub:common)?#\/\$defs\/(\w+)$/.exec(ref);
  const defs = common.$defs as Record<string, JsonSchema>;
  let found = m ? defs[m[1]!] : undefined;
  if (!found) throw new Error(`Table schemas may only reference hub:common definitions, not ${ref}`);
  // one level of local references inside common (`scopes` → `scope`)
  if (typeof found.$ref === 'string' && found.$ref.startsWith('#/$defs/')) found = { ...defs[found.$ref.slice(8)], ...found };
  return found;
}

function columnOf(name: string, prop: JsonSchema, required: boolean, common: JsonSchema): ColumnSpec {
  const resolved = typeof prop.$ref === 'string' ? { ...resolveRef(prop.$ref, common), ...prop } : prop;
  const types = ([] as string[]).concat((resolved.type as string | string[] | undefined) ?? 'object');
  const nonNull = types.filter((t) => t !== 'null');
  if (nonNull.length !== 1) throw new Error(`Column ${name} must have exactly one non-null type`);
  const t = nonNull[0]!;
  const kind: ColumnKind =
    t === 'string' ? 'text' : t === 'integer' ? 'integer' : t === 'number' ? 'real' : t === 'boolean' ? 'boolean' : 'json';
  const col: ColumnSpec = { name, kind, nullable: types.includes('null'), required, private: resolved['x-hub-private'] === true };
  if (typeof resolved.maxLength === 'number') col.maxLength = resolved.maxLength;
  if (Array.isArray(resolved.enum)) col.enum = resolved.enum as string[];
  if (typeof resolved.format === 'string') col.format = resolved.format;
  if (t === 'array') {
    let items = resolved.items as JsonSchema | undefined;
    if (items && typeof items.$ref === 'string') items = resolveRef(items.$ref, common);
    col.itemType = items && typeof items.type === 'string' ? items.type : 'unknown';
  }
  return col;
}

export function deriveTableSpec(schema: JsonSchema, common: JsonSchema): TableSpec {
  const ann = schema['x-hub-table'] as TableAnnotation | undefined;
  if (!ann || !IDENT.test(ann.name)) throw new Error(`${String(schema.$id)} lacks a valid x-hub-table annotation`);
  const props = schema.properties as Record<string, JsonSchema>;
  const required = new Set((schema.required as string[]) ?? []);
  for (const f of SYSTEM_FIELDS) {
    if (!props[f] || !required.has(f)) throw new Error(`${ann.name}: system field ${f} must be declared and required`);
  }
  if (ann.workspaceScoped && !required.has('workspaceId')) throw new Error(`${ann.name}: a workspace-scoped table needs workspaceId`);
  const columns = Object.entries(props).map(([name, prop]) => {
    if (!IDENT.test(name)) throw new Error(`${ann.name}: column name ${name} is not an identifier`);
    return columnOf(name, prop, required.has(name), common);
  });
  const columnsByName = new Map(columns.map((c) => [c.name, c]));
  for (const idx of ann.indexes) {
    for (const f of idx.fields) if (!columnsByName.has(f)) throw new Error(`${ann.name}: index on unknown column ${f}`);
  }
  return {
    name: ann.name,
    schemaId: String(schema.$id),
    title: String(schema.title),
    idPrefix: ann.idPrefix,
    workspaceScoped: ann.workspaceScoped,
    columns,
    columnsByName,
    indexes: ann.indexes.map((i) => ({ fields: i.fields, unique: i.unique === true })),
    schema,
  };
}

export const TABLE_SPECS: ReadonlyMap<string, TableSpec> = new Map(
  TABLE_SCHEMAS.map((schema) => {
    const spec = deriveTableSpec(schema, COMMON_SCHEMA);
    return [spec.name, spec] as const;
  }),
);

export function tableSpec(name: string): TableSpec {
  const spec = TABLE_SPECS.get(name);
  if (!spec) throw new Error(`Unknown table ${name}`);
  return spec;
}
