import { describe, expect, it } from 'vitest';
import type { Resolvers } from '../src/generated/resolvers-types.ts';
import { iosResolvers } from '../src/index.ts';

// What these prove is checked by `pnpm typecheck` (tsc reads test files): each
// `@ts-expect-error` fails the typecheck if the line below it stops being an error.
describe('iOS resolvers typed from the base and iOS SDL', () => {
  it('refuse a return, an argument or a parent the SDL and the mappers do not allow', () => {
    const wrong: Resolvers = {
      Product: {
        // @ts-expect-error deepLink is String!: a number is refused
        deepLink: () => 42,
        // @ts-expect-error the parent of Product is a ProductRecord, which has no `thumbnail`
        summary: (product) => product.thumbnail,
        // @ts-expect-error iOS's thumbnailUrl takes `scale`; `density` is Android's
        thumbnailUrl: (_, args) => String(args.density),
      },
    };
    const nullScale: Resolvers = {
      Product: {
        // @ts-expect-error `scale: null` reaches the resolver (only an absent scale gets the default)
        thumbnailUrl: (_, args) => String(args.scale.toFixed()),
      },
    };
    expect(Object.keys(wrong.Product ?? {}).sort()).toEqual(['deepLink', 'summary', 'thumbnailUrl']);
    expect(Object.keys(nullScale.Product ?? {})).toEqual(['thumbnailUrl']);
  });

  it('resolve every iOS field of Product', () => {
    const typed: Resolvers = iosResolvers('https://shop.example.com/');
    expect(Object.keys(typed.Product ?? {}).sort()).toEqual(['deepLink', 'summary', 'thumbnailUrl']);
  });
});
