// The caller's own workspace: read it and change its settings. Creating workspaces is an operator task (CLI).
import { auditRequest } from '../../audit/log.ts';
import { HubError } from '../../errors.ts';
import { appendEvent } from '../../events/log.ts';
import type { RouteTable } from '../define-route.ts';
import { expectVersion, jsonWithEtag, respondResource } from '../http.ts';
import { nowIso, PROBLEM } from './common.ts';

interface WorkspaceUpdate {
  name?: string;
  currency?: string;
  timezone?: string;
}

export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export function registerWorkspaceRoutes(routes: RouteTable): void {
  routes.add(
    {
      method: 'get',
      path: '/v1/workspace',
      operationId: 'getWorkspace',
      summary: 'Get the workspace of the calling key',
      tag: 'Workspace',
      auth: { resource: 'workspace', action: 'read' },
      responses: { 200: { description: 'The workspace', schema: 'hub:tables/workspaces', headers: ['ETag'] } },
    },
    async (c) => {
      const ws = await c.get('deps').store.table('workspaces').get(c.get('principal').workspaceId);
      return respondResource(c, ws!);
    },
  );

  routes.add<WorkspaceUpdate>(
    {
      method: 'patch',
      path: '/v1/workspace',
      operationId: 'updateWorkspace',
      summary: 'Change the name, currency or time zone of the workspace',
      tag: 'Workspace',
      auth: { resource: 'workspace', action: 'write' },
      body: { schema: 'hub:api/workspace-update' },
      ifMatch: true,
      responses: { 200: { description: 'The updated workspace', schema: 'hub:tables/workspaces', headers: ['ETag'] }, 412: PROBLEM('The If-Match version is stale') },
    },
    async (c, { body }) => {
      const { store } = c.get('deps');
      if (body.timezone !== undefined && !isTimeZone(body.timezone)) {
        throw new HubError('validation_failed', 'The time zone is not known', {
          errors: [{ field: '/timezone', code: 'timezone', message: 'must be an IANA time zone such as Europe/Berlin' }],
        });
      }
      const updated = await store.transaction(async (tx) => {
        const ws = (await tx.table('workspaces').get(c.get('principal').workspaceId))!;
        const row = await tx.table('workspaces').update(ws.id, body, { ifVersion: expectVersion(c, ws) });
        await auditRequest(tx, c, { action: 'workspace.updated', resourceType: 'workspace', resourceId: ws.id, details: { fields: Object.keys(body) } });
        await appendEvent(tx, { type: 'workspace.updated', workspaceId: ws.id, subject: ws.id, data: { workspace: row }, correlationId: c.get('requestId') }, nowIso(c));
        return row;
      });
      return jsonWithEtag(c, updated);
    },
  );
}
