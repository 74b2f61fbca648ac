// Appwrite queries: the JSON node-appwrite's Query class writes, checked and run the way Appwrite 1.8.1 runs them on
// MariaDB (utopia-php/database 3.5.0: Query::parse, Validator/Query/*, Database::find, Adapter/SQL::find).
import { foldText, parseDatetime } from './columns.ts';
import { fail } from './errors.ts';

export interface Query {
  method: string;
  attribute: string;
  values: unknown[];
}

/** `sequence` is `$sequence`: an integer that queries may also give as a digit string (utopia's Sequence validator). */
export type FieldKind = 'string' | 'integer' | 'float' | 'boolean' | 'datetime' | 'sequence';

export interface Field {
  kind: FieldKind;
  array: boolean;
  /** Covered by a fulltext index, so `search` may use it. */
  fulltext?: boolean;
}

export type Schema = Map<string, Field>;
export type Item = Record<string, unknown>;

export interface Plan {
  filters: Query[];
  selects: string[] | null;
  orders: { attribute: string; desc: boolean }[];
  limit: number;
  offset: number;
  cursor: { id: string; before: boolean } | null;
}

/** Every method node-appwrite 27's Query class can produce; anything else is not a query an SDK sends. */
const SDK_METHODS = new Set([
  'equal', 'notEqual', 'regex', 'lessThan', 'lessThanEqual', 'greaterThan', 'greaterThanEqual', 'isNull', 'isNotNull',
  'exists', 'notExists', 'between', 'startsWith', 'endsWith', 'select', 'search', 'orderDesc', 'orderAsc', 'orderRandom',
  'cursorAfter', 'cursorBefore', 'limit', 'offset', 'contains', 'containsAny', 'containsAll', 'notContains', 'notSearch',
  'notBetween', 'notStartsWith', 'notEndsWith', 'or', 'and', 'elemMatch', 'distanceEqual', 'distanceNotEqual',
  'distanceGreaterThan', 'distanceLessThan', 'vectorDot', 'vectorCosine', 'vectorEuclidean', 'intersects',
  'notIntersects', 'crosses', 'notCrosses', 'overlaps', 'notOverlaps', 'touches', 'notTouches',
]);
const NESTED = new Set(['or', 'and', 'elemMatch']);
const FILTERS = new Set([
  'equal', 'notEqual', 'lessThan', 'lessThanEqual', 'greaterThan', 'greaterThanEqual', 'isNull', 'isNotNull', 'between',
  'notBetween', 'startsWith', 'notStartsWith', 'endsWith', 'notEndsWith', 'contains', 'notContains', 'search', 'notSearch',
  'or', 'and',
]);
/** APP_DATABASE_QUERY_MAX_VALUES in Appwrite 1.8.1 app/init/constants.php. */
const MAX_VALUES = 500;
/** APP_LIMIT_COUNT: list totals stop counting here. */
export const COUNT_LIMIT = 5000;

/** Why a query string could not have come from node-appwrite's Query class, or null if it could. */
export function queryFormatProblem(raw: string): string | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return `query is not JSON: ${raw.slice(0, 80)}`;
  }
  return shapeProblem(parsed);
}

function shapeProblem(q: unknown): string | null {
  if (!q || typeof q !== 'object' || Array.isArray(q)) return 'query is not a JSON object';
  const { method, attribute, values, ...rest } = q as Record<string, unknown>;
  if (Object.keys(rest).length > 0) return `query has unknown keys ${Object.keys(rest).join(', ')}`;
  if (typeof method !== 'string' || !SDK_METHODS.has(method)) return `unknown query method ${JSON.stringify(method)}`;
  if (attribute !== undefined && typeof attribute !== 'string') return 'query attribute is not a string';
  if (values !== undefined && !Array.isArray(values)) return 'query values is not an array';
  if (NESTED.has(method)) for (const v of (values as unknown[] | undefined) ?? []) {
    const problem = shapeProblem(v);
    if (problem) return problem;
  }
  return null;
}

function toQuery(q: Record<string, unknown>): Query {
  const values = (q.values as unknown[] | undefined) ?? [];
  return {
    method: String(q.method),
    attribute: (q.attribute as string | undefined) ?? '',
    values: NESTED.has(String(q.method)) ? values.map((v) => toQuery(v as Record<string, unknown>)) : values,
  };
}

/** Parses `queries`; a malformed one answers general_query_invalid like Query::parseQueries. */
export function parseQueries(raw: string[]): Query[] {
  return raw.map((text) => {
    const problem = queryFormatProblem(text);
    if (problem) fail('general_query_invalid', `Invalid query: ${problem}`);
    return toQuery(JSON.parse(text) as Record<string, unknown>);
  });
}

const invalid = (message: string): never => fail('general_query_invalid', `Invalid query: ${message}`);

/**
 * Checks queries against the fields like utopia's Documents validator and groups them. `allowed` limits the
 * kinds of query (a get-row takes only `select`).
 */
export function planQueries(queries: Query[], schema: Schema, allowed: 'all' | 'select' = 'all'): Plan {
  const plan: Plan = { filters: [], selects: null, orders: [], limit: 25, offset: 0, cursor: null };
  let limit: number | null = null;
  let offset: number | null = null;
  for (const q of queries) {
    if (allowed === 'select' && q.method !== 'select') invalid(`Invalid query method: ${q.method}`);
    switch (q.method) {
      case 'select': {
        const names = q.values.map(String);
        if (names.length === 0) invalid('No attributes selected');
        if (new Set(names).size !== names.length) invalid('Duplicate attributes selected');
        for (const name of names) if (name !== '*' && !schema.has(name) && !name.startsWith('$')) invalid(`Attribute not found in schema: ${name}`);
        plan.selects = [...(plan.selects ?? []), ...names];
        break;
      }
      case 'limit':
      case 'offset': {
        const n = q.values[0];
        const min = q.method === 'limit' ? 1 : 0;
        if (typeof n !== 'number' || !Number.isInteger(n) || n < min) invalid(`Invalid ${q.method}: Value must be a valid range between ${min} and ${Number.MAX_SAFE_INTEGER}`);
        // Database::groupByType keeps the first limit and the first offset.
        if (q.method === 'limit') limit ??= n as number;
        else offset ??= n as number;
        break;
      }
      case 'cursorAfter':
      case 'cursorBefore': {
        const id = q.values[0];
        if (typeof id !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,35}$/.test(id)) invalid('Invalid cursor: Cursor must contain at most 36 chars. Valid chars are a-z, A-Z, 0-9, and underscore. Can\'t start with a leading underscore');
        plan.cursor ??= { id: id as string, before: q.method === 'cursorBefore' };
        break;
      }
      case 'orderAsc':
      case 'orderDesc': {
        const attribute = q.attribute || '$sequence';
        if (!schema.has(attribute)) invalid(`Attribute not found in schema: ${attribute}`);
        plan.orders.push({ attribute, desc: q.method === 'orderDesc' });
        break;
      }
      default:
        checkFilter(q, schema);
        plan.filters.push(q);
    }
  }
  plan.limit = limit ?? 25;
  plan.offset = offset ?? 0;
  return plan;
}

function checkFilter(q: Query, schema: Schema): void {
  if (!FILTERS.has(q.method)) invalid(`Invalid query method: ${q.method}`);
  if (q.method === 'or' || q.method === 'and') {
    const children = q.values as Query[];
    if (children.some((c) => !FILTERS.has(c.method))) invalid(`${cap(q.method)} queries can only contain filter queries`);
    if (children.length < 2) invalid(`${cap(q.method)} queries require at least two queries`);
    for (const child of children) checkFilter(child, schema);
    return;
  }
  const field = schema.get(q.attribute);
  if (!field) invalid(`Attribute not found in schema: ${q.attribute}`);
  const count = q.values.length;
  if (['equal', 'contains', 'notContains'].includes(q.method) && count === 0) invalid(`${cap(q.method)} queries require at least one value.`);
  if (['between', 'notBetween'].includes(q.method) && count !== 2) invalid(`${cap(q.method)} queries require exactly two values.`);
  if (!['equal', 'contains', 'notContains', 'between', 'notBetween', 'isNull', 'isNotNull'].includes(q.method) && count !== 1) {
    invalid(`${cap(q.method)} queries require exactly one value.`);
  }
  if (count > MAX_VALUES) invalid(`Query on attribute has greater than ${MAX_VALUES} values: ${q.attribute}`);
  for (const value of q.values) if (!valueFits(field!, value)) invalid(`Query value is invalid for attribute "${q.attribute}"`);
  if ((q.method === 'contains' || q.method === 'notContains') && !field!.array && field!.kind !== 'string') {
    invalid(`Cannot query ${q.method} on attribute "${q.attribute}" because it is not an array, string, or object.`);
  }
  if (field!.array && !['contains', 'notContains', 'isNull', 'isNotNull'].includes(q.method)) {
    invalid(`Cannot query ${q.method} on attribute "${q.attribute}" because it is an array.`);
  }
  if ((q.method === 'search' || q.method === 'notSearch') && !field!.fulltext) {
    invalid(`Searching by attribute "${q.attribute}" requires a fulltext index.`);
  }
}

function valueFits(field: Field, value: unknown): boolean {
  switch (field.kind) {
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'sequence':
      return (typeof value === 'number' && Number.isInteger(value)) || (typeof value === 'string' && /^\d+$/.test(value));
    case 'float':
      return typeof value === 'number' && Number.isFinite(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'datetime':
      return parseDatetime(value) !== null;
    default:
      return typeof value === 'string';
  }
}

function cap(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** A comparable form of a value: folded text, epoch milliseconds, numbers. */
function key(field: Field | undefined, value: unknown): string | number | null {
  if (value === null || value === undefined) return null;
  switch (field?.kind) {
    case 'datetime':
      return parseDatetime(value);
    case 'boolean':
      return value ? 1 : 0;
    case 'integer':
    case 'float':
    case 'sequence':
      return Number(value);
    default:
      return typeof value === 'string' ? foldText(value) : String(value);
  }
}

function compareKeys(a: string | number | null, b: string | number | null): number {
  // MariaDB sorts NULL before any value in ascending order.
  if (a === null || b === null) return a === b ? 0 : a === null ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** SQL semantics: a comparison with NULL is never true, so only isNull matches a NULL value. */
export function matches(item: Item, q: Query, schema: Schema): boolean {
  if (q.method === 'or') return (q.values as Query[]).some((c) => matches(item, c, schema));
  if (q.method === 'and') return (q.values as Query[]).every((c) => matches(item, c, schema));
  const field = schema.get(q.attribute);
  const raw = item[q.attribute];
  if (q.method === 'isNull') return raw === null || raw === undefined;
  if (q.method === 'isNotNull') return raw !== null && raw !== undefined;
  if (raw === null || raw === undefined) return false;
  if (field?.array) {
    const list = raw as unknown[];
    const hit = q.values.some((v) => list.some((e) => e === v));
    return q.method === 'contains' ? hit : !hit;
  }
  const v = key(field, raw)!;
  const ks = q.values.map((x) => key(field, x));
  const text = typeof raw === 'string' ? foldText(raw) : '';
  const needles = q.values.map((x) => (typeof x === 'string' ? foldText(x) : ''));
  switch (q.method) {
    case 'equal':
      return ks.some((k) => compareKeys(v, k) === 0);
    case 'notEqual':
      return compareKeys(v, ks[0]!) !== 0;
    case 'lessThan':
      return compareKeys(v, ks[0]!) < 0;
    case 'lessThanEqual':
      return compareKeys(v, ks[0]!) <= 0;
    case 'greaterThan':
      return compareKeys(v, ks[0]!) > 0;
    case 'greaterThanEqual':
      return compareKeys(v, ks[0]!) >= 0;
    case 'between':
      return compareKeys(v, ks[0]!) >= 0 && compareKeys(v, ks[1]!) <= 0;
    case 'notBetween':
      return compareKeys(v, ks[0]!) < 0 || compareKeys(v, ks[1]!) > 0;
    case 'startsWith':
      return text.startsWith(needles[0]!);
    case 'notStartsWith':
      return !text.startsWith(needles[0]!);
    case 'endsWith':
      return text.endsWith(needles[0]!);
    case 'notEndsWith':
      return !text.endsWith(needles[0]!);
    case 'contains':
      return needles.some((n) => text.includes(n));
    case 'notContains':
      return needles.every((n) => !text.includes(n));
    case 'search':
    case 'notSearch': {
      // MATCH … AGAINST in boolean mode: any of the words, each as a word prefix.
      const words = text.split(/[^\p{L}\p{N}_]+/u).filter(Boolean);
      const terms = needles[0]!.split(/[^\p{L}\p{N}_]+/u).filter(Boolean);
      const hit = terms.some((t) => words.some((w) => w.startsWith(t)));
      return q.method === 'search' ? hit : !hit;
    }
    default:
      return false;
  }
}

/** Sort order of a plan: its orders, then `$sequence` ascending unless an order is already unique ($id, $sequence). */
function sortKeys(plan: Plan): { attribute: string; desc: boolean }[] {
  const orders = [...plan.orders];
  if (!orders.some((o) => o.attribute === '$id' || o.attribute === '$sequence')) orders.push({ attribute: '$sequence', desc: false });
  return orders;
}

function compareItems(a: Item, b: Item, orders: { attribute: string; desc: boolean }[], schema: Schema): number {
  for (const o of orders) {
    const field = schema.get(o.attribute);
    const d = compareKeys(key(field, a[o.attribute]), key(field, b[o.attribute]));
    if (d !== 0) return o.desc ? -d : d;
  }
  return 0;
}

export interface QueryResult {
  items: Item[];
  total: number;
}

/**
 * Runs a plan over items. `findCursor` returns the cursor item (general_cursor_not_found when absent, as
 * Documents/XList.php checks before the query runs).
 */
export function runPlan(items: Item[], plan: Plan, schema: Schema, findCursor: (id: string) => Item | null, cursorLabel = 'Row'): QueryResult {
  const matching = items.filter((item) => plan.filters.every((f) => matches(item, f, schema)));
  const orders = sortKeys(plan);
  let sorted = [...matching].sort((a, b) => compareItems(a, b, orders, schema));
  if (plan.cursor) {
    const cursor = findCursor(plan.cursor.id);
    if (!cursor) fail('general_cursor_not_found', `${cursorLabel} '${plan.cursor.id}' for the 'cursor' value not found.`);
    for (const o of orders) {
      if (cursor![o.attribute] === null || cursor![o.attribute] === undefined) {
        fail('database_query_order_null', `The order column '${o.attribute}' had a null value. Cursor pagination requires all rows order column values are non-null.`);
      }
    }
    if (plan.cursor.before) sorted = sorted.reverse().filter((item) => compareItems(item, cursor!, orders, schema) < 0);
    else sorted = sorted.filter((item) => compareItems(item, cursor!, orders, schema) > 0);
  }
  let page = sorted.slice(plan.offset, plan.offset + plan.limit);
  if (plan.cursor?.before) page = page.reverse();
  return { items: page, total: Math.min(matching.length, COUNT_LIMIT) };
}

/** Keeps selected columns plus the system fields Appwrite always returns (Database::validateSelections). */
export function project(item: Item, selects: string[] | null): Item {
  if (!selects || selects.includes('*')) return item;
  const out: Item = {};
  for (const [k, v] of Object.entries(item)) if (k.startsWith('$') || selects.includes(k)) out[k] = v;
  return out;
}
