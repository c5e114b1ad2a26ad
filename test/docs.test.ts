/**
 * `/docs` as a person sees it: Debian's Chromium, headless, driven by playwright-core
 * (which downloads no browser), loads the page from the real koa app and shows every
 * operation of the OpenAPI document.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import { createEnvironmentsClient } from '../src/client/environments';
import { createMetrics } from '../src/api/metrics';
import { createRestRouter } from '../src/api/rest';
import { createApi } from '../src/api/server';
import { createLogger } from '../src/logger';
import { devServerEnv } from './support/temporal';

describe('/docs in a real headless Chromium', function () {
  this.timeout(120_000);
  let server: Server;
  let base: string;
  let browser: Browser;

  before(async function () {
    const env = await devServerEnv();
    const metrics = createMetrics();
    const rest = createRestRouter({ environments: createEnvironmentsClient(env.client), tokens: [], logger: createLogger('silent'), metrics, supportSizes: ['M'] });
    const app = createApi({ client: env.client, logger: createLogger('silent'), metrics, routers: [rest] });
    server = await new Promise((resolve) => {
      const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
  });

  after(async function () {
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('shows the API title and every operation, with nothing failing to load', async function () {
    const page = await browser.newPage();
    const failures: string[] = [];
    page.on('pageerror', (err) => failures.push(String(err)));
    page.on('response', (response) => {
      if (response.status() >= 400) failures.push(`${response.status()} ${response.url()}`);
    });
    await page.goto(`${base}/docs`);
    await page.waitForSelector('.opblock', { timeout: 30_000 });
    assert.match(await page.locator('.title').first().innerText(), /devenv-scheduler/);
    const operations = (await page.locator('.opblock-summary-path').allInnerTexts()).map((text) => text.replace(/\u200b/g, '').trim());
    for (const path of ['/api/v1/environments', '/api/v1/environments/{namespace}', '/api/v1/environments/{namespace}/prolongate', '/api/v1/support-pods/{name}']) {
      assert.ok(operations.includes(path), `${path} not shown; shown: ${operations.join(', ')}`);
    }
    assert.equal(await page.locator('.opblock').count(), 9);
    assert.deepEqual(failures, []);
  });
});
