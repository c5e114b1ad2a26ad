/** Flux Kustomizations (kustomize-controller), suspended while the environment sleeps (flux-suspend.ts). */
import type { KubeConfig } from '@kubernetes/client-node';
import { createFluxKind } from './flux-suspend';
import type { CustomObject } from './gitops';
import type { WorkloadKind } from './workload-kind';

export const createFluxKustomizationKind = (kubeConfig: KubeConfig, fluxNamespaces: string[]): WorkloadKind<CustomObject> =>
  createFluxKind(
    kubeConfig,
    { group: 'kustomize.toolkit.fluxcd.io', version: 'v1', plural: 'kustomizations', kind: 'Kustomization' },
    fluxNamespaces,
  );
