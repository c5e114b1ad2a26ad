/**
 * A start's wait for its databases, for namespaces annotated
 * `devenv-scheduler/wait-for-databases`: the RDS DB instances and Aurora clusters its AWS half
 * started (or found starting or up) are described by id every few seconds until each is
 * `available` or the wait's deadline passes. It heartbeats, and ends at once when cancelled.
 */
import { asyncLocalStorage } from '@temporalio/activity';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DatabaseWait } from '../contracts';
import { resourceKey, type ResourceLister } from './resources';

/** RDS takes minutes to start a database: a look every few seconds is plenty. */
const POLL_MS = 10_000;

export interface DatabaseWaitSettings {
  /** From the wait's `since` until it gives up (START_READY_TIMEOUT_SECONDS); 0: one look, no wait. */
  timeoutMs: number;
  /** Between looks; tests make it short. */
  pollMs?: number;
}

export function createDatabaseWait(
  settings: DatabaseWaitSettings,
  lister: Pick<ResourceLister, 'describe'>,
): (namespace: string, wait: DatabaseWait) => Promise<DatabaseWait> {
  const pollMs = settings.pollMs ?? POLL_MS;
  return async (_namespace, wait) => {
    const context = asyncLocalStorage.getStore();
    const since = Date.parse(wait.since);
    const deadline = since + settings.timeoutMs;
    const refs = wait.databases.map((d) => ({ ...d, resource: resourceKey(d) }));
    for (;;) {
      const { found, gone } = await lister.describe(refs);
      const state = new Map(found.map((f) => [resourceKey(f), f.state]));
      const notAvailable = refs
        .filter((ref) => state.get(ref.resource) !== 'available')
        .map(({ resource, ...ref }) => ({ ...ref, state: gone.some((g) => g.resource === resource) ? 'gone' : state.get(resource)! }));
      const now = Date.now();
      if (notAvailable.length === 0) return { ...wait, durationMs: now - since };
      if (now >= deadline) return { ...wait, durationMs: now - since, notAvailable };
      // Also called outside an activity (tests): there is no one to heartbeat to.
      context?.heartbeat({ waitingFor: notAvailable.slice(0, 10).map((d) => `${d.kind} ${d.id} (${d.state})`), of: notAvailable.length });
      await sleep(Math.max(0, Math.min(pollMs, deadline - now)), undefined, context ? { signal: context.cancellationSignal } : {});
    }
  };
}
