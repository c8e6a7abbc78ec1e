// A BFF without an ingress serves HTTPS itself (TLS_CERT_FILE, TLS_KEY_FILE) and picks up a
// renewed certificate without a restart: replaced in place by rename, or the way Kubernetes
// updates a Secret volume (a `..data` symlink swapped to a new folder). New connections get the
// new certificate, open ones keep theirs, a pair that does not match is refused with a warning,
// and close() leaves no watcher behind. Certificates are made with the openssl CLI.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { Agent, get as httpsGet, type RequestOptions } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { ConfigError } from '@bff/config';
import { waitFor } from '@bff/testkit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { bffOptionsFromConfig, type RunningBff, readBffConfig } from '../src/index.ts';
import { watchTlsFiles } from '../src/tls.ts';
import { startTestBff } from './support/test-bff.ts';

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    if (process.env.CI === 'true') throw new Error('CI=true but the openssl CLI is not installed');
    console.warn('[skip] TLS tests: no openssl CLI to make certificates with');
    return false;
  }
}

interface Pair {
  certFile: string;
  keyFile: string;
  cert: string;
  serial: string;
}

let work: string;
let ca: string[];
const pairs: Record<'a' | 'b' | 'c', Pair> = {} as Record<'a' | 'b' | 'c', Pair>;

/** A self-signed P-256 certificate for localhost and 127.0.0.1, valid one day. */
function makePair(name: string): Pair {
  const certFile = join(work, `${name}.crt`);
  const keyFile = join(work, `${name}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: 'ignore', timeout: 20_000 },
  );
  const cert = execFileSync('cat', [certFile], { encoding: 'utf8' });
  return { certFile, keyFile, cert, serial: new X509Certificate(cert).serialNumber };
}

/** Puts `cert` and `key` at the live paths the way a careful tool does: temp names, then rename. */
async function replaceInPlace(live: { certFile: string; keyFile: string }, cert: string, key: string) {
  await copyFile(cert, `${live.certFile}.tmp`);
  await copyFile(key, `${live.keyFile}.tmp`);
  await rename(`${live.certFile}.tmp`, live.certFile);
  await rename(`${live.keyFile}.tmp`, live.keyFile);
}

/**
 * A Secret volume as the kubelet lays it out: `tls.crt -> ..data/tls.crt`, `..data -> ..<version>`.
 * An update writes a new version folder and renames a new symlink over `..data`.
 */
async function kubernetesVolume(dir: string) {
  await mkdir(dir);
  await symlink('..data/tls.crt', join(dir, 'tls.crt'));
  await symlink('..data/tls.key', join(dir, 'tls.key'));
  let version = 0;
  const update = async (cert: string, key: string) => {
    version += 1;
    const folder = `..v${version}`;
    await mkdir(join(dir, folder));
    await copyFile(cert, join(dir, folder, 'tls.crt'));
    await copyFile(key, join(dir, folder, 'tls.key'));
    await symlink(folder, join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  };
  return { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), update };
}

interface Served {
  status: number;
  body: string;
  serial: string;
  reusedSocket: boolean;
}

/** GET over HTTPS; a new connection unless `agent` keeps one. */
function fetchHttps(url: string, options: RequestOptions = {}): Promise<Served> {
  return new Promise((resolve, reject) => {
    const request = httpsGet(
      url,
      { ca, agent: false, ...options, signal: AbortSignal.timeout(5_000) },
      (response) => {
        const serial = (response.socket as TLSSocket).getPeerCertificate().serialNumber;
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          body += chunk;
        });
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body, serial, reusedSocket: request.reusedSocket }),
        );
      },
    );
    request.on('error', reject);
  });
}

const watchers = () => process.getActiveResourcesInfo().filter((name) => name === 'FSEventWrap').length;

/** A closed watch handle leaves the list at the loop's next close phase, not at once. */
const watchersClosed = (before: number) =>
  waitFor('the directory watchers to be closed', () => watchers() === before, 2_000);

function logLines() {
  const lines: Record<string, unknown>[] = [];
  return { lines, destination: { write: (line: string) => lines.push(JSON.parse(line)) } };
}

describe.skipIf(!hasOpenssl())('a BFF serving HTTPS', () => {
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'bff-tls-test-'));
    pairs.a = makePair('a');
    pairs.b = makePair('b');
    pairs.c = makePair('c');
    ca = [pairs.a.cert, pairs.b.cert, pairs.c.cert];
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('serves HTTPS only, and a certificate replaced in place reaches new connections, not open ones', async () => {
    const live = { certFile: join(work, 'flat', 'tls.crt'), keyFile: join(work, 'flat', 'tls.key') };
    await mkdir(join(work, 'flat'));
    await replaceInPlace(live, pairs.a.certFile, pairs.a.keyFile);
    const before = watchers();
    let bff: RunningBff | undefined = await startTestBff({ tls: live });
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1, ca });
    try {
      expect(watchers()).toBeGreaterThan(before);
      expect(bff.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      // The slow-client deadlines hold over HTTPS too.
      expect(bff.app.server).toMatchObject({ headersTimeout: 10_000, requestTimeout: 30_000 });
      const first = await fetchHttps(`${bff.url}/healthz`);
      expect(first).toMatchObject({ status: 200, serial: pairs.a.serial });
      expect(JSON.parse(first.body)).toEqual({ status: 'ok' });

      // Plain HTTP on the same port gets no answer: the handshake fails and the socket is cut.
      const plain = new Promise((resolve, reject) => {
        const request = httpGet(
          `${bff?.url.replace('https:', 'http:')}/healthz`,
          { signal: AbortSignal.timeout(5_000) },
          resolve,
        );
        request.on('error', reject);
      });
      await expect(plain).rejects.toMatchObject({ code: 'ECONNRESET' });

      const open = await fetchHttps(`${bff.url}/healthz`, { agent: keepAlive });
      expect(open.serial).toBe(pairs.a.serial);

      await replaceInPlace(live, pairs.b.certFile, pairs.b.keyFile);
      await waitFor('a new connection to get the renewed certificate', async () => {
        const served = await fetchHttps(`${bff?.url}/healthz`);
        return served.status === 200 && served.serial === pairs.b.serial;
      });
      // The connection opened before keeps the certificate it was opened with.
      const again = await fetchHttps(`${bff.url}/healthz`, { agent: keepAlive });
      expect(again).toMatchObject({ status: 200, reusedSocket: true, serial: pairs.a.serial });

      keepAlive.destroy();
      await bff.close();
      bff = undefined;
      await watchersClosed(before);
    } finally {
      keepAlive.destroy();
      await bff?.close();
    }
  });

  it('follows a Kubernetes Secret update, and keeps its certificate when given a mismatched pair', async () => {
    const volume = await kubernetesVolume(join(work, 'secret'));
    await volume.update(pairs.a.certFile, pairs.a.keyFile);
    const log = logLines();
    const before = watchers();
    const bff = await startTestBff({
      tls: { certFile: volume.certFile, keyFile: volume.keyFile },
      logLevel: 'info',
      logDestination: log.destination,
    });
    try {
      expect((await fetchHttps(`${bff.url}/healthz`)).serial).toBe(pairs.a.serial);

      await volume.update(pairs.b.certFile, pairs.b.keyFile);
      await waitFor('a new connection to get the certificate of the new ..data', async () => {
        return (await fetchHttps(`${bff.url}/healthz`)).serial === pairs.b.serial;
      });
      expect(log.lines).toContainEqual(
        expect.objectContaining({ msg: 'TLS certificate reloaded', serialNumber: pairs.b.serial }),
      );

      // C's certificate with A's key: refused, B is still served and the BFF still answers.
      await volume.update(pairs.c.certFile, pairs.a.keyFile);
      await waitFor('the mismatched pair to be refused', () =>
        log.lines.some((line) => line.msg === 'TLS certificate not reloaded; still serving the current one'),
      );
      expect(await fetchHttps(`${bff.url}/healthz`)).toMatchObject({ status: 200, serial: pairs.b.serial });

      // The matching pair after it is taken.
      await volume.update(pairs.c.certFile, pairs.c.keyFile);
      await waitFor('the corrected pair to be served', async () => {
        return (await fetchHttps(`${bff.url}/healthz`)).serial === pairs.c.serial;
      });
    } finally {
      await bff.close();
    }
    await watchersClosed(before);
  });

  it('finds by its poll a change that no directory event announces', async () => {
    // The live path is a symlink into another folder, whose file is rewritten in place: the
    // watched folder sees nothing, so only the poll can notice.
    await mkdir(join(work, 'hidden'));
    await mkdir(join(work, 'linked'));
    const target = { certFile: join(work, 'hidden', 'tls.crt'), keyFile: join(work, 'hidden', 'tls.key') };
    await replaceInPlace(target, pairs.a.certFile, pairs.a.keyFile);
    const live = { certFile: join(work, 'linked', 'tls.crt'), keyFile: join(work, 'linked', 'tls.key') };
    await symlink(target.certFile, live.certFile);
    await symlink(target.keyFile, live.keyFile);
    const setSecureContext = vi.fn();
    const reloading = watchTlsFiles(
      { setSecureContext },
      live,
      { cert: await readFile(live.certFile), key: await readFile(live.keyFile) },
      { log: { info: () => {}, warn: () => {} }, pollMs: 100, debounceMs: 10 },
    );
    try {
      await writeFile(target.certFile, pairs.b.cert);
      await writeFile(target.keyFile, await readFile(pairs.b.keyFile));
      await waitFor('the poll to apply the new pair', () => setSecureContext.mock.calls.length > 0);
      expect(String(setSecureContext.mock.calls.at(-1)?.[0].cert)).toBe(pairs.b.cert);
    } finally {
      reloading.close();
    }
  });

  it('refuses at start a key that is not the certificate’s, naming both files', async () => {
    await expect(
      startTestBff({ tls: { certFile: pairs.a.certFile, keyFile: pairs.b.keyFile } }),
    ).rejects.toThrow(`TLS certificate ${pairs.a.certFile} and key ${pairs.b.keyFile} are not a usable pair`);
    await expect(startTestBff({ tls: { certFile: pairs.a.certFile, keyFile: '' } })).rejects.toThrow(
      new TypeError(
        `tls must be { certFile, keyFile } (two paths), received {"certFile":"${pairs.a.certFile}","keyFile":""}`,
      ),
    );
  });

  it('reads TLS_CERT_FILE and TLS_KEY_FILE: both or neither, and readable', () => {
    expect(bffOptionsFromConfig(readBffConfig(4000, {})).tls).toBeUndefined();
    const both = { TLS_CERT_FILE: pairs.a.certFile, TLS_KEY_FILE: pairs.a.keyFile };
    expect(bffOptionsFromConfig(readBffConfig(4000, both)).tls).toEqual({
      certFile: pairs.a.certFile,
      keyFile: pairs.a.keyFile,
    });
    for (const one of [{ TLS_CERT_FILE: pairs.a.certFile }, { TLS_KEY_FILE: pairs.a.keyFile }]) {
      expect(() => readBffConfig(4000, one)).toThrow(ConfigError);
      expect(() => readBffConfig(4000, one)).toThrow(/TLS_CERT_FILE and TLS_KEY_FILE must be set together/);
    }
    const missing = join(work, 'missing.key');
    expect(() => readBffConfig(4000, { ...both, TLS_KEY_FILE: missing })).toThrow(
      `TLS_KEY_FILE: cannot read ${missing} (ENOENT)`,
    );
  });
});
