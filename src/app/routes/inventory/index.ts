// The canonical inventory's HTTP surface, registered as one group.
import type { RouteTable } from '../../define-route.ts';
import { registerAllocationRoutes } from './allocations.ts';
import { registerItemRoutes } from './items.ts';
import { registerLocationRoutes } from './locations.ts';
import { registerOrderRoutes } from './orders.ts';
import { registerProductRoutes } from './products.ts';
import { registerPurchaseOrderRoutes } from './purchase-orders.ts';
import { registerReportRoutes } from './reports.ts';
import { registerStockRoutes } from './stock.ts';

export function registerInventoryRoutes(routes: RouteTable): void {
  registerProductRoutes(routes);
  registerLocationRoutes(routes);
  registerItemRoutes(routes);
  registerStockRoutes(routes);
  registerOrderRoutes(routes);
  registerAllocationRoutes(routes);
  registerPurchaseOrderRoutes(routes);
  registerReportRoutes(routes);
}
