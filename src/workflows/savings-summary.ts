/**
 * Started each week by the `devenv-savings-summary` Schedule (SAVINGS_SUMMARY): the week's
 * savings, posted to each environment's channel and the total to the default channel.
 */
import { log, proxyActivities } from '@temporalio/workflow';
import type { SavingsSummaryActivities, SavingsSummaryReport } from '../activities/contracts';

// Slack down for a while is waited out for about a day; each attempt posts only what the ones before did not.
const { postSavingsSummary } = proxyActivities<SavingsSummaryActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '10 seconds', backoffCoefficient: 2, maximumInterval: '1 hour', maximumAttempts: 30 },
});

export async function savingsSummaryWorkflow(): Promise<SavingsSummaryReport> {
  // The workflow's clock: every attempt of the activity adds up the same week.
  const report = await postSavingsSummary(new Date().toISOString());
  log.info('weekly savings summary done', { posted: report.posted.length, total: report.total, quiet: report.quiet });
  return report;
}
