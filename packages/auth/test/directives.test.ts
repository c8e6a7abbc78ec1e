// A root field that does not say who may call it must stop the schema build, not go out public.
import { buildSchema } from 'graphql';
import { describe, expect, it } from 'vitest';
import { assertRootFieldsDeclareAccess, authDirectiveTypeDefs } from '../src/index.ts';

const schemaOf = (sdl: string) => buildSchema(`${authDirectiveTypeDefs}\n${sdl}`);

describe('assertRootFieldsDeclareAccess', () => {
  it('refuses a query field without @public, @auth or @hasRole, naming it', () => {
    const schema = schemaOf('type Query { ok: String @public newField: String }');
    expect(() => assertRootFieldsDeclareAccess(schema)).toThrow(
      'Query.newField must declare @public or @auth (or @hasRole)',
    );
  });

  it('refuses mutation and subscription fields too, naming every one', () => {
    const schema = schemaOf(`
      type Query { ok: String @public }
      type Mutation { doIt: Boolean }
      type Subscription { ticks: Int }
    `);
    expect(() => assertRootFieldsDeclareAccess(schema)).toThrow(
      /Mutation\.doIt must declare .*Subscription\.ticks must declare/,
    );
  });

  it('accepts @public, @auth and @hasRole on the field', () => {
    const schema = schemaOf(`
      type Query { open: String @public mine: String @auth staff: String @hasRole(role: "admin") }
      type Mutation { pay: Boolean @auth }
    `);
    expect(() => assertRootFieldsDeclareAccess(schema)).not.toThrow();
  });

  it('accepts @auth on the root type, in its definition or an extension', () => {
    expect(() => assertRootFieldsDeclareAccess(schemaOf('type Query @auth { mine: String }'))).not.toThrow();
    expect(() =>
      assertRootFieldsDeclareAccess(
        schemaOf('type Query { open: String @public } type Mutation { a: Int } extend type Mutation @auth'),
      ),
    ).not.toThrow();
  });

  it('refuses a field that is both @public and restricted', () => {
    const schema = schemaOf('type Query { both: String @public @auth }');
    expect(() => assertRootFieldsDeclareAccess(schema)).toThrow(
      'Query.both declares @public but is restricted',
    );
  });

  it('leaves fields of other types alone', () => {
    const schema = schemaOf('type Query { me: User @public } type User { name: String }');
    expect(() => assertRootFieldsDeclareAccess(schema)).not.toThrow();
  });
});
