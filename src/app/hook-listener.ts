// The embedded server's direct path for POST /hooks/{connectionId}: the same receiver, status codes, problem
// documents and response headers as the Hono route (routes/hooks.ts), without building a WHATWG Request and
// Response around each webhook. Webhooks are the one route that takes thousands of small requests a second from
// senders that time out (a vendor gives up after seconds and resends), so its CPU per request is the accept rate
// and its tail latency. Anything this path does not take as it is (another route, a connection id it would have
// to decode, a CORS request) goes to the Hono app. A query string, like the route's, is passed on with the path.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { HubError, toProblem } from '../errors.ts';
import { asHubError, requestIdOf } from './create-app.ts';
import type { AppDeps } from './deps.ts';

const PREFIX = '/hooks/';
/** A connection id as the hub makes them; any other segment (percent-encoded, empty) is left to the Hono route. */
const PLAIN_ID = /^[A-Za-z0-9_-]{1,128}$/;
/** The route as the Hono path reports it in the request metrics. */
export const HOOK_ROUTE = '/hooks/:connectionId';

/** Wraps the Hono listener: POST /hooks/{connectionId} is answered here, everything else by `next`. */
export function hookListener(deps: AppDeps, next: RequestListener): RequestListener {
  const cors = deps.config.corsOrigins.length > 0;
  return (req, res) => {
    const id = req.method === 'POST' && !(cors && req.headers.origin) ? connectionIdOf(req.url) : null;
    if (id === null) return next(req, res);
    receive(deps, id, req, res).catch((err: unknown) => {
      // Only writing the answer itself can get here (the socket gone, say): nothing left to tell the sender.
      deps.log.error('webhook request failed while answering', { path: pathOf(req.url!), err });
      res.destroy();
    });
  };
}

/** The connection id of /hooks/{id}[?query]; null for anything else. */
function connectionIdOf(url: string | undefined): string | null {
  if (!url?.startsWith(PREFIX)) return null;
  const q = url.indexOf('?', PREFIX.length);
  const id = url.slice(PREFIX.length, q === -1 ? undefined : q);
  return PLAIN_ID.test(id) ? id : null;
}

async function receive(deps: AppDeps, connectionId: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = performance.now();
  const requestId = requestIdOf(req.headers['x-request-id']);
  let status: number;
  try {
    const body = await readBody(req, deps.config.maxBodyBytes);
    const outcome = await deps.webhooks.receiver.receive(connectionId, { method: 'POST', headers: headersOf(req), body, url: req.url! });
    if (outcome.kind === 'answer') {
      status = outcome.status;
      const text = outcome.body ?? '';
      // As new Response(body) would: a text body is text/plain unless the connector says otherwise.
      const type = outcome.body === undefined ? {} : { 'content-type': 'text/plain; charset=UTF-8' };
      res.writeHead(status, { 'x-request-id': requestId, 'x-content-type-options': 'nosniff', ...type, ...outcome.headers, 'content-length': Buffer.byteLength(text) });
      res.end(text);
    } else if (outcome.answer?.empty) {
      status = outcome.answer.status;
      res.writeHead(status, { 'x-request-id': requestId, 'x-content-type-options': 'nosniff', ...(status === 204 ? {} : { 'content-length': 0 }) });
      res.end();
    } else {
      status = outcome.answer?.status ?? 202;
      const text = JSON.stringify({ id: outcome.id, duplicate: outcome.duplicate });
      res.writeHead(status, { 'x-request-id': requestId, 'x-content-type-options': 'nosniff', 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    }
  } catch (err) {
    // The sender hung up mid-body: nobody to answer, nothing stored.
    if (err === GONE) return void res.destroy();
    const hubError = asHubError(err);
    status = hubError.status;
    if (status >= 500) deps.log.error('request failed', { requestId, path: pathOf(req.url!), err: hubError.cause ?? hubError });
    const text = JSON.stringify(toProblem(hubError, requestId));
    res.writeHead(status, {
      'content-type': 'application/problem+json',
      'x-content-type-options': 'nosniff',
      ...hubError.headers,
      'x-request-id': requestId,
      'content-length': Buffer.byteLength(text),
      // A body refused half-read is not read on: the connection ends with the answer.
      ...(req.complete ? {} : { connection: 'close' }),
    });
    res.end(text);
  }
  deps.metrics.observeRequest('POST', HOOK_ROUTE, status, (performance.now() - started) / 1000);
}

/** The path without the query, for logs: a query may carry the sender's token. */
function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

const GONE = new Error('the sender closed the connection before the body ended');

/** The request's headers as the receiver's verifiers read them, in the order and case they came. */
function headersOf(req: IncomingMessage): Headers {
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
  return headers;
}

/** The body, refused with payload_too_large past `max` bytes (declared up front, or counted as it arrives). */
function readBody(req: IncomingMessage, max: number): Promise<Uint8Array> {
  const tooLarge = () => new HubError('payload_too_large', `The body may be at most ${max} bytes`, { extra: { maxBytes: max } });
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > max) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.off('data', onData);
        req.pause();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    req.once('error', () => reject(GONE));
    req.once('close', () => reject(GONE)); // after 'end' this changes nothing
  });
}
