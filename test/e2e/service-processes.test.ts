// Each service started alone from its environment, as a container runs it.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

function startService(
  service: string,
  env: Record<string, string>,
): { child: ChildProcess; output: () => string } {
  let output = '';
  const child = spawn(process.execPath, ['--import', 'tsx', `services/${service}/src/main.ts`], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  return { child, output: () => output };
}

describe('services as standalone processes', () => {
  it.each([
    ['identity', { PORT: 'abc' }, 'PORT'],
    ['billing', { PRODUCT_ADDR: 'not an address' }, 'PRODUCT_ADDR'],
    ['product', { DATABASE_URL: 'mysql://localhost/x' }, 'DATABASE_URL'],
    ['identity', { TOKEN_TTL_SECONDS: '5' }, 'TOKEN_TTL_SECONDS'],
  ])('%s refuses to start on a bad %o, naming the variable', async (service, env, name) => {
    const { child, output } = startService(service, env);
    const [code] = await once(child, 'exit');
    expect(code).toBe(2);
    expect(output()).toContain(name);
    expect(output()).toContain('Invalid configuration');
    expect(output()).not.toMatch(/\n\s+at /); // a message, not a stack trace
  });

  it('identity starts from its environment, serves, and exits cleanly on SIGTERM', async () => {
    const { child, output } = startService('identity', { PORT: '0', LOG_LEVEL: 'info' });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no URL in time: ${output()}`)), 20_000);
        child.stdout?.on('data', () => {
          const match = /listening on (http:\/\/[\d.:]+)/.exec(output());
          if (match?.[1]) {
            clearTimeout(timer);
            resolve(match[1]);
          }
        });
      });
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      expect(code).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
