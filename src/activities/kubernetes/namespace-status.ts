/**
 * How a namespace's workloads look right now, for `status` in Slack, REST and the CLI: a
 * read with the API's identity, of the kinds that describe themselves (WorkloadKind.describe).
 * Running means what a start waits for (WorkloadKind.ready): every replica updated and
 * Ready as its controller reports it, not only as many Ready pods as desired.
 */
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { CronJobStatus, NamespacePhase, NamespaceStatus, WorkloadStatus } from '../contracts';
import { createWorkloadKinds } from './kinds';
import { ensureNamespace } from './namespaces';
import { listKind, type StatusEntry } from './workload-kind';

/** A workload as status counts it: what its kind describes, and whether its kind calls it Ready (undefined: a kind that cannot tell). */
interface Seen {
  workload: WorkloadStatus;
  ready?: boolean;
}

function phaseOf(seen: Seen[], failed: boolean): NamespacePhase {
  const counted = seen.filter(({ workload }) => !workload.excluded);
  const up = counted.filter(({ workload }) => workload.desired > 0);
  if (up.length === 0) return 'stopped';
  const waiting = counted.some(({ workload }) => workload.desired === 0 && workload.savedReplicas !== undefined);
  if (failed || waiting) return 'degraded';
  return up.every(({ workload, ready }) => ready ?? workload.ready >= workload.desired) ? 'running' : 'starting';
}

/** The namespace's status; fails for good (NamespaceNotFound) when there is no such namespace. */
export function createNamespaceStatusReader(kubeConfig: KubeConfig, pageSize = 500): (namespace: string) => Promise<NamespaceStatus> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const shown = createWorkloadKinds(kubeConfig).filter((kind) => kind.describe);
  return async (namespace) => {
    await ensureNamespace(core, namespace);
    const lists = await Promise.all(
      shown.map(async (kind) =>
        (await listKind(kind, namespace, pageSize)).flatMap((object) => {
          const entry = kind.describe?.(object);
          if (!entry) return [];
          const state = kind.ready?.(object);
          if (state && !state.ready && 'workload' in entry && entry.workload.desired > 0) {
            return [{ entry: { ...entry, workload: { ...entry.workload, notReady: state.message ?? 'not Ready' } }, ready: false }];
          }
          return [{ entry, ready: state?.ready }];
        }),
      ),
    );
    const described: { entry: StatusEntry; ready?: boolean }[] = lists.flat();
    const seen: Seen[] = described.flatMap(({ entry, ready }) => ('workload' in entry ? [{ workload: entry.workload, ready }] : []));
    const cronJobs: CronJobStatus[] = described.flatMap(({ entry }) => ('cronJob' in entry ? [entry.cronJob] : []));
    const failed = described.some(({ entry }) => 'workload' in entry && entry.failing);
    return { namespace, phase: phaseOf(seen, failed), workloads: seen.map((s) => s.workload), cronJobs };
  };
}
