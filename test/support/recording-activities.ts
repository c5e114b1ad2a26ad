/**
 * Recording activities, as in Temporal's testing guide: they satisfy the real activity
 * interface, remember every call with the (possibly skipped) server time, and report
 * plausible results. Used where the real Kubernetes or Slack are not the point of the test.
 */
import type { ActionReport, EnvironmentActivities, EnvironmentEvent } from '../../src/activities/contracts';

export interface RecordedCall {
  name: 'stopNamespace' | 'startNamespace' | 'notify';
  namespace: string;
  event?: EnvironmentEvent;
  atMs: number;
}

export function recordingActivities(clock: () => Promise<number>): EnvironmentActivities & { calls: RecordedCall[] } {
  const calls: RecordedCall[] = [];
  const report = (namespace: string, from: number, to: number): ActionReport => ({
    namespace,
    changed: [{ kind: 'Deployment', name: 'web', from, to }],
    unchanged: 0,
    durationMs: 1,
  });
  return {
    calls,
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
