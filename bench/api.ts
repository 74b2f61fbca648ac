// bench/api: requests/s and p99 of an authenticated GET /v1/connections/{id} against a bare Hono route returning
// the same JSON, measured in one run with autocannon over loopback (50 connections). Prints the ratio.
// Target (issue 2): hub ≥ 0.5× the bare route's requests/s, hub p99 ≤ 10 ms. BENCH_SECONDS sets each round's length.
import autocannon from 'autocannon';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const CONNECTIONS = 50;
const root = join(import.meta.dirname, '..');

interface Target {
  child: ChildProcess;
  url: string;
  headers: Record<string, string>;
}

function start(mode: 'hub' | 'bare', stdin?: string): Promise<Target> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/api-server.ts', mode], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin!.end(stdin ?? '');
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const line = buf.split('\n')[0];
      if (buf.includes('\n') && line) {
        const info = JSON.parse(line) as { port: number; path: string; headers: Record<string, string> };
        resolve({ child, url: `http://127.0.0.1:${info.port}${info.path}`, headers: info.headers });
      }
    });
    child.once('exit', (code) => reject(new Error(`${mode} server exited with ${code}`)));
  });
}

async function stop(t: Target): Promise<void> {
  const exited = new Promise((r) => t.child.once('exit', r));
  t.child.kill('SIGTERM');
  await exited;
}

async function measure(t: Target, seconds: number) {
  const r = await autocannon({ url: t.url, connections: CONNECTIONS, duration: seconds, headers: t.headers });
  if (r.non2xx || r.errors) throw new Error(`${r.non2xx} non-2xx answers and ${r.errors} errors: the benchmark is not measuring what it says`);
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99 };
}

const hub = await start('hub');
const sample = await (await fetch(hub.url, { headers: hub.headers })).text();
const bare = await start('bare', sample);
if ((await (await fetch(bare.url)).text()) !== sample) throw new Error('the bare route does not serve the same JSON');

await measure(hub, 2); // warm up both (JIT, SQLite page cache)
await measure(bare, 2);
const results: { hub: Awaited<ReturnType<typeof measure>>; bare: Awaited<ReturnType<typeof measure>> }[] = [];
for (let i = 0; i < ROUNDS; i++) {
  // alternate, so drift in the machine's load hits both alike
  const b = await measure(bare, SECONDS);
  const h = await measure(hub, SECONDS);
  results.push({ hub: h, bare: b });
}
await stop(hub);
await stop(bare);

const best = (k: 'hub' | 'bare') => results.map((r) => r[k]).sort((a, b) => b.rps - a.rps)[0]!;
const h = best('hub');
const b = best('bare');
const ratio = h.rps / b.rps;
console.log(`bench/api  ${CONNECTIONS} connections, ${ROUNDS} rounds of ${SECONDS} s each, best round shown`);
for (const [i, r] of results.entries()) {
  console.log(`  round ${i + 1}: bare ${r.bare.rps.toFixed(0)} req/s (p99 ${r.bare.p99} ms) · hub ${r.hub.rps.toFixed(0)} req/s (p99 ${r.hub.p99} ms) · ratio ${(r.hub.rps / r.bare.rps).toFixed(2)}`);
}
console.log(`  bare Hono route:                 ${b.rps.toFixed(0)} req/s, p50 ${b.p50} ms, p99 ${b.p99} ms`);
console.log(`  hub GET /v1/connections/{id}:     ${h.rps.toFixed(0)} req/s, p50 ${h.p50} ms, p99 ${h.p99} ms`);
console.log(`  ratio hub/bare: ${ratio.toFixed(2)}×  (target ≥ 0.50×: ${ratio >= 0.5 ? 'met' : 'NOT met'}; p99 ≤ 10 ms: ${h.p99 <= 10 ? 'met' : 'NOT met'})`);
