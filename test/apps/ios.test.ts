import { demoProducts } from '@bff/demo-data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type System, startApp, startSystem, type TestApp } from '../support/system.ts';

describe('iOS BFF: its own fields', () => {
  let system: System;
  let app: TestApp;
  beforeAll(async () => {
    system = await startSystem();
    app = await startApp('ios', system);
  });
  afterAll(async () => {
    await app?.close();
    await system?.close();
  });

  it.each([
    [1, 160],
    [2, 320],
    [3, 480],
  ])('picks the image for a 120 pt thumbnail at @%ix: %i px wide', async (scale, width) => {
    const response = await app.graphql(`{ product(id: "p-0005") { thumbnailUrl(scale: ${scale}) } }`);
    expect(response.body.data.product.thumbnailUrl).toMatch(new RegExp(`/w${width}\\.jpg$`));
  });

  it('defaults to @2x and refuses a scale that is not 1, 2 or 3', async () => {
    const byDefault = await app.graphql('{ product(id: "p-0005") { thumbnailUrl } }');
    expect(byDefault.body.data.product.thumbnailUrl).toMatch(/\/w320\.jpg$/);
    const bad = await app.graphql('{ product(id: "p-0005") { thumbnailUrl(scale: 4) } }');
    expect(bad.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'scale' });
  });

  it('treats an explicit scale: null as the default @2x', async () => {
    const response = await app.graphql('{ product(id: "p-0005") { thumbnailUrl(scale: null) } }');
    expect(response.body.errors).toBeUndefined();
    expect(response.body.data.product.thumbnailUrl).toMatch(/\/w320\.jpg$/);
  });

  it('links with a universal link and summarises in at most 140 characters on a word boundary', async () => {
    const response = await app.graphql('{ product(id: "p-0005") { id deepLink summary } }');
    const product = { ...response.body.data.product, description: demoProducts()[4]?.description as string };
    expect(product.id).toBe('p-0005');
    expect(product.deepLink).toBe('https://shop.example.com/p/p-0005');
    expect(product.summary.length).toBeLessThanOrEqual(140);
    expect(product.summary.endsWith('…')).toBe(true);
    const kept = product.summary.slice(0, -1);
    expect(product.description.startsWith(kept)).toBe(true);
    expect(product.description[kept.length]).toMatch(/[\s,.;:]/); // the cut fell between words
  });

  it('has its own page sizes: 12 products by default, at most 30', async () => {
    const byDefault = await app.graphql('{ products { edges { cursor } } }');
    expect(byDefault.body.data.products.edges).toHaveLength(12);
    const over = await app.graphql('{ products(first: 31) { edges { cursor } } }');
    expect(over.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', max: 30 });
  });

  it('does not offer the web’s fields', async () => {
    const response = await app.graphql('{ product(id: "p-0005") { images { url } } }');
    expect(response.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });
});
