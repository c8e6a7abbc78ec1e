/**
 * The resolvers every BFF shares, the per-request context they run in, and the shaping
 * helpers apps use for their own fields. Resolvers call loaders and commands only.
 *
 * Every export here is public API of `@bff/resolvers`.
 */

export { BffErrorCode } from '@bff/error-codes';
export type { ProductParent } from './base-resolvers.ts';
export { baseResolvers } from './base-resolvers.ts';
export type {
  AppName,
  AppPolicy,
  BffContext,
  LiveSource,
  LiveUpdate,
  OperationLimitsPolicy,
  PageSizePolicy,
  SessionCookie,
  Viewer,
} from './context.ts';
export { describeUpstreamError, requireViewer, userInput } from './errors.ts';
export { input } from './input.ts';
export { formatMoney, Money, money, negotiateLocale } from './money.ts';
export { pageSize } from './pagination.ts';
export { closestImage, summarize } from './shaping.ts';
