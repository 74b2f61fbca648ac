// The connector registry: every connector the hub offers, as an explicit import list so that a typo is a compile
// error and a bundler sees every connector, rather than a directory scan that fails at run time.
import type { ConnectorDefinition } from '../src/connectors/define.ts';
import { httpConnector } from './http/index.ts';
import { webhookConnector } from './webhook/index.ts';

export const CONNECTORS = [httpConnector, webhookConnector] as const;

const BY_ID = new Map<string, ConnectorDefinition>();
for (const connector of CONNECTORS as readonly ConnectorDefinition[]) {
  if (BY_ID.has(connector.id)) throw new Error(`Two connectors share the id ${connector.id}`);
  BY_ID.set(connector.id, connector);
}

/** The connector with this id, or undefined (the API answers connector_unknown). */
export function getConnector(id: string): ConnectorDefinition | undefined {
  return BY_ID.get(id);
}

/** Every registered connector, in registration order. */
export function listConnectors(): readonly ConnectorDefinition[] {
  return [...BY_ID.values()];
}
