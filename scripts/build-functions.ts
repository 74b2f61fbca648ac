// `npm run build`: bundles each Appwrite function (functions/<name>/src/main.ts) into one ESM file,
// functions/<name>/dist/main.js, that the Node runtime loads with no node_modules: small, no native modules.
import { build, type Metafile } from 'esbuild';
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FUNCTION_NAMES = ['api', 'worker', 'scheduler'] as const;
export type FunctionName = (typeof FUNCTION_NAMES)[number];

/** The bound: a bundle past it has pulled in something it should not. */
export const MAX_BUNDLE_BYTES = 2 * 1024 * 1024;

/** The Appwrite path never uses the SQLite store: a native module cannot load in the function runtime. */
const FORBIDDEN_INPUTS = [/node_modules\/better-sqlite3\//, /(^|\/)src\/store\/sqlite\.ts$/, /node_modules\/bindings\//];

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface BundleReport {
  name: FunctionName;
  /** Absolute path of the bundle. */
  file: string;
  bytes: number;
  /** Source files in the bundle, relative to the repository. */
  inputs: string[];
  /** The five inputs that take most of the bundle, for a size failure to point at. */
  largest: { path: string; bytes: number }[];
}

export interface BuildOptions {
  names?: readonly FunctionName[];
  /** Where a function's main.js goes; default functions/<name>/dist (tests build elsewhere). */
  outDir?: (name: FunctionName) => string;
  minify?: boolean;
}

export class BundleError extends Error {
  override name = 'BundleError';
}

/** Modules loaded only when a file exchange runs (exceljs, ssh2, nodemailer behind them): not part of a cold start. */
const ON_DEMAND = /(^|\/)src\/files\//;

/**
 * What a cold start loads: main.js and every chunk it reaches by static imports and by the runtime's dynamic
 * imports, except the file exchange's, which load on the first file job or file request.
 */
function coldOutputs(metafile: Metafile): string[] {
  const outputs = metafile.outputs;
  const main = Object.keys(outputs).find((path) => path.endsWith('/main.js'))!;
  const seen = new Set<string>([main]);
  const queue = [main];
  while (queue.length) {
    for (const edge of outputs[queue.shift()!]!.imports) {
      const target = outputs[edge.path];
      if (!target || seen.has(edge.path)) continue;
      if (edge.kind === 'dynamic-import' && target.entryPoint && ON_DEMAND.test(target.entryPoint)) continue;
      seen.add(edge.path);
      queue.push(edge.path);
    }
  }
  return [...seen];
}

function check(name: FunctionName, metafile: Metafile): { bytes: number; largest: BundleReport['largest'] } {
  const inputs = Object.keys(metafile.inputs);
  const forbidden = inputs.filter((path) => FORBIDDEN_INPUTS.some((re) => re.test(path)));
  if (forbidden.length) {
    throw new BundleError(`The ${name} bundle includes ${forbidden.join(', ')}: the Appwrite path must not import the SQLite store`);
  }
  const cold = coldOutputs(metafile).map((path) => metafile.outputs[path]!);
  const bytes = cold.reduce((n, o) => n + o.bytes, 0);
  const largest = cold
    .flatMap((o) => Object.entries(o.inputs).map(([path, info]) => ({ path, bytes: info.bytesInOutput })))
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, 5);
  if (bytes > MAX_BUNDLE_BYTES) {
    const top = largest.map((i) => `${i.path} (${Math.round(i.bytes / 1024)} kB)`).join(', ');
    throw new BundleError(`The ${name} bundle loads ${Math.round(bytes / 1024)} kB on a cold start, over the ${MAX_BUNDLE_BYTES / 1024} kB limit; largest inputs: ${top}`);
  }
  return { bytes, largest };
}

export async function buildFunctions(options: BuildOptions = {}): Promise<BundleReport[]> {
  const names = options.names ?? FUNCTION_NAMES;
  const reports: BundleReport[] = [];
  for (const name of names) {
    const outDir = options.outDir?.(name) ?? join(ROOT, 'functions', name, 'dist');
    rmSync(outDir, { recursive: true, force: true });
    mkdirSync(outDir, { recursive: true });
    const file = join(outDir, 'main.js');
    const result = await build({
      entryPoints: { main: join(ROOT, 'functions', name, 'src', 'main.ts') },
      outdir: outDir,
      // What the code imports lazily (the file exchange: exceljs, ssh2, nodemailer) goes to chunks beside main.js,
      // loaded by the executions that need it; a cold start parses main.js alone.
      splitting: true,
      chunkNames: 'chunks/[name]-[hash]',
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      minify: options.minify ?? true,
      // Error and class names stay readable in the execution logs; it costs a few kB.
      keepNames: true,
      metafile: true,
      logLevel: 'silent',
      absWorkingDir: ROOT,
      // ssh2 (SFTP exchanges) tries optional native add-ons inside try/catch and falls back to JavaScript: leave
      // those requires to run time, where they fail softly, rather than fail the build.
      external: ['*.node', 'cpu-features'],
      // CommonJS dependencies call require() for Node built-ins, which an ES module does not have.
      banner: { js: "import { createRequire as __hubRequire } from 'node:module'; const require = __hubRequire(import.meta.url);" },
    });
    // The runtime's own package.json says "commonjs" and sits above the function's code, so without this one
    // Node would parse main.js as CommonJS and fail on its first `import`.
    writeFileSync(join(outDir, 'package.json'), `${JSON.stringify({ type: 'module' })}\n`);
    // The shipped mappings travel beside the bundle (src/mappings/files.ts looks in ./mappings next to it).
    cpSync(join(ROOT, 'mappings'), join(outDir, 'mappings'), { recursive: true });
    const { bytes, largest } = check(name, result.metafile);
    reports.push({ name, file, bytes, inputs: Object.keys(result.metafile.inputs), largest });
  }
  return reports;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  buildFunctions()
    .then((reports) => {
      for (const r of reports) console.log(`${relative(ROOT, r.file)}  ${(r.bytes / 1024).toFixed(0)} kB  (${r.inputs.length} inputs)`);
    })
    .catch((err: unknown) => {
      console.error(err instanceof BundleError ? err.message : err);
      process.exit(1);
    });
}
