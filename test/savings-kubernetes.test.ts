/**
 * What a stop on the real apiserver reports a workload's pods request, as Kubernetes counts a
 * pod's effective request (init containers, sidecars, limits standing for requests), so
 * the environment's ledger counts what was put to sleep; and a drift re-stop the same. A stop
 * tried again after failing half-way reports what the failed attempt put to sleep too.
 */
import assert from 'node:assert/strict';
import { AppsV1Api, CoreV1Api, type V1PodSpec } from '@kubernetes/client-node';
import { MockActivityEnvironment } from '@temporalio/testing';
import pLimit from 'p-limit';
import type { ActionReport, DriftReport } from '../src/activities/contracts';
import { createKubernetesActivities } from '../src/activities/kubernetes';
import { call, type Write } from '../src/activities/kubernetes/apiserver';
import { createNamespaceActions } from '../src/activities/kubernetes/namespace-actions';
import { createLogger } from '../src/logger';
import { testCluster, type TestCluster } from './support/kube';

const MI = 1024 ** 2;
const GI = 1024 ** 3;

describe('savings: requests put to sleep (real apiserver)', function () {
  this.timeout(120_000);
  let cluster: TestCluster;
  let apps: AppsV1Api;
  let core: CoreV1Api;
  const namespace = `savings-k8s-${process.pid}`;

  before(async function () {
    cluster = await testCluster();
    apps = cluster.kubeConfig.makeApiClient(AppsV1Api);
    core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace, labels: { scheduler: 'enabled' } } } });
  });

  after(async function () {
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  });

  const activities = () =>
    createKubernetesActivities({
      kubeConfig: cluster.kubeConfig,
      dryRun: false,
      logger: createLogger('silent'),
      support: { namespace: 'devenv-support', image: 'busybox:1.36', sizes: { XS: { cpu: '100m', memory: '128Mi' } } },
      drift: { mode: 'restop', intervalMs: 60_000 },
    });

  const container = (name: string, resources: object, extra: object = {}) => ({ name, image: 'busybox:1.36', resources, ...extra });

  async function deployment(name: string, replicas: number, spec: Partial<V1PodSpec>): Promise<void> {
    await apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name },
        spec: {
          replicas,
          selector: { matchLabels: { app: name } },
          template: { metadata: { labels: { app: name } }, spec: { containers: [], ...spec } as V1PodSpec },
        },
      },
    });
  }

  it('reports each stopped workload with what one of its pods requests', async function () {
    await deployment('web', 3, {
      containers: [
        container('app', { requests: { cpu: '250m', memory: '256Mi' } }),
        container('proxy', { limits: { cpu: '100m', memory: '64Mi' } }),
      ],
    });
    await deployment('migrate', 1, {
      initContainers: [
        container('mesh', { requests: { cpu: '50m', memory: '32Mi' } }, { restartPolicy: 'Always' }),
        container('schema', { requests: { cpu: '2', memory: '1Gi' } }),
      ],
      containers: [container('app', { requests: { cpu: '500m', memory: '512Mi' } })],
    });
    await apps.createNamespacedStatefulSet({
      namespace,
      body: {
        metadata: { name: 'db' },
        spec: {
          replicas: 2,
          serviceName: 'db',
          selector: { matchLabels: { app: 'db' } },
          template: {
            metadata: { labels: { app: 'db' } },
            spec: { containers: [container('pg', { requests: { cpu: '1', memory: '2Gi' } })] },
          },
        },
      },
    });
    const report: ActionReport = await new MockActivityEnvironment().run(activities().stopNamespace, namespace);
    const byName = Object.fromEntries(report.changed.map((c) => [c.name, c]));
    assert.deepEqual(byName.web, {
      kind: 'Deployment',
      name: 'web',
      from: 3,
      to: 0,
      requests: { cpuMillicores: 350, memoryBytes: 320 * MI },
    });
    // The schema init container, with the sidecar started before it, outweighs the app container with the sidecar.
    assert.deepEqual(byName.migrate!.requests, { cpuMillicores: 2050, memoryBytes: GI + 32 * MI });
    assert.deepEqual(byName.db!.requests, { cpuMillicores: 1000, memoryBytes: 2 * GI });
  });

  it('a drift re-stop reports what one pod of a workload created since requests', async function () {
    await deployment('late', 2, { containers: [container('app', { requests: { cpu: '300m', memory: '100Mi' } })] });
    const drift: DriftReport = await new MockActivityEnvironment().run(activities().checkDrift, namespace, { restop: true });
    const late = drift.awake.find((w) => w.name === 'late');
    assert.ok(late?.restopped && late.created, JSON.stringify(drift.awake));
    assert.deepEqual(late.requests, { cpuMillicores: 300, memoryBytes: 100 * MI });
  });

  it('a stop tried again after failing half-way reports what the failed attempt put to sleep as asleep, with its requests', async function () {
    const halfway = `${namespace}-halfway`;
    await core.createNamespace({ body: { metadata: { name: halfway, labels: { scheduler: 'enabled' } } } });
    try {
      for (const name of ['a', 'b']) {
        await apps.createNamespacedDeployment({
          namespace: halfway,
          body: {
            metadata: { name },
            spec: {
              replicas: 2,
              selector: { matchLabels: { app: name } },
              template: {
                metadata: { labels: { app: name } },
                spec: { containers: [container('app', { requests: { cpu: '500m', memory: '256Mi' } })] },
              },
            },
          },
        });
      }
      let writes = 0;
      const write: Write = async (what, _detail, request) => {
        if (++writes === 2) throw new Error('the apiserver went away');
        return call(what, request);
      };
      const actions = createNamespaceActions({
        kubeConfig: cluster.kubeConfig,
        write,
        dryRun: false,
        concurrency: 1,
        acrossNamespaces: pLimit(10),
        pageSize: 500,
        readyTimeoutMs: 0,
      });
      await assert.rejects(actions.stopNamespace(halfway), /went away/);
      const retried = await actions.stopNamespace(halfway);
      assert.equal(retried.changed.length, 1);
      const asleep = retried.asleep ?? [];
      assert.deepEqual(
        asleep.map((w) => ({ name: w.name, replicas: w.replicas, requests: w.requests })),
        [{ name: retried.changed[0]!.name === 'a' ? 'b' : 'a', replicas: 2, requests: { cpuMillicores: 500, memoryBytes: 256 * MI } }],
      );
    } finally {
      await core.deleteNamespace({ name: halfway }).catch(() => undefined);
    }
  });
});
