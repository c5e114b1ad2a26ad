/** Flux HelmReleases (helm-controller), suspended while the environment sleeps (flux-suspend.ts). */
import type { KubeConfig } from '@kubernetes/client-node';
import { createFluxKind } from './flux-suspend';
import type { CustomObject } from './gitops';
import type { WorkloadKind } from './workload-kind';

export const createFluxHelmReleaseKind = (kubeConfig: KubeConfig, fluxNamespaces: string[]): WorkloadKind<CustomObject> =>
  createFluxKind(
    kubeConfig,
    { group: 'helm.toolkit.fluxcd.io', version: 'v2', plural: 'helmreleases', kind: 'HelmRelease' },
    fluxNamespaces,
  );
