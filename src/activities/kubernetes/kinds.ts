/**
 * Every kind a stop puts to sleep and a start wakes, in the order their steps are started
 * (and reported). A new kind is a file implementing WorkloadKind (or, scaled by
 * spec.replicas, a row of scaled-workloads.ts) and a line here, plus the RBAC and
 * admission-policy rules for what it writes.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { createCronJobKind } from './cronjobs';
import { createHpaKind } from './hpas';
import { createScaledObjectKind } from './scaled-objects';
import { createScaledWorkloadKinds } from './scaled-workloads';
import type { WorkloadKind } from './workload-kind';

export function createWorkloadKinds(kubeConfig: KubeConfig): WorkloadKind[] {
  return [
    ...createScaledWorkloadKinds(kubeConfig),
    createCronJobKind(kubeConfig),
    createHpaKind(kubeConfig),
    createScaledObjectKind(kubeConfig),
  ];
}
