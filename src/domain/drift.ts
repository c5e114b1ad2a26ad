/**
 * The words for workloads that woke while their environment was stopped, shared by the
 * channel's message and the namespace's Kubernetes Event so both tell the same story.
 *
 * Who woke one is the field manager its change was written under (managedFields), a name
 * any client with write access picks for itself: it is called a field manager, never a user,
 * and the channel shows it as code, so a name like a link or markup stays a name.
 */

/** A workload found awake (the activities' Woken, as far as the words need it). */
interface Woken {
  kind: string;
  name: string;
  replicas: number;
  created: boolean;
  by?: string;
}

/** "Deployment api scaled to 3", "Deployment web created at 1", "CronJob report resumed". */
export function whatWoke(w: Woken): string {
  if (w.kind === 'CronJob') return `CronJob ${w.name} resumed`;
  return `${w.kind} ${w.name} ${w.created ? `created at ${w.replicas}` : `scaled to ${w.replicas}`}`;
}

/** When no field manager but the service's own set the field. */
export const UNKNOWN_MANAGER = 'an unknown field manager';

/** What the environment did about it. */
export function driftDone(mode: 'restop' | 'report'): string {
  return mode === 'restop' ? 'Put back to sleep; the next start restores the count each was woken to' : 'Left awake (DRIFT=report)';
}

/** "Deployment api scaled to 3 by field manager kubectl". */
export function describeWoken(w: Woken): string {
  return `${whatWoke(w)} by ${w.by ? `field manager ${w.by}` : UNKNOWN_MANAGER}`;
}

/** One sentence: what woke, who did it, and what the environment did about it. */
export function describeDrift(mode: 'restop' | 'report', workloads: Woken[]): string {
  return `woke while stopped: ${workloads.map(describeWoken).join('; ')}. ${driftDone(mode)}`;
}
