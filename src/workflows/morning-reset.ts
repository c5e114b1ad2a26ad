/**
 * Started each working-day morning by the `devenv-morning-reset` Schedule: every running
 * environment goes back to its default shutdown time, dropping yesterday's prolongations.
 */
import { getExternalWorkflowHandle, log, proxyActivities } from '@temporalio/workflow';
import type { SchedulerActivities } from '../activities/contracts';
import { environmentWorkflowId, resetSignal } from './environment/definitions';

const { listRunningEnvironments } = proxyActivities<SchedulerActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 5 },
});

/** Signals go out in batches so one workflow task never carries thousands of commands. */
const SIGNAL_BATCH = 200;

/** `cluster`: the CLUSTER_NAME whose environments these are (the Schedule passes it; absent before there was one). */
export async function morningResetWorkflow(options: { cluster?: string } = {}): Promise<{ reset: number; missing: string[] }> {
  const namespaces = await listRunningEnvironments();
  const missing: string[] = [];
  for (let i = 0; i < namespaces.length; i += SIGNAL_BATCH) {
    await Promise.all(
      namespaces.slice(i, i + SIGNAL_BATCH).map(async (namespace) => {
        try {
          await getExternalWorkflowHandle(environmentWorkflowId(namespace, options.cluster)).signal(resetSignal);
        } catch (err) {
          // It ended between the listing and the signal (namespace deleted): nothing to reset.
          missing.push(namespace);
          log.info('environment gone before reset', { namespace, error: String(err) });
        }
      }),
    );
  }
  log.info('morning reset done', { reset: namespaces.length - missing.length, missing: missing.length });
  return { reset: namespaces.length - missing.length, missing };
}
