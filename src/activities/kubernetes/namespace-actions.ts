/**
 * The stop and start of a namespace: every registered kind (kinds.ts) listed once, then its
 * objects put to sleep or woken a few at a time, guards first on a stop and last on a start
 * (workload-kind.ts), with progress heartbeated and one report of what changed.
 */
import { CoreV1Api, type KubeConfig, type V1ObjectMeta } from '@kubernetes/client-node';
import { asyncLocalStorage } from '@temporalio/activity';
import { setTimeout as sleep } from 'node:timers/promises';
import pLimit from 'p-limit';
import type { ActionReport, KubernetesActivities, Readiness } from '../contracts';
import { holdUntil } from '../timing';
import { isExcluded } from './annotations';
import type { Write } from './apiserver';
import { createWorkloadKinds } from './kinds';
import { ensureNamespace } from './namespaces';
import { DEFAULT_WAKE_GROUP, planWakeOrder } from './wake-order';
import { listKind, type Outcome, type WorkloadKind } from './workload-kind';

export interface NamespaceActionSettings {
  kubeConfig: KubeConfig;
  write: Write;
  dryRun: boolean;
  /** Objects changed at once in one namespace. */
  concurrency: number;
  /** Objects changed at once by this process across all namespaces. */
  acrossNamespaces: pLimit.Limit;
  pageSize: number;
  /** How long a start waits for what it woke to be Ready, across all its wake-order groups. */
  readyTimeoutMs: number;
}

/** How often a start waiting for Ready lists the kinds it waits for. */
const READY_POLL_MS = 2000;

/** A listed object and the kind that knows how to change it. */
interface Listed {
  kind: WorkloadKind;
  object: { metadata?: V1ObjectMeta };
}

function heartbeat(details: object): void {
  // Also called outside an activity (scripts, tests): there is no one to heartbeat to.
  asyncLocalStorage.getStore()?.heartbeat(details);
}

export function createNamespaceActions(settings: NamespaceActionSettings): Pick<KubernetesActivities, 'stopNamespace' | 'startNamespace'> {
  const { kubeConfig, write, dryRun, concurrency, acrossNamespaces, pageSize, readyTimeoutMs } = settings;
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const kinds = createWorkloadKinds(kubeConfig);

  /** What the stop or start takes part in: every object of every kind, but those a kind leaves alone (WorkloadKind.managed). */
  async function inventory(namespace: string): Promise<Listed[]> {
    await ensureNamespace(core, namespace);
    const lists = await Promise.all(
      kinds.map(async (kind) => (await listKind(kind, namespace, pageSize)).map((object) => ({ kind, object }))),
    );
    const listed = lists.flat();
    const excluded = new Set(
      listed.filter(({ object }) => isExcluded(object.metadata)).map(({ kind, object }) => `${kind.kind}/${object.metadata?.name}`),
    );
    return listed.filter(({ kind, object }) => kind.managed?.(object, excluded) ?? true);
  }

  const stage = (listed: Listed[], which: WorkloadKind['stage']) => listed.filter(({ kind }) => kind.stage === which);

  /**
   * Until every listed object its kind can tell about is Ready, or `deadline`; what is still
   * not Ready then. An object deleted meanwhile is nothing to wait for.
   */
  async function awaitReady(namespace: string, waiting: Listed[], deadline: number): Promise<Readiness['notReady']> {
    const cancellation = asyncLocalStorage.getStore()?.cancellationSignal;
    let pending = waiting;
    for (;;) {
      const fresh = new Map<string, { metadata?: V1ObjectMeta }>();
      for (const kind of new Set(pending.map((l) => l.kind))) {
        for (const object of await listKind(kind, namespace, pageSize)) fresh.set(`${kind.kind}/${object.metadata?.name}`, object);
      }
      const states = pending.flatMap((listed) => {
        const object = fresh.get(`${listed.kind.kind}/${listed.object.metadata?.name}`);
        const state = object && listed.kind.ready?.(object);
        return state && !state.ready ? [{ listed, state }] : [];
      });
      pending = states.map((s) => s.listed);
      if (pending.length === 0) return [];
      if (Date.now() >= deadline) {
        return states.map(({ listed, state }) => ({
          kind: listed.kind.kind,
          name: listed.object.metadata?.name ?? '',
          ...(state.message ? { message: state.message } : {}),
        }));
      }
      heartbeat({ waitingForReady: pending.map((l) => `${l.kind.kind}/${l.object.metadata?.name}`).slice(0, 10) });
      await sleep(Math.min(READY_POLL_MS, deadline - Date.now()), undefined, cancellation ? { signal: cancellation } : {});
    }
  }

  /**
   * Runs the steps `concurrency` at a time, heartbeating progress, and folds the outcomes into
   * a report. `settle`, when given, runs after each phase before the next one starts.
   */
  async function act(
    namespace: string,
    started: number,
    phases: (() => Promise<Outcome>)[][],
    settle?: (phase: number) => Promise<void>,
  ): Promise<Pick<ActionReport, 'namespace' | 'changed' | 'unchanged' | 'durationMs' | 'dryRun' | 'notes'>> {
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
        acrossNamespaces(async (): Promise<Outcome> => {
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
    for (const [index, steps] of phases.entries()) {
      outcomes.push(...(await Promise.all(steps.map(guarded))));
      if (failed) throw failure;
      await settle?.(index);
    }
    const changed = outcomes.flatMap((o) => (o.change ? [o.change] : []));
    const notes = outcomes.flatMap((o) => (o.note ? [o.note] : []));
    return {
      namespace,
      changed,
      unchanged: total - changed.length,
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
      return act(namespace, started, [stage(listed, 'guard').map(sleep), stage(listed, 'workload').map(sleep)]);
    },

    // The workloads wake group by group in wake order (wake-order.ts), each group once the
    // one before is Ready, and the report says when all of it was; the guards are lifted last.
    // One deadline bounds the whole wait: a group that never gets Ready delays the rest by at
    // most what is left of it, and the activity's own timeout is never reached.
    async startNamespace(namespace) {
      const started = Date.now();
      const listed = await inventory(namespace);
      const plan = planWakeOrder(stage(listed, 'workload'), ({ kind, object }) => ({
        kind: kind.kind,
        metadata: object.metadata,
        defaultGroup: kind.wakeGroup ?? DEFAULT_WAKE_GROUP,
      }));
      const woken: Listed[][] = plan.groups.map(() => []);
      const wakeInto = (group: Listed[]) => (listed: Listed) => async (): Promise<Outcome> => {
        const outcome = await listed.kind.wake(listed.object, { namespace, write });
        if (outcome.change && listed.kind.ready && !dryRun) group.push(listed);
        return outcome;
      };
      const deadline = started + readyTimeoutMs;
      const groups: Readiness['groups'] = [];
      const notReady: Readiness['notReady'] = [];
      let groupStarted = Date.now();
      const report = await act(
        namespace,
        started,
        [...plan.groups.map(({ members }, index) => members.map(wakeInto(woken[index]!))), stage(listed, 'guard').map(wakeInto([]))],
        async (index) => {
          const waiting = woken[index];
          if (!waiting?.length) return;
          const pending = await awaitReady(namespace, waiting, deadline);
          groups.push({
            order: plan.groups[index]!.order,
            workloads: waiting.length,
            durationMs: Date.now() - groupStarted,
            ready: !pending.length,
          });
          notReady.push(...pending);
          groupStarted = Date.now();
        },
      );
      const total = groups.reduce((sum, g) => sum + g.workloads, 0);
      const notes = [...plan.notes, ...(report.notes ?? [])];
      return {
        ...report,
        ...(notes.length ? { notes } : {}),
        ...(total ? { readiness: { total, durationMs: Date.now() - started, groups, notReady } } : {}),
      };
    },
  };
}
