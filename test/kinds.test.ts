/**
 * The kinds other projects define, on a real kube-apiserver with their real CRDs applied
 * (test/fixtures/crds: KEDA's ScaledObject, Argo Rollouts' Rollout, as published): what a
 * person would check with kubectl after a stop, a drift re-check and a start, with the
 * admin's identity and with the worker's under k8s/rbac.yaml and k8s/admission-policy.yaml.
 * Neither project's controller runs here (no KEDA operator, no Rollouts controller): what
 * is checked is what the service writes, which is what those controllers act on. The HPA
 * controller does run in the last suite (src/local-cluster/control-plane.ts).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  ApiextensionsV1Api,
  AppsV1Api,
  AutoscalingV2Api,
  CoreV1Api,
  CustomObjectsApi,
  KubernetesObjectApi,
  loadAllYaml,
  type KubeConfig,
  type KubernetesObject,
  type V1ObjectMeta,
} from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { createKubernetesActivities } from '../src/activities/kubernetes';
import {
  EXCLUDE,
  KEDA_PAUSED,
  KEDA_PAUSED_BY_STOP,
  KEDA_PAUSED_REPLICAS,
  ORIGINAL_MIN_REPLICAS,
  ORIGINAL_REPLICAS,
} from '../src/activities/kubernetes/annotations';
import { FIELD_MANAGER, mergePatch } from '../src/activities/kubernetes/apiserver';
import { createNamespaceStatusReader } from '../src/activities/kubernetes/namespace-status';
import { describeDrift } from '../src/domain/drift';
import { createLogger } from '../src/logger';
import { testCluster, testClusterWithControllers, type TestCluster } from './support/kube';
import { eventually } from './support/slack';

const CRDS = ['keda.sh_scaledobjects.yaml', 'rollout-crd.yaml'].map((file) => path.join(__dirname, 'fixtures', 'crds', file));
const ROLLOUTS = { group: 'argoproj.io', version: 'v1alpha1', plural: 'rollouts' };
const SCALED_OBJECTS = { group: 'keda.sh', version: 'v1alpha1', plural: 'scaledobjects' };

interface Custom {
  metadata?: V1ObjectMeta;
  spec?: { replicas?: number; minReplicaCount?: number };
  status?: Record<string, unknown>;
}

/** The published CRDs, applied and served (Established) before any object of them is made. */
async function applyCrds(kubeConfig: KubeConfig): Promise<void> {
  const client = KubernetesObjectApi.makeApiClient(kubeConfig);
  const extensions = kubeConfig.makeApiClient(ApiextensionsV1Api);
  for (const file of CRDS) {
    for (const crd of loadAllYaml(readFileSync(file, 'utf8')) as KubernetesObject[]) {
      // Another suite of the run may have applied it to the shared cluster with controllers.
      await client.create(crd).catch((error: unknown) => {
        if ((error as { code?: number }).code !== 409) throw error;
      });
      await eventually(`CRD ${crd.metadata?.name} established`, async () => {
        const { status } = await extensions.readCustomResourceDefinition({ name: crd.metadata!.name! });
        return status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
      });
    }
  }
}

/** What the tests make and read, with one identity. */
function clients(kubeConfig: KubeConfig) {
  const apps = kubeConfig.makeApiClient(AppsV1Api);
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  const autoscaling = kubeConfig.makeApiClient(AutoscalingV2Api);
  const template = (app: string) => ({
    metadata: { labels: { app } },
    spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] },
  });
  return {
    apps,
    autoscaling,
    custom,
    template,
    deployment: (namespace: string, name: string, replicas: number, annotations?: Record<string, string>) =>
      apps.createNamespacedDeployment({
        namespace,
        body: { metadata: { name, annotations }, spec: { replicas, selector: { matchLabels: { app: name } }, template: template(name) } },
      }),
    rollout: (namespace: string, name: string, replicas: number) =>
      custom.createNamespacedCustomObject({
        ...ROLLOUTS,
        namespace,
        body: {
          apiVersion: 'argoproj.io/v1alpha1',
          kind: 'Rollout',
          metadata: { name },
          spec: {
            replicas,
            selector: { matchLabels: { app: name } },
            template: template(name),
            strategy: { canary: { steps: [{ setWeight: 20 }, { pause: {} }] } },
          },
        },
      }) as Promise<Custom>,
    /** A ScaledObject as KEDA's docs show one: a queue consumer scaled from 0 on its queue's length. */
    scaledObject: (namespace: string, name: string, target: string, annotations?: Record<string, string>) =>
      custom.createNamespacedCustomObject({
        ...SCALED_OBJECTS,
        namespace,
        body: {
          apiVersion: 'keda.sh/v1alpha1',
          kind: 'ScaledObject',
          metadata: { name, annotations },
          spec: {
            scaleTargetRef: { name: target },
            minReplicaCount: 0,
            maxReplicaCount: 10,
            triggers: [{ type: 'rabbitmq', metadata: { queueName: 'jobs', mode: 'QueueLength', value: '20' } }],
          },
        },
      }) as Promise<Custom>,
    /** The HPA KEDA makes for a ScaledObject: `keda-hpa-<name>`, owned by it. */
    kedaHpa: (namespace: string, owner: Custom, target: string, minReplicas: number) =>
      autoscaling.createNamespacedHorizontalPodAutoscaler({
        namespace,
        body: {
          metadata: {
            name: `keda-hpa-${owner.metadata!.name}`,
            ownerReferences: [
              {
                apiVersion: 'keda.sh/v1alpha1',
                kind: 'ScaledObject',
                name: owner.metadata!.name!,
                uid: owner.metadata!.uid!,
                controller: true,
                blockOwnerDeletion: true,
              },
            ],
          },
          spec: {
            scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: target },
            minReplicas,
            maxReplicas: 10,
            metrics: [
              {
                type: 'External',
                external: {
                  metric: { name: 's0-rabbitmq-jobs', selector: { matchLabels: { scaledobject: owner.metadata!.name! } } },
                  target: { type: 'AverageValue', averageValue: '20' },
                },
              },
            ],
          },
        },
      }),
    readRollout: (namespace: string, name: string) => custom.getNamespacedCustomObject({ ...ROLLOUTS, namespace, name }) as Promise<Custom>,
    readScaledObject: (namespace: string, name: string) =>
      custom.getNamespacedCustomObject({ ...SCALED_OBJECTS, namespace, name }) as Promise<Custom>,
    patchRollout: (namespace: string, name: string, body: object, fieldManager?: string) =>
      custom.patchNamespacedCustomObject({ ...ROLLOUTS, namespace, name, body, fieldManager }, mergePatch) as Promise<Custom>,
    patchScaledObject: (namespace: string, name: string, body: object, fieldManager?: string) =>
      custom.patchNamespacedCustomObject({ ...SCALED_OBJECTS, namespace, name, body, fieldManager }, mergePatch) as Promise<Custom>,
  };
}

/** A ScaledObject's annotations of KEDA's and the service's pause, as `kubectl get so -o yaml` shows them. */
const pauseOf = (object: Custom) => {
  const annotations = object.metadata?.annotations ?? {};
  return Object.fromEntries(
    [KEDA_PAUSED_REPLICAS, KEDA_PAUSED, KEDA_PAUSED_BY_STOP].flatMap((k) => (k in annotations ? [[k, annotations[k]]] : [])),
  );
};

describe('Argo Rollouts and KEDA ScaledObjects (real kube-apiserver, published CRDs)', function () {
  this.timeout(120_000);
  const logger = createLogger('silent');
  let cluster: TestCluster;
  let core: CoreV1Api;
  let kube: ReturnType<typeof clients>;
  let counter = 0;

  before(async function () {
    this.timeout(180_000);
    // A cluster of its own: the suites sharing the default one run without these CRDs.
    cluster = await testCluster('kinds');
    core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    kube = clients(cluster.kubeConfig);
    await applyCrds(cluster.kubeConfig);
  });

  const activities = (kubeConfig = cluster.kubeConfig) => createKubernetesActivities({ kubeConfig, dryRun: false, logger });

  /** An environment: only there may the worker's token stop anything (k8s/admission-policy.yaml). */
  async function namespace(): Promise<string> {
    const name = `kinds${++counter}`;
    await core.createNamespace({ body: { metadata: { name, labels: { scheduler: 'enabled' } } } });
    return name;
  }

  it('a Rollout is stopped and started like a Deployment: its count saved in the same annotation and format, and restored exactly', async () => {
    const ns = await namespace();
    await Promise.all([kube.rollout(ns, 'checkout', 3), kube.rollout(ns, 'idle', 0), kube.deployment(ns, 'api', 2)]);

    const stopped = await activities().stopNamespace(ns);
    assert.deepEqual(
      stopped.changed.filter((c) => c.kind === 'Rollout'),
      [{ kind: 'Rollout', name: 'checkout', from: 3, to: 0 }],
    );
    const asleep = await kube.readRollout(ns, 'checkout');
    const deployment = await kube.apps.readNamespacedDeployment({ namespace: ns, name: 'api' });
    assert.equal(asleep.spec?.replicas, 0);
    assert.equal(asleep.metadata?.annotations?.[ORIGINAL_REPLICAS], '3');
    assert.equal(deployment.metadata?.annotations?.[ORIGINAL_REPLICAS], '2', 'the same annotation as a Deployment');
    assert.equal((await kube.readRollout(ns, 'idle')).metadata?.annotations?.[ORIGINAL_REPLICAS], undefined, 'at 0 already: nothing saved');

    const again = await activities().stopNamespace(ns);
    assert.deepEqual(again.changed, [], 'a second stop keeps the saved count');
    assert.equal((await kube.readRollout(ns, 'checkout')).metadata?.annotations?.[ORIGINAL_REPLICAS], '3');

    const started = await activities().startNamespace(ns);
    assert.deepEqual(
      started.changed.filter((c) => c.kind === 'Rollout'),
      [{ kind: 'Rollout', name: 'checkout', from: 0, to: 3 }],
    );
    const awake = await kube.readRollout(ns, 'checkout');
    assert.equal(awake.spec?.replicas, 3);
    assert.equal(awake.metadata?.annotations?.[ORIGINAL_REPLICAS], undefined);
    assert.equal((await kube.readRollout(ns, 'idle')).spec?.replicas, 0);
  });

  it('a ScaledObject is paused at 0 before its target sleeps and resumed after it is awake; the HPA KEDA made for it is not touched', async () => {
    const ns = await namespace();
    await kube.deployment(ns, 'consumer', 2);
    const scaledObject = await kube.scaledObject(ns, 'consumer', 'consumer');
    // minReplicas 0: an HPA of the service's own would be pinned to 1 by a stop; KEDA's is KEDA's.
    await kube.kedaHpa(ns, scaledObject, 'consumer', 0);
    const hpaBefore = await kube.autoscaling.readNamespacedHorizontalPodAutoscaler({ namespace: ns, name: 'keda-hpa-consumer' });

    const stopped = await activities().stopNamespace(ns);
    assert.deepEqual(stopped.changed, [
      { kind: 'ScaledObject', name: 'consumer', from: 1, to: 0 },
      { kind: 'Deployment', name: 'consumer', from: 2, to: 0 },
    ]);
    const paused = await kube.readScaledObject(ns, 'consumer');
    assert.deepEqual(pauseOf(paused), { [KEDA_PAUSED_REPLICAS]: '0', [KEDA_PAUSED_BY_STOP]: 'true' });
    assert.deepEqual(paused.spec, scaledObject.spec, 'its spec is never changed');
    const hpaStopped = await kube.autoscaling.readNamespacedHorizontalPodAutoscaler({ namespace: ns, name: 'keda-hpa-consumer' });
    assert.equal(hpaStopped.metadata?.resourceVersion, hpaBefore.metadata?.resourceVersion, 'the HPA was not written');
    assert.equal(hpaStopped.metadata?.annotations?.[ORIGINAL_MIN_REPLICAS], undefined);

    const started = await activities().startNamespace(ns);
    assert.deepEqual(started.changed, [
      { kind: 'Deployment', name: 'consumer', from: 0, to: 2 },
      { kind: 'ScaledObject', name: 'consumer', from: 0, to: 1 },
    ]);
    assert.deepEqual(pauseOf(await kube.readScaledObject(ns, 'consumer')), {});
    assert.equal((await kube.apps.readNamespacedDeployment({ namespace: ns, name: 'consumer' })).spec?.replicas, 2);
    const hpaStarted = await kube.autoscaling.readNamespacedHorizontalPodAutoscaler({ namespace: ns, name: 'keda-hpa-consumer' });
    assert.equal(hpaStarted.metadata?.resourceVersion, hpaBefore.metadata?.resourceVersion, 'the HPA was not written');
    assert.equal((await activities().startNamespace(ns)).changed.length, 0, 'a second start changes nothing');
  });

  it('a ScaledObject someone paused is left alone by stop and start (its target still sleeps and wakes); an excluded one or one of an excluded target too', async () => {
    const ns = await namespace();
    await Promise.all([
      kube.deployment(ns, 'held', 1),
      kube.deployment(ns, 'frozen', 3),
      kube.deployment(ns, 'free', 1),
      kube.deployment(ns, 'kept', 2, { [EXCLUDE]: 'true' }),
    ]);
    await kube.scaledObject(ns, 'held', 'held', { [KEDA_PAUSED_REPLICAS]: '1' });
    await kube.scaledObject(ns, 'frozen', 'frozen', { [KEDA_PAUSED]: 'true' });
    await kube.scaledObject(ns, 'free', 'free', { [EXCLUDE]: 'true' });
    await kube.scaledObject(ns, 'kept', 'kept');
    const versions = async () =>
      Promise.all(
        ['held', 'frozen', 'free', 'kept'].map(async (name) => (await kube.readScaledObject(ns, name)).metadata?.resourceVersion),
      );
    const before = await versions();

    const stopped = await activities().stopNamespace(ns);
    assert.deepEqual(stopped.changed.map((c) => `${c.kind}/${c.name}`).sort(), ['Deployment/free', 'Deployment/frozen', 'Deployment/held']);
    assert.deepEqual(await versions(), before, 'no ScaledObject written');
    const started = await activities().startNamespace(ns);
    assert.deepEqual(started.changed.map((c) => `${c.kind}/${c.name}`).sort(), ['Deployment/free', 'Deployment/frozen', 'Deployment/held']);
    assert.deepEqual(await versions(), before, 'no ScaledObject written');
    assert.deepEqual(
      pauseOf(await kube.readScaledObject(ns, 'held')),
      { [KEDA_PAUSED_REPLICAS]: '1' },
      'still paused, as its owner left it',
    );
    assert.deepEqual(pauseOf(await kube.readScaledObject(ns, 'frozen')), { [KEDA_PAUSED]: 'true' });
  });

  it('while stopped, drift finds a Rollout scaled up and a ScaledObject whose pause was removed, says who, and puts both back to sleep', async () => {
    const ns = await namespace();
    await Promise.all([kube.rollout(ns, 'checkout', 2), kube.deployment(ns, 'consumer', 1)]);
    await kube.scaledObject(ns, 'consumer', 'consumer');
    await activities().stopNamespace(ns);
    assert.deepEqual((await activities().checkDrift(ns, { restop: true })).awake, [], 'asleep right after the stop');

    // `kubectl scale rollout checkout --replicas=4`, and someone lifting KEDA's pause by hand.
    await kube.patchRollout(ns, 'checkout', { spec: { replicas: 4 } }, 'kubectl');
    await kube.patchScaledObject(ns, 'consumer', { metadata: { annotations: { [KEDA_PAUSED_REPLICAS]: null } } }, 'kubectl-annotate');

    const reported = await createKubernetesActivities({
      kubeConfig: cluster.kubeConfig,
      dryRun: false,
      logger,
      drift: { mode: 'report', intervalMs: 60_000 },
    }).checkDrift(ns, { restop: true });
    assert.deepEqual(
      reported.awake.map((w) => `${w.kind}/${w.name} ${w.replicas} by ${w.by} ${w.restopped ? 'restopped' : 'reported'}`).sort(),
      // Who lifted a pause is not known: managedFields keep no record of a removed annotation.
      ['Rollout/checkout 4 by kubectl reported', 'ScaledObject/consumer 1 by undefined reported'],
    );

    const drift = await activities().checkDrift(ns, { restop: true });
    assert.deepEqual(
      drift.awake.map((w) => ({ kind: w.kind, name: w.name, replicas: w.replicas, created: w.created, restopped: w.restopped })),
      [
        // Guards first, as a stop does.
        { kind: 'ScaledObject', name: 'consumer', replicas: 1, created: false, restopped: true },
        { kind: 'Rollout', name: 'checkout', replicas: 4, created: false, restopped: true },
      ],
    );
    assert.equal(
      describeDrift('restop', drift.awake),
      'woke while stopped: ScaledObject consumer no longer paused by an unknown field manager; Rollout checkout scaled to 4 by field manager kubectl. ' +
        'Put back to sleep; the next start restores the count each was woken to',
      'what the channel and the Event say',
    );
    const rollout = await kube.readRollout(ns, 'checkout');
    assert.deepEqual(
      [rollout.spec?.replicas, rollout.metadata?.annotations?.[ORIGINAL_REPLICAS]],
      [0, '4'],
      'the count it was woken to saved',
    );
    assert.deepEqual(pauseOf(await kube.readScaledObject(ns, 'consumer')), { [KEDA_PAUSED_REPLICAS]: '0', [KEDA_PAUSED_BY_STOP]: 'true' });
    assert.deepEqual((await activities().checkDrift(ns, { restop: true })).awake, [], 'asleep again');

    await activities().startNamespace(ns);
    assert.equal((await kube.readRollout(ns, 'checkout')).spec?.replicas, 4, 'the start restores the count it was woken to');
    assert.deepEqual(pauseOf(await kube.readScaledObject(ns, 'consumer')), {});
  });

  it('status lists Rollouts with the Deployments, their ready count from the Rollout status', async () => {
    const ns = await namespace();
    await Promise.all([kube.rollout(ns, 'checkout', 3), kube.deployment(ns, 'api', 1)]);
    // No Rollouts controller runs: play its part in the status subresource.
    await kube.custom.patchNamespacedCustomObjectStatus(
      { ...ROLLOUTS, namespace: ns, name: 'checkout', body: { status: { replicas: 3, readyReplicas: 2, phase: 'Progressing' } } },
      mergePatch,
    );
    const status = await createNamespaceStatusReader(cluster.kubeConfig)(ns);
    assert.deepEqual(
      status.workloads.find((w) => w.kind === 'Rollout'),
      { kind: 'Rollout', name: 'checkout', desired: 3, ready: 2, excluded: false, notReady: '2 of 3 Ready, phase Progressing' },
    );
    await activities().stopNamespace(ns);
    const stopped = await createNamespaceStatusReader(cluster.kubeConfig)(ns);
    assert.equal(stopped.phase, 'stopped');
    assert.equal(stopped.workloads.find((w) => w.kind === 'Rollout')?.savedReplicas, 3);
  });

  it('a guard undone while nothing it guards is awake costs a quiet look nothing: it is put back once its target wakes', async () => {
    const ns = await namespace();
    await kube.deployment(ns, 'consumer', 2);
    await kube.scaledObject(ns, 'consumer', 'consumer');
    await activities().stopNamespace(ns);
    await kube.patchScaledObject(ns, 'consumer', { metadata: { annotations: { [KEDA_PAUSED_REPLICAS]: null } } }, 'kubectl-annotate');
    assert.deepEqual((await activities().checkDrift(ns, { restop: true })).awake, [], 'nothing runs: nothing to put back to sleep yet');
    // KEDA, no longer paused, scales its target up: both go back to sleep, the guard first.
    await kube.apps.patchNamespacedDeploymentScale(
      { namespace: ns, name: 'consumer', body: { spec: { replicas: 3 } }, fieldManager: 'keda' },
      mergePatch,
    );
    const drift = await activities().checkDrift(ns, { restop: true });
    assert.deepEqual(
      drift.awake.map((w) => `${w.kind}/${w.name} ${w.restopped ? 'restopped' : 'reported'}`),
      ['ScaledObject/consumer restopped', 'Deployment/consumer restopped'],
    );
    assert.deepEqual(pauseOf(await kube.readScaledObject(ns, 'consumer')), { [KEDA_PAUSED_REPLICAS]: '0', [KEDA_PAUSED_BY_STOP]: 'true' });
  });

  describe('with the identities of k8s/rbac.yaml and the admission policies of k8s/admission-policy.yaml', () => {
    const NAMESPACE = 'devenv-scheduler';
    let worker: KubeConfig;
    let api: KubeConfig;
    let asWorker: ReturnType<typeof clients>;

    const token = async (name: string) =>
      (
        await core.createNamespacedServiceAccountToken({
          namespace: NAMESPACE,
          name,
          body: { spec: { audiences: [], expirationSeconds: 3600 } },
        })
      ).status!.token;
    const refusal = async (request: Promise<unknown>): Promise<string> => {
      try {
        await request;
      } catch (error) {
        assert.equal((error as { code?: number }).code, 403, String(error));
        return (JSON.parse((error as { body: string }).body) as { message: string }).message;
      }
      assert.fail('accepted');
    };

    before(async function () {
      this.timeout(60_000);
      for (const name of [NAMESPACE, 'devenv-support']) await core.createNamespace({ body: { metadata: { name } } });
      const client = KubernetesObjectApi.makeApiClient(cluster.kubeConfig);
      for (const file of ['rbac.yaml', 'admission-policy.yaml', 'config.yaml']) {
        for (const object of loadAllYaml(readFileSync(path.join(__dirname, '../k8s', file), 'utf8')) as KubernetesObject[])
          await client.create(object);
      }
      worker = cluster.kubeConfigForToken(await token('devenv-scheduler-worker'));
      api = cluster.kubeConfigForToken(await token('devenv-scheduler-api'));
      asWorker = clients(worker);
      // The policies take effect once the apiserver has loaded them: probe with dry runs.
      const probe = await namespace();
      await kube.rollout(probe, 'probe', 1);
      await kube.scaledObject(probe, 'probe', 'probe');
      for (const [what, write] of [
        [
          'rollouts',
          () =>
            asWorker.custom.patchNamespacedCustomObject(
              { ...ROLLOUTS, namespace: probe, name: 'probe', body: { spec: { paused: true } }, dryRun: 'All' },
              mergePatch,
            ),
        ],
        [
          'scaledobjects',
          () =>
            asWorker.custom.patchNamespacedCustomObject(
              { ...SCALED_OBJECTS, namespace: probe, name: 'probe', body: { spec: { maxReplicaCount: 99 } }, dryRun: 'All' },
              mergePatch,
            ),
        ],
      ] as const) {
        await eventually(`the admission policy for ${what}`, () =>
          write().then(
            () => undefined,
            (error: unknown) => ((error as { code?: number }).code === 403 ? true : Promise.reject(error)),
          ),
        );
      }
    });

    it('the worker stops and starts Rollouts and ScaledObjects with exactly its role, under its admission policies; the API lists Rollouts and changes nothing', async () => {
      const ns = await namespace();
      await Promise.all([kube.rollout(ns, 'checkout', 3), kube.deployment(ns, 'consumer', 2)]);
      const scaledObject = await kube.scaledObject(ns, 'consumer', 'consumer');
      await kube.kedaHpa(ns, scaledObject, 'consumer', 1);

      const stopped = await activities(worker).stopNamespace(ns);
      assert.deepEqual(stopped.changed.map((c) => `${c.kind}/${c.name}`).sort(), [
        'Deployment/consumer',
        'Rollout/checkout',
        'ScaledObject/consumer',
      ]);
      const status = await createNamespaceStatusReader(api)(ns);
      assert.equal(status.phase, 'stopped');
      assert.deepEqual(
        status.workloads.find((w) => w.kind === 'Rollout'),
        {
          kind: 'Rollout',
          name: 'checkout',
          desired: 0,
          ready: 0,
          savedReplicas: 3,
          excluded: false,
        },
      );
      await assert.rejects(activities(api).startNamespace(ns), (error: unknown) => {
        assert.ok(error instanceof ApplicationFailure);
        assert.equal(error.type, 'KubernetesForbidden');
        return true;
      });
      await activities(worker).startNamespace(ns);
      assert.equal((await kube.readRollout(ns, 'checkout')).spec?.replicas, 3);
      assert.deepEqual(pauseOf(await kube.readScaledObject(ns, 'consumer')), {});
    });

    it("the worker may change a Rollout's spec.replicas and devenv-scheduler/ annotations and nothing else, and of a ScaledObject only its pause at 0 and the marker", async () => {
      const ns = await namespace();
      await kube.rollout(ns, 'checkout', 3);
      await kube.patchRollout(ns, 'checkout', { metadata: { labels: { team: 'a' }, annotations: { team: 'a' } } });
      await kube.scaledObject(ns, 'consumer', 'consumer', { team: 'a' });
      const rollout = (body: object) =>
        asWorker.custom.patchNamespacedCustomObject(
          { ...ROLLOUTS, namespace: ns, name: 'checkout', body, fieldManager: FIELD_MANAGER },
          mergePatch,
        );
      const scaledObject = (body: object) =>
        asWorker.custom.patchNamespacedCustomObject(
          { ...SCALED_OBJECTS, namespace: ns, name: 'consumer', body, fieldManager: FIELD_MANAGER },
          mergePatch,
        );

      // What stop and start send, as the one request each.
      await rollout({ metadata: { annotations: { [ORIGINAL_REPLICAS]: '3' } }, spec: { replicas: 0 } });
      await rollout({ metadata: { annotations: { [ORIGINAL_REPLICAS]: null } }, spec: { replicas: 3 } });
      await scaledObject({ metadata: { annotations: { [KEDA_PAUSED_REPLICAS]: '0', [KEDA_PAUSED_BY_STOP]: 'true' } } });
      await scaledObject({ metadata: { annotations: { [KEDA_PAUSED_REPLICAS]: null, [KEDA_PAUSED_BY_STOP]: null } } });
      await scaledObject({ metadata: { annotations: { [KEDA_PAUSED_REPLICAS]: '0', [KEDA_PAUSED_BY_STOP]: 'true' } } });
      const state = async () => [
        (await kube.readRollout(ns, 'checkout')).metadata?.resourceVersion,
        (await kube.readScaledObject(ns, 'consumer')).metadata?.resourceVersion,
      ];
      const allowed = await state();

      const image = { template: { spec: { containers: [{ name: 'app', image: 'attacker/miner' }] } } };
      const refused: [typeof rollout, string, object, RegExp][] = [
        [rollout, 'the image', { spec: image }, /may change only spec\.replicas of rollouts/],
        [rollout, 'replicas together with the image', { spec: { replicas: 1, ...image } }, /may change only spec\.replicas of rollouts/],
        [rollout, 'spec.paused (a canary held)', { spec: { paused: true } }, /may change only spec\.replicas of rollouts/],
        [rollout, 'the strategy', { spec: { strategy: { canary: { steps: [] } } } }, /may change only spec\.replicas of rollouts/],
        [
          rollout,
          'the workload reference',
          { spec: { workloadRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'other' } } },
          /may change only spec\.replicas of rollouts/,
        ],
        [rollout, 'a label', { metadata: { labels: { team: 'b' } } }, /may change no metadata but its own annotations/],
        [
          rollout,
          'an annotation not its own',
          { metadata: { annotations: { team: 'b' } } },
          /whose key starts with devenv-scheduler\/ of rollouts/,
        ],
        [
          rollout,
          "KEDA's pause on a Rollout",
          { metadata: { annotations: { [KEDA_PAUSED_REPLICAS]: '0' } } },
          /whose key starts with devenv-scheduler\/ of rollouts/,
        ],
        [rollout, 'a finalizer', { metadata: { finalizers: ['example.com/hold'] } }, /may change no metadata but its own annotations/],
        [
          rollout,
          'field ownership: the worker as owner of the pod template',
          {
            metadata: {
              managedFields: [
                {
                  manager: FIELD_MANAGER,
                  operation: 'Update',
                  apiVersion: 'argoproj.io/v1alpha1',
                  fieldsType: 'FieldsV1',
                  fieldsV1: { 'f:spec': { 'f:template': {} } },
                },
              ],
            },
          },
          /field ownership|managedFields/,
        ],
        [scaledObject, 'the maximum', { spec: { maxReplicaCount: 100 } }, /may change nothing of the spec of scaledobjects/],
        [scaledObject, 'the minimum', { spec: { minReplicaCount: 3 } }, /may change nothing of the spec of scaledobjects/],
        [scaledObject, 'the target', { spec: { scaleTargetRef: { name: 'other' } } }, /may change nothing of the spec of scaledobjects/],
        [
          scaledObject,
          'the triggers',
          {
            spec: {
              triggers: [{ type: 'cron', metadata: { start: '0 8 * * *', end: '0 9 * * *', desiredReplicas: '50', timezone: 'UTC' } }],
            },
          },
          /may change nothing of the spec of scaledobjects/,
        ],
        [
          scaledObject,
          'the pause together with the minimum',
          { metadata: { annotations: { [KEDA_PAUSED_REPLICAS]: null } }, spec: { minReplicaCount: 3 } },
          /may change nothing of the spec of scaledobjects/,
        ],
        [scaledObject, 'a pause at another count', { metadata: { annotations: { [KEDA_PAUSED_REPLICAS]: '5' } } }, /paused-replicas/],
        [
          scaledObject,
          'the pause lifted without the marker that the stop set it',
          { metadata: { annotations: { [KEDA_PAUSED_REPLICAS]: null } } },
          /may lift only a pause it set/,
        ],
        [
          rollout,
          'field ownership: a manager named like the record the apiserver folds old ones into',
          {
            metadata: {
              managedFields: [
                ...((await kube.readRollout(ns, 'checkout')).metadata?.managedFields ?? []),
                {
                  manager: 'ancient-changes-x',
                  operation: 'Update',
                  apiVersion: 'argoproj.io/v1alpha1',
                  fieldsType: 'FieldsV1',
                  fieldsV1: { 'f:spec': { 'f:template': {} } },
                },
              ],
            },
          },
          /may not change another manager's field ownership/,
        ],
        [
          scaledObject,
          "KEDA's other pause",
          { metadata: { annotations: { [KEDA_PAUSED]: 'true' } } },
          /may change only the annotations devenv-scheduler\/keda-paused and autoscaling\.keda\.sh\/paused-replicas of scaledobjects/,
        ],
        [
          scaledObject,
          'another devenv-scheduler/ annotation',
          { metadata: { annotations: { [ORIGINAL_REPLICAS]: '9' } } },
          /may change only the annotations devenv-scheduler\/keda-paused and autoscaling\.keda\.sh\/paused-replicas of scaledobjects/,
        ],
        [scaledObject, 'an annotation not its own', { metadata: { annotations: { team: 'b' } } }, /may change only the annotations/],
        [scaledObject, 'a label', { metadata: { labels: { team: 'b' } } }, /may change no metadata but its own annotations/],
        [
          scaledObject,
          'an owner reference',
          {
            metadata: {
              ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'gone', uid: '0a1b2c3d-0000-0000-0000-000000000000' }],
            },
          },
          /may change no metadata but its own annotations/,
        ],
      ];
      for (const [write, what, body, reason] of refused) {
        const message = await refusal(write(body));
        assert.match(message, /ValidatingAdmissionPolicy 'devenv-scheduler-worker-fields'/, what);
        assert.match(message, reason, what);
      }
      assert.deepEqual(await state(), allowed, 'nothing refused was written');

      // Creating, deleting and the scale subresource: RBAC already says no.
      assert.match(
        await refusal(asWorker.custom.deleteNamespacedCustomObject({ ...ROLLOUTS, namespace: ns, name: 'checkout' })),
        /cannot delete resource "rollouts"/,
      );
      assert.match(
        await refusal(asWorker.custom.deleteNamespacedCustomObject({ ...SCALED_OBJECTS, namespace: ns, name: 'consumer' })),
        /cannot delete resource "scaledobjects"/,
      );
      assert.match(
        await refusal(
          asWorker.custom.patchNamespacedCustomObjectScale(
            { ...ROLLOUTS, namespace: ns, name: 'checkout', body: { spec: { replicas: 9 } } },
            mergePatch,
          ),
        ),
        /cannot patch resource "rollouts\/scale"/,
      );
      assert.match(await refusal(asWorker.rollout(ns, 'new', 1)), /cannot create resource "rollouts"/);
    });

    it('a pause a person set is theirs: the worker may neither lift it nor mark it as its own to lift later', async () => {
      const ns = await namespace();
      await kube.scaledObject(ns, 'held', 'held', { [KEDA_PAUSED_REPLICAS]: '0' });
      const held = (body: object) => refusal(asWorker.patchScaledObject(ns, 'held', body, FIELD_MANAGER));
      const before = await kube.readScaledObject(ns, 'held');
      assert.match(await held({ metadata: { annotations: { [KEDA_PAUSED_REPLICAS]: null } } }), /may lift only a pause it set/);
      assert.match(
        await held({ metadata: { annotations: { [KEDA_PAUSED_BY_STOP]: 'true' } } }),
        /may set devenv-scheduler\/keda-paused of scaledobjects only as it pauses one/,
      );
      assert.match(
        await held({ metadata: { annotations: { [KEDA_PAUSED_REPLICAS]: '0', [KEDA_PAUSED_BY_STOP]: 'true' } } }),
        /may set devenv-scheduler\/keda-paused of scaledobjects only as it pauses one/,
      );
      assert.equal((await kube.readScaledObject(ns, 'held')).metadata?.resourceVersion, before.metadata?.resourceVersion);
      // Stop and start with the worker's identity leave it paused.
      await activities(worker).stopNamespace(ns);
      await activities(worker).startNamespace(ns);
      assert.deepEqual(pauseOf(await kube.readScaledObject(ns, 'held')), { [KEDA_PAUSED_REPLICAS]: '0' });
    });

    it('outside the environments the worker may not scale a Rollout down nor pause a ScaledObject, only put back what it saved', async () => {
      const ns = `keda-system-${counter}`;
      await core.createNamespace({ body: { metadata: { name: ns } } });
      await kube.rollout(ns, 'gateway', 2);
      await kube.scaledObject(ns, 'consumer', 'consumer');
      const environmentsOnly = /ValidatingAdmissionPolicy 'devenv-scheduler-worker-environments-only'.*may only restore what it saved/;
      assert.match(
        await refusal(
          asWorker.patchRollout(
            ns,
            'gateway',
            { metadata: { annotations: { [ORIGINAL_REPLICAS]: '2' } }, spec: { replicas: 0 } },
            FIELD_MANAGER,
          ),
        ),
        environmentsOnly,
      );
      const pause = { metadata: { annotations: { [KEDA_PAUSED_REPLICAS]: '0', [KEDA_PAUSED_BY_STOP]: 'true' } } };
      assert.match(await refusal(asWorker.patchScaledObject(ns, 'consumer', pause, FIELD_MANAGER)), environmentsOnly);
      // A namespace that left management while stopped: the pause the stop set is lifted and the saved count put back, and only that.
      await kube.patchScaledObject(ns, 'consumer', pause);
      assert.match(
        await refusal(
          asWorker.patchScaledObject(ns, 'consumer', { metadata: { annotations: { [KEDA_PAUSED_BY_STOP]: null } } }, FIELD_MANAGER),
        ),
        environmentsOnly,
        'the marker without the pause',
      );
      await kube.patchRollout(ns, 'gateway', { metadata: { annotations: { [ORIGINAL_REPLICAS]: '2' } }, spec: { replicas: 0 } });
      await activities(worker).startNamespace(ns);
      assert.deepEqual(pauseOf(await kube.readScaledObject(ns, 'consumer')), {});
      const rollout = await kube.readRollout(ns, 'gateway');
      assert.deepEqual(
        [rollout.spec?.replicas, rollout.metadata?.annotations?.[ORIGINAL_REPLICAS]],
        [2, undefined],
        'its saved count put back',
      );
    });
  });
});

describe('without the CRDs of Argo Rollouts and KEDA (real kube-apiserver)', function () {
  this.timeout(120_000);

  it('a namespace has none of them: stop, drift, status and start work as before, and a list refused by RBAC still fails as such', async () => {
    const cluster = await testCluster();
    const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    const extensions = cluster.kubeConfig.makeApiClient(ApiextensionsV1Api);
    const installed = (await extensions.listCustomResourceDefinition()).items.map((crd) => crd.metadata?.name);
    assert.ok(!installed.includes('rollouts.argoproj.io') && !installed.includes('scaledobjects.keda.sh'), 'this cluster has neither CRD');
    const ns = `no-crds-${process.pid % 10000}`;
    await core.createNamespace({ body: { metadata: { name: ns, labels: { scheduler: 'enabled' } } } });
    const { deployment, apps } = clients(cluster.kubeConfig);
    await deployment(ns, 'api', 2);
    const activities = createKubernetesActivities({ kubeConfig: cluster.kubeConfig, dryRun: false, logger: createLogger('silent') });

    assert.deepEqual((await activities.stopNamespace(ns)).changed, [{ kind: 'Deployment', name: 'api', from: 2, to: 0 }]);
    assert.deepEqual((await activities.checkDrift(ns, { restop: true })).awake, []);
    assert.equal((await createNamespaceStatusReader(cluster.kubeConfig)(ns)).phase, 'stopped');
    assert.deepEqual((await activities.startNamespace(ns)).changed, [{ kind: 'Deployment', name: 'api', from: 0, to: 2 }]);
    assert.equal((await apps.readNamespacedDeployment({ namespace: ns, name: 'api' })).spec?.replicas, 2);

    // An identity that may list Deployments but not Rollouts: a 403 is no "not installed".
    const rbac = KubernetesObjectApi.makeApiClient(cluster.kubeConfig);
    const name = `apps-only-${process.pid % 10000}`;
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name } } });
    await rbac.create({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name, namespace: ns },
      rules: [
        { apiGroups: [''], resources: ['namespaces'], verbs: ['get'] },
        { apiGroups: ['apps'], resources: ['deployments', 'statefulsets'], verbs: ['list'] },
        { apiGroups: ['batch'], resources: ['cronjobs'], verbs: ['list'] },
      ],
    } as KubernetesObject);
    await rbac.create({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name, namespace: ns },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace: ns }],
    } as KubernetesObject);
    await rbac.create({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name },
      rules: [{ apiGroups: [''], resources: ['namespaces'], verbs: ['get'] }],
    } as KubernetesObject);
    await rbac.create({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace: ns }],
    } as KubernetesObject);
    const { token } = (await core.createNamespacedServiceAccountToken({ namespace: ns, name, body: { spec: { audiences: [] } } })).status!;
    await assert.rejects(createNamespaceStatusReader(cluster.kubeConfigForToken(token))(ns), (error: unknown) => {
      assert.ok(error instanceof ApplicationFailure);
      assert.equal(error.type, 'KubernetesForbidden');
      assert.match(error.message, /list Rollouts in/);
      return true;
    });
  });
});

describe('a ScaledObject and the HPA KEDA made for it, with the real HPA controller', function () {
  this.timeout(180_000);

  it('a stop leaves the HPA to KEDA and the HPA controller stands aside while the target is at 0; the start brings the pods back Ready', async () => {
    const cluster = await testClusterWithControllers();
    await applyCrds(cluster.kubeConfig);
    const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    const kube = clients(cluster.kubeConfig);
    const ns = `kinds-hpa-${process.pid % 10000}`;
    await core.createNamespace({ body: { metadata: { name: ns, labels: { scheduler: 'enabled' } } } });
    await kube.deployment(ns, 'consumer', 2);
    const scaledObject = await kube.scaledObject(ns, 'consumer', 'consumer');
    // KEDA's own HPA keeps a minimum of 1 and leaves 0 to KEDA.
    await kube.kedaHpa(ns, scaledObject, 'consumer', 1);
    const readyPods = async () =>
      (await kube.apps.readNamespacedDeployment({ namespace: ns, name: 'consumer' })).status?.readyReplicas ?? 0;
    await eventually('the consumer Ready', async () => ((await readyPods()) === 2 ? true : undefined), 60_000);
    const hpa = () => kube.autoscaling.readNamespacedHorizontalPodAutoscaler({ namespace: ns, name: 'keda-hpa-consumer' });
    const hpaBefore = await hpa();
    const activities = createKubernetesActivities({ kubeConfig: cluster.kubeConfig, dryRun: false, logger: createLogger('silent') });

    await activities.stopNamespace(ns);
    await eventually(
      'the HPA controller to see its target at 0',
      async () =>
        (await hpa()).status?.conditions?.some((c) => c.type === 'ScalingActive' && c.reason === 'ScalingDisabled') ? true : undefined,
      60_000,
    );
    await eventually(
      'every pod gone',
      async () => ((await core.listNamespacedPod({ namespace: ns })).items.length === 0 ? true : undefined),
      60_000,
    );
    const hpaStopped = await hpa();
    assert.deepEqual(hpaStopped.spec, hpaBefore.spec, "the HPA is KEDA's: unchanged");
    assert.deepEqual(hpaStopped.metadata?.annotations, hpaBefore.metadata?.annotations);
    assert.equal(
      (await kube.apps.readNamespacedDeployment({ namespace: ns, name: 'consumer' })).spec?.replicas,
      0,
      'nothing scaled it back up',
    );
    assert.deepEqual(pauseOf(await kube.readScaledObject(ns, 'consumer')), { [KEDA_PAUSED_REPLICAS]: '0', [KEDA_PAUSED_BY_STOP]: 'true' });

    await activities.startNamespace(ns);
    await eventually('the consumer Ready again', async () => ((await readyPods()) === 2 ? true : undefined), 60_000);
    assert.deepEqual(pauseOf(await kube.readScaledObject(ns, 'consumer')), {});
    assert.deepEqual((await hpa()).spec, hpaBefore.spec);
  });
});
