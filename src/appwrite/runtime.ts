// The hub on Appwrite Functions: configuration from the function's variables, the TablesDB store on the execution's
// dynamic key, a job dispatcher that starts `worker` executions, and the wrapper every entrypoint goes through
// (trigger check, problem+json for every failure, logs into the execution's log). Entrypoints stay a few lines.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { HubConfig } from '../config.ts';
import { isHubError } from '../errors.ts';
import type { Hub } from '../hub.ts';
import type { Logger } from '../lib/log.ts';
import type { AppwriteStore } from '../store/appwrite.ts';
import {
  APPWRITE_HEADERS,
  headerOf,
  type AppwriteContext,
  type AppwriteFunction,
  type AppwriteResponseObject,
  type AppwriteTrigger,
} from './context.ts';
import { problemResponse, requestUrl } from './http.ts';

type Env = Record<string, string | undefined>;

/** The function `$id` in appwrite.json that runs jobs. */
export const WORKER_FUNCTION_ID = 'worker';

// ---------------------------------------------------------------------------------------------------------------
// Dispatcher

/** The one node-appwrite call the dispatcher makes (Functions satisfies it; tests may pass their own). */
export interface ExecutionStarter {
  createExecution(params: { functionId: string; body?: string; async?: boolean }): Promise<unknown>;
}

export interface JobDispatcher {
  /** Asks for a worker execution; requests made before the next flush share one execution. */
  request(jobId?: string | null): void;
  pending(): number;
  /** Starts the execution asked for, if any; returns how many were started. Logs failures, never throws. */
  flush(): Promise<number>;
}

export function createJobDispatcher(options: {
  starter: ExecutionStarter;
  log: Logger;
  functionId?: string;
  timeoutMs?: number;
}): JobDispatcher {
  const functionId = options.functionId ?? WORKER_FUNCTION_ID;
  const timeoutMs = options.timeoutMs ?? 10_000;
  let waiting: (string | null)[] = [];
  return {
    request(jobId = null) {
      waiting.push(jobId);
    },
    pending: () => waiting.length,
    async flush() {
      if (waiting.length === 0) return 0;
      const batch = waiting;
      waiting = [];
      const jobId = batch.find((id) => id !== null) ?? null;
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        // Async: Appwrite queues the execution and answers at once. One worker execution drains every due job,
        // so a batch of enqueues needs one; a lost request is caught by the scheduler's next tick.
        await Promise.race([
          options.starter.createExecution({ functionId, async: true, body: JSON.stringify({ jobId }) }),
          new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs))),
        ]);
        options.log.debug('worker execution requested', { jobId, jobs: batch.length });
        return 1;
      } catch (err) {
        options.log.error('could not start a worker execution; the scheduler will on its next tick', { err, jobId, jobs: batch.length });
        return 0;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Configuration

/** The function cannot run as configured; the message names the variables to fix. */
export class SetupError extends Error {
  constructor(
    readonly problems: string[],
    readonly variables: string[],
  ) {
    super(problems.join('; '));
    this.name = 'SetupError';
  }
}

// Everything heavy (the app, ajv, node-appwrite) is imported on the first execution, not at module load: a cold
// start that answers a bad trigger or a missing variable pays nothing for it. esbuild keeps these lazy in the bundle.
function loadLibrary() {
  return Promise.all([
    import('../hub.ts'),
    import('../config.ts'),
    import('../lib/secrets.ts'),
    import('../lib/log.ts'),
    import('../store/appwrite.ts'),
    import('node-appwrite'),
  ]).then(([hub, config, secrets, log, store, sdk]) => ({ ...hub, ...config, ...secrets, ...log, ...store, Client: sdk.Client, Functions: sdk.Functions }));
}
type Library = Awaited<ReturnType<typeof loadLibrary>>;
let library: Promise<Library> | null = null;

function origin(context: AppwriteContext): string {
  return new URL(requestUrl(context.req)).origin;
}

/** What a container's hub depends on; a change (a new variable value) builds a new one. */
function fingerprintOf(env: Env, context: AppwriteContext): string {
  const hubVars = Object.entries(env)
    .filter(([k]) => k.startsWith('HUB_'))
    .sort(([a], [b]) => (a < b ? -1 : 1));
  const publicUrl = env.HUB_PUBLIC_URL?.trim() ? '' : origin(context);
  return JSON.stringify([env.APPWRITE_FUNCTION_API_ENDPOINT, env.APPWRITE_FUNCTION_PROJECT_ID, publicUrl, hubVars]);
}

interface Settings {
  endpoint: string;
  projectId: string;
  config: HubConfig;
  encryptionKey: Buffer;
}

function readSettings(env: Env, context: AppwriteContext, lib: Library): Settings {
  const problems: string[] = [];
  const endpoint = env.APPWRITE_FUNCTION_API_ENDPOINT?.trim() ?? '';
  const projectId = env.APPWRITE_FUNCTION_PROJECT_ID?.trim() ?? '';
  if (!endpoint) problems.push('APPWRITE_FUNCTION_API_ENDPOINT is not set (Appwrite sets it in every function; set it for a local run)');
  if (!projectId) problems.push('APPWRITE_FUNCTION_PROJECT_ID is not set (Appwrite sets it in every function; set it for a local run)');
  const rawKey = env.HUB_ENCRYPTION_KEY?.trim();
  const encryptionKey = rawKey ? lib.parseEncryptionKey(rawKey) : null;
  // Required here, unlike the embedded hub: a function has no disk to keep a generated key on.
  if (!rawKey) problems.push('HUB_ENCRYPTION_KEY is required on Appwrite: add it as a variable of the project (generate one with: openssl rand -base64 32)');
  else if (!encryptionKey) problems.push('HUB_ENCRYPTION_KEY must be 32 bytes, as 64 hex characters or base64 (generate one with: openssl rand -base64 32)');
  let config: HubConfig | null = null;
  try {
    // Without HUB_PUBLIC_URL the address this execution was called at is the best guess of the public one.
    config = lib.loadConfig({ ...env, HUB_PUBLIC_URL: env.HUB_PUBLIC_URL?.trim() || origin(context), HUB_ENCRYPTION_KEY: undefined }, '/tmp');
  } catch (err) {
    if (!(err instanceof lib.ConfigError)) throw err;
    problems.push(...err.problems);
  }
  if (problems.length || !config || !encryptionKey) {
    const variables = [...new Set(problems.map((p) => /^[A-Z][A-Z0-9_]+/.exec(p)?.[0]).filter((v): v is string => !!v))];
    throw new SetupError(problems, variables);
  }
  return { endpoint, projectId, config, encryptionKey };
}

// ---------------------------------------------------------------------------------------------------------------
// The container's state

/** What an entrypoint gets: the hub and its parts for this container, with this execution's key in place. */
export interface FunctionRuntime {
  config: HubConfig;
  log: Logger;
  store: AppwriteStore;
  dispatcher: JobDispatcher;
  env: Env;
  /**
   * The container's hub, built on its first execution and kept while the container is warm (the API key cache,
   * rate limit counters and compiled validators live in it). Its enqueues ask the dispatcher for a worker.
   */
  hub(): Hub;
  /** A hub for this execution alone, whose worker can be started and stopped; its enqueues start no execution. */
  newHub(): Hub;
}

interface Container {
  fingerprint: string;
  runtime: Omit<FunctionRuntime, 'env'>;
  functionsClient: { setKey(key: string): unknown };
}

let container: Container | null = null;
const executions = new AsyncLocalStorage<AppwriteContext>();

/**
 * Log lines go to the execution that is running (Appwrite keeps them with it in the Console); the runtime does not
 * capture process.stdout, which is only the fallback for work outside any execution.
 */
function writeLine(line: string): void {
  const context = executions.getStore();
  if (!context) process.stdout.write(`${line}\n`);
  else if (/^\{"time":"[^"]*","level":"(?:warn|error)"/.test(line)) context.error(line);
  else context.log(line);
}

function buildContainer(settings: Settings, key: string, fingerprint: string, lib: Library): Container {
  const { endpoint, projectId, config, encryptionKey } = settings;
  const log = lib.createLogger(config.logLevel, {}, writeLine);
  const store = lib.createAppwriteStore({ endpoint, projectId, apiKey: key, writesPerTransaction: config.appwriteTransactionWrites });
  const functions = new lib.Functions(new lib.Client().setEndpoint(endpoint).setProject(projectId).setKey(key));
  const dispatcher = createJobDispatcher({ starter: functions, log: log.child({ part: 'dispatch' }) });
  let shared: Hub | null = null;
  // Storage exchanges default to this project, with the execution's key (the function's scopes).
  const newHub = () => lib.createHub({ config, store, encryptionKey, log, appwrite: { endpoint, projectId, apiKey: key } });
  return {
    fingerprint,
    functionsClient: functions.client,
    runtime: {
      config,
      log,
      store,
      dispatcher,
      newHub,
      hub() {
        if (!shared) {
          shared = newHub();
          shared.queue.onEnqueue((job) => dispatcher.request(job.id));
          // Webhook deliveries are sent by the worker too: a request that created some starts one.
          shared.onDeliveriesCreated(() => dispatcher.request());
        }
        return shared;
      },
    },
  };
}

async function acquireRuntime(context: AppwriteContext, env: Env): Promise<FunctionRuntime> {
  const lib = await (library ??= loadLibrary());
  // Appwrite mints a new dynamic key for every execution (valid for the function's timeout): the container keeps
  // its hub and swaps the key in, rather than rebuilding the hub (and losing its caches) on every call.
  const key = headerOf(context.req.headers, APPWRITE_HEADERS.key)?.trim() || env.APPWRITE_API_KEY?.trim();
  const fingerprint = fingerprintOf(env, context);
  const current = container?.fingerprint === fingerprint ? container : null;
  // Checked on every call until it passes, so a misconfigured function keeps naming what to fix.
  const settings = current ? null : readSettings(env, context, lib);
  if (!key) {
    throw new SetupError(['No Appwrite API key: Appwrite sends one in the x-appwrite-key header; for a local run set APPWRITE_API_KEY'], ['APPWRITE_API_KEY']);
  }
  if (current) {
    current.runtime.store.setApiKey(key);
    current.functionsClient.setKey(key);
    return { ...current.runtime, env };
  }
  container = buildContainer(settings!, key, fingerprint, lib);
  return { ...container.runtime, env };
}

// ---------------------------------------------------------------------------------------------------------------
// Entrypoints

export interface FunctionSpec {
  name: string;
  /** Triggers this function answers; any other gets a 400 problem. A request without the header counts as http. */
  triggers: readonly AppwriteTrigger[];
}

export type FunctionHandler = (context: AppwriteContext, runtime: FunctionRuntime) => Promise<AppwriteResponseObject>;

async function execute(spec: FunctionSpec, handler: FunctionHandler, context: AppwriteContext, env: Env): Promise<AppwriteResponseObject> {
  const trigger = (headerOf(context.req.headers, APPWRITE_HEADERS.trigger) ?? 'http').trim().toLowerCase();
  if (!(spec.triggers as readonly string[]).includes(trigger)) {
    return problemResponse(context.res, 'validation_failed', `The ${spec.name} function answers ${spec.triggers.join(' or ')} triggers, not "${trigger}"`, {
      trigger,
      accepted: spec.triggers,
    });
  }
  let runtime: FunctionRuntime;
  try {
    runtime = await acquireRuntime(context, env);
  } catch (err) {
    if (err instanceof SetupError) {
      context.error(`The ${spec.name} function is not configured: ${err.message}`);
      return problemResponse(context.res, 'internal_error', `The function is not configured: ${err.message}`, { variables: err.variables });
    }
    context.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    return problemResponse(context.res, 'internal_error', 'The function could not start; its execution log says why');
  }
  try {
    return await handler(context, runtime);
  } catch (err) {
    // Never let the runtime answer: it sends an empty 500, which Appwrite turns into an HTML page.
    if (isHubError(err) && err.status < 500) return problemResponse(context.res, err.code, err.message);
    runtime.log.error(`${spec.name} failed`, { err });
    if (isHubError(err)) return problemResponse(context.res, err.code, err.message);
    return problemResponse(context.res, 'internal_error', 'Something went wrong on our side; the execution log says what');
  } finally {
    // Enqueues of this execution are committed by now, so the worker that starts finds them.
    await runtime.dispatcher.flush();
  }
}

/** Wraps an entrypoint: the returned function is the module's default export. */
export function defineFunction(spec: FunctionSpec, handler: FunctionHandler, env: () => Env = () => process.env): AppwriteFunction {
  return (context) => executions.run(context, () => execute(spec, handler, context, env()));
}
