// The operator CLI: workspaces, API keys and a doctor that checks the configuration. It works on the same data
// directory as the running hub (SQLite in WAL mode allows both at once). `npm run hub -- help` lists the commands.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { userInfo } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { parseArgs } from 'node:util';
import { auditSystem } from '../src/audit/log.ts';
import { createApiKey, createWorkspace } from '../src/bootstrap.ts';
import { ConfigError, loadConfig, type HubConfig } from '../src/config.ts';
import { HubError } from '../src/errors.ts';
import { systemClock, type Clock } from '../src/lib/clock.ts';
import { createCipher, parseEncryptionKey } from '../src/lib/secrets.ts';
import { createAppwriteStore } from '../src/store/appwrite.ts';
import { createSqliteStore } from '../src/store/sqlite.ts';
import { importCommand } from './cli-import.ts';
import type { Store, WorkspacesRow } from '../src/store/types.ts';

export interface CliIo {
  env: Record<string, string | undefined>;
  cwd: string;
  out(line: string): void;
  err(line: string): void;
  clock?: Clock;
  /** Progress lines (the import's bar); `redraw` replaces the last line on a terminal. */
  progress?(line: string, redraw: boolean): void;
  tty?: boolean;
}

const HELP = `Usage: npm run hub -- <command> [options]

  workspaces list
  workspaces create <name> [--slug S] [--currency EUR] [--timezone Europe/Berlin]
  keys list --workspace <id|slug>
  keys create --workspace <id|slug> --name <name> --scopes <s1,s2> [--expires-in 30d]
  keys revoke <keyId>
  import <file> --action <a> [--mapping <id>] [--policy reject-all|keep-good] [--format csv|xml|xlsx]
         [--delimiter ;] [--record-path Orders/Order] [--sheet Name] [--workspace <id|slug>]
  import <file> --exchange <id|name> [--workspace <id|slug>]
                      import a file now (actions: order.import, order.lines, product.upsert, stock.count,
                      stock.adjust, stock.receive), with a progress bar; the run and its report are in the API
  doctor              check configuration, data directory, encryption key and database

Add --appwrite to work on Appwrite TablesDB instead of the local SQLite file, with APPWRITE_ENDPOINT,
APPWRITE_PROJECT and APPWRITE_API_KEY (a key with the rows.read and rows.write scopes) set.

Scopes look like connections:read, connections:write, *:read or * (everything).
Configuration comes from the same HUB_* variables as the hub (see README).`;

class UsageError extends Error {}

function parseDuration(text: string): number {
  const m = /^(\d+)([smhd])$/.exec(text.trim());
  if (!m) throw new UsageError(`--expires-in takes a number and a unit, like 90m, 12h or 30d (got "${text}")`);
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

async function findWorkspace(store: Store, ref: string | undefined): Promise<WorkspacesRow> {
  if (!ref) throw new UsageError('--workspace is required (an id or a slug; see: workspaces list)');
  const byId = ref.startsWith('ws_') ? await store.table('workspaces').get(ref) : null;
  const found = byId ?? (await store.table('workspaces').query({ where: { slug: ref }, limit: 1 })).items[0];
  if (!found) throw new UsageError(`No workspace "${ref}" (see: workspaces list)`);
  return found;
}

function actor(): string {
  try {
    return `cli:${userInfo().username}`.slice(0, 64);
  } catch {
    return 'cli';
  }
}

async function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

async function doctor(config: HubConfig, io: CliIo): Promise<number> {
  let failures = 0;
  const ok = (msg: string) => io.out(`  ok    ${msg}`);
  const bad = (msg: string) => {
    failures++;
    io.out(`  FAIL  ${msg}`);
  };
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  if (major > 20 || (major === 20 && minor >= 19)) ok(`Node.js ${process.versions.node}`);
  else bad(`Node.js ${process.versions.node}: the hub needs 20.19 or newer`);
  ok('configuration variables are valid');
  try {
    accessSync(config.dataDir, constants.W_OK);
    ok(`data directory ${config.dataDir} is writable`);
  } catch {
    bad(`data directory ${config.dataDir} does not exist or is not writable (HUB_DATA_DIR); npm start creates it`);
  }
  const keyFile = join(config.dataDir, 'encryption.key');
  let cipher = null;
  if (config.encryptionKey) {
    const key = parseEncryptionKey(config.encryptionKey);
    if (key) {
      cipher = createCipher(key);
      ok('HUB_ENCRYPTION_KEY is a valid 32-byte key');
    } else bad('HUB_ENCRYPTION_KEY is not 32 bytes of hex or base64');
  } else if (existsSync(keyFile)) {
    const key = parseEncryptionKey(readFileSync(keyFile, 'utf8'));
    if (key) {
      cipher = createCipher(key);
      ok(`encryption key file ${keyFile}`);
    } else bad(`${keyFile} does not hold a valid key`);
  } else {
    ok('no encryption key yet: npm start creates data/encryption.key (or set HUB_ENCRYPTION_KEY)');
  }
  const dbPath = join(config.dataDir, 'hub.db');
  if (existsSync(dbPath)) {
    try {
      const store = createSqliteStore({ path: dbPath });
      await store.ping();
      const workspaces = await store.table('workspaces').count();
      ok(`database ${dbPath} opens (${workspaces} workspace${workspaces === 1 ? '' : 's'})`);
      const sample = (await store.table('signing_keys').query({ limit: 1 })).items[0];
      if (sample && cipher) {
        try {
          cipher.decrypt(sample.privateJwk);
          ok('the encryption key opens the stored secrets');
        } catch {
          bad('the encryption key does not open the stored secrets: it is not the key they were written with');
        }
      }
      await store.close();
    } catch (err) {
      bad(`database ${dbPath} cannot be opened: ${(err as Error).message}`);
    }
  } else {
    ok('no database yet: npm start creates it');
  }
  if (config.port !== 0) {
    if (await portFree(config.host, config.port)) ok(`port ${config.host}:${config.port} is free`);
    else io.out(`  note  port ${config.host}:${config.port} is in use (fine if the hub is running; otherwise set HUB_PORT)`);
  }
  io.out(failures ? `\n${failures} problem${failures === 1 ? '' : 's'} found.` : '\nAll checks passed.');
  return failures ? 1 : 0;
}

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  try {
    return await run(argv, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(err.message);
      return 2;
    }
    if (err instanceof HubError) {
      io.err(`${err.message}${err.errors?.length ? ':\n' + err.errors.map((e) => `  ${e.field}: ${e.message}`).join('\n') : ''}`);
      return 2;
    }
    throw err;
  }
}

async function run(argv: string[], io: CliIo): Promise<number> {
  const clock = io.clock ?? systemClock;
  let config: HubConfig;
  try {
    config = loadConfig(io.env, io.cwd);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(err.message);
      if (argv[0] === 'doctor') io.out('  FAIL  configuration (see above)');
      return 2;
    }
    throw err;
  }
  const [group, action, ...afterAction] = argv;
  // `import FILE --options`: the file is the command's argument, not a sub-command.
  const rest = group === 'import' && action?.startsWith('--') ? [action, ...afterAction] : afterAction;
  if (!group || group === 'help' || group === '--help' || group === '-h') {
    io.out(HELP);
    return group ? 0 : 2;
  }
  if (group === 'doctor') return doctor(config, io);

  const { values, positionals } = (() => {
    try {
      return parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          workspace: { type: 'string' },
          name: { type: 'string' },
          scopes: { type: 'string' },
          'expires-in': { type: 'string' },
          slug: { type: 'string' },
          currency: { type: 'string' },
          timezone: { type: 'string' },
          appwrite: { type: 'boolean' },
          mapping: { type: 'string' },
          action: { type: 'string' },
          policy: { type: 'string' },
          format: { type: 'string' },
          exchange: { type: 'string' },
          delimiter: { type: 'string' },
          'record-path': { type: 'string' },
          sheet: { type: 'string' },
        },
      });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  })();

  let store: Store;
  if (values.appwrite) {
    const missing = ['APPWRITE_ENDPOINT', 'APPWRITE_PROJECT', 'APPWRITE_API_KEY'].filter((v) => !io.env[v]?.trim());
    if (missing.length) throw new UsageError(`--appwrite needs ${missing.join(', ')}`);
    store = createAppwriteStore({ endpoint: io.env.APPWRITE_ENDPOINT!, projectId: io.env.APPWRITE_PROJECT!, apiKey: io.env.APPWRITE_API_KEY!, clock });
  } else {
    const dbPath = join(config.dataDir, 'hub.db');
    if (!existsSync(dbPath)) {
      io.err(`No database at ${dbPath}: start the hub once (npm start) or set HUB_DATA_DIR.`);
      return 2;
    }
    store = createSqliteStore({ path: dbPath, clock, cacheMb: config.sqliteCacheMb });
  }
  try {
    if (group === 'import') {
      if (!action || action.startsWith('--')) throw new UsageError('import needs a file: npm run hub -- import stock.csv --action stock.count --mapping csv-stock-count-in');
      const workspaces = (await store.table('workspaces').query({ limit: 2 })).items;
      const ws = values.workspace ? await findWorkspace(store, values.workspace) : workspaces.length === 1 ? workspaces[0]! : null;
      if (!ws) throw new UsageError('--workspace is required when there is more than one (see: workspaces list)');
      return await importCommand(store, config, clock, { file: isAbsolute(action) ? action : join(io.cwd, action), workspace: ws, exchange: values.exchange, mapping: values.mapping, action: values.action, policy: values.policy, format: values.format, delimiter: values.delimiter, recordPath: values['record-path'], sheet: values.sheet }, {
        out: io.out,
        progress: io.progress ?? ((line) => line && io.err(line)),
        tty: io.tty ?? false,
      });
    }
    const command = `${group} ${action ?? ''}`.trim();
    switch (command) {
      case 'workspaces list': {
        const page = await store.table('workspaces').query({ limit: 1000 });
        for (const w of page.items) io.out(`${w.id}  ${w.slug.padEnd(20)}  ${w.currency}  ${w.timezone}  ${w.name}`);
        return 0;
      }
      case 'workspaces create': {
        const name = positionals.join(' ').trim();
        if (!name) throw new UsageError('workspaces create needs a name');
        const created = await createWorkspace(store, clock, {
          name,
          slug: values.slug,
          currency: values.currency,
          timezone: values.timezone,
          actor: actor(),
        });
        io.out(`Created workspace ${created.workspace.id} (${created.workspace.slug}).`);
        io.out(`Admin API key (shown once, store it now): ${created.secret}`);
        return 0;
      }
      case 'keys list': {
        const ws = await findWorkspace(store, values.workspace);
        const page = await store.table('api_keys').query({ where: { workspaceId: ws.id }, orderBy: { field: 'id', direction: 'desc' }, limit: 1000 });
        for (const k of page.items) {
          const state = k.revokedAt ? 'revoked' : k.expiresAt && Date.parse(k.expiresAt) <= clock.now() ? 'expired' : 'active';
          io.out(`${k.id}  ${k.prefix}…  ${state.padEnd(7)}  ${k.scopes.join(',')}  ${k.name}`);
        }
        return 0;
      }
      case 'keys create': {
        const ws = await findWorkspace(store, values.workspace);
        if (!values.name) throw new UsageError('--name is required');
        if (!values.scopes) throw new UsageError('--scopes is required, e.g. --scopes connections:read,events:read or --scopes "*"');
        const expiresAt = values['expires-in'] ? new Date(clock.now() + parseDuration(values['expires-in'])).toISOString() : null;
        const created = await store.transaction((tx) =>
          createApiKey(tx, clock, { workspaceId: ws.id, name: values.name!, scopes: values.scopes!.split(',').map((s) => s.trim()), expiresAt, actor: actor() }),
        );
        io.out(`Created key ${created.key.id} in ${ws.slug}${expiresAt ? `, expiring ${expiresAt}` : ''}.`);
        io.out(`API key (shown once, store it now): ${created.secret}`);
        return 0;
      }
      case 'keys revoke': {
        const id = positionals[0];
        if (!id) throw new UsageError('keys revoke needs a key id (see: keys list)');
        const key = await store.table('api_keys').get(id);
        if (!key) throw new UsageError(`No key ${id}`);
        if (key.revokedAt) {
          io.out(`Key ${id} was already revoked at ${key.revokedAt}.`);
          return 0;
        }
        await store.transaction(async (tx) => {
          const now = new Date(clock.now()).toISOString();
          await tx.table('api_keys').update(id, { revokedAt: now }, { ifVersion: key.version });
          await auditSystem(tx, { workspaceId: key.workspaceId, actorType: 'cli', actorId: actor(), action: 'api_key.revoked', resourceType: 'api_key', resourceId: id, time: now });
        });
        io.out(`Revoked key ${id}.`);
        return 0;
      }
      default:
        throw new UsageError(`Unknown command "${command}"\n\n${HELP}`);
    }
  } finally {
    await store.close();
  }
}
