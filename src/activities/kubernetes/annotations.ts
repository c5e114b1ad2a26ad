/**
 * What the service leaves on objects in the cluster, and how it reads it back: the one
 * place that knows the `devenv-scheduler/` label and annotation keys and the format of
 * their values. A stop's saved state lives only here, on the objects themselves, so a
 * worker that restarts (or another version of it) finds what the last stop saved.
 */
import type { V1ObjectMeta } from '@kubernetes/client-node';

/** `true` on a workload, CronJob, HPA or ScaledObject: stops and starts leave it as it is. */
export const EXCLUDE = 'devenv-scheduler/exclude';
/** A Deployment's, StatefulSet's or Argo Rollout's replica count before the stop scaled it to 0. */
export const ORIGINAL_REPLICAS = 'devenv-scheduler/original-replicas';
/** A CronJob's `spec.suspend` before the stop suspended it. */
export const ORIGINAL_SUSPEND = 'devenv-scheduler/original-suspend';
/** An HPA's minReplicas before the stop raised it from 0 to 1. */
export const ORIGINAL_MIN_REPLICAS = 'devenv-scheduler/original-min-replicas';
/** `true` on a KEDA ScaledObject the stop paused: only such a pause is lifted by the start. */
export const KEDA_PAUSED_BY_STOP = 'devenv-scheduler/keda-paused';
/** KEDA's own: scale the target to this count and stop autoscaling it. */
export const KEDA_PAUSED_REPLICAS = 'autoscaling.keda.sh/paused-replicas';
/** KEDA's own: stop autoscaling the target at its current count. */
export const KEDA_PAUSED = 'autoscaling.keda.sh/paused';
/**
 * A whole number on a workload: its group in a start's wake order (wake-order.ts). Lower
 * groups wake first; without it a workload is in its kind's default group.
 */
export const WAKE_ORDER = 'devenv-scheduler/wake-order';
/** An Argo CD Application's `spec.syncPolicy.automated` (JSON) before the stop removed it. */
export const ORIGINAL_AUTOMATED_SYNC = 'devenv-scheduler/original-automated-sync';

/** `true` on every support pod (a label: `support list` tells them from pods made by hand). */
export const SUPPORT_POD_LABEL = 'devenv-scheduler/support-pod';
export const SUPPORT_POD_SIZE_ANNOTATION = 'devenv-scheduler/size';
export const SUPPORT_POD_REQUESTED_BY_ANNOTATION = 'devenv-scheduler/requested-by';
/** The workflow run that created a support pod: only that run's retries adopt it. */
export const SUPPORT_POD_RUN_ANNOTATION = 'devenv-scheduler/workflow-run-id';
/** When the support pod's workflow deletes it. */
export const SUPPORT_POD_EXPIRES_ANNOTATION = 'devenv-scheduler/expires-at';

export const isExcluded = (metadata: V1ObjectMeta | undefined): boolean => metadata?.annotations?.[EXCLUDE] === 'true';

/** Annotation values of a patch: a string sets one, null removes it. */
export type AnnotationPatch = Record<string, string | null>;

/** A count a stop saves in an annotation and the next start restores. */
export interface SavedCount {
  key: string;
  /** The saved count, or undefined when there is none; a value that is not a count is reported, not guessed. */
  read(metadata: V1ObjectMeta | undefined): number | undefined | 'invalid';
  save(count: number): AnnotationPatch;
  clear(): AnnotationPatch;
}

function savedCount(key: string): SavedCount {
  return {
    key,
    read(metadata) {
      const value = metadata?.annotations?.[key];
      if (value === undefined) return undefined;
      return /^\d+$/.test(value) ? Number(value) : 'invalid';
    },
    save: (count) => ({ [key]: String(count) }),
    clear: () => ({ [key]: null }),
  };
}

export const savedReplicas = savedCount(ORIGINAL_REPLICAS);
export const savedMinReplicas = savedCount(ORIGINAL_MIN_REPLICAS);

/** A CronJob's suspension before the stop: only one the stop suspended is resumed by the start. */
export const savedSuspend = {
  key: ORIGINAL_SUSPEND,
  /** Whether it was suspended before the stop; undefined when the stop saved nothing. */
  read(metadata: V1ObjectMeta | undefined): boolean | undefined {
    const value = metadata?.annotations?.[ORIGINAL_SUSPEND];
    return value === undefined ? undefined : value !== 'false';
  },
  save: (suspended: boolean): AnnotationPatch => ({ [ORIGINAL_SUSPEND]: String(suspended) }),
  clear: (): AnnotationPatch => ({ [ORIGINAL_SUSPEND]: null }),
};

/**
 * A ScaledObject's pause, as the stop sets it: KEDA's paused-replicas at 0 and the marker
 * that the service set it, written and removed together. A pause a person set (either of
 * KEDA's annotations, without the marker) is theirs: a stop leaves the object alone and a
 * start never lifts it.
 */
export const kedaPause = {
  /** Paused by anyone: either annotation present, whatever its value, as KEDA's own HasPausedAnnotation reads it. */
  paused: (metadata: V1ObjectMeta | undefined): boolean =>
    metadata?.annotations?.[KEDA_PAUSED_REPLICAS] !== undefined || metadata?.annotations?.[KEDA_PAUSED] !== undefined,
  ours: (metadata: V1ObjectMeta | undefined): boolean => metadata?.annotations?.[KEDA_PAUSED_BY_STOP] === 'true',
  save: (): AnnotationPatch => ({ [KEDA_PAUSED_REPLICAS]: '0', [KEDA_PAUSED_BY_STOP]: 'true' }),
  clear: (): AnnotationPatch => ({ [KEDA_PAUSED_REPLICAS]: null, [KEDA_PAUSED_BY_STOP]: null }),
};
/** A workload's wake-order group: undefined when it has none, 'invalid' for a value that is not a whole number. */
export function readWakeOrder(metadata: V1ObjectMeta | undefined): number | undefined | 'invalid' {
  const value = metadata?.annotations?.[WAKE_ORDER];
  if (value === undefined) return undefined;
  return /^-?\d{1,6}$/.test(value.trim()) ? Number(value.trim()) : 'invalid';
}
/** An Application's automated sync before the stop: only one the stop removed is put back by the start. */
export const savedAutomatedSync = {
  key: ORIGINAL_AUTOMATED_SYNC,
  /** The saved `automated`, or undefined when the stop saved nothing; a value that is not a JSON object is reported, not guessed. */
  read(metadata: V1ObjectMeta | undefined): Record<string, unknown> | undefined | 'invalid' {
    const value = metadata?.annotations?.[ORIGINAL_AUTOMATED_SYNC];
    if (value === undefined) return undefined;
    try {
      const parsed = JSON.parse(value) as unknown;
      return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : 'invalid';
    } catch {
      return 'invalid';
    }
  },
  save: (automated: Record<string, unknown>): AnnotationPatch => ({ [ORIGINAL_AUTOMATED_SYNC]: JSON.stringify(automated) }),
  clear: (): AnnotationPatch => ({ [ORIGINAL_AUTOMATED_SYNC]: null }),
};
