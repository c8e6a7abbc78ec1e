// onShutdownSignal in process: the signal listeners it adds are called directly (no real
// signal is sent), process.exit is replaced, so what it would exit with can be read, and the
// shutdown deadline runs on fake timers (so that it can never fire the real exit later).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { onShutdownSignal } from '../src/index.ts';

type Listener = (signal: NodeJS.Signals) => void;
class ExitCalled extends Error {}

let added: { signal: NodeJS.Signals; listener: Listener }[] = [];
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
});
afterEach(() => {
  for (const { signal, listener } of added) process.removeListener(signal, listener);
  added = [];
  vi.clearAllTimers();
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** Registers through onShutdownSignal and returns its listeners, plus the exits it asks for. */
function register(close: () => Promise<void>, timeoutMs?: number, exitThrows = false) {
  const before = {
    SIGTERM: new Set(process.listeners('SIGTERM')),
    SIGINT: new Set(process.listeners('SIGINT')),
  };
  const exits: (number | undefined)[] = [];
  vi.spyOn(process, 'exit').mockImplementation(((code?: number) => {
    exits.push(code);
    // The real one never returns; code after a synchronous exit must not run either.
    if (exitThrows) throw new ExitCalled();
  }) as typeof process.exit);
  const log: string[] = [];
  onShutdownSignal(close, timeoutMs, (line) => log.push(line));
  const listenerOf = (signal: 'SIGTERM' | 'SIGINT') => {
    const fresh = process.listeners(signal).filter((l) => !before[signal].has(l)) as Listener[];
    expect(fresh).toHaveLength(1);
    const listener = fresh[0] as Listener;
    added.push({ signal, listener });
    return listener;
  };
  return { sigterm: listenerOf('SIGTERM'), sigint: listenerOf('SIGINT'), exits, log };
}

describe('onShutdownSignal', () => {
  it('closes once on SIGTERM, then exits 0', async () => {
    const close = vi.fn(async () => {});
    const { sigterm, exits, log } = register(close);
    sigterm('SIGTERM');
    await vi.waitFor(() => expect(exits).toEqual([0]));
    expect(close).toHaveBeenCalledTimes(1);
    expect(log[0]).toBe('SIGTERM received, shutting down');
  });

  it('handles SIGINT the same way', async () => {
    const close = vi.fn(async () => {});
    const { sigint, exits, log } = register(close);
    sigint('SIGINT');
    await vi.waitFor(() => expect(exits).toEqual([0]));
    expect(close).toHaveBeenCalledTimes(1);
    expect(log[0]).toBe('SIGINT received, shutting down');
  });

  it('exits 1, saying why, when close fails', async () => {
    const { sigterm, exits, log } = register(async () => {
      throw new Error('pool would not end');
    });
    sigterm('SIGTERM');
    await vi.waitFor(() => expect(exits).toEqual([1]));
    expect(log).toContain('shutdown failed: Error: pool would not end');
  });

  it('exits 1 when close does not finish within the timeout', async () => {
    const { sigterm, exits, log } = register(() => new Promise<void>(() => {}), 20);
    sigterm('SIGTERM');
    vi.advanceTimersByTime(19);
    expect(exits).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(exits).toEqual([1]);
    expect(log).toContain('shutdown did not finish within 20 ms');
  });

  it('exits 1 at once on a second signal, without closing again', () => {
    // A close that never finishes: the first signal is still being handled.
    const close = vi.fn(() => new Promise<void>(() => {}));
    const { sigterm, sigint, exits } = register(close, 60_000, true);
    sigterm('SIGTERM');
    expect(exits).toEqual([]);
    expect(() => sigint('SIGINT')).toThrow(ExitCalled);
    expect(exits).toEqual([1]);
    expect(close).toHaveBeenCalledTimes(1);
  });
});
