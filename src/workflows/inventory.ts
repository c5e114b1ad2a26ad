/**
 * Refreshes the DynamoDB inventory of tagged EC2/RDS resources; started by a Temporal
 * Schedule (every 10 minutes by default, overlapping runs skipped). Stops and starts
 * trust the inventory only while it is young, so a run that fails costs freshness, not
 * correctness: they list live instead.
 */
import { log, proxyActivities } from '@temporalio/workflow';
import type { AwsActivities, InventoryReport } from '../activities/contracts';

export const INVENTORY_WORKFLOW_ID = 'devenv-aws-inventory';

const { refreshAwsInventory } = proxyActivities<AwsActivities>({
  startToCloseTimeout: '5 minutes',
  // A few tries within one interval; the next scheduled run is the real retry. A missing
  // table is a configuration error no retry fixes: fail at once, naming the setting.
  retry: { initialInterval: '10 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes', maximumAttempts: 4, nonRetryableErrorTypes: ['InventoryTableMissing'] },
});

export async function awsInventoryWorkflow(): Promise<InventoryReport> {
  const report = await refreshAwsInventory();
  log.info('AWS inventory refreshed', { resources: report.resources, namespaces: report.namespaces, removed: report.removed, withoutNamespace: report.withoutNamespace.length });
  return report;
}
