// The workspace's background jobs: state, attempts, last error, progress and result.
import type { RouteTable } from '../define-route.ts';
import { auditRequest } from '../../audit/log.ts';
import { jsonWithEtag, respondResource } from '../http.ts';
import { LIST_PARAMS, listOwned, loadOwned, PROBLEM } from './common.ts';

const JOB = 'hub:tables/jobs';

export function registerJobRoutes(routes: RouteTable): void {
  routes.add(
    {
      method: 'get',
      path: '/v1/jobs',
      operationId: 'listJobs',
      summary: 'List the background jobs of the workspace, newest first',
      tag: 'Jobs',
      auth: { resource: 'jobs', action: 'read' },
      query: [
        ...LIST_PARAMS,
        { name: 'state', description: 'Only jobs in this state.', schema: { type: 'string', enum: ['queued', 'running', 'succeeded', 'dead', 'cancelled'] } },
        { name: 'type', description: 'Only jobs of this type.', schema: { type: 'string', maxLength: 64 } },
      ],
      responses: { 200: { description: 'A page of jobs', schema: { list: JOB } } },
    },
    (c, { query }) => listOwned(c, 'jobs', query, { state: query.state as string | undefined, type: query.type as string | undefined }),
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/jobs/{id}',
      operationId: 'getJob',
      summary: 'Get a job',
      tag: 'Jobs',
      auth: { resource: 'jobs', action: 'read' },
      responses: { 200: { description: 'The job', schema: JOB, headers: ['ETag'] }, 404: PROBLEM('No such job') },
    },
    async (c) => respondResource(c, await loadOwned(c, 'jobs', c.req.param('id')!)),
  );

  for (const [verb, summary, action] of [
    ['cancel', 'Cancel a queued job', 'job.cancelled'],
    ['retry', 'Put a dead or cancelled job back in the queue with fresh attempts', 'job.retried'],
  ] as const) {
    routes.add(
      {
        method: 'post',
        path: `/v1/jobs/{id}/${verb}`,
        operationId: `${verb}Job`,
        summary,
        tag: 'Jobs',
        auth: { resource: 'jobs', action: 'write' },
        responses: { 200: { description: 'The job', schema: JOB, headers: ['ETag'] }, 404: PROBLEM('No such job'), 409: PROBLEM('The job is not in a state this applies to') },
      },
      async (c) => {
        const { store, queue } = c.get('deps');
        const job = await loadOwned(c, 'jobs', c.req.param('id')!);
        const row = verb === 'cancel' ? await queue.cancel(job.id) : await queue.retry(job.id);
        await auditRequest(store, c, { action, resourceType: 'job', resourceId: job.id, details: { type: job.type } });
        return jsonWithEtag(c, row);
      },
    );
  }
}
