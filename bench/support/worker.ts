/** Starts bench/support/worker-child.ts and talks to it: activity calls as they land, memory on request. */
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { WorkerMessage } from './worker-child';

export interface WorkerCall {
  name: 'stopNamespace' | 'startNamespace';
  namespace: string;
  atMs: number;
}

export interface WorkerProcess {
  pid: number;
  calls: WorkerCall[];
  /** RSS as the child started (node + ts-node), before createWorker, and after it (workflows bundled, nothing run yet). */
  startup: { rssAtStart: number; rssBeforeWorker: number; rss: number };
  memory(): Promise<{ rss: number; peakRss: number; heapUsed: number; workflowHeapUsed: number }>;
  stop(): Promise<void>;
}

export async function startWorkerProcess(address: string, taskQueue: string): Promise<WorkerProcess> {
  const child: ChildProcess = fork(path.join(__dirname, 'worker-child.ts'), [address, taskQueue], {
    // BENCH_WORKER_NODE_ARGS, e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof', profiles the worker alone (Node refuses --cpu-prof in NODE_OPTIONS).
    execArgv: ['-r', 'ts-node/register/transpile-only', ...(process.env.BENCH_WORKER_NODE_ARGS?.split(' ').filter(Boolean) ?? [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  // Never outlive the benchmark.
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  const calls: WorkerCall[] = [];
  const memoryWaiters: ((m: { rss: number; peakRss: number; heapUsed: number; workflowHeapUsed: number }) => void)[] = [];
  const ready = new Promise<WorkerProcess['startup']>((resolve, reject) => {
    child.on('message', (message: WorkerMessage) => {
      if (message.type === 'ready') resolve({ rssAtStart: message.rssAtStart, rssBeforeWorker: message.rssBeforeWorker, rss: message.rss });
      else if (message.type === 'call') calls.push({ name: message.name, namespace: message.namespace, atMs: message.atMs });
      else memoryWaiters.shift()?.(message);
    });
    child.once('exit', (code) => reject(new Error(`worker process exited with ${code} before it was ready`)));
  });
  const startup = await ready;
  return {
    pid: child.pid!,
    calls,
    startup,
    memory: () =>
      new Promise((resolve) => {
        memoryWaiters.push(resolve);
        child.send({ type: 'memory' });
      }),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.send({ type: 'shutdown' });
      const timer = setTimeout(kill, 20_000);
      await exited;
      clearTimeout(timer);
      process.removeListener('exit', kill);
    },
  };
}

/** RSS of a bare `node -e` on this machine, to tell ts-node's share of the child's RSS. */
export function plainNodeRss(): number {
  const run = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.memoryUsage.rss()))'], { encoding: 'utf8' });
  return Number(run.stdout);
}
