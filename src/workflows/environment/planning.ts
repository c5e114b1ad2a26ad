/**
 * The environment's rules as plain functions of (state, policy, now): what a start, a stop,
 * a prolongation, the morning reset or a new policy leaves behind, which Update to refuse,
 * and what is due next and when. No Temporal here: the workflow (workflow.ts) asks, then
 * does what the answer says, and test/environment-planning.test.ts checks the rules at
 * fixed instants.
 */
import type { AwsActionReport, DriftedWorkload, DriftReport, HalfProblem } from '../../activities/contracts';
import { formatMinutes } from '../../domain/duration';
import {
  defaultShutdownOn,
  localDate,
  nextWakeUp,
  plannedWarnings,
  shutdownAfterStart,
  startOfLocalDay,
  startOfNextLocalDay,
  type EnvironmentPolicy,
} from '../../domain/shutdown-policy';
import { describeInstantFixed } from '../../domain/time-display';
import type { AwsFollowUp, DriftWatch, EnvironmentState, Phase, WorkloadPhase } from './definitions';

/** RDS starts a DB stopped for 7 days by itself; a stopped environment looks this often. */
export const AWS_RECHECK_MS = 6 * 60 * 60 * 1000;
/** After a stop whose AWS half failed, the next look comes sooner. */
export const AWS_RETRY_AFTER_FAILURE_MS = 30 * 60 * 1000;
/** A resource in transition is looked at this often after a stop or start found it so... */
export const AWS_FOLLOW_UP_MS = 60 * 1000;
/** ...and for at most this long: an RDS stop or start takes minutes, not an hour. */
export const AWS_FOLLOW_UP_FOR_MS = 60 * 60 * 1000;
/** The interval of a look until one has reported the worker's: a first look that fails is not tried again at once. */
export const DRIFT_CHECK_FALLBACK_MS = 5 * 60 * 1000;
/** A signalled change never brings a drift look sooner than this after the last one: a burst of changes is one look. */
export const DRIFT_MIN_GAP_MS = 10 * 1000;
/** A warning an hour late is worse than none; Slack outages longer than that drop it. */
export const NOTIFICATION_DEADLINE_MS = 60 * 60 * 1000;

/** `disabled` is shown instead of `running` while the scheduler is off. */
export function phaseOf(state: EnvironmentState): Phase {
  return state.workloads === 'running' && !state.enabled ? 'disabled' : state.workloads;
}

/** A namespace just enrolled: running, and shutting down as if it had just been started. */
export function enrolled(enabled: boolean, policy: EnvironmentPolicy, now: Date): EnvironmentState {
  const fresh: EnvironmentState = {
    workloads: 'running',
    enabled,
    shutdownAt: null,
    prolongedMinutes: 0,
    warningsSent: [],
    lastAction: { action: 'enrol', by: 'scheduler', at: now.toISOString() },
  };
  return enabled ? withShutdown(fresh, shutdownAfterStart(now, policy).shutdownAt, policy, now) : fresh;
}

/** A new shutdown: warnings already in the past are skipped, but the last of them fires now so no shutdown comes unannounced. */
export function withShutdown(state: EnvironmentState, shutdownAt: Date, policy: EnvironmentPolicy, now: Date): EnvironmentState {
  const warnings = plannedWarnings(shutdownAt, policy);
  const past = warnings.filter((w) => w.at.getTime() <= now.getTime());
  const allPast = past.length === warnings.length && shutdownAt.getTime() > now.getTime();
  return { ...state, shutdownAt: shutdownAt.toISOString(), warningsSent: (allPast ? past.slice(0, -1) : past).map((w) => w.offsetMinutes) };
}

/**
 * The morning wake-up a stopped environment waits for: the first after `now`, so a stop
 * after today's (a manual one at 10:00, tonight's scheduled one) waits for the next working
 * day's. None while running, with the scheduler off, or without a wake time.
 */
export function withWakeUp(state: EnvironmentState, policy: EnvironmentPolicy, after: Date): EnvironmentState {
  const wakeAt = state.workloads === 'stopped' && state.enabled ? nextWakeUp(after, policy) : null;
  if (wakeAt) return { ...state, wakeAt: wakeAt.toISOString() };
  return state.wakeAt ? { ...state, wakeAt: null } : state;
}

/**
 * Whether a wake-up handled at `now` comes too late to do: the working day it opens is over
 * (its shutdown time has passed, workers were down meanwhile) or no longer a working day. A
 * wake-up late within its day is still done: the environment is wanted up then.
 */
export function wakeUpMissed(at: Date, policy: EnvironmentPolicy, now: Date): boolean {
  const dayEnds = defaultShutdownOn(at, policy);
  return dayEnds === null || now.getTime() >= dayEnds.getTime();
}

/** The wake-up `status` shows: the planned one while stopped; while running, the first after its shutdown. */
export function upcomingWakeUp(state: EnvironmentState, policy: EnvironmentPolicy): Date | null {
  if (state.workloads === 'stopped') return state.enabled && state.wakeAt ? new Date(state.wakeAt) : null;
  return state.enabled && state.shutdownAt ? nextWakeUp(new Date(state.shutdownAt), policy) : null;
}

function withoutProlongation(state: EnvironmentState): EnvironmentState {
  return { ...state, prolongedMinutes: 0, ...(state.prolongedOn ? { prolongedOn: null } : {}) };
}

/** Why a prolongation by `minutes` is refused, or null when it is allowed. */
export function prolongationRefusal(namespace: string, state: EnvironmentState, policy: EnvironmentPolicy, minutes: number): string | null {
  if (!Number.isInteger(minutes) || minutes <= 0) return `a prolongation must be a positive number of whole minutes, not ${minutes}`;
  if (!state.enabled) return `${namespace} has the scheduler disabled: there is no shutdown to move`;
  if (state.workloads !== 'running' || !state.shutdownAt)
    return `${namespace} is ${phaseOf(state)}: only a running environment can be prolongated; start it first`;
  const room = policy.maxProlongationMinutes - state.prolongedMinutes;
  if (minutes > room) {
    return (
      `${formatMinutes(minutes)} is over the limit: today's shutdown can be pushed at most ` +
      `${formatMinutes(policy.maxProlongationMinutes)} in all, ${formatMinutes(Math.max(0, room))} of which is left`
    );
  }
  return null;
}

/** Prolongated (once `prolongationRefusal` allowed it): the shutdown moves later, its warnings with it. */
export function prolongated(state: EnvironmentState, policy: EnvironmentPolicy, now: Date, minutes: number): EnvironmentState {
  const shutdownAt = new Date(new Date(state.shutdownAt!).getTime() + minutes * 60_000);
  return withShutdown(
    { ...state, prolongedMinutes: state.prolongedMinutes + minutes, prolongedOn: localDate(now, policy.timeZone) },
    shutdownAt,
    policy,
    now,
  );
}

/**
 * Whether the morning reset keeps the prolongation: it drops only what belongs to an earlier
 * local day, and its Schedule runs in the service's zone, which may already be the afternoon
 * of this environment's day.
 */
export function prolongedToday(state: EnvironmentState, policy: EnvironmentPolicy, now: Date): boolean {
  return state.prolongedMinutes > 0 && state.prolongedOn === localDate(now, policy.timeZone);
}

/** The morning reset: back to today's default shutdown; on a day off or after hours, the after-hours window already running is kept. */
export function afterReset(state: EnvironmentState, policy: EnvironmentPolicy, now: Date): EnvironmentState {
  const reset = withoutProlongation(state);
  if (!reset.enabled || reset.workloads !== 'running') return reset;
  const today = defaultShutdownOn(now, policy);
  return today && today.getTime() > now.getTime() ? withShutdown(reset, today, policy, now) : reset;
}

/**
 * Where a stopped environment's re-planned wake-up may fall from: `stop-day` the day after
 * its stop at the latest (so a working day given back or a holiday cancelled wakes it), or
 * earlier the day it was planned for; `planned-day` never before the day it was planned for
 * (histories from before the stop's day bounded it); `now` anywhere ahead (histories from
 * before either).
 */
export type WakeUpBound = 'stop-day' | 'planned-day' | 'now';

/**
 * A new policy: a new time still ahead today takes effect now, prolongation kept; otherwise
 * from the next working day. A stopped environment's wake-up takes the new policy but never
 * falls on the day of a stop made after that day's wake-up, so one stopped by hand after
 * today's wake-up is not woken again today because the wake time moved later.
 */
export function afterPolicyChange(
  state: EnvironmentState,
  policy: EnvironmentPolicy,
  now: Date,
  { wakeUpFrom = 'stop-day' }: { wakeUpFrom?: WakeUpBound } = {},
): EnvironmentState {
  if (state.workloads === 'stopped') {
    return withWakeUp(state, policy, new Date(Math.max(now.getTime(), wakeUpBound(state, policy, wakeUpFrom))));
  }
  if (!state.enabled || state.workloads !== 'running') return state;
  const today = defaultShutdownOn(now, policy);
  return today && today.getTime() > now.getTime()
    ? withShutdown(state, new Date(today.getTime() + state.prolongedMinutes * 60_000), policy, now)
    : state;
}

/**
 * The instant the next wake-up must come after. The planned wake-up came after the stop, so
 * its day is the stop's own (the stop came before that day's wake-up) or a later one; a day
 * in between may have become a working day since, and only the stop's own day is ruled out.
 */
function wakeUpBound(state: EnvironmentState, policy: EnvironmentPolicy, from: WakeUpBound): number {
  if (from === 'now' || !state.wakeAt) return 0;
  const plannedDay = startOfLocalDay(new Date(state.wakeAt), policy).getTime() - 1;
  if (from === 'planned-day' || !state.stoppedAt) return plannedDay;
  return Math.min(plannedDay, startOfNextLocalDay(new Date(state.stoppedAt), policy).getTime() - 1);
}

/** The scheduler switched off (no shutdown, no wake-up) or on (a running environment shuts down as if just started, a stopped one wakes at the next wake-up). */
export function afterEnabledChange(state: EnvironmentState, enabled: boolean, policy: EnvironmentPolicy, now: Date): EnvironmentState {
  if (!enabled) return withWakeUp({ ...state, enabled, shutdownAt: null, warningsSent: [] }, policy, now);
  const next = { ...state, enabled };
  return next.workloads === 'running'
    ? withShutdown(next, shutdownAfterStart(now, policy).shutdownAt, policy, now)
    : withWakeUp(next, policy, now);
}

/** Stopped: nothing left to shut down or warn about, AWS is looked at again from now on, and the next wake-up is planned. */
export function afterStop(state: EnvironmentState, policy: EnvironmentPolicy, now: Date): EnvironmentState {
  const stopped: EnvironmentState = {
    ...withoutProlongation({ ...state, workloads: 'stopped', shutdownAt: null }),
    warningsSent: [],
    awsCheckedAt: now.toISOString(),
    stoppedAt: now.toISOString(),
  };
  return withWakeUp(stopped, policy, now);
}

/**
 * Started (the workloads are up, whatever AWS did): tonight's shutdown is armed, unless the
 * scheduler is disabled. A start on an environment that was already up keeps a later,
 * prolonged shutdown. `afterHoursWindow`: the new shutdown is the after-hours window's end.
 */
export function afterStart(
  state: EnvironmentState,
  before: WorkloadPhase,
  policy: EnvironmentPolicy,
  now: Date,
): { state: EnvironmentState; afterHoursWindow: boolean } {
  const up: EnvironmentState = {
    ...state,
    workloads: 'running',
    awsCheckedAt: null,
    ...(state.wakeAt ? { wakeAt: null } : {}),
    ...(state.stoppedAt ? { stoppedAt: null } : {}),
  };
  if (!up.enabled) return { state: { ...withoutProlongation(up), shutdownAt: null }, afterHoursWindow: false };
  const { shutdownAt, afterHours } = shutdownAfterStart(now, policy);
  const keepsLaterShutdown = before === 'running' && up.shutdownAt !== null && new Date(up.shutdownAt) > shutdownAt;
  if (keepsLaterShutdown) return { state: up, afterHoursWindow: false };
  return { state: withShutdown(withoutProlongation(up), shutdownAt, policy, now), afterHoursWindow: afterHours };
}

export type TimedEvent =
  | { kind: 'warning'; offsetMinutes: number; at: Date }
  | { kind: 'wake-up'; at: Date }
  | { kind: 'shutdown'; at: Date }
  | { kind: 'aws-recheck'; at: Date }
  | { kind: 'aws-follow-up'; at: Date }
  | { kind: 'drift-recheck'; at: Date };

export interface Timing {
  /** How long before its instant a shutdown is handed to a worker (EnvironmentInput.dispatchAheadMs). */
  dispatchAheadMs: number;
  /** A re-check of AWS is running already: no other is planned until it is done. */
  recheckInFlight: boolean;
  /** A stopped environment looks for workloads woken since its stop (histories from before it do not). */
  driftChecks?: boolean;
  /** A drift look is running already: no other is planned until it is done. */
  driftInFlight?: boolean;
  /** Whether a stopped environment's wake-up is planned (histories from before wake-ups never had one). */
  wakeUps?: boolean;
}

/** When to act on an event: a shutdown is dispatched ahead of its instant, and held by the worker until then. */
export function dueAt(event: TimedEvent, dispatchAheadMs: number): number {
  return event.at.getTime() - (event.kind === 'shutdown' ? dispatchAheadMs : 0);
}

/**
 * The next timed event: an unsent warning, else the shutdown; while stopped, the next AWS
 * re-check (a follow-up of AWS in transition instead, while there is one), or the
 * morning wake-up when that comes first; a follow-up first when it is due sooner.
 */
export function nextEvent(
  state: EnvironmentState,
  policy: EnvironmentPolicy,
  { dispatchAheadMs, recheckInFlight, driftChecks = false, driftInFlight = false, wakeUps = false }: Timing,
): TimedEvent | null {
  const followUp = followUpEvent(state);
  const drift = driftChecks && !driftInFlight ? driftEvent(state) : null;
  const wake = wakeUps ? wakeUpEvent(state) : null;
  if (state.workloads === 'stopped' && state.awsCheckedAt) {
    const aws = followUp ?? (recheckInFlight ? null : awsRecheckEvent(state, state.awsCheckedAt));
    return earliest(earliest(aws, drift), wake);
  }
  if (drift) return earliest(drift, wake);
  const scheduled = scheduledEvent(state, policy) ?? wake;
  return followUp && (!scheduled || dueAt(followUp, dispatchAheadMs) < dueAt(scheduled, dispatchAheadMs)) ? followUp : scheduled;
}

function awsRecheckEvent(state: EnvironmentState, checkedAt: string): TimedEvent {
  const failed = state.problems?.some((p) => p.half === 'aws' && p.action === 'stop' && p.outcome !== 'unsupported');
  return { kind: 'aws-recheck', at: new Date(new Date(checkedAt).getTime() + (failed ? AWS_RETRY_AFTER_FAILURE_MS : AWS_RECHECK_MS)) };
}

/** The sooner of two events; on a tie the first (AWS before drift, as histories before drift had it). */
function earliest(a: TimedEvent | null, b: TimedEvent | null): TimedEvent | null {
  if (!a || !b) return a ?? b;
  return b.at.getTime() < a.at.getTime() ? b : a;
}

/**
 * Stopped: the watch starts afresh, nothing told yet; it keeps the interval the worker
 * last reported, and without one the first look comes at once and learns it.
 */
export function driftWatchAfterStop(previous: DriftWatch | null | undefined, now: Date): DriftWatch {
  return { checkedAt: now.toISOString(), ...(previous?.intervalMs ? { intervalMs: previous.intervalMs } : {}), reported: [] };
}

/** The next drift look of a stopped environment: an interval after the last, or at once after a signalled change (but DRIFT_MIN_GAP_MS after the last). */
export function driftEvent(state: EnvironmentState): TimedEvent | null {
  const watch = state.drift;
  if (state.workloads !== 'stopped' || !watch || watch.off) return null;
  const last = new Date(watch.checkedAt).getTime();
  let at = last + (watch.intervalMs ?? 0);
  if (watch.suspectedAt) at = Math.min(at, Math.max(new Date(watch.suspectedAt).getTime(), last + DRIFT_MIN_GAP_MS));
  return { kind: 'drift-recheck', at: new Date(at) };
}

/** A look begins: the next waits its turn from now, whatever this one finds or however it fails. */
export function driftLookBegun(watch: DriftWatch, now: Date): DriftWatch {
  return { ...watch, checkedAt: now.toISOString(), intervalMs: watch.intervalMs ?? DRIFT_CHECK_FALLBACK_MS, suspectedAt: null };
}

/** What a stopped environment does about what its look found awake: a disabled one (scheduler=disabled) is never put to sleep by the scheduler, only told of. */
export function driftAction(report: Pick<DriftReport, 'mode' | 'awake'>, enabled: boolean): 'restop' | 'report' | 'nothing' {
  if (report.mode === 'off' || report.awake.length === 0) return 'nothing';
  return report.mode === 'restop' && enabled ? 'restop' : 'report';
}

/** After a look: the watch (the interval learned, what was told), and what to tell the channel now (each workload once per stop). */
export function afterDriftLook(
  watch: DriftWatch,
  report: Pick<DriftReport, 'intervalMs' | 'awake' | 'mode'>,
  now: Date,
): { watch: DriftWatch; tell: DriftedWorkload[] } {
  const key = (w: DriftedWorkload) => `${w.kind}/${w.name}`;
  const tell = report.awake.filter((w) => !watch.reported.includes(key(w)));
  return {
    watch: {
      ...watch,
      checkedAt: now.toISOString(),
      intervalMs: report.intervalMs,
      reported: [...watch.reported, ...tell.map(key)],
      suspectedAt: null,
      ...(report.mode === 'off' ? { off: true } : {}),
    },
    tell,
  };
}

/** A stopped environment's morning wake-up, with the scheduler on. */
function wakeUpEvent(state: EnvironmentState): TimedEvent | null {
  return state.workloads === 'stopped' && state.enabled && state.wakeAt ? { kind: 'wake-up', at: new Date(state.wakeAt) } : null;
}

/** The next look at AWS resources in transition, while the environment is where the action that found them left it. */
export function followUpEvent(state: EnvironmentState): TimedEvent | null {
  const follow = state.awsFollowUp;
  if (!follow || state.workloads !== (follow.action === 'start' ? 'running' : 'stopped')) return null;
  return { kind: 'aws-follow-up', at: new Date(new Date(follow.since).getTime() + (follow.looks + 1) * AWS_FOLLOW_UP_MS) };
}

function scheduledEvent(state: EnvironmentState, policy: EnvironmentPolicy): TimedEvent | null {
  if (!state.enabled || state.workloads !== 'running' || !state.shutdownAt) return null;
  const shutdownAt = new Date(state.shutdownAt);
  const warning = plannedWarnings(shutdownAt, policy).find((w) => !state.warningsSent.includes(w.offsetMinutes));
  return warning ? { kind: 'warning', ...warning } : { kind: 'shutdown', at: shutdownAt };
}

/** A due warning, sent: it fires once; it says how many minutes are left, until the shutdown at the latest (said after it, a warning is noise). */
export function warningSent(
  state: EnvironmentState,
  offsetMinutes: number,
  now: Date,
): { state: EnvironmentState; minutesLeft: number; deadline: Date } {
  const shutdownAt = new Date(state.shutdownAt!);
  return {
    state: { ...state, warningsSent: [...state.warningsSent, offsetMinutes] },
    minutesLeft: Math.max(0, Math.round((shutdownAt.getTime() - now.getTime()) / 60_000)),
    deadline: new Date(Math.min(shutdownAt.getTime(), now.getTime() + NOTIFICATION_DEADLINE_MS)),
  };
}

/** The resources an AWS action found in a transition the other way ("rds-instance orders-db", and the state it was in). */
export function inTransition(report: AwsActionReport): { what: string; state: string }[] {
  return report.resources.filter((r) => r.outcome === 'busy').map((r) => ({ what: `${r.kind} ${r.name ?? r.id}`, state: r.before }));
}

/** What a follow-up look leaves behind: the follow-up (null once over), the environment's problems, and when over, what it did. */
export interface FollowUpOutcome {
  followUp: AwsFollowUp | null;
  problems: HalfProblem[];
  /** Set when the follow-up is over: the sentence for the last action and the channel. */
  done?: string;
}

/**
 * One follow-up look made again the action that found resources in transition (`report`
 * absent when AWS could not be read): it goes on while any is still in transition, or AWS
 * could not be read, for at most AWS_FOLLOW_UP_FOR_MS; then each resource never done is a
 * problem, and the last action says what was done and when.
 */
export function afterFollowUpLook(
  follow: AwsFollowUp,
  problems: HalfProblem[],
  look: { report?: AwsActionReport; problems: HalfProblem[] },
  policy: EnvironmentPolicy,
  now: Date,
): FollowUpOutcome {
  const { action } = follow;
  const stillBusy = look.report ? inTransition(look.report) : [];
  // A look that could not read AWS says nothing about what is still in transition: the last one that could, does.
  const pending = look.report ? stillBusy : (follow.pending ?? []);
  const keepFollowing = (stillBusy.length > 0 || !look.report) && now.getTime() - new Date(follow.since).getTime() < AWS_FOLLOW_UP_FOR_MS;
  const others = problems.filter((p) => p.half !== 'aws');
  if (keepFollowing) {
    const stillWaiting = look.report ? [] : problems.filter((p) => p.half === 'aws' && p.outcome === 'busy');
    return { followUp: { ...follow, looks: follow.looks + 1, pending }, problems: [...others, ...stillWaiting, ...look.problems] };
  }
  const not = action === 'start' ? 'not started' : 'not stopped';
  const gaveUp = pending.map(({ what, state: was }) => ({
    half: 'aws' as const,
    action,
    outcome: 'busy' as const,
    detail: look.report
      ? `AWS: ${what} still ${was} after ${formatMinutes(AWS_FOLLOW_UP_FOR_MS / 60_000)}: ${not}; ${action} the environment again`
      : `AWS: ${what} was ${was} and AWS could not be read since: ${not}; ${action} the environment again`,
  }));
  const at = describeInstantFixed(now, policy.timeZone);
  const acted = (look.report?.resources ?? []).filter((r) => r.outcome === 'changed').map((r) => `${r.kind} ${r.name ?? r.id}`);
  const done = acted.length
    ? `AWS: ${action === 'start' ? 'started' : 'stopped'} ${acted.join(', ')} at ${at}, once ${action === 'start' ? 'stopping' : 'starting'} had finished`
    : look.report || pending.length === 0
      ? `AWS: nothing left to ${action} at ${at}`
      : `AWS: gave up following at ${at}`;
  return { followUp: null, problems: [...others, ...look.problems.filter((p) => p.outcome !== 'busy'), ...gaveUp], done };
}
