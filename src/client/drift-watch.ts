/**
 * The drift re-check's "at once": a watch on the cluster's Deployments and StatefulSets
 * (one stream per kind, served from the apiserver's watch cache) that signals a stopped
 * environment as soon as a workload its stop put to sleep runs again, so the look comes
 * within seconds instead of at the next DRIFT_CHECK_INTERVAL. What a stop put to sleep is
 * recognised by the count it saved, still on the object; a workload created while stopped
 * carries none and is found by the timed look.
 *
 * A hint and nothing more: the workflow decides (driftSuspected is ignored unless it is
 * stopped, and never looks sooner than DRIFT_MIN_GAP_MS after its last look), so a lost
 * event, a second worker watching too or a restart costs at most an interval. A watch that
 * fails (the apiserver down, refusing, or gone from under it) is begun again later and later,
 * up to a bound, and never takes the worker down with it.
 */
import { AppsV1Api, Watch, type KubeConfig, type V1ObjectMeta } from '@kubernetes/client-node';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { isExcluded, ORIGINAL_REPLICAS } from '../activities/kubernetes/annotations';
import type { Logger } from '../logger';
import { driftSuspectedSignal, environmentWorkflowId } from '../workflows';

export interface DriftWatchOptions {
  kubeConfig: KubeConfig;
  client: Client;
  /** CLUSTER_NAME: whose environments' workflow ids to signal. */
  cluster?: string;
  logger: Logger;
  /** A namespace is signalled at most this often, however many of its workloads change. */
  minGapMs?: number;
  /** After a watch ends in an error, it is begun again this much later, twice as late after each further one. */
  retryMs?: number;
  /** The most the wait before a watch is begun again grows to. */
  maxRetryMs?: number;
  /** How long the apiserver keeps a watch open before it ends it; absent: the apiserver's own choice. */
  timeoutSeconds?: number;
}

export interface DriftWatch {
  stop(): void;
}

interface Watched {
  metadata?: V1ObjectMeta;
  spec?: { replicas?: number };
}

/** Put to sleep by a stop (its saved count still on it) and running again. */
export function wokeBehindStop(object: Watched): boolean {
  return (
    object.metadata?.annotations?.[ORIGINAL_REPLICAS] !== undefined && (object.spec?.replicas ?? 1) > 0 && !isExcluded(object.metadata)
  );
}

export function startDriftWatch({
  kubeConfig,
  client,
  cluster,
  logger,
  minGapMs = 10_000,
  retryMs = 5_000,
  maxRetryMs = 5 * 60_000,
  timeoutSeconds,
}: DriftWatchOptions): DriftWatch {
  const log = logger.child({ system: 'drift-watch' });
  const apps = kubeConfig.makeApiClient(AppsV1Api);
  const watch = new Watch(kubeConfig);
  const signalledAt = new Map<string, number>();
  const aborts = new Set<AbortController>();
  let stopped = false;

  function suspect(namespace: string): void {
    const last = signalledAt.get(namespace) ?? 0;
    if (Date.now() - last < minGapMs) return;
    signalledAt.set(namespace, Date.now());
    Promise.resolve()
      .then(() => client.workflow.getHandle(environmentWorkflowId(namespace, cluster)).signal(driftSuspectedSignal, { by: 'watch' }))
      .then(() => log.debug({ namespace }, 'a stopped workload runs again: the environment looks at once'))
      .catch((err: unknown) => {
        if (err instanceof WorkflowNotFoundError) return; // not an environment (any more)
        log.warn({ namespace, error: String(err) }, 'could not tell the environment of a woken workload; its timed look will find it');
      });
  }

  const kinds = [
    { plural: 'deployments', latest: async () => (await apps.listDeploymentForAllNamespaces({ limit: 1 })).metadata?.resourceVersion },
    { plural: 'statefulsets', latest: async () => (await apps.listStatefulSetForAllNamespaces({ limit: 1 })).metadata?.resourceVersion },
  ];

  async function follow({ plural, latest }: (typeof kinds)[number]): Promise<void> {
    // From the list's version, so what existed before the watch began is not replayed as new.
    let resourceVersion: string | undefined;
    /** Watches in a row that ended in an error, or at once with nothing said: each waits twice as long before the next. */
    let failures = 0;
    while (!stopped) {
      let heard = false;
      let error: unknown;
      const begun = Date.now();
      try {
        resourceVersion ??= await latest();
        let abort: AbortController | undefined;
        error = await new Promise<unknown>((resolve) => {
          watch
            .watch(
              `/apis/apps/v1/${plural}`,
              { resourceVersion, allowWatchBookmarks: true, ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}) },
              (phase, object: Watched) => {
                if (phase === 'ERROR') {
                  resourceVersion = undefined; // 410 Gone: too old to resume from; list again
                  return;
                }
                heard = true;
                resourceVersion = object.metadata?.resourceVersion ?? resourceVersion;
                if (phase === 'MODIFIED' && wokeBehindStop(object) && object.metadata?.namespace) suspect(object.metadata.namespace);
              },
              resolve,
            )
            .then((started) => {
              abort = started;
              aborts.add(started);
              if (stopped) started.abort();
            }, resolve);
        });
        if (abort) aborts.delete(abort);
        // Refused outright as too old a version to resume from: begun again from a new list.
        if ((error as { statusCode?: number } | null)?.statusCode === 410) resourceVersion = undefined;
      } catch (err) {
        error = err ?? new Error('the watch could not be begun');
      }
      if (stopped) break;
      // The apiserver ends every watch after a while: one that said something or lasted was
      // healthy, and is begun again at once. One that failed, or ended at once with nothing
      // said (a proxy closing it, say), waits before the next, longer each time, so a broken
      // apiserver is not asked again and again.
      if (!error && (heard || Date.now() - begun >= retryMs)) {
        failures = 0;
        log.debug({ kind: plural }, 'the apiserver ended the watch; begun again');
        continue;
      }
      failures++;
      const waitMs = Math.min(maxRetryMs, retryMs * 2 ** Math.min(failures - 1, 30));
      log.warn(
        { kind: plural, error: String(error ?? 'ended with nothing said'), retryInMs: waitMs },
        'the watch ended; begun again later',
      );
      await new Promise((resolve) => setTimeout(resolve, waitMs).unref());
    }
  }

  for (const kind of kinds) {
    follow(kind).catch((err: unknown) =>
      log.error({ kind: kind.plural, error: String(err) }, 'the watch stopped; drift is found by the timed looks only'),
    );
  }
  return {
    stop() {
      stopped = true;
      for (const abort of aborts) abort.abort();
    },
  };
}
