// The operator CLI on Appwrite TablesDB (--appwrite), against the spec-checked TablesDB test server.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAppwriteStore } from '../src/store/appwrite.ts';
import { startTablesDbServer } from '../test/appwrite/tablesdb-server.ts';
import { runCli } from './cli.ts';

let dir: string;
let out: string[];
let err: string[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hub-cli-'));
  out = [];
  err = [];
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('hub CLI on Appwrite', () => {
  it('creates a workspace on Appwrite with --appwrite', async () => {
    const server = await startTablesDbServer();
    try {
      const env = { APPWRITE_ENDPOINT: server.url, APPWRITE_PROJECT: server.projectId, APPWRITE_API_KEY: server.apiKey };
      await createAppwriteStore({ endpoint: server.url, projectId: server.projectId, apiKey: server.apiKey }).provision();
      const run = (...argv: string[]) => runCli(argv, { env, cwd: dir, out: (l) => out.push(l), err: (l) => err.push(l) });
      expect(await run('workspaces', 'create', 'Cloud', 'Co', '--appwrite')).toBe(0);
      expect(out.join('\n')).toMatch(/hub_sk_\S+/);
      out = [];
      expect(await run('workspaces', 'list', '--appwrite')).toBe(0);
      expect(out.join('\n')).toContain('cloud-co');
      expect(server.violations).toEqual([]);
      expect(await runCli(['workspaces', 'list', '--appwrite'], { env: {}, cwd: dir, out: (l) => out.push(l), err: (l) => err.push(l) })).toBe(2);
      expect(err.pop()).toContain('APPWRITE_ENDPOINT');
    } finally {
      await server.close();
    }
  });

});
