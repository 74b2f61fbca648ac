// A local SMTP server for tests (smtp-server on 127.0.0.1, plain text, no STARTTLS): it keeps every delivered message
// parsed by mailparser with its envelope, can require a login and refuse chosen recipients, so email transports are
// tested against a real SMTP dialogue instead of a mocked nodemailer.
import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer, type SMTPServerError } from 'smtp-server';

export type ReceivedMail = ParsedMail & { envelope: { mailFrom: string | null; rcptTo: string[] } };

export interface TestSmtpServer {
  port: number;
  /** `smtp://[user:pass@]127.0.0.1:<port>`. */
  url(user?: string, pass?: string): string;
  messages: ReceivedMail[];
  /** Connections accepted so far: 0 proves a client sent nothing at all. */
  readonly connections: number;
  /** The first `n` messages, once they have arrived; rejects after `timeoutMs` (default 5 s). */
  waitFor(n: number, timeoutMs?: number): Promise<ReceivedMail[]>;
  close(): Promise<void>;
}

/** Messages above this are refused with 552, as a real server would (SIZE extension). */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

export async function startSmtpServer(options: { users?: Record<string, string>; rejectRecipients?: string[] } = {}): Promise<TestSmtpServer> {
  const messages: ReceivedMail[] = [];
  const rejected = new Set((options.rejectRecipients ?? []).map((a) => a.toLowerCase()));
  const waiters = new Set<() => void>();
  let connections = 0;

  const server = new SMTPServer({
    secure: false,
    disabledCommands: ['STARTTLS'],
    authOptional: options.users === undefined,
    allowInsecureAuth: true,
    size: MAX_MESSAGE_BYTES,
    logger: false,
    closeTimeout: 100,
    onConnect(_session, callback) {
      connections++;
      callback();
    },
    onAuth(auth, _session, callback) {
      const users = options.users ?? {};
      if (auth.username !== undefined && Object.hasOwn(users, auth.username) && users[auth.username] === auth.password) {
        callback(null, { user: auth.username });
        return;
      }
      callback(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
    },
    onRcptTo(address, _session, callback) {
      if (rejected.has(address.address.toLowerCase())) {
        callback(Object.assign(new Error(`Mailbox ${address.address} unavailable`), { responseCode: 550 }) as SMTPServerError);
        return;
      }
      callback();
    },
    onData(stream, session, callback) {
      simpleParser(stream)
        .then((mail) => {
          if (stream.sizeExceeded) {
            callback(Object.assign(new Error('Message exceeds the size limit'), { responseCode: 552 }));
            return;
          }
          const from = session.envelope.mailFrom;
          messages.push(Object.assign(mail, { envelope: { mailFrom: from ? from.address : null, rcptTo: session.envelope.rcptTo.map((r) => r.address) } }));
          for (const wake of waiters) wake();
          callback();
        })
        .catch((error: unknown) => callback(error instanceof Error ? error : new Error(String(error))));
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.server.address() as AddressInfo;

  return {
    port,
    url(user, pass) {
      const auth = user === undefined ? '' : `${encodeURIComponent(user)}${pass === undefined ? '' : `:${encodeURIComponent(pass)}`}@`;
      return `smtp://${auth}127.0.0.1:${port}`;
    },
    messages,
    get connections() {
      return connections;
    },
    waitFor(n, timeoutMs = 5000) {
      return new Promise<ReceivedMail[]>((resolve, reject) => {
        const check = () => {
          if (messages.length < n) return;
          cleanup();
          resolve(messages.slice(0, n));
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`expected ${n} message(s) within ${timeoutMs} ms, got ${messages.length}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    close() {
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
