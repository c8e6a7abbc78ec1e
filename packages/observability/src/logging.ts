import type { DestinationStream, LoggerOptions } from 'pino';

/** How people (pretty) or machines (JSON lines) read the log. */
export type LogFormat = 'json' | 'pretty';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Paths pino censors in every line: credentials in headers, whatever a request or reply carries. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
] as const;

export interface LoggerSettings {
  /** Fields on every line, e.g. `{ app: 'web' }` or `{ service: 'billing' }`. */
  base: Record<string, string>;
  /** @default 'info' */
  level?: string;
  /** @default 'json' */
  format?: LogFormat;
  /** Where JSON lines go (tests collect them); stdout otherwise. */
  destination?: { write(line: string): void } | undefined;
}

/**
 * pino options shared by every process: JSON lines with ISO time and the level as a word,
 * credentials censored; `pretty` renders through pino-pretty for a person at a terminal.
 */
export function loggerOptions(settings: LoggerSettings): LoggerOptions & { stream?: DestinationStream } {
  const level = settings.level ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level))
    throw new TypeError(
      `loggerOptions: level must be one of ${LOG_LEVELS.join(', ')}, received ${JSON.stringify(level)}`,
    );
  const format = settings.format ?? 'json';
  if (format !== 'json' && format !== 'pretty')
    throw new TypeError(
      `loggerOptions: format must be "json" or "pretty", received ${JSON.stringify(format)}`,
    );
  return {
    level,
    base: settings.base,
    redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
    formatters: { level: (label) => ({ level: label }) },
    timestamp: () => `,"time":"${new Date().toISOString()}"`,
    ...(settings.destination
      ? { stream: settings.destination as DestinationStream }
      : format === 'pretty'
        ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l' } } }
        : {}),
  };
}

const SENSITIVE_KEY = /pass|secret|token|auth|cookie|session|e-?mail|phone|card|iban|ssn|birth|address/i;
const EMAIL = /[^\s@]+@[^\s@]+\.[^\s@]+/;
const MAX_NODES = 200;
const MAX_DEPTH = 8;
const MAX_STRING = 200;

/**
 * A copy of GraphQL variables fit for a log line: values under keys that name a secret or
 * personal data, and any string that holds an email address, are replaced by `[redacted]`;
 * long strings, deep nesting and big inputs are cut. Never throws, whatever a client sent.
 */
export function redactVariables(variables: unknown): unknown {
  let budget = MAX_NODES;
  const walk = (value: unknown, depth: number): unknown => {
    if (--budget < 0) return '[truncated]';
    if (typeof value === 'string') {
      if (EMAIL.test(value)) return '[redacted]';
      return value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}…` : value;
    }
    if (value === null || typeof value !== 'object') return value;
    if (depth >= MAX_DEPTH) return '[truncated]';
    if (Array.isArray(value)) return value.slice(0, 20).map((item) => walk(item, depth + 1));
    const copy: Record<string, unknown> = {};
    for (const key of Object.keys(value).slice(0, 50)) {
      copy[key] = SENSITIVE_KEY.test(key)
        ? '[redacted]'
        : walk((value as Record<string, unknown>)[key], depth + 1);
    }
    return copy;
  };
  return walk(variables, 0);
}
