/**
 * The whole service wired as `npm start` wires it, with Slack and a cluster configured:
 * signed slash commands over real HTTP into the real process, its own Temporal dev server
 * and worker behind it, acting on the test kube-apiserver, and its announcements posted to
 * a recording Slack Web API in the environment's own channel. Its namespace is labelled
 * `scheduler=enabled` before the service first runs, so the start-up reconcile enrols it;
 * the unlabelled one next to it is left alone.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import type { ReconcileReport } from '../src/activities/contracts';
import { ORIGINAL_REPLICAS } from '../src/activities/kubernetes/annotations';
import { SLACK_CHANNEL_ANNOTATION } from '../src/slack/ids';
import { environmentWorkflowId } from '../src/workflows';
import { testCluster } from './support/kube';
import { freePort, startService, waitFor } from './support/service';
import { eventually, postSigned, SlackRecorder, visibleText } from './support/slack';
import { postJsonOverTls, servingCertificate } from './support/tls';

const SECRET = 'e2e-signing-secret';
const TOKEN = 'xoxb-e2e-bot-token';
const TEAM_CHANNEL = 'C0TEAMA0001';
const DEFAULT_CHANNEL = 'C0DEFAULT01';
const ALICE = 'U0ALICE0001';
const MALLORY = 'U0MALLORY01';
const CLUSTER = 'e2e-cluster';

describe('the service with Slack and Kubernetes configured (npm start)', function () {
  this.timeout(240_000);
  // Labelled before the service first runs: enrolled. The one next to it is not labelled: left alone.
  const namespace = `team-${process.pid}`;
  const unlabelled = `team-unlabelled-${process.pid}`;
  let recorder: SlackRecorder;
  let service: ReturnType<typeof startService>;
  let apiUrl: string;
  let temporalAddress: string;
  let apps: AppsV1Api;
  let webhookUrl: string;
  const tls = servingCertificate();

  before(async function () {
    this.timeout(300_000);
    const cluster = await testCluster();
    apps = cluster.kubeConfig.makeApiClient(AppsV1Api);
    const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespace({
      body: { metadata: { name: namespace, labels: { scheduler: 'enabled' }, annotations: { [SLACK_CHANNEL_ANNOTATION]: TEAM_CHANNEL } } },
    });
    await core.createNamespace({ body: { metadata: { name: unlabelled } } });
    await apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name: 'api' },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: 'api' } },
          template: { metadata: { labels: { app: 'api' } }, spec: { containers: [{ name: 'api', image: 'busybox:1.36' }] } },
        },
      },
    });
    recorder = await new SlackRecorder().start();

    const [temporalPort, uiPort, apiPort, webhookPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    webhookUrl = `https://127.0.0.1:${webhookPort}/admission/namespaces`;
    temporalAddress = `127.0.0.1:${temporalPort}`;
    apiUrl = `http://127.0.0.1:${apiPort}`;
    service = startService({
      TEMPORAL_ADDRESS: '',
      TEMPORAL_DEV_PORT: String(temporalPort),
      TEMPORAL_UI_PORT: String(uiPort),
      TEMPORAL_DEV_DB_FILE: join(mkdtempSync(join(tmpdir(), 'devenv-e2e-')), 'temporal.db'),
      API_PORT: String(apiPort),
      KUBECONFIG: cluster.kubeConfigPath,
      SLACK_SIGNING_SECRET: SECRET,
      SLACK_BOT_TOKEN: TOKEN,
      SLACK_DEFAULT_CHANNEL: DEFAULT_CHANNEL,
      SLACK_API_URL: `${recorder.url}/api/`,
      SLACK_RESPONSE_URL_ORIGINS: recorder.url,
      SLACK_ALLOW_CONTROL_USERS: ALICE,
      AWS_REGIONS: '',
      // The shared apiserver has no controllers: nothing it wakes ever reports Ready.
      START_READY_TIMEOUT_SECONDS: '0',
      // Scoped like one of several clusters sharing a Temporal namespace: ids, visibility and the metrics all follow it.
      CLUSTER_NAME: CLUSTER,
      TEMPORAL_METRICS_PORT: 'off',
      WEBHOOK_PORT: String(webhookPort),
      WEBHOOK_TLS_CERT: tls.certFile,
      WEBHOOK_TLS_KEY: tls.keyFile,
    });
    await waitFor('the ready banner', () => service.output().includes('Webhook       ') || service.child.exitCode !== null, 150_000);
    assert.equal(service.child.exitCode, null, `service exited:\n${service.output()}`);

    // No webhook saw the namespaces being made: the reconciler the service runs at start-up enrols the labelled one.
    const connection = await Connection.connect({ address: temporalAddress });
    try {
      const handle = new Client({ connection }).workflow.getHandle(environmentWorkflowId(namespace, CLUSTER));
      await eventually(
        'the reconciler to enrol the namespace',
        () =>
          handle.describe().then(
            (d) => (d.status.name === 'RUNNING' ? true : undefined),
            () => undefined,
          ),
        60_000,
      );
    } finally {
      await connection.close();
    }
  });

  it('the start-up reconcile enrolled the labelled namespace only, and says why it left the others alone', async function () {
    const connection = await Connection.connect({ address: temporalAddress });
    try {
      const client = new Client({ connection });
      const report = await eventually(
        'the start-up reconcile to finish',
        async () => {
          for await (const run of client.workflow.list({ query: `WorkflowType = 'reconcileWorkflow' AND ExecutionStatus = 'Completed'` })) {
            return (await client.workflow.getHandle(run.workflowId, run.runId).result()) as ReconcileReport;
          }
          return undefined;
        },
        60_000,
      );
      assert.ok(report.enrolled.includes(namespace), JSON.stringify(report.enrolled));
      assert.ok(!report.enrolled.includes(unlabelled) && !report.enrolled.includes('default'), JSON.stringify(report.enrolled));
      assert.deepEqual(
        report.decisions.find((d) => d.namespace === unlabelled),
        { namespace: unlabelled, action: 'leave-alone', reason: 'unlabelled: label scheduler=enabled to enrol' },
      );
      assert.equal(report.decisions.find((d) => d.namespace === 'default')?.action, 'leave-alone');
      await assert.rejects(client.workflow.getHandle(environmentWorkflowId(unlabelled, CLUSTER)).describe(), WorkflowNotFoundError);
    } finally {
      await connection.close();
    }
  });

  after(async function () {
    if (service?.child.exitCode === null) {
      service.child.kill('SIGTERM');
      await once(service.child, 'exit');
    }
    await recorder?.stop();
  });

  async function devenv(text: string, user = ALICE) {
    const { id, url } = recorder.responseUrl();
    const response = await postSigned(`${apiUrl}/slack/commands`, SECRET, {
      team_id: 'T0TEAM0001',
      channel_id: TEAM_CHANNEL,
      user_id: user,
      command: '/devenv',
      text,
      response_url: url,
    });
    assert.equal(response.status, 200, `/devenv ${text}: HTTP ${response.status} ${JSON.stringify(response.body)}\n${service.output()}`);
    return {
      text: visibleText(response.body),
      later: (pattern: RegExp) =>
        eventually(
          `a reply matching ${pattern}`,
          () =>
            recorder
              .responses(id)
              .map(visibleText)
              .find((t) => pattern.test(t)),
          60_000,
        ),
    };
  }

  const replicas = async () => (await apps.readNamespacedDeployment({ namespace, name: 'api' })).spec?.replicas;

  it('says which Slack and cluster wiring it runs with', function () {
    assert.match(
      service.output(),
      new RegExp(
        `Slack +commands at ${apiUrl.replace(/\./g, '\\.')}/slack/commands; warnings to Slack \\(default channel ${DEFAULT_CHANNEL}\\)`,
      ),
    );
  });

  it('serves the admission webhook over TLS with the configured certificate', async function () {
    assert.match(service.output(), new RegExp(`Webhook +${webhookUrl.replace(/\./g, '\\.')}`));
    const response = await postJsonOverTls(
      webhookUrl,
      '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"e2e-1"}}',
      tls.ca,
    );
    assert.equal(response.status, 200);
    assert.deepEqual(JSON.parse(response.text).response.uid, 'e2e-1');
    assert.equal(JSON.parse(response.text).response.allowed, true);
  });

  it('status shows the workloads read from the cluster', async function () {
    const reply = await devenv(`status ${namespace}`);
    const text = /Deployment\/api/.test(reply.text) ? reply.text : await reply.later(/Deployment\/api/);
    assert.match(text, new RegExp(`\\*${namespace}\\* is \\*running\\*`));
    assert.match(text, /Deployment\/api\s+0\/2/, 'desired 2, none ready: there is no controller-manager');
  });

  it('a user outside the control allow-list is refused and nothing changes', async function () {
    const reply = await devenv(`stop ${namespace}`, MALLORY);
    assert.match(reply.text, /not allowed/i);
    assert.equal(await replicas(), 2);
    // The log line comes through the child's stdout, maybe just after the answer.
    await eventually(
      'the refusal in the log',
      () => (/Slack command refused by allow-list/.test(service.output()) ? true : undefined),
      10_000,
    );
  });

  it('stop scales the namespace to 0 and is announced in its own channel; start brings it back', async function () {
    const stop = await devenv(`stop ${namespace}`);
    const stopped = await stop.later(/stopped by/);
    assert.match(stopped, new RegExp(`${namespace} stopped by <@${ALICE}>: 1 workloads scaled to 0`));
    assert.equal(await replicas(), 0);
    assert.equal((await apps.readNamespacedDeployment({ namespace, name: 'api' })).metadata?.annotations?.[ORIGINAL_REPLICAS], '2');

    const announced = await eventually(
      'the announcement',
      () => recorder.messages().find((m) => String(m.text).startsWith(`${namespace} stopped`)),
      30_000,
    );
    assert.equal(announced.channel, TEAM_CHANNEL, "the namespace's devenv-scheduler/slack-channel annotation picks the channel");
    const post = recorder.posts.find((p) => p.body === announced)!;
    assert.equal(post.authorization, `Bearer ${TOKEN}`);

    const start = await devenv(`start ${namespace}`);
    await start.later(/started by/);
    assert.equal(await replicas(), 2);
    assert.equal((await apps.readNamespacedDeployment({ namespace, name: 'api' })).metadata?.annotations?.[ORIGINAL_REPLICAS], undefined);
  });

  it('help, list and prolongate answer through the real process', async function () {
    assert.match((await devenv('help')).text, /\/devenv prolongate <namespace> for <duration>/);
    const list = await devenv('list');
    const listed = new RegExp(`\\*${namespace}\\*`).test(list.text) ? list.text : await list.later(new RegExp(namespace));
    assert.match(listed, new RegExp(`\\*${namespace}\\*  running`));
    const prolonged = await devenv(`prolongate ${namespace} for 1h`);
    const text = /prolongated/.test(prolonged.text) ? prolonged.text : await prolonged.later(/prolongated/);
    assert.match(text, new RegExp(`${namespace} prolongated by 1h by <@${ALICE}>`));
  });

  it('support start, list and stop make and delete a real pod in the support namespace', async function () {
    const core = (await testCluster()).kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: 'devenv-support' } } }).catch(() => undefined);
    const name = `e2e-${process.pid}`;
    const started = await devenv(`support start ${name} XS`);
    assert.match(await started.later(new RegExp(`Support pod \\*${name}\\* \\(XS\\) created for <@${ALICE}>`)), /deleted/);
    const pod = await core.readNamespacedPod({ namespace: 'devenv-support', name });
    assert.equal(pod.spec?.containers[0]?.resources?.limits?.memory, '512Mi');
    const list = await devenv('support list');
    const listed = list.text.includes(name) ? list.text : await list.later(new RegExp(name));
    assert.match(listed, new RegExp(`\\*${name}\\* XS`));
    await devenv(`support stop ${name}`);
    await eventually('the pod to be deleted', () =>
      core.readNamespacedPod({ namespace: 'devenv-support', name }).then(
        (p) => (p.metadata?.deletionTimestamp ? true : undefined),
        () => true,
      ),
    );
  });

  it('counts Slack commands by kind and outcome, and environments by phase, in /metrics', async function () {
    const metrics = await (await fetch(`${apiUrl}/metrics`)).text();
    assert.match(metrics, /devenv_commands_total\{[^}]*source="slack"[^}]*command="stop"[^}]*outcome="refused"[^}]*\} 1/);
    assert.match(metrics, /devenv_commands_total\{[^}]*source="slack"[^}]*command="stop"[^}]*outcome="accepted"[^}]*\} 1/);
    assert.match(metrics, /devenv_commands_total\{[^}]*source="slack"[^}]*command="support start"[^}]*outcome="accepted"[^}]*\} 1/);
    assert.match(metrics, /devenv_environments\{phase="running"[^}]*\} [1-9]/);
  });

  it('never logs the signing secret or the bot token', function () {
    assert.ok(!service.output().includes(SECRET), 'signing secret in the log');
    assert.ok(!service.output().includes(TOKEN), 'bot token in the log');
  });
});
