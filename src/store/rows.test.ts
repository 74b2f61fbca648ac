import { describe, expect, it } from 'vitest';
import { TABLE_SPECS } from '../schemas/tables.ts';
import { checkPatch, compileRowValidators } from './rows.ts';

describe('row validators', () => {
  it('compile for every table and every column at once (the worker thread does this before its first job)', () => {
    // Each column must have a property schema of its own: a column without one would fail here, at a start, rather
    // than at the first patch that names it.
    expect(() => compileRowValidators()).not.toThrow();
    const deliveries = TABLE_SPECS.get('webhook_deliveries')!;
    expect(checkPatch(deliveries, { state: 'delivered', attempts: 2 })).toEqual({ state: 'delivered', attempts: 2 });
    expect(() => checkPatch(deliveries, { state: 'lost' })).toThrow(expect.objectContaining({ code: 'validation_failed' }));
  });
});
