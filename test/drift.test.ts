/**
 * Drift while stopped, on a control plane with real controllers (kube-controller-manager,
 * kwok nodes) and the environment workflow on the dev server with the real Kubernetes
 * activities: what woke a stopped environment is put back to sleep within the interval
 * (a short one here), the channel (recording notify: Slack cannot run here) is told once
 * with the field manager that woke it, and the next start restores the count it was woken to.
 */
import assert from 'node:assert/strict';
import { AppsV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment, type TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { DriftMode, EnvironmentEvent } from '../src/activities/contracts';
import { createEventRecorder, withEvents } from '../src/activities/events';
import { startDriftWatch } from '../src/client/drift-watch';
import { createKubernetesActivities } from '../src/activities/kubernetes';
import { EXCLUDE, ORIGINAL_REPLICAS } from '../src/activities/kubernetes/annotations';
import { mergePatch } from '../src/activities/kubernetes/apiserver';
import { managerOf } from '../src/activities/kubernetes/workload-kind';
import { createLogger } from '../src/logger';
import {
  HISTORY_MEMO,
  environmentWorkflow,
  environmentWorkflowId,
  startUpdate,
  statusQuery,
  stopUpdate,
  type EnvironmentStatus,
  type HistoryEntry,
} from '../src/workflows';
import pino from 'pino';
import { startCuttableProxy, throughProxy } from './support/cuttable-proxy';
import { testClusterWithControllers, type TestCluster } from './support/kube';
import { morningPolicy } from './support/policies';
import { recordingActivities } from './support/recording-activities';
import { eventually } from './support/slack';
import { devServerEnv, uniqueTaskQueue, workflowBundle } from './support/temporal';

const INTERVAL_MS = 2_000;

describe('who woke a workload (managedFields)', function () {
  const entry = (manager: string, time: string, fields: object, subresource?: string) => ({
    manager,
    time: new Date(time),
    operation: 'Update',
    fieldsType: 'FieldsV1',
    fieldsV1: fields,
    ...(subresource ? { subresource } : {}),
  });
  const replicasField = { 'f:spec': { 'f:replicas': {} } };

  it('the latest manager of spec.replicas but the service; the status and other fields name nobody', function () {
    const metadata = {
      managedFields: [
        entry('helm', '2026-12-01T10:00:00Z', replicasField),
        entry('gitops-bot', '2026-12-01T19:05:00Z', replicasField, 'scale'),
        entry('devenv-scheduler', '2026-12-01T19:06:00Z', replicasField),
        entry('kube-controller-manager', '2026-12-01T19:07:00Z', { 'f:status': {} }, 'status'),
        entry('labeller', '2026-12-01T19:08:00Z', { 'f:metadata': { 'f:labels': {} } }),
      ],
    };
    assert.equal(managerOf(metadata, 'replicas', 'devenv-scheduler'), 'gitops-bot');
    assert.equal(
      managerOf({ managedFields: [metadata.managedFields[4]!] }, 'replicas', 'devenv-scheduler'),
      undefined,
      'a label change woke nothing',
    );
  });

  it("a manager's name is the client's own: control characters go and it is bounded", function () {
    const metadata = { managedFields: [entry(`evil\n\u001b[31mred${'x'.repeat(200)}`, '2026-12-01T19:05:00Z', replicasField)] };
    const named = managerOf(metadata, 'replicas', 'devenv-scheduler')!;
    assert.ok(![...named].some((c) => c.charCodeAt(0) < 0x20), JSON.stringify(named));
    assert.ok(named.length <= 65, `${named.length} characters`);
    assert.match(named, /^evil \[31mredx+…$/);
  });
});

describe('drift while stopped (real controllers, dev server)', function () {
  this.timeout(180_000);
  let cluster: TestCluster;
  let apps: AppsV1Api;
  let core: CoreV1Api;
  let env: TestWorkflowEnvironment;
  let counter = 0;

  before(async function () {
    this.timeout(300_000);
    cluster = await testClusterWithControllers();
    apps = cluster.kubeConfig.makeApiClient(AppsV1Api);
    core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    env = await devServerEnv();
    await workflowBundle();
  });

  const spec = (app: string, replicas: number) => ({
    replicas,
    selector: { matchLabels: { app } },
    template: { metadata: { labels: { app } }, spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] } },
  });

  async function namespaceWith(workloads: Record<string, number>, annotations: Record<string, Record<string, string>> = {}) {
    const namespace = `drift-${process.pid % 10000}-${++counter}`;
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    for (const [name, replicas] of Object.entries(workloads)) {
      await apps.createNamespacedDeployment({
        namespace,
        body: { metadata: { name, ...(annotations[name] ? { annotations: annotations[name] } : {}) }, spec: spec(name, replicas) },
      });
    }
    return namespace;
  }

  /** `kubectl scale`: the scale subresource, under a field manager of its own. */
  const scale = (namespace: string, name: string, replicas: number, fieldManager: string) =>
    apps.patchNamespacedDeploymentScale({ namespace, name, body: { spec: { replicas } }, fieldManager }, mergePatch);

  async function replicas(namespace: string, name: string): Promise<{ replicas: number; saved?: string }> {
    const d = await apps.readNamespacedDeployment({ namespace, name });
    const saved = d.metadata?.annotations?.[ORIGINAL_REPLICAS];
    return { replicas: d.spec?.replicas ?? 1, ...(saved !== undefined ? { saved } : {}) };
  }

  /**
   * An environment run by a worker with the real Kubernetes activities (DRIFT=`mode`, a
   * short interval); `failing` makes its drift looks fail as a refusing apiserver would.
   */
  async function environment(namespace: string, mode: DriftMode, kubeConfig: KubeConfig = cluster.kubeConfig, intervalMs = INTERVAL_MS) {
    const taskQueue = uniqueTaskQueue('drift');
    const recorded = recordingActivities(async () => Date.now());
    const kubernetes = createKubernetesActivities({
      kubeConfig,
      dryRun: false,
      logger: createLogger('silent'),
      drift: { mode, intervalMs },
    });
    /** `failing`: looks fail; `hold`: a look (the read, or the re-stop under the lock) waits for it after being reached, while `reached` says so. */
    const control: {
      failing: boolean;
      hold?: { restop: boolean; until: Promise<void>; reached: () => void };
      looks: number;
    } = { failing: false, looks: 0 };
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: {
        ...recorded,
        // Real Events on the namespace, as the worker records them, before the recording notify.
        notify: withEvents(recorded, createEventRecorder(kubeConfig, createLogger('silent'))).notify,
        stopNamespace: kubernetes.stopNamespace,
        startNamespace: kubernetes.startNamespace,
        checkDrift: async (...args: Parameters<typeof kubernetes.checkDrift>) => {
          control.looks++;
          if (control.failing) throw Object.assign(new Error('the server is currently unable to handle the request'), { code: 503 });
          const hold = control.hold;
          if (hold && hold.restop === args[1].restop) {
            hold.reached();
            await hold.until;
            // The re-stop reads afresh: what it was held behind is what it sees.
          }
          return kubernetes.checkDrift(...args);
        },
      },
    });
    const running = worker.run();
    const handle = await env.client.workflow.start(environmentWorkflow, {
      workflowId: environmentWorkflowId(namespace),
      taskQueue,
      args: [{ namespace, policy: morningPolicy(), enabled: true }],
    });
    const told = () =>
      recorded.calls.flatMap((c) => (c.event?.kind === 'drift' ? [c.event as Extract<EnvironmentEvent, { kind: 'drift' }>] : []));
    const looks = () => control.looks;
    const close = async () => {
      await handle.terminate().catch(() => undefined);
      worker.shutdown();
      await running;
    };
    return { handle, told, looks, control, close };
  }

  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('scaled up by another field manager after the stop: back to 0 within the interval, told once who did it, restored to the new count on start', async function () {
    const namespace = await namespaceWith({ api: 2, keep: 1 }, { keep: { [EXCLUDE]: 'true' } });
    const e = await environment(namespace, 'restop');
    try {
      await e.handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      assert.deepEqual(await replicas(namespace, 'api'), { replicas: 0, saved: '2' });
      await scale(namespace, 'api', 5, 'gitops-bot');
      await scale(namespace, 'keep', 3, 'gitops-bot'); // excluded: never touched
      const woke = Date.now();
      await eventually('api put back to sleep', async () => ((await replicas(namespace, 'api')).replicas === 0 ? true : undefined), 15_000);
      assert.ok(Date.now() - woke < 3 * INTERVAL_MS + 2_000, `asleep again ${Date.now() - woke} ms after it woke`);
      assert.deepEqual(await replicas(namespace, 'api'), { replicas: 0, saved: '5' }, 'the count it was woken to is saved');
      // A GitOps controller's self-heal wakes it again: put back to sleep again, told no more.
      await scale(namespace, 'api', 5, 'gitops-bot');
      await eventually('api asleep again', async () => ((await replicas(namespace, 'api')).replicas === 0 ? true : undefined), 15_000);
      // A Deployment created while stopped sleeps too.
      await apps.createNamespacedDeployment({ namespace, body: { metadata: { name: 'late' }, spec: spec('late', 2) } });
      await eventually('late put to sleep', async () => ((await replicas(namespace, 'late')).replicas === 0 ? true : undefined), 15_000);
      await pause(3 * INTERVAL_MS);
      const told = e.told();
      assert.equal(told.length, 2, JSON.stringify(told));
      const said = told.flatMap((t) => t.workloads.map((w) => `${w.kind} ${w.name} ${w.replicas} ${w.created ? 'created' : 'scaled'}`));
      assert.deepEqual(said, ['Deployment api 5 scaled', 'Deployment late 2 created']);
      assert.equal(told[0]!.workloads[0]!.by, 'gitops-bot', 'the manager of spec.replicas is named');
      assert.ok(told[1]!.workloads[0]!.by, 'the creator is named');
      assert.equal((await replicas(namespace, 'keep')).replicas, 3, 'an excluded workload is never touched');
      // `kubectl get events -n <ns>` tells the same story, once per announcement.
      const events = await core.listNamespacedEvent({ namespace, fieldSelector: 'source=devenv-scheduler' });
      const drifts = events.items.filter((ev) => ev.reason === 'DriftRestopped');
      assert.equal(drifts.length, 2, JSON.stringify(events.items.map((ev) => ev.reason)));
      assert.ok(
        drifts.some((ev) => ev.type === 'Warning' && /Deployment api scaled to 5 by field manager gitops-bot/.test(ev.message ?? '')),
        JSON.stringify(drifts.map((ev) => ev.message)),
      );
      assert.equal((await e.handle.query(statusQuery)).phase, 'stopped');
      const entries = ((await e.handle.describe()).memo?.[HISTORY_MEMO] ?? []) as HistoryEntry[];
      assert.deepEqual(
        entries.filter((entry) => entry.action === 'drift').map((entry) => entry.detail),
        ['put back to sleep after they woke: Deployment api', 'put back to sleep after they woke: Deployment late'],
      );

      await e.handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] });
      assert.deepEqual(await replicas(namespace, 'api'), { replicas: 5 });
      assert.deepEqual(await replicas(namespace, 'late'), { replicas: 2 });
      const looks = e.looks();
      await pause(2 * INTERVAL_MS);
      assert.equal(e.looks(), looks, 'no drift looks once running');
    } finally {
      await e.close();
    }
  });

  it('DRIFT=report: only tells, once', async function () {
    const namespace = await namespaceWith({ api: 2 });
    const e = await environment(namespace, 'report');
    try {
      await e.handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      await scale(namespace, 'api', 4, 'ci-deploy');
      await eventually('told', () => (e.told().length > 0 ? true : undefined), 15_000);
      await pause(3 * INTERVAL_MS);
      assert.deepEqual(await replicas(namespace, 'api'), { replicas: 4, saved: '2' }, 'left awake');
      assert.equal(e.told().length, 1);
      assert.equal(e.told()[0]!.mode, 'report');
      assert.equal(e.told()[0]!.workloads[0]!.by, 'ci-deploy');
      // The story says so too, read from the server alone; the last action is still the stop.
      const story = await eventually('the look in the history', async () => {
        const memo = (await e.handle.describe()).memo;
        const entries = (memo?.[HISTORY_MEMO] ?? []) as HistoryEntry[];
        return entries.some((entry) => entry.action === 'drift') ? { entries, status: memo?.status as EnvironmentStatus } : undefined;
      });
      assert.deepEqual(
        story.entries.filter((entry) => entry.action === 'drift').map((entry) => [entry.by, entry.detail]),
        [['scheduler', 'woke while stopped, left running (reported only): Deployment api']],
      );
      assert.equal(story.status.lastAction?.action, 'stop');
    } finally {
      await e.close();
    }
  });

  /** Holds the next look of the given phase; resolves once it is held, with the release. */
  function holdLook(control: { hold?: unknown }, restop: boolean): Promise<() => void> {
    return new Promise((held) => {
      let release!: () => void;
      const until = new Promise<void>((resolve) => (release = resolve));
      (control as { hold?: { restop: boolean; until: Promise<void>; reached: () => void } }).hold = {
        restop,
        until,
        reached: () => held(release),
      };
    });
  }

  it('a start while a look is reading: the look puts nothing back to sleep afterwards, the environment runs at the count it was woken to', async function () {
    const namespace = await namespaceWith({ api: 2 });
    const e = await environment(namespace, 'restop');
    try {
      await e.handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      const reading = holdLook(e.control, false);
      await scale(namespace, 'api', 6, 'gitops-bot');
      const release = await reading;
      await e.handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] });
      delete e.control.hold;
      release(); // the look read before the start: it must not act on it now
      await pause(3 * INTERVAL_MS);
      assert.equal((await e.handle.query(statusQuery)).phase, 'running');
      assert.deepEqual(await replicas(namespace, 'api'), { replicas: 6 }, 'running at the count it was woken to, nothing saved');
      assert.equal(e.told().length, 0);
    } finally {
      await e.close();
    }
  });

  it('a start while a look puts a workload back to sleep: the start waits for it, then restores the count it was woken to', async function () {
    const namespace = await namespaceWith({ api: 2 });
    const e = await environment(namespace, 'restop');
    try {
      await e.handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      const restopping = holdLook(e.control, true);
      await scale(namespace, 'api', 6, 'gitops-bot');
      const release = await restopping; // the look holds the environment's lock now
      const started = e.handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] });
      await pause(1_000);
      delete e.control.hold;
      release();
      const result = await started;
      assert.equal(result.phase, 'running');
      assert.equal((await e.handle.query(statusQuery)).phase, 'running');
      assert.deepEqual(await replicas(namespace, 'api'), { replicas: 6 }, 'restored to the count it was woken to');
      await pause(2 * INTERVAL_MS);
      assert.deepEqual(await replicas(namespace, 'api'), { replicas: 6 }, 'and left running');
    } finally {
      await e.close();
    }
  });

  it("the worker's watch: a workload woken behind a stop is back asleep within seconds, long before the next interval; one created is left to the timed look", async function () {
    const namespace = await namespaceWith({ api: 2, web: 1 });
    const e = await environment(namespace, 'restop', cluster.kubeConfig, 10 * 60_000);
    const watch = startDriftWatch({ kubeConfig: cluster.kubeConfig, client: env.client, logger: createLogger('silent'), minGapMs: 1_000 });
    try {
      await e.handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      await eventually('the first look, right after the stop', () => (e.looks() >= 1 && e.told().length === 0 ? true : undefined), 15_000);
      await pause(1_000); // the first look done: the next timed one is ten minutes away
      const looks = e.looks();
      await scale(namespace, 'api', 4, 'gitops-bot');
      const woke = Date.now();
      await eventually('api put back to sleep', async () => ((await replicas(namespace, 'api')).replicas === 0 ? true : undefined), 20_000);
      assert.ok(Date.now() - woke < 15_000, `asleep again ${Date.now() - woke} ms after it woke`);
      assert.deepEqual(await replicas(namespace, 'api'), { replicas: 0, saved: '4' });
      assert.ok(e.looks() > looks, 'looked because the watch said so');
      await eventually('told', () => (e.told().length === 1 ? true : undefined), 10_000);
      assert.equal(e.told()[0]!.workloads[0]!.by, 'gitops-bot');
      // Created while stopped: no saved count, so no signal; the next timed look finds it.
      await apps.createNamespacedDeployment({ namespace, body: { metadata: { name: 'late' }, spec: spec('late', 1) } });
      await pause(4_000);
      assert.equal((await replicas(namespace, 'late')).replicas, 1, 'not signalled: left to the timed look');
    } finally {
      watch.stop();
      await e.close();
    }
  });

  /** What the watch logged, as the worker's log would have it. */
  function watchLog(): { logger: pino.Logger; lines: { msg: string; kind?: string; retryInMs?: number }[] } {
    const lines: { msg: string; kind?: string; retryInMs?: number }[] = [];
    return { logger: pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) }), lines };
  }

  /** Stopped, its first look done, so the next timed one is ten minutes away: only the watch can bring a look sooner. */
  async function stoppedAndWatched(namespace: string, e: Awaited<ReturnType<typeof environment>>): Promise<void> {
    await e.handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
    await eventually('the first look, right after the stop', () => (e.looks() >= 1 && e.told().length === 0 ? true : undefined), 15_000);
    await pause(1_000);
  }

  /** `kubectl scale` wakes api; the watch must make the environment look, and put it back to sleep, long before its timed look. */
  async function wokenAndPutBack(namespace: string, e: Awaited<ReturnType<typeof environment>>): Promise<void> {
    const looks = e.looks();
    await scale(namespace, 'api', 4, 'gitops-bot');
    await eventually('api put back to sleep', async () => ((await replicas(namespace, 'api')).replicas === 0 ? true : undefined), 30_000);
    assert.ok(e.looks() > looks, 'looked because the watch said so');
  }

  it("the worker's watch, ended by the apiserver again and again (a one-second timeoutSeconds): begun again each time, and still signalling", async function () {
    const namespace = await namespaceWith({ api: 2 });
    const e = await environment(namespace, 'restop', cluster.kubeConfig, 10 * 60_000);
    const { logger, lines } = watchLog();
    const watch = startDriftWatch({
      kubeConfig: cluster.kubeConfig,
      client: env.client,
      logger,
      minGapMs: 1_000,
      retryMs: 500,
      timeoutSeconds: 1,
    });
    try {
      await stoppedAndWatched(namespace, e);
      await eventually(
        'the apiserver to end the watch of each kind more than once',
        () => {
          const ended = lines.filter((l) => l.msg === 'the apiserver ended the watch; begun again');
          return ['deployments', 'statefulsets'].every((kind) => ended.filter((l) => l.kind === kind).length >= 2) ? true : undefined;
        },
        30_000,
      );
      assert.deepEqual(
        lines.filter((l) => l.msg === 'the watch ended; begun again later'),
        [],
        'a watch the apiserver ends is no failure',
      );
      await wokenAndPutBack(namespace, e);
    } finally {
      watch.stop();
      await e.close();
    }
  });

  it("the worker's watch through an apiserver outage: begun again later and later while it is down, signalling again once it is back, and the worker never falls over", async function () {
    const namespace = await namespaceWith({ api: 2 });
    const e = await environment(namespace, 'restop', cluster.kubeConfig, 10 * 60_000);
    const proxy = await startCuttableProxy(new URL(cluster.kubeConfig.getCurrentCluster()!.server));
    const { logger, lines } = watchLog();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const watch = startDriftWatch({
      kubeConfig: throughProxy(cluster.kubeConfig, proxy.url),
      client: env.client,
      logger,
      minGapMs: 1_000,
      retryMs: 200,
      maxRetryMs: 1_600,
    });
    try {
      await stoppedAndWatched(namespace, e);
      proxy.cut();
      const retries = () =>
        lines.filter((l) => l.msg === 'the watch ended; begun again later' && l.kind === 'deployments').map((l) => l.retryInMs);
      await eventually('five failed watches of Deployments', () => (retries().length >= 5 ? true : undefined), 30_000);
      assert.deepEqual(retries().slice(0, 5), [200, 400, 800, 1_600, 1_600], 'twice as long each time, up to the bound');
      assert.ok(proxy.refused >= 5, `the apiserver was asked again: ${proxy.refused} connections refused`);
      proxy.restore();
      await wokenAndPutBack(namespace, e);
      assert.deepEqual(unhandled, [], 'nothing of the watch went unhandled');
    } finally {
      process.off('unhandledRejection', onUnhandled);
      watch.stop();
      proxy.close();
      await e.close();
    }
  });

  it('a re-stop whose attempt is cancelled (timed out, its lock released) writes nothing more', async function () {
    const namespace = await namespaceWith({ a: 1, b: 1, c: 1, d: 1 });
    const kubernetes = createKubernetesActivities({
      kubeConfig: cluster.kubeConfig,
      dryRun: false,
      logger: createLogger('silent'),
      drift: { mode: 'restop', intervalMs: INTERVAL_MS },
    });
    await kubernetes.stopNamespace(namespace);
    for (const name of ['a', 'b', 'c', 'd']) await scale(namespace, name, 2, 'gitops-bot');
    const activity = new MockActivityEnvironment();
    let heartbeats = 0;
    // The server's answer to the first heartbeat after the attempt timed out: cancelled.
    activity.on('heartbeat', () => {
      if (++heartbeats === 1) activity.cancel('TIMED_OUT');
    });
    await assert.rejects(activity.run(kubernetes.checkDrift, namespace, { restop: true }), CancelledFailure);
    const counts = await Promise.all(['a', 'b', 'c', 'd'].map(async (name) => (await replicas(namespace, name)).replicas));
    assert.deepEqual(
      counts.filter((n) => n === 0).length,
      1,
      `only the write before the cancellation was made: ${JSON.stringify(counts)} (a start after it must not be undone)`,
    );
  });

  it('DRY_RUN: no drift is looked for (a dry-run stop left everything awake), so nothing is announced or written', async function () {
    const namespace = await namespaceWith({ api: 2 });
    const kubernetes = createKubernetesActivities({
      kubeConfig: cluster.kubeConfig,
      dryRun: true,
      logger: createLogger('silent'),
      drift: { mode: 'restop', intervalMs: INTERVAL_MS },
    });
    const stop = await kubernetes.stopNamespace(namespace);
    assert.equal(stop.dryRun, true);
    assert.deepEqual(await replicas(namespace, 'api'), { replicas: 2 }, 'the dry-run stop changed nothing');
    for (const restop of [false, true]) {
      const look = await kubernetes.checkDrift(namespace, { restop });
      assert.equal(look.mode, 'off', 'off, so the workflow stops looking until the next stop');
      assert.deepEqual(look.awake, [], 'nothing reported as woken');
    }
  });

  it('the apiserver failing during the looks: stays stopped, looked at again, no message until one succeeds', async function () {
    const namespace = await namespaceWith({ api: 2 });
    const e = await environment(namespace, 'restop');
    try {
      await e.handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      e.control.failing = true;
      await scale(namespace, 'api', 3, 'gitops-bot');
      await pause(4 * INTERVAL_MS);
      assert.equal(e.told().length, 0, 'nothing told while the looks fail');
      assert.equal((await e.handle.query(statusQuery)).phase, 'stopped');
      e.control.failing = false;
      await eventually('api put back to sleep', async () => ((await replicas(namespace, 'api')).replicas === 0 ? true : undefined), 60_000);
      await eventually('told', () => (e.told().length > 0 ? true : undefined), 10_000);
      assert.equal(e.told().length, 1);
    } finally {
      await e.close();
    }
  });
});
