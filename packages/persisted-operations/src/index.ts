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
import { type GraphQLError, type GraphQLSchema, Kind, parse, validate } from 'graphql';

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

/** Parses `body`; a syntax error names `file` and the line, since a bare graphql-js one does not. */
function parseNamed(body: string, file: string) {
  try {
    return parse(body);
  } catch (error) {
    // parse throws only syntax errors (GraphQLError), whichever copy of graphql-js made them.
    if (!(error instanceof Error)) throw error;
    const at = (error as Partial<GraphQLError>).locations?.[0];
    throw new TypeError(`${file}${at ? `:${at.line}:${at.column}` : ''}: ${error.message}`, { cause: error });
  }
}

/**
 * Builds a manifest from every `.graphql` file in `dir`: one file, one operation (with the
 * fragments it uses). Throws, naming the file, for a file that does not parse, with no
 * operation, several, or an anonymous one, and for a name used twice.
 */
export async function buildManifest(dir: string): Promise<PersistedManifest> {
  const files = (await readdir(dir)).filter((name) => name.endsWith('.graphql')).sort();
  const operations: PersistedManifest['operations'] = [];
  const names = new Set<string>();
  for (const file of files) {
    const body = `${(await readFile(join(dir, file), 'utf8')).trim()}\n`;
    const definitions = parseNamed(body, file).definitions.filter(
      (d) => d.kind === Kind.OPERATION_DEFINITION,
    );
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

const OPERATION_TYPES: readonly unknown[] = ['query', 'mutation', 'subscription'];

/**
 * Reads a manifest, checking its shape (every operation a string id, name and body and a known
 * type) and that every id is the hash of its body. Throws a TypeError naming the file and the
 * problem: an app must not start on a manifest it would misread.
 */
export async function loadManifest(file: string): Promise<PersistedManifest> {
  const text = await readFile(file, 'utf8');
  let manifest: unknown;
  try {
    manifest = JSON.parse(text);
  } catch (error) {
    throw new TypeError(`${file}: not JSON (${(error as Error).message})`, { cause: error });
  }
  const candidate = manifest as Partial<PersistedManifest> | null;
  if (
    typeof candidate !== 'object' ||
    candidate === null ||
    candidate.format !== 'apollo-persisted-query-manifest' ||
    candidate.version !== 1 ||
    !Array.isArray(candidate.operations)
  ) {
    throw new TypeError(`${file}: not an apollo-persisted-query-manifest, version 1`);
  }
  candidate.operations.forEach((operation: unknown, index) => {
    const o = operation as Partial<PersistedManifest['operations'][number]> | null;
    if (
      typeof o !== 'object' ||
      o === null ||
      typeof o.id !== 'string' ||
      typeof o.name !== 'string' ||
      typeof o.body !== 'string' ||
      !OPERATION_TYPES.includes(o.type)
    ) {
      throw new TypeError(
        `${file}: operations[${index}] must have a string id, name and body, and a type of query, mutation or subscription`,
      );
    }
    if (documentHash(o.body) !== o.id) {
      throw new TypeError(`${file}: the id of ${o.name} is not the hash of its body; rebuild the manifest`);
    }
  });
  return candidate as PersistedManifest;
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
