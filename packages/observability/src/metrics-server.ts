import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface MetricsServerOptions {
  /** The registry to serve. */
  registry: Registry;
  /** Port of the metrics listener, never the public one; 0 picks a free port. */
  port: number;
  /** @default '127.0.0.1' */
  host?: string;
}

export interface RunningMetricsServer {
  /** `http://host:port`, the scrape target is `${url}/metrics`. */
  url: string;
  close(): Promise<void>;
}

/**
 * Serves Prometheus text on a listener of its own, so the metrics are never reachable through
 * the public port (and its ingress). Only `GET /metrics`; everything else is 404.
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<RunningMetricsServer> {
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65_535)
    throw new TypeError(
      `startMetricsServer: port must be an integer 0–65535, received ${JSON.stringify(options.port)}`,
    );
  const { registry } = options;
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '').split('?', 1)[0];
    if ((request.method !== 'GET' && request.method !== 'HEAD') || path !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    registry.metrics().then(
      (text) => {
        response.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
        response.end(request.method === 'HEAD' ? undefined : text);
      },
      () => {
        response.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
      },
    );
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
