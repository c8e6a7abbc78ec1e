import { z } from 'zod';

const integer = (min: number, max: number) =>
  z
    .string()
    .regex(/^-?\d+$/, 'expected a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

/** Field builders for `readConfig`. Each accepts the raw string (or undefined) from the environment. */
export const env = {
  /** A TCP port, 0 to 65535 (0 picks a free one). */
  port: (fallback: number) => integer(0, 65535).default(fallback),
  /** A whole number within bounds. */
  int: (fallback: number, bounds: { min?: number; max?: number } = {}) =>
    integer(bounds.min ?? 0, bounds.max ?? Number.MAX_SAFE_INTEGER).default(fallback),
  /** Free text with a default. */
  string: (fallback: string) => z.string().min(1).default(fallback),
  /** Free text that may be absent. */
  optionalString: () => z.string().min(1).optional(),
  /** One of a fixed set of words. */
  oneOf: <const T extends readonly [string, ...string[]]>(values: T, fallback: T[number]) =>
    z.enum(values).default(fallback as never),
  /** `true`/`false` (also 1/0, yes/no). */
  bool: (fallback: boolean) =>
    z
      .string()
      .regex(/^(true|false|1|0|yes|no)$/i, 'expected true or false')
      .transform((v) => /^(true|1|yes)$/i.test(v))
      .default(fallback),
  /** A URL whose scheme is one of `protocols` (e.g. `['postgres:', 'postgresql:']`), or absent. */
  optionalUrl: (protocols: readonly string[]) =>
    z
      .string()
      .refine((v) => URL.canParse(v), 'expected a URL')
      .refine((v) => protocols.includes(new URL(v).protocol), `expected a ${protocols.join(' or ')} URL`)
      .optional(),
  /** A URL whose scheme is one of `protocols`, with a default. */
  url: (protocols: readonly string[], fallback: string) =>
    z
      .string()
      .refine((v) => URL.canParse(v), 'expected a URL')
      .refine((v) => protocols.includes(new URL(v).protocol), `expected a ${protocols.join(' or ')} URL`)
      .default(fallback),
  /** `host:port`. */
  hostPort: (fallback: string) =>
    z
      .string()
      .regex(/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/, 'expected host:port')
      .default(fallback),
};
