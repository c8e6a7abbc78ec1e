import { BffErrorCode } from '@bff/error-codes';
import {
  BillingRejection,
  InvalidCredentialsError,
  UpstreamError,
  UpstreamErrorCode,
} from '@bff/upstream-clients';
import { GraphQLError } from 'graphql';
import type { BffContext, Viewer } from './context.ts';

/** A BAD_USER_INPUT error naming the argument. */
export function userInput(argument: string, message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: BffErrorCode.BadUserInput, argument } });
}

/** The viewer, or an UNAUTHENTICATED error. */
export function requireViewer(context: BffContext): Viewer {
  if (!context.viewer) {
    throw new GraphQLError('You must be signed in', { extensions: { code: BffErrorCode.Unauthenticated } });
  }
  return context.viewer;
}

/**
 * What a client may see of an upstream failure: a code and the service's name, never its
 * address or the transport's own message. Undefined when `error` is not an upstream failure.
 */
export function describeUpstreamError(
  error: unknown,
): { message: string; extensions: Record<string, unknown> } | undefined {
  if (error instanceof UpstreamError) {
    // The service refused what it was asked: the client's input, not an outage. The service's
    // own message stays in the log; it may name internals.
    if (error.code === UpstreamErrorCode.InvalidArgument) {
      return {
        message: `The ${error.service} service refused an argument as invalid`,
        extensions: { code: BffErrorCode.BadUserInput, service: error.service },
      };
    }
    if (error.code === UpstreamErrorCode.NotFound) {
      return {
        message: `The ${error.service} service found nothing for the arguments given`,
        extensions: { code: BffErrorCode.NotFound, service: error.service },
      };
    }
    const timeout = error.code === 'UPSTREAM_TIMEOUT';
    return {
      message: timeout
        ? `The ${error.service} service did not answer in time`
        : `The ${error.service} service is unavailable`,
      extensions: {
        code: timeout ? BffErrorCode.UpstreamTimeout : BffErrorCode.UpstreamUnavailable,
        service: error.service,
      },
    };
  }
  if (error instanceof InvalidCredentialsError) {
    return { message: error.message, extensions: { code: BffErrorCode.InvalidCredentials } };
  }
  if (error instanceof BillingRejection) {
    const code =
      error.code === 'IDEMPOTENCY_KEY_REUSED'
        ? BffErrorCode.IdempotencyKeyReused
        : error.status === 404
          ? BffErrorCode.NotFound
          : error.status === 409
            ? BffErrorCode.Conflict
            : error.status === 503
              ? BffErrorCode.UpstreamUnavailable
              : BffErrorCode.BadUserInput;
    return { message: error.message, extensions: { code, reason: error.code, service: 'billing' } };
  }
  return undefined;
}
