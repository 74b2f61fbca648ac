// The worker thread of a large import (decide.ts): reads the staged file, maps and checks each record, and posts
// the decided items in chunks to the import, which applies them.
import { parentPort, workerData } from 'node:worker_threads';
import { compilePortable } from '../mappings/compile.ts';
import { makeDecider, runReadWorker, type DecideJob } from './decide.ts';
import { reasonOf } from './failure.ts';
import { openSpool } from './stage.ts';

const { job, ahead } = workerData as { job: DecideJob; ahead: number };
const port = parentPort!;
let decide: ReturnType<typeof makeDecider> | null = null;
try {
  const mapping = job.mapping ? compilePortable(job.mapping) : null;
  decide = makeDecider(mapping, job.schema);
} catch (err) {
  port.postMessage({ t: 'failed', message: `the mapping could not be compiled: ${reasonOf(err)}` });
}
if (decide) await runReadWorker(job, decide, ahead, port, () => openSpool(job.path));
