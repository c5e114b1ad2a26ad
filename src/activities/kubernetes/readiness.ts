/**
 * Waiting for what a start woke to be Ready: the kinds that can tell (WorkloadKind.ready)
 * are listed (a consistent read), less often the longer it waits, until every workload of the
 * groups waited for is Ready or the start's deadline passes. A workload deleted meanwhile
 * is nothing to wait for. The wait heartbeats and ends at once when its activity is cancelled.
 */
import { asyncLocalStorage } from '@temporalio/activity';
import type { V1ObjectMeta } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ReadinessGroup, StartReadiness } from '../contracts';
import { listKind, type WorkloadKind } from './workload-kind';

/**
 * When a wait lists the kinds it waits for again: first soon after the wake, then twice as
 * long after each look up to the longest interval. Hundreds of starts at one minute each
 * wait at once, and every look takes a turn of the writes' limit (KUBE_WORKER_CONCURRENCY):
 * a rollout that takes long is not worth a look every few seconds of each of them.
 */
const FIRST_LOOK_MS = 1000;
const LONGEST_LOOK_MS = 8000;

export type GroupsWait = (namespace: string, groups: ReadinessGroup[], deadline: number) => Promise<void>;

/**
 * Until every workload of `groups` is Ready or `deadline` (epoch ms) has passed; fills in
 * each group's durationMs when it is all Ready, and at the deadline what is still not.
 */
export function createGroupsWait(
  kinds: readonly WorkloadKind[],
  pageSize: number,
  read: <T>(request: () => Promise<T>) => Promise<T>,
): GroupsWait {
  const byName = new Map(kinds.map((kind) => [kind.kind, kind]));
  return async (namespace, groups, deadline) => {
    const context = asyncLocalStorage.getStore();
    for (let interval = FIRST_LOOK_MS; ; interval = Math.min(interval * 2, LONGEST_LOOK_MS)) {
      const waiting = groups.filter((group) => group.durationMs === undefined);
      if (waiting.length === 0) return;
      const fresh = new Map<string, { metadata?: V1ObjectMeta }>();
      const kindsWaitedFor = new Set(waiting.flatMap((group) => group.workloads.map((w) => w.kind)));
      for (const name of kindsWaitedFor) {
        const kind = byName.get(name);
        if (!kind?.ready) continue;
        // A consistent read, not the watch cache: a cached copy from before the start's own
        // patches (0 of 0 desired, generation observed) would pass as Ready.
        for (const object of await read(() => listKind(kind, namespace, pageSize))) fresh.set(`${name}/${object.metadata?.name}`, object);
      }
      const now = Date.now();
      const pending: string[] = [];
      for (const group of waiting) {
        const states = group.workloads.map((w) => {
          const object = fresh.get(`${w.kind}/${w.name}`);
          const state = object ? byName.get(w.kind)?.ready?.(object) : undefined;
          return { ...w, state };
        });
        const notReady = states.filter((s) => s.state && !s.state.ready);
        if (notReady.length === 0) {
          group.durationMs = now - Date.parse(group.wokenAt);
        } else if (now >= deadline) {
          group.durationMs = now - Date.parse(group.wokenAt);
          group.notReady = notReady.map(({ kind, name, state }) => ({ kind, name, ...(state?.message ? { message: state.message } : {}) }));
        } else {
          pending.push(...notReady.map((s) => `${s.kind}/${s.name}`));
        }
      }
      if (pending.length === 0) continue;
      // Also called outside an activity (scripts, tests): there is no one to heartbeat to.
      context?.heartbeat({ waitingForReady: pending.slice(0, 10), of: pending.length });
      await sleep(Math.max(0, Math.min(interval, deadline - Date.now())), undefined, context ? { signal: context.cancellationSignal } : {});
    }
  };
}

/** The awaitReady activity: the groups a start left to be waited for, filled in, and how long the whole start took to be Ready. */
export function createAwaitReady(waitForGroups: GroupsWait): (namespace: string, readiness: StartReadiness) => Promise<StartReadiness> {
  return async (namespace, readiness) => {
    const groups = readiness.groups.map((group) => ({ ...group }));
    await waitForGroups(namespace, groups, Date.parse(readiness.deadline));
    return { ...readiness, groups, durationMs: Date.now() - Date.parse(readiness.since) };
  };
}
