/**
 * Support pods: standalone management pods in the support namespace, one per request.
 *
 * A pod's name is taken until the pod is gone. The pod records the workflow run that
 * created it, so a retry of that run finds its own pod again and nothing else is ever
 * adopted: a pod of that name still terminating is waited for, any other one is refused
 * with who has it. Each pod carries `activeDeadlineSeconds` (its time to live plus
 * SUPPORT_POD_DEADLINE_MARGIN_SECONDS), so one whose workflow has gone is still killed by
 * the kubelet; its workflow deletes it by uid, never a newer pod of the same name.
 */
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { asyncLocalStorage } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { Failure } from '../../domain/failures';
import { isDns1123Label } from '../../domain/names';
import type { PodResources, SupportSizes } from '../../domain/support-sizes';
import type { Logger } from '../../logger';
import type { KubernetesActivities, SupportPod, SupportPodInCluster } from '../contracts';
import {
  SUPPORT_POD_EXPIRES_ANNOTATION,
  SUPPORT_POD_LABEL,
  SUPPORT_POD_REQUESTED_BY_ANNOTATION,
  SUPPORT_POD_RUN_ANNOTATION,
  SUPPORT_POD_SIZE_ANNOTATION,
} from './annotations';
import { call, listAll, statusCode, type Write } from './apiserver';

/**
 * A support pod's activeDeadlineSeconds is its time to live plus this: the kubelet kills a
 * pod whose workflow is gone (terminated by an operator, say), and never one whose workflow
 * deletes it on time, even with the worker down for a while at its expiry.
 */
export const SUPPORT_POD_DEADLINE_MARGIN_SECONDS = 15 * 60;
/** The longest SUPPORT_POD_TTL: the deadline of a pod whose workflow did not say when it ends (started by an earlier version). */
const SUPPORT_POD_MAX_TTL_MS = 168 * 60 * 60 * 1000;
const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'devenv-scheduler' };
/** A support pod runs as nobody: Pod Security `restricted` admits no root. */
const SUPPORT_POD_UID = 65534;

export interface SupportPodSettings {
  namespace: string;
  image: string;
  sizes: SupportSizes;
  /**
   * How long one attempt of createSupportPod waits for a terminating pod of the same name
   * before it fails to be retried by Temporal (default 40 s, within its 1-minute timeout),
   * and how often it looks (default 1 s).
   */
  nameWaitMs?: number;
  namePollMs?: number;
}

/**
 * The support pod createSupportPod creates, and the only pod k8s/admission-policy.yaml
 * (devenv-scheduler-worker-support-pods) lets the worker create: a change here needs the
 * same change there, or the apiserver refuses the pod (test/kubernetes.test.ts).
 */
export function supportPodManifest(
  request: { name: string; size: string; requestedBy: string; expiresAt?: string; runId?: string },
  image: string,
  resources: PodResources,
): V1Pod {
  const { name, size, requestedBy, expiresAt, runId } = request;
  const ttlSeconds = Math.ceil((expiresAt !== undefined ? Math.max(0, Date.parse(expiresAt) - Date.now()) : SUPPORT_POD_MAX_TTL_MS) / 1000);
  return {
    metadata: {
      name,
      labels: { ...MANAGED_BY, [SUPPORT_POD_LABEL]: 'true' },
      annotations: {
        [SUPPORT_POD_SIZE_ANNOTATION]: size,
        [SUPPORT_POD_REQUESTED_BY_ANNOTATION]: requestedBy,
        ...(runId ? { [SUPPORT_POD_RUN_ANNOTATION]: runId } : {}),
        ...(expiresAt !== undefined ? { [SUPPORT_POD_EXPIRES_ANNOTATION]: new Date(expiresAt).toISOString() } : {}),
      },
    },
    spec: {
      restartPolicy: 'Always',
      automountServiceAccountToken: false,
      // The kubelet's backstop: counted from when the pod starts on its node, so never before its workflow's expiry.
      activeDeadlineSeconds: Math.max(1, ttlSeconds) + SUPPORT_POD_DEADLINE_MARGIN_SECONDS,
      // What the restricted Pod Security Standard requires, which the support namespace
      // enforces (k8s/namespace.yaml): non-root (uid 65534, "nobody", whatever user the
      // image names), no privilege escalation, no capabilities, the runtime's seccomp profile.
      securityContext: {
        runAsNonRoot: true,
        runAsUser: SUPPORT_POD_UID,
        runAsGroup: SUPPORT_POD_UID,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      containers: [
        {
          name: 'shell',
          image,
          command: ['sleep', 'infinity'],
          resources: { requests: { ...resources }, limits: { ...resources } },
          securityContext: { allowPrivilegeEscalation: false, privileged: false, capabilities: { drop: ['ALL'] } },
        },
      ],
    },
  };
}

function toSupportPod(pod: V1Pod): SupportPod {
  return {
    name: pod.metadata?.name ?? '',
    size: pod.metadata?.annotations?.[SUPPORT_POD_SIZE_ANNOTATION] ?? '',
    phase: pod.status?.phase ?? 'Pending',
    createdAt: pod.metadata?.creationTimestamp ? new Date(pod.metadata.creationTimestamp).toISOString() : null,
    createdBy: pod.metadata?.annotations?.[SUPPORT_POD_REQUESTED_BY_ANNOTATION] ?? null,
    ...(pod.metadata?.uid ? { uid: pod.metadata.uid } : {}),
  };
}

const isoOrNull = (value: Date | string | undefined): string | null => {
  if (value === undefined) return null;
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
};

/** A pod of the support namespace as `support list` shows it; annotations missing (a pod made by hand, or by an earlier version) are null. */
function toSupportPodInCluster(pod: V1Pod): SupportPodInCluster {
  const metadata = pod.metadata ?? {};
  const annotations = metadata.annotations ?? {};
  const deadline = pod.spec?.activeDeadlineSeconds ?? null;
  const startedAt = isoOrNull(pod.status?.startTime) ?? isoOrNull(metadata.creationTimestamp);
  return {
    name: metadata.name ?? '',
    uid: metadata.uid ?? '',
    labelled: metadata.labels?.[SUPPORT_POD_LABEL] === 'true',
    size: annotations[SUPPORT_POD_SIZE_ANNOTATION] ?? null,
    createdBy: annotations[SUPPORT_POD_REQUESTED_BY_ANNOTATION] ?? null,
    createdAt: isoOrNull(metadata.creationTimestamp),
    phase: pod.status?.phase ?? 'Pending',
    ready: pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
    reason: pod.status?.reason ?? null,
    deletingSince: isoOrNull(metadata.deletionTimestamp),
    workflowRunId: annotations[SUPPORT_POD_RUN_ANNOTATION] ?? null,
    expiresAt: isoOrNull(annotations[SUPPORT_POD_EXPIRES_ANNOTATION]),
    activeDeadlineSeconds: deadline,
    deadlineAt: deadline !== null && startedAt ? new Date(Date.parse(startedAt) + deadline * 1000).toISOString() : null,
  };
}

/** Who holds a support pod name, for a refusal: "started by U123 at ..., size XS" or "a pod not made by devenv-scheduler". */
function describeHolder(pod: SupportPodInCluster): string {
  const who = pod.createdBy
    ? `started by ${pod.createdBy}`
    : pod.labelled
      ? 'started by someone unrecorded'
      : 'not made by devenv-scheduler (no devenv-scheduler/support-pod label)';
  return `a pod ${who}${pod.createdAt ? ` at ${pod.createdAt}` : ''}${pod.size ? `, size ${pod.size}` : ''}`;
}

function validateSupportPodName(name: string): void {
  if (!isDns1123Label(name)) {
    throw ApplicationFailure.nonRetryable(
      `invalid support pod name "${name}": use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (a DNS-1123 label)`,
      Failure.InvalidSupportPodName,
    );
  }
}

/** The support pod activities of the worker: create one for a workflow run, delete it when it ends. */
export function createSupportPodActivities(
  kubeConfig: KubeConfig,
  support: SupportPodSettings,
  { write, logger }: { write: Write; logger: Logger },
): Pick<KubernetesActivities, 'createSupportPod' | 'deleteSupportPod'> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const { namespace } = support;

  return {
    async createSupportPod({ name, size, requestedBy, expiresAt }) {
      validateSupportPodName(name);
      const resources = support.sizes[size];
      if (!resources) {
        throw ApplicationFailure.nonRetryable(
          `unknown support pod size "${size}": use one of ${Object.keys(support.sizes).join(', ')}`,
          Failure.InvalidSupportPodSize,
        );
      }
      if (expiresAt !== undefined && Number.isNaN(Date.parse(expiresAt))) {
        throw ApplicationFailure.nonRetryable(
          `invalid expiry "${expiresAt}" for support pod ${name}: not an ISO instant`,
          Failure.InvalidSupportPodExpiry,
        );
      }
      const context = asyncLocalStorage.getStore();
      const runId = context?.info.workflowExecution?.runId;
      const pod = supportPodManifest({ name, size, requestedBy, expiresAt, runId }, support.image, resources);
      /** Created by this very request: by this workflow run, or (no run recorded on either side, an earlier version) for the same requester and size. */
      const own = (existing: V1Pod): boolean => {
        const annotations = existing.metadata?.annotations ?? {};
        const recordedRun = annotations[SUPPORT_POD_RUN_ANNOTATION];
        if (recordedRun !== undefined) return recordedRun === runId;
        return (
          existing.metadata?.labels?.[SUPPORT_POD_LABEL] === 'true' &&
          annotations[SUPPORT_POD_REQUESTED_BY_ANNOTATION] === requestedBy &&
          annotations[SUPPORT_POD_SIZE_ANNOTATION] === size &&
          !existing.metadata?.deletionTimestamp
        );
      };
      const waitUntil = Date.now() + (support.nameWaitMs ?? 40_000);
      for (;;) {
        context?.heartbeat();
        try {
          const created = await write(`create support pod ${namespace}/${name} (${size})`, { namespace, name, size, requestedBy }, () =>
            core.createNamespacedPod({ namespace, body: pod }),
          );
          return toSupportPod(created ?? pod);
        } catch (error) {
          if (statusCode(error) !== 409) throw error;
        }
        // The name is taken. By this run's own pod (an earlier attempt got through), by one on its way out, or by another.
        let existing: V1Pod;
        try {
          existing = await call(`read support pod ${namespace}/${name}`, () => core.readNamespacedPod({ namespace, name }));
        } catch (error) {
          if (statusCode(error) === 404) continue; // gone meanwhile: create it now
          throw error;
        }
        if (own(existing)) return toSupportPod(existing);
        const found = toSupportPodInCluster(existing);
        if (!found.deletingSince) {
          throw ApplicationFailure.nonRetryable(
            `support pod name "${name}" is taken: ${describeHolder(found)}; pick another name, or delete that pod first`,
            Failure.SupportPodNameTaken,
          );
        }
        // Deleted, but still terminating (the kubelet stops its containers, finalizers run): wait for it to go.
        const waiting = `the previous pod ${namespace}/${name} (${describeHolder(found)}) is still terminating, deleted at ${found.deletingSince}`;
        if (Date.now() >= waitUntil) {
          throw ApplicationFailure.create({
            message: `${waiting}; support pod ${name} is created once it is gone`,
            type: Failure.SupportPodNameTerminating,
            nonRetryable: false,
          });
        }
        context?.heartbeat({ waitingFor: waiting });
        logger.info({ namespace, name, deletingSince: found.deletingSince }, 'support pod name still held by a terminating pod: waiting');
        const pause = support.namePollMs ?? 1000;
        // A cancellation (the workflow was stopped meanwhile) ends the wait at once.
        if (context) await context.sleep(pause);
        else await new Promise((resolve) => setTimeout(resolve, pause));
      }
    },

    async deleteSupportPod(name, uid) {
      validateSupportPodName(name);
      try {
        // With its uid, only that pod: a newer pod of the same name (someone else's) is left alone.
        const body = uid ? { preconditions: { uid } } : undefined;
        await write(`delete support pod ${namespace}/${name}`, { namespace, name, uid }, () =>
          core.deleteNamespacedPod({ namespace, name, body }),
        );
        return true;
      } catch (error) {
        if (statusCode(error) === 404) return false;
        if (statusCode(error) === 409 && uid) {
          logger.warn({ namespace, name, uid }, 'support pod already gone: a pod of that name is another one now, left alone');
          return false;
        }
        throw error;
      }
    },
  };
}

/**
 * The support namespace's pods for the API process and the CLI (`support list`, and the
 * check of a name before `support start`): a read, with the API's read-only identity.
 */
export function createSupportPodReader(kubeConfig: KubeConfig, namespace: string, pageSize = 500): () => Promise<SupportPodInCluster[]> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  return async () => {
    // Every pod of the namespace, labelled or not: a name is taken by any of them.
    const pods = await call(`list support pods in ${namespace}`, () =>
      listAll(pageSize, (page) => core.listNamespacedPod({ namespace, ...page })),
    );
    return pods.map(toSupportPodInCluster).sort((a, b) => a.name.localeCompare(b.name));
  };
}
