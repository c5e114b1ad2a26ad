/**
 * What clients of an environment workflow import: its input, state and results, the
 * queries, Updates and Signals it answers, its memo keys and its id. No workflow logic
 * here (that is workflow.ts), so the gateway, the API and the enrolment code depend on
 * this file alone.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { ActionReport, AwsActionReport, EnvironmentEvent, HalfProblem } from '../../activities/contracts';
import type { RetireReason } from '../../domain/enrolment';
import type { Sleep } from '../../domain/savings';
import type { EnvironmentPolicy } from '../../domain/shutdown-policy';
import { scopedId } from '../cluster';

/** What the workloads are doing. `disabled` is shown instead of `running` while the scheduler is off. */
export type WorkloadPhase = 'running' | 'stopping' | 'stopped' | 'starting';
export type Phase = WorkloadPhase | 'disabled';

export interface LastAction {
  action: HistoryAction;
  by: string;
  at: string;
  detail?: string;
}

/** What an environment's history records; a `warning` is kept in the history only, never as the last action. */
export type HistoryAction =
  'enrol' | 'start' | 'stop' | 'scheduled-stop' | 'prolongate' | 'reset' | 'enable' | 'disable' | 'policy' | 'retire' | 'warning';

/** One entry of an environment's history (story.ts bounds it): what happened, who did it, when, and in what words. */
export type HistoryEntry = LastAction;

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
  /**
   * What the last stop or start could not do, per half, so `status` says which half is up
   * and which is down: e.g. workloads `stopped` and an AWS problem means the tagged
   * instances still run. Empty or absent when both halves did all they were asked.
   */
  problems?: HalfProblem[];
  /** The environment's local date (its policy's zone) on which `prolongedMinutes` were added: a morning reset keeps a prolongation of the same day. */
  prolongedOn?: string | null;
  /**
   * AWS resources the last stop or start found in a transition the other way (a database
   * still `stopping` when asked to start): followed until they settle, then acted on.
   */
  awsFollowUp?: AwsFollowUp | null;
  /** The stops of this environment record what they stopped in AWS, so a start starts only that. */
  awsStopRecorded?: boolean;
  /** While stopped: the re-check of its workloads for any woken since the stop (DRIFT). */
  drift?: DriftWatch | null;
  /** While stopped, with a wake time in the policy and the scheduler on: when it is started again (ISO). */
  wakeAt?: string | null;
}

export interface DriftWatch {
  /** When the last look was made, or the stop before the first (ISO). */
  checkedAt: string;
  /** DRIFT_CHECK_INTERVAL as the worker's last look reported it; unknown until then, so the first look after a stop learns it at once. */
  intervalMs?: number;
  /** `Kind/name` of each workload the channel was told of since the stop: it is told once, however often it wakes again. */
  reported: string[];
  /** A change was signalled (driftSuspected): the next look comes at once, though never sooner than DRIFT_MIN_GAP_MS after the last. */
  suspectedAt?: string | null;
  /** The worker that last looked has DRIFT=off: no more looks until the next stop, which looks once to learn the setting again. */
  off?: boolean;
}

export interface AwsFollowUp {
  action: 'stop' | 'start';
  /** When the action found them in transition (ISO). */
  since: string;
  /** Looks taken since. */
  looks: number;
  /** The resources still in transition at the last look that reached AWS ("rds-instance orders-db", and the state it was in): what a give-up names even when the last looks could not read AWS. */
  pending?: { what: string; state: string }[];
}

/** A notification not yet delivered, and until when it is still worth delivering. */
export interface PendingNotification {
  event: EnvironmentEvent;
  /** ISO instant after which it is dropped: a warning past its shutdown says nothing. */
  deadline: string;
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
  /** Notifications still undelivered when the previous run continued as new: this run sends them, each until its deadline. */
  undelivered?: PendingNotification[];
  /** Set when the previous run continued as new while leaving management (its restore kept failing): who retired it. */
  leavingBy?: string;
  /** The environment's history so far, oldest first; absent on first enrolment and from runs of versions without it. */
  history?: HistoryEntry[];
  /** The environment's ledger of sleeps (savings.ts), oldest first; absent on first enrolment and from runs of versions without it. */
  savings?: Sleep[];
}

export interface EnvironmentStatus extends EnvironmentState {
  namespace: string;
  phase: Phase;
  policy: EnvironmentPolicy;
  /** "today 19:00 CET, in 2h 10m" or null. */
  shutdownDescription: string | null;
  /** The next morning wake-up, "tomorrow 08:00 CET, in 13h 0m", or null when there is none. */
  wakeDescription: string | null;
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

/** Memo key under which each environment keeps its status (everything but the descriptions, which depend on when it is read). */
export const STATUS_MEMO = 'status';
export type StatusMemo = Omit<EnvironmentStatus, 'shutdownDescription' | 'wakeDescription'>;
/** Memo key of the environment's dispatch-ahead setting (ms), so the reconciler sees which ones need the service's. */
export const DISPATCH_AHEAD_MEMO = 'dispatchAheadMs';
/** Memo key of the environment's history (HistoryEntry[], oldest first), so `history` and `why` read it from the server alone. */
export const HISTORY_MEMO = 'history';
/** Memo key of the environment's ledger of sleeps (Sleep[], oldest first), so `savings` adds them up from the server alone. */
export const SAVINGS_MEMO = 'savings';
export const startUpdate = defineUpdate<ActionResult, [Actor]>('start');
export const stopUpdate = defineUpdate<ActionResult, [Actor]>('stop');
export const prolongateUpdate = defineUpdate<ActionResult, [Actor & { minutes: number }]>('prolongate');
export const resetSignal = defineSignal('reset');
export const setEnabledSignal = defineSignal<[{ enabled: boolean; by: string }]>('setEnabled');
/** Ends the environment's workflow (see RetireReason); with no arguments, as earlier versions sent it, `namespace-deleted`. */
export const retireSignal = defineSignal<[{ reason: RetireReason; by: string }?]>('retire');
/**
 * A namespace's policy annotations, or the service's settings, changed: today's shutdown
 * follows if it is still ahead. `dispatchAheadMs` (absent: unchanged) replaces the one the
 * environment was enrolled with.
 */
export const setPolicySignal = defineSignal<[{ policy: EnvironmentPolicy; by: string; dispatchAheadMs?: number }]>('setPolicy');

/** Something may have woken a workload of this stopped environment (a watch, a webhook, a person): it looks at once. */
export const driftSuspectedSignal = defineSignal<[{ by: string }?]>('driftSuspected');

/** `env/<namespace>`, or `<cluster>/env/<namespace>` with CLUSTER_NAME (cluster.ts). */
export const environmentWorkflowId = (namespace: string, cluster?: string): string => scopedId(`env/${namespace}`, cluster);
