/**
 * The environment's Kubernetes side: stop and start a namespace's Deployments,
 * StatefulSets and CronJobs, report their status, and manage support pods.
 *
 * Save and scale together: one merge patch writes a workload's replica count into the
 * annotation `devenv-scheduler/original-replicas` and sets `spec.replicas: 0`, and a start
 * restores the count and removes the annotation in one patch. A crash or retry at any
 * point therefore finds either the saved count or the running replicas, and 0 is never
 * saved. Every write carries the resourceVersion it was computed from, so a concurrent
 * change (an HPA, a person with kubectl) turns into a 409 that is retried on a fresh read
 * rather than a lost update.
 *
 * These patches change spec.replicas (CronJob spec.suspend, HPA spec.minReplicas) and
 * devenv-scheduler/ annotations and nothing else, which is all k8s/admission-policy.yaml
 * lets the worker's ServiceAccount change: a write here that touched anything more would
 * be refused by the apiserver (KubernetesPolicyDenied).
 *
 * HPAs: a target scaled to 0 makes the HPA controller stand aside ("ScalingDisabled")
 * until the target is scaled up again, the behaviour kube-downscaler relies on too. Only
 * an HPA with minReplicas 0 (the HPAScaleToZero feature) keeps acting on a target at 0,
 * so, as kube-downscaler does with an HPA's minimum, a stop raises that minReplicas to 1,
 * saves the original in `devenv-scheduler/original-min-replicas`, and a start restores it.
 *
 * Support pods: a pod's name is taken until the pod is gone. The pod records the workflow
 * run that created it, so a retry of that run finds its own pod again and nothing else is
 * ever adopted: a pod of that name still terminating is waited for, any other one is
 * refused with who has it. Each pod carries `activeDeadlineSeconds` (its time to live plus
 * SUPPORT_POD_DEADLINE_MARGIN_SECONDS), so one whose workflow has gone is still killed by
 * the kubelet; its workflow deletes it by uid, never a newer pod of the same name.
 */
import {
  AppsV1Api,
  AutoscalingV2Api,
  BatchV1Api,
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  VersionApi,
  type KubeConfig,
  type V1CronJob,
  type V1Deployment,
  type V1Namespace,
  type V1ObjectMeta,
  type V1Pod,
  type V1StatefulSet,
  type V2HorizontalPodAutoscaler,
} from '@kubernetes/client-node';
import { asyncLocalStorage } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import pLimit from 'p-limit';
import { isDns1123Label } from '../domain/names';
import { DEFAULT_SUPPORT_SIZES, type PodResources, type SupportSizes } from '../domain/support-sizes';
import type { Logger } from '../logger';
import { SLACK_CHANNEL_ANNOTATION } from '../slack/ids';
import { holdUntil } from './timing';
import type {
  ActionReport,
  CronJobStatus,
  KubernetesActivities,
  NamespacePhase,
  NamespaceStatus,
  SupportPod,
  SupportPodInCluster,
  WorkloadChange,
  WorkloadStatus,
} from './contracts';

export const ORIGINAL_REPLICAS = 'devenv-scheduler/original-replicas';
export const ORIGINAL_SUSPEND = 'devenv-scheduler/original-suspend';
export const ORIGINAL_MIN_REPLICAS = 'devenv-scheduler/original-min-replicas';
export const EXCLUDE = 'devenv-scheduler/exclude';
export const SUPPORT_POD_LABEL = 'devenv-scheduler/support-pod';
export const SLACK_CHANNEL = SLACK_CHANNEL_ANNOTATION;
const SIZE_ANNOTATION = 'devenv-scheduler/size';
const REQUESTED_BY_ANNOTATION = 'devenv-scheduler/requested-by';
/** The workflow run that created a support pod: only that run's retries adopt it. */
export const SUPPORT_POD_RUN_ANNOTATION = 'devenv-scheduler/workflow-run-id';
/** When the support pod's workflow deletes it. */
export const SUPPORT_POD_EXPIRES_ANNOTATION = 'devenv-scheduler/expires-at';
/**
 * A support pod's activeDeadlineSeconds is its time to live plus this: the kubelet kills a
 * pod whose workflow is gone (terminated by an operator, say), and never one whose workflow
 * deletes it on time, even with the worker down for a while at its expiry.
 */
export const SUPPORT_POD_DEADLINE_MARGIN_SECONDS = 15 * 60;
/** The longest SUPPORT_POD_TTL: the deadline of a pod whose workflow did not say when it ends (started by an earlier version). */
export const SUPPORT_POD_MAX_TTL_MS = 168 * 60 * 60 * 1000;
const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'devenv-scheduler' };
/** A support pod runs as nobody: Pod Security `restricted` admits no root. */
export const SUPPORT_POD_UID = 65534;

export interface KubernetesSettings {
  kubeConfig: KubeConfig;
  /** Log every write and skip it (DRY_RUN). */
  dryRun: boolean;
  logger: Logger;
  /** Workloads changed at once in one namespace: a few keep a large namespace quick without flooding the apiserver (default 3). */
  concurrency?: number;
  /**
   * Workloads changed at once by this process across all namespaces (default 50): when
   * hundreds of environments stop at the same minute, the apiserver sees this many writes
   * from each worker, not hundreds, and the stops queue here instead of failing with 429s.
   */
  processConcurrency?: number;
  /** Objects per list page (default 500). */
  pageSize?: number;
  support?: {
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
  };
}

type ScalableKind = 'Deployment' | 'StatefulSet';
type Scalable = V1Deployment | V1StatefulSet;
/** Conflicts retried on a fresh read before the activity fails and Temporal retries it. */
const CONFLICT_ATTEMPTS = 5;

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
/**
 * The name every stop and start write is recorded under in `metadata.managedFields`. The
 * worker's fields policy (k8s/admission-policy.yaml) lets this manager own only what stop
 * and start write, and no write of the worker's change another manager's record but by
 * the fields it took over.
 */
export const FIELD_MANAGER = 'devenv-scheduler';
/**
 * A stop or start never reads back the workload it patched, so it asks for the metadata
 * alone: the apiserver then neither encodes nor client-node decodes the whole Deployment
 * (500 such patches on the test apiserver: about 8% quicker).
 */
const mergePatchMetadataOnly = setHeaderOptions('Accept', 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1', mergePatch);

const statusCode = (error: unknown): number | undefined => (error as { code?: unknown }).code as number | undefined;

/** The apiserver's own message of a failed request (its Status body), or undefined. */
function statusMessage(error: unknown): string | undefined {
  const { body } = error as { body?: unknown };
  try {
    const status = (typeof body === 'string' ? JSON.parse(body) : body) as { message?: unknown } | undefined;
    return typeof status?.message === 'string' ? status.message : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A 401 or 403 as what it is: a missing RBAC permission, a refusal by the service's own
 * admission policy, a pod the namespace's Pod Security level does not admit, or a
 * ResourceQuota used up. None of them is fixed by retrying, so each fails for good, with
 * the apiserver's reason and where to look. Anything else is returned as it came.
 */
export function kubernetesFailure(what: string, error: unknown): unknown {
  const code = statusCode(error);
  if (code !== 401 && code !== 403) return error;
  const message = statusMessage(error) ?? '';
  const refused = `Kubernetes refused to ${what} (HTTP ${code})`;
  if (code === 403 && /violates PodSecurity/.test(message)) {
    return ApplicationFailure.nonRetryable(`${refused}: the namespace's Pod Security level does not admit the pod: ${message}`, 'KubernetesPodSecurity');
  }
  if (code === 403 && /exceeded quota/.test(message)) {
    return ApplicationFailure.nonRetryable(`${refused}: its ResourceQuota is used up (stop a support pod or raise the quota): ${message}`, 'KubernetesQuotaExceeded');
  }
  if (code === 403 && /ValidatingAdmissionPolicy/.test(message)) {
    return ApplicationFailure.nonRetryable(`${refused}: denied by an admission policy (see k8s/admission-policy.yaml): ${message}`, 'KubernetesPolicyDenied');
  }
  return ApplicationFailure.nonRetryable(
    `${refused}: the service account needs the permissions in k8s/rbac.yaml${message ? `: ${message}` : ''}`,
    'KubernetesForbidden',
  );
}
const excluded = (metadata: V1ObjectMeta | undefined) => metadata?.annotations?.[EXCLUDE] === 'true';

/** A saved count, or undefined when there is none; a value that is not a count is reported, not guessed. */
function savedCount(metadata: V1ObjectMeta | undefined, key: string): number | undefined | 'invalid' {
  const value = metadata?.annotations?.[key];
  if (value === undefined) return undefined;
  return /^\d+$/.test(value) ? Number(value) : 'invalid';
}

function heartbeat(details: { done: number; total: number }): void {
  // Also called outside an activity (scripts, tests): there is no one to heartbeat to.
  asyncLocalStorage.getStore()?.heartbeat(details);
}

export function createKubernetesActivities(settings: KubernetesSettings): KubernetesActivities {
  const { kubeConfig, dryRun, logger } = settings;
  const apps = kubeConfig.makeApiClient(AppsV1Api);
  const batch = kubeConfig.makeApiClient(BatchV1Api);
  const autoscaling = kubeConfig.makeApiClient(AutoscalingV2Api);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const concurrency = settings.concurrency ?? 3;
  const acrossNamespaces = pLimit(settings.processConcurrency ?? 50);
  const limit = settings.pageSize ?? 500;
  const support = settings.support ?? { namespace: 'devenv-support', image: 'debian:bookworm-slim', sizes: DEFAULT_SUPPORT_SIZES };

  const scalable = {
    Deployment: {
      list: (namespace: string, _continue?: string) => apps.listNamespacedDeployment({ namespace, limit, _continue }),
      read: (namespace: string, name: string) => apps.readNamespacedDeployment({ namespace, name }),
      patch: (namespace: string, name: string, body: object) => apps.patchNamespacedDeployment({ namespace, name, body, fieldManager: FIELD_MANAGER }, mergePatchMetadataOnly),
    },
    StatefulSet: {
      list: (namespace: string, _continue?: string) => apps.listNamespacedStatefulSet({ namespace, limit, _continue }),
      read: (namespace: string, name: string) => apps.readNamespacedStatefulSet({ namespace, name }),
      patch: (namespace: string, name: string, body: object) => apps.patchNamespacedStatefulSet({ namespace, name, body, fieldManager: FIELD_MANAGER }, mergePatchMetadataOnly),
    },
  } satisfies Record<ScalableKind, unknown>;

  /** Follows `continue` tokens so a namespace with hundreds of workloads is listed in pages. */
  async function listAll<T>(page: (token?: string) => Promise<{ items: T[]; metadata?: { _continue?: string } }>): Promise<T[]> {
    const items: T[] = [];
    let token: string | undefined;
    do {
      const result = await page(token);
      items.push(...result.items);
      token = result.metadata?._continue || undefined;
    } while (token);
    return items;
  }

  async function call<T>(what: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      throw kubernetesFailure(what, error);
    }
  }

  /** Performs a write, or in DRY_RUN only logs it; returns undefined when skipped. */
  async function write<T>(what: string, detail: object, request: () => Promise<T>): Promise<T | undefined> {
    if (dryRun) {
      logger.info({ dryRun: true, ...detail }, `DRY_RUN: would ${what}`);
      return undefined;
    }
    logger.info(detail, what);
    return call(what, request);
  }

  /** Runs `attempt` on a fresh read after each 409 Conflict; a vanished object counts as nothing to do. */
  async function withConflictRetry<T>(first: T, read: () => Promise<T>, attempt: (current: T) => Promise<Outcome>): Promise<Outcome> {
    let current = first;
    for (let tries = 1; ; tries++) {
      try {
        return await attempt(current);
      } catch (error) {
        const code = statusCode(error);
        if (code === 404) return {};
        if (code !== 409 || tries >= CONFLICT_ATTEMPTS) throw error;
        try {
          current = await read();
        } catch (readError) {
          if (statusCode(readError) === 404) return {};
          throw readError;
        }
      }
    }
  }

  async function ensureNamespace(namespace: string): Promise<void> {
    try {
      await call(`read namespace ${namespace}`, () => core.readNamespace({ name: namespace }));
    } catch (error) {
      if (statusCode(error) !== 404) throw error;
      throw ApplicationFailure.nonRetryable(
        `namespace "${namespace}" does not exist in the cluster, so there is nothing to stop, start or show`,
        'NamespaceNotFound',
      );
    }
  }

  interface Inventory {
    workloads: { kind: ScalableKind; object: Scalable }[];
    cronJobs: V1CronJob[];
    hpas: V2HorizontalPodAutoscaler[];
  }

  /** `hpas: false` for status, which shows none: the API's identity may not list them (k8s/rbac.yaml). */
  async function inventory(namespace: string, { hpas: withHpas = true } = {}): Promise<Inventory> {
    await ensureNamespace(namespace);
    const [deployments, statefulSets, cronJobs, hpas] = await Promise.all([
      call(`list Deployments in ${namespace}`, () => listAll((token) => scalable.Deployment.list(namespace, token))),
      call(`list StatefulSets in ${namespace}`, () => listAll((token) => scalable.StatefulSet.list(namespace, token))),
      call(`list CronJobs in ${namespace}`, () => listAll((token) => batch.listNamespacedCronJob({ namespace, limit, _continue: token }))),
      withHpas
        ? call(`list HorizontalPodAutoscalers in ${namespace}`, () =>
            listAll((token) => autoscaling.listNamespacedHorizontalPodAutoscaler({ namespace, limit, _continue: token })),
          )
        : [],
    ]);
    return {
      workloads: [
        ...deployments.map((object) => ({ kind: 'Deployment' as const, object })),
        ...statefulSets.map((object) => ({ kind: 'StatefulSet' as const, object })),
      ],
      cronJobs,
      hpas,
    };
  }

  interface Outcome {
    change?: WorkloadChange;
    note?: string;
  }

  function stopWorkload(namespace: string, kind: ScalableKind, listed: Scalable): Promise<Outcome> {
    const api = scalable[kind];
    const name = listed.metadata!.name!;
    return withConflictRetry(listed, () => api.read(namespace, name), async (object) => {
      if (excluded(object.metadata)) return {};
      const replicas = object.spec?.replicas ?? 1;
      if (replicas === 0) return {};
      // One patch saves the count and scales to 0, so no crash can separate the two; the
      // resourceVersion makes it fail (and be retried on a fresh read) if anyone changed the
      // workload since it was read. A count left by an earlier stop is simply overwritten by
      // the live one, which is what a restart must bring back.
      await write(
        `save the replica count of ${kind} ${namespace}/${name} and scale it from ${replicas} to 0`,
        { namespace, kind, name, from: replicas, to: 0 },
        () =>
          api.patch(namespace, name, {
            metadata: { resourceVersion: object.metadata?.resourceVersion, annotations: { [ORIGINAL_REPLICAS]: String(replicas) } },
            spec: { replicas: 0 },
          }),
      );
      return { change: { kind, name, from: replicas, to: 0 } };
    });
  }

  function startWorkload(namespace: string, kind: ScalableKind, listed: Scalable): Promise<Outcome> {
    const api = scalable[kind];
    const name = listed.metadata!.name!;
    return withConflictRetry(listed, () => api.read(namespace, name), async (object) => {
      if (excluded(object.metadata)) return {};
      const saved = savedCount(object.metadata, ORIGINAL_REPLICAS);
      if (saved === undefined) return {};
      if (saved === 'invalid') {
        return { note: `${kind} ${name}: ${ORIGINAL_REPLICAS} is "${object.metadata?.annotations?.[ORIGINAL_REPLICAS]}", not a count; left as it is` };
      }
      const replicas = object.spec?.replicas ?? 1;
      const metadata = { resourceVersion: object.metadata?.resourceVersion, annotations: { [ORIGINAL_REPLICAS]: null } };
      // Above 0 means a person scaled it while it was stopped: that count stands and only
      // the annotation goes. Otherwise one patch restores the count and clears it together.
      if (replicas === 0 && saved > 0) {
        await write(`restore ${kind} ${namespace}/${name} from 0 to ${saved}`, { namespace, kind, name, from: 0, to: saved }, () =>
          api.patch(namespace, name, { metadata, spec: { replicas: saved } }),
        );
        return { change: { kind, name, from: 0, to: saved } };
      }
      await write(`clear the saved replica count of ${kind} ${namespace}/${name}`, { namespace, kind, name }, () => api.patch(namespace, name, { metadata }));
      return {};
    });
  }

  /** CronJobs: 1 means scheduling, 0 suspended, in the report's from/to. */
  function stopCronJob(namespace: string, listed: V1CronJob): Promise<Outcome> {
    const name = listed.metadata!.name!;
    return withConflictRetry(listed, () => batch.readNamespacedCronJob({ namespace, name }), async (cronJob) => {
      // Suspended already: by an earlier stop (annotated) or by a person (left suspended on start).
      if (excluded(cronJob.metadata) || cronJob.spec?.suspend === true) return {};
      // One patch both remembers and suspends, so no crash can separate the two.
      await write(`suspend CronJob ${namespace}/${name}`, { namespace, kind: 'CronJob', name }, () =>
        batch.patchNamespacedCronJob(
          {
            namespace,
            name,
            fieldManager: FIELD_MANAGER,
            body: { metadata: { resourceVersion: cronJob.metadata?.resourceVersion, annotations: { [ORIGINAL_SUSPEND]: 'false' } }, spec: { suspend: true } },
          },
          mergePatch,
        ),
      );
      return { change: { kind: 'CronJob', name, from: 1, to: 0 } };
    });
  }

  function startCronJob(namespace: string, listed: V1CronJob): Promise<Outcome> {
    const name = listed.metadata!.name!;
    return withConflictRetry(listed, () => batch.readNamespacedCronJob({ namespace, name }), async (cronJob) => {
      if (excluded(cronJob.metadata) || cronJob.metadata?.annotations?.[ORIGINAL_SUSPEND] === undefined) return {};
      const resume = cronJob.metadata.annotations[ORIGINAL_SUSPEND] === 'false';
      await write(`${resume ? 'resume' : 'forget the saved state of'} CronJob ${namespace}/${name}`, { namespace, kind: 'CronJob', name }, () =>
        batch.patchNamespacedCronJob(
          {
            namespace,
            name,
            fieldManager: FIELD_MANAGER,
            body: {
              metadata: { resourceVersion: cronJob.metadata?.resourceVersion, annotations: { [ORIGINAL_SUSPEND]: null } },
              ...(resume ? { spec: { suspend: false } } : {}),
            },
          },
          mergePatch,
        ),
      );
      return resume && cronJob.spec?.suspend ? { change: { kind: 'CronJob', name, from: 0, to: 1 } } : {};
    });
  }

  /** HPAs whose target takes part in the stop or start (neither the HPA nor its target excluded). */
  function managedHpas({ hpas, workloads }: Inventory): V2HorizontalPodAutoscaler[] {
    const excludedTargets = new Set(workloads.filter((w) => excluded(w.object.metadata)).map((w) => `${w.kind}/${w.object.metadata?.name}`));
    return hpas.filter((hpa) => !excluded(hpa.metadata) && !excludedTargets.has(`${hpa.spec?.scaleTargetRef.kind}/${hpa.spec?.scaleTargetRef.name}`));
  }

  function pinHpa(namespace: string, listed: V2HorizontalPodAutoscaler): Promise<Outcome> {
    const name = listed.metadata!.name!;
    const read = () => autoscaling.readNamespacedHorizontalPodAutoscaler({ namespace, name });
    return withConflictRetry(listed, read, async (hpa) => {
      if ((hpa.spec?.minReplicas ?? 1) !== 0) return {};
      await write(`raise minReplicas of HorizontalPodAutoscaler ${namespace}/${name} from 0 to 1`, { namespace, kind: 'HorizontalPodAutoscaler', name }, () =>
        autoscaling.patchNamespacedHorizontalPodAutoscaler(
          {
            namespace,
            name,
            fieldManager: FIELD_MANAGER,
            body: { metadata: { resourceVersion: hpa.metadata?.resourceVersion, annotations: { [ORIGINAL_MIN_REPLICAS]: '0' } }, spec: { minReplicas: 1 } },
          },
          mergePatch,
        ),
      );
      return { change: { kind: 'HorizontalPodAutoscaler', name, from: 0, to: 1 } };
    });
  }

  function unpinHpa(namespace: string, listed: V2HorizontalPodAutoscaler): Promise<Outcome> {
    const name = listed.metadata!.name!;
    const read = () => autoscaling.readNamespacedHorizontalPodAutoscaler({ namespace, name });
    return withConflictRetry(listed, read, async (hpa) => {
      const saved = savedCount(hpa.metadata, ORIGINAL_MIN_REPLICAS);
      if (saved === undefined) return {};
      if (saved === 'invalid') return { note: `HorizontalPodAutoscaler ${name}: ${ORIGINAL_MIN_REPLICAS} is not a count; left as it is` };
      const from = hpa.spec?.minReplicas ?? 1;
      await write(`restore minReplicas of HorizontalPodAutoscaler ${namespace}/${name} to ${saved}`, { namespace, kind: 'HorizontalPodAutoscaler', name }, () =>
        autoscaling.patchNamespacedHorizontalPodAutoscaler(
          {
            namespace,
            name,
            fieldManager: FIELD_MANAGER,
            body: { metadata: { resourceVersion: hpa.metadata?.resourceVersion, annotations: { [ORIGINAL_MIN_REPLICAS]: null } }, spec: { minReplicas: saved } },
          },
          mergePatch,
        ),
      );
      return from === saved ? {} : { change: { kind: 'HorizontalPodAutoscaler', name, from, to: saved } };
    });
  }

  /** Runs the steps `concurrency` at a time, heartbeating progress, and folds the outcomes into a report. */
  async function act(namespace: string, started: number, phases: (() => Promise<Outcome>)[][]): Promise<ActionReport> {
    const run = pLimit(concurrency);
    const total = phases.reduce((sum, steps) => sum + steps.length, 0);
    let done = 0;
    heartbeat({ done, total });
    const outcomes: Outcome[] = [];
    // After a failure or a cancellation (e.g. a missed heartbeat) no further step starts and
    // the activity fails only once the steps in flight are done, so nothing of this attempt
    // still writes while Temporal retries it.
    let failed = false;
    let failure: unknown;
    const cancellation = asyncLocalStorage.getStore()?.cancellationSignal;
    const guarded = (step: () => Promise<Outcome>) =>
      run(() =>
        acrossNamespaces(async (): Promise<Outcome> => {
          // Checked once the step has its turn: it may have waited for other namespaces' steps.
          if (cancellation?.aborted && !failed) [failed, failure] = [true, cancellation.reason];
          if (failed) return {};
          try {
            const outcome = await step();
            heartbeat({ done: ++done, total });
            return outcome;
          } catch (error) {
            if (!failed) [failed, failure] = [true, error];
            return {};
          }
        }),
      );
    // Phases run one after the other: HPAs must be pinned before their targets reach 0,
    // and restored only after the targets are back.
    for (const steps of phases) {
      outcomes.push(...(await Promise.all(steps.map(guarded))));
      if (failed) throw failure;
    }
    const changed = outcomes.flatMap((o) => (o.change ? [o.change] : []));
    const notes = outcomes.flatMap((o) => (o.note ? [o.note] : []));
    return {
      namespace,
      changed,
      unchanged: total - changed.length,
      durationMs: Date.now() - started,
      ...(dryRun ? { dryRun } : {}),
      ...(notes.length ? { notes } : {}),
    };
  }

  async function createSupportPod({ name, size, requestedBy, expiresAt }: { name: string; size: string; requestedBy: string; expiresAt?: string }): Promise<SupportPod> {
    validateSupportPodName(name);
    const resources = support.sizes[size];
    if (!resources) {
      throw ApplicationFailure.nonRetryable(`unknown support pod size "${size}": use one of ${Object.keys(support.sizes).join(', ')}`, 'InvalidSupportPodSize');
    }
    if (expiresAt !== undefined && Number.isNaN(Date.parse(expiresAt))) {
      throw ApplicationFailure.nonRetryable(`invalid expiry "${expiresAt}" for support pod ${name}: not an ISO instant`, 'InvalidSupportPodExpiry');
    }
    const { namespace } = support;
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
        annotations[REQUESTED_BY_ANNOTATION] === requestedBy &&
        annotations[SIZE_ANNOTATION] === size &&
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
        throw ApplicationFailure.nonRetryable(`support pod name "${name}" is taken: ${describeHolder(found)}; pick another name, or delete that pod first`, 'SupportPodNameTaken');
      }
      // Deleted, but still terminating (the kubelet stops its containers, finalizers run): wait for it to go.
      const waiting = `the previous pod ${namespace}/${name} (${describeHolder(found)}) is still terminating, deleted at ${found.deletingSince}`;
      if (Date.now() >= waitUntil) {
        throw ApplicationFailure.create({ message: `${waiting}; support pod ${name} is created once it is gone`, type: 'SupportPodNameTerminating', nonRetryable: false });
      }
      context?.heartbeat({ waitingFor: waiting });
      logger.info({ namespace, name, deletingSince: found.deletingSince }, 'support pod name still held by a terminating pod: waiting');
      const pause = support.namePollMs ?? 1000;
      // A cancellation (the workflow was stopped meanwhile) ends the wait at once.
      if (context) await context.sleep(pause);
      else await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }

  function validateSupportPodName(name: string): void {
    if (!isDns1123Label(name)) {
      throw ApplicationFailure.nonRetryable(
        `invalid support pod name "${name}": use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (a DNS-1123 label)`,
        'InvalidSupportPodName',
      );
    }
  }

  return {
    async stopNamespace(namespace, timing) {
      await holdUntil(timing);
      const started = Date.now();
      const found = await inventory(namespace);
      return act(namespace, started, [
        managedHpas(found).map((hpa) => () => pinHpa(namespace, hpa)),
        [
          ...found.workloads.map(({ kind, object }) => () => stopWorkload(namespace, kind, object)),
          ...found.cronJobs.map((cronJob) => () => stopCronJob(namespace, cronJob)),
        ],
      ]);
    },

    async startNamespace(namespace) {
      const started = Date.now();
      const found = await inventory(namespace);
      return act(namespace, started, [
        [
          ...found.workloads.map(({ kind, object }) => () => startWorkload(namespace, kind, object)),
          ...found.cronJobs.map((cronJob) => () => startCronJob(namespace, cronJob)),
        ],
        managedHpas(found).map((hpa) => () => unpinHpa(namespace, hpa)),
      ]);
    },

    async namespaceStatus(namespace) {
      const { workloads, cronJobs } = await inventory(namespace, { hpas: false });
      const statuses: WorkloadStatus[] = workloads.map(({ kind, object }) => {
        const saved = savedCount(object.metadata, ORIGINAL_REPLICAS);
        return {
          kind,
          name: object.metadata?.name ?? '',
          desired: object.spec?.replicas ?? 1,
          ready: object.status?.readyReplicas ?? 0,
          ...(typeof saved === 'number' ? { savedReplicas: saved } : {}),
          excluded: excluded(object.metadata),
        };
      });
      const failed = workloads.some(
        ({ kind, object }) =>
          kind === 'Deployment' &&
          !excluded(object.metadata) &&
          (object as V1Deployment).status?.conditions?.some(
            (c) => (c.type === 'Progressing' && c.status === 'False') || (c.type === 'ReplicaFailure' && c.status === 'True'),
          ),
      );
      const cronJobStatuses: CronJobStatus[] = cronJobs.map((cronJob) => ({
        name: cronJob.metadata?.name ?? '',
        suspended: cronJob.spec?.suspend === true,
        suspendedByScheduler: cronJob.metadata?.annotations?.[ORIGINAL_SUSPEND] !== undefined,
        excluded: excluded(cronJob.metadata),
      }));
      return { namespace, phase: phaseOf(statuses, failed), workloads: statuses, cronJobs: cronJobStatuses } satisfies NamespaceStatus;
    },

    createSupportPod,

    listSupportPods: () => listSupportPodsIn(core, support.namespace, limit),
    listNamespaceNames: async () => (await createNamespaceLister(kubeConfig, limit)()).map((ns) => ns.name),

    async deleteSupportPod(name, uid) {
      validateSupportPodName(name);
      const { namespace } = support;
      try {
        // With its uid, only that pod: a newer pod of the same name (someone else's) is left alone.
        const body = uid ? { preconditions: { uid } } : undefined;
        await write(`delete support pod ${namespace}/${name}`, { namespace, name, uid }, () => core.deleteNamespacedPod({ namespace, name, body }));
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
        [SIZE_ANNOTATION]: size,
        [REQUESTED_BY_ANNOTATION]: requestedBy,
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
      securityContext: { runAsNonRoot: true, runAsUser: SUPPORT_POD_UID, runAsGroup: SUPPORT_POD_UID, seccompProfile: { type: 'RuntimeDefault' } },
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

export function phaseOf(workloads: WorkloadStatus[], failed: boolean): NamespacePhase {
  const counted = workloads.filter((w) => !w.excluded);
  const up = counted.filter((w) => w.desired > 0);
  if (up.length === 0) return 'stopped';
  const waiting = counted.some((w) => w.desired === 0 && w.savedReplicas !== undefined);
  if (failed || waiting) return 'degraded';
  return up.every((w) => w.ready >= w.desired) ? 'running' : 'starting';
}

function toSupportPod(pod: V1Pod): SupportPod {
  return {
    name: pod.metadata?.name ?? '',
    size: pod.metadata?.annotations?.[SIZE_ANNOTATION] ?? '',
    phase: pod.status?.phase ?? 'Pending',
    createdAt: pod.metadata?.creationTimestamp ? new Date(pod.metadata.creationTimestamp).toISOString() : null,
    createdBy: pod.metadata?.annotations?.[REQUESTED_BY_ANNOTATION] ?? null,
    ...(pod.metadata?.uid ? { uid: pod.metadata.uid } : {}),
  };
}

const isoOrNull = (value: Date | string | undefined): string | null => {
  if (value === undefined) return null;
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
};

/** A pod of the support namespace as `support list` shows it; annotations missing (a pod made by hand, or by an earlier version) are null. */
export function toSupportPodInCluster(pod: V1Pod): SupportPodInCluster {
  const metadata = pod.metadata ?? {};
  const annotations = metadata.annotations ?? {};
  const deadline = pod.spec?.activeDeadlineSeconds ?? null;
  const startedAt = isoOrNull(pod.status?.startTime) ?? isoOrNull(metadata.creationTimestamp);
  return {
    name: metadata.name ?? '',
    uid: metadata.uid ?? '',
    labelled: metadata.labels?.[SUPPORT_POD_LABEL] === 'true',
    size: annotations[SIZE_ANNOTATION] ?? null,
    createdBy: annotations[REQUESTED_BY_ANNOTATION] ?? null,
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
  const who = pod.createdBy ? `started by ${pod.createdBy}` : pod.labelled ? 'started by someone unrecorded' : 'not made by devenv-scheduler (no devenv-scheduler/support-pod label)';
  return `a pod ${who}${pod.createdAt ? ` at ${pod.createdAt}` : ''}${pod.size ? `, size ${pod.size}` : ''}`;
}

async function listSupportPodsIn(core: CoreV1Api, namespace: string, pageSize: number): Promise<SupportPodInCluster[]> {
  const pods: V1Pod[] = [];
  let token: string | undefined;
  try {
    do {
      // Every pod of the namespace, labelled or not: a name is taken by any of them.
      const page = await core.listNamespacedPod({ namespace, limit: pageSize, _continue: token });
      pods.push(...page.items);
      token = page.metadata?._continue || undefined;
    } while (token);
  } catch (error) {
    throw kubernetesFailure(`list support pods in ${namespace}`, error);
  }
  return pods.map(toSupportPodInCluster).sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The support namespace's pods for the API process and the CLI (`support list`, and the
 * check of a name before `support start`): a read, with the API's read-only identity.
 */
export function createSupportPodReader(kubeConfig: KubeConfig, namespace: string, pageSize = 500): () => Promise<SupportPodInCluster[]> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  return () => listSupportPodsIn(core, namespace, pageSize);
}

/**
 * The Slack channel a namespace asks for (annotation `devenv-scheduler/slack-channel`),
 * remembered for a minute: a warning burst across many namespaces costs one read each.
 * A namespace that cannot be read has no channel of its own, so its warnings still go
 * to the default channel rather than nowhere.
 */
export function createSlackChannelLookup(kubeConfig: KubeConfig, logger: Logger, cacheMs = 60_000): (namespace: string) => Promise<string | undefined> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const cache = new Map<string, { channel: string | undefined; until: number }>();
  return async (namespace) => {
    const cached = cache.get(namespace);
    if (cached && cached.until > Date.now()) return cached.channel;
    let channel: string | undefined;
    try {
      channel = (await core.readNamespace({ name: namespace })).metadata?.annotations?.[SLACK_CHANNEL]?.trim() || undefined;
    } catch (error) {
      logger.warn({ namespace, status: statusCode(error) }, 'could not read the namespace for its Slack channel; using the default channel');
    }
    cache.set(namespace, { channel, until: Date.now() + cacheMs });
    return channel;
  };
}

/** A namespace as enrolment sees it. */
export interface NamespaceInfo {
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Being deleted: its environment retires rather than starts. */
  terminating: boolean;
}

/** How a namespace is to terminate: being deleted (a deletionTimestamp, or phase Terminating). */
function terminating(ns: V1Namespace): boolean {
  return ns.status?.phase === 'Terminating' || ns.metadata?.deletionTimestamp !== undefined;
}

/** A namespace as the apiserver stores it, with its uid: the admission webhook checks that it is the one a review is about. */
export interface StoredNamespace extends NamespaceInfo {
  uid: string | undefined;
}

/**
 * Reads one namespace from the apiserver (the admission webhook, before it acts on a
 * review): undefined when there is none (404). Needs only `get` on namespaces, which the
 * API's ServiceAccount has. Any other failure is thrown.
 */
export function createNamespaceReader(kubeConfig: KubeConfig): (name: string) => Promise<StoredNamespace | undefined> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  return async (name) => {
    let ns: V1Namespace;
    try {
      ns = await core.readNamespace({ name });
    } catch (error) {
      if (statusCode(error) === 404) return undefined;
      throw error;
    }
    return { name, uid: ns.metadata?.uid, labels: ns.metadata?.labels ?? {}, annotations: ns.metadata?.annotations ?? {}, terminating: terminating(ns) };
  };
}

export type ClusterProbe = { reachable: true; server: string; version: string } | { reachable: false; server: string; reason: string };

/** Whether the kubeconfig's cluster answers at all (its `/version`, which every identity may read), within `timeoutMs`. */
export async function probeCluster(kubeConfig: KubeConfig, timeoutMs = 3000): Promise<ClusterProbe> {
  const server = kubeConfig.getCurrentCluster()?.server ?? '(no server)';
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  try {
    const version = await Promise.race([kubeConfig.makeApiClient(VersionApi).getCode(), timeout]);
    return { reachable: true, server, version: version.gitVersion };
  } catch (err) {
    const { code, message } = err as { code?: string; message?: string };
    return { reachable: false, server, reason: code ?? message ?? String(err) };
  } finally {
    clearTimeout(timer);
  }
}

/** Every namespace in the cluster, a page at a time (the reconciler compares them with the running environments). */
export function createNamespaceLister(kubeConfig: KubeConfig, pageSize = 500): () => Promise<NamespaceInfo[]> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  return async () => {
    const namespaces: NamespaceInfo[] = [];
    let token: string | undefined;
    do {
      const page = await core.listNamespace({ limit: pageSize, _continue: token });
      for (const ns of page.items) {
        namespaces.push({
          name: ns.metadata?.name ?? '',
          labels: ns.metadata?.labels ?? {},
          annotations: ns.metadata?.annotations ?? {},
          terminating: terminating(ns),
        });
      }
      token = page.metadata?._continue || undefined;
    } while (token);
    return namespaces;
  };
}
