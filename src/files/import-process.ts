// The entry of an import process (import-child.ts starts it). Its arguments say the file's format and whether it is
// read in a worker thread: that worker is started first, so that it loads its modules (~150 ms) while this thread
// loads the hub's (import-run.ts, which then runs the import the parent sends over IPC).
import type { ParentMessage } from './import-child.ts';
import { prestartReader } from './reader-boot.ts';

// The parent gone (the hub stopped or crashed): stop here; the run resumes after its cursor when the job retries.
process.on('disconnect', () => process.exit(0));
// Messages that come while the hub's modules load are kept for it.
const early: ParentMessage[] = [];
const hold = (m: ParentMessage) => void early.push(m);
process.on('message', hold);
const [format, reading] = process.argv.slice(2);
if (reading === 'worker' && (format === 'csv' || format === 'xml' || format === 'xlsx')) prestartReader(format);
const { serve } = await import('./import-run.ts');
process.off('message', hold);
serve(early);
