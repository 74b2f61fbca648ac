import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bootstrapIfEmpty } from '../src/bootstrap.ts';
import { systemClock } from '../src/lib/clock.ts';
import { hashSecret } from '../src/auth/secrets.ts';
import { createSqliteStore } from '../src/store/sqlite.ts';
import { runCli } from './cli.ts';

let dir: string;
let out: string[];
let err: string[];
const cli = (...argv: string[]) => runCli(argv, { env: { HUB_DATA_DIR: dir, HUB_PORT: '0' }, cwd: dir, out: (l) => out.push(l), err: (l) => err.push(l) });

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hub-cli-'));
  out = [];
  err = [];
  const store = createSqliteStore({ path: join(dir, 'hub.db') });
  await bootstrapIfEmpty(store, systemClock);
  await store.close();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('hub CLI', () => {
  it('creates and lists workspaces, printing the admin key once', async () => {
    expect(await cli('workspaces', 'create', 'Globex', 'Corp', '--currency', 'EUR')).toBe(0);
    const key = /hub_sk_\S+/.exec(out.join('\n'))![0];
    out = [];
    expect(await cli('workspaces', 'list')).toBe(0);
    expect(out.join('\n')).toMatch(/globex-corp\s+EUR/);
    expect(out.join('\n')).not.toContain(key);
  });

  it('creates, lists and revokes keys, and the stored key matches the printed one', async () => {
    expect(await cli('keys', 'create', '--workspace', 'default', '--name', 'erp', '--scopes', 'connections:read,events:read', '--expires-in', '30d')).toBe(0);
    const secret = /hub_sk_\S+/.exec(out.join('\n'))![0];
    const keyId = /key_\w+/.exec(out.join('\n'))![0];
    const store = createSqliteStore({ path: join(dir, 'hub.db') });
    const row = await store.table('api_keys').get(keyId);
    expect(row?.hash).toBe(hashSecret(secret));
    expect(row?.scopes).toEqual(['connections:read', 'events:read']);
    await store.close();
    out = [];
    await cli('keys', 'list', '--workspace', 'default');
    expect(out.join('\n')).toMatch(new RegExp(`${keyId}.*active`));
    expect(await cli('keys', 'revoke', keyId)).toBe(0);
    out = [];
    await cli('keys', 'list', '--workspace', 'default');
    expect(out.join('\n')).toMatch(new RegExp(`${keyId}.*revoked`));
  });

  it('answers mistakes with a sentence and exit code 2', async () => {
    expect(await cli('keys', 'create', '--workspace', 'nope', '--name', 'x', '--scopes', '*')).toBe(2);
    expect(err.pop()).toContain('No workspace "nope"');
    expect(await cli('keys', 'create', '--workspace', 'default', '--name', 'x', '--scopes', 'conections:read')).toBe(2);
    expect(err.pop()).toContain('/scopes/0');
    expect(await cli('keys', 'create', '--workspace', 'default', '--name', 'x', '--scopes', '*', '--expires-in', 'soon')).toBe(2);
    expect(await cli('keys', 'create', '--bogus')).toBe(2);
    expect(await cli('frobnicate')).toBe(2);
    expect(err.pop()).toContain('Unknown command');
  });

  it('doctor passes on a healthy data directory and catches a wrong encryption key', async () => {
    expect(await cli('doctor')).toBe(0);
    expect(out.join('\n')).toContain('All checks passed');
    // give the store a secret written with one key, then check with another
    const { createHub } = await import('../src/hub.ts');
    const { testConfig } = await import('../src/config.ts');
    const store = createSqliteStore({ path: join(dir, 'hub.db') });
    const hub = createHub({ config: testConfig(), store, encryptionKey: Buffer.alloc(32, 3) });
    await hub.deps.tokens.jwks();
    await hub.close(100);
    writeFileSync(join(dir, 'encryption.key'), Buffer.alloc(32, 4).toString('base64'));
    out = [];
    expect(await cli('doctor')).toBe(1);
    expect(out.join('\n')).toMatch(/FAIL.*not the key they were written with/);
  });

  it('doctor names a bad variable', async () => {
    const code = await runCli(['doctor'], { env: { HUB_DATA_DIR: dir, HUB_RATE_LIMIT_PER_MINUTE: '-5' }, cwd: dir, out: (l) => out.push(l), err: (l) => err.push(l) });
    expect(code).toBe(2);
    expect(err.join('\n')).toContain('HUB_RATE_LIMIT_PER_MINUTE');
  });

  it('imports a file with a progress bar, reports failed rows, and does not apply the same file twice', async () => {
    const store = createSqliteStore({ path: join(dir, 'hub.db') });
    const ws = (await store.table('workspaces').query({ limit: 1 })).items[0]!;
    await store.table('locations').insert({ workspaceId: ws.id, code: 'LON-1', name: 'London', type: 'warehouse', address: null, priority: 1, active: true });
    const { createProduct } = await import('../src/inventory/products.ts');
    await store.transaction((tx) => createProduct({ db: tx, workspaceId: ws.id, now: new Date().toISOString() }, { sku: 'MUG-01', name: 'Mug' }));
    await store.close();
    const lines = ['SKU,Location,On Hand', 'MUG-01,LON-1,5', 'NOPE,LON-1,1'];
    writeFileSync(join(dir, 'stock.csv'), lines.join('\n') + '\n');
    const progress: string[] = [];
    const run = (...argv: string[]) =>
      runCli(argv, { env: { HUB_DATA_DIR: dir, HUB_PORT: '0' }, cwd: dir, out: (l) => out.push(l), err: (l) => err.push(l), progress: (l) => progress.push(l), tty: false });
    expect(await run('import', 'stock.csv', '--action', 'stock.count', '--mapping', 'csv-stock-count-in', '--policy', 'keep-good')).toBe(1);
    const text = out.join('\n');
    expect(text).toMatch(/partial: 2 rows read, 1 applied, 0 skipped, 1 failed/);
    expect(text).toMatch(/row 3: unknown: there is no product with SKU "NOPE"/);
    expect(progress.at(-1)).toMatch(/\[#+\] 100%/);
    out = [];
    expect(await run('import', 'stock.csv', '--action', 'stock.count', '--mapping', 'csv-stock-count-in', '--policy', 'keep-good'), out.join('\n') + err.join('\n')).toBe(0);
    expect(out.join('\n')).toContain('duplicate');
    const check = createSqliteStore({ path: join(dir, 'hub.db') });
    expect((await check.table('inventory_items').query({ where: { sku: 'MUG-01' } })).items[0]!.onHand).toBe(5);
    await check.close();
    expect(await run('import', 'missing.csv', '--action', 'stock.count')).toBe(2);
    expect(await run('import', 'stock.csv', '--action', 'stock.fly')).toBe(2);
    expect(err.join('\n')).toContain('--action is required');
  });
});
