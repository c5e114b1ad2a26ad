/**
 * Owners end to end: signed `/devenv` requests and button clicks over real HTTP into the
 * real koa app, a real Temporal server and a worker running the environment workflow
 * (recording Kubernetes activities, the real Slack notifier), user groups read from the
 * recording Web API. Warnings mention the owners; `list` puts the reader's own first; with
 * SLACK_OWNERS_ONLY=control a non-owner is refused stop and prolongate, and nothing changes,
 * while anyone may start, and owners, group members and admins may do all.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { DateTime } from 'luxon';
import { createSlackNotifier } from '../src/activities/slack';
import { createMetrics } from '../src/api/metrics';
import { createApi } from '../src/api/server';
import { createSlackHandlers } from '../src/api/slack/handlers';
import { createResponder } from '../src/api/slack/responder';
import { createSlackRouter } from '../src/api/slack/router';
import { createEnvironmentsClient, type EnvironmentsClient } from '../src/client/environments';
import type { OwnersPolicy } from '../src/domain/owners';
import type { EnvironmentPolicy } from '../src/domain/shutdown-policy';
import { createLogger } from '../src/logger';
import { PROLONGATE_ACTION_ID, STOP_ACTION_ID } from '../src/slack/blocks';
import { createGroupMembers } from '../src/slack/usergroups';
import { environmentWorkflow, environmentWorkflowId, statusQuery, type EnvironmentStatus } from '../src/workflows';
import { everyDayPolicy, morningPolicy } from './support/policies';
import { recordingActivities, type RecordedCall } from './support/recording-activities';
import { SlackRecorder, eventually, markupIn, postSigned, slackFields, visibleText } from './support/slack';
import { devServerEnv, uniqueTaskQueue, useTimeSkippingEnv, workflowBundle } from './support/temporal';

const SECRET = 'test-signing-secret-owners-0123';
const ALICE = 'U0ALICE0001'; // an owner, by name
const CAROL = 'U0CAROL0001'; // an owner, through the group
const BOB = 'U0BOB00001'; // no owner
const ADMIN = 'U0ADMIN0001';
const TEAM = 'S0DEVTEAM01';
const DEVS = 'C0DEVS0001';
const MINUTE = 60_000;
const logger = createLogger('silent');

/** The real koa app with the Slack router, in front of a gateway with the owners rule `owners`. */
async function serveApi(
  env: TestWorkflowEnvironment,
  recorder: SlackRecorder,
  owners: OwnersPolicy,
): Promise<{ url: string; server: Server; environments: EnvironmentsClient }> {
  const environments = createEnvironmentsClient(env.client, { owners });
  const handlers = createSlackHandlers({ environments, responder: createResponder({ logger, origins: [recorder.url] }), logger });
  const slack = createSlackRouter({ handlers, signingSecret: SECRET, logger });
  const server = createApi({ client: env.client, logger, metrics: createMetrics(), routers: [slack] }).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, environments };
}

const ownersOnly = (recorder: SlackRecorder): OwnersPolicy => ({
  controlByOwnersOnly: true,
  admins: [ADMIN],
  membersOf: createGroupMembers({ token: 'xoxb-test-token', slackApiUrl: `${recorder.url}/api/`, logger }),
});

/** The parts of the status a stop or prolongation would touch. */
const fingerprint = (s: EnvironmentStatus) => ({
  phase: s.phase,
  shutdownAt: s.shutdownAt,
  prolongedMinutes: s.prolongedMinutes,
  lastAction: s.lastAction,
});

describe('Slack owners, Temporal dev server behind it', function () {
  this.timeout(120_000);
  const run = `${process.pid}`;
  let env: TestWorkflowEnvironment;
  let recorder: SlackRecorder;
  let api: Awaited<ReturnType<typeof serveApi>>;
  let worker: Worker;
  let running: Promise<void>;
  let calls: RecordedCall[];
  let taskQueue: string;
  let counter = 0;
  const started: WorkflowHandle[] = [];

  before(async function () {
    env = await devServerEnv();
    recorder = await new SlackRecorder().start();
    recorder.userGroups.set(TEAM, [CAROL, 'U0DAVE0001']);
    taskQueue = uniqueTaskQueue('slack-owners');
    api = await serveApi(env, recorder, ownersOnly(recorder));
    const recording = recordingActivities(async () => Date.now());
    calls = recording.calls;
    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: {
        ...recording,
        ...createSlackNotifier({ token: 'xoxb-test-token', slackApiUrl: `${recorder.url}/api/`, defaultChannel: DEVS, logger }),
      },
    });
    running = worker.run();
  });

  after(async function () {
    await Promise.all(started.map((handle) => handle.terminate('test over').catch(() => undefined)));
    worker?.shutdown();
    await running;
    await new Promise((resolve) => api?.server.close(resolve));
    await recorder?.stop();
  });

  async function environment(owners?: string[]): Promise<{ namespace: string; status: () => Promise<EnvironmentStatus> }> {
    const namespace = `owners-${run}-${++counter}`;
    const policy: EnvironmentPolicy = { ...morningPolicy(), ...(owners ? { owners } : {}) };
    const handle = await env.client.workflow.start(environmentWorkflow, {
      workflowId: environmentWorkflowId(namespace),
      taskQueue,
      args: [{ namespace, policy, enabled: true }],
    });
    started.push(handle);
    // The owners rule reads the status memo, which the first workflow task writes.
    await eventually('the status memo', async () => ((await handle.describe()).memo?.status ? true : undefined));
    return { namespace, status: () => handle.query(statusQuery) };
  }

  async function devenv(text: string, user: string): Promise<{ body: Record<string, unknown>; text: string; responseId: string }> {
    const { id, url } = recorder.responseUrl();
    const response = await postSigned(`${api.url}/slack/commands`, SECRET, {
      team_id: 'T0TEAM0001',
      channel_id: DEVS,
      user_id: user,
      command: '/devenv',
      text,
      response_url: url,
    });
    assert.equal(response.status, 200, `/devenv ${text}: HTTP ${response.status} ${JSON.stringify(response.body)}`);
    return { body: response.body, text: visibleText(response.body), responseId: id };
  }

  async function click(actionId: string, value: Record<string, unknown>, user: string): Promise<string> {
    const { id, url } = recorder.responseUrl();
    const payload = {
      type: 'block_actions',
      user: { id: user },
      channel: { id: DEVS },
      response_url: url,
      actions: [{ type: 'button', action_id: actionId, block_id: 'b', value: JSON.stringify(value) }],
    };
    assert.equal((await postSigned(`${api.url}/slack/interactions`, SECRET, { payload: JSON.stringify(payload) })).status, 200);
    return id;
  }

  const laterReply = (responseId: string, pattern: RegExp) =>
    eventually(`a response_url post matching ${pattern}`, () =>
      recorder.responses(responseId).find((body) => pattern.test(visibleText(body))),
    );

  const actionsOn = (namespace: string) => calls.filter((c) => c.namespace === namespace && c.name !== 'notify').length;

  it('SLACK_OWNERS_ONLY=control: a non-owner is refused stop and prolongate, by command and by button, with the owners named, and nothing changes', async function () {
    const { namespace, status } = await environment([ALICE, TEAM]);
    const before = fingerprint(await status());
    const refusal = new RegExp(
      `^:no_entry: Only the owners of \\*${namespace}\\* \\(<@${ALICE}>, <!subteam\\^${TEAM}>\\) may (stop|prolongate) it\\. Ask one of them, or an admin\\.$`,
      'm',
    );

    const stop = await devenv(`stop ${namespace}`, BOB);
    assert.equal(stop.body.response_type, 'ephemeral');
    assert.match(stop.text, refusal);
    assert.match(stop.text, /may stop it/);
    const prolongate = await devenv(`prolongate ${namespace} for 1h`, BOB);
    assert.equal(prolongate.body.response_type, 'ephemeral');
    assert.match(prolongate.text, /may prolongate it/);
    assert.match(prolongate.text, refusal);
    // The mentions are Slack's markup, and nothing else is.
    assert.deepEqual([...new Set(slackFields(stop.body).flatMap(markupIn))].sort(), [`<!subteam^${TEAM}>`, `<@${ALICE}>`]);

    const stopClick = await click(STOP_ACTION_ID, { namespace }, BOB);
    const prolongClick = await click(PROLONGATE_ACTION_ID, { namespace, minutes: 60 }, BOB);
    assert.match(visibleText(await laterReply(stopClick, /Only the owners/)), /may stop it/);
    assert.match(visibleText(await laterReply(prolongClick, /Only the owners/)), /may prolongate it/);
    assert.equal(recorder.responses(stopClick).length, 1, 'the refusal is the only answer: no "Stopping…" first');

    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.deepEqual(fingerprint(await status()), before, 'nothing changed');
    assert.equal(actionsOn(namespace), 0, 'no stop was run');
  });

  it('anyone may start; owners by name, members of an owner group and admins may stop and prolongate', async function () {
    const { namespace, status } = await environment([ALICE, TEAM]);

    const carol = await devenv(`prolongate ${namespace} for 30m`, CAROL);
    assert.match(carol.text, new RegExp(`${namespace} prolongated by 30m by <@${CAROL}>`));
    const admin = await devenv(`prolongate ${namespace} for 30m`, ADMIN);
    assert.match(admin.text, new RegExp(`${namespace} prolongated by 30m by <@${ADMIN}>`));
    assert.equal((await status()).prolongedMinutes, 60);

    const alice = await devenv(`stop ${namespace}`, ALICE);
    assert.match(alice.text, /Stopping/);
    await laterReply(alice.responseId, new RegExp(`${namespace} stopped by <@${ALICE}>`));
    assert.equal((await status()).phase, 'stopped');

    const bob = await devenv(`start ${namespace}`, BOB);
    assert.match(bob.text, /Starting/);
    await laterReply(bob.responseId, new RegExp(`${namespace} started by <@${BOB}>`));
    assert.equal((await status()).phase, 'running');

    const adminStop = await click(STOP_ACTION_ID, { namespace }, ADMIN);
    await laterReply(adminStop, new RegExp(`${namespace} stopped by <@${ADMIN}>`));
    assert.equal((await status()).phase, 'stopped');
    assert.ok(
      recorder.posts.some((p) => p.method === 'usergroups.users.list' && p.body.usergroup === TEAM),
      'the group was read from Slack',
    );
  });

  it('an environment without owners is anyone’s; REST tokens and the CLI are not limited; with the rule off no one is', async function () {
    const open = await environment();
    assert.match((await devenv(`prolongate ${open.namespace} for 15m`, BOB)).text, /prolongated by 15m by/);

    const owned = await environment([ALICE]);
    await api.environments.prolongate(owned.namespace, 15, 'api:ci');
    await api.environments.prolongate(owned.namespace, 15, 'cli:operator');
    await createEnvironmentsClient(env.client, { owners: { ...ownersOnly(recorder), controlByOwnersOnly: false } }).prolongate(
      owned.namespace,
      15,
      BOB,
    );
    assert.equal((await owned.status()).prolongedMinutes, 45);
  });

  it('a group Slack cannot read refuses its members with a line saying so; a named owner is still let in', async function () {
    const { namespace, status } = await environment(['S0GONE0001', ALICE]);
    const bob = await devenv(`stop ${namespace}`, BOB);
    assert.match(bob.text, /Only the owners of/);
    assert.match(
      bob.text,
      /The members of <!subteam\^S0GONE0001> could not be read from Slack \(no such group, or the app lacks the `usergroups:read` scope\)/,
    );
    assert.equal((await status()).phase, 'running');
    assert.match((await devenv(`prolongate ${namespace} for 15m`, ALICE)).text, /prolongated by 15m by/);
  });

  it('owners that cannot be known refuse everyone but admins: an invalid owners annotation, and a run that has not published its policy and cannot be asked', async function () {
    const invalid = `owners-${run}-${++counter}`;
    const handle = await env.client.workflow.start(environmentWorkflow, {
      workflowId: environmentWorkflowId(invalid),
      taskQueue,
      args: [{ namespace: invalid, policy: { ...morningPolicy(), ownersInvalid: true }, enabled: true }],
    });
    started.push(handle);
    await eventually('the status memo', async () => ((await handle.describe()).memo?.status ? true : undefined));
    const bob = await devenv(`stop ${invalid}`, BOB);
    assert.match(
      bob.text,
      new RegExp(
        `^:no_entry: The \`devenv-scheduler/owners\` annotation of \\*${invalid}\\* is invalid, so until it is fixed only an admin may stop it\\.$`,
        'm',
      ),
    );
    assert.equal((await handle.query(statusQuery)).phase, 'running', 'nothing changed');
    assert.match((await devenv(`prolongate ${invalid} for 15m`, ADMIN)).text, /prolongated by 15m by/);

    // No worker polls this queue: the run has no memo yet, and no query is answered.
    const unpublished = `owners-${run}-${++counter}`;
    const silent = await env.client.workflow.start(environmentWorkflow, {
      workflowId: environmentWorkflowId(unpublished),
      taskQueue: uniqueTaskQueue('slack-owners-no-worker'),
      args: [{ namespace: unpublished, policy: morningPolicy(), enabled: true }],
    });
    started.push(silent);
    const refused = await devenv(`prolongate ${unpublished} for 15m`, BOB);
    // Asking the run waits its few seconds, longer than Slack waits for the first answer: the refusal comes by response_url.
    const unknown = new RegExp(`^:no_entry: Who owns \\*${unpublished}\\* cannot be told right now\\.`, 'm');
    if (!unknown.test(refused.text)) await laterReply(refused.responseId, unknown);
    assert.ok(!recorder.responses(refused.responseId).some((body) => /prolongated/.test(visibleText(body))));
  });

  it("list: each reader's own environments first, marked, owned by name or through a group", async function () {
    const mine = await environment([ALICE]);
    const team = await environment([TEAM]);
    const other = await environment([BOB]);
    const rows = async (user: string) => {
      const text = (await devenv('list', user)).text;
      return [...text.matchAll(/\*(owners-\S+)\*.*$/gm)]
        .map((m) => ({ namespace: m[1]!, yours: m[0].endsWith('· yours') }))
        .filter((row) => [mine, team, other].some((e) => e.namespace === row.namespace));
    };
    const expected = {
      [ALICE]: [mine.namespace],
      [CAROL]: [team.namespace],
      [BOB]: [other.namespace],
    };
    for (const [user, own] of Object.entries(expected)) {
      const listed = await eventually(`${user}'s list to show all three`, async () => {
        const found = await rows(user);
        return found.length === 3 ? found : undefined;
      });
      const firstOwn = listed.findIndex((r) => r.yours);
      assert.deepEqual(
        listed.filter((r) => r.yours).map((r) => r.namespace),
        own,
        `${user}: marked`,
      );
      assert.ok(firstOwn === 0, `${user}: their own come first`);
    }
  });
});

describe('Slack owners in warnings, time-skipping server behind them', function () {
  this.timeout(120_000);
  const timeSkippingEnv = useTimeSkippingEnv();
  let recorder: SlackRecorder;

  before(async function () {
    recorder = await new SlackRecorder().start();
  });
  after(async function () {
    await recorder?.stop();
  });

  it('each warning (60, 30, 15 minutes) mentions the owners, users and groups, and nothing else is markup', async function () {
    const env = timeSkippingEnv();
    const namespace = `owners-warn-${process.pid}`;
    const taskQueue = uniqueTaskQueue('slack-owners-warnings');
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: {
        ...recordingActivities(() => env.currentTimeMs()),
        ...createSlackNotifier({ token: 'xoxb-test-token', slackApiUrl: `${recorder.url}/api/`, defaultChannel: DEVS, logger }),
      },
    });
    let now = DateTime.fromMillis(await env.currentTimeMs(), { zone: 'UTC' });
    if (now.plus({ hours: 8 }) > now.endOf('day')) {
      await env.sleep(now.endOf('day').diff(now).toMillis() + 2 * 60 * MINUTE);
      now = DateTime.fromMillis(await env.currentTimeMs(), { zone: 'UTC' });
    }
    const policy = everyDayPolicy({ shutdownTime: now.plus({ hours: 3, minutes: 1 }).toFormat('HH:mm'), owners: [ALICE, TEAM] });
    await worker.runUntil(async () => {
      const handle = await env.client.workflow.start(environmentWorkflow, {
        workflowId: environmentWorkflowId(namespace),
        taskQueue,
        args: [{ namespace, policy, enabled: true }],
      });
      const shutdownAt = new Date((await handle.query(statusQuery)).shutdownAt!).getTime();
      await env.sleep(shutdownAt - (await env.currentTimeMs()) - 10 * MINUTE);
      const warnings = await eventually('three warnings', () => {
        const posted = recorder.messages().filter((m) => String(m.text).startsWith(`${namespace} shuts down`));
        return posted.length >= 3 ? posted : undefined;
      });
      assert.deepEqual(
        warnings.map((m) => m.text),
        [60, 30, 15].map((minutes) => `${namespace} shuts down in ${minutes} minutes (owners: <@${ALICE}>, <!subteam^${TEAM}>)`),
      );
      for (const warning of warnings) {
        assert.match(visibleText(warning), new RegExp(`^Owners: <@${ALICE}>, <!subteam\\^${TEAM}>$`, 'm'));
        assert.deepEqual([...new Set(slackFields(warning).flatMap(markupIn))].sort(), [`<!subteam^${TEAM}>`, `<@${ALICE}>`]);
      }
      await handle.terminate('test over');
    });
  });
});
