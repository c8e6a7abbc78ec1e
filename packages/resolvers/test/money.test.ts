import { describe, expect, it } from 'vitest';
import { formatMoney, money } from '../src/index.ts';

// Locales and currencies chosen to cover every shape a currency format takes: symbol before
// and after, with and without a space, narrow no-break spaces, apostrophes, Indian grouping,
// grouping only from five digits (es), non-Latin digits, and 0, 2 and 3 fraction digits.
const CASES: [string, string][] = [
  ['en-US', 'USD'],
  ['en-GB', 'GBP'],
  ['de-DE', 'EUR'],
  ['fr-FR', 'EUR'],
  ['es-ES', 'EUR'],
  ['pl-PL', 'PLN'],
  ['nl-NL', 'EUR'],
  ['de-CH', 'CHF'],
  ['pt-BR', 'BRL'],
  ['ja-JP', 'JPY'],
  ['en-IN', 'INR'],
  ['ar-EG', 'EGP'],
  ['en-US', 'KWD'],
  ['sv-SE', 'SEK'],
  ['en-US', 'XXX'],
];

const digitsOf = (locale: string, currency: string) =>
  new Intl.NumberFormat(locale, { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;

describe('formatMoney', () => {
  it('writes every amount exactly as Intl.NumberFormat does, in every locale and currency', () => {
    // A fixed sequence (no Math.random): the same amounts on every run.
    let seed = 17;
    const next = () => {
      seed = (seed * 48_271) % 2_147_483_647;
      return seed;
    };
    const amounts = [0, 1, 5, 10, 99, 100, 101, 999, 1_000, 1_001, 9_999, 10_000, 123_456, -1, -123_456, 0.5];
    for (let i = 0; i < 300; i++) amounts.push(next() % 10 ** (1 + (i % 12)));
    amounts.push(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2);
    for (const [locale, currency] of CASES) {
      const intl = new Intl.NumberFormat(locale, { style: 'currency', currency });
      const scale = 10 ** digitsOf(locale, currency);
      for (const amount of amounts) {
        expect(formatMoney(amount, currency, locale), `${amount} ${currency} in ${locale}`).toBe(
          intl.format(amount / scale),
        );
      }
    }
  });

  it('falls back to a neutral format for a currency code Intl does not accept', () => {
    expect(formatMoney(1234, 'not-a-code', 'en-US')).toBe(
      new Intl.NumberFormat('en-US', { style: 'currency', currency: 'XXX' }).format(12.34),
    );
  });

  it('gives Money values a formatted getter in the locale they were made for', () => {
    const price = money(123456, 'EUR', 'de-DE');
    expect(price).toMatchObject({ amountMinor: 123456, currency: 'EUR' });
    expect(price.formatted).toBe('1.234,56\u00a0€');
    expect(money(123456, 'EUR', 'en-US').formatted).toBe('€1,234.56');
  });
});
