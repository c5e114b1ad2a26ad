/**
 * One kind of object a stop puts to sleep and a start wakes: what it lists, what it saves
 * and how (annotations.ts), and how status shows it. The stop and start activities
 * (namespace-actions.ts) know nothing of any kind but through this; a kind to come is a
 * file that implements it and a line in kinds.ts.
 *
 * A sleep saves and changes together: one merge patch writes what the start needs into an
 * annotation and changes the spec, and the wake restores it and removes the annotation in
 * one patch, so a crash or retry at any point finds either the saved state or the live one.
 * Every write carries the resourceVersion it was computed from, so a concurrent change (an
 * HPA, a person with kubectl) turns into a 409 that is retried on a fresh read rather than
 * a lost update.
 *
 * These patches change spec.replicas (CronJob and Flux spec.suspend, HPA spec.minReplicas,
 * Argo CD spec.syncPolicy.automated) and devenv-scheduler/ annotations (a KEDA ScaledObject:
 * its paused-replicas annotation and the service's marker only) and nothing else, which is
 * all k8s/admission-policy.yaml
 * lets the worker's ServiceAccount change: a write that touched anything more would be
 * refused by the apiserver (KubernetesPolicyDenied). A new kind needs its fields there too.
 */
import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { AsleepWorkload, CronJobStatus, WorkloadChange, WorkloadStatus } from '../contracts';
import { call, listAll, statusCode, throttled, type PageRequest, type Write } from './apiserver';

/** What a sleep or wake did to one object: a change for the report, or a note for a person. */
export interface Outcome {
  change?: WorkloadChange;
  /** A sleep that found the object already asleep with a saved count. */
  asleep?: AsleepWorkload;
  note?: string;
}

/** How status shows one object. */
export type StatusEntry = { workload: WorkloadStatus; failing: boolean } | { cronJob: CronJobStatus };

/** What a sleep or wake is given besides the object. */
export interface Step {
  namespace: string;
  write: Write;
}

export interface WorkloadKind<T extends { metadata?: V1ObjectMeta } = { metadata?: V1ObjectMeta }> {
  /** As the apiserver and the reports name it (`Deployment`). */
  kind: string;
  /** As messages name a list of them (`Deployments`). */
  plural: string;
  /**
   * `guard`: a kind that could scale a sleeping workload up again (an HPA with minReplicas 0,
   * a KEDA ScaledObject): changed before the workloads sleep, and restored only after they
   * are awake.
   */
  stage: 'guard' | 'workload';
  /** One page of the namespace's objects of this kind. */
  list(namespace: string, page: PageRequest): Promise<{ items: T[]; metadata?: { _continue?: string } }>;
  /**
   * Whether a listed object takes part in a stop or start, given every excluded object of
   * the namespace (`Kind/name`). Without it every listed object does, and its sleep or wake
   * checks on a fresh read whether it is excluded.
   */
  managed?(object: T, excluded: ReadonlySet<string>): boolean;
  sleep(object: T, step: Step): Promise<Outcome>;
  wake(object: T, step: Step): Promise<Outcome>;
  /**
   * Whether a wake would change it (a stop saved something to restore). A start waits for
   * one wake-order group to be Ready only when a later group has something to wake; a kind
   * without it always counts as having something.
   */
  asleep?(object: T): boolean;
  /**
   * Whether its controller reports it at its desired state, as `kubectl rollout status`
   * counts it, and if not what it lacks. A start waits for every object it woke of a kind
   * that has it, and status counts an environment running only once they all are; a kind
   * without it is never waited for.
   */
  ready?(object: T): Readiness;
  /** Its wake-order group when it has no devenv-scheduler/wake-order annotation (wake-order.ts: DEFAULT_WAKE_GROUP without it). */
  wakeGroup?: number;
  /**
   * Whether an object of a stopped namespace is awake, i.e. a stop would change it now
   * (scaled up or created since the stop, a CronJob resumed), and who woke it. A kind without
   * it is never re-checked while stopped.
   */
  awake?(object: T): Awake | null;
  /** How status shows it; a kind without it is not listed for status at all. */
  describe?(object: T): StatusEntry;
}

/** What a kind's `ready` found: Ready, or what is missing in the controller's words ("0 of 2 Ready: ..."). */
export interface Readiness {
  ready: boolean;
  message?: string;
}

/** What an awake object looks like to the drift re-check (DriftedWorkload without its outcome). */
export interface Awake {
  replicas: number;
  created: boolean;
  by?: string;
}

/** Field manager names are whatever a client sent (up to 128 characters): this many are shown. */
const MANAGER_SHOWN = 64;

/**
 * The field manager that last set `spec.<field>` (managedFields: `kubectl scale` appears
 * as `kubectl` on the scale subresource, Argo CD as `argocd-controller`), the service's
 * own writes aside; undefined when no other manager owns the field. Only the owner of the
 * field is named: whoever touched something else of the object did not wake it. The name
 * is the client's own choice, so it comes without control characters and bounded.
 */
export function managerOf(metadata: V1ObjectMeta | undefined, field: string, ours: string): string | undefined {
  const owners = (metadata?.managedFields ?? []).filter(
    (e) =>
      e.manager &&
      e.manager !== ours &&
      e.subresource !== 'status' &&
      (e.fieldsV1 as { 'f:spec'?: Record<string, unknown> } | undefined)?.['f:spec']?.[`f:${field}`] !== undefined,
  );
  const latest = [...owners].sort((a, b) => new Date(b.time ?? 0).getTime() - new Date(a.time ?? 0).getTime())[0]?.manager;
  // eslint-disable-next-line no-control-regex
  const shown = latest?.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  if (!shown) return undefined;
  return shown.length > MANAGER_SHOWN ? `${shown.slice(0, MANAGER_SHOWN)}…` : shown;
}

/**
 * Every object of the kind in the namespace, a page at a time. `notServedSince`: an optional
 * CRD's 404 counts only if asked since then (PageRequest.notServedSince).
 */
export function listKind<T extends { metadata?: V1ObjectMeta }>(
  kind: WorkloadKind<T>,
  namespace: string,
  pageSize: number,
  { resourceVersion, notServedSince }: { resourceVersion?: string; notServedSince?: number } = {},
): Promise<T[]> {
  return call(`list ${kind.plural} in ${namespace}`, () =>
    listAll(pageSize, (page) => kind.list(namespace, page), resourceVersion, notServedSince),
  );
}

/** Conflicts retried on a fresh read before the activity fails and Temporal retries it. */
const CONFLICT_ATTEMPTS = 5;

/** Runs `attempt` on a fresh read after each 409 Conflict; a vanished object counts as nothing to do. */
export async function withConflictRetry<T>(first: T, read: () => Promise<T>, attempt: (current: T) => Promise<Outcome>): Promise<Outcome> {
  let current = first;
  for (let tries = 1; ; tries++) {
    try {
      return await attempt(current);
    } catch (error) {
      const code = statusCode(error);
      if (code === 404) return {};
      if (code !== 409 || tries >= CONFLICT_ATTEMPTS) throw error;
      try {
        current = await throttled(read);
      } catch (readError) {
        if (statusCode(readError) === 404) return {};
        throw readError;
      }
    }
  }
}
