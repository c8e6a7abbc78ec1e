// GraphiQL in a real headless Chromium: the page loads from local assets, runs a query, shows the result.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type System, startApp, startSystem, type TestApp } from '../support/system.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
if (!available) {
  if (process.env.CI === 'true')
    throw new Error(`CI=true but there is no Chromium at ${CHROMIUM} (apt-get install chromium)`);
  console.warn(`[skip] GraphiQL browser test: no Chromium at ${CHROMIUM} (apt-get install chromium)`);
}

describe.runIf(available)('GraphiQL in headless Chromium', () => {
  let system: System;
  let app: TestApp;
  let profile: string;
  beforeAll(async () => {
    system = await startSystem();
    app = await startApp('ios', system);
    profile = await mkdtemp(join(tmpdir(), 'bff-chromium-'));
  });
  afterAll(async () => {
    await app?.close();
    await system?.close();
    await rm(profile, { recursive: true, force: true });
  });

  it('runs a query typed into the editor and shows the result', async () => {
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
    try {
      const page = await browser.newPage();
      const failed: string[] = [];
      page.on('requestfailed', (request) => failed.push(request.url()));
      page.on('pageerror', (error) => failed.push(String(error)));
      await page.goto(`${app.url}/graphiql`);
      await page.waitForSelector('.graphiql-query-editor .CodeMirror');
      await page.evaluate((query) => {
        // Runs in the page; this project compiles without DOM types, hence the narrow cast.
        const { document } = globalThis as unknown as {
          document: { querySelector(selector: string): unknown };
        };
        const editor = document.querySelector('.graphiql-query-editor .CodeMirror') as {
          CodeMirror: { setValue(value: string): void };
        };
        editor.CodeMirror.setValue(query);
      }, '{ product(id: "p-0042") { id name deepLink } }');
      await page.click('.graphiql-execute-button');
      const result = page.locator('.result-window');
      await result
        .getByText('https://shop.example.com/p/p-0042')
        .waitFor({ timeout: 10_000 })
        .catch(async (error: unknown) => {
          await page.screenshot({ path: join(tmpdir(), 'bff-graphiql-failed.png') });
          throw new Error(`${String(error)}; page errors: ${failed.join(', ')}`);
        });
      expect(await result.textContent()).toContain('p-0042');
      await page.screenshot({ path: join(tmpdir(), 'bff-graphiql.png') });
      expect(failed).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
