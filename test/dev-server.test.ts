/**
 * On the real Temporal CLI dev server (real time, real visibility store): the morning
 * reset Schedule and the search attributes that let operators ask "what is up right now".
 */
import assert from 'node:assert/strict';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { DateTime } from 'luxon';
import { createServer } from 'node:net';
import { createSchedulerActivities } from '../src/activities/scheduler';
import { ConfigError } from '../src/config';
import { startDevServer } from '../src/temporal/dev-server';
import { EnvPhase } from '../src/search-attributes';
import { MORNING_RESET_SCHEDULE_ID, ensureMorningResetSchedule, type MorningResetSettings } from '../src/temporal/setup';
import { environmentWorkflow, environmentWorkflowId, prolongateUpdate, statusQuery, stopUpdate } from '../src/workflows';
import { recordingActivities } from './support/recording-activities';
import { devServerEnv, uniqueTaskQueue, workflowBundle } from './support/temporal';
import { morningPolicy } from './support/policies';

/** Polls until `check` returns a value (visibility is eventually consistent), or fails with the last value seen. */
async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('on the Temporal dev server', function () {
  this.timeout(120_000);
  let env: TestWorkflowEnvironment;
  let taskQueue: string;
  const started: WorkflowHandle[] = [];
  let counter = 0;

  before(async function () {
    env = await devServerEnv();
  });

  beforeEach(function () {
    taskQueue = uniqueTaskQueue('dev-server');
  });

  async function withWorker(test: () => Promise<void>): Promise<void> {
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: { ...recordingActivities(async () => Date.now()), ...createSchedulerActivities(env.client) },
    });
    await worker.runUntil(test);
  }

  afterEach(async function () {
    await Promise.all(started.splice(0).map((handle) => handle.terminate('test over').catch(() => undefined)));
  });

  async function startEnvironment(): Promise<{ namespace: string; handle: WorkflowHandle<typeof environmentWorkflow> }> {
    const namespace = `vis-${process.pid}-${++counter}`;
    const handle = await env.client.workflow.start(environmentWorkflow, {
      workflowId: environmentWorkflowId(namespace),
      taskQueue,
      args: [{ namespace, policy: morningPolicy(), enabled: true }],
    });
    started.push(handle);
    return { namespace, handle };
  }

  it('startDevServer joins a Temporal already on the port, saying it did not start it; refuses a port held by anything else', async function () {
    const port = Number(env.address.split(':').pop());
    const joined = await startDevServer({ port, uiPort: 1, dbFile: '/nonexistent/unused.db', namespace: 'default' });
    assert.equal(joined.startedHere, false);
    assert.equal(joined.address, `127.0.0.1:${port}`);
    assert.equal(joined.uiUrl, undefined);
    await joined.stop();
    assert.ok((await env.connection.workflowService.getSystemInfo({})).capabilities, 'stop() left the server it did not start running');

    const other = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const otherPort = (other.address() as { port: number }).port;
    try {
      await assert.rejects(
        startDevServer({ port: otherPort, uiPort: 1, dbFile: '/nonexistent/unused.db', namespace: 'default' }),
        (err: Error) =>
          err instanceof ConfigError &&
          err.problems[0]!.startsWith(`TEMPORAL_DEV_PORT=${otherPort}: in use by something that does not answer as Temporal`),
      );
    } finally {
      other.close();
    }
  });

  it('creates the morning-reset Schedule once, on working days at the reset time in the configured zone, and updates it in place', async function () {
    await env.client.schedule
      .getHandle(MORNING_RESET_SCHEDULE_ID)
      .delete()
      .catch(() => undefined);
    const settings: MorningResetSettings = {
      resetTime: '09:00',
      timeZone: 'Europe/Berlin',
      workingDays: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'],
      taskQueue,
    };

    assert.equal(await ensureMorningResetSchedule(env.client, settings), 'created');
    assert.equal(await ensureMorningResetSchedule(env.client, settings), 'updated', 'a second start-up must not fail or duplicate it');
    const next = (await env.client.schedule.getHandle(MORNING_RESET_SCHEDULE_ID).describe()).info.nextActionTimes;
    assert.ok(next.length >= 3);
    for (const at of next) {
      const local = DateTime.fromJSDate(at, { zone: 'Europe/Berlin' });
      assert.equal(local.toFormat('HH:mm'), '09:00', `runs at ${local.toISO()}`);
      assert.ok(local.weekday <= 5, `runs on a weekend: ${local.toISO()}`);
    }

    await ensureMorningResetSchedule(env.client, {
      ...settings,
      resetTime: '07:30',
      timeZone: 'America/New_York',
      workingDays: ['Sun', 'Mon', 'Tue', 'Wed', 'Thu'],
    });
    const moved = (await env.client.schedule.getHandle(MORNING_RESET_SCHEDULE_ID).describe()).info.nextActionTimes;
    for (const at of moved) {
      const local = DateTime.fromJSDate(at, { zone: 'America/New_York' });
      assert.equal(local.toFormat('HH:mm'), '07:30');
      assert.ok([7, 1, 2, 3, 4].includes(local.weekday), `runs on ${local.weekdayShort}`);
    }
  });

  it("the Schedule's workflow resets every running environment", async function () {
    await withWorker(async () => {
      const environments = [await startEnvironment(), await startEnvironment()];
      const defaults = await Promise.all(environments.map(async ({ handle }) => (await handle.query(statusQuery)).shutdownAt));
      for (const { handle } of environments) {
        await handle.executeUpdate(prolongateUpdate, { args: [{ by: 'U1', minutes: 60 }] });
      }
      await env.client.schedule
        .getHandle(MORNING_RESET_SCHEDULE_ID)
        .delete()
        .catch(() => undefined);
      await ensureMorningResetSchedule(env.client, { resetTime: '09:00', timeZone: 'UTC', workingDays: ['Mon'], taskQueue });
      // Both must be visible as running before the reset lists them.
      await eventually('environments visible as running', async () => {
        const listed = await createSchedulerActivities(env.client).listRunningEnvironments();
        return environments.every(({ namespace }) => listed.includes(namespace)) ? true : undefined;
      });

      await env.client.schedule.getHandle(MORNING_RESET_SCHEDULE_ID).trigger();

      for (const [i, { handle }] of environments.entries()) {
        const status = await eventually('the reset to arrive', async () => {
          const current = await handle.query(statusQuery);
          return current.lastAction?.action === 'reset' ? current : undefined;
        });
        // Prolonged the same local day, so kept (dropping one of an earlier day is tested on the time-skipping server).
        assert.equal(status.prolongedMinutes, 60);
        assert.equal(status.shutdownAt, new Date(new Date(defaults[i]!).getTime() + 60 * 60_000).toISOString());
        assert.match(status.lastAction?.detail ?? '', /kept today's prolongation of 1h/);
      }
    });
  });

  it('keeps its search attributes current, so visibility queries show what is up', async function () {
    await withWorker(async () => {
      const { namespace, handle } = await startEnvironment();
      const listIds = async (query: string) => {
        const ids: string[] = [];
        for await (const execution of env.client.workflow.list({ query })) ids.push(execution.workflowId);
        return ids;
      };
      const shutdownAt = new Date((await handle.query(statusQuery)).shutdownAt!);

      await eventually('EnvPhase="running"', async () =>
        (await listIds(`EnvNamespace="${namespace}" AND EnvPhase="running" AND EnvEnabled=true`)).length === 1 ? true : undefined,
      );
      const before = await listIds(
        `EnvNamespace="${namespace}" AND EnvNextShutdown <= "${new Date(shutdownAt.getTime() + 1000).toISOString()}"`,
      );
      assert.deepEqual(before, [handle.workflowId]);

      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U2' }] });
      await eventually('EnvPhase="stopped"', async () =>
        (await listIds(`EnvNamespace="${namespace}" AND EnvPhase="stopped"`)).length === 1 ? true : undefined,
      );
      assert.deepEqual(await listIds(`EnvNamespace="${namespace}" AND EnvPhase="running"`), []);
      const description = await handle.describe();
      assert.equal(description.typedSearchAttributes.get(EnvPhase), 'stopped');
    });
  });
});
