// A BFF as Kubernetes runs it: its own process, stopped with SIGTERM while a request is in flight.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { HttpFaultProxy } from '@bff/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type System, startSystem } from '../support/system.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

describe('the web BFF process', () => {
  let system: System;
  let billing: HttpFaultProxy;
  beforeAll(async () => {
    system = await startSystem();
    billing = await new HttpFaultProxy(system.billingUrl).start();
  });
  afterAll(async () => {
    await billing?.close();
    await system?.close();
  });

  it('finishes the request in flight on SIGTERM, then exits 0', async () => {
    let output = '';
    // `node --import tsx`, one process, as the container runs it: the tsx CLI wrapper relays
    // signals through a second process that escalates to SIGKILL when the child is busy.
    const child = spawn(process.execPath, ['--import', 'tsx', 'apps/web/src/main.ts'], {
      cwd: root,
      env: {
        PATH: process.env.PATH ?? '',
        PORT: '0',
        IDENTITY_URL: system.identityUrl,
        BILLING_URL: billing.url,
        PRODUCT_ADDR: system.productAddr,
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no URL: ${output}`)), 20_000);
        child.stdout?.on('data', () => {
          const match = /listening on (http:\/\/[\d.:]+)\/graphql/.exec(output);
          if (match?.[1]) {
            clearTimeout(timer);
            resolve(match[1]);
          }
        });
      });
      const token = await system.token('ada@example.com', 'web');
      billing.set({ kind: 'delay', ms: 500 });
      const before = billing.requests;
      const inFlight = fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: '{ viewer { invoices(first: 1) { edges { node { id } } } } }' }),
      });
      while (billing.requests === before) await new Promise((resolve) => setTimeout(resolve, 10));
      child.kill('SIGTERM');
      const response = await inFlight;
      expect(response.status).toBe(200);
      expect(
        ((await response.json()) as { data: { viewer: { invoices: { edges: unknown[] } } } }).data.viewer
          .invoices.edges,
      ).toHaveLength(1);
      const [code] = await once(child, 'exit');
      expect(code, output.slice(-800)).toBe(0);
      expect(output).toContain('SIGTERM received');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
