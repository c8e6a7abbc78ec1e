/**
 * The HTTP foundation every REST service shares: a Fastify instance whose every error leaves
 * as `{ error: { code, message } }` with a stable code, and helpers to listen and shut down.
 *
 * Every export here is public API of `@bff/http-service`.
 */

export type { ErrorBody } from './errors.ts';
export { ErrorCode, HttpError } from './errors.ts';
export type { HttpServiceOptions } from './service.ts';
export { createHttpService, listen, requestTraceContext } from './service.ts';
export { onShutdownSignal } from './shutdown.ts';
