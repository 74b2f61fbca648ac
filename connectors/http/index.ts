// The generic HTTP connector: reaches any REST system a customer runs, with base URL, auth and retry policy as configuration.
import { defineConnector, type ConnectorContext, type ConnectorInstance, type TestResult } from '../../src/connectors/define.ts';
import { isHubError, type HubError } from '../../src/errors.ts';
import configSchema from './config.schema.json' with { type: 'json' };
import credentialsSchema from './credentials.schema.json' with { type: 'json' };
import {
  createHttpClient,
  resolveHttpConfig,
  type HttpConnectorConfig,
  type HttpCredentials,
  type HttpRequest,
  type HttpResponse,
} from './client.ts';

export type { HttpConnectorConfig, HttpCredentials, HttpRequest, HttpResponse } from './client.ts';

export interface HttpConnectorInstance extends ConnectorInstance {
  /** One call to the remote system, with the connection's auth, timeout and retry policy. */
  request(req: HttpRequest): Promise<HttpResponse>;
}

/** The instance behind `httpConnector.create`, typed with `request` for callers that know they hold an http connection. */
export function createHttpConnection(
  config: HttpConnectorConfig,
  credentials: HttpCredentials,
  ctx: ConnectorContext,
): HttpConnectorInstance {
  const cfg = resolveHttpConfig(config);
  const client = createHttpClient(cfg, credentials, ctx);
  // The test runs without retries: an admin is waiting on the button, the first answer is the honest one, and
  // sitting out a Retry-After of up to a minute several times would look like a hang. Retries are for jobs.
  const testClient = createHttpClient({ ...cfg, maxRetries: 0 }, credentials, ctx);
  // Shown to the admin without the query, which may carry anything; the client refuses a bad path at test time.
  const target = (cfg.baseUrl.replace(/\/+$/, '') + cfg.testPath).split('?')[0] ?? cfg.baseUrl;

  async function testConnection(): Promise<TestResult> {
    const started = ctx.clock.now();
    try {
      const res = await testClient.request({ method: cfg.testMethod, path: cfg.testPath });
      const message = `Reached ${target} in ${res.latencyMs} ms (HTTP ${res.status}).`;
      return { ok: true, latencyMs: res.latencyMs, status: res.status, message };
    } catch (err) {
      // Remote failures become a result the admin can read; anything else is a bug and should surface as one.
      if (!isHubError(err)) throw err;
      const status = typeof err.extra?.status === 'number' ? err.extra.status : undefined;
      const latencyMs = ctx.clock.now() - started;
      const result: TestResult = { ok: false, latencyMs, code: err.code, message: describeFailure(err, status) };
      if (status !== undefined) result.status = status;
      return result;
    }
  }

  function describeFailure(err: HubError, status: number | undefined): string {
    // Timeouts, unreachable hosts, invalid settings and unreadable 2xx answers: the client's message is already one sentence.
    if (status === undefined || status < 300) return err.message;
    if (err.code === 'upstream_auth_failed') return `The server refused the credentials (HTTP ${status}).`;
    if (err.code === 'upstream_rate_limited') return `The server is rate limiting the hub (HTTP ${status}); try again later.`;
    if (status >= 300 && status < 400) {
      const location = typeof err.extra?.location === 'string' ? ` to ${err.extra.location}` : '';
      return `The server redirects ${target}${location} (HTTP ${status}); use the final address as the base URL.`;
    }
    if (status === 404) return `The server answered but has nothing at ${target} (HTTP 404); check the base URL and the test path.`;
    if (status === 405) return `The server does not allow ${cfg.testMethod} on ${target} (HTTP 405); try another test method or path.`;
    if (status < 500) return `The server rejected the test request to ${target} (HTTP ${status}).`;
    return `The server failed to answer ${target} (HTTP ${status}).`;
  }

  return { testConnection, request: (req) => client.request(req) };
}

export const httpConnector = defineConnector<HttpConnectorConfig, HttpCredentials>({
  id: 'http',
  name: 'Generic HTTP (REST)',
  category: 'generic',
  description:
    'Calls any REST system over HTTP(S) with an API key, bearer token or basic authentication, ' +
    'retrying throttled and failed calls with backoff.',
  configSchema,
  credentialsSchema,
  capabilities: ['test', 'request'],
  create: createHttpConnection,
});
