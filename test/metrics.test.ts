/**
 * The worker's own figures, as Prometheus scrapes them from /metrics: each scheduled stop's
 * outcome and lateness, Slack notifications delivered or failed, reconciler runs. The
 * activities are the recording ones, wrapped as src/main.ts wraps the real ones.
 */
import assert from 'node:assert/strict';
import type { AllActivities, ReconcileReport } from '../src/activities/contracts';
import { measuredActivities } from '../src/activities/measured';
import { createMetrics } from '../src/api/metrics';
import { TypedSearchAttributes } from '@temporalio/common';
import { createEnvironmentsClient } from '../src/client/environments';
import { EnvNamespace, EnvNextShutdown, EnvPhase } from '../src/search-attributes';
import { environmentWorkflow, environmentWorkflowId } from '../src/workflows';
import { morningPolicy } from './support/policies';
import { recordingActivities } from './support/recording-activities';
import { eventually } from './support/slack';
import { devServerEnv, uniqueTaskQueue } from './support/temporal';

/** The value of one sample in the exposition text, 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(match[3]);
  }
  return 0;
}

describe('metrics of the worker: scheduled stops, notifications, reconciler', () => {
  const report = (failed: ReconcileReport['failed']): ReconcileReport =>
    ({
      dryRun: false,
      namespaces: 1,
      environments: 1,
      enrolled: [],
      enabled: [],
      disabled: [],
      replanned: [],
      retired: [],
      decisions: [],
      failed,
    }) as unknown as ReconcileReport;

  function setUp() {
    const recording = recordingActivities(async () => Date.now());
    let reconcile: () => Promise<ReconcileReport> = async () => report([]);
    const base = { ...recording, reconcileEnvironments: () => reconcile() } as unknown as AllActivities;
    const metrics = createMetrics();
    return { recording, metrics, activities: measuredActivities(base, metrics), setReconcile: (r: typeof reconcile) => (reconcile = r) };
  }

  it('passes every argument on to the activity it measures (a follow-up stop stays a follow-up)', async () => {
    const received: Record<string, unknown[]> = {};
    const recordingAs =
      (name: string) =>
      async (...args: unknown[]) => {
        received[name] = args;
        return name === 'reconcileEnvironments' ? report([]) : { changed: [], problems: [] };
      };
    const names = ['stopAwsResources', 'stopNamespace', 'startAwsResources', 'startNamespace', 'notify', 'reconcileEnvironments'];
    const base = Object.fromEntries(names.map((name) => [name, recordingAs(name)])) as unknown as AllActivities;
    const activities = measuredActivities(base, createMetrics());
    const timing = { notBefore: new Date(Date.now() - 1000).toISOString() };
    const calls: [keyof AllActivities, unknown[]][] = [
      ['stopAwsResources', ['dev1', timing, { followUp: true }]],
      ['stopAwsResources', ['dev1', undefined, { followUp: true }]],
      ['stopNamespace', ['dev1', timing]],
      ['startAwsResources', ['dev1', { followUp: true }]],
    ];
    for (const [name, args] of calls) {
      await (activities[name] as (...a: unknown[]) => Promise<unknown>)(...args);
      assert.deepEqual(received[name], args, name);
    }
  });

  it('a scheduled stop counts its outcome per half and how late it began; a manual stop counts in neither', async () => {
    const { metrics, activities, recording } = setUp();
    // Its instant 1.5 s ago: it begins at once, 1.5 s late.
    await activities.stopNamespace('dev1', { notBefore: new Date(Date.now() - 1500).toISOString() });
    await activities.stopAwsResources('dev1', { notBefore: new Date(Date.now() - 1500).toISOString() });
    await activities.stopNamespace('dev2');
    // Its instant 0.3 s ahead: held until then, so on time.
    const ahead = Date.now() + 300;
    await activities.stopNamespace('dev3', { notBefore: new Date(ahead).toISOString() });
    assert.ok(recording.calls.find((c) => c.namespace === 'dev3')!.atMs >= ahead, 'held until its instant');
    recording.awsFailure = () => new Error('AWS down');
    await assert.rejects(activities.stopAwsResources('dev4', { notBefore: new Date().toISOString() }), /AWS down/);

    const text = await metrics.registry.metrics();
    assert.equal(sample(text, 'devenv_scheduled_stops_total', { half: 'kubernetes', outcome: 'stopped' }), 2);
    assert.equal(sample(text, 'devenv_scheduled_stops_total', { half: 'aws', outcome: 'stopped' }), 1);
    assert.equal(sample(text, 'devenv_scheduled_stops_total', { half: 'aws', outcome: 'failed' }), 1);
    assert.equal(
      sample(text, 'devenv_scheduled_stop_lateness_seconds_count'),
      2,
      'one lateness per scheduled Kubernetes stop, none for the manual one',
    );
    assert.equal(sample(text, 'devenv_scheduled_stop_lateness_seconds_bucket', { le: '1' }), 1, 'the held one within a second');
    assert.equal(sample(text, 'devenv_scheduled_stop_lateness_seconds_bucket', { le: '2.5' }), 2, 'the late one between 1 and 2.5 s');
    assert.ok(sample(text, 'devenv_scheduled_stop_lateness_seconds_sum') >= 1.5);
  });

  it('notifications count delivered and failed by kind; reconciler runs count ok, partial and failed', async () => {
    const { metrics, activities, recording, setReconcile } = setUp();
    const warning = {
      kind: 'warning' as const,
      namespace: 'dev1',
      shutdownAt: new Date().toISOString(),
      minutesLeft: 15,
      offsetMinutes: 15,
    };
    await activities.notify(warning);
    recording.notifyFailure = () => new Error('channel_not_found');
    await assert.rejects(activities.notify(warning), /channel_not_found/);
    await activities.reconcileEnvironments();
    setReconcile(async () => report([{ namespace: 'dev9', error: 'forbidden' }] as ReconcileReport['failed']));
    await activities.reconcileEnvironments();
    setReconcile(async () => {
      throw new Error('apiserver unreachable');
    });
    await assert.rejects(activities.reconcileEnvironments(), /apiserver unreachable/);

    const text = await metrics.registry.metrics();
    assert.equal(sample(text, 'devenv_notifications_total', { kind: 'warning', outcome: 'delivered' }), 1);
    assert.equal(sample(text, 'devenv_notifications_total', { kind: 'warning', outcome: 'failed' }), 1);
    for (const outcome of ['ok', 'partial', 'failed']) assert.equal(sample(text, 'devenv_reconcile_runs_total', { outcome }), 1, outcome);
  });

  it('devenv_environments and devenv_environments_overdue only where their sources are given (the worker role)', async () => {
    const api = await createMetrics().registry.metrics();
    assert.doesNotMatch(api, /^devenv_environments/m);
    const worker = await createMetrics({
      environmentsByPhase: async () => ({ running: 3, stopped: 2 }),
      environmentsOverdue: async () => 1,
    }).registry.metrics();
    assert.equal(sample(worker, 'devenv_environments', { phase: 'running' }), 3);
    assert.equal(sample(worker, 'devenv_environments_overdue'), 1);
  });

  it('devenv_environments_overdue counts running environments past their shutdown, from visibility (workers down: nothing stopped them)', async function () {
    this.timeout(60_000);
    const env = await devServerEnv();
    const environments = createEnvironmentsClient(env.client);
    const before = await environments.countOverdue(5 * 60_000);
    // No worker polls this queue: the workflows keep the search attributes they were started with, as when every worker is down.
    const taskQueue = uniqueTaskQueue('overdue');
    const started = [];
    for (const [name, shutdownInMinutes] of [
      ['overdue', -30],
      ['due-soon', 30],
      ['just-past', -1],
    ] as const) {
      const namespace = `metrics-${name}-${process.pid}`;
      started.push(
        await env.client.workflow.start(environmentWorkflow, {
          workflowId: environmentWorkflowId(namespace),
          taskQueue,
          args: [{ namespace, policy: morningPolicy(), enabled: true }],
          typedSearchAttributes: new TypedSearchAttributes([
            { key: EnvNamespace, value: namespace },
            { key: EnvPhase, value: 'running' },
            { key: EnvNextShutdown, value: new Date(Date.now() + shutdownInMinutes * 60_000) },
          ]),
        }),
      );
    }
    try {
      // Only the one 30 minutes past: one due in 30 minutes is not overdue, nor one a minute past (its stop may be under way).
      await eventually('visibility to count it', async () =>
        (await environments.countOverdue(5 * 60_000)) === before + 1 ? true : undefined,
      );
      const metrics = createMetrics({ environmentsOverdue: () => environments.countOverdue(5 * 60_000) });
      assert.equal(sample(await metrics.registry.metrics(), 'devenv_environments_overdue'), before + 1);
    } finally {
      await Promise.all(started.map((handle) => handle.terminate('test over')));
    }
  });
});
