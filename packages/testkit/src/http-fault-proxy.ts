import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** How the proxy treats the next requests. */
export type FaultMode =
  | { kind: 'pass' }
  /** Holds every request open, never answering (until the client gives up). */
  | { kind: 'hang' }
  /** Answers `status` to every `every`-th request (1: all), passing the rest. */
  | { kind: 'fail'; status: number; every: number; retryAfterSeconds?: number }
  /** Passes every request after `ms`. */
  | { kind: 'delay'; ms: number };

/**
 * An HTTP proxy a fault test owns, in front of a real service: it passes, hangs, fails or
 * delays requests on command, and counts what it saw, so a test can inject faults without
 * touching the service or any shared server.
 */
export class HttpFaultProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private mode: FaultMode = { kind: 'pass' };
  private seen = 0;
  /** Requests received. */
  requests = 0;
  /** Requests answered with an injected failure. */
  failed = 0;
  /** Requests whose client went away before an answer. */
  abandoned = 0;
  port = 0;

  constructor(private readonly target: string) {}

  async start(): Promise<this> {
    const target = new URL(this.target);
    this.server = createServer((req, res) => this.handle(req, res, target));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  set(mode: FaultMode): void {
    this.mode = mode;
    this.seen = 0;
  }

  /** Open client connections. */
  get connections(): number {
    return this.sockets.size;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse, target: URL) {
    this.requests++;
    // 'close' on the response fires once per request (not per keep-alive socket): either after
    // the answer was sent, or when the client went away first.
    res.once('close', () => {
      if (!res.writableFinished) this.abandoned++;
    });
    const mode = this.mode;
    this.seen++;
    if (mode.kind === 'hang') return;
    if (mode.kind === 'fail' && this.seen % mode.every === 0) {
      this.failed++;
      req.resume();
      res.writeHead(mode.status, {
        'content-type': 'application/json',
        ...(mode.retryAfterSeconds === undefined ? {} : { 'retry-after': String(mode.retryAfterSeconds) }),
      });
      res.end(JSON.stringify({ error: { code: 'INJECTED', message: 'injected failure' } }));
      return;
    }
    const forward = () => {
      const upstream = httpRequest(
        {
          hostname: target.hostname,
          port: target.port,
          path: req.url,
          method: req.method,
          headers: req.headers,
        },
        (response) => {
          res.writeHead(response.statusCode ?? 502, response.headers);
          response.pipe(res);
        },
      );
      upstream.on('error', () => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
      req.pipe(upstream);
    };
    if (mode.kind === 'delay') {
      const timer = setTimeout(forward, mode.ms);
      res.once('close', () => clearTimeout(timer));
    } else {
      forward();
    }
  }
}
