// The SFTP transport: imports read from, and exports are written to, a folder on a partner's SFTP server. The
// server is trusted only under a pinned host key (its SHA-256 fingerprint, checked before any credential is sent),
// and everything it can do wrong becomes one of the hub's error codes, so a run report says "refused the password"
// or "connection lost halfway through stock.csv" instead of a library's sentence.
//
// ssh2-sftp-client opens and ends the connection; the file operations go straight to the ssh2 SFTP channel it
// returns, because its wrappers do not fit here: they drop SFTP status codes (so "no such file" cannot be told
// from "permission denied"), mkdir(recursive) mangles paths that start with a dot ('.exchange' became 'xchange'),
// list() takes a file's type from the text of the long listing, and ssh2's read stream, when the connection drops
// while no read is in flight, neither ends nor fails: it waits forever. Here every request is bounded by the
// timeout and fails at once when the connection is gone, and reads check their byte count against the file's size.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { posix } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import ssh2 from 'ssh2';
import type { ConnectConfig, FileEntryWithStats, SFTPWrapper, Stats } from 'ssh2';
import SftpClient from 'ssh2-sftp-client';
import { HubError, isHubError, type FieldError } from '../../errors.ts';
import { systemClock, type Clock } from '../../lib/clock.ts';
import { archiveName, checkFileName, checkPattern, checkRemotePath, collect, finishFolders, isFileName, joinPath, matchesPattern, throwIfAny } from './names.ts';
import type { FileSource, FileTarget, PutInfo, SourceFile } from './types.ts';

const { STATUS_CODE } = ssh2.utils.sftp;

export interface SftpOptions {
  host: string;
  /** Default 22. */
  port?: number;
  username: string;
  /** Exactly one of password and privateKey. */
  password?: string;
  /** OpenSSH or PEM private key text. */
  privateKey?: string;
  passphrase?: string;
  /** The server's host key fingerprint as `ssh-keygen -lf` prints it: 'SHA256:' and 43 base64 characters. Required. */
  hostKey: string;
  /** Bound on connecting and on each request to the server; default 20 s. */
  timeoutMs?: number;
  /** For the timestamp a clashing archive name gets. */
  clock?: Clock;
}

export interface SftpSourceOptions extends SftpOptions {
  /** Folder files wait in: relative to the login folder, or absolute on the server; default the login folder. */
  path?: string;
  /** Glob on file names (see matchesPattern); default '*'. */
  pattern?: string;
  /** Where imported files are moved, relative to the login folder like path; default 'archive' inside path. */
  archivePath?: string;
  /** Where rejected files are moved; default 'error' inside path. */
  errorPath?: string;
}

export interface SftpTargetOptions extends SftpOptions {
  /** Folder exports are written to, created when missing; default the login folder. */
  path?: string;
}

const DEFAULT_TIMEOUT_MS = 20_000;
/** One READ request: what every server answers in one packet (ssh2 splits larger reads for non-OpenSSH servers). */
const READ_CHUNK = 32 * 1024;
/** Later READs ask for no less, whatever a short answer gave (one short for no reason must not slow the rest). */
const MIN_READ = 8 * 1024;
/** READs a download keeps in flight (512 KB): OpenSSH's sftp keeps 64. */
const READ_AHEAD = 16;
/** WRITEs an upload keeps in flight (up to 1 MB of chunks of at most 64 KB). */
const WRITE_AHEAD = 16;
const MAX_ARCHIVE_ATTEMPTS = 100;
const FINGERPRINT = /^SHA256:([A-Za-z0-9+/]{43})=?$/;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

interface Settings {
  host: string;
  port: number;
  username: string;
  auth: { password: string } | { privateKey: string; passphrase?: string };
  /** The pinned SHA-256 digest of the host key blob. */
  hostKey: Buffer;
  hostKeyText: string;
  timeoutMs: number;
  clock: Clock;
  /** 'host:port', for messages. */
  server: string;
}

// --- configuration ------------------------------------------------------------------------------------------


function checkSettings(o: SftpOptions, errors: FieldError[]): Settings {
  const add = (field: string, code: string, message: string) => errors.push({ field, code, message });
  if (typeof o.host !== 'string' || o.host === '' || o.host.length > 255 || /[\s/\u0000-\u001f]/.test(o.host)) {
    add('/host', 'host', 'host must be a host name or an IP address');
  }
  const port = o.port ?? 22;
  if (!Number.isInteger(port) || port < 1 || port > 65535) add('/port', 'port', 'port must be an integer from 1 to 65535');
  if (typeof o.username !== 'string' || o.username === '' || /[\u0000-\u001f]/.test(o.username)) add('/username', 'required', 'username is required');
  const hasPassword = typeof o.password === 'string';
  const hasKey = typeof o.privateKey === 'string';
  if (hasPassword === hasKey) {
    add(hasKey ? '/privateKey' : '/password', hasKey ? 'conflict' : 'required', 'An SFTP login needs exactly one of a password and a private key');
  } else if (hasKey) {
    // Read now, so a key that cannot work is a configuration error and not a failed run at 3 a.m.
    const key = ssh2.utils.parseKey(o.privateKey!, o.passphrase);
    const parsed = Array.isArray(key) ? key[0] : key;
    if (parsed instanceof Error || !parsed?.isPrivateKey()) {
      const why = parsed instanceof Error ? `: ${parsed.message}` : ': it is not a private key';
      add('/privateKey', 'private_key', `The private key cannot be used (an OpenSSH or PEM private key, with its passphrase if it has one)${why}`);
    }
  }
  if (o.passphrase !== undefined && !hasKey) add('/passphrase', 'conflict', 'A passphrase goes with a private key');
  const pinned = typeof o.hostKey === 'string' ? FINGERPRINT.exec(o.hostKey.trim()) : null;
  if (!pinned) {
    add('/hostKey', 'host_key', "hostKey must be the server's fingerprint as `ssh-keygen -lf` prints it: 'SHA256:' and 43 base64 characters");
  }
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 600_000) add('/timeoutMs', 'timeout', 'timeoutMs must be an integer from 1 to 600000');
  return {
    host: o.host,
    port,
    username: o.username,
    auth: hasKey ? { privateKey: o.privateKey!, ...(o.passphrase !== undefined ? { passphrase: o.passphrase } : {}) } : { password: o.password! },
    hostKey: pinned ? Buffer.from(pinned[1]!, 'base64') : Buffer.alloc(32),
    hostKeyText: pinned ? `SHA256:${pinned[1]}` : '',
    timeoutMs,
    clock: o.clock ?? systemClock,
    server: `${o.host}:${port}`,
  };
}

/** The fingerprint `ssh-keygen -lf` shows for a host key blob (the key in its SSH wire form). */
export function hostKeyFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

// --- the connection -----------------------------------------------------------------------------------------

interface Connection {
  sftp: SFTPWrapper;
  /** Set once the connection or its SFTP channel is gone: every request after that fails with it at once. */
  lost: HubError | null;
  /** Called once when the connection is lost, for requests waiting on an answer. */
  onLost: Set<(err: HubError) => void>;
  /** Whether the server takes posix-rename@openssh.com; null until tried. */
  posixRename: boolean | null;
  /** Ends the connection now (no goodbye), as lost with `reason`. */
  kill(reason: HubError): void;
  end(): Promise<void>;
}

function unreachable(s: Settings, why: string, cause?: unknown): HubError {
  return new HubError('upstream_unreachable', `The SFTP server ${s.server} ${why}`, { cause });
}

/** Connects lazily, keeps the connection for the next call, and connects again after it was lost. */
class Session {
  #current: Connection | null = null;
  #connecting: Promise<Connection> | null = null;

  constructor(private readonly s: Settings) {}

  connection(): Promise<Connection> {
    if (this.#current && !this.#current.lost) return Promise.resolve(this.#current);
    this.#connecting ??= connect(this.s)
      .then((c) => (this.#current = c))
      .finally(() => (this.#connecting = null));
    return this.#connecting;
  }

  async close(): Promise<void> {
    await this.#connecting?.catch(() => {});
    const c = this.#current;
    this.#current = null;
    if (c && !c.lost) await c.end();
  }
}

async function connect(s: Settings): Promise<Connection> {
  // Without callbacks ssh2-sftp-client logs every end and close of a connection to the console.
  const client = new SftpClient('hub-sftp', { error: () => {}, end: () => {}, close: () => {} });
  // The ssh2 Client underneath: its errors carry a `level` (authentication, timeout, socket) that the wrapped
  // ones lose, and it is what can be destroyed when a request hangs.
  const raw = (client as unknown as { client: { destroy(): void } }).client;
  let presented: string | null = null;
  let hostKeyRefused = false;
  let firstError: (Error & { level?: string }) | null = null;
  const conn: Connection = {
    sftp: undefined as unknown as SFTPWrapper,
    lost: null,
    onLost: new Set(),
    posixRename: null,
    kill(reason) {
      lose(reason);
      raw.destroy();
    },
    async end() {
      lose(new HubError('upstream_unreachable', `The connection to the SFTP server ${s.server} was closed by the hub`));
      let timer: NodeJS.Timeout | undefined;
      // end() waits for the server's goodbye; a server that never sends it is cut off.
      const ended = Promise.race([client.end(), new Promise((resolve) => (timer = setTimeout(resolve, s.timeoutMs)))]);
      await ended.catch(() => {});
      clearTimeout(timer);
      raw.destroy();
    },
  };
  function lose(reason: HubError): void {
    if (conn.lost) return;
    conn.lost = reason;
    for (const listener of conn.onLost) listener(reason);
    conn.onLost.clear();
  }
  client.on('error', (err: Error & { level?: string }) => {
    firstError ??= err;
    lose(unreachable(s, `failed: ${err.message}`, err));
  });
  client.on('end', () => lose(unreachable(s, 'ended the connection')));
  client.on('close', () => lose(unreachable(s, 'closed the connection')));

  const config: ConnectConfig = {
    host: s.host,
    port: s.port,
    username: s.username,
    ...s.auth,
    // Only the method configured, so the server sees no 'none' attempt and no agent.
    authHandler: ['password' in s.auth ? 'password' : 'publickey'],
    tryKeyboard: false,
    readyTimeout: s.timeoutMs,
    // A dead peer (a pulled cable sends nothing) is noticed within about the timeout.
    keepaliveInterval: Math.max(1000, Math.ceil(s.timeoutMs / 3)),
    keepaliveCountMax: 3,
    // ssh2 asks before it sends any credential; a false answer ends the handshake.
    hostVerifier: (key: Buffer) => {
      const digest = createHash('sha256').update(key).digest();
      presented = hostKeyFingerprint(key);
      const same = digest.length === s.hostKey.length && timingSafeEqual(digest, s.hostKey);
      if (!same) hostKeyRefused = true;
      return same;
    },
  };
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(unreachable(s, `did not complete the connection within ${s.timeoutMs} ms`)), s.timeoutMs + 100);
    });
    conn.sftp = await Promise.race([client.connect(config), timeout]);
  } catch (err) {
    raw.destroy();
    throw connectFailure(s, err, firstError, hostKeyRefused ? presented : null);
  } finally {
    clearTimeout(timer);
  }
  // Requests are small and their answers awaited (a few in flight at most): Nagle's algorithm would hold one back
  // until the last packet was acknowledged, which the server's delayed ACK puts off. Measured on loopback against the
  // test server, one READ at a time: a 1 MB download took 6.4 s with it, 3.4 s without it here, 0.3 s without it on
  // both sides.
  (raw as unknown as { setNoDelay(on: boolean): void }).setNoDelay(true);
  // A failure of the SFTP channel alone (the server's sftp process died) loses the connection too.
  conn.sftp.on('close', () => conn.kill(unreachable(s, 'closed the SFTP channel')));
  conn.sftp.on('error', (err: Error) => conn.kill(unreachable(s, `broke the SFTP channel: ${err.message}`, err)));
  return conn;
}

function connectFailure(s: Settings, err: unknown, first: (Error & { level?: string }) | null, refusedKey: string | null): HubError {
  if (refusedKey !== null) {
    return new HubError(
      'upstream_auth_failed',
      `The SFTP server ${s.server} presented the host key ${refusedKey}, not the pinned ${s.hostKeyText}; nothing was sent to it. ` +
        'If the server was given a new key, pin the new fingerprint.',
      { extra: { hostKey: refusedKey } },
    );
  }
  if (first?.level === 'client-authentication') {
    return new HubError('upstream_auth_failed', `The SFTP server ${s.server} refused the ${'password' in s.auth ? 'password' : 'private key'} of '${s.username}'`, {
      cause: first,
    });
  }
  if (isHubError(err)) return err;
  if (first?.level === 'client-timeout') return unreachable(s, `did not complete the connection within ${s.timeoutMs} ms`, first);
  const cause = first ?? err;
  const code = (cause as NodeJS.ErrnoException | null)?.code;
  const why = code === 'ECONNREFUSED' ? 'refused the connection' : code === 'ENOTFOUND' ? 'is not a known host name' : `could not be reached: ${cause instanceof Error ? cause.message : String(cause)}`;
  return unreachable(s, why, cause);
}

/** An SFTP error in the hub's words. A request that fails because the connection went is the loss itself. */
function remoteError(s: Settings, conn: Connection, err: unknown, what: string): HubError {
  if (isHubError(err)) return err;
  if (conn.lost) return conn.lost;
  const status = (err as { code?: unknown } | null)?.code;
  const reason = err instanceof Error ? err.message : String(err);
  if (typeof status !== 'number') return unreachable(s, `stopped answering while ${what}: ${reason}`, err);
  const extra = { sftpStatus: status };
  if (status === STATUS_CODE.NO_SUCH_FILE) return new HubError('not_found', `No such file or folder on the SFTP server ${s.server} while ${what}`, { cause: err, extra });
  if (status === STATUS_CODE.PERMISSION_DENIED || status === STATUS_CODE.OP_UNSUPPORTED) {
    return new HubError('upstream_rejected', `The SFTP server ${s.server} refused ${what}: ${reason}`, { cause: err, extra });
  }
  return new HubError('upstream_error', `The SFTP server ${s.server} failed ${what}: ${reason}`, { cause: err, extra });
}

/**
 * One SFTP request: answered within the timeout (or the connection is cut, since its state is then unknown),
 * failing at once when the connection is gone (ssh2 would send it into the void and wait forever).
 */
function request<T>(s: Settings, conn: Connection, what: string, send: (sftp: SFTPWrapper, done: (err: Error | null | undefined, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (conn.lost) return reject(conn.lost);
    let settled = false;
    const settle = () => {
      settled = true;
      clearTimeout(timer);
      conn.onLost.delete(onLost);
    };
    const onLost = (err: HubError) => {
      settle();
      reject(err);
    };
    const timer = setTimeout(() => {
      settle();
      const err = unreachable(s, `did not answer within ${s.timeoutMs} ms while ${what}`);
      conn.kill(err);
      reject(err);
    }, s.timeoutMs);
    conn.onLost.add(onLost);
    try {
      send(conn.sftp, (err, value) => {
        if (settled) return;
        settle();
        if (err) reject(remoteError(s, conn, err, what));
        else resolve(value as T);
      });
    } catch (err) {
      // ssh2 throws for a request the server does not support (an extension it did not announce).
      settle();
      reject(err);
    }
  });
}

async function statOrNull(s: Settings, conn: Connection, path: string, follow = true): Promise<Stats | null> {
  try {
    return await request<Stats>(s, conn, `looking at ${path}`, (sftp, done) => (follow ? sftp.stat(path, done) : sftp.lstat(path, done)));
  } catch (err) {
    if (isHubError(err, 'not_found')) return null;
    throw err;
  }
}

/** mkdir -p, one level at a time; a folder made meanwhile by someone else is fine. */
async function ensureFolder(s: Settings, conn: Connection, dir: string): Promise<void> {
  if (dir === '' || dir === '/') return;
  const st = await statOrNull(s, conn, dir);
  if (st) {
    if (!st.isDirectory()) throw new HubError('upstream_rejected', `'${dir}' on the SFTP server ${s.server} is a file, not a folder`);
    return;
  }
  const parent = posix.dirname(dir);
  if (parent !== '.' && parent !== dir) await ensureFolder(s, conn, parent);
  try {
    await request(s, conn, `creating the folder ${dir}`, (sftp, done) => sftp.mkdir(dir, done));
  } catch (err) {
    if (!(await statOrNull(s, conn, dir))?.isDirectory()) throw err;
  }
}

function kindOf(entry: FileEntryWithStats): 'file' | 'link' | 'other' {
  const mode = entry.attrs.mode;
  if (typeof mode === 'number') return (mode & S_IFMT) === S_IFREG ? 'file' : (mode & S_IFMT) === S_IFLNK ? 'link' : 'other';
  // No permissions in the answer (allowed in SFTP v3): the long listing is all there is.
  return entry.longname.startsWith('-') ? 'file' : entry.longname.startsWith('l') ? 'link' : 'other';
}

/** Renames over an existing `to`: atomically where the server offers posix-rename, else by removing it first. */
async function renameReplacing(s: Settings, conn: Connection, from: string, to: string): Promise<void> {
  const what = `renaming ${from} to ${to}`;
  if (conn.posixRename !== false) {
    try {
      await request(s, conn, what, (sftp, done) => sftp.ext_openssh_rename(from, to, done));
      conn.posixRename = true;
      return;
    } catch (err) {
      if (isHubError(err) && err.extra?.sftpStatus !== STATUS_CODE.OP_UNSUPPORTED) throw err;
      conn.posixRename = false;
    }
  }
  try {
    await request(s, conn, what, (sftp, done) => sftp.rename(from, to, done));
  } catch (err) {
    // SFTP v3's RENAME does not replace a file; for a moment there is then no file of that name.
    if (conn.lost || !(await statOrNull(s, conn, to, false))) throw err;
    await request(s, conn, `removing the earlier ${to}`, (sftp, done) => sftp.unlink(to, done));
    await request(s, conn, what, (sftp, done) => sftp.rename(from, to, done));
  }
}

// --- streams ------------------------------------------------------------------------------------------------

/** A READ sent for a download, answered or not yet. */
interface PendingRead {
  offset: number;
  length: number;
  buffer: Buffer;
  /** Bytes the answer carried (0: end of file); undefined until it comes. */
  bytes?: number;
}

/**
 * A remote file as a stream, read with READ_AHEAD requests in flight, as OpenSSH's sftp reads: one READ at a time
 * costs a round trip per 32 KB, and a server that leaves Nagle's algorithm on (OpenSSH's sshd, for SFTP) adds its
 * ACK delay to each. Answers are passed on in file order. A short answer (a server with a smaller limit, or the end of
 * the file) is followed by a READ for the rest of its range, and later READs ask for no more than that server gave
 * (down to MIN_READ); a READ answered with nothing ends the file. Every way the bytes can stop short is an 'error': a
 * lost connection (each READ fails at once then, even one asked for long after the drop), a READ that is not answered
 * in time, or an end of file before the size the server gave when the file was opened.
 */
class RemoteFileStream extends Readable {
  /** Where the next READ starts (the end of the ranges asked for so far). */
  #next = 0;
  /** Bytes passed on. */
  #position = 0;
  /** READs sent and not yet passed on, in file order. */
  readonly #queue: PendingRead[] = [];
  /** What a READ asks for: READ_CHUNK or the connection's limit, or what the server gave for one when that was less. */
  #chunk: number;
  /** The reader wants more (push answered true, or _read was called). */
  #wanted = false;
  #ended = false;
  #closed = false;
  /**
   * A paused stream learns of a lost connection at once, not when it is next read. Only once reading has begun:
   * before that nobody may be listening for 'error' yet, and the first read fails by itself.
   */
  readonly #onLost = (err: HubError) => this.destroy(err);

  constructor(
    private readonly s: Settings,
    private readonly conn: Connection,
    private readonly handle: Buffer,
    private readonly path: string,
    private readonly size: number | null,
  ) {
    super({ highWaterMark: 2 * READ_CHUNK });
    // ssh2 splits a read larger than its limit for the server into two READs, and answers when both are in: 31,952
    // bytes for a server that is not OpenSSH (or what the server's limits extension says). It has no public word for
    // it: read where it keeps it, else READ_CHUNK.
    const limit = (conn.sftp as unknown as { _maxReadLen?: unknown })._maxReadLen;
    this.#chunk = typeof limit === 'number' && Number.isInteger(limit) && limit > 0 ? Math.min(READ_CHUNK, limit) : READ_CHUNK;
  }

  override _read(): void {
    if (!this.#closed) this.conn.onLost.add(this.#onLost);
    this.#wanted = true;
    this.#pump();
  }

  #pump(): void {
    while (this.#wanted && !this.destroyed && !this.#ended) {
      const head = this.#queue[0];
      if (!head || head.bytes === undefined) break;
      this.#queue.shift();
      if (head.bytes === 0) return this.#end();
      this.#position += head.bytes;
      if (head.bytes < head.length) {
        // The rest of its range, ahead of the READs already sent (their answers hold for their own ranges).
        this.#queue.unshift(this.#send(head.offset + head.bytes, head.length - head.bytes));
        this.#chunk = Math.max(MIN_READ, Math.min(this.#chunk, head.bytes));
      }
      if (!this.push(head.buffer.subarray(0, head.bytes))) this.#wanted = false;
    }
    // With the size known, READs stop at it, and one more (answered: end of file) goes once all before it are in.
    while (this.#wanted && !this.destroyed && !this.#ended && this.#queue.length < READ_AHEAD) {
      if (this.size !== null && this.#next >= this.size && this.#queue.length > 0) break;
      this.#queue.push(this.#send(this.#next, this.#chunk));
      this.#next += this.#chunk;
    }
  }

  #send(offset: number, length: number): PendingRead {
    const read: PendingRead = { offset, length, buffer: Buffer.allocUnsafe(length) };
    request<number>(this.s, this.conn, `reading ${this.path}`, (sftp, done) =>
      sftp.read(this.handle, read.buffer, 0, length, offset, (err, bytesRead) => done(err, bytesRead)),
    ).then(
      (bytesRead) => {
        read.bytes = bytesRead > 0 ? bytesRead : 0;
        this.#pump();
      },
      (err: unknown) => {
        // A READ sent past the end, answered after the file ended (its handle closed), is of no concern.
        if (!this.destroyed && !this.#ended) this.destroy(isHubError(err) ? err : remoteError(this.s, this.conn, err, `reading ${this.path}`));
      },
    );
    return read;
  }

  #end(): void {
    if (this.size !== null && this.#position < this.size) {
      this.destroy(new HubError('upstream_error', `${this.path} on the SFTP server ${this.s.server} ended after ${this.#position} of its ${this.size} bytes (changed while read?)`));
      return;
    }
    this.#ended = true;
    this.#queue.length = 0;
    this.#release();
    this.push(null);
  }

  #release(): void {
    this.conn.onLost.delete(this.#onLost);
    if (this.#closed) return;
    this.#closed = true;
    if (!this.conn.lost) this.conn.sftp.close(this.handle, () => {});
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#release();
    callback(err);
  }
}

/**
 * Writes a remote file through an open handle, WRITE_AHEAD WRITEs in flight (each at its own offset, so their answers
 * may come in any order); the handle is closed once all are answered, and after a failure. A failed WRITE fails the
 * next write, or the end.
 */
class RemoteFileWriter extends Writable {
  #position = 0;
  #closed = false;
  readonly #inFlight = new Set<Promise<void>>();
  #failed: Error | null = null;

  constructor(
    private readonly s: Settings,
    private readonly conn: Connection,
    private readonly handle: Buffer,
    private readonly path: string,
  ) {
    super({ highWaterMark: 64 * 1024 });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.#failed) return callback(this.#failed);
    const offset = this.#position;
    this.#position += chunk.length;
    const write: Promise<void> = request(this.s, this.conn, `writing ${this.path}`, (sftp, done) => sftp.write(this.handle, chunk, 0, chunk.length, offset, done)).then(
      () => void this.#inFlight.delete(write),
      (err: Error) => {
        this.#inFlight.delete(write);
        this.#failed ??= err;
      },
    );
    this.#inFlight.add(write);
    if (this.#inFlight.size < WRITE_AHEAD) return callback();
    void Promise.race(this.#inFlight).then(() => callback(this.#failed));
  }

  /** Every WRITE sent is answered; the first failure, if any. */
  async #settled(): Promise<Error | null> {
    while (this.#inFlight.size) await Promise.race(this.#inFlight);
    return this.#failed;
  }

  override _final(callback: (err?: Error | null) => void): void {
    void this.#settled().then((failed) => {
      if (failed) return callback(failed);
      this.#closed = true;
      // The server may report a failed write only here (a full disk on close).
      request(this.s, this.conn, `closing ${this.path}`, (sftp, done) => sftp.close(this.handle, done)).then(
        () => callback(),
        (err: Error) => callback(err),
      );
    });
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    void this.#settled().then(() => {
      if (this.#closed || this.conn.lost) return callback(err);
      this.#closed = true;
      // Waited for, so that the temporary file is closed before it is deleted (some servers refuse otherwise).
      request(this.s, this.conn, `closing ${this.path}`, (sftp, done) => sftp.close(this.handle, done)).then(
        () => callback(err),
        () => callback(err),
      );
    });
  }
}

function temporaryName(name: string): string {
  const hint = Buffer.byteLength(name) <= 200 ? name : 'export';
  return `.${hint}.${randomBytes(6).toString('hex')}.part`;
}

// --- source and target --------------------------------------------------------------------------------------

export function createSftpSource(options: SftpSourceOptions): FileSource {
  const errors: FieldError[] = [];
  const s = checkSettings(options, errors);
  const path = collect(errors, () => checkRemotePath(options.path ?? '', '/path')) ?? '';
  const pattern = collect(errors, () => checkPattern(options.pattern ?? '*', '/pattern')) ?? '*';
  const targets = finishFolders(path, options, checkRemotePath, errors);
  throwIfAny(errors, "The SFTP transport");
  const session = new Session(s);
  const folder = path === '' ? '.' : path;

  return {
    async list(): Promise<SourceFile[]> {
      const conn = await session.connection();
      const entries = await request<FileEntryWithStats[]>(s, conn, `listing ${folder}`, (sftp, done) => sftp.readdir(folder, done));
      const found: (SourceFile & { mtime: number })[] = [];
      for (const entry of entries) {
        const name = entry.filename;
        // Hidden and temporary files (uploads in progress) are skipped without a word.
        if (!isFileName(name) || !matchesPattern(name, pattern)) continue;
        let attrs: Stats | null = entry.attrs;
        const kind = kindOf(entry);
        if (kind === 'other') continue;
        if (kind === 'link') {
          attrs = await statOrNull(s, conn, joinPath(path, name));
          if (!attrs?.isFile()) continue;
        }
        const mtime = typeof attrs.mtime === 'number' ? attrs.mtime : null;
        found.push({
          name,
          size: typeof attrs.size === 'number' ? attrs.size : null,
          modifiedAt: mtime === null ? null : new Date(mtime * 1000).toISOString(),
          mtime: mtime ?? 0,
        });
      }
      found.sort((a, b) => a.mtime - b.mtime || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      return found.map(({ name, size, modifiedAt }) => ({ name, size, modifiedAt }));
    },

    async open(name: string): Promise<Readable> {
      checkFileName(name);
      const conn = await session.connection();
      const file = joinPath(path, name);
      const handle = await request<Buffer>(s, conn, `opening ${file}`, (sftp, done) => sftp.open(file, 'r', done));
      try {
        const st = await request<Stats>(s, conn, `looking at ${file}`, (sftp, done) => sftp.fstat(handle, done));
        if (!st.isFile()) throw new HubError('not_found', `${file} on the SFTP server ${s.server} is not a file`);
        return new RemoteFileStream(s, conn, handle, file, typeof st.size === 'number' ? st.size : null);
      } catch (err) {
        if (!conn.lost) conn.sftp.close(handle, () => {});
        throw err;
      }
    },

    async finish(name: string, outcome: 'archive' | 'error'): Promise<void> {
      checkFileName(name);
      const conn = await session.connection();
      const file = joinPath(path, name);
      if (!(await statOrNull(s, conn, file, false))) throw new HubError('not_found', `No file ${file} on the SFTP server ${s.server}`);
      const dir = targets[outcome]!;
      await ensureFolder(s, conn, dir);
      const now = new Date(s.clock.now());
      for (let attempt = 0; attempt < MAX_ARCHIVE_ATTEMPTS; attempt++) {
        const candidate = joinPath(dir, attempt === 0 ? name : archiveName(name, now, attempt));
        if (await statOrNull(s, conn, candidate, false)) continue;
        try {
          // Plain RENAME, not posix-rename: it refuses to replace, so an archived file is never overwritten.
          await request(s, conn, `moving ${file} to ${candidate}`, (sftp, done) => sftp.rename(file, candidate, done));
          return;
        } catch (err) {
          // Taken meanwhile: the next name.
          if (!conn.lost && (await statOrNull(s, conn, candidate, false)) && (await statOrNull(s, conn, file, false))) continue;
          throw err;
        }
      }
      throw new HubError('conflict', `The ${outcome} folder ${dir} already holds ${MAX_ARCHIVE_ATTEMPTS} files named like '${name}'`);
    },

    close: () => session.close(),
  };
}

export function createSftpTarget(options: SftpTargetOptions): FileTarget {
  const errors: FieldError[] = [];
  const s = checkSettings(options, errors);
  const path = collect(errors, () => checkRemotePath(options.path ?? '', '/path')) ?? '';
  throwIfAny(errors, "The SFTP transport");
  const session = new Session(s);

  return {
    async put(name: string, body: Readable, _info: PutInfo): Promise<{ location: string }> {
      checkFileName(name);
      const conn = await session.connection();
      await ensureFolder(s, conn, path);
      const final = joinPath(path, name);
      const temporary = joinPath(path, temporaryName(name));
      // 'wx': a new file or nothing, never someone else's.
      const handle = await request<Buffer>(s, conn, `creating ${temporary}`, (sftp, done) => sftp.open(temporary, 'wx', done));
      try {
        await pipeline(body, new RemoteFileWriter(s, conn, handle, temporary));
        await renameReplacing(s, conn, temporary, final);
      } catch (err) {
        // Best effort: with the connection gone the hidden temporary file stays, and list() never shows it.
        if (!conn.lost) await request(s, conn, `removing ${temporary}`, (sftp, done) => sftp.unlink(temporary, done)).catch(() => {});
        throw err;
      }
      return { location: final };
    },

    close: () => session.close(),
  };
}
