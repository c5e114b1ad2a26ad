/**
 * Real Temporal servers for tests: a time-skipping test server per test suite (or test) for
 * timer-heavy workflow tests, and one CLI dev server per mocha run (with the project's
 * search attributes) for Schedules and visibility.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Runtime, DefaultLogger, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { ALL_SEARCH_ATTRIBUTES } from '../../src/search-attributes';
import { registerSearchAttributes } from '../../src/temporal/setup';
import { WORKFLOW_BUNDLE_OPTIONS } from '../../src/worker';
import { temporalCliPath, temporalTestServerPath } from '../../src/temporal/binaries';

let runtimeInstalled = false;
/** Worker logs at WARN and above, so test output stays readable; TEMPORAL_LOG_LEVEL overrides. */
export function quietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({ logger: new DefaultLogger((process.env.TEMPORAL_LOG_LEVEL as 'WARN') ?? 'WARN') });
}

let local: Promise<TestWorkflowEnvironment> | undefined;
let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

/**
 * A time-skipping test server of the calling `describe`'s own, started before its tests
 * and stopped after them; with `perTest`, a fresh one for every test. Never shared across
 * suites: the server's clock only moves on its own while nothing holds it, and a
 * leftover holds it for good. A workflow terminated while its activity task was still
 * queued, or while a workflow task was out to a worker that was stopping, keeps the clock
 * locked, and every later `result()` across a timer then waits in real time. Suites whose
 * tests end with workflows still busy take `perTest`.
 */
export function useTimeSkippingEnv({ perTest = false }: { perTest?: boolean } = {}): () => TestWorkflowEnvironment {
  let env: TestWorkflowEnvironment | undefined;
  (perTest ? beforeEach : before)(async function () {
    this.timeout(60_000);
    quietRuntime();
    env = await createTimeSkippingEnv();
    // The Java test server takes no start-up flags for search attributes, but implements the Operator API call.
    await registerSearchAttributes(env.connection, env.namespace ?? 'default');
  });
  (perTest ? afterEach : after)(async function () {
    this.timeout(30_000);
    await env?.teardown();
    env = undefined;
  });
  return () => {
    if (!env) throw new Error(`useTimeSkippingEnv(): the server is only there while the ${perTest ? 'test' : 'suite'} runs`);
    return env;
  };
}

/**
 * Now and then, on a busy machine, the SDK's client cannot reach a test server that has
 * just started (its connect deadline is not configurable here), and the server it started
 * is left running with no handle to stop it. Such an attempt's server is killed and the
 * start tried again; any other failure, or a third one, is the test's.
 */
async function createTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const path = temporalTestServerPath();
  for (let attempt = 1; ; attempt++) {
    const running = testServersStarted(path);
    try {
      return await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path } } });
    } catch (err) {
      for (const pid of testServersStarted(path)) if (!running.has(pid)) process.kill(pid, 'SIGKILL');
      if (attempt === 3 || !/Failed to connect before the deadline/.test(String(err))) throw err;
      console.warn(`time-skipping test server: ${String(err)}; starting another (attempt ${attempt + 1} of 3)`);
    }
  }
}

/** Test servers this process started: its children whose command line runs `path`. */
function testServersStarted(path: string): Set<number> {
  const pids = new Set<number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent === process.pid && readFileSync(`/proc/${entry}/cmdline`, 'utf8').startsWith(path)) pids.add(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

export function devServerEnv(): Promise<TestWorkflowEnvironment> {
  quietRuntime();
  local ??= TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: temporalCliPath() },
      searchAttributes: ALL_SEARCH_ATTRIBUTES,
    },
  });
  return local;
}

/** Bundling takes seconds; every test worker shares one bundle. */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({
    ...WORKFLOW_BUNDLE_OPTIONS,
    logger: new DefaultLogger('WARN'),
  });
  return bundle;
}

let queueCounter = 0;
export const uniqueTaskQueue = (name: string): string => `${name}-${process.pid}-${++queueCounter}`;

after(async function () {
  this.timeout(30_000);
  await (await local)?.teardown();
});
