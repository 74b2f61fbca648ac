// What the resource routes share: list parameters, loading a row of the caller's workspace, the time of a request.
import type { Context } from 'hono';
import { HubError } from '../../errors.ts';
import { tableSpec } from '../../schemas/tables.ts';
import type { Db, TableName, TableRows, Where } from '../../store/types.ts';
import { listResponse, present } from '../http.ts';
import type { HubEnv } from '../deps.ts';
import type { QueryParam, ResponseSpec } from '../define-route.ts';

export const LIST_PARAMS: QueryParam[] = [
  { name: 'limit', description: 'Items per page, 1 to 200 (default 50).', schema: { type: 'integer', minimum: 1, maximum: 200 } },
  { name: 'cursor', description: 'The `nextCursor` of the previous page.', schema: { type: 'string', maxLength: 512 } },
];

export const PROBLEM = (description: string): ResponseSpec => ({ description, schema: 'problem' });

export function nowIso(c: Context<HubEnv>): string {
  return new Date(c.get('deps').clock.now()).toISOString();
}

/**
 * Loads a row of the caller's workspace. A row of another workspace is reported exactly like a missing one
 * (404), so ids of other tenants cannot even be confirmed.
 */
export async function loadOwned<N extends TableName>(
  c: Context<HubEnv>,
  table: N,
  id: string,
  /** Inside a transaction, pass it: on SQLite a read through the store itself would wait for the transaction. */
  db: Db = c.get('deps').store,
): Promise<TableRows[N]> {
  const row = (await db.table(table).get(id)) as (TableRows[N] & { workspaceId?: string | null }) | null;
  if (!row || row.workspaceId !== c.get('principal').workspaceId) {
    throw new HubError('not_found', `${tableSpec(table).title} ${id} does not exist`);
  }
  return row;
}

/** A page of the caller's workspace's rows, newest first, as the API shows them (private fields dropped). */
export async function listOwned<N extends TableName>(
  c: Context<HubEnv>,
  table: N,
  query: Record<string, unknown>,
  where: Where = {},
): Promise<Response> {
  const page = await c.get('deps').store.table(table).query({
    where: { ...where, workspaceId: c.get('principal').workspaceId },
    orderBy: { field: 'id', direction: 'desc' },
    limit: (query.limit as number | undefined) ?? 50,
    cursor: (query.cursor as string | undefined) ?? null,
    expectMany: true,
  });
  return listResponse(c, page.items.map((row) => present(table, row)), page.nextCursor);
}
