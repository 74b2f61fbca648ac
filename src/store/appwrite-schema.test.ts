import { describe, expect, it } from 'vitest';
import { appwriteTables, indexKey, isHubIndexKey } from './appwrite-schema.ts';

describe('Appwrite index keys', () => {
  const tables = appwriteTables();
  const columnsOf = (t: (typeof tables)[number]) => new Set(['id', ...t.columns.map((c) => c.key)]);

  it('are valid Appwrite keys, one per index of a table, and read as the hub\'s own', () => {
    for (const t of tables) {
      const keys = t.indexes.map((i) => i.key);
      expect(new Set(keys).size, t.$id).toBe(keys.length);
      for (const key of keys) {
        expect(key, `${t.$id}.${key}`).toMatch(/^[A-Za-z0-9_-]{1,36}$/);
        expect(isHubIndexKey(key, columnsOf(t)), `${t.$id}.${key}`).toBe(true);
      }
    }
  });

  it('keep two long keys that begin alike apart, with a digest of the whole key', () => {
    const a = indexKey(['workspaceId', 'inventoryItemId', 'locationId'], true);
    const b = indexKey(['workspaceId', 'inventoryItemId', 'locationId', 'sku'], true);
    expect(a).toMatch(/^uq_workspaceId_inventoryIte_[0-9a-f]{8}$/);
    expect(a).toHaveLength(36);
    expect(b).toHaveLength(36);
    expect(a).not.toBe(b);
    expect(indexKey(['workspaceId', 'sku'], false)).toBe('ix_workspaceId_sku');
  });

  it('recognise a bare cut key of earlier releases, and not an operator\'s key', () => {
    const levels = tables.find((t) => t.$id === 'stock_levels')!;
    const columns = columnsOf(levels);
    expect(isHubIndexKey('uq_workspaceId_inventoryItemId_locat', columns)).toBe(true);
    expect(isHubIndexKey('ix_workspaceId_locationId', columns)).toBe(true);
    for (const key of ['ix_by_location', 'ops_workspaceId', 'ix_workspaceId_', 'ix_workspaceId_locat', 'uq_workspaceId_inventoryItemId_xyzwv']) {
      expect(isHubIndexKey(key, columns), key).toBe(false);
    }
  });
});
