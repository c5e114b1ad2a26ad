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
  WorkflowUpdateStage,
  type Client,
  type WorkflowExecutionInfo,
} from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
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

/**
 * `forbidden`: the requester may not do this (a support pod larger than they may start, or
 * one someone else started); `limit`: they already have as many support pods as one may.
 */
export type OperationErrorKind = 'unknown-environment' | 'retired' | 'rejected' | 'conflict' | 'unknown-support-pod' | 'in-progress' | 'forbidden' | 'limit';

export class OperationError extends Error {
  constructor(
    readonly kind: OperationErrorKind,
    message: string,
    /** Recorded `by` values the message names (Slack shows those, and only those, as mentions). */
    readonly mentions: readonly string[] = [],
  ) {
    super(message);
    this.name = 'OperationError';
  }
}

/** A support pod size as the catalogue gives it (SUPPORT_SIZES): CPU and memory, requests equal to limits. */
export interface PodResources {
  cpu: string;
  memory: string;
}

/**
 * Who may have which support pods, enforced here for every front end that is given it
 * (Slack and the REST API; the operators' CLI, which has Temporal's own credentials, is not
 * limited). A requester is a recorded `by`: a Slack user id, or `api:<token name>`.
 */
export interface SupportPolicy {
  /** Support pods one requester may have at once, admins included (SUPPORT_MAX_PODS_PER_USER). */
  maxPodsPerUser: number;
  /** The largest size a requester outside `admins` may start (SUPPORT_MAX_SIZE); sizes are compared by CPU and by memory. */
  maxSize: string;
  /** The catalogue, to compare sizes. */
  sizes: Readonly<Record<string, PodResources>>;
  /** May start any size, and stop any support pod (SLACK_SUPPORT_ADMINS, and API_SUPPORT_ADMINS as `api:<name>`). */
  admins: readonly string[];
}

/** Millicores of a Kubernetes CPU quantity (`250m`, `1`, `1.5`); NaN when it is not one. */
export function cpuMillis(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?)(m?)$/.exec(quantity);
  if (!match) return Number.NaN;
  return match[2] ? Number(match[1]) : Number(match[1]) * 1000;
}

const MEMORY_UNITS: Record<string, number> = { '': 1, K: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };

/** Bytes of a Kubernetes memory quantity (`512Mi`, `2Gi`, `1G`); NaN when it is not one. */
export function memoryBytes(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|K|M|G|T)?$/.exec(quantity);
  if (!match) return Number.NaN;
  return Number(match[1]) * MEMORY_UNITS[match[2] ?? '']!;
}

/** Whether `size` asks for more CPU or more memory than `max` (both of the catalogue). */
export function sizeExceeds(size: PodResources, max: PodResources): boolean {
  return cpuMillis(size.cpu) > cpuMillis(max.cpu) || memoryBytes(size.memory) > memoryBytes(max.memory);
}

/** Recorded on every support-pod workflow when it starts, so who owns it is known from the server alone. */
export const SUPPORT_POD_MEMO = 'supportPod';
interface SupportPodMemo {
  requestedBy: string;
  size: string;
}

/** How long a support pod this process started counts towards its requester before visibility lists it (it is normally listed within a second). */
const UNLISTED_GRACE_MS = 60_000;

/**
 * A start, stop or prolongation that was not done within the caller's wait. `accepted`: the
 * environment has taken it up (past its validator) and will finish it; otherwise it has been
 * asked for but no worker has taken it up yet. Either way its status shows when it is done.
 */
export class InProgressError extends OperationError {
  constructor(
    readonly namespace: string,
    readonly action: 'start' | 'stop' | 'prolongate',
    readonly accepted: boolean,
  ) {
    super(
      'in-progress',
      accepted
        ? `${action} ${namespace} is still in progress; its status shows when it is done`
        : `${action} ${namespace} has been asked for, but no worker has taken it up yet; its status shows when it is done`,
    );
    this.name = 'InProgressError';
  }
}

/** How long a start, stop or prolongation may take before the call gives up waiting (InProgressError); unset: until it is done. */
export interface UpdateWait {
  waitMs?: number;
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
  /** The namespace's running environment as the server describes it (current, unlike a listing; no worker needed), or undefined when none runs. */
  running(namespace: string): Promise<EnvironmentSummary | undefined>;
  /** How many running environments are in each phase (Temporal visibility counts, no listing). */
  countByPhase(): Promise<Record<Phase, number>>;
  /** Fails at once, from the server alone, when the environment is unknown or retired: no worker needed to say so. */
  ensureManaged(namespace: string): Promise<void>;
  start(namespace: string, by: string, wait?: UpdateWait): Promise<ActionResult>;
  stop(namespace: string, by: string, wait?: UpdateWait): Promise<ActionResult>;
  prolongate(namespace: string, minutes: number, by: string, wait?: UpdateWait): Promise<ActionResult>;
  startSupportPod(request: { name: string; size: string; by: string; taskQueue: string; ttlMs?: number }): Promise<void>;
  supportPod(name: string): Promise<SupportPodState>;
  stopSupportPod(name: string, by: string): Promise<void>;
  listSupportPods(): Promise<SupportPodSummary[]>;
}

export interface EnvironmentsOptions {
  /** Limits on support pods; without it there are none (the CLI). */
  support?: SupportPolicy;
}

/** An environment run as its search attributes and memo (a listing's or a describe's) say it is. */
function summaryOf(execution: Pick<WorkflowExecutionInfo, 'typedSearchAttributes' | 'memo' | 'workflowId' | 'runId' | 'startTime'>): EnvironmentSummary {
  const attributes = execution.typedSearchAttributes;
  const memo = execution.memo?.[STATUS_MEMO] as StatusMemo | undefined;
  const dispatchAheadMs = execution.memo?.[DISPATCH_AHEAD_MEMO];
  return {
    namespace: attributes.get(EnvNamespace) ?? execution.workflowId.replace(/^env\//, ''),
    phase: (attributes.get(EnvPhase) ?? 'running') as Phase,
    enabled: attributes.get(EnvEnabled) ?? true,
    nextShutdown: attributes.get(EnvNextShutdown)?.toISOString() ?? null,
    policy: memo?.policy ?? null,
    dispatchAheadMs: typeof dispatchAheadMs === 'number' ? dispatchAheadMs : null,
    runId: execution.runId,
    startedAt: execution.startTime.toISOString(),
  };
}

export function createEnvironments(client: Client, options: EnvironmentsOptions = {}): Environments {
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

  async function update<Arg>(
    namespace: string,
    action: InProgressError['action'],
    definition: UpdateDefinition<ActionResult, [Arg]>,
    arg: Arg,
    { waitMs }: UpdateWait = {},
  ): Promise<ActionResult> {
    await ensureManaged(namespace);
    const workflow = handle(namespace);
    if (waitMs === undefined) return workflow.executeUpdate(definition, { args: [arg] }).catch((err: unknown) => translate(err, namespace));

    // Accepted first (a validator's refusal comes back here, at once), then its result, for at most waitMs in all.
    let accepted = false;
    let gaveUp = false;
    const stopPolling = new AbortController();
    const work = (async () => {
      const started = await workflow.startUpdate(definition, { args: [arg], waitForStage: WorkflowUpdateStage.ACCEPTED });
      accepted = true;
      return gaveUp ? undefined : client.withAbortSignal(stopPolling.signal, () => started.result());
    })();
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<'waited'>((resolve) => {
      timer = setTimeout(() => resolve('waited'), waitMs);
    });
    try {
      const outcome = await Promise.race([work, bound]);
      if (outcome !== 'waited' && outcome !== undefined) return outcome;
    } catch (err) {
      translate(err, namespace);
    } finally {
      clearTimeout(timer);
    }
    // Not done yet. The Update goes on in the workflow; only this wait for it ends. An Update not
    // yet accepted is still being handed over in the background (a later refusal is dropped: the
    // race above has already handled `work`).
    gaveUp = true;
    stopPolling.abort();
    throw new InProgressError(namespace, action, accepted);
  }

  async function ensureManaged(namespace: string): Promise<void> {
    const { status } = await handle(namespace)
      .describe()
      .catch((err: unknown) => translate(err, namespace));
    if (status.name !== 'RUNNING') throw retired(namespace);
  }

  /** The environment's last run has ended (retired, or ended by an operator): nothing acts on it any more. */
  function retired(namespace: string): OperationError {
    return new OperationError('retired', `${namespace} is no longer managed (its namespace was deleted, or it left management)`);
  }

  /** Support pods this process started that visibility may not list yet, by workflow id. */
  const unlisted = new Map<string, { by: string; until: number }>();
  const queues = new Map<string, Promise<unknown>>();

  /** Runs `work` after every earlier call for the same key has finished. */
  function oneAtATime<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = queues.get(key) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.catch(() => undefined);
    queues.set(key, settled);
    void settled.then(() => {
      if (queues.get(key) === settled) queues.delete(key);
    });
    return next;
  }

  /** Who started a running support pod: its memo (the server alone), or for pods started before there was one, the pod's record. */
  async function ownerOf(name: string): Promise<string | null> {
    const workflow = client.workflow.getHandle(supportPodWorkflowId(name));
    const { status, memo } = await workflow.describe();
    if (status.name !== 'RUNNING') throw new OperationError('unknown-support-pod', `there is no support pod ${name}`);
    const recorded = (memo?.[SUPPORT_POD_MEMO] as SupportPodMemo | undefined)?.requestedBy;
    if (recorded) return recorded;
    return recordedCreator(workflow.workflowId);
  }

  /** The creator the pod itself records (a query: it needs a worker); null when it cannot be read. */
  async function recordedCreator(workflowId: string): Promise<string | null> {
    try {
      return (await client.workflow.getHandle(workflowId).query(supportPodStateQuery)).pod?.createdBy ?? null;
    } catch {
      return null;
    }
  }

  /** The names of the support pods `by` has now: those listed, and those just started that are not listed yet. */
  async function supportPodsOf(by: string): Promise<string[]> {
    const names = new Set<string>();
    const listed = new Set<string>();
    for await (const execution of client.workflow.list({ query: RUNNING_SUPPORT_PODS })) {
      listed.add(execution.workflowId);
      unlisted.delete(execution.workflowId);
      let owner = (execution.memo?.[SUPPORT_POD_MEMO] as SupportPodMemo | undefined)?.requestedBy;
      if (owner === undefined) owner = (await recordedCreator(execution.workflowId)) ?? undefined;
      if (owner === by) names.add(execution.workflowId);
    }
    for (const [workflowId, pending] of unlisted) {
      if (pending.until < Date.now()) unlisted.delete(workflowId);
      else if (pending.by === by && !listed.has(workflowId)) {
        const { status } = await client.workflow.getHandle(workflowId).describe();
        if (status.name === 'RUNNING') names.add(workflowId);
        else unlisted.delete(workflowId);
      }
    }
    return [...names].map((id) => id.replace(/^support\//, '')).sort();
  }

  return {
    async status(namespace) {
      const description = await handle(namespace)
        .describe()
        .catch((err: unknown) => translate(err, namespace));
      // A closed run's last state (often `running` with a shutdown time) is not what is up now.
      if (description.status.name !== 'RUNNING') throw retired(namespace);
      const memo = description.memo?.[STATUS_MEMO] as StatusMemo | undefined;
      // Answered by the server alone; an environment started before the memo existed is asked directly.
      if (!memo) return handle(namespace).query(statusQuery).catch((err: unknown) => translate(err, namespace));
      return { ...memo, shutdownDescription: memo.shutdownAt ? describeShutdown(new Date(memo.shutdownAt), new Date(), memo.policy.timeZone) : null };
    },

    async list() {
      const environments: EnvironmentSummary[] = [];
      for await (const execution of client.workflow.list({ query: RUNNING_ENVIRONMENTS })) environments.push(summaryOf(execution));
      return environments.sort((a, b) => a.namespace.localeCompare(b.namespace));
    },

    async running(namespace) {
      try {
        const description = await handle(namespace).describe();
        return description.status.name === 'RUNNING' ? summaryOf(description) : undefined;
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return undefined;
        throw err;
      }
    },

    async countByPhase() {
      const phases: Phase[] = ['running', 'stopping', 'stopped', 'starting', 'disabled'];
      const counts = await Promise.all(phases.map((phase) => client.workflow.count(`${RUNNING_ENVIRONMENTS} AND EnvPhase = '${phase}'`)));
      return Object.fromEntries(phases.map((phase, i) => [phase, counts[i]!.count])) as Record<Phase, number>;
    },

    ensureManaged,
    start: (namespace, by, wait) => update(namespace, 'start', startUpdate, { by }, wait),
    stop: (namespace, by, wait) => update(namespace, 'stop', stopUpdate, { by }, wait),
    prolongate: (namespace, minutes, by, wait) => update(namespace, 'prolongate', prolongateUpdate, { by, minutes }, wait),

    async startSupportPod({ name, size, by, taskQueue, ttlMs }) {
      const policy = options.support;
      const start = async () => {
        try {
          await client.workflow.start(supportPodWorkflow, {
            workflowId: supportPodWorkflowId(name),
            taskQueue,
            args: [{ name, size, requestedBy: by, ttlMs }],
            memo: { [SUPPORT_POD_MEMO]: { requestedBy: by, size } satisfies SupportPodMemo },
          });
        } catch (err) {
          if (err instanceof WorkflowExecutionAlreadyStartedError) throw new OperationError('conflict', `a support pod ${name} already exists`);
          throw err;
        }
      };
      if (!policy) return start();
      const admin = policy.admins.includes(by);
      const requested = policy.sizes[size];
      const max = policy.sizes[policy.maxSize];
      if (!admin && requested && max && sizeExceeds(requested, max)) {
        throw new OperationError(
          'forbidden',
          `${size} (${requested.cpu} CPU, ${requested.memory}) is larger than ${policy.maxSize} (${max.cpu} CPU, ${max.memory}), the largest support pod you may start; pick ${policy.maxSize} or smaller, or ask a support admin`,
        );
      }
      // One at a time per requester, counted and started together: two quick `support start`s cannot both pass the count.
      await oneAtATime(by, async () => {
        const mine = await supportPodsOf(by);
        if (mine.length >= policy.maxPodsPerUser) {
          throw new OperationError(
            'limit',
            `you have ${mine.length} support pod${mine.length === 1 ? '' : 's'} already (${mine.join(', ')}), the most one person may have at once; stop one first (support stop <name>)`,
          );
        }
        await start();
        unlisted.set(supportPodWorkflowId(name), { by, until: Date.now() + UNLISTED_GRACE_MS });
      });
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
      const workflow = client.workflow.getHandle(supportPodWorkflowId(name));
      try {
        const policy = options.support;
        if (policy && !policy.admins.includes(by)) {
          const owner = await ownerOf(name);
          if (owner !== by) {
            throw new OperationError(
              'forbidden',
              `support pod ${name} was started by ${owner ?? 'someone this scheduler cannot name'}; only they or a support admin may stop it`,
              owner ? [owner] : [],
            );
          }
        }
        await workflow.signal(stopSupportPodSignal, { by });
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
