// Fan-out: an event becomes one delivery per enabled endpoint whose filters match it, written in the transaction
// that appends the event. So an event is never without its deliveries, whatever crashes when: the delivery rows are
// the outbox the dispatcher drains.
import { matchesType } from '../events/log.ts';
import type { Db, EventsRow, RowPatch, WebhookDeliveriesRow } from '../store/types.ts';

/** Most endpoints a workspace may have (createEndpoint): fan-out reads them all in one page. */
export const MAX_ENDPOINTS = 1000;

/** States in which a delivery still has to go out: a later one with the same ordering key waits behind it. */
export const OPEN_STATES: WebhookDeliveriesRow['state'][] = ['pending', 'waiting', 'sending', 'paused'];
/** Open and not waiting: on its way, or held by a paused endpoint. */
const UNDER_WAY = OPEN_STATES.filter((s) => s !== 'waiting');

type Listener = () => void;
const listeners = new Set<Listener>();

/**
 * Tells this thread's dispatchers that deliveries were written. A hint only, given before the commit: a dispatcher
 * on the same connection claims in a transaction that runs after the one that wrote them, and polls anyway. Another
 * connection (the main thread's, hearing from the worker's thread) must be told after the commit (afterCommit in
 * jobs/worker-host.ts).
 */
export function onDeliveriesCreated(listener: Listener): () => void {
  listeners.add(listener);
  return () => void listeners.delete(listener);
}

function notify(): void {
  for (const listener of listeners) listener();
}

/** Tells this process's dispatchers of deliveries another process wrote (an import process, import-child.ts). */
export function announceDeliveries(): void {
  notify();
}

/**
 * What the fan-out of one transaction has learnt, for the events after it in the same transaction: each workspace's
 * enabled endpoints, and the ordering keys it has itself given an open delivery (a later delivery on one of them
 * waits, with no need to look). Made with the transaction and dropped with it.
 */
export interface FanOutMemo {
  endpoints: Map<string, { id: string; eventTypes: string[] }[]>;
  open: Set<string>;
}

export function fanOutMemo(): FanOutMemo {
  return { endpoints: new Map(), open: new Set() };
}

/** Creates the event's deliveries; returns how many. Call it with the event's own transaction. */
export async function fanOut(db: Db, event: EventsRow, memo?: FanOutMemo): Promise<number> {
  let endpoints = memo?.endpoints.get(event.workspaceId);
  if (!endpoints) {
    // Only the filters: an endpoint's whole row (secrets, headers) cost more to read and decode than the match.
    endpoints = (await db.table('webhook_endpoints').pick(['eventTypes'], { where: { workspaceId: event.workspaceId, status: 'enabled' }, limit: MAX_ENDPOINTS })).items;
    memo?.endpoints.set(event.workspaceId, endpoints);
  }
  let created = 0;
  for (const endpoint of endpoints) {
    if (!matchesType(endpoint.eventTypes, event.type)) continue;
    await createDelivery(db, endpoint.id, event, event.time, memo);
    created++;
  }
  if (created) notify();
  return created;
}

/**
 * One delivery of the event to the endpoint, due at `at`; it waits when an earlier delivery about the same subject
 * to the same endpoint is still open, so that a receiver sees one order's events in the order they happened.
 */
export async function createDelivery(db: Db, endpointId: string, event: EventsRow, at: string, memo?: FanOutMemo): Promise<WebhookDeliveriesRow> {
  const deliveries = db.table('webhook_deliveries');
  const orderingKey = event.subject ?? null;
  let state: WebhookDeliveriesRow['state'] = 'pending';
  if (orderingKey !== null) {
    const key = `${endpointId} ${orderingKey}`;
    if (memo?.open.has(key) || (await subjectOpen(db, endpointId, orderingKey))) state = 'waiting';
    memo?.open.add(key);
  }
  return deliveries.insert({
    workspaceId: event.workspaceId,
    endpointId,
    eventId: event.id,
    eventType: event.type,
    orderingKey,
    state,
    attempts: 0,
    totalAttempts: 0,
    nextAttemptAt: at,
    leaseOwner: null,
    leaseUntil: null,
    lastAttemptAt: null,
    lastStatus: null,
    lastError: null,
    deliveredAt: null,
    deadAt: null,
  });
}

/**
 * Whether a delivery about this subject to this endpoint is still open: one made or sent again now waits behind it.
 * Whether any is, not which: a key with a backlog of thousands answers from its first index entry.
 */
export function subjectOpen(db: Db, endpointId: string, orderingKey: string): Promise<boolean> {
  return db.table('webhook_deliveries').exists({ endpointId, orderingKey, state: { in: OPEN_STATES } });
}

/**
 * After a delivery reached a final state (delivered or dead), the next one waiting behind it on its ordering key
 * becomes due; or, given a lease, the next `lease.limit` waiting are leased to the caller, oldest first, to be sent one
 * after another. Returns them (empty when there is none to move on). Run it in the transaction that finalised the
 * delivery.
 */
export async function promoteNext(
  db: Db,
  delivery: Pick<WebhookDeliveriesRow, 'endpointId' | 'orderingKey'>,
  now: string,
  lease?: { owner: string; until: string; limit: number },
): Promise<WebhookDeliveriesRow[]> {
  if (delivery.orderingKey === null || delivery.orderingKey === undefined) return [];
  const deliveries = db.table('webhook_deliveries');
  const key = { endpointId: delivery.endpointId, orderingKey: delivery.orderingKey };
  // Mostly nothing waits: that is one read, and the open ones need no look. The first waiting ones are the oldest
  // (ids grow with time), found from the (endpointId, orderingKey, state, id) index however many wait.
  const next = await deliveries.query({ where: { ...key, state: 'waiting' }, limit: lease?.limit ?? 1 });
  if (next.items.length === 0) return [];
  // Another delivery of the key is already on its way (a replay): it promotes the next one when it is done.
  if (await deliveries.exists({ ...key, state: { in: UNDER_WAY } })) return [];
  const [first, ...behind] = next.items;
  if (!lease) return [await deliveries.updateFrom(first!, { state: 'pending', nextAttemptAt: now })];
  // The first is leased, as a claim would lease it: sending, due again at the lease's end. While it is, it holds the
  // key (nothing else promotes the key's waiting deliveries), so those behind it stay waiting, each sent once the
  // one before it succeeded and written delivered straight from waiting; the first's outcome is written last.
  return [await deliveries.updateFrom(first!, { state: 'sending', leaseOwner: lease.owner, leaseUntil: lease.until, nextAttemptAt: lease.until }), ...behind];
}

/** The change that returns a leased delivery, not sent, to waiting: its lease dropped, due as it was before. */
export function waitingAgain(d: Pick<WebhookDeliveriesRow, 'lastAttemptAt' | 'createdAt'>) {
  return { state: 'waiting' as const, leaseOwner: null, leaseUntil: null, nextAttemptAt: d.lastAttemptAt ?? d.createdAt };
}

/**
 * A leased delivery of an ordering key was found with its lease run out: its dispatcher died, maybe mid-chain (the
 * head leased, the key's next deliveries sent one after another behind it), or a write of its outcomes failed. Every
 * delivery of the key whose lease has run out waits again; then, unless one of the key is still on its way, the
 * oldest waiting one is answered, for the caller to claim. So whatever a dead dispatcher held, the key starts again
 * from its oldest open delivery.
 */
export async function reopenKey(db: Db, delivery: Pick<WebhookDeliveriesRow, 'endpointId' | 'orderingKey'>, now: string): Promise<WebhookDeliveriesRow | null> {
  const deliveries = db.table('webhook_deliveries');
  const key = { endpointId: delivery.endpointId, orderingKey: delivery.orderingKey };
  for (;;) {
    const expired = await deliveries.query({ where: { ...key, state: 'sending', nextAttemptAt: { lt: now } }, limit: 500 });
    for (const d of expired.items) {
      await deliveries.updateFrom(d, waitingAgain(d));
    }
    if (expired.items.length < 500) break;
  }
  if (await deliveries.exists({ ...key, state: { in: UNDER_WAY } })) return null;
  return (await deliveries.query({ where: { ...key, state: 'waiting' }, limit: 1 })).items[0] ?? null;
}

/**
 * Deliveries one transaction pauses or resumes when an endpoint is disabled or enabled: an endpoint down for hours
 * has a backlog of thousands, and each is a row update under the write lock. The rest follow a chunk per
 * transaction (moveTheRest), or, paused by a disable, as the dispatcher claims them.
 */
export const MOVES_PER_TRANSACTION = 100;

/**
 * Changes an endpoint's deliveries in state `from` by `patch` (which must take them out of `from`), 500 at a time, or
 * only the first `atMost` of them; answers how many changed. Pausing and resuming an endpoint's deliveries.
 */
export async function restateDeliveries(
  db: Db,
  endpointId: string,
  from: WebhookDeliveriesRow['state'],
  patch: RowPatch<WebhookDeliveriesRow>,
  atMost = Infinity,
): Promise<number> {
  const table = db.table('webhook_deliveries');
  let changed = 0;
  while (changed < atMost) {
    const limit = Math.min(500, atMost - changed);
    // In the (endpointId, state, createdAt) index's order: by id, each page sorted every match left (moving a
    // backlog of 100,000, a page of 200 took a median 38 ms instead of 17).
    const page = await table.query({ where: { endpointId, state: from }, orderBy: { field: 'createdAt' }, limit });
    for (const d of page.items) await table.update(d.id, patch);
    changed += page.items.length;
    if (page.items.length < limit) break;
  }
  return changed;
}
