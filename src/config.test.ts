import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));
const load = (env: Record<string, string>) => {
  dir = mkdtempSync(join(tmpdir(), 'hub-config-'));
  return loadConfig({ HUB_DATA_DIR: dir, ...env }, dir);
};

/** Each value of the variable is refused with a ConfigError that names the variable. */
function expectRefused(variable: string, values: string[]): void {
  for (const bad of values) {
    let err: unknown;
    try {
      load({ [variable]: bad });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems.join('\n')).toContain(variable);
  }
}

describe('HUB_IMPORT_PROCESS_MIN_BYTES', () => {
  it('defaults to 4 MiB, takes a byte count (0: every file) or off (never)', () => {
    expect(load({}).files.importProcessMinBytes).toBe(4 * 1024 * 1024);
    expect(load({ HUB_IMPORT_PROCESS_MIN_BYTES: '0' }).files.importProcessMinBytes).toBe(0);
    expect(load({ HUB_IMPORT_PROCESS_MIN_BYTES: '1048576' }).files.importProcessMinBytes).toBe(1048576);
    expect(load({ HUB_IMPORT_PROCESS_MIN_BYTES: ' OFF ' }).files.importProcessMinBytes).toBe(Infinity);
  });

  it('refuses anything else, naming the variable', () => {
    expectRefused('HUB_IMPORT_PROCESS_MIN_BYTES', ['lots', '-1', '4MB', '1.5']);
  });
});

describe('HUB_APPWRITE_TRANSACTION_WRITES', () => {
  it('defaults to Appwrite Free\'s 100 and takes another plan\'s bound', () => {
    expect(load({}).appwriteTransactionWrites).toBe(100);
    expect(load({ HUB_APPWRITE_TRANSACTION_WRITES: '1000' }).appwriteTransactionWrites).toBe(1000);
  });

  it('refuses a bound too small to page by, naming the variable', () => {
    expectRefused('HUB_APPWRITE_TRANSACTION_WRITES', ['0', '5', 'many']);
  });
});

describe('HUB_SQLITE_CHECKPOINT_MS', () => {
  it('defaults to a checkpointer turn every 100 ms, and takes 0 (SQLite checkpoints in its commits)', () => {
    expect(load({}).sqliteCheckpointMs).toBe(100);
    expect(load({ HUB_SQLITE_CHECKPOINT_MS: '0' }).sqliteCheckpointMs).toBe(0);
    expect(load({ HUB_SQLITE_CHECKPOINT_MS: '250' }).sqliteCheckpointMs).toBe(250);
  });

  it('refuses anything else, naming the variable', () => {
    expectRefused('HUB_SQLITE_CHECKPOINT_MS', ['-1', 'often', '60001']);
  });
});
