// The Billing client's page request against a stub Billing on port 0: whatever the user id and
// the cursor hold (a cursor is the client's text), Billing reads back exactly those values.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBillingClient } from '../src/index.ts';
import { reply, startHttpStub } from './stubs.ts';

/** Any text, lone surrogates included (what a JSON string, such as a token's claim, can hold). */
const anyText = (maxLength: number) =>
  fc.string({
    unit: fc.oneof(
      fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
      fc.integer({ min: 0xd800, max: 0xdfff }).map((unit) => String.fromCharCode(unit)),
    ),
    minLength: 1,
    maxLength,
  });

let stub: Awaited<ReturnType<typeof startHttpStub>>;
beforeAll(async () => {
  stub = await startHttpStub();
});
afterAll(() => stub.close());

describe('listInvoices', () => {
  it('sends the user id, the page size and the cursor so that Billing reads them back unchanged', async () => {
    const billing = createBillingClient({ baseUrl: stub.url });
    const emptyPage = { invoices: [], pageInfo: { hasNextPage: false, endCursor: null } };
    try {
      stub.answer(reply(200, emptyPage));
      await fc.assert(
        fc.asyncProperty(
          anyText(40),
          fc.integer({ min: 1, max: 100 }),
          fc.option(anyText(60), { nil: undefined }),
          async (userId, first, after) => {
            stub.answer(reply(200, emptyPage));
            await billing.listInvoices(userId, { first, after });
            const [line] = stub.requests;
            const url = new URL(line?.split(' ')[1] ?? '', stub.url);
            expect(url.pathname).toBe('/v1/invoices');
            // A lone surrogate cannot travel in a URL: it arrives as U+FFFD, as URLSearchParams writes it.
            const wellFormed = (value: string) => new URLSearchParams({ v: value }).get('v');
            expect(url.searchParams.get('userId')).toBe(wellFormed(userId));
            expect(url.searchParams.get('first')).toBe(String(first));
            expect(url.searchParams.get('after')).toBe(after ? wellFormed(after) : null);
            expect([...url.searchParams.keys()]).toEqual(
              after ? ['userId', 'first', 'after'] : ['userId', 'first'],
            );
          },
        ),
        { numRuns: 200 },
      );
    } finally {
      await billing.close();
    }
  });
});
