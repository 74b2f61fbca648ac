// Configuration from the environment, checked once at start: a bad value names its variable and what is wrong.
import { resolve } from 'node:path';
import type { LogLevel } from './lib/log.ts';
import { parseAllowList } from './webhooks/ssrf.ts';
import { parseSchedule, STANDARD_SCHEDULE_MS } from './webhooks/schedule.ts';

export interface HubConfig {
  port: number;
  host: string;
  dataDir: string;
  /** Base URL the hub is reached at (for docs links, token issuer); derived from host and port when unset. */
  publicUrl: string;
  /** HUB_ENCRYPTION_KEY as given (parsed later); undefined means "use or create data/encryption.key". */
  encryptionKey: string | undefined;
  corsOrigins: string[];
  maxBodyBytes: number;
  rateLimitPerMinute: number;
  workerConcurrency: number;
  /** `npm start` runs the job worker on a thread of its own (its own SQLite connection, a second core). */
  workerThread: boolean;
  /** Jobs of inbound webhooks (each up to 64 gathered while it waited) applied at once, in a lane of their own. */
  inboxConcurrency: number;
  keyGraceSeconds: number;
  trustProxy: boolean;
  metricsToken: string | undefined;
  logLevel: LogLevel;
  shutdownTimeoutMs: number;
  /** How long a claimed job is leased before another worker may take it over. */
  jobLeaseMs: number;
  /** How long a looked-up API key is trusted before it is read again (changes through this process apply at once). */
  authCacheMs: number;
  /** Finished jobs (succeeded, cancelled, dead) are deleted this many days after they finished. */
  jobRetentionDays: number;
  /** Events are deleted from the feed this many days after they happened. */
  eventRetentionDays: number;
  /** On Appwrite: the `worker` function's timeout (appwrite.json), which Appwrite does not tell the function. */
  workerTimeoutSeconds: number;
  /** On Appwrite: the operations one transaction may stage (100 on the Free plan, 1,000 on Pro). */
  appwriteTransactionWrites: number;
  /** SQLite's page cache of the embedded store, in MB. */
  sqliteCacheMb: number;
  /** How often `npm start`'s checkpointer thread copies the WAL into the database file (0: each commit that fills it does). */
  sqliteCheckpointMs: number;
  webhooks: WebhookConfig;
  files: FilesConfig;
}

export interface FilesConfig {
  /** The local folder transport's root: exchanges name folders inside it, never outside. */
  dir: string;
  /** Where files are staged while they are imported (and uploads wait for their job). */
  spoolDir: string;
  /** Largest upload to POST /v1/imports. */
  maxUploadBytes: number;
  /** SMTP server that mails exports (smtp:// or smtps://, credentials in the URL); unset: email exports are refused. */
  smtpUrl: string | undefined;
  /** The From address of mailed exports. */
  mailFrom: string;
  /** How often the embedded scheduler looks for due schedules. */
  schedulerIntervalMs: number;
  /** Finished file runs and their reports are deleted this many days after they finished. */
  runRetentionDays: number;
  /** Files at least this large are imported by a process of their own (embedded hub); Infinity: never. */
  importProcessMinBytes: number;
}

export interface WebhookConfig {
  /** IPs and CIDRs that outbound webhooks may reach although they are loopback, private or link-local. */
  allow: string[];
  /** Delay before each attempt of a delivery (the first is normally 0); its length is the number of attempts. */
  retrySchedule: number[];
  /** One attempt's limit: connect, send, and the receiver's answer. */
  timeoutMs: number;
  /** An endpoint whose every attempt failed for this long is disabled. */
  disableAfterMs: number;
  /** Deliveries in flight at once, across endpoints; 0: this process sends none (another one does). */
  concurrency: number;
  /** How long inbound webhook and delivery attempt logs are kept (deliveries and the inbox follow the jobs' retention). */
  attemptRetentionDays: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Configuration is not valid:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env, cwd = process.cwd()): HubConfig {
  const problems: string[] = [];

  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return fallback;
    const n = Number(raw);
    if (!/^\s*\d+\s*$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max} (got "${raw}")`);
      return fallback;
    }
    return n;
  };
  const bool = (name: string, fallback: boolean): boolean => {
    const raw = env[name]?.trim().toLowerCase();
    if (raw === undefined || raw === '') return fallback;
    if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
    if (['0', 'false', 'no', 'off'].includes(raw)) return false;
    problems.push(`${name} must be true or false (got "${env[name]}")`);
    return fallback;
  };

  const port = int('HUB_PORT', 8787, 0, 65535);
  const host = env.HUB_HOST?.trim() || '127.0.0.1';
  const dataDir = resolve(cwd, env.HUB_DATA_DIR?.trim() || 'data');

  let publicUrl = env.HUB_PUBLIC_URL?.trim() || '';
  if (publicUrl) {
    try {
      const u = new URL(publicUrl);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('protocol');
      publicUrl = publicUrl.replace(/\/+$/, '');
    } catch {
      problems.push(`HUB_PUBLIC_URL must be an http(s) URL such as https://hub.example.com (got "${publicUrl}")`);
    }
  } else {
    const shownHost = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
    publicUrl = `http://${shownHost}:${port}`;
  }

  const corsOrigins = (env.HUB_CORS_ORIGINS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const o of corsOrigins) {
    if (o !== '*' && !/^https?:\/\/[^/\s]+$/.test(o)) {
      problems.push(`HUB_CORS_ORIGINS must list origins like https://app.example.com or *, separated by commas (got "${o}")`);
    }
  }

  const list = <T>(name: string, parse: (raw: string) => T[], fallback: T[] = []): T[] => {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return fallback;
    try {
      return parse(raw);
    } catch (err) {
      problems.push(`${name}: ${(err as Error).message}`);
      return fallback;
    }
  };

  const levels: LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];
  const logLevel = (env.HUB_LOG_LEVEL?.trim() || 'info') as LogLevel;
  if (!levels.includes(logLevel)) problems.push(`HUB_LOG_LEVEL must be one of ${levels.join(', ')} (got "${env.HUB_LOG_LEVEL}")`);

  const config: HubConfig = {
    port,
    host,
    dataDir,
    publicUrl,
    encryptionKey: env.HUB_ENCRYPTION_KEY?.trim() || undefined,
    corsOrigins,
    maxBodyBytes: int('HUB_MAX_BODY_BYTES', 1024 * 1024, 1024, 100 * 1024 * 1024),
    rateLimitPerMinute: int('HUB_RATE_LIMIT_PER_MINUTE', 600, 1, 10_000_000),
    workerConcurrency: int('HUB_WORKER_CONCURRENCY', 4, 0, 256),
    workerThread: bool('HUB_WORKER_THREAD', true),
    inboxConcurrency: int('HUB_INBOX_CONCURRENCY', 64, 1, 1000),
    keyGraceSeconds: int('HUB_KEY_GRACE_SECONDS', 86_400, 0, 30 * 86_400),
    trustProxy: bool('HUB_TRUST_PROXY', false),
    metricsToken: env.HUB_METRICS_TOKEN?.trim() || undefined,
    logLevel,
    shutdownTimeoutMs: int('HUB_SHUTDOWN_TIMEOUT_MS', 30_000, 0, 600_000),
    jobLeaseMs: int('HUB_JOB_LEASE_MS', 30_000, 1000, 3_600_000),
    authCacheMs: int('HUB_AUTH_CACHE_MS', 5000, 0, 60_000),
    jobRetentionDays: int('HUB_JOB_RETENTION_DAYS', 14, 1, 3650),
    eventRetentionDays: int('HUB_EVENT_RETENTION_DAYS', 30, 1, 3650),
    workerTimeoutSeconds: int('HUB_WORKER_TIMEOUT_SECONDS', 900, 10, 86_400),
    appwriteTransactionWrites: int('HUB_APPWRITE_TRANSACTION_WRITES', 100, 10, 100_000),
    sqliteCacheMb: int('HUB_SQLITE_CACHE_MB', 4, 2, 65_536),
    sqliteCheckpointMs: int('HUB_SQLITE_CHECKPOINT_MS', 100, 0, 60_000),
    webhooks: {
      allow: list('HUB_WEBHOOK_ALLOW', parseAllowList),
      retrySchedule: list('HUB_WEBHOOK_RETRY_SCHEDULE', parseSchedule, [...STANDARD_SCHEDULE_MS]),
      timeoutMs: int('HUB_WEBHOOK_TIMEOUT_MS', 15_000, 100, 120_000),
      disableAfterMs: int('HUB_WEBHOOK_DISABLE_AFTER_HOURS', 120, 1, 24 * 365) * 3_600_000,
      concurrency: int('HUB_WEBHOOK_CONCURRENCY', 256, 0, 10_000),
      attemptRetentionDays: int('HUB_WEBHOOK_ATTEMPT_RETENTION_DAYS', 14, 1, 3650),
    },
    files: {
      dir: resolve(cwd, env.HUB_FILES_DIR?.trim() || resolve(dataDir, 'files')),
      spoolDir: resolve(dataDir, 'spool'),
      maxUploadBytes: int('HUB_MAX_UPLOAD_BYTES', 1024 * 1024 * 1024, 1024, 64 * 1024 * 1024 * 1024),
      smtpUrl: smtpUrl(env.HUB_SMTP_URL, problems),
      mailFrom: env.HUB_MAIL_FROM?.trim() || 'Inventory hub <hub@localhost>',
      schedulerIntervalMs: int('HUB_SCHEDULER_INTERVAL_MS', 5000, 100, 600_000),
      runRetentionDays: int('HUB_FILE_RUN_RETENTION_DAYS', 90, 1, 3650),
      importProcessMinBytes: env.HUB_IMPORT_PROCESS_MIN_BYTES?.trim().toLowerCase() === 'off' ? Infinity : int('HUB_IMPORT_PROCESS_MIN_BYTES', 4 * 1024 * 1024, 0, Number.MAX_SAFE_INTEGER),
    },
  };
  if (problems.length) throw new ConfigError(problems);
  return config;
}

function smtpUrl(raw: string | undefined, problems: string[]): string | undefined {
  const value = raw?.trim();
  if (!value) return undefined;
  try {
    const u = new URL(value);
    if (u.protocol !== 'smtp:' && u.protocol !== 'smtps:') throw new Error('protocol');
    return value;
  } catch {
    problems.push('HUB_SMTP_URL must be an smtp:// or smtps:// URL, e.g. smtps://user:password@mail.example.com:465');
    return undefined;
  }
}

/** A config for tests and embedding: defaults, overridden by what is given. */
export function testConfig(overrides: Partial<HubConfig> = {}): HubConfig {
  return { ...loadConfig({ HUB_DATA_DIR: '/nonexistent-test-data' }), logLevel: 'silent', ...overrides };
}
