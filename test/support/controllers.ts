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
import path from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';

/** What a fake Node offers: ample for every test's workloads, so scheduling never waits. */
const NODE_CAPACITY = { cpu: '64', memory: '256Gi', pods: '1000' };
/** kwok's published Stages: what its fake kubelet does to Nodes and Pods. */
const KWOK_STAGES = path.join(__dirname, '..', 'fixtures', 'kwok', 'stages.yaml');
/** How many fake Nodes kwok keeps. */
export const FAKE_NODES = 2;

export interface ControllerFiles {
  /** The admin kubeconfig. */
  kubeConfigPath: string;
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
): Promise<ChildProcess[]> {
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
      '--concurrent-deployment-syncs=10',
      '--concurrent-replicaset-syncs=10',
      '--horizontal-pod-autoscaler-sync-period=2s',
    ]),
    start('kube-scheduler', binary('KUBE_SCHEDULER_PATH', 'kube-scheduler'), [
      `--kubeconfig=${files.kubeConfigPath}`,
      `--authentication-kubeconfig=${files.kubeConfigPath}`,
      `--authorization-kubeconfig=${files.kubeConfigPath}`,
      '--leader-elect=false',
      '--secure-port=0',
    ]),
    start('kwok', binary('KWOK_PATH', 'kwok'), [
      `--kubeconfig=${files.kubeConfigPath}`,
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      '--cidr=10.244.0.1/16',
      '--node-ip=10.0.0.10',
      '--server-address=',
      `--config=${KWOK_STAGES}`,
    ]),
  ];

  const core = kubeConfig.makeApiClient(CoreV1Api);
  for (let i = 0; i < FAKE_NODES; i++) {
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
export async function nodesReady(kubeConfig: KubeConfig): Promise<boolean> {
  const nodes = await kubeConfig.makeApiClient(CoreV1Api).listNode();
  const ready = nodes.items.filter((node) => node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  return ready.length >= FAKE_NODES;
}

export const controllerLog = (dir: string, what: string): string => path.join(dir, `${what}.log`);
