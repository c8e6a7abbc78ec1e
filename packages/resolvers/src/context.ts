import type { Commands, Loaders } from '@bff/loaders';
import type { OperationLimits } from '@bff/operation-limits';

/**
 * An app's name (`web`, `ios`, `android`, or any app's `bff.name` in apps/<folder>/package.json):
 * its tokens' audience and its key prefix. A string, not a union, so that a new app is one
 * folder: the start command and the test system check it against the apps they discover.
 */
export type AppName = string;

/** The signed-in user, from a verified access token. */
export interface Viewer {
  id: string;
  roles: string[];
  /** From the token when it carries them, so `viewer { email name }` needs no Identity call. */
  email?: string | undefined;
  name?: string | undefined;
  /** When the token it came from expires, ms since the epoch (a live connection ends then). */
  expiresAt?: number | undefined;
}

export interface PageSizePolicy {
  /** Used when `first` is not given. */
  default: number;
  /** Largest `first` accepted; more is a BAD_USER_INPUT error, never silently clamped. */
  max: number;
}

/** Ceilings checked before execution: what each measures is documented in @bff/operation-limits. */
export type OperationLimitsPolicy = OperationLimits;

/** What differs between the apps: page sizes, operation limits and the time budget. */
export interface AppPolicy {
  products: PageSizePolicy;
  invoices: PageSizePolicy;
  limits: OperationLimitsPolicy;
  /** Time one operation may take, upstream calls and retries included, in ms. */
  operationBudgetMs: number;
}

/** Keeps the web app's access token in an HttpOnly cookie that scripts never see. */
export interface SessionCookie {
  /** Sets the cookie to `token` for `maxAgeSeconds`. */
  start(token: string, maxAgeSeconds: number): void;
  /** Expires the cookie. */
  end(): void;
}

/** One domain event, as a live subscription's root resolver receives it. */
export interface LiveUpdate {
  event: { type: string; payload: unknown };
}

/**
 * The domain events a subscription listens to (present on a subscription's context only). Each
 * iterator ends when its subscriber leaves; the loaders on the context of each event's execution
 * are that event's, shared by every subscriber it reaches.
 */
export interface LiveSource {
  /** Invoices of `userId` created or paid. */
  invoicesOf(userId: string): AsyncIterableIterator<LiveUpdate>;
  /** Price changes of any of `ids`. */
  products(ids: readonly string[]): AsyncIterableIterator<LiveUpdate>;
}

/** Built fresh for every request; nothing in it outlives the request. */
export interface BffContext {
  app: AppName;
  requestId: string;
  /** Set by the authentication plugin before execution; null when not signed in. */
  viewer: Viewer | null;
  /** The client's address (the first untrusted hop when behind configured proxies). */
  clientAddress: string;
  /** Present where the app offers a cookie session (web). */
  session?: SessionCookie | undefined;
  /** BCP 47 locale negotiated from Accept-Language, for formatting. */
  locale: string;
  policy: AppPolicy;
  loaders: Loaders;
  commands: Commands;
  /** On a subscription's context: where its events come from. */
  live?: LiveSource | undefined;
}
