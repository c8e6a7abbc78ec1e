import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type System, startApp, startSystem, type TestApp } from '../support/system.ts';

describe('web BFF: its own fields', () => {
  let system: System;
  let app: TestApp;
  beforeAll(async () => {
    system = await startSystem();
    app = await startApp('web', system);
  });
  afterAll(async () => {
    await app?.close();
    await system?.close();
  });

  it('gives the full description and every image width, narrowest first', async () => {
    const response = await app.graphql('{ product(id: "p-0005") { description images { width url } } }');
    const product = response.body.data.product;
    expect(product.description.length).toBeGreaterThan(140);
    expect(product.images.map((i: { width: number }) => i.width)).toEqual([
      160, 320, 480, 640, 960, 1280, 1920,
    ]);
    expect(product.images[0].url).toMatch(/^https:\/\/.+w160\.jpg$/);
  });

  it('has the largest page sizes: 24 products by default, up to 100', async () => {
    const byDefault = await app.graphql('{ products { edges { cursor } } }');
    expect(byDefault.body.data.products.edges).toHaveLength(24);
    const hundred = await app.graphql('{ products(first: 100) { edges { cursor } } }');
    expect(hundred.body.data.products.edges).toHaveLength(100);
  });

  it('does not offer the mobile apps’ fields', async () => {
    const response = await app.graphql('{ product(id: "p-0005") { summary } }');
    expect(response.status).toBe(400);
    expect(response.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });
});
