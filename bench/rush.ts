/**
 * The evening rush: 500 environments (namespaces) of 10 workloads each (8 Deployments and
 * 2 StatefulSets of one replica, their pods on kwok's fake nodes) that share one shutdown
 * minute, on the control plane with real controllers (etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler, kwok: test/support/kube.ts).
 *
 * Evening: the 500 stopNamespace activities of createKubernetesActivities, called at once
 * as one worker runs them when 500 workflows' scheduled stops reach it (the default 500
 * activity slots hold them all), with the worker's default settings from src/config.ts
 * (KUBE_CONCURRENCY per namespace, KUBE_WORKER_CONCURRENCY across them), as the worker's
 * ServiceAccount of k8s/rbac.yaml under the admission policies of k8s/admission-policy.yaml,
 * so that the apiserver's priority and fairness treat it as it treats the worker. A failed
 * activity is run again as the workflow's retry policy would. Temporal itself is not
 * measured (bench/scale.ts does that): the activities and the apiserver are. Measured:
 * until the last workload is at 0 and its pods are gone. Morning: the 500 startNamespace
 * activities, until every workload is Ready again.
 *
 * Baseline, in the same run: the same writes as bare merge patches (spec.replicas 0, then
 * the saved count) by the same identity at the same concurrency, nothing else: no list, no
 * read, no annotation, no resourceVersion; then the same wait for the controllers. The
 * apiserver's /metrics before and after say what each cost it: requests a second, 429s by
 * verb and resource; the worker's own client counts what it sent, by kind and when.
 *
 * RUSH_ENVIRONMENTS and RUSH_WORKLOADS size it (500 and 10), RUSH_ROUNDS repeats it (1,
 * each round alternating which goes first), RUSH_CONTROLLER_QPS sets the controllers'
 * client rate (1,000 a second). RUSH_WAKE_ORDER=together, an experiment, puts the
 * StatefulSets in the Deployments' wake-order group: a start then waits for no group.
 */
import './support/mocha-shim';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  AppsV1Api,
  CoreV1Api,
  KubernetesObjectApi,
  loadAllYaml,
  makeInformer,
  type Informer,
  type KubeConfig,
  type KubernetesObject,
  type RequestContext,
  type V1Deployment,
  type V1Pod,
  type V1StatefulSet,
} from '@kubernetes/client-node';
import pLimit from 'p-limit';
import { createKubernetesActivities } from '../src/activities/kubernetes';
import { WAKE_ORDER } from '../src/activities/kubernetes/annotations';
import { FIELD_MANAGER, mergePatchMetadataOnly, statusCode } from '../src/activities/kubernetes/apiserver';
import { DEFAULT_WAKE_GROUP } from '../src/activities/kubernetes/wake-order';
import { testClusterWithControllers } from '../test/support/kube';
import { apiserverMetrics } from './support/apiserver-metrics';
import { discardingLogger, serviceConfig, waitFor } from './support/common';
import { median, round, runBench, sleep, type Bench } from './support/report';

const ENVIRONMENTS = Number(process.env.RUSH_ENVIRONMENTS ?? 500);
const WORKLOADS = Number(process.env.RUSH_WORKLOADS ?? 10);
const ROUNDS = Number(process.env.RUSH_ROUNDS ?? 1);
const CONTROLLER_QPS = Number(process.env.RUSH_CONTROLLER_QPS ?? 1000);
const WAKE_TOGETHER = process.env.RUSH_WAKE_ORDER === 'together';
const STATEFUL_SETS = Math.round(WORKLOADS / 5);
const DEPLOYMENTS = WORKLOADS - STATEFUL_SETS;
const REPLICAS = 1;
const PODS_PER_NODE = 1000;
const TARGET_RATIO = 1.3;
/** What marks the benchmark's objects, so that the watches see only them. */
const LABEL = 'devenv-bench';
const SELECTOR = `${LABEL}=rush`;
const WORKER_NAMESPACE = 'devenv-scheduler';
const WORKER = 'devenv-scheduler-worker';
/** The stop and start activities' retry policy (src/workflows/environment/workflow.ts). */
const RETRY = { initialMs: 1000, coefficient: 2, maximumMs: 60_000 };

type Kind = 'Deployment' | 'StatefulSet';
interface Workload {
  namespace: string;
  kind: Kind;
  name: string;
}

/** The counters a phase is judged by, summed from the apiserver's /metrics. */
interface Counters {
  requests: number;
  throttled: number;
  /** The 429s by verb and resource (only the worker's identity can meet one). */
  throttledBy: Map<string, number>;
  /** Requests the priority-and-fairness filter dispatched at the worker's level (a ServiceAccount's: workload-low). */
  worker: number;
}

async function counters(kubeConfig: KubeConfig): Promise<Counters> {
  const text = await apiserverMetrics(kubeConfig);
  const result: Counters = { requests: 0, throttled: 0, throttledBy: new Map(), worker: 0 };
  for (const line of text.split('\n')) {
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (line.startsWith('apiserver_request_total{')) {
      result.requests += value;
      if (line.includes('code="429"')) {
        result.throttled += value;
        const label = (name: string) => new RegExp(`[{,]${name}="([^"]*)"`).exec(line)?.[1] ?? '';
        const key = `${label('verb').toLowerCase()} ${label('resource')}${label('subresource') ? `/${label('subresource')}` : ''}`;
        result.throttledBy.set(key, (result.throttledBy.get(key) ?? 0) + value);
      }
    }
    if (line.startsWith('apiserver_flowcontrol_dispatched_requests_total{') && line.includes('priority_level="workload-low"'))
      result.worker += value;
  }
  return result;
}

/** `get namespaces`, `list statefulsets`, `patch deployments`: what a request asked, from its method and path. */
function requestKind(method: string, url: string): string {
  const { pathname, searchParams } = new URL(url);
  // After /api/v1 or /apis/<group>/<version>: [namespaces, ns, resource, name, subresource] or [resource, name].
  const parts = pathname.split('/').filter(Boolean);
  const rest = parts.slice(parts[0] === 'api' ? 2 : 3);
  const [resource, name, subresource] = rest[0] === 'namespaces' && rest.length > 2 ? rest.slice(2) : rest;
  const verb =
    method === 'GET' ? (searchParams.get('watch') === 'true' ? 'watch' : name === undefined ? 'list' : 'get') : method.toLowerCase();
  return `${verb} ${resource}${subresource ? `/${subresource}` : ''}`;
}

/** Every request of one identity, as its client sent it: what it asked and when. */
class RequestLog {
  private readonly sent: { kind: string; at: number }[] = [];

  /** Counts every request made with `kubeConfig` (it authenticates each one). */
  constructor(kubeConfig: KubeConfig) {
    const authenticate = kubeConfig.applySecurityAuthentication.bind(kubeConfig);
    kubeConfig.applySecurityAuthentication = (context: RequestContext) => {
      this.sent.push({ kind: requestKind(context.getHttpMethod(), context.getUrl()), at: performance.now() });
      return authenticate(context);
    };
  }

  /** Since `started`: each kind of request, how many, and between which seconds. */
  since(started: number): string {
    const byKind = new Map<string, { n: number; first: number; last: number }>();
    for (const { kind, at } of this.sent) {
      if (at < started) continue;
      const entry = byKind.get(kind) ?? { n: 0, first: at, last: at };
      byKind.set(kind, { n: entry.n + 1, first: Math.min(entry.first, at), last: Math.max(entry.last, at) });
    }
    const seconds = (at: number) => ((at - started) / 1000).toFixed(1);
    return [...byKind]
      .sort(([, a], [, b]) => b.n - a.n)
      .map(([kind, { n, first, last }]) => `${n} ${kind} (${seconds(first)}-${seconds(last)} s)`)
      .join(', ');
  }
}

/**
 * What the controllers have done, from watches (list once, then events), so that waiting
 * for them costs the apiserver next to nothing and is the same for both variants. Each
 * check is of the last event seen: `settledAt` is when the state it describes was reached.
 */
class Observed {
  private readonly informers;
  lastEventAt = performance.now();

  constructor(kubeConfig: KubeConfig) {
    const core = kubeConfig.makeApiClient(CoreV1Api);
    const apps = kubeConfig.makeApiClient(AppsV1Api);
    this.informers = {
      pods: makeInformer<V1Pod>(kubeConfig, '/api/v1/pods', () => core.listPodForAllNamespaces({ labelSelector: SELECTOR }), SELECTOR),
      deployments: makeInformer<V1Deployment>(
        kubeConfig,
        '/apis/apps/v1/deployments',
        () => apps.listDeploymentForAllNamespaces({ labelSelector: SELECTOR }),
        SELECTOR,
      ),
      statefulSets: makeInformer<V1StatefulSet>(
        kubeConfig,
        '/apis/apps/v1/statefulsets',
        () => apps.listStatefulSetForAllNamespaces({ labelSelector: SELECTOR }),
        SELECTOR,
      ),
    };
    for (const informer of Object.values(this.informers) as Informer<KubernetesObject>[]) {
      const seen = () => (this.lastEventAt = performance.now());
      informer.on('add', seen);
      informer.on('update', seen);
      informer.on('delete', seen);
      // A watch the apiserver ends is started again (client-node relists).
      informer.on('error', () => setTimeout(() => void informer.start().catch(() => undefined), 500));
    }
  }

  async start(): Promise<void> {
    await Promise.all(Object.values(this.informers).map((informer) => informer.start()));
  }

  async stop(): Promise<void> {
    await Promise.all(Object.values(this.informers).map((informer) => informer.stop()));
  }

  private workloads(): (V1Deployment | V1StatefulSet)[] {
    return [...this.informers.deployments.list(), ...this.informers.statefulSets.list()];
  }

  /** Workloads not yet at 0 (their controllers' word), and pods not yet gone. */
  awake(): { workloads: number; pods: number } {
    const workloads = this.workloads().filter(
      (w) => w.spec?.replicas !== 0 || (w.status?.observedGeneration ?? 0) < (w.metadata?.generation ?? 0) || (w.status?.replicas ?? 0) > 0,
    ).length;
    return { workloads, pods: this.informers.pods.list().length };
  }

  /** Workloads not Ready at `replicas` (all of them ready and up to date, by their controllers' word). */
  notReady(replicas: number): number {
    return this.workloads().filter(
      (w) =>
        w.spec?.replicas !== replicas ||
        (w.status?.observedGeneration ?? 0) < (w.metadata?.generation ?? 0) ||
        (w.status?.readyReplicas ?? 0) !== replicas ||
        (w.status?.updatedReplicas ?? 0) !== replicas,
    ).length;
  }

  count(): number {
    return this.workloads().length;
  }
}

/** Runs `attempt` until it succeeds, waiting between attempts as the workflow's retry policy does; returns the failures. */
async function retried(attempt: () => Promise<unknown>, told: (error: unknown) => void): Promise<unknown[]> {
  const failures: unknown[] = [];
  for (let wait = RETRY.initialMs; ; wait = Math.min(wait * RETRY.coefficient, RETRY.maximumMs)) {
    try {
      await attempt();
      return failures;
    } catch (error) {
      // As Temporal does: a failure that says retrying cannot help ends the run.
      if ((error as { nonRetryable?: boolean }).nonRetryable) throw error;
      failures.push(error);
      told(error);
      await sleep(wait);
    }
  }
}

const describeFailures = (failures: unknown[]): string => {
  if (failures.length === 0) return 'none';
  const byCode = new Map<string, number>();
  for (const failure of failures) {
    const key = String(statusCode(failure) ?? (failure as Error).message?.slice(0, 60) ?? failure);
    byCode.set(key, (byCode.get(key) ?? 0) + 1);
  }
  return [...byCode].map(([key, n]) => `${n}× ${key}`).join(', ');
};

interface Phase {
  /** From the first request until the controllers are done. */
  ms: number;
  /** From the first request until the last write returned. */
  writesMs: number;
  requests: number;
  throttled: number;
  worker: number;
  failures: string;
  retried: number;
  /** The worker's requests by kind, as its client sent them (RequestLog.since). */
  sent: string;
  /** The 429s by verb and resource. */
  throttledBy: string;
}

runBench(
  'rush',
  `${ENVIRONMENTS} environments of ${WORKLOADS} workloads stopping at one minute and starting again, with real controllers`,
  async (bench) => {
    const nodes = Math.ceil((ENVIRONMENTS * WORKLOADS * REPLICAS) / PODS_PER_NODE) + 1;
    bench.progress(`starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (${nodes} fake nodes)`);
    const scale = { apiQps: CONTROLLER_QPS, syncs: 50, kwokParallelism: 64, nodes };
    const cluster = await testClusterWithControllers(scale);
    const { kubeConfig } = cluster;
    const core = kubeConfig.makeApiClient(CoreV1Api);
    const apps = kubeConfig.makeApiClient(AppsV1Api);

    bench.progress("the worker's identity and admission policies (k8s/)");
    const objects = KubernetesObjectApi.makeApiClient(kubeConfig);
    for (const file of ['namespace.yaml', 'rbac.yaml', 'admission-policy.yaml', 'config.yaml']) {
      for (const object of loadAllYaml(readFileSync(path.join(__dirname, '../k8s', file), 'utf8')) as KubernetesObject[]) {
        await objects.create(object).catch((error: unknown) => {
          if (statusCode(error) !== 409) throw error;
        });
      }
    }
    const token = await waitFor(
      "the worker's token",
      () =>
        core
          .createNamespacedServiceAccountToken({
            namespace: WORKER_NAMESPACE,
            name: WORKER,
            body: { spec: { audiences: [], expirationSeconds: 7200 } },
          })
          .then((t) => t.status?.token)
          .catch(() => undefined),
      30_000,
    );
    const workerKubeConfig = cluster.kubeConfigForToken(token);
    const sent = new RequestLog(workerKubeConfig);

    const workloads: Workload[] = [];
    const namespaces = Array.from({ length: ENVIRONMENTS }, (_, i) => `rush-${i + 1}`);
    for (const namespace of namespaces) {
      for (let d = 0; d < DEPLOYMENTS; d++) workloads.push({ namespace, kind: 'Deployment', name: `web-${d + 1}` });
      for (let s = 0; s < STATEFUL_SETS; s++) workloads.push({ namespace, kind: 'StatefulSet', name: `db-${s + 1}` });
    }
    const observed = new Observed(kubeConfig);
    await observed.start();

    if (WAKE_TOGETHER) bench.progress(`RUSH_WAKE_ORDER=together: every workload in wake-order group ${DEFAULT_WAKE_GROUP} (an experiment)`);
    bench.progress(
      `creating ${ENVIRONMENTS} namespaces of ${DEPLOYMENTS} Deployments and ${STATEFUL_SETS} StatefulSets (${workloads.length} workloads)`,
    );
    const creating = pLimit(20);
    await Promise.all(
      namespaces.map((name) => creating(() => core.createNamespace({ body: { metadata: { name, labels: { scheduler: 'enabled' } } } }))),
    );
    let created = 0;
    await Promise.all(
      workloads.map(({ namespace, kind, name }) =>
        creating(async () => {
          const labels = { app: name, [LABEL]: 'rush' };
          const spec = {
            replicas: REPLICAS,
            selector: { matchLabels: { app: name } },
            template: {
              metadata: { labels },
              spec: {
                containers: [
                  {
                    name: 'app',
                    image: `registry.example.com/${name}:1`,
                    resources: { requests: { cpu: '10m', memory: '16Mi' } },
                  },
                ],
              },
            },
          };
          const metadata = { name, labels, ...(WAKE_TOGETHER ? { annotations: { [WAKE_ORDER]: String(DEFAULT_WAKE_GROUP) } } : {}) };
          if (kind === 'Deployment') await apps.createNamespacedDeployment({ namespace, body: { metadata, spec } });
          else await apps.createNamespacedStatefulSet({ namespace, body: { metadata, spec: { ...spec, serviceName: name } } });
          if (++created % 1000 === 0) bench.progress(`  ${created} created`);
        }),
      ),
    );
    await waitFor('every workload listed by the watch', async () => (observed.count() === workloads.length ? true : undefined), 120_000);
    await waitUntilReady(bench, observed, 'the first rollout');

    // The admission policies take effect once the apiserver has loaded them: a dry run the
    // worker may not make is refused by then.
    const workerApps = workerKubeConfig.makeApiClient(AppsV1Api);
    await waitFor(
      'the admission policies',
      () =>
        workerApps
          .patchNamespacedDeployment(
            { namespace: namespaces[0]!, name: 'web-1', body: { spec: { paused: true } }, dryRun: 'All', fieldManager: FIELD_MANAGER },
            mergePatchMetadataOnly,
          )
          .then(
            () => undefined,
            (error: unknown) => (statusCode(error) === 403 ? true : undefined),
          ),
      60_000,
      1000,
    );

    const config = serviceConfig();
    const { concurrency, processConcurrency } = config.kubernetes;
    const activities = createKubernetesActivities({
      kubeConfig: workerKubeConfig,
      dryRun: false,
      logger: discardingLogger(),
      ...config.kubernetes,
    });

    /** The baseline: each workload patched once, KUBE_CONCURRENCY per namespace, KUBE_WORKER_CONCURRENCY in all, as the activities limit theirs. */
    const acrossNamespaces = pLimit(processConcurrency);
    const bare = (replicas: number) => async (namespace: string) => {
      const inNamespace = pLimit(concurrency);
      const body = { spec: { replicas } };
      await Promise.all(
        workloads
          .filter((w) => w.namespace === namespace)
          .map(({ kind, name }) =>
            inNamespace(() =>
              acrossNamespaces(() =>
                kind === 'Deployment'
                  ? workerApps.patchNamespacedDeployment({ namespace, name, body, fieldManager: FIELD_MANAGER }, mergePatchMetadataOnly)
                  : workerApps.patchNamespacedStatefulSet({ namespace, name, body, fieldManager: FIELD_MANAGER }, mergePatchMetadataOnly),
              ),
            ),
          ),
      );
    };

    async function phase(what: string, perNamespace: (namespace: string) => Promise<unknown>, done: () => boolean): Promise<Phase> {
      bench.progress(`${what}: ${ENVIRONMENTS} at once`);
      const before = await counters(kubeConfig);
      const started = performance.now();
      let writesAt = started;
      let told = 0;
      const failures = (
        await Promise.all(
          namespaces.map(async (namespace) => {
            const failed = await retried(
              () => perNamespace(namespace),
              (error) => {
                // The first few, so that a run that only retries says why.
                if (++told <= 3) bench.progress(`  ${namespace} failed, run again: ${String(error).slice(0, 300)}`);
              },
            );
            writesAt = Math.max(writesAt, performance.now());
            return failed;
          }),
        )
      ).flat();
      bench.progress(`  writes done after ${((writesAt - started) / 1000).toFixed(1)} s; waiting for the controllers`);
      await waitFor(what, async () => (done() ? true : undefined), 30 * 60_000, 100);
      const finished = observed.lastEventAt;
      const after = await counters(kubeConfig);
      const ms = Math.max(finished, writesAt) - started;
      const throttledBy = [...after.throttledBy]
        .map(([key, n]) => [key, n - (before.throttledBy.get(key) ?? 0)] as const)
        .filter(([, n]) => n > 0)
        .map(([key, n]) => `${n} ${key}`)
        .join(', ');
      bench.progress(`  ${what}: ${(ms / 1000).toFixed(1)} s`);
      bench.progress(`  the worker's requests: ${sent.since(started)}; 429s: ${throttledBy || 'none'}`);
      // What is left of this phase (Events, the garbage collector) is not the next one's.
      await sleep(3000);
      return {
        ms,
        writesMs: writesAt - started,
        // Less the /metrics read that closes the measurement.
        requests: after.requests - before.requests - 1,
        throttled: after.throttled - before.throttled,
        worker: after.worker - before.worker,
        failures: describeFailures(failures),
        retried: failures.length,
        sent: sent.since(started),
        throttledBy,
      };
    }

    const asleep = () => {
      const left = observed.awake();
      return left.workloads === 0 && left.pods === 0;
    };
    const ready = () => observed.notReady(REPLICAS) === 0;
    const results: Record<string, Phase[]> = {};
    const record = (key: string, result: Phase) => (results[key] ??= []).push(result);

    const ours = async () => {
      record(
        'ours evening',
        await phase(
          'stopNamespace',
          // A namespace's attempts after a failure change only what the earlier ones left: the
          // watched end state, not each report, says whether it was done.
          (namespace) => activities.stopNamespace(namespace),
          asleep,
        ),
      );
      record('ours morning', await phase('startNamespace', (namespace) => activities.startNamespace(namespace), ready));
    };
    const baseline = async () => {
      record('bare evening', await phase('bare patches to 0', bare(0), asleep));
      record('bare morning', await phase(`bare patches to ${REPLICAS}`, bare(REPLICAS), ready));
    };
    for (let r = 0; r < ROUNDS; r++) {
      bench.progress(`round ${r + 1}/${ROUNDS} (${r % 2 === 0 ? 'ours' : 'baseline'} first)`);
      if (r % 2 === 0) {
        await ours();
        await baseline();
      } else {
        await baseline();
        await ours();
      }
    }
    await observed.stop();

    report(bench, 'evening', 'until every workload is at 0 and its pods are gone', results, { concurrency, processConcurrency });
    report(bench, 'morning', 'until every workload is Ready', results, { concurrency, processConcurrency });
  },
);

async function waitUntilReady(bench: Bench, observed: Observed, what: string): Promise<void> {
  const started = performance.now();
  let last = 0;
  await waitFor(
    what,
    async () => {
      const left = observed.notReady(REPLICAS);
      if (performance.now() - last > 10_000) {
        last = performance.now();
        bench.progress(`  ${what}: ${left} workloads not Ready yet`);
      }
      return left === 0 ? true : undefined;
    },
    30 * 60_000,
    500,
  );
  bench.progress(`  ${what}: all Ready after ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

function report(
  bench: Bench,
  when: 'evening' | 'morning',
  until: string,
  results: Record<string, Phase[]>,
  settings: { concurrency: number; processConcurrency: number },
): void {
  const ours = results[`ours ${when}`]!;
  const bare = results[`bare ${when}`]!;
  const pick = (phases: Phase[], field: 'ms' | 'writesMs' | 'requests' | 'throttled' | 'worker') => median(phases.map((p) => p[field]));
  const rate = (phases: Phase[]) => median(phases.map((p) => p.requests / (p.ms / 1000)));
  const rounds = ours.length === 1 ? 'one round' : `median of ${ours.length} rounds`;
  const action = when === 'evening' ? 'stopNamespace' : 'startNamespace';
  bench.figure({
    name: `${when}: ${ENVIRONMENTS} ${action} at once`,
    value: round(pick(ours, 'ms') / 1000, 1),
    unit: 's',
    baseline: { name: 'bare merge patches', value: round(pick(bare, 'ms') / 1000, 1) },
    target: { op: '<=', limit: TARGET_RATIO, on: 'ratio' },
    note:
      `${until}; ${rounds}; ${ENVIRONMENTS}×${WORKLOADS} workloads, KUBE_CONCURRENCY ${settings.concurrency}, KUBE_WORKER_CONCURRENCY ${settings.processConcurrency}; ` +
      `writes done after ${round(pick(ours, 'writesMs') / 1000, 1)} s (baseline ${round(pick(bare, 'writesMs') / 1000, 1)} s); ` +
      `failed attempts run again: ${ours.map((p) => p.failures).join(' / ')} (baseline ${bare.map((p) => p.failures).join(' / ')})`,
  });
  bench.figure({
    name: `${when}: apiserver requests a second`,
    value: round(rate(ours), 0),
    unit: 'req/s',
    baseline: { name: 'bare merge patches', value: round(rate(bare), 0) },
    note:
      `all clients (the controllers and kwok too); ${round(pick(ours, 'requests'), 0)} requests, the worker's ${round(pick(ours, 'worker'), 0)} ` +
      `(baseline ${round(pick(bare, 'requests'), 0)}, ${round(pick(bare, 'worker'), 0)})`,
  });
  bench.figure({
    name: `${when}: apiserver 429s`,
    value: round(pick(ours, 'throttled'), 0),
    unit: '',
    baseline: { name: 'bare merge patches', value: round(pick(bare, 'throttled'), 0) },
  });
}
