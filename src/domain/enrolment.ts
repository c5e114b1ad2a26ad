/**
 * Which namespaces are environments, as pure functions: no Temporal, no Kubernetes, so
 * every rule is table-tested (test/enrolment.test.ts) and the admission webhook and
 * the reconciler apply the same ones.
 *
 * The rule is the namespace's `scheduler` label alone:
 * - `scheduler=enabled`: an environment, scheduled; `scheduler=disabled`: an environment,
 *   paused (manual start and stop still work);
 * - no label, or any other value: not an environment, left alone;
 * - a system namespace (SYSTEM_NAMESPACES, the service's own, the support namespace) is
 *   never an environment, whatever its label.
 * A namespace created after installation gets its label from the labelling webhook
 * (`labelPatch`), unless it is a system or infrastructure namespace
 * (INFRASTRUCTURE_NAMESPACES): the decision is written on the namespace, where
 * `kubectl get ns -L scheduler` shows it. Namespaces that existed before, and any the
 * webhook missed, stay unlabelled, so unscheduled, until someone labels them.
 */
import type { z } from 'zod';
import { clockTime, switchValue, timeZone, wakeTimeProblem, wakeTimeValue, weekdayList } from './policy-values';
import { samePolicy, type EnvironmentPolicy } from '../domain/shutdown-policy';
import { OWNERS_ANNOTATION, ownersValue } from './owners';

/**
 * Why an environment leaves management. `namespace-deleted` (also what a signal without
 * arguments means, as earlier versions sent it): its workloads are gone with it, the
 * workflow just ends. `unmanaged` (the namespace is still there but no longer asks to be
 * scheduled: label removed, excluded by configuration): a stopped environment is started
 * again first, so nothing is left at 0 with saved counts no command can restore.
 */
export type RetireReason = 'namespace-deleted' | 'unmanaged';

export const SCHEDULER_LABEL = 'scheduler';

/** Namespace annotations that override the service's default policy for that environment. */
export const POLICY_ANNOTATIONS = {
  shutdownTime: 'devenv-scheduler/shutdown-time',
  timeZone: 'devenv-scheduler/time-zone',
  workingDays: 'devenv-scheduler/working-days',
  wakeTime: 'devenv-scheduler/wake-time',
  owners: OWNERS_ANNOTATION,
  waitForDatabases: 'devenv-scheduler/wait-for-databases',
} as const;

/**
 * The policy a namespace asks for: the defaults, with each valid annotation applied. An
 * invalid annotation is ignored and reported (the webhook shows it to whoever applied it).
 * A wake time not before the shutdown time is invalid too, the service's WAKE_TIME included
 * against a namespace's own shutdown time; `wake-time: off` turns WAKE_TIME off for one namespace.
 * Owners come from the annotation alone, all of them or (one entry not an id) none, and
 * then `ownersInvalid` says so: an owners-only rule then lets only admins act.
 */
export function policyFor(
  defaults: EnvironmentPolicy,
  annotations: Record<string, string> | undefined,
): { policy: EnvironmentPolicy; warnings: string[] } {
  const policy: EnvironmentPolicy = { ...defaults };
  const warnings: string[] = [];
  const apply = <T>(key: string, schema: z.ZodType<T>, set: (value: T) => void) => {
    const raw = annotations?.[key];
    if (raw === undefined) return;
    const parsed = schema.safeParse(raw);
    if (parsed.success) set(parsed.data);
    else warnings.push(`annotation ${key}=${quoted(raw)} ignored: ${parsed.error.issues[0]?.message}`);
  };
  apply(POLICY_ANNOTATIONS.shutdownTime, clockTime, (value) => (policy.shutdownTime = value));
  apply(POLICY_ANNOTATIONS.timeZone, timeZone, (value) => (policy.timeZone = value));
  apply(POLICY_ANNOTATIONS.workingDays, weekdayList, (value) => (policy.workingDays = value));
  // The service has no owners of its own: only a namespace names them.
  delete policy.owners;
  delete policy.ownersInvalid;
  apply(POLICY_ANNOTATIONS.owners, ownersValue, (value) => (policy.owners = value));
  if (annotations?.[POLICY_ANNOTATIONS.owners] !== undefined && policy.owners === undefined) policy.ownersInvalid = true;
  // Per namespace only: which workloads need a database is the namespace's to say.
  delete policy.waitForDatabases;
  apply(POLICY_ANNOTATIONS.waitForDatabases, switchValue, (value) => {
    if (value) policy.waitForDatabases = true;
  });
  // Last: a wake time must be before the shutdown time, which an annotation may have just set.
  delete policy.wakeTime;
  const wakeAt = (value: string, from: string): void => {
    const problem = wakeTimeProblem(value, policy.shutdownTime);
    if (problem) warnings.push(`${from} ignored: ${problem}`);
    else policy.wakeTime = value;
  };
  let ownWake: string | null | undefined; // null: `off`; undefined: none, or ignored as not a time
  apply(POLICY_ANNOTATIONS.wakeTime, wakeTimeValue, (value) => (ownWake = value));
  if (ownWake) wakeAt(ownWake, `annotation ${POLICY_ANNOTATIONS.wakeTime}=${quoted(annotations?.[POLICY_ANNOTATIONS.wakeTime] ?? '')}`);
  if (ownWake !== null && policy.wakeTime === undefined && defaults.wakeTime !== undefined)
    wakeAt(defaults.wakeTime, `WAKE_TIME=${defaults.wakeTime} (the service's wake-up)`);
  return { policy, warnings };
}

/** An annotation's value in a warning: a very long one (a list of hundreds of owners) is cut, its problem is said in full. */
function quoted(raw: string): string {
  return raw.length > 100 ? `${JSON.stringify(raw.slice(0, 100))}… (${raw.length} characters)` : JSON.stringify(raw);
}

/** Which namespaces are not the service's to schedule unless labelled. */
export interface EnrolmentRules {
  /** Never enrolled, even when labelled. */
  systemNamespaces: readonly string[];
  /** Exact names and `*` patterns: never labelled by the webhook, enrolled only when labelled. */
  infrastructureNamespaces: readonly string[];
}

/** The first infrastructure pattern a name matches, or undefined. `*` stands for any characters (none included). */
export function infrastructureMatcher(patterns: readonly string[]): (namespace: string) => string | undefined {
  const compiled = patterns.map((pattern) => ({
    pattern,
    regex: new RegExp(
      `^${pattern
        .split('*')
        .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*')}$`,
    ),
  }));
  return (namespace) => compiled.find(({ regex }) => regex.test(namespace))?.pattern;
}

/**
 * What a namespace is to the service, from its name and labels:
 * - `scheduled` / `paused`: an environment (label `scheduler=enabled` / `disabled`);
 * - `system`: never one; `infrastructure`, `unlabelled`, `unknown-label`: not one until
 *   labelled `scheduler=enabled` or `disabled`.
 * `reason` says why, in the words the dry run and the reports use.
 */
export type Standing =
  | { kind: 'scheduled' | 'paused'; enabled: boolean; reason: string }
  | { kind: 'system' | 'infrastructure' | 'unlabelled' | 'unknown-label'; reason: string };

export function createStanding(rules: EnrolmentRules): (namespace: string, labels: Record<string, string> | undefined) => Standing {
  const system = new Set(rules.systemNamespaces);
  const infrastructure = infrastructureMatcher(rules.infrastructureNamespaces);
  return (namespace, labels) => {
    if (system.has(namespace))
      return { kind: 'system', reason: "system namespace (SYSTEM_NAMESPACES, the service's own or the support namespace): never enrolled" };
    const value = labels?.[SCHEDULER_LABEL];
    if (value === 'enabled') return { kind: 'scheduled', enabled: true, reason: `label ${SCHEDULER_LABEL}=enabled` };
    if (value === 'disabled')
      return { kind: 'paused', enabled: false, reason: `label ${SCHEDULER_LABEL}=disabled: enrolled, never stopped by the scheduler` };
    if (value !== undefined) {
      return {
        kind: 'unknown-label',
        reason: `label ${SCHEDULER_LABEL}=${JSON.stringify(value)} is neither "enabled" nor "disabled": not scheduled (label ${SCHEDULER_LABEL}=enabled or disabled to enrol)`,
      };
    }
    const pattern = infrastructure(namespace);
    if (pattern !== undefined) {
      return {
        kind: 'infrastructure',
        reason: `infrastructure namespace (INFRASTRUCTURE_NAMESPACES entry ${JSON.stringify(pattern)}): label ${SCHEDULER_LABEL}=enabled to enrol`,
      };
    }
    return { kind: 'unlabelled', reason: `unlabelled: label ${SCHEDULER_LABEL}=enabled to enrol` };
  };
}

export type JsonPatchOperation = { op: 'add'; path: string; value: unknown };

/** RFC 6901: `~` and `/` in a key are written `~0` and `~1`. */
export function jsonPointerToken(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * The JSON Patch that labels a namespace being created `scheduler=enabled`, or undefined
 * when it must stay as it is: it is a system or infrastructure namespace, or already
 * carries a `scheduler` label (whatever its value: someone decided).
 */
export function labelPatch(
  standing: Standing,
  metadata: { labels?: Record<string, string> } | undefined,
): JsonPatchOperation[] | undefined {
  if (standing.kind !== 'unlabelled') return undefined;
  if (metadata === undefined) return [{ op: 'add', path: '/metadata', value: { labels: { [SCHEDULER_LABEL]: 'enabled' } } }];
  if (metadata.labels === undefined) return [{ op: 'add', path: '/metadata/labels', value: { [SCHEDULER_LABEL]: 'enabled' } }];
  return [{ op: 'add', path: `/metadata/labels/${jsonPointerToken(SCHEDULER_LABEL)}`, value: 'enabled' }];
}

/** A namespace as the reconciler lists it. */
export interface NamespaceSnapshot {
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  terminating: boolean;
}

/** A running environment workflow as visibility showed it. */
export interface RunningEnvironment {
  namespace: string;
  enabled: boolean;
  /** The run the reconciler saw: a retire goes to it alone. */
  runId: string;
  /** When that run started (ISO), by the Temporal server. */
  startedAt: string;
  /** Null when it has recorded none (enrolled before the status memo). */
  policy: EnvironmentPolicy | null;
  dispatchAheadMs: number | null;
}

/**
 * One thing the reconciler does (or, in a dry run, would do) about one namespace or
 * environment, and why:
 * - enrol: start its environment; enable / disable: switch a running one's scheduler
 *   (with `replan`, also give it its policy); replan: give a running one the policy its
 *   annotations and the service's settings ask for now;
 * - retire: end the run it saw, as `namespace-deleted` (gone or terminating) or
 *   `unmanaged` (still there, but no longer to be scheduled: restored first if stopped);
 * - unchanged: an environment as it should be; leave-alone: not an environment.
 */
export type Decision =
  | { action: 'enrol'; namespace: string; reason: string; enabled: boolean; policy: EnvironmentPolicy }
  | { action: 'enable' | 'disable'; namespace: string; reason: string; enabled: boolean; policy: EnvironmentPolicy; replan: boolean }
  | { action: 'replan'; namespace: string; reason: string; enabled: boolean; policy: EnvironmentPolicy }
  | { action: 'retire'; namespace: string; reason: string; retire: RetireReason; runId: string }
  | { action: 'unchanged' | 'leave-alone'; namespace: string; reason: string };

export type DecisionAction = Decision['action'];

export interface PlanInput {
  /** The namespaces as listed, after the environments were. */
  namespaces: readonly NamespaceSnapshot[];
  environments: readonly RunningEnvironment[];
  /** When the namespace list was begun: a run started since then is newer than what the list shows, and is not retired. */
  snapshotAt: Date;
  rules: EnrolmentRules;
  /** The service's policy settings, before annotations. */
  defaults: EnvironmentPolicy;
  /** The service's SHUTDOWN_DISPATCH_AHEAD_SECONDS in ms. */
  dispatchAheadMs: number;
}

/**
 * Whether a running environment plans by other rules than its namespace and the service's
 * settings ask for now. One that has recorded no policy yet records it at its next change
 * and is compared then.
 */
/**
 * An owners annotation made invalid changes nothing: the owners the environment recorded
 * stay. With none recorded, the policy says its owners are invalid (only admins may act).
 */
function keepingValidOwners(policy: EnvironmentPolicy, recorded: EnvironmentPolicy | null): EnvironmentPolicy {
  if (!policy.ownersInvalid || !recorded?.owners) return policy;
  const { ownersInvalid: _invalid, ...rest } = policy;
  return { ...rest, owners: recorded.owners };
}

function drifted(environment: RunningEnvironment, policy: EnvironmentPolicy, dispatchAheadMs: number): boolean {
  if (environment.policy === null) return false;
  return !samePolicy(environment.policy, policy) || environment.dispatchAheadMs !== dispatchAheadMs;
}

/** Every namespace and every running environment, once each, with what to do about it; sorted by namespace. */
export function planReconcile({ namespaces, environments, snapshotAt, rules, defaults, dispatchAheadMs }: PlanInput): Decision[] {
  const standing = createStanding(rules);
  const running = new Map(environments.map((environment) => [environment.namespace, environment]));
  const decisions: Decision[] = [];
  const retire = (environment: RunningEnvironment, why: RetireReason, reason: string): Decision =>
    Date.parse(environment.startedAt) < snapshotAt.getTime()
      ? { action: 'retire', namespace: environment.namespace, reason, retire: why, runId: environment.runId }
      : {
          action: 'leave-alone',
          namespace: environment.namespace,
          reason: 'its environment started after the namespaces were listed: left for the next reconcile',
        };

  for (const ns of namespaces) {
    const current = running.get(ns.name);
    running.delete(ns.name);
    if (ns.terminating) {
      decisions.push(
        current
          ? retire(current, 'namespace-deleted', 'namespace is being deleted')
          : { action: 'leave-alone', namespace: ns.name, reason: 'namespace is being deleted' },
      );
      continue;
    }
    const wanted = standing(ns.name, ns.labels);
    if (wanted.kind !== 'scheduled' && wanted.kind !== 'paused') {
      const unmanaged = `no longer to be managed (${wanted.reason}); restored first if it is stopped`;
      decisions.push(
        current ? retire(current, 'unmanaged', unmanaged) : { action: 'leave-alone', namespace: ns.name, reason: wanted.reason },
      );
      continue;
    }
    const { enabled } = wanted;
    const policy = keepingValidOwners(policyFor(defaults, ns.annotations).policy, current?.policy ?? null);
    if (!current) {
      decisions.push({ action: 'enrol', namespace: ns.name, reason: wanted.reason, enabled, policy });
      continue;
    }
    const replan = drifted(current, policy, dispatchAheadMs);
    if (current.enabled !== enabled) {
      decisions.push({
        action: enabled ? 'enable' : 'disable',
        namespace: ns.name,
        reason: `${wanted.reason}, its environment had the scheduler ${current.enabled ? 'on' : 'off'}`,
        enabled,
        policy,
        replan,
      });
    } else if (replan) {
      decisions.push({
        action: 'replan',
        namespace: ns.name,
        reason: 'its environment plans by other settings or annotations than asked for now',
        enabled,
        policy,
      });
    } else {
      decisions.push({ action: 'unchanged', namespace: ns.name, reason: wanted.reason });
    }
  }
  for (const environment of running.values()) decisions.push(retire(environment, 'namespace-deleted', 'namespace is gone'));
  return decisions.sort((a, b) => (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0));
}

export interface NamespacePlanInput extends Omit<PlanInput, 'namespaces' | 'environments'> {
  name: string;
  /** The namespace as read from the apiserver; undefined when it is not there. */
  namespace: NamespaceSnapshot | undefined;
  /** Its running environment as Temporal described it, before the namespace was read; undefined when none runs. */
  environment: RunningEnvironment | undefined;
}

/**
 * The reconciler's decision for one namespace, as the admission webhook takes it once the
 * stored namespace shows the change an AdmissionReview announced: planReconcile's rules,
 * applied to the namespace as the apiserver has it and to its environment as Temporal
 * has it, never to the review. One difference: an environment that has recorded nothing
 * yet (no status memo: just started and its first workflow task not run, e.g. while no
 * worker runs) is told both its scheduler switch and its policy, as the namespace asks
 * for them now, where the reconciler would wait for it to record them: its search
 * attributes and memo do not say yet what it was started with, and a relabel or a policy
 * change a moment after the namespace was created would otherwise wait that long. Told
 * again what it already has, an environment changes nothing.
 */
export function planNamespace({ name, namespace, environment, ...input }: NamespacePlanInput): Decision {
  const decision = planReconcile({
    ...input,
    namespaces: namespace ? [{ ...namespace, name }] : [],
    environments: environment ? [{ ...environment, namespace: name }] : [],
  }).find((d) => d.namespace === name);
  if (!decision) return { action: 'leave-alone', namespace: name, reason: 'no such namespace, and no environment' };
  const unrecorded = environment?.policy === null;
  if (
    namespace &&
    unrecorded &&
    (decision.action === 'unchanged' || decision.action === 'enable' || decision.action === 'disable' || decision.action === 'replan')
  ) {
    const wanted = createStanding(input.rules)(name, namespace.labels);
    const enabled = wanted.kind === 'scheduled';
    const { policy } = policyFor(input.defaults, namespace.annotations);
    return {
      action: enabled ? 'enable' : 'disable',
      namespace: name,
      reason: `${wanted.reason}; its environment has recorded neither its switch nor its policy yet: told both`,
      enabled,
      policy,
      replan: true,
    };
  }
  return decision;
}
