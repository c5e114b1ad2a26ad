/**
 * The stop and start of a namespace: every registered kind (kinds.ts) listed once, then its
 * objects put to sleep or woken a few at a time, guards first on a stop and last on a start
 * (workload-kind.ts), with progress heartbeated and one report of what changed. A start
 * wakes the workloads in wake-order groups (wake-order.ts) and says how long each took to
 * be Ready (readiness.ts); it waits for a group only when a later one has something to wake,
 * and leaves the wait for the last ones to awaitReady, which runs outside the environment's lock.
 * Woken in steps, it stops at each wait between groups instead and leaves it to the workflow.
 */
import { CoreV1Api, type KubeConfig, type V1ObjectMeta } from '@kubernetes/client-node';
import { asyncLocalStorage } from '@temporalio/activity';
import pLimit from 'p-limit';
import type { ActionReport, KubernetesActivities, ReadinessGroup, StartReadiness } from '../contracts';
import { holdUntil } from '../timing';
import { isExcluded } from './annotations';
import type { Write } from './apiserver';
import type { GitOpsSettings } from '../../domain/gitops';
import { createWorkloadKinds } from './kinds';
import { ensureNamespace } from './namespaces';
import { createAwaitReady, createGroupsWait } from './readiness';
import { DEFAULT_WAKE_GROUP, planWakeOrder, waitsAfter } from './wake-order';
import { listKind, type Outcome, type WorkloadKind } from './workload-kind';

export interface NamespaceActionSettings {
  kubeConfig: KubeConfig;
  write: Write;
  dryRun: boolean;
  /** Objects changed at once in one namespace. */
  concurrency: number;
  /** Objects changed, and reads outside a step made, at once by this process across all namespaces. */
  acrossNamespaces: pLimit.Limit;
  pageSize: number;
  /** How long a start waits for what it woke to be Ready, from its first write (START_READY_TIMEOUT_SECONDS); 0: it does not wait. */
  readyTimeoutMs: number;
  /** GITOPS, ARGOCD_NAMESPACES and FLUX_NAMESPACES (default: hold, in argocd and flux-system). */
  gitops?: GitOpsSettings;
}

/** A listed object and the kind that knows how to change it. */
interface Listed {
  kind: WorkloadKind;
  object: { metadata?: V1ObjectMeta };
}

/** When each running activity last heartbeated. */
const lastHeartbeat = new WeakMap<object, number>();

function heartbeat(details: object): void {
  // Also called outside an activity (scripts, tests): there is no one to heartbeat to.
  const context = asyncLocalStorage.getStore();
  if (!context) return;
  lastHeartbeat.set(context, Date.now());
  context.heartbeat(details);
}

/** How often a stop or start heartbeats while it waits for its turn (well within the activities' heartbeat timeouts). */
const KEEPALIVE_MS = 10_000;

/** Of each running activity: its requests queued for a turn of KUBE_WORKER_CONCURRENCY, and those holding one. */
const turns = new WeakMap<object, { queued: number; holding: number }>();

/**
 * Runs `request` in its turn of `limit`, counting it for keepingAlive as queued until the
 * turn comes and as holding one until it is done.
 */
function inTurn<T>(limit: pLimit.Limit, request: () => Promise<T>): Promise<T> {
  const context = asyncLocalStorage.getStore();
  if (!context) return limit(request);
  const mine = turns.get(context) ?? { queued: 0, holding: 0 };
  turns.set(context, mine);
  mine.queued++;
  let begun = false;
  const begin = () => {
    if (!begun) [begun, mine.queued] = [true, mine.queued - 1];
  };
  return limit(async () => {
    begin();
    mine.holding++;
    try {
      return await request();
    } finally {
      mine.holding--;
    }
  }).finally(begin);
}

/**
 * Runs `body`, heartbeating `details()` whenever KEEPALIVE_MS pass without a heartbeat while
 * it only waits for a turn: in a rush a request waits behind every other namespace's,
 * longer than the heartbeat timeout, and that wait is not a dead worker. While a request of
 * its own holds a turn it does not: a request that hangs (an apiserver gone half-open) then
 * lets the heartbeat timeout retry the activity, rather than only its start-to-close timeout.
 */
async function keepingAlive<T>(details: () => object, body: () => Promise<T>): Promise<T> {
  const context = asyncLocalStorage.getStore();
  if (!context) return body();
  const timer = setInterval(() => {
    const mine = turns.get(context);
    const waiting = mine !== undefined && mine.queued > 0 && mine.holding === 0;
    if (waiting && Date.now() - (lastHeartbeat.get(context) ?? 0) >= KEEPALIVE_MS) heartbeat(details());
  }, KEEPALIVE_MS / 2);
  try {
    return await body();
  } finally {
    clearInterval(timer);
  }
}

export function createNamespaceActions(
  settings: NamespaceActionSettings,
): Pick<KubernetesActivities, 'stopNamespace' | 'startNamespace' | 'awaitReady'> {
  const { kubeConfig, write, dryRun, concurrency, acrossNamespaces, pageSize, readyTimeoutMs } = settings;
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const kinds = createWorkloadKinds(kubeConfig, settings.gitops);
  // Reads outside a step (the inventory, readiness polls) take a turn of the same limit as
  // the steps: hundreds of stops at one minute otherwise send every namespace's reads at
  // once, past what the apiserver's priority and fairness queues for one identity (429s).
  // Never taken inside a step, which already holds a turn: nested turns could deadlock.
  const read = <T>(request: () => Promise<T>): Promise<T> => inTurn(acrossNamespaces, request);
  const waitForGroups = createGroupsWait(kinds, pageSize, read);
  const awaitReady = createAwaitReady(waitForGroups);

  /** What the stop or start takes part in: every object of every kind, but those a kind leaves alone (WorkloadKind.managed). */
  function inventory(namespace: string): Promise<Listed[]> {
    return keepingAlive(
      () => ({ listing: namespace }),
      () => listInventory(namespace),
    );
  }

  async function listInventory(namespace: string): Promise<Listed[]> {
    // An optional CRD's 404 counts only if asked since this began: a stop right after Flux or
    // Argo CD is installed must not skip their objects, while a rush of stops still shares one.
    const notServedSince = Date.now();
    await read(() => ensureNamespace(core, namespace));
    const lists = await Promise.all(
      kinds.map(async (kind) =>
        (await read(() => listKind(kind, namespace, pageSize, { notServedSince }))).map((object) => ({ kind, object })),
      ),
    );
    const listed = lists.flat();
    const excluded = new Set(
      listed.filter(({ object }) => isExcluded(object.metadata)).map(({ kind, object }) => `${kind.kind}/${object.metadata?.name}`),
    );
    return listed.filter(({ kind, object }) => kind.managed?.(object, excluded) ?? true);
  }

  const stage = (listed: Listed[], which: WorkloadKind['stage']) => listed.filter(({ kind }) => kind.stage === which);

  /**
   * Runs the steps `concurrency` at a time, heartbeating progress, and folds the outcomes
   * into a report. `settle`, when given, runs after each phase, before the next begins; when
   * it answers true, no later phase runs.
   */
  async function act(
    namespace: string,
    started: number,
    phases: (() => Promise<Outcome>)[][],
    settle?: (phase: number) => Promise<boolean>,
  ): Promise<ActionReport> {
    const run = pLimit(concurrency);
    const total = phases.reduce((sum, steps) => sum + steps.length, 0);
    let done = 0;
    heartbeat({ done, total });
    const outcomes: Outcome[] = [];
    // After a failure or a cancellation (e.g. a missed heartbeat) no further step starts and
    // the activity fails only once the steps in flight are done, so nothing of this attempt
    // still writes while Temporal retries it.
    let failed = false;
    let failure: unknown;
    const cancellation = asyncLocalStorage.getStore()?.cancellationSignal;
    const guarded = (step: () => Promise<Outcome>) =>
      run(() =>
        inTurn(acrossNamespaces, async (): Promise<Outcome> => {
          // Checked once the step has its turn: it may have waited for other namespaces' steps.
          if (cancellation?.aborted && !failed) [failed, failure] = [true, cancellation.reason];
          if (failed) return {};
          try {
            const outcome = await step();
            heartbeat({ done: ++done, total });
            return outcome;
          } catch (error) {
            if (!failed) [failed, failure] = [true, error];
            return {};
          }
        }),
      );
    // Phases run one after the other: guards must be in place before the workloads sleep,
    // and are lifted only after the workloads are awake.
    await keepingAlive(
      () => ({ done, total }),
      async () => {
        for (const [index, steps] of phases.entries()) {
          outcomes.push(...(await Promise.all(steps.map(guarded))));
          if (failed) throw failure;
          if (await settle?.(index)) break;
        }
      },
    );
    const changed = outcomes.flatMap((o) => (o.change ? [o.change] : []));
    const notes = outcomes.flatMap((o) => (o.note ? [o.note] : []));
    const asleep = outcomes.flatMap((o) => (o.asleep ? [o.asleep] : []));
    return {
      namespace,
      changed,
      unchanged: outcomes.length - changed.length,
      ...(asleep.length ? { asleep } : {}),
      durationMs: Date.now() - started,
      ...(dryRun ? { dryRun } : {}),
      ...(notes.length ? { notes } : {}),
    };
  }

  return {
    async stopNamespace(namespace, timing) {
      await holdUntil(timing);
      const started = Date.now();
      const listed = await inventory(namespace);
      const sleep =
        ({ kind, object }: Listed) =>
        () =>
          kind.sleep(object, { namespace, write });
      const report = await act(namespace, started, [stage(listed, 'guard').map(sleep), stage(listed, 'workload').map(sleep)]);
      return { ...report, asleep: report.asleep ?? [] };
    },

    // One deadline from the first write bounds every wait of the start, these and awaitReady's,
    // so a group that never gets Ready delays the next by at most what is left of it.
    async startNamespace(namespace, steps) {
      const after = steps?.after;
      const resumed = after?.readiness;
      const started = resumed ? Date.parse(resumed.since) : Date.now();
      const listed = await inventory(namespace);
      const plan = planWakeOrder(stage(listed, 'workload'), ({ kind, object }) => ({
        kind: kind.kind,
        metadata: object.metadata,
        defaultGroup: kind.wakeGroup ?? DEFAULT_WAKE_GROUP,
      }));
      // A step after the first goes on from the group the one before it stopped at: those
      // before it are awake and waited for. A workload now in one of them (its annotation
      // changed meanwhile) is woken with the first group left, never left asleep.
      const earlier = new Set<Listed>();
      let left = plan.groups;
      if (resumed?.next !== undefined) {
        const from = resumed.next;
        for (const { members } of plan.groups.filter(({ order }) => order < from)) members.forEach((member) => earlier.add(member));
        const later = plan.groups.filter(({ order }) => order >= from);
        const first = later[0]?.order === from ? later.shift()!.members : [];
        left = earlier.size || first.length ? [{ order: from, members: [...earlier, ...first] }, ...later] : later;
      }
      // Readiness that could not be read stays unread: the rest is woken without waiting.
      const waits = readyTimeoutMs > 0 && !dryRun && resumed?.failed === undefined;
      const deadline = resumed ? Date.parse(resumed.deadline) : started + readyTimeoutMs;
      const woken: Listed[][] = left.map(() => []);
      const wake = (into: Listed[]) => (listed: Listed) => async (): Promise<Outcome> => {
        const outcome = await listed.kind.wake(listed.object, { namespace, write });
        // Woken by this attempt or by another before it (a retry after the worker died
        // mid-start): what is not Ready yet is waited for, whoever scaled it; one of an
        // earlier step's groups only if this step woke it, its wait is in that group's.
        const waitedFor = outcome.change || (!earlier.has(listed) && !listed.kind.ready?.(listed.object).ready);
        if (listed.kind.ready && waitedFor) into.push(listed);
        return outcome;
      };
      const groups: ReadinessGroup[] = (resumed?.groups ?? []).map((group) => ({ ...group }));
      let next: number | undefined;
      let groupStarted = Date.now();
      const report = await act(
        namespace,
        started,
        [...left.map(({ members }, index) => members.map(wake(woken[index]!))), stage(listed, 'guard').map(wake([]))],
        async (index) => {
          const members = woken[index];
          const wokenAt = new Date(groupStarted).toISOString();
          try {
            if (!waits || !members?.length) return false;
            const group: ReadinessGroup = {
              order: left[index]!.order,
              workloads: members.map(({ kind, object }) => ({ kind: kind.kind, name: object.metadata?.name ?? '' })),
              wokenAt,
            };
            groups.push(group);
            if (!waitsAfter(left, index, ({ kind, object }) => kind.asleep?.(object) ?? true)) return false;
            if (steps) {
              // The workflow waits (awaitReady, which a stop cancels), then asks for the next step.
              next = left[index + 1]!.order;
              return true;
            }
            await waitForGroups(namespace, [group], deadline);
            return false;
          } finally {
            groupStarted = Date.now();
          }
        },
      );
      const notes = [...(after ? (after.notes ?? []) : plan.notes), ...(report.notes ?? [])];
      const readiness: StartReadiness | undefined =
        groups.length || resumed
          ? {
              since: new Date(started).toISOString(),
              deadline: new Date(deadline).toISOString(),
              groups,
              ...(next !== undefined ? { next } : {}),
              ...(resumed?.failed !== undefined ? { failed: resumed.failed } : {}),
            }
          : undefined;
      return {
        ...report,
        changed: [...(after?.changed ?? []), ...report.changed],
        unchanged: (after?.unchanged ?? 0) + report.unchanged,
        ...(notes.length ? { notes } : {}),
        ...(readiness ? { readiness } : {}),
      };
    },

    awaitReady: (namespace, readiness) =>
      keepingAlive(
        () => ({ waitingFor: namespace }),
        () => awaitReady(namespace, readiness),
      ),
  };
}
