/**
 * Benchmark 1: acknowledging slash commands under load. Signed `/devenv status <ns>`
 * requests (fresh timestamp and HMAC per request, so every one passes the real
 * verification) at 50 concurrent connections into the real koa app (createApi +
 * createSlackRouter), whose status reads go through a real Temporal dev server, over
 * environments run by a worker process with the real environment workflows (recording
 * activities for Kubernetes and AWS). Baseline: the same load on `/healthz` of the same
 * server.
 *
 * The API and the worker each run in a process of their own, compiled and started as the
 * image runs them (SERVICE_ROLE=api / SERVICE_ROLE=worker in k8s/); the load generator
 * runs in a third. All share the machine's cores with the dev server.
 */
import './support/mocha-shim';
import pLimit from 'p-limit';
import { createEnrolment } from '../src/client/enrolment';
import { environmentWorkflowId, statusQuery } from '../src/workflows/environment/definitions';
import { SlackRecorder } from '../test/support/slack';
import { devServerEnv } from '../test/support/temporal';
import { startApiProcess } from './support/api';
import { policyShuttingDownAt } from '../test/support/policies';
import { serviceConfig, wholeMinuteAfter } from './support/common';
import { describeLoad, runLoad, type LoadResult } from './support/load';
import { runBench } from './support/report';
import { startWorkerProcess } from './support/worker';

const CONNECTIONS = 50;
const ENVIRONMENTS = 50;
const WARMUP_SECONDS = 5;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const SECRET = 'bench-signing-secret-0123456789abcdef';
const TARGET_P99_MS = 100;

runBench('slack', `signed /devenv status at ${CONNECTIONS} connections vs /healthz`, async (bench) => {
  bench.progress('starting the Temporal dev server');
  const env = await devServerEnv();
  const taskQueue = `bench-slack-${process.pid}`;
  bench.progress('compiling the service as npm run build does, and starting the worker process');
  const worker = await startWorkerProcess(env.address, taskQueue);

  const namespaces = Array.from({ length: ENVIRONMENTS }, (_, i) => `bench-slack-${process.pid}-${i + 1}`);
  bench.progress(`enrolling ${namespaces.length} environments (shutdown in 3 h)`);
  const { shutdownDispatchAheadMs } = serviceConfig().enrolment;
  const enrolment = createEnrolment({
    client: env.client,
    taskQueue,
    policy: policyShuttingDownAt(wholeMinuteAfter(3 * 3600_000)),
    systemNamespaces: [],
    shutdownDispatchAheadMs,
  });
  const limit = pLimit(10);
  await Promise.all(namespaces.map((ns) => limit(() => enrolment.enrol(ns, true, 'bench'))));
  // One query each: every workflow has run its first task and sits in the worker's cache.
  await Promise.all(namespaces.map((ns) => limit(() => env.client.workflow.getHandle(environmentWorkflowId(ns)).query(statusQuery))));

  const recorder = await new SlackRecorder().start();
  bench.progress('starting the API process (compiled, as the image runs it)');
  const api = await startApiProcess({
    role: 'slack',
    temporalAddress: env.address,
    signingSecret: SECRET,
    responseUrlOrigins: [recorder.url],
  });
  const base = api.url;
  const statusProfile = { kind: 'slack-status' as const, secret: SECRET, namespaces, responseUrl: recorder.responseUrl().url };

  try {
    bench.progress(`warm-up: ${WARMUP_SECONDS} s of each (discarded)`);
    await runLoad({ url: `${base}/healthz`, connections: CONNECTIONS, durationSeconds: WARMUP_SECONDS, profile: { kind: 'get' } });
    await runLoad({ url: `${base}/slack/commands`, connections: CONNECTIONS, durationSeconds: WARMUP_SECONDS, profile: statusProfile });

    bench.progress(`baseline: GET /healthz, ${CONNECTIONS} connections, ${SECONDS} s`);
    const healthz = await runLoad({ url: `${base}/healthz`, connections: CONNECTIONS, durationSeconds: SECONDS, profile: { kind: 'get' } });
    bench.progress(`  ${describeLoad(healthz)}`);
    bench.progress(
      `measured: POST /slack/commands "status <ns>" over ${namespaces.length} environments, ${CONNECTIONS} connections, ${SECONDS} s`,
    );
    const status = await runLoad({
      url: `${base}/slack/commands`,
      connections: CONNECTIONS,
      durationSeconds: SECONDS,
      profile: statusProfile,
    });
    bench.progress(`  ${describeLoad(status)}`);
    for (const body of status.unexpected) bench.progress(`  unexpected reply: ${body}`);
    check(status);

    bench.figure({
      name: 'status p99',
      value: status.latency.p99,
      unit: 'ms',
      baseline: { name: 'healthz p99', value: healthz.latency.p99 },
      target: { op: '<=', limit: TARGET_P99_MS },
      note: `status p50 ${status.latency.p50} ms (healthz ${healthz.latency.p50} ms); ${status.requestsPerSecond.toFixed(0)} status/s vs ${healthz.requestsPerSecond.toFixed(0)} healthz/s; ${status.bodies.status ?? 0} full status replies, ${status.bodies.deferred ?? 0} deferred to response_url`,
    });
    bench.figure({
      name: 'status throughput',
      value: Math.round(status.requestsPerSecond),
      unit: 'req/s',
      baseline: { name: 'healthz throughput', value: Math.round(healthz.requestsPerSecond) },
    });
  } finally {
    await api.stop();
    await recorder.stop();
    await worker.stop();
  }
});

/** Every request must have been verified and answered: a 401 or an error reply would make the figures meaningless. */
function check(result: LoadResult): void {
  const answered = (result.bodies.status ?? 0) + (result.bodies.deferred ?? 0);
  if (result.errors > 0 || result.non2xx > 0 || answered < result.requests) {
    throw new Error(`not every status request was verified and answered: ${describeLoad(result)}`);
  }
}
