import { describe, expect, it } from 'vitest';
import { isHubError } from '../errors.ts';
import { checkScopes, coversScope, hasScope } from './scopes.ts';

describe('hasScope', () => {
  it('lets write imply read, and wildcards stand for any resource or action', () => {
    expect(hasScope(['connections:write'], 'connections', 'read')).toBe(true);
    expect(hasScope(['connections:read'], 'connections', 'write')).toBe(false);
    expect(hasScope(['*:read'], 'events', 'read')).toBe(true);
    expect(hasScope(['*:read'], 'events', 'write')).toBe(false);
    expect(hasScope(['keys:*'], 'keys', 'write')).toBe(true);
    expect(hasScope(['*'], 'audit', 'write')).toBe(true);
    expect(hasScope(['events:read'], 'connections', 'read')).toBe(false);
  });
});

describe('coversScope', () => {
  it('refuses to let a holder grant more than it has', () => {
    expect(coversScope(['keys:write', 'connections:read'], 'connections:read')).toBe(true);
    expect(coversScope(['keys:write', 'connections:read'], 'connections:write')).toBe(false);
    expect(coversScope(['keys:write'], '*')).toBe(false);
    expect(coversScope(['*:read'], 'events:read')).toBe(true);
    expect(coversScope(['connections:*'], '*:read')).toBe(false);
    expect(coversScope(['*'], '*')).toBe(true);
  });
});

describe('checkScopes', () => {
  it('names each unknown resource and each scope the granter lacks', () => {
    try {
      checkScopes(['connectoins:read', 'events:write'], ['keys:write', 'events:read']);
      expect.unreachable();
    } catch (err) {
      expect(isHubError(err, 'validation_failed')).toBe(true);
      expect((err as { errors: { field: string; code: string }[] }).errors).toEqual([
        expect.objectContaining({ field: '/scopes/0', code: 'unknown_resource' }),
        expect.objectContaining({ field: '/scopes/1', code: 'scope_not_held' }),
      ]);
    }
  });
});
