/**
 * How a namespace's workloads look right now, for `status` in Slack, REST and the CLI: a
 * read with the API's identity, of the kinds that describe themselves (WorkloadKind.describe).
 */
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { CronJobStatus, NamespacePhase, NamespaceStatus, WorkloadStatus } from '../contracts';
import { createWorkloadKinds } from './kinds';
import { ensureNamespace } from './namespaces';
import { listKind, type StatusEntry } from './workload-kind';

function phaseOf(workloads: WorkloadStatus[], failed: boolean): NamespacePhase {
  const counted = workloads.filter((w) => !w.excluded);
  const up = counted.filter((w) => w.desired > 0);
  if (up.length === 0) return 'stopped';
  const waiting = counted.some((w) => w.desired === 0 && w.savedReplicas !== undefined);
  if (failed || waiting) return 'degraded';
  return up.every((w) => w.ready >= w.desired) ? 'running' : 'starting';
}

/** The namespace's status; fails for good (NamespaceNotFound) when there is no such namespace. */
export function createNamespaceStatusReader(kubeConfig: KubeConfig, pageSize = 500): (namespace: string) => Promise<NamespaceStatus> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const shown = createWorkloadKinds(kubeConfig).filter((kind) => kind.describe);
  return async (namespace) => {
    await ensureNamespace(core, namespace);
    const lists = await Promise.all(
      shown.map(async (kind) => (await listKind(kind, namespace, pageSize)).flatMap((object) => kind.describe?.(object) ?? [])),
    );
    const entries: StatusEntry[] = lists.flat();
    const workloads: WorkloadStatus[] = entries.flatMap((entry) => ('workload' in entry ? [entry.workload] : []));
    const cronJobs: CronJobStatus[] = entries.flatMap((entry) => ('cronJob' in entry ? [entry.cronJob] : []));
    const failed = entries.some((entry) => 'workload' in entry && entry.failing);
    return { namespace, phase: phaseOf(workloads, failed), workloads, cronJobs };
  };
}
