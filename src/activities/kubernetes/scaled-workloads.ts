/**
 * Workloads that sleep at 0 replicas, one row per kind (Deployment, StatefulSet, Argo
 * Rollout), all by the same spec.replicas: the stop saves the replica count it found (never
 * 0) in the annotation annotations.ts owns and the start restores it; a workload a person
 * scaled up meanwhile keeps that count. A row says only how to reach its objects and what
 * its controller calls failing.
 */
import { AppsV1Api, type KubeConfig, type V1Deployment, type V1ObjectMeta, type V1StatefulSet } from '@kubernetes/client-node';
import type { WorkloadStatus } from '../contracts';
import { podRequests, type PodSpecResources } from '../../domain/savings';
import { isExcluded, savedReplicas } from './annotations';
import { FIELD_MANAGER, mergePatchMetadataOnly, type PageRequest } from './apiserver';
import { customObjects } from './custom-resources';
import { DEFAULT_WAKE_GROUP } from './wake-order';
import { managerOf, withConflictRetry, type Readiness, type WorkloadKind } from './workload-kind';

type ScaledKind = WorkloadStatus['kind'];

/** What the shared implementation reads of an object: its spec.replicas, and the counts and conditions its controller reports. */
interface Scaled {
  metadata?: V1ObjectMeta;
  spec?: { replicas?: number; template?: { spec?: PodSpecResources } };
  status?: { readyReplicas?: number; observedGeneration?: number; conditions?: { type: string; status: string; message?: string }[] };
}

interface ScaledApi<T extends Scaled> {
  list(namespace: string, page: PageRequest): Promise<{ items: T[]; metadata?: { _continue?: string } }>;
  read(namespace: string, name: string): Promise<T>;
  patch(namespace: string, name: string, body: object): Promise<unknown>;
}

/** How a scaled kind tells its controller's state: whether it cannot get there, whether it is there, and when it wakes. */
interface ScaledState<T extends Scaled> {
  failing(object: T): boolean;
  ready(object: T): Readiness;
  wakeGroup: number;
}

/** One kind of the table: how to reach its objects, and its controller's state. */
interface Row<T extends Scaled> extends ScaledState<T> {
  kind: ScaledKind;
  api(kubeConfig: KubeConfig): ScaledApi<T>;
}
/** "1 of 3 Ready: Deployment does not have minimum availability." from the counts and the first condition that says why. */
function notReady(object: Scaled, lacking: string): Readiness {
  const conditions: { type: string; status: string; message?: string }[] = object.status?.conditions ?? [];
  const why = conditions.find(
    (c) => (c.status === 'False' && c.type !== 'ReplicaFailure') || (c.type === 'ReplicaFailure' && c.status === 'True'),
  );
  const counts = `${object.status?.readyReplicas ?? 0} of ${object.spec?.replicas ?? 1} Ready`;
  return { ready: false, message: `${counts}${lacking ? `, ${lacking}` : ''}${why?.message ? `: ${why.message}` : ''}` };
}

/** The controller has seen the current spec: a status from before the last change says nothing about it. */
const observed = (object: Scaled) => (object.status?.observedGeneration ?? 0) >= (object.metadata?.generation ?? 0);

/** As `kubectl rollout status deployment` counts it: every desired replica updated and available, no old one left. */
function deploymentReady(deployment: V1Deployment): Readiness {
  const desired = deployment.spec?.replicas ?? 1;
  const status = deployment.status ?? {};
  if (!observed(deployment)) return notReady(deployment, 'its controller has not seen the change yet');
  if ((status.updatedReplicas ?? 0) < desired) return notReady(deployment, `${status.updatedReplicas ?? 0} updated`);
  if ((status.replicas ?? 0) > (status.updatedReplicas ?? 0)) return notReady(deployment, 'old replicas still terminating');
  if ((status.availableReplicas ?? 0) < desired) return notReady(deployment, `${status.availableReplicas ?? 0} available`);
  return { ready: true };
}

/** As `kubectl rollout status statefulset` counts it: every desired replica Ready, on the update revision. */
function statefulSetReady(statefulSet: V1StatefulSet): Readiness {
  const desired = statefulSet.spec?.replicas ?? 1;
  const status = statefulSet.status;
  if (!observed(statefulSet)) return notReady(statefulSet, 'its controller has not seen the change yet');
  if ((status?.readyReplicas ?? 0) < desired) return notReady(statefulSet, '');
  // OnDelete never moves pods to a new revision by itself: Ready is all a start can wait for.
  const rolling = statefulSet.spec?.updateStrategy?.type !== 'OnDelete';
  if (rolling && status?.updateRevision && status.currentRevision !== status.updateRevision) {
    return notReady(statefulSet, `rolling out revision ${status.updateRevision}`);
  }
  return { ready: true };
}

function scaledByReplicas<T extends Scaled>(kind: ScaledKind, api: ScaledApi<T>, state: ScaledState<T>): WorkloadKind<T> {
  return {
    kind,
    plural: `${kind}s`,
    stage: 'workload',
    list: api.list,
    ready: state.ready,
    wakeGroup: state.wakeGroup,

    asleep(object) {
      const saved = savedReplicas.read(object.metadata);
      return !isExcluded(object.metadata) && typeof saved === 'number' && saved > 0 && (object.spec?.replicas ?? 1) === 0;
    },

    sleep(listed, { namespace, write }) {
      const name = listed.metadata!.name!;
      return withConflictRetry(
        listed,
        () => api.read(namespace, name),
        async (object) => {
          if (isExcluded(object.metadata)) return {};
          const replicas = object.spec?.replicas ?? 1;
          if (replicas === 0) {
            const saved = savedReplicas.read(object.metadata);
            if (typeof saved !== 'number' || saved === 0) return {};
            return { asleep: { kind, name, replicas: saved, requests: podRequests(object.spec?.template?.spec) } };
          }
          // One patch saves the count and scales to 0, so no crash can separate the two; the
          // resourceVersion makes it fail (and be retried on a fresh read) if anyone changed the
          // workload since it was read. A count left by an earlier stop is simply overwritten by
          // the live one, which is what a restart must bring back.
          await write(
            `save the replica count of ${kind} ${namespace}/${name} and scale it from ${replicas} to 0`,
            { namespace, kind, name, from: replicas, to: 0 },
            () =>
              api.patch(namespace, name, {
                metadata: { resourceVersion: object.metadata?.resourceVersion, annotations: savedReplicas.save(replicas) },
                spec: { replicas: 0 },
              }),
          );
          // Pods that request nothing save nothing: the change says so by leaving its requests out.
          const requests = podRequests(object.spec?.template?.spec);
          const saves = requests.cpuMillicores > 0 || requests.memoryBytes > 0;
          return { change: { kind, name, from: replicas, to: 0, ...(saves ? { requests } : {}) } };
        },
      );
    },

    wake(listed, { namespace, write }) {
      const name = listed.metadata!.name!;
      return withConflictRetry(
        listed,
        () => api.read(namespace, name),
        async (object) => {
          if (isExcluded(object.metadata)) return {};
          const saved = savedReplicas.read(object.metadata);
          if (saved === undefined) return {};
          if (saved === 'invalid') {
            return {
              note: `${kind} ${name}: ${savedReplicas.key} is "${object.metadata?.annotations?.[savedReplicas.key]}", not a count; left as it is`,
            };
          }
          const replicas = object.spec?.replicas ?? 1;
          const metadata = { resourceVersion: object.metadata?.resourceVersion, annotations: savedReplicas.clear() };
          // Above 0 means a person scaled it while it was stopped: that count stands and only
          // the annotation goes. Otherwise one patch restores the count and clears it together.
          if (replicas === 0 && saved > 0) {
            await write(`restore ${kind} ${namespace}/${name} from 0 to ${saved}`, { namespace, kind, name, from: 0, to: saved }, () =>
              api.patch(namespace, name, { metadata, spec: { replicas: saved } }),
            );
            return { change: { kind, name, from: 0, to: saved } };
          }
          await write(`clear the saved replica count of ${kind} ${namespace}/${name}`, { namespace, kind, name }, () =>
            api.patch(namespace, name, { metadata }),
          );
          return {};
        },
      );
    },

    awake(object) {
      if (isExcluded(object.metadata)) return null;
      const replicas = object.spec?.replicas ?? 1;
      if (replicas === 0) return null;
      const by = managerOf(object.metadata, 'replicas', FIELD_MANAGER);
      return { replicas, created: savedReplicas.read(object.metadata) === undefined, ...(by ? { by } : {}) };
    },

    describe(object) {
      const saved = savedReplicas.read(object.metadata);
      const excluded = isExcluded(object.metadata);
      return {
        workload: {
          kind,
          name: object.metadata?.name ?? '',
          desired: object.spec?.replicas ?? 1,
          ready: object.status?.readyReplicas ?? 0,
          ...(typeof saved === 'number' ? { savedReplicas: saved } : {}),
          excluded,
        },
        failing: !excluded && state.failing(object),
      };
    },
  };
}

const row =
  <T extends Scaled>(r: Row<T>) =>
  (kubeConfig: KubeConfig) =>
    scaledByReplicas(r.kind, r.api(kubeConfig), r);

/** What is read of an Argo Rollout, which has no typed client. */
interface Rollout extends Scaled {
  status?: Scaled['status'] & { phase?: string; availableReplicas?: number; updatedReplicas?: number };
}

/** As `kubectl argo rollouts status` counts it: the controller says Healthy once every desired replica is updated and available. */
function rolloutReady(rollout: Rollout): Readiness {
  if (rollout.status?.phase !== 'Healthy') return notReady(rollout, `phase ${rollout.status?.phase ?? 'unknown'}`);
  return { ready: true };
}

const ROWS = [
  row<V1Deployment>({
    kind: 'Deployment',
    api(kubeConfig) {
      const apps = kubeConfig.makeApiClient(AppsV1Api);
      return {
        list: (namespace, page) => apps.listNamespacedDeployment({ namespace, ...page }),
        read: (namespace, name) => apps.readNamespacedDeployment({ namespace, name }),
        patch: (namespace, name, body) =>
          apps.patchNamespacedDeployment({ namespace, name, body, fieldManager: FIELD_MANAGER }, mergePatchMetadataOnly),
      };
    },
    // The Deployment controller's own word that it cannot get there.
    failing: (deployment) =>
      deployment.status?.conditions?.some(
        (c) => (c.type === 'Progressing' && c.status === 'False') || (c.type === 'ReplicaFailure' && c.status === 'True'),
      ) ?? false,
    ready: deploymentReady,
    wakeGroup: DEFAULT_WAKE_GROUP,
  }),
  row<V1StatefulSet>({
    kind: 'StatefulSet',
    api(kubeConfig) {
      const apps = kubeConfig.makeApiClient(AppsV1Api);
      return {
        list: (namespace, page) => apps.listNamespacedStatefulSet({ namespace, ...page }),
        read: (namespace, name) => apps.readNamespacedStatefulSet({ namespace, name }),
        patch: (namespace, name, body) =>
          apps.patchNamespacedStatefulSet({ namespace, name, body, fieldManager: FIELD_MANAGER }, mergePatchMetadataOnly),
      };
    },
    failing: () => false,
    ready: statefulSetReady,
    // Databases and queues first: the Deployments that connect to them wake once they are Ready.
    wakeGroup: DEFAULT_WAKE_GROUP - 1,
  }),
  // argoproj.io/v1alpha1, an optional CRD: without it a namespace simply has no Rollouts.
  row<Rollout>({
    kind: 'Rollout',
    api: (kubeConfig) => customObjects<Rollout>(kubeConfig, { group: 'argoproj.io', version: 'v1alpha1', plural: 'rollouts' }),
    // The Rollout controller's phase when a rollout failed or was aborted.
    failing: (rollout) => rollout.status?.phase === 'Degraded',
    ready: rolloutReady,
    wakeGroup: DEFAULT_WAKE_GROUP,
  }),
];

/** Every kind of the table, in its order. */
export function createScaledWorkloadKinds(kubeConfig: KubeConfig): WorkloadKind[] {
  return ROWS.map((make) => make(kubeConfig));
}
