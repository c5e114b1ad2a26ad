/**
 * Stop, start and status on a control plane with real controllers (kube-controller-manager,
 * kube-scheduler and kwok's simulated nodes, src/local-cluster/control-plane.ts): what a person
 * sees with kubectl after each, Pods and all, rather than what the service wrote.
 */
import assert from 'node:assert/strict';
import { AppsV1Api, BatchV1Api, CoreV1Api } from '@kubernetes/client-node';
import { createKubernetesActivities } from '../src/activities/kubernetes';
import { createNamespaceStatusReader } from '../src/activities/kubernetes/namespace-status';
import { createLogger } from '../src/logger';
import { testClusterWithControllers, type TestCluster } from './support/kube';
import { eventually } from './support/slack';

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

  const activities = () => createKubernetesActivities({ kubeConfig: cluster.kubeConfig, dryRun: false, logger });
  const namespaceStatus = (ns: string) => createNamespaceStatusReader(cluster.kubeConfig)(ns);
  const template = (app: string) => ({
    metadata: { labels: { app } },
    spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] },
  });

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
    // read just after the start already says running does too; what may never happen is that
    // it says running before every pod is Ready (pods only become Ready after a start: read status first).
    const early = await namespaceStatus(ns);
    if (early.phase === 'running') assert.equal((await pods(ns)).ready, 6, 'running only once every pod is Ready');
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
});
