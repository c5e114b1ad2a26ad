/**
 * Fault tests: things break in the middle of a stop, and no replica count is lost.
 * - The worker process is SIGKILLed while stopping a 200-workload namespace; a new worker
 *   finishes the stop, every saved count is right, and a later start restores them all.
 * - The worker process is SIGTERMed (a rolling deploy) while stopping one: within its
 *   shutdown grace it finishes the stop itself, and nothing is retried elsewhere.
 * - The kube-apiserver becomes unreachable in the middle of a stop (a TCP proxy in front
 *   of it drops every connection); the activity fails, Temporal retries it, and it
 *   completes when the apiserver is back, without saving a 0 over a real count.
 * - The Temporal dev server is restarted (same database file) while environments wait for
 *   their shutdown: after the restart every warning and every shutdown still happens, once.
 * Real Temporal dev server, real kube-apiserver, real workflows and activities.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { NativeConnection, Worker } from '@temporalio/worker';
import { DateTime } from 'luxon';
import { createKubernetesActivities } from '../src/activities/kubernetes';
import { ORIGINAL_REPLICAS } from '../src/activities/kubernetes/annotations';
import { createLogger } from '../src/logger';
import { startDevServer } from '../src/temporal/dev-server';
import { registerSearchAttributes } from '../src/temporal/setup';
import { environmentWorkflow, environmentWorkflowId, startUpdate, stopUpdate } from '../src/workflows';
import { startCuttableProxy, throughProxy } from './support/cuttable-proxy';
import { testCluster, type TestCluster } from './support/kube';
import { morningPolicy, policyShuttingDownAt } from './support/policies';
import { recordingActivities } from './support/recording-activities';
import { eventually } from './support/slack';
import { devServerEnv, uniqueTaskQueue, workflowBundle } from './support/temporal';
import { freePort } from './support/service';

describe('faults in the middle of a stop (dev server, real kube-apiserver)', function () {
  this.timeout(240_000);
  let cluster: TestCluster;
  let apps: AppsV1Api;
  let core: CoreV1Api;
  let env: TestWorkflowEnvironment;
  let counter = 0;

  before(async function () {
    this.timeout(300_000);
    cluster = await testCluster();
    apps = cluster.kubeConfig.makeApiClient(AppsV1Api);
    core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    env = await devServerEnv();
  });

  /** A namespace with `deployments` Deployments and `statefulSets` StatefulSets, replicas 1..4; returns the expected counts. */
  async function namespaceWith(deployments: number, statefulSets: number): Promise<{ name: string; expected: Map<string, number> }> {
    const name = `fault-${process.pid % 10000}-${++counter}`;
    await core.createNamespace({ body: { metadata: { name } } });
    const expected = new Map<string, number>();
    const spec = (app: string, replicas: number) => ({
      replicas,
      selector: { matchLabels: { app } },
      template: { metadata: { labels: { app } }, spec: { containers: [{ name: 'app', image: 'busybox:1.36' }] } },
    });
    const creations: Promise<unknown>[] = [];
    for (let i = 0; i < deployments + statefulSets; i++) {
      const replicas = (i % 4) + 1;
      const workload = i < deployments ? `web-${i}` : `db-${i}`;
      expected.set(workload, replicas);
      creations.push(
        i < deployments
          ? apps.createNamespacedDeployment({ namespace: name, body: { metadata: { name: workload }, spec: spec(workload, replicas) } })
          : apps.createNamespacedStatefulSet({
              namespace: name,
              body: { metadata: { name: workload }, spec: { ...spec(workload, replicas), serviceName: workload } },
            }),
      );
      if (creations.length >= 20) await Promise.all(creations.splice(0));
    }
    await Promise.all(creations);
    return { name, expected };
  }

  /** Replicas and saved counts of every workload, by name. */
  async function snapshot(namespace: string): Promise<Map<string, { replicas: number; saved: string | undefined }>> {
    const [deployments, statefulSets] = await Promise.all([
      apps.listNamespacedDeployment({ namespace }),
      apps.listNamespacedStatefulSet({ namespace }),
    ]);
    return new Map(
      [...deployments.items, ...statefulSets.items].map((w) => [
        w.metadata!.name!,
        { replicas: w.spec!.replicas!, saved: w.metadata?.annotations?.[ORIGINAL_REPLICAS] },
      ]),
    );
  }

  function assertStopped(state: Map<string, { replicas: number; saved: string | undefined }>, expected: Map<string, number>): void {
    assert.equal(state.size, expected.size);
    for (const [workload, replicas] of expected) {
      assert.deepEqual(state.get(workload), { replicas: 0, saved: String(replicas) }, `${workload} after the stop`);
    }
  }

  function assertRestored(state: Map<string, { replicas: number; saved: string | undefined }>, expected: Map<string, number>): void {
    for (const [workload, replicas] of expected) {
      assert.deepEqual(state.get(workload), { replicas, saved: undefined }, `${workload} after the start`);
    }
  }

  async function startEnvironment(namespace: string, taskQueue: string) {
    return env.client.workflow.start(environmentWorkflow, {
      workflowId: environmentWorkflowId(namespace),
      taskQueue,
      args: [{ namespace, policy: morningPolicy(), enabled: true }],
    });
  }

  /** A worker process with the real Kubernetes activities, one workload at a time; `settings` are environment variables of src/config.ts. */
  async function spawnWorker(taskQueue: string, settings: NodeJS.ProcessEnv = {}): Promise<ChildProcess> {
    const child = spawn(
      process.execPath,
      [
        '-r',
        'ts-node/register/transpile-only',
        join(__dirname, 'support', 'kube-worker-process.ts'),
        env.address,
        taskQueue,
        cluster.kubeConfigPath,
        '1',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...settings } },
    );
    await new Promise<void>((resolve, reject) => {
      const early = (code: number | null) => reject(new Error(`worker exited early with ${code}`));
      child.once('exit', early);
      child.stdout!.on('data', (chunk: Buffer) => {
        if (!chunk.toString().includes('worker ready')) return;
        child.off('exit', early);
        resolve();
      });
    });
    return child;
  }

  it('a worker SIGKILLed while stopping 200 workloads: a new worker finishes, every count is kept, start restores all', async function () {
    const { name, expected } = await namespaceWith(150, 50);
    const taskQueue = uniqueTaskQueue('fault-kill');
    const first = await spawnWorker(taskQueue);
    const handle = await startEnvironment(name, taskQueue);
    const stopped = handle.executeUpdate(stopUpdate, { args: [{ by: 'U-fault' }] });

    // Kill it once part of the namespace is saved and scaled, well before the end.
    await eventually(
      'the stop to be under way',
      async () => {
        const scaled = [...(await snapshot(name)).values()].filter((w) => w.replicas === 0).length;
        return scaled >= 20 ? scaled : undefined;
      },
      60_000,
    );
    first.kill('SIGKILL');
    await once(first, 'exit');
    const midway = await snapshot(name);
    const scaledAtKill = [...midway.values()].filter((w) => w.replicas === 0).length;
    assert.ok(scaledAtKill < expected.size, `the kill came too late (${scaledAtKill} of ${expected.size} done)`);
    for (const [workload, state] of midway) {
      if (state.saved !== undefined) assert.equal(state.saved, String(expected.get(workload)), `${workload}: saved count at the kill`);
    }

    // The stop activity is retried after its heartbeat timeout (1 minute) on the new worker.
    const second = await spawnWorker(taskQueue);
    try {
      const result = await stopped;
      assert.equal(result.phase, 'stopped');
      assertStopped(await snapshot(name), expected);
      const restarted = await handle.executeUpdate(startUpdate, { args: [{ by: 'U-fault' }] });
      assert.equal(restarted.phase, 'running');
      assertRestored(await snapshot(name), expected);
    } finally {
      second.kill('SIGKILL');
      await handle.terminate('test over').catch(() => undefined);
    }
  });

  it('a worker SIGTERMed while stopping 200 workloads finishes the stop itself within its shutdown grace: every count saved, nothing retried elsewhere', async function () {
    const { name, expected } = await namespaceWith(150, 50);
    const taskQueue = uniqueTaskQueue('fault-term');
    const first = await spawnWorker(taskQueue, { WORKER_SHUTDOWN_GRACE_SECONDS: '90' });
    const handle = await startEnvironment(name, taskQueue);
    const stopped = handle.executeUpdate(stopUpdate, { args: [{ by: 'U-fault' }] });
    let second: ChildProcess | undefined;
    try {
      const scaledAtTerm = await eventually(
        'the stop to be under way',
        async () => {
          const scaled = [...(await snapshot(name)).values()].filter((w) => w.replicas === 0).length;
          return scaled >= 20 ? scaled : undefined;
        },
        60_000,
      );
      first.kill('SIGTERM');
      assert.ok(scaledAtTerm < expected.size - 50, `SIGTERM came too late (${scaledAtTerm} of ${expected.size} done)`);
      const [code] = (await once(first, 'exit')) as [number | null];
      // It exits once its stop is done, not before, and not by being cut off.
      assert.equal(code, 0);
      assertStopped(await snapshot(name), expected);

      // Another worker takes the workflow on from there (the first no longer polls for workflow tasks).
      second = await spawnWorker(taskQueue);
      const result = await stopped;
      assert.equal(result.phase, 'stopped');
      assert.equal(result.report?.changed.length, expected.size, 'one attempt changed every workload');
      const events = (await handle.fetchHistory()).events!;
      const scheduled = events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'stopNamespace');
      assert.equal(scheduled.length, 1);
      const started = events.filter(
        (e) => e.activityTaskStartedEventAttributes?.scheduledEventId?.toString() === scheduled[0]!.eventId!.toString(),
      );
      assert.deepEqual(
        started.map((e) => [e.activityTaskStartedEventAttributes!.attempt, e.activityTaskStartedEventAttributes!.identity]),
        [[1, `${first.pid}@${hostname()}`]],
        'the first attempt, on the SIGTERMed worker',
      );
      assert.equal(
        events.filter((e) => e.activityTaskFailedEventAttributes || e.activityTaskTimedOutEventAttributes).length,
        0,
        'no attempt failed',
      );
    } finally {
      if (first.exitCode === null) first.kill('SIGKILL');
      second?.kill('SIGKILL');
      await handle.terminate('test over').catch(() => undefined);
    }
  });

  it('the apiserver unreachable mid-stop: Temporal retries the activity and it completes when it is back, nothing saved twice', async function () {
    const { name, expected } = await namespaceWith(40, 10);
    const proxy = await startCuttableProxy(new URL(cluster.server));
    const kubeConfig = throughProxy(cluster.kubeConfig, proxy.url);
    const taskQueue = uniqueTaskQueue('fault-apiserver');
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: {
        ...recordingActivities(async () => Date.now()),
        ...createKubernetesActivities({ kubeConfig, dryRun: false, logger: createLogger('silent'), concurrency: 1 }),
      },
    });
    const handle = await startEnvironment(name, taskQueue);
    try {
      await worker.runUntil(async () => {
        const stopped = handle.executeUpdate(stopUpdate, { args: [{ by: 'U-fault' }] });
        await eventually(
          'the stop to be under way',
          async () => ([...(await snapshot(name)).values()].some((w) => w.replicas === 0) ? true : undefined),
          30_000,
        );
        proxy.cut();
        await new Promise((resolve) => setTimeout(resolve, 4000));
        const during = await snapshot(name);
        assert.ok(
          [...during.values()].some((w) => w.replicas !== 0),
          'the outage came before the stop was done',
        );
        assert.ok(proxy.refused > 0, 'the activity kept trying while the apiserver was away');
        proxy.restore();
        const result = await stopped;
        assert.equal(result.phase, 'stopped');
      });
      assertStopped(await snapshot(name), expected);
      const history = await handle.fetchHistory();
      const failedAttempts = history.events!.filter(
        (e) => e.activityTaskFailedEventAttributes || e.activityTaskTimedOutEventAttributes,
      ).length;
      const retried = history.events!.some((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1);
      assert.ok(failedAttempts > 0 || retried, 'the stop activity was retried by Temporal');
    } finally {
      proxy.close();
      await handle.terminate('test over').catch(() => undefined);
    }
  });

  it('the Temporal server restarted while environments wait: every timer still fires, once', async function () {
    const dbFile = join(mkdtempSync(join(tmpdir(), 'devenv-restart-')), 'temporal.db');
    const [port, uiPort] = [await freePort(), await freePort()];
    const settings = { port, uiPort, dbFile, namespace: 'default' };
    let server = await startDevServer(settings);
    const taskQueue = uniqueTaskQueue('fault-restart');
    const recorded = recordingActivities(async () => Date.now());
    const worker = await Worker.create({
      connection: await NativeConnection.connect({ address: server.address }),
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: recorded,
    });
    const running = worker.run();
    // Shutdown at the next whole minute but one, a warning one minute before it.
    const shutdown = DateTime.utc().plus({ minutes: 2 }).startOf('minute');
    const policy = policyShuttingDownAt(shutdown.toJSDate(), { warningOffsetsMinutes: [1] });
    const namespaces = ['a', 'b', 'c', 'd', 'e'].map((n) => `restart-${process.pid % 10000}-${n}`);
    try {
      const connection = await Connection.connect({ address: server.address });
      await registerSearchAttributes(connection, 'default');
      const client = new Client({ connection });
      for (const namespace of namespaces) {
        await client.workflow.start(environmentWorkflow, {
          workflowId: environmentWorkflowId(namespace),
          taskQueue,
          args: [{ namespace, policy, enabled: true }],
        });
      }
      await connection.close();

      await server.stop();
      await new Promise((resolve) => setTimeout(resolve, 2000));
      server = await startDevServer(settings);

      await eventually(
        'every environment to stop after the restart',
        () => (recorded.calls.filter((c) => c.name === 'stopNamespace').length >= namespaces.length ? true : undefined),
        shutdown.diffNow().toMillis() + 60_000,
      );
      for (const namespace of namespaces) {
        const calls = recorded.calls.filter((c) => c.namespace === namespace);
        assert.equal(calls.filter((c) => c.name === 'stopNamespace').length, 1, `${namespace}: one stop`);
        assert.equal(calls.filter((c) => c.event?.kind === 'warning').length, 1, `${namespace}: one warning`);
        const stop = calls.find((c) => c.name === 'stopNamespace')!;
        assert.ok(stop.atMs >= shutdown.toMillis(), `${namespace}: not before its shutdown`);
      }
    } finally {
      worker.shutdown();
      await running.catch(() => undefined);
      await server.stop();
    }
  });
});
