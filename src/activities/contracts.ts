/**
 * What the environment workflow asks of the outside world. The workflow imports these
 * types only; the worker registers the real implementations (kubernetes/, slack.ts, ...)
 * and workflow tests register recording ones that satisfy the same interface.
 */

/** One workload touched by a stop or start. */
export interface WorkloadChange {
  kind: string;
  name: string;
  from: number;
  to: number;
  /** On a stop: what one pod of its template requests (CPU in millicores, memory in bytes), so the sleep's savings can be counted. */
  requests?: { cpuMillicores: number; memoryBytes: number };
}

/** A workload a stop found already at 0 with its saved count: what it would run if woken. */
export interface AsleepWorkload {
  kind: string;
  name: string;
  replicas: number;
  requests: { cpuMillicores: number; memoryBytes: number };
}

/** What a stop or start did, in terms a Slack reply can show. */
export interface ActionReport {
  namespace: string;
  changed: WorkloadChange[];
  /** Workloads left as they were (already at the target, or excluded). */
  unchanged: number;
  /**
   * On a stop: the workloads among `unchanged` already asleep with a saved count, so the sleep
   * counts everything asleep, not only what this attempt scaled. Absent from results recorded
   * before it existed.
   */
  asleep?: AsleepWorkload[];
  durationMs: number;
  /** Set when DRY_RUN was on: `changed` lists what would have changed; nothing was written. */
  dryRun?: boolean;
  /** Things a person should know about, e.g. a saved count that could not be read. */
  notes?: string[];
  /** After a start that woke workloads of a kind that reports readiness: whether they became Ready, group by group in wake order. */
  readiness?: StartReadiness;
  /** With `devenv-scheduler/wait-for-databases`: the wait for the tagged databases before the workloads were woken. */
  databases?: DatabaseWait;
}

/** A database a start waits for: an RDS DB instance or Aurora cluster it started, or found starting or up. */
export interface DatabaseRef {
  kind: 'rds-instance' | 'rds-cluster';
  id: string;
  region: string;
  name?: string;
}

/**
 * A start's wait for its databases to be `available`, before its workloads are woken. Given
 * up at `since` plus START_READY_TIMEOUT_SECONDS; the workloads are woken then all the same.
 */
export interface DatabaseWait {
  /** When the wait began (the workflow's clock, ISO). */
  since: string;
  databases: DatabaseRef[];
  /** Until all were available, or the wait gave up; absent while waiting. */
  durationMs?: number;
  /** Those not available when it gave up, with the state AWS last gave. */
  notAvailable?: (DatabaseRef & { state: string })[];
  /** Set when a stop ended the wait ("the stop by U2"): the workloads were not woken. */
  interrupted?: string;
  /** Set when AWS could not be read: why. The workloads were woken all the same. */
  failed?: string;
}

/** A workload by kind and name. */
export interface WorkloadRef {
  kind: string;
  name: string;
}

/** One wake-order group of a start: what of it was woken, and how long until it was Ready. */
export interface ReadinessGroup {
  /** Its wake-order group (devenv-scheduler/wake-order, or its kind's default). */
  order: number;
  /** The workloads of it the start woke, or found woken and not Ready (by an earlier attempt of it), and waits for. */
  workloads: WorkloadRef[];
  /** When its wake began (the worker's clock, ISO). */
  wokenAt: string;
  /** From its wake until all of it was Ready, or until the wait gave up; absent while it is still to be waited for. */
  durationMs?: number;
  /** Those still not Ready when the wait gave up, with what their controller says. */
  notReady?: (WorkloadRef & { message?: string })[];
}

/**
 * What a start's wait for Ready found. startNamespace waits for a group only when a later
 * one has something to wake; the groups it leaves without durationMs are waited for by
 * awaitReady, outside the environment's lock, which fills them in.
 */
export interface StartReadiness {
  /** When the start's first write was made (the worker's clock, ISO). */
  since: string;
  /** `since` plus START_READY_TIMEOUT_SECONDS: the wait gives up then. */
  deadline: string;
  groups: ReadinessGroup[];
  /** From the first write until all were Ready, or the wait gave up; absent while some are still waited for. */
  durationMs?: number;
  /** Set when the wait ended before that: what ended it ("the stop by U2"). */
  interrupted?: string;
  /** Set when the wait could not tell: why (the apiserver refused the reads). */
  failed?: string;
  /**
   * A start woken in steps (StartSteps) that stopped before this wake-order group: the groups
   * without durationMs are to be waited for (awaitReady), then the next step wakes from it on.
   */
  next?: number;
}

/**
 * A start woken in steps: each step wakes groups until one must be Ready before the next
 * wakes, and returns; the workflow waits for it (awaitReady, which a stop cancels) and asks
 * for the next step with `after`, the report so far with the readiness it waited for.
 */
export interface StartSteps {
  after?: ActionReport;
}

/**
 * What one half of a stop or start (the workloads, or the tagged AWS resources) could not
 * do. The other half went ahead on its own; this says which half is not where it was asked to be.
 */
export interface HalfProblem {
  half: 'kubernetes' | 'aws';
  action: 'stop' | 'start';
  /** One sentence for a person, e.g. "AWS could not stop: AccessDenied: ...". */
  detail: string;
  /** For one AWS resource: what the action did with it (failed, busy, unsupported). */
  outcome?: AwsOutcome;
}

export type EnvironmentEvent =
  /** `owners`: the policy's, mentioned in the warning; absent when it has none. */
  | { kind: 'warning'; namespace: string; shutdownAt: string; minutesLeft: number; offsetMinutes: number; owners?: string[] }
  | { kind: 'stopped'; namespace: string; by: string; report: ActionReport; problems?: string[] }
  | {
      kind: 'started';
      namespace: string;
      by: string;
      shutdownAt: string | null;
      report: ActionReport;
      problems?: string[];
      /** Set when the start was the morning wake-up: its instant, and its wall-clock time in the environment's zone ("08:00 CET"). */
      wokeUp?: { at: string; clock: string };
    }
  /** A follow-up of AWS resources in transition ended: what it did (`detail`), and what it could not. */
  | { kind: 'aws-followed'; namespace: string; action: 'stop' | 'start'; detail: string; problems?: string[] }
  /** Workloads woke while the environment was stopped (each named once per stop): put back to sleep, or only reported. */
  | { kind: 'drift'; namespace: string; mode: 'restop' | 'report'; workloads: DriftedWorkload[] };

/** What a stopped environment does about workloads woken since its stop (DRIFT): put them back to sleep, only report them, or not look. */
export type DriftMode = 'restop' | 'report' | 'off';

/** One workload found awake in a stopped environment. */
export interface DriftedWorkload {
  kind: string;
  name: string;
  /** The count it was woken to (for a CronJob, 1: scheduling again). */
  replicas: number;
  /** No count saved by a stop: it was created (or had its annotation removed) since. */
  created: boolean;
  /** The field manager that last set the field the stop sets (spec.replicas), from managedFields, where known. */
  by?: string;
  /** Put back to sleep by this look, its count saved for the next start. */
  restopped: boolean;
  /** Put back to sleep: what one pod of its template requests, as a stop's WorkloadChange has it. */
  requests?: { cpuMillicores: number; memoryBytes: number };
}

/** One look at a stopped namespace for workloads awake since the stop. */
export interface DriftReport {
  namespace: string;
  /** The worker's DRIFT and DRIFT_CHECK_INTERVAL: the environment's next look follows them. */
  mode: DriftMode;
  intervalMs: number;
  awake: DriftedWorkload[];
}

/** A scheduled stop handed over ahead of its instant: nothing is touched before `notBefore` (see timing.ts). */
export interface StopTiming {
  /** The shutdown instant, ISO 8601. */
  notBefore: string;
}

/** Telling people what happened to their environment (slack.ts, or the log without Slack). */
export interface NotificationActivities {
  notify(event: EnvironmentEvent): Promise<void>;
}

/** What the environment workflow asks of Kubernetes and of the people it tells; AWS is asked through AwsActivities. */
export type EnvironmentActivities = Pick<KubernetesActivities, 'stopNamespace' | 'startNamespace' | 'awaitReady' | 'checkDrift'> &
  NotificationActivities;

/**
 * How a namespace's workloads look right now (what kubernetes/namespace-status.ts reads
 * for the API and the CLI; not an activity):
 * - stopped: every Deployment, StatefulSet and Argo Rollout is at 0 replicas;
 * - running: every one scaled up is ready, and none waits at 0 with a saved count;
 * - starting: scaled up, some pods not ready yet;
 * - degraded: some scaled up while others still wait at 0 with a saved count (a stop or
 *   start that did not finish), or a Deployment that failed to progress.
 * Excluded workloads do not count towards the phase.
 */
export type NamespacePhase = 'running' | 'starting' | 'stopped' | 'degraded';

export interface WorkloadStatus {
  kind: 'Deployment' | 'StatefulSet' | 'Rollout';
  name: string;
  desired: number;
  ready: number;
  /** The count a stop saved and the next start restores. */
  savedReplicas?: number;
  excluded: boolean;
  /** Scaled up but not Ready as a start waits for it (every replica updated and available): what its controller lacks. */
  notReady?: string;
}

export interface CronJobStatus {
  name: string;
  suspended: boolean;
  /** Suspended by a stop, so the next start resumes it. */
  suspendedByScheduler: boolean;
  excluded: boolean;
}

export interface NamespaceStatus {
  namespace: string;
  phase: NamespacePhase;
  workloads: WorkloadStatus[];
  cronJobs: CronJobStatus[];
}

/** A standalone management pod in the support namespace, as its workflow created it. */
export interface SupportPod {
  name: string;
  size: string;
  /** Pod phase as Kubernetes reported it at creation (Pending); `support list` reads the pod itself. */
  phase: string;
  createdAt: string | null;
  createdBy: string | null;
  /** The pod's uid: its workflow deletes this very pod and no other of the same name. Absent in records of versions before it (and in DRY_RUN). */
  uid?: string;
}

/** A pod of the support namespace as the cluster has it now: what `support list` shows (kubernetes/support-pods.ts reads it for the API and the CLI; not an activity). */
export interface SupportPodInCluster {
  name: string;
  uid: string;
  /** Labelled `devenv-scheduler/support-pod=true`; false for a pod someone put into the namespace by hand. */
  labelled: boolean;
  /** From its annotations; null when it has none (made by hand, or the annotation was removed). */
  size: string | null;
  createdBy: string | null;
  createdAt: string | null;
  /** Pending, Running, Succeeded, Failed or Unknown, as the kubelet reports it. */
  phase: string;
  /** Its Ready condition is True. */
  ready: boolean;
  /** Why it is in its phase when Kubernetes says (`DeadlineExceeded`, `Evicted`...); null otherwise. */
  reason: string | null;
  /** When its deletion was asked for (deletionTimestamp): it is terminating. Null while it is not. */
  deletingSince: string | null;
  /** The workflow run that created it (annotation `devenv-scheduler/workflow-run-id`); null for pods of earlier versions or made by hand. */
  workflowRunId: string | null;
  /** When its workflow deletes it (annotation `devenv-scheduler/expires-at`); null when not recorded. */
  expiresAt: string | null;
  /** `activeDeadlineSeconds`, the kubelet's backstop; null when it has none (pods of earlier versions). */
  activeDeadlineSeconds: number | null;
  /** When the kubelet kills it: activeDeadlineSeconds after it started on its node (after its creation while it has not). */
  deadlineAt: string | null;
}

/** What src/activities/kubernetes/ registers, and only what workflows call; the workflow imports these types only. */
export interface KubernetesActivities {
  stopNamespace(namespace: string, timing?: StopTiming): Promise<ActionReport>;
  /**
   * Wakes the workloads group by group in wake order, waiting for a group to be Ready
   * (within START_READY_TIMEOUT_SECONDS) only when a later one has something to wake; with
   * `steps`, it returns there instead (StartSteps).
   */
  startNamespace(namespace: string, steps?: StartSteps): Promise<ActionReport>;
  /**
   * Waits, until its deadline, for the groups of a start's readiness not yet waited for;
   * returns it with each filled in. Only reads; cancelled when a stop comes meanwhile.
   */
  awaitReady(namespace: string, readiness: StartReadiness): Promise<StartReadiness>;
  /**
   * Lists every kind once (from the apiserver's watch cache) and finds what is awake since
   * the stop; with `restop`, and DRIFT=restop on this worker, puts it back to sleep as a stop
   * would, saving the count it was woken to.
   */
  checkDrift(namespace: string, options: { restop: boolean }): Promise<DriftReport>;
  /**
   * Creates the pod, or returns it when an earlier attempt of the same workflow run created
   * it (a retry). Waits while a pod of that name is terminating; refuses (SupportPodNameTaken)
   * when one that is not its own holds the name. `expiresAt`: when its workflow deletes it,
   * recorded on the pod and the base of its activeDeadlineSeconds.
   */
  createSupportPod(request: { name: string; size: string; requestedBy: string; expiresAt?: string }): Promise<SupportPod>;
  /** The name of every namespace of the cluster, terminating ones included. */
  listNamespaceNames(): Promise<string[]>;
  /** Deletes the pod (only the one with this uid, when given); false when it was already gone or is another pod now. */
  deleteSupportPod(name: string, uid?: string): Promise<boolean>;
}

export interface SchedulerActivities {
  /** Namespaces of every running environment workflow. */
  listRunningEnvironments(): Promise<string[]>;
}

/** What one weekly savings summary posted: the environments whose channel has it, and whether the default channel has the total. */
export interface SavingsSummaryReport {
  posted: string[];
  total: boolean;
  /** Environments that saved nothing in the week: no message. */
  quiet: number;
}

export interface SavingsSummaryActivities {
  /**
   * Posts the week up to `at` (ISO): to each environment that saved something, in its channel,
   * and the total to the default channel. A retry posts only what an earlier attempt did not.
   */
  postSavingsSummary(at: string): Promise<SavingsSummaryReport>;
}

/** What one reconciliation changed (or, in a dry run, would change) so that every namespace has the environment its label asks for. */
export interface ReconcileReport {
  /** Nothing was changed: `decisions` says what would have been. */
  dryRun: boolean;
  namespaces: number;
  environments: number;
  /** Environment workflows started for labelled namespaces that had none. */
  enrolled: string[];
  /** Running environments whose `scheduler` label had changed. */
  enabled: string[];
  disabled: string[];
  /** Running environments given the policy their annotations and the service's settings ask for now (and its dispatch-ahead). */
  replanned: string[];
  /** Environments ended: their namespace is gone or terminating, or no longer to be managed (`decisions` says which). */
  retired: string[];
  failed: { namespace: string; error: string }[];
  /** Every namespace and environment looked at, what was (or would be) done about it, and why; sorted by namespace. */
  decisions: {
    namespace: string;
    action: 'enrol' | 'enable' | 'disable' | 'replan' | 'retire' | 'unchanged' | 'leave-alone';
    reason: string;
    /** For a retire: its namespace is gone or terminating, or is still there but no longer to be managed (restored first if stopped). */
    retire?: 'namespace-deleted' | 'unmanaged';
  }[];
  /** In a real run, decisions to change nothing beyond the first few hundred are left out of `decisions` (the result's size is capped) and counted here. */
  decisionsOmitted: number;
}

export interface ReconcileOptions {
  /** Only plan and report; change nothing (also whenever the service runs with DRY_RUN=true). */
  dryRun?: boolean;
}

export interface EnrolmentActivities {
  reconcileEnvironments(options?: ReconcileOptions): Promise<ReconcileReport>;
}

/** AWS resources that follow an environment when tagged `namespace=<ns>` and `scheduler=enabled`. */
export type AwsResourceKind = 'ec2-instance' | 'rds-instance' | 'rds-cluster';

/** One EC2 instance, RDS DB instance or Aurora DB cluster as AWS (or the inventory) last described it. */
export interface AwsResource {
  kind: AwsResourceKind;
  /** Instance id (`i-...`) or DB instance/cluster identifier. */
  id: string;
  region: string;
  /** The `Name` tag, when there is one. */
  name?: string;
  /** AWS's own word: `running`, `stopped`, `available`, `starting`, ... */
  state: string;
  /** Value of the `scheduler` tag; only `enabled` resources are stopped and started. */
  scheduler: string | null;
  /** Set when AWS cannot stop this resource at all (read replica, Aurora Serverless v1, ...). */
  unsupported?: string;
  /** For a DB instance inside an Aurora cluster: the cluster, which is stopped and started instead. */
  cluster?: string;
  /** When the environment's stop stopped it (its `devenv-scheduler/stopped-at` tag): a start starts it again. */
  stoppedAt?: string;
  /** EC2 instance type or RDS DB instance class (`t3.medium`, `db.t3.medium`); absent for an Aurora cluster, whose members have theirs. */
  instanceType?: string;
}

/**
 * What happened to one resource:
 * - changed: the stop/start call was made (`after` is AWS's answer, often still in transition);
 * - already: at or moving towards the target state, nothing to do;
 * - busy: in a transition away from the target (e.g. still stopping when asked to start): the workflow follows it and acts once it settles;
 * - unsupported: AWS cannot stop it (reported every time, never retried);
 * - excluded: tagged for this namespace but not `scheduler=enabled`, stopped with its cluster, or
 *   (on a start) stopped by someone else before the environment's stop;
 * - gone: in the inventory but no longer in AWS;
 * - failed: AWS refused (e.g. access denied); the detail says why;
 * - dry-run: would have been changed.
 */
export type AwsOutcome = 'changed' | 'already' | 'busy' | 'unsupported' | 'excluded' | 'gone' | 'failed' | 'dry-run';

export interface AwsResourceResult {
  kind: AwsResourceKind;
  id: string;
  region: string;
  name?: string;
  outcome: AwsOutcome;
  /** State before the action. */
  before: string;
  /** State after the action, as AWS reported it. */
  after: string;
  detail?: string;
  /** As AwsResource has it, so a stop's savings count instance-hours by type. */
  instanceType?: string;
  /** For a DB instance inside an Aurora cluster: the cluster it stops and starts with. */
  cluster?: string;
}

/** Where a namespace's resource list came from: the DynamoDB inventory, or a live listing when it was missing or stale. */
export type AwsLookupSource = 'cache' | 'live';

export interface AwsActionReport {
  namespace: string;
  action: 'stop' | 'start';
  source: AwsLookupSource;
  resources: AwsResourceResult[];
  /** Why the inventory was not used, when it was not. */
  notes: string[];
  durationMs: number;
}

export interface AwsStatus {
  namespace: string;
  source: AwsLookupSource;
  /** Every resource tagged for the namespace, `scheduler=enabled` or not, with its current state. */
  resources: AwsResource[];
  notes: string[];
}

export interface InventoryReport {
  regions: string[];
  /** Resources written to the table (those with both a `scheduler` and a `namespace` tag). */
  resources: number;
  namespaces: number;
  /** Entries deleted because their resource no longer exists or lost its tags. */
  removed: number;
  /** Resources carrying a `scheduler` tag but no `namespace` tag (`region/kind/id`): they follow no environment. */
  withoutNamespace: string[];
  /** A newer refresh had already written the table: this one wrote nothing more and counts nothing. */
  superseded?: boolean;
  /** Resources still tagged for a namespace that has no environment (set by the inventory workflow). */
  orphans?: OrphanReport;
  durationMs: number;
}

/** Resources in the inventory tagged for a namespace that has no environment (deleted while stopped, ...). */
export interface OrphanReport {
  resources: (AwsResource & {
    namespace: string;
    stoppedByScheduler: boolean;
    outcome?: AwsOutcome;
    after?: string;
    namespaceExists?: boolean;
  })[];
  /** How many of them the environment's stop had stopped and AWS had started again: stopped once more (only for namespaces confirmed deleted). */
  restopped: number;
}

export interface StartOptions {
  /**
   * Start only what the environment's stop stopped (tagged `devenv-scheduler/stopped-at`).
   * Set by environments whose stops record it; without it every stopped enabled resource is
   * started, as stops of earlier versions recorded nothing.
   */
  onlyStoppedByScheduler?: boolean;
  /**
   * A follow-up look at resources in transition, made every minute: an EC2 start AWS has no
   * capacity for is not tried again within it (the next look is the retry), and what is still
   * `busy` is not counted again (the action that found it counted it).
   */
  followUp?: boolean;
}

export interface AwsActivities {
  /** Lists tagged EC2/RDS resources in every configured region and rewrites the DynamoDB inventory. */
  refreshAwsInventory(): Promise<InventoryReport>;
  /**
   * For the inventory's namespaces not in `environments`: reports every resource still tagged
   * for one. Only for a namespace the cluster confirms absent (not in `existingNamespaces`)
   * does it stop again what its environment's stop had stopped and AWS started since: a
   * namespace that is still there (left management, ...) belongs to people who may have
   * started it on purpose. Without `existingNamespaces` nothing is stopped, only reported.
   */
  restopOrphanedAwsResources(environments: string[], existingNamespaces?: string[]): Promise<OrphanReport>;
  stopAwsResources(namespace: string, timing?: StopTiming, options?: Pick<StartOptions, 'followUp'>): Promise<AwsActionReport>;
  startAwsResources(namespace: string, options?: StartOptions): Promise<AwsActionReport>;
  awsStatus(namespace: string): Promise<AwsStatus>;
  /** Until every one of `wait.databases` is `available` or the wait's deadline passes; heartbeats, and ends at once when cancelled. */
  awaitDatabases(namespace: string, wait: DatabaseWait): Promise<DatabaseWait>;
}

/** Every activity the worker registers, for the workflows to call. */
export type AllActivities = EnvironmentActivities &
  KubernetesActivities &
  SchedulerActivities &
  SavingsSummaryActivities &
  AwsActivities &
  EnrolmentActivities;

/** A namespace as enrolment sees it. */
export interface NamespaceInfo {
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Being deleted: its environment retires rather than starts. */
  terminating: boolean;
}

/** A namespace as the apiserver stores it, with its uid: the admission webhook checks that it is the one a review is about. */
export interface StoredNamespace extends NamespaceInfo {
  uid: string | undefined;
}
