/**
 * The words for workloads that woke while their environment was stopped, shared by the
 * channel's message and the namespace's Kubernetes Event so both tell the same story.
 */

/** A workload found awake (the activities' Woken, as far as the words need it). */
interface Woken {
  kind: string;
  name: string;
  replicas: number;
  created: boolean;
  by?: string;
}

/** Kinds that wake by being resumed, not scaled: a count means nothing for them. */
const RESUMED = new Set(['CronJob', 'Kustomization', 'HelmRelease']);

/** "Deployment api to 3 (by kubectl)" or "Deployment web (created, 1) (by argocd-controller)". */
export function describeWoken(w: Woken): string {
  const what = RESUMED.has(w.kind)
    ? `${w.kind} ${w.name} resumed`
    : w.kind === 'Application'
      ? `Application ${w.name} set to sync automatically again`
      : `${w.kind} ${w.name} ${w.created ? `created at ${w.replicas}` : `scaled to ${w.replicas}`}`;
  return `${what} by ${w.by ?? 'an unknown manager'}`;
}

/** One sentence: what woke, who did it, and what the environment did about it. */
export function describeDrift(mode: 'restop' | 'report', workloads: Woken[]): string {
  const listed = workloads.map(describeWoken).join('; ');
  const done = mode === 'restop' ? 'Put back to sleep; the next start restores the count each was woken to' : 'Left awake (DRIFT=report)';
  return `woke while stopped: ${listed}. ${done}`;
}
