/**
 * Recording activities, as in Temporal's testing guide: they satisfy the real activity
 * interface, remember every call with the (possibly skipped) server time, and report
 * plausible results. Used where the real Kubernetes or Slack are not the point of the test.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { Failure } from '../../src/domain/failures';
import type {
  ActionReport,
  AwsActionReport,
  AwsActivities,
  AwsResource,
  AwsResourceResult,
  DatabaseWait,
  DriftedWorkload,
  DriftMode,
  EnvironmentActivities,
  EnvironmentEvent,
  StartOptions,
  StartSteps,
  StopTiming,
} from '../../src/activities/contracts';

export interface RecordedCall {
  name:
    | 'stopNamespace'
    | 'startNamespace'
    | 'awaitReady'
    | 'checkDrift'
    | 'notify'
    | 'stopAwsResources'
    | 'startAwsResources'
    | 'awsStatus'
    | 'awaitDatabases';
  namespace: string;
  event?: EnvironmentEvent;
  /** A stop's instant when it was handed over ahead of it. Not held here: the clock may be the test server's skipped one. */
  timing?: StopTiming;
  /** What an AWS start was asked to start. */
  startOptions?: StartOptions;
  /** What a wait for databases was asked to wait for. */
  databases?: DatabaseWait;
  /** A start woken in steps: what it was given (the report so far after the first step). */
  steps?: StartSteps;
  atMs: number;
}

export type RecordingActivities = EnvironmentActivities &
  Pick<AwsActivities, 'stopAwsResources' | 'startAwsResources' | 'awsStatus' | 'awaitDatabases'> & {
    calls: RecordedCall[];
    /** What the next AWS stop reports, e.g. an RDS instance that started by itself. */
    awsStopResults: AwsResourceResult[][];
    /** What the next AWS start reports, e.g. a database still stopping. */
    awsStartResults: AwsResourceResult[][];
    /** What the next AWS status read finds (default: nothing tagged). */
    awsStatusResults: AwsResource[][];
    /** While set, stopNamespace records its call, then waits for this before it answers (a stop in progress). */
    holdStops?: Promise<void>;
    /** While set, startNamespace records its call, then waits for this before it answers (a start waking its workloads). */
    holdStarts?: Promise<void>;
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
    /**
     * Set: each start reports its Deployment woken and to be waited for, as on a cluster with
     * controllers, and awaitReady finds it Ready (`ready`) or not by the deadline (`not-ready`).
     */
    readiness?: 'ready' | 'not-ready';
    /**
     * Set, with `readiness`: each start wakes two wake-order groups, the StatefulSet db and
     * then the Deployment web; woken in steps, its first step stops before web, as the
     * activity does when db must be Ready first.
     */
    wakeGroups?: boolean;
    /** While set, awaitReady records its call, then waits for this (or its cancellation) before it answers (a slow rollout). */
    holdReady?: Promise<void>;
    /** What awaitDatabases finds: all available after 4 min 10 s (default), or by its deadline not `never`'s. */
    databases: 'available' | { never: string[] };
    /** While set, awaitDatabases records its call, then waits for this (or its cancellation) before it answers (RDS still starting). */
    holdDatabases?: Promise<void>;
    /** Set: each stop reports what one pod of its Deployment requests, as a stop on a real cluster does. */
    stopRequests?: { cpuMillicores: number; memoryBytes: number };
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
    databases: 'available',
    async awaitDatabases(namespace, wait) {
      calls.push({ name: 'awaitDatabases', namespace, databases: wait, atMs: await clock() });
      if (activities.holdDatabases) await untilReleasedOrCancelled(activities.holdDatabases);
      const { databases } = activities;
      if (databases === 'available') return { ...wait, durationMs: 250_000 };
      const notAvailable = wait.databases.filter((d) => databases.never.includes(d.id)).map((d) => ({ ...d, state: 'starting' }));
      return { ...wait, durationMs: 5 * 60_000, notAvailable };
    },
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
        const stopped = report(namespace, 2, 0);
        const requests = activities.stopRequests;
        return requests ? { ...stopped, changed: stopped.changed.map((c) => ({ ...c, requests })) } : stopped;
      }),
    startNamespace: (namespace, steps) =>
      kubernetes(async () => {
        const atMs = await clock();
        calls.push({ name: 'startNamespace', namespace, atMs, ...(steps ? { steps } : {}) });
        await activities.holdStarts;
        if (!activities.readiness) return report(namespace, 0, 2);
        const since = new Date(atMs).toISOString();
        if (activities.wakeGroups) {
          const web = { order: 1, workloads: [{ kind: 'Deployment', name: 'web' }], wokenAt: since };
          const db = { order: 0, workloads: [{ kind: 'StatefulSet', name: 'db' }], wokenAt: since };
          const after = steps?.after;
          if (after?.readiness) {
            const { groups, ...readiness } = after.readiness;
            delete readiness.next;
            return {
              ...after,
              changed: [...after.changed, ...report(namespace, 0, 2).changed],
              readiness: { ...readiness, groups: [...groups, web] },
            };
          }
          const woken = { ...report(namespace, 0, 2), changed: [{ kind: 'StatefulSet', name: 'db', from: 0, to: 1 }] };
          const readiness = { since, deadline: new Date(atMs + 5 * 60_000).toISOString() };
          // Not in steps, the activity waits between the groups itself.
          if (!steps)
            return {
              ...woken,
              changed: [...woken.changed, ...report(namespace, 0, 2).changed],
              readiness: { ...readiness, groups: [{ ...db, durationMs: 42_000 }, web] },
            };
          return { ...woken, readiness: { ...readiness, groups: [db], next: 1 } };
        }
        const readiness = {
          since,
          deadline: new Date(atMs + 5 * 60_000).toISOString(),
          groups: [{ order: 1, workloads: [{ kind: 'Deployment', name: 'web' }], wokenAt: since }],
        };
        return { ...report(namespace, 0, 2), readiness };
      }),
    async awaitReady(namespace, readiness) {
      calls.push({ name: 'awaitReady', namespace, atMs: await clock() });
      if (activities.holdReady) await untilReleasedOrCancelled(activities.holdReady);
      const notReady = activities.readiness === 'not-ready';
      const durationMs = notReady ? 5 * 60_000 : 42_000;
      const groups = readiness.groups.map((group) => ({
        ...group,
        durationMs,
        ...(notReady ? { notReady: group.workloads.map((w) => ({ ...w, message: '0 of 2 Ready' })) } : {}),
      }));
      return { ...readiness, groups, durationMs };
    },
    async notify(event) {
      calls.push({ name: 'notify', namespace: event.namespace, event, atMs: await clock() });
      if (activities.notifyFailure) throw activities.notifyFailure();
    },
  };
  return activities;
}

/** Until `hold` resolves or the activity is cancelled, which reaches it with its next heartbeat's answer. */
async function untilReleasedOrCancelled(hold: Promise<void>): Promise<void> {
  const beat = setInterval(() => Context.current().heartbeat(), 200);
  try {
    await Promise.race([hold, Context.current().cancelled]);
  } finally {
    clearInterval(beat);
  }
}
