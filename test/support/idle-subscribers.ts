// Idle subscribers in a process of their own: graphql-transport-ws connections that subscribe and
// then only answer pings. A suite measuring a server's memory runs them here, so that the process
// it measures holds the server's side of each socket and not also the client's.
//
// The same file is the child (`--idle-subscribers-child`) and the parent's handle on it.
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const CHILD_FLAG = '--idle-subscribers-child';
/** Longest one command may take: nothing waits forever. */
const COMMAND_TIMEOUT_MS = 60_000;

interface OpenCommand {
  type: 'open';
  url: string;
  connections: number;
  perConnection: number;
  /** Subscription `s` on connection `c` follows product `p-${firstId + c * perConnection + s}`. */
  firstId: number;
}
type Command = OpenCommand | { type: 'close' };
interface Reply {
  type: 'opened' | 'closed';
  /** Anything a connection received or suffered besides its ack and pings (at most ten, abridged). */
  unexpected: string[];
}

export interface IdleSubscribers {
  /** Opens `connections` × `perConnection` subscriptions; resolves once every connection is acknowledged. */
  open(command: Omit<OpenCommand, 'type'>): Promise<Reply>;
  /** Closes every connection (1000) and resolves once each is closed. */
  closeAll(): Promise<Reply>;
  /** Ends the child process. */
  stop(): Promise<void>;
}

/** Forks the child (with tsx, as the scripts run) and returns its handle. */
export function spawnIdleSubscribers(): IdleSubscribers {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [CHILD_FLAG], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const request = (command: Command) =>
    new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`idle subscribers: no answer to ${command.type} within ${COMMAND_TIMEOUT_MS} ms`));
      }, COMMAND_TIMEOUT_MS);
      const onMessage = (reply: Reply) => {
        cleanup();
        resolve(reply);
      };
      const onExit = (code: number | null) => {
        cleanup();
        reject(new Error(`idle subscribers: the child exited (${code}) during ${command.type}`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.send(command);
    });
  return {
    open: (command) => request({ type: 'open', ...command }),
    closeAll: () => request({ type: 'close' }),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill();
      await exited;
    },
  };
}

function runChild(): void {
  const sockets = new Set<WebSocket>();
  /** Sockets this side is closing: their close is expected. */
  const closing = new Set<WebSocket>();
  const unexpected: string[] = [];
  const note = (what: string) => {
    if (unexpected.length < 10) unexpected.push(what.slice(0, 300));
  };
  const reply = (type: Reply['type']) =>
    process.send?.({ type, unexpected: unexpected.splice(0) } satisfies Reply);

  const connect = (command: OpenCommand, index: number) =>
    new Promise<void>((resolve) => {
      const socket = new WebSocket(command.url, 'graphql-transport-ws');
      sockets.add(socket);
      let acknowledged = false;
      socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: {} })));
      socket.on('message', (data) => {
        const message = JSON.parse(String(data)) as { type: string };
        if (message.type === 'connection_ack' && !acknowledged) {
          acknowledged = true;
          for (let s = 0; s < command.perConnection; s++) {
            const id = command.firstId + index * command.perConnection + s;
            socket.send(
              JSON.stringify({
                id: `s${s}`,
                type: 'subscribe',
                payload: {
                  query:
                    'subscription Idle($ids: [ID!]!) { productChanged(ids: $ids) { id price { amountMinor } } }',
                  variables: { ids: [`p-${String(id).padStart(4, '0')}`] },
                },
              }),
            );
          }
          resolve();
        } else if (message.type === 'ping') {
          socket.send(JSON.stringify({ type: 'pong' }));
        } else {
          note(`received ${String(data)}`);
        }
      });
      socket.on('error', (error) => note(`error ${error.message}`));
      socket.on('close', (code, reason) => {
        sockets.delete(socket);
        if (!closing.has(socket)) note(`closed ${code} ${String(reason)}`);
        resolve();
      });
    });

  process.on('message', async (command: Command) => {
    if (command.type === 'open') {
      await Promise.all(Array.from({ length: command.connections }, (_, index) => connect(command, index)));
      reply('opened');
      return;
    }
    const open = [...sockets];
    await Promise.all(
      open.map(
        (socket) =>
          new Promise<void>((resolve) => {
            closing.add(socket);
            socket.once('close', () => resolve());
            socket.close(1000, 'done');
          }),
      ),
    );
    closing.clear();
    reply('closed');
  });
  // The parent went away (or stopped us): nothing here outlives it.
  process.on('disconnect', () => process.exit(0));
}

if (process.argv.includes(CHILD_FLAG)) runChild();
