/**
 * The environment workflow on the real time-skipping test server: hours pass in
 * milliseconds, so warnings, shutdowns and after-hours windows are checked at their
 * real offsets.
 */
import assert from 'node:assert/strict';
import { WorkflowUpdateFailedError, WorkflowUpdateStage, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { DateTime } from 'luxon';
import {
  DISPATCH_AHEAD_MEMO,
  environmentWorkflow,
  environmentWorkflowId,
  prolongateUpdate,
  resetSignal,
  retireSignal,
  setEnabledSignal,
  setPolicySignal,
  startUpdate,
  statusQuery,
  stopUpdate,
} from '../src/workflows';
import type { EnvironmentPolicy } from '../src/domain/shutdown-policy';
import { afterStop, enrolled } from '../src/workflows/environment/planning';
import { everyDayPolicy } from './support/policies';
import { recordingActivities, type RecordedCall, type RecordingActivities } from './support/recording-activities';
import { useTimeSkippingEnv, uniqueTaskQueue, workflowBundle } from './support/temporal';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

describe('environment workflow (time-skipping server)', function () {
  this.timeout(120_000);
  let env: TestWorkflowEnvironment;
  let taskQueue: string;
  let worker: Worker;
  let recorded: RecordingActivities;
  let namespaceCounter = 0;

  // Tests end with workflows still busy (a warning queued, a timer running) as their worker stops.
  const timeSkippingEnv = useTimeSkippingEnv({ perTest: true });
  before(async function () {
    await workflowBundle();
  });

  beforeEach(async function () {
    env = timeSkippingEnv();
    taskQueue = uniqueTaskQueue('env-wf');
    recorded = recordingActivities(() => env.currentTimeMs());
    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: recorded,
    });
  });

  /**
   * A policy whose working day ends `hoursAhead` from the test server's "now" (whole
   * minutes), every day a working day. If that, plus a few hours for the test to play
   * out, would fall past midnight, time first skips to the early morning so "today"
   * stays the same day throughout.
   */
  async function policyEndingIn(hoursAhead: number, overrides: Partial<EnvironmentPolicy> = {}): Promise<EnvironmentPolicy> {
    let now = DateTime.fromMillis(await env.currentTimeMs(), { zone: 'UTC' });
    const endOfDay = now.endOf('day');
    if (now.plus({ hours: hoursAhead + 5 }) > endOfDay) {
      await env.sleep(endOfDay.diff(now).toMillis() + 2 * HOUR);
      now = DateTime.fromMillis(await env.currentTimeMs(), { zone: 'UTC' });
    }
    const shutdown = now.plus({ hours: hoursAhead, minutes: 1 }).startOf('minute');
    return everyDayPolicy({ shutdownTime: shutdown.toFormat('HH:mm'), ...overrides });
  }

  async function startEnvironment(
    policy: EnvironmentPolicy,
    { enabled = true, maxHistoryEvents, dispatchAheadMs }: { enabled?: boolean; maxHistoryEvents?: number; dispatchAheadMs?: number } = {},
  ): Promise<WorkflowHandle<typeof environmentWorkflow>> {
    const namespace = `dev${++namespaceCounter}`;
    const handle = await env.client.workflow.start(environmentWorkflow, {
      workflowId: environmentWorkflowId(namespace),
      taskQueue,
      args: [{ namespace, policy, enabled, maxHistoryEvents, dispatchAheadMs }],
    });
    return handle;
  }

  const warnings = (calls: RecordedCall[]) =>
    calls.flatMap((c) => (c.event?.kind === 'warning' ? [{ offset: c.event.offsetMinutes, minutesLeft: c.event.minutesLeft }] : []));
  const callsNamed = (name: RecordedCall['name']) => recorded.calls.filter((c) => c.name === name);
  const kubernetesCalls = () => recorded.calls.filter((c) => c.name === 'stopNamespace' || c.name === 'startNamespace').map((c) => c.name);
  /** Waits in real time (the test server's clock may be locked while an activity runs). */
  async function eventuallyTrue(check: () => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error('timed out waiting');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async function expectRejected(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
    await assert.rejects(promise, (err: unknown) => {
      assert.ok(err instanceof WorkflowUpdateFailedError, `expected an update failure, got ${String(err)}`);
      assert.match(String(err.cause?.message), pattern);
      return true;
    });
  }

  it('warns at 60, 30 and 15 minutes, once each and in order, then stops exactly once', async function () {
    const policy = await policyEndingIn(3);
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy);
      const shutdownAt = (await handle.query(statusQuery)).shutdownAt!;
      await env.sleep(new Date(shutdownAt).getTime() - (await env.currentTimeMs()) + 5 * MINUTE);

      assert.deepEqual(warnings(recorded.calls), [
        { offset: 60, minutesLeft: 60 },
        { offset: 30, minutesLeft: 30 },
        { offset: 15, minutesLeft: 15 },
      ]);
      const stops = callsNamed('stopNamespace');
      assert.equal(stops.length, 1);
      assert.ok(stops[0]!.atMs >= new Date(shutdownAt).getTime(), 'stop must not come before the shutdown instant');
      assert.deepEqual(
        stops[0]!.timing,
        { notBefore: shutdownAt },
        'dispatched at the instant, with its instant (nothing to hold; the worker measures how late it began)',
      );
      const status = await handle.query(statusQuery);
      assert.equal(status.phase, 'stopped');
      assert.equal(status.shutdownAt, null);
      assert.equal(status.lastAction?.action, 'scheduled-stop');
      assert.equal(recorded.calls.filter((c) => c.event).at(-1)?.event?.kind, 'stopped', 'the last thing told is the stop');
    });
  });

  it('dispatching ahead hands the stop over before the instant, to be held until it; from then on the environment is stopping and cannot be prolongated', async function () {
    const policy = await policyEndingIn(3);
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy, { dispatchAheadMs: 10_000 });
      const shutdownAt = (await handle.query(statusQuery)).shutdownAt!;
      const instantMs = new Date(shutdownAt).getTime();
      let finishStop!: () => void;
      recorded.holdStops = new Promise((resolve) => (finishStop = resolve));

      await env.sleep(instantMs - (await env.currentTimeMs()) - 9_000); // the clock is locked, and runs in real time, once the stop is in progress
      const stops = callsNamed('stopNamespace');
      assert.equal(stops.length, 1);
      assert.ok(
        stops[0]!.atMs >= instantMs - 10_000 && stops[0]!.atMs < instantMs,
        `handed over 10 s ahead, not at ${new Date(stops[0]!.atMs).toISOString()}`,
      );
      assert.deepEqual(stops[0]!.timing, { notBefore: shutdownAt });
      assert.deepEqual(
        callsNamed('stopAwsResources').map((c) => c.timing),
        [{ notBefore: shutdownAt }],
      );
      assert.equal((await handle.query(statusQuery)).phase, 'stopping');
      await expectRejected(
        handle.executeUpdate(prolongateUpdate, { args: [{ by: 'U1', minutes: 30 }] }),
        /is stopping: only a running environment can be prolongated/,
      );

      finishStop();
      await env.sleep(MINUTE);
      const status = await handle.query(statusQuery);
      assert.deepEqual([status.phase, status.shutdownAt, status.prolongedMinutes], ['stopped', null, 0]);
      assert.equal(callsNamed('stopNamespace').length, 1);
    });
  });

  it("setPolicy can hand an environment the service's dispatch-ahead: its next stop goes out ahead, and its status records no action", async function () {
    const policy = await policyEndingIn(3);
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy); // enrolled by a version without dispatch-ahead
      await handle.query(statusQuery); // its first task has run
      assert.equal((await handle.describe()).memo?.[DISPATCH_AHEAD_MEMO], 0);
      await handle.signal(setPolicySignal, { policy, by: 'reconciler', dispatchAheadMs: 10_000 });
      const status = await handle.query(statusQuery);
      assert.equal(status.lastAction?.action, 'enrol', 'a setting of the service, not an action on the environment');
      assert.equal((await handle.describe()).memo?.[DISPATCH_AHEAD_MEMO], 10_000, 'recorded for the reconciler to see');

      const instantMs = new Date(status.shutdownAt!).getTime();
      await env.sleep(instantMs - (await env.currentTimeMs()) + MINUTE);
      const stops = callsNamed('stopNamespace');
      assert.equal(stops.length, 1);
      assert.ok(
        stops[0]!.atMs >= instantMs - 10_000 && stops[0]!.atMs < instantMs,
        `handed over 10 s ahead, not at ${new Date(stops[0]!.atMs).toISOString()}`,
      );
      assert.deepEqual(stops[0]!.timing, { notBefore: status.shutdownAt });
      assert.equal((await handle.query(statusQuery)).phase, 'stopped');
    });
  });

  it('setPolicy with the same policy, its fields in another order, is no change: no action recorded, the plan kept', async function () {
    const policy = await policyEndingIn(3);
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy);
      const before = await handle.query(statusQuery);
      const reordered = Object.fromEntries(Object.entries(policy).reverse()) as typeof policy;
      await handle.signal(setPolicySignal, { policy: reordered, by: 'reconciler' });
      const after = await handle.query(statusQuery);
      assert.equal(after.lastAction?.action, 'enrol');
      assert.equal(after.shutdownAt, before.shutdownAt);
    });
  });

  it('prolongate moves the shutdown and re-arms the warnings', async function () {
    const policy = await policyEndingIn(3);
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy);
      const originalShutdown = new Date((await handle.query(statusQuery)).shutdownAt!).getTime();
      await env.sleep(originalShutdown - (await env.currentTimeMs()) - 50 * MINUTE); // the 60-minute warning is out
      assert.deepEqual(
        warnings(recorded.calls).map((w) => w.offset),
        [60],
      );

      const reply = await handle.executeUpdate(prolongateUpdate, { args: [{ by: 'U123', minutes: 90 }] });
      assert.equal(new Date(reply.shutdownAt!).getTime(), originalShutdown + 90 * MINUTE);
      assert.match(reply.message, /prolongated by 1h30m by U123/);

      await env.sleep(originalShutdown + 90 * MINUTE - (await env.currentTimeMs()) + 5 * MINUTE);
      assert.deepEqual(
        warnings(recorded.calls).map((w) => w.offset),
        [60, 60, 30, 15],
      );
      const stops = callsNamed('stopNamespace');
      assert.equal(stops.length, 1);
      assert.ok(stops[0]!.atMs >= originalShutdown + 90 * MINUTE);
    });
  });

  it('rejects invalid prolongations in the validator and changes nothing', async function () {
    const policy = await policyEndingIn(3, { maxProlongationMinutes: 120 });
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy);
      const before = await handle.query(statusQuery);
      const prolongate = (minutes: number) => handle.executeUpdate(prolongateUpdate, { args: [{ by: 'U1', minutes }] });

      await expectRejected(prolongate(-180), /positive number of whole minutes/);
      await expectRejected(prolongate(0), /positive number of whole minutes/);
      await expectRejected(prolongate(1.5), /positive number of whole minutes/);
      await expectRejected(prolongate(1000 * 60), /over the limit.*at most 2h in all, 2h of which is left/);
      await handle.executeUpdate(prolongateUpdate, { args: [{ by: 'U1', minutes: 90 }] });
      await expectRejected(prolongate(60), /over the limit.*30m of which is left/);

      const after = await handle.query(statusQuery);
      assert.equal(after.prolongedMinutes, 90);
      assert.equal(new Date(after.shutdownAt!).getTime(), new Date(before.shutdownAt!).getTime() + 90 * MINUTE);

      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      const stopped = await handle.query(statusQuery);
      await expectRejected(prolongate(30), /dev\d+ is stopped: only a running environment can be prolongated/);
      // The drift look right after the stop moves its own bookkeeping on meanwhile: everything else is as it was.
      assert.deepEqual({ ...(await handle.query(statusQuery)), drift: null }, { ...stopped, drift: null });
    });
  });

  it('a disabled environment never stops by itself, but manual stop and start work', async function () {
    const policy = await policyEndingIn(2);
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy, { enabled: false });
      assert.equal((await handle.query(statusQuery)).phase, 'disabled');
      await env.sleep(30 * HOUR);
      assert.equal(callsNamed('stopNamespace').length, 0);
      assert.equal(warnings(recorded.calls).length, 0);
      await expectRejected(
        handle.executeUpdate(prolongateUpdate, { args: [{ by: 'U1', minutes: 30 }] }),
        /scheduler disabled: there is no shutdown to move/,
      );

      const stopped = await handle.executeUpdate(stopUpdate, { args: [{ by: 'U7' }] });
      assert.equal(stopped.phase, 'stopped');
      const started = await handle.executeUpdate(startUpdate, { args: [{ by: 'U7' }] });
      assert.equal(started.phase, 'disabled');
      assert.equal(started.shutdownAt, null);
      assert.match(started.message, /stays up until stopped/);
      assert.equal(callsNamed('stopNamespace').length, 1);
      assert.equal(callsNamed('startNamespace').length, 1);

      await handle.signal(setEnabledSignal, { enabled: true, by: 'label' });
      const enabled = await handle.query(statusQuery);
      assert.equal(enabled.phase, 'running');
      assert.ok(enabled.shutdownAt, 'enabling a running environment schedules its shutdown');
    });
  });

  it('start after hours runs for the after-hours window, then stops again', async function () {
    const policy = await policyEndingIn(1);
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy);
      await env.sleep(HOUR + 5 * MINUTE);
      assert.equal((await handle.query(statusQuery)).phase, 'stopped');

      const startedAt = await env.currentTimeMs();
      const reply = await handle.executeUpdate(startUpdate, { args: [{ by: 'U9' }] });
      assert.equal(reply.phase, 'running');
      const runsFor = new Date(reply.shutdownAt!).getTime() - startedAt;
      assert.ok(Math.abs(runsFor - 2 * HOUR) < MINUTE, `runs ${runsFor / MINUTE} minutes after hours, expected 120`);
      assert.match(reply.message, /after-hours window of 2h/);

      await env.sleep(2 * HOUR + 5 * MINUTE);
      assert.equal(callsNamed('stopNamespace').length, 2);
      assert.equal((await handle.query(statusQuery)).phase, 'stopped');
      assert.equal(callsNamed('startNamespace').length, 1);
    });
  });

  it('start on a running environment restores it but keeps a later, prolonged shutdown', async function () {
    const policy = await policyEndingIn(3);
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy);
      const prolonged = await handle.executeUpdate(prolongateUpdate, { args: [{ by: 'U1', minutes: 60 }] });
      const reply = await handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] });
      assert.equal(reply.shutdownAt, prolonged.shutdownAt);
      assert.equal((await handle.query(statusQuery)).prolongedMinutes, 60);
      assert.equal(callsNamed('startNamespace').length, 1, 'the workloads are still restored, in case someone scaled them by hand');
    });
  });

  it('stops tagged AWS resources beside the workloads, and while stopped re-stops an RDS that AWS restarted', async function () {
    const policy = await policyEndingIn(3);
    const rds = { kind: 'rds-instance', id: 'db-1', region: 'eu-west-1', name: 'orders-db' } as const;
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy);
      recorded.awsStopResults.push([
        { ...rds, outcome: 'changed', before: 'available', after: 'stopping' },
        {
          kind: 'rds-instance',
          id: 'db-replica',
          region: 'eu-west-1',
          outcome: 'unsupported',
          before: 'available',
          after: 'available',
          detail: 'read replica',
        },
      ]);
      const stopped = await handle.executeUpdate(stopUpdate, { args: [{ by: 'U5' }] });
      assert.match(
        stopped.message,
        /1 workloads scaled to 0; AWS: 1 stopping; not possible: rds-instance db-replica \(unsupported: read replica\)\.$/,
      );
      assert.equal(callsNamed('stopAwsResources').length, 1);

      // Days later AWS has started the DB again (after 7 days stopped it does so by itself).
      recorded.awsStatusResults.push([], [{ ...rds, state: 'available', scheduler: 'enabled' }]);
      recorded.awsStopResults.push([{ ...rds, outcome: 'changed', before: 'available', after: 'stopping' }]);
      await env.sleep(13 * HOUR);
      const looks = callsNamed('awsStatus');
      assert.equal(looks.length, 2, 'looked at every 6 hours while stopped');
      assert.ok(looks[1]!.atMs - looks[0]!.atMs >= 6 * HOUR - MINUTE);
      assert.equal(callsNamed('stopAwsResources').length, 2, 'stopped again only when something was awake');
      const status = await handle.query(statusQuery);
      assert.equal(status.phase, 'stopped');
      assert.match(status.lastAction?.detail ?? '', /stopped again after AWS started it: orders-db/);
      assert.equal(callsNamed('stopNamespace').length, 1, 'Kubernetes is not touched by the AWS re-check');

      await handle.executeUpdate(startUpdate, { args: [{ by: 'U5' }] });
      await env.sleep(50 * MINUTE);
      assert.equal(callsNamed('awsStatus').length, 2, 'no re-checks once running');
    });
  });

  it('a database still stopping when the environment starts is followed until it has stopped, then started; the last action says when', async function () {
    const policy = await policyEndingIn(3);
    const db = { kind: 'rds-instance', id: 'db-1', region: 'eu-west-1', name: 'orders-db' } as const;
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy);
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      recorded.awsStartResults.push(
        [{ ...db, outcome: 'busy', before: 'stopping', after: 'stopping', detail: 'stopping: cannot start until that finishes' }],
        [{ ...db, outcome: 'busy', before: 'stopping', after: 'stopping' }],
        [{ ...db, outcome: 'changed', before: 'stopped', after: 'starting' }],
      );
      const started = await handle.executeUpdate(startUpdate, { args: [{ by: 'U1' }] });
      assert.equal(started.phase, 'running');
      assert.match(started.message, /AWS: 1 still stopping \(started once it has stopped\)/);
      let status = await handle.query(statusQuery);
      assert.deepEqual(
        status.problems?.map((p) => p.detail),
        ['AWS: rds-instance orders-db is still stopping: started once it has stopped'],
      );
      assert.deepEqual(
        callsNamed('startAwsResources')[0]?.startOptions,
        { onlyStoppedByScheduler: true },
        'starts only what the stop stopped',
      );

      await env.sleep(3 * MINUTE);
      assert.equal(callsNamed('startAwsResources').length, 3, 'looked again each minute until it had stopped');
      assert.deepEqual(
        callsNamed('startAwsResources')[1]?.startOptions,
        { onlyStoppedByScheduler: true, followUp: true },
        'a look waits out no capacity retries',
      );
      status = await handle.query(statusQuery);
      assert.equal(status.awsFollowUp, null);
      assert.deepEqual(status.problems, []);
      assert.equal(status.lastAction?.by, 'scheduler');
      assert.match(status.lastAction?.detail ?? '', /^AWS: started rds-instance orders-db at \S+ \d\d:\d\d.*, once stopping had finished$/);
      await env.sleep(5 * MINUTE);
      assert.equal(callsNamed('startAwsResources').length, 3, 'settled: no more looks');
    });
  });

  /** A worker of this test's own queue whose Kubernetes stop or start is refused (RBAC) while `refusing()` says so. */
  async function kubernetesRefusingWorker(activity: 'stopNamespace' | 'startNamespace', refusing: () => boolean): Promise<Worker> {
    taskQueue = uniqueTaskQueue('env-wf-refusing');
    const passOn = recorded[activity] as (...args: unknown[]) => Promise<unknown>;
    return Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: {
        ...recorded,
        [activity]: async (...args: unknown[]) => {
          if (refusing()) throw ApplicationFailure.nonRetryable('namespaces is forbidden: RBAC', 'Forbidden');
          return passOn(...args);
        },
      },
    });
  }

  it('a stop whose Kubernetes half failed ends the follow-up of the start before it: what the stop did in AWS is not undone', async function () {
    const policy = await policyEndingIn(3);
    const db = { kind: 'rds-instance', id: 'db-1', region: 'eu-west-1', name: 'orders-db' } as const;
    const web = { kind: 'ec2-instance', id: 'i-web', region: 'eu-west-1', name: 'web' } as const;
    let refuseStops = false;
    const refusing = await kubernetesRefusingWorker('stopNamespace', () => refuseStops);
    await refusing.runUntil(async () => {
      const handle = await startEnvironment(policy);
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      recorded.awsStartResults.push([
        { ...db, outcome: 'busy', before: 'stopping', after: 'stopping' },
        { ...web, outcome: 'changed', before: 'stopped', after: 'pending' },
      ]);
      await handle.executeUpdate(startUpdate, { args: [{ by: 'U1' }] });
      assert.equal((await handle.query(statusQuery)).awsFollowUp?.action, 'start');

      refuseStops = true;
      recorded.awsStopResults.push([{ ...web, outcome: 'changed', before: 'running', after: 'stopping' }]);
      await assert.rejects(handle.executeUpdate(stopUpdate, { args: [{ by: 'U2' }] }));
      const status = await handle.query(statusQuery);
      assert.equal(status.workloads, 'running');
      assert.equal(status.awsFollowUp, null);
      const starts = callsNamed('startAwsResources').length;
      await env.sleep(5 * MINUTE);
      assert.equal(callsNamed('startAwsResources').length, starts, 'AWS was started again right after a person stopped it');
    });
  });

  it('a start whose Kubernetes half failed ends the follow-up of the stop before it: what the start did in AWS is not undone', async function () {
    const policy = await policyEndingIn(3);
    const web = { kind: 'ec2-instance', id: 'i-web', region: 'eu-west-1', name: 'web' } as const;
    let refuseStarts = false;
    const refusing = await kubernetesRefusingWorker('startNamespace', () => refuseStarts);
    await refusing.runUntil(async () => {
      const handle = await startEnvironment(policy);
      recorded.awsStopResults.push([{ ...web, outcome: 'busy', before: 'pending', after: 'pending' }]);
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      assert.equal((await handle.query(statusQuery)).awsFollowUp?.action, 'stop');

      refuseStarts = true;
      recorded.awsStartResults.push([{ ...web, outcome: 'already', before: 'running', after: 'running' }]);
      await assert.rejects(handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] }));
      const status = await handle.query(statusQuery);
      assert.equal(status.workloads, 'stopped');
      assert.equal(status.awsFollowUp, null);
      const stops = callsNamed('stopAwsResources').length;
      await env.sleep(5 * MINUTE);
      assert.equal(callsNamed('stopAwsResources').length, stops, 'AWS was stopped again right after a person started it');
    });
  });

  it('leaving management, a database still stopping is followed until it has stopped and started before the environment ends', async function () {
    const policy = await policyEndingIn(3);
    const db = { kind: 'rds-instance', id: 'db-1', region: 'eu-west-1', name: 'orders-db' } as const;
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy);
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      recorded.awsStartResults.push(
        [{ ...db, outcome: 'busy', before: 'stopping', after: 'stopping' }],
        [{ ...db, outcome: 'changed', before: 'stopped', after: 'starting' }],
      );
      await handle.signal(retireSignal, { reason: 'unmanaged', by: 'reconciler' });
      const final = await handle.result();
      assert.equal(final.awsFollowUp, null);
      assert.equal(callsNamed('startAwsResources').length, 2, 'looked again until the database could be started');
      assert.match(final.lastAction?.detail ?? '', /^AWS: started rds-instance orders-db at .*, once stopping had finished$/);
    });
  });

  it('a follow-up whose last looks could not reach AWS still names the database it never started, and says so', async function () {
    const policy = await policyEndingIn(3);
    const db = { kind: 'rds-instance', id: 'db-1', region: 'eu-west-1', name: 'orders-db' } as const;
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy);
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      recorded.awsStartResults.push([{ ...db, outcome: 'busy', before: 'stopping', after: 'stopping' }]);
      await handle.executeUpdate(startUpdate, { args: [{ by: 'U1' }] });
      recorded.awsFailure = () => ApplicationFailure.nonRetryable('AWS refused to list the resources (AccessDenied)', 'AwsNotAllowed');
      await env.sleep(10 * MINUTE);
      let status = await handle.query(statusQuery);
      assert.ok(
        status.problems?.some((p) => /orders-db is still stopping/.test(p.detail)),
        'while AWS cannot be read, status still names the database',
      );
      await env.sleep(HOUR);
      status = await handle.query(statusQuery);
      assert.equal(status.awsFollowUp, null);
      assert.doesNotMatch(status.lastAction?.detail ?? '', /nothing left to start/);
      assert.match(status.lastAction?.detail ?? '', /^AWS: gave up following at /);
      assert.ok(
        status.problems?.some(
          (p) =>
            p.detail ===
            'AWS: rds-instance orders-db was stopping and AWS could not be read since: not started; start the environment again',
        ),
        `status: ${JSON.stringify(status.problems)}`,
      );
    });
  });

  it('a follow-up that gives up after the hour says so to the channel, and one that completes says what it did', async function () {
    const policy = await policyEndingIn(3);
    const db = { kind: 'rds-instance', id: 'db-1', region: 'eu-west-1', name: 'orders-db' } as const;
    const web = { kind: 'ec2-instance', id: 'i-web', region: 'eu-west-1', name: 'web' } as const;
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy);
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      for (let i = 0; i < 80; i++) recorded.awsStartResults.push([{ ...db, outcome: 'busy', before: 'stopping', after: 'stopping' }]);
      await handle.executeUpdate(startUpdate, { args: [{ by: 'U1' }] });
      await env.sleep(HOUR + 5 * MINUTE);
      const followed = () => callsNamed('notify').flatMap((c) => (c.event?.kind === 'aws-followed' ? [c.event] : []));
      assert.deepEqual(
        followed().map((e) => e.problems),
        [['AWS: rds-instance orders-db still stopping after 1h: not started; start the environment again']],
      );
      assert.equal(followed()[0]?.action, 'start');

      recorded.awsStartResults.length = 0;
      recorded.awsStopResults.push(
        [{ ...web, outcome: 'busy', before: 'pending', after: 'pending' }],
        [{ ...web, outcome: 'changed', before: 'running', after: 'stopping' }],
      );
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      await env.sleep(3 * MINUTE);
      assert.equal(followed().length, 2);
      assert.match(followed()[1]?.detail ?? '', /^AWS: stopped ec2-instance web at .*, once starting had finished$/);
      assert.equal(followed()[1]?.problems, undefined);
    });
  });

  it("the nightly stop's AWS outcomes other than done are in the stopped announcement, the last action and status; one still starting is stopped once it is up", async function () {
    const policy = await policyEndingIn(1, { warningOffsetsMinutes: [] });
    const web = { kind: 'ec2-instance', id: 'i-web', region: 'eu-west-1', name: 'web' } as const;
    const fresh = { kind: 'ec2-instance', id: 'i-new', region: 'eu-west-1', name: 'new-worker' } as const;
    const replica = { kind: 'rds-instance', id: 'db-replica', region: 'eu-west-1' } as const;
    const refused = {
      ...web,
      outcome: 'failed',
      before: 'running',
      after: 'running',
      detail: 'UnauthorizedOperation: You are not authorized to perform this operation.',
    } as const;
    const unsupported = {
      ...replica,
      outcome: 'unsupported',
      before: 'available',
      after: 'available',
      detail: 'read replica of orders-db: RDS cannot stop read replicas',
    } as const;
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy);
      recorded.awsStopResults.push(
        [refused, { ...fresh, outcome: 'busy', before: 'pending', after: 'pending' }, unsupported],
        [refused, { ...fresh, outcome: 'changed', before: 'running', after: 'stopping' }, unsupported],
      );
      const shutdownAt = new Date((await handle.query(statusQuery)).shutdownAt!).getTime();
      await env.sleep(shutdownAt - (await env.currentTimeMs()) + 30_000);

      const announced = callsNamed('notify').find((c) => c.event?.kind === 'stopped')?.event;
      const expected = [
        'AWS could not stop ec2-instance web (UnauthorizedOperation: You are not authorized to perform this operation.)',
        'AWS: ec2-instance new-worker is still pending: stopped once it is up',
        'AWS cannot stop rds-instance db-replica (read replica of orders-db: RDS cannot stop read replicas)',
      ];
      assert.deepEqual(announced?.kind === 'stopped' ? announced.problems : undefined, expected);
      let status = await handle.query(statusQuery);
      assert.equal(status.phase, 'stopped');
      assert.deepEqual(
        status.problems?.map((p) => p.detail),
        expected,
      );
      assert.match(status.lastAction?.detail ?? '', /UnauthorizedOperation/);

      await env.sleep(2 * MINUTE);
      assert.equal(callsNamed('stopAwsResources').length, 2);
      status = await handle.query(statusQuery);
      assert.match(
        status.lastAction?.detail ?? '',
        /^AWS: stopped ec2-instance new-worker at .*, once starting had finished; AWS could not stop ec2-instance web/,
      );
      assert.deepEqual(
        status.problems?.map((p) => p.detail),
        [expected[0], expected[2]],
      );
      assert.equal(callsNamed('stopNamespace').length, 1, 'Kubernetes is not touched by the follow-up');

      // The next look (sooner, since a stop failed) finds the web instance stopped after all, and the replica still up: said again, not cleared.
      recorded.awsStatusResults.push([
        { ...replica, state: 'available', scheduler: 'enabled', unsupported: 'read replica of orders-db: RDS cannot stop read replicas' },
      ]);
      await env.sleep(35 * MINUTE);
      assert.equal(callsNamed('awsStatus').length, 1);
      status = await handle.query(statusQuery);
      assert.deepEqual(
        status.problems?.map((p) => p.detail),
        ['AWS cannot stop rds-instance db-replica, which is available (read replica of orders-db: RDS cannot stop read replicas)'],
      );
    });
  });

  it('a namespace deleted while stopped: the retirement says what is left in AWS tagged for it', async function () {
    const policy = await policyEndingIn(3);
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy);
      const { namespace } = await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      recorded.awsStatusResults.push([
        {
          kind: 'rds-instance',
          id: 'db-1',
          region: 'eu-west-1',
          name: 'orders-db',
          state: 'stopped',
          scheduler: 'enabled',
          stoppedAt: '2026-12-01T18:00:00.000Z',
        },
        { kind: 'ec2-instance', id: 'i-pinned', region: 'eu-west-1', state: 'running', scheduler: 'disabled' },
      ]);
      await handle.signal(retireSignal, { reason: 'namespace-deleted', by: 'reconciler' });
      const final = await handle.result();
      assert.equal(final.lastAction?.action, 'retire');
      assert.equal(final.lastAction?.by, 'reconciler');
      assert.match(
        final.lastAction?.detail ?? '',
        new RegExp(
          `^namespace deleted; still tagged namespace=${namespace} in AWS: rds-instance orders-db \\(stopped, stopped by its environment\\)\\. .*inventory refresh stops again`,
        ),
      );
    });
  });

  it('start and stop run one at a time in arrival order, however many arrive during a stop', async function () {
    const policy = await policyEndingIn(3);
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy);
      let finishStop!: () => void;
      recorded.holdStops = new Promise((resolve) => (finishStop = resolve));
      const first = await handle.startUpdate(stopUpdate, { args: [{ by: 'U1' }], waitForStage: WorkflowUpdateStage.ACCEPTED });
      await eventuallyTrue(() => callsNamed('stopNamespace').length === 1);
      // Arrive while the first stop is held, in this order.
      const second = await handle.startUpdate(startUpdate, { args: [{ by: 'U2' }], waitForStage: WorkflowUpdateStage.ACCEPTED });
      const third = await handle.startUpdate(stopUpdate, { args: [{ by: 'U3' }], waitForStage: WorkflowUpdateStage.ACCEPTED });
      const fourth = await handle.startUpdate(stopUpdate, { args: [{ by: 'U4' }], waitForStage: WorkflowUpdateStage.ACCEPTED });
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.deepEqual(kubernetesCalls(), ['stopNamespace'], 'nothing else runs while the stop is in progress');
      recorded.holdStops = undefined;
      finishStop();

      const results = await Promise.all([first.result(), second.result(), third.result(), fourth.result()]);
      assert.deepEqual(
        results.map((r) => r.phase),
        ['stopped', 'running', 'stopped', 'stopped'],
      );
      assert.deepEqual(kubernetesCalls(), ['stopNamespace', 'startNamespace', 'stopNamespace', 'stopNamespace'], 'in arrival order');
      assert.equal(recorded.kubernetesInFlight.max, 1, 'never two stops or starts at once');
      const status = await handle.query(statusQuery);
      assert.equal(status.phase, 'stopped', 'the state is what the last command did');
      assert.equal(status.lastAction?.by, 'U4');
    });
  });

  it('a start waiting for Ready holds no lock: a prolongation answers meanwhile, and the reply and the announcement come once Ready', async function () {
    const policy = await policyEndingIn(3);
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy);
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      recorded.readiness = 'ready';
      let release = () => {};
      recorded.holdReady = new Promise((resolve) => (release = resolve));
      const starting = handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] });
      await eventuallyTrue(() => callsNamed('awaitReady').length === 1);
      const waiting = await handle.query(statusQuery);
      assert.equal(waiting.phase, 'running');
      assert.match(waiting.lastAction?.detail ?? '', /^1 workloads restored; waiting for them to be Ready$/);
      const prolonged = await handle.executeUpdate(prolongateUpdate, { args: [{ by: 'U3', minutes: 30 }] });
      assert.match(prolonged.message, /prolongated by 30m by U3/);
      assert.equal(recorded.calls.filter((c) => c.event?.kind === 'started').length, 0, 'not announced before it is Ready');
      release();
      const started = await starting;
      assert.match(started.message, /^dev\d+ started by U2: 1 workloads restored; all 1 workloads Ready after 42 s; shuts down /);
      // The reply is made once Ready: it says the shutdown as the prolongation left it.
      const prolongedTo = /shuts down (today \d\d:\d\d)/.exec(prolonged.message)?.[1];
      assert.ok(prolongedTo, prolonged.message);
      assert.ok(started.message.includes(`shuts down ${prolongedTo}`), `${started.message} (prolonged to ${prolongedTo})`);
      assert.equal(started.shutdownAt, prolonged.shutdownAt);
      await eventuallyTrue(() => recorded.calls.some((c) => c.event?.kind === 'started'));
      const [announced] = recorded.calls.flatMap((c) => (c.event?.kind === 'started' ? [c.event] : []));
      assert.equal(announced?.report.readiness?.durationMs, 42_000);
      assert.equal(announced?.shutdownAt, prolonged.shutdownAt);
    });
  });

  it('a stop during the wait between two wake-order groups goes ahead without waiting for it: the later group is never woken, and the start says it was interrupted', async function () {
    const policy = await policyEndingIn(3);
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy);
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      recorded.readiness = 'ready';
      recorded.wakeGroups = true;
      let release = () => {};
      recorded.holdReady = new Promise((resolve) => (release = resolve));
      try {
        const starting = handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] });
        await eventuallyTrue(() => callsNamed('awaitReady').length === 1);
        assert.equal((await handle.query(statusQuery)).phase, 'starting', 'still waking: the Deployment is yet to come');
        // Never released: the stop must not wait for the StatefulSet to be Ready.
        const stop = await handle.executeUpdate(stopUpdate, { args: [{ by: 'U3' }] });
        assert.match(stop.message, /stopped by U3/);
        const start = await starting;
        assert.match(
          start.message,
          /^dev\d+ started by U2: 1 workloads restored; the wait for Ready was interrupted by the stop by U3 after \d+ s\.$/,
        );
        assert.equal(start.shutdownAt, null, 'an interrupted start has no shutdown of its own');
        assert.deepEqual(
          recorded.calls.filter((c) => c.name === 'startNamespace' || c.name === 'stopNamespace').map((c) => c.name),
          ['stopNamespace', 'startNamespace', 'stopNamespace'],
          'the Deployment was not woken',
        );
        await eventuallyTrue(() => recorded.calls.some((c) => c.event?.kind === 'started'));
        const [announced] = recorded.calls.flatMap((c) => (c.event?.kind === 'started' ? [c.event] : []));
        assert.equal(announced?.shutdownAt, null, 'announced without the shutdown it no longer has');
        assert.equal((await handle.query(statusQuery)).phase, 'stopped');
      } finally {
        release();
      }
    });
  });

  it('a stop sent while a start wakes its first group: the wait before the next is not begun, the stop is next', async function () {
    const policy = await policyEndingIn(3);
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy);
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      recorded.readiness = 'ready';
      recorded.wakeGroups = true;
      recorded.holdReady = new Promise(() => {}); // a StatefulSet that never gets Ready: only the stop can end its wait
      let wake = () => {};
      recorded.holdStarts = new Promise((resolve) => (wake = resolve));
      const starting = handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] });
      await eventuallyTrue(() => callsNamed('startNamespace').length === 1);
      const stopping = await handle.startUpdate(stopUpdate, { args: [{ by: 'U3' }], waitForStage: WorkflowUpdateStage.ACCEPTED });
      recorded.holdStarts = undefined;
      wake();
      assert.match((await stopping.result()).message, /stopped by U3/);
      assert.match(
        (await starting).message,
        /^dev\d+ started by U2: 1 workloads restored; the wait for Ready was interrupted by the stop by U3 after \d+ s\.$/,
      );
      assert.equal(callsNamed('awaitReady').length, 0, 'no wait begun');
      assert.equal(callsNamed('startNamespace').length, 1, 'the Deployment was not woken');
    });
  });

  it('a start woken in steps waits for the first group, then wakes the next with what it found, and replies once all are Ready', async function () {
    const policy = await policyEndingIn(3);
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy);
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      recorded.readiness = 'ready';
      recorded.wakeGroups = true;
      const started = await handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] });
      assert.match(
        started.message,
        /^dev\d+ started by U2: 2 workloads restored; all 2 workloads Ready after 42 s \(in wake order: group 0, 1 in 42 s; group 1, 1 in 42 s\); shuts down /,
      );
      const steps = recorded.calls.filter((c) => c.name === 'startNamespace').map((c) => c.steps);
      assert.equal(steps.length, 2);
      assert.deepEqual(steps[0], {});
      assert.deepEqual(
        steps[1]?.after?.readiness?.groups.map((g) => [g.order, g.durationMs]),
        [[0, 42_000]],
        'the second step is given the first group as its wait found it',
      );
      assert.equal(steps[1]?.after?.readiness?.durationMs, undefined, 'not yet the whole start');
      assert.deepEqual(
        recorded.calls.filter((c) => c.name === 'startNamespace' || c.name === 'awaitReady').map((c) => c.name),
        ['startNamespace', 'awaitReady', 'startNamespace', 'awaitReady'],
      );
    });
  });

  it('a stop sent with a start, queued behind it, interrupts its wait for Ready; the start says so', async function () {
    const policy = await policyEndingIn(3);
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy);
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      recorded.readiness = 'not-ready';
      let release = () => {};
      recorded.holdReady = new Promise((resolve) => (release = resolve));
      const [start, stop] = await Promise.all([
        handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] }),
        (async () => {
          await eventuallyTrue(() => callsNamed('startNamespace').length === 1);
          return handle.executeUpdate(stopUpdate, { args: [{ by: 'U3' }] });
        })(),
      ]);
      release();
      assert.match(
        start.message,
        /^dev\d+ started by U2: 1 workloads restored; the wait for Ready was interrupted by the stop by U3 after \d+ s\.$/,
      );
      assert.match(stop.message, /stopped by U3/);
      assert.equal((await handle.query(statusQuery)).phase, 'stopped');
    });
  });

  it('AWS refusing does not hold up Kubernetes: the start arms its shutdown, and the reply, status and channel say what AWS could not do', async function () {
    const policy = await policyEndingIn(3);
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy);
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      recorded.awsFailure = () =>
        ApplicationFailure.nonRetryable('AWS refused to list the resources (AuthFailure: credentials expired)', 'AwsNotAllowed');

      const started = await handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] });
      assert.equal(started.phase, 'running');
      assert.ok(started.shutdownAt, "tonight's shutdown is armed");
      assert.match(
        started.message,
        /1 workloads restored; AWS could not start: AWS refused to list the resources \(AuthFailure: credentials expired\); shuts down/,
      );
      assert.equal(callsNamed('startAwsResources').length, 1, 'an authentication error is not retried');
      const status = await handle.query(statusQuery);
      assert.deepEqual(status.problems, [
        {
          half: 'aws',
          action: 'start',
          detail: 'AWS could not start: AWS refused to list the resources (AuthFailure: credentials expired)',
        },
      ]);
      await eventuallyTrue(() => recorded.calls.some((c) => c.event?.kind === 'started'));
      const announcement = recorded.calls.find((c) => c.event?.kind === 'started')!.event!;
      assert.deepEqual(announcement.kind === 'started' && announcement.problems, [status.problems![0]!.detail]);

      // The night's stop: Kubernetes stops on time even though AWS still refuses; it says so.
      await env.sleep(new Date(started.shutdownAt!).getTime() - (await env.currentTimeMs()) + MINUTE);
      const stopped = await handle.query(statusQuery);
      assert.equal(stopped.phase, 'stopped');
      assert.equal(stopped.problems?.[0]?.half, 'aws');
      assert.equal(stopped.problems?.[0]?.action, 'stop');
      assert.match(stopped.lastAction?.detail ?? '', /AWS could not stop/);

      // AWS is back: the next look, sooner than the usual six hours after a failed stop, finds it all stopped.
      recorded.awsFailure = undefined;
      await env.sleep(31 * MINUTE);
      assert.equal(callsNamed('awsStatus').length, 1);
      assert.deepEqual((await handle.query(statusQuery)).problems, []);
    });
  });

  it('a re-check that read AWS before a start does not erase what that start could not do', async function () {
    const policy = await policyEndingIn(3);
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy);
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      const checkedAt = new Date((await handle.query(statusQuery)).awsCheckedAt!).getTime();
      let finishRead!: () => void;
      recorded.holdAwsStatus = new Promise((resolve) => (finishRead = resolve));
      // Once the read runs the clock is locked and goes on in real time: sleep just past it.
      await env.sleep(checkedAt + 6 * HOUR + 2_000 - (await env.currentTimeMs()));
      await eventuallyTrue(() => callsNamed('awsStatus').length === 1); // the re-check's read is under way

      recorded.awsFailure = () => ApplicationFailure.nonRetryable('AWS refused (AccessDenied)', 'AwsNotAllowed');
      await handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] });
      recorded.awsFailure = undefined;
      recorded.holdAwsStatus = undefined;
      finishRead(); // answers from before the start: nothing awake
      await new Promise((resolve) => setTimeout(resolve, 500));
      const status = await handle.query(statusQuery);
      assert.equal(status.phase, 'running');
      assert.deepEqual(
        status.problems?.map((p) => p.detail),
        ['AWS could not start: AWS refused (AccessDenied)'],
      );
    });
  });

  it('a start is not held up by the AWS re-check of a stopped environment, however long AWS keeps failing', async function () {
    const policy = await policyEndingIn(3);
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy);
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      recorded.awsFailure = () => new Error('connect ETIMEDOUT ec2.eu-west-1.amazonaws.com'); // retryable: AWS is down, not refusing
      await env.sleep(6 * HOUR + MINUTE); // the re-check is due and failing
      await eventuallyTrue(() => recorded.calls.some((c) => c.name === 'awsStatus' || c.name === 'stopAwsResources'));

      const update = await handle.startUpdate(startUpdate, { args: [{ by: 'U2' }], waitForStage: WorkflowUpdateStage.ACCEPTED });
      await eventuallyTrue(() => callsNamed('startNamespace').length === 1);
      await env.sleep(20 * MINUTE); // AWS's bounded retries run out
      const started = await update.result();
      assert.equal(started.phase, 'running');
      assert.ok(started.shutdownAt);
      assert.match(started.message, /AWS could not start: connect ETIMEDOUT/);
    });
  });

  it('no warning or shutdown waits for Slack, even when the history is long enough to continue as new', async function () {
    const policy = await policyEndingIn(2);
    await worker.runUntil(async () => {
      recorded.notifyFailure = () => new Error('Slack answered 503');
      const handle = await startEnvironment(policy, { maxHistoryEvents: 20 });
      const firstRun = (await handle.describe()).runId;
      const shutdownAt = new Date((await handle.query(statusQuery)).shutdownAt!).getTime();
      await env.sleep(shutdownAt - (await env.currentTimeMs()) + 5 * MINUTE);

      const stops = callsNamed('stopNamespace');
      assert.equal(stops.length, 1);
      assert.ok(stops[0]!.atMs - shutdownAt < MINUTE, `stopped ${(stops[0]!.atMs - shutdownAt) / MINUTE} minutes late`);
      for (const offset of [60, 30, 15]) {
        const first = recorded.calls.find((c) => c.event?.kind === 'warning' && c.event.offsetMinutes === offset);
        assert.ok(
          first && Math.abs(first.atMs - (shutdownAt - offset * MINUTE)) < MINUTE,
          `the ${offset}-minute warning was tried on time`,
        );
      }
      const latest = env.client.workflow.getHandle(handle.workflowId);
      assert.notEqual((await latest.describe()).runId, firstRun, 'it did continue as new');
      assert.equal((await latest.query(statusQuery)).phase, 'stopped');

      // Slack is back: the announcement still waiting (carried over to the new run) is delivered.
      recorded.notifyFailure = undefined;
      const triedBefore = recorded.calls.filter((c) => c.event?.kind === 'stopped').length;
      await env.sleep(10 * MINUTE);
      assert.ok(
        recorded.calls.filter((c) => c.event?.kind === 'stopped').length > triedBefore,
        'the stopped announcement was tried again once Slack answered',
      );
    });
  });

  it('retiring a stopped environment whose namespace stays (no longer managed) restores it first; one whose namespace is gone is not touched', async function () {
    const policy = await policyEndingIn(3);
    await worker.runUntil(async () => {
      const leaving = await startEnvironment(policy);
      await leaving.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      await leaving.signal(retireSignal, { reason: 'unmanaged', by: 'reconciler' });
      const final = await leaving.result();
      assert.equal(final.phase, 'running', 'restored before it ended');
      assert.equal(callsNamed('startNamespace').filter((c) => c.namespace === final.namespace).length, 1);
      assert.match(final.lastAction?.by ?? '', /reconciler \(leaving management\)/);

      const deleted = await startEnvironment(policy);
      const { namespace } = await deleted.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      await deleted.signal(retireSignal, { reason: 'namespace-deleted', by: 'reconciler' });
      await deleted.result();
      assert.equal(
        callsNamed('startNamespace').filter((c) => c.namespace === namespace).length,
        0,
        'nothing to restore in a deleted namespace',
      );
    });
  });

  for (const timeZone of ['Asia/Tokyo', 'America/New_York']) {
    it(`reset keeps a prolongation made the same local day and drops one of an earlier day (${timeZone})`, async function () {
      // Late in the environment's local day, so its prolongation reaches past local midnight.
      const local = DateTime.fromMillis(await env.currentTimeMs(), { zone: timeZone });
      if (local.hour >= 21) await env.sleep(local.endOf('day').diff(local).toMillis() + HOUR);
      const policy = everyDayPolicy({ timeZone, shutdownTime: '23:30' });
      await worker.runUntil(async () => {
        const handle = await startEnvironment(policy);
        const defaultShutdown = new Date((await handle.query(statusQuery)).shutdownAt!).getTime();
        await handle.executeUpdate(prolongateUpdate, { args: [{ by: 'U1', minutes: 60 }] });

        // The service's morning Schedule fires while it is still that day here (e.g. 09:00 Berlin is 17:00 Tokyo).
        await handle.signal(resetSignal);
        const kept = await handle.query(statusQuery);
        assert.equal(kept.prolongedMinutes, 60, 'a prolongation made today is kept');
        assert.equal(new Date(kept.shutdownAt!).getTime(), defaultShutdown + HOUR);
        assert.match(kept.lastAction?.detail ?? '', /kept today's prolongation of 1h/);

        // Just past local midnight, before the prolonged shutdown at 00:30: the prolongation is yesterday's now.
        const midnight = DateTime.fromMillis(defaultShutdown, { zone: timeZone }).plus({ days: 1 }).startOf('day');
        await env.sleep(midnight.toMillis() - (await env.currentTimeMs()) + 10 * MINUTE);
        assert.equal((await handle.query(statusQuery)).phase, 'running');
        await handle.signal(resetSignal);
        const dropped = await handle.query(statusQuery);
        assert.equal(dropped.prolongedMinutes, 0);
        assert.equal(dropped.shutdownAt, midnight.set({ hour: 23, minute: 30 }).toJSDate().toISOString(), "back to the new day's default");
      });
    });
  }

  it('setPolicy (annotations changed) moves the shutdown of today when still ahead, keeping the prolongation, and stops at the new time', async function () {
    const policy = await policyEndingIn(3);
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy);
      const original = new Date((await handle.query(statusQuery)).shutdownAt!).getTime();
      await handle.executeUpdate(prolongateUpdate, { args: [{ by: 'U1', minutes: 30 }] });
      const earlier = DateTime.fromMillis(original, { zone: 'UTC' }).minus({ hours: 1 }).toFormat('HH:mm');
      await handle.signal(setPolicySignal, { policy: { ...policy, shutdownTime: earlier }, by: 'admission:alice' });
      const status = await handle.query(statusQuery);
      assert.equal(new Date(status.shutdownAt!).getTime(), original - HOUR + 30 * MINUTE, 'new time plus the 30-minute prolongation');
      assert.equal(status.policy.shutdownTime, earlier);
      assert.equal(status.lastAction?.action, 'policy');
      assert.equal(status.lastAction?.by, 'admission:alice');

      // The same policy again changes nothing.
      await handle.signal(setPolicySignal, { policy: { ...policy, shutdownTime: earlier }, by: 'someone-else' });
      assert.equal((await handle.query(statusQuery)).lastAction?.by, 'admission:alice');

      await env.sleep(original - HOUR + 30 * MINUTE - (await env.currentTimeMs()) + MINUTE);
      const stops = callsNamed('stopNamespace');
      assert.equal(stops.length, 1);
      assert.ok(Math.abs(stops[0]!.atMs - (original - 30 * MINUTE)) < MINUTE, 'stopped at the new time');
    });
  });

  it('retire ends the workflow cleanly', async function () {
    const policy = await policyEndingIn(3);
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy);
      await handle.signal(retireSignal);
      const final = await handle.result();
      assert.equal(final.namespace, handle.workflowId.replace('env/', ''));
      assert.equal((await handle.describe()).status.name, 'COMPLETED');
      assert.equal(callsNamed('stopNamespace').length, 0, 'retiring does not touch the (deleted) namespace');
    });
  });

  it('continues as new with its state when history grows, and keeps its timers', async function () {
    const policy = await policyEndingIn(3);
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy, { maxHistoryEvents: 40 });
      const firstRun = (await handle.describe()).runId;
      for (let i = 0; i < 8; i++) await handle.executeUpdate(prolongateUpdate, { args: [{ by: `U${i}`, minutes: 5 }] });

      const latest = env.client.workflow.getHandle(handle.workflowId);
      assert.notEqual((await latest.describe()).runId, firstRun, 'a new run should have started');
      const status = await latest.query(statusQuery);
      assert.equal(status.prolongedMinutes, 40);
      assert.equal(status.lastAction?.by, 'U7');

      await env.sleep(new Date(status.shutdownAt!).getTime() - (await env.currentTimeMs()) + MINUTE);
      assert.equal(callsNamed('stopNamespace').length, 1);
      assert.equal((await latest.query(statusQuery)).phase, 'stopped');
    });
  });
  it('scheduler=disabled while a drift re-stop waits for the lock: the workload is only told of, never put back to sleep', async function () {
    const policy = await policyEndingIn(3);
    // Looks come a second after the AWS re-checks, so the AWS re-stop is holding the lock when the look reads.
    recorded.drift = { mode: 'restop', intervalMs: 6 * HOUR + 1_000 };
    const rds = { kind: 'rds-instance', id: 'db-1', region: 'eu-west-1', name: 'orders-db' } as const;
    const api = { kind: 'Deployment', name: 'api', replicas: 3, created: false, by: 'gitops-bot', restopped: false };
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy);
      // The look right after the stop finds nothing and learns the interval: the next comes with the AWS re-check.
      recorded.driftResults.push([], [api]);
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      await eventuallyTrue(() => callsNamed('checkDrift').length === 1);
      // Six hours on, AWS has started the database again: its re-stop holds the lock while the drift look finds api awake.
      recorded.awsStatusResults.push([{ ...rds, state: 'available', scheduler: 'enabled' }]);
      recorded.awsStopResults.push([{ ...rds, outcome: 'changed', before: 'available', after: 'stopping' }]);
      let releaseAws!: () => void;
      recorded.holdAwsStops = new Promise((resolve) => (releaseAws = resolve));
      const slept = env.sleep(6 * HOUR + MINUTE);
      await eventuallyTrue(() => callsNamed('stopAwsResources').length === 2 && callsNamed('checkDrift').length === 2);
      await new Promise((resolve) => setTimeout(resolve, 500)); // the look's answer reaches the workflow, which queues for the lock
      await handle.signal(setEnabledSignal, { enabled: false, by: 'kubectl' });
      await new Promise((resolve) => setTimeout(resolve, 500));
      releaseAws();
      await slept;
      await eventuallyTrue(() => recorded.calls.some((c) => c.event?.kind === 'drift'));
      assert.equal(callsNamed('checkDrift').length, 2, 'no re-stop look after the scheduler was disabled');
      const told = recorded.calls.flatMap((c) => (c.event?.kind === 'drift' ? [c.event] : []));
      assert.equal(told.length, 1);
      assert.equal(told[0]!.mode, 'report', 'told as left awake, not as put back to sleep');
      assert.equal((await handle.query(statusQuery)).enabled, false);
    });
  });

  describe('wait-for-databases', function () {
    const orders = { kind: 'rds-instance', id: 'db-1', region: 'eu-west-1', name: 'orders-db' } as const;
    const audit = { kind: 'rds-cluster', id: 'audit', region: 'eu-west-1' } as const;
    /** A stopped environment whose next AWS start starts both databases. */
    async function stoppedWithDatabases(waitForDatabases: boolean): Promise<WorkflowHandle<typeof environmentWorkflow>> {
      const handle = await startEnvironment(await policyEndingIn(3, waitForDatabases ? { waitForDatabases: true } : {}));
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      recorded.awsStartResults.push([
        { ...orders, outcome: 'changed', before: 'stopped', after: 'starting' },
        { ...audit, outcome: 'already', before: 'available', after: 'available' },
        { kind: 'ec2-instance', id: 'i-1', region: 'eu-west-1', outcome: 'changed', before: 'stopped', after: 'pending' },
      ]);
      recorded.calls.length = 0;
      return handle;
    }
    const order = () => recorded.calls.filter((c) => c.name !== 'notify').map((c) => c.name);

    it('annotated: AWS starts first, the workloads only once its databases are available; the reply says how long each took', async function () {
      await worker.runUntil(async () => {
        const handle = await stoppedWithDatabases(true);
        recorded.readiness = 'ready';
        const started = await handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] });
        assert.deepEqual(order(), ['startAwsResources', 'awaitDatabases', 'startNamespace', 'awaitReady']);
        assert.deepEqual(
          callsNamed('awaitDatabases')[0]?.databases?.databases,
          [orders, audit],
          'the databases it started or found up, not the EC2 instance',
        );
        assert.match(
          started.message,
          /^dev\d+ started by U2: 1 workloads restored; all 2 databases available after 4 min 10 s; all 1 workloads Ready after 42 s; AWS: /,
        );
        await eventuallyTrue(() => recorded.calls.some((c) => c.event?.kind === 'started'));
        const [announced] = recorded.calls.flatMap((c) => (c.event?.kind === 'started' ? [c.event] : []));
        assert.equal(announced?.report.databases?.durationMs, 250_000, 'the channel is told too');
      });
    });

    it('without the annotation both halves start together, as before, and nothing waits for the databases', async function () {
      await worker.runUntil(async () => {
        const handle = await stoppedWithDatabases(false);
        const started = await handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] });
        assert.deepEqual(order().sort(), ['startAwsResources', 'startNamespace']);
        assert.doesNotMatch(started.message, /database/);
      });
    });

    it('databases not available by the deadline are named, and the workloads are woken anyway', async function () {
      await worker.runUntil(async () => {
        const handle = await stoppedWithDatabases(true);
        recorded.databases = { never: ['db-1'] };
        const started = await handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] });
        assert.deepEqual(order(), ['startAwsResources', 'awaitDatabases', 'startNamespace']);
        assert.match(
          started.message,
          /: 1 workloads restored; 1 of 2 databases not available after 5 min: rds-instance orders-db \(starting\); the workloads were woken anyway;/,
        );
        assert.equal((await handle.query(statusQuery)).phase, 'running');
      });
    });

    it('a stop during the wait cancels it: no workload is woken, the start says it was interrupted, the stop goes ahead', async function () {
      await worker.runUntil(async () => {
        const handle = await stoppedWithDatabases(true);
        recorded.holdDatabases = new Promise(() => {});
        const [start, stop] = await Promise.all([
          handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] }),
          (async () => {
            await eventuallyTrue(() => callsNamed('awaitDatabases').length === 1);
            return handle.executeUpdate(stopUpdate, { args: [{ by: 'U3' }] });
          })(),
        ]);
        assert.match(
          start.message,
          /^dev\d+ started by U2: 0 workloads restored; the wait for the databases was interrupted by the stop by U3 after \d+ s, so no workload was woken; AWS: [^;]*\.$/,
        );
        assert.match(stop.message, /stopped by U3/);
        assert.equal(callsNamed('startNamespace').length, 0, 'nothing woken only to be stopped');
        assert.equal((await handle.query(statusQuery)).phase, 'stopped');
      });
    });
  });

  describe('the morning wake-up', function () {
    /** Skips the test server's clock to `when` (no workflow runs yet, so nothing fires on the way). */
    async function skipTo(when: DateTime): Promise<void> {
      await env.sleep(when.toMillis() - (await env.currentTimeMs()));
    }
    /** The next `weekday` (1 = Monday) in `zone` at least a day ahead of the test server's clock, at `time`. */
    async function next(weekday: number, zone: string, time: { hour: number; minute?: number }): Promise<DateTime> {
      let day = DateTime.fromMillis(await env.currentTimeMs(), { zone })
        .plus({ days: 1 })
        .startOf('day');
      while (day.weekday !== weekday) day = day.plus({ days: 1 });
      return day.set(time);
    }
    const starts = () => callsNamed('startNamespace').map((c) => DateTime.fromMillis(c.atMs));
    const startedEvents = () => recorded.calls.flatMap((c) => (c.event?.kind === 'started' ? [c.event] : []));
    /** "Tue 08:00 CET" for each start: when it came, as a person in the zone reads it. */
    const localStarts = (zone: string) => starts().map((at) => at.setZone(zone).toFormat('ccc HH:mm ZZZZ'));

    it('wakes a stopped environment on working days only: not Saturday, Sunday or a holiday Monday; one already running is not started nor announced', async function () {
      const zone = 'Europe/Berlin';
      const friday = await next(5, zone, { hour: 7 });
      const monday = friday.plus({ days: 3 });
      const tuesday = friday.plus({ days: 4 });
      const policy = everyDayPolicy({
        timeZone: zone,
        workingDays: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'],
        holidays: [monday.toISODate()!],
        wakeTime: '08:00',
      });
      await skipTo(friday);
      await worker.runUntil(async () => {
        const handle = await startEnvironment(policy); // enrolled at 07:00: running before the wake-up
        await skipTo(friday.set({ hour: 9 }));
        assert.deepEqual(starts(), [], 'running at 08:00: not started again');
        assert.deepEqual(startedEvents(), [], 'nor announced');

        await skipTo(friday.plus({ days: 2, hours: 5 })); // Sunday noon, stopped since Friday 19:00
        const sunday = await handle.query(statusQuery);
        assert.equal(sunday.phase, 'stopped');
        assert.equal(sunday.wakeAt, tuesday.set({ hour: 8 }).toUTC().toISO(), 'the holiday Monday is skipped');
        assert.match(sunday.wakeDescription ?? '', new RegExp(`^${tuesday.toFormat('ccc d LLL')} 08:00 CES?T, in \\d+h 0m$`));

        await skipTo(tuesday.set({ hour: 9 }));
        assert.deepEqual(localStarts(zone), [`Tue 08:00 ${tuesday.set({ hour: 8 }).toFormat('ZZZZ')}`]);
        const [woke] = startedEvents();
        assert.equal(woke?.by, 'scheduler');
        assert.equal(woke?.wokeUp?.at, tuesday.set({ hour: 8 }).toUTC().toISO());
        assert.match(woke?.wokeUp?.clock ?? '', /^08:00 CES?T$/);
        assert.equal(woke?.shutdownAt, tuesday.set({ hour: 19 }).toUTC().toISO(), 'and stops at the end of the day as usual');
        const status = await handle.query(statusQuery);
        assert.equal(status.phase, 'running');
        assert.match(status.lastAction?.detail ?? '', /^woken up as scheduled at 08:00 CES?T: 1 workloads restored$/);
      });
    });

    for (const zone of ['Europe/Berlin', 'America/New_York']) {
      it(`wakes at 08:00 local on both sides of the next DST change in ${zone}`, async function () {
        // The next day whose UTC offset differs from the day before's: a Sunday in both zones.
        let day = DateTime.fromMillis(await env.currentTimeMs(), { zone })
          .startOf('day')
          .plus({ days: 1 });
        while (day.set({ hour: 12 }).offset === day.minus({ days: 1 }).set({ hour: 12 }).offset) day = day.plus({ days: 1 });
        const saturday = day.minus({ days: 1 });
        const policy = everyDayPolicy({ timeZone: zone, wakeTime: '08:00' });
        await skipTo(saturday.set({ hour: 7 }));
        await worker.runUntil(async () => {
          const handle = await startEnvironment(policy);
          await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] }); // stopped before the wake-up: woken at it
          await skipTo(saturday.plus({ days: 2 }).set({ hour: 9 }));
          const local = starts().map((at) => at.setZone(zone).toFormat('ccc HH:mm'));
          assert.deepEqual(local, ['Sat 08:00', 'Sun 08:00', 'Mon 08:00']);
          const offsets = starts().map((at) => at.setZone(zone).offset);
          assert.notEqual(offsets[0], offsets[1], 'the change came between the first two');
          assert.equal(offsets[1], offsets[2]);
          assert.equal(callsNamed('stopNamespace').length, 3, 'the manual stop, then 19:00 on Saturday and Sunday');
        });
      });
    }

    it("a wake time given to a stopped environment by the reconciler's setPolicy is planned at once; with the scheduler disabled it never wakes", async function () {
      const day = await next(4, 'UTC', { hour: 6 });
      await skipTo(day);
      await worker.runUntil(async () => {
        const policy = everyDayPolicy();
        const handle = await startEnvironment(policy);
        const paused = await startEnvironment(policy, { enabled: false });
        for (const h of [handle, paused]) {
          await h.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
          await h.signal(setPolicySignal, { policy: { ...policy, wakeTime: '07:30' }, by: 'reconciler' });
        }
        const status = await handle.query(statusQuery);
        assert.equal(status.wakeAt, day.set({ hour: 7, minute: 30 }).toISO());
        assert.match(status.lastAction?.detail ?? '', /; wakes at 07:30$/);
        assert.equal((await paused.query(statusQuery)).wakeDescription, null);
        await skipTo(day.set({ hour: 8 }));
        assert.deepEqual(
          callsNamed('startNamespace').map((c) => [c.namespace, DateTime.fromMillis(c.atMs, { zone: 'UTC' }).toFormat('HH:mm')]),
          [[handle.workflowId.replace('env/', ''), '07:30']],
        );
        assert.equal((await paused.query(statusQuery)).phase, 'stopped');
      });
    });

    it('a manual stop after the wake-up stays stopped until the next one', async function () {
      const zone = 'UTC';
      const day = await next(3, zone, { hour: 7 });
      await skipTo(day);
      await worker.runUntil(async () => {
        const handle = await startEnvironment(everyDayPolicy({ wakeTime: '08:00' }));
        await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
        await skipTo(day.set({ hour: 8, minute: 30 }));
        assert.deepEqual(localStarts(zone), ['Wed 08:00 UTC']);

        const stopped = await handle.executeUpdate(stopUpdate, { args: [{ by: 'U2' }] });
        assert.equal(stopped.phase, 'stopped');
        const status = await handle.query(statusQuery);
        assert.equal(status.wakeAt, day.plus({ days: 1 }).set({ hour: 8 }).toISO());
        assert.equal(status.wakeDescription, 'tomorrow 08:00 UTC, in 23h 30m');
        await skipTo(day.set({ hour: 23 }));
        assert.deepEqual(localStarts(zone), ['Wed 08:00 UTC'], 'not again the same day, nor at the evening shutdown time');

        await skipTo(day.plus({ days: 1 }).set({ hour: 9 }));
        assert.deepEqual(localStarts(zone), ['Wed 08:00 UTC', 'Thu 08:00 UTC']);
        assert.equal(startedEvents().filter((e) => e.wokeUp).length, 2);
      });
    });

    it('a manual stop after the wake-up, then the wake time moved later that day: not woken again that day, woken at the new time the next', async function () {
      const day = await next(3, 'UTC', { hour: 7 });
      await skipTo(day);
      await worker.runUntil(async () => {
        const policy = everyDayPolicy({ wakeTime: '08:00' });
        const handle = await startEnvironment(policy);
        await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
        await skipTo(day.set({ hour: 10 }));
        await handle.executeUpdate(stopUpdate, { args: [{ by: 'U2' }] }); // woken at 08:00, stopped by hand at 10:00
        await handle.signal(setPolicySignal, { policy: { ...policy, wakeTime: '11:00' }, by: 'reconciler' });
        assert.equal((await handle.query(statusQuery)).wakeAt, day.plus({ days: 1 }).set({ hour: 11 }).toISO());
        await skipTo(day.set({ hour: 18 }));
        assert.deepEqual(localStarts('UTC'), ['Wed 08:00 UTC'], 'not woken at 11:00 the day it was stopped by hand');
        await skipTo(day.plus({ days: 1 }).set({ hour: 12 }));
        assert.deepEqual(localStarts('UTC'), ['Wed 08:00 UTC', 'Thu 11:00 UTC']);
      });
    });

    it("Saturday made a working day after Friday's stop: woken on Saturday at the wake time, not on Monday", async function () {
      const friday = await next(5, 'UTC', { hour: 9 });
      await skipTo(friday);
      await worker.runUntil(async () => {
        const policy = everyDayPolicy({ workingDays: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'], wakeTime: '08:00' });
        const handle = await startEnvironment(policy);
        await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
        assert.equal((await handle.query(statusQuery)).wakeAt, friday.plus({ days: 3 }).set({ hour: 8 }).toISO(), 'Monday, before');
        await skipTo(friday.set({ hour: 20 }));
        await handle.signal(setPolicySignal, { policy: { ...policy, workingDays: [...policy.workingDays, 'Sat'] }, by: 'reconciler' });
        assert.equal((await handle.query(statusQuery)).wakeAt, friday.plus({ days: 1 }).set({ hour: 8 }).toISO());
        await skipTo(friday.plus({ days: 1 }).set({ hour: 9 }));
        assert.deepEqual(localStarts('UTC'), ['Sat 08:00 UTC']);
      });
    });

    it('a wake-up handled only after its working day was over (a run continued with it still planned after an outage) is skipped and said so; the next is done', async function () {
      const day = await next(3, 'UTC', { hour: 22 });
      await skipTo(day);
      const policy = everyDayPolicy({ wakeTime: '08:00' });
      // Stopped Tuesday 19:00, to wake Wednesday 08:00; the run that carries it on begins Wednesday 22:00.
      const tuesday = day.minus({ days: 1 });
      const state = afterStop(enrolled(true, policy, tuesday.set({ hour: 9 }).toJSDate()), policy, tuesday.set({ hour: 19 }).toJSDate());
      assert.equal(state.wakeAt, day.set({ hour: 8 }).toISO());
      await worker.runUntil(async () => {
        const namespace = `dev${++namespaceCounter}`;
        const handle = await env.client.workflow.start(environmentWorkflow, {
          workflowId: environmentWorkflowId(namespace),
          taskQueue,
          args: [{ namespace, policy, enabled: true, state }],
        });
        const status = await handle.query(statusQuery);
        assert.equal(status.phase, 'stopped', 'not woken at 22:00');
        assert.match(status.lastAction?.detail ?? '', /^wake-up of .* missed \(no worker ran it that day\); stays stopped until the next$/);
        assert.equal(status.wakeAt, day.plus({ days: 1 }).set({ hour: 8 }).toISO());
        assert.deepEqual(starts(), []);
        assert.deepEqual(startedEvents(), [], 'nothing announced as woken');
        await skipTo(day.plus({ days: 1 }).set({ hour: 9 }));
        assert.deepEqual(localStarts('UTC'), ['Thu 08:00 UTC']);
      });
    });
  });
});
