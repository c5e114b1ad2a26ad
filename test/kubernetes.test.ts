/**
 * The Kubernetes activities against a real kube-apiserver (test/support/kube.ts): what a
 * person would check with kubectl after a stop or a start.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  AppsV1Api,
  AutoscalingV2Api,
  BatchV1Api,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  loadAllYaml,
  PatchStrategy,
  setHeaderOptions,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { DateTime } from 'luxon';
import { createLogger, type Logger } from '../src/logger';
import { createKubernetesActivities, EXCLUDE, ORIGINAL_MIN_REPLICAS, ORIGINAL_REPLICAS, ORIGINAL_SUSPEND, type KubernetesSettings } from '../src/activities/kubernetes';
import { environmentWorkflow, environmentWorkflowId, startUpdate, statusQuery, stopSupportPodSignal, supportPodWorkflow, supportPodWorkflowId } from '../src/workflows';
import type { EnvironmentPolicy } from '../src/workflows/shutdown-policy';
import { AUDITED_NAMESPACES, testCluster, type TestCluster } from './support/kube';
import { recordingActivities } from './support/recording-activities';
import { eventually } from './support/slack';
import { useTimeSkippingEnv, uniqueTaskQueue, workflowBundle } from './support/temporal';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const SUPPORT_NAMESPACE = 'devenv-support';

describe('Kubernetes activities (real kube-apiserver)', function () {
  this.timeout(120_000);

  let cluster: TestCluster;
  let apps: AppsV1Api;
  let batch: BatchV1Api;
  let core: CoreV1Api;
  let autoscaling: AutoscalingV2Api;
  const logger = createLogger();
  let namespaceCounter = 0;

  before(async function () {
    this.timeout(180_000);
    cluster = await testCluster();
    apps = cluster.kubeConfig.makeApiClient(AppsV1Api);
    batch = cluster.kubeConfig.makeApiClient(BatchV1Api);
    core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    autoscaling = cluster.kubeConfig.makeApiClient(AutoscalingV2Api);
    await core.createNamespace({ body: { metadata: { name: SUPPORT_NAMESPACE } } });
  });

  const activities = (overrides: Partial<KubernetesSettings> = {}) =>
    createKubernetesActivities({
      kubeConfig: cluster.kubeConfig,
      dryRun: false,
      logger,
      support: { namespace: SUPPORT_NAMESPACE, image: 'busybox:1.36', sizes: { XS: { cpu: '100m', memory: '128Mi' }, XL: { cpu: '4', memory: '8Gi' } } },
      ...overrides,
    });

  async function namespace(): Promise<string> {
    const name = `env${++namespaceCounter}`;
    await core.createNamespace({ body: { metadata: { name } } });
    return name;
  }

  const template = (app: string) => ({
    metadata: { labels: { app } },
    spec: { containers: [{ name: 'app', image: 'busybox:1.36' }] },
  });

  async function deployment(ns: string, name: string, replicas: number, annotations?: Record<string, string>) {
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: { metadata: { name, annotations }, spec: { replicas, selector: { matchLabels: { app: name } }, template: template(name) } },
    });
  }

  async function statefulSet(ns: string, name: string, replicas: number) {
    await apps.createNamespacedStatefulSet({
      namespace: ns,
      body: { metadata: { name }, spec: { replicas, serviceName: name, selector: { matchLabels: { app: name } }, template: template(name) } },
    });
  }

  async function cronJob(ns: string, name: string, suspend = false) {
    await batch.createNamespacedCronJob({
      namespace: ns,
      body: {
        metadata: { name },
        spec: { schedule: '*/5 * * * *', suspend, jobTemplate: { spec: { template: { spec: { ...template(name).spec, restartPolicy: 'Never' } } } } },
      },
    });
  }

  /** Replicas and annotations of every Deployment and StatefulSet, as `kubectl get` would show them. */
  async function snapshot(ns: string) {
    const [deployments, statefulSets] = await Promise.all([apps.listNamespacedDeployment({ namespace: ns }), apps.listNamespacedStatefulSet({ namespace: ns })]);
    return Object.fromEntries(
      [...deployments.items, ...statefulSets.items].map((w) => [
        `${w.kind ?? (w.spec && 'serviceName' in w.spec ? 'StatefulSet' : 'Deployment')}/${w.metadata?.name}`,
        { replicas: w.spec?.replicas, saved: w.metadata?.annotations?.[ORIGINAL_REPLICAS] },
      ]),
    );
  }

  /** No controller-manager runs, so a test plays the Deployment controller's part. */
  async function markReady(ns: string, name: string, ready: number) {
    await apps.patchNamespacedDeploymentStatus({ namespace: ns, name, body: { status: { replicas: ready, readyReplicas: ready } } }, mergePatch);
  }

  async function mixedNamespace(): Promise<string> {
    const ns = await namespace();
    await Promise.all([
      deployment(ns, 'api', 3),
      deployment(ns, 'web', 2),
      deployment(ns, 'idle', 0),
      deployment(ns, 'keep-me', 4, { [EXCLUDE]: 'true' }),
      statefulSet(ns, 'db', 1),
      statefulSet(ns, 'cache', 5),
      cronJob(ns, 'report'),
      cronJob(ns, 'paused-by-hand', true),
    ]);
    return ns;
  }

  const cronJobState = async (ns: string, name: string) => {
    const cj = await batch.readNamespacedCronJob({ namespace: ns, name });
    return { suspend: cj.spec?.suspend, original: cj.metadata?.annotations?.[ORIGINAL_SUSPEND] };
  };

  it('stop saves every count and scales to 0; stop again keeps the counts; start restores them exactly', async () => {
    const ns = await mixedNamespace();
    const before = await snapshot(ns);
    const k8s = activities({ pageSize: 2 });

    const stopped = await k8s.stopNamespace(ns);
    assert.deepEqual(
      stopped.changed.map((c) => `${c.kind}/${c.name} ${c.from}->${c.to}`).sort(),
      ['CronJob/report 1->0', 'Deployment/api 3->0', 'Deployment/web 2->0', 'StatefulSet/cache 5->0', 'StatefulSet/db 1->0'],
    );
    assert.equal(stopped.unchanged, 3, 'idle, keep-me and paused-by-hand');
    const afterStop = await snapshot(ns);
    assert.deepEqual(afterStop, {
      'Deployment/api': { replicas: 0, saved: '3' },
      'Deployment/web': { replicas: 0, saved: '2' },
      'Deployment/idle': { replicas: 0, saved: undefined },
      'Deployment/keep-me': { replicas: 4, saved: undefined },
      'StatefulSet/db': { replicas: 0, saved: '1' },
      'StatefulSet/cache': { replicas: 0, saved: '5' },
    });
    assert.deepEqual(await cronJobState(ns, 'report'), { suspend: true, original: 'false' });
    assert.deepEqual(await cronJobState(ns, 'paused-by-hand'), { suspend: true, original: undefined });

    const again = await k8s.stopNamespace(ns);
    assert.deepEqual(again.changed, []);
    assert.deepEqual(await snapshot(ns), afterStop, 'a second stop must not overwrite a saved count with 0');

    const started = await k8s.startNamespace(ns);
    assert.equal(started.changed.length, 5);
    assert.deepEqual(await snapshot(ns), before, 'every count back exactly, every annotation gone');
    assert.deepEqual(await cronJobState(ns, 'report'), { suspend: false, original: undefined });
    assert.deepEqual(await cronJobState(ns, 'paused-by-hand'), { suspend: true, original: undefined }, 'suspended by a person: stays suspended');

    const startedAgain = await k8s.startNamespace(ns);
    assert.deepEqual(startedAgain.changed, []);
    assert.deepEqual(await snapshot(ns), before);
  });

  it('a stop handed over ahead of its instant touches nothing before it, then stops everything', async () => {
    const ns = await mixedNamespace();
    const before = await snapshot(ns);
    const notBefore = new Date(Date.now() + 1500);
    const stopping = activities().stopNamespace(ns, { notBefore: notBefore.toISOString() });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.deepEqual(await snapshot(ns), before, 'held: nothing patched yet');
    const report = await stopping;
    assert.ok(Date.now() >= notBefore.getTime());
    assert.equal(report.changed.length, 5);
    assert.equal((await snapshot(ns))['Deployment/api']?.replicas, 0);
  });

  it('one worker process has at most KUBE_WORKER_CONCURRENCY workload writes in flight across all namespaces, as the apiserver saw them', async () => {
    const WORKLOADS = 15;
    for (const ns of AUDITED_NAMESPACES) {
      await core.createNamespace({ body: { metadata: { name: ns } } });
      await Promise.all(Array.from({ length: WORKLOADS }, (_, i) => deployment(ns, `app-${i}`, 2)));
    }
    /** The most patches the apiserver was serving at one moment, for those it received since `sinceUs`. */
    const mostAtOnce = async (sinceUs: number) => {
      const requests = await eventually('the apiserver to record every patch', async () => {
        const seen = cluster.auditedRequests().filter((r) => r.receivedUs >= sinceUs);
        return seen.length >= AUDITED_NAMESPACES.length * WORKLOADS ? seen : undefined;
      });
      const edges = requests.flatMap((r) => [{ at: r.receivedUs, delta: 1 }, { at: r.completedUs, delta: -1 }]).sort((a, b) => a.at - b.at || a.delta - b.delta);
      let current = 0;
      return Math.max(...edges.map((edge) => (current += edge.delta)));
    };

    // Ten at a time in each of three namespaces: without a process-wide cap, up to 30 at once.
    const uncappedSince = Date.now() * 1000;
    const uncapped = activities({ concurrency: 10, processConcurrency: 1000 });
    await Promise.all(AUDITED_NAMESPACES.map((ns) => uncapped.stopNamespace(ns)));
    const uncappedMost = await mostAtOnce(uncappedSince);
    assert.ok(uncappedMost > 4, `the apiserver served ${uncappedMost} at once without the cap: this test could not tell`);

    const cappedSince = Date.now() * 1000;
    const capped = activities({ concurrency: 10, processConcurrency: 4 });
    const reports = await Promise.all(AUDITED_NAMESPACES.map((ns) => capped.startNamespace(ns)));
    const cappedMost = await mostAtOnce(cappedSince);
    assert.ok(cappedMost <= 4, `never more than 4 at once, not ${cappedMost}`);
    assert.deepEqual(reports.map((r) => r.changed.length), AUDITED_NAMESPACES.map(() => WORKLOADS), 'and every workload restored');
    for (const ns of AUDITED_NAMESPACES) assert.ok(Object.values(await snapshot(ns)).every((w) => w.replicas === 2));
  });

  /** Admin access that lets a test act just before a request goes out, or stop it there as a crash would. */
  function intercepted(hook: (method: string, url: string) => Promise<void>): KubeConfig {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(cluster.kubeConfigPath);
    const authenticate = kubeConfig.applySecurityAuthentication.bind(kubeConfig);
    kubeConfig.applySecurityAuthentication = async (context) => {
      await hook(context.getHttpMethod(), context.getUrl());
      return authenticate(context);
    };
    return kubeConfig;
  }

  it('a stop that dies part-way through the namespace, then retried, loses no count', async () => {
    const ns = await namespace();
    await Promise.all([deployment(ns, 'a', 3), deployment(ns, 'b', 2), deployment(ns, 'c', 7), statefulSet(ns, 'd', 4)]);
    const before = await snapshot(ns);

    // The worker dies as it sends its third write: two workloads are saved and at 0, two untouched.
    let writes = 0;
    const dying = intercepted(async (method) => {
      if (method === 'PATCH' && ++writes === 3) throw new Error('worker lost');
    });
    await assert.rejects(activities({ kubeConfig: dying, concurrency: 1 }).stopNamespace(ns), /worker lost/);
    const interrupted = Object.values(await snapshot(ns));
    assert.equal(interrupted.filter((w) => w.saved !== undefined).length, 2);
    assert.equal(interrupted.filter((w) => w.replicas === 0).length, 2, 'each write saves and scales together: never one without the other');
    assert.ok(interrupted.every((w) => (w.replicas === 0) === (w.saved !== undefined)));

    // Temporal retries the activity.
    await activities().stopNamespace(ns);
    const stopped = await snapshot(ns);
    for (const [key, { replicas }] of Object.entries(before)) assert.deepEqual(stopped[key], { replicas: 0, saved: String(replicas) }, key);

    await activities().startNamespace(ns);
    assert.deepEqual(await snapshot(ns), before);
  });

  it('a write that lost a race (409 Conflict) is retried on a fresh read', async () => {
    const ns = await namespace();
    await deployment(ns, 'raced', 2);
    // Someone scales the Deployment to 6 between the activity's read and its write.
    let raced = false;
    const racing = intercepted(async (method) => {
      if (method !== 'PATCH' || raced) return;
      raced = true;
      await apps.patchNamespacedDeploymentScale({ namespace: ns, name: 'raced', body: { spec: { replicas: 6 } } }, mergePatch);
    });
    const report = await activities({ kubeConfig: racing }).stopNamespace(ns);
    assert.ok(raced);
    assert.deepEqual(report.changed, [{ kind: 'Deployment', name: 'raced', from: 6, to: 0 }]);
    assert.deepEqual(await snapshot(ns), { 'Deployment/raced': { replicas: 0, saved: '6' } }, 'the count that was live when it stopped');
  });

  it('an unknown namespace fails for good, with its name in the message, and changes nothing', async () => {
    for (const action of ['stopNamespace', 'startNamespace', 'namespaceStatus'] as const) {
      await assert.rejects(activities()[action]('no-such-env'), (error: unknown) => {
        assert.ok(error instanceof ApplicationFailure);
        assert.equal(error.nonRetryable, true);
        assert.equal(error.type, 'NamespaceNotFound');
        assert.match(error.message, /namespace "no-such-env" does not exist/);
        return true;
      });
    }
  });

  it('DRY_RUN reports what a stop would do and writes nothing', async () => {
    const ns = await mixedNamespace();
    const before = await snapshot(ns);
    const logged: string[] = [];
    const recording = new Proxy(logger, {
      get: (target, key, receiver) => (key === 'info' ? (_detail: object, message: string) => logged.push(message) : Reflect.get(target, key, receiver)),
    }) as Logger;
    const report = await activities({ dryRun: true, logger: recording }).stopNamespace(ns);
    assert.equal(report.dryRun, true);
    assert.equal(report.changed.length, 5);
    assert.deepEqual(await snapshot(ns), before);
    assert.deepEqual(await cronJobState(ns, 'report'), { suspend: false, original: undefined });
    assert.ok(logged.includes(`DRY_RUN: would save the replica count of Deployment ${ns}/api and scale it from 3 to 0`), logged.join('\n'));
  });

  it('heartbeats its progress when run as an activity', async () => {
    const ns = await mixedNamespace();
    const beats: unknown[] = [];
    const activityEnv = new MockActivityEnvironment();
    activityEnv.on('heartbeat', (details: unknown) => beats.push(details));
    const k8s = activities();
    await activityEnv.run(k8s.stopNamespace, ns);
    assert.deepEqual(beats[0], { done: 0, total: 8 });
    assert.deepEqual(beats.at(-1), { done: 8, total: 8 });
    assert.equal(beats.length, 9);
  });

  it('stops changing workloads once the activity is cancelled', async () => {
    const ns = await mixedNamespace();
    const activityEnv = new MockActivityEnvironment();
    activityEnv.on('heartbeat', (details: { done: number }) => {
      if (details.done === 2) activityEnv.cancel('TIMED_OUT');
    });
    await assert.rejects(activityEnv.run(activities({ concurrency: 1 }).stopNamespace, ns), (error: unknown) => {
      assert.match(String(error), /TIMED_OUT/);
      return true;
    });
    // Lists come back by name: api (stopped), idle (at 0 already), then the cancellation.
    const stopped = Object.entries(await snapshot(ns)).flatMap(([key, w]) => (w.saved === undefined ? [] : [key]));
    assert.deepEqual(stopped, ['Deployment/api'], 'no workload after the cancellation is touched');
  });

  it('status: running, stopped, degraded and starting as the replicas say', async () => {
    const ns = await namespace();
    await Promise.all([deployment(ns, 'api', 2), deployment(ns, 'web', 1), deployment(ns, 'keep-me', 1, { [EXCLUDE]: 'true' })]);
    const k8s = activities();
    assert.equal((await k8s.namespaceStatus(ns)).phase, 'starting', 'no pod is ready yet');
    await Promise.all([markReady(ns, 'api', 2), markReady(ns, 'web', 1)]);
    const running = await k8s.namespaceStatus(ns);
    assert.equal(running.phase, 'running');
    assert.deepEqual(running.workloads.find((w) => w.name === 'api'), { kind: 'Deployment', name: 'api', desired: 2, ready: 2, excluded: false });

    await k8s.stopNamespace(ns);
    const stopped = await k8s.namespaceStatus(ns);
    assert.equal(stopped.phase, 'stopped', 'the excluded workload does not count');
    assert.equal(stopped.workloads.find((w) => w.name === 'api')?.savedReplicas, 2);

    // Half a start: one workload back, one still waiting at 0 with its saved count.
    await apps.patchNamespacedDeploymentScale({ namespace: ns, name: 'api', body: { spec: { replicas: 2 } } }, mergePatch);
    assert.equal((await k8s.namespaceStatus(ns)).phase, 'degraded');
  });

  it('an HPA that could scale a stopped workload up (minReplicas 0) is pinned to 1 and restored', async () => {
    const ns = await namespace();
    await Promise.all([deployment(ns, 'scaled', 3), deployment(ns, 'plain', 2)]);
    const hpa = (name: string, target: string, minReplicas: number) =>
      autoscaling.createNamespacedHorizontalPodAutoscaler({
        namespace: ns,
        body: {
          metadata: { name },
          spec: {
            scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: target },
            minReplicas,
            maxReplicas: 5,
            // minReplicas 0 requires an Object or External metric.
            metrics: [{ type: 'External', external: { metric: { name: 'queue_depth' }, target: { type: 'Value', value: '10' } } }],
          },
        },
      });
    await Promise.all([hpa('scale-to-zero', 'scaled', 0), hpa('ordinary', 'plain', 1)]);
    const minOf = async (name: string) => {
      const found = await autoscaling.readNamespacedHorizontalPodAutoscaler({ namespace: ns, name });
      return { min: found.spec?.minReplicas, saved: found.metadata?.annotations?.[ORIGINAL_MIN_REPLICAS] };
    };
    const k8s = activities();

    const stopped = await k8s.stopNamespace(ns);
    assert.ok(stopped.changed.some((c) => c.kind === 'HorizontalPodAutoscaler' && c.name === 'scale-to-zero' && c.to === 1));
    assert.deepEqual(await minOf('scale-to-zero'), { min: 1, saved: '0' });
    assert.deepEqual(await minOf('ordinary'), { min: 1, saved: undefined }, 'stands aside at 0 replicas by itself');
    await k8s.stopNamespace(ns);
    assert.deepEqual(await minOf('scale-to-zero'), { min: 1, saved: '0' });

    await k8s.startNamespace(ns);
    assert.deepEqual(await minOf('scale-to-zero'), { min: 0, saved: undefined });
    assert.deepEqual(await snapshot(ns), { 'Deployment/scaled': { replicas: 3, saved: undefined }, 'Deployment/plain': { replicas: 2, saved: undefined } });
  });

  it('support pods: created with the size of the catalogue, listed, deleted; bad size or name refused', async () => {
    const k8s = activities();
    const pod = await k8s.createSupportPod({ name: 'manage1', size: 'XL', requestedBy: 'U123' });
    assert.equal(pod.name, 'manage1');
    assert.equal(pod.size, 'XL');
    assert.deepEqual(await k8s.createSupportPod({ name: 'manage1', size: 'XL', requestedBy: 'U123' }), pod, 'a retry finds the same pod');
    const created = await core.readNamespacedPod({ namespace: SUPPORT_NAMESPACE, name: 'manage1' });
    const resources = created.spec?.containers[0]?.resources;
    assert.deepEqual({ requests: resources?.requests, limits: resources?.limits }, { requests: { cpu: '4', memory: '8Gi' }, limits: { cpu: '4', memory: '8Gi' } });
    assert.deepEqual((await k8s.listSupportPods()).map((p) => p.name), ['manage1']);

    await assert.rejects(k8s.createSupportPod({ name: 'manage2', size: 'XXL', requestedBy: 'U123' }), /unknown support pod size "XXL": use one of XS, XL/);
    await assert.rejects(k8s.createSupportPod({ name: 'Manage_2', size: 'XS', requestedBy: 'U123' }), /invalid support pod name "Manage_2": use lowercase letters/);
    assert.deepEqual((await k8s.listSupportPods()).map((p) => p.name), ['manage1'], 'nothing created by a refused request');

    assert.equal(await k8s.deleteSupportPod('manage1'), true);
    assert.equal(await k8s.deleteSupportPod('manage1'), false);
  });

  describe('with the ServiceAccount and roles of k8s/rbac.yaml', () => {
    let serviceKubeConfig: KubeConfig;
    let asService: ReturnType<typeof createKubernetesActivities>;
    let serviceApps: AppsV1Api;
    let serviceCore: CoreV1Api;

    before(async () => {
      await core.createNamespace({ body: { metadata: { name: 'devenv-scheduler' } } });
      const objects = loadAllYaml(readFileSync(path.join(__dirname, '../k8s/rbac.yaml'), 'utf8')) as KubernetesObject[];
      const client = KubernetesObjectApi.makeApiClient(cluster.kubeConfig);
      for (const object of objects) await client.create(object);
      const { status } = await core.createNamespacedServiceAccountToken({
        namespace: 'devenv-scheduler',
        name: 'devenv-scheduler',
        body: { spec: { audiences: [], expirationSeconds: 3600 } },
      });
      serviceKubeConfig = cluster.kubeConfigForToken(status!.token);
      asService = activities({ kubeConfig: serviceKubeConfig });
      serviceApps = serviceKubeConfig.makeApiClient(AppsV1Api);
      serviceCore = serviceKubeConfig.makeApiClient(CoreV1Api);
    });

    it('stop, status, start and support pods all work with exactly that role', async () => {
      const ns = await mixedNamespace();
      const before = await snapshot(ns);
      await asService.stopNamespace(ns);
      assert.equal((await asService.namespaceStatus(ns)).phase, 'stopped');
      await asService.startNamespace(ns);
      assert.deepEqual(await snapshot(ns), before);
      await asService.createSupportPod({ name: 'rbac-check', size: 'XS', requestedBy: 'U1' });
      assert.ok((await asService.listSupportPods()).some((p) => p.name === 'rbac-check'));
      assert.equal(await asService.deleteSupportPod('rbac-check'), true);
    });

    it('refuses writes outside it', async () => {
      const ns = await mixedNamespace();
      const forbidden = (error: unknown) => (error as { code?: number }).code === 403;
      await assert.rejects(serviceApps.deleteNamespacedDeployment({ namespace: ns, name: 'api' }), forbidden);
      await assert.rejects(serviceCore.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'x' } } }), forbidden);
      await assert.rejects(serviceCore.createNamespacedPod({ namespace: ns, body: { metadata: { name: 'x' }, spec: template('x').spec } }), forbidden);
      // A support pod outside the support namespace: the activity says what is missing.
      const elsewhere = activities({ kubeConfig: serviceKubeConfig, support: { namespace: ns, image: 'busybox:1.36', sizes: { XS: { cpu: '100m', memory: '128Mi' } } } });
      await assert.rejects(elsewhere.createSupportPod({ name: 'sneaky', size: 'XS', requestedBy: 'U1' }), (error: unknown) => {
        assert.ok(error instanceof ApplicationFailure);
        assert.equal(error.type, 'KubernetesForbidden');
        assert.match(error.message, /HTTP 403.*k8s\/rbac\.yaml/);
        return true;
      });
      assert.equal((await apps.readNamespacedDeployment({ namespace: ns, name: 'api' })).spec?.replicas, 3);
    });
  });

  describe('workflows on the time-skipping server with these activities', () => {
    const HOUR = 60 * 60_000;
    // Each test ends with its workflow still busy (a notification, a timer) as its worker stops.
    const timeSkippingEnv = useTimeSkippingEnv({ perTest: true });

    async function worker() {
      const env = timeSkippingEnv();
      const taskQueue = uniqueTaskQueue('kube-wf');
      const real = activities();
      const instance = await Worker.create({
        connection: env.nativeConnection,
        taskQueue,
        workflowBundle: await workflowBundle(),
        activities: { ...recordingActivities(() => env.currentTimeMs()), ...real },
      });
      return { env, taskQueue, worker: instance };
    }

    it('the environment workflow scales the namespace down at the shutdown time, and start brings every count back', async function () {
      this.timeout(180_000);
      const { env, taskQueue, worker: w } = await worker();
      const ns = await mixedNamespace();
      const before = await snapshot(ns);
      // A shutdown two hours from the server's "now", on a day that does not end before the test does.
      let now = DateTime.fromMillis(await env.currentTimeMs(), { zone: 'UTC' });
      if (now.plus({ hours: 6 }) > now.endOf('day')) {
        await env.sleep(now.endOf('day').diff(now).toMillis() + 2 * HOUR);
        now = DateTime.fromMillis(await env.currentTimeMs(), { zone: 'UTC' });
      }
      const shutdown = now.plus({ hours: 2, minutes: 1 }).startOf('minute');
      const policy: EnvironmentPolicy = {
        shutdownTime: shutdown.toFormat('HH:mm'),
        timeZone: 'UTC',
        workingDays: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'],
        holidays: [],
        warningOffsetsMinutes: [15],
        maxProlongationMinutes: 60,
        afterHoursWindowMinutes: 120,
      };
      await w.runUntil(async () => {
        const handle = await env.client.workflow.start(environmentWorkflow, {
          workflowId: environmentWorkflowId(ns),
          taskQueue,
          args: [{ namespace: ns, policy, enabled: true }],
        });
        await env.sleep(shutdown.toMillis() - (await env.currentTimeMs()) + 5 * 60_000);
        assert.equal((await handle.query(statusQuery)).phase, 'stopped');
        const stopped = await snapshot(ns);
        assert.deepEqual(stopped['Deployment/api'], { replicas: 0, saved: '3' });
        assert.deepEqual(stopped['StatefulSet/cache'], { replicas: 0, saved: '5' });

        const reply = await handle.executeUpdate(startUpdate, { args: [{ by: 'U123' }] });
        assert.equal(reply.report?.changed.length, 5);
        assert.deepEqual(await snapshot(ns), before);
      });
    });

    it('a support pod is deleted on stop, or when its time to live runs out', async function () {
      this.timeout(180_000);
      const { env, taskQueue, worker: w } = await worker();
      await w.runUntil(async () => {
        const podNames = async () => (await core.listNamespacedPod({ namespace: SUPPORT_NAMESPACE })).items.map((p) => p.metadata?.name);

        const stoppedByHand = await env.client.workflow.start(supportPodWorkflow, {
          workflowId: supportPodWorkflowId('manage-a'),
          taskQueue,
          args: [{ name: 'manage-a', size: 'XS', requestedBy: 'U1' }],
        });
        const expiring = await env.client.workflow.start(supportPodWorkflow, {
          workflowId: supportPodWorkflowId('manage-b'),
          taskQueue,
          args: [{ name: 'manage-b', size: 'XS', requestedBy: 'U2', ttlMs: 2 * HOUR }],
        });
        await eventually('both support pods created', async () => ((await podNames()).length === 2 ? true : undefined), 60_000);
        assert.deepEqual((await podNames()).sort(), ['manage-a', 'manage-b']);

        await stoppedByHand.signal(stopSupportPodSignal, { by: 'U9' });
        assert.deepEqual(await stoppedByHand.result().then((r) => [r.deletedBecause, r.deletedBy]), ['stopped', 'U9']);
        assert.deepEqual(await podNames(), ['manage-b']);

        assert.equal((await expiring.result()).deletedBecause, 'expired');
        assert.deepEqual(await podNames(), []);
      });
    });
  });
});
