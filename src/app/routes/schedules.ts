// /v1/schedules: run an exchange on a cron expression in a time zone, outside maintenance windows, paused or
// enabled, never two runs at once; "run now" starts one at once (refused while one is running).
import type { Context } from 'hono';
import { auditRequest } from '../../audit/log.ts';
import { createSchedule, startScheduleRun, updateSchedule, type ScheduleInput, type SchedulePatch } from '../../schedules/scheduler.ts';
import type { HubEnv } from '../deps.ts';
import type { RouteTable } from '../define-route.ts';
import { expectVersion, jsonWithEtag, respondResource } from '../http.ts';
import { LIST_PARAMS, listOwned, loadOwned, PROBLEM } from './common.ts';

const SCHEDULE = 'hub:tables/schedules';
const TAG = 'Schedules';
const READ = { resource: 'schedules', action: 'read' } as const;
const WRITE = { resource: 'schedules', action: 'write' } as const;
const workspaceOf = (c: Context<HubEnv>) => c.get('principal').workspaceId;

export function registerScheduleRoutes(routes: RouteTable): void {
  routes.add<ScheduleInput>(
    {
      method: 'post',
      path: '/v1/schedules',
      operationId: 'createSchedule',
      summary: 'Run an exchange on a schedule',
      description:
        'The cron expression (five fields, or @daily, @hourly…) is read in `timezone`, daylight saving included. Nothing starts inside a ' +
        'maintenance window (a run due then is skipped). A due run is skipped while the previous one is still going. `nextRunAt` says when it runs next.',
      tag: TAG,
      auth: WRITE,
      body: { schema: 'hub:api/schedule-create' },
      responses: { 201: { description: 'The schedule', schema: SCHEDULE, headers: ['ETag', 'Location'] }, 422: PROBLEM('No such exchange') },
    },
    async (c, { body }) => {
      const { store, clock } = c.get('deps');
      const row = await store.transaction(async (tx) => {
        const created = await createSchedule(tx, clock, workspaceOf(c), body);
        await auditRequest(tx, c, { action: 'schedule.created', resourceType: 'schedule', resourceId: created.id, details: { cron: body.cron, timezone: body.timezone, exchangeId: body.exchangeId } });
        return created;
      });
      c.header('Location', `/v1/schedules/${row.id}`);
      return jsonWithEtag(c, row, 201);
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/schedules',
      operationId: 'listSchedules',
      summary: 'List schedules, newest first',
      tag: TAG,
      auth: READ,
      query: [...LIST_PARAMS, { name: 'exchangeId', description: 'Schedules of this exchange.', schema: { type: 'string', maxLength: 36 } }],
      responses: { 200: { description: 'A page of schedules', schema: { list: SCHEDULE } } },
    },
    (c, { query }) => listOwned(c, 'schedules', query, { exchangeId: query.exchangeId as string | undefined }),
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/schedules/{id}',
      operationId: 'getSchedule',
      summary: 'Get a schedule with its next and last run',
      tag: TAG,
      auth: READ,
      responses: { 200: { description: 'The schedule', schema: SCHEDULE, headers: ['ETag'] }, 404: PROBLEM('No such schedule') },
    },
    async (c) => respondResource(c, await loadOwned(c, 'schedules', c.req.param('id')!)),
  );

  routes.add<SchedulePatch>(
    {
      method: 'patch',
      path: '/v1/schedules/{id}',
      operationId: 'updateSchedule',
      summary: 'Change a schedule, or pause and resume it (status)',
      tag: TAG,
      auth: WRITE,
      body: { schema: 'hub:api/schedule-update' },
      ifMatch: true,
      responses: { 200: { description: 'The schedule', schema: SCHEDULE, headers: ['ETag'] }, 404: PROBLEM('No such schedule'), 412: PROBLEM('Stale If-Match') },
    },
    async (c, { body }) => {
      const { store, clock } = c.get('deps');
      const row = await store.transaction(async (tx) => {
        const schedule = await loadOwned(c, 'schedules', c.req.param('id')!, tx);
        const saved = await updateSchedule(tx, clock, schedule, body, expectVersion(c, schedule));
        await auditRequest(tx, c, { action: 'schedule.updated', resourceType: 'schedule', resourceId: schedule.id, details: { fields: Object.keys(body) } });
        return saved;
      });
      return jsonWithEtag(c, row);
    },
  );

  routes.add(
    {
      method: 'delete',
      path: '/v1/schedules/{id}',
      operationId: 'deleteSchedule',
      summary: 'Delete a schedule (a run in progress finishes)',
      tag: TAG,
      auth: WRITE,
      responses: { 204: { description: 'Deleted' }, 404: PROBLEM('No such schedule') },
    },
    async (c) => {
      const { store } = c.get('deps');
      await store.transaction(async (tx) => {
        const schedule = await loadOwned(c, 'schedules', c.req.param('id')!, tx);
        await tx.table('schedules').delete(schedule.id);
        await auditRequest(tx, c, { action: 'schedule.deleted', resourceType: 'schedule', resourceId: schedule.id });
      });
      return c.body(null, 204);
    },
  );

  routes.add(
    {
      method: 'post',
      path: '/v1/schedules/{id}/run',
      operationId: 'runScheduleNow',
      summary: 'Run now (refused while a run of this schedule is going)',
      tag: TAG,
      auth: WRITE,
      responses: {
        202: { description: 'Started', schema: { type: 'object', required: ['jobId'], properties: { jobId: { type: 'string' } } } },
        404: PROBLEM('No such schedule'),
        409: PROBLEM('A run of this schedule is still going'),
      },
    },
    async (c) => {
      const { store, queue, clock } = c.get('deps');
      const schedule = await loadOwned(c, 'schedules', c.req.param('id')!);
      const { job } = await startScheduleRun(store, queue, clock, schedule, { trigger: 'manual' });
      await auditRequest(store, c, { action: 'schedule.run', resourceType: 'schedule', resourceId: schedule.id, details: { jobId: job.id } });
      return c.json({ jobId: job.id }, 202);
    },
  );
}
