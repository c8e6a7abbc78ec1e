// GraphiQL where people look for it: a browser opening /graphql is sent to /graphiql when
// GraphiQL is on, and answered as before when it is off; clients' GET queries never change.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type System, startApp, startSystem, type TestApp } from '../support/system.ts';

const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8';

let system: System;
let development: TestApp;
let production: TestApp;
beforeAll(async () => {
  system = await startSystem();
  development = await startApp('web', system);
  production = await startApp('web', system, { production: true, graphiql: false });
});
afterAll(async () => {
  await development?.close();
  await production?.close();
  await system?.close();
});

const get = (app: TestApp, search: string, headers: Record<string, string>) =>
  fetch(`${app.url}/graphql${search}`, { headers, redirect: 'manual' });

describe('GET /graphql from a browser', () => {
  it('is redirected to GraphiQL when GraphiQL is on, and the page is there', async () => {
    const response = await get(development, '', { accept: BROWSER_ACCEPT });
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe('/graphiql');
    const page = await fetch(new URL(response.headers.get('location') ?? '', development.url), {
      headers: { accept: BROWSER_ACCEPT },
    });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain('GraphiQL');
  });

  it('gets no GraphiQL when it is off (production): the coded 400 a GET without a query always got', async () => {
    const response = await get(production, '', { accept: BROWSER_ACCEPT });
    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
    expect(response.headers.get('content-type')).not.toMatch(/text\/html/);
    const body = (await response.json()) as { errors: { extensions?: { code?: string } }[] };
    expect(body.errors[0]?.extensions?.code).toBe('BAD_REQUEST');
    expect(await (await fetch(`${production.url}/graphiql`)).status).toBe(404);
  });
});

describe('GET /graphql from a client', () => {
  for (const accept of ['application/json', '*/*', BROWSER_ACCEPT]) {
    it(`still answers a query with JSON (accept: ${accept.slice(0, 20)}…), GraphiQL on or off`, async () => {
      for (const app of [development, production]) {
        const response = await get(app, `?query=${encodeURIComponent('{ __typename }')}`, {
          accept,
          'apollo-require-preflight': 'true',
        });
        expect(response.status).toBe(200);
        expect(response.headers.get('content-type')).toMatch(/json/);
        expect(await response.json()).toEqual({ data: { __typename: 'Query' } });
      }
    });
  }

  it('is not redirected when it asks for JSON without a query: Apollo answers as before', async () => {
    for (const accept of ['application/json', '*/*', 'application/json, text/html']) {
      const response = await get(development, '', { accept, 'apollo-require-preflight': 'true' });
      expect(response.status).toBe(400);
      expect(response.headers.get('location')).toBeNull();
    }
  });

  it('leaves POST /graphql alone even when it asks for HTML', async () => {
    const response = await fetch(`${development.url}/graphql`, {
      method: 'POST',
      headers: { accept: BROWSER_ACCEPT, 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ __typename }' }),
      redirect: 'manual',
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ data: { __typename: 'Query' } });
  });
});
