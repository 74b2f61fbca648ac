// Operational routes: health, Prometheus metrics, JWKS, the OpenAPI document and the interactive docs.
import type { Hono } from 'hono';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ERROR_CODES, HubError } from '../../errors.ts';
import { safeEqual } from '../../lib/secrets.ts';
import type { HubEnv } from '../deps.ts';
import type { RouteTable } from '../define-route.ts';
import { buildOpenApi } from '../openapi.ts';

export const HUB_VERSION = '0.1.0';
const started = Date.now();

const DOCS_ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'swagger-ui-standalone-preset.js': 'text/javascript; charset=utf-8',
};

function swaggerDir(): string | null {
  try {
    return dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  } catch {
    return null; // not installed (e.g. a bundled Appwrite function): the docs page falls back to the JSON document
  }
}

const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[ch]!);

const DOCS_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Hub API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({ url: '/v1/openapi.json', dom_id: '#ui', deepLinking: true, persistAuthorization: false,
  tryItOutEnabled: true, displayRequestDuration: true });
</script></body></html>`;

function errorsHtml(): string {
  const rows = Object.entries(ERROR_CODES)
    .map(([code, e]) => `<tr id="error-${code}"><td><code>${code}</code></td><td>${e.status}</td><td>${escapeHtml(e.title)}</td><td>${e.retryable ? 'yes' : 'no'}</td></tr>`)
    .join('\n');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Hub API error codes</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}td,th{padding:.3rem .8rem;text-align:left;border-bottom:1px solid #ddd}</style></head>
<body><h1>Error codes</h1><p>Every error is an RFC 9457 <code>application/problem+json</code> document. Its <code>code</code> is stable;
<code>errors</code> lists each failing field as a JSON pointer. "Retry" says whether the same request may succeed later.</p>
<table><thead><tr><th>code</th><th>status</th><th>meaning</th><th>retry</th></tr></thead><tbody>
${rows}
</tbody></table><p><a href="/docs">API reference</a></p></body></html>`;
}

export function registerSystemRoutes(app: Hono<HubEnv>, routes: RouteTable): void {
  let openapi: string | null = null;

  app.get('/', (c) =>
    c.json({ name: 'inventory-integration-hub', version: HUB_VERSION, docs: '/docs', openapi: '/v1/openapi.json', health: '/health' }),
  );

  app.get('/health', async (c) => {
    const { store } = c.get('deps');
    const t0 = performance.now();
    let storeCheck: Record<string, unknown>;
    try {
      await store.ping();
      storeCheck = { status: 'ok', kind: store.kind, latencyMs: Math.round((performance.now() - t0) * 100) / 100 };
    } catch (err) {
      storeCheck = { status: 'failing', kind: store.kind, error: (err as Error).message };
    }
    const ok = storeCheck.status === 'ok';
    c.header('Cache-Control', 'no-store');
    return c.json(
      { status: ok ? 'ok' : 'failing', version: HUB_VERSION, uptimeSeconds: Math.round((Date.now() - started) / 1000), checks: { store: storeCheck } },
      ok ? 200 : 503,
    );
  });

  app.get('/health/live', (c) => c.json({ status: 'ok' }));

  app.get('/metrics', async (c) => {
    const { config, metrics } = c.get('deps');
    if (config.metricsToken) {
      const given = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1] ?? '';
      if (!safeEqual(given, config.metricsToken)) {
        throw new HubError('unauthenticated', 'Send HUB_METRICS_TOKEN as a Bearer token', { headers: { 'WWW-Authenticate': 'Bearer realm="metrics"' } });
      }
    }
    return c.text(await metrics.registry.render(), 200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
  });

  app.get('/.well-known/jwks.json', async (c) => {
    c.header('Cache-Control', 'public, max-age=300');
    return c.json(await c.get('deps').tokens.jwks());
  });

  app.get('/v1/openapi.json', (c) => {
    openapi ??= JSON.stringify(buildOpenApi(routes.specs, { serverUrl: c.get('deps').config.publicUrl, version: HUB_VERSION }));
    return c.body(openapi, 200, { 'Content-Type': 'application/json; charset=utf-8' });
  });

  app.get('/docs', (c) => (swaggerDir() ? c.html(DOCS_HTML) : c.redirect('/v1/openapi.json')));
  app.get('/docs/errors', (c) => c.html(errorsHtml()));
  app.get('/docs/assets/:file', async (c) => {
    const file = c.req.param('file');
    const dir = swaggerDir();
    const type = Object.hasOwn(DOCS_ASSETS, file) ? DOCS_ASSETS[file] : undefined;
    if (!dir || !type) return c.notFound();
    c.header('Cache-Control', 'public, max-age=86400');
    return c.body(await readFile(join(dir, file)), 200, { 'Content-Type': type });
  });
}
