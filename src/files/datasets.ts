// What an export sends: one workspace's stock levels, products, movements, inventory value or orders, read from the
// store a page at a time (never the whole table) and given as one record per row, with ids resolved to the SKUs
// and location codes partners know them by. The records are flat where a table file needs them flat (a
// movement's reference is two columns, not an object that is null on some rows), and products and orders are the
// API's shapes, so an export says what the API says.
//
// Lookups are per page: one `in` query per table for the ids a page names, not one per row. Locations are few and
// kept for the whole run; products are looked up again for every page, so memory stays one page's worth however
// large the catalogue. Each dataset pages in an order no concurrent write can reorder (ids, or the immutable
// movement time), so a record is never given twice in one run.
import { present } from '../app/http.ts';
import { HubError } from '../errors.ts';
import { publicOrder } from '../inventory/orders.ts';
import { available } from '../inventory/stock-batch.ts';
import { formatMicros, formatMoney, times, toMicros } from '../lib/decimal.ts';
import { tableSpec } from '../schemas/tables.ts';
import type { Db, FieldOps, LocationsRow, OrderBy, Page, TableName, TableRows, Where } from '../store/types.ts';

export const DATASET_NAMES = ['stock-levels', 'products', 'movements', 'inventory-value', 'orders'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

export interface DatasetParams {
  /** From this moment on (inclusive): ISO 8601 with a time zone, or a date (UTC midnight). */
  since?: string | Date;
  /** Before this moment (exclusive). */
  until?: string | Date;
  /** Only rows in this status, or in any of these (products, orders). */
  status?: string | string[];
  /** Only stock at the location with this code. */
  locationCode?: string;
}

export type DatasetParamName = keyof DatasetParams;

export interface DatasetField {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'decimal' | 'date-time' | 'object' | 'array';
  nullable: boolean;
  description?: string;
  enum?: string[];
}

export interface DatasetSchema {
  description: string;
  /** The params the dataset takes; any other is refused. */
  params: DatasetParamName[];
  /** In the order every record has them. */
  fields: DatasetField[];
}

export interface DatasetContext {
  db: Db;
  workspaceId: string;
}

type Rec = Record<string, unknown>;

/** Rows per store page: the store's limit is 1000, and half that keeps each page's lookups small. */
const PAGE_SIZE = 500;
/** Ids per `in` lookup (Appwrite takes at most 100 values in one query). */
const LOOKUP_CHUNK = 100;

const f = (name: string, type: DatasetField['type'], description: string, nullable = false): DatasetField => ({ name, type, nullable, description });

/** The fields of a table as the API presents its rows (private columns left out), from the table's schema. */
function tableFields(table: TableName): DatasetField[] {
  const spec = tableSpec(table);
  const props = spec.schema.properties as Record<string, { description?: unknown }>;
  return spec.columns
    .filter((c) => !c.private)
    .map((c) => {
      const type: DatasetField['type'] =
        c.kind === 'integer' ? 'integer' : c.kind === 'real' ? 'number' : c.kind === 'boolean' ? 'boolean' : c.kind === 'json' ? (c.itemType ? 'array' : 'object') : c.format === 'date-time' ? 'date-time' : 'string';
      const field: DatasetField = { name: c.name, type, nullable: c.nullable };
      if (typeof props[c.name]?.description === 'string') field.description = props[c.name]!.description as string;
      if (c.enum) field.enum = c.enum;
      return field;
    });
}

const IDS = [
  f('productId', 'string', 'The product.'),
  f('inventoryItemId', 'string', "The product's inventory item."),
  f('locationId', 'string', 'The location.'),
];

export const DATASET_SCHEMAS: Record<DatasetName, DatasetSchema> = {
  'stock-levels': {
    description: 'Stock of every product at every location it has been held: on hand, reserved and available. In the order the levels were created.',
    params: ['locationCode'],
    fields: [
      f('sku', 'string', 'The SKU.'),
      f('productName', 'string', 'The product name; null if the product is gone.', true),
      f('barcode', 'string', "The product's barcode (GTIN, EAN, UPC).", true),
      f('unitOfMeasure', 'string', 'The unit quantities count.', true),
      f('locationCode', 'string', 'The location code; null if the location is gone.', true),
      f('locationName', 'string', 'The location name.', true),
      f('onHand', 'integer', 'Units at the location.'),
      f('reserved', 'integer', 'Units reserved for orders.'),
      f('available', 'integer', 'On hand minus reserved (negative when backordered).'),
      f('updatedAt', 'date-time', 'When the level last changed.'),
      ...IDS,
    ],
  },
  products: {
    description: 'The catalogue as the API presents products, oldest first. `since`/`until` filter on updatedAt, to send what changed.',
    params: ['since', 'until', 'status'],
    fields: tableFields('products'),
  },
  movements: {
    description: 'The stock ledger, oldest first: every change of on-hand units at a location. `since`/`until` filter on occurredAt.',
    params: ['since', 'until', 'locationCode'],
    fields: [
      f('occurredAt', 'date-time', 'When the movement happened.'),
      { ...f('type', 'string', 'What moved the stock.'), enum: [...(tableSpec('movements').columnsByName.get('type')!.enum ?? [])] },
      f('sku', 'string', 'The SKU at the time of the movement.'),
      f('locationCode', 'string', 'The location code; null if the location is gone.', true),
      f('quantity', 'integer', 'Change of on-hand units: positive in, negative out.'),
      f('unitCost', 'decimal', 'Cost per unit.'),
      f('value', 'decimal', 'quantity × unitCost.'),
      f('onHandAfter', 'integer', "The item's total on hand after the movement."),
      f('averageCostAfter', 'decimal', "The item's moving average unit cost after the movement."),
      f('reason', 'string', 'Why, when given.', true),
      f('referenceType', 'string', 'What caused it: order, purchase_order, transfer...', true),
      f('referenceId', 'string', 'The id of what caused it.', true),
      f('seq', 'integer', "The movement's number in its item's ledger."),
      f('id', 'string', 'The movement.'),
      ...IDS,
    ],
  },
  'inventory-value': {
    description:
      'What the stock is worth now at its moving average cost, per product and location holding stock (as the inventory value report with groupBy sku_location). In the order the levels were created.',
    params: ['locationCode'],
    fields: [
      f('sku', 'string', 'The SKU.'),
      f('productName', 'string', 'The product name; null if the product is gone.', true),
      f('locationCode', 'string', 'The location code; null if the location is gone.', true),
      f('onHand', 'integer', 'Units at the location.'),
      f('unitCost', 'decimal', "The item's moving average unit cost."),
      f('value', 'decimal', 'onHand × unitCost, rounded to the currency minor units.'),
      f('currency', 'string', "The workspace's currency."),
      ...IDS,
    ],
  },
  orders: {
    description: 'Sales orders as the API presents them, with their lines, oldest first. `since`/`until` filter on updatedAt, to send what changed.',
    params: ['since', 'until', 'status'],
    fields: tableFields('orders'),
  },
};

/** The field names of a dataset in record order: the `columns` to give a CSV or XLSX export of it. */
export function datasetColumns(name: DatasetName): string[] {
  return DATASET_SCHEMAS[name].fields.map((x) => x.name);
}

// ------------------------------------------------------------------------------------------------- params

function invalid(field: string, code: string, message: string): HubError {
  return new HubError('validation_failed', message, { errors: [{ field, code, message }] });
}

const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

/** A moment as the store writes them (toISOString), so that text comparison is time comparison. */
function instant(name: 'since' | 'until', value: unknown): string {
  if (value instanceof Date && !Number.isNaN(value.getTime())) return value.toISOString();
  const m = typeof value === 'string' ? DATE_TIME.exec(value) : null;
  // Date.parse rolls 2026-02-30 over into March; the day is checked against its month first.
  const [y, mo, d] = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [0, 0, 0];
  const ms = m ? Date.parse(value as string) : NaN;
  if (!m || Number.isNaN(ms) || new Date(Date.UTC(y, mo - 1, d)).getUTCDate() !== d) {
    throw invalid(`/params/${name}`, 'format', `${name} must be a date-time with a time zone (2026-03-01T00:00:00Z) or a date (2026-03-01), not ${JSON.stringify(value)}`);
  }
  return new Date(ms).toISOString();
}

interface Settings {
  range: FieldOps | undefined;
  statuses: string[] | undefined;
  locationCode: string | undefined;
}

function settings(name: DatasetName, params: DatasetParams): Settings {
  if (typeof params !== 'object' || params === null) throw invalid('/params', 'type', 'params must be an object');
  const schema = DATASET_SCHEMAS[name];
  for (const key of Object.keys(params) as DatasetParamName[]) {
    if (params[key] === undefined) continue;
    if (!schema.params.includes(key)) {
      const takes = schema.params.length ? `it takes ${schema.params.join(', ')}` : 'it takes none';
      throw invalid(`/params/${key}`, 'not_applicable', `The ${name} dataset has no parameter ${JSON.stringify(key)}; ${takes}`);
    }
  }
  const since = params.since === undefined ? undefined : instant('since', params.since);
  const until = params.until === undefined ? undefined : instant('until', params.until);
  if (since !== undefined && until !== undefined && since > until) throw invalid('/params/since', 'range', 'since is after until');
  const range = since === undefined && until === undefined ? undefined : { ...(since ? { gte: since } : {}), ...(until ? { lt: until } : {}) };

  let statuses: string[] | undefined;
  if (params.status !== undefined) {
    // Only products and orders take a status (settled above), each its table's.
    const allowed = tableSpec(name === 'orders' ? 'orders' : 'products').columnsByName.get('status')!.enum ?? [];
    statuses = Array.isArray(params.status) ? params.status : [params.status];
    const bad = statuses.find((s) => !allowed.includes(s));
    if (statuses.length === 0 || bad !== undefined) throw invalid('/params/status', 'enum', `status must be one or more of ${allowed.join(', ')}`);
  }
  const { locationCode } = params;
  if (locationCode !== undefined && (typeof locationCode !== 'string' || locationCode === '')) {
    throw invalid('/params/locationCode', 'type', 'locationCode must be a location code');
  }
  return { range, statuses, locationCode };
}

// -------------------------------------------------------------------------------------------------- store

async function* pages<N extends TableName>(db: Db, table: N, where: Where, orderBy?: OrderBy): AsyncGenerator<TableRows[N][]> {
  let cursor: string | null = null;
  do {
    const page: Page<TableRows[N]> = await db.table(table).query({ where, orderBy, cursor, limit: PAGE_SIZE, scan: true });
    if (page.items.length > 0) yield page.items;
    cursor = page.nextCursor;
  } while (cursor);
}

async function byIds<N extends 'products' | 'inventory_items' | 'locations'>(ctx: DatasetContext, table: N, ids: Iterable<string>): Promise<Map<string, TableRows[N]>> {
  const unique = [...new Set(ids)];
  const out = new Map<string, TableRows[N]>();
  for (let i = 0; i < unique.length; i += LOOKUP_CHUNK) {
    const slice = unique.slice(i, i + LOOKUP_CHUNK);
    const page = await ctx.db.table(table).query({ where: { workspaceId: ctx.workspaceId, id: { in: slice } }, limit: slice.length });
    for (const row of page.items) out.set(row.id, row);
  }
  return out;
}

/** The workspace's locations, looked up as pages name them and kept for the run. */
class Locations {
  readonly #known = new Map<string, LocationsRow | null>();
  constructor(private readonly ctx: DatasetContext) {}

  async load(ids: string[]): Promise<void> {
    const missing = ids.filter((id) => !this.#known.has(id));
    if (missing.length === 0) return;
    const found = await byIds(this.ctx, 'locations', missing);
    for (const id of missing) this.#known.set(id, found.get(id) ?? null);
  }

  get(id: string): LocationsRow | null {
    return this.#known.get(id) ?? null;
  }
}

/** The where of a dataset of stock, narrowed to one location when `locationCode` names one. */
async function stockWhere(ctx: DatasetContext, s: Settings, extra: Where = {}): Promise<Where> {
  const where: Where = { workspaceId: ctx.workspaceId, ...extra };
  if (s.locationCode === undefined) return where;
  const page = await ctx.db.table('locations').query({ where: { workspaceId: ctx.workspaceId, code: s.locationCode }, limit: 1 });
  const location = page.items[0];
  if (!location) {
    const message = `There is no location with code ${JSON.stringify(s.locationCode)}`;
    throw new HubError('unknown_reference', message, { errors: [{ field: '/params/locationCode', code: 'unknown', message }] });
  }
  return { ...where, locationId: location.id };
}

function ordered(row: Rec, fields: string[]): Rec {
  const out: Rec = {};
  for (const name of fields) out[name] = name in row ? row[name] : null;
  return out;
}

// ----------------------------------------------------------------------------------------------- datasets

async function* stockLevels(ctx: DatasetContext, s: Settings): AsyncGenerator<Rec> {
  const locations = new Locations(ctx);
  for await (const levels of pages(ctx.db, 'stock_levels', await stockWhere(ctx, s))) {
    const products = await byIds(ctx, 'products', levels.map((l) => l.productId));
    await locations.load(levels.map((l) => l.locationId));
    for (const l of levels) {
      const product = products.get(l.productId);
      const location = locations.get(l.locationId);
      yield {
        sku: l.sku,
        productName: product?.name ?? null,
        barcode: product?.barcode ?? null,
        unitOfMeasure: product?.unitOfMeasure ?? null,
        locationCode: location?.code ?? null,
        locationName: location?.name ?? null,
        onHand: l.onHand,
        reserved: l.reserved,
        available: available(l),
        updatedAt: l.updatedAt,
        productId: l.productId,
        inventoryItemId: l.inventoryItemId,
        locationId: l.locationId,
      };
    }
  }
}

/** Per level, the same line the inventory value report (valuation.ts) gives for groupBy sku_location. */
async function* inventoryValue(ctx: DatasetContext, s: Settings): AsyncGenerator<Rec> {
  const currency = (await ctx.db.table('workspaces').get(ctx.workspaceId))?.currency ?? 'USD';
  const locations = new Locations(ctx);
  for await (const levels of pages(ctx.db, 'stock_levels', await stockWhere(ctx, s, { onHand: { ne: 0 } }))) {
    const items = await byIds(ctx, 'inventory_items', levels.map((l) => l.inventoryItemId));
    const products = await byIds(ctx, 'products', levels.map((l) => l.productId));
    await locations.load(levels.map((l) => l.locationId));
    for (const l of levels) {
      const item = items.get(l.inventoryItemId);
      if (!item) continue;
      const average = toMicros(item.averageCost);
      yield {
        sku: item.sku,
        productName: products.get(item.productId)?.name ?? null,
        locationCode: locations.get(l.locationId)?.code ?? null,
        onHand: l.onHand,
        unitCost: formatMicros(average),
        value: formatMoney(times(average, l.onHand), currency),
        currency,
        productId: item.productId,
        inventoryItemId: l.inventoryItemId,
        locationId: l.locationId,
      };
    }
  }
}

async function* movements(ctx: DatasetContext, s: Settings): AsyncGenerator<Rec> {
  const locations = new Locations(ctx);
  const where = await stockWhere(ctx, s, s.range ? { occurredAt: s.range } : {});
  for await (const rows of pages(ctx.db, 'movements', where, { field: 'occurredAt' })) {
    await locations.load(rows.map((m) => m.locationId));
    for (const m of rows) {
      const ref = m.reference;
      yield {
        occurredAt: m.occurredAt,
        type: m.type,
        sku: m.sku,
        locationCode: locations.get(m.locationId)?.code ?? null,
        quantity: m.quantity,
        unitCost: m.unitCost,
        value: m.value,
        onHandAfter: m.onHandAfter,
        averageCostAfter: m.averageCostAfter,
        reason: m.reason,
        referenceType: typeof ref?.type === 'string' ? ref.type : null,
        referenceId: typeof ref?.id === 'string' ? ref.id : null,
        seq: m.seq,
        id: m.id,
        productId: m.productId,
        inventoryItemId: m.inventoryItemId,
        locationId: m.locationId,
      };
    }
  }
}

function changedWhere(ctx: DatasetContext, s: Settings): Where {
  const where: Where = { workspaceId: ctx.workspaceId };
  if (s.range) where.updatedAt = s.range;
  if (s.statuses) where.status = { in: s.statuses };
  return where;
}

const PRODUCT_FIELDS = datasetColumns('products');
const ORDER_FIELDS = datasetColumns('orders');

async function* products(ctx: DatasetContext, s: Settings): AsyncGenerator<Rec> {
  for await (const rows of pages(ctx.db, 'products', changedWhere(ctx, s))) for (const p of rows) yield ordered(present('products', p), PRODUCT_FIELDS);
}

async function* orders(ctx: DatasetContext, s: Settings): AsyncGenerator<Rec> {
  for await (const rows of pages(ctx.db, 'orders', changedWhere(ctx, s))) for (const o of rows) yield ordered(publicOrder(o), ORDER_FIELDS);
}

const READERS: Record<DatasetName, (ctx: DatasetContext, s: Settings) => AsyncGenerator<Rec>> = {
  'stock-levels': stockLevels,
  products,
  movements,
  'inventory-value': inventoryValue,
  orders,
};

/**
 * The records of dataset `name` in the workspace, read page by page as they are consumed. The name and params
 * are checked here, before anything is read (HubError validation_failed naming the field); a `locationCode` that
 * names no location fails the first read with unknown_reference.
 */
export function readDataset(ctx: DatasetContext, name: DatasetName, params: DatasetParams = {}): AsyncIterable<Rec> {
  if (!(DATASET_NAMES as readonly string[]).includes(name)) {
    throw invalid('/dataset', 'unknown_dataset', `There is no dataset ${JSON.stringify(name)}; the datasets are ${DATASET_NAMES.join(', ')}`);
  }
  return READERS[name](ctx, settings(name, params));
}
