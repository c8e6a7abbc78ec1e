import { describe, expect, it } from 'vitest';
import { closestImage, formatMoney, negotiateLocale, summarize } from '../src/index.ts';

describe('summarize', () => {
  it('leaves short text alone (whitespace folded)', () => {
    expect(summarize('  A  short\ntext. ', 140)).toBe('A short text.');
  });
  it('cuts at a word boundary, ellipsis included in the limit', () => {
    const text = 'alpha beta gamma delta epsilon zeta eta theta';
    const out = summarize(text, 20);
    expect(out.length).toBeLessThanOrEqual(20);
    expect(out).toBe('alpha beta gamma…');
  });
  it('drops trailing punctuation before the ellipsis', () => {
    expect(summarize('one, two, three, four, five', 15)).toBe('one, two…');
  });
  it('cuts inside a single overlong word rather than returning nothing', () => {
    expect(summarize('x'.repeat(300), 140)).toHaveLength(140);
  });
});

describe('closestImage', () => {
  const images = [
    { width: 160, url: 'a' },
    { width: 640, url: 'c' },
    { width: 320, url: 'b' },
  ];
  it('takes the narrowest that is wide enough', () => {
    expect(closestImage(images, 300)).toBe('b');
    expect(closestImage(images, 320)).toBe('b');
    expect(closestImage(images, 1)).toBe('a');
  });
  it('takes the widest when none is wide enough, and null when there are none', () => {
    expect(closestImage(images, 5000)).toBe('c');
    expect(closestImage([], 100)).toBeNull();
  });
});

describe('money and locale', () => {
  it('formats minor units by the currency’s own digits', () => {
    expect(formatMoney(123456, 'USD', 'en-US')).toBe('$1,234.56');
    expect(formatMoney(1234, 'JPY', 'en-US')).toBe('¥1,234');
    expect(formatMoney(123456, 'EUR', 'de-DE')).toBe('1.234,56\u00a0€');
  });
  it('negotiates Accept-Language by q-value, skipping malformed tags', () => {
    expect(negotiateLocale(undefined)).toBe('en-US');
    expect(negotiateLocale('fr-FR;q=0.4, de-DE;q=0.8')).toBe('de-DE');
    expect(negotiateLocale('!!bad!!, ja-JP')).toBe('ja-JP');
    expect(negotiateLocale('*')).toBe('en-US');
  });
});
