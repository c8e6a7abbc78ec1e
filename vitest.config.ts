import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';
import { SummaryReporter } from './test/summary-reporter.ts';

export default defineConfig({
  resolve: {
    // graphql 16 ships CommonJS (main) and ESM (module) copies. Node, and so every dependency,
    // loads the CommonJS one; Vite would pick the ESM one for our sources, and a schema built
    // in one copy cannot be executed by the other. One copy, as in production.
    alias: [{ find: /^graphql$/, replacement: createRequire(import.meta.url).resolve('graphql') }],
  },
  test: {
    include: ['{apps,packages,services}/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    // Suites start whole systems (three services with embedded databases) in their hooks: on a
    // loaded 2-core machine that has taken over a minute.
    hookTimeout: 180_000,
    // Suites start real servers and databases; two workers match the two cores here.
    pool: 'forks',
    // The hostile-corpus suite forces garbage collection to see whether memory climbs.
    execArgv: ['--expose-gc'],
    maxWorkers: 2,
    reporters: ['default', new SummaryReporter()],
  },
});
