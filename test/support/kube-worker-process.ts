/**
 * A worker with the real Kubernetes activities in its own process, built by src/worker.ts's
 * createWorker with the worker settings of src/config.ts (from this process's environment,
 * e.g. WORKER_SHUTDOWN_GRACE_SECONDS), so a test can SIGKILL it in the middle of a stop like
 * a crashed pod, or SIGTERM it like a rolling deploy: the Temporal runtime's signal handler
 * then shuts the worker down, and the process exits once the worker has stopped.
 * Notifications and AWS are recorded only.
 * Usage: ts-node kube-worker-process.ts <temporal address> <task queue> <kubeconfig> <concurrency>
 */
import { KubeConfig } from '@kubernetes/client-node';
import { NativeConnection } from '@temporalio/worker';
import type { AllActivities } from '../../src/activities/contracts';
import { createKubernetesActivities } from '../../src/activities/kubernetes';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { createWorker } from '../../src/worker';
import { recordingActivities } from './recording-activities';

async function run(): Promise<void> {
  const [address, taskQueue, kubeConfigPath, concurrency] = process.argv.slice(2);
  if (!address || !taskQueue || !kubeConfigPath)
    throw new Error('usage: kube-worker-process.ts <address> <task queue> <kubeconfig> <concurrency>');
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeConfigPath);
  const connection = await NativeConnection.connect({ address });
  const worker = await createWorker({
    connection,
    namespace: 'default',
    taskQueue,
    ...loadConfig(process.env).worker,
    // Only what the environment workflow calls.
    activities: {
      ...recordingActivities(async () => Date.now()),
      ...createKubernetesActivities({ kubeConfig, dryRun: false, logger: createLogger('silent'), concurrency: Number(concurrency ?? 3) }),
    } as unknown as AllActivities,
  });
  console.log('worker ready');
  await worker.run();
  await connection.close();
  console.log('worker stopped');
}

run().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
