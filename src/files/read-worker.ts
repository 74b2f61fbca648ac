// The worker thread of a large import (started by reader-boot.ts, driven by decide.ts): once its modules are loaded
// it waits for its job, then reads the staged file, maps and checks each record, and posts the decided items in
// chunks to the import, which applies them.
import { parentPort } from 'node:worker_threads';
import { compilePortable } from '../mappings/compile.ts';
import { makeDecider, runReadWorker, type DecideJob } from './decide.ts';
import { reasonOf } from './failure.ts';
import { openSpool } from './stage.ts';

const port = parentPort!;
// The first message is the job; the ones after it say a chunk was taken (runReadWorker counts them).
const { job, ahead } = await new Promise<{ job: DecideJob; ahead: number }>((resolve) => port.once('message', resolve));
let decide: ReturnType<typeof makeDecider> | null = null;
try {
  const mapping = job.mapping ? compilePortable(job.mapping) : null;
  decide = makeDecider(mapping, job.schema);
} catch (err) {
  port.postMessage({ t: 'failed', message: `the mapping could not be compiled: ${reasonOf(err)}` });
}
if (decide) await runReadWorker(job, decide, ahead, port, () => openSpool(job.path));
