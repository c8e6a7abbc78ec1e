const DEFAULT_LOCALE = 'en-US';
/** A formatter and its currency's minor-unit digits (resolvedOptions() allocates: ask once). */
type Formatter = { format: Intl.NumberFormat; scale: number };
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
  f = { format, scale: 10 ** (format.resolvedOptions().maximumFractionDigits ?? 2) };
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

/** Formats integer minor units in `currency` for `locale`: 123456 USD in de-DE is "1.234,56 $". */
export function formatMoney(amountMinor: number, currency: string, locale: string): string {
  const f = formatter(locale, currency);
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
