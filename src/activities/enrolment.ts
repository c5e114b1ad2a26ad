/**
 * Enrolment: which namespaces have an environment workflow, and whether its scheduler is
 * on. The admission webhook applies each namespace change as it happens; the reconciler
 * (an activity on a Schedule) repairs whatever the webhook missed, e.g. while Temporal
 * was down, by comparing the cluster's namespaces with the running workflows.
 */
import { isDeepStrictEqual } from 'node:util';
import { asyncLocalStorage } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import pLimit from 'p-limit';
import type { z } from 'zod';
import { clockTime, timeZone, weekdayList } from '../config';
import type { Logger } from '../logger';
import { createEnvironments, type EnvironmentSummary } from '../environments';
import { environmentWorkflow, environmentWorkflowId, retireSignal, setEnabledSignal, setPolicySignal } from '../workflows/environment';
import type { EnvironmentPolicy } from '../workflows/shutdown-policy';
import type { EnrolmentActivities, ReconcileReport } from './contracts';
import type { NamespaceInfo } from './kubernetes';

export const SCHEDULER_LABEL = 'scheduler';

/** Namespace annotations that override the service's default policy for that environment. */
export const POLICY_ANNOTATIONS = {
  shutdownTime: 'devenv-scheduler/shutdown-time',
  timeZone: 'devenv-scheduler/time-zone',
  workingDays: 'devenv-scheduler/working-days',
} as const;

/**
 * The policy a namespace asks for: the defaults, with each valid annotation applied. An
 * invalid annotation is ignored and reported (the webhook shows it to whoever applied it).
 */
export function policyFor(defaults: EnvironmentPolicy, annotations: Record<string, string> | undefined): { policy: EnvironmentPolicy; warnings: string[] } {
  const policy: EnvironmentPolicy = { ...defaults };
  const warnings: string[] = [];
  const apply = <T>(key: string, schema: z.ZodType<T>, set: (value: T) => void) => {
    const raw = annotations?.[key];
    if (raw === undefined) return;
    const parsed = schema.safeParse(raw);
    if (parsed.success) set(parsed.data);
    else warnings.push(`annotation ${key}=${JSON.stringify(raw)} ignored: ${parsed.error.issues[0]?.message}`);
  };
  apply(POLICY_ANNOTATIONS.shutdownTime, clockTime, (value) => (policy.shutdownTime = value));
  apply(POLICY_ANNOTATIONS.timeZone, timeZone, (value) => (policy.timeZone = value));
  apply(POLICY_ANNOTATIONS.workingDays, weekdayList, (value) => (policy.workingDays = value));
  return { policy, warnings };
}

/** What a namespace's `scheduler` label asks for; an unknown value keeps the scheduler on (the safe, money-saving side) and says so. */
export function schedulerWanted(labels: Record<string, string> | undefined): { enabled: boolean; warning?: string } {
  const value = labels?.[SCHEDULER_LABEL];
  if (value === undefined || value === 'enabled') return { enabled: true };
  if (value === 'disabled') return { enabled: false };
  return { enabled: true, warning: `label ${SCHEDULER_LABEL}=${value} is neither "enabled" nor "disabled"; the scheduler stays on` };
}

export interface EnrolmentSettings {
  client: Client;
  taskQueue: string;
  /** The policy a new environment starts with, unless its annotations say otherwise. */
  policy: EnvironmentPolicy;
  /** Never enrolled: kube-system, the service's own namespace, ... */
  systemNamespaces: readonly string[];
  /** Given to every new environment: how long before a scheduled shutdown its stop is handed to a worker. */
  shutdownDispatchAheadMs: number;
}

export interface Enrolment {
  isSystem(namespace: string): boolean;
  defaults: EnvironmentPolicy;
  /** The service's SHUTDOWN_DISPATCH_AHEAD_SECONDS, in ms, given to every environment it enrols or re-plans. */
  dispatchAheadMs: number;
  /** Starts the environment (with `policy`, default: the service's) if it has no workflow, and sets its scheduler on or off. */
  enrol(namespace: string, enabled: boolean, by: string, policy?: EnvironmentPolicy): Promise<void>;
  /** Gives a running environment a new policy (its annotations or the service's settings changed), and the service's dispatch-ahead; starts it if it has no workflow. */
  applyPolicy(namespace: string, policy: EnvironmentPolicy, enabled: boolean, by: string): Promise<void>;
  /** Ends the environment's workflow; false when there was none. */
  retire(namespace: string): Promise<boolean>;
}

export function createEnrolment({ client, taskQueue, policy, systemNamespaces, shutdownDispatchAheadMs }: EnrolmentSettings): Enrolment {
  const system = new Set(systemNamespaces);
  return {
    isSystem: (namespace) => system.has(namespace),
    defaults: policy,
    dispatchAheadMs: shutdownDispatchAheadMs,

    async enrol(namespace, enabled, by, own = policy) {
      // One call whether or not the workflow exists: a retried or duplicated admission is harmless.
      await client.workflow.signalWithStart(environmentWorkflow, {
        workflowId: environmentWorkflowId(namespace),
        taskQueue,
        args: [{ namespace, policy: own, enabled, dispatchAheadMs: shutdownDispatchAheadMs }],
        signal: setEnabledSignal,
        signalArgs: [{ enabled, by }],
      });
    },

    async applyPolicy(namespace, own, enabled, by) {
      await client.workflow.signalWithStart(environmentWorkflow, {
        workflowId: environmentWorkflowId(namespace),
        taskQueue,
        args: [{ namespace, policy: own, enabled, dispatchAheadMs: shutdownDispatchAheadMs }],
        signal: setPolicySignal,
        signalArgs: [{ policy: own, by, dispatchAheadMs: shutdownDispatchAheadMs }],
      });
    },

    async retire(namespace) {
      try {
        await client.workflow.getHandle(environmentWorkflowId(namespace)).signal(retireSignal);
        return true;
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return false;
        throw err;
      }
    },
  };
}

/** Signals and starts in flight at once: enough to reconcile a thousand namespaces in seconds, few enough not to flood Temporal. */
const RECONCILE_CONCURRENCY = 20;

export function createEnrolmentActivities(options: {
  client: Client;
  enrolment: Enrolment;
  listNamespaces: () => Promise<NamespaceInfo[]>;
  logger: Logger;
}): EnrolmentActivities {
  const { client, enrolment, listNamespaces, logger } = options;

  /** Running environments as visibility last saw them: scheduler on or off, policy, dispatch-ahead. */
  async function runningEnvironments(): Promise<Map<string, EnvironmentSummary>> {
    return new Map((await createEnvironments(client).list()).map((environment) => [environment.namespace, environment]));
  }

  /**
   * Whether a running environment plans by other rules than its namespace and the service's
   * settings ask for now: an annotation changed while the webhook was away, or the service's
   * SHUTDOWN_TIME, WORKING_DAYS, ... or dispatch-ahead changed since it was enrolled. One that
   * has recorded no policy yet (enrolled before the status memo) records it at its next
   * change and is compared then.
   */
  function drifted(current: EnvironmentSummary, policy: EnvironmentPolicy): boolean {
    if (current.policy === null) return false;
    return !isDeepStrictEqual(current.policy, policy) || current.dispatchAheadMs !== enrolment.dispatchAheadMs;
  }

  return {
    async reconcileEnvironments() {
      const [namespaces, environments] = await Promise.all([listNamespaces(), runningEnvironments()]);
      const report: ReconcileReport = {
        namespaces: namespaces.length,
        environments: environments.size,
        enrolled: [],
        enabled: [],
        disabled: [],
        replanned: [],
        retired: [],
        failed: [],
      };
      const limit = pLimit(RECONCILE_CONCURRENCY);
      let done = 0;
      const repair = (namespace: string, work: () => Promise<void>) =>
        limit(async () => {
          try {
            await work();
          } catch (err) {
            report.failed.push({ namespace, error: err instanceof Error ? err.message : String(err) });
          } finally {
            // Also run outside an activity (devenv reconcile): then there is no one to heartbeat to.
            asyncLocalStorage.getStore()?.heartbeat({ done: ++done });
          }
        });

      const wanted = new Set<string>();
      const repairs: Promise<void>[] = [];
      for (const ns of namespaces) {
        if (ns.terminating || enrolment.isSystem(ns.name)) continue;
        wanted.add(ns.name);
        const { enabled } = schedulerWanted(ns.labels);
        const { policy } = policyFor(enrolment.defaults, ns.annotations);
        const current = environments.get(ns.name);
        const enrol = current === undefined || current.enabled !== enabled;
        const replan = current !== undefined && drifted(current, policy);
        if (!enrol && !replan) continue;
        repairs.push(
          repair(ns.name, async () => {
            if (enrol) {
              await enrolment.enrol(ns.name, enabled, 'reconciler', policy);
              (current === undefined ? report.enrolled : enabled ? report.enabled : report.disabled).push(ns.name);
            }
            if (replan) {
              await enrolment.applyPolicy(ns.name, policy, enabled, 'reconciler');
              report.replanned.push(ns.name);
            }
          }),
        );
      }
      for (const namespace of environments.keys()) {
        if (wanted.has(namespace)) continue;
        repairs.push(
          repair(namespace, async () => {
            if (await enrolment.retire(namespace)) report.retired.push(namespace);
          }),
        );
      }
      await Promise.all(repairs);
      for (const list of [report.enrolled, report.enabled, report.disabled, report.replanned, report.retired]) list.sort();
      logger.info(
        {
          namespaces: report.namespaces,
          environments: report.environments,
          enrolled: report.enrolled.length,
          enabled: report.enabled.length,
          disabled: report.disabled.length,
          replanned: report.replanned.length,
          retired: report.retired.length,
          failed: report.failed.length,
        },
        'reconciled environments with namespaces',
      );
      return report;
    },
  };
}
