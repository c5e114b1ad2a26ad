/**
 * Several clusters, one Temporal namespace (CLUSTER_NAME): two real apiservers, each with
 * its worker (the real activities, on that cluster's kubeconfig) and its Schedules, against
 * one dev server. A namespace of the same name in both is two environments; each cluster's
 * reconciler, morning reset, listings and commands see its own alone, and a stop in one
 * leaves the other's workloads running.
 */
import assert from 'node:assert/strict';
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { msToTs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createActivities } from '../src/activities';
import { loadConfig, type Config } from '../src/config';
import { createEnvironmentsClient } from '../src/client/environments';
import { createLogger } from '../src/logger';
import { EnvCluster, EnvEnabled, EnvNamespace, EnvNextShutdown, EnvPhase } from '../src/search-attributes';
import { ensureSchedules, MORNING_RESET_SCHEDULE_ID, RECONCILE_SCHEDULE_ID, registerSearchAttributes } from '../src/temporal/setup';
import {
  environmentWorkflow,
  environmentWorkflowId,
  morningResetWorkflow,
  reconcileWorkflow,
  scopedId,
  setEnabledSignal,
} from '../src/workflows';
import { morningPolicy } from './support/policies';
import { testCluster, type TestCluster } from './support/kube';
import { eventually } from './support/slack';
import { devServerEnv, workflowBundle } from './support/temporal';

const logger = createLogger('warn');

interface Site {
  name: string;
  cluster: TestCluster;
  config: Config;
  worker: Worker;
  running: Promise<void>;
}

describe('several clusters, one Temporal namespace (CLUSTER_NAME)', function () {
  this.timeout(180_000);
  let env: TestWorkflowEnvironment;
  const sites: Site[] = [];
  const run = `${process.pid}`;
  const shared = `shared-${run}`;
  const onlyFirst = `only-eu-${run}`;

  before(async function () {
    env = await devServerEnv();
    // Control planes of their own: each site's reconciler enrols every labelled namespace it sees, and the
    // shared one holds other suites' namespaces (some named after this process too).
    const clusters = await Promise.all([testCluster('clusters-eu'), testCluster('clusters-us')]);
    for (const [i, name] of [`eu-${run}`, `us-${run}`].entries()) {
      const cluster = clusters[i]!;
      const config = loadConfig({ CLUSTER_NAME: name, TASK_QUEUE: 'clusters-test' });
      const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
      for (const namespace of i === 0 ? [shared, onlyFirst] : [shared]) {
        await core.createNamespace({ body: { metadata: { name: namespace, labels: { scheduler: 'enabled' } } } });
        await cluster.kubeConfig.makeApiClient(AppsV1Api).createNamespacedDeployment({
          namespace,
          body: {
            metadata: { name: 'web' },
            spec: {
              replicas: 2,
              selector: { matchLabels: { app: 'web' } },
              template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'nginx' }] } },
            },
          },
        });
      }
      const worker = await Worker.create({
        connection: env.nativeConnection,
        taskQueue: config.temporal.taskQueue,
        workflowBundle: await workflowBundle(),
        activities: await createActivities(config, logger, env.client, undefined, cluster.kubeConfig),
      });
      sites.push({ name, cluster, config, worker, running: worker.run() });
    }
  });

  after(async function () {
    for (const site of sites) {
      for await (const execution of env.client.workflow.list({ query: `EnvCluster = '${site.name}' AND ExecutionStatus = 'Running'` })) {
        await env.client.workflow
          .getHandle(execution.workflowId)
          .terminate('test over')
          .catch(() => undefined);
      }
      for (const id of [MORNING_RESET_SCHEDULE_ID, RECONCILE_SCHEDULE_ID])
        await env.client.schedule
          .getHandle(scopedId(id, site.name))
          .delete()
          .catch(() => undefined);
      site.worker.shutdown();
      await site.running;
    }
  });

  it('each cluster has its own Schedules and task queue; reconciling each enrols its own namespaces, the shared name twice, and retires nothing of the other', async function () {
    const [eu, us] = sites as [Site, Site];
    for (const site of sites) {
      assert.equal(site.config.temporal.taskQueue, `${site.name}/clusters-test`);
      await ensureSchedules(env.client, site.config);
      const schedule = await env.client.schedule.getHandle(`${site.name}/devenv-morning-reset`).describe();
      assert.equal(schedule.action.type === 'startWorkflow' && schedule.action.workflowId, `${site.name}/devenv-morning-reset`);
      assert.deepEqual(schedule.action.type === 'startWorkflow' && schedule.action.args, [{ cluster: site.name }]);
    }
    // One after the other: the second reconciler would retire the first's environments if it saw them.
    for (const site of [eu, us, eu]) {
      await env.client.workflow.execute(reconcileWorkflow, {
        workflowId: `reconcile-${site.name}-${Date.now()}`,
        taskQueue: site.config.temporal.taskQueue,
        args: [{}],
      });
    }
    // Visibility catches up in seconds, but a fully loaded machine has been seen to take longer.
    for (const [site, expected] of [
      [eu, [onlyFirst, shared]],
      [us, [shared]],
    ] as const) {
      let seen: string[] = [];
      const listed = await eventually(
        `${site.name}'s environments listed`,
        async () => {
          seen = (await createEnvironmentsClient(env.client, { cluster: site.name }).list())
            .map((e) => e.namespace)
            .filter((n) => [shared, onlyFirst].includes(n))
            .sort();
          return seen.length === expected.length ? seen : undefined;
        },
        60_000,
      ).catch((err: unknown) => {
        throw new Error(`${String(err)}: listed ${JSON.stringify(seen)}, expected ${JSON.stringify(expected)}`);
      });
      assert.deepEqual(listed, [...expected].sort());
      for (const namespace of expected) {
        const described = await env.client.workflow.getHandle(environmentWorkflowId(namespace, site.name)).describe();
        assert.equal(described.workflowId, `${site.name}/env/${namespace}`);
        assert.equal(described.status.name, 'RUNNING');
        assert.equal(described.taskQueue, `${site.name}/clusters-test`);
        assert.deepEqual(described.typedSearchAttributes.get(EnvCluster), site.name);
      }
    }
    // Without CLUSTER_NAME nothing of theirs is listed, and no unscoped id was used.
    assert.deepEqual(
      (await createEnvironmentsClient(env.client).list()).filter((e) => [shared, onlyFirst].includes(e.namespace)),
      [],
    );
    await assert.rejects(env.client.workflow.getHandle(`env/${shared}`).describe(), /not found/i);
  });

  it('a stop in one cluster scales its own namespace alone; its morning reset signals its own environments alone', async function () {
    const [eu, us] = sites as [Site, Site];
    const replicas = async (site: Site) =>
      (await site.cluster.kubeConfig.makeApiClient(AppsV1Api).readNamespacedDeployment({ namespace: shared, name: 'web' })).spec?.replicas;
    const result = await createEnvironmentsClient(env.client, { cluster: eu.name }).stop(shared, 'U0TEST0001');
    assert.match(result.message, /stopped by/);
    assert.equal(await replicas(eu), 0);
    assert.equal(await replicas(us), 2, "the other cluster's namespace of the same name still runs");
    assert.equal((await createEnvironmentsClient(env.client, { cluster: us.name }).status(shared)).phase, 'running');

    for (const site of sites) {
      const reset = await env.client.workflow.execute(morningResetWorkflow, {
        workflowId: `reset-${site.name}-${Date.now()}`,
        taskQueue: site.config.temporal.taskQueue,
        args: [{ cluster: site.name }],
      });
      const own = (await createEnvironmentsClient(env.client, { cluster: site.name }).list()).length;
      assert.deepEqual(reset, { reset: own, missing: [] }, `${site.name}: every listed environment found under its own id`);
    }
  });

  it('an environment keeps its EnvCluster when it continues as new', async function () {
    const [eu] = sites as [Site];
    const namespace = `long-${run}`;
    const handle = await env.client.workflow.start(environmentWorkflow, {
      workflowId: environmentWorkflowId(namespace, eu.name),
      taskQueue: eu.config.temporal.taskQueue,
      args: [{ namespace, policy: morningPolicy(), enabled: true, maxHistoryEvents: 20 }],
      typedSearchAttributes: [{ key: EnvCluster, value: eu.name }],
    });
    const firstRun = handle.firstExecutionRunId;
    for (let i = 0; i < 12; i++) await handle.signal(setEnabledSignal, { enabled: i % 2 === 1, by: 'test' });
    const described = await eventually('a new run', async () => {
      const d = await env.client.workflow.getHandle(handle.workflowId).describe();
      return d.runId !== firstRun ? d : undefined;
    });
    assert.equal(described.typedSearchAttributes.get(EnvCluster), eu.name);
    assert.ok((await createEnvironmentsClient(env.client, { cluster: eu.name }).list()).some((e) => e.namespace === namespace));
  });
});

describe('EnvCluster on a Temporal namespace set up by an earlier version', function () {
  this.timeout(60_000);

  it('start-up registers EnvCluster where the other search attributes exist already', async function () {
    const env = await devServerEnv();
    const namespace = `earlier-${process.pid}`;
    await env.connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('1 day') });
    const type = (key: { type: string }) =>
      temporal.api.enums.v1.IndexedValueType[`INDEXED_VALUE_TYPE_${key.type}` as 'INDEXED_VALUE_TYPE_KEYWORD'];
    const listed = async () => (await env.connection.operatorService.listSearchAttributes({ namespace })).customAttributes ?? {};
    await eventually(
      'the new namespace',
      async () =>
        await env.connection.operatorService
          .listSearchAttributes({ namespace })
          .then(() => true)
          .catch(() => undefined),
    );
    await env.connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries([EnvNamespace, EnvPhase, EnvNextShutdown, EnvEnabled].map((key) => [key.name, type(key)])),
    });
    assert.equal((await listed())[EnvCluster.name], undefined);
    await registerSearchAttributes(env.connection, namespace);
    assert.equal((await listed())[EnvCluster.name], type(EnvCluster));
  });
});
