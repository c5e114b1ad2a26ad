/**
 * HorizontalPodAutoscalers: a target scaled to 0 makes the HPA controller stand aside
 * ("ScalingDisabled") until the target is scaled up again, the behaviour kube-downscaler
 * relies on too. Only an HPA with minReplicas 0 (the HPAScaleToZero feature) keeps acting
 * on a target at 0, so, as kube-downscaler does with an HPA's minimum, a stop raises that
 * minReplicas to 1 before its target sleeps, saves the original, and a start restores it
 * once the target is awake. An HPA a KEDA ScaledObject owns is KEDA's to set: the stop
 * pauses the ScaledObject instead (scaled-objects.ts) and leaves its HPA alone. Status does
 * not show HPAs: the API's identity may not list them (k8s/rbac.yaml).
 */
import { AutoscalingV2Api, type KubeConfig, type V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import { isExcluded, savedMinReplicas } from './annotations';
import { FIELD_MANAGER, mergePatch } from './apiserver';
import { SCALED_OBJECTS } from './scaled-objects';
import { managerOf, withConflictRetry, type WorkloadKind } from './workload-kind';

const KIND = 'HorizontalPodAutoscaler';

export function createHpaKind(kubeConfig: KubeConfig): WorkloadKind<V2HorizontalPodAutoscaler> {
  const autoscaling = kubeConfig.makeApiClient(AutoscalingV2Api);
  const read = (namespace: string, name: string) => autoscaling.readNamespacedHorizontalPodAutoscaler({ namespace, name });
  const patch = (namespace: string, name: string, body: object) =>
    autoscaling.patchNamespacedHorizontalPodAutoscaler({ namespace, name, fieldManager: FIELD_MANAGER, body }, mergePatch);

  return {
    kind: KIND,
    plural: `${KIND}s`,
    stage: 'guard',
    list: (namespace, page) => autoscaling.listNamespacedHorizontalPodAutoscaler({ namespace, ...page }),
    // An HPA of an excluded target is left alone with it, and KEDA's with their ScaledObject.
    managed: (hpa, excluded) =>
      !isExcluded(hpa.metadata) &&
      !excluded.has(`${hpa.spec?.scaleTargetRef.kind}/${hpa.spec?.scaleTargetRef.name}`) &&
      !hpa.metadata?.ownerReferences?.some(
        (owner) => owner.kind === 'ScaledObject' && owner.apiVersion.startsWith(`${SCALED_OBJECTS.group}/`),
      ),

    // Lowered to 0 again (or created at 0) while its target sleeps: it could wake the target.
    awake(hpa) {
      if ((hpa.spec?.minReplicas ?? 1) !== 0) return null;
      const by = managerOf(hpa.metadata, 'minReplicas', FIELD_MANAGER);
      return { replicas: 0, created: savedMinReplicas.read(hpa.metadata) === undefined, ...(by ? { by } : {}) };
    },

    sleep(listed, { namespace, write }) {
      const name = listed.metadata!.name!;
      return withConflictRetry(
        listed,
        () => read(namespace, name),
        async (hpa) => {
          if ((hpa.spec?.minReplicas ?? 1) !== 0) return {};
          await write(`raise minReplicas of ${KIND} ${namespace}/${name} from 0 to 1`, { namespace, kind: KIND, name }, () =>
            patch(namespace, name, {
              metadata: { resourceVersion: hpa.metadata?.resourceVersion, annotations: savedMinReplicas.save(0) },
              spec: { minReplicas: 1 },
            }),
          );
          return { change: { kind: KIND, name, from: 0, to: 1 } };
        },
      );
    },

    wake(listed, { namespace, write }) {
      const name = listed.metadata!.name!;
      return withConflictRetry(
        listed,
        () => read(namespace, name),
        async (hpa) => {
          const saved = savedMinReplicas.read(hpa.metadata);
          if (saved === undefined) return {};
          if (saved === 'invalid') return { note: `${KIND} ${name}: ${savedMinReplicas.key} is not a count; left as it is` };
          const from = hpa.spec?.minReplicas ?? 1;
          await write(`restore minReplicas of ${KIND} ${namespace}/${name} to ${saved}`, { namespace, kind: KIND, name }, () =>
            patch(namespace, name, {
              metadata: { resourceVersion: hpa.metadata?.resourceVersion, annotations: savedMinReplicas.clear() },
              spec: { minReplicas: saved },
            }),
          );
          return from === saved ? {} : { change: { kind: KIND, name, from, to: saved } };
        },
      );
    },
  };
}
