// Flat files carry an order as one row per line (canonical/order-line). The rows of one order are gathered here into
// the order the `order.import` action takes; the order's own fields come from its first row, as spreadsheets
// repeat them on every line and the first is what a person reading the file sees.
import type { OrderImport } from '../inventory/orders.ts';

export interface OrderLineRecord {
  channel: string;
  externalId: string;
  lineId?: string;
  sku: string;
  quantity: number;
  unitPrice?: string;
  currency?: string;
  placedAt?: string;
  status?: 'open' | 'cancelled';
  customerEmail?: string;
  customerName?: string;
}

/** The key rows of one order share. */
export function orderKey(line: OrderLineRecord): string {
  return `${line.channel}\u0000${line.externalId}`;
}

/** One order from its lines (at least one), in file order; a line without its own id is numbered by position. */
export function orderFromLines(lines: readonly OrderLineRecord[]): OrderImport {
  const first = lines[0]!;
  const customer: Record<string, unknown> = {};
  if (first.customerEmail !== undefined) customer.email = first.customerEmail;
  if (first.customerName !== undefined) customer.name = first.customerName;
  return {
    channel: first.channel,
    externalId: first.externalId,
    ...(first.status ? { status: first.status } : {}),
    ...(first.currency ? { currency: first.currency } : {}),
    ...(first.placedAt ? { placedAt: first.placedAt } : {}),
    ...(Object.keys(customer).length > 0 ? { customer } : {}),
    lines: lines.map((l, i) => ({
      lineId: l.lineId ?? String(i + 1),
      sku: l.sku,
      quantity: l.quantity,
      ...(l.unitPrice !== undefined ? { unitPrice: l.unitPrice } : {}),
    })),
  };
}
