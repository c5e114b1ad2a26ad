/**
 * Stop, start and status on a control plane with real controllers (kube-controller-manager,
 * kube-scheduler and kwok's simulated nodes, src/local-cluster/control-plane.ts): what a person
 * sees with kubectl after each, Pods and all, rather than what the service wrote. Then a
 * start's wait for Ready and its wake order, by the activities and through the environment
 * workflow on the dev server.
 */
import assert from 'node:assert/strict';
import { AppsV1Api, BatchV1Api, CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { ActionReport, EnvironmentEvent, StartReadiness } from '../src/activities/contracts';
import { createKubernetesActivities } from '../src/activities/kubernetes';
import { ORIGINAL_REPLICAS } from '../src/activities/kubernetes/annotations';
import { createWriter, mergePatch } from '../src/activities/kubernetes/apiserver';
import { createWorkloadKinds } from '../src/activities/kubernetes/kinds';
import { listKind } from '../src/activities/kubernetes/workload-kind';
import { createNamespaceStatusReader } from '../src/activities/kubernetes/namespace-status';
import { createLogger } from '../src/logger';
import { environmentWorkflow, environmentWorkflowId, startUpdate, statusQuery, stopUpdate } from '../src/workflows';
import { testClusterWithControllers, type TestCluster } from './support/kube';
import { morningPolicy } from './support/policies';
import { recordingActivities } from './support/recording-activities';
import { eventually } from './support/slack';
import { devServerEnv, uniqueTaskQueue, workflowBundle } from './support/temporal';

describe('stop, start and status with real controllers (kube-controller-manager, kube-scheduler, kwok nodes)', function () {
  this.timeout(180_000);
  let cluster: TestCluster;
  let apps: AppsV1Api;
  let core: CoreV1Api;
  let batch: BatchV1Api;
  const logger = createLogger('silent');
  let counter = 0;

  before(async function () {
    cluster = await testClusterWithControllers();
    apps = cluster.kubeConfig.makeApiClient(AppsV1Api);
    core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    batch = cluster.kubeConfig.makeApiClient(BatchV1Api);
  });

  const activities = (startReadyTimeoutMs = 0) =>
    createKubernetesActivities({ kubeConfig: cluster.kubeConfig, dryRun: false, logger, startReadyTimeoutMs });
  const namespaceStatus = (ns: string) => createNamespaceStatusReader(cluster.kubeConfig)(ns);
  const template = (app: string) => ({
    metadata: { labels: { app } },
    spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] },
  });

  /** A StatefulSet db whose Pods stay Pending (a nodeSelector no node matches), and a Deployment api that gets Ready. */
  async function stuckDatabase(): Promise<string> {
    const ns = `cp-stuck-db-${++counter}`;
    await core.createNamespace({ body: { metadata: { name: ns } } });
    const nowhere = template('db');
    await apps.createNamespacedStatefulSet({
      namespace: ns,
      body: {
        metadata: { name: 'db' },
        spec: {
          replicas: 1,
          serviceName: 'db',
          selector: { matchLabels: { app: 'db' } },
          template: { ...nowhere, spec: { ...nowhere.spec, nodeSelector: { 'example.com/no-such-node': 'true' } } },
        },
      },
    });
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: { metadata: { name: 'api' }, spec: { replicas: 1, selector: { matchLabels: { app: 'api' } }, template: template('api') } },
    });
    return ns;
  }

  async function environment(): Promise<string> {
    const ns = `cp-env-${++counter}`;
    await core.createNamespace({ body: { metadata: { name: ns } } });
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: { metadata: { name: 'api' }, spec: { replicas: 3, selector: { matchLabels: { app: 'api' } }, template: template('api') } },
    });
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: { metadata: { name: 'web' }, spec: { replicas: 1, selector: { matchLabels: { app: 'web' } }, template: template('web') } },
    });
    await apps.createNamespacedStatefulSet({
      namespace: ns,
      body: {
        metadata: { name: 'db' },
        spec: { replicas: 2, serviceName: 'db', selector: { matchLabels: { app: 'db' } }, template: template('db') },
      },
    });
    return ns;
  }

  /** Pods as `kubectl get pods` shows them: name prefix and whether Ready. */
  async function pods(ns: string): Promise<{ running: number; ready: number }> {
    const list = await core.listNamespacedPod({ namespace: ns });
    const live = list.items.filter((pod) => !pod.metadata?.deletionTimestamp);
    return {
      running: live.filter((pod) => pod.status?.phase === 'Running').length,
      ready: live.filter((pod) => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length,
    };
  }

  it('a new environment has Ready Pods on the simulated nodes, and status says running with every replica ready', async function () {
    const ns = await environment();
    await eventually('6 Ready pods', async () => ((await pods(ns)).ready === 6 ? true : undefined), 60_000);
    const status = await eventually(
      'status to say running',
      async () => {
        const s = await namespaceStatus(ns);
        return s.phase === 'running' ? s : undefined;
      },
      30_000,
    );
    assert.deepEqual(
      status.workloads.map((w) => [w.kind, w.name, w.desired, w.ready]).sort(),
      [
        ['Deployment', 'api', 3, 3],
        ['Deployment', 'web', 1, 1],
        ['StatefulSet', 'db', 2, 2],
      ].sort(),
    );
    const nodes = new Set((await core.listNamespacedPod({ namespace: ns })).items.map((pod) => pod.spec?.nodeName));
    assert.ok(
      [...nodes].every((node) => node?.startsWith('kwok-node-')),
      'scheduled onto the fake nodes',
    );
  });

  it('stop leaves no Pod behind and status says stopped; start brings every Pod back Ready at the saved counts', async function () {
    const ns = await environment();
    await eventually('6 Ready pods', async () => ((await pods(ns)).ready === 6 ? true : undefined), 60_000);

    const stopped = await activities().stopNamespace(ns);
    assert.equal(stopped.changed.length, 3);
    await eventually(
      'every pod gone',
      async () => ((await core.listNamespacedPod({ namespace: ns })).items.length === 0 ? true : undefined),
      60_000,
    );
    assert.equal((await namespaceStatus(ns)).phase, 'stopped');

    await activities().startNamespace(ns);
    // How soon kwok's pods become Ready varies with the machine's load, so whether the status
    // read just after the start already says running does too. Running is what the controllers
    // report (as `kubectl rollout status` reads it), and on a busy machine a ReplicaSet's status
    // can still count pods of before the stop for a moment; what may never happen is that
    // status says running while it shows a workload with fewer Ready replicas than desired.
    const early = await namespaceStatus(ns);
    if (early.phase === 'running')
      assert.ok(
        early.workloads.every((w) => w.ready >= w.desired),
        `running only with every workload Ready: ${JSON.stringify(early.workloads)}`,
      );
    await eventually('6 Ready pods again', async () => ((await pods(ns)).ready === 6 ? true : undefined), 60_000);
    const status = await eventually(
      'status to say running',
      async () => {
        const s = await namespaceStatus(ns);
        return s.phase === 'running' ? s : undefined;
      },
      30_000,
    );
    assert.deepEqual(status.workloads.map((w) => `${w.name}:${w.ready}/${w.desired}`).sort(), ['api:3/3', 'db:2/2', 'web:1/1']);
  });

  it('a suspended CronJob creates no Job; resumed, its controller runs it again', async function () {
    const ns = `cp-cron-${++counter}`;
    await core.createNamespace({ body: { metadata: { name: ns } } });
    await batch.createNamespacedCronJob({
      namespace: ns,
      body: {
        metadata: { name: 'tick' },
        spec: {
          schedule: '* * * * *',
          jobTemplate: {
            spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'registry.example/tick:1' }] } } },
          },
        },
      },
    });
    await activities().stopNamespace(ns);
    assert.equal((await batch.readNamespacedCronJob({ namespace: ns, name: 'tick' })).spec?.suspend, true);
    // A minute boundary passes, and the CronJob controller (which looks every 10 s) with it.
    await new Promise((resolve) => setTimeout(resolve, 60_000 - (Date.now() % 60_000) + 12_000));
    assert.equal((await batch.listNamespacedJob({ namespace: ns })).items.length, 0, 'no Job while suspended');
    await activities().startNamespace(ns);
    await eventually(
      'a Job from the resumed CronJob',
      async () => ((await batch.listNamespacedJob({ namespace: ns })).items.length > 0 ? true : undefined),
      90_000,
    );
  });

  describe("a start's wait for Ready, and its wake order", function () {
    const readyAt = (pod: V1Pod) =>
      new Date(pod.status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'True')?.lastTransitionTime ?? NaN).getTime();
    const createdAt = (pod: V1Pod) => new Date(pod.metadata!.creationTimestamp!).getTime();
    const podsOf = async (ns: string, app: string) =>
      (await core.listNamespacedPod({ namespace: ns })).items.filter((pod) => pod.metadata?.labels?.app === app);

    async function stopped(ns: string, ready: number): Promise<void> {
      await eventually(`${ready} Ready pods`, async () => ((await pods(ns)).ready === ready ? true : undefined), 60_000);
      await activities().stopNamespace(ns);
      await eventually(
        'every pod gone',
        async () => ((await core.listNamespacedPod({ namespace: ns })).items.length === 0 ? true : undefined),
        60_000,
      );
    }

    /** What the worker does for a start: startNamespace under the lock, then awaitReady outside it. */
    async function startAndAwait(ns: string, timeoutMs = 60_000): Promise<{ report: ActionReport; readiness?: StartReadiness }> {
      const acts = activities(timeoutMs);
      const report = await acts.startNamespace(ns);
      return { report, ...(report.readiness ? { readiness: await acts.awaitReady(ns, report.readiness) } : {}) };
    }

    const annotate = (ns: string, name: string, value: string) =>
      apps.patchNamespacedDeployment(
        { namespace: ns, name, body: { metadata: { annotations: { 'devenv-scheduler/wake-order': value } } } },
        mergePatch,
      );

    it('says every workload is Ready once they are, with how long the start and each group took', async function () {
      const ns = await environment();
      await stopped(ns, 6);
      const before = Date.now();
      const { report, readiness } = await startAndAwait(ns);
      const took = Date.now() - before;
      assert.equal((await pods(ns)).ready, 6, 'every pod Ready when the start says so');
      // The StatefulSet's group was waited for inside the start (the Deployments had yet to wake); the last one after it.
      assert.ok(report.readiness?.groups[0]?.durationMs !== undefined && report.readiness.groups[1]?.durationMs === undefined);
      assert.ok(readiness);
      assert.deepEqual(
        readiness.groups.map((g) => [g.order, g.workloads.map((w) => `${w.kind}/${w.name}`).sort(), g.notReady]),
        [
          [0, ['StatefulSet/db'], undefined],
          [1, ['Deployment/api', 'Deployment/web'], undefined],
        ],
      );
      assert.ok(readiness.groups.every((g) => g.durationMs! > 0));
      assert.ok(readiness.durationMs! > 0 && readiness.durationMs! <= took, `${readiness.durationMs} ms of ${took}`);
    });

    it("wakes the StatefulSet first: the Deployments' pods are created only once its pods are Ready", async function () {
      const ns = await environment();
      await stopped(ns, 6);
      await startAndAwait(ns);
      const db = await podsOf(ns, 'db');
      const others = [...(await podsOf(ns, 'api')), ...(await podsOf(ns, 'web'))];
      assert.equal(db.length, 2);
      assert.equal(others.length, 4);
      const dbReady = Math.max(...db.map(readyAt));
      const firstOther = Math.min(...others.map(createdAt));
      // The apiserver keeps whole seconds: created in the same second as the last Ready counts as after it.
      assert.ok(
        firstOther >= dbReady,
        `first Deployment pod created at ${new Date(firstOther).toISOString()}, db Ready at ${new Date(dbReady).toISOString()}`,
      );
    });

    it('wakes in the groups the annotation sets; an invalid value is a note and the workload wakes in its default group', async function () {
      const ns = await environment();
      await annotate(ns, 'web', '-1');
      await annotate(ns, 'api', 'after-db');
      await stopped(ns, 6);
      const { report, readiness } = await startAndAwait(ns);
      assert.deepEqual(report.notes, [
        'Deployment api: devenv-scheduler/wake-order "after-db" is not a whole number; woken in its default group 1',
      ]);
      assert.deepEqual(
        readiness?.groups.map((g) => [g.order, g.workloads.map((w) => w.name), g.notReady]),
        [
          [-1, ['web'], undefined],
          [0, ['db'], undefined],
          [1, ['api'], undefined],
        ],
      );
      assert.equal((await pods(ns)).ready, 6);
      const created = async (app: string) => Math.min(...(await podsOf(ns, app)).map(createdAt));
      const ready = async (app: string) => Math.max(...(await podsOf(ns, app)).map(readyAt));
      assert.ok((await created('db')) >= (await ready('web')), 'db woken after web was Ready');
      assert.ok((await created('api')) >= (await ready('db')), 'api woken after db was Ready');
    });

    it('a retried start (its first attempt woke the StatefulSet, then its worker died) still waits for it before it wakes the Deployment', async function () {
      const ns = await stuckDatabase();
      await stopped(ns, 1);
      // The first attempt's wake of the StatefulSet, the one write it made before its worker went.
      const statefulSets = createWorkloadKinds(cluster.kubeConfig).find((kind) => kind.kind === 'StatefulSet')!;
      const [db] = await listKind(statefulSets, ns, 100);
      await statefulSets.wake(db!, { namespace: ns, write: createWriter({ dryRun: false, logger }) });
      assert.equal((await apps.readNamespacedStatefulSet({ namespace: ns, name: 'db' })).spec?.replicas, 1);
      const { report } = await startAndAwait(ns, 5_000);
      assert.deepEqual(
        report.readiness?.groups.map((g) => [g.order, g.workloads.map((w) => w.name), g.notReady?.map((w) => w.name)]),
        [
          [0, ['db'], ['db']],
          [1, ['api'], undefined],
        ],
        'db waited for (until the deadline) inside the start, before api was woken',
      );
      const api = await podsOf(ns, 'api');
      const dbPod = (await podsOf(ns, 'db'))[0]!;
      assert.ok(
        Math.min(...api.map(createdAt)) >= Date.parse(report.readiness!.deadline) - 1_000,
        `api's pod created at ${api.map((p) => p.metadata?.creationTimestamp?.toISOString()).join(', ')}, db's at ${dbPod.metadata?.creationTimestamp?.toISOString()}, the start's deadline ${report.readiness!.deadline}`,
      );
    });

    it('woken in steps: the first stops before the Deployments; the next wakes them, and one moved meanwhile to a group already passed too', async function () {
      const ns = await environment();
      await stopped(ns, 6);
      const acts = activities(60_000);
      const first = await acts.startNamespace(ns, {});
      assert.deepEqual(
        first.changed.map((c) => c.name),
        ['db'],
      );
      assert.equal(first.readiness?.next, 1);
      // Its annotation changed while the start waited for db: web now belongs to a group already woken.
      await annotate(ns, 'web', '0');
      const waited = await acts.awaitReady(ns, first.readiness!);
      const { durationMs: _step, ...readiness } = waited;
      const rest = await acts.startNamespace(ns, { after: { ...first, readiness } });
      assert.deepEqual(rest.changed.map((c) => c.name).sort(), ['api', 'db', 'web']);
      assert.equal(rest.readiness?.next, undefined);
      assert.deepEqual(
        rest.readiness?.groups.map((g) => [g.order, g.workloads.map((w) => w.name).sort(), g.durationMs !== undefined]),
        [
          [0, ['db'], true],
          [1, ['api', 'web'], false],
        ],
      );
      const done = await acts.awaitReady(ns, rest.readiness!);
      assert.ok(done.groups.every((g) => g.notReady === undefined));
      await eventually('6 Ready pods', async () => ((await pods(ns)).ready === 6 ? true : undefined), 60_000);
    });

    it('names a workload whose Pods stay Pending (a nodeSelector no node matches) once the timeout has passed; status says starting', async function () {
      const ns = `cp-pending-${++counter}`;
      await core.createNamespace({ body: { metadata: { name: ns } } });
      await apps.createNamespacedDeployment({
        namespace: ns,
        body: { metadata: { name: 'api' }, spec: { replicas: 1, selector: { matchLabels: { app: 'api' } }, template: template('api') } },
      });
      const nowhere = template('stuck');
      await apps.createNamespacedDeployment({
        namespace: ns,
        body: {
          metadata: { name: 'stuck' },
          spec: {
            replicas: 2,
            selector: { matchLabels: { app: 'stuck' } },
            template: { ...nowhere, spec: { ...nowhere.spec, nodeSelector: { 'example.com/no-such-node': 'true' } } },
          },
        },
      });
      await stopped(ns, 1);
      const before = Date.now();
      const { readiness } = await startAndAwait(ns, 5_000);
      const took = Date.now() - before;
      assert.ok(took >= 5_000 && took < 30_000, `gave up after ${took} ms`);
      assert.deepEqual(
        readiness?.groups.map((g) => g.workloads.length),
        [2],
      );
      assert.deepEqual(
        readiness.groups[0]!.notReady?.map((w) => [w.kind, w.name]),
        [['Deployment', 'stuck']],
      );
      assert.match(readiness.groups[0]!.notReady![0]!.message ?? '', /^0 of 2 Ready/);
      const status = await namespaceStatus(ns);
      assert.equal(status.phase, 'starting');
      assert.deepEqual(status.workloads.map((w) => `${w.name}:${w.ready}/${w.desired}`).sort(), ['api:1/1', 'stuck:0/2']);
      assert.equal(status.workloads.find((w) => w.name === 'api')?.notReady, undefined);
      assert.match(status.workloads.find((w) => w.name === 'stuck')?.notReady ?? '', /^0 of 2 Ready, 0 available/);
    });

    describe('through the environment workflow (dev server, the real Kubernetes activities)', function () {
      let env: TestWorkflowEnvironment;

      before(async function () {
        this.timeout(300_000);
        env = await devServerEnv();
        await workflowBundle();
      });

      /** An environment whose worker waits up to `timeoutMs` for Ready; notifications and AWS recorded only. */
      async function workflowFor(ns: string, timeoutMs: number) {
        const taskQueue = uniqueTaskQueue('ready');
        const recorded = recordingActivities(async () => Date.now());
        const kubernetes = activities(timeoutMs);
        const worker = await Worker.create({
          connection: env.nativeConnection,
          taskQueue,
          workflowBundle: await workflowBundle(),
          activities: {
            ...recorded,
            stopNamespace: kubernetes.stopNamespace,
            startNamespace: kubernetes.startNamespace,
            awaitReady: kubernetes.awaitReady,
          },
        });
        const running = worker.run();
        const handle = await env.client.workflow.start(environmentWorkflow, {
          workflowId: environmentWorkflowId(ns),
          taskQueue,
          args: [{ namespace: ns, policy: morningPolicy(), enabled: true }],
        });
        const started = () =>
          recorded.calls.flatMap((c) => (c.event?.kind === 'started' ? [c.event as Extract<EnvironmentEvent, { kind: 'started' }>] : []));
        const close = async () => {
          await handle.terminate().catch(() => undefined);
          worker.shutdown();
          await running;
        };
        return { handle, started, close };
      }

      it('the reply and the announcement say when every workload is Ready', async function () {
        const ns = await environment();
        const e = await workflowFor(ns, 60_000);
        try {
          await eventually('6 Ready pods', async () => ((await pods(ns)).ready === 6 ? true : undefined), 60_000);
          await e.handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
          await eventually(
            'every pod gone',
            async () => ((await core.listNamespacedPod({ namespace: ns })).items.length === 0 ? true : undefined),
            60_000,
          );
          const result = await e.handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] });
          assert.equal((await pods(ns)).ready, 6, 'Ready when the reply comes');
          assert.match(
            result.message,
            new RegExp(
              `^${ns} started by U2: 3 workloads restored; all 3 workloads Ready after \\d+ s \\(in wake order: group 0, 1 in \\d+ s; group 1, 2 in \\d+ s\\); shuts down`,
            ),
          );
          const [announced] = e.started();
          assert.equal(announced?.report.readiness?.groups.length, 2, 'announced with its readiness');
          assert.match(
            (await e.handle.query(statusQuery)).lastAction?.detail ?? '',
            /^3 workloads restored; all 3 workloads Ready after \d+ s/,
          );
        } finally {
          await e.close();
        }
      });

      it('a stop during the wait between two wake-order groups goes ahead without waiting for it, and the later group is never woken', async function () {
        const ns = await stuckDatabase();
        // Long enough that a stop which waited for it would outlast this test.
        const e = await workflowFor(ns, 170_000);
        try {
          await eventually('api Ready', async () => ((await pods(ns)).ready === 1 ? true : undefined), 60_000);
          await e.handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
          const starting = e.handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] });
          await eventually(
            'the start waiting for db to be Ready',
            async () =>
              (await e.handle.describe()).raw.pendingActivities?.some((a) => a.activityType?.name === 'awaitReady') ? true : undefined,
            30_000,
          );
          assert.equal((await e.handle.query(statusQuery)).phase, 'starting');
          const stop = await e.handle.executeUpdate(stopUpdate, { args: [{ by: 'U3' }] });
          assert.match(stop.message, /stopped by U3: 1 workloads scaled to 0/);
          const start = await starting;
          assert.match(
            start.message,
            new RegExp(`^${ns} started by U2: 1 workloads restored; the wait for Ready was interrupted by the stop by U3 after \\d+ s\\.$`),
          );
          assert.equal(start.shutdownAt, null);
          const api = await apps.readNamespacedDeployment({ namespace: ns, name: 'api' });
          assert.equal(api.spec?.replicas, 0);
          assert.equal(
            api.metadata?.annotations?.[ORIGINAL_REPLICAS],
            '1',
            'api never woken: its saved count is still there for the next start',
          );
          assert.equal((await podsOf(ns, 'api')).length, 0);
          const status = await e.handle.query(statusQuery);
          assert.equal(status.phase, 'stopped');
          assert.equal(status.lastAction?.by, 'U3');
        } finally {
          await e.close();
        }
      });

      it('a stop during the wait goes ahead at once, and the start says it was interrupted, not what was not Ready', async function () {
        const ns = `cp-interrupt-${++counter}`;
        await core.createNamespace({ body: { metadata: { name: ns } } });
        const nowhere = template('stuck');
        await apps.createNamespacedDeployment({
          namespace: ns,
          body: {
            metadata: { name: 'stuck' },
            spec: {
              replicas: 1,
              selector: { matchLabels: { app: 'stuck' } },
              template: { ...nowhere, spec: { ...nowhere.spec, nodeSelector: { 'example.com/no-such-node': 'true' } } },
            },
          },
        });
        const e = await workflowFor(ns, 120_000);
        try {
          await e.handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
          const starting = e.handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] });
          await eventually(
            'the start waiting for Ready',
            async () =>
              (await e.handle.query(statusQuery)).lastAction?.detail?.includes('waiting for them to be Ready') ? true : undefined,
            30_000,
          );
          const before = Date.now();
          const stop = await e.handle.executeUpdate(stopUpdate, { args: [{ by: 'U3' }] });
          const stopTook = Date.now() - before;
          assert.ok(stopTook < 5_000, `the stop took ${stopTook} ms`);
          assert.match(stop.message, /stopped by U3: 1 workloads scaled to 0/);
          const start = await starting;
          assert.match(
            start.message,
            new RegExp(`^${ns} started by U2: 1 workloads restored; the wait for Ready was interrupted by the stop by U3 after \\d+ s\\.$`),
          );
          assert.doesNotMatch(start.message, /not Ready/);
          assert.equal((await apps.readNamespacedDeployment({ namespace: ns, name: 'stuck' })).spec?.replicas, 0);
          const status = await e.handle.query(statusQuery);
          assert.equal(status.phase, 'stopped');
          assert.equal(status.lastAction?.by, 'U3', "the stop's last action stands");
        } finally {
          await e.close();
        }
      });
    });
  });
});
