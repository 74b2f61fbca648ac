// First start: an empty store gets a default workspace and an admin key, whose secret is returned once to print.
// Also the operator actions the CLI shares with it: create a workspace, create a key.
import { auditSystem } from './audit/log.ts';
import { checkScopes } from './auth/scopes.ts';
import { insertApiKey } from './auth/secrets.ts';
import type { Clock } from './lib/clock.ts';
import type { ApiKeysRow, Db, Store, WorkspacesRow } from './store/types.ts';

export interface CreatedKey {
  key: ApiKeysRow;
  secret: string;
}

export function slugify(name: string): string {
  return (
    name
      .toLowerCase()
      .normalize('NFKD')
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 64) || 'workspace'
  );
}

export async function createApiKey(
  db: Db,
  clock: Clock,
  input: { workspaceId: string; name: string; scopes: string[]; expiresAt?: string | null; actor: string },
): Promise<CreatedKey> {
  checkScopes(input.scopes, null);
  const { key, secret } = await insertApiKey(db, { ...input, createdBy: input.actor });
  await auditSystem(db, {
    workspaceId: input.workspaceId,
    actorType: input.actor === 'system' ? 'system' : 'cli',
    actorId: input.actor,
    action: 'api_key.created',
    resourceType: 'api_key',
    resourceId: key.id,
    details: { scopes: key.scopes },
    time: new Date(clock.now()).toISOString(),
  });
  return { key, secret };
}

export async function createWorkspace(
  store: Store,
  clock: Clock,
  input: { name: string; slug?: string; currency?: string; timezone?: string; actor: string },
): Promise<{ workspace: WorkspacesRow } & CreatedKey> {
  return store.transaction(async (tx) => {
    const workspace = await tx.table('workspaces').insert({
      name: input.name,
      slug: input.slug ?? slugify(input.name),
      currency: input.currency ?? 'USD',
      timezone: input.timezone ?? 'UTC',
    });
    const created = await createApiKey(tx, clock, { workspaceId: workspace.id, name: 'Admin key', scopes: ['*'], actor: input.actor });
    return { workspace, ...created };
  });
}

/** Creates the default workspace and its admin key when the store has no workspace at all. */
export async function bootstrapIfEmpty(store: Store, clock: Clock): Promise<({ workspace: WorkspacesRow } & CreatedKey) | null> {
  if ((await store.table('workspaces').count()) > 0) return null;
  try {
    return await createWorkspace(store, clock, { name: 'Default', slug: 'default', actor: 'system' });
  } catch {
    // another process bootstrapped at the same moment
    return null;
  }
}
