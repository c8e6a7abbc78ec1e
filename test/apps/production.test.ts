// What changes under NODE_ENV=production: GraphiQL and introspection off unless switched on.
import { readBffConfig } from '@bff/bff-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type System, startApp, startSystem, type TestApp } from '../support/system.ts';

describe('production mode', () => {
  it('turns GraphiQL off by default in production, on in development, and obeys GRAPHIQL', () => {
    expect(readBffConfig(4000, { NODE_ENV: 'production' }).graphiql).toBe(false);
    expect(readBffConfig(4000, { NODE_ENV: 'production', GRAPHIQL: 'true' }).graphiql).toBe(true);
    expect(readBffConfig(4000, {}).graphiql).toBe(true);
    expect(readBffConfig(4000, { GRAPHIQL: 'false' }).graphiql).toBe(false);
    expect(() => readBffConfig(4000, { IDENTITY_URL: 'ftp://x' })).toThrow(/IDENTITY_URL/);
  });

  describe('a BFF started in production mode', () => {
    let system: System;
    let app: TestApp;
    beforeAll(async () => {
      system = await startSystem();
      app = await startApp('web', system, { production: true, graphiql: false });
    });
    afterAll(async () => {
      await app?.close();
      await system?.close();
    });

    it('serves no GraphiQL and refuses introspection', async () => {
      expect((await fetch(`${app.url}/graphiql`)).status).toBe(404);
      const introspection = await app.graphql('{ __schema { types { name } } }');
      expect(introspection.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(JSON.stringify(introspection.body)).not.toContain('stacktrace');
    });

    it('still answers operations, and echoes a request id', async () => {
      const response = await app.graphql('{ product(id: "p-0001") { id } }', {
        headers: { 'x-request-id': 'req-123' },
      });
      expect(response.body.data.product.id).toBe('p-0001');
      expect(response.headers.get('x-request-id')).toBe('req-123');
    });
  });
});
