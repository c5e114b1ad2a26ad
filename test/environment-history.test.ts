/**
 * An environment's history on the real time-skipping test server: what its workflow
 * records, kept across continue-as-new within its bound, and read from the server's memo
 * with no worker running.
 */
import assert from 'node:assert/strict';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { DateTime } from 'luxon';
import { createEnvironmentsClient } from '../src/client/environments';
import {
  environmentWorkflow,
  environmentWorkflowId,
  prolongateUpdate,
  setEnabledSignal,
  startUpdate,
  statusQuery,
  stopUpdate,
} from '../src/workflows';
import { HISTORY_ENTRIES } from '../src/workflows/environment/story';
import { everyDayPolicy } from './support/policies';
import { recordingActivities } from './support/recording-activities';
import { useTimeSkippingEnv, uniqueTaskQueue, workflowBundle } from './support/temporal';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

describe('environment history (time-skipping server)', function () {
  this.timeout(120_000);
  const timeSkippingEnv = useTimeSkippingEnv({ perTest: true });
  let env: TestWorkflowEnvironment;
  let counter = 0;

  async function workerFor(taskQueue: string) {
    return Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: recordingActivities(() => env.currentTimeMs()),
    });
  }

  /** Early morning, so the working day (ending 19:00 UTC) has room for the test. */
  async function morning(): Promise<void> {
    const now = DateTime.fromMillis(await env.currentTimeMs(), { zone: 'UTC' });
    if (now.hour >= 6) await env.sleep(now.endOf('day').diff(now).toMillis() + 2 * HOUR);
  }

  beforeEach(async function () {
    env = timeSkippingEnv();
    await workflowBundle();
  });

  it('records warnings, the scheduled stop, starts, label changes and a failed start, each once; read with no worker running, and `why` follows it', async function () {
    await morning();
    const taskQueue = uniqueTaskQueue('history');
    const recorded = recordingActivities(() => env.currentTimeMs());
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: recorded,
    });
    const namespace = `hist${++counter}`;
    const policy = everyDayPolicy({ shutdownTime: '19:00' });
    await worker.runUntil(async () => {
      const handle = await env.client.workflow.start(environmentWorkflow, {
        workflowId: environmentWorkflowId(namespace),
        taskQueue,
        args: [{ namespace, policy, enabled: true }],
      });
      await handle.executeUpdate(prolongateUpdate, { args: [{ by: 'U0ANA', minutes: 60 }] });
      const shutdownAt = new Date((await handle.query(statusQuery)).shutdownAt!).getTime();
      await env.sleep(shutdownAt - (await env.currentTimeMs()) + 5 * MINUTE); // three warnings and the stop
      await handle.executeUpdate(startUpdate, { args: [{ by: 'U0BOB' }] });
      await handle.signal(setEnabledSignal, { enabled: false, by: 'kubectl' });
      recorded.goneNamespaces.add(namespace); // the stop's Kubernetes half fails
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U0CAT' }] }).catch(() => undefined);
      await handle.query(statusQuery); // the signal and the failure handled
    });

    // No worker runs now: the server alone answers.
    const environments = createEnvironmentsClient(env.client);
    const { entries } = await environments.history(namespace);
    assert.deepEqual(
      entries.map((e) => `${e.action} ${e.by}`),
      [
        'enrol scheduler',
        'prolongate U0ANA',
        'warning scheduler',
        'warning scheduler',
        'warning scheduler',
        'scheduled-stop scheduler',
        'start U0BOB',
        'disable kubectl',
        'stop U0CAT',
      ],
    );
    assert.equal(entries[1]!.detail, '+1h');
    assert.match(entries[2]!.detail!, /^1h before the shutdown at 20:00 UTC$/);
    assert.match(entries.at(-1)!.detail!, /^failed: Kubernetes could not stop: /);
    const status = await environments.status(namespace);
    assert.equal(status.lastAction?.action, 'disable', 'a failed stop is in the history, not the last action');
    const why = await environments.why(namespace, new Date(await env.currentTimeMs()));
    assert.match(
      why.sentence,
      /^not scheduled: label scheduler=disabled since today \d\d:\d\d by kubectl; it stays up until someone stops it$/,
    );
    assert.deepEqual(why.mentions, ['kubectl']);
    assert.deepEqual((await environments.history(namespace, 2)).entries, entries.slice(-2));
  });

  it(`keeps its last ${HISTORY_ENTRIES} entries across continue-as-new, read from the memo with no worker running`, async function () {
    await morning();
    const taskQueue = uniqueTaskQueue('history-can');
    const worker = await workerFor(taskQueue);
    const namespace = `hist${++counter}`;
    const policy = everyDayPolicy({ shutdownTime: '19:00', maxProlongationMinutes: 24 * 60 });
    let firstRun = '';
    await worker.runUntil(async () => {
      const handle = await env.client.workflow.start(environmentWorkflow, {
        workflowId: environmentWorkflowId(namespace),
        taskQueue,
        args: [{ namespace, policy, enabled: true, maxHistoryEvents: 60 }],
      });
      firstRun = (await handle.describe()).runId;
      for (let i = 0; i < HISTORY_ENTRIES + 5; i++) await handle.executeUpdate(prolongateUpdate, { args: [{ by: `U${i}`, minutes: 1 }] });
      await env.client.workflow.getHandle(handle.workflowId).query(statusQuery);
    });

    const latest = env.client.workflow.getHandle(environmentWorkflowId(namespace));
    assert.notEqual((await latest.describe()).runId, firstRun, 'it did continue as new');
    const { entries } = await createEnvironmentsClient(env.client).history(namespace);
    assert.equal(entries.length, HISTORY_ENTRIES);
    assert.deepEqual(
      entries.map((e) => e.by),
      Array.from({ length: HISTORY_ENTRIES }, (_, i) => `U${i + 5}`),
      'the oldest (the enrolment and the first prolongations) dropped, none twice',
    );
    const why = await createEnvironmentsClient(env.client).why(namespace, new Date(await env.currentTimeMs()));
    assert.match(why.sentence, new RegExp(`^stops today 19:55 UTC \\(prolonged 55m, last by U${HISTORY_ENTRIES + 4} at \\d\\d:\\d\\d\\)$`));
  });
});
