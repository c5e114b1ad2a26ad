/**
 * What every front end (Slack, the REST API, the `devenv` CLI) asks of Temporal, in one
 * place: each returns plain data, and a failure is an `OperationError` whose kind says
 * what went wrong (unknown environment, rejected by the workflow, ...), so each front end
 * only decides how to show it.
 */
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateStage,
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowExecutionInfo,
  type WorkflowHandle,
} from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import { EnvCluster, EnvEnabled, EnvNamespace, EnvNextShutdown, EnvPhase } from '../search-attributes';
import {
  DISPATCH_AHEAD_MEMO,
  environmentWorkflowId,
  HISTORY_MEMO,
  prolongateUpdate,
  SAVINGS_MEMO,
  startUpdate,
  STATUS_MEMO,
  statusQuery,
  stopUpdate,
  type StatusMemo,
  type ActionResult,
  type EnvironmentStatus,
  type HistoryEntry,
  type Phase,
} from '../workflows/environment/definitions';
import { whyNext, type Why } from '../workflows/environment/story';
import type { Sleep } from '../domain/savings';
import type { EnvironmentPolicy } from '../domain/shutdown-policy';
import { describeShutdown } from '../domain/time-display';
import { upcomingWakeUp } from '../workflows/environment/planning';
import {
  stopSupportPodSignal,
  SUPPORT_POD_MEMO,
  supportPodSlotUpdate,
  supportPodSlotWorkflowId,
  supportPodStateQuery,
  supportPodWorkflow,
  supportPodWorkflowId,
  type SupportPodMemo,
  type SupportPodState,
} from '../workflows/support-pod';
import type { SupportPod, SupportPodInCluster } from '../activities/contracts';
import { Failure, failureType } from '../domain/failures';
import { sizeExceeds, type SupportSizes } from '../domain/support-sizes';
import { ownership, type OwnersPolicy } from '../domain/owners';
import { isSlackUserId } from '../slack/ids';

/**
 * `namespace-gone`: the environment is still managed but its namespace is gone from the
 * cluster (the reconciler retires it at its next run); `rejected`: the environment refused
 * the action in its current state, or the action failed (in the words of what refused it);
 * `forbidden`: the requester may not do this (a support pod larger than they may start, or
 * one someone else started); `limit`: they already have as many support pods as one may;
 * `failed`: a support pod's workflow failed, in its own words.
 */
export type OperationErrorKind =
  | 'unknown-environment'
  | 'retired'
  | 'namespace-gone'
  | 'rejected'
  | 'conflict'
  | 'unknown-support-pod'
  | 'in-progress'
  | 'forbidden'
  | 'limit'
  | 'failed';

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

/**
 * Who may have which support pods, enforced here for every front end that is given it
 * (Slack and the REST API; the operators' CLI, which has Temporal's own credentials, is not
 * limited). A requester is a recorded `by`: a Slack user id, or `api:<token name>`. The
 * count is kept by the Temporal server, not here: each support-pod workflow holds one of its
 * requester's slots (src/workflows/support-pod.ts), so it holds across API processes.
 */
export interface SupportPolicy {
  /** Support pods one requester may have at once, admins included (SUPPORT_MAX_PODS_PER_USER). */
  maxPodsPerUser: number;
  /** The largest size a requester outside `admins` may start (SUPPORT_MAX_SIZE); sizes are compared by CPU and by memory. */
  maxSize: string;
  /** The catalogue, to compare sizes. */
  sizes: SupportSizes;
  /** May start any size, and stop any support pod (SLACK_SUPPORT_ADMINS, and API_SUPPORT_ADMINS as `api:<name>`). */
  admins: readonly string[];
}

/**
 * A stop or prolongation refused under SLACK_OWNERS_ONLY=control: the requester is neither
 * one of the environment's owners nor an admin. `owners` for the front end to name them
 * (Slack as mentions); `unreadGroups`: owner groups whose members could not be read.
 */
export class NotOwnerError extends OperationError {
  constructor(
    readonly namespace: string,
    readonly action: 'stop' | 'prolongate',
    readonly owners: readonly string[],
    readonly unreadGroups: readonly string[],
  ) {
    super(
      'forbidden',
      `only the owners of ${namespace} (${owners.join(', ')}) may ${action} it; ask one of them or an admin` +
        (unreadGroups.length ? ` (the members of ${unreadGroups.join(', ')} could not be read from Slack)` : ''),
    );
    this.name = 'NotOwnerError';
  }
}

/** How long `support start` waits by default for the new workflow to say whether it got a slot. */
const DEFAULT_LIMIT_WAIT_MS = 5000;

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

/**
 * What a support pod name stands for now, joining the cluster's pod of that name with the
 * running workflow of that name:
 * - `managed`: the pod is there and its workflow deletes it at `expiresAt` (or on stop);
 * - `creating`: the workflow has not created its pod yet;
 * - `waiting`: the workflow waits for the name: the pod there is not its own (the previous
 *   one still terminating, or, until the workflow fails, someone else's);
 * - `pod-missing`: the workflow created its pod, and it is gone (deleted by hand, evicted);
 * - `orphaned`: a pod no running workflow manages (its workflow was terminated, or it was
 *   made by hand); the kubelet kills it at `pod.deadlineAt`, if it has one;
 * - `deleting`: a pod being deleted (deletionTimestamp set) that no workflow waits for;
 * - `unknown`: a workflow whose pod could not be looked up (the cluster could not be read).
 */
export type SupportPodStatus = 'managed' | 'creating' | 'waiting' | 'pod-missing' | 'orphaned' | 'deleting' | 'unknown';

export interface SupportPodListing {
  name: string;
  status: SupportPodStatus;
  /** One sentence for people (empty for a plain managed pod): what this is and what happens to it next. REST and the CLI show it; Slack words the same. */
  note: string;
  /** From the pod's annotations, else the workflow's memo; null when neither says. */
  size: string | null;
  requestedBy: string | null;
  /** When its workflow deletes it; null when no workflow will (orphaned, being deleted) or it is not known. */
  expiresAt: string | null;
  /** The pod of that name in the cluster now; null when there is none, or the cluster could not be read. */
  pod: SupportPodInCluster | null;
  /** The running workflow of that name; null when there is none. */
  workflow: { runId: string; startedAt: string } | null;
}

export interface SupportPodList {
  supportPods: SupportPodListing[];
  /** Why the cluster could not be read (the workflows are listed anyway, as `unknown`); null when it was. */
  podsUnavailable: string | null;
}

/** A running support-pod workflow as visibility lists it; `state` only for those started before the memo said enough (asked by query). */
export interface SupportWorkflowRecord {
  name: string;
  runId: string;
  startedAt: string;
  memo: SupportPodMemo | undefined;
  state?: SupportPodState;
}

/** The holder of a name, for people: "started by U1 at <time>, size XS". */
function holder(pod: SupportPodInCluster): string {
  const who = pod.createdBy
    ? `started by ${pod.createdBy}`
    : pod.labelled
      ? 'started by someone unrecorded'
      : 'not made by devenv-scheduler';
  return `${who}${pod.createdAt ? ` at ${pod.createdAt}` : ''}${pod.size ? `, size ${pod.size}` : ''}`;
}

/** What happens to a pod no workflow manages. */
function orphanFate(pod: SupportPodInCluster): string {
  if (pod.phase === 'Failed' && pod.reason === 'DeadlineExceeded')
    return `killed by its deadline${pod.deadlineAt ? ` at ${pod.deadlineAt}` : ''}; it holds the name until it is deleted (kubectl delete pod)`;
  if (pod.deadlineAt) return `the kubelet kills it at ${pod.deadlineAt} (activeDeadlineSeconds), or delete it (kubectl delete pod)`;
  return 'it has no deadline (made by hand, or by a version before deadlines): delete it (kubectl delete pod)';
}

/**
 * One listing per name in either the cluster or the running workflows (see
 * SupportPodStatus); `pods` null: the cluster could not be read.
 */
export function joinSupportPods(
  pods: readonly SupportPodInCluster[] | null,
  workflows: readonly SupportWorkflowRecord[],
  podsUnavailable: string | null = null,
): SupportPodList {
  const byName = new Map<string, { pod?: SupportPodInCluster; workflow?: SupportWorkflowRecord }>();
  for (const pod of pods ?? []) byName.set(pod.name, { pod });
  for (const workflow of workflows) byName.set(workflow.name, { ...byName.get(workflow.name), workflow });
  const listings: SupportPodListing[] = [];
  for (const [name, { pod, workflow }] of byName) {
    const memo = workflow?.memo;
    const ownUid = memo?.podUid ?? workflow?.state?.pod?.uid;
    // Its memo has no expiry: started before this version (or so recently that visibility has not caught up), so it was asked by query.
    const legacy = workflow !== undefined && memo?.expiresAt === undefined;
    // A pod without a run id was made by an earlier version: its workflow's own if that workflow says it created one.
    const own =
      pod !== undefined &&
      workflow !== undefined &&
      (ownUid !== undefined
        ? pod.uid === ownUid
        : pod.workflowRunId !== null
          ? pod.workflowRunId === workflow.runId
          : legacy && pod.labelled && workflow.state?.pod != null);
    const created = ownUid !== undefined || (legacy && workflow?.state?.pod != null);
    const workflowExpiry = memo?.expiresAt ?? workflow?.state?.expiresAt ?? null;
    const listing = (
      status: SupportPodStatus,
      note: string,
      shown: SupportPodInCluster | undefined,
      expiresAt: string | null,
    ): SupportPodListing => ({
      name,
      status,
      note,
      size: shown?.size ?? memo?.size ?? workflow?.state?.pod?.size ?? null,
      requestedBy: shown?.createdBy ?? memo?.requestedBy ?? workflow?.state?.pod?.createdBy ?? null,
      expiresAt,
      pod: pod ?? null,
      workflow: workflow ? { runId: workflow.runId, startedAt: workflow.startedAt } : null,
    });
    if (!workflow) {
      if (!pod) continue;
      listings.push(
        pod.deletingSince
          ? listing('deleting', `being deleted since ${pod.deletingSince}`, pod, null)
          : listing('orphaned', `orphaned: no workflow manages it; ${orphanFate(pod)}`, pod, null),
      );
    } else if (pods === null) {
      listings.push(
        listing(
          'unknown',
          `its pod could not be looked up: ${podsUnavailable ?? 'the cluster could not be read'}`,
          undefined,
          workflowExpiry,
        ),
      );
    } else if (legacy && !workflow.state) {
      listings.push(
        listing('unknown', 'started by an earlier version, and it could not be asked which pod is its own (no worker?)', pod, null),
      );
    } else if (own) {
      const expiresAt = pod.expiresAt ?? workflowExpiry;
      listings.push(
        pod.deletingSince
          ? listing('deleting', `being deleted since ${pod.deletingSince}`, pod, null)
          : listing('managed', '', pod, expiresAt),
      );
    } else if (created) {
      listings.push(
        listing(
          'pod-missing',
          `its pod is gone (deleted outside the scheduler)${pod ? `, and a pod of that name that is not its own is there (${holder(pod)})` : ''}; the workflow ends ${workflowExpiry ? `at ${workflowExpiry}` : 'at its expiry'}, or on support stop`,
          undefined,
          workflowExpiry,
        ),
      );
    } else if (pod) {
      listings.push(
        listing(
          'waiting',
          pod.deletingSince
            ? `waiting for the previous pod of this name (${holder(pod)}) to finish terminating, deleted at ${pod.deletingSince}`
            : `the name is held by a pod that is not its own (${holder(pod)}): this start fails`,
          undefined,
          workflowExpiry,
        ),
      );
    } else {
      listings.push(listing('creating', 'being created', undefined, workflowExpiry));
    }
  }
  return {
    supportPods: listings.sort((a, b) => a.name.localeCompare(b.name)),
    podsUnavailable: pods === null ? (podsUnavailable ?? 'the cluster could not be read') : null,
  };
}

/** What became of a support pod `support start` asked for, as far as it was followed. */
export type SupportPodOutcome =
  | { outcome: 'created'; pod: SupportPod; expiresAt: string | null }
  /** Its workflow ended without failing before its pod was seen: stopped at once, or expired. */
  | { outcome: 'gone' }
  /** Its pod was not there within the time it was followed for. */
  | { outcome: 'pending' };

/** Workflow failures wrap activity failures wrap the application's own words: those are what people read. */
function failureMessage(err: unknown): string {
  let current = err as { message?: string; cause?: unknown };
  while (current.cause) current = current.cause as { message?: string; cause?: unknown };
  return current.message ?? String(err);
}

/** A support-pod workflow's failure in the words of the domain. */
function supportPodFailure(err: WorkflowFailedError): OperationError {
  const message = failureMessage(err);
  switch (failureType(err)) {
    case Failure.SupportPodLimitReached:
      return new OperationError('limit', message);
    case Failure.SupportPodNameTaken:
      return new OperationError('conflict', message);
    case Failure.InvalidSupportPodName:
    case Failure.InvalidSupportPodSize:
    case Failure.InvalidSupportPodExpiry:
      return new OperationError('rejected', message);
    default:
      return new OperationError('failed', message);
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/** How often `followSupportPod` asks whether the pod is there. */
const FOLLOW_POLL_MS = 500;

/** One cluster's running workflows of a type: those with its EnvCluster, or, without CLUSTER_NAME, those with none. */
function runningOf(workflowType: string, cluster: string | undefined): string {
  return `WorkflowType = '${workflowType}' AND ExecutionStatus = 'Running' AND ${cluster ? `EnvCluster = '${cluster}'` : 'EnvCluster IS NULL'}`;
}

/** An environment's ledger of sleeps as its memo has it, oldest first (savings.ts). */
export interface EnvironmentLedger {
  namespace: string;
  sleeps: Sleep[];
}

const sleepsOf = (memo: Record<string, unknown> | undefined): Sleep[] => {
  const recorded = memo?.[SAVINGS_MEMO];
  return Array.isArray(recorded) ? (recorded as Sleep[]) : [];
};

/** An environment's history as its memo has it, oldest first. */
export interface EnvironmentHistory {
  namespace: string;
  /** The environment's zone, to show the instants in. */
  timeZone: string;
  entries: HistoryEntry[];
}

export interface EnvironmentsClient {
  status(namespace: string): Promise<EnvironmentStatus>;
  /** The last `limit` entries of the environment's history (all it keeps without one), from the server alone. */
  history(namespace: string, limit?: number): Promise<EnvironmentHistory>;
  /** What happens next to the environment and why, in one sentence (story.ts), from the server alone. */
  why(namespace: string, now?: Date): Promise<Why & { namespace: string }>;
  list(): Promise<EnvironmentSummary[]>;
  /**
   * The ledger of sleeps of every running environment (a listing), or of one (a describe,
   * current), from their memos alone; an environment of a version without it has an empty one.
   */
  ledgers(namespace?: string): Promise<EnvironmentLedger[]>;
  /** The namespace's running environment as the server describes it (current, unlike a listing; no worker needed), or undefined when none runs. */
  running(namespace: string): Promise<EnvironmentSummary | undefined>;
  /** How many running environments are in each phase (Temporal visibility counts, no listing). */
  countByPhase(): Promise<Record<Phase, number>>;
  /** Running environments whose shutdown is more than `graceMs` past: a scheduled stop that did not happen. */
  countOverdue(graceMs: number): Promise<number>;
  /** Fails at once, from the server alone, when the environment is unknown or retired: no worker needed to say so. */
  ensureManaged(namespace: string): Promise<void>;
  /**
   * ensureManaged, and for a stop or prolongation under SLACK_OWNERS_ONLY=control a
   * NotOwnerError when `by` is a Slack user who is neither an owner (as the environment last
   * recorded its policy) nor an admin. start, stop and prolongate check it themselves; a
   * front end that answers before the action is done asks first.
   */
  ensureAllowed(namespace: string, action: 'start' | 'stop' | 'prolongate', by: string): Promise<void>;
  /** Whether `by` is one of `owners`: named, or in a named user group (false for groups that cannot be read). */
  owns(by: string, owners: readonly string[]): Promise<boolean>;
  start(namespace: string, by: string, wait?: UpdateWait): Promise<ActionResult>;
  stop(namespace: string, by: string, wait?: UpdateWait): Promise<ActionResult>;
  prolongate(namespace: string, minutes: number, by: string, wait?: UpdateWait): Promise<ActionResult>;
  /**
   * Refused (`conflict`) when the name is in use: a running support pod of that name, or a
   * pod no workflow manages. A pod of that name still terminating is no refusal: the new one
   * is created once it has gone (`waitsFor`). Refused (`limit`) when the requester has
   * SUPPORT_MAX_PODS_PER_USER already: the new workflow says so once a worker runs it, which
   * the call waits for up to `limitWaitMs` (default 5 s); past that it returns, and a
   * refusal is that workflow's failure (`SupportPodLimitReached`), with nothing created.
   */
  startSupportPod(request: {
    name: string;
    size: string;
    by: string;
    taskQueue: string;
    ttlMs?: number;
    limitWaitMs?: number;
  }): Promise<{ waitsFor: SupportPodInCluster | null }>;
  /** The listing of that name; `unknown-support-pod` when there is neither a pod nor a workflow of that name. */
  supportPod(name: string): Promise<SupportPodListing>;
  stopSupportPod(name: string, by: string): Promise<void>;
  /**
   * Follows a support pod just started until its pod exists, its workflow ends, or `timeoutMs`
   * has passed. A failed workflow is an OperationError in its own words (`limit`, `conflict`,
   * `rejected` for a bad name, size or expiry, else `failed`).
   */
  followSupportPod(name: string, timeoutMs: number): Promise<SupportPodOutcome>;
  /** Every pod of the support namespace and every running support-pod workflow, joined by name (see SupportPodStatus). */
  listSupportPods(): Promise<SupportPodList>;
}

export interface EnvironmentsClientOptions {
  /** CLUSTER_NAME: this cluster's environments and support pods alone (src/workflows/cluster.ts); without it, those of no named cluster. */
  cluster?: string;
  /** Limits on support pods; without it there are none (the CLI). */
  support?: SupportPolicy;
  /**
   * The support namespace's pods as the cluster has them now (createSupportPodReader). Without
   * it, `support list` shows the workflows alone (as `unknown`) and `support start` checks no
   * name before the worker does.
   */
  supportPods?: () => Promise<SupportPodInCluster[]>;
  /** Who may stop and prolongate environments with owners, and how groups are read; without it anyone may (the CLI). */
  owners?: OwnersPolicy;
}

/** The memo's status with what depends on when it is read. */
function withDescriptions(memo: StatusMemo): EnvironmentStatus {
  const now = new Date();
  const wakeAt = upcomingWakeUp(memo, memo.policy);
  return {
    ...memo,
    shutdownDescription: memo.shutdownAt ? describeShutdown(new Date(memo.shutdownAt), now, memo.policy.timeZone) : null,
    wakeDescription: wakeAt ? describeShutdown(wakeAt, now, memo.policy.timeZone) : null,
  };
}

/** An environment run as its search attributes and memo (a listing's or a describe's) say it is. */
function summaryOf(
  execution: Pick<WorkflowExecutionInfo, 'typedSearchAttributes' | 'memo' | 'workflowId' | 'runId' | 'startTime'>,
): EnvironmentSummary {
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

export function createEnvironmentsClient(client: Client, options: EnvironmentsClientOptions = {}): EnvironmentsClient {
  const { cluster } = options;
  const handle = (namespace: string) => client.workflow.getHandle(environmentWorkflowId(namespace, cluster));
  const supportPodId = (name: string) => supportPodWorkflowId(name, cluster);
  const supportPodName = (workflowId: string) => workflowId.slice(supportPodId('').length);
  const RUNNING_ENVIRONMENTS = runningOf('environmentWorkflow', cluster);
  const RUNNING_SUPPORT_PODS = runningOf('supportPodWorkflow', cluster);

  /** Temporal's errors in the words of the domain; anything else is passed on as it is. */
  function translate(err: unknown, namespace: string): never {
    if (err instanceof WorkflowNotFoundError) {
      throw new OperationError(
        'unknown-environment',
        `${namespace} is not a managed environment (no such namespace, or it is a system namespace)`,
      );
    }
    if (err instanceof WorkflowUpdateFailedError) {
      if (failureType(err) === Failure.NamespaceNotFound) {
        throw new OperationError(
          'namespace-gone',
          `the namespace ${namespace} is gone from the cluster, so there is nothing to start, stop or prolongate; its environment is retired at the next reconcile`,
        );
      }
      // The validator's or the handler's own words; a rejected Update changed nothing.
      throw new OperationError('rejected', failureMessage(err));
    }
    throw err;
  }

  async function update<Arg extends { by: string }>(
    namespace: string,
    action: InProgressError['action'],
    definition: UpdateDefinition<ActionResult, [Arg]>,
    arg: Arg,
    { waitMs }: UpdateWait = {},
  ): Promise<ActionResult> {
    await ensureAllowed(namespace, action, arg.by);
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
    await describeRunning(namespace);
  }

  async function describeRunning(namespace: string): Promise<WorkflowExecutionDescription> {
    const description = await handle(namespace)
      .describe()
      .catch((err: unknown) => translate(err, namespace));
    if (description.status.name !== 'RUNNING') throw retired(namespace);
    return description;
  }

  async function ensureAllowed(namespace: string, action: 'start' | 'stop' | 'prolongate', by: string): Promise<void> {
    const description = await describeRunning(namespace);
    const rule = options.owners;
    // Anyone may start; REST tokens and the CLI are no Slack user, and are not limited.
    if (action === 'start' || !rule?.controlByOwnersOnly || !isSlackUserId(by) || rule.admins.includes(by)) return;
    const owners = summaryOf(description).policy?.owners ?? [];
    if (owners.length === 0) return;
    const { owner, unreadGroups } = await ownership(by, owners, rule.membersOf);
    if (!owner) throw new NotOwnerError(namespace, action, owners, unreadGroups);
  }

  /** The environment's last run has ended (retired, or ended by an operator): nothing acts on it any more. */
  function retired(namespace: string): OperationError {
    return new OperationError('retired', `${namespace} is no longer managed (its namespace was deleted, or it left management)`);
  }

  /** Who started a running support pod: its memo (the server alone), or for pods started before there was one, the pod's record. */
  async function ownerOf(name: string): Promise<string | null> {
    const workflow = client.workflow.getHandle(supportPodId(name));
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

  /**
   * The slot a new support-pod workflow took, null when every one was taken, undefined when
   * it did not say within `waitMs` (no worker has taken it up yet) or ended for another reason
   * (the follow-up of the front end reports that).
   */
  async function slotTaken(workflow: WorkflowHandle, waitMs: number): Promise<number | null | undefined> {
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), waitMs);
    try {
      return await client.withAbortSignal(timeout.signal, () => workflow.executeUpdate(supportPodSlotUpdate));
    } catch {
      if (timeout.signal.aborted) return undefined;
      // Ended before the Update reached it (the limit, or a failure), or run by a worker of an earlier version.
      const { status } = await workflow.describe();
      if (status.name === 'RUNNING') return undefined;
      const failure = await workflow.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      return failureType(failure) === Failure.SupportPodLimitReached ? null : undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The refusal of a start over the limit, naming the support pods whose workflows hold `by`'s slots now. */
  async function limitReached(by: string, limit: number): Promise<OperationError> {
    const holders = await Promise.all(
      Array.from({ length: limit }, (_, i) =>
        client.workflow
          .getHandle(supportPodSlotWorkflowId(by, i + 1))
          .describe()
          .then(
            (d) =>
              d.status.name === 'RUNNING' && d.parentExecution?.workflowId ? supportPodName(d.parentExecution.workflowId) : undefined,
            () => undefined,
          ),
      ),
    );
    const names = holders.filter((name): name is string => !!name).sort();
    return new OperationError(
      'limit',
      `you have ${limit} support pod${limit === 1 ? '' : 's'} already${names.length ? ` (${names.join(', ')})` : ''}, the most one person may have at once; stop one first (support stop <name>)`,
    );
  }

  const readPods = async (): Promise<SupportPodInCluster[]> => {
    if (!options.supportPods) throw new Error('this front end does not read the cluster');
    return options.supportPods();
  };
  const unavailable = (err: unknown): string => (err instanceof Error ? err.message : String(err));

  /** A running support-pod workflow; one started before its memo had an expiry is asked for its state (that needs a worker; without one it is listed as it can be). */
  async function record(
    workflowId: string,
    runId: string,
    startTime: Date,
    memo: Record<string, unknown> | undefined,
  ): Promise<SupportWorkflowRecord> {
    const recorded = memo?.[SUPPORT_POD_MEMO] as SupportPodMemo | undefined;
    const base = { name: supportPodName(workflowId), runId, startedAt: startTime.toISOString(), memo: recorded };
    if (recorded?.expiresAt !== undefined) return base;
    const state = await client.workflow
      .getHandle(workflowId, runId)
      .query(supportPodStateQuery)
      .catch(() => undefined);
    return state ? { ...base, state } : base;
  }

  /** The refusal of a name whose support-pod workflow runs, naming who started it. */
  async function alreadyRunning(name: string): Promise<OperationError> {
    const owner = await ownerOf(name).catch(() => null);
    return new OperationError(
      'conflict',
      `support pod ${name} already exists, started by ${owner ?? 'someone this scheduler cannot name'}; pick another name, or stop it first (support stop ${name})`,
      owner ? [owner] : [],
    );
  }

  /** The running environment's status and history: its memo (the server alone), or for one started before the memo existed, its query. */
  async function storyOf(namespace: string): Promise<{ status: EnvironmentStatus; entries: HistoryEntry[] }> {
    const description = await handle(namespace)
      .describe()
      .catch((err: unknown) => translate(err, namespace));
    // A closed run's last state (often `running` with a shutdown time) is not what is up now.
    if (description.status.name !== 'RUNNING') throw retired(namespace);
    const memo = description.memo?.[STATUS_MEMO] as StatusMemo | undefined;
    const status: EnvironmentStatus = memo
      ? withDescriptions(memo)
      : await handle(namespace)
          .query(statusQuery)
          .catch((err: unknown) => translate(err, namespace));
    const recorded = description.memo?.[HISTORY_MEMO];
    // A version without the history: its last action is all there is.
    const entries = Array.isArray(recorded) ? (recorded as HistoryEntry[]) : status.lastAction ? [status.lastAction] : [];
    return { status, entries };
  }

  return {
    async status(namespace) {
      return (await storyOf(namespace)).status;
    },

    async history(namespace, limit) {
      const { status, entries } = await storyOf(namespace);
      return { namespace, timeZone: status.policy.timeZone, entries: limit === undefined ? entries : entries.slice(-limit) };
    },

    async why(namespace, now = new Date()) {
      const { status, entries } = await storyOf(namespace);
      return { namespace, ...whyNext(status, entries, status.policy, now) };
    },

    async list() {
      const environments: EnvironmentSummary[] = [];
      for await (const execution of client.workflow.list({ query: RUNNING_ENVIRONMENTS })) environments.push(summaryOf(execution));
      return environments.sort((a, b) => a.namespace.localeCompare(b.namespace));
    },

    async ledgers(namespace) {
      if (namespace !== undefined) {
        const description = await handle(namespace)
          .describe()
          .catch((err: unknown) => translate(err, namespace));
        if (description.status.name !== 'RUNNING') throw retired(namespace);
        return [{ namespace, sleeps: sleepsOf(description.memo) }];
      }
      const ledgers: EnvironmentLedger[] = [];
      for await (const execution of client.workflow.list({ query: RUNNING_ENVIRONMENTS }))
        ledgers.push({ namespace: summaryOf(execution).namespace, sleeps: sleepsOf(execution.memo) });
      return ledgers.sort((a, b) => a.namespace.localeCompare(b.namespace));
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

    async countOverdue(graceMs) {
      const before = new Date(Date.now() - graceMs).toISOString();
      return (await client.workflow.count(`${RUNNING_ENVIRONMENTS} AND EnvPhase = 'running' AND EnvNextShutdown < '${before}'`)).count;
    },

    ensureManaged,
    ensureAllowed,
    async owns(by, owners) {
      return owners.length > 0 && (await ownership(by, owners, options.owners?.membersOf)).owner;
    },
    start: (namespace, by, wait) => update(namespace, 'start', startUpdate, { by }, wait),
    stop: (namespace, by, wait) => update(namespace, 'stop', stopUpdate, { by }, wait),
    prolongate: (namespace, minutes, by, wait) => update(namespace, 'prolongate', prolongateUpdate, { by, minutes }, wait),

    async startSupportPod({ name, size, by, taskQueue, ttlMs, limitWaitMs = DEFAULT_LIMIT_WAIT_MS }) {
      const policy = options.support;
      if (policy) {
        const admin = policy.admins.includes(by);
        const requested = policy.sizes[size];
        const max = policy.sizes[policy.maxSize];
        if (!admin && requested && max && sizeExceeds(requested, max)) {
          throw new OperationError(
            'forbidden',
            `${size} (${requested.cpu} CPU, ${requested.memory}) is larger than ${policy.maxSize} (${max.cpu} CPU, ${max.memory}), the largest support pod you may start; pick ${policy.maxSize} or smaller, or ask a support admin`,
          );
        }
      }
      // The name, as the cluster has it now (the worker checks again when it creates the pod: this is for a clear answer at once).
      const held = (await readPods().catch(() => null))?.find((pod) => pod.name === name);
      if (held && !held.deletingSince) {
        const running = await client.workflow
          .getHandle(supportPodId(name))
          .describe()
          .then(
            (d) => d.status.name === 'RUNNING',
            () => false,
          );
        if (running) throw await alreadyRunning(name);
        throw new OperationError(
          'conflict',
          `the name ${name} is taken by a pod that no support-pod workflow manages (${holder(held)}); ${orphanFate(held)}, or pick another name`,
          held.createdBy ? [held.createdBy] : [],
        );
      }
      let workflow: WorkflowHandle;
      try {
        workflow = await client.workflow.start(supportPodWorkflow, {
          workflowId: supportPodId(name),
          taskQueue,
          args: [{ name, size, requestedBy: by, ttlMs, ...(policy ? { maxPerRequester: policy.maxPodsPerUser } : {}) }],
          memo: { [SUPPORT_POD_MEMO]: { requestedBy: by, size } satisfies SupportPodMemo },
          ...(cluster ? { typedSearchAttributes: [{ key: EnvCluster, value: cluster }] } : {}),
        });
      } catch (err) {
        if (err instanceof WorkflowExecutionAlreadyStartedError) throw await alreadyRunning(name);
        throw err;
      }
      if (policy && (await slotTaken(workflow, limitWaitMs)) === null) throw await limitReached(by, policy.maxPodsPerUser);
      return { waitsFor: held ?? null };
    },

    async supportPod(name) {
      const [pods, workflow] = await Promise.all([
        readPods().then(
          (all) => ({ pods: all.filter((pod) => pod.name === name), error: null }),
          (err: unknown) => ({ pods: null, error: unavailable(err) }),
        ),
        client.workflow
          .getHandle(supportPodId(name))
          .describe()
          .then(
            (d) => (d.status.name === 'RUNNING' ? record(d.workflowId, d.runId, d.startTime, d.memo) : undefined),
            (err: unknown) => {
              if (err instanceof WorkflowNotFoundError) return undefined;
              throw err;
            },
          ),
      ]);
      const [listing] = joinSupportPods(pods.pods, workflow ? [workflow] : [], pods.error).supportPods;
      if (!listing) throw new OperationError('unknown-support-pod', `there is no support pod ${name}`);
      return listing;
    },

    async stopSupportPod(name, by) {
      const workflow = client.workflow.getHandle(supportPodId(name));
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
        const unknown = err instanceof WorkflowNotFoundError || (err instanceof OperationError && err.kind === 'unknown-support-pod');
        if (!unknown) throw err;
        // No workflow: a pod of that name may still be there, which nothing here deletes.
        const left = (await readPods().catch(() => []))?.find((pod) => pod.name === name);
        if (left && !left.deletingSince) {
          throw new OperationError(
            'conflict',
            `support pod ${name} is orphaned: no workflow manages it (${holder(left)}), so the scheduler does not delete it; ${orphanFate(left)}`,
            left.createdBy ? [left.createdBy] : [],
          );
        }
        throw new OperationError(
          'unknown-support-pod',
          left ? `support pod ${name} is being deleted already` : `there is no support pod ${name}`,
        );
      }
    },

    async followSupportPod(name, timeoutMs) {
      const workflow = client.workflow.getHandle(supportPodId(name));
      const deadline = Date.now() + timeoutMs;
      try {
        while (Date.now() < deadline) {
          const { status } = await workflow.describe();
          if (status.name !== 'RUNNING') {
            await workflow.result();
            return { outcome: 'gone' };
          }
          const state = await workflow.query(supportPodStateQuery);
          if (state.pod) return { outcome: 'created', pod: state.pod, expiresAt: state.expiresAt };
          await sleep(FOLLOW_POLL_MS);
        }
        return { outcome: 'pending' };
      } catch (err) {
        if (err instanceof WorkflowFailedError) throw supportPodFailure(err);
        throw err;
      }
    },

    async listSupportPods() {
      const [pods, workflows] = await Promise.all([
        readPods().then(
          (all) => ({ pods: all, error: null }),
          (err: unknown) => ({ pods: null, error: unavailable(err) }),
        ),
        (async () => {
          const records: Promise<SupportWorkflowRecord>[] = [];
          for await (const execution of client.workflow.list({ query: RUNNING_SUPPORT_PODS })) {
            records.push(record(execution.workflowId, execution.runId, execution.startTime, execution.memo));
          }
          return Promise.all(records);
        })(),
      ]);
      return joinSupportPods(pods.pods, workflows, pods.error);
    },
  };
}
