// Scopes are `resource:action`. `write` implies `read`; `*` stands for any resource or any action.
import { HubError, type FieldError } from '../errors.ts';

/** Every resource a scope can name. Later modules add theirs here so that a typo is refused at key creation. */
export const RESOURCES = [
  'workspace',
  'keys',
  'oauth_clients',
  'connections',
  'jobs',
  'events',
  'audit',
  'webhooks',
  'mappings',
  'schedules',
  'files',
  'products',
  'inventory',
  'orders',
] as const;

export type Resource = (typeof RESOURCES)[number];
export type Action = 'read' | 'write';

export interface Principal {
  type: 'api_key' | 'oauth_client';
  id: string;
  workspaceId: string;
  scopes: string[];
  rateLimitPerMinute: number | null;
}

const SCOPE_SHAPE = /^(\*|[a-z_]+:(\*|read|write)|\*:(read|write))$/;

/** A well-formed scope naming a known resource (the shape is the one in schemas/common.schema.json). */
export function isScope(scope: string): boolean {
  if (!SCOPE_SHAPE.test(scope)) return false;
  const r = scope.split(':')[0]!;
  return r === '*' || (RESOURCES as readonly string[]).includes(r);
}

function grants(scope: string, resource: string, action: Action): boolean {
  if (scope === '*') return true;
  const [r, a] = scope.split(':') as [string, string];
  const resourceOk = r === '*' || r === resource;
  const actionOk = a === '*' || a === action || (a === 'write' && action === 'read');
  return resourceOk && actionOk;
}

export function hasScope(scopes: readonly string[], resource: string, action: Action): boolean {
  return scopes.some((s) => grants(s, resource, action));
}

/** True when everything `requested` allows is allowed by `held` (no one grants more than they have). */
export function coversScope(held: readonly string[], requested: string): boolean {
  if (requested === '*') return held.includes('*');
  const [r, a] = requested.split(':') as [string, string];
  const resources = r === '*' ? [...RESOURCES] : [r];
  const actions: Action[] = a === '*' || a === 'write' ? ['read', 'write'] : ['read'];
  if (r === '*' && !held.some((h) => h === '*' || h.startsWith('*:'))) return false;
  return resources.every((res) => actions.every((act) => hasScope(held, res, act)));
}

/** Checks scope names against the known resources and, when `granter` is given, that it holds them all. */
export function checkScopes(requested: readonly string[], granter: readonly string[] | null, pointer = '/scopes'): void {
  const errors: FieldError[] = [];
  requested.forEach((s, i) => {
    const r = s.split(':')[0]!;
    if (s !== '*' && r !== '*' && !(RESOURCES as readonly string[]).includes(r)) {
      errors.push({ field: `${pointer}/${i}`, code: 'unknown_resource', message: `"${r}" is not a resource (known: ${RESOURCES.join(', ')})` });
    } else if (granter && !coversScope(granter, s)) {
      errors.push({ field: `${pointer}/${i}`, code: 'scope_not_held', message: `cannot grant "${s}": the caller does not hold it` });
    }
  });
  if (errors.length) throw new HubError('validation_failed', 'The scopes are not valid', { errors });
}

export function requireScope(principal: Principal, resource: Resource, action: Action): void {
  if (!hasScope(principal.scopes, resource, action)) {
    throw new HubError('insufficient_scope', `This needs the scope ${resource}:${action}`, {
      extra: { requiredScope: `${resource}:${action}` },
    });
  }
}
