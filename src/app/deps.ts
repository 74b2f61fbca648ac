// What the app needs from outside, passed in once: createApp({ store, clock, fetch, ... }) so tests can swap any of it.
import type { TokenService } from '../auth/tokens.ts';
import type { HubConfig } from '../config.ts';
import type { ConnectorDefinition } from '../connectors/define.ts';
import type { Clock } from '../lib/clock.ts';
import type { Logger } from '../lib/log.ts';
import type { HubMetrics } from '../lib/metrics.ts';
import type { Cipher } from '../lib/secrets.ts';
import type { Store } from '../store/types.ts';
import type { Principal } from '../auth/scopes.ts';
import type { RateLimiter } from './middleware/rate-limit.ts';
import type { KeyCache } from '../auth/key-cache.ts';
import type { JobQueue } from '../jobs/queue.ts';
import type { MappingDocument } from '../mappings/document.ts';
import type { AddressPolicy } from '../webhooks/ssrf.ts';
import type { InboundReceiver } from '../webhooks/inbound.ts';
import type { Dispatcher } from '../webhooks/dispatcher.ts';
import type { UploadShelf } from '../files/upload-shelf.ts';

export interface AppDeps {
  config: HubConfig;
  store: Store;
  clock: Clock;
  log: Logger;
  cipher: Cipher;
  tokens: TokenService;
  metrics: HubMetrics;
  rateLimiter: RateLimiter;
  keyCache: KeyCache;
  /** The fetch connectors use to reach vendors. */
  fetch: typeof fetch;
  connectors: readonly ConnectorDefinition<any, any>[];
  /** The mappings shipped as files in mappings/, by key (read-only; a workspace mapping with the same key wins). */
  mappings: ReadonlyMap<string, MappingDocument>;
  queue: JobQueue;
  webhooks: {
    /** Which addresses outbound webhooks may reach. */
    policy: AddressPolicy;
    receiver: InboundReceiver;
  };
  /** The outbound webhook dispatcher of this process, woken when deliveries become due (absent where none runs). */
  dispatcher?: Dispatcher;
  /** Where uploads wait for their import job when that runs elsewhere (Appwrite); absent: the spool is shared. */
  uploads?: UploadShelf;
}

export interface HubEnv {
  Variables: {
    deps: AppDeps;
    requestId: string;
    /** Headers for this request's response (request id, rate limit state), as a plain object: see sendJson. */
    resHeaders: Record<string, string>;
    /** Set when sendJson built the response with resHeaders in it already. */
    headersSent?: boolean;
    principal: Principal;
    /** Set by the idempotency middleware so that handlers can tell a first run. */
    idempotencyKey?: string;
  };
}
