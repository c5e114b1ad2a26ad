/**
 * Recording activities, as in Temporal's testing guide: they satisfy the real activity
 * interface, remember every call with the (possibly skipped) server time, and report
 * plausible results. Used where the real Kubernetes or Slack are not the point of the test.
 */
import type { ActionReport, AwsActionReport, AwsActivities, AwsResourceResult, EnvironmentActivities, EnvironmentEvent, StopTiming } from '../../src/activities/contracts';

export interface RecordedCall {
  name: 'stopNamespace' | 'startNamespace' | 'notify' | 'stopAwsResources' | 'startAwsResources';
  namespace: string;
  event?: EnvironmentEvent;
  /** A stop's instant when it was handed over ahead of it. Not held here: the clock may be the test server's skipped one. */
  timing?: StopTiming;
  atMs: number;
}

export type RecordingActivities = EnvironmentActivities &
  Pick<AwsActivities, 'stopAwsResources' | 'startAwsResources'> & {
    calls: RecordedCall[];
    /** What the next AWS stop reports, e.g. an RDS instance that started by itself. */
    awsStopResults: AwsResourceResult[][];
    /** While set, stopNamespace records its call, then waits for this before it answers (a stop in progress). */
    holdStops?: Promise<void>;
  };

export function recordingActivities(clock: () => Promise<number>): RecordingActivities {
  const calls: RecordedCall[] = [];
  const awsStopResults: AwsResourceResult[][] = [];
  const awsReport = (namespace: string, action: 'stop' | 'start', resources: AwsResourceResult[]): AwsActionReport => ({
    namespace,
    action,
    source: 'live',
    resources,
    notes: [],
    durationMs: 1,
  });
  const report = (namespace: string, from: number, to: number): ActionReport => ({
    namespace,
    changed: [{ kind: 'Deployment', name: 'web', from, to }],
    unchanged: 0,
    durationMs: 1,
  });
  const activities: RecordingActivities = {
    calls,
    awsStopResults,
    async stopAwsResources(namespace, timing) {
      calls.push({ name: 'stopAwsResources', namespace, timing, atMs: await clock() });
      return awsReport(namespace, 'stop', awsStopResults.shift() ?? []);
    },
    async startAwsResources(namespace) {
      calls.push({ name: 'startAwsResources', namespace, atMs: await clock() });
      return awsReport(namespace, 'start', []);
    },
    async stopNamespace(namespace, timing) {
      calls.push({ name: 'stopNamespace', namespace, timing, atMs: await clock() });
      await activities.holdStops;
      return report(namespace, 2, 0);
    },
    async startNamespace(namespace) {
      calls.push({ name: 'startNamespace', namespace, atMs: await clock() });
      return report(namespace, 0, 2);
    },
    async notify(event) {
      calls.push({ name: 'notify', namespace: event.namespace, event, atMs: await clock() });
    },
  };
  return activities;
}
