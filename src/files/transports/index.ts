// Opens the transport an exchange names, with its decrypted secrets and the hub's defaults (the files folder,
// the SMTP server, the Appwrite project). The exchange code never knows which transport it is talking to.
import { HubError } from '../../errors.ts';
import { createStorageSource, createStorageTarget } from './appwrite-storage.ts';
import { createEmailTarget } from './email.ts';
import { createFolderSource, createFolderTarget } from './folder.ts';
import { createSftpSource, createSftpTarget } from './sftp.ts';
import type { FileSource, FileTarget } from './types.ts';

export type { FileSource, FileTarget, PutInfo, SourceFile } from './types.ts';

export const TRANSPORT_TYPES = ['folder', 'sftp', 'appwrite-storage', 'email'] as const;
export type TransportType = (typeof TRANSPORT_TYPES)[number];

/** An exchange's `transport` as stored (no secrets). */
export type TransportConfig = { type: TransportType } & Record<string, unknown>;

export interface TransportSecrets {
  password?: string;
  privateKey?: string;
  passphrase?: string;
  apiKey?: string;
}

export interface TransportEnv {
  /** Root of the folder transport. */
  filesDir: string;
  smtpUrl?: string;
  mailFrom: string;
  appwrite?: { endpoint?: string; projectId?: string; apiKey?: string };
  fetch?: typeof fetch;
}

function str(config: TransportConfig, key: string): string | undefined {
  const v = config[key];
  return typeof v === 'string' ? v : undefined;
}

function storageOptions(config: TransportConfig, secrets: TransportSecrets, env: TransportEnv) {
  const endpoint = str(config, 'endpoint') ?? env.appwrite?.endpoint;
  const projectId = str(config, 'projectId') ?? env.appwrite?.projectId;
  const apiKey = secrets.apiKey ?? env.appwrite?.apiKey;
  if (!endpoint || !projectId || !apiKey) {
    throw new HubError('validation_failed', 'An Appwrite Storage transport needs an endpoint, a project and an API key (in the exchange, or APPWRITE_ENDPOINT, APPWRITE_PROJECT and APPWRITE_API_KEY)', {
      errors: [{ field: '/transport', code: 'incomplete', message: 'needs endpoint, projectId and secrets.apiKey, or the APPWRITE_* settings of the hub' }],
    });
  }
  return { endpoint, projectId, apiKey, bucketId: str(config, 'bucketId')!, ...(env.fetch ? { fetch: env.fetch } : {}) };
}

function sftpOptions(config: TransportConfig, secrets: TransportSecrets) {
  return {
    host: str(config, 'host')!,
    port: typeof config.port === 'number' ? config.port : 22,
    username: str(config, 'username')!,
    hostKey: str(config, 'hostKey')!,
    ...(secrets.password !== undefined ? { password: secrets.password } : {}),
    ...(secrets.privateKey !== undefined ? { privateKey: secrets.privateKey } : {}),
    ...(secrets.passphrase !== undefined ? { passphrase: secrets.passphrase } : {}),
  };
}

const defined = <T extends Record<string, unknown>>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

export function openSource(config: TransportConfig, secrets: TransportSecrets, env: TransportEnv): FileSource {
  switch (config.type) {
    case 'folder':
      return createFolderSource(defined({ root: env.filesDir, path: str(config, 'path'), pattern: str(config, 'pattern'), archivePath: str(config, 'archivePath'), errorPath: str(config, 'errorPath') }));
    case 'sftp':
      return createSftpSource(defined({ ...sftpOptions(config, secrets), path: str(config, 'path'), pattern: str(config, 'pattern'), archivePath: str(config, 'archivePath'), errorPath: str(config, 'errorPath') }));
    case 'appwrite-storage':
      return createStorageSource(defined({ ...storageOptions(config, secrets, env), prefix: str(config, 'prefix'), archivePrefix: str(config, 'archivePrefix'), errorPrefix: str(config, 'errorPrefix'), pattern: str(config, 'pattern') }));
    default:
      throw new HubError('validation_failed', `Files cannot be imported from a ${config.type} transport`, {
        errors: [{ field: '/transport/type', code: 'not_a_source', message: 'imports read from folder, sftp or appwrite-storage' }],
      });
  }
}

export function openTarget(config: TransportConfig, secrets: TransportSecrets, env: TransportEnv, mail: { subject: string }): FileTarget {
  switch (config.type) {
    case 'folder':
      return createFolderTarget(defined({ root: env.filesDir, path: str(config, 'path') }));
    case 'sftp':
      return createSftpTarget(defined({ ...sftpOptions(config, secrets), path: str(config, 'path') }));
    case 'appwrite-storage':
      return createStorageTarget(defined({ ...storageOptions(config, secrets, env), prefix: str(config, 'prefix') }));
    case 'email': {
      if (!env.smtpUrl) {
        throw new HubError('validation_failed', 'Email exports need an SMTP server: set HUB_SMTP_URL', {
          errors: [{ field: '/transport/type', code: 'smtp_not_configured', message: 'HUB_SMTP_URL is not set' }],
        });
      }
      return createEmailTarget(
        defined({
          smtpUrl: env.smtpUrl,
          from: env.mailFrom,
          to: config.to as string[],
          cc: config.cc as string[] | undefined,
          subject: str(config, 'subject') ?? mail.subject,
          text: str(config, 'text'),
        }),
      );
    }
    default:
      throw new HubError('validation_failed', `Unknown transport ${String(config.type)}`, { errors: [{ field: '/transport/type', code: 'enum', message: `must be one of ${TRANSPORT_TYPES.join(', ')}` }] });
  }
}
