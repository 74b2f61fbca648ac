// `npm start` runs this first (prestart): bundles the embedded hub, src/main.ts with the file import's reading worker
// and import process beside it, into dist/hub/. Packages stay in node_modules (better-sqlite3 is native). The hub
// then runs on plain Node: no TypeScript loader in the process, its import processes or their reading workers (an
// idle hub ~105 MB instead of ~150). `npm run dev` still runs the sources under tsx.
import { build } from 'esbuild';
import { readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * The entries, by output name, beside main.js: the job worker's thread as worker-thread.js (src/jobs/worker-host.ts), the WAL
 * checkpointer's as checkpoint-thread.js (src/store/checkpointer.ts),
 * the reading worker as read-worker.js (src/files/reader-boot.ts), the import process as import-process.js
 * (src/files/import-child.ts).
 */
export const HUB_ENTRIES = {
  main: 'src/main.ts',
  'worker-thread': 'src/jobs/worker-thread.ts',
  'checkpoint-thread': 'src/store/checkpoint-thread.ts',
  'read-worker': 'src/files/read-worker.ts',
  'import-process': 'src/files/import-process.ts',
} as const;

/**
 * Bundles the hub into `outDir` (default dist/hub). The bundle must sit two levels below the repository, as
 * dist/hub does: it finds the shipped mappings at ../../mappings, as the sources do from src/mappings.
 */
export async function buildHub(outDir = `${ROOT}dist/hub`): Promise<string> {
  // Chunk names carry a hash: clear out the last build's.
  rmSync(outDir, { recursive: true, force: true });
  await build({
    absWorkingDir: ROOT,
    entryPoints: Object.entries(HUB_ENTRIES).map(([out, input]) => ({ in: input, out })),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    // Code the hub imports on demand (the file exchange: ssh2, nodemailer, node-appwrite's Storage, exceljs) stays
    // in chunks of its own, so its packages load when first used. One file would hoist their imports to the top,
    // and every hub would load them at start (~40 MB; ssh2 alone reserves 16 MB for its WebAssembly).
    // Chunks sit beside main.js: their code finds read-worker.js, import-process.js and ../../mappings from there.
    splitting: true,
    outdir: outDir,
    sourcemap: 'linked',
    logLevel: 'warning',
  });
  return `${outDir}/main.js`;
}

/** The node flags `npm start` runs the bundle with (its start script is "node [flags] dist/hub/main.js"); none today. */
export function startFlags(): string[] {
  const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { scripts: Record<string, string> };
  const m = /^node ((?:--[a-z-]+=\d+ ?)*)dist\/hub\/main\.js$/.exec(pkg.scripts.start ?? '');
  if (!m) throw new Error(`The start script is not "node [flags] dist/hub/main.js": ${pkg.scripts.start}`);
  return m[1]!.trim().split(' ').filter(Boolean);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await buildHub();
