import { createHash } from 'node:crypto';
import { BffErrorCode } from '@bff/error-codes';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export interface RequestGuardOptions {
  maxDocumentChars: number;
  exposeLimits: boolean;
  /** Only documents whose hash this says yes to may run (trusted documents, production mobile). */
  trustedOnly?: ((hash: string) => boolean) | undefined;
  /** Mobile app version policy. */
  appVersion?: { header: string; minimum: string; storeUrl: string } | undefined;
  /**
   * Deepest nesting of arrays and objects in `variables` and `extensions`. No input type in our
   * schemas nests past a few levels; a deeper value is an attack on whatever walks it
   * recursively (a 15,000-deep array overflows the stack of JSON.stringify). @default 32
   */
  maxValueDepth?: number;
}

function refuse(reply: FastifyReply, status: number, message: string, extensions: Record<string, unknown>) {
  return reply
    .code(status)
    .type('application/json; charset=utf-8')
    .send({ errors: [{ message, extensions }] });
}

/** Compares dotted version numbers: -1, 0 or 1; undefined when either is not one. */
export function compareVersions(a: string, b: string): number | undefined {
  const parse = (v: string) => (/^\d{1,6}(\.\d{1,6}){0,3}$/.test(v) ? v.split('.').map(Number) : undefined);
  const x = parse(a);
  const y = parse(b);
  if (!x || !y) return undefined;
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/**
 * How deep `value` nests arrays and objects, stopping as soon as it passes `max` (so the cost
 * is bounded by the value's size, and the walk never recurses).
 */
export function nestingExceeds(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop() as [unknown, number];
    if (current === null || typeof current !== 'object') continue;
    if (depth + 1 > max) return true;
    for (const child of Array.isArray(current) ? current : Object.values(current)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}

/** A GET parameter holds JSON text; a POST body holds the value itself. Undefined when unreadable. */
function jsonParameter(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch {
    return undefined; // Apollo answers unreadable parameters with its own 400
  }
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * Cheap refusals before Apollo parses anything: the app version policy, an oversized
 * document, and (trusted-documents mode) any operation that is not in the manifest.
 */
export function registerRequestGuards(app: FastifyInstance, path: string, options: RequestGuardOptions) {
  const maxValueDepth = options.maxValueDepth ?? 32;
  if (!Number.isSafeInteger(maxValueDepth) || maxValueDepth < 1)
    throw new TypeError(
      `request guards: maxValueDepth must be a positive whole number, received ${maxValueDepth}`,
    );
  app.addHook('preHandler', async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.routeOptions.url !== path || (request.method !== 'GET' && request.method !== 'POST')) return;

    const policy = options.appVersion;
    if (policy) {
      const version = request.headers[policy.header];
      if (typeof version === 'string') {
        const order = compareVersions(version, policy.minimum);
        if (order === undefined) {
          return refuse(reply, 400, `${policy.header} must be a version number such as 4.2.0`, {
            code: BffErrorCode.BadRequest,
          });
        }
        if (order < 0) {
          return refuse(reply, 426, 'This version of the app is no longer supported; please update it', {
            code: BffErrorCode.UpgradeRequired,
            minimumVersion: policy.minimum,
            storeUrl: policy.storeUrl,
          });
        }
      }
    }

    const params = (request.method === 'GET' ? request.query : request.body) as
      | Record<string, unknown>
      | unknown[]
      | null;
    if (!params || Array.isArray(params) || typeof params !== 'object') return; // Apollo answers these
    const query = params.query;
    if (typeof query === 'string' && query.length > options.maxDocumentChars) {
      return refuse(
        reply,
        400,
        options.exposeLimits
          ? `The document has ${query.length} characters; at most ${options.maxDocumentChars} are allowed`
          : 'The document is too large',
        { code: BffErrorCode.OperationLimitExceeded, limit: 'documentChars' },
      );
    }
    const variables = jsonParameter(params.variables);
    const extensions = jsonParameter(params.extensions);
    for (const [name, value] of [
      ['variables', variables],
      ['extensions', extensions],
    ] as const) {
      if (nestingExceeds(value, maxValueDepth)) {
        return refuse(
          reply,
          400,
          options.exposeLimits
            ? `${name} nests deeper than ${maxValueDepth} levels`
            : `${name} nest too deeply`,
          { code: BffErrorCode.OperationLimitExceeded, limit: 'valueDepth' },
        );
      }
    }
    const persisted = (extensions as { persistedQuery?: unknown } | null | undefined)?.persistedQuery;
    if (persisted !== undefined) {
      // Apollo answers these without a code; a client must be able to tell them apart.
      const { version, sha256Hash } = (persisted ?? {}) as { version?: unknown; sha256Hash?: unknown };
      if (version !== 1 || typeof sha256Hash !== 'string' || !SHA256_HEX.test(sha256Hash)) {
        return refuse(reply, 400, 'persistedQuery must be { version: 1, sha256Hash: <64 hex digits> }', {
          code: BffErrorCode.BadRequest,
        });
      }
      if (typeof query === 'string' && createHash('sha256').update(query).digest('hex') !== sha256Hash) {
        return refuse(reply, 400, 'The query does not hash to persistedQuery.sha256Hash', {
          code: BffErrorCode.PersistedQueryHashMismatch,
        });
      }
    }
    if (options.trustedOnly) {
      const hash = (persisted as { sha256Hash?: unknown } | undefined)?.sha256Hash;
      if (typeof hash !== 'string' || !options.trustedOnly(hash)) {
        return refuse(reply, 400, 'Only the app’s registered operations may run here', {
          code: BffErrorCode.PersistedQueryNotFound,
        });
      }
    }
  });
}
