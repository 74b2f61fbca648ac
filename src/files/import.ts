// The import pipeline: a staged file is read record by record, each record mapped to the action's input, checked
// against the action's schema, and applied in batches. Each batch commits in one transaction together with the
// run's counters, its failed rows and a cursor (how many records are decided), so a crash never applies a row
// twice: the retried job starts after the cursor. The same file (checksum) is applied once per exchange: a marker
// row with an id derived from the checksum is written in the first transaction that applies anything.
//
// Policies: `keep-good` applies good records and reports the bad ones. `reject-all` first reads the whole file
// and tries every batch in a transaction that is rolled back (so references, stock and every other rule the
// apply step checks are checked too), and applies nothing unless every record passed.
import { createHash } from 'node:crypto';
import { HubError, isHubError, type FieldError } from '../errors.ts';
import { ACTIONS, type ActionContext } from '../apply/actions.ts';
import type { ImportAction, ImportPolicy } from './runs.ts';
import { orderFromLines, orderKey, type OrderLineRecord } from '../apply/order-lines.ts';
import { adjustStock, adjustStockAt } from '../inventory/movements.ts';
import type { Clock } from '../lib/clock.ts';
import { portableMapping, type CompiledMapping } from '../mappings/compile.ts';
import type { Db, FileRunsRow, LocationsRow, Page, RowPatch, StockLevelsRow, Store } from '../store/types.ts';
import { isFileFailure, reasonOf } from './failure.ts';
import { decideInWorker, decideItems, failureOfRead, makeDecider, MAX_MESSAGE, type Decided, type RowFailure } from './decide.ts';
import { readFileChunks, type FileSpec, type RecordError } from './index.ts';
import type { StagedFile } from './stage.ts';

export { IMPORT_ACTIONS, POLICIES, type ImportAction, type ImportPolicy } from './runs.ts';
export type { RowFailure } from './decide.ts';

/** The schema each action's (mapped) input must satisfy. */
export function actionSchema(action: ImportAction): string {
  return action === 'order.lines' ? 'hub:canonical/order-line' : ACTIONS[action].schema;
}

export interface ImportPlan {
  file: FileSpec;
  /** Turns each record into the action's input; null when records are the input as they are (e.g. JSON-like XML). */
  mapping: CompiledMapping | null;
  action: ImportAction;
  policy: ImportPolicy;
  /** What the checksum marker is scoped to: an exchange id, or the mapping and action of a one-off upload. */
  scope: string;
}

export interface ImportEnv {
  store: Store;
  clock: Clock;
  /** The workspace's currency, for orders that do not name one. */
  currency: string;
  /** Records in the first transaction (default 1000; Appwrite transactions take fewer operations). */
  batchSize?: number;
  /**
   * The most records a transaction grows to (default: batchSize when that is given, else 4,000). Batches double
   * while one commits in under 50 ms and halve when one takes over 200 ms: cheap rows (a nightly count that
   * mostly repeats what is stored) are applied in few transactions, and costly ones never hold the store's one
   * writer long, which other requests wait for.
   */
  maxBatchSize?: number;
  /** Failed rows kept for the report (the counts stay exact beyond it); default 10,000. */
  maxStoredErrors?: number;
  /**
   * Files at least this large (bytes) are read, mapped and checked in a worker thread while this thread applies
   * (default 4 MiB; Infinity: never). Worth it for files that take seconds: a worker takes a moment to start.
   */
  workerMinBytes?: number;
  /** Told after each committed batch, with the run as stored. */
  onProgress?: (run: FileRunsRow) => Promise<void> | void;
}

/** A decided stretch of records: one action input (or one order's lines), or records that failed. */
interface Unit {
  /** Ordinal (0-based, in read order) of the unit's last record: the cursor moves past it when it commits. */
  last: number;
  /** Records this unit covers (several for an order's lines). */
  records: number;
  /** The row of its first record (the one a refusal is reported at). */
  row: number;
  input?: Record<string, unknown>;
  failures: readonly RowFailure[];
}

class Rollback extends Error {}
class AlreadyImported extends Error {}

/** The failures of a unit that has none (shared: never changed). */
const NO_FAILURES: readonly RowFailure[] = Object.freeze([]) as readonly RowFailure[];
/** Rows an order's lines may span (its lines and failed rows between them). */
const MAX_ORDER_SPAN = 10_000;
/** Files from this size on are read in a worker thread (see ImportEnv.workerMinBytes). */
const WORKER_MIN_BYTES = 4 * 1024 * 1024;

/** Whether a staged file of `bytes` is read in a worker thread. */
export function readsInWorker(bytes: number, workerMinBytes?: number): boolean {
  return bytes >= (workerMinBytes ?? WORKER_MIN_BYTES);
}
/** A file without records is refused rather than taken as "nothing to do": it is usually a failed export upstream. */
const EMPTY = { code: 'empty_file', message: 'The file has no records' };

/** The marker's id: one per (workspace, scope, checksum), so a second import of the same file finds it. */
export function importMarkerId(workspaceId: string, scope: string, checksum: string): string {
  return `fim_${createHash('sha256').update(`${workspaceId}\u0000${scope}\u0000${checksum}`).digest('hex').slice(0, 32)}`;
}

/** The data was refused (a rule, a reference, a schema): not a failure that trying again can cure. */
function isRefusal(err: unknown): err is HubError {
  return isHubError(err) && !err.retryable && err.code !== 'version_conflict';
}

/** What a stretch of units counts for the run: records read, failed and applied, and the failed rows. */
function tally(units: Unit[]): { read: number; failed: number; applied: number; errors: RowFailure[] } {
  const t = { read: 0, failed: 0, applied: 0, errors: [] as RowFailure[] };
  for (const u of units) {
    t.read += u.records;
    if (u.failures.length) {
      t.failed += u.records;
      t.errors.push(...u.failures);
    } else if (u.input) t.applied += u.records;
  }
  return t;
}

function errorRowId(runId: string, seq: number): string {
  return `fre_${createHash('sha256').update(`${runId}:${seq}`).digest('hex').slice(0, 32)}`;
}

/** Field errors of a refused apply, attributed to the row(s) of the unit. */
function failuresOfError(err: unknown, row: number | null): RowFailure[] {
  if (isHubError(err) && err.errors?.length) {
    return err.errors.slice(0, 20).map((e: FieldError) => ({ row, column: null, field: e.field || null, code: e.code, message: `${e.message}`.slice(0, MAX_MESSAGE) }));
  }
  const code = isHubError(err) ? err.code : 'apply_failed';
  return [{ row, column: null, field: null, code, message: reasonOf(err).slice(0, MAX_MESSAGE) }];
}

/**
 * Runs the import of `staged` for `run` (created by the caller, state 'running'); returns the finished run. Throws
 * only what a retry may cure (a store failure, a lost race): the run then stays 'running' and a retry resumes.
 */
export async function importStaged(env: ImportEnv, run: FileRunsRow, plan: ImportPlan, staged: StagedFile): Promise<FileRunsRow> {
  const importer = new Importer(env, run, plan, staged);
  return importer.execute();
}

class Importer {
  private run: FileRunsRow;
  private readonly markerId: string;
  private markerWritten = false;
  /** Records per transaction now, between minBatch and maxBatch (see ImportEnv.maxBatchSize). */
  private batchSize: number;
  private minBatch: number;
  private maxBatch: number;
  private readonly maxStoredErrors: number;
  /** The schema inputs are checked against after mapping; null when the mapping checks it already. */
  private readonly schema: string | null;
  private readonly locations = new Map<string, LocationsRow | null>();
  /** Orders whose lines were closed: lines of one of them after another order's are refused. */
  private readonly doneOrders = new Set<string>();

  constructor(
    private readonly env: ImportEnv,
    run: FileRunsRow,
    private readonly plan: ImportPlan,
    private readonly staged: StagedFile,
  ) {
    this.run = run;
    this.markerId = importMarkerId(run.workspaceId, plan.scope, staged.checksum);
    this.batchSize = env.batchSize ?? 1000;
    this.maxBatch = Math.max(this.batchSize, env.maxBatchSize ?? (env.batchSize !== undefined ? env.batchSize : 4000));
    this.minBatch = Math.min(this.batchSize, 50);
    this.maxStoredErrors = env.maxStoredErrors ?? 10_000;
    // A mapping checks its output against its target schema; when that is the action's, once is enough.
    const schema = actionSchema(plan.action);
    this.schema = plan.mapping?.document.target?.schema === schema ? null : schema;
  }

  async execute(): Promise<FileRunsRow> {
    try {
      return await this.steps();
    } catch (err) {
      if (!(err instanceof AlreadyImported)) throw err;
      // Another run applied the same file between this one's check and its first write.
      this.run = (await this.env.store.table('file_runs').get(this.run.id)) ?? this.run;
      return this.finish('duplicate', { code: 'duplicate_file', message: `This file (${this.staged.checksum}) was imported by another run at the same time; it is not applied again` });
    }
  }

  private async steps(): Promise<FileRunsRow> {
    const marker = await this.env.store.table('file_imports').get(this.markerId);
    if (marker && marker.runId !== this.run.id) {
      return this.finish('duplicate', { code: 'duplicate_file', message: `This file (${this.staged.checksum}) was imported before, by run ${marker.runId}; it is not applied again` });
    }
    this.markerWritten = marker !== null;
    if (this.plan.policy === 'reject-all' && this.run.cursor === 0) {
      const check = await this.pass(true);
      if (!check.fatal && this.run.rowsRead === 0) return this.finish('rejected', EMPTY);
      if (check.fatal || this.run.rowsFailed > 0) {
        const good = Math.max(0, this.run.rowsRead - this.run.rowsFailed);
        return this.finish('rejected', check.fatal ?? { code: 'rows_failed', message: `${this.run.rowsFailed} of ${this.run.rowsRead} records failed; nothing was applied (policy reject-all)` }, { rowsSkipped: good });
      }
      // Clean: count again while applying.
      this.run = await this.save({ rowsTotal: this.run.rowsRead, rowsRead: 0 });
    }
    const applied = await this.pass(false);
    const r = this.run;
    if (applied.fatal) return this.finish(r.rowsApplied > 0 ? 'partial' : 'rejected', applied.fatal);
    if (r.rowsRead === 0) return this.finish('rejected', EMPTY);
    if (r.rowsFailed === 0) return this.finish('succeeded', null);
    return this.finish(r.rowsApplied > 0 ? 'partial' : 'rejected', { code: 'rows_failed', message: `${r.rowsFailed} of ${r.rowsRead} records failed` });
  }

  /**
   * Reads the file once. `dry`: every batch is applied in a transaction that is rolled back, and only failures are
   * kept. Otherwise batches commit, starting after the run's cursor. A failure of the file itself is returned.
   */
  private async pass(dry: boolean): Promise<{ fatal: RowFailure | null }> {
    const skip = dry ? 0 : this.run.cursor;
    let ordinal = skip - 1;
    let pending: { key: string; lines: OrderLineRecord[]; rows: number[]; first: number; last: number } | null = null;
    let units: Unit[] = [];
    let errorSeq = dry ? 0 : this.run.rowsFailed;
    // What is decided commits; an order still gathering lines holds the cursor at its first line (it may have
    // failed rows after that line waiting with it), so after a crash the order is read again whole.
    const flush = async () => {
      const hold = pending ? pending.first : Infinity;
      let ready = units;
      if (this.plan.action !== 'order.lines') units = []; // one unit per record, pushed in file order: all are ready
      else {
        // A closed order is pushed when it closes, after failed rows that came later in the file.
        ready = units.filter((u) => u.last < hold).sort((a, b) => a.last - b.last);
        units = units.filter((u) => u.last >= hold);
      }
      if (ready.length === 0) return;
      errorSeq = await this.commit(ready, dry, errorSeq, hold === Infinity ? ready[ready.length - 1]!.last + 1 : hold);
    };
    const closeOrder = () => {
      if (!pending) return;
      const p = pending;
      pending = null;
      this.doneOrders.add(p.key);
      units.push({ last: p.last, records: p.lines.length, row: p.rows[0]!, input: orderFromLines(p.lines) as unknown as Record<string, unknown>, failures: NO_FAILURES });
    };
    const fail = (row: number, failures: RowFailure[]) => ({ last: ordinal, records: 1, row, failures });
    try {
      for await (const chunk of this.decided(skip)) {
        for (const item of chunk) {
          ordinal++;
          if (item.failures) units.push(fail(item.row, item.failures));
          else if (this.plan.action !== 'order.lines') units.push({ last: ordinal, records: 1, row: item.row, input: item.value, failures: NO_FAILURES });
          else {
            const line = item.value as unknown as OrderLineRecord;
            const key = orderKey(line);
            if (pending && pending.key === key) {
              pending.lines.push(line);
              pending.rows.push(item.row);
              pending.last = ordinal;
            } else {
              closeOrder();
              if (this.doneOrders.has(key)) {
                units.push(fail(item.row, [{ row: item.row, column: null, field: '/externalId', code: 'order_split', message: `Lines of order ${line.externalId} (${line.channel}) are not together: the rows of one order must follow each other` }]));
              } else {
                pending = { key, lines: [line], rows: [item.row], first: ordinal, last: ordinal };
              }
            }
          }
          if (pending && ordinal - pending.first >= MAX_ORDER_SPAN) {
            // Lines of one order this far apart are not one order's lines; and they would hold everything between.
            const p = pending;
            pending = null;
            this.doneOrders.add(p.key);
            units.push({ last: p.last, records: p.lines.length, row: p.rows[0]!, failures: [{ row: p.rows[0]!, column: null, field: '/externalId', code: 'order_too_long', message: `Order ${p.lines[0]!.externalId} spans more than ${MAX_ORDER_SPAN} rows; the lines of one order must follow each other` }] });
          }
          if (units.length >= this.batchSize) await flush();
        }
      }
    } catch (err) {
      if (!isFileFailure(err) || err.retryable) throw err;
      const fe = err.extra!.fileError as RecordError;
      // The records before the failure are still decided (keep-good applies them); the open order is not, as its
      // lines may go on past the break.
      await flush();
      return { fatal: { ...failureOfRead(fe), field: null } };
    }
    closeOrder();
    await flush();
    return { fatal: null };
  }

  /** The file's items after the first `skip`, decided; in a worker thread when the file is large. */
  private decided(skip: number): AsyncIterable<Decided[]> {
    const { mapping, file } = this.plan;
    if (readsInWorker(this.staged.bytes, this.env.workerMinBytes)) {
      return decideInWorker({ path: this.staged.path, file, mapping: mapping ? portableMapping(mapping) : null, schema: this.schema, skip });
    }
    return decideItems(readFileChunks(this.staged.open(), file), makeDecider(mapping, this.schema), skip);
  }

  /**
   * Applies (or tries, when dry) a batch of decided units, in one transaction that moves the cursor to `cursor`;
   * returns the next error sequence number.
   */
  private async commit(units: Unit[], dry: boolean, errorSeq: number, cursor: number): Promise<number> {
    const started = performance.now();
    try {
      return await this.commitOnce(units, dry, errorSeq, cursor);
    } finally {
      const ms = performance.now() - started;
      if (ms < 50 && units.length >= this.batchSize) this.batchSize = Math.min(this.maxBatch, this.batchSize * 2);
      else if (ms > 200) this.batchSize = Math.max(this.minBatch, Math.floor(this.batchSize / 2));
    }
  }

  private async commitOnce(units: Unit[], dry: boolean, errorSeq: number, cursor: number): Promise<number> {
    if (dry) {
      const failures = await this.tryBatch(units);
      return this.record(units, failures, errorSeq);
    }
    let batch = units;
    for (let attempt = 0, refusals = 0; ; attempt++) {
      try {
        return await this.applyTogether(batch, errorSeq, cursor);
      } catch (err) {
        if (err instanceof AlreadyImported) throw err;
        if (isHubError(err, 'transaction_too_large')) return this.commitInHalves(batch, errorSeq, cursor, err);
        if (isRefusal(err) && refusals++ < 3) {
          // A unit was refused: find which by trying each alone (rolled back), then apply the rest together, so
          // the batch still commits as one with its cursor.
          const failures = await this.tryBatch(batch);
          if (failures.size === 0 && refusals > 1) throw err;
          batch = batch.map((u) => (failures.has(u) ? { ...u, input: undefined, failures: failures.get(u)! } : u));
          continue;
        }
        if (attempt >= 3) throw err;
        await new Promise((r) => setTimeout(r, 20 * (attempt + 1)));
      }
    }
  }

  /**
   * A batch that writes more than one transaction of the store holds (Appwrite's operations per transaction) goes in
   * halves, each with its own cursor, and no later batch of the run is larger than the half that went. A record that
   * alone writes too much fails with that reason, and the rest of its batch goes.
   */
  private async commitInHalves(units: Unit[], errorSeq: number, cursor: number, err: HubError): Promise<number> {
    const todo = units.filter((u) => u.input);
    if (todo.length <= 1) {
      const failures = failuresOfError(err, todo[0]?.row ?? units[0]!.row);
      return this.commitOnce(units.map((u) => (u.input ? { ...u, input: undefined, failures } : u)), false, errorSeq, cursor);
    }
    const half = Math.ceil(units.length / 2);
    this.maxBatch = Math.max(1, Math.min(this.maxBatch, half));
    this.minBatch = Math.min(this.minBatch, this.maxBatch);
    this.batchSize = Math.min(this.batchSize, this.maxBatch);
    const first = units.slice(0, half);
    errorSeq = await this.commitOnce(first, false, errorSeq, first[first.length - 1]!.last + 1);
    return this.commitOnce(units.slice(half), false, errorSeq, cursor);
  }

  /** Applies `units` in a transaction that is rolled back: the refusal, when the data was refused. */
  private async trial(units: Unit[]): Promise<HubError | null> {
    try {
      await this.env.store.transaction(async (tx) => {
        await this.applyUnits(tx, units);
        throw new Rollback();
      });
    } catch (err) {
      if (err instanceof Rollback) return null;
      if (isRefusal(err)) return err;
      throw err;
    }
    return null;
  }

  /**
   * Dry run: which units would be refused, without keeping anything (each alone, once the batch is refused; in
   * halves first when the batch writes more than one transaction holds).
   */
  private async tryBatch(units: Unit[]): Promise<Map<Unit, RowFailure[]>> {
    const failures = new Map<Unit, RowFailure[]>();
    const find = async (todo: Unit[]): Promise<void> => {
      const refusal = todo.length ? await this.trial(todo) : null;
      if (!refusal) return;
      if (isHubError(refusal, 'transaction_too_large') && todo.length > 1) {
        const half = Math.ceil(todo.length / 2);
        await find(todo.slice(0, half));
        return find(todo.slice(half));
      }
      for (const u of todo) {
        const alone = todo.length === 1 ? refusal : await this.trial([u]);
        if (alone) failures.set(u, failuresOfError(alone, u.row));
      }
    };
    await find(units.filter((u) => u.input));
    return failures;
  }

  private async record(units: Unit[], extra: Map<Unit, RowFailure[]>, errorSeq: number): Promise<number> {
    const { read, failed, errors } = tally(units.map((u) => (extra.has(u) ? { ...u, input: undefined, failures: extra.get(u)! } : u)));
    await this.env.store.transaction(async (tx) => {
      errorSeq = await this.storeErrors(tx, errors, errorSeq);
      await this.saveIn(tx, { rowsRead: this.run.rowsRead + read, rowsFailed: this.run.rowsFailed + failed });
    });
    await this.env.onProgress?.(this.run);
    return errorSeq;
  }

  private async applyTogether(units: Unit[], errorSeq: number, cursor: number): Promise<number> {
    // Most batches have no failed row: then no copy of the batch.
    const todo = units.every((u) => u.input) ? units : units.filter((u) => u.input);
    const { read, failed, applied, errors } = tally(units);
    let marked = false;
    await this.env.store.transaction(async (tx) => {
      if (todo.length > 0) marked = await this.mark(tx);
      await this.applyUnits(tx, todo);
      errorSeq = await this.storeErrors(tx, errors, errorSeq);
      await this.saveIn(tx, {
        cursor,
        rowsRead: this.run.rowsRead + read,
        rowsApplied: this.run.rowsApplied + applied,
        rowsFailed: this.run.rowsFailed + failed,
      });
    });
    // Only once it is committed: a rolled-back batch takes its marker with it, and the retry writes it again.
    if (marked) this.markerWritten = true;
    await this.env.onProgress?.(this.run);
    return errorSeq;
  }

  /** Writes the checksum marker in `tx` unless a committed one exists; says whether it wrote it. */
  private async mark(tx: Db): Promise<boolean> {
    if (this.markerWritten) return false;
    try {
      await tx.table('file_imports').insert({ id: this.markerId, workspaceId: this.run.workspaceId, scope: this.plan.scope.slice(0, 200), checksum: this.staged.checksum, runId: this.run.id });
    } catch (err) {
      if (isHubError(err, 'already_exists')) throw new AlreadyImported();
      throw err;
    }
    return true;
  }

  private async applyUnits(tx: Db, units: Unit[]): Promise<void> {
    const ctx: ActionContext = { db: tx, workspaceId: this.run.workspaceId, now: new Date(this.env.clock.now()).toISOString(), correlationId: this.run.id, currency: this.env.currency };
    const action = this.plan.action;
    if (action === 'stock.count' || action === 'stock.adjust') return this.applyStock(ctx, units, action);
    const target = action === 'order.lines' ? ACTIONS['order.import'] : ACTIONS[action];
    for (const u of units) await target.apply(ctx, u.input!);
  }

  /**
   * Stock rows of a batch become one adjustment per location (counts: one for all locations), and one more per
   * repeat of a SKU at a location, so a batch reads its items and levels in a few queries rather than a few per
   * row. A refused row refuses the batch; the caller then applies row by row to say which.
   */
  private async applyStock(ctx: ActionContext, units: Unit[], action: 'stock.count' | 'stock.adjust'): Promise<void> {
    type StockInput = { sku: string; locationCode: string; onHand?: number; quantity?: number; unitCost?: string; reason?: string };
    const inputs = units.map((u) => u.input as StockInput);
    // A nightly count mostly repeats what is stored: rows that would change nothing are dropped before the
    // adjustment, found with a few bulk reads rather than one read per row.
    const todo = action === 'stock.count' ? await this.changedCounts(ctx, inputs) : inputs;
    let wave = new Map<string, { lines: { sku: string; onHand?: number; quantity?: number; unitCost?: string }[]; skus: Set<string>; reason: string | null }>();
    const reference = { type: 'file_run', id: this.run.id };
    const run = async () => {
      if (action === 'stock.count') {
        // Counts give one reason: every location's lines are one adjustment (one read, one write).
        const groups = [];
        for (const [code, w] of wave) groups.push({ locationId: (await this.location(ctx, code)).id, lines: w.lines });
        if (groups.length) await adjustStockAt(ctx, { reason: 'count', reference, groups });
      } else {
        for (const [code, w] of wave) {
          const loc = await this.location(ctx, code);
          await adjustStock(ctx, { locationId: loc.id, reason: w.reason ?? 'adjustment', reference, lines: w.lines });
        }
      }
      wave = new Map();
    };
    for (const v of todo) {
      const reason = v.reason ?? null;
      let w = wave.get(v.locationCode);
      // A SKU twice at one location, or another reason, starts a new wave so that file order is kept.
      if (w && (w.skus.has(v.sku) || w.reason !== reason)) {
        await run();
        w = undefined;
      }
      if (!w) wave.set(v.locationCode, (w = { lines: [], skus: new Set(), reason }));
      w.skus.add(v.sku);
      w.lines.push(action === 'stock.count' ? { sku: v.sku, onHand: v.onHand, ...(v.unitCost ? { unitCost: v.unitCost } : {}) } : { sku: v.sku, quantity: v.quantity, ...(v.unitCost ? { unitCost: v.unitCost } : {}) });
    }
    await run();
  }

  /** The counts that differ from what is stored (or name something unknown, for the adjustment to report). */
  private async changedCounts<T extends { sku: string; locationCode: string; onHand?: number; unitCost?: string }>(ctx: ActionContext, inputs: T[]): Promise<T[]> {
    const db = ctx.db;
    const skus = [...new Set(inputs.map((i) => i.sku))];
    const items = new Map<string, string>();
    for (let i = 0; i < skus.length; i += 500) {
      const slice = skus.slice(i, i + 500);
      for (const it of (await db.table('inventory_items').pick(['sku'], { where: { workspaceId: ctx.workspaceId, sku: { in: slice } }, limit: 1000 })).items) items.set(it.sku, it.id);
    }
    const locations = new Map<string, string>();
    for (const code of new Set(inputs.map((i) => i.locationCode))) {
      const loc = await this.location(ctx, code).catch(() => null);
      if (loc) locations.set(code, loc.id);
    }
    const itemIds = [...new Set(items.values())];
    const locationIds = [...new Set(locations.values())];
    /**
     * On hand by item, then by the location's slot in this batch: an array per item, not a Map (a million-row
     * import built 100,000 Maps, a tenth of what its applying thread allocated) nor a joined text per row.
     */
    const slots = new Map(locationIds.map((id, i) => [id, i]));
    const levels = new Map<string, (number | undefined)[]>();
    // A batch that spans several locations reads its items' levels whole (one index range per item) rather than
    // probing every item × location pair; a level at another location is then read and not used.
    // Items go 100 at a time then, so that a page (1,000) mostly holds them all.
    const byItem = locationIds.length >= 3;
    const step = byItem ? 100 : 500;
    for (let i = 0; i < itemIds.length && locationIds.length; i += step) {
      let cursor: string | null = null;
      do {
        const where = { workspaceId: ctx.workspaceId, inventoryItemId: { in: itemIds.slice(i, i + step) }, ...(byItem ? {} : { locationId: { in: locationIds } }) };
        const page: Page<Pick<StockLevelsRow, 'id' | 'inventoryItemId' | 'locationId' | 'onHand'>> = await db.table('stock_levels').pick(['inventoryItemId', 'locationId', 'onHand'], { where, limit: 1000, cursor });
        for (const l of page.items) {
          const slot = slots.get(l.locationId);
          if (slot === undefined) continue; // read whole with its item, at a location this batch does not name
          let at = levels.get(l.inventoryItemId);
          if (!at) levels.set(l.inventoryItemId, (at = new Array(slots.size)));
          at[slot] = l.onHand;
        }
        cursor = page.nextCursor;
      } while (cursor);
    }
    // In file order, against what the rows before have set: a SKU counted twice in one batch ends at its last count.
    return inputs.filter((v) => {
      const item = items.get(v.sku);
      const loc = locations.get(v.locationCode);
      if (!item || !loc) return true;
      const slot = slots.get(loc)!;
      let at = levels.get(item);
      if (!at) levels.set(item, (at = new Array(slots.size)));
      const unchanged = (at[slot] ?? 0) === v.onHand && !v.unitCost;
      at[slot] = v.onHand!;
      return !unchanged;
    });
  }

  private async location(ctx: ActionContext, code: string): Promise<LocationsRow> {
    let loc = this.locations.get(code);
    if (loc === undefined) {
      loc = (await ctx.db.table('locations').query({ where: { workspaceId: ctx.workspaceId, code }, limit: 1 })).items[0] ?? null;
      if (loc) this.locations.set(code, loc);
    }
    if (!loc) {
      throw new HubError('unknown_reference', `There is no location with code "${code}"`, {
        errors: [{ field: '/locationCode', code: 'unknown', message: `there is no location with code "${code}"` }],
      });
    }
    return loc;
  }

  private async storeErrors(tx: Db, errors: RowFailure[], seq: number): Promise<number> {
    const table = tx.table('file_run_errors');
    for (const e of errors) {
      if (seq < this.maxStoredErrors) {
        await table.upsert({ id: errorRowId(this.run.id, seq), workspaceId: this.run.workspaceId, runId: this.run.id, seq, row: e.row, column: e.column?.slice(0, 255) ?? null, field: e.field?.slice(0, 255) ?? null, code: e.code.slice(0, 64), message: e.message });
      }
      seq++;
    }
    return seq;
  }

  private async saveIn(db: Db, patch: RowPatch<FileRunsRow>): Promise<void> {
    this.run = await db.table('file_runs').update(this.run.id, patch, { ifVersion: this.run.version });
  }

  private async save(patch: RowPatch<FileRunsRow>): Promise<FileRunsRow> {
    await this.saveIn(this.env.store, patch);
    return this.run;
  }

  private async finish(state: FileRunsRow['state'], error: RowFailure | { code: string; message: string } | null, extra: RowPatch<FileRunsRow> = {}): Promise<FileRunsRow> {
    const err = error ? { code: error.code, message: error.message, ...('row' in error && error.row !== null ? { row: error.row } : {}), ...('column' in error && error.column ? { column: error.column } : {}) } : null;
    return this.save({ state, error: err, finishedAt: new Date(this.env.clock.now()).toISOString(), ...extra });
  }
}
