/**
 * For tests whose support pods are kept in a Map rather than a cluster (the Slack and REST
 * suites, about limits and answers): the pod as `support list` would read it, Pending and
 * not ready, as on a cluster without a kubelet. test/support-pods.test.ts has the real thing.
 */
import type { SupportPod, SupportPodInCluster } from '../../src/activities/contracts';

export function asClusterPod(pod: SupportPod): SupportPodInCluster {
  return {
    name: pod.name,
    uid: pod.uid ?? `uid-${pod.name}`,
    labelled: true,
    size: pod.size,
    createdBy: pod.createdBy,
    createdAt: pod.createdAt,
    phase: pod.phase,
    ready: false,
    reason: null,
    deletingSince: null,
    workflowRunId: null,
    expiresAt: null,
    activeDeadlineSeconds: null,
    deadlineAt: null,
  };
}
