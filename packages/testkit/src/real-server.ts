import { connect } from 'node:net';

/**
 * Whether a real server answers at `url`. Under `CI=true` a server that does not answer is
 * an error (CI must never pass by skipping); elsewhere the reason is printed and false is
 * returned, so the caller can skip.
 */
export async function realServer(name: string, url: string | undefined): Promise<boolean> {
  if (!url) {
    if (process.env.CI === 'true') throw new Error(`${name}: CI=true but no URL is configured for it`);
    console.warn(`[skip] ${name}: no URL configured (set it to run these tests against the real server)`);
    return false;
  }
  const { hostname, port } = new URL(url);
  const defaultPorts: Record<string, string> = {
    'postgres:': '5432',
    'postgresql:': '5432',
    'amqp:': '5672',
    'redis:': '6379',
  };
  const reachable = await new Promise<boolean>((resolve) => {
    const socket = connect({
      host: hostname,
      port: Number(port || defaultPorts[new URL(url).protocol] || 0),
    });
    socket.setTimeout(2_000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
  if (!reachable) {
    if (process.env.CI === 'true')
      throw new Error(`${name}: CI=true but ${hostname}:${port} does not answer`);
    console.warn(`[skip] ${name}: ${hostname}:${port} does not answer`);
  }
  return reachable;
}
