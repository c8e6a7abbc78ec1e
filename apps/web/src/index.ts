/** The web BFF: the base contract plus full descriptions and every image width. */
import { fileURLToPath } from 'node:url';
import { type BffServerOptions, type RunningBff, startBff } from '@bff/bff-server';
import { type AppPolicy, input, type Viewer } from '@bff/resolvers';
import { decodeJwt } from 'jose';
import type { Resolvers } from './generated/resolvers-types.ts';

/** The web client shows the longest lists. */
export const webPolicy: AppPolicy = Object.freeze({
  products: { default: 24, max: 100 },
  invoices: { default: 20, max: 100 },
  limits: {
    maxDepth: 12,
    maxAliases: 30,
    maxDirectives: 20,
    maxTokens: 2_000,
    maxCost: 5_000,
    maxRootFields: 15,
    maxBodyBytes: 32_768,
    maxDocumentChars: 10_000,
    defaultListSize: 10,
  },
  operationBudgetMs: 3_000,
});

/**
 * `description` and `images` are properties of the catalogue record, so the default resolvers
 * serve them. `login` and `logout` manage the cookie session.
 */
export const webResolvers: Resolvers = {
  Mutation: {
    login: async (_, args, context) => {
      input.email(args.email, 'email');
      input.password(args.password, 'password');
      const { accessToken, expiresIn } = await context.commands.login({ ...args, audience: 'web' });
      context.session?.start(accessToken, expiresIn);
      // The token came straight from Identity over our own connection: its claims can be read as they are.
      const claims = decodeJwt(accessToken);
      const viewer: Viewer = {
        id: String(claims.sub),
        roles: Array.isArray(claims.roles) ? claims.roles.map(String) : [],
        email: typeof claims.email === 'string' ? claims.email : undefined,
        name: typeof claims.name === 'string' ? claims.name : undefined,
      };
      context.viewer = viewer;
      return {
        viewer,
        expiresAt: new Date(((claims.exp as number | undefined) ?? Date.now() / 1000 + expiresIn) * 1000),
      };
    },
    logout: (_, __, context) => {
      context.session?.end();
      return true;
    },
  },
};

export type WebBffOptions = Omit<BffServerOptions, 'app' | 'schemaDir' | 'resolvers' | 'policy'>;

export function startWebBff(options: WebBffOptions): Promise<RunningBff> {
  return startBff({
    ...options,
    app: 'web',
    schemaDir: fileURLToPath(new URL('../schema', import.meta.url)),
    resolvers: webResolvers,
    policy: webPolicy,
    sessionCookie: true,
  });
}

// What every app's entry exports by convention (scripts/app-discovery.ts): the start command,
// the schema checks and the cross-app suite find the app through its package.json `bff` field.
export { startWebBff as startBff, webPolicy as policy };
