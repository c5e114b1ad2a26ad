/**
 * What every front end (Slack, the REST API, the `devenv` CLI) asks of Temporal, in one
 * place: each returns plain data, and a failure is an `OperationError` whose kind says
 * what went wrong (unknown environment, rejected by the workflow, ...), so each front end
 * only decides how to show it.
 */
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
} from '@temporalio/client';
import { EnvEnabled, EnvNamespace, EnvNextShutdown, EnvPhase } from './search-attributes';
import {
  DISPATCH_AHEAD_MEMO,
  environmentWorkflowId,
  prolongateUpdate,
  startUpdate,
  STATUS_MEMO,
  statusQuery,
  stopUpdate,
  type StatusMemo,
  type ActionResult,
  type EnvironmentStatus,
  type Phase,
} from './workflows/environment';
import { describeShutdown, type EnvironmentPolicy } from './workflows/shutdown-policy';
import { stopSupportPodSignal, supportPodStateQuery, supportPodWorkflow, supportPodWorkflowId, type SupportPodState } from './workflows/support-pod';

export type OperationErrorKind = 'unknown-environment' | 'retired' | 'rejected' | 'conflict' | 'unknown-support-pod';

export class OperationError extends Error {
  constructor(
    readonly kind: OperationErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'OperationError';
  }
}

export interface EnvironmentSummary {
  namespace: string;
  phase: Phase;
  enabled: boolean;
  /** ISO instant, or null when none is scheduled. */
  nextShutdown: string | null;
  /** As the environment last recorded it; null if it has recorded none since before the status memo. */
  policy: EnvironmentPolicy | null;
  /** Its SHUTDOWN_DISPATCH_AHEAD_SECONDS in ms; null if it has not recorded one (enrolled by a version before it). */
  dispatchAheadMs: number | null;
  /** The running execution listed, and when it started (ISO, server time): the reconciler retires that run alone. */
  runId: string;
  startedAt: string;
}

export interface SupportPodSummary {
  name: string;
  state: SupportPodState;
}

const RUNNING_ENVIRONMENTS = `WorkflowType = 'environmentWorkflow' AND ExecutionStatus = 'Running'`;
const RUNNING_SUPPORT_PODS = `WorkflowType = 'supportPodWorkflow' AND ExecutionStatus = 'Running'`;

export interface Environments {
  status(namespace: string): Promise<EnvironmentStatus>;
  list(): Promise<EnvironmentSummary[]>;
  /** How many running environments are in each phase (Temporal visibility counts, no listing). */
  countByPhase(): Promise<Record<Phase, number>>;
  /** Fails at once, from the server alone, when the environment is unknown or retired: no worker needed to say so. */
  ensureManaged(namespace: string): Promise<void>;
  start(namespace: string, by: string): Promise<ActionResult>;
  stop(namespace: string, by: string): Promise<ActionResult>;
  prolongate(namespace: string, minutes: number, by: string): Promise<ActionResult>;
  startSupportPod(request: { name: string; size: string; by: string; taskQueue: string; ttlMs?: number }): Promise<void>;
  supportPod(name: string): Promise<SupportPodState>;
  stopSupportPod(name: string, by: string): Promise<void>;
  listSupportPods(): Promise<SupportPodSummary[]>;
}

export function createEnvironments(client: Client): Environments {
  const handle = (namespace: string) => client.workflow.getHandle(environmentWorkflowId(namespace));

  /** Temporal's errors in the words of the domain; anything else is passed on as it is. */
  function translate(err: unknown, namespace: string): never {
    if (err instanceof WorkflowNotFoundError) {
      throw new OperationError('unknown-environment', `${namespace} is not a managed environment (no such namespace, or it is a system namespace)`);
    }
    // The validator's or the handler's own words; a rejected Update changed nothing.
    if (err instanceof WorkflowUpdateFailedError) throw new OperationError('rejected', err.cause?.message ?? err.message);
    throw err;
  }

  async function update(namespace: string, run: () => Promise<ActionResult>): Promise<ActionResult> {
    await ensureManaged(namespace);
    return run().catch((err: unknown) => translate(err, namespace));
  }

  async function ensureManaged(namespace: string): Promise<void> {
    const { status } = await handle(namespace)
      .describe()
      .catch((err: unknown) => translate(err, namespace));
    if (status.name !== 'RUNNING') throw new OperationError('retired', `${namespace} is no longer managed (its namespace was deleted)`);
  }

  return {
    async status(namespace) {
      const description = await handle(namespace)
        .describe()
        .catch((err: unknown) => translate(err, namespace));
      const memo = description.memo?.[STATUS_MEMO] as StatusMemo | undefined;
      // Answered by the server alone; an environment started before the memo existed is asked directly.
      if (!memo || description.status.name !== 'RUNNING') return handle(namespace).query(statusQuery).catch((err: unknown) => translate(err, namespace));
      return { ...memo, shutdownDescription: memo.shutdownAt ? describeShutdown(new Date(memo.shutdownAt), new Date(), memo.policy.timeZone) : null };
    },

    async list() {
      const environments: EnvironmentSummary[] = [];
      for await (const execution of client.workflow.list({ query: RUNNING_ENVIRONMENTS })) {
        const attributes = execution.typedSearchAttributes;
        const memo = execution.memo?.[STATUS_MEMO] as StatusMemo | undefined;
        const dispatchAheadMs = execution.memo?.[DISPATCH_AHEAD_MEMO];
        environments.push({
          namespace: attributes.get(EnvNamespace) ?? execution.workflowId.replace(/^env\//, ''),
          phase: (attributes.get(EnvPhase) ?? 'running') as Phase,
          enabled: attributes.get(EnvEnabled) ?? true,
          nextShutdown: attributes.get(EnvNextShutdown)?.toISOString() ?? null,
          policy: memo?.policy ?? null,
          dispatchAheadMs: typeof dispatchAheadMs === 'number' ? dispatchAheadMs : null,
          runId: execution.runId,
          startedAt: execution.startTime.toISOString(),
        });
      }
      return environments.sort((a, b) => a.namespace.localeCompare(b.namespace));
    },

    async countByPhase() {
      const phases: Phase[] = ['running', 'stopping', 'stopped', 'starting', 'disabled'];
      const counts = await Promise.all(phases.map((phase) => client.workflow.count(`${RUNNING_ENVIRONMENTS} AND EnvPhase = '${phase}'`)));
      return Object.fromEntries(phases.map((phase, i) => [phase, counts[i]!.count])) as Record<Phase, number>;
    },

    ensureManaged,
    start: (namespace, by) => update(namespace, () => handle(namespace).executeUpdate(startUpdate, { args: [{ by }] })),
    stop: (namespace, by) => update(namespace, () => handle(namespace).executeUpdate(stopUpdate, { args: [{ by }] })),
    prolongate: (namespace, minutes, by) => update(namespace, () => handle(namespace).executeUpdate(prolongateUpdate, { args: [{ by, minutes }] })),

    async startSupportPod({ name, size, by, taskQueue, ttlMs }) {
      try {
        await client.workflow.start(supportPodWorkflow, { workflowId: supportPodWorkflowId(name), taskQueue, args: [{ name, size, requestedBy: by, ttlMs }] });
      } catch (err) {
        if (err instanceof WorkflowExecutionAlreadyStartedError) throw new OperationError('conflict', `a support pod ${name} already exists`);
        throw err;
      }
    },

    async supportPod(name) {
      try {
        return await client.workflow.getHandle(supportPodWorkflowId(name)).query(supportPodStateQuery);
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw new OperationError('unknown-support-pod', `there is no support pod ${name}`);
        throw err;
      }
    },

    async stopSupportPod(name, by) {
      try {
        await client.workflow.getHandle(supportPodWorkflowId(name)).signal(stopSupportPodSignal, { by });
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw new OperationError('unknown-support-pod', `there is no support pod ${name}`);
        throw err;
      }
    },

    async listSupportPods() {
      const pods: SupportPodSummary[] = [];
      for await (const execution of client.workflow.list({ query: RUNNING_SUPPORT_PODS })) {
        const state = await client.workflow.getHandle(execution.workflowId).query(supportPodStateQuery);
        pods.push({ name: execution.workflowId.replace(/^support\//, ''), state });
      }
      return pods.sort((a, b) => a.name.localeCompare(b.name));
    },
  };
}
