import { describe, expect, it } from 'vitest';
import type { Resolvers } from '../src/generated/resolvers-types.ts';

// Checked by `pnpm typecheck`: each `@ts-expect-error` fails it if the line below stops being an error.
describe('Android resolvers typed from the base and Android SDL', () => {
  it('refuse a density outside the enum and a null density left unhandled', () => {
    const wrong: Resolvers = {
      Product: {
        // @ts-expect-error `density: null` reaches the resolver: it must fall back to the default
        thumbnailUrl: (_, args) => args.density.toLowerCase(),
        // @ts-expect-error deepLink is String!: undefined is refused
        deepLink: () => undefined,
      },
    };
    expect(Object.keys(wrong.Product ?? {}).sort()).toEqual(['deepLink', 'thumbnailUrl']);
  });
});
