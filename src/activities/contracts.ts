/**
 * What the environment workflow asks of the outside world. The workflow imports these
 * types only; the worker registers the real implementations (kubernetes.ts, slack.ts, ...)
 * and workflow tests register recording ones that satisfy the same interface.
 */

/** One workload touched by a stop or start. */
export interface WorkloadChange {
  kind: string;
  name: string;
  from: number;
  to: number;
}

/** What a stop or start did, in terms a Slack reply can show. */
export interface ActionReport {
  namespace: string;
  changed: WorkloadChange[];
  /** Workloads left as they were (already at the target, or excluded). */
  unchanged: number;
  durationMs: number;
}

export type EnvironmentEvent =
  | { kind: 'warning'; namespace: string; shutdownAt: string; minutesLeft: number; offsetMinutes: number }
  | { kind: 'stopped'; namespace: string; by: string; report: ActionReport }
  | { kind: 'started'; namespace: string; by: string; shutdownAt: string | null; report: ActionReport };

export interface EnvironmentActivities {
  stopNamespace(namespace: string): Promise<ActionReport>;
  startNamespace(namespace: string): Promise<ActionReport>;
  notify(event: EnvironmentEvent): Promise<void>;
}

export interface SchedulerActivities {
  /** Namespaces of every running environment workflow. */
  listRunningEnvironments(): Promise<string[]>;
}
