import { describe, expect, it } from 'vitest';
import { isHubError } from '../errors.ts';
import { createSqliteStore } from '../store/sqlite.ts';
import { appendEvent, matchesType, typeFilter } from './log.ts';

describe('typeFilter', () => {
  it('turns exact types into one set and wildcards into prefixes', () => {
    expect(typeFilter(['order.created'])).toEqual({ type: { in: ['order.created'] } });
    expect(typeFilter(['order.*', 'stock.updated'])).toEqual({
      $or: [{ type: { in: ['stock.updated'] } }, { type: { startsWith: 'order.' } }],
    });
    expect(typeFilter(['order.*', '*'])).toBeUndefined();
  });

  it('refuses what is not a type pattern', () => {
    for (const bad of ['order.', 'Order.created', 'order.*.x', "x' OR 1=1", '']) {
      expect(() => typeFilter([bad]), bad).toThrow();
      try {
        typeFilter([bad]);
      } catch (err) {
        expect(isHubError(err, 'invalid_query')).toBe(true);
      }
    }
  });
});

describe('matchesType', () => {
  it('matches exact types, prefixes and everything', () => {
    expect(matchesType(['order.*'], 'order.created')).toBe(true);
    expect(matchesType(['order.*'], 'orders.created')).toBe(false);
    expect(matchesType(['*'], 'x.y')).toBe(true);
    expect(matchesType(['stock.low'], 'stock.lower')).toBe(false);
  });
});

describe('appendEvent', () => {
  it('writes with the transaction: a rolled-back change leaves no event', async () => {
    const store = createSqliteStore({ path: ':memory:' });
    const now = new Date().toISOString();
    await appendEvent(store, { type: 'order.created', workspaceId: 'ws_1', data: { id: 1 } }, now);
    await store
      .transaction(async (tx) => {
        await appendEvent(tx, { type: 'order.updated', workspaceId: 'ws_1', data: { id: 1 } }, now);
        throw new Error('the change failed');
      })
      .catch(() => undefined);
    const page = await store.table('events').query({ where: typeFilter(['order.*']) });
    expect(page.items.map((e) => e.type)).toEqual(['order.created']);
    await store.close();
  });
});
