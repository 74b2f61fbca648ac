// The dispatcher: drains the delivery outbox. It leases due deliveries in batches (one transaction), signs and sends
// each as soon as a slot is free, and writes outcomes in batches (one transaction for many), so the store does a
// few statements per delivery and the network is kept busy. Delivery is at least once: a crash after a send and
// before its outcome is written sends it again when the lease expires, with the same `webhook-id`.
import { isHubError } from '../errors.ts';
import { appendEvent } from '../events/log.ts';
import type { Clock } from '../lib/clock.ts';
import { randomToken } from '../lib/ids.ts';
import { createSleeper } from '../lib/wake.ts';
import { silentLogger, type Logger } from '../lib/log.ts';
import type { Cipher } from '../lib/secrets.ts';
import type { Db, EventsRow, RowPatch, Store, WebhookDeliveriesRow, WebhookEndpointsRow } from '../store/types.ts';
import type { WebhookConfig } from '../config.ts';
import { createEndpointCache, type LiveEndpoint } from './endpoints.ts';
import { MOVES_PER_TRANSACTION, onDeliveriesCreated, promoteNext, reopenKey, restateDeliveries, waitingAgain } from './fanout.ts';
import { retryDelay } from './schedule.ts';
import { standardHeaders } from './signing.ts';
import type { Transport, WebhookResult } from './transport.ts';
import type { Counter } from '../lib/metrics.ts';

export interface DispatcherOptions {
  store: Store;
  clock: Clock;
  cipher: Cipher;
  transport: Transport;
  config: WebhookConfig;
  log?: Logger;
  /** For retry jitter; tests fix it. */
  random?: () => number;
  owner?: string;
  /** At most this many deliveries leased per claim. Default 256 (on a store with a write bound, see dispatcherBounds). */
  batchSize?: number;
  /** How long to sleep when nothing is due (new deliveries in this process wake it sooner). Default 500 ms. */
  pollIntervalMs?: number;
  /** Counts attempts by outcome (`delivered`, `retried`, `dead`, `paused`) for /metrics. */
  attemptsCounter?: Counter;
  /** Most outcomes written in one transaction. Default 128 (on a store with a write bound, see dispatcherBounds). */
  outcomesPerWrite?: number;
  /** Most deliveries of one ordering key taken together (the first leased), sent one after another (see CHAIN). Default 32. */
  chainLength?: number;
  /**
   * Most pending deliveries a write that disables endpoints pauses itself, and never more than the store's write bound
   * leaves room for; claims pause the others as they come due. Default MOVES_PER_TRANSACTION (100), and a fifth of
   * the bound on a store with one (see dispatcherBounds): a backlog of days is not paused under the write lock.
   */
  pausesPerDisable?: number;
  /**
   * Queues, in the write that disabled the endpoint, the job that pauses the pending deliveries that write had no room
   * for (manage.ts queueTheRest). Without it, claims pause them as they come due, so an enable would not send them
   * until their retries are due.
   */
  queueTheRest?: (tx: Db, endpoint: Pick<WebhookEndpointsRow, 'id' | 'workspaceId'>) => Promise<void>;
}

export interface DispatcherStats {
  attempts: number;
  delivered: number;
  retried: number;
  dead: number;
  /** Claims that failed in a row (the store is failing). */
  claimFailures: number;
}

export interface Dispatcher {
  readonly owner: string;
  start(): void;
  /** Stops claiming, waits for sends in flight up to timeoutMs and writes their outcomes. */
  stop(timeoutMs?: number): Promise<void>;
  wake(): void;
  /** One pass: leases what is due now, sends it all, writes the outcomes; resolves with the attempts made. */
  runOnce(): Promise<number>;
  stats(): DispatcherStats;
}

const USER_AGENT = 'inventory-hub-webhooks/1';
/** Metric labels of an attempt's outcome, built once. */
const OUTCOME: Record<string, { outcome: string }> = {
  delivered: { outcome: 'delivered' },
  pending: { outcome: 'retried' },
  dead: { outcome: 'dead' },
  paused: { outcome: 'paused' },
};
/** Outcomes waiting for their write are flushed at this many, or on the next turn of the event loop. */
const FLUSH_AT = 128;
const MAX_MESSAGE = 500;
/**
 * How many of a subject's waiting deliveries are taken together when the one before them is delivered (the first
 * leased, see ChainLink). Each goes as soon as the one before it succeeds, with no write in between: a subject with a
 * backlog is sent at the receiver's pace, and its outcomes are written in batches with the others'.
 */
const CHAIN = 32;

type Bounds = Pick<DispatcherOptions, 'outcomesPerWrite' | 'chainLength' | 'batchSize' | 'pausesPerDisable'>;

/**
 * The dispatcher's bounds on a store whose transactions hold at most `writes` writes (store.writesPerTransaction:
 * Appwrite stages each as an operation, 100 on its Free plan, 1,000 on Pro; HUB_APPWRITE_TRANSACTION_WRITES).
 * - A write of outcomes makes at most 5 per outcome counted: its attempt and its delivery (a chain's last counts two,
 *   for the head it carries), and per entry the lease of the next chain's head, or giving it back, and its endpoint's
 *   health. So outcomes take a fifth of the bound at most: writes / 20 of them.
 * - An endpoint it disables adds its own update and its operational event with that event's deliveries; pauses come
 *   last, in what room is left (see record).
 * - A claim writes at most 2 per delivery (a key reopened: its expired head waits again, and its oldest is leased).
 * - A chain is not written when it is taken (only its head is leased): its length bounds what one read returns, and
 *   grows with the bound (writes / 25, at least 4, at most CHAIN) as a chain's outcomes are written in fewer writes.
 * Unbounded (SQLite): the defaults.
 */
export function dispatcherBounds(writes: number): Bounds {
  if (!Number.isFinite(writes)) return {};
  const outcomesPerWrite = Math.max(1, Math.floor(writes / 20));
  return {
    outcomesPerWrite,
    chainLength: Math.min(CHAIN, Math.max(4, Math.floor(writes / 25))),
    batchSize: Math.max(1, Math.min(256, Math.floor(writes / 2))),
    pausesPerDisable: Math.floor(writes / 5),
  };
}

interface Claimed {
  delivery: WebhookDeliveriesRow;
  endpoint: LiveEndpoint;
  /** The deliveries waiting behind this one on its ordering key, oldest first: each is sent once the one before succeeded. */
  chain?: Claimed[];
  /** The chain this one belongs to, when it does. */
  link?: ChainLink;
}

/**
 * What the deliveries of one chain share. Only its head is leased: while the head is `sending` it holds the ordering
 * key, so the others stay `waiting` (nothing else promotes them) and are written delivered straight from there. The
 * head's own outcome is held back until the chain stops, and written before the last one's, which promotes the next.
 * A dispatcher that dies mid-chain leaves the head's lease to run out: the key starts again from its oldest
 * delivery not yet written delivered (the head), so some go twice, in order, with the same webhook-id.
 */
interface ChainLink {
  head: Claimed;
  /** When the head's lease runs out (ms): the chain goes on only while it still covers a send and a write. */
  leaseEnd: number;
  /** The head's outcome, once it succeeded and the chain went on. */
  held?: Outcome;
}

interface Outcome extends Claimed {
  result: WebhookResult;
  at: number;
  /** The next delivery of its chain was sent: recording this one promotes nothing. */
  continued: boolean;
  /**
   * The last outcome of a chain carries its head's, written first in the same write: a head written delivered
   * without it would leave the key with nothing under way and its waiting deliveries with nothing to move them on.
   */
  head?: Outcome;
}

type DeliveryPatch = RowPatch<WebhookDeliveriesRow>;

/**
 * An endpoint's URL as the event that disables it says it: without its query and fragment, which may carry a token
 * for the receiver. That event goes to every endpoint taking `webhook.*` or `*`, which may be another party's.
 */
function withoutQuery(url: string): string {
  const cut = url.search(/[?#]/);
  return cut === -1 ? url : url.slice(0, cut);
}

/** The body every endpoint receives for an event: Standard Webhooks' `type`, `timestamp` and `data`, and the event's id and subject. */
export function webhookPayload(event: EventsRow): string {
  return JSON.stringify({
    id: event.id,
    type: event.type,
    timestamp: event.time,
    subject: event.subject ?? null,
    correlationId: event.correlationId ?? null,
    data: event.data,
  });
}

export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const { store, clock, transport, config } = options;
  const log = options.log ?? silentLogger;
  const random = options.random ?? Math.random;
  const owner = options.owner ?? `dispatch:${process.pid}:${randomToken(6)}`.slice(0, 64);
  const bounds = dispatcherBounds(store.writesPerTransaction);
  const batchSize = options.batchSize ?? bounds.batchSize ?? 256;
  const flushAt = Math.max(1, options.outcomesPerWrite ?? bounds.outcomesPerWrite ?? FLUSH_AT);
  const chainLength = Math.max(1, options.chainLength ?? bounds.chainLength ?? CHAIN);
  // Past it, the disabled endpoint's deliveries still pending are paused as they are claimed (claim).
  const pausesPerDisable = options.pausesPerDisable ?? bounds.pausesPerDisable ?? MOVES_PER_TRANSACTION;
  const pollIntervalMs = options.pollIntervalMs ?? 500;
  // A lease outlives the longest send and the outcome write after it (well under a second; 5 s allowed), plus one
  // more timeout for a chain (leased together, sent one after another): its next delivery goes only while its lease
  // still covers a send and a write. Then any dispatcher may take it over, so a crashed process's deliveries go out
  // again within seconds of its timeout.
  const sendAndRecordMs = config.timeoutMs + 5000;
  const leaseMs = config.timeoutMs + sendAndRecordMs;
  const endpoints = createEndpointCache(options.cipher, clock);
  const counts: DispatcherStats = { attempts: 0, delivered: 0, retried: 0, dead: 0, claimFailures: 0 };
  const iso = (ms: number) => new Date(ms).toISOString();

  // Per endpoint: the next instant its rate limit lets a delivery go (ms).
  const nextSlot = new Map<string, number>();
  // The earliest retry or rate-limit slot this dispatcher scheduled: it sleeps until then rather than a whole poll
  // interval, so that a 50 ms retry is not made 500 ms late. (Other processes' schedules are caught by the poll.)
  let nextDue = Infinity;
  const noteDue = (ms: number) => void (nextDue = Math.min(nextDue, ms));

  let inFlight = 0;
  const outcomes: Outcome[] = [];
  let flushing: Promise<void> | null = null;
  let flushQueued = false;
  const settledWaiters = new Set<() => void>();

  let started = false;
  let stopping = false;
  let loop: Promise<void> | null = null;
  const sleeper = createSleeper();

  /**
   * A delivery may go now when its endpoint has no rate limit, or its turn has come; else it gets a slot and waits
   * for it. A slot given is marked on the row (leaseUntil = nextAttemptAt while pending), so taking it later does
   * not draw on the limit a second time.
   */
  function slotFor(endpoint: LiveEndpoint, delivery: WebhookDeliveriesRow, now: number): number {
    const rate = endpoint.row.rateLimitPerSecond;
    if (!rate) return now;
    if (delivery.leaseUntil !== null && delivery.leaseUntil === delivery.nextAttemptAt && Date.parse(delivery.leaseUntil) <= now) return now;
    const slot = Math.max(now, nextSlot.get(endpoint.row.id) ?? now);
    nextSlot.set(endpoint.row.id, slot + 1000 / rate);
    return slot;
  }

  async function claim(limit: number): Promise<Claimed[]> {
    const nowMs = clock.now();
    const now = iso(nowMs);
    const leaseUntil = iso(nowMs + leaseMs);
    return store.transaction(async (tx) => {
      const table = tx.table('webhook_deliveries');
      // A delivery being sent is due again when its lease runs out (nextAttemptAt = leaseUntil while it is sending):
      // one (state, nextAttemptAt) index serves both reads, and a claim or an outcome has one index fewer to keep.
      const expired = await table.query({ where: { state: 'sending', nextAttemptAt: { lt: now } }, orderBy: { field: 'nextAttemptAt' }, limit });
      const due = await table.query({ where: { state: 'pending', nextAttemptAt: { lte: now } }, orderBy: { field: 'nextAttemptAt' }, limit });
      const claimed: Claimed[] = [];
      for (const found of [...expired.items, ...due.items]) {
        // Paused and reopened ones write too: a store's bound on writes ends the claim as well (a reopened key writes
        // its expired head back to waiting, then takes its oldest).
        if (claimed.length >= limit || tx.writesLeft() < 2) break;
        let delivery: WebhookDeliveriesRow | null = found;
        let reopened = false;
        try {
          // Read before anything is written for this row: a failure here leaves it as it was, to be tried again.
          const endpoint = await endpoints.get(tx, found.endpointId);
          if (!endpoint) {
            // The endpoint was deleted while this was queued: the delivery goes with it.
            await table.delete(found.id);
            continue;
          }
          // A lease on an ordering key ran out: its dispatcher may have died holding a chain of the key's deliveries.
          // The key starts again from its oldest open delivery, alone.
          if (found.state === 'sending' && found.orderingKey !== null && found.orderingKey !== undefined) {
            delivery = await reopenKey(tx, found, now);
            if (!delivery) continue;
            reopened = true;
          }
          if (endpoint.row.status !== 'enabled') {
            await table.updateFrom(delivery, { state: 'paused', leaseOwner: null, leaseUntil: null });
            continue;
          }
          const slot = slotFor(endpoint, delivery, nowMs);
          if (slot > nowMs) {
            noteDue(slot);
            const at = iso(slot);
            await table.updateFrom(delivery, { state: 'pending', nextAttemptAt: at, leaseOwner: null, leaseUntil: at });
            continue;
          }
          const row = await table.updateFrom(delivery, { state: 'sending', leaseOwner: owner, leaseUntil, nextAttemptAt: leaseUntil });
          claimed.push({ delivery: row, endpoint });
        } catch (err) {
          // A key whose leases went back to waiting must not be left so without its oldest taken (nothing would ever
          // move it on): the whole claim is undone, and tried again.
          if (reopened) throw err;
          // Another dispatcher took it first, or a key no longer decrypts (logged; the row is left for an operator).
          if (isHubError(err, 'version_conflict') || isHubError(err, 'not_found')) continue;
          log.error('webhook delivery could not be claimed', { err, deliveryId: found.id });
        }
      }
      return claimed;
    });
  }

  async function loadEvents(claimed: Claimed[]): Promise<Map<string, EventsRow>> {
    const ids = [...new Set(claimed.map((c) => c.delivery.eventId))];
    const events = new Map<string, EventsRow>();
    for (let i = 0; i < ids.length; i += 100) {
      const page = await store.table('events').query({ where: { id: { in: ids.slice(i, i + 100) } }, limit: 100 });
      for (const e of page.items) events.set(e.id, e);
    }
    return events;
  }

  async function send(claimed: Claimed, events: Map<string, EventsRow>, bodies: Map<string, string>): Promise<void> {
    const { endpoint } = claimed;
    const event = events.get(claimed.delivery.eventId);
    let result: WebhookResult;
    if (!event) {
      // The event outlived its retention before it could be delivered: nothing is left to send.
      result = { ok: false, error: { code: 'event_expired', message: 'The event was deleted by retention before delivery', latencyMs: 0 } };
    } else {
      let body = bodies.get(event.id);
      if (body === undefined) bodies.set(event.id, (body = webhookPayload(event)));
      const timestamp = Math.floor(clock.now() / 1000);
      const headers = {
        ...endpoint.headers,
        'content-type': 'application/json',
        'user-agent': USER_AGENT,
        ...standardHeaders(event.id, timestamp, body, endpoint.keys),
      };
      result = await transport.send({ url: endpoint.row.url, headers, body, timeoutMs: config.timeoutMs });
    }
    counts.attempts++;
    // The chain goes on while its deliveries succeed, its endpoint is as it was read (not changed through this
    // process, not stale), and the head's lease (taken at the chain's start) still covers a send and the write of
    // its outcome, as a lease taken now would: the next one is sent now, in a slot of its own.
    const rest = claimed.chain ?? [];
    const link = claimed.link;
    const succeeded = result.ok && result.response.status >= 200 && result.response.status < 300;
    const leaseLeft = link ? link.leaseEnd - clock.now() : 0;
    const continued = rest.length > 0 && succeeded && !stopping && endpoints.isCurrent(endpoint) && leaseLeft >= sendAndRecordMs;
    const outcome: Outcome = { delivery: claimed.delivery, endpoint, result, at: clock.now(), continued };
    if (continued && link?.head === claimed) link.held = outcome;
    else {
      if (!continued && link?.held) {
        outcome.head = link.held;
        link.held = undefined;
      }
      outcomes.push(outcome);
    }
    if (continued) {
      const [following, ...after] = rest;
      following!.chain = after;
      following!.link = link;
      inFlight++;
      sendGuarded(following!, events, bodies);
    }
    if (outcomes.length >= flushAt) void flush();
    else scheduleFlush();
  }

  function sendGuarded(claimed: Claimed, events: Map<string, EventsRow>, bodies: Map<string, string>): void {
    void send(claimed, events, bodies).catch((err) => {
      // send() records every transport failure itself; this is a bug guard so that a slot is never leaked. A chain's
      // held head is not written: its lease runs out and the key starts again from it.
      log.error('webhook send failed unexpectedly', { err, deliveryId: claimed.delivery.id });
      const held = claimed.link?.held ? 1 : 0;
      if (claimed.link) claimed.link.held = undefined;
      release(1 + held);
    });
  }

  /** The outcomes an entry stands for: its own, and its chain head's when it carries it. */
  const weightOf = (o: Outcome) => (o.head ? 2 : 1);

  function scheduleFlush(): void {
    if (flushQueued) return;
    flushQueued = true;
    setImmediate(() => {
      flushQueued = false;
      void flush();
    });
  }

  /** Writes the outcomes gathered so far in one transaction; one flush at a time, the next picks up what came meanwhile. */
  function flush(): Promise<void> {
    if (flushing) return flushing;
    if (outcomes.length === 0) return Promise.resolve();
    // At most flushAt outcomes, a chain's last and its head counting two (one entry always goes, whatever its weight).
    let take = 0;
    let weight = 0;
    while (take < outcomes.length && (take === 0 || weight + weightOf(outcomes[take]!) <= flushAt)) weight += weightOf(outcomes[take++]!);
    const batch = outcomes.splice(0, take);
    flushing = record(batch)
      .then(({ next, events }) => {
        // Leased by a write already under way when stop began: not sent, but given back, each chain's first due now.
        if (stopping) return giveBack(next);
        inFlight += next.length;
        startSends(next, events);
      })
      .catch((err) => {
        // The outcomes are lost, not the deliveries: their leases expire and they are sent again.
        log.error('webhook outcomes not recorded; their deliveries will be retried when their leases expire', { err, count: batch.length });
      })
      .finally(() => {
        flushing = null;
        release(weight);
        if (outcomes.length) void flush();
      });
    return flushing;
  }

  /** Chains leased and not sent: the head of each due now (as a promotion without a lease makes it), the rest still waiting behind it. */
  async function giveBack(chains: Claimed[]): Promise<void> {
    if (chains.length === 0) return;
    await store.transaction(async (tx) => {
      for (const head of chains) await unlease(tx, head, { state: 'pending', nextAttemptAt: iso(clock.now()) });
    });
  }

  /** Frees slots: whoever waits for the sends to settle is told, and the loop may claim again. */
  function release(slots: number): void {
    inFlight -= slots;
    for (const waiter of settledWaiters) waiter();
    wake();
  }

  function describe(result: WebhookResult): { ok: boolean; status: number | null; error: string | null; message: string | null; response: string | null; latencyMs: number } {
    if (!result.ok) return { ok: false, status: null, error: result.error.code, message: result.error.message.slice(0, MAX_MESSAGE), response: null, latencyMs: result.error.latencyMs };
    const { status, body, latencyMs } = result.response;
    const ok = status >= 200 && status < 300;
    return { ok, status, error: ok ? null : `http_${status}`, message: null, response: body.slice(0, 1024), latencyMs };
  }

  /** Drops the lease of a chain's head that was not sent, leaving it in the state `patch` gives; one another took over is left. */
  async function unlease(tx: Db, head: Claimed, patch: DeliveryPatch & { state: 'pending' | 'paused' }): Promise<void> {
    try {
      await tx.table('webhook_deliveries').updateFrom(head.delivery, { ...waitingAgain(head.delivery), ...patch });
    } catch (err) {
      if (!isHubError(err, 'version_conflict') && !isHubError(err, 'not_found')) throw err;
    }
  }

  /**
   * Writes a batch of outcomes in one transaction. When a delivered one was the last of its chain, the next deliveries
   * on its ordering key (the same subject's next events) are taken there and then, up to CHAIN, the first leased to
   * this dispatcher, and answered to be sent at once, one after another: a subject's events no longer wait for a
   * claim, nor for a write between two of them.
   * What it tallies is counted once the write is done: a body may run more than once (Appwrite, after a conflict).
   */
  async function record(batch: Outcome[]): Promise<{ next: Claimed[]; events: Map<string, EventsRow> }> {
    const next: Claimed[] = [];
    const tallied: { outcome: string }[] = [];
    await store.transaction(async (tx) => {
      // A body run again (Appwrite, after a conflict) starts over.
      next.length = 0;
      tallied.length = 0;
      const disabled: LiveEndpoint['row'][] = [];
      const deliveries = tx.table('webhook_deliveries');
      const health = new Map<string, { endpoint: LiveEndpoint; ok: boolean; gone: boolean; at: number }>();
      for (const outcome of batch.flatMap((o) => (o.head ? [o.head, o] : [o]))) {
        const { delivery, endpoint, result, at } = outcome;
        const d = describe(result);
        const attempt = delivery.attempts + 1;
        const atIso = iso(at);
        await tx.table('webhook_attempts').insert({
          workspaceId: delivery.workspaceId,
          endpointId: delivery.endpointId,
          deliveryId: delivery.id,
          eventId: delivery.eventId,
          attempt: (delivery.totalAttempts ?? 0) + 1,
          at: atIso,
          ok: d.ok,
          status: d.status,
          latencyMs: Math.max(0, Math.round(d.latencyMs)),
          response: d.response,
          error: d.error,
          message: d.message,
        });
        const common: DeliveryPatch = {
          attempts: attempt,
          totalAttempts: (delivery.totalAttempts ?? 0) + 1,
          lastAttemptAt: atIso,
          lastStatus: d.status,
          lastError: d.error,
          leaseOwner: null,
          leaseUntil: null,
          // While it was sending, this was its lease's end; a retry sets the next one.
          nextAttemptAt: atIso,
        };
        const status = result.ok ? result.response.status : null;
        let patch: DeliveryPatch;
        let final = false;
        if (d.ok) {
          patch = { ...common, state: 'delivered', deliveredAt: atIso };
          final = true;
        } else if (status === 410) {
          // The receiver says it wants no more: the endpoint is disabled and this delivery waits with the others.
          patch = { ...common, state: 'paused' };
        } else {
          const retryAfter = result.ok && (status === 429 || status === 503) ? result.response.retryAfterMs : undefined;
          const noRetry = !result.ok && result.error.code === 'event_expired';
          const delay = noRetry ? null : retryDelay(config.retrySchedule, attempt, retryAfter, random);
          if (delay === null) {
            patch = { ...common, state: 'dead', deadAt: atIso };
            final = true;
          } else {
            patch = { ...common, state: 'pending', nextAttemptAt: iso(at + delay) };
            noteDue(at + delay);
          }
        }
        try {
          await deliveries.updateFrom(delivery, patch);
        } catch (err) {
          // Its lease expired and another dispatcher has it now: that one's outcome is the one to keep.
          if (isHubError(err, 'version_conflict') || isHubError(err, 'not_found')) continue;
          throw err;
        }
        tallied.push(OUTCOME[patch.state!]!);
        if (final && !outcome.continued) {
          let live: LiveEndpoint | null = null;
          try {
            live = d.ok && !stopping ? await endpoints.get(tx, delivery.endpointId) : null;
          } catch (err) {
            // Its secret no longer decrypts (logged where it is read for a claim): the successor waits for a claim.
            log.warn('webhook endpoint unreadable; its next delivery waits for a claim', { err, endpointId: delivery.endpointId });
          }
          const takeOver = live !== null && live.row.status === 'enabled' && !live.row.rateLimitPerSecond;
          const leaseEnd = clock.now() + leaseMs;
          const promoted = await promoteNext(tx, delivery, atIso, takeOver ? { owner, until: iso(leaseEnd), limit: chainLength } : undefined);
          if (promoted.length && takeOver) {
            const [head, ...chain] = promoted.map((row): Claimed => ({ delivery: row, endpoint: live! }));
            head!.chain = chain;
            head!.link = { head: head!, leaseEnd };
            next.push(head!);
          }
        }
        const seen = health.get(endpoint.row.id);
        if (!seen || at >= seen.at) health.set(endpoint.row.id, { endpoint, ok: d.ok, gone: status === 410 || (seen?.gone ?? false), at });
        else if (status === 410) seen.gone = true;
      }
      for (const { endpoint, ok, gone, at } of health.values()) {
        if (await updateHealth(tx, endpoint, ok, gone, at)) disabled.push(endpoint.row);
      }
      // A successor whose endpoint this batch disabled (a 410 after its predecessor's 2xx) waits with the others:
      // the first of its chain paused, the rest waiting behind it.
      for (const endpointId of new Set(next.map((c) => c.delivery.endpointId))) {
        const row = await tx.table('webhook_endpoints').get(endpointId);
        if (row?.status === 'enabled') continue;
        for (const c of next.filter((n) => n.delivery.endpointId === endpointId)) await unlease(tx, c, { state: 'paused' });
        next.splice(0, next.length, ...next.filter((n) => n.delivery.endpointId !== endpointId));
      }
      // Last, the pending deliveries of the endpoints disabled here are paused, as many as the bounds leave room for
      // (less a write for each one's job): a job queued with them pauses the rest (queueTheRest).
      const queueTheRest = options.queueTheRest;
      let room = Math.min(pausesPerDisable, tx.writesLeft() - (queueTheRest ? disabled.length : 0));
      for (const endpoint of disabled) {
        const paused = room > 0 ? await pauseOpen(tx, endpoint.id, room) : 0;
        const full = paused >= room;
        room -= paused;
        if (full && queueTheRest) await queueTheRest(tx, endpoint);
      }
    });
    for (const label of tallied) {
      options.attemptsCounter?.inc(label);
      if (label.outcome !== 'paused') counts[label.outcome as 'delivered' | 'retried' | 'dead']++;
    }
    // The events the leased deliveries carry, read together once the write is done: events do not change, and on
    // SQLite the write lock (which the worker's thread waits for) is not held for a read.
    return { next, events: await loadEvents(next.flatMap((c) => [c, ...(c.chain ?? [])])) };
  }

  /**
   * Keeps the endpoint's failure record: the time of the first failure since the last success. A 410, or failures
   * that last the disable period, disable it (answers true; the caller pauses its pending deliveries); an
   * operational event says so.
   */
  async function updateHealth(tx: Db, endpoint: LiveEndpoint, ok: boolean, gone: boolean, at: number): Promise<boolean> {
    const table = tx.table('webhook_endpoints');
    const row = await table.get(endpoint.row.id);
    if (!row || row.status !== 'enabled') return false;
    const atIso = iso(at);
    if (gone) return disable(tx, row.id, 'gone', atIso);
    if (ok) {
      // Written only when it changes something an operator reads: not on every success.
      const stale = !row.lastSuccessAt || at - Date.parse(row.lastSuccessAt) > 60_000;
      if (row.failingSince !== null || stale) await table.update(row.id, { failingSince: null, lastSuccessAt: atIso });
      return false;
    }
    if (row.failingSince === null || row.failingSince === undefined) {
      await table.update(row.id, { failingSince: atIso });
      return false;
    }
    if (at - Date.parse(row.failingSince) >= config.disableAfterMs) return disable(tx, row.id, 'failing', atIso);
    return false;
  }

  async function disable(tx: Db, id: string, reason: 'gone' | 'failing', at: string): Promise<true> {
    const row = await tx.table('webhook_endpoints').update(id, { status: 'disabled', disabledReason: reason, disabledAt: at });
    endpoints.drop(id);
    await appendEvent(
      tx,
      {
        type: 'webhook.endpoint.disabled',
        workspaceId: row.workspaceId,
        subject: id,
        data: { endpointId: id, url: withoutQuery(row.url), reason, failingSince: row.failingSince ?? null },
      },
      at,
    );
    log.warn('webhook endpoint disabled', { endpointId: id, reason });
    return true;
  }

  async function runPass(): Promise<number> {
    const free = config.concurrency - inFlight;
    if (free <= 0) return 0;
    let claimed: Claimed[];
    try {
      claimed = await claim(Math.min(free, batchSize));
      counts.claimFailures = 0;
    } catch (err) {
      counts.claimFailures++;
      log.error('claiming webhook deliveries failed; will retry', { err });
      return 0;
    }
    if (claimed.length === 0) return 0;
    inFlight += claimed.length;
    let events: Map<string, EventsRow>;
    try {
      events = await loadEvents(claimed);
    } catch (err) {
      release(claimed.length);
      log.error('reading events for webhook deliveries failed; their leases will expire and they are retried', { err });
      return 0;
    }
    startSends(claimed, events);
    return claimed.length;
  }

  /** Sends leased deliveries (their slots already counted in inFlight); a chain's others follow its head. */
  function startSends(claimed: Claimed[], events: Map<string, EventsRow>): void {
    const bodies = new Map<string, string>();
    for (const c of claimed) sendGuarded(c, events, bodies);
  }

  const wake = () => sleeper.wake();
  const sleep = (ms: number) => sleeper.sleep(ms, () => stopping);

  function settled(): Promise<void> {
    if (inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (inFlight === 0) {
          settledWaiters.delete(check);
          resolve();
        }
      };
      settledWaiters.add(check);
    });
  }

  async function runLoop(): Promise<void> {
    while (!stopping) {
      sleeper.reset();
      if (nextDue <= clock.now()) nextDue = Infinity;
      const claimed = await runPass();
      // Claim again at once while the batch came back full and slots are free: there is more due.
      if (claimed >= Math.min(batchSize, config.concurrency) && inFlight < config.concurrency) continue;
      // Otherwise wait for a wake (new deliveries, outcomes written), the next retry due, or the poll interval.
      await sleep(Math.max(1, Math.min(pollIntervalMs, nextDue - clock.now())));
    }
  }

  let unsubscribe: (() => void) | null = null;

  return {
    owner,
    start() {
      if (started) return;
      started = true;
      unsubscribe = onDeliveriesCreated(wake);
      loop = runLoop();
    },
    async stop(timeoutMs = 30_000) {
      stopping = true;
      unsubscribe?.();
      sleeper.wake();
      await loop;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([settled(), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
      clearTimeout(timer);
      // Every outcome gathered, however many writes that takes.
      while (outcomes.length || flushing) await flush();
      endpoints.close();
    },
    wake,
    async runOnce() {
      const claimed = await runPass();
      await settled();
      return claimed;
    },
    stats: () => ({ ...counts }),
  };
}

/**
 * Pauses an endpoint's pending deliveries (in pages), or the first `atMost` of them; the dispatcher pauses any it
 * still finds when it claims them.
 */
export async function pauseOpen(db: Db, endpointId: string, atMost = Infinity): Promise<number> {
  return restateDeliveries(db, endpointId, 'pending', { state: 'paused', leaseUntil: null }, atMost);
}

