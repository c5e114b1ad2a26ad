/**
 * Support pods end to end, as people see them: `/devenv support ...` over signed HTTP, the
 * REST API and the `devenv` CLI, in front of a Temporal dev server whose worker runs the real
 * Kubernetes activities against the test kube-apiserver (test/support/kube.ts). There is no
 * kubelet: a test writes a pod's status where a kubelet would, and holds a deleted pod
 * terminating with a finalizer, as a kubelet's grace period does.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { CoreV1Api, PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createKubernetesActivities } from '../src/activities/kubernetes';
import { createSupportPodReader, SUPPORT_POD_DEADLINE_MARGIN_SECONDS } from '../src/activities/kubernetes/support-pods';
import { DEFAULT_SUPPORT_SIZES } from '../src/domain/support-sizes';
import { createMetrics } from '../src/api/metrics';
import { createRestRouter, supportPod, supportPodList } from '../src/api/rest';
import { createApi } from '../src/api/server';
import { createSlackHandlers } from '../src/api/slack/handlers';
import { createResponder } from '../src/api/slack/responder';
import { createSlackRouter } from '../src/api/slack/router';
import { createEnvironmentsClient, joinSupportPods, type SupportPolicy, type SupportWorkflowRecord } from '../src/client/environments';
import type { SupportPodInCluster } from '../src/activities/contracts';
import { createLogger } from '../src/logger';
import { supportPodWorkflowId } from '../src/workflows';
import { testCluster, type TestCluster } from './support/kube';
import { eventually, postSigned, SlackRecorder, visibleText } from './support/slack';
import { devServerEnv, uniqueTaskQueue, workflowBundle } from './support/temporal';

const NAMESPACE = 'support-e2e';
const SECRET = 'test-signing-secret-0123456789';
const ALICE = 'U0ALICE0001';
const BOB = 'U0BOB00001';
const CAROL = 'U0CAROL001';
const DAVE = 'U0DAVE0001';
const READER = 'read-only-token-0123456789abcdef';
const TTL_MS = 2 * 60 * 60_000;
const HOLD = 'test.devenv-scheduler/hold';
const DEVENV = path.join(__dirname, '..', 'bin', 'devenv.js');
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const policy: SupportPolicy = { maxPodsPerUser: 5, maxSize: 'M', sizes: DEFAULT_SUPPORT_SIZES, admins: [ALICE] };

describe('support pods end to end: Slack, REST and the CLI, a Temporal dev server, the real activities on a real kube-apiserver', function () {
  this.timeout(120_000);
  let cluster: TestCluster;
  let core: CoreV1Api;
  let env: TestWorkflowEnvironment;
  let recorder: SlackRecorder;
  let worker: Worker;
  let running: Promise<void>;
  let taskQueue: string;
  let base: string;
  let supportPods: () => Promise<SupportPodInCluster[]>;
  const logger = createLogger('silent');
  const servers: Server[] = [];

  /** An API process as main.ts wires it: Slack and REST in front of `client`, with the support-pod `limits`. */
  async function serveApi(client: Client, limits: SupportPolicy, replyBudgetMs?: number): Promise<string> {
    const metrics = createMetrics();
    // One gateway for both, as main.ts builds it.
    const environments = createEnvironmentsClient(client, { support: limits, supportPods });
    const handlers = createSlackHandlers({
      environments,
      responder: createResponder({ logger, origins: [recorder.url] }),
      logger,
      metrics,
      supportTaskQueue: taskQueue,
      supportPodTtlMs: TTL_MS,
      replyBudgetMs,
    });
    const slack = createSlackRouter({ handlers, signingSecret: SECRET, logger });
    const rest = createRestRouter({
      environments,
      tokens: [{ name: 'dashboard', sha256: createHash('sha256').update(READER).digest('hex'), scope: 'read' }],
      logger,
      metrics,
      supportSizes: Object.keys(DEFAULT_SUPPORT_SIZES),
      supportTaskQueue: taskQueue,
      supportPodTtlMs: TTL_MS,
    });
    const app = createApi({ client, logger, metrics, routers: [rest, slack] });
    const listening: Server = await new Promise((resolve) => {
      const started = app.listen(0, '127.0.0.1', () => resolve(started));
    });
    servers.push(listening);
    return `http://127.0.0.1:${(listening.address() as AddressInfo).port}`;
  }

  before(async function () {
    this.timeout(180_000);
    cluster = await testCluster();
    core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    // Restricted, like the shipped support namespace; its own, so these pods meet no other suite's.
    await core.createNamespace({ body: { metadata: { name: NAMESPACE, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } } });
    env = await devServerEnv();
    recorder = await new SlackRecorder().start();
    taskQueue = uniqueTaskQueue('support-e2e');
    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: createKubernetesActivities({
        kubeConfig: cluster.kubeConfig,
        dryRun: false,
        logger,
        support: { namespace: NAMESPACE, image: 'busybox:1.36', sizes: DEFAULT_SUPPORT_SIZES, namePollMs: 200 },
      }),
    });
    running = worker.run();
    supportPods = createSupportPodReader(cluster.kubeConfig, NAMESPACE);
    base = await serveApi(env.client, policy);
  });

  after(async function () {
    worker?.shutdown();
    await running;
    await Promise.all(servers.map((listening) => new Promise((resolve) => listening.close(resolve))));
    await recorder?.stop();
  });

  async function devenv(text: string, user = ALICE, api = base): Promise<{ text: string; responseId: string }> {
    const { id, url } = recorder.responseUrl();
    const response = await postSigned(`${api}/slack/commands`, SECRET, {
      team_id: 'T0TEAM0001',
      channel_id: 'C0OPS00001',
      user_id: user,
      command: '/devenv',
      text,
      response_url: url,
    });
    assert.equal(response.status, 200, `/devenv ${text}: HTTP ${response.status}`);
    return { text: visibleText(response.body), responseId: id };
  }

  const laterReply = (responseId: string, pattern: RegExp, timeoutMs = 30_000) =>
    eventually(
      `a response_url post matching ${pattern}`,
      () =>
        recorder
          .responses(responseId)
          .map(visibleText)
          .find((text) => pattern.test(text)),
      timeoutMs,
    );

  async function rest(route: string, { method = 'GET', body }: { method?: string; body?: unknown } = {}) {
    const response = await fetch(`${base}${route}`, {
      method,
      headers: { authorization: `Bearer ${READER}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [DEVENV, ...args],
        {
          env: {
            ...process.env,
            TEMPORAL_ADDRESS: env.address,
            TASK_QUEUE: taskQueue,
            KUBECONFIG: cluster.kubeConfigPath,
            SUPPORT_NAMESPACE: NAMESPACE,
            LOG_LEVEL: 'silent',
          },
          timeout: 60_000,
        },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
      );
    });
  }

  const read = (name: string) => core.readNamespacedPod({ namespace: NAMESPACE, name });
  const gone = async (name: string) =>
    read(name).then(
      () => undefined,
      (error: unknown) => ((error as { code?: number }).code === 404 ? true : Promise.reject(error)),
    );
  const hold = (name: string) =>
    core.patchNamespacedPod({ namespace: NAMESPACE, name, body: { metadata: { finalizers: [HOLD] } } }, mergePatch);
  const release = (name: string) =>
    core.patchNamespacedPod({ namespace: NAMESPACE, name, body: { metadata: { finalizers: null } } }, mergePatch);
  const workflowClosed = async (name: string) =>
    (await env.client.workflow.getHandle(supportPodWorkflowId(name)).describe()).status.name === 'RUNNING' ? undefined : true;
  /** A pod put there by hand, under Pod Security restricted; `metadata` as an earlier version of the service would have written it, or none. */
  const podByHand = (name: string, metadata: V1Pod['metadata'] = {}) =>
    core.createNamespacedPod({
      namespace: NAMESPACE,
      body: {
        metadata: { ...metadata, name },
        spec: {
          securityContext: { runAsNonRoot: true, runAsUser: 65534, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'shell',
              image: 'busybox:1.36',
              command: ['sleep', 'infinity'],
              securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
            },
          ],
        },
      },
    });
  /** Slack's `<!date^SECONDS^...>` of a line, as an instant. */
  const slackDateIn = (line: string, after: string) => {
    const seconds = new RegExp(`${after}.*?<!date\\^(\\d+)\\^`).exec(line)?.[1];
    assert.ok(seconds, `no date after "${after}" in ${line}`);
    return Number(seconds) * 1000;
  };

  it('support stop x, then support start x XL: the old pod, still terminating, is waited for, and the new XL pod is reported, never the old one', async function () {
    const first = await devenv('support start again XS');
    assert.match(first.text, /Creating support pod \*again\* \(XS\)/);
    assert.match(await laterReply(first.responseId, /created for/), /Support pod \*again\* \(XS\) created for <@U0ALICE0001>/);
    const old = await read('again');
    // A kubelet stops the containers within the grace period; here a finalizer keeps the deleted pod terminating.
    await hold('again');
    assert.match((await devenv('support stop again')).text, /Support pod \*again\* is being deleted, asked by <@U0ALICE0001>/);
    await eventually('the workflow to end', () => workflowClosed('again'));
    assert.ok((await read('again')).metadata?.deletionTimestamp, 'the old pod is terminating');

    const second = await devenv('support start again XL');
    assert.match(
      second.text,
      /Support pod \*again\* \(XL\) is created once the previous pod of that name has finished terminating \(deleted <!date\^\d+/,
    );
    const listed = await eventually('the new workflow listed', async () => {
      const line = (await devenv('support list')).text.split('\n').find((l) => l.includes('*again*'));
      return line?.includes('waiting') ? line : undefined;
    });
    assert.match(
      listed,
      /\*again\* XL · waiting for the previous pod of this name to finish terminating · by <@U0ALICE0001> · deleted <!date\^/,
    );
    await new Promise((resolve) => setTimeout(resolve, 2000));
    assert.equal(recorder.responses(second.responseId).length, 0, 'nothing reported while the old pod is there');
    assert.equal((await read('again')).metadata?.uid, old.metadata?.uid);

    await release('again');
    assert.match(
      await laterReply(second.responseId, /created for/),
      /Support pod \*again\* \(XL\) created for <@U0ALICE0001>: Pending; deleted <!date\^/,
    );
    const now = await read('again');
    assert.notEqual(now.metadata?.uid, old.metadata?.uid);
    assert.deepEqual(now.spec?.containers[0]?.resources?.limits, { cpu: '4', memory: '8Gi' });
    await devenv('support stop again');
    await eventually('the XL pod deleted', () => gone('again'));
  });

  it('a name held by a pod no workflow manages, or by a running support pod, is refused with who has it; nothing is started or changed', async function () {
    await podByHand('by-hand');
    const before = await read('by-hand');
    const refused = await devenv('support start by-hand M', BOB);
    assert.match(
      refused.text,
      /Could not start support pod \*by-hand\*: the name by-hand is taken by a pod that no support-pod workflow manages \(not made by devenv-scheduler at [^)]+\); it has no deadline \(made by hand, or by a version before deadlines\): delete it \(kubectl delete pod\), or pick another name\./,
    );
    await assert.rejects(
      env.client.workflow.getHandle(supportPodWorkflowId('by-hand')).describe(),
      WorkflowNotFoundError,
      'no workflow was started',
    );
    const after = await read('by-hand');
    assert.deepEqual(
      [after.metadata?.uid, after.metadata?.resourceVersion],
      [before.metadata?.uid, before.metadata?.resourceVersion],
      'the pod is as it was',
    );

    // A pod of an earlier version, its workflow gone: who started it is on the pod.
    await podByHand('left-over', {
      labels: { 'devenv-scheduler/support-pod': 'true' },
      annotations: { 'devenv-scheduler/size': 'S', 'devenv-scheduler/requested-by': CAROL },
    });
    assert.match(
      (await devenv('support start left-over M', BOB)).text,
      /the name left-over is taken by a pod that no support-pod workflow manages \(started by <@U0CAROL001> at [^,]+, size S\)/,
    );

    const mine = await devenv('support start mine XS', ALICE);
    assert.match(await laterReply(mine.responseId, /created for/), /\(XS\) created/);
    assert.match(
      (await devenv('support start mine S', BOB)).text,
      /Could not start support pod \*mine\*: support pod mine already exists, started by <@U0ALICE0001>; pick another name, or stop it first \(support stop mine\)\./,
    );
    assert.deepEqual((await read('mine')).spec?.containers[0]?.resources?.limits, { cpu: '250m', memory: '512Mi' });

    await devenv('support stop mine');
    await eventually('mine deleted', () => gone('mine'));
    for (const name of ['by-hand', 'left-over']) await core.deleteNamespacedPod({ namespace: NAMESPACE, name });
  });

  it('support list answers from the cluster joined with the workflows: real phase and readiness, a pod deleted by hand, an orphan with its deadline, a pod of an earlier version; in Slack, REST and the CLI', async function () {
    for (const [name, size, user] of [
      ['live', 'XS', ALICE],
      ['vanished', 'XS', BOB],
      ['orphan', 'S', BOB],
    ] as const) {
      const started = await devenv(`support start ${name} ${size}`, user);
      await laterReply(started.responseId, /created for/);
    }
    // What a kubelet would report for `live`: running since a second ago, ready.
    const startTime = new Date(Math.floor(Date.now() / 1000) * 1000 - 1000).toISOString();
    await core.patchNamespacedPodStatus(
      {
        namespace: NAMESPACE,
        name: 'live',
        body: { status: { phase: 'Running', startTime, conditions: [{ type: 'Ready', status: 'True' }] } },
      },
      mergePatch,
    );
    // Deleted by hand while its workflow runs.
    await core.deleteNamespacedPod({ namespace: NAMESPACE, name: 'vanished', gracePeriodSeconds: 0 });
    // Its workflow terminated by an operator: the pod stays, and no workflow will delete it.
    await env.client.workflow.getHandle(supportPodWorkflowId('orphan')).terminate('operator');
    const orphan = await read('orphan');
    const orphanDeadline = orphan.spec?.activeDeadlineSeconds ?? 0;
    assert.ok(
      Math.abs(orphanDeadline - (TTL_MS / 1000 + SUPPORT_POD_DEADLINE_MARGIN_SECONDS)) <= 30,
      `activeDeadlineSeconds ${orphanDeadline}`,
    );
    // Made by an earlier version (no run id, expiry or deadline), its workflow long gone.
    await podByHand('legacy', {
      labels: { 'devenv-scheduler/support-pod': 'true' },
      annotations: { 'devenv-scheduler/size': 'XS', 'devenv-scheduler/requested-by': CAROL },
    });

    const lines = await eventually('the orphan shown', async () => {
      const found = (await devenv('support list')).text.split('\n');
      return found.some((l) => l.includes('*orphan*') && l.includes('orphaned')) &&
        !found.some((l) => l.includes('*vanished*') && l.includes('being created'))
        ? found
        : undefined;
    });
    const line = (name: string) => lines.find((l) => l.includes(`*${name}*`)) ?? assert.fail(`${name} not in:\n${lines.join('\n')}`);
    assert.match(line('live'), /• \*live\* XS · Running, ready · by <@U0ALICE0001> · deleted <!date\^\d+/);
    assert.match(
      line('vanished'),
      /• \*vanished\* XS · :warning: pod missing \(deleted outside the scheduler\) · by <@U0BOB00001> · the workflow ends <!date\^\d+/,
    );
    assert.match(
      line('orphan'),
      /• \*orphan\* S · Pending · by <@U0BOB00001> · :warning: orphaned: no workflow manages it; the kubelet kills it <!date\^\d+/,
    );
    const created = Date.parse(orphan.metadata!.creationTimestamp!.toString());
    assert.equal(
      slackDateIn(line('orphan'), 'kills it'),
      Math.floor((created + orphanDeadline * 1000) / 1000) * 1000,
      'its activeDeadlineSeconds after it was created (it never started here)',
    );
    assert.match(
      line('legacy'),
      /• \*legacy\* XS · Pending · by <@U0CAROL001> · :warning: orphaned: no workflow manages it; no deadline: delete it with kubectl/,
    );

    const listed = await rest('/api/v1/support-pods');
    assert.equal(listed.status, 200);
    const parsed = supportPodList.parse(listed.body);
    assert.equal(parsed.podsUnavailable, null);
    const view = (name: string) => parsed.supportPods.find((p) => p.name === name);
    assert.deepEqual(view('live'), {
      name: 'live',
      status: 'managed',
      note: '',
      size: 'XS',
      phase: 'Running',
      ready: true,
      createdBy: ALICE,
      expiresAt: view('live')!.expiresAt,
      deadlineAt: new Date(Date.parse(startTime) + (await read('live')).spec!.activeDeadlineSeconds! * 1000).toISOString(),
      deletingSince: null,
      managed: true,
    });
    assert.ok(
      Math.abs(Date.parse(view('live')!.expiresAt!) - (Date.parse((await read('live')).metadata!.creationTimestamp!.toString()) + TTL_MS)) <
        10_000,
      'expires a TTL after creation',
    );
    assert.deepEqual([view('vanished')?.status, view('vanished')?.phase, view('vanished')?.managed], ['pod-missing', null, true]);
    assert.match(
      view('vanished')!.note,
      /^its pod is gone \(deleted outside the scheduler\); the workflow ends at .*, or on support stop$/,
    );
    assert.deepEqual(
      [view('orphan')?.status, view('orphan')?.phase, view('orphan')?.managed, view('orphan')?.expiresAt],
      ['orphaned', 'Pending', false, null],
    );
    assert.equal(view('orphan')!.deadlineAt, new Date(created + orphanDeadline * 1000).toISOString());
    assert.match(
      view('orphan')!.note,
      /^orphaned: no workflow manages it; the kubelet kills it at .* \(activeDeadlineSeconds\), or delete it \(kubectl delete pod\)$/,
    );
    assert.deepEqual([view('legacy')?.status, view('legacy')?.createdBy, view('legacy')?.deadlineAt], ['orphaned', CAROL, null]);
    const one = await rest('/api/v1/support-pods/orphan');
    assert.equal(one.status, 200);
    assert.deepEqual(supportPod.parse(one.body), view('orphan'));

    const printed = await cli('support', 'list');
    assert.equal(printed.code, 0, printed.stderr);
    const cliLine = (name: string) =>
      printed.stdout.split('\n').find((l) => l.startsWith(`${name} `)) ?? assert.fail(`${name} not in:\n${printed.stdout}`);
    assert.match(cliLine('live'), /^live +XS +Running,ready +by U0ALICE0001 deleted at \S+$/);
    assert.match(
      cliLine('vanished'),
      /^vanished +XS +pod-missing +by U0BOB00001 deleted at \S+ \(its pod is gone \(deleted outside the scheduler\);/,
    );
    assert.match(
      cliLine('orphan'),
      /^orphan +S +Pending +by U0BOB00001 \(orphaned: no workflow manages it; the kubelet kills it at \S+ \(activeDeadlineSeconds\)/,
    );
    const json = JSON.parse((await cli('--json', 'support', 'list')).stdout) as { supportPods: { name: string; status: string }[] };
    assert.deepEqual(
      json.supportPods.filter((p) => ['live', 'vanished', 'orphan', 'legacy'].includes(p.name)).map((p) => `${p.name} ${p.status}`),
      ['legacy orphaned', 'live managed', 'orphan orphaned', 'vanished pod-missing'],
    );

    // Nothing here deletes an orphan: a stop says so, and what becomes of it.
    assert.match(
      (await devenv('support stop orphan', BOB)).text,
      /Could not stop support pod \*orphan\*: support pod orphan is orphaned: no workflow manages it \(started by <@U0BOB00001> at [^,]+, size S\), so the scheduler does not delete it; the kubelet kills it at \S+ \(activeDeadlineSeconds\), or delete it \(kubectl delete pod\)\./,
    );
    assert.equal((await read('orphan')).metadata?.uid, orphan.metadata?.uid);

    // Stopping the one whose pod vanished ends its workflow; nothing else of that name is touched.
    for (const name of ['live', 'vanished']) await devenv(`support stop ${name}`);
    for (const name of ['live', 'vanished']) await eventually(`${name} ended`, () => workflowClosed(name));
    await eventually('live deleted', () => gone('live'));
    for (const name of ['orphan', 'legacy']) await core.deleteNamespacedPod({ namespace: NAMESPACE, name });
  });

  it("SUPPORT_MAX_PODS_PER_USER holds across API processes: one person's starts at once through two API instances, one each, on one Temporal and one apiserver, end with as many pods as the limit and a refusal naming them; a stop, or an operator's terminate, frees the slot", async function () {
    // With a limit of 1, one start through each process is N+1: each process alone sees no pod of DAVE's yet.
    const limits: SupportPolicy = { ...policy, maxPodsPerUser: 1, admins: [] };
    // A second API process: its own Temporal connection and client, its own koa server. Each
    // waits as long as it takes for the workflow's answer, so the refusal is in the reply itself.
    const connection = await Connection.connect({ address: env.address });
    try {
      const apis = [await serveApi(env.client, limits, 60_000), await serveApi(new Client({ connection }), limits, 60_000)];
      const podsOf = async (user: string) =>
        (await core.listNamespacedPod({ namespace: NAMESPACE })).items
          .filter((pod) => pod.metadata?.annotations?.['devenv-scheduler/requested-by'] === user && !pod.metadata.deletionTimestamp)
          .map((pod) => pod.metadata!.name!)
          .sort();
      const names = ['race-a', 'race-b'];
      const replies = await Promise.all(names.map((name, i) => devenv(`support start ${name} XS`, DAVE, apis[i])));
      const texts = replies.map((r) => r.text).join('\n');
      const accepted = names.filter((_, i) => /Creating support pod/.test(replies[i]!.text));
      const refused = names.filter((_, i) => /Could not start support pod/.test(replies[i]!.text));
      assert.deepEqual([accepted.length, refused.length], [1, 1], texts);
      const [kept] = accepted as [string];
      const [other] = refused as [string];
      assert.equal(
        replies[names.indexOf(other)]!.text,
        `:no_entry: Could not start support pod *${other}*: you have 1 support pod already (${kept}), the most one person may have at once; stop one first (support stop <name>).`,
      );
      assert.match(await laterReply(replies[names.indexOf(kept)]!.responseId, /created for|could not/), /created for <@U0DAVE0001>/);
      assert.deepEqual(await podsOf(DAVE), [kept]);
      await assert.rejects(read(other), (error: unknown) => (error as { code?: number }).code === 404, 'the refused start made no pod');
      assert.equal(
        (await env.client.workflow.getHandle(supportPodWorkflowId(other)).describe()).status.name,
        'FAILED',
        'its workflow ended at once',
      );

      // Still full, through either process.
      for (const api of apis)
        assert.match((await devenv('support start race-c XS', DAVE, api)).text, new RegExp(`you have 1 support pod already \\(${kept}\\)`));

      // A stop through one process frees the slot for a start through the other.
      const through = apis[1 - names.indexOf(kept)]!;
      assert.match((await devenv(`support stop ${kept}`, DAVE, through)).text, /is being deleted/);
      await eventually(`${kept} ended`, () => workflowClosed(kept));
      const again = await devenv('support start race-c XS', DAVE, apis[names.indexOf(kept)]);
      assert.match(again.text, /Creating support pod \*race-c\* \(XS\)/);
      assert.match(await laterReply(again.responseId, /created for|could not/), /created for <@U0DAVE0001>/);
      await eventually(`${kept} deleted`, () => gone(kept));
      assert.deepEqual(await podsOf(DAVE), ['race-c']);

      // An operator's terminate frees it too: the server ends the slot with its workflow (the pod is left, an orphan).
      await env.client.workflow.getHandle(supportPodWorkflowId('race-c')).terminate('operator');
      const afterTerminate = await eventually('a start after the terminate', async () => {
        const reply = await devenv('support start race-d XS', DAVE, through);
        return /Creating support pod/.test(reply.text) ? reply : undefined;
      });
      assert.match(await laterReply(afterTerminate.responseId, /created for|could not/), /created for <@U0DAVE0001>/);
      await devenv('support stop race-d', DAVE, through);
      await eventually('race-d deleted', () => gone('race-d'));
      await core.deleteNamespacedPod({ namespace: NAMESPACE, name: 'race-c' });
    } finally {
      await connection.close();
    }
  });
});

describe('support list: joining pods and workflows, for workflows and pods of earlier versions', () => {
  const pod = (name: string, more: Partial<SupportPodInCluster> = {}): SupportPodInCluster => ({
    name,
    uid: `uid-${name}`,
    labelled: true,
    size: 'XS',
    createdBy: 'U1',
    createdAt: '2026-12-01T09:00:00.000Z',
    phase: 'Running',
    ready: true,
    reason: null,
    deletingSince: null,
    workflowRunId: null,
    expiresAt: null,
    activeDeadlineSeconds: null,
    deadlineAt: null,
    ...more,
  });
  const earlierState = (name: string) => ({
    pod: { name, size: 'XS', phase: 'Pending', createdAt: '2026-12-01T09:00:00.000Z', createdBy: 'U1' },
    expiresAt: '2026-12-01T17:00:00.000Z',
    stopRequestedBy: null,
  });
  const workflow = (name: string, more: Partial<SupportWorkflowRecord> = {}): SupportWorkflowRecord => ({
    name,
    runId: `run-${name}`,
    startedAt: '2026-12-01T09:00:00.000Z',
    memo: { requestedBy: 'U1', size: 'XS' },
    ...more,
  });
  const statuses = (list: ReturnType<typeof joinSupportPods>) =>
    Object.fromEntries(list.supportPods.map((l) => [l.name, [l.status, l.expiresAt]]));

  it("an earlier version's workflow owns the labelled pod of its name when its query says it created one; its expiry comes from the query", () => {
    const list = joinSupportPods(
      [
        pod('old-managed'),
        pod('fresh-waiting', { deletingSince: '2026-12-01T10:00:00.000Z', workflowRunId: 'previous-run' }),
        pod('old-unasked'),
      ],
      [
        workflow('old-managed', { state: earlierState('old-managed') }),
        workflow('old-vanished', { state: earlierState('old-vanished') }),
        // Just started: visibility has only the memo of its start, and the query says it has no pod yet.
        workflow('fresh-waiting', { state: { pod: null, expiresAt: '2026-12-01T18:00:00.000Z', stopRequestedBy: null } }),
        workflow('old-unasked'),
      ],
    );
    assert.deepEqual(statuses(list), {
      'old-managed': ['managed', '2026-12-01T17:00:00.000Z'],
      'old-vanished': ['pod-missing', '2026-12-01T17:00:00.000Z'],
      'fresh-waiting': ['waiting', '2026-12-01T18:00:00.000Z'],
      'old-unasked': ['unknown', null],
    });
    assert.equal(list.podsUnavailable, null);
  });

  it("a pod is its workflow's by the uid the memo records, or the run id it records; without the cluster every workflow is unknown", () => {
    const memo = { requestedBy: 'U2', size: 'M', expiresAt: '2026-12-01T19:00:00.000Z' };
    const list = joinSupportPods(
      [
        pod('by-uid', { createdBy: null, size: null }),
        pod('by-run', { workflowRunId: 'run-by-run' }),
        pod('other-run', { workflowRunId: 'someone-else' }),
      ],
      [workflow('by-uid', { memo: { ...memo, podUid: 'uid-by-uid' } }), workflow('by-run', { memo }), workflow('other-run', { memo })],
    );
    assert.deepEqual(statuses(list), {
      'by-uid': ['managed', '2026-12-01T19:00:00.000Z'],
      'by-run': ['managed', '2026-12-01T19:00:00.000Z'],
      'other-run': ['waiting', '2026-12-01T19:00:00.000Z'],
    });
    const byUid = list.supportPods.find((l) => l.name === 'by-uid')!;
    assert.deepEqual([byUid.size, byUid.requestedBy], ['M', 'U2'], 'from the memo when the pod does not say');
    assert.match(
      list.supportPods.find((l) => l.name === 'other-run')!.note,
      /^the name is held by a pod that is not its own \(started by U1 at .*, size XS\): this start fails$/,
    );
    const blind = joinSupportPods(null, [workflow('by-run', { memo })], 'connect ECONNREFUSED');
    assert.deepEqual(statuses(blind), { 'by-run': ['unknown', '2026-12-01T19:00:00.000Z'] });
    assert.equal(blind.podsUnavailable, 'connect ECONNREFUSED');
  });
});
