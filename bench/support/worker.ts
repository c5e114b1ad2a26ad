/** Starts bench/support/worker-child.ts as the image would and talks to it: activity calls as they land, memory on request. */
import { spawnSync } from 'node:child_process';
import { forkAsImage, messageFrom } from './image-process';
import type { WorkerMessage } from './worker-child';

export interface WorkerCall {
  name: 'stopNamespace' | 'startNamespace';
  namespace: string;
  atMs: number;
}

export type WorkerMemory = Omit<Extract<WorkerMessage, { type: 'memory' }>, 'type'>;

export interface WorkerProcess {
  pid: number;
  calls: WorkerCall[];
  /** RSS as the child started, before createWorker, and after it (workflow bundle loaded, nothing run yet). */
  startup: { rssAtStart: number; rssBeforeWorker: number; rss: number };
  memory(): Promise<WorkerMemory>;
  stop(): Promise<void>;
}

export async function startWorkerProcess(address: string, taskQueue: string): Promise<WorkerProcess> {
  // BENCH_WORKER_NODE_ARGS, e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof', profiles the worker alone.
  const { child, stop } = await forkAsImage('worker-child', [address, taskQueue], process.env.BENCH_WORKER_NODE_ARGS);
  const calls: WorkerCall[] = [];
  const memoryWaiters: ((m: WorkerMemory) => void)[] = [];
  child.on('message', (message: WorkerMessage) => {
    if (message.type === 'call') calls.push({ name: message.name, namespace: message.namespace, atMs: message.atMs });
    else if (message.type === 'memory') memoryWaiters.shift()?.(message);
  });
  const { rssAtStart, rssBeforeWorker, rss } = await messageFrom<Extract<WorkerMessage, { type: 'ready' }>>(
    child,
    'ready',
    'the worker process',
  );
  return {
    pid: child.pid!,
    calls,
    startup: { rssAtStart, rssBeforeWorker, rss },
    memory: () =>
      new Promise((resolve) => {
        memoryWaiters.push(resolve);
        child.send({ type: 'memory' });
      }),
    stop,
  };
}

/** RSS of a bare `node -e` on this machine, to tell ts-node's share of the child's RSS. */
export function plainNodeRss(): number {
  const run = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.memoryUsage.rss()))'], { encoding: 'utf8' });
  return Number(run.stdout);
}
