/**
 * One long-running workflow per environment (Kubernetes namespace), id `env/<namespace>`.
 * It sleeps until the next warning or the shutdown, stops the environment on time, and
 * takes Slack's commands as Updates (validated before anything changes) and the
 * scheduler's as Signals. State survives crashes and deploys because it lives here.
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { ActionReport, AwsActionReport, AwsActivities, EnvironmentActivities, EnvironmentEvent, StopTiming } from '../activities/contracts';
import { formatMinutes } from '../duration';
import { EnvEnabled, EnvNamespace, EnvNextShutdown, EnvPhase } from '../search-attributes';
import { describeAwsReport } from './messages';
import {
  defaultShutdownOn,
  describeInstantFixed,
  describeShutdown,
  plannedWarnings,
  shutdownAfterStart,
  type EnvironmentPolicy,
} from './shutdown-policy';

/** What the workloads are doing. `disabled` is shown instead of `running` while the scheduler is off. */
export type WorkloadPhase = 'running' | 'stopping' | 'stopped' | 'starting';
export type Phase = WorkloadPhase | 'disabled';

export interface LastAction {
  action: 'enrol' | 'start' | 'stop' | 'scheduled-stop' | 'prolongate' | 'reset' | 'enable' | 'disable' | 'policy';
  by: string;
  at: string;
  detail?: string;
}

export interface EnvironmentState {
  workloads: WorkloadPhase;
  enabled: boolean;
  /** Today's shutdown instant (ISO), or null when stopped or disabled. */
  shutdownAt: string | null;
  /** Minutes added to today's shutdown by `prolongate` since the last start or reset. */
  prolongedMinutes: number;
  /** Warning offsets (minutes) already sent, or skipped as past, for `shutdownAt`. */
  warningsSent: number[];
  lastAction: LastAction | null;
  /** While stopped: when AWS was last checked for resources that started by themselves. */
  awsCheckedAt?: string | null;
}

export interface EnvironmentInput {
  namespace: string;
  policy: EnvironmentPolicy;
  /** False when the namespace is labelled `scheduler=disabled`. */
  enabled: boolean;
  /** Carried over by continue-as-new; absent on first enrolment. */
  state?: EnvironmentState;
  /** Continue-as-new once history reaches this many events (the server may suggest it earlier). */
  maxHistoryEvents?: number;
  /**
   * How long before a scheduled shutdown its stop is handed to a worker, which holds it
   * until the instant (SHUTDOWN_DISPATCH_AHEAD_SECONDS). From then on the environment is
   * `stopping` and can no longer be prolongated. Absent or 0: dispatched at the instant.
   * The reconciler brings a running environment's up to date with `setPolicy`.
   */
  dispatchAheadMs?: number;
}

export interface EnvironmentStatus extends EnvironmentState {
  namespace: string;
  phase: Phase;
  policy: EnvironmentPolicy;
  /** "today 19:00 CET, in 2h 10m" or null. */
  shutdownDescription: string | null;
}

export interface ActionResult {
  namespace: string;
  phase: Phase;
  shutdownAt: string | null;
  /** One line for a human, e.g. the Slack reply. */
  message: string;
  report?: ActionReport;
  aws?: AwsActionReport;
}

export interface Actor {
  /** Who asked: a Slack user id, `api:<token name>`, `scheduler`, ... */
  by: string;
}

export const statusQuery = defineQuery<EnvironmentStatus>('status');

/** Memo key under which each environment keeps its status (everything but the description, which depends on when it is read). */
export const STATUS_MEMO = 'status';
export type StatusMemo = Omit<EnvironmentStatus, 'shutdownDescription'>;
/** Memo key of the environment's dispatch-ahead setting (ms), so the reconciler sees which ones need the service's. */
export const DISPATCH_AHEAD_MEMO = 'dispatchAheadMs';
export const startUpdate = defineUpdate<ActionResult, [Actor]>('start');
export const stopUpdate = defineUpdate<ActionResult, [Actor]>('stop');
export const prolongateUpdate = defineUpdate<ActionResult, [Actor & { minutes: number }]>('prolongate');
export const resetSignal = defineSignal('reset');
export const setEnabledSignal = defineSignal<[{ enabled: boolean; by: string }]>('setEnabled');
/**
 * Why an environment leaves management. `namespace-deleted` (also what a signal without
 * arguments means, as earlier versions sent it): its workloads are gone with it, the
 * workflow just ends. `unmanaged` (the namespace is still there but no longer asks to be
 * scheduled: label removed, excluded by configuration): a stopped environment is started
 * again first, so nothing is left at 0 with saved counts no command can restore.
 */
export type RetireReason = 'namespace-deleted' | 'unmanaged';
export const retireSignal = defineSignal<[{ reason: RetireReason; by: string }?]>('retire');
/**
 * A namespace's policy annotations, or the service's settings, changed: today's shutdown
 * follows if it is still ahead. `dispatchAheadMs` (absent: unchanged) replaces the one the
 * environment was enrolled with.
 */
export const setPolicySignal = defineSignal<[{ policy: EnvironmentPolicy; by: string; dispatchAheadMs?: number }]>('setPolicy');

export const environmentWorkflowId = (namespace: string): string => `env/${namespace}`;

const DEFAULT_MAX_HISTORY_EVENTS = 10_000;

const { stopNamespace, startNamespace } = proxyActivities<EnvironmentActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  // Retried until done: a stop that gives up would leave an environment burning money overnight.
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

// No heartbeat timeout: each AWS call is short, and the SDK retries throttling itself.
const { stopAwsResources, startAwsResources } = proxyActivities<AwsActivities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes' },
});

/** RDS starts a DB stopped for 7 days by itself; a stopped environment looks this often. */
const AWS_RECHECK_MS = 6 * 60 * 60 * 1000;

const { notify } = proxyActivities<EnvironmentActivities>({
  startToCloseTimeout: '30 seconds',
  // A warning an hour late is worse than none; Slack outages longer than that drop it.
  scheduleToCloseTimeout: '1 hour',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes' },
});

export async function environmentWorkflow(input: EnvironmentInput): Promise<EnvironmentStatus> {
  const { namespace } = input;
  let policy = input.policy;
  let dispatchAheadMs = input.dispatchAheadMs ?? 0;
  const now = (): Date => new Date();
  const state: EnvironmentState = input.state ?? enrol();
  let retired = false;
  let busy = false; // one stop/start at a time; timers wait for it too
  let pendingNotifications = 0;
  let version = 0; // bumped on every change so the main loop re-plans

  function enrol(): EnvironmentState {
    const fresh: EnvironmentState = {
      workloads: 'running',
      enabled: input.enabled,
      shutdownAt: null,
      prolongedMinutes: 0,
      warningsSent: [],
      lastAction: { action: 'enrol', by: 'scheduler', at: now().toISOString() },
    };
    if (input.enabled) armShutdown(fresh, shutdownAfterStart(now(), policy).shutdownAt);
    return fresh;
  }

  /** Sets a new shutdown; warnings already in the past are skipped, but the last of them fires now so no shutdown comes unannounced. */
  function armShutdown(target: EnvironmentState, shutdownAt: Date): void {
    target.shutdownAt = shutdownAt.toISOString();
    const warnings = plannedWarnings(shutdownAt, policy);
    const past = warnings.filter((w) => w.at.getTime() <= now().getTime());
    const allPast = past.length === warnings.length && shutdownAt.getTime() > now().getTime();
    target.warningsSent = (allPast ? past.slice(0, -1) : past).map((w) => w.offsetMinutes);
  }

  function phase(): Phase {
    return state.workloads === 'running' && !state.enabled ? 'disabled' : state.workloads;
  }

  function shutdownDescription(): string | null {
    return state.shutdownAt ? describeShutdown(new Date(state.shutdownAt), now(), policy.timeZone) : null;
  }

  function changed(): void {
    version++;
    upsertSearchAttributes([
      { key: EnvNamespace, value: namespace },
      { key: EnvPhase, value: phase() },
      { key: EnvEnabled, value: state.enabled },
      { key: EnvNextShutdown, value: state.shutdownAt ? new Date(state.shutdownAt) : null },
    ]);
    // The status as data, so `describe()` answers it from the server alone: a status never
    // waits for a worker. Guarded by a patch so histories recorded before it still replay.
    if (patched('status-memo')) upsertMemo({ [STATUS_MEMO]: { namespace, phase: phase(), policy, ...state } satisfies StatusMemo, [DISPATCH_AHEAD_MEMO]: dispatchAheadMs });
    const last = state.lastAction;
    setCurrentDetails(
      [
        `**${namespace}**: ${phase()}${state.enabled ? '' : ' (scheduler disabled)'}`,
        `Next shutdown: ${state.shutdownAt ? describeInstantFixed(new Date(state.shutdownAt), policy.timeZone) : 'none'}${state.prolongedMinutes ? ` (prolonged ${formatMinutes(state.prolongedMinutes)})` : ''}`,
        last ? `Last: ${last.action} by ${last.by} at ${last.at}${last.detail ? ` (${last.detail})` : ''}` : '',
      ].join('\n'),
    );
  }

  function record(action: LastAction['action'], by: string, detail?: string): void {
    state.lastAction = { action, by, at: now().toISOString(), ...(detail ? { detail } : {}) };
  }

  function result(message: string, report?: ActionReport, aws?: AwsActionReport): ActionResult {
    return { namespace, phase: phase(), shutdownAt: state.shutdownAt, message, ...(report ? { report } : {}), ...(aws ? { aws } : {}) };
  }

  /** Fire-and-forget so a Slack outage never delays a shutdown; tracked so continue-as-new waits for it. */
  function announce(event: EnvironmentEvent): void {
    pendingNotifications++;
    notify(event)
      .catch((err: unknown) => log.warn('notification not delivered', { namespace, kind: event.kind, error: String(err) }))
      .finally(() => pendingNotifications--);
  }

  async function exclusively<T>(work: () => Promise<T>): Promise<T> {
    await condition(() => !busy);
    busy = true;
    try {
      return await work();
    } finally {
      busy = false;
      changed();
    }
  }

  async function stop(by: string, action: 'stop' | 'scheduled-stop', timing?: StopTiming): Promise<ActionResult> {
    const before = state.workloads;
    state.workloads = 'stopping';
    changed();
    let report: ActionReport, aws: AwsActionReport;
    try {
      [report, aws] = await Promise.all([stopNamespace(namespace, timing), stopAwsResources(namespace, timing)]);
    } catch (err) {
      state.workloads = before;
      throw err;
    }
    state.workloads = 'stopped';
    state.shutdownAt = null;
    state.prolongedMinutes = 0;
    state.warningsSent = [];
    state.awsCheckedAt = now().toISOString();
    record(action, by, `${report.changed.length} workloads scaled to 0`);
    announce({ kind: 'stopped', namespace, by, report });
    return result(`${namespace} stopped by ${by}: ${report.changed.length} workloads scaled to 0${describeAwsReport(aws)}.`, report, aws);
  }

  /** RDS restarts a DB instance after 7 days stopped; stop it again while the environment sleeps. */
  async function recheckAws(): Promise<void> {
    let aws: AwsActionReport;
    try {
      aws = await stopAwsResources(namespace);
    } finally {
      state.awsCheckedAt = now().toISOString(); // even a failed check waits its turn, never a hot loop
    }
    const restarted = aws.resources.filter((r) => r.outcome === 'changed');
    if (restarted.length > 0) {
      const names = restarted.map((r) => r.name ?? r.id).join(', ');
      log.warn('AWS resources had started by themselves; stopped again', { namespace, resources: names });
      record('scheduled-stop', 'scheduler', `stopped again after AWS started it: ${names}`);
    }
  }

  async function start(by: string): Promise<ActionResult> {
    const before = state.workloads;
    state.workloads = 'starting';
    changed();
    let report: ActionReport, aws: AwsActionReport;
    try {
      // AWS answers at once with instances `pending`: the reply reports progress, it does not wait for them.
      [report, aws] = await Promise.all([startNamespace(namespace), startAwsResources(namespace)]);
    } catch (err) {
      state.workloads = before;
      throw err;
    }
    state.workloads = 'running';
    state.awsCheckedAt = null;
    let plan = 'the scheduler is disabled, so it stays up until stopped';
    if (state.enabled) {
      const { shutdownAt, afterHours } = shutdownAfterStart(now(), policy);
      // A start on an environment that is already up must not cut short someone's prolongation.
      const keepsLaterShutdown = before === 'running' && state.shutdownAt !== null && new Date(state.shutdownAt) > shutdownAt;
      if (!keepsLaterShutdown) {
        state.prolongedMinutes = 0;
        armShutdown(state, shutdownAt);
      }
      plan = `shuts down ${shutdownDescription()}${afterHours && !keepsLaterShutdown ? ` (after-hours window of ${formatMinutes(policy.afterHoursWindowMinutes)})` : ''}`;
    } else {
      state.prolongedMinutes = 0;
      state.shutdownAt = null;
    }
    record('start', by, `${report.changed.length} workloads restored`);
    announce({ kind: 'started', namespace, by, shutdownAt: state.shutdownAt, report });
    return result(`${namespace} started by ${by}: ${report.changed.length} workloads restored${describeAwsReport(aws)}; ${plan}.`, report, aws);
  }

  setHandler(statusQuery, () => ({
    namespace,
    phase: phase(),
    policy,
    ...state,
    shutdownDescription: shutdownDescription(),
  }));

  setHandler(startUpdate, ({ by }) => exclusively(() => start(by)), {
    validator: (_actor: Actor) => rejectIfRetired(),
  });

  setHandler(stopUpdate, ({ by }) => exclusively(() => stop(by, 'stop')), {
    validator: (_actor: Actor) => rejectIfRetired(),
  });

  setHandler(
    prolongateUpdate,
    async ({ by, minutes }) => {
      const shutdownAt = new Date(new Date(state.shutdownAt!).getTime() + minutes * 60_000);
      state.prolongedMinutes += minutes;
      armShutdown(state, shutdownAt);
      record('prolongate', by, `+${formatMinutes(minutes)}`);
      changed();
      return result(`${namespace} prolongated by ${formatMinutes(minutes)} by ${by}; shuts down ${shutdownDescription()}.`);
    },
    {
      validator: ({ minutes }) => {
        rejectIfRetired();
        if (!Number.isInteger(minutes) || minutes <= 0) {
          throw new Error(`a prolongation must be a positive number of whole minutes, not ${minutes}`);
        }
        if (!state.enabled) throw new Error(`${namespace} has the scheduler disabled: there is no shutdown to move`);
        if (state.workloads !== 'running' || !state.shutdownAt) {
          throw new Error(`${namespace} is ${phase()}: only a running environment can be prolongated; start it first`);
        }
        const room = policy.maxProlongationMinutes - state.prolongedMinutes;
        if (minutes > room) {
          throw new Error(
            `${formatMinutes(minutes)} is over the limit: today's shutdown can be pushed at most ` +
              `${formatMinutes(policy.maxProlongationMinutes)} in all, ${formatMinutes(Math.max(0, room))} of which is left`,
          );
        }
      },
    },
  );

  setHandler(resetSignal, () => {
    state.prolongedMinutes = 0;
    if (state.enabled && state.workloads === 'running') {
      const today = defaultShutdownOn(now(), policy);
      // On a day off or after hours, keep the after-hours window already running.
      if (today && today.getTime() > now().getTime()) armShutdown(state, today);
    }
    record('reset', 'scheduler');
    changed();
  });

  setHandler(setPolicySignal, ({ policy: next, by, dispatchAheadMs: nextAhead }) => {
    const aheadChanged = nextAhead !== undefined && nextAhead !== dispatchAheadMs;
    if (aheadChanged) dispatchAheadMs = nextAhead;
    if (JSON.stringify(next) === JSON.stringify(policy)) {
      if (aheadChanged) changed(); // a setting of the service's, not the environment's: no "last action" for it
      return;
    }
    policy = next;
    if (state.enabled && state.workloads === 'running') {
      const today = defaultShutdownOn(now(), policy);
      // A new time still ahead today takes effect now, prolongation kept; otherwise from the next working day.
      if (today && today.getTime() > now().getTime()) armShutdown(state, new Date(today.getTime() + state.prolongedMinutes * 60_000));
    }
    record('policy', by, `shuts down at ${policy.shutdownTime} ${policy.timeZone} on ${policy.workingDays.join(', ')}`);
    changed();
  });

  setHandler(setEnabledSignal, ({ enabled, by }) => {
    if (enabled === state.enabled) return;
    state.enabled = enabled;
    if (!enabled) {
      state.shutdownAt = null;
      state.warningsSent = [];
    } else if (state.workloads === 'running') {
      armShutdown(state, shutdownAfterStart(now(), policy).shutdownAt);
    }
    record(enabled ? 'enable' : 'disable', by);
    changed();
  });

  setHandler(retireSignal, () => {
    retired = true;
    version++;
  });

  function rejectIfRetired(): void {
    if (retired) throw new Error(`${namespace} has been deleted; its environment is retired`);
  }

  type TimedEvent = { kind: 'warning'; offsetMinutes: number; at: Date } | { kind: 'shutdown'; at: Date } | { kind: 'aws-recheck'; at: Date };

  /** The next timed event: an unsent warning, else the shutdown; while stopped, the next AWS re-check. */
  function nextEvent(): TimedEvent | null {
    if (state.workloads === 'stopped' && state.awsCheckedAt) {
      return { kind: 'aws-recheck', at: new Date(new Date(state.awsCheckedAt).getTime() + AWS_RECHECK_MS) };
    }
    if (!state.enabled || state.workloads !== 'running' || !state.shutdownAt) return null;
    const shutdownAt = new Date(state.shutdownAt);
    const warning = plannedWarnings(shutdownAt, policy).find((w) => !state.warningsSent.includes(w.offsetMinutes));
    return warning ? { kind: 'warning', ...warning } : { kind: 'shutdown', at: shutdownAt };
  }

  /** When to act on an event: a shutdown is dispatched ahead of its instant, and held by the worker until then. */
  function dueAt(event: TimedEvent): number {
    return event.at.getTime() - (event.kind === 'shutdown' ? dispatchAheadMs : 0);
  }

  async function fireDueEvent(): Promise<void> {
    const event = nextEvent();
    if (!event || dueAt(event) > now().getTime()) return; // re-planned while we waited for the lock
    if (event.kind === 'shutdown') {
      await stop('scheduler', 'scheduled-stop', dispatchAheadMs ? { notBefore: event.at.toISOString() } : undefined);
      return;
    }
    if (event.kind === 'aws-recheck') {
      await recheckAws();
      return;
    }
    state.warningsSent.push(event.offsetMinutes);
    const minutesLeft = Math.max(0, Math.round((new Date(state.shutdownAt!).getTime() - now().getTime()) / 60_000));
    announce({ kind: 'warning', namespace, shutdownAt: state.shutdownAt!, minutesLeft, offsetMinutes: event.offsetMinutes });
  }

  function historyIsLong(): boolean {
    const info = workflowInfo();
    return info.continueAsNewSuggested || info.historyLength >= (input.maxHistoryEvents ?? DEFAULT_MAX_HISTORY_EVENTS);
  }

  changed();
  while (!retired) {
    if (historyIsLong()) {
      await condition(() => allHandlersFinished() && !busy && pendingNotifications === 0);
      if (!retired) {
        return continueAsNew<typeof environmentWorkflow>({ ...input, policy, state, enabled: state.enabled, dispatchAheadMs });
      }
      break;
    }
    const event = nextEvent();
    const seen = version;
    const woken = () => version !== seen || retired;
    if (!event) {
      await condition(woken);
      continue;
    }
    const waitMs = dueAt(event) - now().getTime();
    if (waitMs > 0 && (await condition(woken, waitMs))) continue;
    try {
      await exclusively(fireDueEvent);
    } catch (err) {
      // Only non-retryable failures get here (the namespace is gone, ...): stay alive for humans.
      log.error('scheduled action failed', { namespace, error: String(err) });
      record('scheduled-stop', 'scheduler', `failed: ${err instanceof Error ? err.message : String(err)}`);
      state.shutdownAt = null;
      changed();
    }
  }

  await condition(() => allHandlersFinished() && !busy && pendingNotifications === 0);
  log.info('environment retired', { namespace });
  return { namespace, phase: phase(), policy, ...state, shutdownDescription: null };
}

