import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { stopThread } from './thread.ts';

const thread = (onMessage: string) =>
  new Worker(`const { parentPort } = require('node:worker_threads'); parentPort.on('message', (m) => { ${onMessage} });`, { eval: true });

describe('stopThread', () => {
  it('waits for a thread that stops when asked', async () => {
    const t = thread('if (m.t === "stop") parentPort.close();');
    const exited = new Promise((resolve) => t.once('exit', resolve));
    expect(await stopThread(t, { t: 'stop' }, 5000)).toBe(false);
    await exited;
  });

  it('ends a thread that does not stop within the grace period, and says so', async () => {
    const t = thread('/* ignores it */');
    const started = Date.now();
    expect(await stopThread(t, { t: 'stop' }, 100)).toBe(true);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(t.threadId).toBe(-1);
  });
});
