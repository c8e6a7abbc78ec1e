import { describe, expect, it } from 'vitest';
import type { Resolvers } from '../src/generated/resolvers-types.ts';

// Checked by `pnpm typecheck`: each `@ts-expect-error` fails it if the line below stops being an error.
describe('web resolvers typed from the base and web SDL', () => {
  it('refuse a login payload without its expiry and a logout that is not a Boolean', () => {
    const wrong: Resolvers = {
      Mutation: {
        // @ts-expect-error LoginPayload.expiresAt is DateTime!
        login: (_, __, context) => ({ viewer: { id: 'u-1', roles: [] }, context }),
        // @ts-expect-error logout is Boolean!
        logout: () => 'ok',
      },
    };
    expect(Object.keys(wrong.Mutation ?? {}).sort()).toEqual(['login', 'logout']);
  });
});
