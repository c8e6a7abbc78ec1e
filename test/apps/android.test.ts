import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type System, startApp, startSystem, type TestApp } from '../support/system.ts';

describe('Android BFF: its own fields', () => {
  let system: System;
  let app: TestApp;
  beforeAll(async () => {
    system = await startSystem();
    app = await startApp('android', system);
  });
  afterAll(async () => {
    await app?.close();
    await system?.close();
  });

  it.each([
    ['MDPI', 160],
    ['HDPI', 320],
    ['XHDPI', 320],
    ['XXHDPI', 480],
    ['XXXHDPI', 480],
  ])('picks the image for a 120 dp thumbnail at %s: %i px wide', async (density, width) => {
    const response = await app.graphql(`{ product(id: "p-0005") { thumbnailUrl(density: ${density}) } }`);
    expect(response.body.data.product.thumbnailUrl).toMatch(new RegExp(`/w${width}\\.jpg$`));
  });

  it('defaults to XHDPI and rejects an unknown density at validation', async () => {
    const byDefault = await app.graphql('{ product(id: "p-0005") { thumbnailUrl } }');
    expect(byDefault.body.data.product.thumbnailUrl).toMatch(/\/w320\.jpg$/);
    const bad = await app.graphql('{ product(id: "p-0005") { thumbnailUrl(density: LDPI) } }');
    expect(bad.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('treats an explicit density: null as the default XHDPI, not as the widest image', async () => {
    const response = await app.graphql('{ product(id: "p-0005") { thumbnailUrl(density: null) } }');
    expect(response.body.errors).toBeUndefined();
    expect(response.body.data.product.thumbnailUrl).toMatch(/\/w320\.jpg$/);
  });

  it('links with an app link and summarises in at most 140 characters', async () => {
    const response = await app.graphql('{ product(id: "p-0005") { deepLink summary } }');
    expect(response.body.data.product.deepLink).toBe('https://shop.example.com/app/p/p-0005');
    expect(response.body.data.product.summary.length).toBeLessThanOrEqual(140);
  });

  it('has its own page sizes: 16 products by default, at most 40', async () => {
    const byDefault = await app.graphql('{ products { edges { cursor } } }');
    expect(byDefault.body.data.products.edges).toHaveLength(16);
    const over = await app.graphql('{ products(first: 41) { edges { cursor } } }');
    expect(over.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', max: 40 });
  });
});
