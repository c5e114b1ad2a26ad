/**
 * The App Home end to end: `app_home_opened` signed the way Slack signs it, over real HTTP
 * into the real koa app (and as an `events_api` envelope over Socket Mode, through the same
 * handlers), a real Temporal server and a worker running the environment workflow
 * (recording Kubernetes activities), every `views.publish` recorded by the Web API double.
 * Each person's Home lists their own environments first; its buttons change the environment
 * through the same handlers and owners rule as a warning's, and the Home shows the outcome;
 * a change made elsewhere reaches the Homes of those who have it open and of the owners.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createMetrics } from '../src/api/metrics';
import { createApi } from '../src/api/server';
import { createSlackHandlers } from '../src/api/slack/handlers';
import { createSlackHome, type SlackHome } from '../src/api/slack/home';
import { createResponder } from '../src/api/slack/responder';
import { createSlackRouter } from '../src/api/slack/router';
import { createSlackSocketMode, type SlackSocketMode } from '../src/api/slack/socket-mode';
import { createEnvironmentsClient, type EnvironmentsClient } from '../src/client/environments';
import type { EnvironmentPolicy } from '../src/domain/shutdown-policy';
import { createLogger } from '../src/logger';
import { PROLONGATE_ACTION_ID, START_ACTION_ID, STOP_ACTION_ID } from '../src/slack/blocks';
import { createGroupMembers } from '../src/slack/usergroups';
import { environmentWorkflow, environmentWorkflowId, statusQuery, type EnvironmentStatus } from '../src/workflows';
import { morningPolicy } from './support/policies';
import { recordingActivities, type RecordedCall } from './support/recording-activities';
import { SlackRecorder, eventually, postSigned, postSignedJson, visibleText } from './support/slack';
import { devServerEnv, uniqueTaskQueue, workflowBundle } from './support/temporal';

const SECRET = 'test-signing-secret-home-0123';
const BOT_TOKEN = 'xoxb-test-home-token';
const ANA = 'U0ANA00001'; // an owner
const BEN = 'U0BEN00001'; // no owner
const DAVE = 'U0DAVE0001'; // an owner who never opens the Home
const MALLORY = 'U0MALLORY1'; // forges events
const EVE = 'U0EVE00001'; // outside the READ allow-list
const ADMIN = 'U0ADMIN0001';
const MINUTE = 60_000;
const logger = createLogger(process.env.HOME_TEST_LOG ?? 'silent');

const fingerprint = (s: EnvironmentStatus) => ({
  phase: s.phase,
  shutdownAt: s.shutdownAt,
  prolongedMinutes: s.prolongedMinutes,
  lastAction: s.lastAction,
});

describe('Slack App Home, Temporal dev server behind it', function () {
  this.timeout(120_000);
  const run = `${process.pid}`;
  let env: TestWorkflowEnvironment;
  let recorder: SlackRecorder;
  let environments: EnvironmentsClient;
  let home: SlackHome;
  let server: Server;
  let apiUrl: string;
  let socketMode: SlackSocketMode;
  let worker: Worker;
  let running: Promise<void>;
  let calls: RecordedCall[];
  let taskQueue: string;
  let counter = 0;
  const started: WorkflowHandle[] = [];

  before(async function () {
    env = await devServerEnv();
    recorder = await new SlackRecorder().start();
    taskQueue = uniqueTaskQueue('slack-home');
    const slackApiUrl = `${recorder.url}/api/`;
    environments = createEnvironmentsClient(env.client, {
      owners: {
        controlByOwnersOnly: true,
        admins: [ADMIN],
        membersOf: createGroupMembers({ token: BOT_TOKEN, slackApiUrl, logger }),
      },
    });
    home = createSlackHome({ environments, token: BOT_TOKEN, slackApiUrl, logger, pollIntervalMs: 1000 });
    const handlers = createSlackHandlers({ environments, responder: createResponder({ logger, origins: [recorder.url] }), logger, home });
    const slack = createSlackRouter({ handlers, signingSecret: SECRET, logger });
    server = createApi({ client: env.client, logger, metrics: createMetrics(), routers: [slack] }).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    socketMode = createSlackSocketMode({ handlers, logger, appToken: recorder.appToken, slackApiUrl, clientPingTimeoutMs: 2000 });
    await socketMode.start();
    const recording = recordingActivities(async () => Date.now());
    calls = recording.calls;
    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: recording,
    });
    running = worker.run();
    home.start();
  });

  after(async function () {
    home?.stop();
    await Promise.all(started.map((handle) => handle.terminate('test over').catch(() => undefined)));
    worker?.shutdown();
    await running;
    await socketMode?.stop();
    await new Promise((resolve) => server?.close(resolve));
    await recorder?.stop();
  });

  async function environment(owners?: string[]): Promise<{ namespace: string; status: () => Promise<EnvironmentStatus> }> {
    const namespace = `home-${run}-${String(++counter).padStart(2, '0')}`;
    const policy: EnvironmentPolicy = { ...morningPolicy(), ...(owners ? { owners } : {}) };
    const handle = await env.client.workflow.start(environmentWorkflow, {
      workflowId: environmentWorkflowId(namespace),
      taskQueue,
      args: [{ namespace, policy, enabled: true }],
    });
    started.push(handle);
    await eventually('the status memo', async () => ((await handle.describe()).memo?.status ? true : undefined));
    return { namespace, status: () => handle.query(statusQuery) };
  }

  const homeOpened = (user: string) => ({
    token: 'deprecated-verification-token',
    team_id: 'T0TEAM0001',
    api_app_id: 'A0TEST0001',
    type: 'event_callback',
    event_id: `Ev${++counter}`,
    event_time: Math.floor(Date.now() / 1000),
    event: { type: 'app_home_opened', user, channel: 'D0HOME0001', tab: 'home', event_ts: `${Date.now() / 1000}` },
  });

  async function openHome(user: string): Promise<void> {
    const response = await postSignedJson(`${apiUrl}/slack/events`, SECRET, homeOpened(user));
    assert.equal(response.status, 200, JSON.stringify(response.body));
  }

  /** A click on a button of `user`'s Home, as Slack sends it: no channel, no response_url, the view it was on. */
  async function homeClick(actionId: string, value: Record<string, unknown>, user: string): Promise<void> {
    const payload = {
      type: 'block_actions',
      user: { id: user },
      api_app_id: 'A0TEST0001',
      container: { type: 'view', view_id: 'V0HOME0001' },
      view: { id: 'V0HOME0001', type: 'home' },
      actions: [{ type: 'button', action_id: actionId, block_id: 'devenv_home_x', value: JSON.stringify(value) }],
    };
    assert.equal((await postSigned(`${apiUrl}/slack/interactions`, SECRET, { payload: JSON.stringify(payload) })).status, 200);
  }

  /** The newest Home published for `user` whose text matches every pattern, once there is one. */
  const homeShowing = (user: string, ...patterns: RegExp[]) =>
    eventually(`a Home for ${user} showing ${patterns.join(' and ')}`, () =>
      recorder
        .homes(user)
        .reverse()
        .map(visibleText)
        .find((text) => patterns.every((p) => p.test(text))),
    );

  const line = (namespace: string, rest: string) => new RegExp(`\\*${namespace}\\*${rest}`);
  const stopsOn = (namespace: string) => calls.filter((c) => c.namespace === namespace && c.name === 'stopNamespace').length;

  it('a signed app_home_opened: the Home is published for that person, their own environments first', async function () {
    const other = await environment([DAVE]);
    const mine = await environment([ANA]);
    await openHome(ANA);
    const text = await homeShowing(ANA, line(mine.namespace, ' \\(yours\\) · running'), line(other.namespace, ' · running'));
    assert.ok(
      text.indexOf(`*${mine.namespace}*`) < text.indexOf(`*${other.namespace}*`),
      `${mine.namespace} (hers) comes before ${other.namespace}, though it sorts after:\n${text}`,
    );
    assert.match(text, /\*Yours\* \(\d+\)[\s\S]*\*Others\* \(\d+\)/);
    const published = recorder.posts.filter((p) => p.method === 'views.publish' && p.body.user_id === ANA);
    assert.ok(
      published.every((p) => p.authorization === `Bearer ${BOT_TOKEN}`),
      'published with the bot token',
    );
    const view = recorder.homes(ANA).at(-1)!;
    assert.equal(view.type, 'home');
    const buttons = (view.blocks as { block_id?: string; elements?: { action_id: string }[] }[]).find(
      (b) => b.block_id === `devenv_home_${mine.namespace}`,
    );
    assert.deepEqual(
      buttons?.elements?.map((e) => e.action_id),
      [PROLONGATE_ACTION_ID, STOP_ACTION_ID],
    );
  });

  it('the same event over Socket Mode publishes the same Home', async function () {
    const mine = await environment([ANA]);
    const before = recorder.homes(BEN).length;
    // Slowed down by other suites, the client may have reconnected: any open connection will do.
    await eventually('an open Socket Mode connection', () => (recorder.sockets.some((ws) => ws.readyState === ws.OPEN) ? true : undefined));
    const { payload } = await recorder.envelope('events_api', homeOpened(BEN));
    assert.deepEqual(payload ?? {}, {}, 'an event is acknowledged empty');
    const text = await homeShowing(BEN, line(mine.namespace, ' · running'));
    assert.ok(recorder.homes(BEN).length > before);
    assert.doesNotMatch(text, /\(yours\)/, 'BEN owns nothing');
  });

  it('Stop and Start from the Home really stop and start the environment, and the Home follows', async function () {
    const { namespace, status } = await environment([ANA]);
    await openHome(ANA);
    await homeShowing(ANA, line(namespace, ' \\(yours\\) · running'));

    await homeClick(STOP_ACTION_ID, { namespace }, ANA);
    const stopped = await homeShowing(ANA, line(namespace, ' \\(yours\\) · stopped'), new RegExp(`${namespace} stopped.* by <@${ANA}>`));
    assert.equal((await status()).phase, 'stopped');
    assert.equal(stopsOn(namespace), 1);
    assert.match(stopped, /took \d/);

    await homeClick(START_ACTION_ID, { namespace }, ANA);
    await homeShowing(ANA, line(namespace, ' \\(yours\\) · running'), new RegExp(`${namespace} started.* by <@${ANA}>`));
    assert.equal((await status()).phase, 'running');

    const before = (await status()).shutdownAt!;
    await homeClick(PROLONGATE_ACTION_ID, { namespace, minutes: 60 }, ANA);
    await homeShowing(ANA, new RegExp(`${namespace} prolongated by 1h by <@${ANA}>`));
    assert.equal(new Date((await status()).shutdownAt!).getTime() - new Date(before).getTime(), 60 * MINUTE);
  });

  it('SLACK_OWNERS_ONLY=control: a non-owner’s Stop from the Home is refused on their Home, and nothing changes', async function () {
    const { namespace, status } = await environment([ANA]);
    const before = fingerprint(await status());
    await openHome(BEN);
    await homeShowing(BEN, line(namespace, ' · running'));

    await homeClick(STOP_ACTION_ID, { namespace }, BEN);
    const refusal = (action: string) =>
      new RegExp(`:no_entry: Only the owners of \\*${namespace}\\* \\(<@${ANA}>\\) may ${action} it\\. Ask one of them, or an admin\\.`);
    await homeShowing(BEN, refusal('stop'), line(namespace, ' · running'));
    await homeClick(PROLONGATE_ACTION_ID, { namespace, minutes: 60 }, BEN);
    await homeShowing(BEN, refusal('prolongate'));
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.deepEqual(fingerprint(await status()), before, 'nothing changed');
    assert.equal(stopsOn(namespace), 0, 'no stop was run');
  });

  it('a forged, unsigned or stale app_home_opened is refused with 401 and publishes nothing', async function () {
    const event = homeOpened(MALLORY);
    const forged = await postSignedJson(`${apiUrl}/slack/events`, 'not-the-secret', event);
    const unsigned = await postSignedJson(`${apiUrl}/slack/events`, SECRET, event, {
      headers: { 'x-slack-signature': undefined, 'x-slack-request-timestamp': undefined },
    });
    const stale = await postSignedJson(`${apiUrl}/slack/events`, SECRET, event, { timestamp: Math.floor(Date.now() / 1000) - 600 });
    for (const response of [forged, unsigned, stale]) {
      assert.equal(response.status, 401);
      assert.deepEqual(response.body, { error: 'invalid Slack request signature' });
    }
    // Longer than a poll interval: nothing comes later either.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    assert.equal(recorder.posts.filter((p) => p.method === 'views.publish' && p.body.user_id === MALLORY).length, 0);
  });

  it("the Events API's url_verification is answered with its challenge, and only when signed", async function () {
    const challenge = { token: 'x', challenge: 'c-0123456789', type: 'url_verification' };
    const answered = await postSignedJson(`${apiUrl}/slack/events`, SECRET, challenge);
    assert.equal(answered.status, 200);
    assert.deepEqual(answered.body, { challenge: 'c-0123456789' });
    assert.equal((await postSignedJson(`${apiUrl}/slack/events`, 'not-the-secret', challenge)).status, 401);
  });

  it('the READ allow-list keeps the Home as it keeps list: someone outside it is told why, and shown nothing', async function () {
    const { namespace } = await environment([ANA]);
    const read = { users: [ANA] };
    const guarded = createSlackHome({ environments, token: BOT_TOKEN, slackApiUrl: `${recorder.url}/api/`, logger, allow: read });
    const handlers = createSlackHandlers({
      environments,
      responder: createResponder({ logger, origins: [recorder.url] }),
      logger,
      allow: { read },
      home: guarded,
    });
    const app = createApi({
      client: env.client,
      logger,
      metrics: createMetrics(),
      routers: [createSlackRouter({ handlers, signingSecret: SECRET, logger })],
    }).listen(0, '127.0.0.1');
    try {
      await new Promise((resolve) => app.once('listening', resolve));
      const url = `http://127.0.0.1:${(app.address() as AddressInfo).port}/slack/events`;
      const before = recorder.homes(EVE).length;
      assert.equal((await postSignedJson(url, SECRET, homeOpened(EVE))).status, 200);
      const text = await eventually('a Home for EVE', () => recorder.homes(EVE).slice(before).map(visibleText)[0]);
      assert.match(
        text,
        new RegExp(`You are not allowed to see the environments here\\. Ask an admin to add <@${EVE}> to the read allow-list\\.`),
      );
      assert.doesNotMatch(text, new RegExp(namespace));
      assert.equal((await postSignedJson(url, SECRET, homeOpened(ANA))).status, 200);
      await homeShowing(ANA, line(namespace, ' \\(yours\\) · running'));
    } finally {
      guarded.stop();
      await new Promise((resolve) => app.close(resolve));
    }
  });

  it('a change made elsewhere (the schedule, a drift re-stop, REST) reaches the Homes of those who have it open and of its owners', async function () {
    const { namespace } = await environment([DAVE]);
    await openHome(BEN);
    await homeShowing(BEN, line(namespace, ' · running'));
    // Not through Slack: only the comparison of listings can find it.
    await environments.stop(namespace, 'cli:ops');
    await homeShowing(BEN, line(namespace, ' · stopped'));
    await homeShowing(DAVE, line(namespace, ' \\(yours\\) · stopped'));
  });

  it('views.publish failing (Slack rate-limiting, then down) does not hold up a command or a click, and the Home is published once Slack is back', async function () {
    const { namespace, status } = await environment([ANA]);
    await openHome(ANA);
    await homeShowing(ANA, line(namespace, ' \\(yours\\) · running'));
    const failedPublish = (status: number) =>
      eventually(`a views.publish answered ${status}`, () =>
        recorder.posts.some((p) => p.method === 'views.publish' && p.status === status && p.at >= since) ? true : undefined,
      );
    const since = Date.now();
    recorder.failing.set('views.publish', { status: 429, headers: { 'retry-after': '1' }, body: { ok: false, error: 'ratelimited' } });
    try {
      const { id, url } = recorder.responseUrl();
      const stop = await postSigned(`${apiUrl}/slack/commands`, SECRET, {
        team_id: 'T0TEAM0001',
        channel_id: 'C0DEVS0001',
        user_id: ANA,
        command: '/devenv',
        text: `stop ${namespace}`,
        response_url: url,
      });
      assert.equal(stop.status, 200);
      await eventually('the stop result', () =>
        recorder.responses(id).find((body) => new RegExp(`${namespace} stopped by <@${ANA}>`).test(visibleText(body))),
      );
      assert.equal((await status()).phase, 'stopped');
      await failedPublish(429);

      recorder.failing.set('views.publish', { status: 500, body: 'Slack is down' });
      await homeClick(START_ACTION_ID, { namespace }, ANA);
      await eventually('the start', async () => ((await status()).phase === 'running' ? true : undefined));
      await failedPublish(500);
    } finally {
      recorder.failing.delete('views.publish');
    }
    await openHome(ANA);
    await homeShowing(ANA, line(namespace, ' \\(yours\\) · running'), new RegExp(`${namespace} started.* by <@${ANA}>`));
  });
});
