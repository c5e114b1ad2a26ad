/**
 * Determinism: histories of an environment's whole life, and of support pods, replay
 * without a nondeterminism error. Histories recorded by earlier versions live in
 * test/fixtures/histories, so a change that would break running workflows fails here
 * first; `RECORD_HISTORIES=1 npm test` adds today's history to them.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HistoryAndWorkflowId, WorkflowHandle } from '@temporalio/client';
import { historyFromJSON, historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Context } from '@temporalio/activity';
import { Worker } from '@temporalio/worker';
import { DateTime } from 'luxon';
import {
  driftSuspectedSignal,
  environmentWorkflow,
  environmentWorkflowId,
  prolongateUpdate,
  resetSignal,
  retireSignal,
  setEnabledSignal,
  setPolicySignal,
  startUpdate,
  statusQuery,
  stopSupportPodSignal,
  stopUpdate,
  supportPodSlotUpdate,
  supportPodWorkflow,
  supportPodWorkflowId,
} from '../src/workflows';
import type { KubernetesActivities, SupportPod } from '../src/activities/contracts';
import { everyDayPolicy } from './support/policies';
import { recordingActivities } from './support/recording-activities';
import { eventually } from './support/slack';
import { useTimeSkippingEnv, uniqueTaskQueue, workflowBundle } from './support/temporal';

const FIXTURES = join(__dirname, 'fixtures', 'histories');

/** A recorded failure's stack names this checkout's directory: a fixture says only where in the repository. */
const withoutMachinePaths = (json: string): string => json.split(join(__dirname, '..')).join('/devenv-scheduler');
const MINUTE = 60_000;

async function replay(histories: HistoryAndWorkflowId[]): Promise<void> {
  const results = Worker.runReplayHistories({ workflowBundle: await workflowBundle() }, histories);
  let count = 0;
  for await (const result of results) {
    assert.equal(result.error, undefined, `${result.workflowId} does not replay: ${String(result.error)}`);
    count++;
  }
  assert.equal(count, histories.length);
}

describe('replay (determinism)', function () {
  this.timeout(120_000);
  const timeSkippingEnv = useTimeSkippingEnv();

  it("replays an environment's whole life: warnings, prolongation, scheduled stop, start, disable, reset, re-plan, commands at once, AWS re-check, leaving management", async function () {
    const env = timeSkippingEnv();
    const taskQueue = uniqueTaskQueue('replay');
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: recordingActivities(() => env.currentTimeMs()),
    });
    const namespace = `replay-${process.pid}`;
    let handle: WorkflowHandle<typeof environmentWorkflow> | undefined;
    await worker.runUntil(async () => {
      const now = DateTime.fromMillis(await env.currentTimeMs(), { zone: 'UTC' });
      handle = await env.client.workflow.start(environmentWorkflow, {
        workflowId: environmentWorkflowId(namespace),
        taskQueue,
        args: [
          {
            namespace,
            enabled: true,
            dispatchAheadMs: 10_000, // the service's default
            // After hours on purpose when the clock is late: both plans get recorded over time.
            policy: everyDayPolicy({ shutdownTime: now.plus({ hours: 2 }).toFormat('HH:mm') }),
          },
        ],
      });
      await handle.executeUpdate(prolongateUpdate, { args: [{ by: 'U1', minutes: 30 }] });
      await handle.signal(resetSignal);
      await env.sleep(5 * 60 * MINUTE); // warnings and the scheduled stop
      assert.equal((await handle.query(statusQuery)).phase, 'stopped');
      await handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] });
      await handle.signal(setEnabledSignal, { enabled: false, by: 'label' });
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U3' }] });
      await handle.signal(setEnabledSignal, { enabled: true, by: 'label' });
      await handle.executeUpdate(startUpdate, { args: [{ by: 'U4' }] });
      const { policy } = await handle.query(statusQuery);
      await handle.signal(setPolicySignal, { policy, by: 'reconciler', dispatchAheadMs: 5_000 });
      await handle.signal(setPolicySignal, { policy: { ...policy, workingDays: ['Mon'] }, by: 'reconciler' });
      await handle.executeUpdate(prolongateUpdate, { args: [{ by: 'U5', minutes: 15 }] }).catch(() => undefined); // refused on a day off
      await handle.signal(resetSignal);
      // Two people at once: one after the other, in arrival order.
      await Promise.all([
        handle.executeUpdate(stopUpdate, { args: [{ by: 'U6' }] }),
        handle.executeUpdate(startUpdate, { args: [{ by: 'U7' }] }),
      ]);
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U8' }] });
      await env.sleep(7 * 60 * MINUTE); // the AWS re-check of a stopped environment
      // The namespace stays but leaves management: restored, then retired.
      await handle.signal(retireSignal, { reason: 'unmanaged', by: 'reconciler' });
      assert.equal((await handle.result()).phase, 'running');
    });

    const history = await handle!.fetchHistory();
    assert.ok((history.events?.length ?? 0) > 30, 'a meaningful history was recorded');
    if (process.env.RECORD_HISTORIES === '1') {
      writeFileSync(
        join(FIXTURES, `environment-${new Date().toISOString().slice(0, 10)}.json`),
        withoutMachinePaths(historyToJSON(history)),
      );
    }
    await replay([{ workflowId: handle!.workflowId, history }]);
  });

  it('replays the AWS half followed: resources in transition at a stop and a start, every outcome reported, a namespace deleted while stopped', async function () {
    const env = timeSkippingEnv();
    const taskQueue = uniqueTaskQueue('replay-aws');
    const recorded = recordingActivities(() => env.currentTimeMs());
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: recorded,
    });
    const namespace = `replay-aws-${process.pid}`;
    const web = { kind: 'ec2-instance', id: 'i-web', region: 'eu-west-1' } as const;
    const db = { kind: 'rds-instance', id: 'db-1', region: 'eu-west-1', name: 'orders-db' } as const;
    let handle: WorkflowHandle<typeof environmentWorkflow> | undefined;
    await worker.runUntil(async () => {
      const now = DateTime.fromMillis(await env.currentTimeMs(), { zone: 'UTC' });
      handle = await env.client.workflow.start(environmentWorkflow, {
        workflowId: environmentWorkflowId(namespace),
        taskQueue,
        args: [{ namespace, enabled: true, policy: everyDayPolicy({ shutdownTime: now.plus({ hours: 6 }).toFormat('HH:mm') }) }],
      });
      recorded.awsStopResults.push(
        [
          { ...web, outcome: 'busy', before: 'pending', after: 'pending' },
          { ...db, outcome: 'failed', before: 'available', after: 'available', detail: 'AccessDenied' },
        ],
        [{ ...web, outcome: 'changed', before: 'running', after: 'stopping' }],
      );
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      await env.sleep(2 * MINUTE); // the follow-up stops the instance once it is up
      recorded.awsStartResults.push(
        [{ ...db, outcome: 'busy', before: 'stopping', after: 'stopping' }],
        [{ ...db, outcome: 'changed', before: 'stopped', after: 'starting' }],
      );
      await handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] });
      await env.sleep(2 * MINUTE); // the follow-up starts the database once it has stopped
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U3' }] });
      recorded.awsStatusResults.push([
        { ...db, state: 'stopped', scheduler: 'enabled', stoppedAt: new Date(await env.currentTimeMs()).toISOString() },
      ]);
      await handle.signal(retireSignal, { reason: 'namespace-deleted', by: 'reconciler' });
      assert.match((await handle.result()).lastAction?.detail ?? '', /still tagged namespace=/);
    });
    const history = await handle!.fetchHistory();
    if (process.env.RECORD_HISTORIES === '1') {
      writeFileSync(
        join(FIXTURES, `environment-aws-followed-${new Date().toISOString().slice(0, 10)}.json`),
        withoutMachinePaths(historyToJSON(history)),
      );
    }
    await replay([{ workflowId: handle!.workflowId, history }]);
  });

  it('replays drift while stopped: woken workloads put back to sleep and told once, a signalled change looked at at once, DRIFT=report, a failing look', async function () {
    const env = timeSkippingEnv();
    const taskQueue = uniqueTaskQueue('replay-drift');
    const recorded = recordingActivities(() => env.currentTimeMs());
    recorded.drift = { mode: 'restop', intervalMs: 5 * MINUTE };
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: recorded,
    });
    const namespace = `replay-drift-${process.pid}`;
    const api = { kind: 'Deployment', name: 'api', replicas: 3, created: false, by: 'argocd-controller', restopped: false };
    let handle: WorkflowHandle<typeof environmentWorkflow> | undefined;
    await worker.runUntil(async () => {
      const now = DateTime.fromMillis(await env.currentTimeMs(), { zone: 'UTC' });
      handle = await env.client.workflow.start(environmentWorkflow, {
        workflowId: environmentWorkflowId(namespace),
        taskQueue,
        args: [{ namespace, enabled: true, policy: everyDayPolicy({ shutdownTime: now.plus({ hours: 6 }).toFormat('HH:mm') }) }],
      });
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      recorded.driftResults.push([], [api], [api], [api]);
      await env.sleep(16 * MINUTE); // the first look at once, then three more: woke, and woke again
      await handle.signal(driftSuspectedSignal, { by: 'webhook' });
      await env.sleep(MINUTE);
      recorded.drift = { mode: 'report', intervalMs: 5 * MINUTE };
      recorded.driftResults.push([{ ...api, name: 'web', created: true, replicas: 1 }]);
      await env.sleep(6 * MINUTE);
      recorded.driftFailure = () => new Error('apiserver unavailable');
      await env.sleep(6 * MINUTE);
      delete recorded.driftFailure;
      await handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] });
      // Ended, so no timer of it holds the suite's test server (shared with the next test) once its worker stops.
      await handle.signal(retireSignal, { reason: 'namespace-deleted', by: 'reconciler' });
      await handle.result();
    });
    const history = await handle!.fetchHistory();
    const told = recorded.calls.filter((c) => c.event?.kind === 'drift');
    assert.equal(told.length, 2, 'each workload told once: api re-stopped, web reported');
    if (process.env.RECORD_HISTORIES === '1') {
      writeFileSync(
        join(FIXTURES, `environment-drift-${new Date().toISOString().slice(0, 10)}.json`),
        withoutMachinePaths(historyToJSON(history)),
      );
    }
    await replay([{ workflowId: handle!.workflowId, history }]);
  });

  it('replays a morning wake-up: stopped on time, woken at the wake time, stopped by hand after it, woken the next day, the wake time changed while stopped', async function () {
    const env = timeSkippingEnv();
    const taskQueue = uniqueTaskQueue('replay-wake');
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: recordingActivities(() => env.currentTimeMs()),
    });
    const namespace = `replay-wake-${process.pid}`;
    let handle: WorkflowHandle<typeof environmentWorkflow> | undefined;
    await worker.runUntil(async () => {
      const now = DateTime.fromMillis(await env.currentTimeMs(), { zone: 'UTC' });
      const policy = everyDayPolicy({ shutdownTime: now.plus({ hours: 2 }).toFormat('HH:mm'), wakeTime: '00:00' });
      handle = await env.client.workflow.start(environmentWorkflow, {
        workflowId: environmentWorkflowId(namespace),
        taskQueue,
        args: [{ namespace, enabled: true, dispatchAheadMs: 10_000, policy }],
      });
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      await env.sleep(24 * 60 * MINUTE); // woken at midnight, stopped on time
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U2' }] }).catch(() => undefined); // by hand after it, if running
      await handle.signal(setPolicySignal, { policy: { ...policy, wakeTime: '00:30' }, by: 'reconciler' });
      await env.sleep(24 * 60 * MINUTE);
      const status = await handle.query(statusQuery);
      assert.ok(status.wakeAt || status.phase === 'running', 'woken, or waiting for the next wake-up');
      // Ended, so no timer of it holds the suite's test server (shared with the next test) once its worker stops.
      await handle.signal(retireSignal, { reason: 'namespace-deleted', by: 'reconciler' });
      await handle.result();
    });
    const history = await handle!.fetchHistory();
    const patchData = (history.events ?? []).flatMap((e) =>
      (e.markerRecordedEventAttributes?.details?.['patch-data']?.payloads ?? []).map((payload) =>
        Buffer.from(payload.data ?? []).toString(),
      ),
    );
    assert.ok(
      patchData.some((data) => data.includes(`"morning-wake-up"`)),
      `the wake-up patch was recorded (patch markers: ${patchData.join(', ')})`,
    );
    if (process.env.RECORD_HISTORIES === '1') {
      writeFileSync(
        join(FIXTURES, `environment-wake-up-${new Date().toISOString().slice(0, 10)}.json`),
        withoutMachinePaths(historyToJSON(history)),
      );
    }
    await replay([{ workflowId: handle!.workflowId, history }]);
  });

  it('replays an environment with owners: warnings that name them, the owners changed while running, then removed, and a stop', async function () {
    const env = timeSkippingEnv();
    const taskQueue = uniqueTaskQueue('replay-owners');
    const recorded = recordingActivities(() => env.currentTimeMs());
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: recorded,
    });
    const namespace = `replay-owners-${process.pid}`;
    let handle: WorkflowHandle<typeof environmentWorkflow> | undefined;
    await worker.runUntil(async () => {
      const now = DateTime.fromMillis(await env.currentTimeMs(), { zone: 'UTC' });
      const policy = everyDayPolicy({ shutdownTime: now.plus({ hours: 2 }).toFormat('HH:mm'), owners: ['U1', 'S1'] });
      handle = await env.client.workflow.start(environmentWorkflow, {
        workflowId: environmentWorkflowId(namespace),
        taskQueue,
        args: [{ namespace, enabled: true, dispatchAheadMs: 10_000, policy }],
      });
      const shutdownAt = new Date((await handle.query(statusQuery)).shutdownAt!).getTime();
      await env.sleep(shutdownAt - (await env.currentTimeMs()) - 45 * MINUTE); // the first warning, if not after hours
      await handle.signal(setPolicySignal, { policy: { ...policy, owners: ['U2'] }, by: 'reconciler' });
      await env.sleep(20 * MINUTE); // the next warning names the new owner
      const { owners: _removed, ...unowned } = policy;
      await handle.signal(setPolicySignal, { policy: unowned, by: 'reconciler' });
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U3' }] });
      await handle.signal(retireSignal, { reason: 'namespace-deleted', by: 'reconciler' });
      await handle.result();
    });
    const warned = recorded.calls.filter((c) => c.event?.kind === 'warning').map((c) => (c.event as { owners?: string[] }).owners);
    assert.ok(warned.length > 0, 'warnings were sent');
    assert.ok(
      warned.every((owners) => ['U1,S1', 'U2'].includes(owners?.join(',') ?? '')),
      `each warning named the owners of its time: ${JSON.stringify(warned)}`,
    );
    const history = await handle!.fetchHistory();
    if (process.env.RECORD_HISTORIES === '1') {
      writeFileSync(
        join(FIXTURES, `environment-owners-${new Date().toISOString().slice(0, 10)}.json`),
        withoutMachinePaths(historyToJSON(history)),
      );
    }
    await replay([{ workflowId: handle!.workflowId, history }]);
  });

  it('replays starts that wait for Ready: all Ready, not Ready by the deadline, interrupted by a stop, a morning wake-up announced once Ready', async function () {
    const env = timeSkippingEnv();
    const taskQueue = uniqueTaskQueue('replay-ready');
    const recorded = recordingActivities(() => env.currentTimeMs());
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: recorded,
    });
    const namespace = `replay-ready-${process.pid}`;
    let handle: WorkflowHandle<typeof environmentWorkflow> | undefined;
    let release = () => {};
    await worker.runUntil(async () => {
      const now = DateTime.fromMillis(await env.currentTimeMs(), { zone: 'UTC' });
      const policy = everyDayPolicy({ shutdownTime: now.plus({ hours: 2 }).toFormat('HH:mm') });
      handle = await env.client.workflow.start(environmentWorkflow, {
        workflowId: environmentWorkflowId(namespace),
        taskQueue,
        args: [{ namespace, enabled: true, dispatchAheadMs: 10_000, policy }],
      });
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      recorded.readiness = 'ready';
      assert.match((await handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] })).message, /all 1 workloads Ready/);
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U3' }] });
      recorded.readiness = 'not-ready';
      assert.match((await handle.executeUpdate(startUpdate, { args: [{ by: 'U4' }] })).message, /not Ready: Deployment web/);
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U5' }] });
      recorded.readiness = 'ready';
      recorded.holdReady = new Promise((resolve) => (release = resolve));
      const starting = handle.executeUpdate(startUpdate, { args: [{ by: 'U6' }] });
      await eventually('the wait for Ready', async () =>
        recorded.calls.filter((c) => c.name === 'awaitReady').length === 3 ? true : undefined,
      );
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U7' }] });
      assert.match((await starting).message, /interrupted by the stop by U7/);
      release();
      recorded.holdReady = undefined;
      await handle.signal(setPolicySignal, { policy: { ...policy, wakeTime: '00:00' }, by: 'reconciler' });
      await env.sleep(24 * 60 * MINUTE); // woken at midnight, announced once Ready, stopped on time
      // Ended, so no timer of it holds the suite's test server (shared with the next test) once its worker stops.
      await handle.signal(retireSignal, { reason: 'namespace-deleted', by: 'reconciler' });
      await handle.result();
    });
    assert.ok(
      recorded.calls.some((c) => c.event?.kind === 'started' && c.event.wokeUp && c.event.report.readiness?.durationMs !== undefined),
      'the wake-up announced with its readiness',
    );
    const history = await handle!.fetchHistory();
    const patchData = (history.events ?? []).flatMap((e) =>
      (e.markerRecordedEventAttributes?.details?.['patch-data']?.payloads ?? []).map((payload) =>
        Buffer.from(payload.data ?? []).toString(),
      ),
    );
    assert.ok(
      patchData.some((data) => data.includes(`"start-awaits-ready"`)),
      `the readiness patch was recorded (patch markers: ${patchData.join(', ')})`,
    );
    if (process.env.RECORD_HISTORIES === '1') {
      writeFileSync(
        join(FIXTURES, `environment-ready-${new Date().toISOString().slice(0, 10)}.json`),
        withoutMachinePaths(historyToJSON(history)),
      );
    }
    await replay([{ workflowId: handle!.workflowId, history }]);
  });

  it("replays an environment's history in its memo: a prolongation, warnings, the scheduled stop, a start, a label change and a failed stop", async function () {
    const env = timeSkippingEnv();
    const taskQueue = uniqueTaskQueue('replay-history');
    const recorded = recordingActivities(() => env.currentTimeMs());
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: recorded,
    });
    const namespace = `replay-history-${process.pid}`;
    let handle: WorkflowHandle<typeof environmentWorkflow> | undefined;
    await worker.runUntil(async () => {
      const now = DateTime.fromMillis(await env.currentTimeMs(), { zone: 'UTC' });
      const policy = everyDayPolicy({ shutdownTime: now.plus({ hours: 2 }).toFormat('HH:mm') });
      handle = await env.client.workflow.start(environmentWorkflow, {
        workflowId: environmentWorkflowId(namespace),
        taskQueue,
        args: [{ namespace, enabled: true, dispatchAheadMs: 10_000, policy }],
      });
      await handle.executeUpdate(prolongateUpdate, { args: [{ by: 'U1', minutes: 30 }] }).catch(() => undefined); // refused after hours
      await env.sleep(4 * 60 * MINUTE); // warnings and the scheduled stop
      await handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] });
      await handle.signal(setEnabledSignal, { enabled: false, by: 'kubectl' });
      recorded.goneNamespaces.add(namespace);
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U3' }] }).catch(() => undefined); // its Kubernetes half fails
      await handle.signal(retireSignal, { reason: 'namespace-deleted', by: 'reconciler' });
      await handle.result();
    });
    const history = await handle!.fetchHistory();
    const events = history.events ?? [];
    const patchData = events.flatMap((e) =>
      (e.markerRecordedEventAttributes?.details?.['patch-data']?.payloads ?? []).map((payload) =>
        Buffer.from(payload.data ?? []).toString(),
      ),
    );
    assert.ok(
      patchData.some((data) => data.includes('"history-memo"')),
      `the history patch was recorded (patch markers: ${patchData.join(', ')})`,
    );
    const memoUpserts = events.filter((e) => e.workflowPropertiesModifiedEventAttributes);
    const withHistory = memoUpserts.filter((e) => e.workflowPropertiesModifiedEventAttributes?.upsertedMemo?.fields?.['history']);
    assert.ok(withHistory.length > 0 && withHistory.length < memoUpserts.length, 'the history rides only in the upserts after a new entry');
    if (process.env.RECORD_HISTORIES === '1') {
      writeFileSync(
        join(FIXTURES, `environment-history-${new Date().toISOString().slice(0, 10)}.json`),
        withoutMachinePaths(historyToJSON(history)),
      );
    }
    await replay([{ workflowId: handle!.workflowId, history }]);
  });

  it('replays starts that wait for their databases: available, one not available by the deadline, a stop during the wait, the annotation taken away', async function () {
    const env = timeSkippingEnv();
    const taskQueue = uniqueTaskQueue('replay-databases');
    const recorded = recordingActivities(() => env.currentTimeMs());
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: recorded,
    });
    const namespace = `replay-databases-${process.pid}`;
    const db = { kind: 'rds-instance', id: 'db-1', region: 'eu-west-1', name: 'orders-db' } as const;
    const dbStarted = () => recorded.awsStartResults.push([{ ...db, outcome: 'changed', before: 'stopped', after: 'starting' }]);
    let handle: WorkflowHandle<typeof environmentWorkflow> | undefined;
    await worker.runUntil(async () => {
      const now = DateTime.fromMillis(await env.currentTimeMs(), { zone: 'UTC' });
      const policy = everyDayPolicy({ shutdownTime: now.plus({ hours: 2 }).toFormat('HH:mm'), waitForDatabases: true });
      handle = await env.client.workflow.start(environmentWorkflow, {
        workflowId: environmentWorkflowId(namespace),
        taskQueue,
        args: [{ namespace, enabled: true, policy }],
      });
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      dbStarted();
      recorded.readiness = 'ready';
      assert.match((await handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] })).message, /database available after/);
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U3' }] });
      dbStarted();
      recorded.databases = { never: ['db-1'] };
      assert.match((await handle.executeUpdate(startUpdate, { args: [{ by: 'U4' }] })).message, /not available after/);
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U5' }] });
      dbStarted();
      recorded.holdDatabases = new Promise(() => {});
      const starting = handle.executeUpdate(startUpdate, { args: [{ by: 'U6' }] });
      await eventually('the wait for the databases', async () =>
        recorded.calls.filter((c) => c.name === 'awaitDatabases').length === 3 ? true : undefined,
      );
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U7' }] });
      assert.match((await starting).message, /interrupted by the stop by U7/);
      recorded.holdDatabases = undefined;
      const { waitForDatabases: _, ...without } = policy;
      await handle.signal(setPolicySignal, { policy: without, by: 'reconciler' });
      dbStarted();
      assert.doesNotMatch((await handle.executeUpdate(startUpdate, { args: [{ by: 'U8' }] })).message, /available/);
      await handle.signal(retireSignal, { reason: 'namespace-deleted', by: 'reconciler' });
      await handle.result();
    });
    const history = await handle!.fetchHistory();
    const patchData = (history.events ?? []).flatMap((e) =>
      (e.markerRecordedEventAttributes?.details?.['patch-data']?.payloads ?? []).map((payload) =>
        Buffer.from(payload.data ?? []).toString(),
      ),
    );
    assert.ok(
      patchData.some((data) => data.includes(`"databases-awaited"`)),
      `the patch was recorded (patch markers: ${patchData.join(', ')})`,
    );
    if (process.env.RECORD_HISTORIES === '1') {
      writeFileSync(
        join(FIXTURES, `environment-databases-${new Date().toISOString().slice(0, 10)}.json`),
        withoutMachinePaths(historyToJSON(history)),
      );
    }
    await replay([{ workflowId: handle!.workflowId, history }]);
  });

  it("replays support pods: one stopped by a person, one that expires, one stopped while it waits for its name, one holding its requester's slot, one refused for want of one", async function () {
    const env = timeSkippingEnv();
    const taskQueue = uniqueTaskQueue('replay-support');
    const pods = new Map<string, SupportPod>();
    const support: Pick<KubernetesActivities, 'createSupportPod' | 'deleteSupportPod'> = {
      async createSupportPod({ name, size, requestedBy }) {
        // The name still held by a terminating pod, until the workflow is stopped: waits, heartbeating, until cancelled.
        if (name.startsWith('replay-waiting')) {
          for (;;) {
            Context.current().heartbeat();
            await Context.current().sleep(100);
          }
        }
        const pod = pods.get(name) ?? {
          name,
          size,
          phase: 'Pending',
          createdAt: new Date(await env.currentTimeMs()).toISOString(),
          createdBy: requestedBy,
          uid: `uid-${name}`,
        };
        pods.set(name, pod);
        return pod;
      },
      async deleteSupportPod(name, uid) {
        if (uid !== undefined && pods.get(name)?.uid !== uid) return false;
        return pods.delete(name);
      },
    };
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: support,
    });
    const handles: WorkflowHandle<typeof supportPodWorkflow>[] = [];
    await worker.runUntil(async () => {
      const stopped = await env.client.workflow.start(supportPodWorkflow, {
        workflowId: supportPodWorkflowId(`replay-stopped-${process.pid}`),
        taskQueue,
        args: [{ name: `replay-stopped-${process.pid}`, size: 'M', requestedBy: 'U1', ttlMs: 8 * 60 * MINUTE }],
      });
      const expiring = await env.client.workflow.start(supportPodWorkflow, {
        workflowId: supportPodWorkflowId(`replay-expired-${process.pid}`),
        taskQueue,
        args: [{ name: `replay-expired-${process.pid}`, size: 'XS', requestedBy: 'U2', ttlMs: 60 * MINUTE }],
      });
      const waiting = await env.client.workflow.start(supportPodWorkflow, {
        workflowId: supportPodWorkflowId(`replay-waiting-${process.pid}`),
        taskQueue,
        args: [{ name: `replay-waiting-${process.pid}`, size: 'M', requestedBy: 'U4', ttlMs: 8 * 60 * MINUTE }],
      });
      // U6 may have one: the first holds the slot until stopped, the second finds it taken.
      const slotted = await env.client.workflow.start(supportPodWorkflow, {
        workflowId: supportPodWorkflowId(`replay-slotted-${process.pid}`),
        taskQueue,
        args: [
          {
            name: `replay-slotted-${process.pid}`,
            size: 'S',
            requestedBy: `U6-${process.pid}`,
            ttlMs: 8 * 60 * MINUTE,
            maxPerRequester: 1,
          },
        ],
      });
      assert.equal(await slotted.executeUpdate(supportPodSlotUpdate), 1);
      const refused = await env.client.workflow.start(supportPodWorkflow, {
        workflowId: supportPodWorkflowId(`replay-refused-${process.pid}`),
        taskQueue,
        args: [
          {
            name: `replay-refused-${process.pid}`,
            size: 'S',
            requestedBy: `U6-${process.pid}`,
            ttlMs: 8 * 60 * MINUTE,
            maxPerRequester: 1,
          },
        ],
      });
      assert.equal(await refused.executeUpdate(supportPodSlotUpdate), null);
      await assert.rejects(refused.result(), (err: Error) => /you have 1 support pod already/.test(String(err.cause)));
      await slotted.signal(stopSupportPodSignal, { by: 'U6' });
      assert.equal((await slotted.result()).deletedBecause, 'stopped');
      handles.push(stopped, expiring, waiting, slotted, refused);
      await new Promise((resolve) => setTimeout(resolve, 500));
      await waiting.signal(stopSupportPodSignal, { by: 'U5' });
      assert.deepEqual(await waiting.result(), { pod: null, deletedBecause: 'stopped', deletedBy: 'U5' });
      await env.sleep(10 * MINUTE);
      await stopped.signal(stopSupportPodSignal, { by: 'U3' });
      assert.equal((await stopped.result()).deletedBecause, 'stopped');
      assert.equal((await expiring.result()).deletedBecause, 'expired');
    });
    const histories = await Promise.all(
      handles.map(async (handle) => ({ workflowId: handle.workflowId, history: await handle.fetchHistory() })),
    );
    if (process.env.RECORD_HISTORIES === '1') {
      const day = new Date().toISOString().slice(0, 10);
      writeFileSync(join(FIXTURES, `support-pod-own-pod-stopped-${day}.json`), historyToJSON(histories[0]!.history));
      writeFileSync(join(FIXTURES, `support-pod-own-pod-expired-${day}.json`), historyToJSON(histories[1]!.history));
      writeFileSync(join(FIXTURES, `support-pod-own-pod-stopped-waiting-${day}.json`), historyToJSON(histories[2]!.history));
      writeFileSync(join(FIXTURES, `support-pod-slot-stopped-${day}.json`), historyToJSON(histories[3]!.history));
      writeFileSync(join(FIXTURES, `support-pod-slot-refused-${day}.json`), historyToJSON(histories[4]!.history));
    }
    await replay(histories);
  });

  it('replays a ledger of savings: a stop with requests and an instance, a drift re-stop of a workload created since, a second stop, a start, another stop, the namespace deleted', async function () {
    const env = timeSkippingEnv();
    const taskQueue = uniqueTaskQueue('replay-savings');
    const recorded = recordingActivities(() => env.currentTimeMs());
    recorded.stopRequests = { cpuMillicores: 250, memoryBytes: 512 * 1024 ** 2 };
    recorded.drift = { mode: 'restop', intervalMs: 5 * MINUTE };
    recorded.awsStopResults.push([
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
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: recorded,
    });
    const namespace = `replay-savings-${process.pid}`;
    const created = {
      kind: 'Deployment',
      name: 'new',
      replicas: 1,
      created: true,
      restopped: false,
      requests: { cpuMillicores: 100, memoryBytes: 1024 ** 2 },
    };
    let handle: WorkflowHandle<typeof environmentWorkflow> | undefined;
    await worker.runUntil(async () => {
      const now = DateTime.fromMillis(await env.currentTimeMs(), { zone: 'UTC' });
      handle = await env.client.workflow.start(environmentWorkflow, {
        workflowId: environmentWorkflowId(namespace),
        taskQueue,
        args: [{ namespace, enabled: true, policy: everyDayPolicy({ shutdownTime: now.plus({ hours: 6 }).toFormat('HH:mm') }) }],
      });
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      recorded.driftResults.push([], [created]);
      await env.sleep(11 * MINUTE);
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U2' }] });
      await env.sleep(60 * MINUTE);
      await handle.executeUpdate(startUpdate, { args: [{ by: 'U3' }] });
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U4' }] });
      await handle.signal(retireSignal, { reason: 'namespace-deleted', by: 'reconciler' });
      await handle.result();
    });
    const history = await handle!.fetchHistory();
    const events = history.events ?? [];
    const patchData = events.flatMap((e) =>
      (e.markerRecordedEventAttributes?.details?.['patch-data']?.payloads ?? []).map((payload) =>
        Buffer.from(payload.data ?? []).toString(),
      ),
    );
    assert.ok(
      patchData.some((data) => data.includes('"savings-ledger"')),
      `the savings patch was recorded (patch markers: ${patchData.join(', ')})`,
    );
    const { memo } = await handle!.describe();
    const ledger = memo?.savings as { to: string | null; cpuMillicores: number; instances: Record<string, number> }[];
    assert.equal(ledger.length, 2, 'one sleep extended by the re-stop and the second stop, and one ended by the retirement');
    assert.equal(ledger[0]!.cpuMillicores, 2 * 250 + 100);
    assert.deepEqual(ledger[0]!.instances, { 'ec2 t3.medium': 1 });
    assert.ok(ledger.every((sleep) => sleep.to !== null));
    if (process.env.RECORD_HISTORIES === '1') {
      writeFileSync(
        join(FIXTURES, `environment-savings-${new Date().toISOString().slice(0, 10)}.json`),
        withoutMachinePaths(historyToJSON(history)),
      );
    }
    await replay([{ workflowId: handle!.workflowId, history }]);
  });

  it('replays every history recorded by earlier versions', async function () {
    const files = readdirSync(FIXTURES).filter((file) => file.endsWith('.json'));
    assert.ok(files.length > 0, `no recorded histories in ${FIXTURES}`);
    await replay(
      files.map((file) => ({ workflowId: file, history: historyFromJSON(JSON.parse(readFileSync(join(FIXTURES, file), 'utf8'))) })),
    );
  });
});
