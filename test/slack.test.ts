/**
 * `/devenv` end to end, both ways Slack reaches the service: requests signed the way Slack
 * signs them, over real HTTP into the real koa app; and envelopes over Socket Mode, on a
 * WebSocket the service opened through Bolt's SocketModeReceiver. Behind both, a real
 * Temporal server and a worker running the environment workflow (recording Kubernetes
 * activities, the real Slack notifier). Slack's side is a local server speaking the Web
 * API's JSON and Socket Mode's protocol, recording every `response_url` post.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { DateTime } from 'luxon';
import pino from 'pino';
import type { SupportPod } from '../src/activities/contracts';
import { DEFAULT_SUPPORT_SIZES } from '../src/domain/support-sizes';
import { createSlackNotifier } from '../src/activities/slack';
import { createApi } from '../src/api/server';
import { createMetrics } from '../src/api/metrics';
import { createSlackHandlers, type SlackAllowLists, type SlackHandlerOptions, type SlackHandlers } from '../src/api/slack/handlers';
import { createResponder } from '../src/api/slack/responder';
import { createSlackRouter } from '../src/api/slack/router';
import { createSlackSocketMode, type SlackSocketMode } from '../src/api/slack/socket-mode';
import { createEnvironmentsClient, type EnvironmentsClientOptions, type SupportPolicy } from '../src/client/environments';
import { PROLONGATE_ACTION_ID, STOP_ACTION_ID } from '../src/slack/blocks';
import {
  environmentWorkflow,
  environmentWorkflowId,
  retireSignal,
  startUpdate,
  statusQuery,
  stopUpdate,
  type EnvironmentStatus,
} from '../src/workflows';
import type { EnvironmentPolicy } from '../src/domain/shutdown-policy';
import { asClusterPod, supportPodActivities } from './support/support-pods';
import { recordingActivities, type RecordedCall, type RecordingActivities } from './support/recording-activities';
import { SlackRecorder, eventually, markupIn, postSigned, slackFields, visibleText, type SignedResponse } from './support/slack';
import { devServerEnv, useTimeSkippingEnv, uniqueTaskQueue, workflowBundle } from './support/temporal';
import { everyDayPolicy, morningPolicy } from './support/policies';

const SECRET = 'test-signing-secret-0123456789';
const ALICE = 'U0ALICE0001';
const BOB = 'U0BOB00001';
const DEVS = 'C0DEVS0001';
const OPS = 'C0OPS00001';
const DEFAULT_CHANNEL = 'C0DEFAULT01';
const MINUTE = 60_000;

const allow: SlackAllowLists = { control: { users: [ALICE] }, support: { channels: [OPS] } };
/** ALICE is a support admin, BOB is not; the limits are the defaults of src/config.ts. */
const supportPolicy: SupportPolicy = { maxPodsPerUser: 2, maxSize: 'M', sizes: DEFAULT_SUPPORT_SIZES, admins: [ALICE] };
/** Every log line, parsed, so tests can check what was logged (and that no secret was). */
const logLines: Record<string, unknown>[] = [];
const logger = pino(
  { level: 'info', base: { service: 'devenv-scheduler' } },
  new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  }),
);

/** What main.ts gives the handlers, as the tests vary it: the gateway's options and the response_url origins among the rest. */
type HandlerSettings = Partial<Omit<SlackHandlerOptions, 'environments' | 'responder'>> &
  Pick<EnvironmentsClientOptions, 'supportPods'> & { supportPolicy?: SupportPolicy; responseUrlOrigins?: readonly string[] };

/** The handlers both transports are given, in front of a gateway on `client`. */
function slackHandlers(client: Client, supportTaskQueue?: string, settings: HandlerSettings = {}): SlackHandlers {
  const { supportPolicy: support, supportPods, responseUrlOrigins, ...more } = settings;
  return createSlackHandlers({
    environments: createEnvironmentsClient(client, { support, supportPods }),
    responder: createResponder({ logger, origins: responseUrlOrigins }),
    logger,
    allow,
    supportTaskQueue,
    ...more,
    workloadsOf: async () => [
      { kind: 'Deployment', name: 'web', ready: 2, desired: 2 },
      { kind: 'StatefulSet', name: 'postgres', ready: 1, desired: 1 },
    ],
    // As the AWS activities report them (their lookups are tested against moto in aws.test.ts).
    awsOf: async () => [
      { kind: 'rds-instance', id: 'orders-db', region: 'eu-west-1', name: 'orders-db', state: 'stopped', scheduler: 'enabled' },
      { kind: 'ec2-instance', id: 'i-0abc', region: 'eu-west-1', name: 'bastion', state: 'running', scheduler: 'disabled' },
    ],
  });
}

/** Serves the real koa app with the Slack router on a free loopback port. */
async function serveApi(
  client: Client,
  supportTaskQueue?: string,
  settings: HandlerSettings = {},
): Promise<{ url: string; server: Server }> {
  const slack = createSlackRouter({ handlers: slackHandlers(client, supportTaskQueue, settings), signingSecret: SECRET, logger });
  const server = createApi({ client, logger, metrics: createMetrics(), routers: [slack] }).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

function buttonClick(
  recorder: SlackRecorder,
  actionId: string,
  value: string,
  user = ALICE,
): { form: Record<string, string>; responseId: string } {
  const { id, url } = recorder.responseUrl();
  const payload = {
    type: 'block_actions',
    user: { id: user, username: 'alice' },
    channel: { id: DEVS },
    response_url: url,
    actions: [{ type: 'button', action_id: actionId, block_id: 'b', value }],
  };
  return { form: { payload: JSON.stringify(payload) }, responseId: id };
}

/** The parts of the status a change would touch. */
const fingerprint = (s: EnvironmentStatus) => ({
  phase: s.phase,
  shutdownAt: s.shutdownAt,
  prolongedMinutes: s.prolongedMinutes,
  lastAction: s.lastAction,
});

for (const transport of ['HTTP', 'Socket Mode'] as const)
  describe(`Slack over ${transport}, Temporal dev server behind it`, function () {
    this.timeout(120_000);
    const overHttp = transport === 'HTTP';
    /** Names of this suite's environments and support pods: the other transport's suite runs on the same server. */
    const run = `${process.pid}${overHttp ? 'h' : 's'}`;
    let env: TestWorkflowEnvironment;
    let recorder: SlackRecorder;
    let api: { url: string; server: Server };
    let socketMode: SlackSocketMode | undefined;
    let worker: Worker;
    let running: Promise<void>;
    let calls: RecordedCall[];
    let recording: RecordingActivities;
    let taskQueue: string;
    let counter = 0;
    const started: WorkflowHandle[] = [];
    /** Support pods as the Kubernetes activities would keep them; this catalogue lacks XS. */
    const pods = new Map<string, SupportPod>();
    const supportActivities = supportPodActivities(pods, ['S', 'M', 'L', 'XL']);
    const timings: { text: string; ms: number }[] = [];
    /** A namespace's channel as its annotation gives it, for the tests that set one. */
    const channelOverrides = new Map<string, string>();

    before(async function () {
      env = await devServerEnv();
      recorder = await new SlackRecorder().start();
      taskQueue = uniqueTaskQueue('slack');
      // The recorder's response URLs are the only ones answered besides Slack's.
      const options = { responseUrlOrigins: [recorder.url], supportPolicy, supportPods: async () => [...pods.values()].map(asClusterPod) };
      api = await serveApi(env.client, taskQueue, options);
      if (!overHttp) {
        socketMode = createSlackSocketMode({
          handlers: slackHandlers(env.client, taskQueue, options),
          logger,
          appToken: recorder.appToken,
          slackApiUrl: `${recorder.url}/api/`,
          clientPingTimeoutMs: 2000,
        });
        await socketMode.start();
      }
      recording = recordingActivities(async () => Date.now());
      calls = recording.calls;
      const notifier = createSlackNotifier({
        token: 'xoxb-test-token',
        slackApiUrl: `${recorder.url}/api/`,
        defaultChannel: DEFAULT_CHANNEL,
        channelFor: (namespace) => channelOverrides.get(namespace) ?? (namespace.startsWith('slack-') ? DEVS : undefined),
        logger,
      });
      worker = await Worker.create({
        connection: env.nativeConnection,
        taskQueue,
        workflowBundle: await workflowBundle(),
        activities: { ...recording, ...notifier, ...supportActivities },
      });
      running = worker.run();
    });

    after(async function () {
      await Promise.all(started.map((handle) => handle.terminate('test over').catch(() => undefined)));
      worker?.shutdown();
      await running;
      await socketMode?.stop();
      await new Promise((resolve) => api?.server.close(resolve));
      await recorder?.stop();
      if (timings.length) {
        const sorted = timings.map((t) => t.ms).sort((a, b) => a - b);
        const pick = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(0);
        console.log(
          `      ${overHttp ? '/slack/commands' : 'slash_commands envelopes'}: ${timings.length} requests, median ${pick(0.5)} ms, p90 ${pick(0.9)} ms, max ${pick(1)} ms`,
        );
      }
    });

    async function environment(): Promise<{ namespace: string; status: () => Promise<EnvironmentStatus> }> {
      const namespace = `slack-${run}-${++counter}`;
      const handle = await env.client.workflow.start(environmentWorkflow, {
        workflowId: environmentWorkflowId(namespace),
        taskQueue,
        args: [{ namespace, policy: morningPolicy(), enabled: true }],
      });
      started.push(handle);
      return { namespace, status: () => handle.query(statusQuery) };
    }

    /** A slash command as Slack sends it: a signed form over HTTP, or a `slash_commands` envelope whose acknowledgement carries the reply. */
    async function slashCommand(form: Record<string, string>): Promise<SignedResponse> {
      if (overHttp) return postSigned(`${api.url}/slack/commands`, SECRET, form);
      const { payload, ms } = await recorder.envelope('slash_commands', form);
      return { status: 200, body: payload ?? {}, ms };
    }

    /** A button click as Slack sends it: a signed form over HTTP, or an `interactive` envelope, acknowledged empty. */
    async function interaction(form: Record<string, string>): Promise<SignedResponse> {
      if (overHttp) return postSigned(`${api.url}/slack/interactions`, SECRET, form);
      const { payload, ms } = await recorder.envelope('interactive', JSON.parse(form.payload!) as Record<string, unknown>);
      assert.deepEqual(payload ?? {}, {}, 'an interaction is acknowledged empty');
      return { status: 200, body: {}, ms };
    }

    async function devenv(
      text: string,
      { user = ALICE, channel = DEVS } = {},
    ): Promise<SignedResponse & { text: string; responseId: string }> {
      const { id, url } = recorder.responseUrl();
      const response = await slashCommand({
        token: 'deprecated-verification-token',
        team_id: 'T0TEAM0001',
        channel_id: channel,
        user_id: user,
        user_name: user === ALICE ? 'alice' : 'bob',
        command: '/devenv',
        text,
        response_url: url,
        trigger_id: '1.2.3',
      });
      timings.push({ text, ms: response.ms });
      assert.equal(response.status, 200, `/devenv ${text}: HTTP ${response.status} ${JSON.stringify(response.body)}`);
      return { ...response, text: visibleText(response.body), responseId: id };
    }

    /** The message posted to a response_url, once it arrives. */
    const laterReply = (responseId: string, pattern: RegExp) =>
      eventually(`a response_url post matching ${pattern}`, () =>
        recorder.responses(responseId).find((body) => pattern.test(visibleText(body))),
      );

    it('help shows the grammar from the command table', async function () {
      const reply = await devenv('help');
      assert.equal(reply.body.response_type, 'ephemeral');
      for (const line of [
        '/devenv start <namespace>',
        '/devenv prolongate <namespace> for <duration>',
        '/devenv support start <name> <size>',
        '/devenv list',
      ]) {
        assert.ok(reply.text.includes(line), `help lacks ${line}:\n${reply.text}`);
      }
    });

    it('status: phase, next shutdown in the reader’s terms, workloads, last action', async function () {
      const { namespace } = await environment();
      const reply = await devenv(`status ${namespace}`);
      assert.equal(reply.body.response_type, 'ephemeral');
      assert.match(reply.text, new RegExp(`\\*${namespace}\\* is \\*running\\*`));
      assert.match(reply.text, /Next shutdown: today \d\d:\d\d \S+, in (2h 5\dm|3h 0m)/);
      assert.match(reply.text, /Deployment\/web\s+2\/2/);
      assert.match(reply.text, /StatefulSet\/postgres\s+1\/1/);
      assert.match(reply.text, /rds-instance\/orders-db\s+stopped\n/);
      assert.match(reply.text, /ec2-instance\/bastion\s+running \(not scheduled\)/);
      assert.match(reply.text, /Last: enrol by scheduler/);
    });

    it('list, and status alone, show every environment with its phase and next shutdown', async function () {
      const [a, b] = [await environment(), await environment()];
      // Visibility is eventually consistent: poll until both show their shutdown.
      const row = (namespace: string) =>
        new RegExp(
          `\\*${namespace}\\*  running · shuts down <!date\\^\\d+\\^\\{date_short_pretty\\} at \\{time\\}\\|[^>]+>, in (2h 5\\dm|3h 0m)`,
        );
      for (const text of ['list', 'status']) {
        await eventually(`${text} to show both`, async () => {
          const reply = await devenv(text);
          return row(a.namespace).test(reply.text) && row(b.namespace).test(reply.text) ? reply : undefined;
        });
      }
    });

    it('prolongate moves the shutdown and tells the channel who did it', async function () {
      const { namespace, status } = await environment();
      const before = await status();
      const reply = await devenv(`prolongate ${namespace} for 1h`);
      assert.equal(reply.body.response_type, 'in_channel');
      assert.match(reply.text, new RegExp(`${namespace} prolongated by 1h by <@${ALICE}>; shuts down today \\d\\d:\\d\\d`));
      const after = await status();
      assert.equal(after.prolongedMinutes, 60);
      assert.equal(new Date(after.shutdownAt!).getTime() - new Date(before.shutdownAt!).getTime(), 60 * MINUTE);
    });

    it('history and why: who did what, newest first, with the requester as a mention; why says when it stops and who prolonged it', async function () {
      const { namespace } = await environment();
      await devenv(`prolongate ${namespace} for 1h`);
      const answer = async (text: string, pattern: RegExp) => {
        const reply = await devenv(text);
        assert.equal(reply.body.response_type, 'ephemeral');
        return pattern.test(reply.text) ? reply.text : visibleText(await laterReply(reply.responseId, pattern));
      };
      const history = await answer(`history ${namespace}`, /recorded, newest first/);
      assert.match(history, new RegExp(`\\*${namespace}\\*: the last 2 of 2 recorded, newest first`));
      const lines = history.split('\n').filter((line) => line.startsWith('• '));
      assert.equal(lines.length, 2);
      assert.match(lines[0]!, new RegExp(`^• <!date\\^\\d+\\^[^>]+> · \\*prolongate\\* by <@${ALICE}> · \\+1h$`));
      assert.match(lines[1]!, /^• <!date\^\d+\^[^>]+> · \*enrol\* by scheduler$/);
      const why = await answer(`why ${namespace}`, /stops/);
      assert.match(
        why,
        new RegExp(`^\\*${namespace}\\*: stops today \\d\\d:\\d\\d \\S+ \\(prolonged 1h by <@${ALICE}> at \\d\\d:\\d\\d\\)$`),
      );
      const unknown = await devenv('why nosuch-env');
      assert.match(unknown.text, /There is no environment \*nosuch-env\*/);
    });

    it('savings: what one environment and all of them saved in the week, a month asked for, an unknown one and a bad period refused', async function () {
      const { namespace } = await environment();
      recording.stopRequests = { cpuMillicores: 1_800_000, memoryBytes: 1800 * 1024 ** 3 };
      const handle = env.client.workflow.getHandle(environmentWorkflowId(namespace));
      await handle.executeUpdate(stopUpdate, { args: [{ by: ALICE }] });
      delete recording.stopRequests;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await handle.executeUpdate(startUpdate, { args: [{ by: ALICE }] });
      const answer = async (text: string, pattern: RegExp) => {
        const reply = await devenv(text);
        assert.equal(reply.body.response_type, 'ephemeral');
        return pattern.test(reply.text) ? reply.text : visibleText(await laterReply(reply.responseId, pattern));
      };
      const one = await answer(`savings ${namespace}`, /saved in/);
      const figures = new RegExp(
        `^:moneybag: \\*${namespace}\\* saved in the last 7 days: [\\d.]+ h asleep, ([\\d.]+) CPU core-hours, ([\\d.]+) GiB-hours of memory$`,
      ).exec(one);
      assert.ok(figures, one);
      // 3600 cores and GiB asleep for a second or more: a core-hour and a GiB-hour a second.
      assert.ok(Number(figures[1]) >= 1 && figures[1] === figures[2], one);
      assert.match(await answer(`savings ${namespace} month`, /saved in/), /saved in the last 30 days/);
      const all = await answer('savings', /saved in/);
      assert.match(all, /^:moneybag: \*\d+ environments\* saved in the last 7 days: /);
      assert.ok(all.includes(`• *${namespace}*: `), all);
      assert.match(await answer('savings nosuch-env', /nosuch-env/), /There is no environment \*nosuch-env\*/);
      assert.match((await devenv(`savings ${namespace} year`)).text, /"year" is not a period; say week or month/);
    });

    it('prolongate for -3h, 0m or 1000h: a clear answer, and nothing changes', async function () {
      const { namespace, status } = await environment();
      const before = fingerprint(await status());
      const cases: [string, RegExp][] = [
        ['-3h', /"-3h" is negative; give a positive duration/],
        ['0m', /the duration must be longer than 0 minutes/],
        [
          '1000h',
          /Could not prolongate \*?\S+\*? by 1000h: 1000h is over the limit: today's shutdown can be pushed at most 4h in all, 4h of which is left/,
        ],
        ['soon', /"soon" is not a duration/],
      ];
      for (const [duration, pattern] of cases) {
        const reply = await devenv(`prolongate ${namespace} for ${duration}`);
        assert.equal(reply.body.response_type, 'ephemeral', duration);
        assert.match(reply.text, pattern);
        if (duration !== '1000h') assert.ok(reply.text.includes('/devenv prolongate <namespace> for <duration>'), 'usage shown');
      }
      assert.deepEqual(fingerprint(await status()), before);
    });

    it('stop and start: acknowledged at once, then who, what, how many workloads and time taken via response_url', async function () {
      const { namespace, status } = await environment();

      const stop = await devenv(`stop ${namespace}`);
      assert.equal(stop.body.response_type, 'ephemeral');
      assert.match(stop.text, new RegExp(`Stopping \\*${namespace}\\*… the result will be posted here`));
      const stopped = await laterReply(stop.responseId, /stopped by/);
      assert.equal(stopped.response_type, 'in_channel');
      assert.match(visibleText(stopped), new RegExp(`${namespace} stopped by <@${ALICE}>: 1 workloads scaled to 0`));
      assert.match(visibleText(stopped), /took \d+(\.\d)? (ms|s)/);
      assert.equal((await status()).phase, 'stopped');
      assert.equal(calls.filter((c) => c.name === 'stopNamespace' && c.namespace === namespace).length, 1);

      // The channel hears it too, from the notifier activity.
      const announced = await eventually('the stop announcement', () =>
        recorder
          .messages()
          .find((m) => m.channel === DEVS && visibleText(m).includes(`*${namespace}* stopped by <@${ALICE}>: 1 workload scaled to 0`)),
      );
      assert.match(visibleText(announced), new RegExp(`/devenv start ${namespace}\` wakes it`));

      const refused = await devenv(`prolongate ${namespace} for 1h`);
      assert.match(refused.text, /is stopped: only a running environment can be prolongated; start it first/);

      const start = await devenv(`start ${namespace}`);
      assert.match(start.text, new RegExp(`Starting \\*${namespace}\\*…`));
      const startedReply = await laterReply(start.responseId, /started by/);
      assert.match(visibleText(startedReply), new RegExp(`${namespace} started by <@${ALICE}>: 1 workloads restored; shuts down today`));
      assert.equal((await status()).phase, 'running');
    });

    it('AWS refusing a stop: the workloads stop anyway, and the reply, the channel and status say the tagged instances still run', async function () {
      const { namespace, status } = await environment();
      recording.awsFailure = () =>
        ApplicationFailure.nonRetryable('AWS refused to list the resources (UnauthorizedOperation: not allowed)', 'AwsNotAllowed');
      try {
        const stop = await devenv(`stop ${namespace}`);
        const stopped = await laterReply(stop.responseId, /stopped by/);
        assert.match(
          visibleText(stopped),
          /1 workloads scaled to 0; AWS could not stop: AWS refused to list the resources \(UnauthorizedOperation: not allowed\)/,
        );
        const announced = await eventually('the stop announcement with its problem', () =>
          recorder
            .messages()
            .find(
              (m) =>
                m.channel === DEVS &&
                visibleText(m).includes(`*${namespace}* stopped by <@${ALICE}>`) &&
                visibleText(m).includes('AWS could not stop'),
            ),
        );
        assert.match(String(announced.text), /AWS could not stop/, 'the notification text says it too');
        assert.equal((await status()).phase, 'stopped');
        const shown = await devenv(`status ${namespace}`);
        assert.match(shown.text, /:warning: AWS could not stop: AWS refused/);
      } finally {
        recording.awsFailure = undefined;
      }
    });

    it('an unknown namespace is told so, for every command that names one', async function () {
      for (const text of ['status nosuch-env', 'stop nosuch-env', 'start nosuch-env', 'prolongate nosuch-env for 1h']) {
        const reply = await devenv(text);
        assert.equal(reply.body.response_type, 'ephemeral', text);
        assert.match(reply.text, /There is no environment \*nosuch-env\*: no namespace of that name is enrolled/, text);
      }
    });

    it('a retired environment is no longer managed, for status as for every action', async function () {
      const namespace = `slack-${run}-${++counter}`;
      const handle = await env.client.workflow.start(environmentWorkflow, {
        workflowId: environmentWorkflowId(namespace),
        taskQueue,
        args: [{ namespace, policy: morningPolicy(), enabled: true }],
      });
      await handle.signal(retireSignal, { reason: 'namespace-deleted', by: 'test' });
      await handle.result();
      for (const text of [`status ${namespace}`, `stop ${namespace}`, `start ${namespace}`]) {
        const reply = await devenv(text);
        assert.equal(reply.body.response_type, 'ephemeral', text);
        assert.equal(reply.text, `:warning: *${namespace}* is no longer managed (its namespace was deleted, or it left management).`, text);
      }
    });

    it('unknown or malformed commands get the usage of the nearest command', async function () {
      const typo = await devenv('strat dev1');
      assert.match(typo.text, /"strat" is not a command; did you mean `\/devenv start dev1`\?/);
      assert.match(typo.text, /\/devenv start <namespace>/);
      const unknown = await devenv('frobnicate everything');
      assert.match(unknown.text, /"frobnicate" is not a command/);
      assert.match(unknown.text, /\/devenv support list/);
      const badName = await devenv('stop Dev_1');
      assert.match(badName.text, /"Dev_1" is not a valid name/);
    });

    (overHttp ? it : it.skip)('forged, stale, future-dated and unsigned requests get 401 and change nothing', async function () {
      const { namespace, status } = await environment();
      const before = fingerprint(await status());
      const form = {
        user_id: ALICE,
        channel_id: DEVS,
        command: '/devenv',
        text: `stop ${namespace}`,
        response_url: recorder.responseUrl().url,
      };
      const now = Math.floor(Date.now() / 1000);
      const attempts: [string, Parameters<typeof postSigned>[3]][] = [
        ['wrong secret', { headers: { 'x-slack-signature': `v0=${'0'.repeat(64)}` } }],
        ['stale timestamp (6 minutes old)', { timestamp: now - 6 * 60 }],
        ['timestamp from the future', { timestamp: now + 6 * 60 }],
        ['no signature', { headers: { 'x-slack-signature': undefined } }],
        ['no timestamp', { headers: { 'x-slack-request-timestamp': undefined } }],
        ['unknown signature version', { headers: { 'x-slack-signature': 'v1=abc' } }],
        ['non-numeric timestamp', { headers: { 'x-slack-request-timestamp': 'yesterday' } }],
      ];
      for (const [what, options] of attempts) {
        const response = await postSigned(`${api.url}/slack/commands`, SECRET, form, options);
        assert.equal(response.status, 401, what);
        const click = await postSigned(
          `${api.url}/slack/interactions`,
          SECRET,
          buttonClick(recorder, STOP_ACTION_ID, JSON.stringify({ namespace })).form,
          options,
        );
        assert.equal(click.status, 401, `${what} (interaction)`);
      }
      // A body changed after signing is a forgery too.
      const tampered = await postSigned(`${api.url}/slack/commands`, 'some-other-secret', form);
      assert.equal(tampered.status, 401);

      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.deepEqual(fingerprint(await status()), before);
      assert.equal(calls.filter((c) => c.namespace === namespace).length, 0);
    });

    (overHttp ? it : it.skip)('signed but malformed payloads get 400 and change nothing', async function () {
      const { namespace, status } = await environment();
      const before = fingerprint(await status());
      const noUser = await postSigned(`${api.url}/slack/commands`, SECRET, {
        text: `stop ${namespace}`,
        response_url: recorder.responseUrl().url,
      });
      assert.equal(noUser.status, 400);
      assert.match(visibleText(noUser.body), /user_id, text and response_url are required/);
      for (const form of [
        {},
        { payload: 'not json' },
        { payload: '{"type":"block_actions"}' },
        buttonClick(recorder, STOP_ACTION_ID, '{"namespace":"../etc"}').form,
      ]) {
        const response = await postSigned(`${api.url}/slack/interactions`, SECRET, form);
        assert.equal(response.status, 400, JSON.stringify(form));
      }
      const foreign = await postSigned(`${api.url}/slack/interactions`, SECRET, buttonClick(recorder, 'someone_elses_button', 'x').form);
      assert.equal(foreign.status, 200, 'a button of another app is acknowledged and ignored');
      assert.deepEqual(fingerprint(await status()), before);
    });

    it('allow-lists refuse with a clear message, log it, and change nothing; reading stays open', async function () {
      const { namespace, status } = await environment();
      const before = fingerprint(await status());
      const refused = await devenv(`stop ${namespace}`, { user: BOB });
      assert.match(
        refused.text,
        new RegExp(`You are not allowed to use \`stop ${namespace}\`. Ask an admin to add <@${BOB}> to the control allow-list`),
      );
      const button = buttonClick(recorder, PROLONGATE_ACTION_ID, JSON.stringify({ namespace, minutes: 60 }), BOB);
      assert.equal((await interaction(button.form)).status, 200);
      await laterReply(button.responseId, /You are not allowed to use `prolongate .* for 1h`/);
      assert.deepEqual(fingerprint(await status()), before);
      assert.ok(
        logLines.some((l) => l.msg === 'Slack command refused by allow-list' && l.user === BOB && l.command === `stop ${namespace}`),
        'the refusal is logged with who and what',
      );

      assert.match((await devenv(`status ${namespace}`, { user: BOB })).text, /is \*running\*/);
      assert.match((await devenv('support start manage1 XL')).text, /cannot be used in this channel/);
    });

    it('support pods: start, list, stop, with clear answers for duplicates, bad sizes and unknown names', async function () {
      const name = `manage-${run}`;
      const ops = { channel: OPS };
      const start = await devenv(`support start ${name} xl`, ops);
      assert.match(start.text, new RegExp(`Creating support pod \\*${name}\\* \\(XL\\)`));
      const created = await laterReply(start.responseId, /created for/);
      assert.equal(created.response_type, 'in_channel');
      assert.match(
        visibleText(created),
        new RegExp(`Support pod \\*${name}\\* \\(XL\\) created for <@${ALICE}>: Pending; deleted <!date\\^\\d+`),
      );
      assert.match(
        (await devenv(`support start ${name} M`, ops)).text,
        new RegExp(
          `Could not start support pod \\*${name}\\*: support pod ${name} already exists, started by <@${ALICE}>; pick another name, or stop it first`,
        ),
      );

      const listed = await eventually('the pod in support list', async () => {
        const reply = await devenv('support list');
        return reply.text.includes(`*${name}*`) ? reply : undefined;
      });
      assert.match(listed.text, new RegExp(`\\*${name}\\* XL · Pending · by <@${ALICE}> · deleted <!date`));

      assert.match(
        (await devenv(`support stop ${name}`, ops)).text,
        new RegExp(`Support pod \\*${name}\\* is being deleted, asked by <@${ALICE}>`),
      );
      await eventually('the pod deleted', () => (pods.has(name) ? undefined : true));
      assert.match((await devenv('support stop nosuch-pod', ops)).text, /There is no support pod \*nosuch-pod\*/);

      const tooSmall = await devenv(`support start ${name}-xs XS`, ops);
      const failed = await laterReply(tooSmall.responseId, /could not be created/);
      assert.match(visibleText(failed), /unknown support pod size "XS": use one of S, M, L, XL/);
    });

    it('what a user types is escaped in every field, the fallback text included: it never pings, links or mentions', async function () {
      const typed = [
        'status <!channel>',
        '<!here>',
        'stop <@U0MALLORY01>',
        'prolongate dev1 for <!everyone>',
        'support start <#C0OPS00001> M',
        'status <https://evil.example|click here>',
        'status <!subteam^S0TEAM0001>',
      ];
      for (const text of typed) {
        const reply = await devenv(text);
        for (const field of slackFields(reply.body))
          assert.deepEqual(markupIn(field), [], `/devenv ${text}: Slack would parse markup in ${JSON.stringify(field)}`);
        assert.ok(
          String(reply.body.text).includes('&lt;'),
          `/devenv ${text}: the fallback text shows what was typed, escaped: ${String(reply.body.text)}`,
        );
        assert.ok(
          visibleText(reply.body).includes(text.split(' ').find((word) => word.startsWith('<'))!),
          `/devenv ${text}: the reader sees what was typed`,
        );
      }
    });

    it('AWS errors and tag names are escaped in the reply, the announcement and status, text included; a word like a user id is no mention, the requester is', async function () {
      const { namespace } = await environment();
      const tagged = 'ec2-instance U0MALLORY01 (Name="<!channel> & co")';
      recording.awsFailure = () => ApplicationFailure.nonRetryable(`AWS refused to stop ${tagged}`, 'AwsNotAllowed');
      try {
        const stop = await devenv(`stop ${namespace}`);
        const reply = await laterReply(stop.responseId, /stopped by/);
        const announced = await eventually('the stop announcement with its problem', () =>
          recorder
            .messages()
            .find(
              (m) =>
                m.channel === DEVS &&
                visibleText(m).includes(`*${namespace}* stopped by <@${ALICE}>`) &&
                visibleText(m).includes('AWS could not stop'),
            ),
        );
        const shown = (await devenv(`status ${namespace}`)).body;
        for (const [what, body] of [
          ['reply', reply],
          ['announcement', announced],
          ['status', shown],
        ] as const) {
          const markup = slackFields(body).flatMap(markupIn);
          assert.deepEqual(
            [...new Set(markup)],
            [`<@${ALICE}>`],
            `${what}: only the requester is a mention; markup sent: ${markup.join(' ')}`,
          );
          assert.ok(visibleText(body).includes(tagged), `${what}: the reader sees the tag as it is`);
        }
        assert.ok(
          String(announced.text).includes('&lt;!channel&gt; &amp; co'),
          `the announcement's fallback text is escaped: ${String(announced.text)}`,
        );
        assert.ok(String(shown.text).includes('&lt;!channel&gt; &amp; co'), `the status fallback text is escaped: ${String(shown.text)}`);
      } finally {
        recording.awsFailure = undefined;
      }
    });

    it('a channel annotation that is not a channel id is never posted to nor shown raw: the default channel gets the message, with a note', async function () {
      const { namespace } = await environment();
      channelOverrides.set(namespace, '<!channel>');
      const stop = await devenv(`stop ${namespace}`);
      await laterReply(stop.responseId, /stopped by/);
      const announced = await eventually('the stop announcement in the default channel', () =>
        recorder.messages().find((m) => m.channel === DEFAULT_CHANNEL && visibleText(m).includes(`*${namespace}* stopped by`)),
      );
      assert.match(
        visibleText(announced),
        /Posted here because this namespace's `devenv-scheduler\/slack-channel` annotation is not a channel id: `<!channel>`\./,
      );
      assert.deepEqual([...new Set(slackFields(announced).flatMap(markupIn))], [`<@${ALICE}>`]);
      assert.ok(!recorder.posts.some((p) => p.body.channel === '<!channel>'), 'nothing was posted to the annotation');
      assert.ok(
        logLines.some(
          (l) =>
            l.msg === 'the namespace channel annotation is not a Slack channel id; using the default channel' && l.namespace === namespace,
        ),
      );
    });

    it('a response_url off the allowed origins is refused with 400 before anything is done, and nothing is ever posted to it', async function () {
      const { namespace, status } = await environment();
      const before = fingerprint(await status());
      const elsewhere = await new SlackRecorder().start();
      try {
        const url = elsewhere.responseUrl().url;
        const command = await slashCommand({
          user_id: ALICE,
          channel_id: DEVS,
          command: '/devenv',
          text: `stop ${namespace}`,
          response_url: url,
        });
        if (overHttp) assert.equal(command.status, 400);
        assert.match(
          visibleText(command.body),
          /response_url is not on http:\/\/127\.0\.0\.1:\d+: only Slack's own response URLs are answered\. Nothing was done\./,
        );
        const payload = JSON.parse(buttonClick(recorder, STOP_ACTION_ID, JSON.stringify({ namespace })).form.payload!) as Record<
          string,
          unknown
        >;
        const click = await interaction({ payload: JSON.stringify({ ...payload, response_url: url }) });
        if (overHttp) {
          assert.equal(click.status, 400);
          assert.match(String(click.body.error), /malformed interaction payload: response_url is not on/);
        } else {
          await eventually('the refused interaction logged', () =>
            logLines.find((l) => l.msg === 'Slack interaction refused' && /response_url is not on/.test(String(l.error))),
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 1000));
        assert.deepEqual(elsewhere.posts, [], 'nothing reached the other server');
        assert.deepEqual(fingerprint(await status()), before);
        assert.equal(calls.filter((c) => c.namespace === namespace).length, 0);
        assert.ok(
          logLines.some((l) => l.msg === 'Slack request refused: response_url not on an allowed origin' && l.origin === elsewhere.url),
        );
      } finally {
        await elsewhere.stop();
      }
    });

    (overHttp ? it : it.skip)('by default only https://hooks.slack.com response URLs are answered', async function () {
      const strict = await serveApi(env.client);
      try {
        const help = (responseUrl: string) =>
          postSigned(`${strict.url}/slack/commands`, SECRET, {
            user_id: ALICE,
            channel_id: DEVS,
            command: '/devenv',
            text: 'help',
            response_url: responseUrl,
          });
        assert.equal((await help('https://hooks.slack.com/commands/T0TEAM0001/1234/abcd')).status, 200);
        for (const bad of [
          recorder.responseUrl().url,
          'http://hooks.slack.com/commands/T0TEAM0001/1234/abcd',
          'https://hooks.slack.com:8443/commands/T0TEAM0001/1234/abcd',
          'https://hooks.slack.com.evil.example/commands/T0TEAM0001/1234/abcd',
          'https://hooks.slack.com@evil.example/commands/x',
          'https://evil.example/?next=https://hooks.slack.com/commands/x',
          'hooks.slack.com/commands/x',
        ]) {
          const response = await help(bad);
          assert.equal(response.status, 400, bad);
          assert.match(visibleText(response.body), /response_url is not (a URL|on https:\/\/hooks\.slack\.com: only Slack's own)/, bad);
        }
      } finally {
        await new Promise((resolve) => strict.server.close(resolve));
      }
    });

    it('support pods: at most 2 per person at once, sizes over M for admins only, stopped only by their owner or an admin; each refusal says why and changes nothing', async function () {
      const ops = { channel: OPS };
      const bob = { user: BOB, channel: OPS };
      const name = (n: string) => `limits-${run}-${n}`;
      const created = async (reply: { responseId: string }) => laterReply(reply.responseId, /created for/);
      const gone = (n: string) =>
        eventually(`support/${name(n)} to end`, async () =>
          (await env.client.workflow.getHandle(`support/${name(n)}`).describe()).status.name === 'RUNNING' ? undefined : true,
        );
      const neverStarted = async (n: string) => {
        await assert.rejects(
          env.client.workflow.getHandle(`support/${name(n)}`).describe(),
          WorkflowNotFoundError,
          `support/${name(n)} was started`,
        );
        assert.ok(!pods.has(name(n)));
      };
      /** Over the limit: the workflow found every slot of its requester taken and ended at once, creating nothing. */
      const refusedAtLimit = async (n: string) => {
        assert.equal((await env.client.workflow.getHandle(`support/${name(n)}`).describe()).status.name, 'FAILED');
        assert.ok(!pods.has(name(n)));
      };

      const big = await devenv(`support start ${name('big')} XL`, bob);
      assert.equal(big.body.response_type, 'ephemeral');
      assert.match(
        big.text,
        /Could not start support pod \*limits-\d+[hs]-big\*: XL \(4 CPU, 8Gi\) is larger than M \(1 CPU, 2Gi\), the largest support pod you may start; pick M or smaller, or ask a support admin\./,
      );
      await neverStarted('big');

      await created(await devenv(`support start ${name('1')} M`, bob));
      await created(await devenv(`support start ${name('2')} S`, bob));
      const third = await devenv(`support start ${name('3')} S`, bob);
      assert.match(
        third.text,
        /you have 2 support pods already \(limits-\d+[hs]-1, limits-\d+[hs]-2\), the most one person may have at once; stop one first \(support stop <name>\)/,
      );
      await refusedAtLimit('3');

      // An admin may start any size; BOB may not stop it.
      await created(await devenv(`support start ${name('alice')} XL`, ops));
      const notHis = await devenv(`support stop ${name('alice')}`, bob);
      assert.match(
        notHis.text,
        new RegExp(`support pod ${name('alice')} was started by <@${ALICE}>; only they or a support admin may stop it`),
      );
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(pods.get(name('alice'))?.size, 'XL', "ALICE's pod is still there");

      // BOB stops his own, the admin stops BOB's other one and her own.
      assert.match(
        (await devenv(`support stop ${name('1')}`, bob)).text,
        new RegExp(`Support pod \\*${name('1')}\\* is being deleted, asked by <@${BOB}>`),
      );
      assert.match(
        (await devenv(`support stop ${name('2')}`, ops)).text,
        new RegExp(`Support pod \\*${name('2')}\\* is being deleted, asked by <@${ALICE}>`),
      );
      assert.match((await devenv(`support stop ${name('alice')}`, ops)).text, /is being deleted/);
      await Promise.all(['1', '2', 'alice'].map(gone));

      // Three at once: two are created, one is refused.
      const racing = await Promise.all(['a', 'b', 'c'].map((n) => devenv(`support start ${name(n)} M`, bob)));
      assert.equal(racing.filter((r) => /Creating support pod/.test(r.text)).length, 2, racing.map((r) => r.text).join('\n'));
      assert.equal(racing.filter((r) => /you have 2 support pods already/.test(r.text)).length, 1, racing.map((r) => r.text).join('\n'));
      for (const n of ['a', 'b', 'c']) await devenv(`support stop ${name(n)}`, ops);
    });

    it('"Stop now" from a warning stops the environment and says so', async function () {
      const { namespace, status } = await environment();
      const { form, responseId } = buttonClick(recorder, STOP_ACTION_ID, JSON.stringify({ namespace }));
      const response = await interaction(form);
      assert.equal(response.status, 200);
      assert.ok(response.ms < 1000, `acknowledged in ${response.ms} ms`);
      const result = await laterReply(responseId, /stopped by/);
      assert.equal(result.replace_original, false, 'the warning and its buttons stay');
      assert.match(visibleText(result), new RegExp(`${namespace} stopped by <@${ALICE}>`));
      assert.equal((await status()).phase, 'stopped');
    });

    (overHttp ? it.skip : it)(
      'Socket Mode: connects with the app-level token, and when Slack asks it to reconnect, or the connection drops, commands and buttons go on over the new one',
      async function () {
        const opens = () => recorder.posts.filter((p) => p.method === 'apps.connections.open');
        assert.ok(
          opens().length >= 1 && opens().every((p) => p.authorization === `Bearer ${recorder.appToken}`),
          'the WebSocket URL came from apps.connections.open, asked with the app-level token',
        );
        const { namespace, status } = await environment();
        const first = recorder.sockets.length;

        recorder.disconnect('refresh_requested');
        await recorder.openSocket(first + 1);
        assert.equal(opens().length, first + 1, 'a new URL for the new connection');
        assert.match((await devenv(`status ${namespace}`)).text, new RegExp(`\\*${namespace}\\* is \\*running\\*`));

        // Cut without a close frame, as a network would.
        recorder.sockets.at(-1)!.terminate();
        await recorder.openSocket(first + 2);
        const { form, responseId } = buttonClick(recorder, PROLONGATE_ACTION_ID, JSON.stringify({ namespace, minutes: 60 }));
        await interaction(form);
        await laterReply(responseId, /prolongated by 1h by/);
        assert.equal((await status()).prolongedMinutes, 60);
        assert.ok(
          logLines.some((l) => l.msg === 'Slack Socket Mode reconnecting'),
          'the reconnect is logged',
        );
      },
    );

    (overHttp ? it.skip : it)(
      "Socket Mode: an app-level token Slack refuses stops start-up with Slack's reason, once, with no retry loop",
      async function () {
        const before = recorder.posts.filter((p) => p.method === 'apps.connections.open').length;
        const refused = createSlackSocketMode({
          handlers: slackHandlers(env.client),
          logger,
          appToken: 'xapp-1-revoked',
          slackApiUrl: `${recorder.url}/api/`,
          clientPingTimeoutMs: 500,
        });
        await assert.rejects(refused.start(), /^Error: Slack Socket Mode could not connect: invalid_auth$/);
        await new Promise((resolve) => setTimeout(resolve, 2000));
        assert.equal(recorder.posts.filter((p) => p.method === 'apps.connections.open').length, before + 1, 'asked once');
        await refused.stop();
      },
    );

    it('never logs the signing secret, the bot token or a response_url', function () {
      const all = JSON.stringify(logLines);
      assert.ok(logLines.length > 10, 'something was logged');
      for (const secret of [SECRET, 'xoxb-test-token', recorder.appToken, '/response/'])
        assert.ok(!all.includes(secret), `the log contains ${secret}`);
    });

    it('answered every slash command well within Slack’s 3 seconds', function () {
      const slowest = timings.reduce((a, b) => (b.ms > a.ms ? b : a), { text: '', ms: 0 });
      // Slack gives up at 3 s. A support start waits for its workflow to take a slot (a round
      // trip through a worker), so the margin is for a loaded machine, not a speed target.
      assert.ok(slowest.ms < 2500, `"${slowest.text}" took ${slowest.ms.toFixed(0)} ms`);
    });
  });

/** A worker whose notifications go through the real Slack notifier to the recorder; everything else is recorded. */
async function notifyingWorker(
  env: TestWorkflowEnvironment,
  taskQueue: string,
  recorder: SlackRecorder,
  channelFor: (namespace: string) => string | undefined,
): Promise<Worker> {
  return Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: {
      ...recordingActivities(() => env.currentTimeMs()),
      ...createSlackNotifier({
        token: 'xoxb-test-token',
        slackApiUrl: `${recorder.url}/api`,
        defaultChannel: DEFAULT_CHANNEL,
        channelFor,
        logger,
      }),
    },
  });
}

/** A working day ending three hours from the test server's now, without crossing midnight. */
async function policyEndingIn3h(env: TestWorkflowEnvironment): Promise<EnvironmentPolicy> {
  let now = DateTime.fromMillis(await env.currentTimeMs(), { zone: 'UTC' });
  if (now.plus({ hours: 8 }) > now.endOf('day')) {
    await env.sleep(now.endOf('day').diff(now).toMillis() + 2 * 60 * MINUTE);
    now = DateTime.fromMillis(await env.currentTimeMs(), { zone: 'UTC' });
  }
  return everyDayPolicy({ shutdownTime: now.plus({ hours: 3, minutes: 1 }).toFormat('HH:mm') });
}

describe('Slack warnings and buttons, time-skipping server behind them', function () {
  this.timeout(120_000);
  let env: TestWorkflowEnvironment;
  let recorder: SlackRecorder;
  let api: { url: string; server: Server };
  // This suite's own test server goes away after it, with every workflow still on it.
  const timeSkippingEnv = useTimeSkippingEnv();

  before(async function () {
    env = timeSkippingEnv();
    recorder = await new SlackRecorder().start();
    api = await serveApi(env.client, undefined, { responseUrlOrigins: [recorder.url] });
  });

  after(async function () {
    await new Promise((resolve) => api?.server.close(resolve));
    await recorder?.stop();
  });

  it('warnings arrive in order with buttons, a 429 is retried after Retry-After, and "Prolongate 1h" prolongs', async function () {
    const namespace = `warn-${process.pid}`;
    const gone = `gone-${process.pid}`;
    const channels: Record<string, string> = { [namespace]: 'C0TEAM0001', [gone]: 'C0ARCHIVED1' };
    recorder.missingChannels.add('C0ARCHIVED1');
    // Slack's first answer is a rate limit.
    recorder.scripted.push({ status: 429, headers: { 'retry-after': '1' }, body: { ok: false, error: 'ratelimited' } });
    const taskQueue = uniqueTaskQueue('slack-warnings');
    const worker = await notifyingWorker(env, taskQueue, recorder, (ns) => channels[ns]);
    const policy = await policyEndingIn3h(env);
    await worker.runUntil(async () => {
      const handle = await env.client.workflow.start(environmentWorkflow, {
        workflowId: environmentWorkflowId(namespace),
        taskQueue,
        args: [{ namespace, policy, enabled: true }],
      });
      const shutdownAt = new Date((await handle.query(statusQuery)).shutdownAt!).getTime();
      await env.sleep(shutdownAt - (await env.currentTimeMs()) - 10 * MINUTE);

      const warnings = await eventually('three warnings', () => {
        const posted = recorder.messages().filter((m) => m.channel === 'C0TEAM0001');
        return posted.length >= 3 ? posted : undefined;
      });
      assert.deepEqual(
        warnings.map((m) => m.text),
        [60, 30, 15].map((minutes) => `${namespace} shuts down in ${minutes} minutes`),
      );
      const attempts = recorder.posts.filter((p) => p.method === 'chat.postMessage');
      assert.equal(attempts[0]!.status, 429, 'the first attempt was rate limited');
      assert.equal(attempts[1]!.body.text, attempts[0]!.body.text, 'and the same warning was posted again');
      assert.ok(attempts.every((p) => p.authorization === 'Bearer xoxb-test-token'));
      for (const warning of warnings) {
        assert.match(visibleText(warning), new RegExp(`\\*${namespace}\\* shuts down in \\*\\d+ minutes\\* \\(<!date\\^`));
        const buttons = (
          warning.blocks as { type: string; elements?: { action_id: string; text: { text: string }; value: string }[] }[]
        ).find((b) => b.type === 'actions')!.elements!;
        assert.deepEqual(
          buttons.map((b) => [b.text.text, b.action_id]),
          [
            ['Prolongate 1h', PROLONGATE_ACTION_ID],
            ['Stop now', STOP_ACTION_ID],
          ],
        );
      }

      // Clicking "Prolongate 1h" on the last warning.
      const prolongate = (warnings[2]!.blocks as { type: string; elements?: { action_id: string; value: string }[] }[])
        .find((b) => b.type === 'actions')!
        .elements!.find((e) => e.action_id === PROLONGATE_ACTION_ID)!;
      const { form, responseId } = buttonClick(recorder, PROLONGATE_ACTION_ID, prolongate.value);
      assert.equal((await postSigned(`${api.url}/slack/interactions`, SECRET, form)).status, 200);
      const reply = await eventually('the prolongation reply', () => recorder.responses(responseId)[0]);
      assert.match(visibleText(reply), new RegExp(`${namespace} prolongated by 1h by <@${ALICE}>`));
      const status = await handle.query(statusQuery);
      assert.equal(status.prolongedMinutes, 60);
      assert.equal(new Date(status.shutdownAt!).getTime(), shutdownAt + 60 * MINUTE);

      // A namespace whose channel refuses the post still warns someone: the default channel.
      await env.client.workflow.start(environmentWorkflow, {
        workflowId: environmentWorkflowId(gone),
        taskQueue,
        args: [{ namespace: gone, policy, enabled: true }],
      });
      const fallback = await eventually('the warning in the default channel', () =>
        recorder.messages().find((m) => m.channel === DEFAULT_CHANNEL && String(m.text).startsWith(`${gone} shuts down`)),
      );
      assert.match(visibleText(fallback), /Posted here because <#C0ARCHIVED1> refused it \(channel_not_found\)/);
    });
  });
});

// A server of its own: the workflows of the suite above still wait on theirs, and a
// workflow whose timer fires with no worker to run it holds the skipped clock.
describe('Slack outages during warnings, time-skipping server behind them', function () {
  this.timeout(120_000);
  let env: TestWorkflowEnvironment;
  let recorder: SlackRecorder;
  const timeSkippingEnv = useTimeSkippingEnv();

  before(async function () {
    env = timeSkippingEnv();
    recorder = await new SlackRecorder().start();
  });

  after(async function () {
    await recorder?.stop();
  });

  it('Slack answering 500s and 429s during the warnings: each warning is delivered exactly once when it recovers', async function () {
    const namespace = `flaky-${process.pid}`;
    const channel = 'C0FLAKY0001';
    const outage = [
      { status: 500, body: { ok: false, error: 'internal_error' } },
      { status: 503, body: { ok: false, error: 'service_unavailable' } },
      { status: 429, headers: { 'retry-after': '2' }, body: { ok: false, error: 'ratelimited' } },
      { status: 500, body: { ok: false, error: 'internal_error' } },
    ];
    const taskQueue = uniqueTaskQueue('slack-flaky');
    const worker = await notifyingWorker(env, taskQueue, recorder, () => channel);
    const policy = await policyEndingIn3h(env);
    await worker.runUntil(async () => {
      const handle = await env.client.workflow.start(environmentWorkflow, {
        workflowId: environmentWorkflowId(namespace),
        taskQueue,
        args: [{ namespace, policy, enabled: true }],
      });
      const shutdownAt = new Date((await handle.query(statusQuery)).shutdownAt!).getTime();
      // Slack is down when the first warning is due, and fails again later on.
      await env.sleep(shutdownAt - (await env.currentTimeMs()) - 61 * MINUTE);
      recorder.scripted.push(...outage.slice(0, 3));
      await env.sleep(20 * MINUTE);
      recorder.scripted.push(outage[3]!);
      await env.sleep(shutdownAt - (await env.currentTimeMs()) - 5 * MINUTE);

      const delivered = await eventually('three warnings delivered', () => {
        const posted = recorder.messages().filter((m) => m.channel === channel && String(m.text).includes('shuts down in'));
        return posted.length >= 3 ? posted : undefined;
      });
      assert.deepEqual(
        delivered.map((m) => m.text),
        [60, 30, 15].map((minutes) => `${namespace} shuts down in ${minutes} minutes`),
        'each warning once, in order',
      );
      const failed = recorder.posts.filter((p) => p.method === 'chat.postMessage' && p.body.channel === channel && p.status >= 400);
      assert.deepEqual(
        failed.map((p) => p.status),
        [500, 503, 429, 500],
        'every failure was met by a retry',
      );
      assert.equal(recorder.scripted.length, 0);
    });
  });
});
