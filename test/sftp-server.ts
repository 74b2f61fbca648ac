// An SFTP server on loopback for tests, over a real folder: what the SFTP transport and the file exchange are
// tested against instead of a remote server. It speaks SFTP v3 through ssh2's server (password and public-key
// logins, a fresh ed25519 host key per server), serves the files under `root` as if `root` were the server's '/'
// and the login folder, and can break a connection in the middle of a file on purpose.
//
// What it does, so a test knows what to expect:
// - Paths: '/x' and 'x' are both root/x; '..' stops at root (as in a chroot), and a symbolic link that leads out
//   of root is refused (PERMISSION_DENIED).
// - RENAME refuses to replace an existing file, as OpenSSH's does; `posix-rename@openssh.com` (advertised unless
//   `posixRename: false`) replaces it. A second server with `posixRename: false` tests a client's other way.
// - SETSTAT and FSETSTAT succeed and change nothing; READLINK and SYMLINK are not supported.
// - `faults.dropAfterBytes`: on each connection, once that many bytes of file data have been sent in READ
//   answers, the connection is destroyed (TCP, no goodbye), as a network that drops does. The last answer is cut
//   to the exact count first. `faults.stall`: SFTP requests get no answer at all while it is set.
//   `faults.maxReadBytes`: READ answers carry at most that many bytes (short reads, as some servers send).
//   `faults.failWritesPast`: WRITEs reaching past that offset fail (FAILURE), as on a full disk.
// - `reads` and `writes` count the requests and the most a connection had in hand at once.
//   `setFaults` changes the faults for every connection from the next request on.
// - Sockets have TCP_NODELAY unless `noDelay: false` (OpenSSH's sshd keeps Nagle's algorithm for SFTP).
// - `connections`, `authAttempts` record what clients did: a test can check that a client refused a host key
//   before it sent any credentials.
//
//   const server = await startSftpServer({ root, users: [{ username: 'alice', password: 'pw' }] });
//   createSftpSource({ host: server.host, port: server.port, username: 'alice', password: 'pw',
//                      hostKey: server.hostKeyFingerprint, path: 'in' });   // root/in
//   …
//   await server.close();
import { createHash, timingSafeEqual } from 'node:crypto';
import { lstat, mkdir, open, readdir, realpath, rename, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { isAbsolute, join, posix, relative, sep } from 'node:path';
import ssh2 from 'ssh2';
import type { Attributes, AuthContext, Connection, FileEntry, ParsedKey, SFTPWrapper } from 'ssh2';

const { Server, utils } = ssh2;
const { STATUS_CODE, flagsToString } = utils.sftp;

export interface SftpServerUser {
  username: string;
  password?: string;
  /** OpenSSH public key text ('ssh-ed25519 AAAA… comment'), as in authorized_keys. */
  publicKey?: string;
}

export interface SftpServerFaults {
  /** Destroy a connection once this many bytes of file data have been sent on it in READ answers. */
  dropAfterBytes?: number;
  /** Answer no SFTP request (the connection stays up and answers SSH keepalives), as a hung server does. */
  stall?: boolean;
  /** Answer a READ with at most this many bytes, as a server with a smaller limit than the client's request does. */
  maxReadBytes?: number;
  /** Fail every WRITE that reaches past this offset (FAILURE, nothing written), as a full disk does. */
  failWritesPast?: number;
}

export interface SftpServerOptions {
  /** The folder served as '/'; it must exist. */
  root: string;
  users: SftpServerUser[];
  faults?: SftpServerFaults;
  /** Advertise and serve posix-rename@openssh.com (rename that replaces); default true. */
  posixRename?: boolean;
  /**
   * TCP_NODELAY on its sockets (default true). OpenSSH's sshd leaves Nagle's algorithm on for SFTP sessions (it
   * turns it off for interactive ones): false serves as it does, each answer's tail held until the client's ACK.
   */
  noDelay?: boolean;
}

export interface AuthAttempt {
  username: string;
  /** 'none', 'password', 'publickey', …; a publickey attempt without a signature is the client asking whether the key would do. */
  method: string;
  accepted: boolean;
}

export interface SftpTestServer {
  host: '127.0.0.1';
  port: number;
  /** 'SHA256:<base64 without padding>', as `ssh-keygen -lf` prints it: what a client pins. */
  hostKeyFingerprint: string;
  /** The host's public key, OpenSSH text. */
  hostPublicKey: string;
  setFaults(faults: SftpServerFaults): void;
  /** TCP connections accepted so far. */
  readonly connections: number;
  /** READ requests answered so far, and the most a connection had in hand at once (a client reading ahead). */
  readonly reads: { total: number; mostInFlight: number };
  /** The same of WRITE requests (a client writing ahead). */
  readonly writes: { total: number; mostInFlight: number };
  /** Every authentication request any client made, in order. */
  readonly authAttempts: readonly AuthAttempt[];
  /** Destroys every open connection (the server keeps listening), as a network outage does. */
  dropConnections(): void;
  close(): Promise<void>;
}

/** The fingerprint OpenSSH shows for a public key blob (its wire form). */
export function sshFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * ssh2's generateKeyPairSync('ed25519'), minus its bad keys: about one in 256 comes out with a 31-byte public key (a
 * leading zero byte dropped) that ssh2's own parseKey then refuses as malformed. Tests made one now and then.
 */
export function generateTestKeyPair(options?: Parameters<typeof utils.generateKeyPairSync>[1]): { public: string; private: string } {
  for (;;) {
    const pair = options === undefined ? utils.generateKeyPairSync('ed25519') : utils.generateKeyPairSync('ed25519', options);
    if (!(utils.parseKey(pair.public) instanceof Error)) return pair;
  }
}

function parsePublicKey(text: string): ParsedKey {
  const key = utils.parseKey(text);
  if (key instanceof Error) throw new Error(`Not a public key: ${key.message}`);
  return Array.isArray(key) ? (key[0] as ParsedKey) : key;
}

/** Equal without telling how much matched, as a real server must; the test server does it the same way. */
function sameBytes(given: Buffer, expected: Buffer): boolean {
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export async function startSftpServer(options: SftpServerOptions): Promise<SftpTestServer> {
  const realRoot = await realpath(options.root);
  const hostKeys = generateTestKeyPair();
  const hostPublicKey = hostKeys.public;
  const hostKeyFingerprint = sshFingerprint(parsePublicKey(hostPublicKey).getPublicSSH());
  const users = options.users.map((u) => ({ ...u, key: u.publicKey === undefined ? undefined : parsePublicKey(u.publicKey) }));
  const posixRename = options.posixRename ?? true;
  let faults: SftpServerFaults = { ...options.faults };
  let connections = 0;
  const reads = { total: 0, mostInFlight: 0 };
  const writes = { total: 0, mostInFlight: 0 };
  const authAttempts: AuthAttempt[] = [];
  const sockets = new Set<Socket>();
  /** Sockets by their remote port: how an ssh2 connection (which hides its socket) finds the one to destroy. */
  const byPort = new Map<number, Socket>();

  const ssh = new Server({ hostKeys: [hostKeys.private] }, (conn: Connection, info) => {
    const socket = byPort.get(info.port);
    // A client that resets the connection is a normal event for this server, not a crash.
    conn.on('error', () => {});
    conn.on('authentication', (ctx: AuthContext) => {
      const accepted = authenticate(ctx);
      authAttempts.push({ username: ctx.username, method: ctx.method, accepted });
      if (accepted) ctx.accept();
      else ctx.reject(['password', 'publickey']);
    });
    conn.on('ready', () => {
      conn.on('session', (accept) => {
        const session = accept();
        session.on('sftp', (acceptSftp) => {
          const sftp = acceptSftp();
          if (posixRename) advertisePosixRename(sftp);
          serveSftp(sftp, {
            realRoot,
            posixRename,
            faults: () => faults,
            drop: () => (socket ? socket.destroy() : conn.end()),
            reads,
            writes,
          });
        });
      });
    });
  });

  function authenticate(ctx: AuthContext): boolean {
    const user = users.find((u) => u.username === ctx.username);
    if (!user) return false;
    if (ctx.method === 'password') {
      return user.password !== undefined && sameBytes(Buffer.from(ctx.password), Buffer.from(user.password));
    }
    if (ctx.method === 'publickey') {
      if (!user.key || !sameBytes(ctx.key.data, user.key.getPublicSSH())) return false;
      // Without a signature the client only asks whether this key would be accepted.
      if (!ctx.signature || !ctx.blob) return true;
      return user.key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true;
    }
    return false;
  }

  const tcp = createServer((socket) => {
    connections++;
    sockets.add(socket);
    if (socket.remotePort !== undefined) byPort.set(socket.remotePort, socket);
    socket.once('close', () => {
      sockets.delete(socket);
      if (socket.remotePort !== undefined && byPort.get(socket.remotePort) === socket) byPort.delete(socket.remotePort);
    });
    socket.setNoDelay(options.noDelay ?? true);
    // Sockets are accepted here rather than by ssh2's own listener so that the test server owns them.
    ssh.injectSocket(socket);
  });
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(0, '127.0.0.1', () => resolve());
  });

  return {
    host: '127.0.0.1',
    port: (tcp.address() as AddressInfo).port,
    hostKeyFingerprint,
    hostPublicKey,
    setFaults: (f) => void (faults = { ...f }),
    get connections() {
      return connections;
    },
    reads,
    writes,
    authAttempts,
    dropConnections: () => {
      for (const socket of sockets) socket.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        tcp.close(() => resolve());
      }),
  };
}

// --- SFTP -----------------------------------------------------------------------------------------------------

interface ServeContext {
  realRoot: string;
  posixRename: boolean;
  faults: () => SftpServerFaults;
  /** Destroys this connection. */
  drop: () => void;
  reads: { total: number; mostInFlight: number };
  writes: { total: number; mostInFlight: number };
}

type OpenHandle = { kind: 'file'; fh: FileHandle } | { kind: 'dir'; dir: string; names: string[]; next: number };

/** A failure with the SFTP status the client should get. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const READDIR_BATCH = 64;
/** More than ssh2 clients ask for in one READ; a bound against a client asking for gigabytes. */
const MAX_READ = 256 * 1024;

// VERSION 3 with posix-rename@openssh.com "1", as OpenSSH's server answers.
const PLAIN_VERSION = Buffer.from([0, 0, 0, 5, 2, 0, 0, 0, 3]);
const VERSION_WITH_POSIX_RENAME = (() => {
  const ext = (s: string) => {
    const b = Buffer.alloc(4 + Buffer.byteLength(s));
    b.writeUInt32BE(b.length - 4, 0);
    b.write(s, 4);
    return b;
  };
  const payload = Buffer.concat([Buffer.from([2, 0, 0, 0, 3]), ext('posix-rename@openssh.com'), ext('1')]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(payload.length, 0);
  return Buffer.concat([length, payload]);
})();

/**
 * ssh2's server answers INIT with a fixed VERSION packet that names no extensions, and clients (ssh2's included)
 * only use posix-rename@openssh.com when the server names it. So the connection's outgoing channel data is
 * watched for that one packet, which is swapped for one that names the extension; the hook then removes itself.
 * This reaches into ssh2's internals (`_protocol.channelData`): if they change, the extension is simply not
 * advertised and clients fall back to RENAME, which the tests of the fallback cover anyway.
 */
function advertisePosixRename(sftp: SFTPWrapper): void {
  type Protocol = { channelData?: (id: number, data: Buffer) => unknown };
  const protocol = (sftp as unknown as { _protocol?: Protocol })._protocol;
  const original = protocol?.channelData;
  if (!protocol || typeof original !== 'function') return;
  const hadOwn = Object.prototype.hasOwnProperty.call(protocol, 'channelData');
  protocol.channelData = function (this: unknown, id: number, data: Buffer) {
    if (Buffer.isBuffer(data) && data.equals(PLAIN_VERSION)) {
      if (hadOwn) protocol.channelData = original;
      else delete protocol.channelData;
      return original.call(this, id, VERSION_WITH_POSIX_RENAME);
    }
    return original.call(this, id, data);
  };
}

function attrsOf(st: Stats): Attributes {
  return { mode: st.mode, uid: st.uid, gid: st.gid, size: st.size, atime: Math.floor(st.atimeMs / 1000), mtime: Math.floor(st.mtimeMs / 1000) };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `ls -l` style, as OpenSSH sends it: some clients read the type from its first character. */
function longname(name: string, st: Stats): string {
  const type = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? '-' : '?';
  const bits = 'rwxrwxrwx'
    .split('')
    .map((c, i) => (st.mode & (0o400 >> i) ? c : '-'))
    .join('');
  const d = st.mtime;
  const when = `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2)} ${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
  return `${type}${bits} 1 ${st.uid} ${st.gid} ${String(st.size).padStart(8)} ${when} ${name}`;
}

function statusOf(err: unknown): number {
  if (err instanceof Refusal) return err.status;
  switch ((err as NodeJS.ErrnoException | null)?.code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return STATUS_CODE.NO_SUCH_FILE;
    case 'EACCES':
    case 'EPERM':
      return STATUS_CODE.PERMISSION_DENIED;
    default:
      return STATUS_CODE.FAILURE;
  }
}

function isInside(realRoot: string, real: string): boolean {
  const rel = relative(realRoot, real);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/** Reads the two SFTP strings of a posix-rename request. */
function twoStrings(data: Buffer | undefined): [string, string] | null {
  if (!data || data.length < 4) return null;
  const first = data.readUInt32BE(0);
  if (data.length < 8 + first) return null;
  const second = data.readUInt32BE(4 + first);
  if (data.length < 8 + first + second) return null;
  return [data.toString('utf8', 4, 4 + first), data.toString('utf8', 8 + first, 8 + first + second)];
}

function serveSftp(sftp: SFTPWrapper, ctx: ServeContext): void {
  const handles = new Map<number, OpenHandle>();
  let nextHandle = 1;
  /** File bytes sent in READ answers on this connection, for dropAfterBytes. */
  let sent = 0;
  let dropped = false;
  let readsInFlight = 0;
  let writesInFlight = 0;

  // Handles a client leaves open (it dropped) are closed with the channel, not left to the garbage collector.
  sftp.once('close', () => {
    for (const h of handles.values()) if (h.kind === 'file') void h.fh.close().catch(() => {});
    handles.clear();
  });

  /** root/<path> for a client's path, refused when a link leads out of root. `follow`: the path's own links too. */
  async function local(path: string, follow: boolean): Promise<string> {
    const virtual = posix.resolve('/', path);
    const full = join(ctx.realRoot, ...virtual.split('/').filter(Boolean));
    if (full === ctx.realRoot) return full;
    const parent = await realpath(join(full, '..'));
    if (!isInside(ctx.realRoot, parent)) throw new Refusal(STATUS_CODE.PERMISSION_DENIED, 'Outside the served folder');
    if (follow) {
      try {
        if (!isInside(ctx.realRoot, await realpath(full))) throw new Refusal(STATUS_CODE.PERMISSION_DENIED, 'Outside the served folder');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    return full;
  }

  function handleOf(id: number): Buffer {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(id, 0);
    return b;
  }

  function lookup(handle: Buffer): [number, OpenHandle] {
    const id = handle.length === 4 ? handle.readUInt32BE(0) : -1;
    const h = handles.get(id);
    if (!h) throw new Refusal(STATUS_CODE.FAILURE, 'No such handle');
    return [id, h];
  }

  function file(handle: Buffer): FileHandle {
    const [, h] = lookup(handle);
    if (h.kind !== 'file') throw new Refusal(STATUS_CODE.FAILURE, 'Not a file handle');
    return h.fh;
  }

  /** Runs a request; any failure becomes its status answer. Nothing is answered on a dropped connection. */
  function run(reqid: number, work: () => Promise<void>): void {
    if (ctx.faults().stall) return;
    work().catch((err: unknown) => {
      if (dropped) return;
      try {
        sftp.status(reqid, statusOf(err), err instanceof Error ? err.message : String(err));
      } catch {
        // The channel closed meanwhile.
      }
    });
  }

  function ok(reqid: number): void {
    sftp.status(reqid, STATUS_CODE.OK);
  }

  sftp.on('OPEN', (reqid, filename, flags, attrs: Partial<Attributes> | undefined) =>
    run(reqid, async () => {
      const mode = flagsToString(flags);
      if (!mode) throw new Refusal(STATUS_CODE.OP_UNSUPPORTED, 'Unsupported open flags');
      const fh = await open(await local(filename, true), mode, typeof attrs?.mode === 'number' ? attrs.mode & 0o7777 : 0o644);
      const id = nextHandle++;
      handles.set(id, { kind: 'file', fh });
      sftp.handle(reqid, handleOf(id));
    }),
  );

  sftp.on('READ', (reqid, handle, offset, length) =>
    run(reqid, async () => {
      ctx.reads.total++;
      ctx.reads.mostInFlight = Math.max(ctx.reads.mostInFlight, ++readsInFlight);
      try {
        await answerRead(reqid, handle, offset, length);
      } finally {
        readsInFlight--;
      }
    }),
  );

  async function answerRead(reqid: number, handle: Buffer, offset: number, length: number): Promise<void> {
    const fh = file(handle);
    const buffer = Buffer.alloc(Math.min(length, MAX_READ, ctx.faults().maxReadBytes ?? Infinity));
    const { bytesRead } = await fh.read(buffer, 0, buffer.length, offset);
    if (dropped) return;
    if (bytesRead === 0) return sftp.status(reqid, STATUS_CODE.EOF);
    let data = buffer.subarray(0, bytesRead);
    const limit = ctx.faults().dropAfterBytes;
    if (limit !== undefined && sent + data.length >= limit) {
      data = data.subarray(0, Math.max(0, limit - sent));
      sent += data.length;
      if (data.length > 0) sftp.data(reqid, data);
      dropped = true;
      ctx.drop();
      return;
    }
    sent += data.length;
    sftp.data(reqid, data);
  }

  sftp.on('WRITE', (reqid, handle, offset, data) =>
    run(reqid, async () => {
      ctx.writes.total++;
      ctx.writes.mostInFlight = Math.max(ctx.writes.mostInFlight, ++writesInFlight);
      try {
        const past = ctx.faults().failWritesPast;
        if (past !== undefined && offset + data.length > past) throw new Error('No space left on device');
        await file(handle).write(data, 0, data.length, offset);
      } finally {
        writesInFlight--;
      }
      ok(reqid);
    }),
  );

  sftp.on('FSTAT', (reqid, handle) =>
    run(reqid, async () => {
      sftp.attrs(reqid, attrsOf(await file(handle).stat()));
    }),
  );

  sftp.on('CLOSE', (reqid, handle) =>
    run(reqid, async () => {
      const [id, h] = lookup(handle);
      handles.delete(id);
      if (h.kind === 'file') await h.fh.close();
      ok(reqid);
    }),
  );

  sftp.on('STAT', (reqid, path) =>
    run(reqid, async () => {
      sftp.attrs(reqid, attrsOf(await stat(await local(path, true))));
    }),
  );

  sftp.on('LSTAT', (reqid, path) =>
    run(reqid, async () => {
      sftp.attrs(reqid, attrsOf(await lstat(await local(path, false))));
    }),
  );

  sftp.on('OPENDIR', (reqid, path) =>
    run(reqid, async () => {
      const dir = await local(path, true);
      if (!(await stat(dir)).isDirectory()) throw new Refusal(STATUS_CODE.FAILURE, 'Not a directory');
      // '.' and '..' first, as OpenSSH lists them; clients are expected to skip them.
      const names = ['.', '..', ...(await readdir(dir))];
      const id = nextHandle++;
      handles.set(id, { kind: 'dir', dir, names, next: 0 });
      sftp.handle(reqid, handleOf(id));
    }),
  );

  sftp.on('READDIR', (reqid, handle) =>
    run(reqid, async () => {
      const [, h] = lookup(handle);
      if (h.kind !== 'dir') throw new Refusal(STATUS_CODE.FAILURE, 'Not a directory handle');
      const entries: FileEntry[] = [];
      while (entries.length === 0 && h.next < h.names.length) {
        for (const name of h.names.slice(h.next, h.next + READDIR_BATCH)) {
          try {
            const st = await lstat(join(h.dir, name));
            entries.push({ filename: name, longname: longname(name, st), attrs: attrsOf(st) });
          } catch {
            // Gone since OPENDIR.
          }
        }
        h.next += READDIR_BATCH;
      }
      if (entries.length === 0) return sftp.status(reqid, STATUS_CODE.EOF);
      sftp.name(reqid, entries);
    }),
  );

  sftp.on('REALPATH', (reqid, path) =>
    run(reqid, async () => {
      const virtual = posix.resolve('/', path);
      const st = await stat(await local(virtual, true)).catch(() => null);
      const attrs = st ? attrsOf(st) : ({} as Attributes);
      sftp.name(reqid, [{ filename: virtual, longname: st ? longname(virtual, st) : virtual, attrs }]);
    }),
  );

  sftp.on('RENAME', (reqid, from, to) =>
    run(reqid, async () => {
      const source = await local(from, false);
      const target = await local(to, false);
      // SFTP v3 and OpenSSH: RENAME does not replace.
      const exists = await lstat(target).then(
        () => true,
        () => false,
      );
      if (exists) throw new Refusal(STATUS_CODE.FAILURE, 'The target already exists');
      await rename(source, target);
      ok(reqid);
    }),
  );

  sftp.on('EXTENDED', (reqid, name, data) =>
    run(reqid, async () => {
      if (name !== 'posix-rename@openssh.com' || !ctx.posixRename) throw new Refusal(STATUS_CODE.OP_UNSUPPORTED, `${name} is not supported`);
      const paths = twoStrings(data);
      if (!paths) throw new Refusal(STATUS_CODE.BAD_MESSAGE, 'Malformed posix-rename request');
      await rename(await local(paths[0], false), await local(paths[1], false));
      ok(reqid);
    }),
  );

  sftp.on('MKDIR', (reqid, path, attrs: Partial<Attributes> | undefined) =>
    run(reqid, async () => {
      await mkdir(await local(path, false), typeof attrs?.mode === 'number' ? attrs.mode & 0o7777 : 0o755);
      ok(reqid);
    }),
  );

  sftp.on('RMDIR', (reqid, path) =>
    run(reqid, async () => {
      await rmdir(await local(path, false));
      ok(reqid);
    }),
  );

  sftp.on('REMOVE', (reqid, path) =>
    run(reqid, async () => {
      await unlink(await local(path, false));
      ok(reqid);
    }),
  );

  sftp.on('SETSTAT', (reqid) => run(reqid, async () => ok(reqid)));
  sftp.on('FSETSTAT', (reqid) => run(reqid, async () => ok(reqid)));
}
