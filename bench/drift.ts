/**
 * Drift while stopped: what the looks of stopped environments cost the apiserver. Many
 * stopped namespaces (Deployments, a StatefulSet, a CronJob each) on the test
 * kube-apiserver (real etcd + kube-apiserver); each gets one drift look (checkDrift of
 * createKubernetesActivities, called directly, DRIFT=restop, nothing awake), and the
 * apiserver's own counters say what the looks asked of it: apiserver_request_total for
 * every request, etcd_requests_total for the reads that reached etcd.
 *
 * The figure is requests per minute per 1,000 stopped environments at the default
 * DRIFT_CHECK_INTERVAL. Baseline, in the same run: the same namespaces looked at by
 * running the stop again (stopNamespace on a stopped namespace changes nothing but reads
 * every kind from etcd), the obvious way to re-check; the note says what reached etcd.
 */
import './support/mocha-shim';
import { AppsV1Api, BatchV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { createKubernetesActivities } from '../src/activities/kubernetes';
import { DEFAULT_DRIFT } from '../src/activities/kubernetes/drift';
import { testCluster } from '../test/support/kube';
import { apiserverMetrics } from './support/apiserver-metrics';
import { discardingLogger } from './support/common';
import { round, runBench } from './support/report';

const NAMESPACES = Number(process.env.BENCH_DRIFT_NAMESPACES ?? 200);
const DEPLOYMENTS = 4;
const PER_1000 = 1000;
/** The looks of 1,000 stopped environments may cost at most this many requests a minute (about 15 a second, each from the watch cache). */
const TARGET_PER_MINUTE = 1000;

/** Totals of the apiserver's request counter and of its reads from etcd. */
async function counters(kubeConfig: KubeConfig): Promise<{ requests: number; etcdReads: number }> {
  const text = await apiserverMetrics(kubeConfig);
  let requests = 0;
  let etcdReads = 0;
  for (const line of text.split('\n')) {
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (line.startsWith('apiserver_request_total{')) requests += value;
    if (line.startsWith('etcd_requests_total{') && /operation="(list|listWithCount|get)"/.test(line)) etcdReads += value;
  }
  return { requests, etcdReads };
}

runBench('drift', `drift looks of ${NAMESPACES} stopped environments: apiserver requests per minute per 1,000`, async (bench) => {
  bench.progress('starting etcd and kube-apiserver');
  const { kubeConfig } = await testCluster();
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const apps = kubeConfig.makeApiClient(AppsV1Api);
  const batch = kubeConfig.makeApiClient(BatchV1Api);
  const activities = createKubernetesActivities({ kubeConfig, dryRun: false, logger: discardingLogger(), drift: DEFAULT_DRIFT });
  const template = (app: string, restartPolicy: 'Always' | 'OnFailure' = 'Always') => ({
    metadata: { labels: { app } },
    spec: { containers: [{ name: 'app', image: `registry.example.com/${app}:1` }], restartPolicy },
  });
  const namespaces = Array.from({ length: NAMESPACES }, (_, i) => `bench-drift-${process.pid}-${i}`);
  bench.progress(`creating ${NAMESPACES} namespaces of ${DEPLOYMENTS} Deployments, a StatefulSet and a CronJob, and stopping them`);
  for (let i = 0; i < namespaces.length; i += 20) {
    await Promise.all(
      namespaces.slice(i, i + 20).map(async (namespace) => {
        await core.createNamespace({ body: { metadata: { name: namespace } } });
        for (let d = 0; d < DEPLOYMENTS; d++) {
          const app = `web-${d}`;
          await apps.createNamespacedDeployment({
            namespace,
            body: { metadata: { name: app }, spec: { replicas: 2, selector: { matchLabels: { app } }, template: template(app) } },
          });
        }
        await apps.createNamespacedStatefulSet({
          namespace,
          body: {
            metadata: { name: 'db' },
            spec: { replicas: 1, serviceName: 'db', selector: { matchLabels: { app: 'db' } }, template: template('db') },
          },
        });
        await batch.createNamespacedCronJob({
          namespace,
          body: {
            metadata: { name: 'report' },
            spec: { schedule: '0 3 * * *', jobTemplate: { spec: { template: template('report', 'OnFailure') } } },
          },
        });
        await activities.stopNamespace(namespace);
      }),
    );
  }

  async function measure(look: (namespace: string) => Promise<unknown>) {
    const before = await counters(kubeConfig);
    const started = performance.now();
    for (let i = 0; i < namespaces.length; i += 20) await Promise.all(namespaces.slice(i, i + 20).map(look));
    const seconds = (performance.now() - started) / 1000;
    const after = await counters(kubeConfig);
    // Less the one /metrics read that closes the measurement.
    return { requests: after.requests - before.requests - 1, etcdReads: after.etcdReads - before.etcdReads, seconds };
  }

  bench.progress('one drift look per namespace');
  const ours = await measure(async (namespace) => {
    const report = await activities.checkDrift(namespace, { restop: true });
    if (report.awake.length > 0) throw new Error(`${namespace}: ${report.awake.length} awake in a stopped namespace`);
  });
  bench.progress('the same namespaces looked at by running the stop again');
  const baseline = await measure((namespace) => activities.stopNamespace(namespace));
  const perMinute = (requests: number) => (requests / NAMESPACES) * PER_1000 * (60_000 / DEFAULT_DRIFT.intervalMs);
  bench.figure({
    name: 'drift look requests per minute per 1,000 stopped',
    value: round(perMinute(ours.requests), 0),
    unit: 'req/min',
    baseline: { name: 'the stop run again as the look', value: round(perMinute(baseline.requests), 0) },
    target: { op: '<=', limit: TARGET_PER_MINUTE },
    note:
      `every ${DEFAULT_DRIFT.intervalMs / 60_000} min; per look ${round(ours.requests / NAMESPACES, 2)} requests, ${round(ours.etcdReads / NAMESPACES, 2)} etcd reads ` +
      `(baseline ${round(baseline.requests / NAMESPACES, 2)} requests, ${round(baseline.etcdReads / NAMESPACES, 2)} etcd reads); ` +
      `${NAMESPACES} looks took ${round(ours.seconds, 1)} s, 20 at a time (baseline ${round(baseline.seconds, 1)} s)`,
  });
});
