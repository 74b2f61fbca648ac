import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TABLE_SPECS } from '../src/schemas/tables.ts';
import { appwriteTables } from '../src/store/appwrite-schema.ts';
import { APPWRITE_JSON, renderAppwriteJson } from './appwrite-schema.ts';

describe('appwrite.json', () => {
  it('declares exactly the tables the schemas derive (run npm run appwrite:schema)', () => {
    const current = readFileSync(APPWRITE_JSON, 'utf8');
    expect(current).toBe(renderAppwriteJson(current));
  });

  it('maps every column and keeps timestamps and JSON as exact text', () => {
    const tables = appwriteTables();
    expect(tables.map((t) => t.$id).sort()).toEqual([...TABLE_SPECS.keys()].sort());
    const jobs = tables.find((t) => t.$id === 'jobs')!;
    const col = (k: string) => jobs.columns.find((c) => c.key === k);
    expect(col('id')).toBeUndefined(); // it is the row's $id
    expect(col('runAt')).toMatchObject({ type: 'varchar', size: 40, required: true });
    expect(col('payload')).toMatchObject({ type: 'longtext', required: true });
    expect(col('state')).toMatchObject({ type: 'enum', elements: ['queued', 'running', 'succeeded', 'dead', 'cancelled'] });
    expect(col('leaseOwner')).toMatchObject({ type: 'varchar', required: false });
    expect(jobs.indexes).toContainEqual({ key: 'uq_dedupeKey', type: 'unique', columns: ['dedupeKey'], orders: ['asc'] });
    const events = tables.find((t) => t.$id === 'events')!;
    expect(events.indexes).toContainEqual(expect.objectContaining({ columns: ['workspaceId', '$id'] }));
  });
});
