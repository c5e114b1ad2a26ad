/**
 * The savings over real HTTP into the koa app, with the Temporal dev server and a worker
 * running the real environment workflow behind it: a stop and a start make a sleep, and
 * /api/v1/savings, /savings/weekly and /environments/{ns}/timeline add it up from the
 * memos, as documented in the OpenAPI document, with the read token.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createMetrics } from '../src/api/metrics';
import { createRestRouter, environmentTimeline, savingsBody, weeklySavings } from '../src/api/rest';
import { createApi } from '../src/api/server';
import { createEnvironmentsClient } from '../src/client/environments';
import { weekStart } from '../src/domain/savings';
import { createLogger } from '../src/logger';
import { environmentWorkflow, environmentWorkflowId, startUpdate, stopUpdate } from '../src/workflows';
import { morningPolicy } from './support/policies';
import { recordingActivities } from './support/recording-activities';
import { eventually } from './support/slack';
import { devServerEnv, uniqueTaskQueue, workflowBundle } from './support/temporal';

const READER = 'savings-read-token-0123456789abcdef';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');
const GIB = 1024 ** 3;
/** Two replicas of these make 3600 cores and 3600 GiB: one second asleep is one core-hour and one GiB-hour. */
const REQUESTS = { cpuMillicores: 1_800_000, memoryBytes: 1800 * GIB };
const PRICES = { vcpuHour: 0.5, gibHour: 0.25, instanceTypes: { 't3.medium': 2 }, currency: 'EUR' };

describe('savings over REST (Temporal dev server behind it)', function () {
  this.timeout(120_000);
  let env: TestWorkflowEnvironment;
  let server: Server;
  let base: string;
  let worker: Worker;
  let running: Promise<void>;
  const namespaces: string[] = [];

  before(async function () {
    env = await devServerEnv();
    const taskQueue = uniqueTaskQueue('savings-rest');
    const recording = recordingActivities(async () => Date.now());
    recording.stopRequests = REQUESTS;
    recording.awsStopResults.push([
      {
        kind: 'ec2-instance',
        id: 'i-1',
        region: 'eu-west-1',
        outcome: 'changed',
        before: 'running',
        after: 'stopping',
        instanceType: 't3.medium',
      },
    ]);
    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: recording,
    });
    running = worker.run();
    const metrics = createMetrics();
    const rest = createRestRouter({
      environments: createEnvironmentsClient(env.client),
      tokens: [{ name: 'dashboard', sha256: sha256(READER), scope: 'read' }],
      logger: createLogger('silent'),
      metrics,
      supportSizes: ['M'],
      savingsPrices: PRICES,
    });
    const app = createApi({ client: env.client, logger: createLogger('silent'), metrics, routers: [rest] });
    server = await new Promise((resolve) => {
      const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    for (const suffix of ['slept', 'awake']) {
      const namespace = `savings-${suffix}-${process.pid}`;
      await env.client.workflow.start(environmentWorkflow, {
        workflowId: environmentWorkflowId(namespace),
        taskQueue,
        args: [{ namespace, policy: morningPolicy(), enabled: true }],
      });
      namespaces.push(namespace);
    }
    const handle = env.client.workflow.getHandle(environmentWorkflowId(namespaces[0]!));
    await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] });
  });

  after(async function () {
    await Promise.all(
      namespaces.map((ns) =>
        env.client.workflow
          .getHandle(environmentWorkflowId(ns))
          .terminate('test over')
          .catch(() => undefined),
      ),
    );
    worker?.shutdown();
    await running;
    await new Promise((resolve) => server?.close(resolve));
  });

  async function get(path: string, token: string | null = READER) {
    const response = await fetch(`${base}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  it('adds up a sleep per environment and in total: core-hours, GiB-hours and instance-hours as long as it slept, and their cost', async function () {
    const [slept, awake] = namespaces as [string, string];
    const { status, body } = await eventually('both environments listed with the sleep', async () => {
      const answer = await get('/api/v1/savings?period=week');
      const envs = (answer.body.environments ?? []) as { namespace: string; cpuCoreHours: number }[];
      const found = envs.filter((e) => namespaces.includes(e.namespace));
      return found.length === 2 && found.some((e) => e.cpuCoreHours > 0) ? answer : undefined;
    });
    assert.equal(status, 200);
    const report = savingsBody.parse(body);
    assert.equal(report.period, 'week');
    assert.equal(report.currency, 'EUR');
    assert.equal(Date.parse(report.to) - Date.parse(report.from), 7 * 86_400_000);
    const mine = report.environments.find((e) => e.namespace === slept)!;
    // 3600 cores asleep: as many core-hours as seconds asleep.
    const seconds = mine.cpuCoreHours;
    assert.ok(seconds >= 1.4 && seconds < 60, `slept ${seconds} s`);
    assert.equal(mine.memoryGiBHours, mine.cpuCoreHours);
    assert.ok(Math.abs(mine.hoursAsleep - seconds / 3600) <= 0.001, `${mine.hoursAsleep} h asleep for ${seconds} core-hours`);
    assert.ok(Math.abs(mine.instanceHours['ec2 t3.medium']! - seconds / 3600) <= 0.001);
    assert.ok(Math.abs(mine.cost! - (seconds * 0.5 + seconds * 0.25 + (seconds / 3600) * 2)) < 0.02, `cost ${mine.cost}`);
    const other = report.environments.find((e) => e.namespace === awake)!;
    assert.deepEqual(other, { namespace: awake, hoursAsleep: 0, cpuCoreHours: 0, memoryGiBHours: 0, instanceHours: {}, cost: 0 });
    assert.ok(report.total.cpuCoreHours >= mine.cpuCoreHours);

    const one = await get(`/api/v1/savings?period=month&namespace=${slept}`);
    assert.equal(one.status, 200);
    const alone = savingsBody.parse(one.body);
    assert.equal(alone.period, 'month');
    assert.deepEqual(
      alone.environments.map((e) => e.namespace),
      [slept],
    );
    assert.equal(alone.total.cpuCoreHours, alone.environments[0]!.cpuCoreHours);
  });

  it("shows the environment's sleeps as a timeline, and the weeks since Monday 00:00 UTC", async function () {
    const [slept] = namespaces as [string];
    const timeline = await get(`/api/v1/environments/${slept}/timeline?days=14`);
    assert.equal(timeline.status, 200, JSON.stringify(timeline.body));
    const { asleep, from, to } = environmentTimeline.parse(timeline.body);
    assert.equal(Date.parse(to) - Date.parse(from), 14 * 86_400_000);
    assert.equal(asleep.length, 1);
    assert.ok(asleep[0]!.to !== null && Date.parse(asleep[0]!.to) > Date.parse(asleep[0]!.from));

    const weekly = await get('/api/v1/savings/weekly?weeks=8');
    assert.equal(weekly.status, 200);
    const { weeks, currency } = weeklySavings.parse(weekly.body);
    assert.equal(currency, 'EUR');
    assert.equal(weeks.length, 8);
    assert.equal(weeks.at(-1)!.from, weekStart(new Date()).toISOString());
    assert.ok(weeks.every((w) => new Date(w.from).getUTCDay() === 1 && new Date(w.from).getUTCHours() === 0));
    assert.ok(weeks.at(-1)!.cpuCoreHours > 0);
  });

  it('refuses bad queries with 422, an unknown environment with 404, and no token with 401', async function () {
    assert.equal((await get('/api/v1/savings?period=year')).status, 422);
    assert.equal((await get('/api/v1/savings/weekly?weeks=0')).status, 422);
    assert.equal((await get(`/api/v1/environments/${namespaces[0]}/timeline?days=100`)).status, 422);
    assert.equal((await get('/api/v1/savings?namespace=Not_A_Name')).status, 422);
    assert.equal((await get('/api/v1/environments/no-such-env/timeline')).status, 404);
    assert.equal((await get('/api/v1/savings', null)).status, 401);
  });
});
