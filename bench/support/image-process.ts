/**
 * The service's processes in the benchmarks, run as the image runs them: compiled as
 * `npm run build` compiles lib/ (tsc, then the prebuilt workflow bundle), started with the
 * node flags of the Dockerfile's CMD and with the allocator it preloads, in processes of
 * their own. Not under ts-node, which also loads node:repl and with it node:domain, a
 * wrapper around every event emitter that the image never has.
 */
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { cacheDir } from '../../src/temporal/binaries';
import { imageRuntime } from '../../test/support/dockerfile';

/** Inside node_modules so the compiled files resolve the project's dependencies; one per benchmark process, so two runs never share one. */
const COMPILED = path.join(__dirname, '..', '..', 'node_modules', '.cache', `devenv-bench-service-${process.pid}`);
let compiled: Promise<string> | undefined;

/** Compiles the service with the child scripts of bench/support (tsconfig.service.json), once per benchmark process. */
function compiledService(): Promise<string> {
  compiled ??= (async () => {
    process.once('exit', () => rmSync(COMPILED, { recursive: true, force: true }));
    const run = promisify(execFile);
    await run(process.execPath, [
      require.resolve('typescript/bin/tsc'),
      '-p',
      path.join(__dirname, 'tsconfig.service.json'),
      '--outDir',
      COMPILED,
    ]);
    await run(process.execPath, [path.join(COMPILED, 'src', 'build-workflow-bundle.js')]);
    return COMPILED;
  })();
  return compiled;
}

/** Debian's libjemalloc2, as scripts/setup-jemalloc.sh unpacks it into the tools cache. */
function localJemalloc(): string {
  const file = path.join(cacheDir(), 'jemalloc', 'libjemalloc.so.2');
  if (!existsSync(file))
    throw new Error(`${file} not found: run scripts/setup-jemalloc.sh (npm run setup does); the image preloads jemalloc`);
  return file;
}

export interface ImageProcess {
  child: ChildProcess;
  /** Asks the child to shut down ({ type: 'shutdown' }) and waits; SIGKILL after 20 s. */
  stop(): Promise<void>;
}

/**
 * Forks bench/support/<script>.ts, compiled, as the image would run it. `extraNodeArgs`
 * (e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof') is for experiments: Node refuses --cpu-prof
 * in NODE_OPTIONS.
 */
export async function forkAsImage(script: string, args: string[], extraNodeArgs = ''): Promise<ImageProcess> {
  const image = imageRuntime();
  const child = fork(path.join(await compiledService(), 'bench', 'support', `${script}.js`), args, {
    execArgv: [...image.nodeArgs, ...extraNodeArgs.split(' ').filter(Boolean)],
    // The Dockerfile preloads Debian's jemalloc; this is the same package's library.
    env: { ...process.env, ...(image.env.LD_PRELOAD ? { LD_PRELOAD: localJemalloc() } : {}) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  // Never outlive the benchmark.
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  return {
    child,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.send({ type: 'shutdown' });
        const timer = setTimeout(kill, 20_000);
        await exited;
        clearTimeout(timer);
      }
      process.removeListener('exit', kill);
    },
  };
}

/** The first message of `type` from the child; rejects if it exits first. */
export function messageFrom<T extends { type: string }>(child: ChildProcess, type: T['type'], what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`${what} exited with ${code} before it answered ${type}`));
    const onMessage = (message: T) => {
      if (message.type !== type) return;
      child.off('message', onMessage).off('exit', onExit);
      resolve(message);
    };
    child.on('message', onMessage).once('exit', onExit);
  });
}
