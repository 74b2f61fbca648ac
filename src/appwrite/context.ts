// The Appwrite Node runtime's function context, typed as the runtime builds it (open-runtimes
// runtimes/node/versions/latest/src/server.js) and as https://appwrite.io/docs/products/functions/develop documents it.

/** How an execution was started (`x-appwrite-trigger`). Executions created through the API arrive as `http`. */
export type AppwriteTrigger = 'http' | 'schedule' | 'event';

/**
 * Request headers as Node's http module gives them, keys lowercased and `x-open-runtimes-*` removed. Repeated
 * headers arrive joined with ", " except `set-cookie`, which Node keeps as an array.
 */
export type AppwriteHeaders = Record<string, string | string[] | undefined>;

export interface AppwriteRequest {
  /** The raw body bytes, untouched: what signatures are computed over. */
  readonly bodyBinary: Buffer;
  /** bodyBinary decoded as UTF-8. */
  readonly bodyText: string;
  /** JSON.parse(bodyText): throws a SyntaxError on an empty body or invalid JSON. */
  readonly bodyJson: unknown;
  readonly headers: AppwriteHeaders;
  /** Upper case, as the client sent it: GET, POST, ... */
  readonly method: string;
  /** From the Host header, without the port. */
  readonly host: string;
  /** x-forwarded-proto, or http. */
  readonly scheme: string;
  /** From the Host header, or 80/443 by scheme. A number. */
  readonly port: number;
  /** The path part of the URL, still percent-encoded. */
  readonly path: string;
  /** Everything after the first "?", raw (not decoded): the only faithful copy of the query. */
  readonly queryString: string;
  /**
   * The query split on "&" and the first "=", values NOT percent-decoded ("type=connection.%2A" gives
   * "connection.%2A"), a repeated key keeps its last value. Lossy: use queryString.
   */
  readonly query: Record<string, string>;
  /** scheme://host[:port]path[?queryString], the port left out when it is the scheme's default. */
  readonly url: string;
}

/** What every res helper returns; the function must return one of these. */
export interface AppwriteResponseObject {
  body: Buffer | Uint8Array | string;
  statusCode: number;
  /** Written with res.setHeader(name.toLowerCase(), value): an array sends the header once per value. */
  headers: Record<string, string | string[]>;
}

export type ResponseHeaders = Record<string, string | string[]>;

export interface AppwriteResponse {
  /** UTF-8 text; status 200 by default. The runtime adds "; charset=utf-8" to a content-type without a charset. */
  text(body: string, statusCode?: number, headers?: ResponseHeaders): AppwriteResponseObject;
  /** JSON.stringify(obj) with content-type application/json (which overrides one given in headers). */
  json(obj: unknown, statusCode?: number, headers?: ResponseHeaders): AppwriteResponseObject;
  binary(bytes: Buffer | Uint8Array, statusCode?: number, headers?: ResponseHeaders): AppwriteResponseObject;
  /** 204 with no body. */
  empty(): AppwriteResponseObject;
  /** 301 by default, with a location header. */
  redirect(url: string, statusCode?: number, headers?: ResponseHeaders): AppwriteResponseObject;
}

export interface AppwriteContext {
  req: AppwriteRequest;
  res: AppwriteResponse;
  /** Goes to the execution's logs in the Appwrite Console (never to the caller); each line is cut at 8000 characters. */
  log(...messages: unknown[]): void;
  error(...messages: unknown[]): void;
}

/** The default export of an entrypoint. */
export type AppwriteFunction = (context: AppwriteContext) => Promise<AppwriteResponseObject>;

/** Headers Appwrite adds to every execution (https://appwrite.io/docs/products/functions/develop#headers). */
export const APPWRITE_HEADERS = {
  /** The dynamic API key of this execution, with the function's scopes; a new one for every execution. */
  key: 'x-appwrite-key',
  trigger: 'x-appwrite-trigger',
  event: 'x-appwrite-event',
  executionId: 'x-appwrite-execution-id',
  userId: 'x-appwrite-user-id',
  userJwt: 'x-appwrite-user-jwt',
} as const;

/** One header's value as a string (the first of an array), or undefined. */
export function headerOf(headers: AppwriteHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}
