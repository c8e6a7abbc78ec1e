import { X509Certificate } from 'node:crypto';
import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createSecureContext, type Server as TlsServer } from 'node:tls';
import type { FastifyBaseLogger } from 'fastify';

/** PEM files of the certificate (chain) and its private key. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/** A certificate and key that belong together. */
export interface TlsPair {
  cert: Buffer;
  key: Buffer;
}

/** The `tls` option checked: both paths non-empty strings, else a TypeError naming the value. */
export function tlsOption(given: unknown): TlsFiles | undefined {
  if (given === undefined) return undefined;
  const files = given as Partial<Record<keyof TlsFiles, unknown>> | null;
  if (
    typeof files !== 'object' ||
    files === null ||
    typeof files.certFile !== 'string' ||
    files.certFile === '' ||
    typeof files.keyFile !== 'string' ||
    files.keyFile === ''
  ) {
    throw new TypeError(`tls must be { certFile, keyFile } (two paths), received ${JSON.stringify(given)}`);
  }
  return Object.freeze({ certFile: files.certFile, keyFile: files.keyFile });
}

/**
 * Reads the pair at start: an unreadable file throws naming it, and a key that is not the
 * certificate's throws naming both, so a bad mount fails the start instead of every handshake.
 */
export function readTlsPair(files: TlsFiles): TlsPair {
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new Error(`cannot read the TLS ${what} ${file}: ${(error as Error).message}`);
    }
  };
  const pair = { cert: read(files.certFile, 'certificate'), key: read(files.keyFile, 'key') };
  checkPair(pair, files);
  return pair;
}

function checkPair(pair: TlsPair, files: TlsFiles): void {
  try {
    createSecureContext(pair);
  } catch (error) {
    throw new Error(
      `TLS certificate ${files.certFile} and key ${files.keyFile} are not a usable pair: ${(error as Error).message}`,
    );
  }
}

export interface TlsReloadOptions {
  log: Pick<FastifyBaseLogger, 'info' | 'warn'>;
  /** Backup check, for filesystems whose change events do not arrive. @default 60000 */
  pollMs?: number;
  /** Events of one replacement (several files, a symlink swap) are read once, this long after the last. @default 200 */
  debounceMs?: number;
}

/**
 * Serves a renewed certificate to new connections without a restart; open connections keep
 * theirs. The files' directories are watched rather than the files: Kubernetes replaces a
 * Secret volume by swapping its `..data` symlink, which a watch on the file itself never sees.
 * A poll backs the watch up. A pair that does not check out (a key of another certificate, a
 * half-written file) is refused with a warning and the current one stays.
 */
export function watchTlsFiles(
  server: Pick<TlsServer, 'setSecureContext'>,
  files: TlsFiles,
  initial: TlsPair,
  options: TlsReloadOptions,
): { close(): void } {
  const { log } = options;
  let seen = initial;
  let closed = false;
  let debounce: NodeJS.Timeout | undefined;
  let running = false;
  let again = false;

  const reload = async () => {
    let pair: TlsPair;
    try {
      const [cert, key] = await Promise.all([readFile(files.certFile), readFile(files.keyFile)]);
      pair = { cert, key };
    } catch (err) {
      // Mid-replacement, perhaps: the next event or poll tries again.
      log.warn({ err, ...files }, 'TLS files not readable; still serving the current certificate');
      return;
    }
    if (closed || (pair.cert.equals(seen.cert) && pair.key.equals(seen.key))) return;
    // Remembered before the check, so that a bad pair is warned about once, not at every poll.
    seen = pair;
    try {
      checkPair(pair, files);
      server.setSecureContext(pair);
    } catch (err) {
      log.warn({ err }, 'TLS certificate not reloaded; still serving the current one');
      return;
    }
    const certificate = new X509Certificate(pair.cert);
    log.info(
      { serialNumber: certificate.serialNumber, validTo: certificate.validTo, certFile: files.certFile },
      'TLS certificate reloaded',
    );
  };

  const run = () => {
    debounce = undefined;
    if (closed) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    void reload().finally(() => {
      running = false;
      if (again) {
        again = false;
        schedule();
      }
    });
  };
  const schedule = () => {
    if (closed) return;
    clearTimeout(debounce);
    debounce = setTimeout(run, options.debounceMs ?? 200);
  };

  const watchers: FSWatcher[] = [];
  for (const directory of new Set([dirname(files.certFile), dirname(files.keyFile)])) {
    try {
      const watcher = watch(directory, schedule);
      watcher.on('error', (err) => {
        log.warn({ err, directory }, 'TLS directory watch failed; relying on the poll');
        watcher.close();
      });
      watchers.push(watcher);
    } catch (err) {
      // Out of inotify watches, say: the poll still picks renewals up.
      log.warn({ err, directory }, 'cannot watch the TLS directory; relying on the poll');
    }
  }
  const poll = setInterval(schedule, options.pollMs ?? 60_000);

  return {
    close() {
      closed = true;
      clearTimeout(debounce);
      clearInterval(poll);
      for (const watcher of watchers) watcher.close();
    },
  };
}
