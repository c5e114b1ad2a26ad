/**
 * The drift re-check of a stopped namespace: what woke since the stop (a GitOps controller's
 * self-heal, an autoscaler, a CI deploy, `kubectl scale`), who did it, and, with DRIFT=restop,
 * back to sleep with it the way a stop does it (workload-kind.ts), so the count it was woken
 * to is what the next start restores.
 *
 * Cheap by design, as a thousand stopped environments look every few minutes: one list per
 * workload kind, served from the apiserver's watch cache (resourceVersion 0, no etcd read),
 * and writes only for what is awake, each on a fresh read behind its resourceVersion.
 */
import { CoreV1Api, type KubeConfig, type V1ObjectMeta } from '@kubernetes/client-node';
import { asyncLocalStorage } from '@temporalio/activity';
import type { DriftMode, DriftedWorkload, KubernetesActivities } from '../contracts';
import { isExcluded } from './annotations';
import type { Write } from './apiserver';
import type { GitOpsSettings } from '../../domain/gitops';
import { createWorkloadKinds } from './kinds';
import { ensureNamespace } from './namespaces';
import { listKind, type Awake, type WorkloadKind } from './workload-kind';

export interface DriftSettings {
  /** DRIFT: restop (default), report, off. */
  mode: DriftMode;
  /** DRIFT_CHECK_INTERVAL: how often a stopped environment looks. */
  intervalMs: number;
}

export const DEFAULT_DRIFT: DriftSettings = { mode: 'restop', intervalMs: 5 * 60_000 };

interface Found {
  kind: WorkloadKind;
  object: { metadata?: V1ObjectMeta };
  awake: Awake;
}

export function createDriftCheck(
  kubeConfig: KubeConfig,
  { write, pageSize, drift, gitops }: { write: Write; pageSize: number; drift: DriftSettings; gitops?: GitOpsSettings },
): Pick<KubernetesActivities, 'checkDrift'> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const kinds = createWorkloadKinds(kubeConfig, gitops).filter((kind) => kind.awake);
  const workloadKinds = kinds.filter((kind) => kind.stage !== 'guard');
  const guardKinds = kinds.filter((kind) => kind.stage === 'guard');

  async function list(of: WorkloadKind[], namespace: string): Promise<{ kind: WorkloadKind; object: { metadata?: V1ObjectMeta } }[]> {
    const lists = await Promise.all(
      of.map(async (kind) => (await listKind(kind, namespace, pageSize, { resourceVersion: '0' })).map((object) => ({ kind, object }))),
    );
    return lists.flat();
  }

  function awakeOf(listed: { kind: WorkloadKind; object: { metadata?: V1ObjectMeta } }[]): Found[] {
    const excluded = new Set(
      listed.filter(({ object }) => isExcluded(object.metadata)).map(({ kind, object }) => `${kind.kind}/${object.metadata?.name}`),
    );
    return listed.flatMap(({ kind, object }) => {
      if (!(kind.managed?.(object, excluded) ?? true)) return [];
      const found = kind.awake!(object);
      return found ? [{ kind, object, awake: found }] : [];
    });
  }

  /**
   * A guard undone (an HPA back at minReplicas 0, a ScaledObject no longer paused, an Argo CD
   * Application syncing automatically again, a Flux object resumed) wakes nothing by itself,
   * only what it guards can: guards are listed once a workload is awake,
   * and put back with it, so a quiet look costs one list per workload kind alone.
   */
  async function awake(namespace: string): Promise<Found[]> {
    const workloads = await list(workloadKinds, namespace);
    if (awakeOf(workloads).length === 0) return [];
    return awakeOf([...workloads, ...(await list(guardKinds, namespace))]);
  }

  return {
    async checkDrift(namespace, { restop }) {
      const report = (workloads: DriftedWorkload[]) => ({ namespace, mode: drift.mode, intervalMs: drift.intervalMs, awake: workloads });
      if (drift.mode === 'off') return report([]);
      let found = await awake(namespace);
      if (found.length === 0) return report([]);
      // Only once something is awake: a namespace deleted meanwhile fails as a stop's would.
      if (restop && drift.mode === 'restop') await ensureNamespace(core, namespace);
      const workloads: DriftedWorkload[] = [];
      // Guards first, as a stop does: nothing may wake a workload again while it is put to sleep.
      found = [...found.filter((f) => f.kind.stage === 'guard'), ...found.filter((f) => f.kind.stage !== 'guard')];
      // A look whose attempt timed out or was cancelled writes nothing more: the lock it ran
      // under is released by then, and a start that follows must not be undone behind its back.
      const context = asyncLocalStorage.getStore();
      for (const [index, { kind, object, awake: seen }] of found.entries()) {
        if (context?.cancellationSignal.aborted) throw context.cancellationSignal.reason;
        const change = restop && drift.mode === 'restop' ? (await kind.sleep(object, { namespace, write })).change : undefined;
        const restopped = change !== undefined;
        context?.heartbeat({ done: index + 1, total: found.length });
        // Asleep again on the fresh read the write is made from (re-stopped by a look just before): nothing woke.
        if (restop && drift.mode === 'restop' && !restopped) continue;
        workloads.push({
          kind: kind.kind,
          name: object.metadata?.name ?? '',
          ...seen,
          restopped,
          ...(change?.requests ? { requests: change.requests } : {}),
        });
      }
      return report(workloads);
    },
  };
}
