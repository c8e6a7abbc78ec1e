import { createHash } from 'node:crypto';
import type { ApolloServerPlugin } from '@apollo/server';
import { BffErrorCode } from '@bff/error-codes';
import type { BffContext } from '@bff/resolvers';
import { getDirective, MapperKind, mapSchema } from '@graphql-tools/utils';
import {
  type DocumentNode,
  defaultFieldResolver,
  type FieldNode,
  type FragmentDefinitionNode,
  GraphQLError,
  type GraphQLFieldResolver,
  GraphQLIncludeDirective,
  type GraphQLSchema,
  GraphQLSkipDirective,
  getArgumentValues,
  getDirectiveValues,
  getVariableValues,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import { getGraphQLRateLimiter, type Identity, type Store } from 'graphql-rate-limit';
import ms from 'ms';
import { builtInNormalizers, type RateLimitKeyNormalizer } from './normalizers.ts';
import type { RateLimitHit, RateLimitStore } from './store.ts';

/**
 * SDL for the directives, for schemas that do not declare them already (the BFFs declare all
 * three, with their documentation, in schema/graphql/base.graphql).
 */
export const rateLimitDirectiveTypeDefs = /* GraphQL */ `
  "At most max calls per window (e.g. \\"1m\\") per viewer, or per client address when signed out."
  directive @rateLimit(
    max: Int
    window: String
    message: String
    identityArgs: [String]
    arrayLengthField: String
  ) on FIELD_DEFINITION
  "How this argument's value is normalised before it keys a limit: a normaliser's name, e.g. \\"email\\"."
  directive @rateLimitKey(normalize: String!) on ARGUMENT_DEFINITION
  "Limits against credential stuffing (per account, from every client) and password spraying (per client, over every account)."
  directive @credentialRateLimit(
    accountArgs: [String!]!
    perAccountMax: Int
    perAccountWindow: String
    perClientMax: Int
    perClientWindow: String
  ) on FIELD_DEFINITION
`;

/**
 * Used by `@credentialRateLimit` where it does not say: an account is tried at most 10 times per
 * 15 minutes from all clients together (the real owner too, so an attacker can keep it locked
 * for one window after their last try, never longer), and one client address tries at most 60
 * sign-ins per 15 minutes whatever the account (an office behind one NAT stays well under it).
 */
export const CREDENTIAL_RATE_LIMIT_DEFAULTS = Object.freeze({
  perAccount: Object.freeze({ max: 10, window: '15m' }),
  perClient: Object.freeze({ max: 60, window: '15m' }),
});

export interface RateLimitOptions {
  store: RateLimitStore;
  /** Prefix of every store key: keeps apps (and deployments sharing a Redis) apart. */
  keyPrefix: string;
  /** Applied to every Query and Mutation field without its own `@rateLimit`. */
  defaults?: { max: number; window: string } | undefined;
  /** A store that fails or is slow: 'open' lets the call through (counted), 'closed' refuses it. @default 'open' */
  onStoreFailure?: 'open' | 'closed';
  /** Longest one store check may take, in ms. @default 150 */
  storeTimeoutMs?: number;
  /** Told about every store failure, e.g. to log it. */
  onStoreError?: (error: unknown) => void;
  /**
   * Told about every limit checked: 'allowed', 'limited' (over the limit, or the store failing
   * under 'closed'), or 'skipped' (the store failing under 'open'). For metrics and the log.
   */
  onDecision?: ((decision: RateLimitDecision, context: BffContext) => void) | undefined;
  /**
   * Normalisers `@rateLimitKey(normalize: "name")` may name, besides the built-in `email`
   * (see foldEmail) and `trim`. Each must be at least as coarse as the upstream's matching.
   */
  normalizers?: Readonly<Record<string, RateLimitKeyNormalizer>> | undefined;
}

/** What one limit check decided. */
export type RateLimitDecision = 'allowed' | 'limited' | 'skipped';

export interface RateLimitStats {
  /** Store checks that failed or timed out. */
  storeFailures: number;
  /** Calls let through because the store failed under the 'open' policy. */
  failedOpen: number;
  /** Calls refused for being over a limit (or, under 'closed', for a store failure). */
  refused: number;
}

export interface RateLimiting {
  /** Wraps the fields that carry `@rateLimit` (and root fields, when there are defaults). */
  transformSchema(schema: GraphQLSchema): GraphQLSchema;
  /** Sets RateLimit-* headers, and HTTP 429 with Retry-After when a whole operation is refused. */
  plugin: ApolloServerPlugin<BffContext>;
  /**
   * Spends, for an operation that will not be executed (its answer comes from a cache), what
   * executing it would spend on the limits of its root fields (every alias, every list item),
   * and returns the refusals, empty when it may be served. Limits on nested fields are spent
   * only by execution.
   */
  admit(request: {
    schema: GraphQLSchema;
    document: DocumentNode;
    operation: OperationDefinitionNode;
    variables: Record<string, unknown> | undefined;
    context: BffContext;
  }): Promise<GraphQLError[]>;
  stats: RateLimitStats;
}

/**
 * Whose budget a limit spends. 'caller': the viewer, or the client address when signed out
 * (`@rateLimit`). 'account': only the identity arguments, whoever calls. 'client': only the
 * client address, signed in or not, whatever the arguments.
 */
type LimitScope = 'caller' | 'account' | 'client';

interface FieldLimit {
  scope: LimitScope;
  max: number;
  windowMs: number;
  window: string;
  message: string | undefined;
  identityArgs: string[] | undefined;
  arrayLengthField: string | undefined;
  /** What graphql-rate-limit is given for this field, built once. */
  config: {
    max: number;
    window: string;
    message?: string;
    identityArgs?: string[];
    arrayLengthField?: string;
  };
}

interface RequestState {
  limit: number;
  remaining: number;
  resetSeconds: number;
  retryAfter: number;
  storeDown: boolean;
}

const RATE_LIMITED = BffErrorCode.RateLimited;
const SCOPE_ORDER: Record<LimitScope, number> = { client: 0, account: 1, caller: 2 };

export function createRateLimiting(options: RateLimitOptions): RateLimiting {
  if (!options.store || typeof options.store.hit !== 'function')
    throw new TypeError('createRateLimiting: store must be a RateLimitStore');
  if (!/^[\w:.-]{1,64}$/.test(options.keyPrefix)) {
    throw new TypeError(
      `createRateLimiting: keyPrefix must be 1-64 word characters, received ${JSON.stringify(options.keyPrefix)}`,
    );
  }
  const policy = options.onStoreFailure ?? 'open';
  if (policy !== 'open' && policy !== 'closed') {
    throw new TypeError(
      `createRateLimiting: onStoreFailure must be 'open' or 'closed', received ${JSON.stringify(policy)}`,
    );
  }
  const timeoutMs = options.storeTimeoutMs ?? 150;
  const defaults = options.defaults ? parseLimit('defaults', options.defaults, 'caller') : undefined;
  const normalizers = new Map(Object.entries(builtInNormalizers));
  for (const [name, normalize] of Object.entries(options.normalizers ?? {})) {
    if (!/^\w{1,32}$/.test(name) || typeof normalize !== 'function') {
      throw new TypeError(
        `createRateLimiting: normalizers must map names to functions, received ${JSON.stringify(name)}: ${typeof normalize}`,
      );
    }
    normalizers.set(name, normalize);
  }
  const stats: RateLimitStats = { storeFailures: 0, failedOpen: 0, refused: 0 };
  /** Each limited field's limits and key normalisers, by `Type.field`, filled by transformSchema. */
  const limitedFields = new Map<
    string,
    { fieldLimits: FieldLimit[]; keyNormalizers: [string, RateLimitKeyNormalizer][] }
  >();
  const states = new WeakMap<BffContext, RequestState>();

  // Each scope has its own key space, so that a caller's key can never be another scope's.
  const identifiers: Record<LimitScope, (context: BffContext) => string> = {
    caller: (context) => (context.viewer ? `user:${context.viewer.id}` : `ip:${context.clientAddress}`),
    // Nothing about the caller: every client and replica spends the same budget for an account.
    account: () => 'account',
    client: (context) => `client:${context.clientAddress}`,
  };
  const keyOf = (identity: Identity, limit: FieldLimit) => {
    const raw = `${identity.contextIdentity}:${identity.fieldIdentity}`;
    // Identity arguments (an email, a search text) are personal and can be long: keep them out
    // of the store as they are; keys stay short and opaque, the same on every replica.
    return `${options.keyPrefix}:${limit.identityArgs || raw.length > 120 ? createHash('sha256').update(raw).digest('base64url') : raw}`;
  };

  /** This call's view of the store, read synchronously by the limiter as a call begins. */
  interface PendingCheck {
    limit: FieldLimit;
    count: number;
    hit?: RateLimitHit;
    storeError?: unknown;
  }
  let pending: PendingCheck | undefined;
  // One store and one limiter for the process. graphql-rate-limit asks the store for a key's
  // recent calls and compares their number with the limit; the store records the call
  // atomically itself (setForIdentity does nothing). It is told only "under" (no calls) or
  // "over" (as many calls as there are), so each check costs the same whatever the limit,
  // instead of building and filtering an array as long as the window's traffic.
  const store: Store = {
    getForIdentity: async (identity: Identity) => {
      const call = pending as PendingCheck;
      pending = undefined;
      try {
        const hit = await withTimeout(
          options.store.hit(keyOf(identity, call.limit), call.limit.windowMs, call.count, call.limit.max),
          timeoutMs,
        );
        call.hit = hit;
        // Over: just enough calls for the limiter to see the limit passed, never more than max.
        return hit.before + call.count > call.limit.max
          ? new Array<number>(Math.max(0, call.limit.max - call.count + 1)).fill(hit.now)
          : [];
      } catch (error) {
        call.storeError = error;
        return [];
      }
    },
    setForIdentity: () => {},
  };
  const formatError = ({ fieldName, max, window }: { fieldName: string; max: number; window: number }) =>
    `Too many ${fieldName} requests: at most ${max} per ${ms(window, { long: true })}`;
  const limiters = {
    caller: getGraphQLRateLimiter({ identifyContext: identifiers.caller, store, formatError }),
    account: getGraphQLRateLimiter({ identifyContext: identifiers.account, store, formatError }),
    client: getGraphQLRateLimiter({ identifyContext: identifiers.client, store, formatError }),
  };

  async function check(
    limit: FieldLimit,
    source: unknown,
    args: Record<string, unknown>,
    keyArgs: Record<string, unknown>,
    context: BffContext,
    info: Parameters<GraphQLFieldResolver<unknown, BffContext>>[3],
  ) {
    const call: PendingCheck = { limit, count: countOf(args, limit.arrayLengthField) };
    // The limiter calls the store before its first await, so the store picks this call up
    // before any other check can begin.
    pending = call;
    const limited = limiters[limit.scope]({ parent: source, args: keyArgs, context, info }, limit.config);
    const consulted = pending !== call;
    pending = undefined;
    const message = await limited;
    if (!consulted)
      throw new Error('rate limiting: graphql-rate-limit did not consult the store as a call began');
    const { hit, storeError } = call;

    if (storeError !== undefined) {
      stats.storeFailures++;
      options.onStoreError?.(storeError);
      if (policy === 'open') {
        stats.failedOpen++;
        options.onDecision?.('skipped', context);
        return;
      }
      stats.refused++;
      options.onDecision?.('limited', context);
      track(context, { limit: limit.max, remaining: 0, resetSeconds: 1, retryAfter: 1, storeDown: true });
      throw new GraphQLError('Rate limiting is unavailable; retry shortly', {
        extensions: { code: RATE_LIMITED, reason: 'STORE_UNAVAILABLE', retryAfter: 1, limit: limit.max },
      });
    }
    const current = hit as RateLimitHit;
    const resetMs =
      current.oldest === undefined ? limit.windowMs : current.oldest + limit.windowMs - current.now;
    const retryAfter = Math.max(1, Math.ceil(resetMs / 1000));
    track(context, {
      limit: limit.max,
      remaining: Math.max(0, limit.max - current.before - call.count),
      resetSeconds: Math.max(1, Math.ceil((message ? resetMs : limit.windowMs) / 1000)),
      retryAfter,
      storeDown: false,
    });
    options.onDecision?.(message ? 'limited' : 'allowed', context);
    if (message) {
      stats.refused++;
      throw new GraphQLError(message, {
        extensions: {
          code: RATE_LIMITED,
          retryAfter,
          limit: limit.max,
          windowSeconds: Math.ceil(limit.windowMs / 1000),
        },
      });
    }
  }

  function track(context: BffContext, next: RequestState) {
    const previous = states.get(context);
    if (
      !previous ||
      next.remaining < previous.remaining ||
      (next.remaining === previous.remaining && next.retryAfter > previous.retryAfter)
    ) {
      states.set(context, next);
    }
  }

  return {
    stats,
    async admit({ schema, document, operation, variables: given, context }) {
      const root = schema.getRootType(operation.operation);
      if (!root) return [];
      // Coerced first: a limit counts list items by `length`, and `{"length": 4294967295}` is not a list.
      const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], given ?? {});
      if (coerced.errors) {
        return coerced.errors.map(
          (error) =>
            new GraphQLError(error.message, {
              extensions: { code: BffErrorCode.BadUserInput, http: { status: 400 } },
            }),
        );
      }
      const variables = coerced.coerced;
      const fragments = new Map<string, FragmentDefinitionNode>();
      for (const definition of document.definitions)
        if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
      const refusals: GraphQLError[] = [];
      // In document order, one check per response key (each alias), as execution resolves them.
      const byResponseKey = new Map<string, FieldNode>();
      for (const node of rootFields(operation.selectionSet, fragments, variables ?? {}, new Set())) {
        const responseKey = node.alias?.value ?? node.name.value;
        if (!byResponseKey.has(responseKey)) byResponseKey.set(responseKey, node);
      }
      for (const node of byResponseKey.values()) {
        const name = node.name.value;
        const limited = limitedFields.get(`${root.name}.${name}`);
        const definition = root.getFields()[name];
        if (!limited || !definition) continue;
        let args: Record<string, unknown>;
        try {
          args = getArgumentValues(definition, node, variables ?? {});
        } catch {
          continue; // variables were validated before; nothing to spend on what cannot run
        }
        const keyArgs = normalizeArgs(args, limited.keyNormalizers);
        const info = { fieldName: name } as Parameters<GraphQLFieldResolver<unknown, BffContext>>[3];
        try {
          for (const fieldLimit of limited.fieldLimits)
            await check(fieldLimit, undefined, args, keyArgs, context, info);
        } catch (error) {
          if (error instanceof GraphQLError) refusals.push(error);
          else throw error;
        }
      }
      return refusals;
    },
    transformSchema(schema) {
      const roots = new Set([schema.getQueryType()?.name, schema.getMutationType()?.name].filter(Boolean));
      return mapSchema(schema, {
        [MapperKind.OBJECT_FIELD]: (fieldConfig, fieldName, typeName) => {
          const where = `${typeName}.${fieldName}`;
          const declared = getDirective(schema, fieldConfig, 'rateLimit')?.[0];
          const limit = declared
            ? parseLimit(where, declared, 'caller')
            : roots.has(typeName)
              ? defaults
              : undefined;
          const credential = getDirective(schema, fieldConfig, 'credentialRateLimit')?.[0];
          // Coarsest budget first (the client's, then the account's, then the caller's per
          // identity arguments): a client already refused records nothing in the finer budgets,
          // so it can neither grow the store with a key per email it tries nor spend the
          // budgets of the accounts it names.
          const fieldLimits = [
            ...(limit ? [limit] : []),
            ...(credential
              ? parseCredentialLimits(where, credential, Object.keys(fieldConfig.args ?? {}))
              : []),
          ].sort((a, b) => SCOPE_ORDER[a.scope] - SCOPE_ORDER[b.scope]);
          // Each argument's normaliser, named once here: an unknown name fails at start-up.
          const keyNormalizers: [string, RateLimitKeyNormalizer][] = [];
          for (const [argName, argConfig] of Object.entries(fieldConfig.args ?? {})) {
            const declaredKey = getDirective(schema, argConfig, 'rateLimitKey')?.[0];
            if (!declaredKey) continue;
            const name = declaredKey.normalize as unknown;
            const normalize = typeof name === 'string' ? normalizers.get(name) : undefined;
            if (!normalize) {
              throw new TypeError(
                `@rateLimitKey on ${where}(${argName}): normalize must be one of ${[...normalizers.keys()].map((n) => JSON.stringify(n)).join(', ')}, received ${JSON.stringify(name)}`,
              );
            }
            keyNormalizers.push([argName, normalize]);
          }
          if (fieldLimits.length === 0) return fieldConfig;
          limitedFields.set(where, { fieldLimits, keyNormalizers });
          // A subscription spends its limits once, when it subscribes (`admit`), not again for
          // every event it is sent: its resolver runs per event.
          if (typeName === schema.getSubscriptionType()?.name) return fieldConfig;
          const resolve: GraphQLFieldResolver<unknown, BffContext> =
            fieldConfig.resolve ?? defaultFieldResolver;
          return {
            ...fieldConfig,
            async resolve(source, args, context, info) {
              const keyArgs = normalizeArgs(args, keyNormalizers);
              // In order, stopping at the first refusal: a call refused for one budget does not
              // spend the finer ones.
              for (const fieldLimit of fieldLimits)
                await check(fieldLimit, source, args, keyArgs, context, info);
              return resolve(source, args, context, info);
            },
          };
        },
      });
    },
    plugin: {
      async requestDidStart() {
        return {
          async willSendResponse({ response, contextValue }) {
            const state = states.get(contextValue);
            if (!state) return;
            response.http.headers.set('ratelimit-limit', String(state.limit));
            response.http.headers.set('ratelimit-remaining', String(state.remaining));
            response.http.headers.set('ratelimit-reset', String(state.resetSeconds));
            if (response.body.kind !== 'single') return;
            const { data, errors } = response.body.singleResult;
            const refused =
              errors !== undefined &&
              errors.length > 0 &&
              errors.every((e) => e.extensions?.code === RATE_LIMITED) &&
              (data === null || data === undefined || Object.values(data).every((value) => value === null));
            if (refused) {
              response.http.status = state.storeDown ? 503 : 429;
              response.http.headers.set('retry-after', String(state.retryAfter));
            }
          },
        };
      },
    },
  };
}

/** The root fields an operation selects with these variables: fragments expanded, `@skip`/`@include` applied. */
function rootFields(
  selectionSet: SelectionSetNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  variables: Record<string, unknown>,
  visited: Set<string>,
): FieldNode[] {
  const fields: FieldNode[] = [];
  for (const selection of selectionSet.selections) {
    const skip = getDirectiveValues(GraphQLSkipDirective, selection, variables);
    const include = getDirectiveValues(GraphQLIncludeDirective, selection, variables);
    if (skip?.if === true || include?.if === false) continue;
    if (selection.kind === Kind.FIELD) fields.push(selection);
    else if (selection.kind === Kind.INLINE_FRAGMENT)
      fields.push(...rootFields(selection.selectionSet, fragments, variables, visited));
    else {
      const name = selection.name.value;
      const fragment = fragments.get(name);
      if (!fragment || visited.has(name)) continue;
      visited.add(name);
      fields.push(...rootFields(fragment.selectionSet, fragments, variables, visited));
    }
  }
  return fields;
}

function normalizeArgs(
  args: Record<string, unknown>,
  keyNormalizers: readonly [string, RateLimitKeyNormalizer][],
): Record<string, unknown> {
  if (keyNormalizers.length === 0) return args;
  const keyArgs = { ...args };
  for (const [name, normalize] of keyNormalizers) {
    const value = keyArgs[name];
    if (typeof value === 'string') keyArgs[name] = normalize(value);
  }
  return keyArgs;
}

/** The per-account and per-client limits of one `@credentialRateLimit`. */
function parseCredentialLimits(
  where: string,
  raw: Record<string, unknown>,
  argNames: readonly string[],
): FieldLimit[] {
  const accountArgs = raw.accountArgs as unknown;
  if (
    !Array.isArray(accountArgs) ||
    accountArgs.length === 0 ||
    !accountArgs.every((name) => typeof name === 'string' && argNames.includes(name))
  ) {
    throw new TypeError(
      `@credentialRateLimit on ${where}: accountArgs must name arguments of the field (${argNames.join(', ')}), received ${JSON.stringify(accountArgs)}`,
    );
  }
  const { perAccount, perClient } = CREDENTIAL_RATE_LIMIT_DEFAULTS;
  return [
    parseLimit(
      where,
      {
        max: raw.perAccountMax ?? perAccount.max,
        window: raw.perAccountWindow ?? perAccount.window,
        identityArgs: accountArgs,
      },
      'account',
      '@credentialRateLimit perAccount',
    ),
    parseLimit(
      where,
      { max: raw.perClientMax ?? perClient.max, window: raw.perClientWindow ?? perClient.window },
      'client',
      '@credentialRateLimit perClient',
    ),
  ];
}

function parseLimit(
  where: string,
  raw: Record<string, unknown>,
  scope: LimitScope,
  directive = '@rateLimit',
): FieldLimit {
  const max = raw.max ?? 60;
  const window = (raw.window as string | undefined) ?? '1m';
  if (!Number.isInteger(max) || (max as number) < 1)
    throw new TypeError(
      `${directive} on ${where}: max must be a positive whole number, received ${String(max)}`,
    );
  const windowMs = typeof window === 'string' ? ms(window as ms.StringValue) : Number.NaN;
  if (!Number.isFinite(windowMs) || windowMs < 1_000) {
    throw new TypeError(
      `${directive} on ${where}: window must be a duration of at least 1s such as "1m", received ${JSON.stringify(window)}`,
    );
  }
  const message = raw.message as string | undefined;
  const identityArgs = raw.identityArgs as string[] | undefined;
  const arrayLengthField = raw.arrayLengthField as string | undefined;
  return {
    scope,
    max: max as number,
    window,
    windowMs,
    message,
    identityArgs,
    arrayLengthField,
    config: {
      max: max as number,
      window,
      ...(message ? { message } : {}),
      ...(identityArgs ? { identityArgs } : {}),
      ...(arrayLengthField ? { arrayLengthField } : {}),
    },
  };
}

function countOf(args: Record<string, unknown>, path: string | undefined): number {
  if (!path) return 1;
  let value: unknown = args;
  for (const part of path.split('.')) value = (value as Record<string, unknown> | undefined)?.[part];
  return Array.isArray(value) && value.length > 0 ? value.length : 1;
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`rate limit store did not answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
