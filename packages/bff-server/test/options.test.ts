// Options and configuration are checked once, at start, and a bad value is refused with an
// error that names the option and the value received: trustProxy, connection deadlines, the
// environment of a BFF (readBffConfig), the app version policy, and startBff itself.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connectionTimeoutsOption, trustProxyOption } from '../src/config.ts';
import {
  bffOptionsFromConfig,
  buildBffSchema,
  readAppVersionPolicy,
  readBffConfig,
  startBff,
} from '../src/index.ts';
import { startTestBff, testPolicy, UNREACHABLE_ADDR, UNREACHABLE_URL } from './support/test-bff.ts';

describe('trustProxyOption', () => {
  it('takes booleans, hop counts and address lists in the forms Fastify needs', () => {
    expect(trustProxyOption(false)).toBe(false);
    expect(trustProxyOption(true)).toBe(true);
    expect(trustProxyOption('false')).toBe(false);
    expect(trustProxyOption(' true ')).toBe(true);
    expect(trustProxyOption('10.0.0.0/8, 192.168.1.1,::1')).toEqual(['10.0.0.0/8', '192.168.1.1', '::1']);
    expect(trustProxyOption(['loopback', 'fd00::/8', '10.0.0.0/255.0.0.0'])).toEqual([
      'loopback',
      'fd00::/8',
      '10.0.0.0/255.0.0.0',
    ]);
    // A hop count: the first N hops from the socket are proxies, no further.
    for (const count of [2, '2']) {
      const trust = trustProxyOption(count);
      expect(typeof trust).toBe('function');
      const hop = trust as (address: string, hop: number) => boolean;
      expect([0, 1, 2, 3].map((n) => hop('203.0.113.9', n))).toEqual([true, true, false, false]);
    }
  });

  it('refuses anything else with a TypeError naming the value', () => {
    for (const bad of [
      'yes',
      '',
      ' , ',
      'proxy.example.com',
      '10.0.0.0/33',
      '::1/129',
      '1.2.3.4/8/1',
      -1,
      33,
      1.5,
      {},
      null,
      ['1.2.3.4', 5],
    ]) {
      expect(() => trustProxyOption(bad), JSON.stringify(bad)).toThrow(TypeError);
      expect(() => trustProxyOption(bad)).toThrow(`received ${JSON.stringify(bad)}`);
    }
  });
});

describe('connectionTimeoutsOption', () => {
  it('fills the defaults and freezes the result', () => {
    const timeouts = connectionTimeoutsOption();
    expect(timeouts).toEqual({
      headersMs: 10_000,
      requestMs: 30_000,
      keepAliveMs: 72_000,
      idleMs: 60_000,
      checkIntervalMs: 1_000,
    });
    expect(Object.isFrozen(timeouts)).toBe(true);
    expect(connectionTimeoutsOption({ headersMs: 500, requestMs: 500 })).toMatchObject({
      headersMs: 500,
      requestMs: 500,
    });
  });

  it('refuses a deadline out of range or not whole, naming the option and the value', () => {
    expect(() => connectionTimeoutsOption({ headersMs: 50 })).toThrow(
      new TypeError(
        'connectionTimeouts.headersMs must be a whole number of ms from 100 to 600000, received 50',
      ),
    );
    expect(() => connectionTimeoutsOption({ keepAliveMs: 1.5e3 + 0.5 })).toThrow(
      'connectionTimeouts.keepAliveMs must be a whole number of ms from 1000 to 600000, received 1500.5',
    );
    expect(() => connectionTimeoutsOption({ checkIntervalMs: Number.NaN })).toThrow(
      /connectionTimeouts\.checkIntervalMs .* received null/,
    );
    expect(() => connectionTimeoutsOption({ idleMs: 700_000 })).toThrow(
      /connectionTimeouts\.idleMs .*received 700000/,
    );
  });

  it('refuses a headers deadline past the request deadline', () => {
    expect(() => connectionTimeoutsOption({ headersMs: 20_000, requestMs: 10_000 })).toThrow(
      'connectionTimeouts.headersMs (20000) must not exceed requestMs (10000)',
    );
  });
});

describe('readBffConfig', () => {
  it('reads the telemetry settings: no metrics listener, no export and no trusted traceparent unless asked', () => {
    expect(bffOptionsFromConfig(readBffConfig(4000, {})).observability).toEqual({
      metricsPort: undefined,
      metricsHost: '127.0.0.1',
      operationNames: [],
      tracing: { endpoint: undefined, sampleRatio: 1, trustTraceHeaders: false },
    });
    const options = bffOptionsFromConfig(
      readBffConfig(4000, {
        METRICS_PORT: '9400',
        METRICS_HOST: '0.0.0.0',
        METRICS_OPERATION_NAMES: 'Catalogue, ProductCard,not a name',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
        OTEL_TRACES_SAMPLER_ARG: '0.1',
        TRUST_TRACE_HEADERS: 'true',
        LOG_FORMAT: 'pretty',
      }),
    );
    expect(options.logFormat).toBe('pretty');
    expect(options.observability).toEqual({
      metricsPort: 9400,
      metricsHost: '0.0.0.0',
      operationNames: ['Catalogue', 'ProductCard'],
      tracing: { endpoint: 'http://collector:4318', sampleRatio: 0.1, trustTraceHeaders: true },
    });
    expect(() => readBffConfig(4000, { METRICS_PORT: '99999', OTEL_TRACES_SAMPLER_ARG: '1.5' })).toThrow(
      /METRICS_PORT.*"99999"[\s\S]*OTEL_TRACES_SAMPLER_ARG.*"1.5"/,
    );
  });

  it('reads defaults, derives production and GraphiQL, and freezes the result', () => {
    const config = readBffConfig(4000, {});
    expect(config.PORT).toBe(4000);
    expect(config.production).toBe(false);
    expect(config.graphiql).toBe(true);
    expect(Object.isFrozen(config)).toBe(true);
    const production = readBffConfig(4000, { NODE_ENV: 'production' });
    expect(production.production).toBe(true);
    expect(production.graphiql).toBe(false);
    expect(readBffConfig(4000, { NODE_ENV: 'production', GRAPHIQL: 'true' }).graphiql).toBe(true);
  });

  it('refuses bad variables, naming each', () => {
    const problems = (source: Record<string, string>) => {
      try {
        readBffConfig(4000, source);
      } catch (error) {
        expect((error as Error).name).toBe('ConfigError');
        return (error as Error).message;
      }
      throw new Error(`accepted ${JSON.stringify(source)}`);
    };
    expect(problems({ PORT: 'eighty' })).toMatch(/PORT/);
    expect(problems({ UPSTREAM_TIMEOUT_MS: '10' })).toMatch(/UPSTREAM_TIMEOUT_MS/);
    expect(problems({ IDENTITY_URL: 'ftp://identity' })).toMatch(/IDENTITY_URL/);
    expect(problems({ NODE_ENV: 'staging' })).toMatch(/NODE_ENV/);
    const both = problems({ PORT: 'x', LOG_LEVEL: 'loud' });
    expect(both).toMatch(/PORT/);
    expect(both).toMatch(/LOG_LEVEL/);
    // Checked after the schema: the option's own message, with the value.
    expect(problems({ TRUST_PROXY: 'everyone' })).toMatch(/TRUST_PROXY.*received "everyone"/);
    expect(problems({ HEADERS_TIMEOUT_MS: '20000', REQUEST_TIMEOUT_MS: '10000' })).toMatch(
      /headersMs \(20000\) must not exceed requestMs \(10000\)/,
    );
  });

  it('gives server options that start a BFF as configured', () => {
    const options = bffOptionsFromConfig(
      readBffConfig(4000, {
        PORT: '0',
        IDENTITY_URL: UNREACHABLE_URL,
        BILLING_URL: UNREACHABLE_URL,
        PRODUCT_ADDR: UNREACHABLE_ADDR,
        TRUST_PROXY: '1',
        RATE_LIMIT_DEFAULT_MAX: '7',
      }),
    );
    expect(options).toMatchObject({
      port: 0,
      identityUrl: UNREACHABLE_URL,
      productAddr: UNREACHABLE_ADDR,
      trustProxy: '1',
      rateLimit: { defaults: { max: 7, window: '1m' }, onStoreFailure: 'open' },
      connectionTimeouts: { headersMs: 10_000, requestMs: 30_000, keepAliveMs: 72_000 },
    });
  });
});

describe('readAppVersionPolicy', () => {
  it('is undefined without a minimum, and carries the store URL with one', () => {
    expect(readAppVersionPolicy('https://apps.example.com/shop', {})).toBeUndefined();
    expect(readAppVersionPolicy('https://apps.example.com/shop', { MIN_APP_VERSION: '4.2.0' })).toEqual({
      minimum: '4.2.0',
      storeUrl: 'https://apps.example.com/shop',
    });
  });

  it('refuses a minimum that is not a version, and a store URL that is not https', () => {
    expect(() => readAppVersionPolicy('https://apps.example.com', { MIN_APP_VERSION: 'v4' })).toThrow(
      /MIN_APP_VERSION: expected a version such as 4\.2\.0 \(received "v4"\)/,
    );
    expect(() =>
      readAppVersionPolicy('https://apps.example.com', {
        MIN_APP_VERSION: '4.2',
        APP_STORE_URL: 'http://apps.example.com',
      }),
    ).toThrow(/APP_STORE_URL/);
  });
});

describe('startBff option checks', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('refuses a bad trustProxy, naming the value, instead of starting', async () => {
    await expect(startTestBff({ trustProxy: '10.0.0.0/99' })).rejects.toThrow(
      new TypeError(
        'TRUST_PROXY (trustProxy) must be true, false, a hop count or addresses/CIDRs, received "10.0.0.0/99"',
      ),
    );
  });

  it('refuses bad connection deadlines and operation limits, naming them', async () => {
    await expect(startTestBff({ connectionTimeouts: { requestMs: 10 } })).rejects.toThrow(
      /connectionTimeouts\.requestMs .*received 10/,
    );
    await expect(
      startTestBff({ policy: { ...testPolicy, limits: { ...testPolicy.limits, maxDepth: 0 } } }),
    ).rejects.toThrow(/maxDepth must be a positive whole number, received 0/);
  });

  it('refuses an app schema with a root field that declares no access, naming the folder', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bff-schema-'));
    dirs.push(dir);
    await writeFile(join(dir, 'open.graphql'), 'extend type Query { leak: String }');
    expect(() => buildBffSchema(dir, {})).toThrow(`The schema in ${dir} is refused`);
    await expect(
      startBff({
        app: 'ios',
        schemaDir: dir,
        resolvers: {},
        policy: testPolicy,
        port: 0,
        identityUrl: UNREACHABLE_URL,
        billingUrl: UNREACHABLE_URL,
        productAddr: UNREACHABLE_ADDR,
        production: false,
        graphiql: false,
        logLevel: false,
      }),
    ).rejects.toThrow(/is refused: .*leak/);
  });

  it('starts on a free port when given port 0, and closes', async () => {
    const bff = await startTestBff();
    try {
      expect(bff.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(bff.url).not.toMatch(/:0$/);
    } finally {
      await bff.close();
    }
    // Closed means closed: the port no longer answers.
    await expect(fetch(`${bff.url}/healthz`, { signal: AbortSignal.timeout(5_000) })).rejects.toThrow();
  });
});
