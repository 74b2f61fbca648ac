import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { API_SCHEMAS, CANONICAL_SCHEMAS, TABLE_SCHEMAS } from '../src/schemas/registry.ts';
import { renderRowTypes } from './gen-types.ts';

const root = join(import.meta.dirname, '..');

describe('schemas as the source of truth', () => {
  it('has row types generated from the current table schemas (run npm run gen:types)', () => {
    expect(readFileSync(join(root, 'src/store/rows.generated.ts'), 'utf8')).toBe(renderRowTypes());
  });

  it('registers every schema file in schemas/ (a file left out would silently not validate)', () => {
    const files = (sub: string) => readdirSync(join(root, 'schemas', sub)).filter((f) => f.endsWith('.schema.json'));
    const ids = (list: Record<string, unknown>[]) => list.map((s) => s.$id).sort();
    expect(ids(TABLE_SCHEMAS)).toEqual(files('tables').map((f) => `hub:tables/${f.replace('.schema.json', '')}`).sort());
    expect(ids(API_SCHEMAS)).toEqual(files('api').map((f) => `hub:api/${f.replace('.schema.json', '')}`).sort());
    expect(ids(CANONICAL_SCHEMAS)).toEqual(files('canonical').map((f) => `hub:canonical/${f.replace('.schema.json', '')}`).sort());
  });
});
