/** The iOS BFF: the base contract plus screen-scale thumbnails, universal links and summaries. */
import { fileURLToPath } from 'node:url';
import { type BffServerOptions, type RunningBff, startBff } from '@bff/bff-server';
import { loadManifest } from '@bff/persisted-operations';
import { type AppPolicy, closestImage, summarize, userInput } from '@bff/resolvers';
import type { Resolvers } from './generated/resolvers-types.ts';

export const iosPolicy: AppPolicy = Object.freeze({
  products: { default: 12, max: 30 },
  invoices: { default: 10, max: 25 },
  limits: {
    maxDepth: 10,
    maxAliases: 15,
    maxDirectives: 10,
    maxTokens: 1_000,
    maxCost: 2_000,
    maxRootFields: 8,
    maxBodyBytes: 16_384,
    maxDocumentChars: 8_000,
    defaultListSize: 10,
  },
  operationBudgetMs: 2_500,
});

/** Thumbnail size in points; multiplied by the screen scale to get pixels. */
const THUMBNAIL_POINTS = 120;
/** The SDL's default scale, also used for an explicit `scale: null` (graphql-js passes that through). */
const DEFAULT_SCALE = 2;

/** The iOS fields of `Product`, typed by the generated resolver types of the iOS schema (`pnpm codegen`). */
export function iosResolvers(universalLinkBase: string): Resolvers {
  const base = universalLinkBase.replace(/\/+$/, '');
  return {
    Product: {
      thumbnailUrl: (product, args) => {
        const scale = args.scale ?? DEFAULT_SCALE;
        if (![1, 2, 3].includes(scale))
          throw userInput('scale', `scale must be 1, 2 or 3, received ${scale}`);
        return closestImage(product.images, THUMBNAIL_POINTS * scale);
      },
      deepLink: (product) => `${base}/p/${encodeURIComponent(product.id)}`,
      summary: (product) => summarize(product.description, 140),
    },
  };
}

export type IosBffOptions = Omit<BffServerOptions, 'app' | 'schemaDir' | 'resolvers' | 'policy'> & {
  /** Origin of the universal links (served with an apple-app-site-association file). @default 'https://shop.example.com' */
  universalLinkBase?: string;
};

/** The trusted documents, built from ./operations by `pnpm persisted:build`. */
export const iosManifestPath = fileURLToPath(new URL('../persisted-operations.json', import.meta.url));

/** Starts the iOS BFF. Its trusted documents are always served by hash; in production they are all it runs. */
export async function startIosBff({ universalLinkBase, ...options }: IosBffOptions): Promise<RunningBff> {
  return startBff({
    persistedOperations: { manifest: await loadManifest(iosManifestPath), enforce: options.production },
    ...options,
    app: 'ios',
    schemaDir: fileURLToPath(new URL('../schema', import.meta.url)),
    resolvers: iosResolvers(universalLinkBase ?? 'https://shop.example.com'),
    policy: iosPolicy,
  });
}

// What every app's entry exports by convention (scripts/app-discovery.ts): the start command,
// the schema checks and the cross-app suite find the app through its package.json `bff` field.
export { iosPolicy as policy, startIosBff as startBff };
