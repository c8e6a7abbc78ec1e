import type { ApolloServerPlugin } from '@apollo/server';
import { BffErrorCode } from '@bff/error-codes';
import { type BffContext, describeUpstreamError, type Viewer } from '@bff/resolvers';
import { UpstreamError } from '@bff/upstream-clients';
import {
  type DocumentNode,
  type FragmentDefinitionNode,
  GraphQLError,
  type GraphQLSchema,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import { forbidden, requirementOf, unauthenticated } from './directives.ts';
import { readSessionToken } from './session-cookie.ts';
import { type JwtVerifier, TokenRejectedError } from './verifier.ts';

export interface AuthPluginOptions {
  verifier: JwtVerifier;
  /**
   * Also read the token from the session cookie (SESSION_COOKIE) when there is no Authorization
   * header (web). @default false
   */
  sessionCookie?: boolean | undefined;
}

type Verified =
  | { viewer: Viewer | null; error?: undefined }
  | { viewer?: undefined; error: GraphQLError | unknown };

/**
 * Puts the viewer on the context before execution. A bad bearer token refuses the whole
 * request with 401 UNAUTHENTICATED (`extensions.reason` says `expired`, `malformed` or
 * `invalid`); a bad session cookie is dropped and the request goes on anonymous. An operation
 * whose every root field needs a viewer (or a role) it does not have is refused as a whole,
 * 401 or 403; otherwise the fields are refused one by one by `applyAuthDirectives`.
 */
export function createAuthPlugin(options: AuthPluginOptions): ApolloServerPlugin<BffContext> {
  if (!options.verifier || typeof options.verifier.verify !== 'function') {
    throw new TypeError('createAuthPlugin: verifier must be a JwtVerifier');
  }
  if (options.sessionCookie !== undefined && typeof options.sessionCookie !== 'boolean') {
    throw new TypeError(
      `createAuthPlugin: sessionCookie must be a boolean, received ${JSON.stringify(options.sessionCookie)}`,
    );
  }
  const readsCookie = options.sessionCookie === true;
  return {
    async requestDidStart({ request, contextValue }) {
      const authorization = request.http?.headers.get('authorization') ?? undefined;
      let pending: Promise<Verified>;
      if (authorization !== undefined) {
        pending = bearer(authorization).then(
          (viewer) => ({ viewer }),
          (error: unknown) => ({ error: toGraphQLError(error) }),
        );
      } else {
        const cookie = readsCookie ? readSessionToken(request.http?.headers.get('cookie')) : undefined;
        pending = cookie
          ? options.verifier.verify(cookie).then(
              (viewer) => ({ viewer }),
              (error: unknown) => {
                if (!(error instanceof TokenRejectedError)) return { error: toGraphQLError(error) };
                contextValue.session?.end();
                return { viewer: null };
              },
            )
          : Promise.resolve({ viewer: null });
      }
      // Never leave a rejection unobserved if the request fails before didResolveOperation.
      pending.catch(() => {});

      async function bearer(header: string): Promise<Viewer> {
        const match = /^Bearer +(\S+)$/i.exec(header);
        if (!match?.[1]) throw new TokenRejectedError('malformed');
        return options.verifier.verify(match[1]);
      }

      return {
        async didResolveOperation({ operation, document, schema }) {
          const verified = await pending;
          if (verified.error !== undefined) throw verified.error;
          const viewer = verified.viewer ?? null;
          contextValue.viewer = viewer;
          if (operation) refuseUnservableOperation(schema, document, operation, viewer);
        },
      };
    },
  };
}

function toGraphQLError(error: unknown): unknown {
  if (error instanceof TokenRejectedError) {
    return new GraphQLError(
      error.reason === 'expired' ? 'The access token has expired' : 'The access token is not valid',
      { extensions: { code: BffErrorCode.Unauthenticated, reason: error.reason, http: { status: 401 } } },
    );
  }
  // The JWKS could not be had: the service's fault, not the token's. Answered as any upstream
  // outage is (a code, the service's name, nothing of its address), with a 503 for the request.
  const upstream = error instanceof UpstreamError ? describeUpstreamError(error) : undefined;
  if (error instanceof UpstreamError && upstream) {
    return new GraphQLError(upstream.message, {
      originalError: error,
      extensions: { ...upstream.extensions, http: { status: 503 } },
    });
  }
  return error;
}

/**
 * Throws UNAUTHENTICATED (401) or FORBIDDEN (403) when no root field of the operation could be
 * served to this viewer, as the authentication plugin does before execution; a WebSocket
 * subscription (one root field) is checked with it when it subscribes.
 */
export function refuseUnservableOperation(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  viewer: Viewer | null,
): void {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const root = schema.getRootType(operation.operation);
  if (!root) return;
  const fields = rootFieldNames(operation.selectionSet, fragments, new Set());
  if (fields.length === 0) return;
  let needsSignIn = true;
  let missingRole: string | undefined;
  for (const name of fields) {
    const requirement = requirementOf(schema, root.name, name);
    if (!requirement) return; // a public field: the operation is served, field by field
    if (!viewer) continue;
    if (!requirement.role || viewer.roles.includes(requirement.role)) return;
    needsSignIn = false;
    missingRole = requirement.role;
  }
  if (!viewer && needsSignIn) throw unauthenticated(401);
  if (missingRole) throw forbidden(missingRole, 403);
}

function rootFieldNames(
  selectionSet: SelectionSetNode,
  fragments: Map<string, FragmentDefinitionNode>,
  seen: Set<string>,
): string[] {
  const names: string[] = [];
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      if (!selection.name.value.startsWith('__')) names.push(selection.name.value);
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      names.push(...rootFieldNames(selection.selectionSet, fragments, seen));
    } else {
      const name = selection.name.value;
      const fragment = fragments.get(name);
      if (fragment && !seen.has(name)) {
        seen.add(name);
        names.push(...rootFieldNames(fragment.selectionSet, fragments, seen));
      }
    }
  }
  return names;
}
