/**
 * Argo CD Applications that deploy into the environment (`spec.destination.namespace`) are
 * held off it while it sleeps: with automated sync and self-heal, Argo CD would put every
 * workload back to the replica count in Git minutes after the stop. A stop removes
 * `spec.syncPolicy.automated`, the documented way to turn automated sync (and with it
 * self-heal) off, saving what was there in the same patch; a start puts exactly that back.
 * Not the `argocd.argoproj.io/skip-reconcile` annotation: it also stops the Application's
 * status from being refreshed, so Argo CD's UI shows a stale state all night, and Argo CD
 * documents it as alpha. An Application without automated sync (turned off by a person)
 * is never touched, so never "restored" either. Applications live where Argo CD keeps
 * them (ARGOCD_NAMESPACES), not in the environment.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { isExcluded, savedAutomatedSync } from './annotations';
import { FIELD_MANAGER } from './apiserver';
import { customObjects, displayName, type CustomObject } from './gitops';
import { managerOf, withConflictRetry, type WorkloadKind } from './workload-kind';

const KIND = 'Application';

const automatedOf = (app: CustomObject) => (app.spec?.syncPolicy as { automated?: Record<string, unknown> } | undefined)?.automated;
/** `automated: { enabled: false }` keeps the settings but syncs nothing automatically. */
const syncsAutomatically = (app: CustomObject) => {
  const automated = automatedOf(app);
  return automated !== undefined && automated !== null && automated.enabled !== false;
};

/** How Argo CD names the cluster it runs in: an Application aimed elsewhere deploys to another cluster's namespace of the same name. */
const IN_CLUSTER = { server: 'https://kubernetes.default.svc', name: 'in-cluster' };

/** Deploys into `namespace` of this cluster. */
function deploysHere(app: CustomObject, namespace: string): boolean {
  const destination = app.spec?.destination as { namespace?: string; server?: string; name?: string } | undefined;
  if (destination?.namespace !== namespace) return false;
  return destination.server !== undefined
    ? destination.server.replace(/\/+$/, '') === IN_CLUSTER.server
    : destination.name === IN_CLUSTER.name;
}

export function createArgoCdApplicationKind(kubeConfig: KubeConfig, argocdNamespaces: string[]): WorkloadKind<CustomObject> {
  const applications = customObjects(kubeConfig, { group: 'argoproj.io', version: 'v1alpha1', plural: 'applications', kind: KIND });
  const where = (app: CustomObject) => app.metadata!.namespace!;

  return {
    kind: KIND,
    plural: `${KIND}s`,
    stage: 'guard',
    list: (namespace, page) =>
      applications.list(namespace, page, {
        namespaces: argocdNamespaces,
        inNamespace: false,
        aimedAt: (app) => deploysHere(app, namespace),
      }),
    managed: (app) => !isExcluded(app.metadata),

    // Automated sync turned on again while the environment sleeps: it would wake the workloads.
    awake(app) {
      if (!syncsAutomatically(app)) return null;
      const by = managerOf(app.metadata, 'syncPolicy', FIELD_MANAGER);
      return { replicas: 1, created: savedAutomatedSync.read(app.metadata) === undefined, ...(by ? { by } : {}) };
    },

    sleep(listed, { namespace, write }) {
      const [name, at] = [listed.metadata!.name!, where(listed)];
      const shown = displayName(listed, namespace);
      return withConflictRetry(
        listed,
        () => applications.read(at, name),
        async (app) => {
          if (!syncsAutomatically(app)) return {};
          // One patch both saves and removes, so no crash can separate the two.
          await write(`hold automated sync of ${KIND} ${at}/${name} off ${namespace}`, { namespace: at, kind: KIND, name }, () =>
            applications.patch(at, name, {
              metadata: { resourceVersion: app.metadata?.resourceVersion, annotations: savedAutomatedSync.save(automatedOf(app)!) },
              spec: { syncPolicy: { automated: null } },
            }),
          );
          return { change: { kind: KIND, name: shown, from: 1, to: 0 } };
        },
      );
    },

    wake(listed, { namespace, write }) {
      const [name, at] = [listed.metadata!.name!, where(listed)];
      const shown = displayName(listed, namespace);
      return withConflictRetry(
        listed,
        () => applications.read(at, name),
        async (app) => {
          const saved = savedAutomatedSync.read(app.metadata);
          if (saved === undefined) return {};
          if (saved === 'invalid') return { note: `${KIND} ${shown}: ${savedAutomatedSync.key} is not a JSON object; left as it is` };
          // Set again by a person while the environment slept (on or off): theirs stands.
          const restore = automatedOf(app) === undefined;
          await write(
            `${restore ? 'hand automated sync back to' : 'forget the saved sync policy of'} ${KIND} ${at}/${name}`,
            { namespace: at, kind: KIND, name },
            () =>
              applications.patch(at, name, {
                metadata: { resourceVersion: app.metadata?.resourceVersion, annotations: savedAutomatedSync.clear() },
                ...(restore ? { spec: { syncPolicy: { automated: saved } } } : {}),
              }),
          );
          return restore ? { change: { kind: KIND, name: shown, from: 0, to: 1 } } : {};
        },
      );
    },
  };
}
