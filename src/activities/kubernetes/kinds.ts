/**
 * Every kind a stop puts to sleep and a start wakes, in the order their steps are started
 * (and reported). A new kind (a KEDA ScaledObject, an Argo Rollout) is a file implementing
 * WorkloadKind and a line here, plus the RBAC and admission-policy rules for what it writes.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { createCronJobKind } from './cronjobs';
import { createHpaKind } from './hpas';
import { createDeploymentKind, createStatefulSetKind } from './scaled-workloads';
import type { WorkloadKind } from './workload-kind';

export function createWorkloadKinds(kubeConfig: KubeConfig): WorkloadKind[] {
  return [createDeploymentKind(kubeConfig), createStatefulSetKind(kubeConfig), createCronJobKind(kubeConfig), createHpaKind(kubeConfig)];
}
