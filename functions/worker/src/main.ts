// Appwrite function `worker`: started asynchronously by the dispatcher (createExecution, so its trigger is http) and by
// the scheduler. It runs due jobs, then due webhook deliveries, until none is left or its time budget is spent, then
// reports what it did.
import { problemResponse } from '../../../src/appwrite/http.ts';
import { countWaitingJobs, drainJobs, workerBudget } from '../../../src/appwrite/jobs.ts';
import { defineFunction } from '../../../src/appwrite/runtime.ts';

export default defineFunction({ name: 'worker', triggers: ['http'] }, async (context, runtime) => {
  // A hub of its own: a worker starts and stops once, and a warm container runs many executions.
  const hub = runtime.newHub();
  const report = await drainJobs(hub, workerBudget(hub.deps.config.workerTimeoutSeconds));
  let continued = false;
  if (report.stoppedBy === 'budget') {
    // Out of time with work left: hand it to a fresh execution now rather than at the scheduler's next tick.
    const waiting = await countWaitingJobs(runtime.store, hub.deps.clock);
    continued = waiting.due + waiting.expired + waiting.deliveries > 0;
    if (continued) runtime.dispatcher.request();
  }
  runtime.log.info('worker execution finished', { ...report, continued });
  if (report.stoppedBy === 'store_failing') {
    // A failed execution in the Console; the leases it may hold expire and the scheduler starts another worker.
    return problemResponse(context.res, 'store_unavailable', 'Claiming jobs kept failing; a later worker execution will run them', { ...report });
  }
  return context.res.json({ ...report, continued });
});
