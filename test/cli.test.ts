/**
 * `devenv`, the operators' CLI, as a person runs it: the real process (bin/devenv.js)
 * against a real Temporal dev server with a worker running the environment workflows.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { MORNING_RESET_SCHEDULE_ID, RECONCILE_SCHEDULE_ID } from '../src/temporal/setup';
import { environmentWorkflow, environmentWorkflowId, statusQuery } from '../src/workflows';
import { recordingActivities } from './support/recording-activities';
import { moto } from './support/moto';
import { morningPolicy } from './support/policies';
import { devServerEnv, uniqueTaskQueue, workflowBundle } from './support/temporal';

const DEVENV = path.join(__dirname, '..', 'bin', 'devenv.js');

describe('devenv CLI (Temporal dev server behind it)', function () {
  this.timeout(120_000);
  let env: TestWorkflowEnvironment;
  let worker: Worker;
  let running: Promise<void>;
  let taskQueue: string;
  const namespace = `cli-${process.pid}`;

  function devenv(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [DEVENV, ...args],
        { env: { ...process.env, TEMPORAL_ADDRESS: env.address, TASK_QUEUE: taskQueue, LOG_LEVEL: 'silent' } },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
      );
    });
  }

  before(async function () {
    env = await devServerEnv();
    taskQueue = uniqueTaskQueue('cli');
    worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: await workflowBundle(), activities: recordingActivities(async () => Date.now()) });
    running = worker.run();
    const policy = morningPolicy();
    await env.client.workflow.start(environmentWorkflow, { workflowId: environmentWorkflowId(namespace), taskQueue, args: [{ namespace, policy, enabled: true }] });
  });

  after(async function () {
    await env.client.workflow.getHandle(environmentWorkflowId(namespace)).terminate('test over').catch(() => undefined);
    worker?.shutdown();
    await running;
  });

  it('status prints phase, next shutdown and last action', async function () {
    const { code, stdout } = await devenv('status', namespace);
    assert.equal(code, 0);
    assert.match(stdout, new RegExp(`^${namespace}: running\\n`));
    assert.match(stdout, /next shutdown: /);
    assert.match(stdout, /last action: enrol by scheduler/);
  });

  it('prolongate moves the shutdown and records who did it; --json gives the result as data', async function () {
    const before = await env.client.workflow.getHandle(environmentWorkflowId(namespace)).query(statusQuery);
    const { code, stdout } = await devenv('--json', 'prolongate', namespace, 'for', '30m');
    assert.equal(code, 0);
    const result = JSON.parse(stdout) as { message: string; shutdownAt: string };
    assert.match(result.message, /prolongated by 30m by cli:/);
    assert.equal(new Date(result.shutdownAt).getTime() - new Date(before.shutdownAt!).getTime(), 30 * 60_000);
  });

  it('list shows the environment', async function () {
    for (let attempt = 0; ; attempt++) {
      const { code, stdout } = await devenv('list');
      assert.equal(code, 0);
      if (stdout.includes(namespace)) {
        assert.match(stdout, new RegExp(`${namespace}\\s+running`));
        return;
      }
      // Visibility is eventually consistent.
      if (attempt > 20) assert.fail(`list never showed ${namespace}:\n${stdout}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  });

  it('exit codes: 2 for a bad command or duration, 3 for an unknown environment, 4 when refused, 1 when Temporal is unreachable', async function () {
    const typo = await devenv('strat', namespace);
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /"strat" is not a command; did you mean `start`\?/);
    const negative = await devenv('prolongate', namespace, 'for', '-3h');
    assert.equal(negative.code, 2);
    assert.match(negative.stderr, /"-3h" is negative/);
    const misplaced = await devenv('--dry-run', 'stop', namespace);
    assert.equal(misplaced.code, 2);
    assert.match(misplaced.stderr, /--dry-run is for `devenv reconcile` only/);
    assert.match((await devenv('help')).stdout, /devenv reconcile --dry-run +say what reconcile would do to each namespace, and why, changing nothing/);
    const unknown = await devenv('status', 'no-such-env');
    assert.equal(unknown.code, 3);
    assert.match(unknown.stderr, /no-such-env is not a managed environment/);
    const tooLong = await devenv('prolongate', namespace, 'for', '1000h');
    assert.equal(tooLong.code, 4);
    assert.match(tooLong.stderr, /over the limit/);
    const status = await env.client.workflow.getHandle(environmentWorkflowId(namespace)).query(statusQuery);
    assert.equal(status.prolongedMinutes, 30, 'refused commands changed nothing');

    const down = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, [DEVENV, 'list'], { env: { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1' } }, (error, _stdout, stderr) =>
        resolve({ code: error ? Number(error.code) : 0, stderr }),
      );
    });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /cannot reach Temporal at 127\.0\.0\.1:1 \(set TEMPORAL_ADDRESS\)/);
  });

  it('schedules ensure creates the Schedules, then updates them in place', async function () {
    const ids = [MORNING_RESET_SCHEDULE_ID, RECONCILE_SCHEDULE_ID];
    await Promise.all(ids.map((id) => env.client.schedule.getHandle(id).delete().catch(() => undefined)));
    try {
      const first = await devenv('schedules', 'ensure');
      assert.equal(first.code, 0, first.stderr);
      assert.equal(first.stdout.trim(), 'morningReset: created\nreconcile: created\nawsInventory: off (AWS_REGIONS unset)');
      const second = await devenv('--json', 'schedules', 'ensure');
      assert.deepEqual(JSON.parse(second.stdout), { morningReset: 'updated', reconcile: 'updated', awsInventory: 'off (AWS_REGIONS unset)' });
      const reconcile = await env.client.schedule.getHandle(RECONCILE_SCHEDULE_ID).describe();
      assert.equal(reconcile.action.type === 'startWorkflow' && reconcile.action.taskQueue, taskQueue);
    } finally {
      // Other suites share this server: leave no Schedule firing into a queue nobody polls.
      await Promise.all(ids.map((id) => env.client.schedule.getHandle(id).delete().catch(() => undefined)));
    }
  });

  it('aws create-table creates the DynamoDB inventory table once, on moto through AWS_ENDPOINT_URL', async function () {
    const aws = await moto();
    const run = () =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          [DEVENV, 'aws', 'create-table'],
          {
            env: {
              ...process.env,
              AWS_REGIONS: 'eu-west-1',
              AWS_ENDPOINT_URL: aws.endpoint,
              AWS_ACCESS_KEY_ID: 'testing',
              AWS_SECRET_ACCESS_KEY: 'testing',
              INVENTORY_TABLE: `cli-inventory-${process.pid}`,
              LOG_LEVEL: 'silent',
            },
          },
          (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
        );
      });
    const first = await run();
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout.trim(), `table cli-inventory-${process.pid} created`);
    const second = await run();
    assert.equal(second.stdout.trim(), `table cli-inventory-${process.pid} exists`);
  });
});
