// /v1/reports/*: inventory value (now or at a moment), the movements ledger over a period, low stock, and a
// replay of the ledger that checks it still explains every stored level and cost.
import { HubError } from '../../../errors.ts';
import { formatMoney, toMicros } from '../../../lib/decimal.ts';
import { lowStock } from '../../../inventory/reorder.ts';
import { inventoryValue, verifyLedger, type ValueGrouping } from '../../../inventory/valuation.ts';
import { scanRows } from '../../../store/rows.ts';
import type { FieldOps, Where } from '../../../store/types.ts';
import type { RouteTable } from '../../define-route.ts';
import { listResponse, sendJson } from '../../http.ts';
import { LIST_PARAMS } from '../common.ts';
import { readContext, REORDER_PARAMS, reorderOptions, workspaceCurrency } from './shared.ts';

const TIME = { type: 'string' as const, format: 'date-time', maxLength: 40 };
const MOVEMENT_TYPES = ['receipt', 'adjustment', 'sale', 'return', 'transfer_out', 'transfer_in', 'write_off'];

function period(query: Record<string, unknown>): FieldOps | undefined {
  const from = query.from as string | undefined;
  const to = query.to as string | undefined;
  if (from && to && Date.parse(from) > Date.parse(to)) {
    throw new HubError('invalid_query', 'from is after to', { errors: [{ field: '/query/from', code: 'range', message: 'must not be after to' }] });
  }
  if (!from && !to) return undefined;
  return { ...(from ? { gte: new Date(from).toISOString() } : {}), ...(to ? { lt: new Date(to).toISOString() } : {}) };
}

export function registerReportRoutes(routes: RouteTable): void {
  routes.add(
    {
      method: 'get',
      path: '/v1/reports/inventory-value',
      operationId: 'reportInventoryValue',
      summary: 'What the stock is worth at its moving average cost, by SKU and location, now or at a past moment',
      tag: 'Reports',
      auth: { resource: 'inventory', action: 'read' },
      query: [
        { name: 'at', description: 'The moment to value the stock at (default: now), rebuilt from the ledger.', schema: TIME },
        { name: 'locationId', description: 'Only stock at this location.', schema: { type: 'string', maxLength: 36 } },
        { name: 'groupBy', description: 'One line per `sku_location` (default), per `sku` or per `location`.', schema: { type: 'string', enum: ['sku_location', 'sku', 'location'] } },
      ],
      responses: {
        200: {
          description: 'The valuation; values are exact decimals rounded to the currency minor units',
          schema: { type: 'object', required: ['at', 'currency', 'groupBy', 'totalQuantity', 'totalValue', 'lines'], properties: { lines: { type: 'array' }, totalValue: { type: 'string' }, currency: { type: 'string' } } },
        },
      },
    },
    async (c, { query }) => {
      const at = query.at ? new Date(query.at as string).toISOString() : undefined;
      const report = await inventoryValue(readContext(c), {
        at,
        locationId: query.locationId as string | undefined,
        groupBy: query.groupBy as ValueGrouping | undefined,
        currency: await workspaceCurrency(c),
      });
      return sendJson(c, 200, report);
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/reports/stock-movements',
      operationId: 'reportStockMovements',
      summary: 'The movements ledger over a period, oldest first, with filters',
      description: 'With `summary=true` the answer is instead the totals per movement type over the period (units and value).',
      tag: 'Reports',
      auth: { resource: 'inventory', action: 'read' },
      query: [
        ...LIST_PARAMS,
        { name: 'from', description: 'Movements at or after this time.', schema: TIME },
        { name: 'to', description: 'Movements before this time.', schema: TIME },
        { name: 'sku', description: 'Only this SKU.', schema: { type: 'string', maxLength: 100 } },
        { name: 'locationId', description: 'Only this location.', schema: { type: 'string', maxLength: 36 } },
        { name: 'type', description: 'Only this movement type.', schema: { type: 'string', enum: MOVEMENT_TYPES } },
        { name: 'summary', description: 'Totals per type instead of the movements.', schema: { type: 'boolean' } },
      ],
      responses: { 200: { description: 'A page of movements, or the totals', schema: { type: 'object' } } },
    },
    async (c, { query }) => {
      const ctx = readContext(c);
      const where: Where = { workspaceId: ctx.workspaceId, occurredAt: period(query) };
      for (const k of ['sku', 'locationId', 'type']) if (query[k] !== undefined) where[k] = query[k] as string;
      if (query.summary) {
        const currency = await workspaceCurrency(c);
        const totals = new Map<string, { type: string; movements: number; quantity: number; value: bigint }>();
        for await (const m of scanRows(ctx.db.table('movements'), { where })) {
          let t = totals.get(m.type);
          if (!t) totals.set(m.type, (t = { type: m.type, movements: 0, quantity: 0, value: 0n }));
          t.movements += 1;
          t.quantity += m.quantity;
          t.value += toMicros(m.value);
        }
        return sendJson(c, 200, { currency, from: query.from ?? null, to: query.to ?? null, totals: [...totals.values()].map((t) => ({ ...t, value: formatMoney(t.value, currency) })) });
      }
      const page = await ctx.db.table('movements').query({ where, orderBy: { field: 'occurredAt' }, limit: (query.limit as number) ?? 50, cursor: (query.cursor as string) ?? null });
      return listResponse(c, page.items, page.nextCursor);
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/reports/low-stock',
      operationId: 'reportLowStock',
      summary: 'Active products at or below their reorder point, most urgent first, with reorder suggestions',
      tag: 'Reports',
      auth: { resource: 'inventory', action: 'read' },
      query: REORDER_PARAMS,
      responses: { 200: { description: 'The products', schema: { type: 'object', required: ['data'], properties: { data: { type: 'array' } } } } },
    },
    async (c, { query }) => {
      const data = await lowStock(readContext(c), await reorderOptions(c, query));
      return sendJson(c, 200, { data });
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/v1/reports/ledger-check',
      operationId: 'reportLedgerCheck',
      summary: 'Replay the movements ledger from empty and compare it with the stored levels, reservations and average costs',
      tag: 'Reports',
      auth: { resource: 'inventory', action: 'read' },
      responses: { 200: { description: 'The discrepancies (none when `ok`)', schema: { type: 'object', required: ['ok', 'movements', 'discrepancies'] } } },
    },
    async (c) => {
      const result = await verifyLedger(readContext(c));
      return sendJson(c, 200, { ok: result.discrepancies.length === 0, ...result });
    },
  );
}
