/**
 * `/ui` as a person sees it: Debian's Chromium, headless, driven by playwright-core (as the
 * `/docs` test), loads the page from the real koa app, whose REST API has the Temporal dev
 * server and a worker running the real environment workflows behind it. What the page shows
 * is compared with what the REST routes answer. `UI_SCREENSHOT=1` (npm run screenshot:ui)
 * also writes docs/ui.png from the same page.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { TypedSearchAttributes } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createEnvironmentsClient } from '../src/client/environments';
import { createMetrics } from '../src/api/metrics';
import { createRestRouter } from '../src/api/rest';
import { createApi } from '../src/api/server';
import { createUiRouter, UI_CONTENT_SECURITY_POLICY } from '../src/api/ui';
import type { Prices } from '../src/domain/savings';
import { createLogger } from '../src/logger';
import { EnvEnabled, EnvNamespace, EnvNextShutdown, EnvPhase } from '../src/search-attributes';
import { environmentWorkflow, environmentWorkflowId, SAVINGS_MEMO, STATUS_MEMO } from '../src/workflows';
import { morningPolicy } from './support/policies';
import { recordingActivities } from './support/recording-activities';
import { devServerEnv, uniqueTaskQueue, workflowBundle } from './support/temporal';

const CONTROL = 'ui-control-token-0123456789abcdef';
const READER = 'ui-read-token-0123456789abcdef';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');
/** On-demand prices of the kind SAVINGS_PRICE_* sets, so the page shows money too. */
const PRICES: Prices = {
  vcpuHour: 0.03,
  gibHour: 0.004,
  instanceTypes: { 't3.medium': 0.0416, 'm5.xlarge': 0.192, 'db.t3.large': 0.136 },
  currency: 'EUR',
};

/** Runs `check` until it passes, or fails with its last error after `timeoutMs`. */
async function settles<T>(check: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

/** One sleep of an environment's ledger, as its memo carries it. */
interface Sleep {
  from: string;
  to: string | null;
  cpuMillicores: number;
  memoryBytes: number;
  instances: Record<string, number>;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const GIB = 1024 ** 3;

/**
 * Weeknights and weekends asleep (19:00 to 07:00 UTC) over the last `days` days, each closed
 * before now. None spans the start of the page's rolling week, which moves with the clock:
 * a figure the page and the test read seconds apart must not move between the two reads.
 */
function nightsAsleep(days: number, slept: Omit<Sleep, 'from' | 'to'>, now = Date.now()): Sleep[] {
  const sleeps: Sleep[] = [];
  const weekStart = now - 7 * DAY_MS;
  const firstDay = Math.floor((now - days * DAY_MS) / DAY_MS) * DAY_MS;
  for (let day = firstDay; day < now; day += DAY_MS) {
    const weekday = new Date(day).getUTCDay();
    if (weekday === 0 || weekday === 6) continue;
    const from = day + 19 * HOUR_MS;
    const to = day + (weekday === 5 ? 3 : 1) * DAY_MS + 7 * HOUR_MS;
    if (to > now - 10 * 60_000 || (from <= weekStart + 60_000 && to >= weekStart - 60_000)) continue;
    sleeps.push({ from: new Date(from).toISOString(), to: new Date(to).toISOString(), ...slept });
  }
  return sleeps;
}

type Figures = {
  hoursAsleep: number;
  cpuCoreHours: number;
  memoryGiBHours: number;
  instanceHours: Record<string, number>;
  cost: number | null;
};
type Savings = { currency: string | null; environments: (Figures & { namespace: string })[]; total: Figures };
type WeeklySavings = { currency: string | null; weeks: (Omit<Figures, 'hoursAsleep'> & { from: string; to: string })[] };
type Timeline = { namespace: string; from: string; to: string; asleep: { from: string; to: string | null }[] };

/** The figures as the page writes them: en-US, two decimals, two significant digits under 1. */
const figure = (value: number) =>
  new Intl.NumberFormat(
    'en-US',
    value !== 0 && Math.abs(value) < 1 ? { maximumSignificantDigits: 2 } : { maximumFractionDigits: 2 },
  ).format(value);

/**
 * Run in the page: the bars of each colour on the chart's canvas, counted along the pixel row
 * where the most are side by side (the bottom, where every bar stands).
 */
function countBars(canvas: { width: number; height: number; getContext(kind: '2d'): unknown }): { cpu: number; memory: number } {
  const context = canvas.getContext('2d') as { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } };
  const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
  const runs = (r: number, g: number, b: number) => {
    let most = 0;
    for (let y = 0; y < canvas.height; y++) {
      let count = 0;
      let inside = false;
      for (let x = 0; x < canvas.width; x++) {
        const i = (y * canvas.width + x) * 4;
        const match = data[i] === r && data[i + 1] === g && data[i + 2] === b && data[i + 3] === 255;
        if (match && !inside) count++;
        inside = match;
      }
      most = Math.max(most, count);
    }
    return most;
  };
  return { cpu: runs(0x2f, 0x6f, 0xb0), memory: runs(0xe0, 0xa0, 0x30) };
}

interface Listed {
  namespace: string;
  phase: string;
  enabled: boolean;
  nextShutdown: string | null;
  owners: string[];
}

describe('/ui in a real headless Chromium', function () {
  this.timeout(180_000);
  let env: TestWorkflowEnvironment;
  let worker: Worker;
  let running: Promise<void>;
  let browser: Browser;
  const servers: Server[] = [];
  /** UI_PUBLIC=true: the page's reads answer without a token. */
  let open: string;
  /** UI_PUBLIC unset: the page asks for a token. */
  let guarded: string;
  /** Run by the worker: their figures are the real workflow's. */
  const real = ['dev-alice', 'dev-payments', 'qa-checkout'];
  const OWNERS: Record<string, string[]> = { 'dev-alice': ['U024BE7LH'], 'dev-payments': ['U0PAY00001', 'S0614TZR7'] };
  /**
   * Weeks of nights no test can wait for: written into visibility and the memos the API reads,
   * as the workflow writes them, with no worker to run them.
   */
  const seeded = [
    {
      namespace: 'dev-bob',
      phase: 'running',
      owners: ['U0BOB00001'],
      sleeps: nightsAsleep(56, { cpuMillicores: 3500, memoryBytes: 6 * GIB, instances: { 'ec2 t3.medium': 1 } }),
    },
    {
      namespace: 'staging-search',
      phase: 'stopped',
      owners: ['S0SEARCH01'],
      sleeps: nightsAsleep(33, { cpuMillicores: 12_000, memoryBytes: 48 * GIB, instances: { 'ec2 m5.xlarge': 2, 'rds db.t3.large': 1 } }),
    },
  ];
  const namespaces = [...real, ...seeded.map((e) => e.namespace)].sort();

  async function serve(uiPublic: boolean, environments = createEnvironmentsClient(env.client)): Promise<string> {
    const metrics = createMetrics();
    const rest = createRestRouter({
      environments,
      tokens: [
        { name: 'ci', sha256: sha256(CONTROL), scope: 'control' },
        { name: 'dashboard', sha256: sha256(READER), scope: 'read' },
      ],
      logger: createLogger('silent'),
      metrics,
      supportSizes: ['M'],
      savingsPrices: PRICES,
      uiPublic,
    });
    const app = createApi({ client: env.client, logger: createLogger('silent'), metrics, routers: [rest, createUiRouter()] });
    const server = await new Promise<Server>((resolve) => {
      const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
    });
    servers.push(server);
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async function rest<T>(base: string, route: string, { token = READER as string | null, method = 'GET' } = {}) {
    const response = await fetch(`${base}${route}`, { method, headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { status: response.status, body: (await response.json()) as T };
  }

  before(async function () {
    env = await devServerEnv();
    const taskQueue = uniqueTaskQueue('ui');
    const recording = recordingActivities(async () => Date.now());
    // What one pod of each workload requests, as a stop on a real cluster reports it.
    recording.stopRequests = { cpuMillicores: 500, memoryBytes: GIB };
    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: recording,
    });
    running = worker.run();
    for (const namespace of real) {
      await env.client.workflow.start(environmentWorkflow, {
        workflowId: environmentWorkflowId(namespace),
        taskQueue,
        args: [{ namespace, policy: { ...morningPolicy(), ...(OWNERS[namespace] ? { owners: OWNERS[namespace] } : {}) }, enabled: true }],
      });
    }
    const nextShutdown = new Date(Date.now() + 6 * HOUR_MS);
    for (const { namespace, phase, owners, sleeps } of seeded) {
      await env.client.workflow.start('environmentWorkflow', {
        workflowId: environmentWorkflowId(namespace),
        taskQueue: uniqueTaskQueue('ui-seeded'),
        typedSearchAttributes: new TypedSearchAttributes([
          { key: EnvNamespace, value: namespace },
          { key: EnvPhase, value: phase },
          { key: EnvEnabled, value: true },
          ...(phase === 'running' ? [{ key: EnvNextShutdown, value: nextShutdown }] : []),
        ]),
        memo: { [STATUS_MEMO]: { policy: { ...morningPolicy(), owners } }, [SAVINGS_MEMO]: sleeps },
      });
    }
    open = await serve(true);
    guarded = await serve(false);
    // qa-checkout really sleeps a moment: stopped by the workflow, then started again, so the
    // sleep is closed and its figures stay put while the page and the test read them.
    assert.equal((await rest(open, '/api/v1/environments/qa-checkout/stop', { token: CONTROL, method: 'POST' })).status, 200);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    assert.equal((await rest(open, '/api/v1/environments/qa-checkout/start', { token: CONTROL, method: 'POST' })).status, 200);
    await settles(async () => {
      const { body } = await rest<{ environments: Listed[] }>(open, '/api/v1/environments');
      assert.deepEqual(
        body.environments.map((e) => e.namespace),
        namespaces,
      );
    }, 30_000);
    browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
  });

  after(async function () {
    await browser?.close();
    await Promise.all(
      namespaces.map((ns) =>
        env.client.workflow
          .getHandle(environmentWorkflowId(ns))
          .terminate('test over')
          .catch(() => undefined),
      ),
    );
    worker?.shutdown();
    await running;
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  });

  /** A page that records what went wrong, every request it made, and the scripts that ran where they should not. */
  async function visit(base: string): Promise<{ page: Page; failures: string[]; requests: string[] }> {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const failures: string[] = [];
    const requests: string[] = [];
    page.on('pageerror', (err) => failures.push(String(err)));
    page.on('console', (message) => {
      // A failed request is counted once, by its response.
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) failures.push(`console: ${message.text()}`);
    });
    page.on('request', (request) => requests.push(`${request.method()} ${request.url()}`));
    page.on('response', (response) => {
      if (response.status() >= 400) failures.push(`${response.status()} ${response.url()}`);
    });
    await page.goto(`${base}/ui`);
    return { page, failures, requests };
  }

  it('serves the page and uPlot from the API itself, under a Content-Security-Policy that allows nothing from elsewhere', async function () {
    for (const asset of ['/ui', '/ui/app.js', '/ui/ui.css', '/ui/uPlot.iife.min.js', '/ui/uPlot.min.css']) {
      const response = await fetch(`${guarded}${asset}`);
      assert.equal(response.status, 200, asset);
      assert.equal(response.headers.get('content-security-policy'), UI_CONTENT_SECURITY_POLICY, asset);
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff', asset);
      const text = await response.text();
      if (asset === '/ui') {
        // Everything the page loads is its own, and none of it is inline.
        assert.doesNotMatch(text, /(src|href)="(https?:)?\/\//);
        assert.doesNotMatch(text, /<script>|<style|style="/);
      }
    }
    assert.match(UI_CONTENT_SECURITY_POLICY, /default-src 'none'/);
    assert.match(UI_CONTENT_SECURITY_POLICY, /script-src 'self'(;|$)/);
    assert.doesNotMatch(UI_CONTENT_SECURITY_POLICY, /unsafe|\*|https?:/);
  });

  it('UI_PUBLIC: the reads the page shows answer without a token, nothing else does, and a wrong token is still refused', async function () {
    assert.equal((await rest(open, '/api/v1/environments', { token: null })).status, 200);
    assert.equal((await rest(open, '/api/v1/environments', { token: 'not-a-token-0123456789' })).status, 401);
    assert.equal((await rest(open, '/api/v1/environments/dev-alice', { token: null })).status, 401);
    assert.equal((await rest(open, '/api/v1/environments/dev-alice/history', { token: null })).status, 401);
    assert.equal((await rest(open, '/api/v1/environments/dev-alice/stop', { token: null, method: 'POST' })).status, 401);
    assert.equal((await rest(open, '/api/v1/support-pods', { token: null })).status, 401);
    assert.equal((await rest(guarded, '/api/v1/environments', { token: null })).status, 401);
    const document = (await rest<{ paths: Record<string, Record<string, { security: unknown[] }>> }>(open, '/openapi.json')).body;
    const validated = await new Validator().validate(document as never);
    assert.ok(validated.valid, JSON.stringify(validated.errors));
    assert.deepEqual(document.paths['/api/v1/environments']!.get!.security, [{ bearer: [] }, {}]);
    assert.deepEqual(document.paths['/api/v1/environments/{namespace}']!.get!.security, [{ bearer: [] }]);
  });

  it("UI_PUBLIC: a crowd of visitors is served from one listing of Temporal's environments a few seconds old, a token's reads as they are", async function () {
    const client = createEnvironmentsClient(env.client);
    const asked: string[] = [];
    const counted = {
      ...client,
      list: () => (asked.push('list'), client.list()),
      ledgers: (namespace?: string) => (asked.push(`ledgers ${namespace ?? '*'}`), client.ledgers(namespace)),
    };
    const base = await serve(true, counted);
    const routes = ['/api/v1/environments', '/api/v1/savings', '/api/v1/savings/weekly', '/api/v1/environments/dev-bob/timeline'];
    const visits = await Promise.all(Array.from({ length: 80 }, (_, i) => rest(base, routes[i % routes.length]!, { token: null })));
    assert.deepEqual([...new Set(visits.map((v) => v.status))], [200]);
    assert.deepEqual(asked.sort(), ['ledgers *', 'ledgers dev-bob', 'list']);
    const [anonymous, reader] = await Promise.all([
      rest(base, '/api/v1/savings/weekly', { token: null }),
      rest(base, '/api/v1/savings/weekly'),
    ]);
    assert.deepEqual(anonymous.body, reader.body);
    asked.length = 0;
    await Promise.all(Array.from({ length: 4 }, () => rest(base, '/api/v1/environments')));
    assert.deepEqual(asked, ['list', 'list', 'list', 'list']);
  });

  it('shows every environment with its phase, next shutdown and owners as the REST API has them, and offers no action', async function () {
    const { page, failures, requests } = await visit(open);
    await page.waitForSelector('body[data-loaded="true"]', { timeout: 60_000 });
    const listed = (await rest<{ environments: Listed[] }>(open, '/api/v1/environments')).body.environments;
    const shown = await page.$$eval('#environment-rows tr', (rows) =>
      rows.map((row) => ({
        namespace: row.getAttribute('data-namespace'),
        cells: [...row.querySelectorAll('td')].map((td) => td.textContent),
        nextShutdown: row.querySelector('time')?.getAttribute('datetime') ?? null,
        owners: [...row.querySelectorAll('.owner')].map((owner) => owner.textContent),
      })),
    );
    assert.deepEqual(
      shown.map((row) => ({ namespace: row.namespace, phase: row.cells[1], nextShutdown: row.nextShutdown, owners: row.owners })),
      listed.map((env) => ({ namespace: env.namespace, phase: env.phase, nextShutdown: env.nextShutdown, owners: env.owners })),
    );
    assert.deepEqual(listed.find((env) => env.namespace === 'dev-payments')?.owners, ['U0PAY00001', 'S0614TZR7']);
    assert.equal(listed.find((env) => env.namespace === 'staging-search')?.phase, 'stopped');
    assert.equal(listed.find((env) => env.namespace === 'staging-search')?.nextShutdown, null);
    // Read-only: nothing to press or fill in, and every request it made a GET to this API.
    assert.equal(await page.locator('button:visible, input:visible, form:visible, a[href]:visible').count(), 0);
    assert.deepEqual(
      requests.filter((request) => !request.startsWith(`GET ${open}/`)),
      [],
    );
    assert.ok(await page.isHidden('#token'));
    assert.deepEqual(failures, []);
    await page.close();
  });

  it('without UI_PUBLIC asks for a token, keeps it in the tab, and shows the environments once given a read token', async function () {
    const { page, failures } = await visit(guarded);
    await page.waitForSelector('#token:not([hidden])', { timeout: 30_000 });
    assert.equal(await page.locator('#environment-rows tr').count(), 0);
    await page.fill('#token-input', 'not-a-token-0123456789');
    await page.click('#token-form button');
    await settles(async () => assert.match(await page.innerText('#token-error'), /the token is not valid/), 10_000);
    await page.fill('#token-input', READER);
    await page.click('#token-form button');
    await page.waitForSelector('body[data-loaded="true"]', { timeout: 60_000 });
    assert.deepEqual(
      await page.$$eval('#environment-rows tr', (rows) => rows.map((row) => row.getAttribute('data-namespace'))),
      namespaces,
    );
    assert.ok(await page.isHidden('#token'));
    // In this tab's sessionStorage, never in the address or a cookie.
    assert.equal(await page.evaluate('document.cookie'), '');
    assert.doesNotMatch(page.url(), /token/);
    assert.deepEqual(
      failures.filter((f) => !/^401 /.test(f)),
      [],
    );
    await page.close();
  });

  it("draws the timelines and the savings per week, and every figure it shows is the REST API's", async function () {
    const { page, failures } = await visit(open);
    await page.waitForSelector('body[data-loaded="true"]', { timeout: 60_000 });
    const week = (await rest<Savings>(open, '/api/v1/savings?period=week')).body;
    const weekly = (await rest<WeeklySavings>(open, '/api/v1/savings/weekly?weeks=8')).body;
    const money = (cost: number | null) => (cost === null ? '—' : `${figure(cost)}${week.currency ? ` ${week.currency}` : ''}`);

    // This week, per environment, in the environments' table.
    const shown = await page.$$eval('#environment-rows tr', (rows) =>
      rows.map((row) => [row.getAttribute('data-namespace'), ...[...row.querySelectorAll('td.number')].map((td) => td.textContent)]),
    );
    assert.deepEqual(
      shown,
      namespaces.map((namespace) => {
        const saved = week.environments.find((e) => e.namespace === namespace);
        return saved
          ? [namespace, figure(saved.hoursAsleep), figure(saved.cpuCoreHours), figure(saved.memoryGiBHours), money(saved.cost)]
          : [namespace, '—', '—', '—', '—'];
      }),
    );
    const slept = week.environments.find((e) => e.namespace === 'qa-checkout');
    assert.ok(slept && slept.hoursAsleep > 0 && slept.hoursAsleep < 0.1, `qa-checkout slept a moment: ${JSON.stringify(slept)}`);

    // The weeks, in the table under the chart.
    const weeks = await page.$$eval('#savings-rows tr', (rows) =>
      rows.map((row) => [row.getAttribute('data-from'), ...[...row.querySelectorAll('td')].map((td) => td.textContent)]),
    );
    assert.equal(weekly.weeks.length, 8);
    assert.deepEqual(
      weeks,
      weekly.weeks.map((w) => [
        w.from,
        w.from.slice(0, 10),
        figure(w.cpuCoreHours),
        figure(w.memoryGiBHours),
        Object.keys(w.instanceHours).length
          ? Object.entries(w.instanceHours)
              .map(([type, hours]) => `${type}: ${figure(hours)}`)
              .join(', ')
          : '—',
        money(w.cost),
      ]),
    );

    // The chart: one bar of each colour per week that saved something, read from the canvas.
    const bars = await settles(async () => {
      const counted = (await page.evaluate(`(${countBars.toString()})(document.querySelector('#savings-chart canvas'))`)) as {
        cpu: number;
        memory: number;
      };
      assert.ok(counted.cpu > 0);
      return counted;
    }, 10_000);
    const saving = weekly.weeks.filter((w) => w.cpuCoreHours > 0).length;
    assert.ok(saving >= 6, `weeks that saved: ${saving}`);
    assert.deepEqual(bars, { cpu: saving, memory: weekly.weeks.filter((w) => w.memoryGiBHours > 0).length });

    // The timelines: each sleep where REST has it.
    for (const namespace of namespaces) {
      const timeline = (await rest<Timeline>(open, `/api/v1/environments/${namespace}/timeline?days=14`)).body;
      const segments = await page
        .locator(`.timeline[data-namespace="${namespace}"] .asleep`)
        .evaluateAll((spans) => spans.map((span) => [span.getAttribute('data-from'), span.getAttribute('data-to') || null]));
      assert.deepEqual(
        segments,
        timeline.asleep.map((sleep) => [sleep.from, sleep.to]),
        namespace,
      );
    }
    assert.ok((await page.locator('.timeline[data-namespace="qa-checkout"] .asleep').count()) === 1);
    assert.deepEqual(failures, []);
    if (process.env.UI_SCREENSHOT) await page.screenshot({ path: path.join(__dirname, '..', 'docs', 'ui.png'), fullPage: true });
    await page.close();
  });

  it('a hostile namespace or owner is shown as text: no element, no script', async function () {
    const hostile = '<img src=x onerror="window.pwned=1">';
    const owner = '<script>window.pwned=2</script><b>U0EVIL</b>';
    // As an environment workflow could never record them (names and owners are validated
    // first): written straight into visibility and memo, with no worker to run it.
    await env.client.workflow.start('environmentWorkflow', {
      workflowId: `env/hostile-${process.pid}`,
      taskQueue: uniqueTaskQueue('ui-hostile'),
      typedSearchAttributes: new TypedSearchAttributes([
        { key: EnvNamespace, value: hostile },
        { key: EnvPhase, value: 'running' },
        { key: EnvEnabled, value: true },
      ]),
      memo: { [STATUS_MEMO]: { policy: { ...morningPolicy(), owners: [owner] } } },
    });
    try {
      const { page } = await visit(open);
      await settles(async () => {
        await page.reload();
        await page.waitForSelector('body[data-loaded="true"]', { timeout: 60_000 });
        assert.ok((await page.$$eval('#environment-rows tr', (rows) => rows.length)) > namespaces.length);
      }, 30_000);
      const row = page.locator('#environment-rows tr').filter({ hasText: 'onerror' });
      assert.equal(await row.locator('.namespace').innerText(), hostile);
      assert.equal(await row.locator('.owner').innerText(), owner);
      assert.equal(await page.locator('#environments img, #environments script, #environments b').count(), 0);
      assert.equal(await page.locator('#timeline-rows img, #timeline-rows script').count(), 0);
      assert.equal(await page.evaluate('window.pwned'), undefined);
      await page.close();
    } finally {
      await env.client.workflow
        .getHandle(`env/hostile-${process.pid}`)
        .terminate('test over')
        .catch(() => undefined);
    }
  });
});
