/**
 * The documentation against the code. First, facts the README and docs/ state that the code
 * can check: links, settings, commands, the banner, refusals. Then `/docs` as a person sees
 * it: Debian's Chromium, headless, driven by playwright-core (which downloads no browser),
 * loads the page from the real koa app and shows every operation of the OpenAPI document.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { parseCommand } from '../src/commands';
import { SETTING_NAMES } from '../src/config';
import { DEMO_NAMESPACES, DEMO_SHUTDOWN_AFTER_MINUTES } from '../src/local-cluster';
import { createEnvironmentsClient } from '../src/client/environments';
import { createMetrics } from '../src/api/metrics';
import { createRestRouter } from '../src/api/rest';
import { createApi } from '../src/api/server';
import { createLogger } from '../src/logger';
import { devServerEnv } from './support/temporal';

const ROOT = path.join(__dirname, '..');
const read = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8');
const DOCS = [
  'README.md',
  ...readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to hyphens. */
const anchorOf = (heading: string): string =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');

const anchorsIn = (markdown: string): Set<string> =>
  new Set(
    markdown
      .replace(/^```[\s\S]*?^```/gm, '')
      .split('\n')
      .filter((line) => /^#{1,6} /.test(line))
      .map((line) => anchorOf(line.replace(/^#+ /, ''))),
  );

/** One `## ` section of a Markdown file, up to the next. */
function section(markdown: string, heading: string): string {
  const start = markdown.indexOf(`\n## ${heading}\n`);
  assert.ok(start >= 0, `no section "${heading}"`);
  const end = markdown.indexOf('\n## ', start + 1);
  return markdown.slice(start, end === -1 ? undefined : end);
}

describe('the docs state what the code does', function () {
  it('every relative link in README.md and docs/ names a file of the repository, and its anchor a heading there', function () {
    const broken: string[] = [];
    for (const file of DOCS) {
      const text = read(file).replace(/^```[\s\S]*?^```/gm, '');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        const [where, anchor] = target!.split('#') as [string, string | undefined];
        const resolved = where ? path.normalize(path.join(path.dirname(file), where)) : file;
        if (resolved.startsWith('..') || path.isAbsolute(resolved)) broken.push(`${file}: ${target} is outside the repository`);
        else if (!existsSync(path.join(ROOT, resolved))) broken.push(`${file}: ${target} does not exist`);
        else if (anchor && resolved.endsWith('.md') && !anchorsIn(read(resolved)).has(anchor))
          broken.push(`${file}: ${target} names no heading of ${resolved}`);
      }
    }
    assert.deepEqual(broken, []);
  });

  it("the README's configuration table names every setting src/config.ts reads", function () {
    const settings = SETTING_NAMES;
    assert.ok(settings.length > 50, `found ${settings.length} settings in src/config.ts`);
    const table = section(read('README.md'), 'Configuration');
    // `SLACK_ALLOW_{READ,CONTROL,SUPPORT}_{USERS,CHANNELS}` stands for six.
    const expand = (name: string): string[] => {
      const brace = /\{([^}]+)\}/.exec(name);
      return brace ? brace[1]!.split(',').flatMap((part) => expand(name.replace(brace[0], part))) : [name];
    };
    const documented = new Set([...table.matchAll(/`([A-Z][A-Z0-9_{},]+)`/g)].flatMap((m) => expand(m[1]!)));
    assert.deepEqual(
      settings.filter((name) => !documented.has(name)),
      [],
    );
  });

  it('the commands the README gives are the ones package.json and CI run', function () {
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
    const readme = read('README.md');
    assert.match(readme, /^npm test +# installs the test tools once, then lint \+ type check/m);
    assert.match(scripts.test!, /^bash scripts\/setup-tools\.sh && npm run lint && mocha /);
    assert.equal(read('.ci/run').trim().split('\n').pop(), 'npm test', '.ci/run ends with the command the README gives');
    // The first `npm start` installs what it runs, and only that: the local control plane only with no kubeconfig.
    assert.match(readme, /The first `npm start` installs what it runs, with `scripts\/setup-tools\.sh start`/);
    assert.match(readme, /and, when there is no kubeconfig, the local control\nplane \(`scripts\/setup-kube\.sh`/);
    assert.match(
      read('scripts/setup-tools.sh'),
      /^ {2}\[\[ "\$\{LOCAL_CLUSTER:-auto\}" == off \|\| -n "\$\{KUBECONFIG:-\}" \|\| -f "\$HOME\/\.kube\/config"/m,
    );
    assert.match(scripts.start!, /^bash scripts\/setup-tools\.sh start && exec ts-node --transpile-only src\/main\.ts$/);
    assert.match(read('scripts/setup-tools.sh'), /if \[\[ "\$MODE" == start \]\]; then/);
  });

  it("the README's sample environments are the ones npm start seeds without a kubeconfig", function () {
    const quickStart = section(read('README.md'), 'Quick start');
    assert.match(
      quickStart,
      new RegExp(`seeded with three sample\\s+environments, ${DEMO_NAMESPACES.map((ns) => `\`${ns}\``).join(',? (and )?')}`),
    );
    assert.match(quickStart, new RegExp(`shutdown is moved to ${DEMO_SHUTDOWN_AFTER_MINUTES} minutes after each start`));
  });

  it("the README's banner is the one src/main.ts prints, line by line", function () {
    const banner = /^```\n((?: {2}Temporal {6}[\s\S]*?))^```/m.exec(section(read('README.md'), 'Quick start'))?.[1];
    assert.ok(banner, 'the banner in Quick start');
    const main = read('src/main.ts');
    for (const line of banner.trimEnd().split('\n')) {
      const label = /^ {2}(\S+(?: \S+)?) {2,}/.exec(line)?.[0];
      assert.ok(label && main.includes(`\`${label}`), `src/main.ts prints no line beginning ${JSON.stringify(label ?? line)}`);
    }
  });

  it('a zero or negative prolongation is refused by the parser, as README.md and docs/slack.md say', function () {
    for (const text of ['prolongate dev1 for 0m', 'prolongate dev1 for -3h']) assert.equal(parseCommand(text).ok, false, text);
    assert.match(
      section(read('README.md'), 'How an environment behaves'),
      /A zero or negative duration never gets this far: the command parser refuses it \(REST `422`, CLI exit 2/,
    );
    assert.match(read('docs/slack.md'), /A zero or negative prolongation \(`for 0m`, `for -3h`\) is refused by the command parser/);
  });
});

describe('/docs in a real headless Chromium', function () {
  this.timeout(120_000);
  let server: Server;
  let base: string;
  let browser: Browser;

  before(async function () {
    const env = await devServerEnv();
    const metrics = createMetrics();
    const rest = createRestRouter({
      environments: createEnvironmentsClient(env.client),
      tokens: [],
      logger: createLogger('silent'),
      metrics,
      supportSizes: ['M'],
    });
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
    for (const path of [
      '/api/v1/environments',
      '/api/v1/environments/{namespace}',
      '/api/v1/environments/{namespace}/prolongate',
      '/api/v1/environments/{namespace}/history',
      '/api/v1/environments/{namespace}/why',
      '/api/v1/support-pods/{name}',
    ]) {
      assert.ok(operations.includes(path), `${path} not shown; shown: ${operations.join(', ')}`);
    }
    assert.equal(await page.locator('.opblock').count(), 14);
    assert.deepEqual(failures, []);
  });
});
