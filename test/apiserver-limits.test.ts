/**
 * The worker's requests within what the apiserver's priority and fairness gives one identity:
 * a FlowSchema puts a ServiceAccount of its own in a priority level of a few seats that
 * rejects (429) what does not fit, on the real kube-apiserver, and the apiserver's own
 * counters say how many it rejected.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApisApi, AppsV1Api, CoreV1Api, FlowcontrolApiserverV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { MockActivityEnvironment } from '@temporalio/testing';
import { apiserverMetrics } from '../bench/support/apiserver-metrics';
import { createKubernetesActivities } from '../src/activities/kubernetes';
import { createFluxKustomizationKind } from '../src/activities/kubernetes/flux-kustomizations';
import { listKind } from '../src/activities/kubernetes/workload-kind';
import { createLogger } from '../src/logger';
import { testCluster, type TestCluster } from './support/kube';
import { eventually } from './support/slack';

const NAME = 'devenv-test-narrow';
const NAMESPACES = Array.from({ length: 8 }, (_, i) => `narrow-${i + 1}`);
const WORKLOADS = 3;

describe('Kubernetes activities within a narrow priority level (real kube-apiserver)', function () {
  this.timeout(180_000);
  let cluster: TestCluster;
  let narrow: KubeConfig;
  let apps: AppsV1Api;

  /** The apiserver's count of the narrow flow's requests, by what became of them. */
  async function flow(): Promise<{ dispatched: number; rejected: number }> {
    const counts = { dispatched: 0, rejected: 0 };
    for (const line of (await apiserverMetrics(cluster.kubeConfig)).split('\n')) {
      if (!line.includes(`flow_schema="${NAME}"`)) continue;
      const value = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (line.startsWith('apiserver_flowcontrol_dispatched_requests_total{')) counts.dispatched += value;
      if (line.startsWith('apiserver_flowcontrol_rejected_requests_total{')) counts.rejected += value;
    }
    return counts;
  }

  before(async function () {
    this.timeout(120_000);
    cluster = await testCluster();
    const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    apps = cluster.kubeConfig.makeApiClient(AppsV1Api);
    await core.createNamespace({ body: { metadata: { name: NAME } } });
    await core.createNamespacedServiceAccount({ namespace: NAME, body: { metadata: { name: NAME } } });
    await cluster.kubeConfig.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
      body: {
        metadata: { name: NAME },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
        subjects: [{ kind: 'ServiceAccount', name: NAME, namespace: NAME }],
      },
    });
    // A few seats (of the apiserver's 600 by its default max-in-flight flags, shared by
    // shares), none borrowed from other levels, and no queue: what does not fit is a 429.
    const flowcontrol = cluster.kubeConfig.makeApiClient(FlowcontrolApiserverV1Api);
    await flowcontrol.createPriorityLevelConfiguration({
      body: {
        metadata: { name: NAME },
        spec: {
          type: 'Limited',
          limited: { nominalConcurrencyShares: 3, lendablePercent: 0, borrowingLimitPercent: 0, limitResponse: { type: 'Reject' } },
        },
      },
    });
    await flowcontrol.createFlowSchema({
      body: {
        metadata: { name: NAME },
        spec: {
          priorityLevelConfiguration: { name: NAME },
          matchingPrecedence: 100,
          distinguisherMethod: { type: 'ByUser' },
          rules: [
            {
              subjects: [{ kind: 'ServiceAccount', serviceAccount: { name: NAME, namespace: NAME } }],
              resourceRules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'], namespaces: ['*'], clusterScope: true }],
            },
          ],
        },
      },
    });
    const token = (
      await core.createNamespacedServiceAccountToken({
        namespace: NAME,
        name: NAME,
        body: { spec: { audiences: [], expirationSeconds: 3600 } },
      })
    ).status!.token!;
    narrow = cluster.kubeConfigForToken(token);
    for (const namespace of NAMESPACES) {
      await core.createNamespace({ body: { metadata: { name: namespace } } });
      for (let i = 0; i < WORKLOADS; i++) {
        await apps.createNamespacedDeployment({
          namespace,
          body: {
            metadata: { name: `app-${i}` },
            spec: {
              replicas: 2,
              selector: { matchLabels: { app: `app-${i}` } },
              template: { metadata: { labels: { app: `app-${i}` } }, spec: { containers: [{ name: 'app', image: 'busybox:1.36' }] } },
            },
          },
        });
      }
    }
    // The apiserver applies a new FlowSchema once its configuration controller has seen it.
    const narrowCore = narrow.makeApiClient(CoreV1Api);
    await eventually(
      'the narrow FlowSchema in effect',
      async () => {
        await narrowCore.readNamespace({ name: NAME });
        return (await flow()).dispatched > 0 ? true : undefined;
      },
      60_000,
    );
  });

  const activities = (processConcurrency: number) =>
    createKubernetesActivities({ kubeConfig: narrow, dryRun: false, logger: createLogger(), concurrency: 3, processConcurrency });

  const replicas = async () =>
    (await Promise.all(NAMESPACES.map((namespace) => apps.listNamespacedDeployment({ namespace })))).flatMap((list) =>
      list.items.map((d) => d.spec?.replicas),
    );

  it("stops and starts every namespace at once though the apiserver sheds many of the worker's requests (429): each is sent again as Retry-After asks", async () => {
    const before = await flow();
    const uncapped = activities(1000);
    await Promise.all(NAMESPACES.map((namespace) => uncapped.stopNamespace(namespace)));
    assert.deepEqual(await replicas(), Array(NAMESPACES.length * WORKLOADS).fill(0), 'every workload asleep');
    const reports = await Promise.all(NAMESPACES.map((namespace) => uncapped.startNamespace(namespace)));
    assert.deepEqual(
      reports.map((r) => r.changed.length),
      NAMESPACES.map(() => WORKLOADS),
    );
    assert.deepEqual(await replicas(), Array(NAMESPACES.length * WORKLOADS).fill(2), 'every workload awake again');
    const { rejected } = await flow();
    assert.ok(rejected > before.rejected, 'the apiserver rejected none of these requests: this test could not tell');
  });

  it('within KUBE_WORKER_CONCURRENCY, reads too, the same rush is never shed: not one request rejected', async () => {
    const before = await flow();
    const capped = activities(2);
    await Promise.all(NAMESPACES.map((namespace) => capped.stopNamespace(namespace)));
    await Promise.all(NAMESPACES.map((namespace) => capped.startNamespace(namespace)));
    assert.deepEqual(await replicas(), Array(NAMESPACES.length * WORKLOADS).fill(2));
    const after = await flow();
    assert.ok(after.dispatched - before.dispatched >= NAMESPACES.length * WORKLOADS * 2, 'every write went through the narrow level');
    assert.equal(after.rejected - before.rejected, 0, 'requests rejected with 429');
  });

  it('a rush on a cluster without the optional CRDs (Argo Rollouts, KEDA, Flux) asks for each of their kinds about once, not once per namespace', async () => {
    const served = new Set<string>();
    for (const group of (await cluster.kubeConfig.makeApiClient(ApisApi).getAPIVersions()).groups)
      for (const { groupVersion } of group.versions) served.add(groupVersion);
    const optional = ['argoproj.io/v1alpha1', 'keda.sh/v1alpha1', 'kustomize.toolkit.fluxcd.io/v1', 'helm.toolkit.fluxcd.io/v2'];
    assert.deepEqual(
      optional.filter((groupVersion) => served.has(groupVersion)),
      [],
      'this cluster serves none of them',
    );
    const lists = new Map<string, number>();
    const counting = new KubeConfig();
    counting.loadFromFile(cluster.kubeConfigPath);
    const authenticate = counting.applySecurityAuthentication.bind(counting);
    counting.applySecurityAuthentication = (context) => {
      const { pathname } = new URL(context.getUrl());
      const groupVersion = optional.find((gv) => pathname.startsWith(`/apis/${gv}/`));
      if (groupVersion) lists.set(groupVersion, (lists.get(groupVersion) ?? 0) + 1);
      return authenticate(context);
    };
    const activities = createKubernetesActivities({ kubeConfig: counting, dryRun: false, logger: createLogger(), processConcurrency: 2 });
    await Promise.all(NAMESPACES.map((namespace) => activities.stopNamespace(namespace)));
    await Promise.all(NAMESPACES.map((namespace) => activities.startNamespace(namespace)));
    assert.deepEqual(await replicas(), Array(NAMESPACES.length * WORKLOADS).fill(2));
    // Each kind is asked for in one or two namespaces (Flux also in flux-system), once or twice.
    for (const groupVersion of optional) {
      const asked = lists.get(groupVersion) ?? 0;
      assert.ok(asked >= 1 && asked <= 4, `${asked} lists of ${groupVersion} for ${NAMESPACES.length} stops and starts`);
    }
  });

  it('a stop waiting for its turn behind another namespace heartbeats meanwhile: the heartbeat timeout does not take it for a dead worker', async () => {
    const [blocking, waiting] = NAMESPACES as [string, string];
    let entered!: () => void;
    const blocked = new Promise<void>((resolve) => (entered = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const held = new KubeConfig();
    held.loadFromFile(cluster.kubeConfigPath);
    const authenticate = held.applySecurityAuthentication.bind(held);
    held.applySecurityAuthentication = async (context) => {
      if (new URL(context.getUrl()).pathname.includes(`/namespaces/${blocking}`)) {
        entered();
        await released;
      }
      return authenticate(context);
    };
    const activities = createKubernetesActivities({ kubeConfig: held, dryRun: false, logger: createLogger(), processConcurrency: 1 });
    const first = activities.stopNamespace(blocking);
    await blocked;
    const beats: unknown[] = [];
    const activityEnv = new MockActivityEnvironment();
    activityEnv.on('heartbeat', (details: unknown) => beats.push(details));
    const second = activityEnv.run(activities.stopNamespace, waiting);
    // Longer than the keep-alive interval: the second stop has made no request yet.
    await new Promise((resolve) => setTimeout(resolve, 12_000));
    const whileWaiting = beats.length;
    release();
    await Promise.all([first, second]);
    assert.ok(whileWaiting >= 1, 'no heartbeat while the stop waited for its turn');
    assert.deepEqual(await replicas(), [...Array(WORKLOADS * 2).fill(0), ...Array(WORKLOADS * (NAMESPACES.length - 2)).fill(2)]);
  });

  it('a stop whose request hangs stops heartbeating: the heartbeat timeout retries it, not only its start-to-close timeout', async () => {
    const [hanging] = NAMESPACES as [string];
    let entered!: () => void;
    const hung = new Promise<void>((resolve) => (entered = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const held = new KubeConfig();
    held.loadFromFile(cluster.kubeConfigPath);
    const authenticate = held.applySecurityAuthentication.bind(held);
    held.applySecurityAuthentication = async (context) => {
      // An apiserver gone half-open: the namespace's first read is sent and never answered.
      if (new URL(context.getUrl()).pathname.endsWith(`/namespaces/${hanging}`)) {
        entered();
        await released;
      }
      return authenticate(context);
    };
    const activities = createKubernetesActivities({ kubeConfig: held, dryRun: true, logger: createLogger() });
    const beats: unknown[] = [];
    const activityEnv = new MockActivityEnvironment();
    activityEnv.on('heartbeat', (details: unknown) => beats.push(details));
    const stop = activityEnv.run(activities.stopNamespace, hanging);
    await hung;
    // Longer than the keep-alive interval.
    await new Promise((resolve) => setTimeout(resolve, 12_000));
    const whileHung = beats.length;
    release();
    await stop;
    assert.equal(whileHung, 0, 'heartbeats went on while the only request hung');
  });

  it('a start waiting for a rollout that never ends looks less and less often, not every few seconds until the deadline', async () => {
    const namespace = NAMESPACES[0]!;
    const lists: number[] = [];
    const counting = new KubeConfig();
    counting.loadFromFile(cluster.kubeConfigPath);
    const authenticate = counting.applySecurityAuthentication.bind(counting);
    counting.applySecurityAuthentication = (context) => {
      const { pathname } = new URL(context.getUrl());
      if (context.getHttpMethod() === 'GET' && pathname.endsWith(`/namespaces/${namespace}/deployments`)) lists.push(Date.now());
      return authenticate(context);
    };
    const activities = createKubernetesActivities({ kubeConfig: counting, dryRun: false, logger: createLogger() });
    // No controller runs on this apiserver: the Deployment never reports a replica Ready.
    const since = new Date();
    const waitedMs = 20_000;
    const readiness = await activities.awaitReady(namespace, {
      since: since.toISOString(),
      deadline: new Date(since.getTime() + waitedMs).toISOString(),
      groups: [{ order: 1, wokenAt: since.toISOString(), workloads: [{ kind: 'Deployment', name: 'app-0' }] }],
    });
    assert.equal(readiness.groups[0]?.notReady?.[0]?.name, 'app-0', 'the wait ended at its deadline, Deployment app-0 not Ready');
    // Looks at a fixed few seconds apart would be about ten in this time; backing off, about half as many.
    assert.ok(lists.length >= 2 && lists.length <= 7, `${lists.length} lists of Deployments in ${waitedMs / 1000} s`);
    assert.ok(lists[lists.length - 1]! - lists[lists.length - 2]! >= 4000, 'the last looks are seconds apart');
  });

  after(async function () {
    const flowcontrol = cluster.kubeConfig.makeApiClient(FlowcontrolApiserverV1Api);
    await flowcontrol.deleteFlowSchema({ name: NAME }).catch(() => undefined);
    await flowcontrol.deletePriorityLevelConfiguration({ name: NAME }).catch(() => undefined);
  });
});

describe('Kubernetes activities against an apiserver that sheds every request', function () {
  this.timeout(60_000);
  let server: http.Server;
  let requests = 0;
  let kubeConfig: KubeConfig;

  before(async () => {
    // Priority and fairness shedding one flow for good: every request a 429 with a short Retry-After.
    server = http.createServer((_req, res) => {
      requests++;
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '0.001' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 429, reason: 'TooManyRequests' }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions({
      clusters: [{ name: 'shed', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
      users: [{ name: 'shed', token: 'shed' }],
      contexts: [{ name: 'shed', cluster: 'shed', user: 'shed' }],
      currentContext: 'shed',
    });
  });

  after(() => server.close());

  it('a Flux list is sent as often as any one request is (6 times), not once per retry of every layer that wraps it', async () => {
    requests = 0;
    const failure = await listKind(createFluxKustomizationKind(kubeConfig, []), 'dev1', 500).then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.equal((failure as { code?: number } | undefined)?.code, 429);
    assert.equal(requests, 6);
  });
});
