// The hub's error vocabulary: one table of stable codes, each with its HTTP status and whether a retry can help.

export const ERROR_CODES = {
  // request shape
  validation_failed: { status: 400, title: 'The request is not valid', retryable: false },
  invalid_json: { status: 400, title: 'The body is not valid JSON', retryable: false },
  invalid_cursor: { status: 400, title: 'The cursor is not valid', retryable: false },
  invalid_query: { status: 400, title: 'A query parameter is not valid', retryable: false },
  unsupported_media_type: { status: 415, title: 'Unsupported media type', retryable: false },
  payload_too_large: { status: 413, title: 'The body is too large', retryable: false },
  transaction_too_large: { status: 413, title: 'The change writes more than one transaction of the store holds', retryable: false },
  // credentials
  unauthenticated: { status: 401, title: 'Credentials are missing or not valid', retryable: false },
  insufficient_scope: { status: 403, title: 'The credentials lack the scope this needs', retryable: false },
  invalid_client: { status: 401, title: 'Client authentication failed', retryable: false },
  invalid_grant: { status: 400, title: 'The grant is not valid', retryable: false },
  unsupported_grant_type: { status: 400, title: 'The grant type is not supported', retryable: false },
  invalid_scope: { status: 400, title: 'The requested scope is not valid', retryable: false },
  // resources
  not_found: { status: 404, title: 'Not found', retryable: false },
  route_not_found: { status: 404, title: 'No such route', retryable: false },
  already_exists: { status: 409, title: 'It already exists', retryable: false },
  conflict: { status: 409, title: 'The request conflicts with the current state', retryable: false },
  version_conflict: { status: 412, title: 'The resource has changed since it was read', retryable: false },
  precondition_required: { status: 428, title: 'A precondition header is required', retryable: false },
  bound_exceeded: { status: 409, title: 'The change would take a value out of its bounds', retryable: false },
  unknown_reference: { status: 422, title: 'The request names something that does not exist', retryable: false },
  in_use: { status: 409, title: 'It is still in use', retryable: false },
  // inventory
  insufficient_stock: { status: 409, title: 'There is not enough stock', retryable: false },
  quantity_exceeded: { status: 409, title: 'The quantity exceeds what is open', retryable: false },
  invalid_transition: { status: 409, title: 'The resource is not in a state that allows this', retryable: false },
  purchase_order_closed: { status: 409, title: 'The purchase order is closed', retryable: false },
  // idempotency
  idempotency_key_reused: { status: 422, title: 'The idempotency key was used with another request', retryable: false },
  idempotency_key_in_progress: { status: 409, title: 'A request with this idempotency key is still in progress', retryable: true },
  invalid_idempotency_key: { status: 400, title: 'The idempotency key is not valid', retryable: false },
  // limits and availability
  rate_limited: { status: 429, title: 'Too many requests', retryable: true },
  store_unavailable: { status: 503, title: 'The store is unavailable', retryable: true },
  upstream_error: { status: 502, title: 'The remote system failed', retryable: true },
  upstream_auth_failed: { status: 502, title: 'The remote system refused the credentials', retryable: false },
  upstream_rejected: { status: 502, title: 'The remote system rejected the request', retryable: false },
  upstream_rate_limited: { status: 503, title: 'The remote system is rate limiting the hub', retryable: true },
  upstream_unreachable: { status: 502, title: 'The remote system could not be reached', retryable: true },
  upstream_timeout: { status: 504, title: 'The remote system did not answer in time', retryable: true },
  connector_unknown: { status: 400, title: 'No such connector', retryable: false },
  internal_error: { status: 500, title: 'Internal error', retryable: true },
} as const satisfies Record<string, { status: number; title: string; retryable: boolean }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** One failing field: a JSON pointer into the request (body, query or header), a code and a sentence. */
export interface FieldError {
  field: string;
  code: string;
  message: string;
}

export interface HubErrorOptions {
  errors?: FieldError[];
  /** Extra members for the problem document (RFC 9457 extension members). */
  extra?: Record<string, unknown>;
  headers?: Record<string, string>;
  cause?: unknown;
  retryable?: boolean;
}

export class HubError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly errors: FieldError[] | undefined;
  readonly extra: Record<string, unknown> | undefined;
  readonly headers: Record<string, string> | undefined;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message?: string, options: HubErrorOptions = {}) {
    super(message ?? ERROR_CODES[code].title, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HubError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.errors = options.errors;
    this.extra = options.extra;
    this.headers = options.headers;
    this.retryable = options.retryable ?? ERROR_CODES[code].retryable;
  }
}

export function isHubError(err: unknown, code?: ErrorCode): err is HubError {
  return err instanceof HubError && (code === undefined || err.code === code);
}

export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  instance?: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

/** RFC 9457 problem document; `type` points at the error table in the API docs. */
export function toProblem(err: HubError, instance?: string): ProblemDocument {
  const doc: ProblemDocument = {
    ...err.extra,
    type: `/docs/errors#error-${err.code}`,
    title: ERROR_CODES[err.code].title,
    status: err.status,
    detail: err.message,
    code: err.code,
  };
  if (instance) doc.instance = instance;
  if (err.errors?.length) doc.errors = err.errors;
  return doc;
}
