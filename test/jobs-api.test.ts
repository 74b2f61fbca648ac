// Jobs as operators see them: retry a dead job, cancel a queued one, and the maintenance job's retention.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAINTENANCE_JOB } from '../src/hub.ts';
import { createTestHub, expectProblem, type TestHub } from './helpers.ts';

let t: TestHub;
beforeEach(async () => {
  t = await createTestHub();
});
afterEach(async () => {
  await t.close();
});

async function deadJob() {
  const { job } = await t.hub.queue.enqueue({ type: 'demo.fails', payload: {}, workspaceId: t.workspace.id, maxAttempts: 1 });
  const [claimed] = await t.hub.queue.claim('test');
  return t.hub.queue.fail(claimed!, Object.assign(new Error('remote said no'), { retryable: false })).then(() => job.id);
}

describe('job operations', () => {
  it('retries a dead job with fresh attempts, and records who did it', async () => {
    const id = await deadJob();
    expect((await t.call('GET', `/v1/jobs/${id}`)).body).toMatchObject({ state: 'dead', attempts: 1 });
    const res = await t.call('POST', `/v1/jobs/${id}/retry`);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ state: 'queued', attempts: 0, finishedAt: null });
    expect((await t.hub.queue.claim('test')).map((j) => j.id)).toEqual([id]);
    const audit = (await t.call('GET', `/v1/audit-log?resourceId=${id}`)).body.data;
    expect(audit[0]).toMatchObject({ action: 'job.retried', actorType: 'api_key' });
  });

  it('cancels a queued job, and refuses what does not apply', async () => {
    const { job } = await t.hub.queue.enqueue({ type: 'demo.later', payload: {}, workspaceId: t.workspace.id, runAt: new Date(t.clock.now() + 60_000) });
    expectProblem(await t.call('POST', `/v1/jobs/${job.id}/retry`), 409, 'conflict');
    expect((await t.call('POST', `/v1/jobs/${job.id}/cancel`)).body.state).toBe('cancelled');
    expect(await t.hub.queue.claim('test', { limit: 10 })).toEqual([]);
    const dead = await deadJob();
    expectProblem(await t.call('POST', `/v1/jobs/${dead}/cancel`), 409, 'conflict');
  });

  it('hides other workspaces’ and system jobs, and needs jobs:write', async () => {
    const { job: system } = await t.hub.queue.enqueue({ type: 'demo.system', payload: {} });
    expectProblem(await t.call('POST', `/v1/jobs/${system.id}/cancel`), 404, 'not_found');
    const reader = (await t.call('POST', '/v1/api-keys', { body: { name: 'r', scopes: ['jobs:read'] } })).body.secret;
    const id = await deadJob();
    expectProblem(await t.call('POST', `/v1/jobs/${id}/retry`, { key: reader }), 403, 'insufficient_scope');
  });
});

describe('maintenance', () => {
  it('deletes expired idempotency records, finished jobs and old events past retention, and keeps the rest', async () => {
    const { store, config } = t.hub.deps;
    await t.call('POST', '/v1/connections', { body: { connectorId: 'http', name: 'old', config: { baseUrl: 'http://127.0.0.1:9' } }, headers: { 'Idempotency-Key': 'k1' } });
    const oldDead = await deadJob();
    t.clock.advance(Math.max(config.jobRetentionDays, config.eventRetentionDays) * 86_400_000 + 1);
    const recentDead = await deadJob();
    await t.call('PATCH', '/v1/workspace', { body: { name: 'Fresh' } });
    const { job } = await t.hub.queue.enqueue({ type: MAINTENANCE_JOB, payload: {} });
    t.hub.worker.start();
    let done = await t.hub.queue.get(job.id);
    for (let i = 0; i < 100 && done?.state !== 'succeeded'; i++) {
      await new Promise((r) => setTimeout(r, 20));
      done = await t.hub.queue.get(job.id);
    }
    expect(done?.result).toMatchObject({ idempotencyDeleted: 1, jobsDeleted: 1 });
    expect(await store.table('jobs').get(oldDead)).toBeNull();
    expect(await store.table('jobs').get(recentDead)).not.toBeNull();
    const events = await store.table('events').query({ limit: 100 });
    expect(events.items.map((e) => e.type)).toEqual(['workspace.updated']);
    expect(await store.table('audit_log').count()).toBeGreaterThan(2); // the audit log is kept
  });
});
