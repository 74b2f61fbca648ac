// Inbound webhooks. The receiver verifies the raw bytes with the connection's connector, then stores the request
// and its job in one transaction and answers 202: nothing is parsed on the request path. A burst gathers into the
// job still queued (jobFor): each webhook writes its row, naming that job, rather than writing a job of its own.
// The worker parses, maps and applies it in a transaction that also marks the inbox row processed, so a webhook
// acknowledged with 2xx is applied exactly once, however often its job runs or its sender resends it.
import type { ConnectorDefinition, ConnectorWebhooks, RawRequest } from '../connectors/define.ts';
import { ACTIONS, checkActionInput, type ActionContext, type ActionName } from '../apply/actions.ts';
import { HubError, isHubError } from '../errors.ts';
import type { JobQueue } from '../jobs/queue.ts';
import { batchedHandler, type BatchOutcome, type JobHandler } from '../jobs/worker.ts';
import { preloadStock } from '../inventory/catalog.ts';
import { StockSession } from '../inventory/stock-batch.ts';
import type { Clock } from '../lib/clock.ts';
import { newId } from '../lib/ids.ts';
import type { Logger } from '../lib/log.ts';
import type { Cipher } from '../lib/secrets.ts';
import type { MappingDocument } from '../mappings/document.ts';
import type { CompiledMapping } from '../mappings/compile.ts';
import { compiledMappingFor } from '../mappings/repository.ts';
import type { ConnectionsRow, Db, InboxRow, JobsRow, Page, Store } from '../store/types.ts';

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
  /** Webhooks one job may gather while it waits for a worker (default 1: a job each). */
  webhooksPerJob?: number;
}

interface Receiving {
  row: ConnectionsRow;
  webhooks: ConnectorWebhooks;
  loadedAt: number;
  /** The connector's answer to a stored webhook, `empty` settled (a 204 never has a body); none: the hub's 202. */
  accepted?: { status: number; empty: boolean };
}

export type ReceiveOutcome =
  /** Stored (or a resend of one stored): 202 with `{id, duplicate}`, unless the connector's `answer` says otherwise. */
  | { kind: 'accepted'; id: string; duplicate: boolean; answer?: Receiving['accepted'] }
  /** An answer the connector shapes whole: a handshake, or a refusal in the sender's form. Nothing was stored. */
  | { kind: 'answer'; status: number; headers?: Record<string, string>; body?: string };

const changeListeners = new Set<(id: string) => void>();

/** Tells this thread's receivers that a connection changed (its secret, its routes, its status). */
export function connectionChanged(id: string): void {
  for (const listener of changeListeners) listener(id);
}

/** Hears of connections changed in this thread (the worker's host passes them on to the worker's thread). */
export function onConnectionChanged(listener: (id: string) => void): () => void {
  changeListeners.add(listener);
  return () => void changeListeners.delete(listener);
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
    const accepted = webhooks.answers?.accepted;
    const entry: Receiving = { row, webhooks, loadedAt: now, accepted: accepted && { status: accepted.status, empty: accepted.empty === true || accepted.status === 204 } };
    cache.set(connectionId, entry);
    return entry;
  }

  // The job that webhooks arriving now join while it is queued, per workspace: a burst is a job per batch, not per
  // webhook. Its id, and how many have joined it (an estimate: a joining transaction may yet roll back).
  const gathering = new Map<string, { id: string; joined: number }>();
  const perJob = Math.max(1, deps.webhooksPerJob ?? 1);

  /**
   * The job that will apply the webhook `inboxId`, in the transaction that stores the webhook: the workspace's
   * gathering job while it is queued, not full and has not run (one waiting out a retry's backoff would hold new
   * webhooks back with it), else a new one. A gathering job finds its webhooks by the jobId on their rows when it
   * runs (webhooksOfJob), so joining it is a read: the writer of the file is one at a time, and a worker that claims
   * the job after this commits reads this webhook with the others. (An earlier version wrote the growing list of ids
   * into the job, and rewrote it for every webhook: a fifth of the receiver's time.)
   */
  async function jobFor(tx: Db, workspaceId: string, inboxId: string): Promise<string> {
    const open = gathering.get(workspaceId);
    if (open && open.joined < perJob && (await tx.table('jobs').exists({ id: open.id, state: 'queued', attempts: 0 }))) {
      open.joined++;
      return open.id;
    }
    const payload = perJob > 1 ? { gathered: true } : { inboxIds: [inboxId] };
    const { job } = await deps.queue.enqueue({ type: INBOX_JOB, payload, workspaceId, maxAttempts: 10 }, tx);
    if (perJob > 1) gathering.set(workspaceId, { id: job.id, joined: 1 });
    return job.id;
  }

  async function receive(connectionId: string, request: RawRequest): Promise<ReceiveOutcome> {
    const entry = await webhooksOf(connectionId);
    if (!entry) throw unknownConnection();
    const verdict = await entry.webhooks.verify(request);
    if (!verdict.ok) {
      deps.log.warn('inbound webhook refused', { connectionId, reason: verdict.reason });
      if (entry.webhooks.answers?.refused?.empty) return { kind: 'answer', status: 401 };
      throw new HubError('unauthenticated', 'The webhook signature is not valid');
    }
    if (verdict.handshake) return { kind: 'answer', ...verdict.handshake };
    const answer = entry.accepted;
    const id = newId('inb');
    const now = new Date(deps.clock.now()).toISOString();
    const workspaceId = entry.row.workspaceId;
    try {
      await deps.store.transaction(async (tx) => {
        const jobId = await jobFor(tx, workspaceId, id);
        await tx.table('inbox').insert({
          id,
          workspaceId,
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
      });
    } catch (err) {
      // The sender's retry of one it already got to us: acknowledged again, stored once.
      if (!isHubError(err, 'already_exists')) throw err;
      const found = await deps.store.table('inbox').query({ where: { connectionId, deliveryId: verdict.deliveryId }, limit: 1 });
      return { kind: 'accepted', id: found.items[0]?.id ?? id, duplicate: true, answer };
    }
    return { kind: 'accepted', id, duplicate: false, answer };
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

/** What the worker does with one claimed webhook, decided before the transaction (parsing and mapping read nothing). */
type Step =
  | { kind: 'skip'; inboxId: string; status: string }
  | { kind: 'finish'; inbox: InboxRow; status: 'ignored' | 'failed'; result: Record<string, unknown> & Failure }
  | { kind: 'apply'; inbox: InboxRow; action: ActionName; input: Record<string, unknown>; currency: string };

/** Rows by id, read a hundred ids a query (Appwrite's limit on one filter's values). */
async function byIds<T extends { id: string }>(ids: string[], read: (slice: string[]) => Promise<{ items: T[] }>): Promise<Map<string, T>> {
  const rows = new Map<string, T>();
  for (let i = 0; i < ids.length; i += 100) for (const row of (await read(ids.slice(i, i + 100))).items) rows.set(row.id, row);
  return rows;
}

const readInbox = (db: Db, ids: string[]) => byIds(ids, (slice) => db.table('inbox').query({ where: { id: { in: slice } }, limit: slice.length }));

/**
 * The status and version of the webhooks the steps name, read in the transaction that applies them: all its
 * compare-and-set needs, without reading and decoding their bodies a second time.
 */
const inboxStates = (db: Db, steps: Step[]) =>
  byIds(
    steps.flatMap((s) => (s.kind === 'skip' ? [] : [s.inbox.id])),
    (slice) => db.table('inbox').pick(['status', 'version'], { where: { id: { in: slice } }, limit: slice.length }),
  );

/** How many claimed webhooks one transaction applies (on Appwrite a transaction takes few operations). */
export const INBOX_BATCH = { sqlite: 64, appwrite: 1 } as const;

/**
 * The worker's half: parse, route, map and apply stored webhooks. Failures no retry can mend (a body that does not
 * parse, a mapping that rejects it, a SKU that does not exist) mark it failed with the reason and end the job;
 * anything else (the store, a conflict) is thrown so the job is retried.
 *
 * The webhooks the worker claims together are applied together: stock changes in one transaction over one stock
 * session (each product, item and level read once and written once, each webhook still its own operation with its
 * own ledger entries, events and outcome); any other action in a transaction of its own, in turn. Should a batch's
 * transaction fail, each of its webhooks is applied again alone, so that one cannot hold the others back.
 */
export function inboxHandler(deps: InboundDeps, receiver: InboundReceiver, maxBatch: number = INBOX_BATCH.sqlite): JobHandler {
  const iso = () => new Date(deps.clock.now()).toISOString();

  async function prepare(inboxIds: string[]): Promise<Step[]> {
    const rows = await readInbox(deps.store, inboxIds);
    const mappings = new Map<string, Promise<CompiledMapping | null>>();
    const currencies = new Map<string, Promise<string>>();
    const steps: Step[] = [];
    for (const inboxId of inboxIds) {
      const inbox = rows.get(inboxId);
      if (!inbox || inbox.status !== 'received') {
        steps.push({ kind: 'skip', inboxId, status: inbox?.status ?? 'missing' });
        continue;
      }
      const finish = (status: 'ignored' | 'failed', result: Record<string, unknown> & Failure): Step => ({ kind: 'finish', inbox, status, result });
      const entry = await receiver.webhooksOf(inbox.connectionId);
      if (!entry) {
        steps.push(finish('failed', { code: 'connection_unavailable', message: 'The connection was deleted or disabled before this webhook was applied' }));
        continue;
      }
      let message;
      try {
        message = entry.webhooks.parse(rawOf(inbox));
      } catch (err) {
        if (!isHubError(err)) throw err;
        steps.push(finish('failed', failureOf(err)));
        continue;
      }
      const route = entry.webhooks.routes.find((r) => matchesRoute(r.event, message.eventType ?? ''));
      if (!route) {
        steps.push(finish('ignored', { code: 'no_route', message: `No route takes events of type ${message.eventType ?? '(none)'}`, eventType: message.eventType }));
        continue;
      }
      const key = `${inbox.workspaceId} ${route.mapping}`;
      let compiled = mappings.get(key);
      if (!compiled) mappings.set(key, (compiled = compiledMappingFor(deps.store, inbox.workspaceId, route.mapping, deps.mappings)));
      const mapping = await compiled;
      if (!mapping) {
        steps.push(finish('failed', { code: 'mapping_unknown', message: `There is no mapping "${route.mapping}"` }));
        continue;
      }
      const mapped = mapping.apply(message.payload);
      if (!mapped.ok) {
        steps.push(finish('failed', { code: 'mapping_failed', message: `The mapping "${route.mapping}" rejected the webhook`, errors: mapped.errors }));
        continue;
      }
      let input;
      try {
        input = checkActionInput(route.action, mapped.value);
      } catch (err) {
        if (!isHubError(err)) throw err;
        steps.push(finish('failed', failureOf(err)));
        continue;
      }
      let currency = currencies.get(inbox.workspaceId);
      if (!currency) currencies.set(inbox.workspaceId, (currency = deps.store.table('workspaces').get(inbox.workspaceId).then((w) => w?.currency ?? 'USD')));
      steps.push({ kind: 'apply', inbox, action: route.action, input, currency: await currency });
    }
    return steps;
  }

  /** Whether a refusal is the data's (the webhook fails for good) rather than the store's or a race's (retried). */
  const isFinal = (err: unknown): err is HubError => isHubError(err) && !err.retryable && err.code !== 'version_conflict';

  const processed = (inbox: InboxRow, action: ActionName, result: Record<string, unknown>) => ({ inboxId: inbox.id, action, ...result });

  /**
   * Webhooks that skip, finish, or apply in a stock session: one transaction. Its body runs ahead of the write lock
   * (TransactionOptions.runAhead): it reads first (the webhooks' states, the stock it changes) and then writes, and
   * building, checking and encoding its rows is most of its time, which others no longer wait out.
   */
  async function inSession(steps: Step[], now: string): Promise<BatchOutcome[]> {
    return deps.store.transaction(async (tx) => {
      const fresh = await inboxStates(tx, steps);
      const sessions = new Map<string, StockSession>();
      const sessionOf = (workspaceId: string) => {
        let session = sessions.get(workspaceId);
        if (!session) sessions.set(workspaceId, (session = new StockSession(workspaceId)));
        return session;
      };
      const pairs = new Map<string, { sku: string; locationCode: string }[]>();
      for (const step of steps) {
        if (step.kind !== 'apply' || typeof step.input.sku !== 'string' || typeof step.input.locationCode !== 'string') continue;
        const list = pairs.get(step.inbox.workspaceId) ?? [];
        list.push({ sku: step.input.sku, locationCode: step.input.locationCode });
        pairs.set(step.inbox.workspaceId, list);
      }
      for (const [workspaceId, list] of pairs) await preloadStock({ db: tx, workspaceId, now, session: sessionOf(workspaceId) }, list);
      const outcomes: BatchOutcome[] = [];
      for (const step of steps) {
        if (step.kind === 'skip') {
          outcomes.push({ ok: true, result: { inboxId: step.inboxId, skipped: step.status } });
          continue;
        }
        // Read again inside the transaction: a worker that got here first has marked it, and this one stops.
        const state = fresh.get(step.inbox.id);
        const row = state && { ...step.inbox, ...state };
        if (!row || row.status !== 'received') {
          outcomes.push({ ok: true, result: { inboxId: step.inbox.id, skipped: row?.status ?? 'missing' } });
          continue;
        }
        if (step.kind === 'finish') {
          await tx.table('inbox').updateFrom(row, { status: step.status, processedAt: now, result: step.result });
          outcomes.push({ ok: true, result: { inboxId: row.id, status: step.status, ...step.result } });
          continue;
        }
        const session = sessionOf(row.workspaceId);
        const ctx: ActionContext = { db: tx, workspaceId: row.workspaceId, now, correlationId: row.deliveryId.slice(0, 128), currency: step.currency, session };
        let result;
        try {
          result = await ACTIONS[step.action].apply(ctx, step.input);
        } catch (err) {
          // A session operation writes nothing before its checks pass: a refused one leaves only working rows to undo.
          // One refused after it began writing (a row the store would not take) takes the batch down with it, and
          // each webhook is applied alone, in a transaction of its own that the refusal undoes whole.
          const wrote = session.writing;
          session.undoOp();
          if (wrote || !isFinal(err)) throw err;
          const failure = failureOf(err);
          await tx.table('inbox').updateFrom(row, { status: 'failed', processedAt: now, result: failure });
          outcomes.push({ ok: true, result: { inboxId: row.id, status: 'failed', ...failure } });
          continue;
        }
        await tx.table('inbox').updateFrom(row, { status: 'processed', processedAt: now, result: { action: step.action, ...result } });
        outcomes.push({ ok: true, result: processed(row, step.action, result) });
      }
      for (const session of sessions.values()) await session.flush(tx);
      return outcomes;
    }, { runAhead: true });
  }

  /** Any other action: a transaction of its own, undone whole when the action is refused. */
  async function alone(step: Step & { kind: 'apply' }, now: string): Promise<BatchOutcome> {
    try {
      return await deps.store.transaction(async (tx) => {
        const row = await tx.table('inbox').get(step.inbox.id);
        if (!row || row.status !== 'received') return { ok: true, result: { inboxId: step.inbox.id, skipped: row?.status ?? 'missing' } };
        const ctx: ActionContext = { db: tx, workspaceId: row.workspaceId, now, correlationId: row.deliveryId.slice(0, 128), currency: step.currency };
        const result = await ACTIONS[step.action].apply(ctx, step.input);
        await tx.table('inbox').updateFrom(row, { status: 'processed', processedAt: now, result: { action: step.action, ...result } });
        return { ok: true, result: processed(row, step.action, result) };
      });
    } catch (err) {
      if (!isFinal(err)) throw err;
      const failure = failureOf(err);
      // Outside the refused transaction; the row is read again, as another worker may have got to it meanwhile.
      const row = await deps.store.table('inbox').get(step.inbox.id);
      if (!row || row.status !== 'received') return { ok: true, result: { inboxId: step.inbox.id, skipped: row?.status ?? 'missing' } };
      await deps.store.table('inbox').updateFrom(row, { status: 'failed', processedAt: now, result: failure });
      return { ok: true, result: { inboxId: row.id, status: 'failed', ...failure } };
    }
  }

  /** Applies webhooks in claim order: runs of session steps share a transaction, other actions take one each. */
  async function applyTogether(inboxIds: string[]): Promise<BatchOutcome[]> {
    const steps = await prepare(inboxIds);
    const now = iso();
    const outcomes: BatchOutcome[] = [];
    const ownTransaction = (s: Step): s is Step & { kind: 'apply' } => s.kind === 'apply' && !ACTIONS[s.action].inSession;
    for (let i = 0; i < steps.length; ) {
      const step = steps[i]!;
      if (ownTransaction(step)) {
        outcomes.push(await alone(step, now));
        i++;
        continue;
      }
      let j = i + 1;
      while (j < steps.length && j - i < maxBatch && !ownTransaction(steps[j]!)) j++;
      outcomes.push(...(await inSession(steps.slice(i, j), now)));
      i = j;
    }
    return outcomes;
  }

  /** Should applying them together fail, each is applied alone, so that one cannot hold the others back. */
  async function apply(inboxIds: string[]): Promise<BatchOutcome[]> {
    if (inboxIds.length === 1) return applyTogether(inboxIds);
    try {
      return await applyTogether(inboxIds);
    } catch (err) {
      deps.log.warn('a batch of inbound webhooks failed together; applying each alone', { webhooks: inboxIds.length, err });
      const outcomes: BatchOutcome[] = [];
      for (const id of inboxIds) {
        try {
          outcomes.push(...(await applyTogether([id])));
        } catch (error) {
          outcomes.push({ ok: false, error });
        }
      }
      return outcomes;
    }
  }

  return batchedHandler(async (jobs) => {
    const idsOf = await Promise.all(jobs.map((job) => webhooksOfJob(deps.store, job)));
    const outcomes = await apply(idsOf.flat());
    let next = 0;
    return idsOf.map((ids) => jobOutcome(outcomes.slice(next, (next += ids.length))));
  }, maxBatch);
}

/**
 * The webhooks a job applies, in the order they arrived: those whose rows name it (a job that `gathered` a burst),
 * else those it lists (`inboxIds`: one job per webhook, or a job written before jobs gathered by their rows) or the
 * one it names (`inboxId`, older still).
 */
export async function webhooksOfJob(store: Pick<Store, 'table'>, job: JobsRow): Promise<string[]> {
  const { gathered, inboxIds, inboxId } = job.payload as { gathered?: unknown; inboxIds?: unknown; inboxId?: unknown };
  if (gathered === true) {
    const ids: string[] = [];
    for (let cursor: string | null = null; ; ) {
      const page: Page<Pick<InboxRow, 'id'>> = await store.table('inbox').pick([], { where: { jobId: job.id }, limit: 1000, cursor });
      for (const row of page.items) ids.push(row.id);
      if (!page.nextCursor) return ids;
      cursor = page.nextCursor;
    }
  }
  if (Array.isArray(inboxIds)) return inboxIds.map(String);
  return [String(inboxId)];
}

/**
 * A job's outcome from its webhooks': one webhook's result as it is; for several, how many came to what. Should any
 * of them have failed in a way worth another go, the job fails with that error and is retried (the ones applied
 * are then skipped).
 */
function jobOutcome(outcomes: BatchOutcome[]): BatchOutcome {
  const failed = outcomes.find((o) => !o.ok);
  if (failed) return failed;
  if (outcomes.length === 1) return outcomes[0]!;
  const counts: Record<string, number> = {};
  for (const o of outcomes) {
    const r = (o as { result: Record<string, unknown> }).result;
    const key = r.skipped !== undefined ? 'skipped' : typeof r.status === 'string' ? r.status : 'processed';
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return { ok: true, result: { webhooks: outcomes.length, ...counts } };
}

function failureOf(err: HubError): Failure {
  return { code: err.code, message: err.message, ...(err.errors?.length ? { errors: err.errors } : {}) };
}

/**
 * Whether an inbound route's pattern takes a sender's event type: `*`, the type itself, or a prefix ending in `.*`
 * (the hub's own style, `order.*`) or `/*` (vendors' topics: Shopify's `orders/create` under `orders/*`). The
 * separator is part of the prefix: `orders/*` takes neither `orders` nor `ordersx/create`.
 */
export function matchesRoute(pattern: string, type: string): boolean {
  if (pattern === '*' || pattern === type) return true;
  return (pattern.endsWith('.*') || pattern.endsWith('/*')) && type.startsWith(pattern.slice(0, -1));
}
