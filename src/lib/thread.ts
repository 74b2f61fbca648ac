// Starting a worker thread on a module beside the caller's, from the bundle (dist/hub/*.js) or from the TypeScript
// sources (tests, npm run dev). This module needs only Node: a process may start a thread before it loads the hub.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker, type ResourceLimits } from 'node:worker_threads';

/** The URL of module `name` beside `base` (the caller's import.meta.url), in the caller's own language. */
export function siblingEntry(base: string, name: string): string {
  return new URL(`./${name}${base.endsWith('.ts') ? '.ts' : '.js'}`, base).href;
}

/** Where tsx's loader is when the entry is TypeScript; the thread then registers it first. */
function tsxLoader(entry: string): string | null {
  if (!entry.endsWith('.ts')) return null;
  try {
    // The ESM build: tsx's CommonJS API cannot register its hooks from a worker.
    if (typeof import.meta.resolve === 'function') return import.meta.resolve('tsx/esm/api');
    return pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  } catch {
    return null;
  }
}

// An eval'd bootstrap (CommonJS), so that a thread from TypeScript sources has tsx before its entry is loaded:
// loader flags alone do not reach a worker's entry module on Node 20.
const BOOT = `const { workerData } = require('node:worker_threads');
(async () => {
  if (workerData.loader) (await import(workerData.loader)).register();
  await import(workerData.entry);
})().catch((err) => process.nextTick(() => { throw err; }));`;

/** Starts a thread on `entry` (see siblingEntry); it finds `data` at `workerData.data`. */
export function startThread(entry: string, options: { data?: unknown; resourceLimits?: ResourceLimits } = {}): Worker {
  return new Worker(BOOT, { eval: true, workerData: { entry, loader: tsxLoader(entry), data: options.data }, resourceLimits: options.resourceLimits });
}

/**
 * Asks a thread to stop (posts `message`) and waits for it to exit, up to `graceMs`; then ends it however far it got.
 * Answers whether it had to be ended.
 */
export async function stopThread(thread: Worker, message: unknown, graceMs: number): Promise<boolean> {
  const exited = new Promise<'exited'>((resolve) => thread.once('exit', () => resolve('exited')));
  thread.postMessage(message);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
  const ended = (await Promise.race([exited, late])) === 'late';
  clearTimeout(timer);
  if (ended) await thread.terminate();
  return ended;
}
