/**
 * Flux and a stopped environment, with Flux's REAL source-controller and kustomize-controller
 * (test/support/flux.ts) on a test control plane of their own, the CRDs their releases
 * publish (test/fixtures/crds) and the environment's manifests in a bucket on moto's S3.
 * What a user checks: while the environment sleeps, Flux does not wake it, whatever Git
 * (here the bucket) says; on start Flux reconciles again; a Kustomization a person
 * suspended is still theirs.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { createKubernetesActivities } from '../src/activities/kubernetes';
import { ORIGINAL_SUSPEND } from '../src/activities/kubernetes/annotations';
import { FIELD_MANAGER } from '../src/activities/kubernetes/apiserver';
import { describeWoken } from '../src/domain/drift';
import { DEFAULT_GITOPS, type GitOpsSettings } from '../src/domain/gitops';
import { createLogger } from '../src/logger';
import { S3Bucket, startFluxControllers, type FluxControllers } from './support/flux';
import { testCluster, type TestCluster } from './support/kube';
import { createVendoredCrds } from './support/manifests';
import { moto, type Moto } from './support/moto';
import { eventually } from './support/slack';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const CRDS = ['kustomizations', 'buckets', 'gitrepositories', 'ocirepositories', 'helmrepositories', 'helmcharts', 'externalartifacts'].map(
  (kind) => `crds/flux-${kind}-crd.yaml`,
);
const FLUX = 'flux-system';
const KUSTOMIZATIONS = { group: 'kustomize.toolkit.fluxcd.io', version: 'v1', plural: 'kustomizations' };
const BUCKETS = { group: 'source.toolkit.fluxcd.io', version: 'v1', plural: 'buckets' };
const REQUESTED_AT = 'reconcile.fluxcd.io/requestedAt';
/** Short, so that a controller that would wake the environment does so within a test. */
const INTERVAL = '10s';
/** Several intervals of the real controllers: a reconcile they would make has happened by then. */
const FLUX_TIMEOUT = 60_000;

interface Flux {
  metadata: { name: string; resourceVersion: string; annotations?: Record<string, string>; managedFields?: { manager: string }[] };
  spec: { suspend?: boolean };
  status?: {
    lastAppliedRevision?: string;
    lastHandledReconcileAt?: string;
    artifact?: { revision: string };
    conditions?: { type: string; status: string; message?: string }[];
  };
}

/** The environment's one Deployment as Git has it: `replicas` 2, `revision` a label that tells the commits apart. */
const manifest = (revision: string) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  labels:
    revision: "${revision}"
spec:
  replicas: 2
  selector:
    matchLabels: { app: api }
  template:
    metadata:
      labels: { app: api }
    spec:
      containers:
        - name: app
          image: registry.example/api:1
`;

describe('Flux and a stopped environment (real kube-apiserver, real Flux source-controller and kustomize-controller, Bucket on moto S3)', function () {
  this.timeout(180_000);
  const logger = createLogger('silent');
  let cluster: TestCluster;
  let apps: AppsV1Api;
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  let s3: Moto;
  let controllers: FluxControllers;
  let counter = 0;
  let requests = 0;

  before(async function () {
    this.timeout(240_000);
    // A control plane of its own: the CRDs and the controllers would otherwise reach every other suite's.
    cluster = await testCluster('flux');
    await createVendoredCrds(cluster.kubeConfig, cluster.server, CRDS);
    apps = cluster.kubeConfig.makeApiClient(AppsV1Api);
    core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    custom = cluster.kubeConfig.makeApiClient(CustomObjectsApi);
    await core.createNamespace({ body: { metadata: { name: FLUX } } });
    s3 = await moto();
    controllers = await startFluxControllers(cluster.kubeConfigPath, mkdtempSync(path.join(os.tmpdir(), 'devenv-flux-')));
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.error(controllers?.tail());
  });

  after(async function () {
    this.timeout(30_000);
    await controllers?.stop();
  });

  const activities = (gitops: Partial<GitOpsSettings> = {}) =>
    createKubernetesActivities({ kubeConfig: cluster.kubeConfig, dryRun: false, logger, gitops: { ...DEFAULT_GITOPS, ...gitops } });

  const read = async (resource: typeof KUSTOMIZATIONS, name: string) =>
    (await custom.getNamespacedCustomObject({ ...resource, namespace: FLUX, name })) as Flux;
  const deployment = async (ns: string) => {
    try {
      return await apps.readNamespacedDeployment({ namespace: ns, name: 'api' });
    } catch (error) {
      if ((error as { code?: number }).code === 404) return undefined;
      throw error;
    }
  };
  const replicas = async (ns: string) => (await deployment(ns))?.spec?.replicas;

  /** What `flux reconcile` does: the controller reconciles the object now rather than at its next interval. */
  async function requestReconcile(resource: typeof KUSTOMIZATIONS, name: string): Promise<string> {
    const token = `${Date.now()}-${++requests}`;
    await custom.patchNamespacedCustomObject(
      { ...resource, namespace: FLUX, name, body: { metadata: { annotations: { [REQUESTED_AT]: token } } } },
      mergePatch,
    );
    return token;
  }

  /** How often kustomize-controller has said it skipped the Kustomization `name` for being suspended. */
  const skippedAsSuspended = (name: string) =>
    readFileSync(controllers.logs['kustomize-controller'], 'utf8')
      .split('\n')
      .filter((line) => line.includes('Reconciliation is suspended for this object') && line.includes(`"name":"${name}"`)).length;

  interface Environment {
    ns: string;
    kustomization: string;
    bucket: S3Bucket;
  }

  /**
   * A namespace whose Deployment `api` Flux applies from a bucket: a Bucket and a Kustomization
   * in flux-system aimed at it with `targetNamespace`, as `flux bootstrap` sets them up.
   * Returns once kustomize-controller has applied the first revision.
   */
  async function environment(): Promise<Environment> {
    const ns = `flux-env-${++counter}`;
    await core.createNamespace({ body: { metadata: { name: ns, labels: { scheduler: 'enabled' } } } });
    const bucket = new S3Bucket(s3, `${ns}-git`);
    await bucket.create();
    await bucket.put('deployment.yaml', manifest('1'));
    await core.createNamespacedSecret({ namespace: FLUX, body: S3Bucket.secret(`${ns}-s3`) });
    await custom.createNamespacedCustomObject({
      ...BUCKETS,
      namespace: FLUX,
      body: {
        apiVersion: 'source.toolkit.fluxcd.io/v1',
        kind: 'Bucket',
        metadata: { name: ns },
        spec: bucket.spec(`${ns}-s3`, INTERVAL),
      },
    });
    const kustomization = `${ns}-apps`;
    await custom.createNamespacedCustomObject({
      ...KUSTOMIZATIONS,
      namespace: FLUX,
      body: {
        apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
        kind: 'Kustomization',
        metadata: { name: kustomization },
        spec: { interval: INTERVAL, prune: true, path: './', sourceRef: { kind: 'Bucket', name: ns }, targetNamespace: ns, timeout: '30s' },
      },
    });
    await eventually(
      'kustomize-controller to apply the Deployment from the bucket',
      async () => ((await replicas(ns)) === 2 && (await read(KUSTOMIZATIONS, kustomization)).status?.lastAppliedRevision) || undefined,
      FLUX_TIMEOUT,
    );
    return { ns, kustomization, bucket };
  }

  /**
   * Waits for a reconcile asked for now to be done, so that a stop right after it does not
   * land in the middle of one: the next scheduled one is an interval away.
   */
  async function reconciled({ kustomization }: Environment): Promise<void> {
    const token = await requestReconcile(KUSTOMIZATIONS, kustomization);
    await eventually(
      'kustomize-controller to handle the reconcile request',
      async () => ((await read(KUSTOMIZATIONS, kustomization)).status?.lastHandledReconcileAt === token ? true : undefined),
      FLUX_TIMEOUT,
    );
  }

  /** A new commit: the bucket's Deployment gets `revision`; returns the revision source-controller makes of it. */
  async function commit({ ns, bucket }: Environment, revision: string): Promise<string> {
    const before = (await read(BUCKETS, ns)).status?.artifact?.revision;
    await bucket.put('deployment.yaml', manifest(revision));
    await requestReconcile(BUCKETS, ns);
    return eventually(
      'source-controller to fetch the new revision from the bucket',
      async () => {
        const now = (await read(BUCKETS, ns)).status?.artifact?.revision;
        return now && now !== before ? now : undefined;
      },
      FLUX_TIMEOUT,
    );
  }

  it('GITOPS=off: the real kustomize-controller scales the stopped environment straight back up (what the suspend is for)', async () => {
    const env = await environment();
    await reconciled(env);
    const stopped = await activities({ mode: 'off' }).stopNamespace(env.ns);
    assert.deepEqual(
      stopped.changed.map((c) => `${c.kind} ${c.name} ${c.from}->${c.to}`),
      ['Deployment api 2->0'],
    );
    await requestReconcile(KUSTOMIZATIONS, env.kustomization);
    await eventually(
      'kustomize-controller to put it back to 2',
      async () => ((await replicas(env.ns)) === 2 ? true : undefined),
      FLUX_TIMEOUT,
    );
  });

  it('a stop suspends the Kustomization: kustomize-controller leaves it at 0 through a new commit and a reconcile request; start resumes it and Flux applies again', async () => {
    const env = await environment();
    const { ns, kustomization } = env;
    const applied = (await read(KUSTOMIZATIONS, kustomization)).status!.lastAppliedRevision!;
    await reconciled(env);

    const stopped = await activities().stopNamespace(ns);
    assert.deepEqual(
      stopped.changed.map((c) => `${c.kind} ${c.name} ${c.from}->${c.to}`),
      [`Kustomization ${FLUX}/${kustomization} 1->0`, 'Deployment api 2->0'],
    );
    const suspended = await read(KUSTOMIZATIONS, kustomization);
    assert.equal(suspended.spec.suspend, true);
    assert.equal(suspended.metadata.annotations?.[ORIGINAL_SUSPEND], 'false');

    // Git moves on while the environment sleeps, and someone asks Flux to reconcile.
    const skipped = skippedAsSuspended(kustomization);
    const revision = await commit(env, '2');
    await requestReconcile(KUSTOMIZATIONS, kustomization);
    await eventually(
      'kustomize-controller to skip the suspended Kustomization',
      () => (skippedAsSuspended(kustomization) > skipped ? true : undefined),
      FLUX_TIMEOUT,
    );
    // And a full interval more, in which an unsuspended Kustomization would have been reconciled.
    await new Promise((resolve) => setTimeout(resolve, 12_000));
    assert.equal(await replicas(ns), 0, 'still asleep while the real kustomize-controller runs');
    assert.equal((await deployment(ns))?.metadata?.labels?.revision, '1', 'the new commit not applied');
    assert.equal((await read(KUSTOMIZATIONS, kustomization)).status?.lastAppliedRevision, applied);

    const started = await activities().startNamespace(ns);
    assert.deepEqual(
      started.changed.map((c) => `${c.kind} ${c.name} ${c.from}->${c.to}`),
      ['Deployment api 0->2', `Kustomization ${FLUX}/${kustomization} 0->1`],
    );
    const resumed = await read(KUSTOMIZATIONS, kustomization);
    assert.equal(resumed.spec.suspend, false);
    assert.equal(resumed.metadata.annotations?.[ORIGINAL_SUSPEND], undefined);
    // Flux is in charge again: the commit made while asleep is applied, and a manual scale is corrected.
    await eventually(
      'kustomize-controller to apply the new revision',
      async () =>
        (await read(KUSTOMIZATIONS, kustomization)).status?.lastAppliedRevision === revision &&
        (await deployment(ns))?.metadata?.labels?.revision === '2'
          ? true
          : undefined,
      FLUX_TIMEOUT,
    );
    assert.equal(await replicas(ns), 2);
    await apps.patchNamespacedDeployment({ namespace: ns, name: 'api', body: { spec: { replicas: 1 } } }, mergePatch);
    await requestReconcile(KUSTOMIZATIONS, kustomization);
    await eventually(
      'kustomize-controller to correct the drift to 2',
      async () => ((await replicas(ns)) === 2 ? true : undefined),
      FLUX_TIMEOUT,
    );
  });

  it('a Kustomization a person suspended before the stop is still suspended after start, and Flux still leaves it alone', async () => {
    const env = await environment();
    const { ns, kustomization } = env;
    const applied = (await read(KUSTOMIZATIONS, kustomization)).status!.lastAppliedRevision!;
    // What `flux suspend kustomization` does.
    await custom.patchNamespacedCustomObject(
      { ...KUSTOMIZATIONS, namespace: FLUX, name: kustomization, fieldManager: 'flux', body: { spec: { suspend: true } } },
      mergePatch,
    );

    const stopped = await activities().stopNamespace(ns);
    assert.deepEqual(
      stopped.changed.map((c) => `${c.kind} ${c.name} ${c.from}->${c.to}`),
      ['Deployment api 2->0'],
    );
    const started = await activities().startNamespace(ns);
    assert.deepEqual(
      started.changed.map((c) => `${c.kind} ${c.name} ${c.from}->${c.to}`),
      ['Deployment api 0->2'],
    );
    const after = await read(KUSTOMIZATIONS, kustomization);
    assert.equal(after.spec.suspend, true);
    assert.equal(after.metadata.annotations?.[ORIGINAL_SUSPEND], undefined);

    // Still suspended for Flux too: a new commit and a reconcile request are not applied.
    const skipped = skippedAsSuspended(kustomization);
    await commit(env, '2');
    await requestReconcile(KUSTOMIZATIONS, kustomization);
    await eventually(
      'kustomize-controller to skip the suspended Kustomization',
      () => (skippedAsSuspended(kustomization) > skipped ? true : undefined),
      FLUX_TIMEOUT,
    );
    assert.equal((await deployment(ns))?.metadata?.labels?.revision, '1');
    const last = await read(KUSTOMIZATIONS, kustomization);
    assert.equal(last.status?.lastAppliedRevision, applied);
    assert.deepEqual(
      (last.metadata.managedFields ?? []).filter((m) => m.manager === FIELD_MANAGER),
      [],
      'the service never wrote to it',
    );
  });

  it('while stopped, a Kustomization a person resumes is suspended again by the drift look once the real kustomize-controller wakes the workload', async () => {
    const env = await environment();
    const { ns, kustomization } = env;
    await reconciled(env);
    await activities().stopNamespace(ns);
    // managedFields times are to the second: the resume must be the latest record.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await custom.patchNamespacedCustomObject(
      { ...KUSTOMIZATIONS, namespace: FLUX, name: kustomization, fieldManager: 'flux', body: { spec: { suspend: false } } },
      mergePatch,
    );
    await eventually('kustomize-controller to wake it', async () => ((await replicas(ns)) === 2 ? true : undefined), FLUX_TIMEOUT);
    const drift = await activities().checkDrift(ns, { restop: true });
    assert.deepEqual(
      drift.awake.map((w) => [w.kind, w.name, w.by, w.restopped]),
      [
        ['Kustomization', kustomization, 'flux', true],
        ['Deployment', 'api', 'kustomize-controller', true],
      ],
    );
    assert.equal(describeWoken(drift.awake[0]!), `Kustomization ${kustomization} resumed by field manager flux`);
    const skipped = skippedAsSuspended(kustomization);
    await requestReconcile(KUSTOMIZATIONS, kustomization);
    await eventually(
      'kustomize-controller to skip the suspended Kustomization',
      () => (skippedAsSuspended(kustomization) > skipped ? true : undefined),
      FLUX_TIMEOUT,
    );
    assert.equal(await replicas(ns), 0);
    await activities().startNamespace(ns);
    assert.equal((await read(KUSTOMIZATIONS, kustomization)).spec.suspend, false);
    assert.equal(await replicas(ns), 2);
  });
});
