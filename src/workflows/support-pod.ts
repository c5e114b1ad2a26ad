/**
 * One workflow per support pod, id `support/<name>`: creates the pod, then deletes it on
 * `support stop` or when its time to live runs out, whichever comes first, so no
 * management pod is forgotten. The timer lives in Temporal, so it survives worker restarts.
 */
import { condition, defineQuery, defineSignal, proxyActivities, setHandler } from '@temporalio/workflow';
import type { KubernetesActivities, SupportPod } from '../activities/contracts';

export const DEFAULT_SUPPORT_POD_TTL_MS = 8 * 60 * 60 * 1000;

export interface SupportPodInput {
  name: string;
  /** A size of the catalogue (XS..XL); an unknown one fails the workflow with the valid ones listed. */
  size: string;
  requestedBy: string;
  /** Deleted after this long even if nobody stops it (default 8h). */
  ttlMs?: number;
}

export interface SupportPodResult {
  pod: SupportPod;
  deletedBecause: 'stopped' | 'expired';
  /** Who stopped it; null when it expired. */
  deletedBy: string | null;
}

export interface SupportPodState {
  pod: SupportPod | null;
  expiresAt: string | null;
  stopRequestedBy: string | null;
}

export const supportPodWorkflowId = (name: string): string => `support/${name}`;

export const stopSupportPodSignal = defineSignal<[{ by: string }]>('stopSupportPod');
export const supportPodStateQuery = defineQuery<SupportPodState>('supportPodState');

const { createSupportPod, deleteSupportPod } = proxyActivities<Pick<KubernetesActivities, 'createSupportPod' | 'deleteSupportPod'>>({
  startToCloseTimeout: '1 minute',
  // Both activities are idempotent; a bad name or size fails at once (non-retryable).
  retry: { maximumInterval: '1 minute' },
});

export async function supportPodWorkflow(input: SupportPodInput): Promise<SupportPodResult> {
  const ttlMs = input.ttlMs ?? DEFAULT_SUPPORT_POD_TTL_MS;
  const state: SupportPodState = { pod: null, expiresAt: null, stopRequestedBy: null };
  setHandler(stopSupportPodSignal, ({ by }) => {
    state.stopRequestedBy ??= by;
  });
  setHandler(supportPodStateQuery, () => state);

  state.pod = await createSupportPod({ name: input.name, size: input.size, requestedBy: input.requestedBy });
  state.expiresAt = new Date(Date.now() + ttlMs).toISOString();
  const stopped = await condition(() => state.stopRequestedBy !== null, ttlMs);
  await deleteSupportPod(input.name);
  return { pod: state.pod, deletedBecause: stopped ? 'stopped' : 'expired', deletedBy: state.stopRequestedBy };
}
