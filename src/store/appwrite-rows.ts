// How hub rows and filters look in Appwrite: row mapping, the filter in Appwrite's query language, and the same
// filter evaluated exactly in JS (Appwrite's collation ignores case, the hub's filters do not).
import { Query } from 'node-appwrite';
import type { TableSpec } from '../schemas/tables.ts';
import { appwriteField } from './appwrite-schema.ts';
import type { FieldOps, Where } from './types.ts';

export type AnyRow = Record<string, unknown> & { id: string; version: number };
export type AppwriteRow = Record<string, unknown> & { $id: string };

export function toData(spec: TableSpec, row: Record<string, unknown>): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  for (const col of spec.columns) {
    if (col.name === 'id' || !(col.name in row)) continue;
    const v = row[col.name];
    data[col.name] = v === null || v === undefined ? null : col.kind === 'json' ? JSON.stringify(v) : v;
  }
  return data;
}

export function fromRow(spec: TableSpec, raw: AppwriteRow): AnyRow {
  const row: Record<string, unknown> = { id: raw.$id };
  for (const col of spec.columns) {
    if (col.name === 'id') continue;
    const v = raw[col.name];
    if (v === null || v === undefined) {
      if (col.nullable) row[col.name] = null;
      continue;
    }
    row[col.name] = col.kind === 'json' ? JSON.parse(v as string) : v;
  }
  return row as AnyRow;
}

/**
 * The filter evaluated exactly, in JS. Appwrite (MariaDB's default collation) compares text without regard to case
 * or accents; every adapter must give the same answers, so rows Appwrite returns are checked again here.
 */
export function matches(row: Record<string, unknown>, where: Where | undefined): boolean {
  if (!where) return true;
  for (const [field, cond] of Object.entries(where)) {
    if (cond === undefined) continue;
    if (field === '$or') {
      if (!(cond as Where[]).some((w) => matches(row, w))) return false;
      continue;
    }
    const v = row[field] ?? null;
    if (cond === null || typeof cond !== 'object') {
      if (v !== cond) return false;
      continue;
    }
    const o = cond as FieldOps;
    if ('eq' in o && v !== o.eq) return false;
    if ('ne' in o && v === o.ne) return false;
    if (o.gt !== undefined && !(v !== null && (v as number | string) > o.gt)) return false;
    if (o.gte !== undefined && !(v !== null && (v as number | string) >= o.gte)) return false;
    if (o.lt !== undefined && !(v !== null && (v as number | string) < o.lt)) return false;
    if (o.lte !== undefined && !(v !== null && (v as number | string) <= o.lte)) return false;
    if (o.in !== undefined && !o.in.includes(v as never)) return false;
    if (o.notIn !== undefined && o.notIn.includes(v as never)) return false;
    if (o.startsWith !== undefined && !(typeof v === 'string' && v.startsWith(o.startsWith))) return false;
    if (o.isNull !== undefined && (v === null) !== o.isNull) return false;
  }
  return true;
}

/** A filter in Appwrite's query language; values travel as JSON data, never as query text. */
export function whereQueries(where: Where | undefined): string[] {
  if (!where) return [];
  const out: string[] = [];
  for (const [field, cond] of Object.entries(where)) {
    if (cond === undefined) continue;
    if (field === '$or') {
      const alternatives = (cond as Where[]).map((w) => {
        const qs = whereQueries(w);
        return qs.length === 1 ? qs[0]! : Query.and(qs.length ? qs : [Query.isNotNull('$id')]);
      });
      out.push(alternatives.length === 0 ? Query.equal('$id', ['\u0000none']) : alternatives.length === 1 ? alternatives[0]! : Query.or(alternatives));
      continue;
    }
    const f = appwriteField(field);
    if (cond === null) {
      out.push(Query.isNull(f));
      continue;
    }
    if (typeof cond !== 'object') {
      out.push(Query.equal(f, [cond]));
      continue;
    }
    const ops = cond as FieldOps;
    if ('eq' in ops) out.push(ops.eq === null ? Query.isNull(f) : Query.equal(f, [ops.eq!]));
    if ('ne' in ops) out.push(ops.ne === null ? Query.isNotNull(f) : Query.or([Query.isNull(f), Query.notEqual(f, [ops.ne!])]));
    if (ops.gt !== undefined) out.push(Query.greaterThan(f, ops.gt));
    if (ops.gte !== undefined) out.push(Query.greaterThanEqual(f, ops.gte));
    if (ops.lt !== undefined) out.push(Query.lessThan(f, ops.lt));
    if (ops.lte !== undefined) out.push(Query.lessThanEqual(f, ops.lte));
    if (ops.in !== undefined) out.push(ops.in.length ? Query.equal(f, ops.in as (string | number | boolean)[]) : Query.equal('$id', ['\u0000none']));
    if (ops.notIn?.length) {
      const none = ops.notIn.map((v) => Query.notEqual(f, [v as string | number | boolean]));
      out.push(Query.or([Query.isNull(f), none.length === 1 ? none[0]! : Query.and(none)]));
    }
    if (ops.startsWith !== undefined) out.push(Query.startsWith(f, ops.startsWith));
    if (ops.isNull !== undefined) out.push(ops.isNull ? Query.isNull(f) : Query.isNotNull(f));
  }
  return out;
}

