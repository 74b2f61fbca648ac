// A webhook receiver on loopback for tests: records every request byte for byte and answers as the test says.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  headers: Record<string, string>;
  body: string;
  path: string;
}

export type Responder = (req: Received, res: ServerResponse) => void | 'hang';

export interface Receiver {
  url: string;
  port: number;
  received: Received[];
  /** How the next requests are answered (default 200 "ok"). */
  respond(responder: Responder): void;
  close(): Promise<void>;
}

export async function startReceiver(responder: Responder = (_req, res) => void res.end('ok')): Promise<Receiver> {
  let current = responder;
  const received: Received[] = [];
  const hanging = new Set<ServerResponse>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
      const got = { headers, body: Buffer.concat(chunks).toString('utf8'), path: req.url ?? '/' };
      received.push(got);
      if (current(got, res) === 'hang') hanging.add(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    received,
    respond: (r) => void (current = r),
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
