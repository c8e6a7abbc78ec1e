import { BillingRejection, UpstreamError, UpstreamErrorCode } from '@bff/upstream-clients';
import fc from 'fast-check';
import { GraphQLError } from 'graphql';
import { describe, expect, it } from 'vitest';
import { describeUpstreamError, input } from '../src/index.ts';
import { productCursor, productIdFromCursor } from '../src/pagination.ts';

/** The error a check threw, or undefined when it passed. */
function refusal(check: () => unknown): GraphQLError | undefined {
  try {
    check();
    return undefined;
  } catch (error) {
    if (error instanceof GraphQLError) return error;
    throw error;
  }
}

const expectRefused = (check: () => unknown, argument: string) =>
  expect(refusal(check)?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument });

const CONTROLS = [
  ...Array.from({ length: 0x20 }, (_, c) => String.fromCharCode(c)),
  ...Array.from({ length: 0x21 }, (_, c) => String.fromCharCode(0x7f + c)),
];
/** Any string with at least one C0/C1 control or DEL somewhere in it. */
const withControl = fc
  .tuple(fc.string({ maxLength: 20 }), fc.constantFrom(...CONTROLS), fc.string({ maxLength: 20 }))
  .map(([before, control, after]) => before + control + after);
/** Ids shaped like the ones the services hold: `p-0001`, UUIDs, SKUs, slugs. */
const realisticId = fc.oneof(
  fc.integer({ min: 1, max: 9999 }).map((n) => `p-${String(n).padStart(4, '0')}`),
  fc.uuid(),
  fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:~-]{0,63}$/),
);

const TEXT_CHECKS = [
  ['productId', input.productId],
  ['invoiceId', input.invoiceId],
  ['category', input.category],
  ['searchText', input.searchText],
  ['email', input.email],
  ['password', input.password],
  ['idempotencyKey', input.idempotencyKey],
  ['productCursor', input.productCursor],
  ['invoiceCursor', input.invoiceCursor],
] as const;

describe('input checks', () => {
  it.each(TEXT_CHECKS)('%s refuses any string with a control character, naming the argument', (_, check) => {
    fc.assert(
      fc.property(withControl, (value) => {
        expectRefused(() => check(value, 'arg'), 'arg');
      }),
    );
  });

  it.each(TEXT_CHECKS)('%s refuses anything over its bound, whatever it holds', (_, check) => {
    fc.assert(
      fc.property(fc.string({ minLength: 256, maxLength: 400, unit: 'grapheme-ascii' }), (value) => {
        expectRefused(() => check(value, 'arg'), 'arg');
      }),
    );
  });

  it('lets every realistic id through unchanged', () => {
    fc.assert(
      fc.property(realisticId, (id) => {
        expect(input.productId(id, 'id')).toBe(id);
        expect(input.invoiceId(id, 'id')).toBe(id);
      }),
    );
  });

  it('lets ids in other scripts through, and refuses empty, spaced, invisible or broken ones', () => {
    expect(input.productId('produit-é-ß-日本-😀', 'id')).toBe('produit-é-ß-日本-😀');
    for (const bad of ['', ' p-0001', 'p 0001', 'p-0001\u200b', 'p-\u202e1000', 'p-\ud800', 'x'.repeat(65)])
      expectRefused(() => input.productId(bad, 'id'), 'id');
    expect(input.productId('x'.repeat(64), 'id')).toHaveLength(64);
  });

  it('the issue’s example: a NUL after a real id is refused', () => {
    expectRefused(() => input.productId('p-0001\u0000', 'id'), 'id');
  });

  it('lets text people type through: spaces, accents, emoji', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200, unit: 'grapheme' }), (text) => {
        fc.pre(!/\p{Cc}/u.test(text));
        expect(input.searchText(text, 'search')).toBe(text);
      }),
    );
    expect(input.category('home & garden', 'category')).toBe('home & garden');
  });

  it('checks an email’s shape, not just its length', () => {
    expect(input.email('ada@example.com', 'email')).toBe('ada@example.com');
    for (const bad of ['ada', 'ada@', '@example.com', 'ada lovelace@example.com', 'a@b@c'])
      expectRefused(() => input.email(bad, 'email'), 'email');
  });

  it('keeps idempotency keys to printable ASCII', () => {
    expect(input.idempotencyKey('0b9f4c1e-7d1a-4a4e-9f1e-6f0b5a2c9d11', 'key')).toHaveLength(36);
    for (const bad of ['', 'a b', 'clé', 'x'.repeat(256)])
      expectRefused(() => input.idempotencyKey(bad, 'key'), 'key');
  });
});

describe('product cursors', () => {
  it('round-trip any valid id', () => {
    fc.assert(
      fc.property(realisticId, (id) => {
        expect(productIdFromCursor(productCursor(id))).toBe(id);
      }),
    );
  });

  it('refuse what this API did not issue, including a cursor for an id no check would pass', () => {
    for (const forged of [
      'Zm9yZ2Vk', // "forged"
      productCursor('p-0001\u0000'),
      productCursor(''),
      productCursor('x'.repeat(65)),
      `${productCursor('p-0001')}\u0000`,
      `${productCursor('p-0001')}==`,
      '',
    ])
      expectRefused(() => productIdFromCursor(forged), 'after');
  });

  it('refuse any string that is not base64url, even one Buffer would decode', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 60 }), (text) => {
        fc.pre(/[^A-Za-z0-9_-]/.test(text));
        expectRefused(() => input.productCursor(text, 'after'), 'after');
      }),
    );
  });
});

describe('invoice cursors', () => {
  const cursor = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const ID = '0b9f4c1e-7d1a-4a4e-9f1e-6f0b5a2c9d11';

  it('pass what Billing issues: a canonical instant and a UUID', () => {
    fc.assert(
      fc.property(
        fc.date({
          min: new Date('1970-01-01T00:00:00Z'),
          max: new Date('9999-12-31T23:59:59Z'),
          noInvalidDate: true,
        }),
        fc.uuid(),
        (date, id) => {
          const issued = cursor({ t: date.toISOString(), id });
          expect(input.invoiceCursor(issued, 'after')).toBe(issued);
        },
      ),
    );
  });

  it('refuse instants JavaScript reads and PostgreSQL does not, and other forgeries', () => {
    // Billing's old check was Date.parse: every one of these passed it, and failed in the SQL.
    for (const t of [
      '1', // 2001-01-01 in V8
      '2026-11-21',
      'Sat Nov 21 2026',
      '+275760-09-13T00:00:00.000Z',
      '0000-01-01T00:00:00.000Z',
    ]) {
      expect(Number.isNaN(Date.parse(t))).toBe(false);
      expectRefused(() => input.invoiceCursor(cursor({ t, id: ID }), 'after'), 'after');
    }
    expectRefused(
      () => input.invoiceCursor(cursor({ t: '2026-02-30T00:00:00.000Z', id: ID }), 'after'),
      'after',
    );
    for (const forged of [
      cursor({ t: '2026-11-21T09:30:00.000Z', id: `${ID}\u0000` }),
      cursor({ t: '2026-11-21T09:30:00.000Z', id: 'x' }),
      cursor({ t: '2026-11-21T09:30:00.000Z' }),
      cursor(null),
      cursor('x'),
      Buffer.from('not json').toString('base64url'),
    ])
      expectRefused(() => input.invoiceCursor(forged, 'after'), 'after');
  });
});

describe('describeUpstreamError', () => {
  it('reports an upstream’s refusal of input as BAD_USER_INPUT, not an outage', () => {
    const described = describeUpstreamError(
      new UpstreamError('product', UpstreamErrorCode.InvalidArgument, 'ids: contains NUL at 127.0.0.1:5000'),
    );
    expect(described?.extensions).toEqual({ code: 'BAD_USER_INPUT', service: 'product' });
    expect(described?.message).not.toMatch(/NUL|127/);
    expect(
      describeUpstreamError(new UpstreamError('product', UpstreamErrorCode.NotFound, 'x'))?.extensions.code,
    ).toBe('NOT_FOUND');
    expect(
      describeUpstreamError(new UpstreamError('product', UpstreamErrorCode.BadResponse, 'x'))?.extensions
        .code,
    ).toBe('UPSTREAM_UNAVAILABLE');
    expect(describeUpstreamError(new BillingRejection(400, 'BAD_REQUEST', 'x'))?.extensions.code).toBe(
      'BAD_USER_INPUT',
    );
  });
});
