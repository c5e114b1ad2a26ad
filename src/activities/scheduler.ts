/**
 * Activities that talk to Temporal itself: the morning reset asks visibility which
 * environments are running rather than keeping its own list, so it can never drift.
 */
import type { Client } from '@temporalio/client';
import { createEnvironments } from '../environments';
import type { SchedulerActivities } from './contracts';

export function createSchedulerActivities(client: Client): SchedulerActivities {
  return {
    async listRunningEnvironments(): Promise<string[]> {
      return (await createEnvironments(client).list()).map((environment) => environment.namespace);
    },
  };
}
