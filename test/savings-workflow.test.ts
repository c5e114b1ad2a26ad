/**
 * An environment's ledger of savings on the real time-skipping test server: the scheduled
 * stop opens a sleep, a drift re-stop of a workload created since adds to it, the workflow
 * continues as new while it sleeps, and the start next morning ends it; read from the memo
 * with no worker running. Against a cluster that keeps its state, an open sleep counts what
 * is asleep, whatever stops and interrupted starts came before.
 */
import assert from 'node:assert/strict';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { DateTime } from 'luxon';
import { createEnvironmentsClient } from '../src/client/environments';
import type { ActionReport, StartSteps } from '../src/activities/contracts';
import { savingsReport, type Sleep } from '../src/domain/savings';
import { environmentWorkflow, environmentWorkflowId, startUpdate, statusQuery, stopUpdate } from '../src/workflows';
import { everyDayPolicy } from './support/policies';
import { recordingActivities, type RecordingActivities } from './support/recording-activities';
import { useTimeSkippingEnv, uniqueTaskQueue, workflowBundle } from './support/temporal';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const MI = 1024 ** 2;
const GI = 1024 ** 3;

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

interface FakeWorkload {
  kind: string;
  name: string;
  group: number;
  replicas: number;
  saved?: number;
  requests: { cpuMillicores: number; memoryBytes: number };
}

describe('savings ledger against a cluster that keeps its state (time-skipping server)', function () {
  this.timeout(120_000);
  const timeSkippingEnv = useTimeSkippingEnv({ perTest: true });
  let env: TestWorkflowEnvironment;
  let recorded: RecordingActivities;
  let worker: Worker;
  let cluster: FakeWorkload[];
  let n = 0;

  beforeEach(async function () {
    env = timeSkippingEnv();
    recorded = recordingActivities(() => env.currentTimeMs());
    cluster = [
      { kind: 'StatefulSet', name: 'db', group: 0, replicas: 1, requests: { cpuMillicores: 1000, memoryBytes: GI } },
      { kind: 'Deployment', name: 'web', group: 1, replicas: 2, requests: { cpuMillicores: 250, memoryBytes: 512 * MI } },
    ];
    // As scaled-workloads.ts stops: a change from above 0, and what is already at 0 with its saved count reported asleep.
    recorded.stopNamespace = async (namespace): Promise<ActionReport> => {
      recorded.calls.push({ name: 'stopNamespace', namespace, atMs: await env.currentTimeMs() });
      const asleep = cluster
        .filter((w) => w.replicas === 0 && w.saved)
        .map((w) => ({ kind: w.kind, name: w.name, replicas: w.saved!, requests: w.requests }));
      const changed = cluster
        .filter((w) => w.replicas > 0)
        .map((w) => {
          const from = w.replicas;
          w.saved = from;
          w.replicas = 0;
          return { kind: w.kind, name: w.name, from, to: 0, requests: w.requests };
        });
      return { namespace, changed, unchanged: cluster.length - changed.length, asleep, durationMs: 1 };
    };
    // A start in wake-order groups: in steps, the first wakes group 0 and stops before group 1.
    recorded.startNamespace = async (namespace, steps?: StartSteps): Promise<ActionReport> => {
      const atMs = await env.currentTimeMs();
      recorded.calls.push({ name: 'startNamespace', namespace, atMs, ...(steps ? { steps } : {}) });
      const since = new Date(atMs).toISOString();
      const wake = (group: number) =>
        cluster
          .filter((w) => w.group === group && w.replicas === 0 && w.saved)
          .map((w) => {
            w.replicas = w.saved!;
            w.saved = undefined;
            return { kind: w.kind, name: w.name, from: 0, to: w.replicas };
          });
      const after = steps?.after;
      if (after?.readiness) {
        const { next: _next, ...readiness } = after.readiness;
        const web = { order: 1, workloads: [{ kind: 'Deployment', name: 'web' }], wokenAt: since };
        return { ...after, changed: [...after.changed, ...wake(1)], readiness: { ...readiness, groups: [...readiness.groups, web] } };
      }
      const changed = wake(0);
      if (!steps) return { namespace, changed: [...changed, ...wake(1)], unchanged: 0, durationMs: 1 };
      const deadline = new Date(atMs + 5 * MINUTE).toISOString();
      const db = { order: 0, workloads: [{ kind: 'StatefulSet', name: 'db' }], wokenAt: since };
      return { namespace, changed, unchanged: 0, durationMs: 1, readiness: { since, deadline, groups: [db], next: 1 } };
    };
    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: uniqueTaskQueue('savings-state'),
      workflowBundle: await workflowBundle(),
      activities: recorded,
    });
  });

  async function started(policyOverrides = {}): Promise<WorkflowHandle<typeof environmentWorkflow>> {
    const now = DateTime.fromMillis(await env.currentTimeMs(), { zone: 'UTC' });
    const namespace = `savings-state-${process.pid}-${++n}`;
    return env.client.workflow.start(environmentWorkflow, {
      workflowId: environmentWorkflowId(namespace),
      taskQueue: worker.options.taskQueue,
      args: [
        {
          namespace,
          enabled: true,
          policy: everyDayPolicy({ shutdownTime: now.plus({ hours: 6 }).toFormat('HH:mm'), ...policyOverrides }),
        },
      ],
    });
  }
  const ledgerOf = async (handle: WorkflowHandle): Promise<Sleep[]> => ((await handle.describe()).memo?.savings ?? []) as Sleep[];
  const asleepCpu = () =>
    cluster.filter((w) => w.replicas === 0 && w.saved).reduce((sum, w) => sum + w.saved! * w.requests.cpuMillicores, 0);
  async function eventually(check: () => boolean): Promise<void> {
    const deadline = Date.now() + 15_000;
    while (!check()) {
      if (Date.now() > deadline) throw new Error('timed out waiting');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  it('a stop during the wait for the databases, before anything woke, keeps the sleep open and counting all of it', async function () {
    await worker.runUntil(async () => {
      const handle = await started({ waitForDatabases: true });
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      const [first] = await ledgerOf(handle);
      recorded.awsStartResults.push([
        { kind: 'rds-instance', id: 'db-1', region: 'eu-west-1', outcome: 'changed', before: 'stopped', after: 'starting' },
      ]);
      recorded.holdDatabases = new Promise(() => {});
      await env.sleep(60 * MINUTE);
      const [start] = await Promise.all([
        handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] }),
        (async () => {
          await eventually(() => recorded.calls.some((c) => c.name === 'awaitDatabases'));
          return handle.executeUpdate(stopUpdate, { args: [{ by: 'U3' }] });
        })(),
      ]);
      assert.match(start.message, /no workload was woken/);
      assert.equal((await handle.query(statusQuery)).phase, 'stopped');
      const ledger = await ledgerOf(handle);
      assert.equal(ledger.length, 1, 'one sleep: nothing woke in between');
      assert.equal(ledger[0]!.from, first!.from);
      assert.equal(ledger[0]!.to, null);
      assert.equal(ledger[0]!.cpuMillicores, 1000 + 2 * 250);
      assert.equal(ledger[0]!.memoryBytes, GI + 2 * 512 * MI);
    });
  });

  it('a stop during the wait between wake-order groups counts the group never woken too', async function () {
    await worker.runUntil(async () => {
      const handle = await started();
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      recorded.readiness = 'ready';
      recorded.holdReady = new Promise(() => {});
      await env.sleep(60 * MINUTE);
      const [start] = await Promise.all([
        handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] }),
        (async () => {
          await eventually(() => recorded.calls.some((c) => c.name === 'awaitReady'));
          return handle.executeUpdate(stopUpdate, { args: [{ by: 'U3' }] });
        })(),
      ]);
      assert.match(start.message, /interrupted by the stop by U3/);
      const ledger = await ledgerOf(handle);
      assert.equal(ledger.length, 2);
      assert.notEqual(ledger[0]!.to, null, 'the database woke: the first sleep ended');
      assert.equal(asleepCpu(), 1000 + 2 * 250);
      assert.equal(ledger[1]!.to, null);
      assert.equal(ledger[1]!.cpuMillicores, 1000 + 2 * 250, 'db, stopped again, and web, never woken');
    });
  });

  it("a second stop of a sleeping environment counts what is asleep: the first stop's and a workload created since", async function () {
    await worker.runUntil(async () => {
      const handle = await started();
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      // Created after the stop, with no saved count: by a person or a GitOps controller.
      cluster.push({ kind: 'Deployment', name: 'batch', group: 1, replicas: 1, requests: { cpuMillicores: 4000, memoryBytes: 0 } });
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U2' }] });
      const ledger = await ledgerOf(handle);
      assert.equal(ledger.length, 1);
      assert.equal(ledger[0]!.cpuMillicores, 1000 + 2 * 250 + 4000);
    });
  });
});
