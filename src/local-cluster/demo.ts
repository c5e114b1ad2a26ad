/**
 * Sample environments for the local control plane of `npm start`: a few namespaces labelled
 * `scheduler=enabled`, each with Deployments and StatefulSets, so the reconciler enrols them
 * at start-up and there is something to stop and start. demo-1's shutdown is moved to a few
 * minutes after every start, so a newcomer sees it warned and stopped without waiting for
 * the evening; the others keep the service's default policy.
 */
import { AppsV1Api, CoreV1Api, type KubeConfig, type V1PodTemplateSpec } from '@kubernetes/client-node';
import { DateTime } from 'luxon';
import { POLICY_ANNOTATIONS, SCHEDULER_LABEL } from '../domain/enrolment';

/** demo-1's shutdown after a start: its last default warning (15 minutes before) comes about a minute after it. */
export const DEMO_SHUTDOWN_AFTER_MINUTES = 16;

interface Workload {
  kind: 'Deployment' | 'StatefulSet';
  name: string;
  replicas: number;
  image: string;
}

const DEMO: Record<string, Workload[]> = {
  'demo-1': [
    { kind: 'Deployment', name: 'web', replicas: 2, image: 'nginx:1.27' },
    { kind: 'Deployment', name: 'api', replicas: 1, image: 'ghcr.io/example/api:1.4.0' },
    { kind: 'StatefulSet', name: 'postgres', replicas: 1, image: 'postgres:17' },
  ],
  'demo-2': [
    { kind: 'Deployment', name: 'frontend', replicas: 1, image: 'nginx:1.27' },
    { kind: 'Deployment', name: 'backend', replicas: 2, image: 'ghcr.io/example/backend:2.0.1' },
    { kind: 'StatefulSet', name: 'redis', replicas: 1, image: 'redis:7' },
  ],
  'demo-3': [
    { kind: 'Deployment', name: 'worker', replicas: 1, image: 'ghcr.io/example/worker:0.9.3' },
    { kind: 'StatefulSet', name: 'rabbitmq', replicas: 1, image: 'rabbitmq:4' },
  ],
};

export const DEMO_NAMESPACES = Object.keys(DEMO);

export interface DemoEnvironments {
  namespaces: string[];
  /** The one whose shutdown comes soon, and when (HH:mm, UTC). */
  soon: { namespace: string; shutdownTime: string };
}

const SOON = 'demo-1';

/** Whatever time zone the service runs in, demo-1's own policy: every day a working day, in UTC. */
function soonPolicy(now: Date): Record<string, string> {
  const shutdown = DateTime.fromJSDate(now, { zone: 'UTC' }).plus({ minutes: DEMO_SHUTDOWN_AFTER_MINUTES });
  return {
    [POLICY_ANNOTATIONS.shutdownTime]: shutdown.toFormat('HH:mm'),
    [POLICY_ANNOTATIONS.timeZone]: 'UTC',
    [POLICY_ANNOTATIONS.workingDays]: 'Mon-Sun',
  };
}

const template = (app: string, image: string): V1PodTemplateSpec => ({
  metadata: { labels: { app } },
  spec: { containers: [{ name: app, image }] },
});

/**
 * Creates the sample namespaces and workloads that are missing (a control plane started
 * again on its own data keeps what it had, stopped environments included) and moves
 * demo-1's shutdown to a few minutes from `now`.
 */
export async function seedDemo(kubeConfig: KubeConfig, now: Date): Promise<DemoEnvironments> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const apps = kubeConfig.makeApiClient(AppsV1Api);
  const existing = new Set((await core.listNamespace()).items.map((ns) => ns.metadata?.name));
  for (const [namespace, workloads] of Object.entries(DEMO)) {
    const annotations = namespace === SOON ? soonPolicy(now) : {};
    if (existing.has(namespace)) {
      const current = await core.readNamespace({ name: namespace });
      current.metadata = { ...current.metadata, annotations: { ...current.metadata?.annotations, ...annotations } };
      await core.replaceNamespace({ name: namespace, body: current });
      continue;
    }
    await core.createNamespace({ body: { metadata: { name: namespace, labels: { [SCHEDULER_LABEL]: 'enabled' }, annotations } } });
    for (const { kind, name, replicas, image } of workloads) {
      const spec = { replicas, selector: { matchLabels: { app: name } }, template: template(name, image) };
      if (kind === 'Deployment') await apps.createNamespacedDeployment({ namespace, body: { metadata: { name }, spec } });
      else await apps.createNamespacedStatefulSet({ namespace, body: { metadata: { name }, spec: { ...spec, serviceName: name } } });
    }
  }
  return { namespaces: DEMO_NAMESPACES, soon: { namespace: SOON, shutdownTime: soonPolicy(now)[POLICY_ANNOTATIONS.shutdownTime]! } };
}
