// Inbound webhooks. The receiver verifies the raw bytes with the connection's connector, then stores the request
// and its job in one transaction and answers 202: nothing is parsed on the request path. The worker parses, maps
// and applies it in a transaction that also marks the inbox row processed, so a webhook acknowledged with 2xx is
// applied exactly once, however often its job runs or its sender resends it.
import type { ConnectorDefinition, ConnectorWebhooks, RawRequest } from '../connectors/define.ts';
import { applyAction, type ActionContext } from '../apply/actions.ts';
import { HubError, isHubError } from '../errors.ts';
import { matchesType } from '../events/log.ts';
import type { JobQueue } from '../jobs/queue.ts';
import type { JobHandler } from '../jobs/worker.ts';
import type { Clock } from '../lib/clock.ts';
import { newId } from '../lib/ids.ts';
import type { Logger } from '../lib/log.ts';
import type { Cipher } from '../lib/secrets.ts';
import type { MappingDocument } from '../mappings/document.ts';
import { compiledMappingFor } from '../mappings/repository.ts';
import type { ConnectionsRow, InboxRow, Store } from '../store/types.ts';

export const INBOX_JOB = 'inbox.process';
/** Headers kept with the raw request (the rest is hop-by-hop or the client's business). */
const MAX_HEADER_BYTES = 16_384;
const CACHE_TTL_MS = 5000;

export interface InboundDeps {
  store: Store;
  clock: Clock;
  cipher: Cipher;
  log: Logger;
  fetch: typeof fetch;
  connectors: readonly ConnectorDefinition<any, any>[];
  mappings: ReadonlyMap<string, MappingDocument>;
  queue: JobQueue;
}

interface Receiving {
  row: ConnectionsRow;
  webhooks: ConnectorWebhooks;
  loadedAt: number;
}

export type ReceiveOutcome =
  | { kind: 'accepted'; id: string; duplicate: boolean }
  | { kind: 'handshake'; status: number; headers?: Record<string, string>; body?: string };

const changeListeners = new Set<(id: string) => void>();

/** Tells this process's receivers that a connection changed (its secret, its routes, its status). */
export function connectionChanged(id: string): void {
  for (const listener of changeListeners) listener(id);
}

/** The one answer for every unknown, disabled or non-receiving connection: which of them it is stays private. */
function unknownConnection(): HubError {
  return new HubError('not_found', 'No connection receives webhooks at this address');
}

export interface InboundReceiver {
  receive(connectionId: string, request: RawRequest): Promise<ReceiveOutcome>;
  /** The connector's webhooks of a connection (cached), or null when it does not receive any. */
  webhooksOf(connectionId: string): Promise<Receiving | null>;
  close(): void;
}

export function createInboundReceiver(deps: InboundDeps): InboundReceiver {
  const cache = new Map<string, Receiving>();
  const listener = (id: string) => void cache.delete(id);
  changeListeners.add(listener);

  async function webhooksOf(connectionId: string): Promise<Receiving | null> {
    const now = deps.clock.now();
    const cached = cache.get(connectionId);
    if (cached && now - cached.loadedAt < CACHE_TTL_MS) return cached;
    const row = await deps.store.table('connections').get(connectionId);
    const def = row ? deps.connectors.find((d) => d.id === row.connectorId) : undefined;
    if (!row || !def || row.status !== 'active' || !def.capabilities.includes('webhooks')) {
      cache.delete(connectionId);
      return null;
    }
    let webhooks: ConnectorWebhooks | undefined;
    try {
      const credentials = row.credentials ? deps.cipher.decryptJson<Record<string, unknown>>(row.credentials) : {};
      webhooks = def.create(row.config, credentials, { fetch: deps.fetch, clock: deps.clock, log: deps.log.child({ connectionId }) }).webhooks;
    } catch (err) {
      // Saved settings are checked by building the instance, so this is a key or connector change: an operator's matter.
      deps.log.error('connection cannot receive webhooks: its connector refused its settings', { connectionId, err });
      return null;
    }
    if (!webhooks) return null;
    const entry = { row, webhooks, loadedAt: now };
    cache.set(connectionId, entry);
    return entry;
  }

  async function receive(connectionId: string, request: RawRequest): Promise<ReceiveOutcome> {
    const entry = await webhooksOf(connectionId);
    if (!entry) throw unknownConnection();
    const verdict = await entry.webhooks.verify(request);
    if (!verdict.ok) {
      deps.log.warn('inbound webhook refused', { connectionId, reason: verdict.reason });
      throw new HubError('unauthenticated', 'The webhook signature is not valid');
    }
    if (verdict.handshake) return { kind: 'handshake', ...verdict.handshake };
    const id = newId('inb');
    const jobId = newId('job');
    const now = new Date(deps.clock.now()).toISOString();
    try {
      await deps.store.transaction(async (tx) => {
        await tx.table('inbox').insert({
          id,
          workspaceId: entry.row.workspaceId,
          connectionId,
          deliveryId: verdict.deliveryId,
          headers: keptHeaders(request.headers),
          body: Buffer.from(request.body.buffer, request.body.byteOffset, request.body.byteLength).toString('base64'),
          receivedAt: now,
          status: 'received',
          jobId,
          processedAt: null,
          result: null,
        });
        await deps.queue.enqueue({ id: jobId, type: INBOX_JOB, payload: { inboxId: id }, workspaceId: entry.row.workspaceId, maxAttempts: 10 }, tx);
      });
    } catch (err) {
      // The sender's retry of one it already got to us: acknowledged again, stored once.
      if (!isHubError(err, 'already_exists')) throw err;
      const found = await deps.store.table('inbox').query({ where: { connectionId, deliveryId: verdict.deliveryId }, limit: 1 });
      return { kind: 'accepted', id: found.items[0]?.id ?? id, duplicate: true };
    }
    return { kind: 'accepted', id, duplicate: false };
  }

  return { receive, webhooksOf, close: () => void changeListeners.delete(listener) };
}

function keptHeaders(headers: Headers): Record<string, string> {
  const kept: Record<string, string> = {};
  let bytes = 0;
  headers.forEach((value, name) => {
    bytes += name.length + value.length;
    if (bytes <= MAX_HEADER_BYTES) kept[name] = value;
  });
  return kept;
}

/** The stored request as the connector's parse expects it. */
function rawOf(inbox: InboxRow): RawRequest {
  return { method: 'POST', headers: new Headers(inbox.headers as Record<string, string>), body: Buffer.from(inbox.body, 'base64'), url: `/hooks/${inbox.connectionId}` };
}

type Failure = { code: string; message: string; errors?: unknown[] };

/**
 * The worker's half: parse, route, map and apply one stored webhook. Failures no retry can mend (a body that does not
 * parse, a mapping that rejects it, a SKU that does not exist) mark it failed with the reason and end the job;
 * anything else (the store, a conflict) is thrown so the job is retried.
 */
export function inboxHandler(deps: InboundDeps, receiver: InboundReceiver): JobHandler {
  return async (job) => {
    const inboxId = String(job.payload.inboxId);
    const inbox = await deps.store.table('inbox').get(inboxId);
    if (!inbox || inbox.status !== 'received') return { inboxId, skipped: inbox?.status ?? 'missing' };
    const now = () => new Date(deps.clock.now()).toISOString();
    const finish = async (status: 'ignored' | 'failed', result: Record<string, unknown>) => {
      await deps.store.table('inbox').updateFrom(inbox, { status, processedAt: now(), result });
      return { inboxId, status, ...result };
    };
    const entry = await receiver.webhooksOf(inbox.connectionId);
    if (!entry) return finish('failed', { code: 'connection_unavailable', message: 'The connection was deleted or disabled before this webhook was applied' });
    let message;
    try {
      message = entry.webhooks.parse(rawOf(inbox));
    } catch (err) {
      if (!isHubError(err)) throw err;
      return finish('failed', failureOf(err));
    }
    const route = entry.webhooks.routes.find((r) => matchesType([r.event], message.eventType ?? ''));
    if (!route) return finish('ignored', { code: 'no_route', message: `No route takes events of type ${message.eventType ?? '(none)'}`, eventType: message.eventType });
    const mapping = await compiledMappingFor(deps.store, inbox.workspaceId, route.mapping, deps.mappings);
    if (!mapping) return finish('failed', { code: 'mapping_unknown', message: `There is no mapping "${route.mapping}"` });
    const mapped = mapping.apply(message.payload);
    if (!mapped.ok) return finish('failed', { code: 'mapping_failed', message: `The mapping "${route.mapping}" rejected the webhook`, errors: mapped.errors });
    const workspace = await deps.store.table('workspaces').get(inbox.workspaceId);
    try {
      return await deps.store.transaction(async (tx) => {
        // Read again inside the transaction: a worker that got here first has marked it, and this one stops.
        const fresh = await tx.table('inbox').get(inbox.id);
        if (!fresh || fresh.status !== 'received') return { inboxId, skipped: fresh?.status ?? 'missing' };
        const ctx: ActionContext = { db: tx, workspaceId: inbox.workspaceId, now: now(), correlationId: inbox.deliveryId.slice(0, 128), currency: workspace?.currency ?? 'USD' };
        const result = await applyAction(route.action, ctx, mapped.value);
        await tx.table('inbox').updateFrom(fresh, { status: 'processed', processedAt: ctx.now, result: { action: route.action, ...result } });
        return { inboxId, action: route.action, ...result };
      });
    } catch (err) {
      // A conflict with a concurrent change is worth another go; other refusals are the data's fault.
      if (!isHubError(err) || err.retryable || err.code === 'version_conflict') throw err;
      return finish('failed', failureOf(err));
    }
  };
}

function failureOf(err: HubError): Failure {
  return { code: err.code, message: err.message, ...(err.errors?.length ? { errors: err.errors } : {}) };
}
