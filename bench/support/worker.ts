/** Starts bench/support/worker-child.ts and talks to it: activity calls as they land, memory on request. */
import { execFile, fork, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { imageRuntime } from '../../test/support/dockerfile';
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

/** Inside node_modules so the compiled files resolve the project's dependencies. */
const COMPILED = path.join(__dirname, '..', '..', 'node_modules', '.cache', 'devenv-bench-worker');
let compiled: Promise<string> | undefined;

/**
 * Compiles worker-child.ts with the service, as `npm run build` compiles the image's lib/
 * (tsc, then the workflow bundle next to worker.js), once per benchmark process: the
 * worker then runs as deployed, without ts-node and without bundling at start-up.
 */
export function compiledWorkerChild(): Promise<string> {
  compiled ??= (async () => {
    rmSync(COMPILED, { recursive: true, force: true });
    const run = promisify(execFile);
    await run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(__dirname, 'tsconfig.worker.json'), '--outDir', COMPILED]);
    await run(process.execPath, [path.join(COMPILED, 'src', 'build-workflow-bundle.js')]);
    return path.join(COMPILED, 'bench', 'support', 'worker-child.js');
  })();
  return compiled;
}

export async function startWorkerProcess(address: string, taskQueue: string): Promise<WorkerProcess> {
  const image = imageRuntime();
  const child: ChildProcess = fork(await compiledWorkerChild(), [address, taskQueue], {
    // node's flags as the image's CMD gives them; BENCH_WORKER_NODE_ARGS, e.g. '--cpu-prof
    // --cpu-prof-dir=/tmp/prof', profiles the worker alone (Node refuses --cpu-prof in NODE_OPTIONS).
    execArgv: [...image.nodeArgs, ...(process.env.BENCH_WORKER_NODE_ARGS?.split(' ').filter(Boolean) ?? [])],
    // The image's allocator: the Dockerfile preloads Debian's jemalloc, this the same package's library.
    env: { ...process.env, ...(image.env.LD_PRELOAD ? { LD_PRELOAD: localJemalloc() } : {}) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  // Never outlive the benchmark.
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  const calls: WorkerCall[] = [];
  const memoryWaiters: ((m: WorkerMemory) => void)[] = [];
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

/** Debian's libjemalloc2, as scripts/setup-jemalloc.sh unpacks it into the tools cache. */
function localJemalloc(): string {
  const file = path.join(process.env.DEVENV_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'devenv-scheduler'), 'jemalloc', 'libjemalloc.so.2');
  if (!existsSync(file)) throw new Error(`${file} not found: run scripts/setup-jemalloc.sh (npm run setup does), the image preloads jemalloc`);
  return file;
}

/** RSS of a bare `node -e` on this machine, to tell ts-node's share of the child's RSS. */
export function plainNodeRss(): number {
  const run = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.memoryUsage.rss()))'], { encoding: 'utf8' });
  return Number(run.stdout);
}
