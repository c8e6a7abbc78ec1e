/** Stable error codes shared by the REST services. Clients branch on these, never on messages. */
export const ErrorCode = {
  BadRequest: 'BAD_REQUEST',
  InvalidCredentials: 'INVALID_CREDENTIALS',
  Unauthorized: 'UNAUTHORIZED',
  Forbidden: 'FORBIDDEN',
  NotFound: 'NOT_FOUND',
  MethodNotAllowed: 'METHOD_NOT_ALLOWED',
  Conflict: 'CONFLICT',
  PayloadTooLarge: 'PAYLOAD_TOO_LARGE',
  UnsupportedMediaType: 'UNSUPPORTED_MEDIA_TYPE',
  Unprocessable: 'UNPROCESSABLE',
  IdempotencyKeyMissing: 'IDEMPOTENCY_KEY_MISSING',
  IdempotencyKeyReused: 'IDEMPOTENCY_KEY_REUSED',
  IdempotencyKeyInUse: 'IDEMPOTENCY_KEY_IN_USE',
  EmailTaken: 'EMAIL_TAKEN',
  AccountNotFound: 'ACCOUNT_NOT_FOUND',
  ProductNotFound: 'PRODUCT_NOT_FOUND',
  InvoiceVoid: 'INVOICE_VOID',
  UpstreamUnavailable: 'UPSTREAM_UNAVAILABLE',
  Internal: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown };
}

/** An error meant for the client: its status, code and message are sent as they are. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly statusCode: number,
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }

  toBody(): ErrorBody {
    return {
      error: { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) },
    };
  }
}
