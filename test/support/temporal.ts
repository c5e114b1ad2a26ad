/**
 * Real Temporal servers for tests, started once per mocha run and stopped at the end:
 * the time-skipping test server for timer-heavy workflow tests and the CLI dev server
 * (with the project's search attributes) for Schedules and visibility.
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Runtime, DefaultLogger, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { ALL_SEARCH_ATTRIBUTES } from '../../src/search-attributes';
import { registerSearchAttributes } from '../../src/temporal/setup';
import { temporalCliPath, temporalTestServerPath } from '../../src/temporal/binaries';

let runtimeInstalled = false;
function quietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({ logger: new DefaultLogger((process.env.TEMPORAL_LOG_LEVEL as 'WARN') ?? 'WARN') });
}

let timeSkipping: Promise<TestWorkflowEnvironment> | undefined;
let local: Promise<TestWorkflowEnvironment> | undefined;
let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

export function timeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  quietRuntime();
  timeSkipping ??= (async () => {
    const env = await TestWorkflowEnvironment.createTimeSkipping({
      server: { executable: { type: 'existing-path', path: temporalTestServerPath() } },
    });
    // The Java test server takes no start-up flags for search attributes, but implements the Operator API call.
    await registerSearchAttributes(env.connection, env.namespace ?? 'default');
    return env;
  })();
  return timeSkipping;
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
    workflowsPath: require.resolve('../../src/workflows'),
    logger: new DefaultLogger('WARN'),
  });
  return bundle;
}

let queueCounter = 0;
export const uniqueTaskQueue = (name: string): string => `${name}-${process.pid}-${++queueCounter}`;

after(async function () {
  this.timeout(30_000);
  await Promise.all([timeSkipping, local].map(async (env) => (await env)?.teardown()));
});
