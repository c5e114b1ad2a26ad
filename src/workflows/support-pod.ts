/**
 * One workflow per support pod, id `support/<name>`: creates the pod, then deletes it on
 * `support stop` or when its time to live runs out, whichever comes first, so no
 * management pod is forgotten. The timer lives in Temporal, so it survives worker restarts.
 *
 * Since SUPPORT_POD_OWN_POD_PATCH: the expiry is fixed before the pod is created and
 * recorded on it (its activeDeadlineSeconds is based on it); creating waits while the
 * previous pod of the name is still terminating, and a stop or the expiry ends that wait;
 * the pod is deleted by its uid, so a pod of the same name that is not this workflow's is
 * never deleted; and the memo says when it expires and which pod is its own, so `support
 * list` joins workflows and pods from the Temporal server and the cluster alone.
 *
 * Since SUPPORT_POD_SLOT_PATCH, one started with a per-requester limit first takes one of
 * its requester's slots, a child workflow `support-slot/<requester>/<n>` for n in 1..limit:
 * the Temporal server starts at most one running workflow per id, so two starts (from two
 * API processes, or at once) never take the same slot, and one that finds every slot taken
 * fails before it creates anything. The slot lives exactly as long as this workflow: it is
 * cancelled before this one ends, and the server terminates it if this one is ended any
 * other way (ParentClosePolicy TERMINATE), an operator's terminate included.
 */
import {
  ActivityCancellationType,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowCancellationType,
  condition,
  defineQuery,
  defineSignal,
  defineUpdate,
  isCancellation,
  ParentClosePolicy,
  patched,
  proxyActivities,
  setHandler,
  startChild,
  upsertMemo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { KubernetesActivities, SupportPod } from '../activities/contracts';
import { Failure } from '../domain/failures';
import { scopedId } from './cluster';

export const DEFAULT_SUPPORT_POD_TTL_MS = 8 * 60 * 60 * 1000;

/** Workflows started before it created the pod first and started the clock after, and deleted by name. */
export const SUPPORT_POD_OWN_POD_PATCH = 'support-pod-own-pod';
/** A workflow started before it takes no slot: the API counted its requester's pods itself. */
export const SUPPORT_POD_SLOT_PATCH = 'support-pod-slot';
/** A workflow cancelled (`temporal workflow cancel`) deletes its pod before it ends, as a stop does. */
export const SUPPORT_POD_CANCEL_PATCH = 'support-pod-cancel-deletes-pod';

export interface SupportPodInput {
  name: string;
  /** A size of the catalogue (XS..XL); an unknown one fails the workflow with the valid ones listed. */
  size: string;
  requestedBy: string;
  /** Deleted after this long even if nobody stops it (default 8h). */
  ttlMs?: number;
  /**
   * Support pods one requester may have at once (SUPPORT_MAX_PODS_PER_USER): the workflow
   * takes one of that many slots of `requestedBy`, or fails (`SupportPodLimitReached`)
   * without creating anything when all are taken. Absent: no limit (the operators' CLI).
   */
  maxPerRequester?: number;
}

export interface SupportPodResult {
  /** Null when it ended before its pod was created (stopped or expired while waiting for the name). */
  pod: SupportPod | null;
  deletedBecause: 'stopped' | 'expired';
  /** Who stopped it; null when it expired. */
  deletedBy: string | null;
}

export interface SupportPodState {
  pod: SupportPod | null;
  expiresAt: string | null;
  stopRequestedBy: string | null;
  /** The requester's slot it holds (1..maxPerRequester); null: every one was taken; absent: none asked for, or not taken yet. */
  slot?: number | null;
}

/** Memo `supportPod` of a support-pod workflow: who asked (set when it starts), then when it ends and its pod's uid (set by the workflow). */
export interface SupportPodMemo {
  requestedBy: string;
  size: string;
  /** When it deletes its pod; absent on workflows of earlier versions. */
  expiresAt?: string;
  /** Its pod, once created; absent before (and on workflows of earlier versions). */
  podUid?: string;
}
export const SUPPORT_POD_MEMO = 'supportPod';

/** `support/<name>`, or `<cluster>/support/<name>` with CLUSTER_NAME (cluster.ts). */
export const supportPodWorkflowId = (name: string, cluster?: string): string => scopedId(`support/${name}`, cluster);

export const supportPodSlotWorkflowId = (requestedBy: string, slot: number): string => `support-slot/${requestedBy}/${slot}`;

export const stopSupportPodSignal = defineSignal<[{ by: string }]>('stopSupportPod');
export const supportPodStateQuery = defineQuery<SupportPodState>('supportPodState');
/** Answers once the workflow has taken a slot (its number) or found every one taken (null): the API's answer to `support start`. */
export const supportPodSlotUpdate = defineUpdate<number | null>('supportPodSlot');

const { createSupportPod, deleteSupportPod } = proxyActivities<Pick<KubernetesActivities, 'createSupportPod' | 'deleteSupportPod'>>({
  startToCloseTimeout: '1 minute',
  // Both activities are idempotent; a bad name or size fails at once (non-retryable).
  retry: { maximumInterval: '1 minute' },
});

/**
 * Creating may wait for a terminating pod of the same name: it heartbeats while it waits, so
 * a stop reaches it with the next heartbeat the SDK sends (at most 0.8 x heartbeatTimeout,
 * 8 s, apart), and the workflow waits for the cancellation to be done (a pod created just
 * then is then known, and deleted).
 */
const { createSupportPod: createOwnSupportPod } = proxyActivities<Pick<KubernetesActivities, 'createSupportPod'>>({
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: '10 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { maximumInterval: '30 seconds' },
});

export async function supportPodWorkflow(input: SupportPodInput): Promise<SupportPodResult> {
  const ttlMs = input.ttlMs ?? DEFAULT_SUPPORT_POD_TTL_MS;
  const state: SupportPodState = { pod: null, expiresAt: null, stopRequestedBy: null };
  setHandler(stopSupportPodSignal, ({ by }) => {
    state.stopRequestedBy ??= by;
  });
  setHandler(supportPodStateQuery, () => state);

  if (input.maxPerRequester === undefined || !patched(SUPPORT_POD_SLOT_PATCH)) return supportPod(input, ttlMs, state);

  setHandler(supportPodSlotUpdate, async () => {
    await condition(() => state.slot !== undefined);
    return state.slot ?? null;
  });
  const slot = await takeSlot(input.requestedBy, input.maxPerRequester);
  state.slot = slot?.number ?? null;
  if (!slot) {
    await condition(allHandlersFinished);
    const limit = input.maxPerRequester;
    throw ApplicationFailure.nonRetryable(
      `you have ${limit} support pod${limit === 1 ? '' : 's'} already, the most one person may have at once; stop one first (support stop <name>)`,
      Failure.SupportPodLimitReached,
    );
  }
  try {
    return await supportPod(input, ttlMs, state);
  } finally {
    await CancellationScope.nonCancellable(() => slot.release());
  }
}

/** Holds one slot of a requester while its parent support-pod workflow runs; ends when the parent cancels it, or the server terminates it with the parent. */
export async function supportPodSlotWorkflow(): Promise<void> {
  try {
    await condition(() => false);
  } catch (err) {
    // Cancelled by its parent: the slot is given back, which is this workflow's normal end.
    if (isCancellation(err)) return;
    throw err;
  }
}

interface Slot {
  number: number;
  /** Ends the slot's workflow and waits until it has ended, so the slot is free before the support pod's workflow ends. */
  release(): Promise<void>;
}

/** The first free slot of 1..count, or null when each is held by a running support-pod workflow. */
async function takeSlot(requestedBy: string, count: number): Promise<Slot | null> {
  // The slot outlives a cancellation of the support-pod workflow until release(): its pod is deleted first.
  const shield = new CancellationScope({ cancellable: false });
  for (let number = 1; number <= count; number++) {
    const holding = new CancellationScope({ cancellable: true, parent: shield });
    try {
      const child = await holding.run(() =>
        startChild(supportPodSlotWorkflow, {
          workflowId: supportPodSlotWorkflowId(requestedBy, number),
          parentClosePolicy: ParentClosePolicy.TERMINATE,
          cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
        }),
      );
      // Ended by release() or, should an operator end it, earlier: either way there is nothing to wait for then.
      const ended = child.result().catch(() => undefined);
      return {
        number,
        release: async () => {
          holding.cancel();
          await ended;
        },
      };
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) continue;
      throw err;
    }
  }
  return null;
}

async function supportPod(input: SupportPodInput, ttlMs: number, state: SupportPodState): Promise<SupportPodResult> {
  if (!patched(SUPPORT_POD_OWN_POD_PATCH)) {
    state.pod = await createSupportPod({ name: input.name, size: input.size, requestedBy: input.requestedBy });
    state.expiresAt = new Date(Date.now() + ttlMs).toISOString();
    const stopped = await condition(() => state.stopRequestedBy !== null, ttlMs);
    await deleteSupportPod(input.name);
    return { pod: state.pod, deletedBecause: stopped ? 'stopped' : 'expired', deletedBy: state.stopRequestedBy };
  }

  const expiresAtMs = Date.now() + ttlMs;
  const expiresAt = new Date(expiresAtMs).toISOString();
  state.expiresAt = expiresAt;
  const memo: SupportPodMemo = { requestedBy: input.requestedBy, size: input.size, expiresAt };
  upsertMemo({ [SUPPORT_POD_MEMO]: memo });

  let failure: unknown;
  let settled = false;
  const creating = new CancellationScope();
  const created = creating
    .run(() => createOwnSupportPod({ name: input.name, size: input.size, requestedBy: input.requestedBy, expiresAt }))
    .then(
      (pod) => {
        state.pod = pod;
      },
      (err: unknown) => {
        failure = err;
      },
    )
    .finally(() => {
      settled = true;
    });
  await condition(() => settled || state.stopRequestedBy !== null, ttlMs);
  if (!settled) {
    // Stopped, or expired, while the name was still held by a pod on its way out.
    creating.cancel();
    await created;
  }
  // A cancellation is the one asked for above; any other failure (a name taken, a bad size) fails the workflow.
  if (failure !== undefined && !isCancellation(failure)) throw failure;
  if (state.pod?.uid) upsertMemo({ [SUPPORT_POD_MEMO]: { ...memo, podUid: state.pod.uid } satisfies SupportPodMemo });

  const remaining = expiresAtMs - Date.now();
  let stopped: boolean;
  try {
    stopped = state.stopRequestedBy !== null || (remaining > 0 && (await condition(() => state.stopRequestedBy !== null, remaining)));
  } catch (err) {
    // Cancelled: the pod goes with its workflow, before the slot is given back.
    const pod = state.pod;
    if (isCancellation(err) && pod && patched(SUPPORT_POD_CANCEL_PATCH))
      await CancellationScope.nonCancellable(() => deleteSupportPod(input.name, pod.uid));
    throw err;
  }
  if (state.pod) await deleteSupportPod(input.name, state.pod.uid);
  return { pod: state.pod, deletedBecause: stopped ? 'stopped' : 'expired', deletedBy: state.stopRequestedBy };
}
