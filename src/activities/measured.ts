/**
 * What an operator watches, counted where it happens: each scheduled stop's outcome and
 * how late it began, each Slack notification delivered or not, each reconciler run. The
 * activities stay as they are; this wraps the four that matter, in the worker that runs them.
 */
import type { Metrics } from '../api/metrics';
import type { AllActivities } from './contracts';
import { holdUntil } from './timing';

export function measuredActivities(activities: AllActivities, metrics: Metrics): AllActivities {
  const counted = async <T>(half: 'kubernetes' | 'aws', scheduled: boolean, run: () => Promise<T>): Promise<T> => {
    try {
      const result = await run();
      if (scheduled) metrics.scheduledStops.inc({ half, outcome: 'stopped' });
      return result;
    } catch (err) {
      if (scheduled) metrics.scheduledStops.inc({ half, outcome: 'failed' });
      throw err;
    }
  };
  return {
    ...activities,
    // A stop with a timing is a scheduled one (the workflow gives manual stops none).
    // Every argument passed on as given (rest parameters), so a wrapper never drops one a later version adds.
    async stopNamespace(...args) {
      const [, timing] = args;
      if (timing) {
        // Held here rather than inside, so the lateness is measured where the work begins (holding again inside returns at once).
        await holdUntil(timing);
        metrics.scheduledStopLateness.observe(Math.max(0, Date.now() - Date.parse(timing.notBefore)) / 1000);
      }
      return counted('kubernetes', timing !== undefined, () => activities.stopNamespace(...args));
    },
    stopAwsResources: (...args) => counted('aws', args[1] !== undefined, () => activities.stopAwsResources(...args)),
    async notify(event) {
      try {
        await activities.notify(event);
        metrics.notifications.inc({ kind: event.kind, outcome: 'delivered' });
      } catch (err) {
        metrics.notifications.inc({ kind: event.kind, outcome: 'failed' });
        throw err;
      }
    },
    async reconcileEnvironments(options) {
      try {
        const report = await activities.reconcileEnvironments(options);
        metrics.reconciles.inc({ outcome: report.failed.length ? 'partial' : 'ok' });
        return report;
      } catch (err) {
        metrics.reconciles.inc({ outcome: 'failed' });
        throw err;
      }
    },
  };
}
