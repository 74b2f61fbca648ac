// Exports by email: each file goes out as the attachment of one message over SMTP (nodemailer). The body is spooled
// to a temporary file first, so its size is known before anything is sent (an oversized export or a failed one never
// becomes a message) and memory stays flat: nodemailer reads the attachment from that file as it writes the message.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createTransport } from 'nodemailer';
import addressparser from 'nodemailer/lib/addressparser';
import { HubError, type FieldError } from '../../errors.ts';
import type { FileTarget, PutInfo } from './types.ts';

export interface EmailTargetOptions {
  /** e.g. smtp://user:pass@mail.example.com:587 (STARTTLS when offered), smtps://… for TLS from the start. */
  smtpUrl: string;
  /** 'hub@example.com' or 'Inventory hub <hub@example.com>'. */
  from: string;
  to: string[];
  cc?: string[];
  subject: string;
  /** The message text; default names the attached file. */
  text?: string;
  /** Largest attachment in bytes (before base64, which adds a third); default 20 MB, below most providers' 25 MB. */
  maxBytes?: number;
  tls?: { rejectUnauthorized?: boolean };
}

const DEFAULT_MAX_BYTES = 20 * 1024 * 1024;
/** nodemailer waits two minutes for a connection by default; a scheduled export should fail sooner. */
const CONNECTION_TIMEOUT_MS = 30_000;
/** A pragmatic mailbox check after addressparser: one @, no spaces, a domain of dot-separated labels. */
const MAILBOX = /^[^\s@]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

export function createEmailTarget(options: EmailTargetOptions): FileTarget {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  checkOptions(options, maxBytes);
  const transporter = createTransport({
    url: options.smtpUrl,
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    ...(options.tls ? { tls: { rejectUnauthorized: options.tls.rejectUnauthorized ?? true } } : {}),
  });

  return {
    async put(name: string, body: Readable, info: PutInfo): Promise<{ location: string }> {
      checkFileName(name);
      const dir = await mkdtemp(join(tmpdir(), 'hub-email-'));
      try {
        const path = join(dir, 'attachment');
        await pipeline(body, createWriteStream(path));
        const { size } = await stat(path);
        if (size > maxBytes) {
          throw new HubError('validation_failed', `The export ${name} has ${size} bytes, more than the ${maxBytes} bytes an email attachment may have here: send it over another transport (folder, SFTP, Appwrite Storage)`, {
            errors: [{ field: '/maxBytes', code: 'too_large', message: `The attachment has ${size} bytes; the limit is ${maxBytes}` }],
            extra: { size, maxBytes },
          });
        }
        let sent;
        try {
          sent = await transporter.sendMail({
            from: options.from,
            to: options.to,
            ...(options.cc?.length ? { cc: options.cc } : {}),
            subject: options.subject,
            text: options.text ?? `The attached file ${name} was exported by the inventory integration hub.`,
            attachments: [{ filename: name, content: createReadStream(path), contentType: info.contentType }],
          });
        } catch (err) {
          throw toHubError(err);
        }
        if (sent.rejected.length > 0) {
          // Delivered to the others already: a retry would send it to them twice, so this is reported, not retried.
          throw new HubError('upstream_rejected', `The mail server refused ${formatList(sent.rejected)}; ${name} went to ${formatList(sent.accepted)} only`, {
            extra: { messageId: sent.messageId, rejected: sent.rejected.map(String), accepted: sent.accepted.map(String) },
          });
        }
        return { location: sent.messageId };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },

    async close(): Promise<void> {
      transporter.close();
    },
  };
}

function formatList(addresses: unknown[]): string {
  return addresses.map((a) => (typeof a === 'string' ? a : (a as { address?: string }).address ?? String(a))).join(', ');
}

/** SMTP failures in the hub's vocabulary: who refused what, and whether trying again later can help. */
function toHubError(err: unknown): HubError {
  const e = err as { code?: string; responseCode?: number; response?: string; originalCode?: string; message?: string };
  const message = `The mail server ${e.responseCode ? `answered ${e.response ?? e.responseCode}` : `failed: ${e.message ?? String(err)}`}`;
  // 535 bad credentials; 530 authentication required (no credentials in the url)
  if (e.code === 'EAUTH' || e.code === 'ENOAUTH' || e.responseCode === 530 || e.responseCode === 535) {
    return new HubError('upstream_auth_failed', message, { cause: err });
  }
  if (e.code === 'ETLS' || e.code === 'ESOCKET' || e.code === 'ECONNECTION') {
    // A certificate that does not verify is a server identity problem, like a host key that does not match.
    if (/CERT|SELF_SIGNED|ALTNAME|UNABLE_TO_VERIFY/.test(e.originalCode ?? '')) return new HubError('upstream_auth_failed', message, { cause: err });
  }
  if (e.responseCode !== undefined && e.responseCode >= 500) return new HubError('upstream_rejected', message, { cause: err });
  if (e.responseCode !== undefined && e.responseCode >= 400) return new HubError('upstream_error', message, { cause: err });
  if (['ECONNECTION', 'ESOCKET', 'ETIMEDOUT', 'EDNS', 'ETLS', 'EPROXY'].includes(e.code ?? '')) {
    return new HubError('upstream_unreachable', message, { cause: err });
  }
  return new HubError('upstream_error', message, { cause: err });
}

function checkOptions(options: EmailTargetOptions, maxBytes: number): void {
  const errors: FieldError[] = [];
  let url: URL | null = null;
  try {
    url = new URL(options.smtpUrl);
  } catch {
    // reported below
  }
  if (!url || (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') || !url.hostname) {
    errors.push({ field: '/smtpUrl', code: 'invalid', message: 'smtpUrl must be smtp://[user:pass@]host[:port] or smtps://…' });
  }
  checkAddress(errors, '/from', options.from);
  if (!Array.isArray(options.to) || options.to.length === 0) errors.push({ field: '/to', code: 'required', message: 'At least one recipient is required' });
  else options.to.forEach((address, i) => checkAddress(errors, `/to/${i}`, address));
  if (options.cc !== undefined) {
    if (!Array.isArray(options.cc)) errors.push({ field: '/cc', code: 'invalid', message: 'cc must be a list of addresses' });
    else options.cc.forEach((address, i) => checkAddress(errors, `/cc/${i}`, address));
  }
  if (typeof options.subject !== 'string' || options.subject.trim() === '' || /[\r\n]/.test(options.subject)) {
    errors.push({ field: '/subject', code: 'invalid', message: 'subject must be one non-empty line' });
  }
  if (options.text !== undefined && typeof options.text !== 'string') errors.push({ field: '/text', code: 'invalid', message: 'text must be a string' });
  if (!Number.isInteger(maxBytes) || maxBytes < 1) errors.push({ field: '/maxBytes', code: 'invalid', message: 'maxBytes must be a positive integer' });
  if (errors.length > 0) throw new HubError('validation_failed', `The email settings are not valid: ${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`, { errors });
}

/** One mailbox, optionally with a display name ('Hub <hub@example.com>'); groups and lists are refused. */
function checkAddress(errors: FieldError[], field: string, value: unknown): void {
  const parsed = typeof value === 'string' && !/[\r\n]/.test(value) ? addressparser(value) : [];
  const only = parsed.length === 1 ? parsed[0] : undefined;
  if (!only || only.group !== undefined || !MAILBOX.test(only.address)) {
    errors.push({ field, code: 'invalid_email', message: `${JSON.stringify(value)} is not one email address` });
  }
}

/** The attachment's filename: the exchange passes plain names, but a header must never carry a line break. */
function checkFileName(name: string): void {
  if (typeof name !== 'string' || name === '' || /[\r\n\u0000/\\]/.test(name) || name.includes('..')) {
    throw new HubError('validation_failed', `'${String(name)}' is not a file name`, {
      errors: [{ field: '/name', code: 'invalid', message: 'A file name must be non-empty and have no "/", "\\", ".." or line breaks' }],
    });
  }
}
