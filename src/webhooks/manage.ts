// Managing endpoints and their deliveries: what the /v1/webhooks routes call. Every change that affects what the
// dispatcher does (a URL, a secret, enabled or not) drops this process's cached copy of the endpoint at once.
import { HubError, type FieldError } from '../errors.ts';
import { appendEvent, matchesType } from '../events/log.ts';
import type { JobQueue } from '../jobs/queue.ts';
import type { JobHandler } from '../jobs/worker.ts';
import type { Cipher } from '../lib/secrets.ts';
import type { Clock } from '../lib/clock.ts';
import { REDACTED } from '../lib/redact.ts';
import { pauseAfter, pruneRows } from '../store/prune.ts';
import { scanRows } from '../store/rows.ts';
import type { Db, RowPatch, Store, WebhookDeliveriesRow, WebhookEndpointsRow } from '../store/types.ts';
import { pauseOpen } from './dispatcher.ts';
import { endpointChanged, RESERVED_HEADER } from './endpoints.ts';
import { createDelivery, MAX_ENDPOINTS, MOVES_PER_TRANSACTION, OPEN_STATES, restateDeliveries, subjectOpen } from './fanout.ts';
import { generateSecret, secretKey } from './signing.ts';
import { checkWebhookUrl, type AddressPolicy } from './ssrf.ts';

export interface EndpointInput {
  url: string;
  description?: string | null;
  eventTypes: string[];
  headers?: Record<string, string>;
  rateLimitPerSecond?: number | null;
  secret?: string;
  enabled?: boolean;
}

export type EndpointPatch = Partial<Pick<EndpointInput, 'url' | 'description' | 'eventTypes' | 'headers' | 'rateLimitPerSecond'>>;

function checkUrl(url: string, policy: AddressPolicy): void {
  const problems = checkWebhookUrl(url, policy);
  if (problems.length) {
    throw new HubError('validation_failed', problems[0]!.message, { errors: problems.map((p) => ({ field: '/url', code: p.code, message: p.message })) });
  }
}

function checkHeaders(headers: Record<string, string> | undefined): void {
  const errors: FieldError[] = Object.keys(headers ?? {})
    .filter((name) => RESERVED_HEADER.test(name))
    .map((name) => ({ field: `/headers/${name}`, code: 'reserved', message: `${name} is set by the hub and cannot be overridden` }));
  if (errors.length) throw new HubError('validation_failed', 'Some headers are the hub’s own', { errors });
}

/**
 * Headers as a patch gives them, where a value is the placeholder the API shows for a credential (REDACTED): the
 * stored value of that header stays. So an endpoint read, changed and written back keeps its Authorization header.
 * The placeholder for a header the endpoint does not have is refused: it would be sent as is.
 */
function keepRedacted(given: Record<string, string>, stored: Record<string, string>): Record<string, string> {
  const byName = new Map(Object.entries(stored).map(([name, value]) => [name.toLowerCase(), value]));
  const out: Record<string, string> = {};
  const errors: FieldError[] = [];
  for (const [name, value] of Object.entries(given)) {
    if (value !== REDACTED) out[name] = value;
    else if (byName.has(name.toLowerCase())) out[name] = byName.get(name.toLowerCase())!;
    else errors.push({ field: `/headers/${name}`, code: 'redacted', message: `is the placeholder for a value the API does not show, and ${name} has no stored value to keep` });
  }
  if (errors.length) throw new HubError('validation_failed', 'A header holds the redaction placeholder', { errors });
  return out;
}

/** The secret given (checked) or a new one, and its ciphertext for the row. */
function sealSecret(cipher: Cipher, given: string | undefined): { secret: string; sealed: string } {
  const secret = given ?? generateSecret();
  secretKey(secret, '/secret');
  return { secret, sealed: cipher.encrypt(secret) };
}

export async function createEndpoint(
  db: Db,
  deps: { cipher: Cipher; policy: AddressPolicy },
  workspaceId: string,
  input: EndpointInput,
  now: string,
): Promise<{ endpoint: WebhookEndpointsRow; secret: string }> {
  checkUrl(input.url, deps.policy);
  checkHeaders(input.headers);
  // Fan-out reads a workspace's endpoints in one page: one more would be skipped without a word.
  if ((await db.table('webhook_endpoints').count({ workspaceId })) >= MAX_ENDPOINTS) {
    throw new HubError('bound_exceeded', `A workspace has at most ${MAX_ENDPOINTS} webhook endpoints; delete one it no longer needs first`, { extra: { limit: MAX_ENDPOINTS } });
  }
  const { secret, sealed } = sealSecret(deps.cipher, input.secret);
  const enabled = input.enabled !== false;
  const endpoint = await db.table('webhook_endpoints').insert({
    workspaceId,
    url: input.url,
    description: input.description ?? null,
    eventTypes: input.eventTypes,
    headers: keepRedacted(input.headers ?? {}, {}),
    rateLimitPerSecond: input.rateLimitPerSecond ?? null,
    status: enabled ? 'enabled' : 'disabled',
    disabledReason: enabled ? null : 'manual',
    disabledAt: enabled ? null : now,
    failingSince: null,
    lastSuccessAt: null,
    secret: sealed,
    previousSecret: null,
    previousSecretExpiresAt: null,
  });
  return { endpoint, secret };
}

export async function updateEndpoint(db: Db, policy: AddressPolicy, endpoint: WebhookEndpointsRow, patch: EndpointPatch, ifVersion: number): Promise<WebhookEndpointsRow> {
  if (patch.url !== undefined) checkUrl(patch.url, policy);
  checkHeaders(patch.headers);
  const headers = patch.headers && keepRedacted(patch.headers, (endpoint.headers ?? {}) as Record<string, string>);
  const saved = await db.table('webhook_endpoints').update(endpoint.id, (headers ? { ...patch, headers } : patch) as RowPatch<WebhookEndpointsRow>, { ifVersion });
  endpointChanged(endpoint.id);
  return saved;
}

/**
 * A new secret; the old one keeps signing beside it for the grace period, so receivers can switch over without
 * missing a delivery (Standard Webhooks sends both signatures in one header).
 */
export async function rotateSecret(
  db: Db,
  cipher: Cipher,
  endpoint: WebhookEndpointsRow,
  input: { secret?: string; graceSeconds?: number },
  nowMs: number,
): Promise<{ endpoint: WebhookEndpointsRow; secret: string }> {
  const { secret, sealed } = sealSecret(cipher, input.secret);
  const grace = input.graceSeconds ?? 86_400;
  const saved = await db.table('webhook_endpoints').update(
    endpoint.id,
    {
      secret: sealed,
      previousSecret: grace > 0 ? endpoint.secret : null,
      previousSecretExpiresAt: grace > 0 ? new Date(nowMs + grace * 1000).toISOString() : null,
    },
    { ifVersion: endpoint.version },
  );
  endpointChanged(endpoint.id);
  return { endpoint: saved, secret };
}

/** The endpoint's current secret, for an admin who needs to configure the receiver again. */
export function revealSecret(cipher: Cipher, endpoint: WebhookEndpointsRow): { secret: string; previousSecretExpiresAt: string | null } {
  return { secret: cipher.decrypt(endpoint.secret), previousSecretExpiresAt: endpoint.previousSecretExpiresAt ?? null };
}

/**
 * Disables by hand: its deliveries stop and wait (paused) until it is enabled again. Pauses at most `atMost` of its
 * pending deliveries in this transaction; `more` says whether some may be left, for moveTheRest.
 */
export async function disableEndpoint(db: Db, endpoint: WebhookEndpointsRow, now: string, atMost = Infinity): Promise<{ endpoint: WebhookEndpointsRow; more: boolean }> {
  if (endpoint.status === 'disabled') return { endpoint, more: false };
  const saved = await db.table('webhook_endpoints').update(endpoint.id, { status: 'disabled', disabledReason: 'manual', disabledAt: now });
  endpointChanged(endpoint.id);
  const paused = await pauseOpen(db, endpoint.id, atMost);
  return { endpoint: saved, more: paused === atMost };
}

/**
 * Enables again, forgets its failures, and sends what waited while it was disabled: at most `atMost` of its paused
 * deliveries are resumed in this transaction; `more` says whether some may be left, for moveTheRest.
 */
export async function enableEndpoint(db: Db, endpoint: WebhookEndpointsRow, now: string, atMost = Infinity): Promise<{ endpoint: WebhookEndpointsRow; resumed: number; more: boolean }> {
  const saved = await db.table('webhook_endpoints').update(endpoint.id, { status: 'enabled', disabledReason: null, disabledAt: null, failingSince: null });
  endpointChanged(endpoint.id);
  const resumed = await resumePaused(db, endpoint.id, now, atMost);
  return { endpoint: saved, resumed, more: resumed === atMost };
}

function resumePaused(db: Db, endpointId: string, now: string, atMost: number): Promise<number> {
  return restateDeliveries(db, endpointId, 'paused', { state: 'pending', nextAttemptAt: now, leaseUntil: null, attempts: 0 }, atMost);
}

/**
 * What an enable or a disable left for later (ENDPOINT_MOVE_JOB runs it): pauses or resumes the endpoint's
 * deliveries `perTransaction` at a time, each page a transaction of its own with a pause after it, and answers how
 * many moved. Each page reads the endpoint first: once it is no longer in `status` (enabled or disabled again
 * meanwhile), the later call moves its deliveries, and this one stops. Run again, it goes on where it stopped.
 */
export async function moveTheRest(store: Store, endpointId: string, status: 'enabled' | 'disabled', now: string, perTransaction: number): Promise<number> {
  let moved = 0;
  for (;;) {
    const started = performance.now();
    const n = await store.transaction(async (tx) => {
      const endpoint = await tx.table('webhook_endpoints').get(endpointId);
      if (endpoint?.status !== status) return 0;
      return status === 'disabled' ? pauseOpen(tx, endpointId, perTransaction) : resumePaused(tx, endpointId, now, perTransaction);
    });
    moved += n;
    if (n < perTransaction) return moved;
    await pauseAfter(started);
  }
}

export const ENDPOINT_MOVE_JOB = 'webhooks.endpoint.move';

/** Deliveries an enable or a disable moves in its own transaction, on any store: the rest are ENDPOINT_MOVE_JOB's. */
export function movesPerTransaction(store: Store): number {
  // The request's transaction also writes the endpoint, its audit entry and this job.
  return Math.max(1, Math.min(MOVES_PER_TRANSACTION, store.writesPerTransaction - 3));
}

/**
 * Queues, in the transaction that enabled or disabled the endpoint, the job that moves the deliveries it had no room
 * for: queued with the change, the rest cannot be lost to a crash between the two.
 */
export async function queueTheRest(db: Db, queue: JobQueue, endpoint: Pick<WebhookEndpointsRow, 'id' | 'workspaceId'>, status: 'enabled' | 'disabled'): Promise<void> {
  await queue.enqueue({ type: ENDPOINT_MOVE_JOB, payload: { endpointId: endpoint.id, status }, workspaceId: endpoint.workspaceId, maxAttempts: 10 }, db);
}

/** The job queueTheRest queues: moveTheRest, a chunk per transaction; it stops once the endpoint's status changed again. */
export function endpointMoveHandler(store: Store, clock: Clock): JobHandler {
  return async (job) => {
    const { endpointId, status } = job.payload as { endpointId?: unknown; status?: unknown };
    if (typeof endpointId !== 'string' || (status !== 'enabled' && status !== 'disabled')) {
      throw new HubError('validation_failed', 'The job names no endpoint and status (payload.endpointId, payload.status)');
    }
    const moved = await moveTheRest(store, endpointId, status, new Date(clock.now()).toISOString(), movesPerTransaction(store));
    return { endpointId, status, moved };
  };
}

export const ENDPOINT_PURGE_JOB = 'webhooks.endpoint.purge';

/**
 * Deletes the endpoint, and queues in the same transaction the job that deletes its deliveries and their log: an
 * endpoint may have millions, more than one transaction should hold (on SQLite it would stop every other write
 * meanwhile; on Appwrite it cannot take more than its operations bound). Until the job has run, a dispatcher that
 * claims one of them finds its endpoint gone and deletes it, sending nothing.
 */
export async function deleteEndpoint(db: Db, queue: JobQueue, endpoint: WebhookEndpointsRow): Promise<void> {
  await db.table('webhook_endpoints').delete(endpoint.id);
  await queue.enqueue({ type: ENDPOINT_PURGE_JOB, payload: { endpointId: endpoint.id }, workspaceId: endpoint.workspaceId, maxAttempts: 10 }, db);
  endpointChanged(endpoint.id);
}

/** The job deleteEndpoint queues: the endpoint's attempt log, then its deliveries, a chunk at a time. Run again, it goes on. */
export function endpointPurgeHandler(store: Store): JobHandler {
  return async (job) => {
    const { endpointId } = job.payload as { endpointId?: unknown };
    if (typeof endpointId !== 'string') throw new HubError('validation_failed', 'The job names no endpoint (payload.endpointId)');
    // Ids are never reused: whatever names this endpoint is the deleted one's.
    const attemptsDeleted = await pruneRows(store, 'webhook_attempts', { endpointId });
    const deliveriesDeleted = await pruneRows(store, 'webhook_deliveries', { endpointId });
    return { endpointId, attemptsDeleted, deliveriesDeleted };
  };
}

/**
 * Starts a new cycle of attempts for a delivered or dead delivery (same webhook-id: a receiver can tell it has it).
 * It waits behind a delivery of its subject still on its way to the endpoint, as a new one would (restart).
 */
export async function replayDelivery(db: Db, delivery: WebhookDeliveriesRow, now: string): Promise<WebhookDeliveriesRow> {
  if (delivery.state !== 'delivered' && delivery.state !== 'dead') {
    throw new HubError('invalid_transition', `Delivery ${delivery.id} is ${delivery.state}; only a delivered or dead delivery can be replayed`, {
      extra: { state: delivery.state },
    });
  }
  return db.table('webhook_deliveries').update(delivery.id, await restart(db, delivery, now), { ifVersion: delivery.version });
}

/**
 * The change that sends a finished delivery again: due now, or, when a delivery about the same subject is still open
 * for the endpoint (one replayed before it in the same call, or a newer event's), waiting behind it, so that the
 * subject's deliveries still go one at a time, oldest first (promoteNext takes the oldest waiting).
 */
async function restart(db: Db, delivery: Pick<WebhookDeliveriesRow, 'endpointId' | 'orderingKey'>, now: string): Promise<RowPatch<WebhookDeliveriesRow>> {
  const { endpointId, orderingKey } = delivery;
  const waits = orderingKey !== null && orderingKey !== undefined && (await subjectOpen(db, endpointId, orderingKey));
  return { state: waits ? 'waiting' : 'pending', attempts: 0, nextAttemptAt: now, leaseOwner: null, leaseUntil: null, deadAt: null };
}

/** A time the API was given, as stored times are written (UTC, with milliseconds): stored times compare as text. */
function instantOf(value: string, field: string): string {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new HubError('validation_failed', `${field} is not a time`, { errors: [{ field: `/${field}`, code: 'format', message: 'must be an RFC 3339 date-time' }] });
  return new Date(ms).toISOString();
}

export interface ReplayInput {
  scope: 'failed' | 'events';
  since: string;
  until?: string;
  types?: string[];
  limit?: number;
  /** The `nextCursor` of the call before (scope `events`): goes on exactly after the last event it read. */
  cursor?: string | null;
}

export interface ReplayResult {
  /** Existing deliveries started again. */
  replayed: number;
  /** Deliveries created for events the endpoint had not been sent (it did not exist or was disabled then). */
  created: number;
  hasMore: boolean;
  /** Pass as `since` to continue when hasMore (with `cursor`, for scope `events`). */
  nextSince: string | null;
  /**
   * Scope `events`, when hasMore: pass as `cursor` (with the same since and until) to go on after the last event read.
   * Events written together share their time: `since` alone would read a page of them again, and again.
   */
  nextCursor: string | null;
}

/**
 * Replays for one endpoint: its dead deliveries created since a time (`failed`), or every matching event in a time
 * range (`events`), whether it was delivered before or never sent. Deliveries still on their way are left alone.
 */
export async function replayEndpoint(db: Db, endpoint: WebhookEndpointsRow, input: ReplayInput, now: string): Promise<ReplayResult> {
  const limit = input.limit ?? 500;
  const since = instantOf(input.since, 'since');
  const until = input.until === undefined ? now : instantOf(input.until, 'until');
  if (until < since) {
    throw new HubError('validation_failed', 'until is before since', { errors: [{ field: '/until', code: 'range', message: 'must not be before since' }] });
  }
  const deliveries = db.table('webhook_deliveries');
  if (input.scope === 'failed') {
    // A replayed delivery is no longer dead: the next call, from the first one left, finds the rest, ties included.
    const page = await deliveries.query({
      where: { endpointId: endpoint.id, state: 'dead', createdAt: { gte: since, lte: until } },
      orderBy: { field: 'createdAt' },
      limit: limit + 1,
    });
    const rows = page.items.slice(0, limit);
    for (const d of rows) await deliveries.update(d.id, await restart(db, d, now));
    const hasMore = page.items.length > limit;
    return { replayed: rows.length, created: 0, hasMore, nextSince: hasMore ? page.items[limit]!.createdAt : null, nextCursor: null };
  }
  const types = input.types ?? endpoint.eventTypes;
  const events = db.table('events');
  const range = { where: { workspaceId: endpoint.workspaceId, time: { gte: since, lte: until } }, orderBy: { field: 'time' as const } };
  const page = await events.query({ ...range, limit, cursor: input.cursor ?? null });
  let replayed = 0;
  let created = 0;
  for (const event of page.items) {
    if (!matchesType(types, event.type) || !matchesType(endpoint.eventTypes, event.type)) continue;
    // A test event is for the endpoint it was sent to (sendTestEvent), not for every endpoint taking `*`.
    if (event.type === TEST_EVENT && event.subject !== endpoint.id) continue;
    const existing = (await deliveries.query({ where: { endpointId: endpoint.id, eventId: event.id }, limit: 1 })).items[0];
    if (!existing) {
      await createDelivery(db, endpoint.id, event, now);
      created++;
    } else if (!OPEN_STATES.includes(existing.state)) {
      await deliveries.update(existing.id, await restart(db, existing, now));
      replayed++;
    }
  }
  const next = page.nextCursor === null ? undefined : (await events.pick(['time'], { ...range, limit: 1, cursor: page.nextCursor })).items[0];
  return { replayed, created, hasMore: next !== undefined, nextSince: next?.time ?? null, nextCursor: next ? page.nextCursor : null };
}

export interface DeliveryLedger {
  /** Deliveries created: every event matched to every endpoint that was enabled then. */
  published: number;
  delivered: number;
  /** Still on their way: pending, waiting, sending or paused. */
  pending: number;
  dead: number;
  byState: Record<WebhookDeliveriesRow['state'], number>;
}

const STATES: WebhookDeliveriesRow['state'][] = ['pending', 'waiting', 'sending', 'paused', 'delivered', 'dead'];
/** Endpoints whose counts the ledger asks for together on Appwrite (seven counts each). */
const LEDGER_ENDPOINTS_AT_ONCE = 8;

/** The ids of the workspace's endpoints, all of them. */
export async function endpointIdsOf(db: Db, workspaceId: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const endpoint of scanRows(db.table('webhook_endpoints'), { where: { workspaceId } })) ids.push(endpoint.id);
  return ids;
}

/**
 * published = delivered + pending + dead, counted from the rows themselves. An endpoint's counts each read a range
 * of the (endpointId, state, createdAt) and (endpointId, eventId) indexes and no row; the workspace's add up its
 * endpoints' (a deleted endpoint's deliveries, gone with it once its purge job has run, are not counted). Counted by
 * workspace and state instead, every delivery of the workspace was a row lookup: 1.5 s for a million, with the
 * event loop stopped meanwhile.
 */
export async function deliveryLedger(db: Store, workspaceId: string, endpointId?: string): Promise<DeliveryLedger> {
  const table = db.table('webhook_deliveries');
  const endpoints = db.table('webhook_endpoints');
  const endpointIds: string[] = [];
  if (endpointId !== undefined) {
    // The counts below are by endpoint alone: the endpoint must be the workspace's.
    if ((await endpoints.get(endpointId))?.workspaceId !== workspaceId) throw new HubError('not_found', `Webhook endpoint ${endpointId} does not exist`);
    endpointIds.push(endpointId);
  } else endpointIds.push(...(await endpointIdsOf(db, workspaceId)));
  const byState = Object.fromEntries(STATES.map((s) => [s, 0])) as DeliveryLedger['byState'];
  let published = 0;
  // On Appwrite each count is a request: several endpoints' go together. On SQLite each runs at once, on this thread,
  // so counts asked together would stop it for all of them in one go.
  const atOnce = db.kind === 'sqlite' ? 1 : LEDGER_ENDPOINTS_AT_ONCE;
  for (let i = 0; i < endpointIds.length; i += atOnce) {
    const slice = endpointIds.slice(i, i + atOnce);
    const counts = await Promise.all(slice.map((id) => Promise.all([...STATES.map((state) => table.count({ endpointId: id, state })), table.count({ endpointId: id })])));
    for (const c of counts) {
      STATES.forEach((s, j) => (byState[s] += c[j]!));
      published += c[STATES.length]!;
    }
  }
  return {
    published,
    delivered: byState.delivered,
    pending: byState.pending + byState.waiting + byState.sending + byState.paused,
    dead: byState.dead,
    byState,
  };
}

/** The type of the event sendTestEvent sends. */
const TEST_EVENT = 'webhook.test';

/** A `webhook.test` event delivered to this endpoint only, to check a receiver end to end. */
export async function sendTestEvent(db: Db, endpoint: WebhookEndpointsRow, now: string): Promise<WebhookDeliveriesRow> {
  return db.transaction(async (tx) => {
    // Kept in the log, and fanned out to no one: an endpoint taking `*` or `webhook.*` is not sent another's test.
    const event = await appendEvent(tx, { type: TEST_EVENT, workspaceId: endpoint.workspaceId, subject: endpoint.id, data: { endpointId: endpoint.id, message: 'A test delivery from the hub' } }, now, undefined, { fanOut: false });
    return createDelivery(tx, endpoint.id, event, now);
  });
}
