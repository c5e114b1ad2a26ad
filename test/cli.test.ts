/**
 * `devenv`, the operators' CLI, as a person runs it: the real process (bin/devenv.js)
 * against a real Temporal dev server with a worker running the environment workflows.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { MORNING_RESET_SCHEDULE_ID, RECONCILE_SCHEDULE_ID } from '../src/temporal/setup';
import { environmentWorkflow, environmentWorkflowId, retireSignal, statusQuery } from '../src/workflows';
import { recordingActivities, type RecordingActivities } from './support/recording-activities';
import { moto } from './support/moto';
import { eventually } from './support/slack';
import { morningPolicy } from './support/policies';
import { devServerEnv, uniqueTaskQueue, workflowBundle } from './support/temporal';

const DEVENV = path.join(__dirname, '..', 'bin', 'devenv.js');

describe('devenv CLI (Temporal dev server behind it)', function () {
  this.timeout(120_000);
  let env: TestWorkflowEnvironment;
  let worker: Worker;
  let running: Promise<void>;
  let taskQueue: string;
  let recording: RecordingActivities;
  const namespace = `cli-${process.pid}`;

  function devenv(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return devenvWith({}, ...args);
  }

  function devenvWith(settings: NodeJS.ProcessEnv, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [DEVENV, ...args],
        {
          env: { ...process.env, TEMPORAL_ADDRESS: env.address, TASK_QUEUE: taskQueue, LOG_LEVEL: 'silent', ...settings },
          timeout: 60_000,
        },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
      );
    });
  }

  before(async function () {
    env = await devServerEnv();
    taskQueue = uniqueTaskQueue('cli');
    recording = recordingActivities(async () => Date.now());
    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: recording,
    });
    running = worker.run();
    const policy = morningPolicy();
    await env.client.workflow.start(environmentWorkflow, {
      workflowId: environmentWorkflowId(namespace),
      taskQueue,
      args: [{ namespace, policy, enabled: true }],
    });
  });

  after(async function () {
    await env.client.workflow
      .getHandle(environmentWorkflowId(namespace))
      .terminate('test over')
      .catch(() => undefined);
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

  it('history prints who did what, newest first, and why says when it stops and who prolonged it; --json gives both as data', async function () {
    const history = await devenv('history', namespace);
    assert.equal(history.code, 0, history.stderr);
    const lines = history.stdout.trim().split('\n');
    assert.match(lines[0]!, /^today \d\d:\d\d \S+\s+prolongate\s+cli:\S+: \+30m$/);
    assert.match(lines.at(-1)!, /^today \d\d:\d\d \S+\s+enrol\s+scheduler$/);
    const json = JSON.parse((await devenv('--json', 'history', namespace)).stdout) as { namespace: string; entries: { action: string }[] };
    assert.deepEqual(
      json.entries.map((e) => e.action),
      ['enrol', 'prolongate'],
    );
    const why = await devenv('why', namespace);
    assert.equal(why.code, 0, why.stderr);
    assert.match(
      why.stdout,
      new RegExp(`^${namespace}: stops today \\d\\d:\\d\\d \\S+ \\(prolonged 30m by cli:\\S+ at \\d\\d:\\d\\d\\)\n$`),
    );
    const whyJson = JSON.parse((await devenv('--json', 'why', namespace)).stdout) as { namespace: string; why: string };
    assert.match(whyJson.why, /^stops today /);
    assert.equal((await devenv('why', 'nosuch-env')).code, 3, 'an unknown environment');
  });

  it('list shows the environment, its shutdown as status says it; list --json gives the same as data', async function () {
    for (let attempt = 0; ; attempt++) {
      const { code, stdout } = await devenv('list');
      assert.equal(code, 0);
      if (stdout.includes(namespace)) {
        assert.match(
          stdout,
          new RegExp(`${namespace}\\s+running\\s+shuts down (today|tomorrow|\\w{3} \\d+ \\w{3}) \\d\\d:\\d\\d \\S+, in \\d+`),
        );
        assert.doesNotMatch(stdout, /\d{4}-\d\d-\d\dT\d\d:/, 'no raw ISO instants');
        const json = await devenv('list', '--json');
        assert.equal(json.code, 0, json.stderr);
        const listed = (JSON.parse(json.stdout) as { namespace: string; phase: string }[]).find((e) => e.namespace === namespace);
        assert.equal(listed?.phase, 'running');
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
    assert.match(typo.stderr, new RegExp(`"strat" is not a command; did you mean \`devenv start ${namespace}\`\\?`));
    const negative = await devenv('prolongate', namespace, 'for', '-3h');
    assert.equal(negative.code, 2);
    assert.match(negative.stderr, /"-3h" is negative/);
    const misplaced = await devenv('--dry-run', 'stop', namespace);
    assert.equal(misplaced.code, 2);
    assert.match(misplaced.stderr, /--dry-run is for `devenv reconcile` only/);
    assert.match(
      (await devenv('help')).stdout,
      /devenv reconcile --dry-run +say what reconcile would do to each namespace, and why, changing nothing/,
    );
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

  it("--version; --json failures are JSON on stdout; service-only settings are not the CLI's to refuse", async function () {
    const version = await devenv('--version');
    assert.equal(version.code, 0, version.stderr);
    assert.equal(
      version.stdout.trim(),
      `devenv ${(JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version}`,
    );

    const unknown = await devenv('--json', 'status', 'no-such-env');
    assert.equal(unknown.code, 3);
    assert.equal(unknown.stderr, '');
    assert.deepEqual(JSON.parse(unknown.stdout), {
      error: 'no-such-env is not a managed environment (no such namespace, or it is a system namespace)',
      exitCode: 3,
    });
    const typo = await devenv('strat', namespace, '--json');
    assert.equal(typo.code, 2);
    const refusal = JSON.parse(typo.stdout) as { error: string; usage: string[] };
    assert.match(refusal.error, /did you mean `devenv start /);
    assert.deepEqual(refusal.usage, ['devenv start <namespace>']);

    // The service refuses a bot token without its default channel; the CLI never posts to Slack.
    const withSlackToken = await devenvWith(
      { SLACK_BOT_TOKEN: 'xoxb-the-service-token', SLACK_DEFAULT_CHANNEL: '', WEBHOOK_TLS_CERT: '/only/the/cert.pem' },
      'status',
      namespace,
    );
    assert.equal(withSlackToken.code, 0, withSlackToken.stderr);
    assert.match(withSlackToken.stdout, new RegExp(`^${namespace}: running`));
  });

  it('reconcile that fails says why, not only "Workflow execution failed"', async function () {
    const reconcileQueue = uniqueTaskQueue('cli-reconcile');
    const failing = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: reconcileQueue,
      workflowBundle: await workflowBundle(),
      activities: {
        reconcileEnvironments: async () => {
          throw ApplicationFailure.nonRetryable(
            'no Kubernetes cluster reachable at https://127.0.0.1:6443 (ECONNREFUSED)',
            'ClusterUnreachable',
          );
        },
      },
    });
    await failing.runUntil(async () => {
      const text = await devenvWith({ TASK_QUEUE: reconcileQueue }, 'reconcile');
      assert.equal(text.code, 1);
      assert.equal(
        text.stderr.trim(),
        'devenv: Workflow execution failed: no Kubernetes cluster reachable at https://127.0.0.1:6443 (ECONNREFUSED)',
      );
      const json = await devenvWith({ TASK_QUEUE: reconcileQueue }, '--json', 'reconcile');
      assert.equal(json.code, 1);
      assert.deepEqual(JSON.parse(json.stdout), {
        error: 'Workflow execution failed: no Kubernetes cluster reachable at https://127.0.0.1:6443 (ECONNREFUSED)',
        exitCode: 1,
      });
    });
  });

  it('a retired environment: status and stop say it is no longer managed, exit code 3', async function () {
    const retired = `cli-retired-${process.pid}`;
    const handle = await env.client.workflow.start(environmentWorkflow, {
      workflowId: environmentWorkflowId(retired),
      taskQueue,
      args: [{ namespace: retired, policy: morningPolicy(), enabled: true }],
    });
    await handle.signal(retireSignal, { reason: 'namespace-deleted', by: 'test' });
    await handle.result();
    for (const command of ['status', 'stop']) {
      const { code, stdout, stderr } = await devenv(command, retired);
      assert.equal(code, 3, `${command}: ${stdout}${stderr}`);
      assert.equal(stdout, '');
      assert.equal(stderr.trim(), `${retired} is no longer managed (its namespace was deleted, or it left management)`);
    }
  });

  it('a namespace gone from the cluster: stop says so, exit code 3 (not 4, refused)', async function () {
    const gone = `cli-gone-${process.pid}`;
    await env.client.workflow.start(environmentWorkflow, {
      workflowId: environmentWorkflowId(gone),
      taskQueue,
      args: [{ namespace: gone, policy: morningPolicy(), enabled: true }],
    });
    recording.goneNamespaces.add(gone);
    try {
      const { code, stdout, stderr } = await devenv('stop', gone);
      assert.equal(code, 3, `${stdout}${stderr}`);
      assert.match(stderr, new RegExp(`the namespace ${gone} is gone from the cluster`));
    } finally {
      await env.client.workflow
        .getHandle(environmentWorkflowId(gone))
        .terminate('test over')
        .catch(() => undefined);
    }
  });

  it('a stop that outlasts COMMAND_WAIT_SECONDS: exit 5 with "still in progress" within the wait; it goes on and completes', async function () {
    const slow = `cli-slow-${process.pid}`;
    const handle = await env.client.workflow.start(environmentWorkflow, {
      workflowId: environmentWorkflowId(slow),
      taskQueue,
      args: [{ namespace: slow, policy: morningPolicy(), enabled: true }],
    });
    let release!: () => void;
    recording.holdStops = new Promise<void>((resolve) => (release = resolve));
    try {
      const began = Date.now();
      // Today's CLI waits for as long as the stop takes; execFile kills it after 60 s.
      const { code, stdout, stderr } = await devenvWith({ COMMAND_WAIT_SECONDS: '2' }, 'stop', slow);
      const took = Date.now() - began;
      assert.equal(code, 5, `${stdout}${stderr}`);
      assert.equal(stdout.trim(), `stop ${slow} is still in progress; \`devenv status ${slow}\` shows when it is done`);
      assert.ok(took < 15_000, `answered after ${took} ms`);
      const json = await devenvWith({ COMMAND_WAIT_SECONDS: '1' }, '--json', 'start', slow);
      assert.equal(json.code, 5, json.stderr);
      assert.deepEqual(JSON.parse(json.stdout), {
        namespace: slow,
        action: 'start',
        accepted: true,
        inProgress: true,
        message: `start ${slow} is still in progress; \`devenv status ${slow}\` shows when it is done`,
      });
      const stopping = await devenv('status', slow);
      assert.match(stopping.stdout, new RegExp(`^${slow}: stopping\\nnext shutdown: none \\(stopping now\\)\\n`));
      const row = await eventually('list to show the stop', async () =>
        (await devenv('list')).stdout.split('\n').find((line) => line.startsWith(`${slow} `) && /\bstopping\b/.test(line)),
      );
      assert.doesNotMatch(row, /shuts down/, 'its shutdown is under way, not ahead');
      // A refusal is not an action in progress: exit 4 at once, as before.
      const refused = await devenvWith({ COMMAND_WAIT_SECONDS: '30' }, 'prolongate', slow, 'for', '1h');
      assert.equal(refused.code, 4, refused.stderr);
      assert.match(refused.stderr, /is stopping: only a running environment can be prolongated/);
    } finally {
      release();
      recording.holdStops = undefined;
    }
    // The stop, then the start queued behind it, both happen once the hold ends.
    const result = await eventually('the queued start to be done', async () => {
      const status = await handle.query(statusQuery);
      return status.lastAction?.action === 'start' ? status : undefined;
    });
    assert.equal(result.phase, 'running');
    assert.deepEqual(
      recording.calls.filter((c) => c.namespace === slow && (c.name === 'stopNamespace' || c.name === 'startNamespace')).map((c) => c.name),
      ['stopNamespace', 'startNamespace'],
    );
    await handle.terminate('test over');
  });

  it('runs as a uid without a passwd entry, as in the image (uid 10001): stop works and records who did it as cli:uid-10001', async function () {
    const uid = 10001;
    assert.throws(() => execFileSync('getent', ['passwd', String(uid)]), 'uid 10001 has no passwd entry on this machine');
    const home = mkdtempSync(path.join(os.tmpdir(), 'devenv-cli-nopasswd-'));
    chmodSync(home, 0o777);
    const nobody = `cli-nopasswd-${process.pid}`;
    const handle = await env.client.workflow.start(environmentWorkflow, {
      workflowId: environmentWorkflowId(nobody),
      taskQueue,
      args: [{ namespace: nobody, policy: morningPolicy(), enabled: true }],
    });
    try {
      const run = (...args: string[]) =>
        new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
          execFile(
            process.execPath,
            [DEVENV, ...args],
            // The image's environment: HOME=/tmp, no USER or LOGNAME.
            {
              uid,
              gid: uid,
              env: { PATH: process.env.PATH, HOME: home, TEMPORAL_ADDRESS: env.address, TASK_QUEUE: taskQueue, LOG_LEVEL: 'silent' },
              timeout: 60_000,
            },
            (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
          );
        });
      const stopped = await run('stop', nobody);
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.match(stopped.stdout, /stopped/);
      const status = await run('status', nobody);
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, /last action: stop by cli:uid-10001 (today|\w{3} \d+ \w{3}) \d\d:\d\d /);
    } finally {
      await handle.terminate('test over').catch(() => undefined);
    }
  });

  it('schedules ensure creates the Schedules, then updates them in place', async function () {
    const ids = [MORNING_RESET_SCHEDULE_ID, RECONCILE_SCHEDULE_ID];
    await Promise.all(
      ids.map((id) =>
        env.client.schedule
          .getHandle(id)
          .delete()
          .catch(() => undefined),
      ),
    );
    try {
      const first = await devenv('schedules', 'ensure');
      assert.equal(first.code, 0, first.stderr);
      assert.equal(
        first.stdout.trim(),
        'morningReset: created\nsavingsSummary: off (SAVINGS_SUMMARY off)\nreconcile: created\nawsInventory: off (AWS_REGIONS unset)',
      );
      const second = await devenv('--json', 'schedules', 'ensure');
      assert.deepEqual(JSON.parse(second.stdout), {
        morningReset: 'updated',
        savingsSummary: 'off (SAVINGS_SUMMARY off)',
        reconcile: 'updated',
        awsInventory: 'off (AWS_REGIONS unset)',
      });
      const reconcile = await env.client.schedule.getHandle(RECONCILE_SCHEDULE_ID).describe();
      assert.equal(reconcile.action.type === 'startWorkflow' && reconcile.action.taskQueue, taskQueue);
    } finally {
      // Other suites share this server: leave no Schedule firing into a queue nobody polls.
      await Promise.all(
        ids.map((id) =>
          env.client.schedule
            .getHandle(id)
            .delete()
            .catch(() => undefined),
        ),
      );
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
