/**
 * Enrolment: which namespaces have an environment workflow, and whether its scheduler is
 * on. The rules are in enrolment-plan.ts (pure); this file carries them out. The admission
 * webhook applies each namespace change as it happens; the reconciler (an activity on a
 * Schedule) repairs whatever the webhook missed, e.g. while Temporal was down, by
 * comparing the cluster's namespaces with the running workflows.
 */
import { asyncLocalStorage } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import pLimit from 'p-limit';
import { DEFAULT_INFRASTRUCTURE_NAMESPACES } from '../config';
import type { Logger } from '../logger';
import { createEnvironmentsClient } from '../client/environments';
import { EnvCluster } from '../search-attributes';
import { environmentWorkflow, environmentWorkflowId, retireSignal, setEnabledSignal, setPolicySignal, type RetireReason } from '../workflows/environment';
import type { EnvironmentPolicy } from '../workflows/shutdown-policy';
import type { EnrolmentActivities, ReconcileReport } from './contracts';
import type { ClusterProbe } from './kubernetes';
import { createStanding, planReconcile, type Decision, type EnrolmentRules, type NamespaceSnapshot, type RunningEnvironment, type Standing } from './enrolment-plan';

export { POLICY_ANNOTATIONS, policyFor, SCHEDULER_LABEL } from './enrolment-plan';

export interface EnrolmentSettings {
  client: Client;
  taskQueue: string;
  /** The policy a new environment starts with, unless its annotations say otherwise. */
  policy: EnvironmentPolicy;
  /** Never enrolled: kube-system, the service's own namespace, ... */
  systemNamespaces: readonly string[];
  /** Never labelled by the webhook, enrolled only when labelled (default: the built-in list, see config.ts). */
  infrastructureNamespaces?: readonly string[];
  /** Given to every new environment: how long before a scheduled shutdown its stop is handed to a worker. */
  shutdownDispatchAheadMs: number;
  /** CLUSTER_NAME: in every workflow id and, as EnvCluster, in every new environment's search attributes. */
  cluster?: string;
}

export interface Enrolment {
  rules: EnrolmentRules;
  /** What a namespace is to the service (an environment, scheduled or paused, or why not), from its name and labels. */
  standing(namespace: string, labels: Record<string, string> | undefined): Standing;
  defaults: EnvironmentPolicy;
  /** The service's SHUTDOWN_DISPATCH_AHEAD_SECONDS, in ms, given to every environment it enrols or re-plans. */
  dispatchAheadMs: number;
  /** CLUSTER_NAME: the environments it enrols, and those the reconciler compares with the cluster, are this cluster's alone. */
  cluster?: string;
  /** Starts the environment (with `policy`, default: the service's) if it has no workflow, and sets its scheduler on or off. */
  enrol(namespace: string, enabled: boolean, by: string, policy?: EnvironmentPolicy): Promise<void>;
  /** Gives a running environment a new policy (its annotations or the service's settings changed), and the service's dispatch-ahead; starts it if it has no workflow. */
  applyPolicy(namespace: string, policy: EnvironmentPolicy, enabled: boolean, by: string): Promise<void>;
  /**
   * Ends the environment's workflow, saying why: `namespace-deleted` (gone or terminating)
   * or `unmanaged` (still there, no longer to be scheduled: a stopped one is restored
   * first). With `runId`, that run alone. False when there was none, or that run has ended.
   */
  retire(namespace: string, why: { reason: RetireReason; by: string }, runId?: string): Promise<boolean>;
  /** Its running environment as the Temporal server describes it now (not a listing), or undefined when none runs. */
  current(namespace: string): Promise<RunningEnvironment | undefined>;
}

export function createEnrolment({ client, taskQueue, policy, systemNamespaces, infrastructureNamespaces = DEFAULT_INFRASTRUCTURE_NAMESPACES, shutdownDispatchAheadMs, cluster }: EnrolmentSettings): Enrolment {
  const rules: EnrolmentRules = { systemNamespaces, infrastructureNamespaces };
  const environments = createEnvironmentsClient(client, { cluster });
  const workflowId = (namespace: string) => environmentWorkflowId(namespace, cluster);
  // Set once at the start; the workflow upserts only its own attributes, and continue-as-new keeps this one.
  const searchAttributes = cluster ? { typedSearchAttributes: [{ key: EnvCluster, value: cluster }] } : {};
  return {
    rules,
    standing: createStanding(rules),
    defaults: policy,
    dispatchAheadMs: shutdownDispatchAheadMs,
    cluster,

    async enrol(namespace, enabled, by, own = policy) {
      // One call whether or not the workflow exists: a retried or duplicated admission is harmless.
      await client.workflow.signalWithStart(environmentWorkflow, {
        workflowId: workflowId(namespace),
        taskQueue,
        args: [{ namespace, policy: own, enabled, dispatchAheadMs: shutdownDispatchAheadMs }],
        ...searchAttributes,
        signal: setEnabledSignal,
        signalArgs: [{ enabled, by }],
      });
    },

    async applyPolicy(namespace, own, enabled, by) {
      await client.workflow.signalWithStart(environmentWorkflow, {
        workflowId: workflowId(namespace),
        taskQueue,
        args: [{ namespace, policy: own, enabled, dispatchAheadMs: shutdownDispatchAheadMs }],
        ...searchAttributes,
        signal: setPolicySignal,
        signalArgs: [{ policy: own, by, dispatchAheadMs: shutdownDispatchAheadMs }],
      });
    },

    async retire(namespace, why, runId) {
      try {
        // A run that has ended (retired, continued as new, replaced by a namespace of the same name) answers "not found".
        await client.workflow.getHandle(workflowId(namespace), runId).signal(retireSignal, why);
        return true;
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return false;
        throw err;
      }
    },

    current: (namespace) => environments.running(namespace),
  };
}

/**
 * Carries out one decision of the plan, the reconciler's or the admission webhook's: what
 * it did, as the reconciler reports it (`enable` and `disable` may also re-plan), or
 * nothing when there was nothing to do or the run it would retire has ended.
 */
export async function carryOut(enrolment: Enrolment, decision: Decision, by: string): Promise<('enrolled' | 'enabled' | 'disabled' | 'replanned' | 'retired')[]> {
  const { namespace } = decision;
  switch (decision.action) {
    case 'enrol':
      await enrolment.enrol(namespace, decision.enabled, by, decision.policy);
      return ['enrolled'];
    case 'enable':
    case 'disable': {
      await enrolment.enrol(namespace, decision.enabled, by, decision.policy);
      if (!decision.replan) return [decision.enabled ? 'enabled' : 'disabled'];
      await enrolment.applyPolicy(namespace, decision.policy, decision.enabled, by);
      return [decision.enabled ? 'enabled' : 'disabled', 'replanned'];
    }
    case 'replan':
      await enrolment.applyPolicy(namespace, decision.policy, decision.enabled, by);
      return ['replanned'];
    case 'retire':
      return (await enrolment.retire(namespace, { reason: decision.retire, by }, decision.runId)) ? ['retired'] : [];
    case 'unchanged':
    case 'leave-alone':
      return [];
  }
}

/** Signals and starts in flight at once: enough to reconcile a thousand namespaces in seconds, few enough not to flood Temporal. */
const RECONCILE_CONCURRENCY = 20;

const BY = 'reconciler';

export function createEnrolmentActivities(options: {
  client: Client;
  enrolment: Enrolment;
  listNamespaces: () => Promise<NamespaceSnapshot[]>;
  logger: Logger;
  /** DRY_RUN: every reconcile only plans and reports. */
  dryRun?: boolean;
  /** Asked when the namespaces cannot be listed: a cluster that does not answer at all fails the reconcile without retries. */
  probe?: () => Promise<ClusterProbe>;
}): EnrolmentActivities {
  const { client, enrolment, listNamespaces, logger, probe } = options;

  /** Carries out one decision, noting in the report what it did. */
  async function execute(decision: Decision, report: ReconcileReport): Promise<void> {
    const { namespace } = decision;
    if (decision.action === 'unchanged' || decision.action === 'leave-alone') return;
    const done = await carryOut(enrolment, decision, BY);
    for (const what of done) report[what].push(namespace);
    if (decision.action === 'retire' && done.length === 0) {
      logger.info({ namespace, runId: decision.runId }, 'reconciler: the run it would retire has ended since it was listed; left for the next reconcile');
      return;
    }
    logger.info({ namespace, action: decision.action, reason: decision.reason }, `reconciler: ${decision.action}`);
  }

  return {
    async reconcileEnvironments(asked = {}) {
      const dryRun = asked.dryRun === true || options.dryRun === true;
      // Environments first, then namespaces, and a retire goes only to the run that was
      // listed: a namespace deleted and created again while this runs keeps its new
      // environment, whose run was either not listed or (the plan checks the server's start
      // time against this clock, in case the order ever changes) started after the namespace
      // list was begun, and is left to the next reconcile. A listed run that has ended since
      // (retired, continued as new) answers "not found" and is left alone too.
      const environments = await createEnvironmentsClient(client, { cluster: enrolment.cluster }).list();
      const snapshotAt = new Date();
      const namespaces = await listNamespaces().catch(async (err: unknown) => {
        // No cluster at all (nothing listening, no such host): one failure until the next scheduled run, not a retry every few seconds.
        const probed = await probe?.();
        if (probed && !probed.reachable) {
          throw ApplicationFailure.nonRetryable(`no Kubernetes cluster reachable at ${probed.server} (${probed.reason}); the next reconcile tries again`, 'ClusterUnreachable');
        }
        throw err;
      });
      const decisions = planReconcile({
        namespaces,
        environments,
        snapshotAt,
        rules: enrolment.rules,
        defaults: enrolment.defaults,
        dispatchAheadMs: enrolment.dispatchAheadMs,
      });
      const report: ReconcileReport = {
        dryRun,
        namespaces: namespaces.length,
        environments: environments.length,
        enrolled: [],
        enabled: [],
        disabled: [],
        replanned: [],
        retired: [],
        failed: [],
        decisions: decisions.map((d) => ({ namespace: d.namespace, action: d.action, reason: d.reason, ...(d.action === 'retire' ? { retire: d.retire } : {}) })),
        decisionsOmitted: 0,
      };
      const planned = counts(report);
      if (dryRun) {
        for (const decision of report.decisions) logger.info(decision, `reconciler (dry run): ${decision.action}`);
        logger.info(planned, 'reconciler (dry run): planned, nothing changed');
        // Every decision is in the log; the result (capped in size by Temporal) keeps the first thousands.
        report.decisionsOmitted = Math.max(0, report.decisions.length - MAX_DRY_RUN_DECISIONS);
        report.decisions = report.decisions.slice(0, MAX_DRY_RUN_DECISIONS);
        return report;
      }
      // The report is the workflow's result, which Temporal caps in size: on a cluster of
      // thousands of namespaces, the ones nothing was done about are counted, not all listed.
      let quiet = 0;
      report.decisions = report.decisions.filter((d) => (d.action !== 'unchanged' && d.action !== 'leave-alone') || ++quiet <= MAX_QUIET_DECISIONS);
      report.decisionsOmitted = Math.max(0, quiet - MAX_QUIET_DECISIONS);

      const limit = pLimit(RECONCILE_CONCURRENCY);
      let done = 0;
      await Promise.all(
        decisions
          .filter((decision) => decision.action !== 'unchanged' && decision.action !== 'leave-alone')
          .map((decision) =>
            limit(async () => {
              try {
                await execute(decision, report);
              } catch (err) {
                report.failed.push({ namespace: decision.namespace, error: err instanceof Error ? err.message : String(err) });
              } finally {
                // Also run outside an activity (tests): then there is no one to heartbeat to.
                asyncLocalStorage.getStore()?.heartbeat({ done: ++done });
              }
            }),
          ),
      );
      for (const list of [report.enrolled, report.enabled, report.disabled, report.replanned, report.retired]) list.sort();
      logger.info(
        {
          ...planned,
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

/** Decisions to change nothing kept in a real run's report; the rest are only counted. */
const MAX_QUIET_DECISIONS = 500;
/** Decisions a dry run's report keeps (all are logged). */
const MAX_DRY_RUN_DECISIONS = 5000;

/** How many namespaces and environments were looked at, and how many decisions of each kind were made. */
function counts(report: ReconcileReport): Record<string, number> {
  const byAction: Record<string, number> = {};
  for (const { action } of report.decisions) byAction[`plan.${action}`] = (byAction[`plan.${action}`] ?? 0) + 1;
  return { namespaces: report.namespaces, environments: report.environments, ...byAction };
}
