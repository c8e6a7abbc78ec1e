// The one enum of `extensions.code` values: what clients branch on, so its values must be
// stable, distinct and recognisable, and the server-fault set must be exactly the 5xx class.
import { describe, expect, it } from 'vitest';
import { BffErrorCode, isBffErrorCode, SERVER_FAULT_CODES } from '../src/index.ts';

const codes = Object.values(BffErrorCode);

describe('BffErrorCode', () => {
  it('has distinct values, each written as an upper-case constant', () => {
    expect(new Set(codes).size).toBe(codes.length);
    for (const code of codes) expect(code).toMatch(/^[A-Z]+(_[A-Z]+)*$/);
  });

  it('keeps the values clients already branch on (renaming one breaks shipped apps)', () => {
    expect(BffErrorCode).toMatchObject({
      GraphqlParseFailed: 'GRAPHQL_PARSE_FAILED',
      GraphqlValidationFailed: 'GRAPHQL_VALIDATION_FAILED',
      BadUserInput: 'BAD_USER_INPUT',
      BadRequest: 'BAD_REQUEST',
      PayloadTooLarge: 'PAYLOAD_TOO_LARGE',
      UnsupportedMediaType: 'UNSUPPORTED_MEDIA_TYPE',
      OperationLimitExceeded: 'OPERATION_LIMIT_EXCEEDED',
      PersistedQueryNotFound: 'PERSISTED_QUERY_NOT_FOUND',
      PersistedQueryHashMismatch: 'PERSISTED_QUERY_HASH_MISMATCH',
      UpgradeRequired: 'UPGRADE_REQUIRED',
      Unauthenticated: 'UNAUTHENTICATED',
      Forbidden: 'FORBIDDEN',
      RateLimited: 'RATE_LIMITED',
      UpstreamUnavailable: 'UPSTREAM_UNAVAILABLE',
      UpstreamTimeout: 'UPSTREAM_TIMEOUT',
      InternalServerError: 'INTERNAL_SERVER_ERROR',
    });
  });

  it('uses Apollo’s own spelling for the codes Apollo also raises', () => {
    // Apollo Server raises these itself; one spelling for both, or clients would see two.
    const apollo = [
      'GRAPHQL_PARSE_FAILED',
      'GRAPHQL_VALIDATION_FAILED',
      'BAD_USER_INPUT',
      'OPERATION_RESOLUTION_FAILURE',
      'BAD_REQUEST',
      'PERSISTED_QUERY_NOT_FOUND',
      'PERSISTED_QUERY_NOT_SUPPORTED',
      'INTERNAL_SERVER_ERROR',
    ];
    for (const code of apollo) expect(codes).toContain(code);
  });
});

describe('isBffErrorCode', () => {
  it('accepts every value of the enum', () => {
    for (const code of codes) expect(isBffErrorCode(code)).toBe(true);
  });

  it('refuses the enum’s keys, near misses, inherited property names and non-strings', () => {
    const refused: unknown[] = [
      // Keys, not values: a lookup by `in` or by property would take these.
      'BadRequest',
      'InternalServerError',
      // Inherited from Object.prototype.
      'toString',
      'constructor',
      '__proto__',
      'hasOwnProperty',
      // Near misses.
      'bad_request',
      ' BAD_REQUEST',
      'BAD_REQUEST ',
      'BAD-REQUEST',
      'INTERNAL',
      '',
      // Not strings.
      undefined,
      null,
      0,
      true,
      {},
      ['BAD_REQUEST'],
      { toString: () => 'BAD_REQUEST' },
      new String('BAD_REQUEST'),
    ];
    for (const value of refused) expect(isBffErrorCode(value), String(value)).toBe(false);
  });
});

describe('SERVER_FAULT_CODES', () => {
  it('is exactly the upstream and internal failures', () => {
    expect([...SERVER_FAULT_CODES].sort()).toEqual(
      ['INTERNAL_SERVER_ERROR', 'UPSTREAM_TIMEOUT', 'UPSTREAM_UNAVAILABLE'].sort(),
    );
  });

  it('holds only codes of the enum, and none of the client’s mistakes', () => {
    for (const code of SERVER_FAULT_CODES) expect(isBffErrorCode(code)).toBe(true);
    const clientMistakes = [
      BffErrorCode.GraphqlParseFailed,
      BffErrorCode.GraphqlValidationFailed,
      BffErrorCode.OperationResolutionFailure,
      BffErrorCode.BadUserInput,
      BffErrorCode.BadRequest,
      BffErrorCode.PayloadTooLarge,
      BffErrorCode.UnsupportedMediaType,
      BffErrorCode.OperationLimitExceeded,
      BffErrorCode.PersistedQueryNotFound,
      BffErrorCode.PersistedQueryNotSupported,
      BffErrorCode.PersistedQueryHashMismatch,
      BffErrorCode.UpgradeRequired,
      BffErrorCode.Unauthenticated,
      BffErrorCode.Forbidden,
      BffErrorCode.InvalidCredentials,
      BffErrorCode.RateLimited,
      BffErrorCode.NotFound,
      BffErrorCode.Conflict,
      BffErrorCode.IdempotencyKeyReused,
      BffErrorCode.TooManySubscriptions,
      // Not a failure of anyone's: the stream ended (slow reader, gap, shutdown); resubscribe and refetch.
      BffErrorCode.SubscriptionEnded,
    ];
    for (const code of clientMistakes) expect(SERVER_FAULT_CODES.has(code), code).toBe(false);
    // Every code is either listed above or a server fault: a new code must be placed on purpose.
    expect(new Set([...clientMistakes, ...SERVER_FAULT_CODES])).toEqual(new Set(codes));
  });
});
