/**
 * Started by the `devenv-reconcile` Schedule (and once when the worker starts): makes the
 * running environment workflows match the cluster's namespaces and their `scheduler`
 * labels, repairing whatever the admission webhook missed. `{ dryRun: true }` (`devenv
 * reconcile --dry-run`) only reports what it would do; without an argument, as the
 * Schedule starts it, it is a real run (unless the service runs with DRY_RUN=true).
 */
import { log, proxyActivities } from '@temporalio/workflow';
import type { EnrolmentActivities, ReconcileOptions, ReconcileReport } from '../activities/contracts';

const { reconcileEnvironments } = proxyActivities<EnrolmentActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '5 seconds', maximumAttempts: 5 },
});

export const RECONCILE_WORKFLOW_ID = 'devenv-reconcile';

export async function reconcileWorkflow(options: ReconcileOptions = {}): Promise<ReconcileReport> {
  const report = await reconcileEnvironments({ dryRun: options.dryRun === true });
  if (report.failed.length > 0) log.warn('some environments could not be reconciled', { failed: report.failed });
  return report;
}
