// The audit log of admin actions: who (key or client), what, to which resource, when and from where.
// Written with the change it records, in the same transaction.
import type { Context } from 'hono';
import type { HubEnv } from '../app/deps.ts';
import { clientIp } from '../app/http.ts';
import type { AuditLogRow, Db } from '../store/types.ts';

export interface AuditInput {
  action: string;
  resourceType: string;
  resourceId: string | null;
  details?: Record<string, unknown> | null;
}

/** Records an action taken through the API by the request's principal. */
export async function auditRequest(db: Db, c: Context<HubEnv>, input: AuditInput): Promise<AuditLogRow> {
  const principal = c.get('principal');
  return db.table('audit_log').insert({
    workspaceId: principal.workspaceId,
    actorType: principal.type,
    actorId: principal.id,
    action: input.action,
    resourceType: input.resourceType,
    resourceId: input.resourceId,
    ip: clientIp(c),
    userAgent: c.req.header('user-agent')?.slice(0, 512) ?? null,
    requestId: c.get('requestId'),
    time: new Date(c.get('deps').clock.now()).toISOString(),
    details: input.details ?? null,
  });
}

/** Records an action taken outside HTTP (the operator CLI, the system itself). */
export async function auditSystem(
  db: Db,
  input: AuditInput & { workspaceId: string; actorType: 'cli' | 'system'; actorId: string; time: string },
): Promise<AuditLogRow> {
  return db.table('audit_log').insert({
    workspaceId: input.workspaceId,
    actorType: input.actorType,
    actorId: input.actorId,
    action: input.action,
    resourceType: input.resourceType,
    resourceId: input.resourceId,
    ip: null,
    userAgent: null,
    requestId: null,
    time: input.time,
    details: input.details ?? null,
  });
}
