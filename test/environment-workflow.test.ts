/**
 * The environment workflow on the real time-skipping test server: hours pass in
 * milliseconds, so warnings, shutdowns and after-hours windows are checked at their
 * real offsets.
 */
import assert from 'node:assert/strict';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
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
import type { EnvironmentPolicy } from '../src/workflows/shutdown-policy';
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
      assert.equal(stops[0]!.timing, undefined, 'nothing to hold: dispatched at the instant');
      const status = await handle.query(statusQuery);
      assert.equal(status.phase, 'stopped');
      assert.equal(status.shutdownAt, null);
      assert.equal(status.lastAction?.action, 'scheduled-stop');
      assert.equal(recorded.calls.at(-1)?.event?.kind, 'stopped');
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
      assert.ok(stops[0]!.atMs >= instantMs - 10_000 && stops[0]!.atMs < instantMs, `handed over 10 s ahead, not at ${new Date(stops[0]!.atMs).toISOString()}`);
      assert.deepEqual(stops[0]!.timing, { notBefore: shutdownAt });
      assert.deepEqual(callsNamed('stopAwsResources').map((c) => c.timing), [{ notBefore: shutdownAt }]);
      assert.equal((await handle.query(statusQuery)).phase, 'stopping');
      await expectRejected(handle.executeUpdate(prolongateUpdate, { args: [{ by: 'U1', minutes: 30 }] }), /is stopping: only a running environment can be prolongated/);

      finishStop();
      await env.sleep(MINUTE);
      const status = await handle.query(statusQuery);
      assert.deepEqual([status.phase, status.shutdownAt, status.prolongedMinutes], ['stopped', null, 0]);
      assert.equal(callsNamed('stopNamespace').length, 1);
    });
  });

  it('setPolicy can hand an environment the service\'s dispatch-ahead: its next stop goes out ahead, and its status records no action', async function () {
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
      assert.ok(stops[0]!.atMs >= instantMs - 10_000 && stops[0]!.atMs < instantMs, `handed over 10 s ahead, not at ${new Date(stops[0]!.atMs).toISOString()}`);
      assert.deepEqual(stops[0]!.timing, { notBefore: status.shutdownAt });
      assert.equal((await handle.query(statusQuery)).phase, 'stopped');
    });
  });

  it('prolongate moves the shutdown and re-arms the warnings', async function () {
    const policy = await policyEndingIn(3);
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy);
      const originalShutdown = new Date((await handle.query(statusQuery)).shutdownAt!).getTime();
      await env.sleep(originalShutdown - (await env.currentTimeMs()) - 50 * MINUTE); // the 60-minute warning is out
      assert.deepEqual(warnings(recorded.calls).map((w) => w.offset), [60]);

      const reply = await handle.executeUpdate(prolongateUpdate, { args: [{ by: 'U123', minutes: 90 }] });
      assert.equal(new Date(reply.shutdownAt!).getTime(), originalShutdown + 90 * MINUTE);
      assert.match(reply.message, /prolongated by 1h30m by U123/);

      await env.sleep(originalShutdown + 90 * MINUTE - (await env.currentTimeMs()) + 5 * MINUTE);
      assert.deepEqual(warnings(recorded.calls).map((w) => w.offset), [60, 60, 30, 15]);
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
      assert.deepEqual(await handle.query(statusQuery), stopped);
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
        { kind: 'rds-instance', id: 'db-replica', region: 'eu-west-1', outcome: 'unsupported', before: 'available', after: 'available', detail: 'read replica' },
      ]);
      const stopped = await handle.executeUpdate(stopUpdate, { args: [{ by: 'U5' }] });
      assert.match(stopped.message, /1 workloads scaled to 0; AWS: 1 stopping; not possible: rds-instance db-replica \(unsupported: read replica\)\.$/);
      assert.equal(callsNamed('stopAwsResources').length, 1);

      // Days later AWS has started the DB again (after 7 days stopped it does so by itself).
      recorded.awsStopResults.push([], [{ ...rds, outcome: 'changed', before: 'available', after: 'stopping' }]);
      await env.sleep(13 * HOUR);
      const checks = callsNamed('stopAwsResources');
      assert.equal(checks.length, 3, 'checked every 6 hours while stopped');
      assert.ok(checks[2]!.atMs - checks[1]!.atMs >= 6 * HOUR - MINUTE);
      const status = await handle.query(statusQuery);
      assert.equal(status.phase, 'stopped');
      assert.match(status.lastAction?.detail ?? '', /stopped again after AWS started it: orders-db/);
      assert.equal(callsNamed('stopNamespace').length, 1, 'Kubernetes is not touched by the AWS re-check');

      await handle.executeUpdate(startUpdate, { args: [{ by: 'U5' }] });
      await env.sleep(50 * MINUTE);
      assert.equal(callsNamed('stopAwsResources').length, 3, 'no re-checks once running');
    });
  });

  it('reset clears a prolongation and goes back to the default shutdown', async function () {
    const policy = await policyEndingIn(3);
    await worker.runUntil(async () => {
      const handle = await startEnvironment(policy);
      const defaultShutdown = (await handle.query(statusQuery)).shutdownAt;
      await handle.executeUpdate(prolongateUpdate, { args: [{ by: 'U1', minutes: 120 }] });
      assert.equal((await handle.query(statusQuery)).prolongedMinutes, 120);

      await handle.signal(resetSignal);
      const status = await handle.query(statusQuery);
      assert.equal(status.prolongedMinutes, 0);
      assert.equal(status.shutdownAt, defaultShutdown);
      assert.equal(status.lastAction?.action, 'reset');
    });
  });

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
});
