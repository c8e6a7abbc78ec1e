import { LIMIT_CODE } from '@bff/operation-limits';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export interface RequestGuardOptions {
  maxDocumentChars: number;
  exposeLimits: boolean;
  /** Only documents whose hash this says yes to may run (trusted documents, production mobile). */
  trustedOnly?: ((hash: string) => boolean) | undefined;
  /** Mobile app version policy. */
  appVersion?: { header: string; minimum: string; storeUrl: string } | undefined;
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
 * Cheap refusals before Apollo parses anything: the app version policy, an oversized
 * document, and (trusted-documents mode) any operation that is not in the manifest.
 */
export function registerRequestGuards(app: FastifyInstance, path: string, options: RequestGuardOptions) {
  app.addHook('preHandler', async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.routeOptions.url !== path || (request.method !== 'GET' && request.method !== 'POST')) return;

    const policy = options.appVersion;
    if (policy) {
      const version = request.headers[policy.header];
      if (typeof version === 'string') {
        const order = compareVersions(version, policy.minimum);
        if (order === undefined) {
          return refuse(reply, 400, `${policy.header} must be a version number such as 4.2.0`, {
            code: 'BAD_REQUEST',
          });
        }
        if (order < 0) {
          return refuse(reply, 426, 'This version of the app is no longer supported; please update it', {
            code: 'UPGRADE_REQUIRED',
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
        { code: LIMIT_CODE, limit: 'documentChars' },
      );
    }
    if (options.trustedOnly) {
      let extensions = params.extensions;
      if (typeof extensions === 'string') {
        try {
          extensions = JSON.parse(extensions);
        } catch {
          extensions = undefined;
        }
      }
      const hash = (extensions as { persistedQuery?: { sha256Hash?: unknown } } | undefined)?.persistedQuery
        ?.sha256Hash;
      if (typeof hash !== 'string' || !options.trustedOnly(hash)) {
        return refuse(reply, 400, 'Only the app’s registered operations may run here', {
          code: 'PERSISTED_QUERY_NOT_FOUND',
        });
      }
    }
  });
}
