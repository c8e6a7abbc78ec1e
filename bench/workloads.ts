// The workloads, as the apps' clients send them. Sizes are for one response.
import { readFileSync } from 'node:fs';
import { productsById, users } from './fixtures.ts';

export type WorkloadName = 'small' | 'medium' | 'large' | 'catalogue';
export const WORKLOAD_NAMES: readonly WorkloadName[] = ['small', 'medium', 'large', 'catalogue'];

/** Workloads of a signed-in viewer, over the web BFF: a POSTed document per request, a user per request. */
type PrivateWorkload = Exclude<WorkloadName, 'catalogue'>;

export const LARGE_INVOICES = 64;

export const workloads: Record<WorkloadName, { description: string }> &
  Record<PrivateWorkload, { query: string }> = {
  small: {
    description: '~1 KB: the viewer and 4 invoice totals (1 upstream call)',
    query:
      'query Small { viewer { id name email invoices(first: 4) { edges { node { id status issuedAt total { amountMinor currency formatted } } } } } }',
  },
  medium: {
    description: '~10 KB: 20 invoices, 3 lines each, a product per line (3 upstream calls)',
    query:
      'query Medium { viewer { name avatarUrl invoices(first: 20) { edges { node { id status issuedAt total { formatted } lines { quantity amount { formatted } product { id name price { formatted } } } } } } } }',
  },
  large: {
    description: `~90 KB: ${LARGE_INVOICES} invoices with product descriptions (3 upstream calls)`,
    query: `query Large { viewer { name avatarUrl invoices(first: ${LARGE_INVOICES}) { edges { node { id status issuedAt total { formatted } lines { quantity amount { formatted } product { id name description price { formatted } } } } } } } }`,
  },
  catalogue: {
    description:
      "~4 KB: the iOS app's public products page, by persisted hash over GET, signed out, 8 pages in rotation (1 upstream call)",
  },
};

/** The iOS app's trusted document `Catalogue` (apps/ios/operations/Catalogue.graphql), as its manifest lists it. */
export const CATALOGUE_DOCUMENT = (() => {
  const manifest = JSON.parse(
    readFileSync(new URL('../apps/ios/persisted-operations.json', import.meta.url), 'utf8'),
  ) as { operations: { id: string; name: string; body: string }[] };
  const found = manifest.operations.find((o) => o.name === 'Catalogue');
  if (!found) throw new Error('bench: apps/ios/persisted-operations.json has no Catalogue operation');
  return found;
})();

/** The oldest iOS release the BFF serves (`MIN_APP_VERSION`, kept equal to this file), sent as `x-app-version`. */
export const IOS_APP_VERSION = (
  JSON.parse(readFileSync(new URL('../apps/ios/releases/supported.json', import.meta.url), 'utf8')) as {
    minimumVersion: string;
  }
).minimumVersion;

/** What the iOS BFF issues as a `products` cursor (`productCursor` in @bff/resolvers): the format is the API's. */
const productCursor = (id: string) => Buffer.from(`product:${id}`).toString('base64url');
const byCategory = (category: string) =>
  [...productsById.values()].filter((p) => p.category === category).sort((a, b) => (a.id < b.id ? -1 : 1));
const secondPage = (category: string, first: number) => {
  const last = byCategory(category)[first - 1];
  if (!last) throw new Error(`bench: category ${category} has fewer than ${first} products`);
  return { first, category, after: productCursor(last.id) };
};

/**
 * The pages the catalogue workload asks for, in rotation: a category's first page (most of the
 * traffic), the whole catalogue's, a second page ("load more"), at the @2x default scale and at
 * @3x. A real catalogue's traffic is this repetitive: a response cache is expected to serve it.
 */
export const CATALOGUE_PAGES: readonly Record<string, unknown>[] = [
  { first: 20, category: 'audio' },
  { first: 20, category: 'books' },
  { first: 20, category: 'cameras', scale: 3 },
  { first: 20 },
  { first: 20, category: 'garden' },
  { first: 20, category: 'kitchen', scale: 3 },
  { first: 20, category: 'toys' },
  secondPage('audio', 20),
];

/**
 * One request of a workload as the load generator sends it, and the golden body it must get
 * back (`key`: a user's id for the private workloads, a page for the catalogue).
 */
export interface WorkloadRequest {
  key: string;
  method: 'GET' | 'POST';
  /** Path and query string. */
  path: string;
  headers: Record<string, string>;
  body?: string;
}

/**
 * The requests of a workload against a contender whose GraphQL endpoint is `endpointPath`, in
 * the order the load sends them round and round: every user once (a token each, so nothing can
 * be answered from a cache), or every catalogue page once.
 */
export function workloadRequests(
  workload: WorkloadName,
  tokens: Record<string, string>,
  endpointPath: string,
): WorkloadRequest[] {
  if (workload === 'catalogue') {
    const extensions = JSON.stringify({ persistedQuery: { version: 1, sha256Hash: CATALOGUE_DOCUMENT.id } });
    return CATALOGUE_PAGES.map((variables, i) => ({
      key: `page ${i + 1}`,
      method: 'GET',
      path: `${endpointPath}?${new URLSearchParams({
        operationName: 'Catalogue',
        variables: JSON.stringify(variables),
        extensions,
      })}`,
      // As the app sends it: signed out, its version, its client name, and the operation name
      // that satisfies Apollo's CSRF prevention for a GET.
      headers: {
        'x-apollo-operation-name': 'Catalogue',
        'x-app-version': IOS_APP_VERSION,
        'apollographql-client-name': 'ios',
        'accept-language': 'en-US,en;q=0.9',
      },
    }));
  }
  const body = JSON.stringify({ query: workloads[workload].query });
  return users.map((user) => ({
    key: user.id,
    method: 'POST',
    path: endpointPath,
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${tokens[user.id] as string}`,
      // The hand-written aggregator's shortcut: it answers the workload's document without parsing it.
      'x-workload': workload,
      'x-first': String(LARGE_INVOICES),
    },
    body,
  }));
}
