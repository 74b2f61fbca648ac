// Appwrite function `scheduler`: its cron schedule ("* * * * *") ticks every minute. An http trigger is accepted too,
// for an operator's "Execute now": with `execute: []` only the Console and API keys can start it.
import { runSchedulerTick } from '../../../src/appwrite/jobs.ts';
import { defineFunction } from '../../../src/appwrite/runtime.ts';

export default defineFunction({ name: 'scheduler', triggers: ['schedule', 'http'] }, async (context, runtime) => {
  const report = await runSchedulerTick(runtime.hub(), (reason) => {
    runtime.log.info('asking for a worker execution', { reason });
    runtime.dispatcher.request();
  });
  return context.res.json(report);
});
