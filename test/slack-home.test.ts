/** The App Home rendered from plain data (src/slack/home.ts): what each person sees, and which buttons, in which order. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { EnvironmentSummary } from '../src/client/environments';
import { PROLONGATE_ACTION_ID, START_ACTION_ID, STOP_ACTION_ID, decodeButtonValue, md } from '../src/slack/blocks';
import { HOME_MAX_ENVIRONMENTS, homeTab, type HomeInput } from '../src/slack/home';
import { ephemeral, plain } from '../src/slack/replies';
import type { Phase } from '../src/workflows/environment/definitions';
import { everyDayPolicy } from './support/policies';
import { yaml } from './support/manifests';
import { markupIn, slackFields, visibleText } from './support/slack';

const ALICE = 'U0ALICE0001';
const TEAM = 'S0DEVTEAM01';

const summary = (namespace: string, phase: Phase, owners?: string[]): EnvironmentSummary => ({
  namespace,
  phase,
  enabled: phase !== 'disabled',
  nextShutdown: phase === 'running' ? '2026-01-05T19:00:00.000Z' : null,
  policy: { ...everyDayPolicy(), ...(owners ? { owners } : {}) },
  dispatchAheadMs: null,
  runId: 'run',
  startedAt: '2026-01-05T08:00:00.000Z',
});

type View = { type: string; blocks: { type: string; block_id?: string; elements?: { action_id?: string; value?: string }[] }[] };

/** Each environment as the reader meets it, top to bottom: its name and the buttons under it. */
function rows(view: View): { namespace: string; buttons: string[] }[] {
  return view.blocks
    .filter((b) => b.type === 'actions')
    .map((b) => ({
      namespace: b.block_id!.replace(/^devenv_home_/, ''),
      buttons: (b.elements ?? []).map((e) => e.action_id!),
    }));
}

const render = (input: Partial<HomeInput>): View => homeTab({ environments: [], own: new Set(), ...input }) as unknown as View;

describe('Slack App Home', function () {
  it("the reader's own environments first, then the others, each with the buttons its phase allows", function () {
    const cases: { name: string; input: Partial<HomeInput>; rows: { namespace: string; buttons: string[] }[]; text: RegExp[] }[] = [
      {
        name: 'owned first, whatever their names',
        input: {
          environments: [summary('a-dev', 'running'), summary('b-dev', 'stopped', [ALICE]), summary('c-dev', 'running', [ALICE])],
          own: new Set(['b-dev', 'c-dev']),
        },
        rows: [
          { namespace: 'b-dev', buttons: [START_ACTION_ID] },
          { namespace: 'c-dev', buttons: [PROLONGATE_ACTION_ID, STOP_ACTION_ID] },
          { namespace: 'a-dev', buttons: [PROLONGATE_ACTION_ID, STOP_ACTION_ID] },
        ],
        text: [/\*Yours\* \(2\)/, /\*Others\* \(1\)/, /\*b-dev\* \(yours\) · stopped · no scheduled shutdown\nOwners: <@U0ALICE0001>/],
      },
      {
        name: 'nothing owned: all of them, and why none is "yours"',
        input: { environments: [summary('a-dev', 'running', [TEAM]), summary('b-dev', 'disabled')] },
        rows: [
          { namespace: 'a-dev', buttons: [PROLONGATE_ACTION_ID, STOP_ACTION_ID] },
          { namespace: 'b-dev', buttons: [START_ACTION_ID, STOP_ACTION_ID] },
        ],
        text: [
          /None of these names you as an owner/,
          /\*All\* \(2\)/,
          /shuts down <!date\^\d+\^\{date_short_pretty\} at \{time\}\|2026-01-05 19:00 UTC>/,
        ],
      },
      {
        name: 'an environment stopping or starting has no buttons until it is done',
        input: { environments: [summary('a-dev', 'stopping'), summary('b-dev', 'starting')], own: new Set(['a-dev']) },
        rows: [],
        text: [/stopping… the buttons come back when it is done/, /starting… the buttons come back/],
      },
      {
        name: 'none enrolled',
        input: {},
        rows: [],
        text: [/No environments are enrolled yet/],
      },
      {
        name: 'Temporal did not answer: said so, no stale list',
        input: { environments: [summary('a-dev', 'running')], unavailable: 'Temporal did not answer' },
        rows: [],
        text: [/could not be listed just now \(Temporal did not answer\)/],
      },
      {
        name: 'kept out by the READ allow-list by id: said so, nothing listed',
        input: { environments: [summary('a-dev', 'running')], refused: { user: ALICE, by: 'user' } },
        rows: [],
        text: [/:no_entry: You are not allowed to see the environments here\. Ask an admin to add <@U0ALICE0001> to the read allow-list\./],
      },
      {
        name: 'kept out by a READ channels list: the Home is in no channel',
        input: { environments: [summary('a-dev', 'running')], refused: { user: ALICE, by: 'channel' } },
        rows: [],
        text: [/shown only in some channels \(the read allow-list\), and this tab is in none: use `\/devenv list` there/],
      },
      {
        name: "the outcome of the reader's last click on top",
        input: {
          environments: [summary('a-dev', 'running')],
          notice: {
            message: ephemeral(plain(md`:no_entry: Only the owners of *a-dev* may stop it.`)),
            at: new Date('2026-01-05T12:00:00Z'),
          },
        },
        rows: [{ namespace: 'a-dev', buttons: [PROLONGATE_ACTION_ID, STOP_ACTION_ID] }],
        text: [/^\*Dev environments\*\n:no_entry: Only the owners of \*a-dev\* may stop it\.\n<!date\^/],
      },
    ];
    for (const c of cases) {
      const view = render(c.input);
      assert.equal(view.type, 'home', c.name);
      assert.deepEqual(rows(view), c.rows, c.name);
      for (const pattern of c.text) assert.match(visibleText(view), pattern, c.name);
    }
  });

  it('each button carries its namespace and what it asks, as the handlers parse it', function () {
    const view = render({ environments: [summary('dev1', 'running'), summary('dev2', 'stopped')] });
    const values = view.blocks
      .filter((b) => b.type === 'actions')
      .flatMap((b) => b.elements!.map((e) => [e.action_id, decodeButtonValue(e.value)]));
    assert.deepEqual(values, [
      [PROLONGATE_ACTION_ID, { namespace: 'dev1', minutes: 60 }],
      [STOP_ACTION_ID, { namespace: 'dev1' }],
      [START_ACTION_ID, { namespace: 'dev2' }],
    ]);
  });

  it("many environments: within Slack's 100 blocks, the reader's own kept, the rest counted", function () {
    const environments = Array.from({ length: 300 }, (_, i) => summary(`dev${String(i).padStart(3, '0')}`, 'running'));
    const own = new Set(['dev299', 'dev150']);
    const view = render({
      environments,
      own,
      notice: { message: ephemeral(plain(md`done`, md`took 1 s`)), at: new Date() },
    });
    assert.ok(view.blocks.length <= 100, `${view.blocks.length} blocks`);
    const shown = rows(view).map((r) => r.namespace);
    assert.equal(shown.length, HOME_MAX_ENVIRONMENTS);
    assert.deepEqual(shown.slice(0, 2), ['dev150', 'dev299']);
    assert.match(visibleText(view), new RegExp(`…and ${300 - HOME_MAX_ENVIRONMENTS} more: \`/devenv list\` lists them all\\.`));
    assert.equal(new Set(view.blocks.map((b) => b.block_id).filter(Boolean)).size, view.blocks.filter((b) => b.block_id).length);
  });

  it('owners are the only markup: a namespace or notice cannot make a mention or a link', function () {
    const view = render({
      environments: [summary('dev1', 'running', [ALICE, TEAM])],
      notice: { message: ephemeral(plain(md`${'<!channel> <https://evil.example|click>'}`)), at: new Date() },
    });
    const markup = [...new Set(slackFields(view as unknown as Record<string, unknown>).flatMap(markupIn))].sort();
    assert.deepEqual(markup, [`<!subteam^${TEAM}>`, `<@${ALICE}>`]);
  });

  it('both app manifests turn the Home tab on and subscribe to app_home_opened; over HTTP at a route the service serves', function () {
    const root = path.join(__dirname, '..');
    const routes = [...readFileSync(path.join(root, 'src/api/slack/router.ts'), 'utf8').matchAll(/router\.post\('(\/slack\/[^']+)'/g)].map(
      (m) => m[1],
    );
    for (const file of ['slack/manifest.yml', 'slack/manifest-socket-mode.yml']) {
      type Manifest = {
        features: { app_home?: { home_tab_enabled?: boolean } };
        settings: { event_subscriptions?: { request_url?: string; bot_events?: string[] }; socket_mode_enabled: boolean };
      };
      const manifest = yaml.load(readFileSync(path.join(root, file), 'utf8')) as Manifest;
      assert.equal(manifest.features.app_home?.home_tab_enabled, true, file);
      assert.deepEqual(manifest.settings.event_subscriptions?.bot_events, ['app_home_opened'], file);
      const url = manifest.settings.event_subscriptions?.request_url;
      if (manifest.settings.socket_mode_enabled) assert.equal(url, undefined, `${file}: events come on the connection`);
      else assert.ok(url && routes.includes(new URL(url).pathname), `${file}: ${url} is a route of router.ts (${routes.join(', ')})`);
    }
  });
});
