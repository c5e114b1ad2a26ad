/**
 * For tests whose support pods are kept in a Map rather than a cluster (the Slack and REST
 * suites, about limits and answers): the pod as `support list` would read it, Pending and
 * not ready, as on a cluster without a kubelet. test/support-pods.test.ts has the real thing.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { KubernetesActivities, SupportPod, SupportPodInCluster } from '../../src/activities/contracts';

/** The support-pod activities on `pods`: sizes outside `sizes` fail for good, as an unknown size does on a cluster. */
export function supportPodActivities(
  pods: Map<string, SupportPod>,
  sizes: readonly string[],
): Pick<KubernetesActivities, 'createSupportPod' | 'deleteSupportPod'> {
  return {
    async createSupportPod({ name, size, requestedBy }) {
      if (!sizes.includes(size))
        throw ApplicationFailure.nonRetryable(`unknown support pod size "${size}": use one of ${sizes.join(', ')}`);
      const pod = pods.get(name) ?? {
        name,
        size,
        phase: 'Pending',
        createdAt: new Date().toISOString(),
        createdBy: requestedBy,
        uid: `uid-${name}-${Date.now()}`,
      };
      pods.set(name, pod);
      return pod;
    },
    async deleteSupportPod(name, uid) {
      if (uid !== undefined && pods.get(name)?.uid !== uid) return false;
      return pods.delete(name);
    },
  };
}

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
