/**
 * Every kind a stop puts to sleep and a start wakes, in the order their steps are started
 * (and reported). A new kind is a file implementing WorkloadKind (or, scaled by
 * spec.replicas, a row of scaled-workloads.ts) and a line here, plus the RBAC and
 * admission-policy rules for what it writes. The GitOps kinds (GITOPS=hold) come with the
 * settings that say where their objects live.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { createArgoCdApplicationKind } from './argocd-applications';
import { createCronJobKind } from './cronjobs';
import { createFluxHelmReleaseKind } from './flux-helmreleases';
import { createFluxKustomizationKind } from './flux-kustomizations';
import { DEFAULT_GITOPS, type GitOpsSettings } from '../../domain/gitops';
import { createHpaKind } from './hpas';
import { createScaledObjectKind } from './scaled-objects';
import { createScaledWorkloadKinds } from './scaled-workloads';
import type { WorkloadKind } from './workload-kind';

export function createWorkloadKinds(kubeConfig: KubeConfig, gitops: GitOpsSettings = DEFAULT_GITOPS): WorkloadKind[] {
  const gitopsKinds = [
    ...(gitops.argocdNamespaces.length ? [createArgoCdApplicationKind(kubeConfig, gitops.argocdNamespaces)] : []),
    createFluxKustomizationKind(kubeConfig, gitops.fluxNamespaces),
    createFluxHelmReleaseKind(kubeConfig, gitops.fluxNamespaces),
  ];
  // GITOPS=off after a stop that held them: a start still hands back what carries the
  // service's marker, or it would stay held for good; nothing new is held.
  const held =
    gitops.mode === 'hold' ? gitopsKinds : gitopsKinds.map(({ awake: _awake, ...kind }) => ({ ...kind, sleep: async () => ({}) }));
  return [
    ...createScaledWorkloadKinds(kubeConfig),
    createCronJobKind(kubeConfig),
    createHpaKind(kubeConfig),
    createScaledObjectKind(kubeConfig),
    ...held,
  ];
}
