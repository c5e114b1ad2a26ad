/**
 * The worker as the image runs it with `SERVICE_ROLE=worker`: compiled JavaScript (worker.ts
 * compiles this file and the service as `npm run build` does, prebuilt workflow bundle
 * included), src/worker.ts's createWorker with the default settings, in a process of its
 * own so its memory can be measured alone, with recording activities instead of Kubernetes
 * and AWS. Every stopNamespace/startNamespace call is reported to the parent over IPC with
 * the wall-clock instant it reached the worker.
 *
 * Usage (forked by worker.ts): worker-child.js <temporal address> <task queue>
 *
 * For experiments only, BENCH_WORKER_OPTIONS (JSON WorkerOptions, e.g.
 * '{"workflowThreadPoolSize":2}' or '{"maxCachedWorkflows":500}') creates the worker with
 * Worker.create and those options on top of createWorker's.
 */
import { rssAtStart } from './rss-at-start';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import type { AllActivities, StopTiming } from '../../src/activities/contracts';
import { createSchedulerActivities } from '../../src/activities/scheduler';
import { holdUntil } from '../../src/activities/timing';
import { createWorker, workflowCode } from '../../src/worker';
import { recordingActivities } from '../../test/support/recording-activities';
import { serviceConfig } from './common';

export type WorkerMessage =
  /** RSS when the script started, before createWorker, and after it (workflow bundle loaded). */
  | { type: 'ready'; rssAtStart: number; rssBeforeWorker: number; rss: number }
  | { type: 'call'; name: 'stopNamespace' | 'startNamespace'; namespace: string; atMs: number }
  | {
      type: 'memory';
      rss: number;
      peakRss: number;
      heapUsed: number;
      heapCommitted: number;
      workflowHeapUsed: number;
      workflowHeapCommitted: number;
    };

const send = (message: WorkerMessage) => process.send?.(message);

async function main(): Promise<void> {
  const [address, taskQueue] = process.argv.slice(2);
  if (!address || !taskQueue) throw new Error('usage: worker-child.ts <address> <task queue>');
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const recording = recordingActivities(async () => Date.now());
  // A stop handed over ahead of its instant is held as src/activities/kubernetes/namespace-actions.ts holds it;
  // it reaches the Kubernetes API when the hold ends, and that is the instant reported.
  const reported = (name: 'stopNamespace' | 'startNamespace') => async (namespace: string, timing?: StopTiming) => {
    await holdUntil(timing);
    send({ type: 'call', name, namespace, atMs: Date.now() });
    recording.calls.length = 0; // nothing here reads them; keep memory flat
    return recording[name](namespace);
  };
  const client = new Client({ connection: await Connection.connect({ address }) });
  // Only what environment and morning-reset workflows call; anything else fails as unregistered.
  const activities = {
    ...recording,
    stopNamespace: reported('stopNamespace'),
    startNamespace: reported('startNamespace'),
    ...createSchedulerActivities(client),
  } as unknown as AllActivities;
  const rssBeforeWorker = process.memoryUsage.rss();
  const connection = await NativeConnection.connect({ address });
  const extra = process.env.BENCH_WORKER_OPTIONS ? (JSON.parse(process.env.BENCH_WORKER_OPTIONS) as Partial<WorkerOptions>) : undefined;
  const { maxCachedWorkflows, maxConcurrentActivities, shutdownGraceMs } = serviceConfig().worker;
  const worker = extra
    ? await Worker.create({
        connection,
        namespace: 'default',
        taskQueue,
        activities,
        ...workflowCode(),
        maxCachedWorkflows,
        maxConcurrentActivityTaskExecutions: maxConcurrentActivities,
        ...extra,
      })
    : await createWorker({
        connection,
        namespace: 'default',
        taskQueue,
        activities,
        maxCachedWorkflows,
        maxConcurrentActivities,
        shutdownGraceMs,
      });
  if (extra) console.log(`  bench worker: EXPERIMENT, Worker.create with BENCH_WORKER_OPTIONS=${process.env.BENCH_WORKER_OPTIONS}`);

  let peakRss = process.memoryUsage.rss();
  setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }, 200).unref();
  process.on('message', (message: { type: 'memory' | 'shutdown' }) => {
    if (message.type === 'memory') {
      const rss = process.memoryUsage.rss();
      peakRss = Math.max(peakRss, rss);
      const { heapUsed, heapTotal } = process.memoryUsage();
      const workflowHeap = workflowThreadsHeap();
      send({
        type: 'memory',
        rss,
        peakRss,
        heapUsed,
        heapCommitted: heapTotal,
        workflowHeapUsed: workflowHeap.used,
        workflowHeapCommitted: workflowHeap.committed,
      });
    } else worker.shutdown();
  });
  process.on('disconnect', () => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
  });
  const running = worker.run();
  send({ type: 'ready', rssAtStart, rssBeforeWorker, rss: process.memoryUsage.rss() });
  await running;
  await client.connection.close();
}

/** The workflows run in worker threads, whose heaps process.memoryUsage() leaves out; the diagnostic report has them. */
function workflowThreadsHeap(): { used: number; committed: number } {
  const report = process.report.getReport() as unknown as {
    workers?: { javascriptHeap?: { usedMemory?: number; totalMemory?: number } }[];
  };
  const workers = report.workers ?? [];
  return {
    used: workers.reduce((sum, worker) => sum + (worker.javascriptHeap?.usedMemory ?? 0), 0),
    committed: workers.reduce((sum, worker) => sum + (worker.javascriptHeap?.totalMemory ?? 0), 0),
  };
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error('bench worker failed:', err);
    process.exit(1);
  },
);
