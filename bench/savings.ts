/**
 * A benchmark day of the savings ledger (issue 21): many environments through the real
 * environment workflow on the time-skipping test server, across one working day and its
 * night (the warnings, the evening stop, the night asleep, the morning wake-up), on one
 * worker in this process. The activities are recording doubles (test/support) whose stops
 * report what a real cluster and AWS would: 10 Deployments with pod requests each, and
 * EC2/RDS instances by type for some; the workflow and the ledger are what is measured.
 *
 * Figures: what the day saved (CPU core-hours, GiB-hours, instance-hours by type, money at
 * sample prices), in total and per environment; and what keeping it costs per environment:
 * history events the day added, the memo's bytes (status, history, savings), and worker
 * memory. Baseline, in the same run, on the same server, worker and day: environments whose
 * stops report a dry run, which the workflow keeps out of the ledger (its savings-ledger
 * patch is never asked), so their events and memo are the day without the ledger.
 */
import './support/mocha-shim';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { DateTime } from 'luxon';
import type { AwsResourceResult, WorkloadChange } from '../src/activities/contracts';
import { createEnvironmentsClient } from '../src/client/environments';
import { savingsReport, type Figures, type Prices } from '../src/domain/savings';
import { registerSearchAttributes } from '../src/temporal/setup';
import { temporalTestServerPath } from '../src/temporal/binaries';
import { environmentWorkflow, environmentWorkflowId } from '../src/workflows';
import { HISTORY_MEMO, SAVINGS_MEMO, STATUS_MEMO } from '../src/workflows/environment/definitions';
import { everyDayPolicy } from '../test/support/policies';
import { recordingActivities } from '../test/support/recording-activities';
import { quietRuntime, workflowBundle } from '../test/support/temporal';
import { round, runBench } from './support/report';

const ENVIRONMENTS = Number(process.env.BENCH_SAVINGS_ENVIRONMENTS ?? 1000);
/** The environments of the day without the ledger: its events and bytes per environment are the same for each, so a tenth is enough. */
const BASELINE = Number(process.env.BENCH_SAVINGS_BASELINE ?? Math.max(2, Math.ceil(ENVIRONMENTS / 10)));
const DEPLOYMENTS = 10;
const AT_ONCE = 20;
const MI = 1024 ** 2;

/** Sample on-demand prices (USD an hour), of the order of a public cloud's; the money figure is only as good as they are. */
const PRICES: Prices = {
  vcpuHour: 0.032,
  gibHour: 0.004,
  instanceTypes: { 't3.medium': 0.0416, 'm5.large': 0.096, 'db.t3.medium': 0.068, 'db.r5.large': 0.25 },
  currency: 'USD',
};

/** The Deployments environment `i` runs: 1-3 replicas of pods requesting 100m-1 CPU and 128 MiB-1 GiB, varied by index. */
function deployments(i: number): WorkloadChange[] {
  const cpu = [100, 250, 500, 1000];
  const memory = [128, 256, 512, 1024];
  return Array.from({ length: DEPLOYMENTS }, (_, d) => ({
    kind: 'Deployment',
    name: `app-${d}`,
    from: 1 + ((i + d) % 3),
    to: 0,
    requests: { cpuMillicores: cpu[(i + 2 * d) % 4]!, memoryBytes: memory[(i + d) % 4]! * MI },
  }));
}

/** The EC2/RDS instances environment `i` has tagged: none for a third of them, one or two of four types for the rest. */
function instances(i: number): AwsResourceResult[] {
  const instance = (kind: 'ec2-instance' | 'rds-instance', type: string, n: number): AwsResourceResult => ({
    kind,
    id: `${kind === 'ec2-instance' ? 'i' : 'db'}-${i}-${n}`,
    region: 'eu-west-1',
    outcome: 'changed',
    before: kind === 'ec2-instance' ? 'running' : 'available',
    after: 'stopping',
    instanceType: type,
  });
  switch (i % 6) {
    case 0:
      return [instance('ec2-instance', 't3.medium', 0)];
    case 1:
      return [instance('ec2-instance', 'm5.large', 0), instance('rds-instance', 'db.t3.medium', 1)];
    case 2:
      return [instance('rds-instance', 'db.r5.large', 0)];
    case 3:
      return [instance('ec2-instance', 't3.medium', 0), instance('ec2-instance', 't3.medium', 1)];
    default:
      return [];
  }
}

async function inBatches<T>(items: readonly T[], work: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += AT_ONCE) await Promise.all(items.slice(i, i + AT_ONCE).map(work));
}

const mean = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);

runBench(
  'savings',
  `a benchmark day of ${ENVIRONMENTS} environments (10 Deployments each, some EC2/RDS): what the ledger saved and what keeping it costs`,
  async (bench) => {
    quietRuntime();
    bench.progress('starting the time-skipping test server and bundling the workflows');
    const env = await TestWorkflowEnvironment.createTimeSkipping({
      server: { executable: { type: 'existing-path', path: temporalTestServerPath() } },
    });
    after(() => env.teardown());
    await registerSearchAttributes(env.connection, env.namespace ?? 'default');
    const bundle = await workflowBundle();
    const prefix = `bench-savings-${process.pid}`;
    const ledgerNamespaces = Array.from({ length: ENVIRONMENTS }, (_, i) => `${prefix}-${i}`);
    const baselineNamespaces = Array.from({ length: BASELINE }, (_, i) => `${prefix}-dry-${i}`);
    const indexOf = (namespace: string) => Number(namespace.slice(namespace.lastIndexOf('-') + 1));
    const dryRun = new Set(baselineNamespaces);

    const activities = recordingActivities(() => env.currentTimeMs());
    const calls = activities.calls;
    // Stops are counted, not timed: reading the server's clock for each would be a call more per activity.
    activities.stopNamespace = async (namespace, timing) => {
      calls.push({ name: 'stopNamespace', namespace, timing, atMs: 0 });
      return {
        namespace,
        changed: deployments(indexOf(namespace)),
        unchanged: 0,
        durationMs: 1,
        ...(dryRun.has(namespace) ? { dryRun: true } : {}),
      };
    };
    activities.stopAwsResources = async (namespace) => {
      calls.push({ name: 'stopAwsResources', namespace, atMs: 0 });
      return { namespace, action: 'stop', source: 'live', resources: instances(indexOf(namespace)), notes: [], durationMs: 1 };
    };
    const taskQueue = `${prefix}-queue`;
    // A collection before each reading, so what is measured is what stays.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const memory = () => {
      gc();
      return process.memoryUsage();
    };
    const idle = memory();
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: bundle,
      activities,
      maxCachedWorkflows: ENVIRONMENTS + BASELINE + 50,
    });

    const nowUtc = async () => DateTime.fromMillis(await env.currentTimeMs(), { zone: 'UTC' });
    const skipTo = async (at: DateTime) => env.sleep(Math.max(0, at.toMillis() - (await env.currentTimeMs())));
    const eventsOf = async (namespaces: readonly string[]) => {
      const counts = new Map<string, { events: number; runId: string }>();
      await inBatches(namespaces, async (namespace) => {
        const d = await env.client.workflow.getHandle(environmentWorkflowId(namespace)).describe();
        counts.set(namespace, { events: d.historyLength, runId: d.runId });
      });
      return counts;
    };

    await worker.runUntil(async () => {
      // A working day from its morning: 10:00 UTC of the next day, every day a working day.
      const day = (await nowUtc()).plus({ days: 1 }).startOf('day');
      await skipTo(day.set({ hour: 10 }));
      const policy = everyDayPolicy({ shutdownTime: '19:00', wakeTime: '08:00' });
      const all = [...ledgerNamespaces, ...baselineNamespaces];
      const running = memory();
      bench.progress(
        `enrolling ${ENVIRONMENTS} environments and ${BASELINE} of the baseline (stops reported as dry runs), ${AT_ONCE} at a time`,
      );
      const enrolStarted = performance.now();
      await inBatches(all, async (namespace) => {
        await env.client.workflow.start(environmentWorkflow, {
          workflowId: environmentWorkflowId(namespace),
          taskQueue,
          args: [{ namespace, policy, enabled: true }],
        });
      });
      await skipTo(day.set({ hour: 10, minute: 5 }));
      bench.progress(`enrolled in ${((performance.now() - enrolStarted) / 1000).toFixed(1)} s`);
      const before = await eventsOf(all);
      const enrolled = memory();

      const dayStarted = performance.now();
      bench.progress('the day: warnings at 18:00, 18:30, 18:45, the stop at 19:00');
      await skipTo(day.set({ hour: 19, minute: 5 }));
      bench.progress(`evening done after ${((performance.now() - dayStarted) / 1000).toFixed(1)} s; the night, the wake-up at 08:00`);
      await skipTo(day.plus({ days: 1 }).set({ hour: 10 }));
      const daySeconds = (performance.now() - dayStarted) / 1000;
      bench.progress(`day done after ${daySeconds.toFixed(1)} s of real time`);
      const afterDay = memory();
      const after = await eventsOf(all);

      const stops = calls.filter((c) => c.name === 'stopNamespace').length;
      const starts = calls.filter((c) => c.name === 'startNamespace').length;
      const warnings = calls.filter((c) => c.name === 'notify' && c.event?.kind === 'warning').length;
      bench.progress(`${stops} stops, ${starts} starts, ${warnings} warnings for ${all.length} environments`);
      if (stops !== all.length || starts !== all.length)
        throw new Error(`expected ${all.length} stops and starts, got ${stops} and ${starts}`);

      // What the day saved, from the memos alone (as the API reads them).
      const environments = createEnvironmentsClient(env.client);
      const ledgers: Awaited<ReturnType<typeof environments.ledgers>> = [];
      await inBatches(ledgerNamespaces, async (namespace) => {
        ledgers.push(...(await environments.ledgers(namespace)));
      });
      const report = savingsReport(ledgers, 'week', new Date(await env.currentTimeMs()), PRICES);
      const total: Figures = report.total;
      const n = ledgers.length;
      bench.figure({
        name: 'day saved: environment-hours asleep',
        value: round(total.hoursAsleep, 1),
        unit: 'h',
        note: `${n} environments, ${round(total.hoursAsleep / n, 2)} h each (19:00 to 08:00)`,
      });
      bench.figure({
        name: 'day saved: CPU core-hours',
        value: round(total.cpuCoreHours, 1),
        unit: 'core-h',
        note: `${round(total.cpuCoreHours / n, 2)} per environment`,
      });
      bench.figure({
        name: 'day saved: memory GiB-hours',
        value: round(total.memoryGiBHours, 1),
        unit: 'GiB-h',
        note: `${round(total.memoryGiBHours / n, 2)} per environment`,
      });
      for (const [type, hours] of Object.entries(total.instanceHours).sort())
        bench.figure({
          name: `day saved: ${type} instance-hours`,
          value: round(hours, 1),
          unit: 'h',
          note: `${round(hours / n, 3)} per environment`,
        });
      bench.figure({
        name: 'day saved: cost at sample prices',
        value: round(total.cost ?? 0, 2),
        unit: PRICES.currency!,
        note: `${round((total.cost ?? 0) / n, 4)} per environment; prices ${JSON.stringify({ ...PRICES, currency: undefined })}`,
      });

      // What keeping it cost: events of the day, per environment, against the baseline's.
      const addedBy = (namespaces: readonly string[]) => {
        let continued = 0;
        const added = namespaces.map((namespace) => {
          const b = before.get(namespace)!;
          const a = after.get(namespace)!;
          if (a.runId !== b.runId) continued++;
          return a.events - b.events;
        });
        return { added, continued };
      };
      const ours = addedBy(ledgerNamespaces);
      const base = addedBy(baselineNamespaces);
      if (ours.continued + base.continued > 0)
        bench.progress(`${ours.continued + base.continued} environments continued as new during the day: their counts are of the new run`);
      // Which events differ: each baseline environment against the ledger's of the same index (the same workloads and instances), by type.
      const typesOf = async (namespace: string) => {
        const history = await env.client.workflow.getHandle(environmentWorkflowId(namespace)).fetchHistory();
        const types = new Map<string, number>();
        for (const event of history.events ?? []) {
          if (Number(event.eventId) <= before.get(namespace)!.events) continue;
          const marker = event.markerRecordedEventAttributes;
          const details = Object.values(marker?.details ?? {})
            .flatMap((p) => p.payloads ?? [])
            .map((p) => (p.data ? Buffer.from(p.data).toString() : ''))
            .join(' ');
          const type = temporal.api.enums.v1.EventType[event.eventType ?? 0] ?? String(event.eventType);
          const name = !marker ? type : marker.markerName === 'core_patch' ? `${type} patch ${details}` : `${type} ${marker.markerName}`;
          types.set(name, (types.get(name) ?? 0) + 1);
        }
        return types;
      };
      const differences = new Map<string, number>();
      const pairs = baselineNamespaces.slice(0, Math.min(BASELINE, 20));
      await inBatches(pairs, async (namespace) => {
        const [theirs, mine] = await Promise.all([typesOf(namespace), typesOf(ledgerNamespaces[indexOf(namespace)]!)]);
        for (const key of new Set([...theirs.keys(), ...mine.keys()])) {
          const extra = (mine.get(key) ?? 0) - (theirs.get(key) ?? 0);
          if (extra !== 0) differences.set(key, (differences.get(key) ?? 0) + extra);
        }
      });
      const paired = baselineNamespaces.map(
        (namespace) => after.get(ledgerNamespaces[indexOf(namespace)]!)!.events - before.get(ledgerNamespaces[indexOf(namespace)]!)!.events,
      );
      bench.figure({
        name: 'history events added by the day, per environment',
        value: round(mean(ours.added), 2),
        unit: 'events',
        baseline: { name: 'the same day without the ledger', value: round(mean(base.added), 2) },
        note: `all ${ours.added.length}: ${Math.min(...ours.added)}-${Math.max(...ours.added)}; the ${paired.length} with a baseline twin: ${round(mean(paired), 2)} against the twins' ${round(mean(base.added), 2)}; events the ledger's environments had more of, per environment (${pairs.length} pairs): ${
          differences.size ? [...differences].map(([k, v]) => `${k.trim()}: ${round(v / pairs.length, 2)}`).join('; ') : 'none'
        }`,
      });

      // The memo's bytes, as describe() returns them (the encoded payloads the server keeps).
      const memoBytes = async (namespaces: readonly string[]) => {
        const sums: Record<string, number[]> = { [STATUS_MEMO]: [], [HISTORY_MEMO]: [], [SAVINGS_MEMO]: [], all: [] };
        await inBatches(namespaces, async (namespace) => {
          const d = await env.client.workflow.getHandle(environmentWorkflowId(namespace)).describe();
          const fields = d.raw.workflowExecutionInfo?.memo?.fields ?? {};
          let all = 0;
          for (const [key, payload] of Object.entries(fields)) {
            const bytes = (payload.data?.length ?? 0) + Object.values(payload.metadata ?? {}).reduce((s, m) => s + m.length, 0);
            all += bytes;
            sums[key]?.push(bytes);
          }
          for (const key of [STATUS_MEMO, HISTORY_MEMO, SAVINGS_MEMO]) if (!(key in fields)) sums[key]!.push(0);
          sums.all!.push(all);
        });
        return Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, round(mean(v), 0)]));
      };
      const oursMemo = await memoBytes(ledgerNamespaces);
      const baseMemo = await memoBytes(baselineNamespaces);
      bench.figure({
        name: 'memo bytes per environment',
        value: oursMemo.all!,
        unit: 'B',
        baseline: { name: 'the same day without the ledger', value: baseMemo.all! },
        note: `status ${oursMemo[STATUS_MEMO]} B, history ${oursMemo[HISTORY_MEMO]} B, savings ${oursMemo[SAVINGS_MEMO]} B (baseline: ${baseMemo[STATUS_MEMO]}, ${baseMemo[HISTORY_MEMO]}, ${baseMemo[SAVINGS_MEMO]})`,
      });

      // Worker memory: this process (worker and its workflow threads; the test server is a process of its own).
      const cached = all.length;
      const perThousand = (from: NodeJS.MemoryUsage, to: NodeJS.MemoryUsage, key: 'rss' | 'heapUsed') =>
        ((to[key] - from[key]) / cached) * 1000;
      bench.figure({
        name: 'worker heap per 1,000 cached environments after the day',
        value: round(perThousand(running, afterDay, 'heapUsed') / MI, 1),
        unit: 'MiB',
        note: 'the main thread only: the workflows run in the worker threads, whose heaps are in the RSS',
      });
      bench.figure({
        name: 'worker RSS per 1,000 cached environments after the day',
        value: round(perThousand(running, afterDay, 'rss') / MI, 1),
        unit: 'MiB',
        note: `RSS ${round(idle.rss / MI, 0)} MiB before the worker, ${round(running.rss / MI, 0)} MiB with it running and no workflow, ${round(enrolled.rss / MI, 0)} MiB after enrolment, ${round(afterDay.rss / MI, 0)} MiB after the day, ${cached} workflows cached; the ledger's own part is its state, ${oursMemo[SAVINGS_MEMO]} B of JSON an environment (${round((oursMemo[SAVINGS_MEMO]! * 1000) / MI, 2)} MiB per 1,000) while it holds one sleep`,
      });
      bench.progress(`the day of ${all.length} environments took ${daySeconds.toFixed(1)} s of real time`);

      // A second day in the same runs: a patch is asked once a run, so what the ledger adds from then on is what a day costs.
      bench.progress('a second day, to 10:00 the day after');
      const secondStarted = performance.now();
      await skipTo(day.plus({ days: 2 }).set({ hour: 10 }));
      bench.progress(`second day done after ${((performance.now() - secondStarted) / 1000).toFixed(1)} s of real time`);
      const second = await eventsOf(all);
      const secondDay = (namespaces: readonly string[]) =>
        mean(
          namespaces
            .filter((ns) => second.get(ns)!.runId === after.get(ns)!.runId)
            .map((ns) => second.get(ns)!.events - after.get(ns)!.events),
        );
      const sameRun = all.filter((ns) => second.get(ns)!.runId === after.get(ns)!.runId).length;
      bench.figure({
        name: 'history events added by the second day, per environment',
        value: round(secondDay(ledgerNamespaces), 2),
        unit: 'events',
        baseline: { name: 'the same day without the ledger', value: round(secondDay(baselineNamespaces), 2) },
        note: `${sameRun} of ${all.length} environments still in the same run`,
      });
    });
  },
);
