/**
 * Activities that talk to Temporal itself: the morning reset asks visibility which
 * environments are running rather than keeping its own list, so it can never drift.
 */
import type { Client } from '@temporalio/client';
import { createEnvironmentsClient } from '../client/environments';
import type { SchedulerActivities } from './contracts';

/** `cluster`: CLUSTER_NAME, whose environments alone are listed. */
export function createSchedulerActivities(client: Client, cluster?: string): SchedulerActivities {
  return {
    async listRunningEnvironments(): Promise<string[]> {
      return (await createEnvironmentsClient(client, { cluster }).list()).map((environment) => environment.namespace);
    },
  };
}
