import type { Tracing } from '@bff/observability';
import type { SubscribeOptions } from './bus.ts';
import type { EventEnvelope } from './envelope.ts';

/** A durable subscription's options, with defaults applied. */
export interface DurableMode {
  transient: false;
  maxAttempts: number;
  prefetch: number;
  tracing: Tracing | undefined;
}

/** A transient subscription's options, checked, with defaults applied. */
export interface TransientMode {
  transient: true;
  maxQueued: number;
  prefetch: number;
  tracing: Tracing | undefined;
  onGap: (() => void) | undefined;
  onError: (error: unknown, event: EventEnvelope | undefined) => void;
}

export const DEFAULT_MAX_QUEUED = 10_000;

/**
 * Checks `options` once, when subscribing, the same way for every bus: a TypeError names the
 * option and the value received, and an option that does not apply to the kind of subscription
 * is refused rather than ignored.
 */
export function subscriptionMode(
  consumer: string,
  options: SubscribeOptions,
  busTracing: Tracing | undefined,
): DurableMode | TransientMode {
  const fail = (message: string) => new TypeError(`subscribe(${JSON.stringify(consumer)}): ${message}`);
  const { transient } = options as { transient?: unknown };
  if (transient !== undefined && typeof transient !== 'boolean')
    throw fail(`transient must be a boolean, received ${received(transient)}`);
  const tracing = options.tracing ?? busTracing;
  if (!options.transient) {
    for (const name of ['maxQueued', 'onGap', 'onError'] as const) {
      if (options[name] !== undefined)
        throw fail(
          `${name} applies only to a transient subscription ({ transient: true }), received ${received(options[name])}`,
        );
    }
    return {
      transient: false,
      maxAttempts: options.maxAttempts ?? 5,
      prefetch: options.prefetch ?? 8,
      tracing,
    };
  }
  // The types forbid it; JavaScript callers and casts get told at run time.
  const { maxAttempts } = options as { maxAttempts?: unknown };
  if (maxAttempts !== undefined)
    throw fail(
      `maxAttempts does not apply to a transient subscription (it never redelivers), received ${received(maxAttempts)}`,
    );
  const maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED;
  if (!(Number.isSafeInteger(maxQueued) && maxQueued >= 1))
    throw fail(`maxQueued must be a positive integer, received ${received(maxQueued)}`);
  const prefetch = options.prefetch ?? 8;
  if (!(Number.isSafeInteger(prefetch) && prefetch >= 1 && prefetch <= 65_535))
    throw fail(`prefetch must be an integer from 1 to 65535, received ${received(prefetch)}`);
  for (const name of ['onGap', 'onError'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'function')
      throw fail(`${name} must be a function, received ${received(options[name])}`);
  }
  const onError = options.onError ?? warn(consumer);
  return { transient: true, maxQueued, prefetch, tracing, onGap: options.onGap, onError };
}

/** A value as an error message should show it: a string quoted, a function not printed whole. */
function received(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

function warn(consumer: string) {
  return (error: unknown, event: EventEnvelope | undefined) => {
    const what = event ? `${event.type} ${event.id}` : 'a delivery';
    const why = error instanceof Error ? error.message : String(error);
    console.warn(`@bff/events: transient consumer ${consumer} dropped ${what}: ${why}`);
  };
}

/** Tells the subscriber what was dropped; a reporter that fails itself is not heard from again. */
export function reportDropped(mode: TransientMode, error: unknown, event: EventEnvelope | undefined): void {
  callSafely(
    () => mode.onError(error, event),
    () => {},
  );
}

/**
 * Calls a subscriber's callback so that nothing it throws or rejects with escapes into the
 * bus: it goes to `report` instead.
 */
export function callSafely(callback: () => unknown, report: (error: unknown) => void): void {
  try {
    const result = callback();
    if (result instanceof Promise) result.catch(report);
  } catch (error) {
    report(error);
  }
}
