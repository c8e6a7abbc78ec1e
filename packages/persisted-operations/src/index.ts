/**
 * Trusted documents: each mobile app's operations live as `.graphql` files in the repo; a
 * command turns them into a manifest (hash to document) that the app's BFF serves from, and,
 * in production, the only operations it runs.
 *
 * Every export here is public API of `@bff/persisted-operations`.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeyValueCache } from '@apollo/utils.keyvaluecache';
import { type GraphQLSchema, Kind, parse, validate } from 'graphql';

/** Apollo's persisted query manifest format, so client tooling can read it as it is. */
export interface PersistedManifest {
  format: 'apollo-persisted-query-manifest';
  version: 1;
  operations: { id: string; name: string; type: 'query' | 'mutation' | 'subscription'; body: string }[];
}

/** The hash clients send as `extensions.persistedQuery.sha256Hash`: SHA-256 of the exact body. */
export function documentHash(body: string): string {
  return createHash('sha256').update(body).digest('hex');
}

/**
 * Builds a manifest from every `.graphql` file in `dir`: one file, one operation (with the
 * fragments it uses). Throws, naming the file, for a file with no operation, several, or an
 * anonymous one, and for a name used twice.
 */
export async function buildManifest(dir: string): Promise<PersistedManifest> {
  const files = (await readdir(dir)).filter((name) => name.endsWith('.graphql')).sort();
  const operations: PersistedManifest['operations'] = [];
  const names = new Set<string>();
  for (const file of files) {
    const body = `${(await readFile(join(dir, file), 'utf8')).trim()}\n`;
    const definitions = parse(body).definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
    const [operation] = definitions;
    if (definitions.length !== 1 || !operation || operation.kind !== Kind.OPERATION_DEFINITION) {
      throw new TypeError(`${file}: must hold exactly one operation, found ${definitions.length}`);
    }
    const name = operation.name?.value;
    if (!name) throw new TypeError(`${file}: the operation must be named`);
    if (names.has(name)) throw new TypeError(`${file}: the operation name ${name} is used twice`);
    names.add(name);
    operations.push({ id: documentHash(body), name, type: operation.operation, body });
  }
  return { format: 'apollo-persisted-query-manifest', version: 1, operations };
}

/** An operation of a manifest that the schema no longer (or never did) accept. */
export interface InvalidOperation {
  /** The operation's name, as in the manifest. */
  name: string;
  /** graphql-js's validation messages, e.g. `Cannot query field "summary" on type "Product".` */
  messages: string[];
}

/**
 * Validates every operation of `manifest` against `schema` with graphql-js's standard rules, so
 * a document the server would refuse is caught before it ships (or before the schema drops what
 * a shipped document asks for). Returns the failing operations in manifest order; empty when all pass.
 */
export function validateManifest(manifest: PersistedManifest, schema: GraphQLSchema): InvalidOperation[] {
  const invalid: InvalidOperation[] = [];
  for (const operation of manifest.operations) {
    let messages: string[];
    try {
      messages = validate(schema, parse(operation.body)).map((error) => error.message);
    } catch (error) {
      messages = [error instanceof Error ? error.message : String(error)];
    }
    if (messages.length > 0) invalid.push({ name: operation.name, messages });
  }
  return invalid;
}

export async function writeManifest(manifest: PersistedManifest, file: string): Promise<void> {
  await writeFile(file, `${JSON.stringify(manifest, null, 2)}\n`);
}

/** Reads a manifest, checking its shape and that every id is the hash of its body. */
export async function loadManifest(file: string): Promise<PersistedManifest> {
  const manifest = JSON.parse(await readFile(file, 'utf8')) as PersistedManifest;
  if (
    manifest.format !== 'apollo-persisted-query-manifest' ||
    manifest.version !== 1 ||
    !Array.isArray(manifest.operations)
  ) {
    throw new TypeError(`${file}: not an apollo-persisted-query-manifest, version 1`);
  }
  for (const operation of manifest.operations) {
    if (documentHash(operation.body) !== operation.id) {
      throw new TypeError(
        `${file}: the id of ${operation.name} is not the hash of its body; rebuild the manifest`,
      );
    }
  }
  return manifest;
}

/**
 * A read-only Apollo persisted-query cache over a manifest: lookups by hash answer from the
 * manifest, registrations are ignored, so clients can never add documents.
 */
export function manifestCache(
  manifest: PersistedManifest,
): KeyValueCache<string> & { has(hash: string): boolean } {
  const byHash = new Map(manifest.operations.map((o) => [o.id, o.body]));
  const strip = (key: string) => (key.startsWith('apq:') ? key.slice(4) : key);
  return {
    async get(key) {
      return byHash.get(strip(key));
    },
    async set() {},
    async delete() {
      return false;
    },
    has: (hash) => byHash.has(hash),
  };
}
