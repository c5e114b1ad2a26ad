/**
 * What the service leaves on objects in the cluster, and how it reads it back: the one
 * place that knows the `devenv-scheduler/` label and annotation keys and the format of
 * their values. A stop's saved state lives only here, on the objects themselves, so a
 * worker that restarts (or another version of it) finds what the last stop saved.
 */
import type { V1ObjectMeta } from '@kubernetes/client-node';

/** `true` on a workload, CronJob or HPA: stops and starts leave it as it is. */
export const EXCLUDE = 'devenv-scheduler/exclude';
/** A Deployment's or StatefulSet's replica count before the stop scaled it to 0. */
export const ORIGINAL_REPLICAS = 'devenv-scheduler/original-replicas';
/** A CronJob's `spec.suspend` before the stop suspended it. */
export const ORIGINAL_SUSPEND = 'devenv-scheduler/original-suspend';
/** An HPA's minReplicas before the stop raised it from 0 to 1. */
export const ORIGINAL_MIN_REPLICAS = 'devenv-scheduler/original-min-replicas';
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
