/**
 * Recording activities, as in Temporal's testing guide: they satisfy the real activity
 * interface, remember every call with the (possibly skipped) server time, and report
 * plausible results. Used where the real Kubernetes or Slack are not the point of the test.
 */
import type { ActionReport, AwsActionReport, AwsActivities, AwsResourceResult, EnvironmentActivities, EnvironmentEvent } from '../../src/activities/contracts';

export interface RecordedCall {
  name: 'stopNamespace' | 'startNamespace' | 'notify' | 'stopAwsResources' | 'startAwsResources';
  namespace: string;
  event?: EnvironmentEvent;
  atMs: number;
}

export type RecordingActivities = EnvironmentActivities &
  Pick<AwsActivities, 'stopAwsResources' | 'startAwsResources'> & {
    calls: RecordedCall[];
    /** What the next AWS stop reports, e.g. an RDS instance that started by itself. */
    awsStopResults: AwsResourceResult[][];
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
  return {
    calls,
    awsStopResults,
    async stopAwsResources(namespace) {
      calls.push({ name: 'stopAwsResources', namespace, atMs: await clock() });
      return awsReport(namespace, 'stop', awsStopResults.shift() ?? []);
    },
    async startAwsResources(namespace) {
      calls.push({ name: 'startAwsResources', namespace, atMs: await clock() });
      return awsReport(namespace, 'start', []);
    },
    async stopNamespace(namespace) {
      calls.push({ name: 'stopNamespace', namespace, atMs: await clock() });
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
}
