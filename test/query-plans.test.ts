// Reads go along indexes. Two flows run with every statement recorded, and each statement's query plan is checked:
// - the webhook paths: inbound webhooks applied by the worker, deliveries fanned out, claimed, sent and recorded, an
//   endpoint disabled and enabled, replays, and the reads operators make (lists, ledgers, metrics);
// - reports and exports, with each of their filters: the movements report, valuation, low stock, the ledger check,
//   and every export dataset.
// A full scan or a sort of every match costs in proportion to the rows kept (millions after a few days), and on
// SQLite it runs under the write lock or on the main thread, so a new one is caught here.
import { Webhook } from 'standardwebhooks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DATASET_NAMES, DATASET_SCHEMAS, readDataset, type DatasetParams } from '../src/files/datasets.ts';
import { tableSpec } from '../src/schemas/tables.ts';
import type { SqliteStore } from '../src/store/sqlite.ts';
import { createTestHub, runDueJobs, spyStatements, type TestHub } from './helpers.ts';
import { startReceiver, type Receiver } from './webhook-receiver.ts';

const SECRET = 'whsec_' + Buffer.alloc(32, 9).toString('base64');
let t: TestHub;
let receiver: Receiver;

beforeEach(async () => {
  t = await createTestHub({ config: { webhooks: { allow: ['127.0.0.1/32'], retrySchedule: [0, 5000], timeoutMs: 2000, disableAfterMs: 86_400_000, concurrency: 8, attemptRetentionDays: 14 } as never } });
  receiver = await startReceiver();
});
afterEach(async () => {
  await t.close();
  await receiver.close();
});

describe('query plans', () => {
  it('webhook paths read along indexes: no statement scans a table or sorts every row it matches', async () => {
    const loc = await t.call('POST', '/v1/locations', { body: { code: 'LON-1', name: 'London' } });
    for (const sku of ['TEE-1', 'TEE-2']) await t.call('POST', '/v1/products', { body: { sku, name: sku } });
    await t.call('POST', '/v1/stock/receipts', { body: { locationId: loc.body.id, lines: [{ sku: 'TEE-1', quantity: 50, unitCost: '2.00' }, { sku: 'TEE-2', quantity: 50, unitCost: '2.00' }] } });
    const connection = await t.call('POST', '/v1/connections', {
      body: { connectorId: 'webhook', name: 'shop', config: { verification: { scheme: 'standard-webhooks' }, routes: [{ event: 'stock.*', mapping: 'webhook-stock-change-in', action: 'stock.adjust' }] }, credentials: { secret: SECRET } },
    });
    const endpoint = (await t.call('POST', '/v1/webhooks/endpoints', { body: { url: receiver.url, eventTypes: ['stock.*'] } })).body.endpoint as { id: string };

    const store = t.hub.deps.store as SqliteStore;
    const spy = spyStatements(store, '', ['run', 'get', 'all']);
    // Inbound: webhooks accepted, then applied by the worker, their events fanned out.
    for (let i = 0; i < 12; i++) {
      const body = JSON.stringify({ type: 'stock.changed', timestamp: '2026-03-01T12:00:00Z', data: { sku: `TEE-${(i % 2) + 1}`, location: 'LON-1', change: -1 } });
      const id = `msg_${i}`;
      const headers = { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(t.clock.now() / 1000)), 'webhook-signature': new Webhook(SECRET).sign(id, new Date(t.clock.now()), body), 'content-type': 'application/json' };
      expect((await t.call('POST', `/hooks/${connection.body.id}`, { key: null, rawBody: body, headers })).status).toBe(202);
    }
    await runDueJobs(t.hub);
    // Outbound: claimed, sent, recorded; a failure retried; the endpoint disabled, enabled, replayed.
    let failures = 3;
    receiver.respond((_req, res) => void (failures-- > 0 ? (res.statusCode = 503, res.end('busy')) : res.end('ok')));
    await t.hub.dispatcher.runOnce();
    t.clock.advance(10_000);
    await t.hub.dispatcher.runOnce();
    await t.call('POST', `/v1/webhooks/endpoints/${endpoint.id}/disable`);
    await t.call('POST', `/v1/webhooks/endpoints/${endpoint.id}/enable`);
    await t.call('POST', `/v1/webhooks/endpoints/${endpoint.id}/replay`, { body: { scope: 'events', since: new Date(t.clock.now() - 86_400_000).toISOString() } });
    await t.hub.dispatcher.runOnce();
    await runDueJobs(t.hub);
    // What operators read.
    const deliveries = (await t.call('GET', '/v1/webhooks/deliveries')).body.data as { id: string; eventId: string }[];
    for (const query of [`endpointId=${endpoint.id}`, 'state=delivered', 'state=dead', `eventId=${deliveries[0]!.eventId}`, `endpointId=${endpoint.id}&state=pending`]) {
      expect((await t.call('GET', `/v1/webhooks/deliveries?${query}`)).status).toBe(200);
    }
    await t.call('GET', `/v1/webhooks/deliveries/${deliveries[0]!.id}/attempts`);
    await t.call('GET', '/v1/webhooks/stats');
    await t.call('GET', `/v1/webhooks/endpoints/${endpoint.id}/stats`);
    await t.call('GET', '/v1/inbox');
    await t.call('GET', '/v1/inbox?status=failed');
    await t.call('GET', '/metrics', { key: null });

    expect(faultsSeen(spy, 50)).toEqual([]);
  });

  it('reports and exports read along indexes, whichever filter they are given', async () => {
    const locations: string[] = [];
    for (const code of ['LON-1', 'MAN-1']) locations.push((await t.call('POST', '/v1/locations', { body: { code, name: code } })).body.id);
    for (const sku of ['TEE-1', 'TEE-2']) await t.call('POST', '/v1/products', { body: { sku, name: sku } });
    for (const locationId of locations) {
      await t.call('POST', '/v1/stock/receipts', { body: { locationId, lines: [{ sku: 'TEE-1', quantity: 50, unitCost: '2.00' }, { sku: 'TEE-2', quantity: 50, unitCost: '2.00' }] } });
    }
    t.clock.advance(60_000);
    await t.call('POST', '/v1/stock/adjustments', { body: { locationId: locations[0], lines: [{ sku: 'TEE-1', quantity: -3, reason: 'damaged' }] } });

    const store = t.hub.deps.store as SqliteStore;
    const spy = spyStatements(store, '', ['run', 'get', 'all']);
    const from = new Date(t.clock.now() - 3_600_000).toISOString();
    const to = new Date(t.clock.now() + 3_600_000).toISOString();
    const filters = ['', `from=${from}&to=${to}`, 'sku=TEE-1', `locationId=${locations[0]}`, 'type=receipt', `locationId=${locations[1]}&type=receipt`, `sku=TEE-2&from=${from}`, `locationId=${locations[0]}&from=${from}&to=${to}`, `type=adjustment&from=${from}`];
    for (const filter of filters) {
      for (const query of [filter, `${filter}&summary=true`, `${filter}&limit=1`]) {
        const res = await t.call('GET', `/v1/reports/stock-movements?${query}`);
        expect(res.status, query).toBe(200);
      }
    }
    for (const query of ['', `at=${from}`, `locationId=${locations[0]}`, 'groupBy=location', `at=${to}&locationId=${locations[1]}`]) {
      expect((await t.call('GET', `/v1/reports/inventory-value?${query}`)).status).toBe(200);
    }
    expect((await t.call('GET', '/v1/reports/low-stock')).status).toBe(200);
    const item = (await t.call('GET', '/v1/inventory-items')).body.data[0] as { id: string };
    expect((await t.call('GET', `/v1/inventory-items/${item.id}/reorder-suggestion`)).status).toBe(200);
    expect((await t.call('GET', '/v1/reports/ledger-check')).status).toBe(200);
    const ctx = { db: store, workspaceId: t.workspace.id };
    for (const name of DATASET_NAMES) {
      const status = name === 'orders' ? 'open' : 'active';
      const paramSets: DatasetParams[] = [{}, { since: from }, { since: from, until: to }, { locationCode: 'MAN-1' }, { locationCode: 'LON-1', since: from }, { status }, { status, since: from }];
      for (const params of paramSets.filter((p) => Object.keys(p).every((k) => (DATASET_SCHEMAS[name].params as string[]).includes(k)))) {
        for await (const _ of readDataset(ctx, name, params));
      }
    }

    expect(faultsSeen(spy, 20)).toEqual([]);
  });
});

/** Each distinct statement the spy saw, with what is wrong with its plan; at least `least` of them. */
function faultsSeen(spy: ReturnType<typeof spyStatements>, least: number): string[] {
  const plans = new Map<string, string[]>();
  for (const s of spy.seen) if (!plans.has(s.sql) && /^(SELECT|UPDATE|DELETE)/.test(s.sql)) plans.set(s.sql, spy.plan(s));
  expect(plans.size).toBeGreaterThan(least);
  return [...plans].flatMap(([sql, plan]) => faultsOf(sql, plan).map((f) => `${f}: ${sql}\n    ${plan.join(' | ')}`));
}

/** Configuration tables, a few rows per workspace: read whole and sorted at no cost. */
const SMALL_TABLES = new Set(['workspaces', 'webhook_endpoints', 'connections', 'locations', 'mappings', 'api_keys']);

/** Sorts of sets bounded by the hub itself, not by the rows kept: the statement's start, and why. */
const BOUNDED_SORTS: [RegExp, string][] = [
  [/^SELECT "id" FROM "inbox" WHERE "jobId" = \?/, "a job's webhooks: at most a batch (INBOX_BATCH)"],
  [/^SELECT \* FROM "jobs" WHERE .*"state" = \? AND "leaseUntil" < \?/, 'jobs whose lease ran out: those a crashed worker held'],
];

/**
 * What is wrong with a statement's plan:
 * - a scan of a table, unless in the key's order (a page read along the primary key, stopped by its LIMIT; a list
 *   reads at most a stretch of it, see IN_ORDER_STRETCH in store/sqlite.ts);
 * - a sort of every match, unless of a small table, of rows a unique index found by the values listed, or of a set
 *   the hub bounds (a sort of the last term only orders rows tied on the index's order, written in one instant);
 * - every row of the workspace read through an index that does not hold the columns the statement needs, unless a
 *   page read in the index's order, stopped by its LIMIT, with no other filter (pageInIndexOrder);
 * - a field pinned by equality tested row by row while an index serves it with the page's order (pinnedRowByRow).
 */
function faultsOf(sql: string, plan: string[]): string[] {
  const table = /(?:FROM|UPDATE) "(\w+)"/.exec(sql)?.[1] ?? '';
  if (SMALL_TABLES.has(table)) return [];
  const faults: string[] = [];
  for (const line of plan) {
    // A subquery's rows (a count stopped at its LIMIT, store/sqlite.ts count) are scanned as they come.
    if (/^SCAN /.test(line) && !/^SCAN \(subquery-\d+\)$/.test(line) && !new RegExp(`^SCAN ${table} USING (COVERING )?INDEX sqlite_autoindex_${table}_1$`).test(line)) faults.push('a table scan');
    if (/^SEARCH \w+ USING INDEX \w+ \(workspaceId=\?\)$/.test(line) && !pageInIndexOrder(table, sql, plan)) faults.push('every row of the workspace');
  }
  if (pinnedRowByRow(table, sql, plan)) faults.push('a pinned field tested row by row, beside an index that serves it in order');
  if (plan.includes('USE TEMP B-TREE FOR ORDER BY') && !BOUNDED_SORTS.some(([re]) => re.test(sql)) && !byUniqueValues(table, plan)) faults.push('a sort of every match');
  return faults;
}

/**
 * Whether a statement on the workspace alone reads a page along an index in the order it asks for: the index is the
 * workspace and then the ORDER BY's fields, nothing is sorted, and a LIMIT stops it. A filter on any other field
 * (read along the index and tested row by row) would make a sparse filter's page read the whole workspace.
 */
function pageInIndexOrder(table: string, sql: string, plan: string[]): boolean {
  const m = /WHERE (.*) ORDER BY (.*) LIMIT \d+$/.exec(sql);
  if (!m || plan.some((line) => line.startsWith('USE TEMP B-TREE'))) return false;
  const filtered = new Set([...m[1]!.matchAll(/"(\w+)"/g)].map((f) => f[1]));
  if (filtered.size !== 1 || !filtered.has('workspaceId')) return false;
  const order = [...m[2]!.matchAll(/"?(\w+)"? (?:ASC|DESC)/g)].map((f) => f[1]!);
  const used = plan.map((line) => /USING INDEX (\w+)/.exec(line)?.[1]).find(Boolean);
  const index = indexNamed(table, used);
  return !!index && ['workspaceId', ...order].every((f, i) => index.fields[i] === f);
}

/**
 * Whether a page ordered by a field filters by equality on fields that an index serves together with that order
 * (workspace, field, order), and the plan searches by none of them: a period at one location read at every location.
 */
function pinnedRowByRow(table: string, sql: string, plan: string[]): boolean {
  const m = /WHERE (.*) ORDER BY "(\w+)"/.exec(sql);
  if (!m) return false;
  const search = plan.find((line) => line.startsWith('SEARCH ')) ?? '';
  const served = [...m[1]!.matchAll(/(?<!\+)"(\w+)" = \?/g)]
    .map(([, field]) => field!)
    .filter((field) => field !== 'workspaceId' && tableSpec(table).indexes.some((idx) => idx.fields[0] === 'workspaceId' && idx.fields[1] === field && idx.fields[2] === m[2]));
  return served.length > 0 && !served.some((field) => search.includes(`${field}=?`));
}

/** The table's index that the store names `name` in SQLite (table__field__field). */
function indexNamed(table: string, name: string | undefined) {
  return tableSpec(table).indexes.find((idx) => `${table}__${idx.fields.join('__')}` === name);
}

/** Whether the plan finds its rows by a unique index, every column of it equal to a value (one row per value listed). */
function byUniqueValues(table: string, plan: string[]): boolean {
  return plan.some((line) => {
    const m = /^SEARCH \w+ USING (?:COVERING )?INDEX (\w+) \(([^)]*)\)$/.exec(line);
    const index = m && indexNamed(table, m[1]);
    return !!index?.unique && m![2] === index.fields.map((f) => `${f}=?`).join(' AND ');
  });
}
