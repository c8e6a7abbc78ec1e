import type { IncomingMessage } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import { CloseCode, handleProtocols, makeServer, type ServerOptions } from 'graphql-ws';
import type { WebSocket, WebSocketServer } from 'ws';

/** What each graphql-ws hook knows of its connection besides the protocol state. */
export interface WsExtra {
  readonly socket: WebSocket;
  /** The upgrade request. */
  readonly request: IncomingMessage;
}

/** A WebSocket close reason is at most 123 bytes (RFC 6455); `ws` throws past it. */
const MAX_CLOSE_REASON_BYTES = 123;

/**
 * Serves graphql-transport-ws (graphql-ws's protocol state machine, `makeServer`) on the sockets
 * of `wss`: our own transport rather than graphql-ws's `useServer`, so that what a client sends
 * out of turn is its mistake (`4400`), never the server's (`4500`); every close reason fits the
 * protocol's limit; failures are logged through the app's logger, not `console`; and each socket
 * is pinged every `keepAliveMs`, cut when it has not answered the previous ping.
 */
export function serveGraphqlWs<P extends Record<string, unknown>>(
  wss: WebSocketServer,
  options: ServerOptions<P, WsExtra>,
  settings: { keepAliveMs: number; log: FastifyBaseLogger },
): { dispose(): Promise<void> } {
  const { log, keepAliveMs } = settings;
  const server = makeServer<P, WsExtra>(options);
  wss.options.handleProtocols = handleProtocols;

  wss.on('connection', (socket: WebSocket, request: IncomingMessage) => {
    // `ws` closes a socket that sends a malformed frame (1002, 1007, 1009) and says so here.
    socket.on('error', (error) => log.debug({ err: error }, 'subscriptions: socket error'));
    let answered = true;
    const pings = setInterval(() => {
      if (socket.readyState !== socket.OPEN) return;
      if (!answered) {
        socket.terminate();
        return;
      }
      answered = false;
      socket.ping();
    }, keepAliveMs);
    pings.unref();
    socket.on('pong', () => {
      answered = true;
    });

    const closed = server.opened(
      {
        protocol: socket.protocol,
        send: (data) =>
          new Promise<void>((resolve, reject) => {
            if (socket.readyState !== socket.OPEN) return resolve();
            socket.send(data, (error) => (error ? reject(error) : resolve()));
          }),
        close: (code, reason) => socket.close(code, fitReason(reason)),
        onMessage: (handle) =>
          socket.on('message', async (data: Buffer | ArrayBuffer | Buffer[]) => {
            try {
              await handle(textOf(data));
            } catch (error) {
              // graphql-ws throws for a message a client may not send (`next`, `error`,
              // `connection_ack`, …): the client's mistake. Anything else is ours.
              if (error instanceof Error && /^Unexpected message of type/.test(error.message)) {
                socket.close(CloseCode.BadRequest, fitReason(error.message));
                return;
              }
              log.error({ err: error }, 'subscriptions: a message could not be handled');
              socket.close(CloseCode.InternalServerError, 'Internal server error');
            }
          }),
      },
      { socket, request },
    );
    socket.once('close', (code, reason) => {
      clearInterval(pings);
      void Promise.resolve(closed(code, String(reason))).catch((error: unknown) =>
        log.error({ err: error }, 'subscriptions: closing a connection failed'),
      );
    });
  });

  return {
    async dispose() {
      for (const socket of wss.clients) socket.close(1001, 'Going away');
      wss.removeAllListeners('connection');
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/** The reason cut to what a close frame carries, on a character boundary. */
export function fitReason(reason: string | undefined): string {
  if (!reason) return '';
  if (Buffer.byteLength(reason) <= MAX_CLOSE_REASON_BYTES) return reason;
  let cut = reason.slice(0, MAX_CLOSE_REASON_BYTES);
  // Room for the ellipsis (3 bytes in UTF-8).
  while (Buffer.byteLength(cut) > MAX_CLOSE_REASON_BYTES - 3) cut = cut.slice(0, -1);
  return `${cut}…`;
}

function textOf(data: Buffer | ArrayBuffer | Buffer[]): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString();
  return Buffer.from(data as ArrayBuffer).toString();
}
