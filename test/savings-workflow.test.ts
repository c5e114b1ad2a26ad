/**
 * An environment's ledger of savings on the real time-skipping test server: the scheduled
 * stop opens a sleep, a drift re-stop of a workload created since adds to it, the workflow
 * continues as new while it sleeps, and the start next morning ends it; read from the memo
 * with no worker running.
 */
import assert from 'node:assert/strict';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { DateTime } from 'luxon';
import { createEnvironmentsClient } from '../src/client/environments';
import { savingsReport } from '../src/domain/savings';
import { environmentWorkflow, environmentWorkflowId, startUpdate } from '../src/workflows';
import { everyDayPolicy } from './support/policies';
import { recordingActivities, type RecordingActivities } from './support/recording-activities';
import { useTimeSkippingEnv, uniqueTaskQueue, workflowBundle } from './support/temporal';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const MI = 1024 ** 2;

describe('savings ledger (time-skipping server)', function () {
  this.timeout(300_000);
  const timeSkippingEnv = useTimeSkippingEnv({ perTest: true });
  let env: TestWorkflowEnvironment;

  beforeEach(async function () {
    env = timeSkippingEnv();
    await workflowBundle();
  });

  function activities(): RecordingActivities {
    const recorded = recordingActivities(() => env.currentTimeMs());
    recorded.stopRequests = { cpuMillicores: 250, memoryBytes: 512 * MI };
    recorded.drift = { mode: 'restop', intervalMs: 30 * MINUTE };
    return recorded;
  }

  it('keeps one sleep from the scheduled stop to the start next morning, across a drift re-stop and continue-as-new, read with no worker running', async function () {
    const now = DateTime.fromMillis(await env.currentTimeMs(), { zone: 'UTC' });
    if (now.hour >= 6) await env.sleep(now.endOf('day').diff(now).toMillis() + 2 * HOUR);
    const taskQueue = uniqueTaskQueue('savings');
    const namespace = `savings-${process.pid}`;
    const environments = createEnvironmentsClient(env.client);
    const handle = env.client.workflow.getHandle(environmentWorkflowId(namespace));

    const first = activities();
    first.awsStopResults.push([
      {
        kind: 'ec2-instance',
        id: 'i-1',
        region: 'eu-west-1',
        outcome: 'changed',
        before: 'running',
        after: 'stopping',
        instanceType: 't3.medium',
      },
    ]);
    first.driftResults.push(
      [],
      [
        {
          kind: 'Deployment',
          name: 'new',
          replicas: 1,
          created: true,
          restopped: false,
          requests: { cpuMillicores: 100, memoryBytes: 64 * MI },
        },
      ],
    );
    let firstRun = '';
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: first,
    });
    let sleep: Awaited<ReturnType<typeof environments.ledgers>>[number]['sleeps'][number] | undefined;
    await worker.runUntil(async () => {
      await env.client.workflow.start(environmentWorkflow, {
        workflowId: environmentWorkflowId(namespace),
        taskQueue,
        args: [{ namespace, policy: everyDayPolicy({ shutdownTime: '19:00' }), enabled: true, maxHistoryEvents: 60 }],
      });
      firstRun = (await handle.describe()).runId;
      const untilAfterStop = DateTime.fromMillis(await env.currentTimeMs(), { zone: 'UTC' }).set({ hour: 20, minute: 10 });
      await env.sleep(untilAfterStop.toMillis() - (await env.currentTimeMs()));

      // The memo says the sleep goes on, with the workload the re-stop put to sleep.
      const [asleep] = await environments.ledgers(namespace);
      assert.equal(asleep!.sleeps.length, 1);
      sleep = asleep!.sleeps[0];
      assert.equal(DateTime.fromISO(sleep!.from, { zone: 'UTC' }).toFormat('HH:mm'), '19:00');
      assert.equal(sleep!.to, null);
      assert.equal(sleep!.cpuMillicores, 2 * 250 + 100);
      assert.equal(sleep!.memoryBytes, 2 * 512 * MI + 64 * MI);
      assert.deepEqual(sleep!.instances, { 'ec2 t3.medium': 1 });

      const morning = DateTime.fromMillis(await env.currentTimeMs(), { zone: 'UTC' })
        .plus({ days: 1 })
        .set({ hour: 7, minute: 0 });
      await env.sleep(morning.toMillis() - (await env.currentTimeMs()));
      assert.notEqual((await handle.describe()).runId, firstRun, 'it continued as new while asleep');
      await handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] });
    });

    // No worker: the memo alone.
    const [ledger] = await environments.ledgers(namespace);
    assert.equal(ledger!.sleeps.length, 1, 'still one sleep');
    const ended = ledger!.sleeps[0]!;
    assert.equal(ended.from, sleep!.from);
    const asleepMs = Date.parse(ended.to!) - Date.parse(ended.from);
    assert.ok(asleepMs >= 12 * HOUR && asleepMs < 12 * HOUR + MINUTE, `asleep ${asleepMs} ms`);
    const report = savingsReport([ledger!], 'week', new Date(await env.currentTimeMs()), { vcpuHour: 0.04, currency: 'EUR' });
    const [figures] = report.environments;
    const near = (actual: number | undefined, expected: number, what: string) =>
      assert.ok(actual !== undefined && Math.abs(actual - expected) < 0.02, `${what}: ${actual}, not ${expected}`);
    near(figures!.hoursAsleep, 12, 'hours asleep');
    near(figures!.cpuCoreHours, 12 * 0.6, 'CPU core-hours');
    near(figures!.memoryGiBHours, (12 * (1024 + 64)) / 1024, 'GiB-hours');
    near(figures!.instanceHours['ec2 t3.medium'], 12, 'instance-hours');
    near(figures!.cost ?? undefined, 0.29, 'cost');
  });
});
