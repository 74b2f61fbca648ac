// Every JSON Schema the hub knows, compiled once by one ajv instance (JSON Schema 2020-12, as OpenAPI 3.1 uses).
// The list is explicit so a bundler can see it and a missing file is a compile error, not a runtime miss.
import { _, Ajv2020, str, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { fullFormats } from 'ajv-formats/dist/formats.js';
import common from '../../schemas/common.schema.json' with { type: 'json' };
import mapping from '../../schemas/mapping.schema.json' with { type: 'json' };
import workspaces from '../../schemas/tables/workspaces.schema.json' with { type: 'json' };
import apiKeys from '../../schemas/tables/api_keys.schema.json' with { type: 'json' };
import oauthClients from '../../schemas/tables/oauth_clients.schema.json' with { type: 'json' };
import signingKeys from '../../schemas/tables/signing_keys.schema.json' with { type: 'json' };
import connections from '../../schemas/tables/connections.schema.json' with { type: 'json' };
import jobs from '../../schemas/tables/jobs.schema.json' with { type: 'json' };
import events from '../../schemas/tables/events.schema.json' with { type: 'json' };
import inbox from '../../schemas/tables/inbox.schema.json' with { type: 'json' };
import idempotencyKeys from '../../schemas/tables/idempotency_keys.schema.json' with { type: 'json' };
import auditLog from '../../schemas/tables/audit_log.schema.json' with { type: 'json' };
import productsTable from '../../schemas/tables/products.schema.json' with { type: 'json' };
import locationsTable from '../../schemas/tables/locations.schema.json' with { type: 'json' };
import inventoryItemsTable from '../../schemas/tables/inventory_items.schema.json' with { type: 'json' };
import stockLevelsTable from '../../schemas/tables/stock_levels.schema.json' with { type: 'json' };
import movementsTable from '../../schemas/tables/movements.schema.json' with { type: 'json' };
import ordersTable from '../../schemas/tables/orders.schema.json' with { type: 'json' };
import allocationsTable from '../../schemas/tables/allocations.schema.json' with { type: 'json' };
import purchaseOrdersTable from '../../schemas/tables/purchase_orders.schema.json' with { type: 'json' };
import mappingsTable from '../../schemas/tables/mappings.schema.json' with { type: 'json' };
import mappingVersionsTable from '../../schemas/tables/mapping_versions.schema.json' with { type: 'json' };
import webhookEndpointsTable from '../../schemas/tables/webhook_endpoints.schema.json' with { type: 'json' };
import webhookDeliveriesTable from '../../schemas/tables/webhook_deliveries.schema.json' with { type: 'json' };
import webhookAttemptsTable from '../../schemas/tables/webhook_attempts.schema.json' with { type: 'json' };
import exchangesTable from '../../schemas/tables/exchanges.schema.json' with { type: 'json' };
import schedulesTable from '../../schemas/tables/schedules.schema.json' with { type: 'json' };
import fileRunsTable from '../../schemas/tables/file_runs.schema.json' with { type: 'json' };
import fileRunErrorsTable from '../../schemas/tables/file_run_errors.schema.json' with { type: 'json' };
import fileImportsTable from '../../schemas/tables/file_imports.schema.json' with { type: 'json' };
import workspaceUpdate from '../../schemas/api/workspace-update.schema.json' with { type: 'json' };
import apiKeyCreate from '../../schemas/api/api-key-create.schema.json' with { type: 'json' };
import apiKeyUpdate from '../../schemas/api/api-key-update.schema.json' with { type: 'json' };
import apiKeyRotate from '../../schemas/api/api-key-rotate.schema.json' with { type: 'json' };
import oauthClientCreate from '../../schemas/api/oauth-client-create.schema.json' with { type: 'json' };
import oauthTokenRequest from '../../schemas/api/oauth-token-request.schema.json' with { type: 'json' };
import connectionCreate from '../../schemas/api/connection-create.schema.json' with { type: 'json' };
import connectionUpdate from '../../schemas/api/connection-update.schema.json' with { type: 'json' };
import productCreate from '../../schemas/api/product-create.schema.json' with { type: 'json' };
import productUpdate from '../../schemas/api/product-update.schema.json' with { type: 'json' };
import locationCreate from '../../schemas/api/location-create.schema.json' with { type: 'json' };
import locationUpdate from '../../schemas/api/location-update.schema.json' with { type: 'json' };
import stockReceipt from '../../schemas/api/stock-receipt.schema.json' with { type: 'json' };
import stockAdjustment from '../../schemas/api/stock-adjustment.schema.json' with { type: 'json' };
import stockTransfer from '../../schemas/api/stock-transfer.schema.json' with { type: 'json' };
import stockReturn from '../../schemas/api/stock-return.schema.json' with { type: 'json' };
import stockCheck from '../../schemas/api/stock-check.schema.json' with { type: 'json' };
import orderImport from '../../schemas/api/order-import.schema.json' with { type: 'json' };
import orderReserve from '../../schemas/api/order-reserve.schema.json' with { type: 'json' };
import orderFulfil from '../../schemas/api/order-fulfil.schema.json' with { type: 'json' };
import allocationCreate from '../../schemas/api/allocation-create.schema.json' with { type: 'json' };
import allocationBatch from '../../schemas/api/allocation-batch.schema.json' with { type: 'json' };
import allocationQuantity from '../../schemas/api/allocation-quantity.schema.json' with { type: 'json' };
import purchaseOrderCreate from '../../schemas/api/purchase-order-create.schema.json' with { type: 'json' };
import purchaseOrderUpdate from '../../schemas/api/purchase-order-update.schema.json' with { type: 'json' };
import purchaseOrderReceive from '../../schemas/api/purchase-order-receive.schema.json' with { type: 'json' };
import mappingCreate from '../../schemas/api/mapping-create.schema.json' with { type: 'json' };
import mappingVersionCreate from '../../schemas/api/mapping-version-create.schema.json' with { type: 'json' };
import mappingActivate from '../../schemas/api/mapping-activate.schema.json' with { type: 'json' };
import mappingValidate from '../../schemas/api/mapping-validate.schema.json' with { type: 'json' };
import mappingPreview from '../../schemas/api/mapping-preview.schema.json' with { type: 'json' };
import webhookEndpointCreate from '../../schemas/api/webhook-endpoint-create.schema.json' with { type: 'json' };
import webhookEndpointUpdate from '../../schemas/api/webhook-endpoint-update.schema.json' with { type: 'json' };
import webhookSecretRotate from '../../schemas/api/webhook-secret-rotate.schema.json' with { type: 'json' };
import webhookReplay from '../../schemas/api/webhook-replay.schema.json' with { type: 'json' };
import exchangeCreate from '../../schemas/api/exchange-create.schema.json' with { type: 'json' };
import exchangeUpdate from '../../schemas/api/exchange-update.schema.json' with { type: 'json' };
import scheduleCreate from '../../schemas/api/schedule-create.schema.json' with { type: 'json' };
import scheduleUpdate from '../../schemas/api/schedule-update.schema.json' with { type: 'json' };
import stockCount from '../../schemas/canonical/stock-count.schema.json' with { type: 'json' };
import stockLevel from '../../schemas/canonical/stock-level.schema.json' with { type: 'json' };
import orderLine from '../../schemas/canonical/order-line.schema.json' with { type: 'json' };
import stockChange from '../../schemas/canonical/stock-change.schema.json' with { type: 'json' };

export type JsonSchema = Record<string, unknown>;

export const TABLE_SCHEMAS = [
  workspaces,
  apiKeys,
  oauthClients,
  signingKeys,
  connections,
  jobs,
  events,
  inbox,
  idempotencyKeys,
  auditLog,
  productsTable,
  locationsTable,
  inventoryItemsTable,
  stockLevelsTable,
  movementsTable,
  ordersTable,
  allocationsTable,
  purchaseOrdersTable,
  mappingsTable,
  mappingVersionsTable,
  webhookEndpointsTable,
  webhookDeliveriesTable,
  webhookAttemptsTable,
  exchangesTable,
  schedulesTable,
  fileRunsTable,
  fileRunErrorsTable,
  fileImportsTable,
] as JsonSchema[];

export const API_SCHEMAS = [
  workspaceUpdate,
  apiKeyCreate,
  apiKeyUpdate,
  apiKeyRotate,
  oauthClientCreate,
  oauthTokenRequest,
  connectionCreate,
  connectionUpdate,
  productCreate,
  productUpdate,
  locationCreate,
  locationUpdate,
  stockReceipt,
  stockAdjustment,
  stockTransfer,
  stockReturn,
  stockCheck,
  orderImport,
  orderReserve,
  orderFulfil,
  allocationCreate,
  allocationBatch,
  mappingCreate,
  mappingVersionCreate,
  mappingActivate,
  mappingValidate,
  mappingPreview,
  allocationQuantity,
  purchaseOrderCreate,
  purchaseOrderUpdate,
  purchaseOrderReceive,
  webhookEndpointCreate,
  webhookEndpointUpdate,
  webhookSecretRotate,
  webhookReplay,
  exchangeCreate,
  exchangeUpdate,
  scheduleCreate,
  scheduleUpdate,
] as JsonSchema[];

/** The canonical records files and mappings exchange (flat shapes of the model). */
export const CANONICAL_SCHEMAS = [stockCount, stockLevel, orderLine, stockChange] as JsonSchema[];

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

function createAjv(): Ajv2020 {
  // Without Ajv's optimizing pass over the generated code: compiling every table's validators (what a worker thread
  // does at its start) took 263-303 ms here against 380-512 ms, and a row validated as fast (~0.4 µs).
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true, code: { optimize: false } });
  addFormats(ajv);
  // Date formats are the costly checks, and a file or a batch repeats the same date on row after row: each remembers
  // the last value it passed, so a repeat costs one string compare.
  for (const name of ['date-time', 'date', 'time'] as const) {
    const def = fullFormats[name] as { validate: (s: string) => boolean; compare: (a: string, b: string) => number | undefined };
    const check = def.validate;
    let passed: string | null = null;
    const validate = (s: string): boolean => {
      if (s === passed) return true;
      const ok = check(s);
      if (ok) passed = s;
      return ok;
    };
    ajv.addFormat(name, { type: 'string', validate, compare: def.compare });
  }
  // String lengths count characters (code points), as JSON Schema says; Ajv counts them for every string it checks,
  // a loop over the whole string. A string of at most maxLength UTF-16 units has at most that many characters, and
  // one of at least 2 × minLength units at least that many: only strings in between are counted. Same verdicts,
  // same errors; a stored webhook body (up to megabytes of base64) is no longer walked on every insert.
  ajv.removeKeyword('maxLength');
  ajv.removeKeyword('minLength');
  ajv.addKeyword({
    keyword: ['maxLength', 'minLength'],
    type: 'string',
    schemaType: 'number',
    $data: true,
    error: {
      message: ({ keyword, schemaCode }) => str`must NOT have ${keyword === 'maxLength' ? 'more' : 'fewer'} than ${schemaCode} characters`,
      params: ({ schemaCode }) => _`{limit: ${schemaCode}}`,
    },
    code(cxt) {
      const check = cxt.gen.scopeValue('func', { ref: cxt.keyword === 'maxLength' ? overMaxLength : underMinLength });
      cxt.fail$data(_`${check}(${cxt.data}, ${cxt.schemaCode})`);
    },
  });
  // Annotations of our own: table layout, and fields that never leave the store.
  ajv.addKeyword({ keyword: 'x-hub-table' });
  ajv.addKeyword({ keyword: 'x-hub-private' });
  ajv.addKeyword({ keyword: 'x-hub-secret' });
  ajv.addKeyword({ keyword: 'example' });
  return ajv;
}

/** Characters (code points) in `s`; a lone surrogate counts as one, as Ajv counts it. */
export function characterLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++, n++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) i++;
  }
  return n;
}

function overMaxLength(s: string, max: number): boolean {
  return s.length > max && characterLength(s) > max;
}

function underMinLength(s: string, min: number): boolean {
  return s.length < min || (s.length < 2 * min && characterLength(s) < min);
}

export const COMMON_SCHEMA = common as JsonSchema;

/** Every schema the hub ships, registered by `$id`. */
export const BUILT_IN_SCHEMAS = [common, mapping, ...TABLE_SCHEMAS, ...API_SCHEMAS, ...CANONICAL_SCHEMAS] as JsonSchema[];

export const ajv = createAjv();
// Registered without checking each against the JSON Schema meta-schema: registry.test.ts does that for every one,
// and the check cost ~40 ms of every start, the hub's and each import worker's. Schemas from users (a mapping's
// source schema) are still checked when they are compiled.
for (const schema of BUILT_IN_SCHEMAS) ajv.addSchema(schema, undefined, undefined, false);

const cache = new Map<string, ValidateFunction>();

/** The compiled validator of a registered schema (by `$id`), compiled on first use. */
export function validatorFor(id: string): ValidateFunction {
  let fn = cache.get(id);
  if (!fn) {
    fn = ajv.getSchema(id);
    if (!fn) throw new Error(`Unknown schema ${id}`);
    cache.set(id, fn);
  }
  return fn;
}

/** Compiles a schema that is not registered (a connector's config schema), caching by identity. */
const adHoc = new WeakMap<object, ValidateFunction>();
export function compileSchema(schema: JsonSchema): ValidateFunction {
  let fn = adHoc.get(schema);
  if (!fn) {
    fn = ajv.compile(schema);
    adHoc.set(schema, fn);
  }
  return fn;
}

export function getSchema(id: string): JsonSchema {
  const found = ajv.getSchema(id);
  if (!found) throw new Error(`Unknown schema ${id}`);
  return found.schema as JsonSchema;
}
