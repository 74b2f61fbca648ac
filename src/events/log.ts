// The append-only event log: CloudEvents-shaped records written in the same transaction as the change they
// describe (an outbox), read back as a cursor feed with type filters such as `order.*`.
import { HubError } from '../errors.ts';
import type { Db, EventsRow, Where } from '../store/types.ts';
import { fanOut, type FanOutMemo } from '../webhooks/fanout.ts';

export const EVENT_SOURCE = 'urn:hub';

export interface NewEvent {
  type: string;
  workspaceId: string;
  subject?: string | null;
  data: Record<string, unknown>;
  correlationId?: string | null;
  source?: string;
}

/**
 * Appends an event and its webhook deliveries; call it with the transaction that makes the change, never after it.
 * (Outside a transaction it opens one, so the event and its deliveries still land together.)
 */
export async function appendEvent(db: Db, event: NewEvent, now: string, memo?: FanOutMemo, options: { fanOut?: boolean } = {}): Promise<EventsRow> {
  return db.transaction(async (tx) => {
    const row = await insertEvent(tx, event, now);
    // Without fan-out (a test event, sent to one endpoint by its caller), the event is only kept in the log.
    if (options.fanOut !== false) await fanOut(tx, row, memo);
    return row;
  });
}

function insertEvent(db: Db, event: NewEvent, now: string): Promise<EventsRow> {
  return db.table('events').insert({
    type: event.type,
    source: event.source ?? EVENT_SOURCE,
    subject: event.subject ?? null,
    time: now,
    workspaceId: event.workspaceId,
    correlationId: event.correlationId ?? null,
    data: event.data,
  });
}

const PATTERN = /^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?)$/;

/**
 * Compiles type patterns (`order.created`, `order.*`, `*`) into a store filter: exact types become one `in`,
 * each wildcard a prefix. Returns undefined when anything matches.
 */
export function typeFilter(patterns: string[], pointer = '/query/type'): Where | undefined {
  const exact: string[] = [];
  const prefixes: string[] = [];
  for (const [i, p] of patterns.entries()) {
    if (!PATTERN.test(p)) {
      throw new HubError('invalid_query', `"${p}" is not an event type pattern`, {
        errors: [{ field: `${pointer}/${i}`, code: 'pattern', message: 'must be an event type such as order.created, a prefix such as order.*, or *' }],
      });
    }
    if (p === '*') return undefined;
    if (p.endsWith('.*')) prefixes.push(p.slice(0, -1));
    else exact.push(p);
  }
  const alternatives: Where[] = [];
  if (exact.length) alternatives.push({ type: { in: exact } });
  for (const prefix of prefixes) alternatives.push({ type: { startsWith: prefix } });
  if (alternatives.length === 1) return alternatives[0];
  return { $or: alternatives };
}

/** True when `type` matches one of the patterns (used to route events to subscribers in memory). */
export function matchesType(patterns: readonly string[], type: string): boolean {
  return patterns.some((p) => p === '*' || p === type || (p.endsWith('.*') && type.startsWith(p.slice(0, -1))));
}
