const DEFAULT_LOCALE = 'en-US';
/**
 * How one locale writes one currency. `pattern` is the same output built with string
 * operations (see `compilePattern`), used for every amount it is proven to agree with Intl on;
 * undefined where it is not (Indian grouping, non-Latin digits, …), and Intl does the work.
 */
type Formatter = { format: Intl.NumberFormat; scale: number; digits: number; pattern: Pattern | undefined };
/** By locale, then by currency: no key string is built per value formatted. */
const formatters = new Map<string, Map<string, Formatter>>();
const negotiated = new Map<string, string>();
const CACHE_LIMIT = 1_000;
let formatterCount = 0;

function formatter(locale: string, currency: string): Formatter {
  let byCurrency = formatters.get(locale);
  let f = byCurrency?.get(currency);
  if (f) return f;
  let format: Intl.NumberFormat;
  try {
    format = new Intl.NumberFormat(locale, { style: 'currency', currency });
  } catch {
    format = new Intl.NumberFormat(DEFAULT_LOCALE, { style: 'currency', currency: 'XXX' });
  }
  const options = format.resolvedOptions();
  const digits = options.maximumFractionDigits ?? 2;
  f = { format, scale: 10 ** digits, digits, pattern: undefined };
  if (options.minimumFractionDigits === digits) f.pattern = compilePattern(f);
  if (formatterCount >= CACHE_LIMIT) {
    formatters.clear();
    formatterCount = 0;
    byCurrency = undefined;
  }
  if (!byCurrency) {
    byCurrency = new Map();
    formatters.set(locale, byCurrency);
  }
  byCurrency.set(currency, f);
  formatterCount++;
  return f;
}

/** A currency format as text around a number grouped by thousands. */
interface Pattern {
  prefix: string;
  suffix: string;
  group: string;
  decimal: string;
}

/** Amounts (in minor units) a pattern must reproduce exactly before it is trusted. */
const PROOF_AMOUNTS = [
  0, 1, 7, 99, 100, 999, 1_000, 12_345, 99_999, 100_000, 1_234_567, 123_456_789, 9_876_543_210_123,
];

/**
 * Reads the pattern off Intl's own parts for one amount, then checks it against Intl on a set
 * of amounts that exercise every grouping and fraction case. Intl.NumberFormat#format costs
 * about a microsecond per call, and a page of invoices formats well over a hundred amounts.
 */
function compilePattern(f: Formatter): Pattern | undefined {
  let prefix = '';
  let suffix = '';
  let group = '';
  let decimal = '';
  let seenNumber = false;
  for (const part of f.format.formatToParts(1_234_567 + (f.digits > 0 ? 0.5 : 0))) {
    switch (part.type) {
      case 'integer':
        if (!/^[0-9]+$/.test(part.value)) return undefined;
        seenNumber = true;
        break;
      case 'fraction':
        if (!/^[0-9]+$/.test(part.value)) return undefined;
        break;
      case 'group':
        group = part.value;
        break;
      case 'decimal':
        decimal = part.value;
        break;
      case 'currency':
      case 'literal':
        if (seenNumber) suffix += part.value;
        else prefix += part.value;
        break;
      default:
        return undefined; // a sign, an exponent, a compact form: not a plain amount
    }
  }
  const pattern = { prefix, suffix, group, decimal };
  for (const amount of PROOF_AMOUNTS) {
    if (applyPattern(pattern, f, amount) !== f.format.format(amount / f.scale)) return undefined;
  }
  return pattern;
}

function applyPattern(p: Pattern, f: Formatter, amountMinor: number): string {
  const units = Math.floor(amountMinor / f.scale);
  let integer = String(units);
  if (p.group && integer.length > 3) {
    let grouped = integer.slice(0, integer.length % 3 || 3);
    for (let i = grouped.length; i < integer.length; i += 3) grouped += p.group + integer.slice(i, i + 3);
    integer = grouped;
  }
  if (f.digits === 0) return p.prefix + integer + p.suffix;
  const fraction = String(amountMinor - units * f.scale).padStart(f.digits, '0');
  return p.prefix + integer + p.decimal + fraction + p.suffix;
}

/** Formats integer minor units in `currency` for `locale`: 123456 USD in de-DE is "1.234,56 $". */
export function formatMoney(amountMinor: number, currency: string, locale: string): string {
  const f = formatter(locale, currency);
  // The pattern covers what it was proven on: whole, non-negative amounts, up to where
  // `amountMinor / scale` stops being exact enough for Intl's rounding to agree with it.
  if (f.pattern && amountMinor >= 0 && amountMinor <= 1e15 && Number.isInteger(amountMinor))
    return applyPattern(f.pattern, f, amountMinor);
  return f.format.format(amountMinor / f.scale);
}

/**
 * A `Money` as resolvers return it. `formatted` is a getter, worked out only when a client
 * asks for it, in the locale of the request that made the value, so the schema needs no
 * resolver for it: a field without a resolver is a plain property read for the executor,
 * with no resolve info, path or promise allocated for it. Build every `Money` with `money()`.
 */
export class Money {
  constructor(
    readonly amountMinor: number,
    readonly currency: string,
    private readonly locale: string,
  ) {}

  get formatted(): string {
    return formatMoney(this.amountMinor, this.currency, this.locale);
  }
}

/** A `Money` field's value: integer minor units in `currency`, formatted for `locale` if asked. */
export function money(amountMinor: number, currency: string, locale: string): Money {
  return new Money(amountMinor, currency, locale);
}

/**
 * The best locale this runtime can format for, from an Accept-Language header (q-values
 * honoured, malformed tags skipped); `en-US` when nothing fits.
 */
export function negotiateLocale(header: string | undefined): string {
  if (!header) return DEFAULT_LOCALE;
  const cached = negotiated.get(header);
  if (cached) return cached;
  const ranked = header
    .slice(0, 256)
    .split(',')
    .map((part, index) => {
      const [tag = '', ...params] = part.trim().split(';');
      const q = params.map((p) => /^\s*q=([0-9.]+)\s*$/.exec(p)?.[1]).find(Boolean);
      return { tag: tag.trim(), q: q === undefined ? 1 : Number(q), index };
    })
    .filter((entry) => entry.tag && entry.tag !== '*' && entry.q > 0)
    .sort((a, b) => b.q - a.q || a.index - b.index);
  let locale = DEFAULT_LOCALE;
  for (const { tag } of ranked) {
    try {
      const [supported] = Intl.NumberFormat.supportedLocalesOf(tag);
      if (supported) {
        locale = supported;
        break;
      }
    } catch {
      // not a well-formed language tag
    }
  }
  if (negotiated.size >= CACHE_LIMIT) negotiated.clear();
  negotiated.set(header, locale);
  return locale;
}
