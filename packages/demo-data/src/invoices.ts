import { demoProducts } from './products.ts';
import { seededRandom } from './random.ts';
import { demoUsers } from './users.ts';

export interface DemoInvoice {
  id: string;
  userId: string;
  status: 'OPEN' | 'PAID' | 'VOID';
  currency: string;
  issuedAt: string;
  lines: { productId: string; quantity: number; unitPriceMinor: number }[];
}

/**
 * 40 invoices for Ada and 5 for Grace, one currency each, whose lines reach well over a
 * hundred different products, so a page of invoices exercises product batching.
 */
export function demoInvoices(): readonly DemoInvoice[] {
  const random = seededRandom(1_815);
  const byCurrency = new Map<string, ReturnType<typeof demoProducts>[number][]>();
  for (const p of demoProducts()) byCurrency.set(p.currency, [...(byCurrency.get(p.currency) ?? []), p]);
  const invoices: DemoInvoice[] = [];
  const start = Date.parse('2026-01-05T09:00:00Z');
  const plan: [userIndex: number, count: number][] = [
    [0, 40],
    [1, 5],
  ];
  let n = 0;
  for (const [userIndex, count] of plan) {
    const user = demoUsers[userIndex];
    if (!user) continue;
    for (let i = 0; i < count; i++, n++) {
      const currency = random() < 0.85 ? 'USD' : 'EUR';
      const pool = byCurrency.get(currency) ?? [];
      const lineCount = 1 + Math.floor(random() * 5);
      const lines: DemoInvoice['lines'] = [];
      const used = new Set<string>();
      while (lines.length < lineCount) {
        const product = pool[Math.floor(random() * pool.length)];
        if (!product || used.has(product.id)) continue;
        used.add(product.id);
        lines.push({
          productId: product.id,
          quantity: 1 + Math.floor(random() * 3),
          unitPriceMinor: product.priceMinor,
        });
      }
      invoices.push({
        id: `00000000-0000-4000-8000-${String(n + 1).padStart(12, '0')}`,
        userId: user.id,
        status: i >= count - 3 ? 'OPEN' : i === 7 ? 'VOID' : 'PAID',
        currency,
        issuedAt: new Date(start + n * 6 * 86_400_000 + Math.floor(random() * 86_400_000)).toISOString(),
        lines,
      });
    }
  }
  return invoices;
}
