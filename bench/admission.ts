/**
 * Benchmark 4: the admission webhook at 50 concurrent connections over HTTPS, into
 * startWebhookServer + createAdmissionWebhook with a real enrolment client on a Temporal
 * dev server (logging at info into /dev/null, as in production), compiled and in a process
 * of its own as the image runs it (support/api-child.ts).
 *
 *  - UPDATE reviews that change an annotation, not the `scheduler` label: decided without
 *    calling Temporal.
 *  - CREATE reviews for fresh names: each one checked before it is passed on, as every
 *    review is: a describe of its environment on the dev server, the namespace read back
 *    (there is no cluster here: support/namespaces.ts answers the read, as if each
 *    namespace the reviews name were stored), then a signalWithStart. No worker runs here:
 *    the webhook only waits for Temporal to accept the start, not for the workflow to run
 *    (the worker is a separate process and pod anyway). The answers do not wait for any of
 *    it: what the p99 measures is unchanged; what reaches Temporal per second is one
 *    describe more per CREATE than before reviews were checked.
 *
 * Baseline: a bare node:https server with the same certificate that reads the same body,
 * parses it and answers the same `allowed: true` AdmissionReview, in a process of its own
 * started the same way.
 * autocannon does not verify certificates, so one request to each server is first made
 * with certificate verification against the generated CA.
 */
import './support/mocha-shim';
import { rmSync } from 'node:fs';
import { devServerEnv } from '../test/support/temporal';
import { postJsonOverTls, servingCertificate } from '../test/support/tls';
import { startApiProcess } from './support/api';
import { policyShuttingDownAt } from '../test/support/policies';
import { wholeMinuteAfter } from './support/common';
import { describeLoad, runLoad, type LoadOptions, type LoadResult } from './support/load';
import { runBench, type Bench } from './support/report';

const CONNECTIONS = 50;
const WARMUP_SECONDS = 3;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const TARGET_P99_MS = 50;
const PATH = '/admission/namespaces';
const SYSTEM = ['kube-system', 'kube-public', 'kube-node-lease', 'devenv-scheduler'];

/** One request with certificate verification, so the TLS setup is known to be what the apiserver would accept. */
async function verifiedRequest(url: string, ca: Buffer): Promise<string> {
  const body = JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'probe-1',
      kind: { group: '', version: 'v1', kind: 'Namespace' },
      operation: 'UPDATE',
      name: 'probe',
      object: { metadata: { name: 'probe' } },
      oldObject: { metadata: { name: 'probe' } },
    },
  });
  const { status, text } = await postJsonOverTls(url, body, ca);
  if (status !== 200 || !text.includes('"allowed":true')) throw new Error(`${status} ${text}`);
  return text;
}

runBench('admission', `admission webhook at ${CONNECTIONS} connections over HTTPS vs a bare https server`, async (bench) => {
  bench.progress('starting the Temporal dev server; making a CA and serving certificate');
  const env = await devServerEnv();
  const tls = servingCertificate();
  const taskQueue = `bench-admission-${process.pid}`;
  bench.progress('starting the webhook and the bare server, each in a process of its own (compiled, as the image runs it)');
  const policy = policyShuttingDownAt(wholeMinuteAfter(3 * 3600_000));
  const webhook = await startApiProcess({
    role: 'admission',
    temporalAddress: env.address,
    taskQueue,
    policy,
    systemNamespaces: SYSTEM,
    certFile: tls.certFile,
    keyFile: tls.keyFile,
  });
  const bare = await startApiProcess({ role: 'bare-https', certFile: tls.certFile, keyFile: tls.keyFile });
  const bareUrl = `${bare.url}${PATH}`;
  const webhookUrl = `${webhook.url}${PATH}`;

  const outcomes = () => webhook.outcomes();
  try {
    await verifiedRequest(webhookUrl, tls.ca);
    await verifiedRequest(bareUrl, tls.ca);
    bench.progress('both servers answer with certificates verified against the CA');

    const run = async (what: string, options: Omit<LoadOptions, 'connections'>): Promise<LoadResult> => {
      bench.progress(`${what}: ${CONNECTIONS} connections, ${options.durationSeconds} s`);
      const result = await runLoad({ connections: CONNECTIONS, ...options });
      bench.progress(`  ${describeLoad(result)}`);
      for (const body of result.unexpected) bench.progress(`  unexpected reply: ${body}`);
      const allowed = (result.bodies.allowed ?? 0) + (result.bodies['allowed-with-warning'] ?? 0);
      if (result.errors > 0 || result.non2xx > 0 || allowed < result.requests)
        throw new Error(`${what}: not every review was answered with allowed: true`);
      return result;
    };
    const update = { kind: 'admission' as const, operation: 'UPDATE' as const, prefix: 'team' };
    bench.progress(`warm-up: ${WARMUP_SECONDS} s on each (discarded)`);
    await runLoad({ url: bareUrl, connections: CONNECTIONS, durationSeconds: WARMUP_SECONDS, profile: update });
    await runLoad({ url: webhookUrl, connections: CONNECTIONS, durationSeconds: WARMUP_SECONDS, profile: update });

    const bareUpdate = await run('baseline, UPDATE reviews, bare https server', {
      url: bareUrl,
      durationSeconds: SECONDS,
      profile: update,
    });
    const before = await outcomes();
    const webhookUpdate = await run('measured, UPDATE reviews (label unchanged: no Temporal call)', {
      url: webhookUrl,
      durationSeconds: SECONDS,
      profile: update,
    });
    const afterUpdate = await outcomes();
    const create = { kind: 'admission' as const, operation: 'CREATE' as const, prefix: `ns-${process.pid}` };
    const bareCreate = await run('baseline, CREATE reviews, bare https server', {
      url: bareUrl,
      durationSeconds: SECONDS,
      profile: create,
    });
    const webhookCreate = await run('measured, CREATE reviews for fresh names (a describe, a namespace read, a signalWithStart each)', {
      url: webhookUrl,
      durationSeconds: SECONDS,
      profile: create,
    });
    const afterCreate = await outcomes();
    const delta = (after: Record<string, number>, prior: Record<string, number>) =>
      Object.entries(after)
        .map(([outcome, value]) => [outcome, value - (prior[outcome] ?? 0)] as const)
        .filter(([, value]) => value > 0)
        .map(([outcome, value]) => `${outcome} ${value}`)
        .join(', ');
    const created = afterCreate.enrolled! - (afterUpdate.enrolled ?? 0);
    const started = (
      await env.client.workflow
        .count(`WorkflowType = 'environmentWorkflow' AND WorkflowId STARTS_WITH 'env/ns-${process.pid}-'`)
        .catch(() => env.client.workflow.count(`WorkflowType = 'environmentWorkflow'`))
    ).count;

    figure(bench, 'UPDATE', webhookUpdate, bareUpdate, `outcomes: ${delta(afterUpdate, before)}`);
    figure(
      bench,
      'CREATE',
      webhookCreate,
      bareCreate,
      `outcomes: ${delta(afterCreate, afterUpdate)} (failed = dropped with over 1,000 changes already waiting for Temporal, left to the reconciler); ${started} environment workflows started on the dev server for ${created} enrolled`,
    );
  } finally {
    await webhook.stop();
    await bare.stop();
    rmSync(tls.dir, { recursive: true, force: true });
  }
});

function figure(bench: Bench, operation: string, measured: LoadResult, baseline: LoadResult, outcomes: string): void {
  bench.figure({
    name: `webhook ${operation} p99`,
    value: measured.latency.p99,
    unit: 'ms',
    baseline: { name: `bare https ${operation} p99`, value: baseline.latency.p99 },
    target: { op: '<=', limit: TARGET_P99_MS },
    note: `p50 ${measured.latency.p50} ms (bare ${baseline.latency.p50} ms), ${measured.requestsPerSecond.toFixed(0)}/s (bare ${baseline.requestsPerSecond.toFixed(0)}/s); ${outcomes}`,
  });
}
