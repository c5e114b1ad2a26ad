/**
 * Refreshes the DynamoDB inventory of tagged EC2/RDS resources; started by a Temporal
 * Schedule (every 10 minutes by default, overlapping runs skipped). Stops and starts
 * trust the inventory only while it is young, so a run that fails costs freshness, not
 * correctness: they list live instead. Then it looks for resources still tagged for a
 * namespace that has no environment (deleted while stopped): RDS would start them again
 * after seven days and nothing else would stop them.
 */
import { log, patched, proxyActivities } from '@temporalio/workflow';
import type { AwsActivities, InventoryReport, KubernetesActivities, SchedulerActivities } from '../activities/contracts';
import { Failure } from '../domain/failures';

export const INVENTORY_WORKFLOW_ID = 'devenv-aws-inventory';

const { refreshAwsInventory, restopOrphanedAwsResources } = proxyActivities<AwsActivities>({
  startToCloseTimeout: '5 minutes',
  // The refresh heartbeats every page and write: an attempt that stops doing so is retried at
  // once, and learns at its next heartbeat that it was given up (its writes are conditional
  // on being the newest anyway, so it can never undo what its retry wrote).
  heartbeatTimeout: '1 minute',
  // A few tries within one interval; the next scheduled run is the real retry. A missing
  // table is a configuration error no retry fixes: fail at once, naming the setting.
  retry: {
    initialInterval: '10 seconds',
    backoffCoefficient: 2,
    maximumInterval: '2 minutes',
    maximumAttempts: 4,
    nonRetryableErrorTypes: [Failure.InventoryTableMissing],
  },
});

const { listRunningEnvironments } = proxyActivities<SchedulerActivities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 3 },
});

const { listNamespaceNames } = proxyActivities<KubernetesActivities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 3 },
});

export async function awsInventoryWorkflow(): Promise<InventoryReport> {
  const report = await refreshAwsInventory();
  log.info('AWS inventory refreshed', {
    resources: report.resources,
    namespaces: report.namespaces,
    removed: report.removed,
    withoutNamespace: report.withoutNamespace.length,
  });
  if (report.superseded || !patched('aws-orphans')) return report;
  try {
    const environments = await listRunningEnvironments();
    // "No environment" is not "namespace deleted" (it may have left management): only the cluster can say a namespace is gone.
    const orphans = patched('aws-orphans-namespaces-confirmed-absent')
      ? await restopOrphanedAwsResources(environments, await listNamespaceNames())
      : await restopOrphanedAwsResources(environments);
    if (orphans.resources.length > 0) {
      log.warn('AWS resources still tagged for namespaces without an environment', {
        resources: orphans.resources.length,
        restopped: orphans.restopped,
      });
    }
    return { ...report, orphans };
  } catch (err) {
    // The refresh itself is done and trusted; the orphans are looked for again at the next run.
    log.warn('could not look for AWS resources of namespaces without an environment', { error: String(err) });
    return report;
  }
}
