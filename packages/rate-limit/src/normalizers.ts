/**
 * Turns an argument value into the text that keys a limit. It must be at least as coarse as
 * the upstream's own matching: two spellings the upstream resolves to one account must give one
 * key, or each spelling gets its own budget against the same account. Coarser is safe (a few
 * look-alike addresses share one bucket); finer is the bug.
 */
export type RateLimitKeyNormalizer = (value: string) => string;

/**
 * An email as a rate-limit key. Identity finds an account with `lower(email) = lower($1)`
 * (services/identity/src/users.ts), so every case variant is the same account; PostgreSQL's
 * `lower` and JavaScript's differ on a few letters (`İ`, final `ς`), and clients send
 * compatibility forms (full-width letters), decomposed accents and stray spaces, so the key is
 * folded further than Identity does:
 * - NFKC first, so full-width and other compatibility forms become their plain letters;
 * - surrounding white space trimmed, and invisible format characters (zero-width joiners, BOM) dropped;
 * - upper- then lower-cased one character at a time: `ß`→`ss`, and no context-dependent
 *   final sigma;
 * - decomposed and stripped of combining marks, which also absorbs the dot `İ` leaves behind.
 */
export function foldEmail(value: string): string {
  // Lower-cased first: spellings JavaScript's lower case makes equal stay equal whatever follows.
  const upper = value.toLowerCase().normalize('NFKC').trim().toUpperCase();
  let folded = '';
  for (const character of upper) folded += character.toLowerCase();
  return folded
    .normalize('NFKD')
    .replace(/[\p{M}\p{Cf}]/gu, '')
    .trim();
}

/** The normalisers `@rateLimitKey(normalize:)` can name without any option. */
export const builtInNormalizers: Readonly<Record<string, RateLimitKeyNormalizer>> = Object.freeze({
  email: foldEmail,
  /** Surrounding white space only, e.g. for a search text. */
  trim: (value: string) => value.trim(),
});
