/**
 * The weekly savings summary: its messages (a table of ledgers and what each channel reads),
 * SAVINGS_SUMMARY as the service reads it, and on the Temporal dev server the Schedule it
 * keeps in step and the workflow and activity posting through the recording Slack Web API,
 * for sample environments whose memos hold ledgers, one channel failing.
 */
import assert from 'node:assert/strict';
import { TypedSearchAttributes } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { DateTime } from 'luxon';
import { createSavingsSummaryActivities } from '../src/activities/savings-summary';
import { createSlackPoster } from '../src/activities/slack';
import { createEnvironmentsClient } from '../src/client/environments';
import { ConfigError, loadConfig } from '../src/config';
import { savingsReport, type Prices, type Sleep } from '../src/domain/savings';
import { createLogger } from '../src/logger';
import { EnvCluster, EnvEnabled, EnvNamespace, EnvPhase } from '../src/search-attributes';
import { weeklySavingsMessages } from '../src/slack/replies';
import { ensureSavingsSummarySchedule, SAVINGS_SUMMARY_SCHEDULE_ID } from '../src/temporal/setup';
import { environmentWorkflowId, SAVINGS_MEMO, savingsSummaryWorkflow, scopedId, STATUS_MEMO } from '../src/workflows';
import { morningPolicy } from './support/policies';
import { eventually, SlackRecorder } from './support/slack';
import { devServerEnv, uniqueTaskQueue, workflowBundle } from './support/temporal';

const GIB = 1024 ** 3;
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const NOW = new Date('2026-03-16T08:00:00Z');
const PRICES: Prices = { vcpuHour: 0.5, gibHour: 0.25, instanceTypes: { 't3.medium': 2 }, currency: 'EUR' };

/** A sleep of `hours` that ended `daysAgo` before `now` (null: still asleep, begun `hours` ago). */
function sleep(now: Date, hours: number, daysAgo: number | null, slept: Partial<Sleep> = {}): Sleep {
  const to = daysAgo === null ? null : now.getTime() - daysAgo * DAY_MS;
  const from = (to ?? now.getTime()) - hours * HOUR_MS;
  return {
    from: new Date(from).toISOString(),
    to: to === null ? null : new Date(to).toISOString(),
    cpuMillicores: 2000,
    memoryBytes: 4 * GIB,
    instances: {},
    ...slept,
  };
}

describe('weekly savings summary', function () {
  describe('its messages', function () {
    const cases: {
      name: string;
      ledgers: { namespace: string; sleeps: Sleep[] }[];
      prices?: Prices;
      environments: [string, string][];
      total: string | null;
    }[] = [
      {
        name: 'one environment that slept: its channel and the total read what /devenv savings says',
        ledgers: [{ namespace: 'dev-a', sleeps: [sleep(NOW, 10, 2)] }],
        environments: [['dev-a', 'dev-a saved in the last 7 days: 10 h asleep, 20 CPU core-hours, 40 GiB-hours of memory']],
        total: '1 environments saved in the last 7 days: 10 h asleep, 20 CPU core-hours, 40 GiB-hours of memory',
      },
      {
        name: 'an environment that slept none of the week gets no message, nor a place in the total',
        ledgers: [
          { namespace: 'dev-a', sleeps: [sleep(NOW, 10, 2)] },
          { namespace: 'dev-b', sleeps: [sleep(NOW, 5, 1, { cpuMillicores: 1000, memoryBytes: 2 * GIB })] },
          { namespace: 'dev-idle', sleeps: [sleep(NOW, 12, 9)] },
          { namespace: 'dev-new', sleeps: [] },
        ],
        environments: [
          ['dev-a', 'dev-a saved in the last 7 days: 10 h asleep, 20 CPU core-hours, 40 GiB-hours of memory'],
          ['dev-b', 'dev-b saved in the last 7 days: 5 h asleep, 5 CPU core-hours, 10 GiB-hours of memory'],
        ],
        total: '2 environments saved in the last 7 days: 15 h asleep, 25 CPU core-hours, 50 GiB-hours of memory',
      },
      {
        name: 'with prices, the money; instances counted; a sleep still lasting counted until now',
        ledgers: [{ namespace: 'dev-a', sleeps: [sleep(NOW, 4, 3), sleep(NOW, 6, null, { instances: { 'ec2 t3.medium': 1 } })] }],
        prices: PRICES,
        // 20 core-hours at 0.5, 40 GiB-hours at 0.25, 6 instance-hours of t3.medium at 2.
        environments: [
          ['dev-a', 'dev-a saved in the last 7 days: 10 h asleep, 20 CPU core-hours, 40 GiB-hours of memory, 6 instance-hours (EUR 32.00)'],
        ],
        total:
          '1 environments saved in the last 7 days: 10 h asleep, 20 CPU core-hours, 40 GiB-hours of memory, 6 instance-hours (EUR 32.00)',
      },
      {
        name: 'a week nobody slept: nothing posted at all',
        ledgers: [
          { namespace: 'dev-a', sleeps: [sleep(NOW, 10, 8)] },
          { namespace: 'dev-b', sleeps: [] },
        ],
        environments: [],
        total: null,
      },
    ];
    for (const c of cases) {
      it(c.name, function () {
        const messages = weeklySavingsMessages(savingsReport(c.ledgers, 'week', NOW, c.prices));
        assert.deepEqual(
          messages.environments.map((e) => [e.namespace, e.message.text]),
          c.environments,
        );
        assert.equal(messages.total?.text ?? null, c.total);
        for (const { message } of [...messages.environments, ...(messages.total ? [{ message: messages.total }] : [])])
          assert.match(JSON.stringify(message.blocks), /Weekly summary/, 'the blocks say it is the weekly summary');
      });
    }
  });

  describe('SAVINGS_SUMMARY', function () {
    const accepted: [string | undefined, unknown][] = [
      [undefined, null],
      ['', null],
      ['off', null],
      ['OFF', null],
      ['Mon 09:00', { day: 'Mon', time: '09:00' }],
      [' fri   17:30 ', { day: 'Fri', time: '17:30' }],
    ];
    for (const [value, expected] of accepted)
      it(`reads ${JSON.stringify(value)} as ${JSON.stringify(expected)}`, function () {
        assert.deepEqual(loadConfig(value === undefined ? {} : { SAVINGS_SUMMARY: value }).savings.summary, expected);
      });
    for (const value of ['Monday 09:00', '09:00', 'Mon', 'Mon 25:00', 'Mon 9:00', 'Mon 09:00 weekly', 'on'])
      it(`refuses ${JSON.stringify(value)}, naming the setting and what it takes`, function () {
        assert.throws(
          () => loadConfig({ SAVINGS_SUMMARY: value }),
          (err: unknown) =>
            err instanceof ConfigError &&
            /SAVINGS_SUMMARY/.test(err.message) &&
            /weekday and a 24-hour time such as Mon 09:00, or off/.test(err.message),
        );
      });
  });

  describe('on the Temporal dev server', function () {
    this.timeout(120_000);
    let env: TestWorkflowEnvironment;
    const cluster = `summary-${process.pid}`;

    before(async function () {
      env = await devServerEnv();
    });

    it('creates the Schedule (scoped by CLUSTER_NAME) on the weekday and time in the zone, updates it in place, and removes it when off', async function () {
      const taskQueue = uniqueTaskQueue('summary-schedule');
      const id = scopedId(SAVINGS_SUMMARY_SCHEDULE_ID, cluster);
      const settings = { summary: { day: 'Mon' as const, time: '09:00' }, timeZone: 'Europe/Berlin', taskQueue, cluster };
      try {
        assert.equal(await ensureSavingsSummarySchedule(env.client, settings), 'created');
        assert.equal(
          await ensureSavingsSummarySchedule(env.client, settings),
          'updated',
          'a second start-up must not fail or duplicate it',
        );
        const described = await env.client.schedule.getHandle(id).describe();
        assert.equal(described.action.type === 'startWorkflow' && described.action.workflowId, `${cluster}/devenv-savings-summary`);
        assert.ok(described.info.nextActionTimes.length >= 3);
        for (const at of described.info.nextActionTimes) {
          const local = DateTime.fromJSDate(at, { zone: 'Europe/Berlin' });
          assert.equal(local.toFormat('ccc HH:mm'), 'Mon 09:00', `runs at ${local.toISO()}`);
        }

        await ensureSavingsSummarySchedule(env.client, {
          ...settings,
          summary: { day: 'Fri', time: '16:30' },
          timeZone: 'America/New_York',
        });
        for (const at of (await env.client.schedule.getHandle(id).describe()).info.nextActionTimes) {
          assert.equal(DateTime.fromJSDate(at, { zone: 'America/New_York' }).toFormat('ccc HH:mm'), 'Fri 16:30');
        }

        assert.equal(await ensureSavingsSummarySchedule(env.client, { ...settings, summary: null }), 'removed (SAVINGS_SUMMARY off)');
        await assert.rejects(env.client.schedule.getHandle(id).describe(), /not found/i);
        assert.equal(await ensureSavingsSummarySchedule(env.client, { ...settings, summary: null }), 'off (SAVINGS_SUMMARY off)');
      } finally {
        await env.client.schedule
          .getHandle(id)
          .delete()
          .catch(() => undefined);
      }
    });

    it("posts each environment's week to its channel and the total to the default one; a failing channel is retried without posting the others twice", async function () {
      const recorder = await new SlackRecorder().start();
      const taskQueue = uniqueTaskQueue('summary');
      const now = new Date();
      // Sample environments whose memos hold ledgers, as the workflow writes them, with no worker to run them.
      const seeded = [
        { namespace: 'dev-alpha', channel: 'C0ALPHA001', sleeps: [sleep(now, 10, 2)] },
        { namespace: 'dev-beta', channel: 'C0BETA0001', sleeps: [sleep(now, 5, 1, { cpuMillicores: 1000, memoryBytes: 2 * GIB })] },
        { namespace: 'dev-gamma', channel: undefined, sleeps: [sleep(now, 2, 3)] },
        { namespace: 'dev-idle', channel: 'C0IDLE0001', sleeps: [sleep(now, 12, 9)] },
      ];
      const DEFAULT = 'C0DEFAULT1';
      const channels = new Map(seeded.map((e) => [e.namespace, e.channel]));
      for (const { namespace, sleeps } of seeded) {
        await env.client.workflow.start('environmentWorkflow', {
          workflowId: environmentWorkflowId(namespace, cluster),
          taskQueue: uniqueTaskQueue('summary-seeded'),
          typedSearchAttributes: new TypedSearchAttributes([
            { key: EnvNamespace, value: namespace },
            { key: EnvPhase, value: 'running' },
            { key: EnvEnabled, value: true },
            { key: EnvCluster, value: cluster },
          ]),
          memo: { [STATUS_MEMO]: { policy: morningPolicy() }, [SAVINGS_MEMO]: sleeps },
        });
      }
      const environments = createEnvironmentsClient(env.client, { cluster });
      await eventually('the seeded environments in visibility', async () =>
        (await environments.ledgers()).length === seeded.length ? true : undefined,
      );
      const logger = createLogger('silent');
      const worker = await Worker.create({
        connection: env.nativeConnection,
        taskQueue,
        workflowBundle: await workflowBundle(),
        activities: createSavingsSummaryActivities({
          ledgers: () => environments.ledgers(),
          poster: createSlackPoster({
            token: 'xoxb-test-token',
            slackApiUrl: `${recorder.url}/api/`,
            defaultChannel: DEFAULT,
            channelFor: (namespace) => channels.get(namespace),
            logger,
          }),
          logger,
        }),
      });
      recorder.failingChannels.add('C0BETA0001');
      const postsTo = (channel: string) => recorder.posts.filter((p) => p.method === 'chat.postMessage' && p.body.channel === channel);
      try {
        const report = await worker.runUntil(async () => {
          const handle = await env.client.workflow.start(savingsSummaryWorkflow, {
            taskQueue,
            workflowId: `${cluster}/summary-${Date.now()}`,
          });
          // The first attempt: every other channel posted, dev-beta's refused.
          await eventually('the first attempt', () =>
            postsTo(DEFAULT).length >= 2 && postsTo('C0BETA0001').length >= 1 ? true : undefined,
          );
          recorder.failingChannels.delete('C0BETA0001');
          return handle.result();
        });

        assert.deepEqual(report, { posted: ['dev-alpha', 'dev-beta', 'dev-gamma'], total: true, quiet: 1 });
        assert.deepEqual(
          postsTo('C0ALPHA001').map((p) => p.body.text),
          ['dev-alpha saved in the last 7 days: 10 h asleep, 20 CPU core-hours, 40 GiB-hours of memory'],
        );
        const beta = postsTo('C0BETA0001').map((p) => p.body.text);
        assert.equal(beta.length, 2, 'refused once, then posted by the retry');
        assert.equal(beta[1], 'dev-beta saved in the last 7 days: 5 h asleep, 5 CPU core-hours, 10 GiB-hours of memory');
        // dev-gamma has no channel of its own: its week goes to the default channel, as its warnings do, once; the total once.
        assert.deepEqual(
          postsTo(DEFAULT).map((p) => p.body.text),
          [
            'dev-gamma saved in the last 7 days: 2 h asleep, 4 CPU core-hours, 8 GiB-hours of memory',
            '3 environments saved in the last 7 days: 17 h asleep, 29 CPU core-hours, 58 GiB-hours of memory',
          ],
        );
        assert.equal(postsTo('C0IDLE0001').length, 0, 'an environment that saved nothing this week hears nothing');
      } finally {
        await Promise.all(
          seeded.map(({ namespace }) =>
            env.client.workflow
              .getHandle(environmentWorkflowId(namespace, cluster))
              .terminate('test over')
              .catch(() => undefined),
          ),
        );
        await recorder.stop();
      }
    });
  });
});
