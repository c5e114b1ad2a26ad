/**
 * Enrolment as Temporal sees it: starting a namespace's environment workflow, switching its
 * scheduler, giving it a policy, retiring it. The rules that decide what to do are in
 * src/domain/enrolment.ts; the admission webhook and the reconcile activity both carry
 * out their decisions through this.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { DEFAULT_INFRASTRUCTURE_NAMESPACES, type Config } from '../config';
import {
  createStanding,
  type Decision,
  type EnrolmentRules,
  type RetireReason,
  type RunningEnvironment,
  type Standing,
} from '../domain/enrolment';
import { createEnvironmentsClient } from './environments';
import { EnvCluster } from '../search-attributes';
import type { EnvironmentPolicy } from '../domain/shutdown-policy';
import { environmentWorkflowId, retireSignal, setEnabledSignal, setPolicySignal } from '../workflows/environment/definitions';
import { environmentWorkflow } from '../workflows/environment/workflow';

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

export function createEnrolment({
  client,
  taskQueue,
  policy,
  systemNamespaces,
  infrastructureNamespaces = DEFAULT_INFRASTRUCTURE_NAMESPACES,
  shutdownDispatchAheadMs,
  cluster,
}: EnrolmentSettings): Enrolment {
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

/** The service's enrolment, as its settings configure it. */
export function createConfiguredEnrolment(config: Config, client: Client): Enrolment {
  const { systemNamespaces, infrastructureNamespaces, shutdownDispatchAheadMs } = config.enrolment;
  const { taskQueue, cluster } = config.temporal;
  return createEnrolment({
    client,
    taskQueue,
    policy: config.policy,
    systemNamespaces,
    infrastructureNamespaces,
    shutdownDispatchAheadMs,
    cluster,
  });
}

/**
 * Carries out one decision of the plan, the reconciler's or the admission webhook's: what
 * it did, as the reconciler reports it (`enable` and `disable` may also re-plan), or
 * nothing when there was nothing to do or the run it would retire has ended.
 */
export async function carryOut(
  enrolment: Enrolment,
  decision: Decision,
  by: string,
): Promise<('enrolled' | 'enabled' | 'disabled' | 'replanned' | 'retired')[]> {
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
