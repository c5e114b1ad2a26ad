/**
 * GitOps controllers and a stopped environment, on the real test apiserver with the CRDs
 * Argo CD and Flux publish (test/fixtures/crds). Argo CD and Flux's helm-controller are TEST
 * RECONCILERS (test/support/gitops-reconcilers.ts) that implement exactly the documented
 * semantics the service relies on: Argo CD's automated sync with self-heal puts a
 * Deployment back to its replica count in Git, helm-controller re-applies unless
 * `spec.suspend`. Kustomizations meet the real kustomize-controller in test/flux.test.ts;
 * here nothing reconciles them: these tests check what the service writes to them.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import {
  AdmissionregistrationV1Api,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubernetesObjectApi,
  loadAllYaml,
  PatchStrategy,
  setHeaderOptions,
  KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { eventFor } from '../src/activities/events';
import { createKubernetesActivities } from '../src/activities/kubernetes';
import { createFluxKustomizationKind } from '../src/activities/kubernetes/flux-kustomizations';
import { listKind } from '../src/activities/kubernetes/workload-kind';
import { ORIGINAL_AUTOMATED_SYNC, ORIGINAL_SUSPEND } from '../src/activities/kubernetes/annotations';
import { describeWoken } from '../src/domain/drift';
import { DEFAULT_GITOPS, type GitOpsSettings } from '../src/domain/gitops';
import { createLogger } from '../src/logger';
import { TestArgoCdReconciler, TestHelmControllerReconciler, TICK_MS, type Rendered } from './support/gitops-reconcilers';
import { testCluster, type TestCluster } from './support/kube';
import { createVendoredCrds } from './support/manifests';
import { eventually } from './support/slack';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const CRDS = ['crds/argocd-application-crd.yaml', 'crds/flux-kustomizations-crd.yaml', 'crds/flux-helmreleases-crd.yaml'];
const ARGOCD = 'argocd';
const FLUX = 'flux-system';
const APPLICATIONS = { group: 'argoproj.io', version: 'v1alpha1', plural: 'applications' };
const KUSTOMIZATIONS = { group: 'kustomize.toolkit.fluxcd.io', version: 'v1', plural: 'kustomizations' };
const HELMRELEASES = { group: 'helm.toolkit.fluxcd.io', version: 'v2', plural: 'helmreleases' };
type Resource = typeof APPLICATIONS;
const SELF_HEAL = { prune: true, selfHeal: true };

interface Custom {
  metadata: {
    name: string;
    namespace: string;
    resourceVersion: string;
    annotations?: Record<string, string>;
    managedFields?: { manager: string; fieldsV1: object }[];
  };
  spec: { suspend?: boolean; syncPolicy?: { automated?: Record<string, unknown>; syncOptions?: string[] } };
}

/** Long enough for the test reconcilers to have run many passes. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 15 * TICK_MS));

describe('GitOps controllers and a stopped environment (real kube-apiserver, Argo CD and Flux CRDs, test reconcilers for Argo CD and helm-controller)', function () {
  this.timeout(120_000);
  const logger = createLogger('silent');
  let cluster: TestCluster;
  let apps: AppsV1Api;
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  let argo: TestArgoCdReconciler;
  let helm: TestHelmControllerReconciler;
  let counter = 0;

  before(async function () {
    this.timeout(180_000);
    // A control plane of its own: the CRDs would otherwise reach every other suite's.
    cluster = await testCluster('gitops');
    await createVendoredCrds(cluster.kubeConfig, cluster.server, CRDS);
    apps = cluster.kubeConfig.makeApiClient(AppsV1Api);
    core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    custom = cluster.kubeConfig.makeApiClient(CustomObjectsApi);
    for (const name of [ARGOCD, FLUX]) await core.createNamespace({ body: { metadata: { name } } });
    argo = new TestArgoCdReconciler(cluster.kubeConfig, ARGOCD);
    helm = new TestHelmControllerReconciler(cluster.kubeConfig);
    argo.start();
    helm.start();
  });

  after(async () => {
    await argo?.stop();
    await helm?.stop();
  });

  /** A stop that does not land in the middle of a test reconciler's pass (TestReconciler.between). */
  const between = <T>(work: () => Promise<T>) => argo.between(() => helm.between(work));

  const activities = (gitops: Partial<GitOpsSettings> = {}, kubeConfig: KubeConfig = cluster.kubeConfig) =>
    createKubernetesActivities({ kubeConfig, dryRun: false, logger, gitops: { ...DEFAULT_GITOPS, argocdNamespaces: [ARGOCD], ...gitops } });

  /** An environment with one Deployment `api` at `replicas`, as Git has it. */
  async function environment(replicas = 3): Promise<string> {
    const ns = `gitops-env-${++counter}`;
    await core.createNamespace({ body: { metadata: { name: ns, labels: { scheduler: 'enabled' } } } });
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: 'api' },
        spec: {
          replicas,
          selector: { matchLabels: { app: 'api' } },
          template: { metadata: { labels: { app: 'api' } }, spec: { containers: [{ name: 'app', image: 'registry.example/api:1' }] } },
        },
      },
    });
    return ns;
  }

  const replicas = async (ns: string) => (await apps.readNamespacedDeployment({ namespace: ns, name: 'api' })).spec?.replicas;
  const git = (ns: string, count = 3): Rendered[] => [{ namespace: ns, deployment: 'api', replicas: count }];

  async function application(name: string, destination: string, automated?: Record<string, unknown>): Promise<void> {
    await custom.createNamespacedCustomObject({
      ...APPLICATIONS,
      namespace: ARGOCD,
      body: {
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'Application',
        metadata: { name },
        spec: {
          project: 'default',
          source: { repoURL: 'https://git.example/envs.git', path: destination, targetRevision: 'main' },
          destination: { server: 'https://kubernetes.default.svc', namespace: destination },
          syncPolicy: { ...(automated ? { automated } : {}), syncOptions: ['CreateNamespace=false'] },
        },
      },
    });
    argo.source(ARGOCD, name, git(destination));
  }

  async function kustomization(namespace: string, name: string, targetNamespace: string, suspend = false): Promise<void> {
    await custom.createNamespacedCustomObject({
      ...KUSTOMIZATIONS,
      namespace,
      body: {
        apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
        kind: 'Kustomization',
        metadata: { name },
        spec: {
          interval: '1m',
          prune: true,
          path: `./envs/${targetNamespace}`,
          sourceRef: { kind: 'GitRepository', name: 'envs', namespace: FLUX },
          targetNamespace,
          ...(suspend ? { suspend } : {}),
        },
      },
    });
  }

  async function helmRelease(namespace: string, name: string, into: string): Promise<void> {
    await custom.createNamespacedCustomObject({
      ...HELMRELEASES,
      namespace,
      body: {
        apiVersion: 'helm.toolkit.fluxcd.io/v2',
        kind: 'HelmRelease',
        metadata: { name },
        spec: { interval: '5m', chart: { spec: { chart: 'api', sourceRef: { kind: 'HelmRepository', name: 'charts', namespace: FLUX } } } },
      },
    });
    helm.source(namespace, name, git(into));
  }

  const read = async (resource: Resource, namespace: string, name: string) =>
    (await custom.getNamespacedCustomObject({ ...resource, namespace, name })) as Custom;

  it('GITOPS=off: the self-healing Application scales the stopped environment straight back up (what hold is for)', async () => {
    const ns = await environment();
    await application(`${ns}-off`, ns, SELF_HEAL);
    await between(() => activities({ mode: 'off' }).stopNamespace(ns));
    await eventually('Argo CD (test reconciler) to scale it back to 3', async () => ((await replicas(ns)) === 3 ? true : undefined));
    assert.deepEqual((await read(APPLICATIONS, ARGOCD, `${ns}-off`)).spec.syncPolicy?.automated, SELF_HEAL);
  });

  it("an Application deploying to the same-named namespace of another cluster is not this environment's: never held", async () => {
    const ns = await environment();
    const name = `${ns}-elsewhere`;
    await application(name, ns, SELF_HEAL);
    await custom.patchNamespacedCustomObject(
      { ...APPLICATIONS, namespace: ARGOCD, name, body: { spec: { destination: { server: 'https://prod.example:6443', namespace: ns } } } },
      mergePatch,
    );
    const stopped = await activities().stopNamespace(ns);
    assert.deepEqual(
      stopped.changed.map((c) => c.kind),
      ['Deployment'],
    );
    assert.deepEqual((await read(APPLICATIONS, ARGOCD, name)).spec.syncPolicy?.automated, SELF_HEAL, 'left syncing automatically');
    await activities().startNamespace(ns);
  });

  it('GITOPS switched to off while an environment is stopped: the start still hands back what the stop held, and nothing new is held', async () => {
    const ns = await environment();
    const name = `${ns}-app`;
    await application(name, ns, SELF_HEAL);
    await between(() => activities().stopNamespace(ns));
    assert.equal((await read(APPLICATIONS, ARGOCD, name)).spec.syncPolicy?.automated, undefined, 'held by the stop');
    const started = await activities({ mode: 'off' }).startNamespace(ns);
    assert.ok(
      started.changed.some((c) => c.kind === 'Application'),
      JSON.stringify(started.changed),
    );
    assert.deepEqual((await read(APPLICATIONS, ARGOCD, name)).spec.syncPolicy?.automated, SELF_HEAL, 'handed back');
    const stoppedOff = await activities({ mode: 'off' }).stopNamespace(ns);
    assert.ok(!stoppedOff.changed.some((c) => c.kind === 'Application'), 'GITOPS=off holds nothing new');
    assert.deepEqual((await read(APPLICATIONS, ARGOCD, name)).spec.syncPolicy?.automated, SELF_HEAL);
  });

  it('GITOPS=hold: the Application loses automated sync while stopped and stays at 0; start hands it back exactly and self-heal resumes', async () => {
    const ns = await environment();
    const name = `${ns}-app`;
    const automated = { ...SELF_HEAL, allowEmpty: false };
    await application(name, ns, automated);
    // Not aimed at this environment: never touched.
    const other = await environment();
    await application(`${other}-app`, other, SELF_HEAL);
    const otherBefore = (await read(APPLICATIONS, ARGOCD, `${other}-app`)).metadata.resourceVersion;

    const stopped = await between(() => activities().stopNamespace(ns));
    assert.deepEqual(stopped.changed, [
      { kind: 'Application', name: `${ARGOCD}/${name}`, from: 1, to: 0 },
      { kind: 'Deployment', name: 'api', from: 3, to: 0 },
    ]);
    const held = await read(APPLICATIONS, ARGOCD, name);
    assert.equal(held.spec.syncPolicy?.automated, undefined);
    assert.deepEqual(held.spec.syncPolicy?.syncOptions, ['CreateNamespace=false'], 'the rest of the sync policy as it was');
    assert.deepEqual(JSON.parse(held.metadata.annotations![ORIGINAL_AUTOMATED_SYNC]!), automated);
    await settle();
    assert.equal(await replicas(ns), 0, 'still asleep while Argo CD (test reconciler) runs');
    assert.equal((await read(APPLICATIONS, ARGOCD, `${other}-app`)).metadata.resourceVersion, otherBefore);

    const started = await activities().startNamespace(ns);
    assert.deepEqual(started.changed, [
      { kind: 'Deployment', name: 'api', from: 0, to: 3 },
      { kind: 'Application', name: `${ARGOCD}/${name}`, from: 0, to: 1 },
    ]);
    const handedBack = await read(APPLICATIONS, ARGOCD, name);
    assert.deepEqual(handedBack.spec.syncPolicy?.automated, automated);
    assert.equal(handedBack.metadata.annotations?.[ORIGINAL_AUTOMATED_SYNC], undefined);
    // Self-heal is Argo CD's again: a manual scale is corrected.
    await apps.patchNamespacedDeployment({ namespace: ns, name: 'api', body: { spec: { replicas: 1 } } }, mergePatch);
    await eventually('self-heal to put it back to 3', async () => ((await replicas(ns)) === 3 ? true : undefined));
  });

  it('an Application without automated sync (turned off by a person) is never touched, nor given automated sync on start', async () => {
    const ns = await environment();
    await application(`${ns}-manual`, ns);
    await application(`${ns}-disabled`, ns, { ...SELF_HEAL, enabled: false });
    const before = await Promise.all([`${ns}-manual`, `${ns}-disabled`].map((n) => read(APPLICATIONS, ARGOCD, n)));
    const stopped = await between(() => activities().stopNamespace(ns));
    assert.deepEqual(
      stopped.changed.map((c) => c.kind),
      ['Deployment'],
    );
    await activities().startNamespace(ns);
    const after = await Promise.all([`${ns}-manual`, `${ns}-disabled`].map((n) => read(APPLICATIONS, ARGOCD, n)));
    assert.deepEqual(
      after.map((a) => [a.metadata.resourceVersion, a.spec.syncPolicy?.automated]),
      before.map((a) => [a.metadata.resourceVersion, a.spec.syncPolicy?.automated]),
    );
  });

  it('automated sync a person turns on again while stopped is theirs on start; a retried stop or start never loses the saved sync policy', async () => {
    const ns = await environment();
    const name = `${ns}-app`;
    await application(name, ns, SELF_HEAL);
    await between(() => activities().stopNamespace(ns));
    // The retry of a stop that got through (or the next scheduled one): nothing to hold, the saved policy stays.
    const again = await between(() => activities().stopNamespace(ns));
    assert.deepEqual(again.changed, []);
    assert.deepEqual(JSON.parse((await read(APPLICATIONS, ARGOCD, name)).metadata.annotations![ORIGINAL_AUTOMATED_SYNC]!), SELF_HEAL);
    await activities().startNamespace(ns);
    assert.deepEqual((await read(APPLICATIONS, ARGOCD, name)).spec.syncPolicy?.automated, SELF_HEAL);
    // A second start changes nothing.
    assert.deepEqual((await activities().startNamespace(ns)).changed, []);

    await between(() => activities().stopNamespace(ns));
    const mine = { selfHeal: false };
    await custom.patchNamespacedCustomObject(
      { ...APPLICATIONS, namespace: ARGOCD, name, body: { spec: { syncPolicy: { automated: mine } } } },
      mergePatch,
    );
    await activities().startNamespace(ns);
    const after = await read(APPLICATIONS, ARGOCD, name);
    assert.deepEqual(after.spec.syncPolicy?.automated, mine);
    assert.equal(after.metadata.annotations?.[ORIGINAL_AUTOMATED_SYNC], undefined);
  });

  it('a stop that dies after holding the Application, retried, keeps what it saved and finishes; start restores it', async () => {
    const ns = await environment();
    const name = `${ns}-app`;
    await application(name, ns, SELF_HEAL);
    // The stop's Deployment write fails, as if the worker died between the two phases.
    const admission = cluster.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
    const blocker = `gitops-test-block-${ns}`;
    await admission.createValidatingAdmissionPolicy({
      body: {
        metadata: { name: blocker },
        spec: {
          failurePolicy: 'Fail',
          matchConstraints: {
            resourceRules: [{ apiGroups: ['apps'], apiVersions: ['*'], operations: ['UPDATE'], resources: ['deployments'] }],
          },
          matchConditions: [{ name: 'this-environment', expression: `request.namespace == '${ns}'` }],
          validations: [{ expression: 'false', reason: 'Forbidden', message: 'the worker died here' }],
        },
      },
    });
    await admission.createValidatingAdmissionPolicyBinding({
      body: { metadata: { name: blocker }, spec: { policyName: blocker, validationActions: ['Deny'] } },
    });
    await eventually('the blocking policy', () =>
      apps.patchNamespacedDeployment({ namespace: ns, name: 'api', dryRun: 'All', body: { spec: { replicas: 3 } } }, mergePatch).then(
        () => undefined,
        (error: unknown) => ((error as { code?: number }).code === 403 ? true : Promise.reject(error)),
      ),
    );
    await assert.rejects(between(() => activities().stopNamespace(ns)));
    const held = await read(APPLICATIONS, ARGOCD, name);
    assert.equal(held.spec.syncPolicy?.automated, undefined);
    assert.deepEqual(JSON.parse(held.metadata.annotations![ORIGINAL_AUTOMATED_SYNC]!), SELF_HEAL);
    assert.equal(await replicas(ns), 3);

    await admission.deleteValidatingAdmissionPolicyBinding({ name: blocker });
    await admission.deleteValidatingAdmissionPolicy({ name: blocker });
    await eventually('the retry to get through', async () => {
      try {
        return (await between(() => activities().stopNamespace(ns))).changed;
      } catch {
        return undefined;
      }
    });
    assert.equal(await replicas(ns), 0);
    assert.deepEqual(JSON.parse((await read(APPLICATIONS, ARGOCD, name)).metadata.annotations![ORIGINAL_AUTOMATED_SYNC]!), SELF_HEAL);
    await settle();
    assert.equal(await replicas(ns), 0);
    await activities().startNamespace(ns);
    assert.deepEqual((await read(APPLICATIONS, ARGOCD, name)).spec.syncPolicy?.automated, SELF_HEAL);
    assert.equal(await replicas(ns), 3);
  });

  it('Flux: Kustomizations and HelmReleases aimed at it are suspended and stay so; start resumes only those it suspended', async () => {
    const ns = await environment();
    await kustomization(FLUX, `${ns}-apps`, ns);
    await helmRelease(ns, 'api', ns);
    await kustomization(FLUX, `${ns}-paused`, ns, true);
    const paused = await read(KUSTOMIZATIONS, FLUX, `${ns}-paused`);

    const stopped = await between(() => activities().stopNamespace(ns));
    assert.deepEqual(
      stopped.changed.map((c) => `${c.kind} ${c.name} ${c.from}->${c.to}`).sort(),
      ['Deployment api 3->0', 'HelmRelease api 1->0', `Kustomization ${FLUX}/${ns}-apps 1->0`].sort(),
    );
    for (const [resource, namespace, name] of [
      [KUSTOMIZATIONS, FLUX, `${ns}-apps`],
      [HELMRELEASES, ns, 'api'],
    ] as const) {
      const object = await read(resource, namespace, name);
      assert.equal(object.spec.suspend, true, name);
      assert.equal(object.metadata.annotations?.[ORIGINAL_SUSPEND], 'false', name);
    }
    await settle();
    assert.equal(await replicas(ns), 0, 'still asleep while helm-controller (test reconciler) runs');

    const started = await activities().startNamespace(ns);
    assert.deepEqual(
      started.changed.map((c) => `${c.kind} ${c.name} ${c.from}->${c.to}`).sort(),
      ['Deployment api 0->3', 'HelmRelease api 0->1', `Kustomization ${FLUX}/${ns}-apps 0->1`].sort(),
    );
    for (const [resource, namespace, name] of [
      [KUSTOMIZATIONS, FLUX, `${ns}-apps`],
      [HELMRELEASES, ns, 'api'],
    ] as const) {
      const object = await read(resource, namespace, name);
      assert.equal(object.spec.suspend, false, name);
      assert.equal(object.metadata.annotations?.[ORIGINAL_SUSPEND], undefined, name);
    }
    assert.equal((await read(KUSTOMIZATIONS, FLUX, `${ns}-paused`)).metadata.resourceVersion, paused.metadata.resourceVersion);
    // helm-controller reconciles again: drift is corrected.
    await apps.patchNamespacedDeployment({ namespace: ns, name: 'api', body: { spec: { replicas: 1 } } }, mergePatch);
    await eventually('helm-controller (test reconciler) to re-apply 3', async () => ((await replicas(ns)) === 3 ? true : undefined));
  });

  it('FLUX_NAMESPACES: a Kustomization in a namespace not listed is not looked at; `*` finds it', async () => {
    const ns = await environment();
    const elsewhere = `${ns}-flux`;
    await core.createNamespace({ body: { metadata: { name: elsewhere } } });
    await kustomization(elsewhere, 'apps', ns);
    assert.deepEqual(
      (await between(() => activities().stopNamespace(ns))).changed.map((c) => c.kind),
      ['Deployment'],
    );
    await activities().startNamespace(ns);
    assert.deepEqual(
      (await between(() => activities({ fluxNamespaces: ['*'] }).stopNamespace(ns))).changed.map((c) => c.name),
      [`${elsewhere}/apps`, 'api'],
    );
    await activities({ fluxNamespaces: ['*'] }).startNamespace(ns);
    assert.equal((await read(KUSTOMIZATIONS, elsewhere, 'apps')).spec.suspend, false);
  });

  it('while stopped, automated sync turned on again is found by the drift look and held again, saving what was turned on', async () => {
    const ns = await environment();
    const name = `${ns}-app`;
    await application(name, ns, SELF_HEAL);
    await between(() => activities().stopNamespace(ns));
    // managedFields times are to the second: the change must be the latest record.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const mine = { selfHeal: true, prune: false };
    await custom.patchNamespacedCustomObject(
      { ...APPLICATIONS, namespace: ARGOCD, name, fieldManager: 'argocd-server', body: { spec: { syncPolicy: { automated: mine } } } },
      mergePatch,
    );
    // Self-heal wakes the workload, which is what the drift look notices first.
    await eventually('self-heal to wake it', async () => ((await replicas(ns)) === 3 ? true : undefined));
    const drift = await activities().checkDrift(ns, { restop: true });
    const found = drift.awake.find((w) => w.kind === 'Application');
    assert.deepEqual(found && { name: found.name, by: found.by, restopped: found.restopped }, {
      name,
      by: 'argocd-server',
      restopped: true,
    });
    // What the channel and the namespace's Event say of it.
    assert.equal(describeWoken(found!), `Application ${name} set to sync automatically again by field manager argocd-server`);
    assert.deepEqual(JSON.parse((await read(APPLICATIONS, ARGOCD, name)).metadata.annotations![ORIGINAL_AUTOMATED_SYNC]!), mine);
    await activities().startNamespace(ns);
    assert.deepEqual((await read(APPLICATIONS, ARGOCD, name)).spec.syncPolicy?.automated, mine);
  });

  it('a sync already under way when the stop holds the Application, finishing after it, is put back to sleep by the drift look for good', async () => {
    const ns = await environment();
    await application(`${ns}-app`, ns, SELF_HEAL);
    await between(() => activities().stopNamespace(ns));
    // What Argo CD does when it started a sync just before automated sync was removed: it finishes it.
    await apps.patchNamespacedDeployment(
      { namespace: ns, name: 'api', fieldManager: 'argocd-controller', body: { spec: { replicas: 3 } } },
      mergePatch,
    );
    const drift = await activities().checkDrift(ns, { restop: true });
    assert.deepEqual(
      drift.awake.map((w) => [w.kind, w.name, w.by, w.restopped]),
      [['Deployment', 'api', 'argocd-controller', true]],
    );
    await settle();
    assert.equal(await replicas(ns), 0, 'no sync follows: automated sync is still held');
    await activities().startNamespace(ns);
    assert.equal(await replicas(ns), 3);
  });

  it('without the CRDs (no Argo CD, no Flux) stop and start work as before', async () => {
    const plain = await testCluster();
    const plainCore = plain.kubeConfig.makeApiClient(CoreV1Api);
    const plainApps = plain.kubeConfig.makeApiClient(AppsV1Api);
    const ns = `gitops-plain-${++counter}`;
    await plainCore.createNamespace({ body: { metadata: { name: ns } } });
    await plainApps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: 'api' },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: 'api' } },
          template: { metadata: { labels: { app: 'api' } }, spec: { containers: [{ name: 'app', image: 'registry.example/api:1' }] } },
        },
      },
    });
    const onPlain = activities({ fluxNamespaces: ['*'] }, plain.kubeConfig);
    assert.deepEqual((await onPlain.stopNamespace(ns)).changed, [{ kind: 'Deployment', name: 'api', from: 2, to: 0 }]);
    assert.deepEqual((await onPlain.startNamespace(ns)).changed, [{ kind: 'Deployment', name: 'api', from: 0, to: 2 }]);
  });

  describe("with the worker's identity (k8s/rbac.yaml) and its admission policies (k8s/admission-policy.yaml)", () => {
    let workerKubeConfig: KubeConfig;
    let workerCustom: CustomObjectsApi;

    before(async function () {
      this.timeout(60_000);
      for (const name of ['devenv-scheduler', 'devenv-support']) await core.createNamespace({ body: { metadata: { name } } });
      const client = KubernetesObjectApi.makeApiClient(cluster.kubeConfig);
      for (const file of ['rbac.yaml', 'argocd/rbac.yaml', 'admission-policy.yaml'])
        for (const object of loadAllYaml(readFileSync(path.join(__dirname, '../k8s', file), 'utf8')) as KubernetesObject[])
          await client.create(object);
      const token = await core.createNamespacedServiceAccountToken({
        namespace: 'devenv-scheduler',
        name: 'devenv-scheduler-worker',
        body: { spec: { audiences: [], expirationSeconds: 3600 } },
      });
      workerKubeConfig = cluster.kubeConfigForToken(token.status!.token);
      workerCustom = workerKubeConfig.makeApiClient(CustomObjectsApi);
      // A policy takes effect once the apiserver has loaded it: probe with a dry run it refuses.
      const probe = await environment();
      await kustomization(FLUX, `${probe}-probe`, probe);
      await eventually('the GitOps admission policy', () =>
        workerCustom
          .patchNamespacedCustomObject(
            { ...KUSTOMIZATIONS, namespace: FLUX, name: `${probe}-probe`, dryRun: 'All', body: { spec: { interval: '9m' } } },
            mergePatch,
          )
          .then(
            () => undefined,
            (error: unknown) => ((error as { code?: number }).code === 403 ? true : Promise.reject(error)),
          ),
      );
    });

    it('stop and start hold and hand back Applications and Flux objects with exactly these permissions', async () => {
      const ns = await environment();
      await application(`${ns}-app`, ns, SELF_HEAL);
      await kustomization(FLUX, `${ns}-apps`, ns);
      await helmRelease(ns, 'api', ns);
      const asWorker = activities({}, workerKubeConfig);
      assert.equal((await between(() => asWorker.stopNamespace(ns))).changed.length, 4);
      await settle();
      assert.equal(await replicas(ns), 0);
      assert.equal((await asWorker.startNamespace(ns)).changed.length, 4);
      assert.deepEqual((await read(APPLICATIONS, ARGOCD, `${ns}-app`)).spec.syncPolicy?.automated, SELF_HEAL);
      assert.equal((await read(KUSTOMIZATIONS, FLUX, `${ns}-apps`)).spec.suspend, false);
    });

    it('the worker may change nothing else of an Application or a Flux object', async () => {
      const ns = await environment();
      await application(`${ns}-app`, ns, SELF_HEAL);
      await kustomization(FLUX, `${ns}-apps`, ns);
      const refusal = async (resource: Resource, namespace: string, name: string, body: object) => {
        try {
          await workerCustom.patchNamespacedCustomObject({ ...resource, namespace, name, body }, mergePatch);
        } catch (error) {
          assert.equal((error as { code?: number }).code, 403, String(error));
          return (JSON.parse((error as { body: string }).body) as { message: string }).message;
        }
        assert.fail(`${JSON.stringify(body)} was accepted`);
      };
      const app = (body: object) => refusal(APPLICATIONS, ARGOCD, `${ns}-app`, body);
      assert.match(await app({ spec: { project: 'other' } }), /may change only spec\.syncPolicy\.automated of applications/);
      assert.match(await app({ spec: { source: { repoURL: 'https://evil.example/x.git' } } }), /only spec\.syncPolicy\.automated/);
      assert.match(await app({ spec: { syncPolicy: { syncOptions: ['Prune=false'] } } }), /only spec\.syncPolicy\.automated/);
      assert.match(await app({ metadata: { labels: { team: 'x' } } }), /no metadata but its own annotations/);
      assert.match(await app({ metadata: { annotations: { 'argocd.argoproj.io/skip-reconcile': 'true' } } }), /only annotations/);
      assert.match(await app({ metadata: { finalizers: ['resources-finalizer.argocd.argoproj.io'] } }), /no metadata/);
      // What a stop writes is allowed.
      await workerCustom.patchNamespacedCustomObject(
        {
          ...APPLICATIONS,
          namespace: ARGOCD,
          name: `${ns}-app`,
          fieldManager: 'devenv-scheduler',
          dryRun: 'All',
          body: { metadata: { annotations: { [ORIGINAL_AUTOMATED_SYNC]: '{}' } }, spec: { syncPolicy: { automated: null } } },
        },
        mergePatch,
      );
      // Field ownership, once the worker has a record of its own (a stop held the Application).
      await between(() => activities({}, workerKubeConfig).stopNamespace(ns));
      const held = await read(APPLICATIONS, ARGOCD, `${ns}-app`);
      const records = held.metadata.managedFields!;
      const own = records.find((r) => r.manager === 'devenv-scheduler')!;
      const others = records.filter((r) => r !== own);
      assert.ok(own && others.length > 0);
      const withRecords = (managedFields: object[]) => app({ metadata: { managedFields } });
      assert.match(await withRecords([{}]), /may not remove another manager's field ownership/);
      assert.match(await withRecords([own]), /may not remove another manager's field ownership/);
      assert.match(await withRecords([own, ...others.map((r) => ({ ...r, fieldsV1: {} }))]), /field ownership/);
      assert.match(
        await withRecords([...others, { ...own, fieldsV1: { 'f:spec': { 'f:project': {} } } }]),
        /may record itself \(managedFields, manager devenv-scheduler\) as the owner of spec\.syncPolicy\.automated/,
      );
      assert.match(
        await withRecords([...others, { ...own, fieldsV1: { 'f:spec': { 'f:syncPolicy': { 'f:syncOptions': {} } } } }]),
        /may record itself/,
      );
      // The record the apiserver folds old ones into is named exactly ancient-changes: no other name claims ownership freely.
      assert.match(
        await withRecords([
          ...records,
          {
            manager: 'ancient-changes-x',
            operation: 'Update',
            apiVersion: 'argoproj.io/v1alpha1',
            fieldsType: 'FieldsV1',
            fieldsV1: { 'f:spec': { 'f:project': {} } },
          },
        ]),
        /may not change another manager's field ownership/,
      );
      assert.equal((await read(APPLICATIONS, ARGOCD, `${ns}-app`)).metadata.resourceVersion, held.metadata.resourceVersion);
      const ks = (body: object) => refusal(KUSTOMIZATIONS, FLUX, `${ns}-apps`, body);
      assert.match(await ks({ spec: { targetNamespace: 'kube-system' } }), /may change only spec\.suspend of kustomizations/);
      assert.match(await ks({ spec: { prune: false } }), /only spec\.suspend/);
      await assert.rejects(
        workerCustom.deleteNamespacedCustomObject({ ...KUSTOMIZATIONS, namespace: FLUX, name: `${ns}-apps` }),
        (error: unknown) => (error as { code?: number }).code === 403,
      );
    });

    it('the worker only holds and hands back: no automated sync it did not hold, no suspend it did not set lifted, no operation or status', async () => {
      const ns = await environment();
      await application(`${ns}-manual`, ns);
      await application(`${ns}-app`, ns, SELF_HEAL);
      await kustomization(FLUX, `${ns}-frozen`, ns, true);
      await kustomization(FLUX, `${ns}-apps`, ns);
      const refusal = async (resource: Resource, namespace: string, name: string, body: object, fieldManager = 'devenv-scheduler') => {
        try {
          await workerCustom.patchNamespacedCustomObject({ ...resource, namespace, name, fieldManager, body }, mergePatch);
        } catch (error) {
          assert.equal((error as { code?: number }).code, 403, String(error));
          return (JSON.parse((error as { body: string }).body) as { message: string }).message;
        }
        assert.fail(`${JSON.stringify(body)} was accepted`);
      };
      const handOff = /may only remove spec\.syncPolicy\.automated of applications, saving it in devenv-scheduler\/original-automated-sync/;
      // An Application a person turned automated sync off on, or that never had it.
      const manual = (body: object) => refusal(APPLICATIONS, ARGOCD, `${ns}-manual`, body);
      assert.match(await manual({ spec: { syncPolicy: { automated: { prune: true, selfHeal: true, allowEmpty: true } } } }), handOff);
      assert.match(
        await manual({ metadata: { annotations: { [ORIGINAL_AUTOMATED_SYNC]: null } }, spec: { syncPolicy: { automated: SELF_HEAL } } }),
        handOff,
      );
      // Nor a marker of its own making, to "hand back" later.
      assert.match(
        await manual({ metadata: { annotations: { [ORIGINAL_AUTOMATED_SYNC]: JSON.stringify(SELF_HEAL) } } }),
        /may set devenv-scheduler\/original-automated-sync only as it removes spec\.syncPolicy\.automated/,
      );
      // Automated sync changed rather than removed, or removed without saving it.
      const app = (body: object, fieldManager?: string) => refusal(APPLICATIONS, ARGOCD, `${ns}-app`, body, fieldManager);
      assert.match(await app({ spec: { syncPolicy: { automated: { ...SELF_HEAL, allowEmpty: true } } } }), handOff);
      assert.match(await app({ spec: { syncPolicy: { automated: null } } }), handOff);
      // An Application has no status subresource: a sync of another source, "initiated by admin", through the object.
      const operation = {
        initiatedBy: { username: 'admin' },
        sync: { prune: true, source: { repoURL: 'https://evil.example/payload.git', path: '.', targetRevision: 'main' } },
      };
      assert.match(await app({ operation }, 'ancient-changes-x'), /may change only spec and metadata of applications \(not operation\)/);
      assert.match(await app({ status: { sync: { status: 'Synced' } } }), /only spec and metadata of applications \(not status\)/);
      // A Kustomization a person suspended stays so; one reconciling is suspended only with the marker.
      const frozen = (body: object) => refusal(KUSTOMIZATIONS, FLUX, `${ns}-frozen`, body);
      const suspendHandOff = /may only set spec\.suspend of kustomizations to true, with devenv-scheduler\/original-suspend: "false"/;
      assert.match(await frozen({ spec: { suspend: false } }), suspendHandOff);
      assert.match(
        await frozen({ metadata: { annotations: { [ORIGINAL_SUSPEND]: 'false' } } }),
        /may set devenv-scheduler\/original-suspend only as it sets spec\.suspend to true/,
      );
      const apps = (body: object) => refusal(KUSTOMIZATIONS, FLUX, `${ns}-apps`, body);
      assert.match(await apps({ spec: { suspend: true } }), suspendHandOff);
      assert.match(await apps({ metadata: { annotations: { [ORIGINAL_SUSPEND]: 'true' } }, spec: { suspend: true } }), suspendHandOff);

      // What stop, the drift look and start write is allowed: held, re-enabled by a person, held again, re-enabled, theirs on start.
      const asWorker = activities({}, workerKubeConfig);
      assert.equal((await between(() => asWorker.stopNamespace(ns))).changed.length, 3);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const mine = { selfHeal: true, prune: false };
      await custom.patchNamespacedCustomObject(
        {
          ...APPLICATIONS,
          namespace: ARGOCD,
          name: `${ns}-app`,
          fieldManager: 'argocd-server',
          body: { spec: { syncPolicy: { automated: mine } } },
        },
        mergePatch,
      );
      await custom.patchNamespacedCustomObject(
        { ...KUSTOMIZATIONS, namespace: FLUX, name: `${ns}-apps`, fieldManager: 'flux', body: { spec: { suspend: false } } },
        mergePatch,
      );
      await eventually('the workload woken', async () => ((await replicas(ns)) === 3 ? true : undefined));
      const drift = await between(() => asWorker.checkDrift(ns, { restop: true }));
      assert.deepEqual(
        drift.awake.filter((w) => w.kind !== 'Deployment').map((w) => [w.kind, w.restopped]),
        [
          ['Application', true],
          ['Kustomization', true],
        ],
      );
      assert.deepEqual(JSON.parse((await read(APPLICATIONS, ARGOCD, `${ns}-app`)).metadata.annotations![ORIGINAL_AUTOMATED_SYNC]!), mine);
      const theirs = { selfHeal: false };
      await custom.patchNamespacedCustomObject(
        { ...APPLICATIONS, namespace: ARGOCD, name: `${ns}-app`, body: { spec: { syncPolicy: { automated: theirs } } } },
        mergePatch,
      );
      await asWorker.startNamespace(ns);
      const after = await read(APPLICATIONS, ARGOCD, `${ns}-app`);
      assert.deepEqual(after.spec.syncPolicy?.automated, theirs);
      assert.equal(after.metadata.annotations?.[ORIGINAL_AUTOMATED_SYNC], undefined);
      assert.equal((await read(APPLICATIONS, ARGOCD, `${ns}-manual`)).spec.syncPolicy?.automated, undefined);
      assert.equal((await read(KUSTOMIZATIONS, FLUX, `${ns}-apps`)).spec.suspend, false);
      assert.equal((await read(KUSTOMIZATIONS, FLUX, `${ns}-frozen`)).spec.suspend, true);
    });

    it('an Argo CD namespace without the Role there fails the stop for good, saying it is RBAC, and changes nothing', async () => {
      const ns = await environment();
      await core.createNamespace({ body: { metadata: { name: `${ns}-argocd` } } });
      const asWorker = activities({ argocdNamespaces: [ARGOCD, `${ns}-argocd`] }, workerKubeConfig);
      await assert.rejects(asWorker.stopNamespace(ns), (error: unknown) => {
        assert.ok(error instanceof ApplicationFailure);
        assert.equal(error.type, 'KubernetesForbidden');
        assert.equal(error.nonRetryable, true);
        assert.match(error.message, new RegExp(`list Applications in ${ns}-argocd \\(HTTP 403\\).*k8s/rbac\\.yaml`));
        return true;
      });
      assert.equal(await replicas(ns), 3);
    });
  });
});

describe('GitOps hand-offs in the namespace Events (kubectl get events)', function () {
  const report = (changed: { kind: string; name: string; from: number; to: number }[]) => ({
    namespace: 'dev1',
    changed,
    unchanged: 0,
    durationMs: 1,
  });

  it('a stop says what it held off apart from the workloads it scaled down, a start what it handed back', function () {
    const stopped = eventFor({
      kind: 'stopped',
      namespace: 'dev1',
      by: 'scheduler',
      report: report([
        { kind: 'Application', name: 'argocd/dev1-web', from: 1, to: 0 },
        { kind: 'Deployment', name: 'web', from: 2, to: 0 },
        { kind: 'Kustomization', name: 'apps', from: 1, to: 0 },
      ]),
    });
    assert.equal(
      stopped.message,
      'Stopped by scheduler: 1 workload scaled down. GitOps held off: Application argocd/dev1-web, Kustomization apps.',
    );
    const started = eventFor({
      kind: 'started',
      namespace: 'dev1',
      by: 'U1',
      shutdownAt: null,
      report: report([
        { kind: 'Deployment', name: 'web', from: 0, to: 2 },
        { kind: 'HelmRelease', name: 'flux-system/dev1-db', from: 0, to: 1 },
      ]),
    });
    assert.equal(started.message, 'Started by U1: 1 workload restored. GitOps handed back: HelmRelease flux-system/dev1-db.');
    const plain = eventFor({
      kind: 'stopped',
      namespace: 'dev1',
      by: 'U1',
      report: report([{ kind: 'Deployment', name: 'web', from: 2, to: 0 }]),
    });
    assert.equal(plain.message, 'Stopped by U1: 1 workload scaled down.', 'nothing said of GitOps where there was none');
  });
});

describe('a GitOps kind whose CRD is installed just now', () => {
  it("a stop's inventory lists its objects at once, though a look just before remembered the CRD as not served", async () => {
    let installed = false;
    let requests = 0;
    // An apiserver without Flux's CRDs (404), then with them and the environment's Kustomization.
    const server = http.createServer((_req, res) => {
      requests++;
      res.writeHead(installed ? 200 : 404, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify(
          installed
            ? {
                apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
                kind: 'KustomizationList',
                metadata: {},
                items: [{ metadata: { name: 'apps', namespace: 'dev1', resourceVersion: '1' }, spec: { suspend: false } }],
              }
            : { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 404, reason: 'NotFound' },
        ),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const kubeConfig = new KubeConfig();
      kubeConfig.loadFromOptions({
        clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
        users: [{ name: 'u', token: 't' }],
        contexts: [{ name: 'c', cluster: 'c', user: 'u' }],
        currentContext: 'c',
      });
      const kind = createFluxKustomizationKind(kubeConfig, []);
      const stopBegan = Date.now();
      assert.deepEqual(await listKind(kind, 'dev1', 500, { notServedSince: stopBegan }), [], 'no CRD yet');
      assert.deepEqual(await listKind(kind, 'dev1', 500, { notServedSince: stopBegan }), [], "a rush's stops share that 404");
      assert.equal(requests, 1);
      installed = true;
      assert.deepEqual(await listKind(kind, 'dev1', 500, { resourceVersion: '0' }), [], 'a drift look still takes the 404 as it was');
      // The stop begins after that 404 was asked (a clock tick later).
      await new Promise((resolve) => setTimeout(resolve, 5));
      const listed = await listKind(kind, 'dev1', 500, { notServedSince: Date.now() });
      assert.deepEqual(
        listed.map((object) => object.metadata?.name),
        ['apps'],
      );
    } finally {
      server.close();
    }
  });
});
