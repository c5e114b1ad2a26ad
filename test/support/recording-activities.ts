/**
 * Recording activities, as in Temporal's testing guide: they satisfy the real activity
 * interface, remember every call with the (possibly skipped) server time, and report
 * plausible results. Used where the real Kubernetes or Slack are not the point of the test.
 */
import { ApplicationFailure } from '@temporalio/common';
import { Failure } from '../../src/domain/failures';
import type {
  ActionReport,
  AwsActionReport,
  AwsActivities,
  AwsResource,
  AwsResourceResult,
  DriftedWorkload,
  DriftMode,
  EnvironmentActivities,
  EnvironmentEvent,
  StartOptions,
  StopTiming,
} from '../../src/activities/contracts';

export interface RecordedCall {
  name: 'stopNamespace' | 'startNamespace' | 'checkDrift' | 'notify' | 'stopAwsResources' | 'startAwsResources' | 'awsStatus';
  namespace: string;
  event?: EnvironmentEvent;
  /** A stop's instant when it was handed over ahead of it. Not held here: the clock may be the test server's skipped one. */
  timing?: StopTiming;
  /** What an AWS start was asked to start. */
  startOptions?: StartOptions;
  atMs: number;
}

export type RecordingActivities = EnvironmentActivities &
  Pick<AwsActivities, 'stopAwsResources' | 'startAwsResources' | 'awsStatus'> & {
    calls: RecordedCall[];
    /** What the next AWS stop reports, e.g. an RDS instance that started by itself. */
    awsStopResults: AwsResourceResult[][];
    /** What the next AWS start reports, e.g. a database still stopping. */
    awsStartResults: AwsResourceResult[][];
    /** What the next AWS status read finds (default: nothing tagged). */
    awsStatusResults: AwsResource[][];
    /** While set, stopNamespace records its call, then waits for this before it answers (a stop in progress). */
    holdStops?: Promise<void>;
    /** Namespaces deleted from the cluster behind their environment's back: stopNamespace fails with NamespaceNotFound, as Kubernetes' does. */
    goneNamespaces: Set<string>;
    /** While set, every AWS activity (stop, start, status) throws what it returns: AWS refusing or down. */
    awsFailure?: () => Error;
    /** While set, stopAwsResources records its call, then waits for this before it answers (an AWS stop in progress, holding the lock). */
    holdAwsStops?: Promise<void>;
    /** While set, awsStatus records its call, then waits for this before it reads (a slow re-check). */
    holdAwsStatus?: Promise<void>;
    /** What the next drift re-checks find awake (default: nothing); with `restop` asked, each is reported put back to sleep. */
    driftResults: DriftedWorkload[][];
    /** The worker's DRIFT and DRIFT_CHECK_INTERVAL as checkDrift reports them (default: off, so a test that skips days is not a look every 5 minutes; drift tests set it). */
    drift: { mode: DriftMode; intervalMs: number };
    /** While set, every drift look throws what it returns: the apiserver failing. */
    driftFailure?: () => Error;
    /** While set, every notify throws what it returns: Slack down. */
    notifyFailure?: () => Error;
    /** Kubernetes stops and starts running right now, and the most there ever were at once. */
    kubernetesInFlight: { now: number; max: number };
  };

export function recordingActivities(clock: () => Promise<number>): RecordingActivities {
  const calls: RecordedCall[] = [];
  const awsStopResults: AwsResourceResult[][] = [];
  const awsStartResults: AwsResourceResult[][] = [];
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
  const kubernetesInFlight = { now: 0, max: 0 };
  async function kubernetes<T>(work: () => Promise<T>): Promise<T> {
    kubernetesInFlight.max = Math.max(kubernetesInFlight.max, ++kubernetesInFlight.now);
    try {
      return await work();
    } finally {
      kubernetesInFlight.now--;
    }
  }
  const activities: RecordingActivities = {
    calls,
    awsStopResults,
    awsStartResults,
    awsStatusResults: [],
    kubernetesInFlight,
    goneNamespaces: new Set(),
    driftResults: [],
    drift: { mode: 'off', intervalMs: 5 * 60_000 },
    async checkDrift(namespace, { restop }) {
      calls.push({ name: 'checkDrift', namespace, atMs: await clock() });
      if (activities.driftFailure) throw activities.driftFailure();
      const { mode, intervalMs } = activities.drift;
      // A look that only reads leaves what it found for the re-stop that follows it.
      const head = activities.driftResults[0];
      const queued = restop || mode !== 'restop' || !head?.length ? activities.driftResults.shift() : head;
      const found = mode === 'off' ? [] : (queued ?? []);
      const awake = found.map((w) => ({ ...w, restopped: restop && mode === 'restop' }));
      return { namespace, mode, intervalMs, awake };
    },
    async stopAwsResources(namespace, timing) {
      calls.push({ name: 'stopAwsResources', namespace, timing, atMs: await clock() });
      await activities.holdAwsStops;
      if (activities.awsFailure) throw activities.awsFailure();
      return awsReport(namespace, 'stop', awsStopResults.shift() ?? []);
    },
    async startAwsResources(namespace, startOptions) {
      calls.push({ name: 'startAwsResources', namespace, startOptions, atMs: await clock() });
      if (activities.awsFailure) throw activities.awsFailure();
      return awsReport(namespace, 'start', awsStartResults.shift() ?? []);
    },
    async awsStatus(namespace) {
      calls.push({ name: 'awsStatus', namespace, atMs: await clock() });
      await activities.holdAwsStatus;
      if (activities.awsFailure) throw activities.awsFailure();
      return { namespace, source: 'live', resources: activities.awsStatusResults.shift() ?? [], notes: [] };
    },
    stopNamespace: (namespace, timing) =>
      kubernetes(async () => {
        calls.push({ name: 'stopNamespace', namespace, timing, atMs: await clock() });
        await activities.holdStops;
        if (activities.goneNamespaces.has(namespace))
          throw ApplicationFailure.nonRetryable(`namespace "${namespace}" does not exist in the cluster`, Failure.NamespaceNotFound);
        return report(namespace, 2, 0);
      }),
    startNamespace: (namespace) =>
      kubernetes(async () => {
        calls.push({ name: 'startNamespace', namespace, atMs: await clock() });
        return report(namespace, 0, 2);
      }),
    async notify(event) {
      calls.push({ name: 'notify', namespace: event.namespace, event, atMs: await clock() });
      if (activities.notifyFailure) throw activities.notifyFailure();
    },
  };
  return activities;
}
