/**
 * A worker with the real Kubernetes activities in its own process, so a test can SIGKILL
 * it in the middle of a stop like a crashed pod. Notifications and AWS are recorded only.
 * Usage: ts-node kube-worker-process.ts <temporal address> <task queue> <kubeconfig> <concurrency>
 */
import { KubeConfig } from '@kubernetes/client-node';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createKubernetesActivities } from '../../src/activities/kubernetes';
import { createLogger } from '../../src/logger';
import { workflowCode } from '../../src/worker';
import { recordingActivities } from './recording-activities';

async function run(): Promise<void> {
  const [address, taskQueue, kubeConfigPath, concurrency] = process.argv.slice(2);
  if (!address || !taskQueue || !kubeConfigPath) throw new Error('usage: kube-worker-process.ts <address> <task queue> <kubeconfig> <concurrency>');
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeConfigPath);
  const worker = await Worker.create({
    connection: await NativeConnection.connect({ address }),
    taskQueue,
    ...workflowCode(),
    activities: {
      ...recordingActivities(async () => Date.now()),
      ...createKubernetesActivities({ kubeConfig, dryRun: false, logger: createLogger('silent'), concurrency: Number(concurrency ?? 3) }),
    },
  });
  console.log('worker ready');
  await worker.run();
}

run().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
