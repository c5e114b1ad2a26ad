/**
 * Benchmark 2: stopping and starting a namespace of 500 workloads (400 Deployments, 100
 * StatefulSets, 2 replicas each) on the test kube-apiserver (real etcd + kube-apiserver,
 * RBAC on; no controller-manager, so nothing reacts to the new replica counts).
 *
 * Measured: the wall time of our stopNamespace/startNamespace activity functions
 * (createKubernetesActivities, called directly, logging at info into /dev/null as in
 * production). Baseline: the same 500 workloads scaled through the scale subresource, the
 * same KubeConfig and API client class, the same p-limit concurrency, and nothing else (no
 * list, no annotation, no resourceVersion). Both at our default concurrency 3 and at 10;
 * each figure is the median of several rounds, ours and the baseline alternating which
 * goes first. Every round starts from all 500 running and is checked afterwards.
 */
import './support/mocha-shim';
import { AppsV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import pLimit from 'p-limit';
import { createKubernetesActivities } from '../src/activities/kubernetes';
import { ORIGINAL_REPLICAS } from '../src/activities/kubernetes/annotations';
import { testCluster } from '../test/support/kube';
import { apiserverMetrics } from './support/apiserver-metrics';
import { discardingLogger } from './support/common';
import { median, round, runBench, type Bench } from './support/report';

const DEPLOYMENTS = 400;
const STATEFUL_SETS = 100;
const REPLICAS = 2;
/** Rounds per concurrency (BENCH_ROUNDS overrides both): the median of three is steady where one round can be 1.5x off. */
const ROUNDS: Record<number, number> = { 3: Number(process.env.BENCH_ROUNDS ?? 3), 10: Number(process.env.BENCH_ROUNDS ?? 3) };
const CONCURRENCIES = [3, 10];
const TARGET_RATIO = 1.3;

type Kind = 'Deployment' | 'StatefulSet';
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** A workload roughly the size of a real one: resources, probes, a few env vars. */
function podTemplate(app: string) {
  return {
    metadata: { labels: { app, team: 'payments' }, annotations: { 'prometheus.io/scrape': 'true' } },
    spec: {
      containers: [
        {
          name: 'app',
          image: `registry.example.com/payments/${app}:1.42.0`,
          ports: [{ containerPort: 8080, name: 'http' }],
          env: ['DATABASE_URL', 'REDIS_URL', 'LOG_LEVEL', 'FEATURE_FLAGS'].map((name) => ({
            name,
            value: `value-of-${name.toLowerCase()}`,
          })),
          resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '500m', memory: '512Mi' } },
          readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 10 },
        },
      ],
    },
  };
}

/** apiserver_request_total for deployments and statefulsets, by verb and subresource. */
async function requestCounts(kubeConfig: KubeConfig): Promise<Map<string, number>> {
  const text = await apiserverMetrics(kubeConfig);
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (labels.resource !== 'deployments' && labels.resource !== 'statefulsets') continue;
    const key = `${labels.verb}${labels.subresource ? ` ${labels.subresource}` : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return counts;
}

function difference(after: Map<string, number>, before: Map<string, number>): string {
  return [...after]
    .map(([key, value]) => [key, value - (before.get(key) ?? 0)] as const)
    .filter(([, value]) => value > 0)
    .sort()
    .map(([key, value]) => `${value} ${key}`)
    .join(', ');
}

runBench('kubernetes', `stop and start of ${DEPLOYMENTS + STATEFUL_SETS} workloads vs bare scale patches`, async (bench) => {
  bench.progress('starting etcd and kube-apiserver');
  const cluster = await testCluster();
  const { kubeConfig } = cluster;
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const apps = kubeConfig.makeApiClient(AppsV1Api);
  const namespace = `bench-${process.pid}`;
  await core.createNamespace({ body: { metadata: { name: namespace } } });

  const workloads: { kind: Kind; name: string }[] = [
    ...Array.from({ length: DEPLOYMENTS }, (_, i) => ({ kind: 'Deployment' as const, name: `web-${i + 1}` })),
    ...Array.from({ length: STATEFUL_SETS }, (_, i) => ({ kind: 'StatefulSet' as const, name: `db-${i + 1}` })),
  ];
  bench.progress(`creating ${DEPLOYMENTS} Deployments and ${STATEFUL_SETS} StatefulSets in ${namespace} (once per run)`);
  const creating = pLimit(10);
  let created = 0;
  await Promise.all(
    workloads.map(({ kind, name }) =>
      creating(async () => {
        const spec = { replicas: REPLICAS, selector: { matchLabels: { app: name } }, template: podTemplate(name) };
        if (kind === 'Deployment') await apps.createNamespacedDeployment({ namespace, body: { metadata: { name }, spec } });
        else await apps.createNamespacedStatefulSet({ namespace, body: { metadata: { name }, spec: { ...spec, serviceName: name } } });
        if (++created % 100 === 0) bench.progress(`  ${created} created`);
      }),
    ),
  );

  /** Replica counts and saved annotations of all 500 as they are now. */
  async function state(): Promise<{ replicas: Map<number, number>; annotated: number }> {
    const [deployments, statefulSets] = await Promise.all([
      apps.listNamespacedDeployment({ namespace }),
      apps.listNamespacedStatefulSet({ namespace }),
    ]);
    const items = [...deployments.items, ...statefulSets.items];
    const replicas = new Map<number, number>();
    for (const item of items) replicas.set(item.spec?.replicas ?? 1, (replicas.get(item.spec?.replicas ?? 1) ?? 0) + 1);
    return { replicas, annotated: items.filter((item) => item.metadata?.annotations?.[ORIGINAL_REPLICAS] !== undefined).length };
  }

  async function expectState(what: string, replicas: number, annotated: number): Promise<void> {
    const now = await state();
    if (now.replicas.get(replicas) !== workloads.length || now.annotated !== annotated) {
      throw new Error(
        `after ${what}: expected all ${workloads.length} at ${replicas} replicas and ${annotated} annotated, found ${JSON.stringify([...now.replicas])} and ${now.annotated} annotated`,
      );
    }
  }

  const logger = discardingLogger();
  const results: Record<string, number[]> = {};
  const requests: Record<string, string> = {};

  async function timed(key: string, work: () => Promise<unknown>): Promise<void> {
    // The apiserver's request counters, read around the first run of each kind only.
    const before = requests[key] === undefined ? await requestCounts(kubeConfig) : undefined;
    const started = performance.now();
    await work();
    const ms = performance.now() - started;
    (results[key] ??= []).push(ms);
    if (before) requests[key] = difference(await requestCounts(kubeConfig), before);
    bench.progress(`  ${key}: ${ms.toFixed(0)} ms`);
  }

  for (const concurrency of CONCURRENCIES) {
    const ours = createKubernetesActivities({ kubeConfig, dryRun: false, logger, concurrency });
    const bare = kubeConfig.makeApiClient(AppsV1Api);
    const scaleAll = (replicas: number) => {
      const limit = pLimit(concurrency);
      const body = { spec: { replicas } };
      return Promise.all(
        workloads.map(({ kind, name }) =>
          limit(() =>
            kind === 'Deployment'
              ? bare.patchNamespacedDeploymentScale({ namespace, name, body }, mergePatch)
              : bare.patchNamespacedStatefulSetScale({ namespace, name, body }, mergePatch),
          ),
        ),
      );
    };
    const oursRound = async () => {
      await timed(`ours stop c=${concurrency}`, async () => {
        const report = await ours.stopNamespace(namespace);
        if (report.changed.length !== workloads.length)
          throw new Error(`stopNamespace changed ${report.changed.length}, not ${workloads.length}`);
      });
      await expectState('our stop', 0, workloads.length);
      await timed(`ours start c=${concurrency}`, async () => {
        const report = await ours.startNamespace(namespace);
        if (report.changed.length !== workloads.length)
          throw new Error(`startNamespace changed ${report.changed.length}, not ${workloads.length}`);
      });
      await expectState('our start', REPLICAS, 0);
    };
    const bareRound = async () => {
      await timed(`bare stop c=${concurrency}`, () => scaleAll(0));
      await expectState('the bare stop', 0, 0);
      await timed(`bare start c=${concurrency}`, () => scaleAll(REPLICAS));
      await expectState('the bare start', REPLICAS, 0);
    };
    if (concurrency === CONCURRENCIES[0]) {
      bench.progress('warm-up: one bare stop and start (discarded)');
      await scaleAll(0);
      await scaleAll(REPLICAS);
    }
    const rounds = ROUNDS[concurrency] ?? 1;
    bench.progress(`concurrency ${concurrency}: ${rounds} round${rounds === 1 ? '' : 's'}`);
    for (let r = 0; r < rounds; r++) {
      bench.progress(`round ${r + 1}/${rounds} (${r % 2 === 0 ? 'ours' : 'baseline'} first)`);
      if (r % 2 === 0) {
        await oursRound();
        await bareRound();
      } else {
        await bareRound();
        await oursRound();
      }
    }
    report(bench, concurrency, 'stop', results, requests);
    report(bench, concurrency, 'start', results, requests);
  }
});

function report(
  bench: Bench,
  concurrency: number,
  action: 'stop' | 'start',
  results: Record<string, number[]>,
  requests: Record<string, string>,
): void {
  const ours = median(results[`ours ${action} c=${concurrency}`]!);
  const bare = median(results[`bare ${action} c=${concurrency}`]!);
  bench.figure({
    name: `${action}Namespace, concurrency ${concurrency}${concurrency === 3 ? ' (default)' : ''}`,
    value: round(ours, 0),
    unit: 'ms',
    baseline: { name: 'bare scale patches', value: round(bare, 0) },
    target: { op: '<=', limit: TARGET_RATIO, on: 'ratio' },
    note: `${results[`ours ${action} c=${concurrency}`]!.length === 1 ? 'one round' : `median of ${results[`ours ${action} c=${concurrency}`]!.length} rounds`}; apiserver requests, ours: ${requests[`ours ${action} c=${concurrency}`]}; baseline: ${requests[`bare ${action} c=${concurrency}`]}`,
  });
}
