/**
 * Benchmark 3: 1,000 environments on one worker. A real Temporal dev server; the worker as
 * src/worker.ts creates it (real workflows, default options) in a child process of its own
 * with recording activities, so its RSS is the worker's alone.
 *
 *  - enrol: createEnrolment().enrol (signalWithStart) for 1,000 namespaces, 20 at a time
 *    (the reconciler's concurrency), then until visibility shows all 1,000 running (each
 *    has run its first workflow task). Baseline: the same for 10 environments first.
 *  - memory: the worker process's RSS after the 1,000 are enrolled (target <= 400 MB),
 *    against its RSS with no environment yet.
 *  - morning reset: morningResetWorkflow started as the Schedule would, timed until every
 *    environment's status query shows the reset (target <= 30 s). Baseline: the same for
 *    the 10.
 *  - shutdown skew: 200 of the 1,000 shut down at the same whole minute shortly after they
 *    are enrolled; how late each stopNamespace begins its work after that instant (target
 *    p99 <= 1 s). With the service's default SHUTDOWN_DISPATCH_AHEAD_SECONDS the stop is
 *    handed to the worker that long before and held there, as src/activities/timing.ts
 *    holds it; set it to 0 to measure dispatching at the instant. Baseline: the same for
 *    the 10, which are enrolled after hours
 *    with a 15-second after-hours window, so each stops 15 s after its enrolment at an
 *    instant its status reports. Reference: a polling downscaler with kube-downscaler's
 *    default 60 s interval is late by a uniform 0..60 s, p99 59.4 s (computed).
 */
import './support/mocha-shim';
import type { Client } from '@temporalio/client';
import { optionalTsToMs } from '@temporalio/common/lib/time';
import type { temporal } from '@temporalio/proto';
import pLimit from 'p-limit';
import { createEnrolment } from '../src/client/enrolment';
import { environmentWorkflowId, morningResetWorkflow, statusQuery } from '../src/workflows';
import type { EnvironmentPolicy } from '../src/domain/shutdown-policy';
import { devServerEnv } from '../test/support/temporal';
import { policyShuttingDownAt } from '../test/support/policies';
import { serviceConfig, waitFor, wholeMinuteAfter } from './support/common';
import { percentile, round, runBench, sleep, type Bench } from './support/report';
import { plainNodeRss, startWorkerProcess, type WorkerCall } from './support/worker';

const ENVIRONMENTS = 1000;
const BASELINE_ENVIRONMENTS = 10;
const EARLY = 200;
const ENROL_CONCURRENCY = 20;
/** How far ahead (at least) the 200 shut down, rounded up to a whole minute: enrolment must be done by then (the reset comes after). */
const SHUTDOWN_LEAD_MS = Number(process.env.BENCH_SHUTDOWN_LEAD_S ?? 75) * 1000;
const POLLING_INTERVAL_MS = 60_000;
/** The baseline environments' after-hours window: they stop this long after enrolment. */
const BASELINE_WINDOW_MS = 15_000;
const MB = 2 ** 20;
/** Stops are dispatched this long before their instant, as the service's settings say. */
const dispatchAheadMs = serviceConfig().enrolment.shutdownDispatchAheadMs;

const RUNNING = `WorkflowType = 'environmentWorkflow' AND ExecutionStatus = 'Running' AND EnvPhase = 'running'`;

runBench('scale', `${ENVIRONMENTS} environments on one worker`, async (bench) => {
  bench.progress('starting the Temporal dev server');
  const env = await devServerEnv();
  const client = env.client;
  const taskQueue = `bench-scale-${process.pid}`;
  bench.progress('compiling the service as npm run build does, and starting the worker process');
  const worker = await startWorkerProcess(env.address, taskQueue);
  const idle = await worker.memory();
  bench.progress(
    `worker pid ${worker.pid}: RSS ${mb(idle.rss)} MB with no environment ` +
      `(a bare node ${mb(plainNodeRss())} MB; at start ${mb(worker.startup.rssAtStart)} MB; before createWorker ${mb(worker.startup.rssBeforeWorker)} MB; after it, workflow bundle loaded, ${mb(worker.startup.rss)} MB)`,
  );

  try {
    // Baseline: 10 environments enrolled after hours (no working day) with a 15 s window, reset, stopped by their timers, ended.
    const afterHours = policyShuttingDownAt(wholeMinuteAfter(4 * 3600_000), {
      workingDays: [],
      afterHoursWindowMinutes: BASELINE_WINDOW_MS / 60_000,
    });
    const baseNames = Array.from({ length: BASELINE_ENVIRONMENTS }, (_, i) => `base-${process.pid}-${i + 1}`);
    bench.progress(`baseline: enrolling ${baseNames.length} environments that stop ${BASELINE_WINDOW_MS / 1000} s later`);
    const baseEnrol = await enrolAll(client, taskQueue, baseNames, () => afterHours);
    const baseRunning = await untilRunning(client, baseNames.length, baseEnrol.started);
    bench.progress(`  ${baseNames.length} enrolled in ${baseEnrol.ms.toFixed(0)} ms, all running after ${baseRunning} ms`);
    const baseShutdowns = new Map(
      await Promise.all(
        baseNames.map(
          async (ns) =>
            [ns, Date.parse((await client.workflow.getHandle(environmentWorkflowId(ns)).query(statusQuery)).shutdownAt ?? '')] as const,
        ),
      ),
    );
    const baseReset = await resetAndConfirm(bench, client, taskQueue, baseNames);
    const baseStops = await stopsOf(worker.calls, new Set(baseNames), Math.max(...baseShutdowns.values()));
    const baseLateness = baseStops.map((c) => c.atMs - baseShutdowns.get(c.namespace)!);
    bench.progress(`  ${baseStops.length} stopped: lateness p50 ${percentile(baseLateness, 0.5)} ms, max ${Math.max(...baseLateness)} ms`);
    await Promise.all(baseNames.map((ns) => client.workflow.getHandle(environmentWorkflowId(ns)).terminate('baseline done')));
    await waitFor(
      'the baseline environments to leave visibility',
      async () =>
        (await client.workflow.count(`WorkflowType = 'environmentWorkflow' AND ExecutionStatus = 'Running'`)).count === 0
          ? true
          : undefined,
      30_000,
    );

    // 1,000 environments; every fifth shuts down at `shutdownAt`, the rest hours later.
    const shutdownAt = wholeMinuteAfter(SHUTDOWN_LEAD_MS);
    const early = policyShuttingDownAt(shutdownAt);
    const late = policyShuttingDownAt(new Date(shutdownAt.getTime() + 4 * 3600_000), {}, shutdownAt);
    const names = Array.from({ length: ENVIRONMENTS }, (_, i) => `env-${process.pid}-${i + 1}`);
    const earlyNames = new Set(names.filter((_, i) => i % (ENVIRONMENTS / EARLY) === 0));
    bench.progress(
      `enrolling ${names.length} environments, ${ENROL_CONCURRENCY} at a time; ${earlyNames.size} of them shut down at ${shutdownAt.toISOString()}`,
    );
    const enrol = await enrolAll(
      client,
      taskQueue,
      names,
      (ns) => (earlyNames.has(ns) ? early : late),
      (done) => {
        if (done % 250 === 0) bench.progress(`  ${done} enrolled`);
      },
    );
    const running = await untilRunning(client, names.length, enrol.started);
    bench.progress(
      `  ${names.length} enrolled in ${enrol.ms.toFixed(0)} ms (signalWithStart p50 ${percentile(enrol.calls, 0.5).toFixed(0)} ms, p99 ${percentile(enrol.calls, 0.99).toFixed(0)} ms); all running after ${running} ms`,
    );
    const enrolled = await worker.memory();
    bench.progress(
      `  worker RSS ${mb(enrolled.rss)} MB, JS heap used/committed ${mb(enrolled.heapUsed)}/${mb(enrolled.heapCommitted)} MB in the main thread, ${mb(enrolled.workflowHeapUsed)}/${mb(enrolled.workflowHeapCommitted)} MB in the workflow thread (${mb(idle.workflowHeapUsed)}/${mb(idle.workflowHeapCommitted)} MB with no environment)`,
    );

    if (Date.now() > shutdownAt.getTime() - 5000)
      bench.progress('  WARNING: enrolment ran into the shutdown instant; the skew below is measured under that load');

    bench.progress(
      `waiting for the ${earlyNames.size} shutdowns at ${shutdownAt.toISOString()} (in ${((shutdownAt.getTime() - Date.now()) / 1000).toFixed(0)} s)`,
    );
    const stops = await stopsOf(worker.calls, earlyNames, shutdownAt.getTime());
    const lateness = stops.map((c) => c.atMs - shutdownAt.getTime());
    const strays = worker.calls.filter(
      (c) => c.name === 'stopNamespace' && !earlyNames.has(c.namespace) && !baseShutdowns.has(c.namespace),
    );
    if (strays.length > 0) throw new Error(`${strays.length} environments stopped that were not due, e.g. ${strays[0]!.namespace}`);
    bench.progress(`  ${stops.length} stopped: lateness p50 ${percentile(lateness, 0.5)} ms, p99 ${percentile(lateness, 0.99)} ms`);
    bench.progress(
      `  where it goes (ms after the instant, p50 / p99; stops dispatched ${dispatchAheadMs / 1000} s ahead): ${await latenessStages(client, stops, shutdownAt.getTime())}`,
    );

    const afterStops = await worker.memory();

    // After the shutdowns, so it cannot delay them: 800 running and 200 stopped environments, all reset.
    const reset = await resetAndConfirm(bench, client, taskQueue, names);
    const final = await worker.memory();

    bench.figure({
      name: `enrol ${ENVIRONMENTS}, per environment`,
      value: round(enrol.ms / names.length, 2),
      unit: 'ms',
      baseline: { name: `enrol ${BASELINE_ENVIRONMENTS}, per environment`, value: round(baseEnrol.ms / baseNames.length, 2) },
      note: `all ${ENVIRONMENTS}: ${(enrol.ms / 1000).toFixed(1)} s to enrol (${ENROL_CONCURRENCY} in flight), ${(running / 1000).toFixed(1)} s until all ran their first task; ${BASELINE_ENVIRONMENTS}: ${baseEnrol.ms.toFixed(0)} ms, ${baseRunning} ms`,
    });
    bench.figure({
      name: `worker RSS after enrolling ${ENVIRONMENTS}`,
      value: round(enrolled.rss / MB, 0),
      unit: 'MB',
      baseline: { name: 'worker RSS with no environment', value: round(idle.rss / MB, 0) },
      target: { op: '<=', limit: 400 },
      note:
        `the compiled worker in a child process, prebuilt workflow bundle; ${((enrolled.rss - idle.rss) / ENVIRONMENTS / 1024).toFixed(0)} KB per environment; ` +
        `JS heap used/committed ${mb(enrolled.heapUsed)}/${mb(enrolled.heapCommitted)} MB in the main thread, ${mb(enrolled.workflowHeapUsed)}/${mb(enrolled.workflowHeapCommitted)} MB in the workflow thread; after the stops ${mb(afterStops.rss)} MB, after the reset ${mb(final.rss)} MB, peak ${mb(final.peakRss)} MB`,
    });
    bench.figure({
      name: `morning reset of ${ENVIRONMENTS}, until every status shows it`,
      value: round(reset.confirmedMs / 1000, 2),
      unit: 's',
      baseline: { name: `morning reset of ${BASELINE_ENVIRONMENTS}`, value: round(baseReset.confirmedMs / 1000, 2) },
      target: { op: '<=', limit: 30 },
      note: `workflow done (all signalled) after ${(reset.signalledMs / 1000).toFixed(2)} s; last reset applied (the workflows' own record) at ${(reset.appliedMs / 1000).toFixed(2)} s`,
    });
    bench.figure({
      name: `shutdown lateness p99 (${stops.length} at one instant)`,
      value: percentile(lateness, 0.99),
      unit: 'ms',
      baseline: { name: `p99 of ${baseStops.length} alone`, value: percentile(baseLateness, 0.99) },
      target: { op: '<=', limit: 1000 },
      note:
        `stops dispatched ${dispatchAheadMs / 1000} s ahead (SHUTDOWN_DISPATCH_AHEAD_SECONDS); when stopNamespace began its work: p50 ${percentile(lateness, 0.5)} ms, p90 ${percentile(lateness, 0.9)} ms, max ${Math.max(...lateness)} ms (alone: p50 ${percentile(baseLateness, 0.5)} ms); ` +
        `a polling downscaler with a ${POLLING_INTERVAL_MS / 1000} s interval is late by 0..${POLLING_INTERVAL_MS / 1000} s: p50 ${POLLING_INTERVAL_MS / 2000} s, p99 ${(0.99 * POLLING_INTERVAL_MS) / 1000} s`,
    });
  } finally {
    await worker.stop();
  }
});

const mb = (bytes: number) => (bytes / MB).toFixed(0);

/** Waits until each of `due` has had exactly one stopNamespace call, at the latest 60 s after `lastDueMs`. */
async function stopsOf(calls: WorkerCall[], due: Set<string>, lastDueMs: number): Promise<WorkerCall[]> {
  const stops = () => calls.filter((c) => c.name === 'stopNamespace' && due.has(c.namespace));
  await waitFor(
    `${due.size} stopNamespace calls`,
    async () => (stops().length >= due.size ? true : undefined),
    lastDueMs - Date.now() + 60_000,
    100,
  );
  await sleep(1000); // a duplicate would come right behind
  const found = stops();
  if (new Set(found.map((c) => c.namespace)).size !== due.size || found.length !== due.size) {
    throw new Error(`expected one stopNamespace for each of ${due.size} environments, got ${found.length} calls`);
  }
  return found;
}

/**
 * Where the lateness of the stops goes, read from each workflow's history: when the
 * server fired the timer (at the instant, or `dispatchAheadMs` before it), when the worker
 * picked up the workflow task that followed, when it completed it (scheduling the stop),
 * when the first stop activity started on the worker, and when stopNamespace began its
 * work; and how many history events each stop cost the server.
 */
async function latenessStages(client: Client, stops: WorkerCall[], instantMs: number): Promise<string> {
  const eventsPerStop: number[] = [];
  const stages: Record<'timer fired' | 'task started' | 'task completed' | 'handed to the worker' | 'work began', number[]> = {
    'timer fired': [],
    'task started': [],
    'task completed': [],
    'handed to the worker': [],
    'work began': stops.map((c) => c.atMs - instantMs),
  };
  const limit = pLimit(ENROL_CONCURRENCY);
  await Promise.all(
    stops.map((stop) =>
      limit(async () => {
        const events = (await client.workflow.getHandle(environmentWorkflowId(stop.namespace)).fetchHistory()).events ?? [];
        const at = (event: temporal.api.history.v1.IHistoryEvent | undefined) =>
          (optionalTsToMs(event?.eventTime) ?? Number.NaN) - instantMs;
        const fired = events.findIndex((e) => e.timerFiredEventAttributes && at(e) >= -dispatchAheadMs - 1000);
        const after = events.slice(fired);
        eventsPerStop.push(after.length);
        stages['timer fired'].push(at(events[fired]));
        stages['task started'].push(at(after.find((e) => e.workflowTaskStartedEventAttributes)));
        stages['task completed'].push(at(after.find((e) => e.workflowTaskCompletedEventAttributes)));
        stages['handed to the worker'].push(at(after.find((e) => e.activityTaskStartedEventAttributes)));
      }),
    ),
  );
  const breakdown = Object.entries(stages)
    .map(([stage, values]) => `${stage} ${percentile(values, 0.5)} / ${percentile(values, 0.99)}`)
    .join(', ');
  return `${breakdown}; each stop wrote ${percentile(eventsPerStop, 0.5)} history events (median) from its timer on`;
}

/** Enrols every namespace `ENROL_CONCURRENCY` at a time; the wall time and each call's latency. */
async function enrolAll(
  client: Client,
  taskQueue: string,
  names: string[],
  policyOf: (namespace: string) => EnvironmentPolicy,
  progress?: (done: number) => void,
): Promise<{ started: number; ms: number; calls: number[] }> {
  const enrolments = new Map<EnvironmentPolicy, ReturnType<typeof createEnrolment>>();
  const enrolmentFor = (policy: EnvironmentPolicy) => {
    let enrolment = enrolments.get(policy);
    if (!enrolment)
      enrolments.set(
        policy,
        (enrolment = createEnrolment({ client, taskQueue, policy, systemNamespaces: [], shutdownDispatchAheadMs: dispatchAheadMs })),
      );
    return enrolment;
  };
  const limit = pLimit(ENROL_CONCURRENCY);
  const calls: number[] = [];
  let done = 0;
  const started = Date.now();
  const began = performance.now();
  await Promise.all(
    names.map((ns) =>
      limit(async () => {
        const t = performance.now();
        await enrolmentFor(policyOf(ns)).enrol(ns, true, 'bench');
        calls.push(performance.now() - t);
        progress?.(++done);
      }),
    ),
  );
  return { started, ms: performance.now() - began, calls };
}

/** Milliseconds from `since` until visibility counts `count` environments running (each ran its first task). */
async function untilRunning(client: Client, count: number, since: number): Promise<number> {
  await waitFor(
    `${count} environments running`,
    async () => ((await client.workflow.count(RUNNING)).count >= count ? true : undefined),
    120_000,
    100,
  );
  return Date.now() - since;
}

/**
 * Starts the morning-reset workflow as the Schedule does and times it: until it is done
 * (every signal sent), until the last environment applied the reset (its own lastAction.at),
 * and until a status query of every environment shows it.
 */
async function resetAndConfirm(
  bench: Bench,
  client: Client,
  taskQueue: string,
  names: string[],
): Promise<{ signalledMs: number; appliedMs: number; confirmedMs: number }> {
  bench.progress(`morning reset of ${names.length} environments`);
  const started = Date.now();
  const handle = await client.workflow.start(morningResetWorkflow, { taskQueue, workflowId: `bench-reset-${process.pid}-${started}` });
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([
    handle.result(),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the morning-reset workflow did not finish within 180 s')), 180_000);
    }),
  ]).finally(() => clearTimeout(timer));
  const signalledMs = Date.now() - started;
  if (result.reset !== names.length)
    throw new Error(`the reset reached ${result.reset} environments, not ${names.length} (missing ${result.missing.length})`);
  const pending = new Set(names);
  const limit = pLimit(ENROL_CONCURRENCY);
  let applied = 0;
  const deadline = Date.now() + 180_000;
  while (pending.size > 0) {
    if (Date.now() > deadline) throw new Error(`${pending.size} environments still do not show the reset after 180 s`);
    await Promise.all(
      [...pending].map((ns) =>
        limit(async () => {
          const status = await client.workflow.getHandle(environmentWorkflowId(ns)).query(statusQuery);
          const at = status.lastAction?.action === 'reset' ? Date.parse(status.lastAction.at) : Number.NaN;
          if (at >= started - 1000) {
            pending.delete(ns);
            applied = Math.max(applied, at);
          }
        }),
      ),
    );
    if (pending.size > 0) await sleep(100);
  }
  const confirmedMs = Date.now() - started;
  bench.progress(
    `  all signalled after ${signalledMs} ms, last applied at ${applied - started} ms, all confirmed by query after ${confirmedMs} ms`,
  );
  return { signalledMs, appliedMs: applied - started, confirmedMs };
}
