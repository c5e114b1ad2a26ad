/**
 * TEST RECONCILERS, not Argo CD or helm-controller: the real Argo CD needs a Git server and
 * much more than this machine runs for a test, and helm-controller is not built here
 * (Flux's source-controller and kustomize-controller are, and test/flux.test.ts runs them
 * for Kustomizations). These stand in for the two that do not run, implementing exactly
 * the documented behaviour the service relies on, against the real CRDs on the test
 * apiserver, and nothing more:
 *
 * - Argo CD (docs "Automated Sync Policy"): an Application with `spec.syncPolicy.automated`
 *   (and not `automated.enabled: false`) is synced when Git has a revision it has not yet
 *   synced; with `automated.selfHeal` also whenever the live state drifts from Git. Without
 *   `automated` nothing is synced automatically. Sync writes as `argocd-controller`.
 * - Flux's helm-controller (docs of HelmRelease `spec.suspend`): a HelmRelease is re-applied
 *   on every reconcile, correcting drift, unless `spec.suspend` is true. Apply writes as
 *   `helm-controller`.
 *
 * "Git" is what a test gives each object: the Deployments (namespace, name, replicas) its
 * source renders. A reconcile pass runs every TICK_MS while started.
 */
import { AppsV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
export const TICK_MS = 100;

export interface Rendered {
  namespace: string;
  deployment: string;
  replicas: number;
}

interface Source {
  manifests: Rendered[];
  /** Bumped by a test to stand for a new commit. */
  revision: number;
}

interface Listed {
  metadata: { namespace: string; name: string };
  spec?: { suspend?: boolean; syncPolicy?: { automated?: { enabled?: boolean; selfHeal?: boolean } } };
}

const key = (namespace: string, name: string) => `${namespace}/${name}`;

abstract class TestReconciler {
  protected readonly apps: AppsV1Api;
  protected readonly custom: CustomObjectsApi;
  protected readonly git = new Map<string, Source>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private held = 0;
  /** Writes this reconciler made to Deployments, for a test to tell whether it acted. */
  applied = 0;

  constructor(kubeConfig: KubeConfig) {
    this.apps = kubeConfig.makeApiClient(AppsV1Api);
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  /** What the object named `namespace/name` renders from Git. */
  source(namespace: string, name: string, manifests: Rendered[]): void {
    this.git.set(key(namespace, name), { manifests, revision: 1 });
  }

  /** A new commit for the object: what an automated sync without self-heal waits for. */
  commit(namespace: string, name: string, manifests: Rendered[]): void {
    const source = this.git.get(key(namespace, name))!;
    this.git.set(key(namespace, name), { manifests, revision: source.revision + 1 });
  }

  start(): void {
    const loop = () => {
      this.running = (this.held ? Promise.resolve() : this.pass())
        .catch(() => undefined)
        .then(() => {
          if (this.timer) this.timer = setTimeout(loop, TICK_MS);
        });
    };
    this.timer = setTimeout(loop, TICK_MS);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /**
   * Runs `work` between two passes: no pass is under way while it runs. A real controller's
   * sync already under way when a stop removes automated sync (or suspends) may still
   * finish after it; test/gitops.test.ts shows the drift look putting that right, and
   * every other test stops between passes so that it asserts one thing at a time.
   */
  async between<T>(work: () => Promise<T>): Promise<T> {
    this.held++;
    try {
      await this.running;
      return await work();
    } finally {
      this.held--;
    }
  }

  protected abstract pass(): Promise<void>;

  /** Sets each rendered Deployment to its replica count from Git where it differs. */
  protected async apply(manifests: Rendered[], fieldManager: string): Promise<void> {
    for (const { namespace, deployment, replicas } of manifests) {
      const live = await this.apps.readNamespacedDeployment({ namespace, name: deployment });
      if (live.spec?.replicas === replicas) continue;
      await this.apps.patchNamespacedDeployment({ namespace, name: deployment, fieldManager, body: { spec: { replicas } } }, mergePatch);
      this.applied++;
    }
  }
}

/** Argo CD's application controller, as far as automated sync and self-heal go (see the file's header). */
export class TestArgoCdReconciler extends TestReconciler {
  /** The revision each Application last synced. */
  private readonly synced = new Map<string, number>();

  constructor(
    kubeConfig: KubeConfig,
    private readonly namespace: string,
  ) {
    super(kubeConfig);
  }

  protected async pass(): Promise<void> {
    const { items } = (await this.custom.listNamespacedCustomObject({
      group: 'argoproj.io',
      version: 'v1alpha1',
      namespace: this.namespace,
      plural: 'applications',
    })) as { items: Listed[] };
    for (const app of items) {
      const id = key(app.metadata.namespace, app.metadata.name);
      const source = this.git.get(id);
      const automated = app.spec?.syncPolicy?.automated;
      if (!source || !automated || automated.enabled === false) continue;
      if (this.synced.get(id) === source.revision && !automated.selfHeal) continue;
      await this.apply(source.manifests, 'argocd-controller');
      this.synced.set(id, source.revision);
    }
  }
}

/** Flux's helm-controller, as far as applying and `spec.suspend` go (see the file's header). */
export class TestHelmControllerReconciler extends TestReconciler {
  protected async pass(): Promise<void> {
    const { items } = (await this.custom.listCustomObjectForAllNamespaces({
      group: 'helm.toolkit.fluxcd.io',
      version: 'v2',
      plural: 'helmreleases',
    })) as { items: Listed[] };
    for (const object of items) {
      const source = this.git.get(key(object.metadata.namespace, object.metadata.name));
      if (!source || object.spec?.suspend === true) continue;
      await this.apply(source.manifests, 'helm-controller');
    }
  }
}
