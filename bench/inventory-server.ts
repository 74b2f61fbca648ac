// A hub process for bench/inventory.ts: serves the hub over an existing SQLite file and prints its port.
import { serve } from '@hono/node-server';
import { testConfig } from '../src/config.ts';
import { createHub } from '../src/hub.ts';
import { createSqliteStore } from '../src/store/sqlite.ts';

const store = createSqliteStore({ path: process.argv[2]! });
const hub = createHub({ config: testConfig({ logLevel: 'warn' }), store, encryptionKey: Buffer.alloc(32, 9) });
const server = serve({ fetch: hub.app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => console.log(JSON.stringify({ port: info.port })));
process.on('SIGTERM', () => server.close(() => void hub.close(1000).then(() => process.exit(0))));
