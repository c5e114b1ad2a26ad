/**
 * Flux objects that deploy into the environment sleep suspended (`spec.suspend: true`, what
 * `flux suspend` sets): the controller then neither reconciles them nor corrects drift, so
 * it cannot scale a stopped workload back up. Those aimed at the environment are the ones
 * that live in it and those of FLUX_NAMESPACES whose `spec.targetNamespace` is it. As with
 * CronJobs, the stop marks what it suspended (`devenv-scheduler/original-suspend: "false"`,
 * in the same patch), and the start resumes only those: a suspend it did not set is never
 * undone. A resumed object's spec changed, so its controller reconciles it at once.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { isExcluded, savedSuspend } from './annotations';
import { FIELD_MANAGER } from './apiserver';
import { customObjects, displayName, type CustomObject, type CustomResource } from './gitops';
import { managerOf, withConflictRetry, type WorkloadKind } from './workload-kind';

export function createFluxKind(kubeConfig: KubeConfig, resource: CustomResource, fluxNamespaces: string[]): WorkloadKind<CustomObject> {
  const objects = customObjects(kubeConfig, resource);
  const { kind } = resource;
  const suspended = (object: CustomObject) => object.spec?.suspend === true;

  return {
    kind,
    plural: `${kind}s`,
    stage: 'guard',
    list: (namespace, page) =>
      objects.list(namespace, page, {
        namespaces: fluxNamespaces,
        inNamespace: true,
        aimedAt: (object) => object.spec?.targetNamespace === namespace || object.metadata?.namespace === namespace,
      }),
    managed: (object) => !isExcluded(object.metadata),

    awake(object) {
      if (suspended(object)) return null;
      const by = managerOf(object.metadata, 'suspend', FIELD_MANAGER);
      return { replicas: 1, created: savedSuspend.read(object.metadata) === undefined, ...(by ? { by } : {}) };
    },

    sleep(listed, { namespace, write }) {
      const [name, at] = [listed.metadata!.name!, listed.metadata!.namespace!];
      return withConflictRetry(
        listed,
        () => objects.read(at, name),
        async (object) => {
          // Suspended already: by an earlier stop (marked) or by a person (left suspended on start).
          if (suspended(object)) return {};
          await write(`suspend ${kind} ${at}/${name}`, { namespace: at, kind, name }, () =>
            objects.patch(at, name, {
              metadata: { resourceVersion: object.metadata?.resourceVersion, annotations: savedSuspend.save(false) },
              spec: { suspend: true },
            }),
          );
          return { change: { kind, name: displayName(object, namespace), from: 1, to: 0 } };
        },
      );
    },

    wake(listed, { namespace, write }) {
      const [name, at] = [listed.metadata!.name!, listed.metadata!.namespace!];
      return withConflictRetry(
        listed,
        () => objects.read(at, name),
        async (object) => {
          const wasSuspended = savedSuspend.read(object.metadata);
          if (wasSuspended === undefined) return {};
          const resume = !wasSuspended;
          await write(`${resume ? 'resume' : 'forget the saved state of'} ${kind} ${at}/${name}`, { namespace: at, kind, name }, () =>
            objects.patch(at, name, {
              metadata: { resourceVersion: object.metadata?.resourceVersion, annotations: savedSuspend.clear() },
              ...(resume ? { spec: { suspend: false } } : {}),
            }),
          );
          return resume && suspended(object) ? { change: { kind, name: displayName(object, namespace), from: 0, to: 1 } } : {};
        },
      );
    },
  };
}
