// The benchmark's data: deterministic, so every contender and every run sees the same bytes.
import { demoProducts } from '@bff/demo-data';
import type { BillingInvoicePage, IdentityUser } from '@bff/upstream-clients';

export const ISSUER = 'urn:bff:identity';
export const USER_COUNT = 100;
export const INVOICES_PER_USER = 120;

/** The shapes the real services answer with: the fakes serve exactly what the clients read. */
export type BenchUser = IdentityUser & { avatarUrl: string };
export type BenchInvoice = BillingInvoicePage['invoices'][number];

const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');

export const users: BenchUser[] = Array.from({ length: USER_COUNT }, (_, i) => ({
  id: `00000000-0000-4000-a000-${hex(i + 1, 12)}`,
  email: `user${i + 1}@example.com`,
  name: `Bench User ${i + 1}`,
  avatarUrl: `https://images.example.com/avatars/${i + 1}.png`,
  roles: ['customer'],
  createdAt: '2026-01-01T00:00:00.000Z',
}));

const products = demoProducts();

/** Invoices per user, newest first, 3 lines each over many products. */
export const invoicesByUser = new Map<string, BenchInvoice[]>(
  users.map((user, u) => [
    user.id,
    Array.from({ length: INVOICES_PER_USER }, (_, k) => {
      const lines = [0, 1, 2].map((j) => {
        const product = products[(u * 7 + k * 3 + j * 11) % products.length] as (typeof products)[number];
        const quantity = 1 + ((k + j) % 3);
        return {
          productId: product.id,
          quantity,
          unitPriceMinor: product.priceMinor,
          amountMinor: product.priceMinor * quantity,
          currency: 'USD',
        };
      });
      const issuedAt = new Date(Date.parse('2026-10-01T00:00:00.000Z') - k * 3_600_000).toISOString();
      const id = `00000000-0000-4000-b${hex(u, 3)}-${hex(k + 1, 12)}`;
      return {
        id,
        userId: user.id,
        status: k % 5 === 0 ? 'OPEN' : 'PAID',
        currency: 'USD',
        totalMinor: lines.reduce((sum, l) => sum + l.amountMinor, 0),
        issuedAt,
        paidAt: k % 5 === 0 ? null : issuedAt,
        lines,
        cursor: Buffer.from(JSON.stringify({ t: issuedAt, id })).toString('base64url'),
      } satisfies BenchInvoice;
    }),
  ]),
);

export const invoicesById = new Map<string, BenchInvoice>(
  [...invoicesByUser.values()].flat().map((i) => [i.id, i]),
);
export const productsById = new Map(products.map((p) => [p.id, p]));
