// The audit log, newest first: who did what to which resource, when and from where.
import type { RouteTable } from '../define-route.ts';
import { LIST_PARAMS, listOwned } from './common.ts';

export function registerAuditRoutes(routes: RouteTable): void {
  routes.add(
    {
      method: 'get',
      path: '/v1/audit-log',
      operationId: 'listAuditLog',
      summary: 'Read the audit log of the workspace, newest first',
      tag: 'Audit',
      auth: { resource: 'audit', action: 'read' },
      query: [
        ...LIST_PARAMS,
        { name: 'resourceId', description: 'Only entries about this resource.', schema: { type: 'string', maxLength: 64 } },
        { name: 'action', description: 'Only this action, e.g. `api_key.revoked`.', schema: { type: 'string', maxLength: 64 } },
        { name: 'actorId', description: 'Only actions of this key or client.', schema: { type: 'string', maxLength: 64 } },
      ],
      responses: { 200: { description: 'A page of audit entries', schema: { list: 'hub:tables/audit_log' } } },
    },
    (c, { query }) =>
      listOwned(c, 'audit_log', query, {
        resourceId: query.resourceId as string | undefined,
        action: query.action as string | undefined,
        actorId: query.actorId as string | undefined,
      }),
  );
}
