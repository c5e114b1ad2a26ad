/**
 * The Temporal worker: only wiring. Workflows come from `src/workflows` (bundled into
 * Temporal's deterministic sandbox); activities are whatever implementations main.ts built.
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import type { AwsActivities, EnrolmentActivities, EnvironmentActivities, KubernetesActivities, SchedulerActivities } from './activities/contracts';

export type AllActivities = EnvironmentActivities & KubernetesActivities & SchedulerActivities & AwsActivities & EnrolmentActivities;

export interface WorkerSettings {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  activities: AllActivities;
}

export async function createWorker({ connection, namespace, taskQueue, activities }: WorkerSettings): Promise<Worker> {
  return Worker.create({
    connection,
    namespace,
    taskQueue,
    workflowsPath: require.resolve('./workflows'),
    activities,
  });
}
