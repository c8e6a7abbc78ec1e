import { z } from 'zod';

/** Thrown when one or more environment variables are invalid; the message names each of them. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'BAD_CONFIG';
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

export type ConfigSchema = Record<string, z.ZodType>;

/**
 * Validates `source` (usually `process.env`) against `schema`, whose keys are variable names.
 * Returns a frozen, typed object. Throws a {@link ConfigError} naming every bad variable and
 * the value it received, so a container fails at start with a message an operator can act on.
 */
export function readConfig<S extends ConfigSchema>(
  schema: S,
  source: Readonly<Record<string, string | undefined>> = process.env,
): Readonly<{ [K in keyof S]: z.output<S[K]> }> {
  const input: Record<string, string | undefined> = {};
  for (const key of Object.keys(schema)) {
    const raw = source[key];
    // An empty variable means "not set": `FOO= cmd` is how people unset things in shells.
    input[key] = raw === undefined || raw.trim() === '' ? undefined : raw;
  }
  const result = z.object(schema).safeParse(input);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? '(root)');
      const received = input[name];
      return `${name}: ${issue.message}${received === undefined ? ' (not set)' : ` (received ${JSON.stringify(received)})`}`;
    });
    throw new ConfigError(problems);
  }
  return Object.freeze(result.data) as Readonly<{ [K in keyof S]: z.output<S[K]> }>;
}

/**
 * For entry points: runs `read`, and on a ConfigError prints its message (no stack: the
 * message is the whole story) and exits with status 2.
 */
export function configOrExit<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    process.exit(2);
  }
}
