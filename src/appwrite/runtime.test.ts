import { describe, expect, it } from 'vitest';
import { createLogger } from '../lib/log.ts';
import { createJobDispatcher, type ExecutionStarter } from './runtime.ts';

function recordingLog() {
  const lines: Record<string, unknown>[] = [];
  return { lines, log: createLogger('debug', {}, (line) => lines.push(JSON.parse(line) as Record<string, unknown>)) };
}

describe('createJobDispatcher', () => {
  it('starts one async worker execution for the requests made since the last flush', async () => {
    const calls: unknown[] = [];
    const starter: ExecutionStarter = { createExecution: async (params) => void calls.push(params) };
    const dispatcher = createJobDispatcher({ starter, log: recordingLog().log });
    expect(await dispatcher.flush()).toBe(0);
    dispatcher.request('job_1');
    dispatcher.request('job_2');
    expect(dispatcher.pending()).toBe(2);
    expect(await dispatcher.flush()).toBe(1);
    expect(calls).toEqual([{ functionId: 'worker', async: true, body: JSON.stringify({ jobId: 'job_1' }) }]);
    expect(dispatcher.pending()).toBe(0);
    dispatcher.request();
    await dispatcher.flush();
    expect(calls[1]).toEqual({ functionId: 'worker', async: true, body: JSON.stringify({ jobId: null }) });
  });

  it('logs a failed start and does not throw', async () => {
    const { lines, log } = recordingLog();
    const dispatcher = createJobDispatcher({
      starter: { createExecution: () => Promise.reject(new Error('Server Error')) },
      log,
    });
    dispatcher.request('job_1');
    expect(await dispatcher.flush()).toBe(0);
    expect(lines).toMatchObject([{ level: 'error', jobId: 'job_1', err: { message: 'Server Error' } }]);
  });

  it('gives up on an Appwrite that does not answer', async () => {
    const { lines, log } = recordingLog();
    const dispatcher = createJobDispatcher({ starter: { createExecution: () => new Promise(() => undefined) }, log, timeoutMs: 20 });
    dispatcher.request('job_1');
    expect(await dispatcher.flush()).toBe(0);
    expect((lines[0]?.err as { message: string }).message).toContain('no answer within 20 ms');
  });
});
