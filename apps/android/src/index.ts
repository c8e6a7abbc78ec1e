/** The Android BFF: the base contract plus density-bucket thumbnails, app links and summaries. */
import { fileURLToPath } from 'node:url';
import { type BffServerOptions, type RunningBff, startBff } from '@bff/bff-server';
import { loadManifest } from '@bff/persisted-operations';
import { type AppPolicy, closestImage, summarize } from '@bff/resolvers';
import type { Density, Resolvers } from './generated/resolvers-types.ts';

export const androidPolicy: AppPolicy = Object.freeze({
  products: { default: 16, max: 40 },
  invoices: { default: 10, max: 30 },
  limits: {
    maxDepth: 10,
    maxAliases: 15,
    maxDirectives: 10,
    maxTokens: 1_000,
    maxCost: 2_500,
    maxRootFields: 8,
    maxBodyBytes: 16_384,
    maxDocumentChars: 8_000,
    defaultListSize: 10,
  },
  operationBudgetMs: 2_500,
});

/** Pixels per dp for each density bucket. */
const DENSITY_SCALE: Readonly<Record<Density, number>> = {
  MDPI: 1,
  HDPI: 1.5,
  XHDPI: 2,
  XXHDPI: 3,
  XXXHDPI: 4,
};
/**
 * The SDL's default density, also used for an explicit `density: null`: graphql-js passes that
 * through, and an unknown scale would pick the widest (1920 px) image.
 */
const DEFAULT_DENSITY: Density = 'XHDPI';
/** Thumbnail size in dp. */
const THUMBNAIL_DP = 120;

/** The Android fields of `Product`, typed by the generated resolver types of the Android schema (`pnpm codegen`). */
export function androidResolvers(appLinkBase: string): Resolvers {
  const base = appLinkBase.replace(/\/+$/, '');
  return {
    Product: {
      thumbnailUrl: (product, args) =>
        closestImage(
          product.images,
          Math.round(THUMBNAIL_DP * DENSITY_SCALE[args.density ?? DEFAULT_DENSITY]),
        ),
      deepLink: (product) => `${base}/app/p/${encodeURIComponent(product.id)}`,
      summary: (product) => summarize(product.description, 140),
    },
  };
}

export type AndroidBffOptions = Omit<BffServerOptions, 'app' | 'schemaDir' | 'resolvers' | 'policy'> & {
  /** Origin of the app links (verified through /.well-known/assetlinks.json). @default 'https://shop.example.com' */
  appLinkBase?: string;
};

/** The trusted documents, built from ./operations by `pnpm persisted:build`. */
export const androidManifestPath = fileURLToPath(new URL('../persisted-operations.json', import.meta.url));

/** Starts the Android BFF. Its trusted documents are always served by hash; in production they are all it runs. */
export async function startAndroidBff({ appLinkBase, ...options }: AndroidBffOptions): Promise<RunningBff> {
  return startBff({
    persistedOperations: { manifest: await loadManifest(androidManifestPath), enforce: options.production },
    ...options,
    app: 'android',
    schemaDir: fileURLToPath(new URL('../schema', import.meta.url)),
    resolvers: androidResolvers(appLinkBase ?? 'https://shop.example.com'),
    policy: androidPolicy,
  });
}

// What every app's entry exports by convention (scripts/app-discovery.ts): the start command,
// the schema checks and the cross-app suite find the app through its package.json `bff` field.
export { androidPolicy as policy, startAndroidBff as startBff };
