/**
 * The Kubernetes activities the worker registers: what the workflows call (stop and start
 * a namespace, create and delete support pods, list namespace names). The reads the API
 * and the CLI make (namespace status, the support pods) are plain adapters beside them
 * (namespace-status.ts, support-pods.ts), not activities.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import pLimit from 'p-limit';
import type { Logger } from '../../logger';
import type { KubernetesActivities } from '../contracts';
import { createWriter } from './apiserver';
import type { GitOpsSettings } from '../../domain/gitops';
import { createDriftCheck, DEFAULT_DRIFT, type DriftSettings } from './drift';
import { createNamespaceActions } from './namespace-actions';
import { createNamespaceLister } from './namespaces';
import { DEFAULT_SUPPORT_SIZES } from '../../domain/support-sizes';
import { createSupportPodActivities, type SupportPodSettings } from './support-pods';

export interface KubernetesSettings {
  kubeConfig: KubeConfig;
  /** Log every write and skip it (DRY_RUN). */
  dryRun: boolean;
  logger: Logger;
  /** Workloads changed at once in one namespace: a few keep a large namespace quick without flooding the apiserver (default 3). */
  concurrency?: number;
  /**
   * Workloads changed, and stop and start reads made, at once by this process across all
   * namespaces (default 50): when hundreds of environments stop at the same minute, the
   * apiserver sees this many requests from each worker, not thousands, and the stops queue
   * here instead of failing with 429s.
   */
  processConcurrency?: number;
  /** Objects per list page (default 500). */
  pageSize?: number;
  /**
   * How long a start waits for what it woke to be Ready (START_READY_TIMEOUT_SECONDS). Absent
   * or 0: it does not wait, as on an apiserver without controllers, where nothing ever is.
   */
  startReadyTimeoutMs?: number;
  support?: SupportPodSettings;
  /** DRIFT and DRIFT_CHECK_INTERVAL (default: restop every 5 minutes). */
  drift?: DriftSettings;
  /** GITOPS, ARGOCD_NAMESPACES and FLUX_NAMESPACES (default: hold Argo CD Applications in argocd and Flux objects in flux-system or the environment). */
  gitops?: GitOpsSettings;
}

export function createKubernetesActivities(settings: KubernetesSettings): KubernetesActivities {
  const { kubeConfig, dryRun, logger } = settings;
  const pageSize = settings.pageSize ?? 500;
  const write = createWriter({ dryRun, logger });
  const support = settings.support ?? { namespace: 'devenv-support', image: 'debian:bookworm-slim', sizes: DEFAULT_SUPPORT_SIZES };
  const listNamespaces = createNamespaceLister(kubeConfig, pageSize);
  return {
    ...createNamespaceActions({
      kubeConfig,
      write,
      dryRun,
      concurrency: settings.concurrency ?? 3,
      acrossNamespaces: pLimit(settings.processConcurrency ?? 50),
      pageSize,
      readyTimeoutMs: settings.startReadyTimeoutMs ?? 0,
      gitops: settings.gitops,
    }),
    // A DRY_RUN stop changes nothing, so every look would find the whole namespace "woken"
    // and announce a re-stop that never happened: there is no drift to look for.
    ...createDriftCheck(kubeConfig, {
      write,
      pageSize,
      drift: dryRun ? { ...(settings.drift ?? DEFAULT_DRIFT), mode: 'off' } : (settings.drift ?? DEFAULT_DRIFT),
      gitops: settings.gitops,
    }),
    ...createSupportPodActivities(kubeConfig, support, { write, logger }),
    listNamespaceNames: async () => (await listNamespaces()).map((ns) => ns.name),
  };
}
