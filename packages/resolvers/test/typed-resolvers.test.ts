import { describe, expect, it } from 'vitest';
import { baseResolvers } from '../src/base-resolvers.ts';
import type { Resolvers } from '../src/generated/base-types.ts';

// What these prove is checked by `pnpm typecheck` (tsc reads test files): each
// `@ts-expect-error` fails the typecheck if the line below it stops being an error.
describe('base resolvers typed from the SDL', () => {
  it('refuse a return, an argument, a parent or a context the SDL and the mappers do not allow', () => {
    const wrong: Resolvers = {
      Product: {
        // @ts-expect-error inStock is Boolean!: a string is refused
        inStock: () => 'yes',
        // @ts-expect-error the parent of Product is a ProductRecord, which has no `rating`
        name: (product) => product.rating,
      },
      Query: {
        // @ts-expect-error product takes `id`, not `sku`
        product: (_, args, context) => context.loaders.product.load(args.sku),
        // @ts-expect-error the context is a BffContext, which has no `user`
        viewer: (_, __, context) => context.user,
      },
      User: {
        // @ts-expect-error the parent of User is the token's Viewer: avatarUrl must be loaded
        avatarUrl: (viewer) => viewer.avatarUrl,
      },
      Invoice: {
        // @ts-expect-error total is Money!: the Money built by money(), not minor units
        total: (invoice) => invoice.totalMinor,
      },
    };
    expect(Object.keys(wrong).sort()).toEqual(['Invoice', 'Product', 'Query', 'User']);
  });

  it('cover every field that the records do not serve as they are', () => {
    const typed: Resolvers = baseResolvers;
    expect(Object.keys(typed.Product ?? {}).sort()).toEqual(['inStock', 'price']);
    expect(Object.keys(typed.User ?? {}).sort()).toEqual(['avatarUrl', 'email', 'invoices', 'name']);
  });
});
