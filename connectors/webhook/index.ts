// The custom webhook connector: a system of the customer's own that pushes events to /hooks/{connectionId}. It
// verifies Standard Webhooks or plain HMAC-SHA256 signatures (or, for senders that sign nothing, a secret token),
// reads the event type from the body or a header, routes each kind of event through a mapping into an action, and
// answers as the sender requires (Xero: 200, and an empty 401). Vendor connectors supply the same parts.
import { defineConnector, type ConnectorWebhooks, type InboundRoute, type RawRequest, type WebhookAnswers, type WebhookVerifier } from '../../src/connectors/define.ts';
import { HubError } from '../../src/errors.ts';
import type { Clock } from '../../src/lib/clock.ts';
import { valueAtPointer } from '../../src/mappings/pointer.ts';
import { hmacVerifier, standardWebhooksVerifier, tokenVerifier } from '../../src/webhooks/verifiers.ts';
import configSchema from './config.schema.json' with { type: 'json' };
import credentialsSchema from './credentials.schema.json' with { type: 'json' };

export interface WebhookConnectorConfig {
  verification: {
    scheme: 'standard-webhooks' | 'hmac-sha256' | 'token';
    tokenHeader?: string;
    tokenParam?: string;
    toleranceSeconds?: number;
    signatureHeader?: string;
    encoding?: 'hex' | 'base64';
    prefix?: string;
    timestampHeader?: string;
    deliveryIdHeader?: string;
    deliveryIdField?: string;
    normalizeSecret?: 'NFKD';
    pingField?: string;
  };
  eventType?: { field?: string; header?: string };
  response?: { status?: 200 | 202 | 204; body?: 'json' | 'empty'; refusal?: 'problem' | 'empty' };
  routes: InboundRoute[];
}

export interface WebhookConnectorCredentials {
  secret: string;
  previousSecret?: string;
}

function verifierOf(config: WebhookConnectorConfig, credentials: WebhookConnectorCredentials, clock: Clock) {
  const v = config.verification;
  const now = () => clock.now();
  const secrets = [credentials.secret, ...(credentials.previousSecret ? [credentials.previousSecret] : [])];
  if (v.scheme === 'standard-webhooks') return standardWebhooksVerifier(secrets, { toleranceSeconds: v.toleranceSeconds }, now);
  if (v.scheme === 'token') return anyOf(secrets.map((secret) => tokenVerifier(secret, { header: v.tokenHeader, param: v.tokenParam })));
  const hmac = anyOf(
    secrets.map((secret) =>
      hmacVerifier(secret, { signatureHeader: v.signatureHeader!, encoding: v.encoding ?? 'hex', prefix: v.prefix, timestampHeader: v.timestampHeader, toleranceSeconds: v.toleranceSeconds, deliveryIdHeader: v.deliveryIdHeader, deliveryIdField: v.deliveryIdField, normalizeSecret: v.normalizeSecret }, now),
    ),
  );
  return v.pingField === undefined ? hmac : withPing(hmac, v.signatureHeader!, v.pingField);
}

/**
 * The unsigned ping some senders post when a webhook is created, and want 200 for (WooCommerce's deliver_ping posts
 * `webhook_id=<id>` and no signature): a request without the signature header whose whole body is `<field>=<digits>`
 * is answered 200, and nothing is stored. Anyone may get that 200; it changes nothing. A signed request is verified
 * as ever, whatever its body.
 */
function withPing(verifier: WebhookVerifier, signatureHeader: string, field: string): WebhookVerifier {
  const ping = new RegExp(`^${field}=[0-9]{1,20}$`);
  return {
    verify(request: RawRequest) {
      if (request.headers.get(signatureHeader) === null && request.body.byteLength <= 128 && ping.test(Buffer.from(request.body).toString('latin1'))) {
        return { ok: true, deliveryId: 'ping', handshake: { status: 200 } };
      }
      return verifier.verify(request);
    },
  };
}

/** A rotation: either secret verifies (each check is constant-time on its own). */
function anyOf(verifiers: WebhookVerifier[]): WebhookVerifier {
  return {
    async verify(request: RawRequest) {
      let last = await verifiers[0]!.verify(request);
      for (const verifier of verifiers.slice(1)) {
        if (last.ok) break;
        last = await verifier.verify(request);
      }
      return last;
    },
  };
}

/** The body as JSON; the event type from the configured header, else the configured field (default `/type`). */
function parseWith(config: WebhookConnectorConfig) {
  const source = config.eventType ?? { field: '/type' };
  return (request: RawRequest) => {
    let payload: unknown;
    try {
      payload = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(request.body));
    } catch (err) {
      throw new HubError('invalid_json', `The webhook body is not valid UTF-8 JSON: ${(err as Error).message}`);
    }
    let eventType: unknown = source.header ? request.headers.get(source.header) : undefined;
    if ((eventType === undefined || eventType === null) && source.field !== undefined) eventType = valueAtPointer(payload, source.field);
    return { eventType: typeof eventType === 'string' && eventType !== '' ? eventType : null, payload };
  };
}

/** The answers the config asks for; none when it keeps the hub's own. */
function answersOf(response: WebhookConnectorConfig['response']): WebhookAnswers | undefined {
  if (!response) return undefined;
  const status = response.status ?? 202;
  const answers: WebhookAnswers = {};
  if (status !== 202 || response.body === 'empty') answers.accepted = { status, empty: response.body === 'empty' };
  if (response.refusal === 'empty') answers.refused = { empty: true };
  return answers.accepted || answers.refused ? answers : undefined;
}

export const webhookConnector = defineConnector<WebhookConnectorConfig, WebhookConnectorCredentials>({
  id: 'webhook',
  name: 'Custom webhooks (inbound)',
  category: 'generic',
  description:
    'Receives signed webhooks from a system of your own at /hooks/{connectionId} (Standard Webhooks or HMAC-SHA256), ' +
    'and maps each kind of event into the hub: orders, products, stock counts and changes, receipts.',
  configSchema,
  credentialsSchema,
  capabilities: ['test', 'webhooks'],
  create(config, credentials, ctx) {
    const webhooks: ConnectorWebhooks = { ...verifierOf(config, credentials, ctx.clock), parse: parseWith(config), routes: config.routes, answers: answersOf(config.response) };
    return {
      async testConnection() {
        // Nothing to call: the sender calls the hub. Building the verifier above already proved the secret usable.
        const routes = config.routes.length;
        return { ok: true, latencyMs: 0, message: `Ready to receive ${config.verification.scheme} webhooks with ${routes} route${routes === 1 ? '' : 's'}.` };
      },
      webhooks,
    };
  },
});
