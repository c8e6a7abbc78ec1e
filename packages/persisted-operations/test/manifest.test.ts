// Trusted documents from files to manifest and back: what buildManifest makes of a folder of
// operations, what loadManifest refuses (each refusal naming the file and the problem), and
// what validateManifest reports against a schema.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSchema } from 'graphql';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  buildManifest,
  documentHash,
  loadManifest,
  type PersistedManifest,
  validateManifest,
  writeManifest,
} from '../src/index.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'persisted-operations-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const files = async (entries: Record<string, string>) => {
  for (const [name, text] of Object.entries(entries)) await writeFile(join(dir, name), text);
};

describe('documentHash', () => {
  it('is the SHA-256 hex of the exact text, as clients compute it', () => {
    expect(documentHash('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(documentHash('{ a }')).toBe(createHash('sha256').update('{ a }').digest('hex'));
    // One space changes the document, and so the hash.
    expect(documentHash('{ a }')).not.toBe(documentHash('{ a } '));
    expect(documentHash('query Ä { é }')).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('buildManifest', () => {
  it('makes one operation per .graphql file, in file order, with its fragments and its hash', async () => {
    await files({
      'b-Purchase.graphql': 'mutation Buy($id: ID!) { buy(id: $id) { id } }\n\n\n',
      'a-Card.graphql': `
        query Card($id: ID!) { product(id: $id) { ...Parts } }
        fragment Parts on Product { id name }
      `,
      'c-Ticks.graphql': 'subscription Ticks { tick }',
      'README.md': 'not an operation',
      'notes.graphql.bak': 'query Ignored { a }',
    });
    const manifest = await buildManifest(dir);
    expect(manifest.format).toBe('apollo-persisted-query-manifest');
    expect(manifest.version).toBe(1);
    expect(manifest.operations.map((o) => [o.name, o.type])).toEqual([
      ['Card', 'query'],
      ['Buy', 'mutation'],
      ['Ticks', 'subscription'],
    ]);
    const [card, buy] = manifest.operations;
    // The file's text, trimmed, with one newline: what the app sends, byte for byte.
    expect(buy?.body).toBe('mutation Buy($id: ID!) { buy(id: $id) { id } }\n');
    expect(card?.body).toContain('fragment Parts on Product { id name }');
    for (const operation of manifest.operations) expect(operation.id).toBe(documentHash(operation.body));
  });

  it('gives the same manifest for the same files, and a new id when an operation changes', async () => {
    await files({ 'Card.graphql': 'query Card { product(id: "1") { id } }' });
    const first = await buildManifest(dir);
    expect(await buildManifest(dir)).toEqual(first);
    await files({ 'Card.graphql': 'query Card { product(id: "1") { id name } }' });
    const changed = await buildManifest(dir);
    expect(changed.operations[0]?.id).not.toBe(first.operations[0]?.id);
  });

  it('refuses a file with two operations, naming it and the count', async () => {
    await files({ 'Two.graphql': 'query A { a } query B { b }' });
    await expect(buildManifest(dir)).rejects.toThrow(
      new TypeError('Two.graphql: must hold exactly one operation, found 2'),
    );
  });

  it('refuses a file with only fragments', async () => {
    await files({ 'Parts.graphql': 'fragment Parts on Product { id }' });
    await expect(buildManifest(dir)).rejects.toThrow(
      'Parts.graphql: must hold exactly one operation, found 0',
    );
  });

  it('refuses an anonymous operation', async () => {
    await files({ 'Anon.graphql': '{ product(id: "1") { id } }' });
    await expect(buildManifest(dir)).rejects.toThrow('Anon.graphql: the operation must be named');
  });

  it('refuses a name used twice, naming the second file', async () => {
    await files({
      'a.graphql': 'query Card { a }',
      'b.graphql': 'query Card { b }',
    });
    await expect(buildManifest(dir)).rejects.toThrow('b.graphql: the operation name Card is used twice');
  });

  it('refuses a file that does not parse, naming the file and the line', async () => {
    await files({ 'Ok.graphql': 'query Ok { a }', 'Broken.graphql': 'query Broken {\n  product(id: \n' });
    const error = await buildManifest(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toMatch(/^Broken\.graphql:\d+:\d+: Syntax Error: /);
  });

  it('builds an empty manifest from a folder without operations', async () => {
    expect((await buildManifest(dir)).operations).toEqual([]);
  });
});

describe('writeManifest and loadManifest', () => {
  it('round-trip a built manifest', async () => {
    await files({
      'Card.graphql': 'query Card($id: ID!) { product(id: $id) { id } }',
      'Buy.graphql': 'mutation Buy { buy { id } }',
    });
    const built = await buildManifest(dir);
    const file = join(dir, 'manifest.json');
    await writeManifest(built, file);
    expect(await loadManifest(file)).toEqual(built);
    // Written as the committed files are: indented, with a final newline.
    expect(await readFile(file, 'utf8')).toBe(`${JSON.stringify(built, null, 2)}\n`);
  });

  const body = 'query Card { a }\n';
  const good = { id: documentHash(body), name: 'Card', type: 'query', body };
  const refusals: [string, unknown, RegExp][] = [
    ['JSON null', null, /not an apollo-persisted-query-manifest, version 1/],
    ['an array', [good], /not an apollo-persisted-query-manifest, version 1/],
    [
      'another format',
      { format: 'relay', version: 1, operations: [] },
      /not an apollo-persisted-query-manifest/,
    ],
    ['version 2', { format: 'apollo-persisted-query-manifest', version: 2, operations: [] }, /version 1/],
    ['version "1"', { format: 'apollo-persisted-query-manifest', version: '1', operations: [] }, /version 1/],
    [
      'operations as an object',
      { format: 'apollo-persisted-query-manifest', version: 1, operations: { Card: good } },
      /version 1/,
    ],
    [
      'a null operation',
      { format: 'apollo-persisted-query-manifest', version: 1, operations: [good, null] },
      /operations\[1\] must have a string id, name and body/,
    ],
    [
      'a body that is not a string',
      { format: 'apollo-persisted-query-manifest', version: 1, operations: [{ ...good, body: 42 }] },
      /operations\[0\] must have a string id, name and body/,
    ],
    [
      'a missing name',
      { format: 'apollo-persisted-query-manifest', version: 1, operations: [{ ...good, name: undefined }] },
      /operations\[0\] must have a string id, name and body/,
    ],
    [
      'an unknown operation type',
      { format: 'apollo-persisted-query-manifest', version: 1, operations: [{ ...good, type: 'Query' }] },
      /operations\[0\].*type of query, mutation or subscription/,
    ],
    [
      'an id that is not the hash of its body',
      {
        format: 'apollo-persisted-query-manifest',
        version: 1,
        operations: [good, { ...good, name: 'Edited', body: 'query Card { a b }\n' }],
      },
      /the id of Edited is not the hash of its body; rebuild the manifest/,
    ],
    [
      'an id in upper case',
      {
        format: 'apollo-persisted-query-manifest',
        version: 1,
        operations: [{ ...good, id: good.id.toUpperCase() }],
      },
      /the id of Card is not the hash of its body/,
    ],
  ];
  for (const [what, content, message] of refusals) {
    it(`refuses ${what}, naming the file`, async () => {
      const file = join(dir, 'manifest.json');
      await writeFile(file, JSON.stringify(content));
      const error = await loadManifest(file).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message.startsWith(`${file}: `)).toBe(true);
      expect((error as Error).message).toMatch(message);
    });
  }

  it('refuses a file that is not JSON, naming the file', async () => {
    const file = join(dir, 'manifest.json');
    await writeFile(file, '{"format": "apollo-persisted-query-manifest", ');
    await expect(loadManifest(file)).rejects.toThrow(`${file}: not JSON`);
  });

  it('refuses a missing file with an error naming it', async () => {
    const file = join(dir, 'absent.json');
    await expect(loadManifest(file)).rejects.toThrow(file);
  });
});

describe('validateManifest', () => {
  const schema = buildSchema(`
    type Query { product(id: ID!): Product }
    type Product { id: ID! name: String! }
  `);
  const manifestOf = (operations: Record<string, string>): PersistedManifest => ({
    format: 'apollo-persisted-query-manifest',
    version: 1,
    operations: Object.entries(operations).map(([name, body]) => ({
      id: documentHash(body),
      name,
      type: 'query',
      body,
    })),
  });

  it('passes operations the schema accepts', () => {
    const manifest = manifestOf({
      Card: 'query Card($id: ID!) { product(id: $id) { id name } }',
      Name: 'query Name { product(id: "p") { name } }',
    });
    expect(validateManifest(manifest, schema)).toEqual([]);
  });

  it('reports, in manifest order, each operation the schema refuses with graphql-js’s messages', () => {
    const manifest = manifestOf({
      Fine: 'query Fine { product(id: "p") { id } }',
      Gone: 'query Gone { product(id: "p") { summary } }',
      Untyped: 'query Untyped($id: String!) { product(id: $id) { id } }',
      Broken: 'query Broken { product(id: ',
    });
    const invalid = validateManifest(manifest, schema);
    expect(invalid.map((i) => i.name)).toEqual(['Gone', 'Untyped', 'Broken']);
    expect(invalid[0]?.messages).toEqual(['Cannot query field "summary" on type "Product".']);
    expect(invalid[1]?.messages.join(' ')).toMatch(/Variable "\$id" of type "String!" used in position/);
    // A body that does not parse is reported, not thrown.
    expect(invalid[2]?.messages[0]).toMatch(/^Syntax Error/);
  });
});
