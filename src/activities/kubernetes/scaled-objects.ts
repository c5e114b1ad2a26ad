/**
 * KEDA ScaledObjects (keda.sh/v1alpha1): KEDA scales its target itself (from 0, on an
 * event) and owns the HPA it creates for it, so a stopped target would be woken by the next
 * event. A stop pauses it the way KEDA documents, `autoscaling.keda.sh/paused-replicas: "0"`
 * (KEDA scales the target to 0 and stops autoscaling it), before the workloads sleep; a
 * start lifts that pause once they are awake, and KEDA takes over from the restored count.
 *
 * Only a pause the stop set is ever lifted: the stop writes a marker with it, in one patch,
 * and a ScaledObject a person had paused (either of KEDA's pause annotations, no marker) is
 * left alone by both. The ScaledObject's spec is never changed. A cluster without KEDA's
 * CRD has none (custom-resources.ts). In reports 1 means autoscaling and 0 paused.
 */
import type { KubeConfig, V1ObjectMeta } from '@kubernetes/client-node';
import { isExcluded, KEDA_PAUSED_REPLICAS, kedaPause } from './annotations';
import { customObjects } from './custom-resources';
import { withConflictRetry, type WorkloadKind } from './workload-kind';

const KIND = 'ScaledObject';

export const SCALED_OBJECTS = { group: 'keda.sh', version: 'v1alpha1', plural: 'scaledobjects' };

interface ScaledObject {
  metadata?: V1ObjectMeta;
  spec?: { scaleTargetRef?: { name?: string; kind?: string } };
}

export function createScaledObjectKind(kubeConfig: KubeConfig): WorkloadKind<ScaledObject> {
  const api = customObjects<ScaledObject>(kubeConfig, SCALED_OBJECTS);

  return {
    kind: KIND,
    plural: `${KIND}s`,
    stage: 'guard',
    list: api.list,
    // Left alone with an excluded target (KEDA's default target kind is a Deployment).
    managed: (scaledObject, excluded) =>
      !isExcluded(scaledObject.metadata) &&
      !excluded.has(`${scaledObject.spec?.scaleTargetRef?.kind ?? 'Deployment'}/${scaledObject.spec?.scaleTargetRef?.name}`),

    // Its pause removed (or created unpaused) while its target sleeps: KEDA may wake the target.
    // Who removed it is not known: managedFields keep no record of a field's removal.
    awake: (scaledObject) =>
      kedaPause.paused(scaledObject.metadata) ? null : { replicas: 1, created: !kedaPause.ours(scaledObject.metadata) },

    sleep(listed, { namespace, write }) {
      const name = listed.metadata!.name!;
      return withConflictRetry(
        listed,
        () => api.read(namespace, name),
        async (scaledObject) => {
          // Paused already: by an earlier stop (marked) or by a person (theirs to lift).
          if (isExcluded(scaledObject.metadata) || kedaPause.paused(scaledObject.metadata)) return {};
          await write(
            `pause ${KIND} ${namespace}/${name} (${KEDA_PAUSED_REPLICAS}: 0)`,
            { namespace, kind: KIND, name, from: 1, to: 0 },
            () =>
              api.patch(namespace, name, {
                metadata: { resourceVersion: scaledObject.metadata?.resourceVersion, annotations: kedaPause.save() },
              }),
          );
          return { change: { kind: KIND, name, from: 1, to: 0 } };
        },
      );
    },

    wake(listed, { namespace, write }) {
      const name = listed.metadata!.name!;
      return withConflictRetry(
        listed,
        () => api.read(namespace, name),
        async (scaledObject) => {
          if (isExcluded(scaledObject.metadata) || !kedaPause.ours(scaledObject.metadata)) return {};
          const wasPaused = scaledObject.metadata?.annotations?.[KEDA_PAUSED_REPLICAS] !== undefined;
          await write(`resume ${KIND} ${namespace}/${name}`, { namespace, kind: KIND, name, from: 0, to: 1 }, () =>
            api.patch(namespace, name, {
              metadata: { resourceVersion: scaledObject.metadata?.resourceVersion, annotations: kedaPause.clear() },
            }),
          );
          return wasPaused ? { change: { kind: KIND, name, from: 0, to: 1 } } : {};
        },
      );
    },
  };
}
