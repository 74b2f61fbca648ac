// The connector seam: one definition object per vendor, registered in connectors/index.ts. Connectors return
// vendor records as they are; all field shaping happens in mappings.
import type { Clock } from '../lib/clock.ts';
import type { Logger } from '../lib/log.ts';
import type { JsonSchema } from '../schemas/registry.ts';
import type { ActionName } from '../apply/actions.ts';

export type ConnectorCategory = 'generic' | 'accounting' | 'ecommerce' | 'shipping';

export type Capability = 'test' | 'request' | 'list' | 'get' | 'upsert' | 'webhooks';

export interface ConnectorContext {
  /** The fetch to reach the vendor with (injected so tests and simulators can stand in). */
  fetch: typeof fetch;
  clock: Clock;
  log: Logger;
  /** Waits `ms` (injected so retry tests need not sleep). */
  sleep?: (ms: number) => Promise<void>;
}

export interface TestResult {
  ok: boolean;
  latencyMs: number;
  /** One sentence for an admin: what worked or what failed. */
  message: string;
  status?: number;
  code?: string;
}

export interface ListOptions {
  cursor?: string | null;
  limit?: number;
  /** Only records changed at or after this instant, where the vendor supports it. */
  since?: string;
}

export interface ListPage {
  items: Record<string, unknown>[];
  nextCursor: string | null;
}

export interface RawRequest {
  method: string;
  headers: Headers;
  /** The body exactly as received: signatures are computed over these bytes. */
  body: Uint8Array;
  url: string;
}

export type VerifyResult =
  | { ok: true; deliveryId: string; handshake?: { status: number; headers?: Record<string, string>; body?: string } }
  | { ok: false; reason: string };

/** A verified inbound webhook, read: what kind of event it is, and its content for the mapping. */
export interface InboundMessage {
  /** The sender's event type (`order.created`, `orders/create`), which picks the route; null when it has none. */
  eventType: string | null;
  payload: unknown;
}

/** Where a kind of inbound message goes: through which mapping, into which action. */
export interface InboundRoute {
  /** The sender's event type, a prefix pattern (`order.*`), or `*`. */
  event: string;
  /** The key of the mapping from the sender's shape to the action's input. */
  mapping: string;
  action: ActionName;
}

export interface WebhookVerifier {
  /** Verifies the signature over the raw bytes in constant time; nothing is parsed before this succeeds. */
  verify(request: RawRequest): Promise<VerifyResult> | VerifyResult;
}

/**
 * How the receiver answers a sender whose contract differs from the hub's own answers (202 with `{id, duplicate}`
 * for a stored webhook, 401 with a problem document for a bad signature). Xero's webhooks, for one, take only 200
 * as received, and its intent-to-receive check wants 200 for a good signature and 401 for a bad one.
 */
export interface WebhookAnswers {
  /** A stored webhook (a resend too): this status, and no body when `empty` (204 never has one). */
  accepted?: { status: 200 | 202 | 204; empty?: boolean };
  /** A request whose signature fails still gets 401; with `empty`, without the problem document. */
  refused?: { empty: boolean };
}

export interface ConnectorWebhooks extends WebhookVerifier {
  /** Reads a verified request (the worker calls it, not the receiver); throws a HubError when it cannot. */
  parse(request: RawRequest): InboundMessage;
  /** The routes of this connection; a message no route takes is kept as `ignored`. */
  routes: readonly InboundRoute[];
  /** Answers other than the hub's defaults, as the sender requires. */
  answers?: WebhookAnswers;
}

export interface ConnectorRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';
  path: string;
  query?: Record<string, string | number | boolean | readonly (string | number | boolean)[]>;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface ConnectorResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
  latencyMs: number;
}

export interface ConnectorInstance {
  testConnection(): Promise<TestResult>;
  /** A raw call to the remote API (capability `request`), with the connector's auth, retries and timeouts. */
  request?(req: ConnectorRequest): Promise<ConnectorResponse>;
  list?(entity: string, options?: ListOptions): Promise<ListPage>;
  get?(entity: string, id: string): Promise<Record<string, unknown> | null>;
  upsert?(entity: string, record: Record<string, unknown>, options: { idempotencyKey: string }): Promise<{ id: string; created: boolean }>;
  webhooks?: ConnectorWebhooks;
}

export interface ConnectorDefinition<Config = Record<string, unknown>, Credentials = Record<string, unknown>> {
  id: string;
  name: string;
  category: ConnectorCategory;
  description: string;
  /** JSON Schema (2020-12) of the connection's non-secret configuration. */
  configSchema: JsonSchema;
  /** JSON Schema of the secrets; stored encrypted, never returned by the API. */
  credentialsSchema: JsonSchema;
  capabilities: readonly Capability[];
  create(config: Config, credentials: Credentials, ctx: ConnectorContext): ConnectorInstance;
}

export function defineConnector<Config, Credentials>(
  definition: ConnectorDefinition<Config, Credentials>,
): ConnectorDefinition<Config, Credentials> {
  if (!/^[a-z][a-z0-9-]*$/.test(definition.id)) throw new Error(`Connector id ${definition.id} must be kebab-case`);
  return definition;
}
