import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy a test owns, in front of a shared server, so a fault test can cut traffic
 * without stopping the server everyone else uses. `cut()` drops every connection and refuses
 * new ones until `restore()`.
 */
export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private refusing = false;
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
    /** Holds every chunk from the target this long before passing it on (a slow upstream). */
    private readonly delayMs = 0,
  ) {}

  async start(): Promise<this> {
    this.server = createServer((client) => {
      if (this.refusing) {
        client.destroy();
        return;
      }
      const upstream = connect({ host: this.targetHost, port: this.targetPort });
      this.sockets.add(client);
      this.sockets.add(upstream);
      const end = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
      client.pipe(upstream);
      if (this.delayMs > 0) {
        upstream.on('data', (chunk: Buffer) => {
          const timer = setTimeout(() => {
            if (!client.destroyed) client.write(chunk);
          }, this.delayMs);
          timer.unref();
        });
      } else {
        upstream.pipe(client);
      }
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    if (!address || typeof address === 'string') throw new Error('proxy has no port');
    this.port = address.port;
    return this;
  }

  /** Destroys every open connection and refuses new ones. */
  cut(): void {
    this.refusing = true;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  restore(): void {
    this.refusing = false;
  }

  get connections(): number {
    return this.sockets.size / 2;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
