// The hub's HTTP app: global middleware (request ids, metrics, CORS, body limit, errors as problem+json) and the
// routes. No port, no server: tests call app.request(); src/main.ts and the Appwrite functions serve it.
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { HTTPException } from 'hono/http-exception';
import { ERROR_CODES, HubError, toProblem } from '../errors.ts';
import { randomToken } from '../lib/ids.ts';
import type { AppDeps, HubEnv } from './deps.ts';
import { createRouteTable } from './define-route.ts';
import { registerApiKeyRoutes } from './routes/api-keys.ts';
import { registerAuditRoutes } from './routes/audit.ts';
import { registerConnectionRoutes } from './routes/connections.ts';
import { registerEventRoutes } from './routes/events.ts';
import { registerInventoryRoutes } from './routes/inventory/index.ts';
import { registerJobRoutes } from './routes/jobs.ts';
import { registerMappingRoutes } from './routes/mappings.ts';
import { registerOAuthRoutes } from './routes/oauth.ts';
import { registerSystemRoutes } from './routes/system.ts';
import { registerWorkspaceRoutes } from './routes/workspace.ts';
import { registerHookRoutes } from './routes/hooks.ts';
import { registerWebhookRoutes } from './routes/webhooks.ts';
import { registerFileRoutes } from './routes/files.ts';
import { registerScheduleRoutes } from './routes/schedules.ts';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
// Request ids: a random per-process prefix and a counter, unique without a syscall per request.
const idPrefix = `req_${randomToken(6)}`;
let idCounter = 0;

/** The request's id: the X-Request-Id it came with when that is a sane one, else a new one. */
export function requestIdOf(given: string | string[] | undefined): string {
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : `${idPrefix}${(idCounter++).toString(36)}`;
}

function problemResponse(err: HubError, requestId: string | undefined): Response {
  const headers = new Headers({ 'Content-Type': 'application/problem+json', 'X-Content-Type-Options': 'nosniff', ...err.headers });
  if (requestId) headers.set('X-Request-Id', requestId);
  return new Response(JSON.stringify(toProblem(err, requestId)), { status: err.status, headers });
}

/** Any thrown value becomes a HubError: ours as they are, Hono's by status, everything else as internal_error. */
export function asHubError(err: unknown): HubError {
  if (err instanceof HubError) return err;
  if (err instanceof HTTPException) {
    const byStatus = Object.entries(ERROR_CODES).find(([, v]) => v.status === err.status);
    if (err.status === 413) return new HubError('payload_too_large');
    if (byStatus) return new HubError(byStatus[0] as keyof typeof ERROR_CODES, err.message || undefined);
  }
  return new HubError('internal_error', 'Something went wrong on our side; the request id identifies it in the logs', { cause: err });
}

export function createApp(deps: AppDeps) {
  const app = new Hono<HubEnv>();

  app.use('*', async (c, next) => {
    const started = performance.now();
    const requestId = requestIdOf(c.req.header('x-request-id'));
    c.set('deps', deps);
    c.set('requestId', requestId);
    // Collected as a plain object and written by sendJson into the Response it builds: @hono/node-server writes
    // such a response straight to the socket, while Headers objects (c.header, c.res.headers) cost a fifth of an
    // authenticated GET (measured). Responses built otherwise get them copied on below.
    const resHeaders: Record<string, string> = { 'x-request-id': requestId, 'x-content-type-options': 'nosniff' };
    c.set('resHeaders', resHeaders);
    await next();
    if (!c.get('headersSent')) {
      for (const [k, v] of Object.entries(resHeaders)) if (!c.res.headers.has(k)) c.res.headers.set(k, v);
    }
    const route = c.req.routePath && c.req.routePath !== '/*' ? c.req.routePath : 'unmatched';
    deps.metrics.observeRequest(c.req.method, route, c.res.status, (performance.now() - started) / 1000);
  });

  if (deps.config.corsOrigins.length) {
    const origins = deps.config.corsOrigins;
    app.use(
      '*',
      cors({
        origin: origins.includes('*') ? '*' : origins,
        allowHeaders: ['Authorization', 'X-API-Key', 'Content-Type', 'Idempotency-Key', 'If-Match', 'If-None-Match', 'X-Request-Id'],
        allowMethods: ['GET', 'POST', 'PATCH', 'PUT', 'DELETE', 'OPTIONS'],
        exposeHeaders: ['ETag', 'Link', 'Location', 'X-Request-Id', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'Retry-After', 'Idempotent-Replayed'],
        maxAge: 600,
      }),
    );
  }

  const UPLOAD_PATH = '/v1/imports';
  const limitBody = bodyLimit({
    maxSize: deps.config.maxBodyBytes,
    onError: () => {
      throw new HubError('payload_too_large', `The body may be at most ${deps.config.maxBodyBytes} bytes`, {
        extra: { maxBytes: deps.config.maxBodyBytes },
      });
    },
  });
  // Only methods that carry a body. A declared Content-Length is checked up front and the body then read on
  // @hono/node-server's direct path (the HTTP parser never delivers more than the declared length); bodyLimit
  // reads c.req.raw.body, which builds a full Request and a counting stream (measured: two thirds of the cost of a
  // small POST), so it guards only bodies without a length (chunked).
  app.use('*', (c, next) => {
    if (!BODY_METHODS.has(c.req.method)) return next();
    // Uploads stream to disk with their own limit (HUB_MAX_UPLOAD_BYTES), checked as the bytes arrive.
    if (c.req.path === UPLOAD_PATH) return next();
    const declared = c.req.header('content-length');
    if (declared === undefined || !/^\d{1,15}$/.test(declared)) return limitBody(c, next);
    if (Number(declared) > deps.config.maxBodyBytes) {
      throw new HubError('payload_too_large', `The body may be at most ${deps.config.maxBodyBytes} bytes`, { extra: { maxBytes: deps.config.maxBodyBytes } });
    }
    return next();
  });

  app.onError((err, c) => {
    const hubError = asHubError(err);
    if (hubError.status >= 500) {
      deps.log.error('request failed', { requestId: c.get('requestId'), path: c.req.path, err: hubError.cause ?? hubError });
    }
    const res = problemResponse(hubError, c.get('requestId'));
    // keep the headers collected before the error (rate limit state)
    for (const [k, v] of Object.entries(c.get('resHeaders') ?? {})) if (!res.headers.has(k)) res.headers.set(k, v);
    c.set('headersSent', true);
    return res;
  });

  app.notFound((c) => problemResponse(new HubError('route_not_found', `No route ${c.req.method} ${c.req.path}`), c.get('requestId')));

  const routes = createRouteTable(app);
  registerSystemRoutes(app, routes);
  registerWorkspaceRoutes(routes);
  registerApiKeyRoutes(routes);
  registerOAuthRoutes(routes);
  registerConnectionRoutes(routes);
  registerEventRoutes(routes);
  registerAuditRoutes(routes);
  registerJobRoutes(routes);
  registerInventoryRoutes(routes);
  registerMappingRoutes(routes);
  registerWebhookRoutes(routes);
  registerHookRoutes(routes);
  registerFileRoutes(routes);
  registerScheduleRoutes(routes);

  return Object.assign(app, { routeSpecs: routes.specs });
}

export type HubApp = ReturnType<typeof createApp>;
