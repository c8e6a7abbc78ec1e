/**
 * Runs `close` once on SIGTERM or SIGINT, then exits: 0 when it finished within `timeoutMs`,
 * 1 otherwise. A second signal exits at once.
 */
export function onShutdownSignal(
  close: () => Promise<void>,
  timeoutMs = 15_000,
  log: (m: string) => void = console.error,
) {
  let closing = false;
  const handler = (signal: NodeJS.Signals) => {
    if (closing) process.exit(1);
    closing = true;
    log(`${signal} received, shutting down`);
    const timer = setTimeout(() => {
      log(`shutdown did not finish within ${timeoutMs} ms`);
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        log(`shutdown failed: ${String(error)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}
