/**
 * The order a start wakes workloads in: groups in ascending order, each once the ones before
 * are Ready when it has something to wake. StatefulSets (databases, queues) default to a
 * group before Deployments, so the apps find what they connect to; the annotation
 * devenv-scheduler/wake-order (annotations.ts) puts a workload in a group of its own choosing.
 */
import type { V1ObjectMeta } from '@kubernetes/client-node';
import { readWakeOrder, WAKE_ORDER } from './annotations';

/** The group of a kind that declares none (WorkloadKind.wakeGroup). */
export const DEFAULT_WAKE_GROUP = 1;

export interface WakeCandidate {
  kind: string;
  metadata?: V1ObjectMeta;
  /** The kind's default group. */
  defaultGroup: number;
}

export interface WakePlan<T> {
  /** Ascending by `order`; none empty. */
  groups: { order: number; members: T[] }[];
  /** For a person: each annotation that is not a group, and the group its workload went to instead. */
  notes: string[];
}

/**
 * Groups the workloads of a start. An invalid annotation falls back to the kind's default
 * group rather than leaving the workload asleep: a typo must not keep an app down, and the
 * default is the order it would have had without the annotation.
 */
export function planWakeOrder<T>(items: readonly T[], of: (item: T) => WakeCandidate): WakePlan<T> {
  const byOrder = new Map<number, T[]>();
  const notes: string[] = [];
  for (const item of items) {
    const candidate = of(item);
    const annotated = readWakeOrder(candidate.metadata);
    if (annotated === 'invalid') {
      notes.push(
        `${candidate.kind} ${candidate.metadata?.name}: ${WAKE_ORDER} "${candidate.metadata?.annotations?.[WAKE_ORDER]}" is not a whole number; woken in its default group ${candidate.defaultGroup}`,
      );
    }
    const order = typeof annotated === 'number' ? annotated : candidate.defaultGroup;
    byOrder.set(order, [...(byOrder.get(order) ?? []), item]);
  }
  const groups = [...byOrder.entries()].sort(([a], [b]) => a - b).map(([order, members]) => ({ order, members }));
  return { groups, notes };
}

/**
 * Whether a start waits for group `index` to be Ready before it wakes the next: only when a
 * later group has something to wake. The last groups' readiness is waited for after the
 * start, outside the environment's lock (awaitReady), so nothing queues behind it.
 */
export function waitsAfter<T>(
  groups: readonly { members: readonly T[] }[],
  index: number,
  hasSomethingToWake: (item: T) => boolean,
): boolean {
  return groups.slice(index + 1).some((group) => group.members.some(hasSomethingToWake));
}
