/**
 * `npm start` as a user runs it: the real process, its own local Temporal dev server,
 * the worker and the API, then a clean shutdown on SIGTERM. It runs with DRY_RUN=true
 * against the test cluster, as the README suggests for a first look: the start-up
 * reconcile logs what it would enrol and leave alone, and why, and enrols nothing. And a
 * bad setting stops it before anything starts, naming the variable.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { Client, Connection } from '@temporalio/client';
import { DEMO_NAMESPACES } from '../src/local-cluster';
import { cacheDir } from '../src/temporal/binaries';
import { MORNING_RESET_SCHEDULE_ID } from '../src/temporal/setup';
import { testCluster } from './support/kube';
import { freePort, startService, waitFor } from './support/service';
import { eventually, SlackRecorder, slackSignature, visibleText } from './support/slack';

const ROOT = join(__dirname, '..');

/** Processes whose command line names `dir`: what a control plane kept there runs as. */
function processesNaming(dir: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('npm start', function () {
  this.timeout(180_000);

  it('starts a local Temporal dev server, the worker and the API, prints where each listens, and stops cleanly', async function () {
    const cluster = await testCluster();
    const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    const labelled = `main-labelled-${process.pid}`;
    const unlabelled = `main-unlabelled-${process.pid}`;
    await core.createNamespace({ body: { metadata: { name: labelled, labels: { scheduler: 'enabled' } } } });
    await core.createNamespace({ body: { metadata: { name: unlabelled } } });
    const [temporalPort, uiPort, apiPort, sdkMetricsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const { child, output } = startService({
      KUBECONFIG: cluster.kubeConfigPath,
      DRY_RUN: 'true',
      TEMPORAL_ADDRESS: '',
      TEMPORAL_DEV_PORT: String(temporalPort),
      TEMPORAL_UI_PORT: String(uiPort),
      TEMPORAL_DEV_DB_FILE: join(mkdtempSync(join(tmpdir(), 'devenv-start-')), 'temporal.db'),
      API_PORT: String(apiPort),
      TEMPORAL_METRICS_PORT: String(sdkMetricsPort),
      TIME_ZONE: 'Europe/Berlin',
      RESET_TIME: '08:45',
    });
    try {
      await waitFor('the ready banner', () => output().includes('API           http://') || child.exitCode !== null, 150_000);
      assert.equal(child.exitCode, null, `service exited:\n${output()}`);
      assert.match(output(), new RegExp(`Temporal +127\\.0\\.0\\.1:${temporalPort} \\(namespace default\\), local dev server`));
      assert.match(output(), new RegExp(`Temporal UI +http://127\\.0\\.0\\.1:${uiPort}`));
      assert.match(output(), /Worker +task queue devenv-scheduler/);
      assert.match(output(), new RegExp(`Kubernetes +https://127\\.0\\.0\\.1:\\d+ \\(context ${cluster.kubeConfig.getCurrentContext()}, `));
      assert.match(output(), /Dry run +on \(DRY_RUN=true\): nothing in Kubernetes or AWS is changed/);

      const health = await fetch(`http://127.0.0.1:${apiPort}/healthz`);
      assert.equal(health.status, 200);
      const ready = await fetch(`http://127.0.0.1:${apiPort}/readyz`);
      assert.deepEqual(await ready.json(), { status: 'ready', temporal: 'reachable' });
      const ui = await fetch(`http://127.0.0.1:${uiPort}/`);
      assert.equal(ui.status, 200, 'the Temporal Web UI answers');

      const connection = await Connection.connect({ address: `127.0.0.1:${temporalPort}` });
      try {
        const schedule = await new Client({ connection }).schedule.getHandle(MORNING_RESET_SCHEDULE_ID).describe();
        const next = schedule.info.nextActionTimes[0]!;
        assert.equal(
          new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', hour: '2-digit', minute: '2-digit' }).format(next),
          '08:45',
        );
      } finally {
        await connection.close();
      }

      // DRY_RUN: the start-up reconcile only says what it would do, one line per namespace.
      const planned = (namespace: string, action: string, reason: string) =>
        new RegExp(`"namespace":"${namespace}","action":"${action}","reason":"${reason}","msg":"reconciler \\(dry run\\): ${action}"`);
      await waitFor('the dry-run plan in the log', () => /reconciler \(dry run\): planned, nothing changed/.test(output()), 60_000);
      assert.match(output(), planned(labelled, 'enrol', 'label scheduler=enabled'));
      assert.match(output(), planned(unlabelled, 'leave-alone', 'unlabelled: label scheduler=enabled to enrol'));
      assert.match(
        output(),
        planned(
          'default',
          'leave-alone',
          'infrastructure namespace \\(INFRASTRUCTURE_NAMESPACES entry \\\\"default\\\\"\\): label scheduler=enabled to enrol',
        ),
      );
      {
        const connection = await Connection.connect({ address: `127.0.0.1:${temporalPort}` });
        try {
          const environments = await new Client({ connection }).workflow.count(`WorkflowType = 'environmentWorkflow'`);
          assert.equal(environments.count, 0, 'nothing enrolled');
        } finally {
          await connection.close();
        }
      }

      const metrics = await (await fetch(`http://127.0.0.1:${apiPort}/metrics`)).text();
      assert.match(metrics, /devenv_http_requests_total\{[^}]*route="\/readyz"[^}]*status="200"[^}]*\} 1/);
      assert.match(metrics, /devenv_environments\{phase="running"[^}]*\} \d+/, 'environments by phase, from visibility');
      const sdkMetrics = await (await fetch(`http://127.0.0.1:${sdkMetricsPort}/metrics`)).text();
      assert.match(sdkMetrics, /^temporal_\w+/m, "the Temporal SDK's own metrics");

      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      assert.equal(code, 0, output());
      assert.match(output(), /"msg":"stopped"/);
      // The log is JSON lines, the SDK's own included; only the banner is for people.
      assert.doesNotMatch(output(), /modules by path|webpack [\d.]+ compiled/, 'no webpack module statistics');
      const notJson = output()
        .split('\n')
        .filter((line) => line.trim() !== '' && !/^ {2}\S/.test(line))
        .filter((line) => {
          try {
            return typeof JSON.parse(line) !== 'object';
          } catch {
            return true;
          }
        });
      assert.deepEqual(notJson, []);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('a Slack command in flight at SIGTERM is answered before the service lets go of Temporal', async function () {
    const secret = 'main-test-signing-secret-0123';
    const [temporalPort, uiPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    const { child, output } = startService({
      TEMPORAL_ADDRESS: '',
      TEMPORAL_DEV_PORT: String(temporalPort),
      TEMPORAL_UI_PORT: String(uiPort),
      TEMPORAL_DEV_DB_FILE: join(mkdtempSync(join(tmpdir(), 'devenv-close-')), 'temporal.db'),
      API_PORT: String(apiPort),
      TEMPORAL_METRICS_PORT: 'off',
      SLACK_SIGNING_SECRET: secret,
      SLACK_RESPONSE_URL_ORIGINS: 'http://127.0.0.1:1',
    });
    try {
      await waitFor('the ready banner', () => output().includes('API           http://') || child.exitCode !== null, 150_000);
      assert.equal(child.exitCode, null, `service exited:\n${output()}`);

      // A signed `/devenv list` whose body is still arriving when SIGTERM comes: a request in flight.
      const body = new URLSearchParams({
        user_id: 'U0ALICE0001',
        channel_id: 'C0DEVS0001',
        command: '/devenv',
        text: 'list',
        response_url: 'http://127.0.0.1:1/unused',
      }).toString();
      const timestamp = Math.floor(Date.now() / 1000);
      const request = http.request(`http://127.0.0.1:${apiPort}/slack/commands`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'content-length': Buffer.byteLength(body),
          'x-slack-request-timestamp': String(timestamp),
          'x-slack-signature': slackSignature(secret, timestamp, body),
        },
      });
      const answered = new Promise<{ status: number; text: string }>((resolve, reject) => {
        request.on('response', (response) => {
          let text = '';
          response.on('data', (chunk: Buffer) => (text += chunk.toString()));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
        });
        request.on('error', reject);
      });
      request.write(body.slice(0, 20));
      request.flushHeaders();
      await new Promise((resolve) => setTimeout(resolve, 500));

      child.kill('SIGTERM');
      await waitFor('the shutdown to begin', () => output().includes('"msg":"shutting down"'), 10_000);
      // Today's code lets go of Temporal at once; give it the time to (or 2 s), then finish the request.
      const began = Date.now();
      await waitFor('the service to stop or 2 s', () => output().includes('"msg":"stopped"') || Date.now() - began > 2000, 10_000);
      request.end(body.slice(20));
      const { status, text } = await answered;
      assert.equal(status, 200, text);
      const reply = JSON.parse(text) as Record<string, unknown>;
      assert.doesNotMatch(visibleText(reply), /internal error/, 'answered with what it asked for');
      assert.match(visibleText(reply), /^No environments are enrolled yet\.|environments?\*/);

      const [code] = (await once(child, 'exit')) as [number | null];
      assert.equal(code, 0, output());
      assert.ok(output().indexOf('"msg":"stopped"') > output().indexOf('"msg":"Slack command"'), 'it stopped after the answer');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('with SLACK_APP_TOKEN, takes commands over Socket Mode with no endpoint of its own; a token Slack refuses stops it at start-up with one line', async function () {
    const recorder = await new SlackRecorder().start();
    const settings = async () => ({
      TEMPORAL_ADDRESS: '',
      TEMPORAL_DEV_PORT: String(await freePort()),
      TEMPORAL_UI_PORT: String(await freePort()),
      TEMPORAL_DEV_DB_FILE: join(mkdtempSync(join(tmpdir(), 'devenv-socket-')), 'temporal.db'),
      API_PORT: String(await freePort()),
      TEMPORAL_METRICS_PORT: 'off',
      SLACK_API_URL: `${recorder.url}/api/`,
      SLACK_RESPONSE_URL_ORIGINS: recorder.url,
    });
    try {
      const { child, output } = startService({ ...(await settings()), SLACK_APP_TOKEN: recorder.appToken });
      try {
        await waitFor('the ready banner', () => output().includes('API           http://') || child.exitCode !== null, 150_000);
        assert.equal(child.exitCode, null, `service exited:\n${output()}`);
        assert.match(output(), /Slack +commands over Socket Mode \(connected\); warnings to the log/);
        const { payload } = await recorder.envelope('slash_commands', {
          user_id: 'U0ALICE0001',
          channel_id: 'C0DEVS0001',
          command: '/devenv',
          text: 'help',
          response_url: recorder.responseUrl().url,
        });
        assert.match(visibleText(payload ?? {}), /\/devenv start <namespace>/);
        child.kill('SIGTERM');
        const [code] = (await once(child, 'exit')) as [number | null];
        assert.equal(code, 0, output());
        assert.ok(!output().includes(recorder.appToken), 'the app-level token is never printed');
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }

      const { child: refused, output: said } = startService({ ...(await settings()), SLACK_APP_TOKEN: 'xapp-1-revoked-token' });
      const [code] = (await once(refused, 'exit')) as [number | null];
      assert.equal(code, 2, said());
      assert.match(said(), /^ {2}- SLACK_APP_TOKEN \(value hidden\): Slack Socket Mode could not connect: invalid_auth$/m);
      assert.ok(!said().includes('xapp-1-revoked-token'));
      assert.equal(
        recorder.posts.filter((p) => p.method === 'apps.connections.open' && p.authorization?.includes('revoked')).length,
        1,
        'asked once, no retry loop',
      );
    } finally {
      await recorder.stop();
    }
  });

  it('with no cluster reachable, the banner says so and how to point at one, and nothing repeats every few seconds', async function () {
    const dir = mkdtempSync(join(tmpdir(), 'devenv-nocluster-'));
    const deadPort = await freePort();
    const kubeConfigPath = join(dir, 'kubeconfig');
    writeFileSync(
      kubeConfigPath,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'gone', cluster: { server: `https://127.0.0.1:${deadPort}` } }],
        users: [{ name: 'me', user: { token: 'unused' } }],
        contexts: [{ name: 'gone', context: { cluster: 'gone', user: 'me' } }],
        'current-context': 'gone',
      }),
    );
    const { child, output } = startService({
      KUBECONFIG: kubeConfigPath,
      TEMPORAL_ADDRESS: '',
      TEMPORAL_DEV_PORT: String(await freePort()),
      TEMPORAL_UI_PORT: String(await freePort()),
      TEMPORAL_DEV_DB_FILE: join(dir, 'temporal.db'),
      API_PORT: String(await freePort()),
      TEMPORAL_METRICS_PORT: 'off',
    });
    try {
      await waitFor('the ready banner', () => output().includes('API           http://') || child.exitCode !== null, 150_000);
      assert.equal(child.exitCode, null, `service exited:\n${output()}`);
      assert.ok(
        output().includes(
          `  Kubernetes    no cluster reachable at https://127.0.0.1:${deadPort} (ECONNREFUSED, context gone from KUBECONFIG=${kubeConfigPath}); start it, or set KUBECONFIG to another`,
        ),
        output(),
      );
      // The start-up reconcile fails once; its retries (5 s, then 10 s, ...) would repeat the failure.
      // (The Schedule's own run, at the next ten-minute boundary, may fall in this window too:
      // a run of its own, attempt 1.)
      await new Promise((resolve) => setTimeout(resolve, 20_000));
      const attempts = output()
        .split('\n')
        .filter((line) => line.includes('"msg":"Activity failed"'))
        .map((line) => Number((JSON.parse(line) as { attempt?: number }).attempt ?? 0));
      assert.ok(attempts.length >= 1, `the reconcile did not run:\n${output()}`);
      assert.deepEqual(
        attempts.filter((attempt) => attempt !== 1),
        [],
        `the failure was retried:\n${output()}`,
      );
      assert.equal(child.exitCode, null);
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }

    const { child: refused, output: said } = startService({ KUBECONFIG: join(dir, 'no-such-file') });
    const [code] = (await once(refused, 'exit')) as [number | null];
    assert.equal(code, 2, said());
    assert.match(said(), /^ {2}- KUBECONFIG=".*no-such-file": ENOENT: no such file or directory.*\(unset it to use ~\/\.kube\/config\)$/m);
    assert.doesNotMatch(said(), /Temporal dev server/);
  });

  it('a second instance: joins the Temporal on TEMPORAL_DEV_PORT and says so; a port in use is named in one line, and the dev server it started is stopped', async function () {
    const dir = mkdtempSync(join(tmpdir(), 'devenv-second-'));
    const [temporalPort, apiPort, sdkMetricsPort] = [await freePort(), await freePort(), await freePort()];
    const common = { KUBECONFIG: join(dir, 'none'), TEMPORAL_ADDRESS: '', TEMPORAL_UI_PORT: String(await freePort()) };
    const nowhere = `https://127.0.0.1:${await freePort()}`;
    writeFileSync(
      common.KUBECONFIG,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'gone', cluster: { server: nowhere } }],
        users: [{ name: 'me', user: { token: 'unused' } }],
        contexts: [{ name: 'gone', context: { cluster: 'gone', user: 'me' } }],
        'current-context': 'gone',
      }),
    );
    const first = startService({
      ...common,
      TEMPORAL_DEV_PORT: String(temporalPort),
      TEMPORAL_DEV_DB_FILE: join(dir, 'first.db'),
      API_PORT: String(apiPort),
      TEMPORAL_METRICS_PORT: String(sdkMetricsPort),
    });
    try {
      await waitFor('the first banner', () => first.output().includes('API           http://') || first.child.exitCode !== null, 150_000);
      assert.equal(first.child.exitCode, null, first.output());

      const second = startService({
        ...common,
        TEMPORAL_DEV_PORT: String(temporalPort),
        API_PORT: String(await freePort()),
        TEMPORAL_METRICS_PORT: 'off',
      });
      try {
        await waitFor(
          'the second banner',
          () => second.output().includes('API           http://') || second.child.exitCode !== null,
          150_000,
        );
        assert.equal(second.child.exitCode, null, second.output());
        assert.match(
          second.output(),
          new RegExp(
            `Temporal +127\\.0\\.0\\.1:${temporalPort} \\(namespace default\\), a Temporal already listening on TEMPORAL_DEV_PORT, joined: not started here`,
          ),
        );
        assert.doesNotMatch(second.output(), /Temporal UI|local dev server/);
      } finally {
        second.child.kill('SIGTERM');
        await once(second.child, 'exit');
      }

      const metrics = startService({
        ...common,
        TEMPORAL_DEV_PORT: String(await freePort()),
        API_PORT: String(await freePort()),
        TEMPORAL_METRICS_PORT: String(sdkMetricsPort),
      });
      const [metricsCode] = (await once(metrics.child, 'exit')) as [number | null];
      assert.equal(metricsCode, 2, metrics.output());
      assert.match(
        metrics.output(),
        new RegExp(
          `^ {2}- TEMPORAL_METRICS_PORT=${sdkMetricsPort}: .*Address already in use.*; set TEMPORAL_METRICS_PORT to a free port, or to off$`,
          'm',
        ),
      );

      const held = startService({
        ...common,
        TEMPORAL_DEV_PORT: String(await freePort()),
        TEMPORAL_DEV_DB_FILE: join(dir, 'ui.db'),
        API_PORT: String(await freePort()),
        TEMPORAL_METRICS_PORT: 'off',
      });
      const [uiCode] = (await once(held.child, 'exit')) as [number | null];
      assert.equal(uiCode, 2, held.output());
      assert.match(
        held.output(),
        new RegExp(
          `^ {2}- TEMPORAL_UI_PORT=${common.TEMPORAL_UI_PORT}: in use by another process; set TEMPORAL_UI_PORT to a free port$`,
          'm',
        ),
      );

      const ownDevPort = await freePort();
      const api = startService({
        ...common,
        TEMPORAL_UI_PORT: String(await freePort()),
        TEMPORAL_DEV_PORT: String(ownDevPort),
        TEMPORAL_DEV_DB_FILE: join(dir, 'api.db'),
        API_PORT: String(apiPort),
        TEMPORAL_METRICS_PORT: 'off',
      });
      const [apiCode] = (await once(api.child, 'exit')) as [number | null];
      assert.equal(apiCode, 2, api.output());
      assert.match(api.output(), new RegExp(`^ {2}- API_PORT=${apiPort}: in use by another process; set API_PORT to a free port$`, 'm'));
      assert.doesNotMatch(api.output(), /"stack"/);
      const devServerLeft = await new Promise<boolean>((resolve) => {
        const socket = connect({ host: '127.0.0.1', port: ownDevPort });
        socket.once('connect', () => (socket.destroy(), resolve(true)));
        socket.once('error', () => resolve(false));
      });
      assert.equal(devServerLeft, false, 'the dev server it started is stopped');
    } finally {
      first.child.kill('SIGTERM');
      await once(first.child, 'exit');
    }
  });

  it('refuses to start on bad settings, with one line per bad value naming the variable', async function () {
    const { child, output } = startService({ SHUTDOWN_TIME: '7pm', TIME_ZONE: 'Mars/Olympus', WARNING_OFFSETS: '60,-5' });
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 2);
    assert.match(output(), /SHUTDOWN_TIME="7pm": must be a 24-hour time such as 19:00/);
    assert.match(output(), /TIME_ZONE="Mars\/Olympus": must be an IANA time zone/);
    assert.match(output(), /WARNING_OFFSETS="60,-5": must be a comma-separated list of whole minutes/);
    assert.doesNotMatch(output(), /Temporal dev server/);
  });
  it('with no kubeconfig, brings up the local control plane with sample environments, enrols them, prints its KUBECONFIG, and leaves no process behind on Ctrl-C', async function () {
    this.timeout(600_000);
    // A newcomer's machine: an empty home (no ~/.kube/config), no KUBECONFIG; the tools already in the cache.
    const home = mkdtempSync(join(tmpdir(), 'devenv-newcomer-'));
    const localDir = join(home, 'local-cluster');
    const temporalPort = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: home,
      DEVENV_CACHE_DIR: cacheDir(),
      LOCAL_CLUSTER_DIR: localDir,
      TEMPORAL_ADDRESS: '',
      TEMPORAL_DEV_PORT: String(temporalPort),
      TEMPORAL_UI_PORT: String(await freePort()),
      TEMPORAL_DEV_DB_FILE: join(home, 'temporal.db'),
      API_PORT: String(await freePort()),
      TEMPORAL_METRICS_PORT: 'off',
      LOG_LEVEL: 'info',
    };
    for (const name of ['KUBECONFIG', 'LOCAL_CLUSTER', 'KUBERNETES_SERVICE_HOST']) delete env[name];
    // Its own process group, as a terminal runs it: Ctrl-C is SIGINT to the whole group.
    const child = spawn('npm', ['start'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = once(child, 'exit');
    let second: ReturnType<typeof startService> | undefined;
    try {
      await waitFor('the ready banner', () => output.includes('API           http://') || child.exitCode !== null, 300_000);
      assert.equal(child.exitCode, null, `npm start exited:\n${output}`);
      const line = /^ {2}Kubernetes +(.*)$/m.exec(output)?.[1] ?? '';
      assert.match(
        line,
        /^https:\/\/127\.0\.0\.1:\d+ \(context devenv-local, v[\d.]+\), local control plane \(no kubeconfig found/,
        output,
      );
      const kubeConfigPath = / KUBECONFIG=(\S+)$/.exec(line)?.[1];
      assert.equal(kubeConfigPath, join(localDir, 'kubeconfig'), line);
      assert.match(output, /^ {2}Demo +demo-1, demo-2, demo-3 \(labelled scheduler=enabled, so enrolled\); demo-1 stops at \d\d:\d\d UTC/m);

      // The kubeconfig it printed works, as kubectl would use it: the sample namespaces and their workloads are there.
      const kubeConfig = new KubeConfig();
      kubeConfig.loadFromFile(kubeConfigPath!);
      const core = kubeConfig.makeApiClient(CoreV1Api);
      const apps = kubeConfig.makeApiClient(AppsV1Api);
      const namespaces = (await core.listNamespace()).items.map((ns) => ns.metadata!.name!);
      for (const ns of DEMO_NAMESPACES) assert.ok(namespaces.includes(ns), `${ns} in ${namespaces.join(', ')}`);
      const replicas = async () =>
        Object.fromEntries(
          (await apps.listNamespacedDeployment({ namespace: 'demo-1' })).items.map((d) => [d.metadata!.name!, d.spec!.replicas]),
        );
      assert.deepEqual(await replicas(), { api: 1, web: 2 });
      // Controllers and kwok's nodes run: the Pods become Ready, as `kubectl get deploy -A` would show.
      await eventually(
        'demo-1/web ready',
        async () =>
          (await apps.readNamespacedDeployment({ namespace: 'demo-1', name: 'web' })).status?.readyReplicas === 2 ? true : undefined,
        90_000,
      );

      // Enrolled: `devenv status demo-1` answers, and the environment was warned ahead of its shutdown soon.
      const devenv = (...args: string[]) =>
        promisify(execFile)(process.execPath, [join(ROOT, 'bin', 'devenv.js'), ...args], {
          cwd: ROOT,
          env: { ...env, TEMPORAL_DEV_PORT: String(temporalPort) },
        });
      const status = await eventually(
        'demo-1 enrolled',
        () =>
          devenv('status', 'demo-1').then(
            ({ stdout }) => (stdout.startsWith('demo-1: running') ? stdout : undefined),
            () => undefined,
          ),
        60_000,
      );
      assert.match(status, /next shutdown: today \d\d:\d\d UTC, in 1\dm/, status);
      await waitFor('the warning for demo-1', () => output.includes('warning for demo-1'), 60_000);
      for (const ns of ['demo-2', 'demo-3']) assert.match((await devenv('status', ns)).stdout, new RegExp(`^${ns}: running`));

      // Stopped and started again, on the cluster it runs.
      await devenv('stop', 'demo-1');
      assert.deepEqual(await replicas(), { api: 0, web: 0 });
      await devenv('start', 'demo-1');
      assert.deepEqual(await replicas(), { api: 1, web: 2 });

      const started = JSON.parse(readFileSync(join(localDir, 'owner.json'), 'utf8')) as { pid: number; children: number[] };
      // A second start on the same directory joins this control plane, says so, and leaves it running when it stops
      // (the API role alone, which needs no workflow bundle: the same start-up of the cluster, sooner).
      second = startService({
        SERVICE_ROLE: 'api',
        HOME: home,
        DEVENV_CACHE_DIR: cacheDir(),
        KUBECONFIG: '',
        LOCAL_CLUSTER: 'auto',
        LOCAL_CLUSTER_DIR: localDir,
        TEMPORAL_ADDRESS: '',
        TEMPORAL_DEV_PORT: String(temporalPort),
        API_PORT: String(await freePort()),
        TEMPORAL_METRICS_PORT: 'off',
      });
      const joined = second;
      await waitFor(
        'the second banner',
        () => joined.output().includes('API           http://') || joined.child.exitCode !== null,
        150_000,
      );
      assert.match(
        joined.output(),
        new RegExp(
          `Kubernetes +https://127\\.0\\.0\\.1:\\d+ .*the local control plane of another npm start \\(pid ${started.pid}\\), joined: left running`,
        ),
        joined.output(),
      );
      assert.doesNotMatch(joined.output(), /^ {2}Demo /m, "the sample environments are the first start's");
      joined.child.kill('SIGTERM');
      await once(joined.child, 'exit');
      assert.equal((await core.listNamespace()).items.length >= DEMO_NAMESPACES.length, true, 'still answering after the second stopped');

      assert.equal(started.children.length, 5, 'etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok');
      assert.deepEqual(processesNaming(localDir).sort(), [...started.children].sort());

      process.kill(-child.pid!, 'SIGINT');
      const [code] = (await exited) as [number | null];
      assert.equal(code, 0, output);
      assert.match(output, /"msg":"stopped"/);
      assert.deepEqual(processesNaming(localDir), [], 'no process of the control plane is left');
      assert.ok(!existsSync(join(localDir, 'owner.json')));
    } finally {
      if (second?.child.exitCode === null) second.child.kill('SIGKILL');
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
      for (const pid of processesNaming(localDir)) process.kill(pid, 'SIGKILL');
    }
  });

  it('with no kubeconfig, and LOCAL_CLUSTER=off or no tools for a local control plane, the banner says there is no cluster and how to get one, and nothing repeats', async function () {
    const home = mkdtempSync(join(tmpdir(), 'devenv-nokube-'));
    const start = async (settings: NodeJS.ProcessEnv) =>
      startService({
        HOME: home,
        KUBECONFIG: '',
        TEMPORAL_ADDRESS: '',
        TEMPORAL_DEV_PORT: String(await freePort()),
        TEMPORAL_UI_PORT: String(await freePort()),
        TEMPORAL_DEV_DB_FILE: join(mkdtempSync(join(home, 'temporal-')), 'temporal.db'),
        API_PORT: String(await freePort()),
        TEMPORAL_METRICS_PORT: 'off',
        ...settings,
      });
    const off = await start({ DEVENV_CACHE_DIR: cacheDir(), LOCAL_CLUSTER: 'off', LOCAL_CLUSTER_DIR: join(home, 'off') });
    // A cache without the Kubernetes binaries (the Temporal CLI from the real one).
    const emptyCache = mkdtempSync(join(home, 'cache-'));
    const noTools = await start({
      DEVENV_CACHE_DIR: emptyCache,
      TEMPORAL_CLI_PATH: join(cacheDir(), 'temporal-venv', 'bin', 'temporal'),
      LOCAL_CLUSTER: 'auto',
      LOCAL_CLUSTER_DIR: join(home, 'no-tools'),
    });
    try {
      for (const { child, output } of [off, noTools]) {
        await waitFor('the ready banner', () => output().includes('API           http://') || child.exitCode !== null, 150_000);
        assert.equal(child.exitCode, null, `service exited:\n${output()}`);
        assert.doesNotMatch(output(), /^ {2}Demo /m);
      }
      assert.ok(
        off
          .output()
          .includes(
            "  Kubernetes    no cluster: no kubeconfig (KUBECONFIG unset, no ~/.kube/config); set KUBECONFIG to a cluster's kubeconfig (kind, minikube, k3d or your own), or LOCAL_CLUSTER=auto for a local control plane with sample environments (LOCAL_CLUSTER=off now), and start again\n",
          ),
        off.output(),
      );
      assert.match(
        noTools.output(),
        new RegExp(
          `^ {2}Kubernetes {4}no cluster: no kubeconfig \\(KUBECONFIG unset, no ~/\\.kube/config\\), and no local control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok not in ${emptyCache}/kube-[\\d.]+/bin \\(\`bash scripts/setup-kube\\.sh\` builds them once, with Go\\); or set KUBECONFIG to a cluster's kubeconfig .*, and start again$`,
          'm',
        ),
        noTools.output(),
      );
      await new Promise((resolve) => setTimeout(resolve, 20_000));
      for (const { child, output } of [off, noTools]) {
        // Nothing to reconcile without a cluster: no failure at start-up, let alone one retried every few seconds.
        // (The Schedule's own run, at the next ten-minute boundary, may fall in this window: a run of its own, attempt 1.)
        const attempts = output()
          .split('\n')
          .filter((line) => line.includes('"msg":"Activity failed"'))
          .map((line) => Number((JSON.parse(line) as { attempt?: number }).attempt ?? 0));
        assert.deepEqual(
          attempts.filter((attempt) => attempt !== 1),
          [],
          output(),
        );
        assert.equal(child.exitCode, null);
      }
      assert.ok(!existsSync(join(home, 'off')) && !existsSync(join(home, 'no-tools')), 'no control plane was started');
    } finally {
      for (const { child } of [off, noTools]) {
        child.kill('SIGTERM');
        if (child.exitCode === null) await once(child, 'exit');
      }
    }
  });
});
