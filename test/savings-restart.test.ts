/**
 * The savings ledger across a worker restart, on the Temporal dev server: the worker that
 * made the stop is shut down (its cached workflows gone), another one on the same task
 * queue carries the environment on, and the start it makes ends the very sleep the first
 * one opened, with the stop's figures.
 */
import assert from 'node:assert/strict';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { Sleep } from '../src/domain/savings';
import { environmentWorkflow, environmentWorkflowId, startUpdate, stopUpdate } from '../src/workflows';
import { morningPolicy } from './support/policies';
import { recordingActivities } from './support/recording-activities';
import { eventually } from './support/slack';
import { devServerEnv, uniqueTaskQueue, workflowBundle } from './support/temporal';

const REQUESTS = { cpuMillicores: 1500, memoryBytes: 2 * 1024 ** 3 };

describe('savings ledger across a worker restart (Temporal dev server)', function () {
  this.timeout(120_000);
  let env: TestWorkflowEnvironment;

  before(async function () {
    env = await devServerEnv();
  });

  async function workerOn(taskQueue: string): Promise<{ worker: Worker; running: Promise<void> }> {
    const recording = recordingActivities(async () => Date.now());
    recording.stopRequests = REQUESTS;
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: recording,
    });
    return { worker, running: worker.run() };
  }

  it('a sleep opened by one worker is ended by the next with the figures of the stop', async function () {
    const taskQueue = uniqueTaskQueue('savings-restart');
    const namespace = `savings-restart-${process.pid}`;
    const first = await workerOn(taskQueue);
    const handle = await env.client.workflow.start(environmentWorkflow, {
      workflowId: environmentWorkflowId(namespace),
      taskQueue,
      args: [{ namespace, policy: morningPolicy(), enabled: true }],
    });
    try {
      await handle.executeUpdate(stopUpdate, { args: [{ by: 'U1' }] });
      const ledger = async () => ((await handle.describe()).memo?.savings ?? []) as Sleep[];
      const opened = await eventually('the sleep in the memo', async () => ((await ledger()).length === 1 ? await ledger() : undefined));
      assert.equal(opened[0]!.to, null);
      first.worker.shutdown();
      await first.running;

      const second = await workerOn(taskQueue);
      try {
        await handle.executeUpdate(startUpdate, { args: [{ by: 'U2' }] });
        const closed = await eventually('the sleep ended', async () => {
          const sleeps = await ledger();
          return sleeps.length === 1 && sleeps[0]!.to !== null ? sleeps : undefined;
        });
        // Two workloads of the recording stop, each with these requests, as the first worker recorded them.
        assert.equal(closed[0]!.from, opened[0]!.from, 'the same sleep, not a new one');
        assert.equal(closed[0]!.cpuMillicores, 2 * REQUESTS.cpuMillicores);
        assert.equal(closed[0]!.memoryBytes, 2 * REQUESTS.memoryBytes);
        assert.ok(Date.parse(closed[0]!.to!) > Date.parse(closed[0]!.from));
      } finally {
        await handle.terminate('test over').catch(() => undefined);
        second.worker.shutdown();
        await second.running;
      }
    } finally {
      await handle.terminate('test over').catch(() => undefined);
    }
  });
});
