/**
 * The Kubernetes activities against a real kube-apiserver (test/support/kube.ts): what a
 * person would check with kubectl after a stop or a start.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  AppsV1Api,
  AuthorizationV1Api,
  AutoscalingV2Api,
  BatchV1Api,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  loadAllYaml,
  PatchStrategy,
  setHeaderOptions,
  Watch,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger, Worker } from '@temporalio/worker';
import { DateTime } from 'luxon';
import { createEventRecorder, withEvents } from '../src/activities/events';
import { createLogger, type Logger } from '../src/logger';
import { createKubernetesActivities, type KubernetesSettings } from '../src/activities/kubernetes';
import { EXCLUDE, ORIGINAL_MIN_REPLICAS, ORIGINAL_REPLICAS, ORIGINAL_SUSPEND } from '../src/activities/kubernetes/annotations';
import { FIELD_MANAGER, kubernetesFailure } from '../src/activities/kubernetes/apiserver';
import { createNamespaceStatusReader } from '../src/activities/kubernetes/namespace-status';
import { createNamespaceReader } from '../src/activities/kubernetes/namespaces';
import { createSupportPodReader, SUPPORT_POD_DEADLINE_MARGIN_SECONDS, supportPodManifest } from '../src/activities/kubernetes/support-pods';
import {
  environmentWorkflow,
  environmentWorkflowId,
  startUpdate,
  statusQuery,
  stopSupportPodSignal,
  SUPPORT_POD_MEMO,
  supportPodStateQuery,
  supportPodWorkflow,
  supportPodSlotWorkflowId,
  supportPodWorkflowId,
  type SupportPodMemo,
} from '../src/workflows';
import type { EnvironmentPolicy } from '../src/domain/shutdown-policy';
import type { KubernetesActivities, SupportPod } from '../src/activities/contracts';
import { AUDITED_NAMESPACES, testCluster, type TestCluster } from './support/kube';
import { recordingActivities } from './support/recording-activities';
import { eventually } from './support/slack';
import { devServerEnv, useTimeSkippingEnv, uniqueTaskQueue, workflowBundle } from './support/temporal';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const SUPPORT_NAMESPACE = 'devenv-support';
const SUPPORT_QUOTA = 'devenv-support-pods';
/** Support pods of the name tests, in a namespace of their own: restricted like the shipped one, without its quota (which nothing here ever counts down). */
const NAMES_NAMESPACE = 'support-names';
const HOLD = 'test.devenv-scheduler/hold';

/**
 * The table "What each identity can do" of docs/kubernetes.md, one line per permission:
 * `<ServiceAccount> <API group> <resource> <verb> in <all | namespace,...>`.
 */
function identityTable(markdown: string): string[] {
  const section = markdown.split(/^### What each identity can do$/m)[1];
  assert.ok(section, 'docs/kubernetes.md has no section "What each identity can do"');
  // The first table after the heading, without its header and separator lines.
  const lines = section.split('\n');
  const first = lines.findIndex((line) => line.startsWith('|'));
  const end = lines.findIndex((line, i) => i > first && !line.startsWith('|'));
  const rows = lines.slice(first + 2, end === -1 ? undefined : end);
  const cells = (line: string) =>
    line
      .split('|')
      .slice(1, -1)
      .map((cell) => cell.trim());
  const names = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
  const table: string[] = [];
  for (const row of rows) {
    const [identity, group, resources, verbs, where] = cells(row);
    assert.ok(identity && group && resources && verbs && where, row);
    for (const resource of names(resources)) {
      for (const verb of verbs.split(',').map((v) => v.trim())) {
        table.push(
          `${names(identity)[0]} ${group.replace(/`/g, '')} ${resource} ${verb} in ${where === 'all' ? 'all' : names(where).sort().join(',')}`,
        );
      }
    }
  }
  return table;
}

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
    // The support namespace as k8s/namespace.yaml ships it: Pod Security `restricted`, a ResourceQuota.
    const shipped = loadAllYaml(readFileSync(path.join(__dirname, '../k8s/namespace.yaml'), 'utf8')) as KubernetesObject[];
    const client = KubernetesObjectApi.makeApiClient(cluster.kubeConfig);
    for (const object of shipped.filter((o) => o.metadata?.name === SUPPORT_NAMESPACE || o.metadata?.namespace === SUPPORT_NAMESPACE))
      await client.create(object);
    // No controller-manager counts the quota's usage, and the apiserver admits no pod under a
    // quota it has never counted: play the controller once (no pod yet); admission counts on from there.
    await core.createNamespace({
      body: { metadata: { name: NAMES_NAMESPACE, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } },
    });
    const quota = await core.readNamespacedResourceQuota({ namespace: SUPPORT_NAMESPACE, name: SUPPORT_QUOTA });
    const hard = quota.spec!.hard!;
    await core.patchNamespacedResourceQuotaStatus(
      {
        namespace: SUPPORT_NAMESPACE,
        name: SUPPORT_QUOTA,
        body: { status: { hard, used: Object.fromEntries(Object.keys(hard).map((k) => [k, '0'])) } },
      },
      mergePatch,
    );
  });

  const activities = (overrides: Partial<KubernetesSettings> = {}) =>
    createKubernetesActivities({
      kubeConfig: cluster.kubeConfig,
      dryRun: false,
      logger,
      support: {
        namespace: SUPPORT_NAMESPACE,
        image: 'busybox:1.36',
        sizes: { XS: { cpu: '100m', memory: '128Mi' }, XL: { cpu: '4', memory: '8Gi' } },
      },
      ...overrides,
    });

  /** An environment: only there may the worker's token stop anything (k8s/admission-policy.yaml). */
  async function namespace(): Promise<string> {
    const name = `env${++namespaceCounter}`;
    await core.createNamespace({ body: { metadata: { name, labels: { scheduler: 'enabled' } } } });
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
      body: {
        metadata: { name },
        spec: { replicas, serviceName: name, selector: { matchLabels: { app: name } }, template: template(name) },
      },
    });
  }

  async function cronJob(ns: string, name: string, suspend = false) {
    await batch.createNamespacedCronJob({
      namespace: ns,
      body: {
        metadata: { name },
        spec: {
          schedule: '*/5 * * * *',
          suspend,
          jobTemplate: { spec: { template: { spec: { ...template(name).spec, restartPolicy: 'Never' } } } },
        },
      },
    });
  }

  /** Replicas and annotations of every Deployment and StatefulSet, as `kubectl get` would show them. */
  async function snapshot(ns: string) {
    const [deployments, statefulSets] = await Promise.all([
      apps.listNamespacedDeployment({ namespace: ns }),
      apps.listNamespacedStatefulSet({ namespace: ns }),
    ]);
    return Object.fromEntries(
      [...deployments.items, ...statefulSets.items].map((w) => [
        `${w.kind ?? (w.spec && 'serviceName' in w.spec ? 'StatefulSet' : 'Deployment')}/${w.metadata?.name}`,
        { replicas: w.spec?.replicas, saved: w.metadata?.annotations?.[ORIGINAL_REPLICAS] },
      ]),
    );
  }

  /** No controller-manager runs, so a test plays the Deployment controller's part: it has seen the spec, and every replica is updated, Ready and available. */
  async function markReady(ns: string, name: string, ready: number) {
    const { metadata } = await apps.readNamespacedDeployment({ namespace: ns, name });
    const counts = { replicas: ready, updatedReplicas: ready, readyReplicas: ready, availableReplicas: ready };
    await apps.patchNamespacedDeploymentStatus(
      { namespace: ns, name, body: { status: { observedGeneration: metadata?.generation, ...counts } } },
      mergePatch,
    );
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
    assert.deepEqual(stopped.changed.map((c) => `${c.kind}/${c.name} ${c.from}->${c.to}`).sort(), [
      'CronJob/report 1->0',
      'Deployment/api 3->0',
      'Deployment/web 2->0',
      'StatefulSet/cache 5->0',
      'StatefulSet/db 1->0',
    ]);
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
    assert.deepEqual(
      await cronJobState(ns, 'paused-by-hand'),
      { suspend: true, original: undefined },
      'suspended by a person: stays suspended',
    );

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
      const edges = requests
        .flatMap((r) => [
          { at: r.receivedUs, delta: 1 },
          { at: r.completedUs, delta: -1 },
        ])
        .sort((a, b) => a.at - b.at || a.delta - b.delta);
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
    assert.deepEqual(
      reports.map((r) => r.changed.length),
      AUDITED_NAMESPACES.map(() => WORKLOADS),
      'and every workload restored',
    );
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
    assert.equal(
      interrupted.filter((w) => w.replicas === 0).length,
      2,
      'each write saves and scales together: never one without the other',
    );
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

  it('lists the name of every namespace of the cluster, across pages (what the AWS orphan re-stop trusts to say a namespace is gone)', async () => {
    const ns = await namespace();
    const names = await activities({ pageSize: 2 }).listNamespaceNames();
    assert.ok(names.includes(ns) && names.includes('default') && names.includes('kube-system'), names.join(', '));
    assert.equal(new Set(names).size, names.length);
  });

  it('an unknown namespace fails for good, with its name in the message, and changes nothing', async () => {
    const k8s = activities();
    for (const action of [k8s.stopNamespace, k8s.startNamespace, createNamespaceStatusReader(cluster.kubeConfig)]) {
      await assert.rejects(action('no-such-env'), (error: unknown) => {
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
      get: (target, key, receiver) =>
        key === 'info' ? (_detail: object, message: string) => logged.push(message) : Reflect.get(target, key, receiver),
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
    const namespaceStatus = createNamespaceStatusReader(cluster.kubeConfig);
    assert.equal((await namespaceStatus(ns)).phase, 'starting', 'no pod is ready yet');
    await Promise.all([markReady(ns, 'api', 2), markReady(ns, 'web', 1)]);
    const running = await namespaceStatus(ns);
    assert.equal(running.phase, 'running');
    assert.deepEqual(
      running.workloads.find((w) => w.name === 'api'),
      { kind: 'Deployment', name: 'api', desired: 2, ready: 2, excluded: false },
    );

    await k8s.stopNamespace(ns);
    const stopped = await namespaceStatus(ns);
    assert.equal(stopped.phase, 'stopped', 'the excluded workload does not count');
    assert.equal(stopped.workloads.find((w) => w.name === 'api')?.savedReplicas, 2);

    // Half a start: one workload back, one still waiting at 0 with its saved count.
    await apps.patchNamespacedDeploymentScale({ namespace: ns, name: 'api', body: { spec: { replicas: 2 } } }, mergePatch);
    assert.equal((await namespaceStatus(ns)).phase, 'degraded');
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
    assert.deepEqual(await snapshot(ns), {
      'Deployment/scaled': { replicas: 3, saved: undefined },
      'Deployment/plain': { replicas: 2, saved: undefined },
    });
  });

  it('support pods: created with the size of the catalogue under Pod Security restricted, listed, deleted; bad size or name refused', async () => {
    const k8s = activities();
    const listSupportPods = createSupportPodReader(cluster.kubeConfig, SUPPORT_NAMESPACE);
    const pod = await k8s.createSupportPod({ name: 'manage1', size: 'XL', requestedBy: 'U123' });
    assert.equal(pod.name, 'manage1');
    assert.equal(pod.size, 'XL');
    assert.deepEqual(await k8s.createSupportPod({ name: 'manage1', size: 'XL', requestedBy: 'U123' }), pod, 'a retry finds the same pod');
    const created = await core.readNamespacedPod({ namespace: SUPPORT_NAMESPACE, name: 'manage1' });
    const resources = created.spec?.containers[0]?.resources;
    assert.deepEqual(
      { requests: resources?.requests, limits: resources?.limits },
      { requests: { cpu: '4', memory: '8Gi' }, limits: { cpu: '4', memory: '8Gi' } },
    );
    // Admitted by a namespace that enforces Pod Security `restricted`: non-root, nothing added.
    assert.deepEqual(
      [
        created.spec?.securityContext?.runAsNonRoot,
        created.spec?.securityContext?.runAsUser,
        created.spec?.containers[0]?.securityContext?.allowPrivilegeEscalation,
      ],
      [true, 65534, false],
    );
    assert.deepEqual(
      (await listSupportPods()).map((p) => p.name),
      ['manage1'],
    );

    await assert.rejects(
      k8s.createSupportPod({ name: 'manage2', size: 'XXL', requestedBy: 'U123' }),
      /unknown support pod size "XXL": use one of XS, XL/,
    );
    await assert.rejects(
      k8s.createSupportPod({ name: 'Manage_2', size: 'XS', requestedBy: 'U123' }),
      /invalid support pod name "Manage_2": use lowercase letters/,
    );
    assert.deepEqual(
      (await listSupportPods()).map((p) => p.name),
      ['manage1'],
      'nothing created by a refused request',
    );

    assert.equal(await k8s.deleteSupportPod('manage1'), true);
    assert.equal(await k8s.deleteSupportPod('manage1'), false);
  });

  /** A support pod's name is taken until the pod has gone; the tests below use their own namespace (no quota) and a finalizer to hold a deleted pod terminating. */
  const names = (overrides: Partial<NonNullable<KubernetesSettings['support']>> = {}) =>
    activities({
      support: {
        namespace: NAMES_NAMESPACE,
        image: 'busybox:1.36',
        sizes: { XS: { cpu: '100m', memory: '128Mi' }, XL: { cpu: '4', memory: '8Gi' } },
        namePollMs: 100,
        ...overrides,
      },
    });
  const readNamed = (name: string) => core.readNamespacedPod({ namespace: NAMES_NAMESPACE, name });
  const hold = (name: string) =>
    core.patchNamespacedPod({ namespace: NAMES_NAMESPACE, name, body: { metadata: { finalizers: [HOLD] } } }, mergePatch);
  const release = (name: string) =>
    core.patchNamespacedPod({ namespace: NAMES_NAMESPACE, name, body: { metadata: { finalizers: null } } }, mergePatch);
  /** A pod under Pod Security restricted, as a person would put one there: no devenv-scheduler label or annotation. */
  const byHand = (name: string, metadata: object = {}) =>
    core.createNamespacedPod({
      namespace: NAMES_NAMESPACE,
      body: {
        metadata: { name, ...metadata },
        spec: {
          securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            { name: 'c', image: 'busybox:1.36', securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } },
          ],
        },
      },
    });
  /** The activity as a workflow run calls it: with that run's id. */
  const asRun = (runId: string) => {
    const env = new MockActivityEnvironment(
      { workflowExecution: { workflowId: 'support/x', runId } },
      { logger: new DefaultLogger('ERROR') },
    );
    const beats: unknown[] = [];
    env.on('heartbeat', (details: unknown) => beats.push(details));
    const create = (k8s: KubernetesActivities, request: Parameters<KubernetesActivities['createSupportPod']>[0]) =>
      env.run(k8s.createSupportPod, request) as Promise<SupportPod>;
    return { create, beats };
  };
  const taken = (pattern: RegExp) => (error: unknown) => {
    assert.ok(error instanceof ApplicationFailure, String(error));
    assert.equal(error.type, 'SupportPodNameTaken');
    assert.equal(error.nonRetryable, true);
    assert.match(error.message, pattern);
    return true;
  };

  it('support pods: a name held by another pod is refused with who has it; only the same run finds its pod again; the pod records its run, expiry and a deadline of TTL + margin', async () => {
    const k8s = names();
    const expiresAt = new Date(Date.now() + 2 * 60 * 60_000).toISOString();
    const first = asRun('run-1');
    const pod = await first.create(k8s, { name: 'held1', size: 'XS', requestedBy: 'U1', expiresAt });
    // Another run (the next `support start held1 XL`, a later workflow of the name): refused, nothing changed.
    await assert.rejects(
      asRun('run-2').create(k8s, { name: 'held1', size: 'XL', requestedBy: 'U2', expiresAt }),
      taken(/support pod name "held1" is taken: a pod started by U1 at .*, size XS; pick another name, or delete that pod first/),
    );
    await assert.rejects(
      asRun('run-2').create(k8s, { name: 'held1', size: 'XS', requestedBy: 'U1', expiresAt }),
      taken(/started by U1/),
      'not even for the same person and size',
    );
    const created = await readNamed('held1');
    assert.equal(created.metadata?.annotations?.['devenv-scheduler/size'], 'XS');
    assert.equal(pod.uid, created.metadata?.uid);
    assert.equal(created.metadata?.annotations?.['devenv-scheduler/workflow-run-id'], 'run-1');
    assert.equal(created.metadata?.annotations?.['devenv-scheduler/expires-at'], expiresAt);
    const deadline = created.spec?.activeDeadlineSeconds ?? 0;
    assert.ok(
      deadline <= 2 * 3600 + SUPPORT_POD_DEADLINE_MARGIN_SECONDS && deadline >= 2 * 3600 + SUPPORT_POD_DEADLINE_MARGIN_SECONDS - 5,
      `activeDeadlineSeconds ${deadline}`,
    );
    assert.deepEqual(
      await asRun('run-1').create(k8s, { name: 'held1', size: 'XS', requestedBy: 'U1', expiresAt }),
      pod,
      'a retry of the same run finds its own pod',
    );

    // A pod someone made by hand.
    await byHand('mine');
    await assert.rejects(
      asRun('run-3').create(k8s, { name: 'mine', size: 'XS', requestedBy: 'U3' }),
      taken(/"mine" is taken: a pod not made by devenv-scheduler/),
    );
    assert.equal((await readNamed('mine')).metadata?.labels, undefined, 'left as it was');

    // A pod of an earlier version (labelled and annotated, no run id): the same request takes it up, any other is refused.
    await byHand('legacy1', {
      labels: { 'devenv-scheduler/support-pod': 'true' },
      annotations: { 'devenv-scheduler/size': 'XS', 'devenv-scheduler/requested-by': 'U4' },
    });
    const legacyUid = (await readNamed('legacy1')).metadata?.uid;
    assert.equal((await asRun('run-4').create(k8s, { name: 'legacy1', size: 'XS', requestedBy: 'U4' })).uid, legacyUid);
    await assert.rejects(asRun('run-5').create(k8s, { name: 'legacy1', size: 'XL', requestedBy: 'U4' }), taken(/started by U4 .*size XS/));

    // Deleting by uid deletes that pod only.
    assert.equal(await k8s.deleteSupportPod('held1', 'not-its-uid'), false);
    assert.equal((await readNamed('held1')).metadata?.uid, pod.uid, 'another uid: left alone');
    assert.equal(await k8s.deleteSupportPod('held1', pod.uid), true);
    assert.equal(await k8s.deleteSupportPod('held1', pod.uid), false);
    for (const name of ['mine', 'legacy1']) await k8s.deleteSupportPod(name);
  });

  it('support pods: a name still held by a terminating pod is waited for (heartbeating), then the new pod is created; past the wait the attempt fails to be retried', async () => {
    const k8s = names({ nameWaitMs: 30_000 });
    const old = await asRun('old-run').create(k8s, { name: 'again', size: 'XS', requestedBy: 'U1' });
    // What a kubelet's grace period does to a deleted pod: it stays, with a deletionTimestamp, until it is gone.
    await hold('again');
    assert.equal(await k8s.deleteSupportPod('again', old.uid), true);
    assert.ok((await readNamed('again')).metadata?.deletionTimestamp, 'terminating');

    const next = asRun('new-run');
    let done = false;
    const creating = next.create(k8s, { name: 'again', size: 'XL', requestedBy: 'U2' }).finally(() => {
      done = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(done, false, 'still waiting');
    assert.equal((await readNamed('again')).metadata?.uid, old.uid, 'the old pod is still the one there');
    assert.ok(
      next.beats.some((b) =>
        /the previous pod support-names\/again \(a pod started by U1.*size XS\) is still terminating/.test(JSON.stringify(b)),
      ),
      JSON.stringify(next.beats),
    );
    await release('again');
    const pod = await creating;
    assert.notEqual(pod.uid, old.uid);
    assert.equal(pod.size, 'XL');
    const now = await readNamed('again');
    assert.deepEqual(
      [
        now.metadata?.uid,
        now.metadata?.annotations?.['devenv-scheduler/size'],
        now.metadata?.annotations?.['devenv-scheduler/workflow-run-id'],
      ],
      [pod.uid, 'XL', 'new-run'],
    );

    // A pod that does not go within the wait: the attempt fails, retryably, saying why.
    await hold('again');
    await k8s.deleteSupportPod('again', pod.uid);
    await assert.rejects(
      asRun('third-run').create(names({ nameWaitMs: 300 }), { name: 'again', size: 'XS', requestedBy: 'U3' }),
      (error: unknown) => {
        assert.ok(error instanceof ApplicationFailure, String(error));
        assert.equal(error.type, 'SupportPodNameTerminating');
        assert.equal(error.nonRetryable, false);
        assert.match(error.message, /still terminating, deleted at .*; support pod again is created once it is gone/);
        return true;
      },
    );
    await release('again');
  });

  it('support pods as the cluster has them: every pod of the namespace, its phase and readiness, terminating, deadline, run and expiry', async () => {
    const k8s = names();
    const expiresAt = new Date(Date.now() + 60 * 60_000).toISOString();
    await asRun('list-run').create(k8s, { name: 'listed-ready', size: 'XS', requestedBy: 'U1', expiresAt });
    // No kubelet here: write what it would report.
    const startTime = new Date(Math.floor(Date.now() / 1000) * 1000 - 1000).toISOString();
    await core.patchNamespacedPodStatus(
      {
        namespace: NAMES_NAMESPACE,
        name: 'listed-ready',
        body: { status: { phase: 'Running', startTime, conditions: [{ type: 'Ready', status: 'True' }] } },
      },
      mergePatch,
    );
    await byHand('listed-by-hand');
    await hold('listed-by-hand');
    await core.deleteNamespacedPod({ namespace: NAMES_NAMESPACE, name: 'listed-by-hand' });
    const listed = Object.fromEntries((await createSupportPodReader(cluster.kubeConfig, NAMES_NAMESPACE)()).map((p) => [p.name, p]));
    const ready = listed['listed-ready']!;
    assert.deepEqual(
      [ready.labelled, ready.size, ready.createdBy, ready.phase, ready.ready, ready.deletingSince, ready.workflowRunId, ready.expiresAt],
      [true, 'XS', 'U1', 'Running', true, null, 'list-run', expiresAt],
    );
    assert.equal(
      ready.deadlineAt,
      new Date(Date.parse(startTime) + ready.activeDeadlineSeconds! * 1000).toISOString(),
      'counted from when it started',
    );
    const hand = listed['listed-by-hand']!;
    assert.deepEqual(
      [hand.labelled, hand.size, hand.createdBy, hand.phase, hand.ready, hand.activeDeadlineSeconds, hand.deadlineAt],
      [false, null, null, 'Pending', false, null, null],
    );
    assert.ok(hand.deletingSince, 'terminating');
    await release('listed-by-hand');
    await k8s.deleteSupportPod('listed-ready');
  });

  describe('with the identities of k8s/rbac.yaml and the admission policies of k8s/admission-policy.yaml', () => {
    const NAMESPACE = 'devenv-scheduler';
    const API = 'devenv-scheduler-api';
    const WORKER = 'devenv-scheduler-worker';
    const PROTECTED = ['kube-system', 'kube-public', 'kube-node-lease', NAMESPACE];
    let tokens: Record<string, string>;
    let asApi: ReturnType<typeof createKubernetesActivities>;
    let asWorker: ReturnType<typeof createKubernetesActivities>;
    let workerKubeConfig: KubeConfig;
    let workerApps: AppsV1Api;
    let workerCore: CoreV1Api;
    /** SUPPORT_IMAGE as k8s/config.yaml ships it, which the support-pod policy reads from that ConfigMap. */
    let supportImage: string;
    const supportSizes = { XS: { cpu: '100m', memory: '128Mi' }, XL: { cpu: '4', memory: '8Gi' } };

    const token = async (name: string) =>
      (
        await core.createNamespacedServiceAccountToken({
          namespace: NAMESPACE,
          name,
          body: { spec: { audiences: [], expirationSeconds: 3600 } },
        })
      ).status!.token;
    const forbidden = (error: unknown) => (error as { code?: number }).code === 403;
    /** The apiserver's reason for refusing: the admission policy names itself, RBAC says "cannot". */
    const refusal = async (request: Promise<unknown>): Promise<string> => {
      try {
        await request;
      } catch (error) {
        assert.equal((error as { code?: number }).code, 403, String(error));
        return (JSON.parse((error as { body: string }).body) as { message: string }).message;
      }
      assert.fail('accepted');
    };

    before(async function () {
      this.timeout(60_000);
      // The worker's Role for Argo CD's Applications (the opt-in component k8s/argocd) lives in Argo CD's namespace.
      await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
      // Other suites on this shared apiserver have made an argocd namespace of their own (an infrastructure one, manifests).
      await core.createNamespace({ body: { metadata: { name: 'argocd' } } }).catch((error: { code?: number }) => {
        if (error.code !== 409) throw error;
      });
      const client = KubernetesObjectApi.makeApiClient(cluster.kubeConfig);
      for (const file of ['rbac.yaml', 'argocd/rbac.yaml', 'admission-policy.yaml', 'config.yaml']) {
        for (const object of loadAllYaml(readFileSync(path.join(__dirname, '../k8s', file), 'utf8')) as KubernetesObject[])
          await client.create(object);
      }
      supportImage = (await core.readNamespacedConfigMap({ namespace: NAMESPACE, name: 'devenv-scheduler-config' })).data!.SUPPORT_IMAGE!;
      tokens = { [API]: await token(API), [WORKER]: await token(WORKER) };
      asApi = activities({ kubeConfig: cluster.kubeConfigForToken(tokens[API]!) });
      workerKubeConfig = cluster.kubeConfigForToken(tokens[WORKER]!);
      asWorker = activities({
        kubeConfig: workerKubeConfig,
        support: { namespace: SUPPORT_NAMESPACE, image: supportImage, sizes: supportSizes },
      });
      workerApps = workerKubeConfig.makeApiClient(AppsV1Api);
      workerCore = workerKubeConfig.makeApiClient(CoreV1Api);
      // A policy takes effect once the apiserver has loaded it: probe both with dry runs.
      const probe = await namespace();
      await deployment(probe, 'probe', 1);
      await apps.createNamespacedDeployment({
        namespace: 'kube-system',
        body: {
          metadata: { name: 'probe' },
          spec: { replicas: 1, selector: { matchLabels: { app: 'probe' } }, template: template('probe') },
        },
      });
      for (const [ns, body] of [
        [probe, { spec: { paused: true } }],
        ['kube-system', { spec: { replicas: 0 } }],
      ] as const) {
        await eventually(`the admission policy in ${ns}`, () =>
          workerApps.patchNamespacedDeployment({ namespace: ns, name: 'probe', body, dryRun: 'All' }, mergePatch).then(
            () => undefined,
            (error: unknown) => (forbidden(error) ? true : Promise.reject(error)),
          ),
        );
      }
      // The support-pod policy, once loaded with its ConfigMap: another image refused, the service's own pod admitted.
      const probePod = (image: string) => supportPodManifest({ name: 'probe', size: 'XS', requestedBy: 'U1' }, image, supportSizes.XS);
      await eventually('the support-pod admission policy', async () => {
        const refused = await workerCore
          .createNamespacedPod({ namespace: SUPPORT_NAMESPACE, body: probePod('probe/other:1'), dryRun: 'All' })
          .then(
            () => false,
            (error: unknown) => (forbidden(error) ? true : Promise.reject(error)),
          );
        if (!refused) return undefined;
        return workerCore.createNamespacedPod({ namespace: SUPPORT_NAMESPACE, body: probePod(supportImage), dryRun: 'All' }).then(
          () => true,
          (error: unknown) => (forbidden(error) ? undefined : Promise.reject(error)),
        );
      });
    });

    it('the worker: stop, start and support pods work with exactly its role, under its admission policies', async () => {
      const ns = await mixedNamespace();
      await autoscaling.createNamespacedHorizontalPodAutoscaler({
        namespace: ns,
        body: {
          metadata: { name: 'api' },
          spec: {
            scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'api' },
            minReplicas: 0,
            maxReplicas: 5,
            metrics: [{ type: 'External', external: { metric: { name: 'queue_depth' }, target: { type: 'Value', value: '10' } } }],
          },
        },
      });
      const before = await snapshot(ns);
      const stopped = await asWorker.stopNamespace(ns);
      assert.equal(stopped.changed.length, 6, 'HPA, 2 Deployments, 2 StatefulSets, a CronJob');
      assert.deepEqual(await cronJobState(ns, 'report'), { suspend: true, original: 'false' });
      assert.equal((await autoscaling.readNamespacedHorizontalPodAutoscaler({ namespace: ns, name: 'api' })).spec?.minReplicas, 1);
      await asWorker.startNamespace(ns);
      assert.deepEqual(await snapshot(ns), before);
      assert.deepEqual(await cronJobState(ns, 'report'), { suspend: false, original: undefined });
      assert.equal((await autoscaling.readNamespacedHorizontalPodAutoscaler({ namespace: ns, name: 'api' })).spec?.minReplicas, 0);
      // In the support namespace, which enforces Pod Security `restricted` and a ResourceQuota.
      await asWorker.createSupportPod({ name: 'rbac-check', size: 'XS', requestedBy: 'U1' });
      assert.ok((await createSupportPodReader(workerKubeConfig, SUPPORT_NAMESPACE)()).some((p) => p.name === 'rbac-check'));
      assert.equal(await asWorker.deleteSupportPod('rbac-check'), true);
    });

    it('the API: status works, and it can change nothing', async () => {
      const ns = await mixedNamespace();
      const before = await snapshot(ns);
      const status = await createNamespaceStatusReader(cluster.kubeConfigForToken(tokens[API]!))(ns);
      assert.equal(status.phase, 'starting');
      assert.equal(status.cronJobs.length, 2);
      const refusedByRbac = (error: unknown) => {
        assert.ok(error instanceof ApplicationFailure);
        assert.equal(error.type, 'KubernetesForbidden');
        return true;
      };
      await assert.rejects(asApi.stopNamespace(ns), refusedByRbac);
      await assert.rejects(asApi.createSupportPod({ name: 'from-api', size: 'XS', requestedBy: 'U1' }), refusedByRbac);
      // `support list` reads the support namespace's pods with this identity, and nothing else's.
      await asWorker.createSupportPod({ name: 'seen-by-api', size: 'XS', requestedBy: 'U1' });
      assert.ok(
        (await createSupportPodReader(cluster.kubeConfigForToken(tokens[API]!), SUPPORT_NAMESPACE)()).some((p) => p.name === 'seen-by-api'),
      );
      await assert.rejects(createSupportPodReader(cluster.kubeConfigForToken(tokens[API]!), ns)(), refusedByRbac);
      await asWorker.deleteSupportPod('seen-by-api');
      assert.deepEqual(await snapshot(ns), before);
    });

    it('the API: the admission webhook reads namespaces back with exactly its role (get), as stored, and a missing one as none', async () => {
      const read = createNamespaceReader(cluster.kubeConfigForToken(tokens[API]!));
      const ns = await namespace();
      await core.patchNamespace(
        { name: ns, body: { metadata: { labels: { scheduler: 'disabled' }, annotations: { 'devenv-scheduler/shutdown-time': '20:30' } } } },
        mergePatch,
      );
      const { metadata } = await core.readNamespace({ name: ns });
      assert.deepEqual(await read(ns), {
        name: ns,
        uid: metadata?.uid,
        labels: { 'kubernetes.io/metadata.name': ns, scheduler: 'disabled' },
        annotations: { 'devenv-scheduler/shutdown-time': '20:30' },
        terminating: false,
      });
      assert.equal(await read('no-such-namespace'), undefined, 'a 404 is "not there", not a failure');
      await core.deleteNamespace({ name: ns });
      assert.equal((await read(ns))?.terminating, true, 'being deleted');
    });

    it('the worker may change spec.replicas, suspend, minReplicas and devenv-scheduler/ annotations, and nothing else', async () => {
      const ns = await namespace();
      await Promise.all([deployment(ns, 'api', 3, { team: 'a' }), statefulSet(ns, 'db', 2), cronJob(ns, 'report')]);
      await autoscaling.createNamespacedHorizontalPodAutoscaler({
        namespace: ns,
        body: {
          metadata: { name: 'api' },
          spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'api' }, minReplicas: 1, maxReplicas: 5 },
        },
      });
      const workerBatch = workerKubeConfig.makeApiClient(BatchV1Api);
      const workerAutoscaling = workerKubeConfig.makeApiClient(AutoscalingV2Api);
      const patch = {
        Deployment: (body: object) =>
          workerApps.patchNamespacedDeployment({ namespace: ns, name: 'api', body, fieldManager: FIELD_MANAGER }, mergePatch),
        StatefulSet: (body: object) =>
          workerApps.patchNamespacedStatefulSet({ namespace: ns, name: 'db', body, fieldManager: FIELD_MANAGER }, mergePatch),
        CronJob: (body: object) =>
          workerBatch.patchNamespacedCronJob({ namespace: ns, name: 'report', body, fieldManager: FIELD_MANAGER }, mergePatch),
        HorizontalPodAutoscaler: (body: object) =>
          workerAutoscaling.patchNamespacedHorizontalPodAutoscaler(
            { namespace: ns, name: 'api', body, fieldManager: FIELD_MANAGER },
            mergePatch,
          ),
      };
      const saved = (value: string | null) => ({ annotations: { [ORIGINAL_REPLICAS]: value } });

      // What stop and start send (src/activities/kubernetes/), as the one request each.
      await patch.Deployment({ metadata: saved('3'), spec: { replicas: 0 } });
      await patch.Deployment({ metadata: saved(null), spec: { replicas: 3 } });
      await patch.StatefulSet({ metadata: saved('2'), spec: { replicas: 0 } });
      await patch.CronJob({ metadata: { annotations: { [ORIGINAL_SUSPEND]: 'false' } }, spec: { suspend: true } });
      await patch.HorizontalPodAutoscaler({ metadata: { annotations: { [ORIGINAL_MIN_REPLICAS]: '1' } }, spec: { minReplicas: 2 } });
      const state = async () => ({
        deployment: await apps.readNamespacedDeployment({ namespace: ns, name: 'api' }),
        statefulSet: await apps.readNamespacedStatefulSet({ namespace: ns, name: 'db' }),
        cronJob: await batch.readNamespacedCronJob({ namespace: ns, name: 'report' }),
        hpa: await autoscaling.readNamespacedHorizontalPodAutoscaler({ namespace: ns, name: 'api' }),
      });
      const allowed = await state();
      assert.equal(allowed.deployment.spec?.replicas, 3);
      assert.equal(allowed.deployment.metadata?.annotations?.[ORIGINAL_REPLICAS], undefined);
      assert.deepEqual([allowed.statefulSet.spec?.replicas, allowed.statefulSet.metadata?.annotations?.[ORIGINAL_REPLICAS]], [0, '2']);
      assert.equal(allowed.cronJob.spec?.suspend, true);
      assert.equal(allowed.hpa.spec?.minReplicas, 2);

      const fieldsPolicy = /ValidatingAdmissionPolicy 'devenv-scheduler-worker-fields'/;
      // Field ownership as the apiserver recorded it: the admin's create, then the worker's writes.
      const records = allowed.deployment.metadata!.managedFields!;
      assert.deepEqual(
        records.map((r) => r.manager).sort(),
        [FIELD_MANAGER, records.find((r) => r.manager !== FIELD_MANAGER)!.manager].sort(),
      );
      const others = records.filter((r) => r.manager !== FIELD_MANAGER);
      const own = records.find((r) => r.manager === FIELD_MANAGER)!;
      const withRecords = (managedFields: object[]) => ({ metadata: { managedFields } });
      const refused: [keyof typeof patch, string, object][] = [
        ['Deployment', 'field ownership: every record cleared', withRecords([{}])],
        ['Deployment', "field ownership: another manager's record removed", withRecords([own])],
        [
          'Deployment',
          "field ownership: another manager's record emptied",
          withRecords([own, ...others.map((r) => ({ ...r, fieldsV1: {} }))]),
        ],
        [
          'Deployment',
          'field ownership: a record for a manager that never wrote',
          withRecords([...records, { ...others[0], manager: 'argocd-controller' }]),
        ],
        [
          'Deployment',
          'field ownership: the worker as owner of the pod template',
          withRecords([...others, { ...own, fieldsV1: { 'f:spec': { 'f:template': {} } } }]),
        ],
        [
          'Deployment',
          'field ownership: the worker as owner of a label',
          withRecords([...others, { ...own, fieldsV1: { 'f:metadata': { 'f:labels': { 'f:team': {} } } } }]),
        ],
        ['Deployment', 'the image', { spec: { template: { spec: { containers: [{ name: 'app', image: 'attacker/miner' }] } } } }],
        [
          'Deployment',
          'a privileged container',
          { spec: { template: { spec: { containers: [{ name: 'app', image: 'busybox:1.36', securityContext: { privileged: true } }] } } } },
        ],
        ['Deployment', 'the pod template labels', { spec: { template: { metadata: { labels: { extra: 'x' } } } } }],
        ['Deployment', 'a pod template annotation', { spec: { template: { metadata: { annotations: { 'devenv-scheduler/x': '1' } } } } }],
        ['Deployment', 'a label', { metadata: { labels: { team: 'b' } } }],
        ['Deployment', 'an annotation not its own', { metadata: { annotations: { team: 'b' } } }],
        ['Deployment', 'a new annotation not its own', { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': 'now' } } }],
        [
          'Deployment',
          'an owner reference',
          {
            metadata: {
              ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'gone', uid: '0a1b2c3d-0000-0000-0000-000000000000' }],
            },
          },
        ],
        ['Deployment', 'a finalizer', { metadata: { finalizers: ['example.com/hold'] } }],
        ['Deployment', 'spec.paused', { spec: { paused: true } }],
        ['Deployment', 'the strategy', { spec: { strategy: { type: 'Recreate', rollingUpdate: null } } }],
        [
          'Deployment',
          'replicas together with the image',
          { spec: { replicas: 1, template: { spec: { containers: [{ name: 'app', image: 'attacker/miner' }] } } } },
        ],
        ['StatefulSet', 'the image', { spec: { template: { spec: { containers: [{ name: 'app', image: 'attacker/miner' }] } } } }],
        ['StatefulSet', 'the update strategy', { spec: { updateStrategy: { type: 'OnDelete', rollingUpdate: null } } }],
        ['CronJob', 'the schedule', { spec: { schedule: '* * * * *' } }],
        [
          'CronJob',
          'the job template image',
          { spec: { jobTemplate: { spec: { template: { spec: { containers: [{ name: 'app', image: 'attacker/miner' }] } } } } } },
        ],
        ['CronJob', 'suspend together with another field', { spec: { suspend: false, startingDeadlineSeconds: 5 } }],
        ['HorizontalPodAutoscaler', 'maxReplicas', { spec: { maxReplicas: 100 } }],
        ['HorizontalPodAutoscaler', 'the target', { spec: { scaleTargetRef: { name: 'db', kind: 'StatefulSet' } } }],
      ];
      const messages: string[] = [];
      for (const [kind, what, body] of refused) {
        const message = await refusal(patch[kind](body));
        assert.match(message, fieldsPolicy, `${kind}: ${what}`);
        messages.push(message);
      }
      assert.ok(messages.some((m) => /may change only spec\.replicas of deployments/.test(m)));
      assert.ok(messages.some((m) => /may change no metadata but its own annotations/.test(m)));
      assert.ok(messages.some((m) => /may change only annotations whose key starts with devenv-scheduler\//.test(m)));
      assert.ok(messages.some((m) => /may not remove another manager's field ownership/.test(m)));
      assert.ok(messages.some((m) => /may not change another manager's field ownership/.test(m)));
      assert.ok(
        messages.some((m) => /may record itself \(managedFields, manager devenv-scheduler\) as the owner of spec\.replicas/.test(m)),
      );
      // Same resourceVersions: not one refused request was written.
      const versions = (objects: Awaited<ReturnType<typeof state>>) => Object.values(objects).map((o) => o.metadata?.resourceVersion);
      assert.deepEqual(versions(await state()), versions(allowed), 'nothing refused was written');

      // Creating, deleting, the scale and status subresources: RBAC already says no.
      assert.match(
        await refusal(workerApps.deleteNamespacedDeployment({ namespace: ns, name: 'api' })),
        /cannot delete resource "deployments"/,
      );
      assert.match(
        await refusal(
          workerApps.createNamespacedDeployment({
            namespace: ns,
            body: { metadata: { name: 'new' }, spec: { selector: { matchLabels: { app: 'new' } }, template: template('new') } },
          }),
        ),
        /cannot create resource "deployments"/,
      );
      assert.match(
        await refusal(
          workerApps.patchNamespacedDeploymentScale({ namespace: ns, name: 'api', body: { spec: { replicas: 9 } } }, mergePatch),
        ),
        /cannot patch resource "deployments\/scale"/,
      );
      assert.match(
        await refusal(
          workerApps.patchNamespacedDeploymentStatus({ namespace: ns, name: 'api', body: { status: { replicas: 9 } } }, mergePatch),
        ),
        /cannot patch resource "deployments\/status"/,
      );
    });

    it('outside the environments the worker may only put back what it saved: an ingress controller, cert-manager or Temporal is never scaled down', async () => {
      const environmentsOnly = /ValidatingAdmissionPolicy 'devenv-scheduler-worker-environments-only'.*may only restore what it saved/;
      for (const ns of [`ingress-nginx-${namespaceCounter}`, `temporal-${namespaceCounter}`]) {
        await core.createNamespace({ body: { metadata: { name: ns } } });
        await deployment(ns, 'controller', 2);
        const write = (body: object) =>
          workerApps.patchNamespacedDeployment({ namespace: ns, name: 'controller', body, fieldManager: FIELD_MANAGER }, mergePatch);
        assert.match(
          await refusal(write({ metadata: { annotations: { [ORIGINAL_REPLICAS]: '2' } }, spec: { replicas: 0 } })),
          environmentsOnly,
          `${ns}: a stop`,
        );
        assert.equal((await apps.readNamespacedDeployment({ namespace: ns, name: 'controller' })).spec?.replicas, 2);
        // A namespace that left management while stopped: its saved count is put back, and only that.
        await apps.patchNamespacedDeployment(
          { namespace: ns, name: 'controller', body: { metadata: { annotations: { [ORIGINAL_REPLICAS]: '2' } }, spec: { replicas: 0 } } },
          mergePatch,
        );
        assert.match(
          await refusal(write({ metadata: { annotations: { [ORIGINAL_REPLICAS]: null } }, spec: { replicas: 5 } })),
          environmentsOnly,
          `${ns}: not the saved count`,
        );
        assert.match(
          await refusal(write({ metadata: { annotations: { [ORIGINAL_REPLICAS]: '7' } } })),
          environmentsOnly,
          `${ns}: another saved count`,
        );
        await write({ metadata: { annotations: { [ORIGINAL_REPLICAS]: null } }, spec: { replicas: 2 } });
        assert.equal((await apps.readNamespacedDeployment({ namespace: ns, name: 'controller' })).spec?.replicas, 2);
      }
    });

    it('a workload many tools have written to stops and starts: past ten records the apiserver folds the oldest into ancient-changes', async () => {
      for (const tools of [9, 13]) {
        const ns = await namespace();
        await apps.createNamespacedDeployment({
          namespace: ns,
          body: {
            metadata: { name: 'busy' },
            spec: { replicas: 2, selector: { matchLabels: { app: 'busy' } }, template: template('busy') },
          },
          fieldManager: 'kubectl-create',
        });
        for (let i = 0; i < tools; i++) {
          await apps.patchNamespacedDeployment(
            {
              namespace: ns,
              name: 'busy',
              body: { metadata: { annotations: { [`example.com/tool-${i}`]: 'x' } } },
              fieldManager: `tool-${i}`,
            },
            mergePatch,
          );
        }
        const stopped = await asWorker.stopNamespace(ns);
        assert.equal(stopped.changed.length, 1, `${tools + 1} writers`);
        assert.equal((await apps.readNamespacedDeployment({ namespace: ns, name: 'busy' })).spec?.replicas, 0);
        await asWorker.startNamespace(ns);
        const busy = await apps.readNamespacedDeployment({ namespace: ns, name: 'busy' });
        assert.equal(busy.spec?.replicas, 2);
        if (tools > 9)
          assert.ok(
            busy.metadata?.managedFields?.some((r) => r.manager?.startsWith('ancient-changes')),
            'the apiserver folded records',
          );
      }
    });

    it('the worker may write nothing at all in kube-system, kube-public, kube-node-lease or its own namespace, even one labelled as an environment', async () => {
      // Labelled scheduler=enabled, by mistake or by an attacker: the environments-only policy lets the writes through, this one does not.
      const label = (value: string | null) =>
        Promise.all(
          PROTECTED.map((name) => core.patchNamespace({ name, body: { metadata: { labels: { scheduler: value } } } }, mergePatch)),
        );
      await label('enabled');
      try {
        for (const ns of PROTECTED) {
          await deployment(ns, 'victim', 2).catch((error: unknown) => {
            if ((error as { code?: number }).code !== 409) throw error;
          });
          const policy = new RegExp(
            `ValidatingAdmissionPolicy 'devenv-scheduler-worker-protected-namespaces'.*may not write in namespace ${ns}`,
          );
          // Writes the fields policy allows, as stop sends them.
          assert.match(
            await refusal(
              workerApps.patchNamespacedDeployment(
                { namespace: ns, name: 'victim', body: { spec: { replicas: 0 } }, fieldManager: FIELD_MANAGER },
                mergePatch,
              ),
            ),
            policy,
            ns,
          );
          assert.match(
            await refusal(
              workerApps.patchNamespacedDeployment(
                { namespace: ns, name: 'victim', body: { metadata: saved('2') }, fieldManager: FIELD_MANAGER },
                mergePatch,
              ),
            ),
            policy,
            ns,
          );
          assert.equal((await apps.readNamespacedDeployment({ namespace: ns, name: 'victim' })).spec?.replicas, 2);
        }
        function saved(value: string) {
          return { annotations: { [ORIGINAL_REPLICAS]: value } };
        }
        await assert.rejects(asWorker.stopNamespace('kube-system'), (error: unknown) => {
          assert.ok(error instanceof ApplicationFailure);
          assert.equal(error.type, 'KubernetesPolicyDenied');
          assert.match(
            error.message,
            /Kubernetes refused to save the replica count of Deployment kube-system\/\S+ .*HTTP 403.*k8s\/admission-policy\.yaml.*may not write in namespace kube-system/,
          );
          return true;
        });
        assert.match(
          await refusal(
            workerCore.createNamespacedPod({ namespace: 'kube-system', body: { metadata: { name: 'x' }, spec: template('x').spec } }),
          ),
          /cannot create resource "pods"/,
        );
      } finally {
        await label(null);
      }
    });

    it('a privileged pod from the worker in the support namespace is refused by Pod Security, and a used-up quota is reported as such', async () => {
      const privileged = {
        metadata: { name: 'privileged' },
        spec: { containers: [{ name: 'root', image: 'busybox:1.36', securityContext: { privileged: true } }], hostPID: true },
      };
      let podSecurity: unknown;
      await assert.rejects(
        workerCore.createNamespacedPod({ namespace: SUPPORT_NAMESPACE, body: privileged }).catch((error: unknown) => {
          podSecurity = error;
          throw error;
        }),
        forbidden,
      );
      const reported = kubernetesFailure('create support pod privileged', podSecurity);
      assert.ok(reported instanceof ApplicationFailure);
      assert.equal(reported.type, 'KubernetesPodSecurity');
      assert.match(
        reported.message,
        /Pod Security level does not admit the pod: pods "privileged" is forbidden: violates PodSecurity "restricted:latest": .*privileged \(container "root" must not set securityContext\.privileged=true\)/,
      );

      // The quota controller is not running here: play its part, and count the quota as full.
      const quota = await core.readNamespacedResourceQuota({ namespace: SUPPORT_NAMESPACE, name: SUPPORT_QUOTA });
      const used = quota.status?.used;
      await core.patchNamespacedResourceQuotaStatus(
        { namespace: SUPPORT_NAMESPACE, name: SUPPORT_QUOTA, body: { status: { used: { ...used, pods: quota.spec!.hard!.pods } } } },
        mergePatch,
      );
      try {
        await assert.rejects(asWorker.createSupportPod({ name: 'one-too-many', size: 'XS', requestedBy: 'U1' }), (error: unknown) => {
          assert.ok(error instanceof ApplicationFailure);
          assert.equal(error.type, 'KubernetesQuotaExceeded');
          assert.equal(error.nonRetryable, true);
          assert.match(
            error.message,
            /ResourceQuota is used up \(stop a support pod or raise the quota\): .*exceeded quota: devenv-support-pods/,
          );
          return true;
        });
      } finally {
        await core.patchNamespacedResourceQuotaStatus(
          { namespace: SUPPORT_NAMESPACE, name: SUPPORT_QUOTA, body: { status: { used } } },
          mergePatch,
        );
      }
    });

    it("records each announcement as an Event on the namespace with the worker's identity, once however often it is retried; a refused one does not hold the notification up", async () => {
      const ns = await namespace();
      const delivered: string[] = [];
      const lines: string[] = [];
      const warnings = new Proxy(logger, {
        get: (target, key, receiver) =>
          key === 'warn' ? (_detail: object, message: string) => lines.push(message) : Reflect.get(target, key, receiver),
      });
      const notify = withEvents(
        { notify: async (event) => void delivered.push(`${event.kind}:${event.namespace}`) },
        createEventRecorder(workerKubeConfig, warnings),
      ).notify;
      const report = { namespace: ns, changed: [{ kind: 'Deployment', name: 'api', from: 3, to: 0 }], unchanged: 0, durationMs: 5 };
      const stopped = { kind: 'stopped' as const, namespace: ns, by: 'schedule', report };
      const attempt = (activityId: string, attemptNumber: number) =>
        new MockActivityEnvironment({ activityId, attempt: attemptNumber, workflowExecution: { workflowId: `env/${ns}`, runId: 'run-1' } });
      // One notification, delivered on its third attempt; then another one.
      for (const n of [1, 2, 3]) await attempt('7', n).run(notify, stopped);
      await attempt('9', 1).run(notify, {
        kind: 'warning' as const,
        namespace: ns,
        shutdownAt: '2026-12-02T19:00:00.000+01:00',
        minutesLeft: 15,
        offsetMinutes: 15,
      });
      const gaveUp = 'AWS: rds-instance orders-db still stopping after 1h: not started; start the environment again';
      await attempt('10', 1).run(notify, {
        kind: 'aws-followed' as const,
        namespace: ns,
        action: 'start' as const,
        detail: 'AWS: nothing left to start at 2026-12-02 09:05 CET',
        problems: [gaveUp],
      });
      const events = await core.listNamespacedEvent({ namespace: ns, fieldSelector: 'source=devenv-scheduler' });
      assert.deepEqual(
        events.items.map((e) => [e.reason, e.type, e.involvedObject.kind, e.involvedObject.name, e.message]).sort(),
        [
          ['ShutdownWarning', 'Normal', 'Namespace', ns, 'Stops at 2026-12-02T19:00:00.000+01:00 (in 15 min).'],
          ['AwsStartFollowedUp', 'Warning', 'Namespace', ns, `AWS: nothing left to start at 2026-12-02 09:05 CET. Not done: ${gaveUp}`],
          ['Stopped', 'Normal', 'Namespace', ns, 'Stopped by schedule: 1 workload scaled down.'],
        ].sort(),
      );
      assert.deepEqual(
        delivered,
        [`stopped:${ns}`, `stopped:${ns}`, `stopped:${ns}`, `warning:${ns}`, `aws-followed:${ns}`],
        'every attempt still delivers',
      );
      // The worker may write no Event in a protected namespace: logged, and delivered anyway.
      await attempt('11', 1).run(notify, { ...stopped, namespace: 'kube-system', problems: ['AWS could not stop: AccessDenied.'] });
      assert.equal(delivered.at(-1), 'stopped:kube-system');
      assert.ok(
        lines.some((line) => line.includes('could not record the Kubernetes Event')),
        lines.join('\n'),
      );
      const system = await core.listNamespacedEvent({ namespace: 'kube-system', fieldSelector: 'source=devenv-scheduler' });
      assert.equal(system.items.length, 0);
    });

    it("in the support namespace the worker creates the service's own support pod and nothing else: another image, command, volume, token, securityContext, label or field is refused", async () => {
      const quota = await core.readNamespacedResourceQuota({ namespace: SUPPORT_NAMESPACE, name: SUPPORT_QUOTA });
      try {
        // The service's own pods, with the image SUPPORT_IMAGE of the shipped ConfigMap: with an expiry, and with the longest deadline.
        await asWorker.createSupportPod({
          name: 'own-pod',
          size: 'XS',
          requestedBy: 'U1',
          expiresAt: new Date(Date.now() + 60 * 60_000).toISOString(),
        });
        await asWorker.createSupportPod({ name: 'own-pod-longest', size: 'XL', requestedBy: 'U1' });
        const own = await core.readNamespacedPod({ namespace: SUPPORT_NAMESPACE, name: 'own-pod-longest' });
        assert.equal(own.spec?.containers[0]?.image, supportImage);
        for (const name of ['own-pod', 'own-pod-longest']) assert.equal(await asWorker.deleteSupportPod(name), true);

        const policy = /ValidatingAdmissionPolicy 'devenv-scheduler-worker-support-pods'/;
        type Pod = ReturnType<typeof supportPodManifest>;
        const variant = (name: string, change: (pod: Pod) => void): Pod => {
          const pod = supportPodManifest(
            { name, size: 'XS', requestedBy: 'U1', expiresAt: new Date(Date.now() + 60 * 60_000).toISOString() },
            supportImage,
            supportSizes.XS,
          );
          change(pod);
          return pod;
        };
        const shell = (pod: Pod) => pod.spec!.containers[0]!;
        const refused: [string, RegExp, (pod: Pod) => void][] = [
          [
            'another image',
            /may run support pods of the image debian:bookworm-slim \(SUPPORT_IMAGE\) only/,
            (p) => (shell(p).image = 'attacker/miner:latest'),
          ],
          ['another command', /may run only the command `sleep infinity`/, (p) => (shell(p).command = ['sh', '-c', 'id'])],
          ['arguments', /may run only the command `sleep infinity`/, (p) => (shell(p).args = ['--and-more'])],
          [
            'a Secret volume',
            /has no volumes/,
            (p) => {
              p.spec!.volumes = [{ name: 'creds', secret: { secretName: 'anything' } }];
              shell(p).volumeMounts = [{ name: 'creds', mountPath: '/creds' }];
            },
          ],
          [
            'a projected ServiceAccount token',
            /has no volumes/,
            (p) => {
              // Named as the ServiceAccount admission plugin of a real cluster names it (this test control plane runs without it).
              p.spec!.serviceAccountName = 'default';
              p.spec!.volumes = [
                {
                  name: 'token',
                  projected: { sources: [{ serviceAccountToken: { path: 'token', audience: 'https://kubernetes.default.svc' } }] },
                },
              ];
            },
          ],
          ['an emptyDir', /has no volumes/, (p) => (p.spec!.volumes = [{ name: 'scratch', emptyDir: {} }])],
          ['the ServiceAccount token mounted', /gets no ServiceAccount token/, (p) => (p.spec!.automountServiceAccountToken = true)],
          ['another ServiceAccount', /gets no ServiceAccount token/, (p) => (p.spec!.serviceAccountName = 'devenv-scheduler-worker')],
          ['another user', /has the service's securityContext/, (p) => (p.spec!.securityContext!.runAsUser = 1000)],
          ['a supplemental group', /has the service's securityContext/, (p) => (p.spec!.securityContext!.supplementalGroups = [0])],
          [
            'a capability kept',
            /has the service's securityContext/,
            (p) => (shell(p).securityContext!.capabilities = { drop: ['ALL'], add: ['NET_BIND_SERVICE'] }),
          ],
          [
            'a label of its own',
            /has the labels app\.kubernetes\.io\/managed-by=devenv-scheduler and devenv-scheduler\/support-pod=true/,
            (p) => (p.metadata!.labels!.app = 'web'),
          ],
          ['no support-pod label', /has the labels/, (p) => delete p.metadata!.labels!['devenv-scheduler/support-pod']],
          [
            'an annotation not its own',
            /has the labels/,
            (p) => (p.metadata!.annotations!['kubectl.kubernetes.io/default-container'] = 'shell'),
          ],
          ['a finalizer', /has the labels/, (p) => (p.metadata!.finalizers = ['example.com/hold'])],
          [
            'a node of its choosing',
            /only the fields the service sets \(not spec\.nodeName\)/,
            (p) => (p.spec!.nodeName = 'control-plane-1'),
          ],
          [
            'a toleration of every taint',
            /no toleration but the not-ready and unreachable ones/,
            (p) => (p.spec!.tolerations = [{ operator: 'Exists' }]),
          ],
          [
            'a not-ready toleration held for ever',
            /no toleration but the not-ready and unreachable ones for at most 300 s/,
            (p) => (p.spec!.tolerations = [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' }]),
          ],
          ['another scheduler', /the default scheduler/, (p) => (p.spec!.schedulerName = 'my-scheduler')],
          ["the node's resolver", /the default scheduler, DNS/, (p) => (p.spec!.dnsPolicy = 'Default')],
          [
            'a termination message path of its choosing',
            /termination message path/,
            (p) => (shell(p).terminationMessagePath = '/etc/hostname'),
          ],
          ['an image never pulled', /only the fields the service sets/, (p) => (shell(p).imagePullPolicy = 'Never')],
          [
            'an init container',
            /only the fields the service sets \(not spec\.initContainers\)/,
            (p) => (p.spec!.initContainers = [{ ...shell(p), name: 'init', image: 'attacker/miner:latest' }]),
          ],
          ['a second container', /has one container, shell/, (p) => p.spec!.containers.push({ ...shell(p), name: 'second' })],
          [
            'environment from a Secret',
            /only the fields the service sets \(not container\.envFrom\)/,
            (p) => (shell(p).envFrom = [{ secretRef: { name: 'anything' } }]),
          ],
          [
            'a command at start (lifecycle)',
            /only the fields the service sets \(not container\.lifecycle\)/,
            (p) => (shell(p).lifecycle = { postStart: { exec: { command: ['sh', '-c', 'id'] } } }),
          ],
          ['no deadline', /has a deadline \(activeDeadlineSeconds/, (p) => delete p.spec!.activeDeadlineSeconds],
          [
            'requests below its limits',
            /requests equal to its limits/,
            (p) => (shell(p).resources!.requests = { cpu: '10m', memory: '16Mi' }),
          ],
        ];
        const problems: string[] = [];
        for (const [what, reason, change] of refused) {
          const name = `refused-${refused.findIndex(([w]) => w === what)}`;
          try {
            await workerCore.createNamespacedPod({ namespace: SUPPORT_NAMESPACE, body: variant(name, change) });
            problems.push(`${what}: admitted`);
            await core.deleteNamespacedPod({ namespace: SUPPORT_NAMESPACE, name });
          } catch (error) {
            const message = (JSON.parse((error as { body?: string }).body ?? '{}') as { message?: string }).message ?? String(error);
            if ((error as { code?: number }).code !== 403 || !policy.test(message) || !reason.test(message))
              problems.push(`${what}: ${message}`);
          }
        }
        assert.deepEqual(problems, []);
        // A hostPath volume or the host's network: Pod Security `restricted` refuses them first, and the policy would too.
        const hostPath = variant('host-path', (p) => (p.spec!.volumes = [{ name: 'root', hostPath: { path: '/' } }]));
        assert.match(
          await refusal(workerCore.createNamespacedPod({ namespace: SUPPORT_NAMESPACE, body: hostPath })),
          /violates PodSecurity "restricted:latest": .*hostPath/,
        );
        const hostNetwork = variant('host-network', (p) => (p.spec!.hostNetwork = true));
        assert.match(
          await refusal(workerCore.createNamespacedPod({ namespace: SUPPORT_NAMESPACE, body: hostNetwork })),
          /violates PodSecurity "restricted:latest": host namespaces/,
        );
        assert.equal(
          (await core.listNamespacedPod({ namespace: SUPPORT_NAMESPACE })).items.filter((p) => /^refused-|^host-/.test(p.metadata!.name!))
            .length,
          0,
          'nothing refused was created',
        );

        // A pod is never changed afterwards (RBAC grants no update either; the policy refuses it regardless).
        await asWorker.createSupportPod({ name: 'own-pod', size: 'XS', requestedBy: 'U1' });
        assert.match(
          await refusal(
            workerCore.patchNamespacedPod(
              {
                namespace: SUPPORT_NAMESPACE,
                name: 'own-pod',
                body: { spec: { containers: [{ name: 'shell', image: 'attacker/miner:latest' }] } },
              },
              mergePatch,
            ),
          ),
          /cannot patch resource "pods"/,
        );
        assert.equal(await asWorker.deleteSupportPod('own-pod'), true);

        // A worker whose SUPPORT_IMAGE is not the ConfigMap's (changed in one place only): the activity says it is the policy.
        const elsewhere = activities({
          kubeConfig: workerKubeConfig,
          support: { namespace: SUPPORT_NAMESPACE, image: 'busybox:1.36', sizes: supportSizes },
        });
        await assert.rejects(elsewhere.createSupportPod({ name: 'other-image', size: 'XS', requestedBy: 'U1' }), (error: unknown) => {
          assert.ok(error instanceof ApplicationFailure);
          assert.equal(error.type, 'KubernetesPolicyDenied');
          assert.equal(error.nonRetryable, true);
          assert.match(
            error.message,
            /create support pod devenv-support\/other-image .*HTTP 403.*k8s\/admission-policy\.yaml.*image debian:bookworm-slim \(SUPPORT_IMAGE\) only/,
          );
          return true;
        });
      } finally {
        // No quota controller runs here to give back what the created pods counted.
        await core.patchNamespacedResourceQuotaStatus(
          { namespace: SUPPORT_NAMESPACE, name: SUPPORT_QUOTA, body: { status: { used: quota.status?.used } } },
          mergePatch,
        );
      }
    });

    it("may watch Deployments cluster-wide (the drift watch sees a stopped workload woken), which the API's identity may not", async () => {
      const ns = await namespace();
      await deployment(ns, 'watched', 0, { [ORIGINAL_REPLICAS]: '2' });
      const seen = new Promise<string>((resolve, reject) => {
        void new Watch(workerKubeConfig)
          .watch(
            '/apis/apps/v1/deployments',
            {},
            (phase, object: { metadata?: { namespace?: string; name?: string } }) => {
              if (object.metadata?.namespace === ns && phase === 'MODIFIED') resolve(`${phase} ${object.metadata.name}`);
            },
            (err: unknown) => (err ? reject(err as Error) : undefined),
          )
          .then((abort) => void seen.finally(() => abort.abort()), reject);
      });
      await new Promise((resolve) => setTimeout(resolve, 500));
      await apps.patchNamespacedDeployment({ namespace: ns, name: 'watched', body: { spec: { replicas: 2 } } }, mergePatch);
      assert.equal(await seen, 'MODIFIED watched');
      const api = cluster.kubeConfigForToken(tokens[API]!);
      const refused = await new Promise<unknown>((resolve) => {
        void new Watch(api).watch('/apis/apps/v1/deployments', {}, () => undefined, resolve).catch(resolve);
      });
      assert.match(String((refused as { message?: string })?.message ?? refused), /403|Forbidden/);
    });

    it('refuses writes outside its roles, and says it is RBAC', async () => {
      const ns = await mixedNamespace();
      await assert.rejects(workerApps.deleteNamespacedDeployment({ namespace: ns, name: 'api' }), forbidden);
      await assert.rejects(workerCore.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'x' } } }), forbidden);
      await assert.rejects(
        workerCore.createNamespacedPod({ namespace: ns, body: { metadata: { name: 'x' }, spec: template('x').spec } }),
        forbidden,
      );
      // A support pod outside the support namespace: the activity says what is missing.
      const elsewhere = activities({
        kubeConfig: workerKubeConfig,
        support: { namespace: ns, image: 'busybox:1.36', sizes: { XS: { cpu: '100m', memory: '128Mi' } } },
      });
      await assert.rejects(elsewhere.createSupportPod({ name: 'sneaky', size: 'XS', requestedBy: 'U1' }), (error: unknown) => {
        assert.ok(error instanceof ApplicationFailure);
        assert.equal(error.type, 'KubernetesForbidden');
        assert.match(error.message, /HTTP 403.*k8s\/rbac\.yaml.*cannot create resource "pods"/);
        return true;
      });
      assert.equal((await apps.readNamespacedDeployment({ namespace: ns, name: 'api' })).spec?.replicas, 3);
    });

    it('every permission each identity holds, as the apiserver answers its token, is the table in docs/kubernetes.md', async () => {
      const documented = identityTable(readFileSync(path.join(__dirname, '../docs/kubernetes.md'), 'utf8'));
      // What every ServiceAccount may do (discovery, self reviews): one bound to nothing shows it.
      await core.createNamespacedServiceAccount({ namespace: NAMESPACE, body: { metadata: { name: 'bound-to-nothing' } } });
      const baseline = await token('bound-to-nothing');
      const namespaces = (await core.listNamespace()).items.map((n) => n.metadata!.name!);
      assert.ok(namespaces.includes(SUPPORT_NAMESPACE) && namespaces.includes('kube-system'));
      const rules = async (bearer: string) => {
        const authorization = cluster.kubeConfigForToken(bearer).makeApiClient(AuthorizationV1Api);
        const held = new Map<string, Set<string>>();
        let nonResource: string[] | undefined;
        for (const ns of namespaces) {
          const { status } = await authorization.createSelfSubjectRulesReview({ body: { spec: { namespace: ns } } });
          assert.equal(status!.incomplete, false);
          for (const rule of status!.resourceRules) {
            for (const group of rule.apiGroups ?? []) {
              for (const resource of rule.resources ?? []) {
                for (const verb of rule.verbs) {
                  const key = `${group || 'core'} ${resource} ${verb}${rule.resourceNames?.length ? ` [${rule.resourceNames.join(',')}]` : ''}`;
                  held.set(key, (held.get(key) ?? new Set()).add(ns));
                }
              }
            }
          }
          const urls = status!.nonResourceRules
            .flatMap((r) => r.verbs.flatMap((v) => (r.nonResourceURLs ?? []).map((u) => `${v} ${u}`)))
            .sort();
          nonResource ??= urls;
          assert.deepEqual(urls, nonResource);
        }
        return { held, nonResource: nonResource! };
      };
      const everyone = await rules(baseline);
      const actual: string[] = [];
      for (const identity of [API, WORKER]) {
        const { held, nonResource } = await rules(tokens[identity]!);
        assert.deepEqual(nonResource, everyone.nonResource, `${identity}: no non-resource URL beyond what every ServiceAccount has`);
        for (const [key, where] of held) {
          if (everyone.held.get(key)?.size === namespaces.length) continue;
          actual.push(`${identity} ${key} in ${where.size === namespaces.length ? 'all' : [...where].sort().join(',')}`);
        }
      }
      assert.deepEqual(actual.sort(), documented.sort());
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

        // The kubelet's backstop, for a pod whose workflow is gone: the time to live and a margin.
        const deadlines = await Promise.all(
          ['manage-a', 'manage-b'].map(
            async (name) => (await core.readNamespacedPod({ namespace: SUPPORT_NAMESPACE, name })).spec?.activeDeadlineSeconds,
          ),
        );
        for (const [deadline, ttlSeconds] of [
          [deadlines[0], 8 * 3600],
          [deadlines[1], 2 * 3600],
        ] as const) {
          assert.ok(
            deadline! <= ttlSeconds + SUPPORT_POD_DEADLINE_MARGIN_SECONDS &&
              deadline! >= ttlSeconds + SUPPORT_POD_DEADLINE_MARGIN_SECONDS - 30,
            `activeDeadlineSeconds ${deadline}`,
          );
        }

        await stoppedByHand.signal(stopSupportPodSignal, { by: 'U9' });
        assert.deepEqual(await stoppedByHand.result().then((r) => [r.deletedBecause, r.deletedBy]), ['stopped', 'U9']);
        assert.deepEqual(await podNames(), ['manage-b']);

        assert.equal((await expiring.result()).deletedBecause, 'expired');
        assert.deepEqual(await podNames(), []);
      });
    });
  });
  describe('the support-pod workflow on a Temporal dev server with these activities', () => {
    it('a support-pod workflow cancelled (temporal workflow cancel) deletes its pod before it gives its slot back', async function () {
      this.timeout(120_000);
      const env = await devServerEnv();
      const taskQueue = uniqueTaskQueue('kube-support-cancel');
      const k8s = names();
      const instance = await Worker.create({
        connection: env.nativeConnection,
        taskQueue,
        workflowBundle: await workflowBundle(),
        activities: k8s,
      });
      await instance.runUntil(async () => {
        const name = `cancelled-${process.pid % 10000}`;
        const requestedBy = `UCANCEL${process.pid % 10000}`;
        const handle = await env.client.workflow.start(supportPodWorkflow, {
          workflowId: supportPodWorkflowId(name),
          taskQueue,
          args: [{ name, size: 'XS', requestedBy, ttlMs: 60 * 60_000, maxPerRequester: 1 }],
        });
        await eventually('its pod created', async () => ((await handle.query(supportPodStateQuery)).pod ? true : undefined));
        await handle.cancel();
        await assert.rejects(handle.result());
        await assert.rejects(readNamed(name), (err: { code?: number }) => err.code === 404, 'the pod is gone');
        const slot = await env.client.workflow.getHandle(supportPodSlotWorkflowId(requestedBy, 1)).describe();
        assert.notEqual(slot.status.name, 'RUNNING', 'and the slot given back');
      });
    });

    it('waits for the previous pod of its name to terminate, then creates its own; a stop while it waits ends it, creating nothing and leaving the old pod alone', async function () {
      this.timeout(120_000);
      const env = await devServerEnv();
      const taskQueue = uniqueTaskQueue('kube-support');
      const k8s = names();
      const instance = await Worker.create({
        connection: env.nativeConnection,
        taskQueue,
        workflowBundle: await workflowBundle(),
        activities: k8s,
      });
      await instance.runUntil(async () => {
        const terminating = async (name: string) => {
          const old = await asRun(`earlier-${name}`).create(k8s, { name, size: 'XS', requestedBy: 'U1' });
          await hold(name);
          await k8s.deleteSupportPod(name, old.uid);
          return old;
        };
        const start = (name: string) =>
          env.client.workflow.start(supportPodWorkflow, {
            workflowId: supportPodWorkflowId(name),
            taskQueue,
            args: [{ name, size: 'XL', requestedBy: 'U2', ttlMs: 2 * 60 * 60_000 }],
          });
        const waiting = async (handle: Awaited<ReturnType<typeof start>>) => {
          await eventually('the create activity running', async () =>
            (await handle.describe()).raw.pendingActivities?.length ? true : undefined,
          );
          await new Promise((resolve) => setTimeout(resolve, 1500));
          assert.equal((await handle.query(supportPodStateQuery)).pod, null, 'no pod of its own yet');
        };

        // Stopped while it waits.
        const oldA = await terminating('wait-a');
        const a = await start('wait-a');
        await waiting(a);
        assert.equal((await readNamed('wait-a')).metadata?.uid, oldA.uid);
        await a.signal(stopSupportPodSignal, { by: 'U9' });
        assert.deepEqual(await a.result(), { pod: null, deletedBecause: 'stopped', deletedBy: 'U9' });
        const left = await readNamed('wait-a');
        assert.deepEqual(
          [left.metadata?.uid, Boolean(left.metadata?.deletionTimestamp)],
          [oldA.uid, true],
          'the old pod, still terminating, is all there is',
        );
        await release('wait-a');

        // The old pod goes while it waits: its own is created, recorded in its memo, and deleted by uid on stop.
        const oldB = await terminating('wait-b');
        const b = await start('wait-b');
        await waiting(b);
        await release('wait-b');
        const state = await eventually('its own pod', async () => (await b.query(supportPodStateQuery)).pod ?? undefined);
        const pod = await readNamed('wait-b');
        assert.notEqual(pod.metadata?.uid, oldB.uid);
        assert.deepEqual([state.uid, state.size, pod.metadata?.annotations?.['devenv-scheduler/size']], [pod.metadata?.uid, 'XL', 'XL']);
        const memo = await eventually('the memo with the pod', async () => {
          const recorded = (await b.describe()).memo?.[SUPPORT_POD_MEMO] as SupportPodMemo | undefined;
          return recorded?.podUid ? recorded : undefined;
        });
        assert.deepEqual(memo, {
          requestedBy: 'U2',
          size: 'XL',
          expiresAt: (await b.query(supportPodStateQuery)).expiresAt!,
          podUid: pod.metadata!.uid!,
        });
        assert.equal(pod.metadata?.annotations?.['devenv-scheduler/expires-at'], memo.expiresAt, 'the pod says when it is deleted');
        await b.signal(stopSupportPodSignal, { by: 'U9' });
        assert.equal((await b.result()).deletedBecause, 'stopped');
        await assert.rejects(readNamed('wait-b'), (error: unknown) => (error as { code?: number }).code === 404);
      });
    });
  });
});
