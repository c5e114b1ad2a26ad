/**
 * The rest of a control plane, for tests that need controllers to act: kube-controller-manager
 * (Deployments get ReplicaSets and Pods, StatefulSets roll out, CronJobs create Jobs, the
 * HPA, garbage-collector and namespace controllers run), kube-scheduler, and kwok, the
 * Kubernetes project's node simulator: it keeps a few fake Nodes alive and plays the kubelet
 * for the Pods bound to them (Running and Ready at once, gone when deleted). No container
 * runs; everything a controller or client sees is what a real cluster would show.
 *
 * Binaries: scripts/setup-kube.sh builds all three into the tools cache next to
 * kube-apiserver; KUBE_CONTROLLER_MANAGER_PATH, KUBE_SCHEDULER_PATH and KWOK_PATH override.
 */
import { type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';

/** What a fake Node offers: ample for every test's workloads, so scheduling never waits. */
const NODE_CAPACITY = { cpu: '64', memory: '256Gi', pods: '1000' };
/** kwok's published Stages: what its fake kubelet does to Nodes and Pods. */
const KWOK_STAGES = path.join(__dirname, '..', 'fixtures', 'kwok', 'stages.yaml');
/** How many fake Nodes kwok keeps. */
export const FAKE_NODES = 2;

/**
 * For a benchmark of thousands of pods (bench/rush.ts): the controllers sized so that they
 * are not what is measured. Without it, the tests' settings: each of kube-controller-manager's
 * controllers and kube-scheduler talk to the apiserver at client-go's default rate (20 and 50
 * requests a second), which alone takes minutes to create or delete 5,000 pods.
 */
export interface ControllerScale {
  /** --kube-api-qps of kube-controller-manager (per controller) and kube-scheduler; the burst is twice it. */
  apiQps: number;
  /** Workers of the Deployment, ReplicaSet, StatefulSet and garbage-collector controllers. */
  syncs: number;
  /** kwok's podPlayStageParallelism: pods it moves to Ready, or deletes, at once (its default 4). */
  kwokParallelism: number;
  /** Fake Nodes, each taking NODE_CAPACITY.pods. */
  nodes: number;
}

export interface ControllerFiles {
  /** The admin kubeconfig. */
  kubeConfigPath: string;
  /** Where a configuration file of kwok's goes. */
  dir: string;
  /** The service-account signing key (the apiserver's --service-account-signing-key-file). */
  serviceAccountKey: string;
  caFile: string;
}

export type Starter = (what: string, binaryPath: string, args: string[], env?: Record<string, string>) => ChildProcess;

/** Starts the three and waits until the fake Nodes are Ready. */
export async function startControllers(
  binary: (envName: string, name: string) => string,
  start: Starter,
  files: ControllerFiles,
  kubeConfig: KubeConfig,
  scale?: ControllerScale,
): Promise<ChildProcess[]> {
  const rate = scale ? [`--kube-api-qps=${scale.apiQps}`, `--kube-api-burst=${scale.apiQps * 2}`] : [];
  const syncs = scale
    ? ['deployment', 'replicaset', 'statefulset', 'gc'].map((controller) => `--concurrent-${controller}-syncs=${scale.syncs}`)
    : ['--concurrent-deployment-syncs=10', '--concurrent-replicaset-syncs=10'];
  const kwokConfig = path.join(files.dir, 'kwok-configuration.yaml');
  if (scale) {
    writeFileSync(
      kwokConfig,
      // A KwokConfiguration of one's own takes none of kwok's defaults: the node options are its defaults.
      [
        'apiVersion: config.kwok.x-k8s.io/v1alpha1',
        'kind: KwokConfiguration',
        'options:',
        `  podPlayStageParallelism: ${scale.kwokParallelism}`,
        '  nodePlayStageParallelism: 4',
        '  nodeLeaseParallelism: 4',
        '',
      ].join('\n'),
    );
  }
  const children = [
    start('kube-controller-manager', binary('KUBE_CONTROLLER_MANAGER_PATH', 'kube-controller-manager'), [
      `--kubeconfig=${files.kubeConfigPath}`,
      '--leader-elect=false',
      `--service-account-private-key-file=${files.serviceAccountKey}`,
      `--root-ca-file=${files.caFile}`,
      '--use-service-account-credentials=false',
      // Node IPAM would need a cluster CIDR; kwok gives the fake nodes' pods their addresses.
      '--controllers=*,-nodeipam',
      '--secure-port=0',
      // A test's Deployment scaled back up is seen at once, not after the default sync.
      ...syncs,
      '--horizontal-pod-autoscaler-sync-period=2s',
      ...rate,
    ]),
    start('kube-scheduler', binary('KUBE_SCHEDULER_PATH', 'kube-scheduler'), [
      `--kubeconfig=${files.kubeConfigPath}`,
      `--authentication-kubeconfig=${files.kubeConfigPath}`,
      `--authorization-kubeconfig=${files.kubeConfigPath}`,
      '--leader-elect=false',
      '--secure-port=0',
      ...rate,
    ]),
    start('kwok', binary('KWOK_PATH', 'kwok'), [
      `--kubeconfig=${files.kubeConfigPath}`,
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      '--cidr=10.244.0.1/16',
      '--node-ip=10.0.0.10',
      '--server-address=',
      `--config=${KWOK_STAGES}`,
      ...(scale ? [`--config=${kwokConfig}`] : []),
    ]),
  ];

  const core = kubeConfig.makeApiClient(CoreV1Api);
  for (let i = 0; i < (scale?.nodes ?? FAKE_NODES); i++) {
    const name = `kwok-node-${i}`;
    await core.createNode({
      body: {
        metadata: {
          name,
          annotations: { 'kwok.x-k8s.io/node': 'fake' },
          labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', type: 'kwok' },
        },
        status: { capacity: NODE_CAPACITY, allocatable: NODE_CAPACITY },
      },
    });
  }
  return children;
}

/** Every fake Node is Ready: kwok has taken them over. */
export async function nodesReady(kubeConfig: KubeConfig, count = FAKE_NODES): Promise<boolean> {
  const nodes = await kubeConfig.makeApiClient(CoreV1Api).listNode();
  const ready = nodes.items.filter((node) => node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  return ready.length >= count;
}

export const controllerLog = (dir: string, what: string): string => path.join(dir, `${what}.log`);
