/**
 * One long-running workflow per environment (Kubernetes namespace), id `env/<namespace>`.
 * It sleeps until the next warning or the shutdown, stops the environment on time, and
 * takes Slack's commands as Updates (validated before anything changes) and the
 * scheduler's as Signals. State survives crashes and deploys because it lives here.
 *
 * The rules (what a command leaves behind, what is due next) are planning.ts; this file
 * carries them out: the activities, the lock, the notifications and the main loop.
 */
import { Mutex } from 'async-mutex';
import {
  allHandlersFinished,
  CancellationScope,
  condition,
  isCancellation,
  continueAsNew,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type {
  ActionReport,
  AwsActionReport,
  AwsActivities,
  DatabaseWait,
  DriftReport,
  EnvironmentActivities,
  EnvironmentEvent,
  HalfProblem,
  StartOptions,
  StartReadiness,
  StopTiming,
} from '../../activities/contracts';
import { formatMinutes } from '../../domain/duration';
import type { RetireReason } from '../../domain/enrolment';
import { failureType, Failure } from '../../domain/failures';
import { awaitingReady, describeReadiness } from '../../domain/readiness';
import { samePolicy } from '../../domain/shutdown-policy';
import { describeClockTime, describeInstantFixed, describeShutdown } from '../../domain/time-display';
import { EnvEnabled, EnvNamespace, EnvNextShutdown, EnvPhase } from '../../search-attributes';
import {
  awakeAwsResources,
  awakeButUnstoppable,
  awsOutcomeProblems,
  awsProblems,
  databasesStarted,
  describeAwsReport,
  describeFailure,
  describeLeftBehind,
} from '../reports';
import {
  DISPATCH_AHEAD_MEMO,
  driftSuspectedSignal,
  HISTORY_MEMO,
  prolongateUpdate,
  SAVINGS_MEMO,
  resetSignal,
  retireSignal,
  setEnabledSignal,
  setPolicySignal,
  startUpdate,
  STATUS_MEMO,
  statusQuery,
  stopUpdate,
  type ActionResult,
  type Actor,
  type EnvironmentInput,
  type EnvironmentState,
  type EnvironmentStatus,
  type HistoryAction,
  type HistoryEntry,
  type PendingNotification,
  type StatusMemo,
  type WorkloadPhase,
} from './definitions';
import {
  afterDriftLook,
  afterEnabledChange,
  afterFollowUpLook,
  afterPolicyChange,
  afterReset,
  afterStart,
  afterStop,
  driftAction,
  driftLookBegun,
  driftWatchAfterStop,
  dueAt,
  enrolled,
  followUpEvent,
  inTransition,
  nextEvent,
  NOTIFICATION_DEADLINE_MS,
  phaseOf,
  prolongated,
  prolongationRefusal,
  prolongedToday,
  upcomingWakeUp,
  wakeUpMissed,
  warningSent,
  withWakeUp,
  type TimedEvent,
} from './planning';
import { appended } from './story';
import {
  afterRestop,
  afterStop as sleepBegun,
  afterWake,
  nothingSlept,
  instancesSlept,
  type Sleep,
  type Slept,
} from '../../domain/savings';

const DEFAULT_MAX_HISTORY_EVENTS = 10_000;

/**
 * A drift look: a few lists, and writes only for what woke; bounded, so a failing apiserver
 * never holds the lock for long. A re-stop heartbeats each write, so an attempt that timed
 * out learns it at its next one and writes no more (drift.ts) once the lock has moved on.
 */
const { checkDrift } = proxyActivities<EnvironmentActivities>({
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: '30 seconds',
  scheduleToCloseTimeout: '3 minutes',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 3 },
});

/**
 * The read of a drift look, every DRIFT_CHECK_INTERVAL of every stopped environment: a few
 * lists from the apiserver's watch cache, short enough to run inside the workflow task as a
 * local activity, whose one marker is all it adds to the history (an activity adds three
 * events and a workflow task of its own). The re-stop that may follow stays an activity.
 */
const { checkDrift: readDrift } = proxyLocalActivities<EnvironmentActivities>({
  startToCloseTimeout: '1 minute',
  scheduleToCloseTimeout: '3 minutes',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 3 },
});

const { stopNamespace } = proxyActivities<EnvironmentActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  // Retried until done: a stop that gives up would leave an environment burning money overnight.
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/**
 * As a stop, with room for its waits between wake-order groups (a start recorded before it
 * woke them in steps waits inside it), which end at the start's deadline
 * (START_READY_TIMEOUT_SECONDS, whose largest value this exceeds).
 */
const { startNamespace } = proxyActivities<EnvironmentActivities>({
  startToCloseTimeout: '20 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/**
 * The wait for what a start woke to be Ready: reads only, outside the lock, and ends by itself
 * at the start's deadline (START_READY_TIMEOUT_SECONDS, whose largest value this timeout
 * exceeds). Cancelled without waiting for the worker to hear of it, so a stop goes ahead at once.
 */
const { awaitReady } = proxyActivities<EnvironmentActivities>({
  startToCloseTimeout: '20 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 5 },
});

// Bounded: AWS trouble must end, so the Kubernetes half's result and the lock are never held
// hostage by it. Authentication and permission errors are not retried at all (aws.ts). No
// heartbeat timeout: each AWS call is short, and the SDK retries throttling itself.
const { stopAwsResources, startAwsResources } = proxyActivities<AwsActivities>({
  startToCloseTimeout: '5 minutes',
  scheduleToCloseTimeout: '10 minutes',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 5 },
});

/**
 * A start's wait for its databases (wait-for-databases), under the lock, before its workloads
 * are woken: reads only, and ends by itself at the start's deadline (START_READY_TIMEOUT_SECONDS,
 * whose largest value this timeout exceeds). A stop cancels it without waiting for the worker to hear.
 */
const { awaitDatabases } = proxyActivities<AwsActivities>({
  startToCloseTimeout: '20 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 5 },
});

/** The re-check of a stopped environment only reads first; it gives up sooner than an action. */
const { awsStatus } = proxyActivities<AwsActivities>({
  startToCloseTimeout: '1 minute',
  scheduleToCloseTimeout: '5 minutes',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 3 },
});

/** A namespace that leaves management but could not be restored is tried again this often. */
const RESTORE_RETRY_MS = 10 * 60 * 1000;

/** The notify activity, given up at `deadline` (each notification has its own). */
const notifyUntil = (deadline: Date, now: Date) =>
  proxyActivities<EnvironmentActivities>({
    startToCloseTimeout: '30 seconds',
    scheduleToCloseTimeout: Math.max(1000, deadline.getTime() - now.getTime()),
    retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes' },
  }).notify;

/**
 * Behaviour changes that record different commands; histories recorded before each one
 * replay the old way (see test/replay.test.ts and its fixtures).
 */
const PATCHES = {
  /** One stop or start at a time, in arrival order (the earlier lock let every waiter in at once). */
  fifoLock: 'fifo-lock',
  /** A stop or start waits for both halves and keeps what each did, instead of failing as a whole at the first. */
  independentHalves: 'independent-halves',
  /** The AWS re-check of a stopped environment reads outside the lock and only takes it to stop what is awake. */
  recheckOutsideLock: 'aws-recheck-outside-lock',
  /** Continue-as-new no longer waits for notifications: undelivered ones go with the new run. */
  notificationsCarriedOver: 'notifications-carried-over',
  /** The morning reset keeps a prolongation made the same local day. */
  resetKeepsSameDay: 'reset-keeps-same-day-prolongation',
  /** A notification past its deadline (a warning handled after its shutdown, when workers were down) is not sent at all. */
  lateNotificationsDropped: 'late-notifications-dropped',
  /** The main loop also wakes from a timer wait once the history is long and nothing is in progress, to continue as new. */
  wakeToContinueAsNew: 'wake-to-continue-as-new',
  /** AWS resources found in a transition the other way are followed until they settle, then acted on. */
  awsFollowTransitions: 'aws-follow-transitions',
  /** Every AWS outcome other than done (busy, unsupported, failed) is a problem: announced, in the last action and in status. */
  awsOutcomesReported: 'aws-outcomes-reported',
  /** Stops record what they stopped in AWS; starts start only that. */
  awsStartWhatStopStopped: 'aws-start-what-stop-stopped',
  /** A namespace deleted: its retirement says what is left in AWS tagged for it. */
  retireReportsAws: 'retire-reports-aws-left-behind',
  /** A stop or start whose Kubernetes half failed ends a pending AWS follow-up too: it must not undo what that action did in AWS. */
  followUpEndsWithEveryAction: 'aws-follow-up-ends-with-every-action',
  /** Leaving management, a database the restoring start found still stopping is followed until it settles before the workflow ends. */
  leavingFollowsUp: 'aws-follow-up-before-leaving',
  /** A follow-up's outcome (done, or given up) is announced to the channel. */
  followUpAnnounced: 'aws-follow-up-announced',
  /** A policy is compared by value: the same one with its fields in another order is no change (it was compared as JSON text). */
  policyComparedByValue: 'policy-compared-by-value',
  /** A stopped environment looks for workloads woken since its stop (DRIFT) and puts them back to sleep. */
  driftRecheck: 'drift-recheck',
  /** A stopped environment whose policy has a wake time is started at it on working days. */
  morningWakeUp: 'morning-wake-up',
  /** A new wake time moves a stopped environment's wake-up within the day it was planned for, never to earlier that day. */
  wakeUpKeepsDay: 'wake-up-keeps-day',
  /** A wake-up handled after the working day it opens has ended (workers were down) is skipped, not done at night. */
  missedWakeUpSkipped: 'missed-wake-up-skipped',
  /** A drift re-stop that waited for the lock re-checks that the scheduler is still on before it writes. */
  driftRestopRechecked: 'drift-restop-rechecked',
  /** The read of a drift look is a local activity: one marker in the history instead of an activity's events and task. */
  driftReadLocally: 'drift-read-locally',
  /** A start that woke workloads waits, outside the lock, until they are Ready (awaitReady), and only then replies and announces. */
  startAwaitsReady: 'start-awaits-ready',
  /** The environment's history rides in the memo upsert that follows each new entry: no upsert of its own. */
  historyMemo: 'history-memo',
  /** With wait-for-databases: a start starts AWS first, waits for its databases (awaitDatabases), then wakes the workloads. */
  databasesAwaited: 'databases-awaited',
  /** A re-planned wake-up may fall on any day after the stop's (a working day given back), not only from the day it was planned for. */
  wakeUpBoundByStopDay: 'wake-up-bound-by-stop-day',
  /**
   * A start wakes its wake-order groups in steps, each wait between two an awaitReady of the workflow's that a stop cancels;
   * a wait under the lock (between groups, for the databases) is not begun while a stop waits for the lock.
   */
  wakesInSteps: 'start-wakes-in-steps',
  /** Each stop opens a sleep in the environment's ledger of savings and the start that follows ends it; the ledger rides in the memo upsert that follows. */
  savingsLedger: 'savings-ledger',
} as const;

/** What a start's reply and announcement are made of; kept while it waits for its workloads to be Ready. */
interface Started {
  by: string;
  wokenAt?: Date;
  report: ActionReport;
  aws: AwsHalf;
  /** The shutdown the start planned, when it is its after-hours window: the reply says so while it is still the plan. */
  afterHoursShutdown?: string;
}

/** A wait for Ready in progress: a stop cancels it, saying who stopped. */
interface ReadinessWait {
  scope: CancellationScope;
  interruptedBy?: string;
}

/** How a wait a stop may end ended, when not with its answer: how long it ran, and who stopped it or why it could not tell. */
type WaitEnded = { durationMs: number } & ({ interrupted: string } | { failed: string });

/** What the AWS half of an action did: its problems (none when it did everything), the words for the reply, and its report when AWS answered. */
interface AwsHalf {
  problems: HalfProblem[];
  words: string;
  report?: AwsActionReport;
}

export async function environmentWorkflow(input: EnvironmentInput): Promise<EnvironmentStatus> {
  const { namespace } = input;
  let policy = input.policy;
  let dispatchAheadMs = input.dispatchAheadMs ?? 0;
  const now = (): Date => new Date();
  let state: EnvironmentState = input.state ?? enrolled(input.enabled, policy, now());
  let retired = false;
  /** Who said the namespace was deleted (a `retire` of reason `namespace-deleted`). */
  let deletedBy: string | null = null;
  /** Set by a `retire` of reason `unmanaged`: who asked; the main loop restores the environment, then retires it. */
  let leavingBy: string | null = input.leavingBy ?? null;
  /** What happened to the environment, oldest first (story.ts bounds it); a run of a version without it begins with its last action. */
  let history: HistoryEntry[] = input.history ?? (state.lastAction ? [state.lastAction] : []);
  /** Entries added since the memo last carried the history. */
  let historyUnpublished = true;
  /** The sleeps of the last LEDGER_DAYS (savings.ts), oldest first: what each stop saved. */
  let ledger: Sleep[] = input.savings ?? [];
  /** The ledger changed since the memo last carried it; a new run publishes the one it was given. */
  let savingsUnpublished = ledger.length > 0;
  /**
   * Everything that touches workloads or AWS (Updates, the scheduled stop, the re-stop of
   * AWS resources that woke) runs under this lock, one at a time, in arrival order.
   */
  const lock = new Mutex();
  let busy = false; // the lock of histories recorded before the FIFO lock; also set under the new one
  let recheckInFlight = false;
  let driftInFlight = false;
  /** Starts waiting for their workloads to be Ready, outside the lock. */
  const readinessWaits = new Set<ReadinessWait>();
  /** A start waiting, under the lock, for its databases or between two wake-order groups: a stop cancels it before it queues for the lock. */
  const waitsUnderLock = new Set<ReadinessWait>();
  /** Who sent each stop Update waiting for the lock: a wait under the lock that would begin meanwhile does not, the stop is next. */
  const queuedStops: string[] = [];
  /** Stops and starts completed in this run: a re-check's read taken before one of them says nothing about now. */
  let actionsDone = 0;
  const outbox = new Map<number, PendingNotification>();
  let nextNotification = 0;
  let version = 0; // bumped on every change so the main loop re-plans

  setHandler(statusQuery, () => ({
    namespace,
    phase: phaseOf(state),
    policy,
    ...state,
    shutdownDescription: shutdownDescription(),
    wakeDescription: wakeDescription(),
  }));

  // Asked at each start, so a workflow recorded before it keeps answering its starts as it did
  // (the old handler's promise resolves a step sooner, which orders its commands).
  setHandler(
    startUpdate,
    ({ by }) =>
      patched(PATCHES.startAwaitsReady) ? startAndAwaitReady(by) : exclusively(() => failureRecorded('start', by, () => start(by))),
    {
      validator: (_actor: Actor) => rejectIfRetired(),
    },
  );

  setHandler(
    stopUpdate,
    ({ by }) => {
      interruptWaits(waitsUnderLock, `the stop by ${by}`);
      queuedStops.push(by);
      return exclusively(() => {
        queuedStops.splice(queuedStops.indexOf(by), 1);
        return failureRecorded('stop', by, () => stop(by, 'stop'));
      });
    },
    {
      validator: (_actor: Actor) => rejectIfRetired(),
    },
  );

  setHandler(
    prolongateUpdate,
    async ({ by, minutes }) => {
      state = prolongated(state, policy, now(), minutes);
      record('prolongate', by, `+${formatMinutes(minutes)}`);
      changed();
      return result(`${namespace} prolongated by ${formatMinutes(minutes)} by ${by}; shuts down ${shutdownDescription()}.`);
    },
    {
      validator: ({ minutes }) => {
        rejectIfRetired();
        const refusal = prolongationRefusal(namespace, state, policy, minutes);
        if (refusal) throw new Error(refusal);
      },
    },
  );

  setHandler(resetSignal, () => {
    if (prolongedToday(state, policy, now()) && patched(PATCHES.resetKeepsSameDay)) {
      record('reset', 'scheduler', `kept today's prolongation of ${formatMinutes(state.prolongedMinutes)}`);
      changed();
      return;
    }
    state = afterReset(state, policy, now());
    record('reset', 'scheduler');
    changed();
  });

  setHandler(setPolicySignal, ({ policy: next, by, dispatchAheadMs: nextAhead }) => {
    const aheadChanged = nextAhead !== undefined && nextAhead !== dispatchAheadMs;
    if (aheadChanged) dispatchAheadMs = nextAhead;
    // Where the two comparisons differ (field order alone), histories from before the patch recorded a change.
    const unchanged =
      samePolicy(next, policy) && (JSON.stringify(next) === JSON.stringify(policy) || patched(PATCHES.policyComparedByValue));
    if (unchanged) {
      if (aheadChanged) changed(); // a setting of the service's, not the environment's: no "last action" for it
      return;
    }
    policy = next;
    state = replannedForPolicy(state, policy);
    const wakes = policy.wakeTime ? `; wakes at ${policy.wakeTime}` : '';
    const owners = policy.owners?.length ? `; owners ${policy.owners.join(', ')}` : '';
    record('policy', by, `shuts down at ${policy.shutdownTime} ${policy.timeZone} on ${policy.workingDays.join(', ')}${wakes}${owners}`);
    changed();
  });

  setHandler(setEnabledSignal, ({ enabled, by }) => {
    if (enabled === state.enabled) return;
    state = afterEnabledChange(state, enabled, policy, now());
    record(enabled ? 'enable' : 'disable', by);
    changed();
  });

  setHandler(driftSuspectedSignal, () => {
    if (state.workloads !== 'stopped' || !state.drift) return;
    state.drift = { ...state.drift, suspectedAt: now().toISOString() };
    version++;
  });

  setHandler(retireSignal, (request?: { reason: RetireReason; by: string }) => {
    if (request?.reason === 'unmanaged') leavingBy ??= request.by;
    else {
      retired = true;
      deletedBy ??= request?.by ?? 'scheduler';
    }
    version++;
  });

  // Running, so no stop of an earlier version is outstanding: from now on what a stop stops is recorded.
  if (state.workloads === 'running' && !state.awsStopRecorded && patched(PATCHES.awsStartWhatStopStopped)) state.awsStopRecorded = true;
  changed();
  for (const notification of input.undelivered ?? []) deliver(notification);
  while (!retired) {
    if (leavingBy !== null) {
      await leaveManagement(leavingBy);
      continue;
    }
    if (historyIsLong()) {
      if (patched(PATCHES.notificationsCarriedOver)) {
        if (await readyToContinueAsNew()) return continueAsNew<typeof environmentWorkflow>(continuedInput());
      } else {
        await condition(() => allHandlersFinished() && !busy && outbox.size === 0);
        if (!retired) return continueAsNew<typeof environmentWorkflow>(continuedInput());
        break;
      }
    }
    // Stopped before drift was looked for (or by a version without it): the watch begins now.
    if (state.workloads === 'stopped' && !state.drift && patched(PATCHES.driftRecheck)) state.drift = driftWatchAfterStop(null, now());
    const event = plannedEvent();
    const seen = version;
    const wakesToContinue = patched(PATCHES.wakeToContinueAsNew);
    const woken = () => version !== seen || retired || leavingBy !== null || (wakesToContinue && historyIsLong() && quiet());
    if (!event) {
      await condition(woken);
      continue;
    }
    const waitMs = dueAt(event, dispatchAheadMs) - now().getTime();
    if (waitMs > 0 && (await condition(woken, waitMs))) continue;
    if (event.kind === 'aws-recheck' && patched(PATCHES.recheckOutsideLock)) {
      lookInBackground('AWS re-check', recheckAws, (on) => (recheckInFlight = on));
      continue;
    }
    if (event.kind === 'drift-recheck') {
      lookInBackground('drift re-check', recheckDrift, (on) => (driftInFlight = on));
      continue;
    }
    try {
      await exclusively(fireDueEvent);
    } catch (err) {
      // Only non-retryable failures get here (the namespace is gone, ...): stay alive for humans.
      log.error('scheduled action failed', { namespace, error: String(err) });
      record('scheduled-stop', 'scheduler', `failed: ${describeFailure(err)}`);
      state.shutdownAt = null;
      changed();
    }
  }

  if (deletedBy !== null && patched(PATCHES.retireReportsAws)) await reportLeftBehind(deletedBy);
  if (sleeping()) {
    ledgered(afterWake(ledger, now())); // nothing of it is left to wake
    changed();
  }
  await condition(() => nothingInFlight() && outbox.size === 0);
  log.info('environment retired', { namespace });
  return { namespace, phase: phaseOf(state), policy, ...state, shutdownDescription: null, wakeDescription: null };

  // What the handlers and the loop above do, in the order they come.

  function rejectIfRetired(): void {
    if (retired) throw new Error(`${namespace} has been deleted; its environment is retired`);
    if (leavingBy !== null)
      throw new Error(`${namespace} is no longer managed (retired by ${leavingBy}); its workloads are being restored`);
  }

  function plannedEvent(): TimedEvent | null {
    const driftChecks = state.workloads === 'stopped' && !!state.drift && patched(PATCHES.driftRecheck);
    // Asked only once there is a wake-up to plan, so histories without one record no marker.
    const wakeUps = Boolean(state.wakeAt) && patched(PATCHES.morningWakeUp);
    return nextEvent(state, policy, { dispatchAheadMs, recheckInFlight, driftChecks, driftInFlight, wakeUps });
  }

  async function fireDueEvent(): Promise<void> {
    const event = plannedEvent();
    if (!event || dueAt(event, dispatchAheadMs) > now().getTime()) return; // re-planned while we waited for the lock
    if (leavingBy !== null) return; // leaving management while it waited: nothing more to stop
    if (event.kind === 'shutdown') {
      // Its instant goes with it, dispatched ahead or not: the worker holds it until then and measures how late it began.
      await stop('scheduler', 'scheduled-stop', { notBefore: event.at.toISOString() });
      return;
    }
    if (event.kind === 'aws-recheck') {
      await recheckAwsUnderLock();
      return;
    }
    if (event.kind === 'aws-follow-up') {
      await followUpAws();
      return;
    }
    if (event.kind === 'drift-recheck') return; // looked at in the background, never here
    if (event.kind === 'wake-up') {
      await wakeUp(event.at);
      return;
    }
    const warning = warningSent(state, event.offsetMinutes, now());
    state = warning.state;
    record(
      'warning',
      'scheduler',
      `${formatMinutes(warning.minutesLeft)} before the shutdown at ${describeClockTime(new Date(state.shutdownAt!), policy.timeZone)}`,
      { last: false },
    );
    // The owners ride in the activity's input: the same command as before, so histories replay unchanged.
    announce(
      {
        kind: 'warning',
        namespace,
        shutdownAt: state.shutdownAt!,
        minutesLeft: warning.minutesLeft,
        offsetMinutes: event.offsetMinutes,
        ...(policy.owners?.length ? { owners: policy.owners } : {}),
      },
      warning.deadline,
    );
  }

  async function stop(by: string, action: 'stop' | 'scheduled-stop', timing?: StopTiming): Promise<ActionResult> {
    interruptWaits(readinessWaits, action === 'scheduled-stop' ? 'the scheduled stop' : `the stop by ${by}`);
    const { report, aws } = await bothHalvesOf('stop', 'stopping', () => [
      stopNamespace(namespace, timing),
      stopAwsResources(namespace, timing),
    ]);
    state = afterStop(state, policy, now());
    if (patched(PATCHES.driftRecheck)) state.drift = driftWatchAfterStop(state.drift, now());
    setProblems(aws.problems);
    followTransitions('stop', aws.report);
    if (!state.awsStopRecorded && patched(PATCHES.awsStartWhatStopStopped)) state.awsStopRecorded = true;
    if (!report.dryRun && patched(PATCHES.savingsLedger)) {
      const asleep = (report.asleep ?? []).map((w) => ({ from: w.replicas, requests: w.requests }));
      const slept = { ...sleptBy([...report.changed, ...asleep]), ...instancesSlept(aws.report?.resources ?? []) };
      ledgered(sleepBegun(ledger, now(), slept, { whole: report.asleep !== undefined }));
    }
    record(
      action,
      by,
      `${report.changed.length} workloads scaled to 0${aws.problems.length ? `; ${aws.problems.map((p) => p.detail).join('; ')}` : ''}`,
    );
    announce({ kind: 'stopped', namespace, by, report, ...(aws.problems.length ? { problems: aws.problems.map((p) => p.detail) } : {}) });
    return result(`${namespace} stopped by ${by}: ${report.changed.length} workloads scaled to 0${aws.words}.`, report, aws.report);
  }

  /** The morning wake-up: a start by the scheduler, said so in the channel. Its failure is recorded; the next wake-up is already planned. */
  async function wakeUp(at: Date): Promise<void> {
    state = withWakeUp(state, policy, now()); // taken: a start that fails waits for the next one, it is not tried again at once
    if (wakeUpMissed(at, policy, now()) && patched(PATCHES.missedWakeUpSkipped)) {
      const planned = describeInstantFixed(at, policy.timeZone);
      log.warn('morning wake-up handled after its working day ended; skipped', { namespace, planned });
      record('start', 'scheduler', `wake-up of ${planned} missed (no worker ran it that day); stays stopped until the next`);
      changed();
      return;
    }
    try {
      // Announced once Ready, beside the loop: the lock is free meanwhile, and a stop interrupts the wait.
      await start('scheduler', at, patched(PATCHES.startAwaitsReady) ? (started) => void untilReady(started) : undefined);
    } catch (err) {
      log.error('scheduled wake-up failed', { namespace, error: String(err) });
      record('start', 'scheduler', `scheduled wake-up failed: ${describeFailure(err)}`);
      changed();
    }
  }

  /**
   * A start Update: woken under the lock, then, with the lock free, until what it woke is
   * Ready. The wait begins under the lock, so a stop queued behind the start finds it to cancel.
   */
  async function startAndAwaitReady(by: string): Promise<ActionResult> {
    let ready: Promise<ActionResult> | undefined;
    const woken = await exclusively(() =>
      failureRecorded('start', by, () =>
        start(by, undefined, (started) => {
          ready = untilReady(started);
        }),
      ),
    );
    return ready ?? woken;
  }

  /**
   * Wakes the environment, and says so. Given `waitForReady`, a start that woke workloads of
   * kinds that report readiness hands them to it instead, to be waited for outside the lock
   * (untilReady), and only records that it waits: the reply and announcement follow then.
   */
  async function start(by: string, wokenAt?: Date, waitForReady?: (started: Started) => void): Promise<ActionResult> {
    // AWS answers at once with instances `pending`: the reply reports progress, it does not wait for
    // them, unless the namespace asks for its databases to be up before its workloads.
    const databasesFirst = policy.waitForDatabases === true && patched(PATCHES.databasesAwaited);
    const { before, report, aws } = await bothHalvesOf('start', 'starting', () => {
      if (!databasesFirst) return [wakeWorkloads(), startAwsResources(namespace, startOptions())];
      const awsStart = startAwsResources(namespace, startOptions());
      return [afterDatabases(awsStart), awsStart];
    });
    const started = afterStart(state, before, policy, now());
    state = started.state;
    // A stop that ended the wait for the databases before anything woke: the sleep goes on.
    const nothingWoke = report.databases?.interrupted !== undefined && report.changed.length === 0;
    if (sleeping() && !nothingWoke) ledgered(afterWake(ledger, now()));
    setProblems(aws.problems);
    followTransitions('start', aws.report);
    const woken: Started = {
      by,
      ...(wokenAt ? { wokenAt } : {}),
      report,
      aws,
      ...(started.afterHoursWindow && state.shutdownAt ? { afterHoursShutdown: state.shutdownAt } : {}),
    };
    if (waitForReady && awaitingReady(report.readiness)) {
      record('start', by, `${startDetail(woken)}; waiting for them to be Ready`);
      changed();
      waitForReady(woken);
      return result(`${namespace} started by ${by}: ${report.changed.length} workloads restored, waiting for them to be Ready.`, report);
    }
    return startDone(woken);
  }

  /**
   * The Kubernetes half of a start that waits for its databases: once the AWS half has started
   * them, until they are available (or the wait gives up, when the workloads are woken all the
   * same). A stop meanwhile ends the wait, and nothing is woken: the stop is next.
   */
  async function afterDatabases(awsStart: Promise<AwsActionReport>): Promise<ActionReport> {
    const [started] = await Promise.allSettled([awsStart]);
    const databases = started.status === 'fulfilled' ? databasesStarted(started.value) : [];
    if (databases.length === 0) return wakeWorkloads();
    const pending: DatabaseWait = { since: now().toISOString(), databases };
    const waited = await unlessStopped(waitsUnderLock, pending.since, () => awaitDatabases(namespace, pending));
    if ('ended' in waited && 'interrupted' in waited.ended)
      return { namespace, changed: [], unchanged: 0, durationMs: 0, databases: { ...pending, ...waited.ended } };
    return { ...(await wakeWorkloads()), databases: 'answer' in waited ? waited.answer : { ...pending, ...waited.ended } };
  }

  /** The Kubernetes half of a start, once anything it waits for first is done. */
  function wakeWorkloads(): Promise<ActionReport> {
    return patched(PATCHES.wakesInSteps) ? wakeInSteps() : startNamespace(namespace);
  }

  /**
   * A start's wake-order groups, woken a step at a time: between two, the wait for the
   * first to be Ready is the workflow's (awaitReady, under the lock), so a stop cancels it
   * before it queues for the lock, as it cancels the wait for the databases, and nothing
   * more is woken: the stop is next. A wait that cannot tell wakes the rest all the same.
   */
  async function wakeInSteps(): Promise<ActionReport> {
    let report = await startNamespace(namespace, {});
    for (let readiness = report.readiness; readiness?.next !== undefined; readiness = report.readiness) {
      const pending = readiness;
      const waited = await unlessStopped(waitsUnderLock, pending.since, () => awaitReady(namespace, pending));
      if ('ended' in waited && 'interrupted' in waited.ended) {
        const { next: _woken, ...stopped } = pending;
        return { ...report, readiness: { ...stopped, ...waited.ended } };
      }
      // Only the whole start's wait has a durationMs: this one was a step of it.
      const { durationMs: _step, ...between } = 'answer' in waited ? waited.answer : { ...pending, ...waited.ended };
      report = await startNamespace(namespace, { after: { ...report, readiness: between } });
    }
    return report;
  }

  /** "woken up as scheduled at 08:00 CET: 12 workloads restored; all 12 workloads Ready after 48 s; AWS could not start: ..." */
  function startDetail({ wokenAt, report, aws }: Started): string {
    return `${wokenAt ? `woken up as scheduled at ${describeClockTime(wokenAt, policy.timeZone)}: ` : ''}${report.changed.length} workloads restored${describeReadiness(report)}${aws.problems.length ? `; ${aws.problems.map((p) => p.detail).join('; ')}` : ''}`;
  }

  /**
   * A start's last action, announcement and reply, once it is done waiting for Ready. A stop
   * that came meanwhile has recorded its own last action: `records` false leaves that.
   */
  function startDone(done: Started, records = true): ActionResult {
    const { by, wokenAt, report, aws } = done;
    if (records) record('start', by, startDetail(done));
    // Interrupted by a stop: when it would have shut down says nothing any more.
    const interrupted = report.readiness?.interrupted !== undefined || report.databases?.interrupted !== undefined;
    const shutdownAt = interrupted ? null : state.shutdownAt;
    announce({
      kind: 'started',
      namespace,
      by,
      shutdownAt,
      report,
      ...(aws.problems.length ? { problems: aws.problems.map((p) => p.detail) } : {}),
      ...(wokenAt ? { wokeUp: { at: wokenAt.toISOString(), clock: describeClockTime(wokenAt, policy.timeZone) } } : {}),
    });
    return {
      ...result(
        `${namespace} started by ${by}: ${report.changed.length} workloads restored${describeReadiness(report)}${aws.words}${interrupted ? '' : plan(done)}.`,
        report,
        aws.report,
      ),
      shutdownAt,
    };
  }

  /** When a start shuts down as it stands now, after any wait for Ready: a prolongation meanwhile is in it. */
  function plan({ afterHoursShutdown }: Started): string {
    if (!state.enabled) return '; the scheduler is disabled, so it stays up until stopped';
    if (!state.shutdownAt) return '';
    const window =
      afterHoursShutdown === state.shutdownAt ? ` (after-hours window of ${formatMinutes(policy.afterHoursWindowMinutes)})` : '';
    return `; shuts down ${shutdownDescription()}${window}`;
  }

  /**
   * A start's wait for what it woke to be Ready, outside the lock, so no command queues
   * behind it: a stop meanwhile takes the lock at once and cancels the wait, and the start
   * then says it was interrupted, not what was still not Ready.
   */
  async function untilReady(started: Started): Promise<ActionResult> {
    const pending = started.report.readiness!;
    const recorded = state.lastAction;
    const waited = await unlessStopped(readinessWaits, pending.since, () => awaitReady(namespace, pending));
    const readiness: StartReadiness = 'answer' in waited ? waited.answer : { ...pending, ...waited.ended };
    const done = startDone({ ...started, report: { ...started.report, readiness } }, state.lastAction === recorded);
    changed();
    return done;
  }

  /**
   * A stop's or start's two halves, the environment `during` meanwhile. One whose Kubernetes
   * half failed puts it back where it was and fails, saying what each half could not do.
   */
  async function bothHalvesOf(
    action: 'stop' | 'start',
    during: 'stopping' | 'starting',
    halves: () => [Promise<ActionReport>, Promise<AwsActionReport>],
  ): Promise<{ before: WorkloadPhase; report: ActionReport; aws: AwsHalf }> {
    const before = state.workloads;
    state.workloads = during;
    changed();
    const [kubernetes, awsResult] = await bothHalves(...halves()).catch((err: unknown) => {
      state.workloads = before; // histories from before independent halves: the first failure failed the whole action
      throw err;
    });
    actionsDone++;
    const aws = awsOutcome(action, awsResult);
    if (kubernetes.status === 'rejected') {
      state.workloads = before;
      endFollowUp();
      setProblems([
        {
          half: 'kubernetes',
          action,
          detail: `Kubernetes could not ${action}: ${describeFailure(kubernetes.reason)}${aws.problems.length ? '' : `; AWS did ${action}`}`,
        },
        ...aws.problems,
      ]);
      throw kubernetes.reason;
    }
    return { before, report: kubernetes.value, aws };
  }

  /** Both halves run to the end, each on its own; what one could not do never hides what the other did. */
  async function bothHalves<K, A>(kubernetes: Promise<K>, aws: Promise<A>): Promise<[PromiseSettledResult<K>, PromiseSettledResult<A>]> {
    if (!patched(PATCHES.independentHalves)) {
      const [k, a] = await Promise.all([kubernetes, aws]);
      return [
        { status: 'fulfilled', value: k },
        { status: 'fulfilled', value: a },
      ];
    }
    return Promise.allSettled([kubernetes, aws]);
  }

  /** The AWS half's outcome as problems (none when it did everything), and the words for the reply. */
  function awsOutcome(action: 'stop' | 'start', aws: PromiseSettledResult<AwsActionReport>): AwsHalf {
    if (aws.status === 'rejected') {
      const detail = `AWS could not ${action}: ${describeFailure(aws.reason)}`;
      return { problems: [{ half: 'aws', action, detail }], words: `; ${detail}` };
    }
    const problems = patched(PATCHES.awsOutcomesReported) ? awsOutcomeProblems(aws.value) : awsProblems(aws.value);
    return { problems, words: describeAwsReport(aws.value), report: aws.value };
  }

  /**
   * A wait that a stop may end, found in `waits` by the stop: its answer, or how it ended
   * (interrupted by whom, or failed why) and how long it ran from `since`.
   */
  async function unlessStopped<T>(
    waits: Set<ReadinessWait>,
    since: string,
    wait: () => Promise<T>,
  ): Promise<{ answer: T } | { ended: WaitEnded }> {
    const ran = () => Math.max(0, now().getTime() - Date.parse(since));
    // A stop that came before this wait under the lock began found nothing to cancel; it queued behind it.
    if (waits === waitsUnderLock && queuedStops.length > 0 && patched(PATCHES.wakesInSteps))
      return { ended: { durationMs: ran(), interrupted: `the stop by ${queuedStops[0]}` } };
    const waiting: ReadinessWait = { scope: new CancellationScope() };
    waits.add(waiting);
    try {
      return { answer: await waiting.scope.run(wait) };
    } catch (err) {
      const durationMs = ran();
      return {
        ended:
          waiting.interruptedBy !== undefined && isCancellation(err)
            ? { durationMs, interrupted: waiting.interruptedBy }
            : { durationMs, failed: describeFailure(err) },
      };
    } finally {
      waits.delete(waiting);
    }
  }

  function interruptWaits(waits: Set<ReadinessWait>, by: string): void {
    for (const wait of waits) {
      wait.interruptedBy ??= by;
      wait.scope.cancel();
    }
  }

  function setProblems(problems: HalfProblem[]): void {
    if (problems.length > 0 || (state.problems?.length ?? 0) > 0) state.problems = problems;
  }

  function startOptions(): StartOptions | undefined {
    return state.awsStopRecorded ? { onlyStoppedByScheduler: true } : undefined;
  }

  /** Resources found in a transition the other way are followed from now on; an action that found none ends any earlier follow-up. */
  function followTransitions(action: 'stop' | 'start', report: AwsActionReport | undefined): void {
    const busy = report?.resources.some((r) => r.outcome === 'busy') ?? false;
    if (!busy) {
      if (state.awsFollowUp) state.awsFollowUp = null;
      return;
    }
    if (patched(PATCHES.awsFollowTransitions))
      state.awsFollowUp = { action, since: now().toISOString(), looks: 0, pending: inTransition(report!) };
  }

  /** A stop or start whose Kubernetes half failed: the environment is back where it was, and a follow-up of an earlier action would undo what this one did in AWS. */
  function endFollowUp(): void {
    if (state.awsFollowUp && patched(PATCHES.followUpEndsWithEveryAction)) state.awsFollowUp = null;
  }

  /**
   * A follow-up look at resources that were in transition: the action is made again (each
   * resource already done answers `already`) until none is in transition, or for at most
   * AWS_FOLLOW_UP_FOR_MS (planning.ts).
   */
  async function followUpAws(): Promise<void> {
    const follow = state.awsFollowUp;
    if (!follow) return;
    const { action } = follow;
    if (state.workloads !== (action === 'start' ? 'running' : 'stopped')) {
      state.awsFollowUp = null; // the environment moved on: its own action said what AWS is
      return;
    }
    // Looks come every minute while holding the lock: none waits out capacity retries, and none counts again what the action that found it counted.
    const call =
      action === 'start'
        ? startAwsResources(namespace, { ...startOptions(), followUp: true })
        : stopAwsResources(namespace, undefined, { followUp: true });
    const aws = awsOutcome(action, (await Promise.allSettled([call]))[0]);
    actionsDone++;
    const outcome = afterFollowUpLook(follow, state.problems ?? [], aws, policy, now());
    state.awsFollowUp = outcome.followUp;
    setProblems(outcome.problems);
    if (outcome.done === undefined) return;
    const problems = outcome.problems.filter((p) => p.half === 'aws');
    record(action, 'scheduler', `${outcome.done}${problems.length ? `; ${problems.map((p) => p.detail).join('; ')}` : ''}`);
    if (patched(PATCHES.followUpAnnounced)) {
      announce({
        kind: 'aws-followed',
        namespace,
        action,
        detail: outcome.done,
        ...(problems.length ? { problems: problems.map((p) => p.detail) } : {}),
      });
    }
  }

  /** The re-check of histories recorded before it moved out of the lock: stops AWS again, under the lock. */
  async function recheckAwsUnderLock(): Promise<void> {
    let aws: AwsActionReport;
    try {
      aws = await stopAwsResources(namespace);
    } finally {
      state.awsCheckedAt = now().toISOString(); // even a failed check waits its turn, never a hot loop
    }
    reportRestopped(aws);
  }

  function reportRestopped(aws: AwsActionReport): void {
    const restarted = aws.resources.filter((r) => r.outcome === 'changed');
    // Counted by the stop that began the sleep, unless that stop could not stop them.
    if (restarted.length > 0 && sleeping()) ledgered(sleepBegun(ledger, now(), { ...nothingSlept(), ...instancesSlept(aws.resources) }));
    if (restarted.length > 0) {
      const names = restarted.map((r) => r.name ?? r.id).join(', ');
      log.warn('AWS resources had started by themselves; stopped again', { namespace, resources: names });
      record('scheduled-stop', 'scheduler', `stopped again after AWS started it: ${names}`);
    }
  }

  /** A look of a stopped environment, run beside the loop: `inFlight` holds off the next until it is done, whatever it finds or however it fails. */
  function lookInBackground(what: string, look: () => Promise<void>, inFlight: (on: boolean) => void): void {
    inFlight(true);
    look()
      .catch((err: unknown) => log.warn(`${what} failed; looked at again later`, { namespace, error: describeFailure(err) }))
      .finally(() => {
        inFlight(false);
        version++;
      });
  }

  /**
   * While stopped, AWS is looked at now and then (RDS starts a DB by itself after 7 days; a
   * stop whose AWS half failed is tried again). The look is a read outside the lock, so it
   * never delays a command; only if something is awake does it queue, like any command,
   * to stop it, and only if the environment is still stopped by then.
   */
  async function recheckAws(): Promise<void> {
    state.awsCheckedAt = now().toISOString(); // the next look waits its turn, whatever this one finds
    const actionsBefore = actionsDone;
    const status = await awsStatus(namespace);
    const awake = awakeAwsResources(status);
    if (actionsDone !== actionsBefore || state.workloads !== 'stopped') return; // a stop or start came meanwhile: it said what AWS is
    if (awake.length === 0) {
      // Up and unstoppable (a read replica, ...): said again at each look, never cleared as if stopped.
      const unstoppable = patched(PATCHES.awsOutcomesReported) ? awakeButUnstoppable(status) : [];
      if (state.problems?.some((p) => p.half === 'aws') || unstoppable.length > 0) {
        setProblems([...(state.problems ?? []).filter((p) => p.half !== 'aws'), ...unstoppable]);
        changed();
      }
      return;
    }
    await exclusively(async () => {
      if (state.workloads !== 'stopped') return; // started meanwhile: AWS is wanted up now
      const aws = awsOutcome('stop', (await Promise.allSettled([stopAwsResources(namespace)]))[0]);
      setProblems([...(state.problems ?? []).filter((p) => p.half !== 'aws'), ...aws.problems]);
      if (aws.report) reportRestopped(aws.report);
      if (aws.problems.length)
        log.warn('AWS resources of a stopped environment are still up', { namespace, problems: aws.problems.map((p) => p.detail) });
    });
  }

  /**
   * While stopped, the workloads are looked at every DRIFT_CHECK_INTERVAL for any a GitOps
   * controller, an autoscaler or a person woke since the stop. The look reads outside the
   * lock; only what it found awake makes it queue, like any command, to put it back to sleep,
   * and only if no stop or start came meanwhile: a start that follows restores the count it
   * was woken to, one that came first is never undone. The channel is told once per workload
   * per stop; a look that fails is not told at all, and the next comes an interval later.
   */
  async function recheckDrift(): Promise<void> {
    state.drift = driftLookBegun(state.drift!, now());
    const actionsBefore = actionsDone;
    const seen = await (patched(PATCHES.driftReadLocally) ? readDrift : checkDrift)(namespace, { restop: false });
    const settle = (report: DriftReport) => {
      if (!state.drift) return;
      // What the stop could not count: workloads created since, now put to sleep with the rest.
      const created = report.awake.filter((w) => w.restopped && w.created);
      if (created.length > 0 && sleeping()) {
        ledgered(
          afterRestop(ledger, now(), { ...sleptBy(created.map((w) => ({ from: w.replicas, requests: w.requests }))), instances: {} }),
        );
      }
      const outcome = afterDriftLook(state.drift, report, now());
      state.drift = outcome.watch;
      if (outcome.tell.length === 0) return;
      // What the look did, not what was asked: a worker on DRIFT=report only reports, and a read only reads.
      const mode = outcome.tell.every((w) => w.restopped) ? 'restop' : 'report';
      const names = outcome.tell.map((w) => `${w.kind} ${w.name}`).join(', ');
      // A look that only reported is in the history too, but is no action: the last one stays the stop.
      if (mode === 'restop') record('drift', 'scheduler', `put back to sleep after they woke: ${names}`);
      else record('drift', 'scheduler', `woke while stopped, left running (reported only): ${names}`, { last: false });
      changed();
      log.warn(mode === 'restop' ? 'workloads woke while stopped; put back to sleep' : 'workloads woke while stopped', {
        namespace,
        names,
      });
      announce({ kind: 'drift', namespace, mode, workloads: outcome.tell });
    };
    if (actionsDone !== actionsBefore || state.workloads !== 'stopped') return; // a stop or start came meanwhile: it said what runs
    const action = driftAction(seen, state.enabled);
    if (action !== 'restop') {
      settle(seen);
      return;
    }
    await exclusively(async () => {
      if (actionsDone !== actionsBefore || state.workloads !== 'stopped') return; // started meanwhile: the workloads are wanted up now
      // Disabled (scheduler=disabled) while it waited for the lock: told of, never put to sleep.
      if (driftAction(seen, state.enabled) !== 'restop' && patched(PATCHES.driftRestopRechecked)) {
        settle(seen);
        return;
      }
      settle(await checkDrift(namespace, { restop: true }));
    });
  }

  /**
   * The namespace is still there but no longer to be managed: restore what a stop saved
   * (nothing else could, once this workflow is gone), then end. Tried again until it works
   * or the namespace is gone.
   */
  async function leaveManagement(by: string): Promise<void> {
    while (!retired) {
      try {
        await exclusively(async () => {
          // Nothing waits for Ready: the workflow ends right after.
          if (state.workloads !== 'running') await start(`${by} (leaving management)`);
        });
        if (state.awsFollowUp && patched(PATCHES.leavingFollowsUp)) await followUpUntilSettled();
        retired = true;
      } catch (err) {
        const detail = describeFailure(err);
        if (failureType(err) === Failure.NamespaceNotFound) {
          retired = true; // nothing left to restore
          break;
        }
        log.error('could not restore an environment leaving management; trying again', { namespace, error: detail });
        record('start', by, `restore before leaving management failed: ${detail}`);
        changed();
        await condition(() => retired, RESTORE_RETRY_MS);
        // Tried for days (RBAC taken away, ...): the history must not grow without end meanwhile.
        if (!retired && historyIsLong() && allHandlersFinished()) await continueAsNew<typeof environmentWorkflow>(continuedInput());
      }
    }
  }

  /** Nothing will look once this workflow ends: what the restoring start found in transition is followed (within the follow-up's own bound) first. */
  async function followUpUntilSettled(): Promise<void> {
    for (;;) {
      const event = followUpEvent(state);
      if (!event) return;
      const waitMs = event.at.getTime() - now().getTime();
      if (waitMs > 0 && (await condition(() => retired, waitMs))) return; // the namespace was deleted meanwhile
      await exclusively(followUpAws);
    }
  }

  /** The namespace is gone; its AWS resources are not: the retirement says which are left, and in what state. */
  async function reportLeftBehind(by: string): Promise<void> {
    const [status] = await Promise.allSettled([awsStatus(namespace)]);
    const detail =
      status.status === 'fulfilled'
        ? describeLeftBehind(namespace, status.value)
        : `namespace deleted; AWS could not be read to say what is left tagged for it: ${describeFailure(status.reason)}`;
    log.warn('environment retired: its namespace was deleted', { namespace, aws: detail });
    record('retire', by, detail);
    changed();
  }

  function historyIsLong(): boolean {
    const info = workflowInfo();
    return info.continueAsNewSuggested || info.historyLength >= (input.maxHistoryEvents ?? DEFAULT_MAX_HISTORY_EVENTS);
  }

  /** Nothing of this run's own is in progress: no handler, no action under the lock, no re-check. */
  function quiet(): boolean {
    return nothingInFlight() && leavingBy === null && !retired;
  }

  /** No handler, action under the lock, re-check, drift look or wait for Ready is running. */
  function nothingInFlight(): boolean {
    return allHandlersFinished() && !busy && !lock.isLocked() && !recheckInFlight && !driftInFlight && readinessWaits.size === 0;
  }

  /**
   * Whether to continue as new now. Notifications in flight are waited for, but never past
   * the next due event: those still undelivered then go with the new run.
   */
  async function readyToContinueAsNew(): Promise<boolean> {
    if (!quiet()) return false;
    const event = plannedEvent();
    const dueInMs = event ? dueAt(event, dispatchAheadMs) - now().getTime() : undefined;
    if (dueInMs !== undefined && dueInMs <= 0) return false;
    const settled = () => outbox.size === 0 || !quiet();
    if (dueInMs === undefined) await condition(settled);
    else await condition(settled, dueInMs);
    return quiet();
  }

  function continuedInput(): EnvironmentInput {
    return {
      ...input,
      policy,
      state,
      enabled: state.enabled,
      dispatchAheadMs,
      undelivered: [...outbox.values()],
      history,
      ...(ledger.length > 0 ? { savings: ledger } : {}),
      ...(leavingBy !== null ? { leavingBy } : {}),
    };
  }

  async function exclusively<T>(work: () => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      busy = true;
      try {
        return await work();
      } finally {
        busy = false;
        changed();
      }
    };
    if (patched(PATCHES.fifoLock)) {
      return lock.runExclusive(async () => {
        await condition(() => !busy); // a holder of the earlier lock, while a worker moves from replay to new code
        return run();
      });
    }
    await condition(() => !busy);
    return run();
  }

  function shutdownDescription(): string | null {
    return state.shutdownAt ? describeShutdown(new Date(state.shutdownAt), now(), policy.timeZone) : null;
  }

  function wakeDescription(): string | null {
    const wakeAt = upcomingWakeUp(state, policy);
    return wakeAt ? describeShutdown(wakeAt, now(), policy.timeZone) : null;
  }

  /** A sleep lasts: an open one is only ever in the ledger of a run that took the savings patch. */
  function sleeping(): boolean {
    return ledger.at(-1)?.to === null;
  }

  function ledgered(next: Sleep[]): void {
    ledger = next;
    savingsUnpublished = true;
  }

  /** The requests of what a stop scaled down: each workload's pod requests times the replicas it had. */
  function sleptBy(
    changes: readonly { from: number; requests?: { cpuMillicores: number; memoryBytes: number } }[],
  ): Omit<Slept, 'instances'> {
    let cpuMillicores = 0;
    let memoryBytes = 0;
    for (const c of changes) {
      cpuMillicores += c.from * (c.requests?.cpuMillicores ?? 0);
      memoryBytes += c.from * (c.requests?.memoryBytes ?? 0);
    }
    return { cpuMillicores, memoryBytes };
  }

  /** What happened: the last action (unless `last` is false) and the history's next entry, so neither misses what the other has. */
  function record(action: HistoryAction, by: string, detail?: string, { last = true }: { last?: boolean } = {}): void {
    const entry: HistoryEntry = { action, by, at: now().toISOString(), ...(detail ? { detail } : {}) };
    if (last) state.lastAction = entry;
    history = appended(history, entry);
    historyUnpublished = true;
  }

  /** A stop or start asked for that failed is in the history too (the last action stays what was last done). */
  async function failureRecorded(action: 'stop' | 'start', by: string, work: () => Promise<ActionResult>): Promise<ActionResult> {
    try {
      return await work();
    } catch (err) {
      const problem = (state.problems ?? []).find((p) => p.half === 'kubernetes' && p.action === action);
      record(action, by, `failed: ${problem?.detail ?? describeFailure(err)}`, { last: false });
      throw err;
    }
  }

  function result(message: string, report?: ActionReport, aws?: AwsActionReport): ActionResult {
    return {
      namespace,
      phase: phaseOf(state),
      shutdownAt: state.shutdownAt,
      message,
      ...(report ? { report } : {}),
      ...(aws ? { aws } : {}),
    };
  }

  /** Every change is published: search attributes for listings, the status memo, and the Temporal UI's current details. */
  /** The state under a new policy, as the histories of each earlier way of bounding a stopped environment's wake-up planned it. */
  function replannedForPolicy(current: EnvironmentState, next: typeof policy): EnvironmentState {
    const replanned = afterPolicyChange(current, next, now());
    const keptDay = afterPolicyChange(current, next, now(), { wakeUpFrom: 'planned-day' });
    if (replanned.wakeAt !== keptDay.wakeAt && patched(PATCHES.wakeUpBoundByStopDay)) return replanned;
    const fromNow = afterPolicyChange(current, next, now(), { wakeUpFrom: 'now' });
    return keptDay.wakeAt === fromNow.wakeAt || patched(PATCHES.wakeUpKeepsDay) ? keptDay : fromNow;
  }

  function changed(): void {
    version++;
    const phase = phaseOf(state);
    upsertSearchAttributes([
      { key: EnvNamespace, value: namespace },
      { key: EnvPhase, value: phase },
      { key: EnvEnabled, value: state.enabled },
      { key: EnvNextShutdown, value: state.shutdownAt ? new Date(state.shutdownAt) : null },
    ]);
    // The status as data, so `describe()` answers it from the server alone: a status never
    // waits for a worker. Guarded by a patch so histories recorded before it still replay.
    if (patched('status-memo')) {
      // The history only when it has news: each upsert's event carries all it is given.
      const withHistory = historyUnpublished && patched(PATCHES.historyMemo);
      upsertMemo({
        [STATUS_MEMO]: { namespace, phase, policy, ...state } satisfies StatusMemo,
        [DISPATCH_AHEAD_MEMO]: dispatchAheadMs,
        ...(withHistory ? { [HISTORY_MEMO]: history } : {}),
        ...(savingsUnpublished ? { [SAVINGS_MEMO]: ledger } : {}),
      });
      if (withHistory) historyUnpublished = false;
      savingsUnpublished = false;
    }
    const last = state.lastAction;
    setCurrentDetails(
      [
        `**${namespace}**: ${phase}${state.enabled ? '' : ' (scheduler disabled)'}`,
        `Next shutdown: ${state.shutdownAt ? describeInstantFixed(new Date(state.shutdownAt), policy.timeZone) : 'none'}${state.prolongedMinutes ? ` (prolonged ${formatMinutes(state.prolongedMinutes)})` : ''}`,
        ...(state.wakeAt ? [`Next wake-up: ${describeInstantFixed(new Date(state.wakeAt), policy.timeZone)}`] : []),
        last ? `Last: ${last.action} by ${last.by} at ${last.at}${last.detail ? ` (${last.detail})` : ''}` : '',
        ...(state.problems ?? []).map((p) => `Problem: ${p.detail}`),
      ].join('\n'),
    );
  }

  /**
   * Fire-and-forget, so no timer ever waits for Slack. Each notification is tried until its
   * deadline; one still undelivered when the workflow continues as new goes with the new run.
   */
  function announce(event: EnvironmentEvent, deadline = new Date(now().getTime() + NOTIFICATION_DEADLINE_MS)): void {
    deliver({ event, deadline: deadline.toISOString() });
  }

  function deliver(notification: PendingNotification): void {
    const deadline = new Date(notification.deadline);
    if (deadline.getTime() <= now().getTime() && patched(PATCHES.lateNotificationsDropped)) {
      log.warn('notification dropped: past its deadline', { namespace, kind: notification.event.kind });
      return;
    }
    const id = nextNotification++;
    outbox.set(id, notification);
    notifyUntil(
      deadline,
      now(),
    )(notification.event)
      .catch((err: unknown) => log.warn('notification not delivered', { namespace, kind: notification.event.kind, error: String(err) }))
      .finally(() => outbox.delete(id));
  }
}
