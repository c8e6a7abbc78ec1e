/**
 * Live events for GraphQL subscriptions: one transient bus subscription per process, fanned out
 * in process to every listener of a topic, through bounded queues.
 *
 * Every export here is public API of `@bff/live-events`.
 */

export type { LiveEventsOptions, LiveListenOptions, LiveMessage } from './hub.ts';
export { LiveEndedError, LiveEvents } from './hub.ts';
