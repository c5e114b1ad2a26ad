/**
 * Activities that talk to Temporal itself: the morning reset asks visibility which
 * environments are running rather than keeping its own list, so it can never drift.
 */
import type { Client } from '@temporalio/client';
import { EnvNamespace } from '../search-attributes';
import type { SchedulerActivities } from './contracts';

export function createSchedulerActivities(client: Client): SchedulerActivities {
  return {
    async listRunningEnvironments(): Promise<string[]> {
      const namespaces: string[] = [];
      const running = client.workflow.list({ query: `WorkflowType = 'environmentWorkflow' AND ExecutionStatus = 'Running'` });
      for await (const execution of running) {
        namespaces.push(execution.typedSearchAttributes.get(EnvNamespace) ?? execution.workflowId.replace(/^env\//, ''));
      }
      return namespaces.sort();
    },
  };
}
