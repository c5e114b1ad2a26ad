/**
 * The Temporal worker: only wiring. Workflows come from `src/workflows` (bundled into
 * Temporal's deterministic sandbox); activities are whatever implementations main.ts built.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { NativeConnection, Worker, type BundleOptions, type WorkerOptions } from '@temporalio/worker';
import type { AllActivities } from './activities/contracts';

export interface WorkerSettings {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  activities: AllActivities;
  /** How many workflows stay in memory between tasks; one not cached is replayed from its history. */
  maxCachedWorkflows: number;
  /** Activity slots. A stop dispatched ahead of its instant holds its slot until then, so a burst of shutdowns at one minute needs one per environment (two with AWS). */
  maxConcurrentActivities: number;
  /**
   * After `shutdown()` (SIGTERM), how long activities in flight run on before they are
   * cancelled: a stop or start halfway through a namespace finishes here instead of being
   * cancelled and retried on another worker. Workflow tasks are not polled meanwhile.
   */
  shutdownGraceMs: number;
}

/**
 * After the grace, cancelled activities stop within seconds (no new step starts; those in
 * flight finish). If the worker has still not stopped this much later, it gives up with
 * GracefulShutdownPeriodExpiredError rather than wait for the pod to be killed.
 */
export const SHUTDOWN_FORCE_AFTER_GRACE_MS = 15_000;

/**
 * How the workflows are bundled, here and in `npm run build`. Libraries are loaded once
 * and shared by every workflow instead of once per workflow (each copy costs every
 * cached workflow its memory again): luxon keeps no per-workflow state, only caches of
 * zones and Intl formatters; async-mutex (with the tslib helpers it brings) keeps none,
 * each workflow's lock being its own object. luxon declares itself free of side effects,
 * so webpack would drop the preload's bare require; the rule keeps it.
 */
export const WORKFLOW_BUNDLE_OPTIONS = {
  workflowsPath: require.resolve('./workflows'),
  preloadModules: ['luxon', 'async-mutex'],
  webpackConfigHook: (config) => ({
    ...config,
    module: { ...config.module, rules: [...(config.module?.rules ?? []), { test: /[\\/]node_modules[\\/]luxon[\\/]/, sideEffects: true }] },
  }),
} satisfies BundleOptions;

/**
 * `npm run build` writes the bundle next to the compiled worker (lib/), so the image never
 * runs webpack: bundling at start-up takes seconds and leaves its memory behind (measured
 * in docs/benchmarks.md). Run from source (ts-node, tests) there is none, and the worker
 * bundles for itself.
 */
export const PREBUILT_WORKFLOW_BUNDLE = path.join(__dirname, 'workflow-bundle.js');

/** Where a worker gets its workflows: the prebuilt bundle if there is one, else bundled at start-up with the same options. */
export function workflowCode(): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath' | 'bundlerOptions'> {
  if (existsSync(PREBUILT_WORKFLOW_BUNDLE)) return { workflowBundle: { codePath: PREBUILT_WORKFLOW_BUNDLE } };
  const { workflowsPath, preloadModules, webpackConfigHook } = WORKFLOW_BUNDLE_OPTIONS;
  return { workflowsPath, bundlerOptions: { preloadModules, webpackConfigHook } };
}

export async function createWorker({
  connection,
  namespace,
  taskQueue,
  activities,
  maxCachedWorkflows,
  maxConcurrentActivities,
  shutdownGraceMs,
}: WorkerSettings): Promise<Worker> {
  return Worker.create({
    connection,
    namespace,
    taskQueue,
    ...workflowCode(),
    activities,
    maxCachedWorkflows,
    maxConcurrentActivityTaskExecutions: maxConcurrentActivities,
    shutdownGraceTime: shutdownGraceMs,
    shutdownForceTime: shutdownGraceMs + SHUTDOWN_FORCE_AFTER_GRACE_MS,
  });
}
