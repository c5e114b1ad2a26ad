/**
 * Durability: the worker process is killed (SIGKILL, like an evicted pod) in the middle of
 * an environment's day and a new worker takes over. The prolongation, the warnings already
 * sent and the timers must all carry on as if nothing happened.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { DateTime } from 'luxon';
import type { EnvironmentEvent } from '../src/activities/contracts';
import { environmentWorkflow, environmentWorkflowId, prolongateUpdate, statusQuery } from '../src/workflows';
import { recordingActivities, type RecordedCall } from './support/recording-activities';
import { useTimeSkippingEnv, uniqueTaskQueue, workflowBundle } from './support/temporal';

const MINUTE = 60_000;

function startWorkerProcess(address: string, taskQueue: string, callsFile: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', join(__dirname, 'support', 'worker-process.ts'), address, taskQueue, callsFile],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, TS_NODE_TRANSPILE_ONLY: 'true' } },
  );
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`worker process exited early with code ${code}`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('worker ready')) resolve(child);
    });
  });
}

function callsIn(file: string): RecordedCall[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as RecordedCall);
}

const warningOffsets = (calls: RecordedCall[]): number[] =>
  calls.flatMap((c) => (c.event?.kind === 'warning' ? [(c.event as Extract<EnvironmentEvent, { kind: 'warning' }>).offsetMinutes] : []));

describe('durability (time-skipping server)', function () {
  this.timeout(180_000);
  let env: TestWorkflowEnvironment;

  const timeSkippingEnv = useTimeSkippingEnv();
  before(function () {
    env = timeSkippingEnv();
  });

  it('a worker killed mid-day is replaced and the new one keeps the same timers and state', async function () {
    const taskQueue = uniqueTaskQueue('durability');
    const callsFile = join(mkdtempSync(join(tmpdir(), 'devenv-durability-')), 'calls.jsonl');
    const first = await startWorkerProcess(env.address, taskQueue, callsFile);

    let now = DateTime.fromMillis(await env.currentTimeMs(), { zone: 'UTC' });
    if (now.hour >= 18) {
      await env.sleep(now.endOf('day').diff(now).toMillis() + 2 * 60 * MINUTE);
      now = DateTime.fromMillis(await env.currentTimeMs(), { zone: 'UTC' });
    }
    const policy = {
      shutdownTime: now.plus({ hours: 3, minutes: 1 }).toFormat('HH:mm'),
      timeZone: 'UTC',
      workingDays: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const,
      holidays: [],
      warningOffsetsMinutes: [60, 30, 15],
      maxProlongationMinutes: 240,
      afterHoursWindowMinutes: 120,
    };
    const namespace = `durable-${process.pid}`;
    const handle = await env.client.workflow.start(environmentWorkflow, {
      workflowId: environmentWorkflowId(namespace),
      taskQueue,
      args: [{ namespace, policy: { ...policy, workingDays: [...policy.workingDays] }, enabled: true }],
    });
    try {
      const reply = await handle.executeUpdate(prolongateUpdate, { args: [{ by: 'U-before-crash', minutes: 30 }] });
      const shutdownAt = new Date(reply.shutdownAt!).getTime();

      // Into the last hour: the first worker sends the 60-minute warning, then dies.
      await env.sleep(shutdownAt - 45 * MINUTE - (await env.currentTimeMs()));
      const deadline = Date.now() + 20_000;
      while (warningOffsets(callsIn(callsFile)).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(warningOffsets(callsIn(callsFile)), [60], 'the first worker sent the 60-minute warning');
      first.kill('SIGKILL');
      await once(first, 'exit');

      const recorded = recordingActivities(() => env.currentTimeMs());
      const second = await Worker.create({
        connection: env.nativeConnection,
        taskQueue,
        workflowBundle: await workflowBundle(),
        activities: recorded,
      });
      await second.runUntil(async () => {
        await env.sleep(shutdownAt + 5 * MINUTE - (await env.currentTimeMs()));
        const status = await handle.query(statusQuery);
        assert.equal(status.phase, 'stopped');
        assert.equal(status.lastAction?.action, 'scheduled-stop');
      });

      assert.deepEqual(warningOffsets(recorded.calls), [30, 15], 'the new worker sends only the warnings still due');
      const stops = recorded.calls.filter((c) => c.name === 'stopNamespace');
      assert.equal(stops.length, 1);
      assert.ok(stops[0]!.atMs >= shutdownAt, 'the prolonged shutdown time survived the crash');
      assert.ok(stops[0]!.atMs < shutdownAt + 5 * MINUTE);
      assert.equal(callsIn(callsFile).filter((c) => c.name === 'stopNamespace').length, 0);
    } finally {
      await handle.terminate('test over').catch(() => undefined);
      if (first.exitCode === null && first.signalCode === null) first.kill('SIGKILL');
    }
  });
});
