/**
 * Enrolment end to end: the test kube-apiserver is given the webhook configurations of
 * k8s/webhook.yaml (the labelling MutatingWebhook and the enrolling ValidatingWebhook),
 * pointed at our webhook over TLS (a CA generated for the test), so creating, relabelling
 * and deleting namespaces through the Kubernetes API drives environment workflows on a real
 * Temporal dev server. Namespaces that exist before the webhooks are registered are what a
 * cluster has when the service is installed: the start-up reconcile enrols only the
 * labelled ones. Then the ways it can go wrong: malformed and dry-run requests, Temporal
 * unreachable (the reconciler repairs what was missed), and a namespace deleted and
 * created again while a reconcile runs.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  loadAllYaml,
  PatchStrategy,
  setHeaderOptions,
  type V1MutatingWebhookConfiguration,
  type V1ValidatingWebhookConfiguration,
} from '@kubernetes/client-node';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import pino from 'pino';
import { createEnrolmentActivities } from '../src/activities/enrolment';
import type { NamespaceInfo } from '../src/activities/contracts';
import { createNamespaceLister, createNamespaceReader } from '../src/activities/kubernetes/namespaces';
import { createAdmissionWebhook, type AdmissionOptions } from '../src/api/admission';
import { createMetrics, type Metrics } from '../src/api/metrics';
import { startWebhookServer, type WebhookServer } from '../src/api/webhook';
import { createEnrolment, type Enrolment } from '../src/client/enrolment';
import { createEnvironmentsClient } from '../src/client/environments';
import { createLogger } from '../src/logger';
import { ALL_SEARCH_ATTRIBUTES } from '../src/search-attributes';
import { temporalCliPath } from '../src/temporal/binaries';
import {
  DISPATCH_AHEAD_MEMO,
  environmentWorkflowId,
  reconcileWorkflow,
  statusQuery,
  type EnvironmentInput,
  type EnvironmentStatus,
} from '../src/workflows';
import type { EnvironmentPolicy } from '../src/domain/shutdown-policy';
import { weekdayPolicy } from './support/policies';
import { testCluster, WEBHOOK_CLIENT_NAME, type TestCluster } from './support/kube';
import { recordingActivities } from './support/recording-activities';
import { eventually } from './support/slack';
import { quietRuntime, uniqueTaskQueue, workflowBundle } from './support/temporal';
import { clientCertificate, postJsonOverTls, postWithClientCertificate, servingCertificate } from './support/tls';

const WEBHOOK_NAME = 'devenv-scheduler-test';
/** Another admission check, of the test's own, that refuses to delete namespaces labelled devenv-test/protected=true. */
const REFUSING_WEBHOOK_NAME = 'devenv-scheduler-test-refuse-delete';
const DEVENV = path.join(__dirname, '..', 'bin', 'devenv.js');
// The service's own namespace, named apart from the real one other suites create.
const OWN_NAMESPACE = 'devenv-admission-own';
const SYSTEM = ['kube-system', 'kube-public', 'kube-node-lease', OWN_NAMESPACE];
const DISPATCH_AHEAD_MS = 10_000;
const POLICY: EnvironmentPolicy = weekdayPolicy();

describe('admission webhook and reconciler (real kube-apiserver, real Temporal)', function () {
  this.timeout(120_000);
  const logger = createLogger('silent');
  let cluster: TestCluster;
  let core: CoreV1Api;
  let admission: AdmissionregistrationV1Api;
  // A dev server of this suite's own: the reconciler retires every environment whose namespace is not in the cluster.
  let temporal: TestWorkflowEnvironment;
  let worker: Worker;
  let running: Promise<void>;
  let taskQueue: string;
  let enrolment: Enrolment;
  let metrics: Metrics;
  let webhook: WebhookServer;
  const tls = servingCertificate();
  let counter = 0;
  const newName = (prefix: string) => `${prefix}-${process.pid % 10000}-${++counter}`;

  /**
   * What the cluster holds when the service is installed, made before any webhook is
   * registered: infrastructure namespaces (and `default`, which is always there), a team
   * namespace nobody labelled, and namespaces someone labelled.
   */
  const pid = process.pid % 10000;
  const PREEXISTING = {
    temporal: undefined,
    'cert-manager': undefined,
    monitoring: undefined,
    [`team-a-${pid}`]: undefined,
    [`team-b-${pid}`]: { scheduler: 'enabled' },
    // Infrastructure by name, but labelled: someone asked.
    argocd: { scheduler: 'disabled' },
    [`team-c-${pid}`]: { scheduler: 'yes' },
    // Unlabelled, and given an environment the way an earlier version of the service enrolled every namespace.
    [`legacy-${pid}`]: undefined,
  } as Record<string, Record<string, string> | undefined>;

  before(async function () {
    this.timeout(300_000);
    cluster = await testCluster();
    core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    admission = cluster.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
    for (const [name, labels] of Object.entries(PREEXISTING)) {
      await core.createNamespace({ body: { metadata: { name, labels } } }).catch(async (err: unknown) => {
        // Made by an earlier suite of this run: give it the labels this suite needs.
        if ((err as { code?: number }).code !== 409) throw err;
        await core.patchNamespace({ name, body: { metadata: { labels: { scheduler: labels?.scheduler ?? null } } } }, mergePatch());
      });
    }
    quietRuntime();
    temporal = await TestWorkflowEnvironment.createLocal({
      server: { executable: { type: 'existing-path', path: temporalCliPath() }, searchAttributes: ALL_SEARCH_ATTRIBUTES },
    });
    taskQueue = uniqueTaskQueue('admission');
    enrolment = createEnrolment({
      client: temporal.client,
      taskQueue,
      policy: POLICY,
      systemNamespaces: SYSTEM,
      shutdownDispatchAheadMs: DISPATCH_AHEAD_MS,
    });
    worker = await Worker.create({
      connection: temporal.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: {
        ...recordingActivities(async () => Date.now()),
        ...createEnrolmentActivities({
          client: temporal.client,
          enrolment,
          listNamespaces: createNamespaceLister(cluster.kubeConfig),
          logger,
        }),
      },
    });
    running = worker.run();
    metrics = createMetrics();
    // Any caller, as on a cluster whose apiserver presents no client certificate (EKS, GKE,
    // AKS): what the webhook does then is most of this suite. One test requires the certificate.
    webhook = await startWebhookServer({
      certFile: tls.certFile,
      keyFile: tls.keyFile,
      port: 0,
      host: '127.0.0.1',
      router: createAdmissionWebhook({ enrolment, readNamespace: createNamespaceReader(cluster.kubeConfig), logger, metrics }).router,
      logger,
    });
    // The configurations k8s/ ships, pointed at this test's server and its CA, sparing this suite's system namespaces.
    for (const shipped of loadAllYaml(readFileSync(path.join(__dirname, '..', 'k8s', 'webhook.yaml'), 'utf8')) as (
      V1MutatingWebhookConfiguration | V1ValidatingWebhookConfiguration
    )[]) {
      shipped.metadata = { name: WEBHOOK_NAME };
      for (const hook of shipped.webhooks ?? []) {
        hook.clientConfig = { url: `${webhook.url}${hook.clientConfig.service!.path}`, caBundle: tls.ca.toString('base64') };
        hook.namespaceSelector = { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: SYSTEM }] };
      }
      if (shipped.kind === 'MutatingWebhookConfiguration') await admission.createMutatingWebhookConfiguration({ body: shipped });
      else await admission.createValidatingWebhookConfiguration({ body: shipped as V1ValidatingWebhookConfiguration });
    }
    // The apiserver picks up a new webhook configuration asynchronously: wait until it calls both.
    await eventually(
      'the apiserver to call the webhooks',
      async () => {
        const probe = newName('probe');
        const before = await admissions('enrolled');
        const created = await core.createNamespace({ body: { metadata: { name: probe } }, dryRun: 'All' });
        return created.metadata?.labels?.scheduler === 'enabled' &&
          ((await admissions('dry-run')) > 0 || (await admissions('enrolled')) > before)
          ? true
          : undefined;
      },
      30_000,
    );
  });

  after(async function () {
    this.timeout(60_000);
    // Cluster-wide: later suites must not call a webhook that is gone.
    await admission.deleteMutatingWebhookConfiguration({ name: WEBHOOK_NAME }).catch(() => undefined);
    await admission.deleteValidatingWebhookConfiguration({ name: WEBHOOK_NAME }).catch(() => undefined);
    await admission.deleteValidatingWebhookConfiguration({ name: REFUSING_WEBHOOK_NAME }).catch(() => undefined);
    await webhook?.close();
    worker?.shutdown();
    await running;
    await temporal?.teardown();
  });

  async function admissions(outcome: string): Promise<number> {
    const metric = await metrics.admissions.get();
    return metric.values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
  }

  const handle = (namespace: string) => temporal.client.workflow.getHandle(environmentWorkflowId(namespace));
  /** The webhook answers first and passes the change on just after: wait for it to land. */
  const settled = <T>(what: string, check: () => Promise<T | undefined>) =>
    eventually(
      what,
      () =>
        check().catch((err: unknown) =>
          err instanceof WorkflowNotFoundError || String(err).includes('not found') ? undefined : Promise.reject(err),
        ),
      20_000,
    );
  const statusWhen = (namespace: string, ok: (s: EnvironmentStatus) => boolean) =>
    settled(`${namespace} to reach the expected state`, async () => {
      const s = await status(namespace);
      return ok(s) ? s : undefined;
    });
  const status = (namespace: string): Promise<EnvironmentStatus> => handle(namespace).query(statusQuery);
  async function workflowState(namespace: string): Promise<string> {
    try {
      return (await handle(namespace).describe()).status.name;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return 'NONE';
      throw err;
    }
  }

  /** Why each retire signal a run got said it was sent: `reason` and `by`, or undefined for a signal without argument. */
  async function retireSignals(namespace: string, runId?: string): Promise<({ reason: string; by: string } | undefined)[]> {
    const history = await temporal.client.workflow.getHandle(environmentWorkflowId(namespace), runId).fetchHistory();
    return (history.events ?? [])
      .map((event) => event.workflowExecutionSignaledEventAttributes)
      .filter((signal) => signal?.signalName === 'retire')
      .map((signal) => {
        const payload = signal!.input?.payloads?.[0];
        return payload ? defaultPayloadConverter.fromPayload<{ reason: string; by: string }>(payload) : undefined;
      });
  }

  /** How many signals the environment's current run has had. */
  async function signalsTo(namespace: string): Promise<number> {
    return ((await handle(namespace).fetchHistory()).events ?? []).filter((event) => event.workflowExecutionSignaledEventAttributes).length;
  }

  /** Every admission the suite's webhook has counted, whatever its outcome: each review is counted once, when it is done with. */
  async function allAdmissions(): Promise<number> {
    return (await metrics.admissions.get()).values.reduce((sum, v) => sum + v.value, 0);
  }

  /** An AdmissionReview as anyone who reaches the webhook's port can post it, past the apiserver. */
  async function forge(request: Record<string, unknown>, path = '/admission/namespaces'): Promise<{ allowed: boolean; patch?: string }> {
    const review = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: `forged-${++counter}`,
        kind: { group: '', version: 'v1', kind: 'Namespace' },
        userInfo: { username: 'system:admin' },
        ...request,
      },
    };
    const reply = await postJsonOverTls(`${webhook.url}${path}`, JSON.stringify(review), tls.ca);
    assert.equal(reply.status, 200);
    return (JSON.parse(reply.text) as { response: { allowed: boolean; patch?: string } }).response;
  }

  /** A shutdown time twelve hours away (UTC), so that no warning or shutdown of the environment fires while a test compares its state. */
  function farShutdown(): Record<string, string> {
    const at = new Date(Date.now() + 12 * 3600_000);
    return {
      'devenv-scheduler/shutdown-time': `${String(at.getUTCHours()).padStart(2, '0')}:${String(at.getUTCMinutes()).padStart(2, '0')}`,
    };
  }

  /** An environment's run, its state and its signals in a line, as a test compares them before and after. */
  function describeEnvironment({ runId, execution, state, signals }: Awaited<ReturnType<typeof snapshot>>): string {
    return `run ${runId} ${execution}, scheduler ${state.enabled ? 'on' : 'off'}, shuts down at ${state.policy.shutdownTime}, phase ${state.phase}, last ${state.lastAction?.action ?? 'none'}, ${signals} signals`;
  }

  /** The environment as a test compares it before and after: the run, its state, how many signals it has had. */
  async function snapshot(namespace: string) {
    const { runId, status: execution } = await handle(namespace).describe();
    const { shutdownDescription: _, wakeDescription: __, ...state } = await status(namespace);
    return { runId, execution: execution.name, state, signals: await signalsTo(namespace) };
  }

  function devenv(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [DEVENV, ...args],
        { env: { ...process.env, TEMPORAL_ADDRESS: temporal.address, TASK_QUEUE: taskQueue, LOG_LEVEL: 'silent' } },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
      );
    });
  }

  const unlabelled = [`team-a-${pid}`, `legacy-${pid}`];
  const infrastructure = ['temporal', 'cert-manager', 'monitoring', 'default'];

  it('`devenv reconcile --dry-run` says what the first reconcile would do to each namespace, and why, and changes nothing', async function () {
    const { code, stdout, stderr } = await devenv('reconcile', '--dry-run');
    assert.equal(code, 0, stderr);
    const row = (what: string, name: string, why: string) =>
      new RegExp(`^${what} +${name} +${why.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm');
    assert.match(stdout, /^dry run: nothing was changed\./);
    assert.match(stdout, row('would enrol', `team-b-${pid}`, 'label scheduler=enabled'));
    assert.match(stdout, row('would enrol', 'argocd', 'label scheduler=disabled: enrolled, never stopped by the scheduler'));
    for (const name of unlabelled) assert.match(stdout, row('leave alone', name, 'unlabelled: label scheduler=enabled to enrol'));
    assert.match(
      stdout,
      row(
        'leave alone',
        'default',
        'infrastructure namespace (INFRASTRUCTURE_NAMESPACES entry "default"): label scheduler=enabled to enrol',
      ),
    );
    assert.match(
      stdout,
      row(
        'leave alone',
        'temporal',
        'infrastructure namespace (INFRASTRUCTURE_NAMESPACES entry "temporal*"): label scheduler=enabled to enrol',
      ),
    );
    assert.match(
      stdout,
      row(
        'leave alone',
        'monitoring',
        'infrastructure namespace (INFRASTRUCTURE_NAMESPACES entry "monitoring"): label scheduler=enabled to enrol',
      ),
    );
    assert.match(
      stdout,
      row(
        'leave alone',
        `team-c-${pid}`,
        'label scheduler="yes" is neither "enabled" nor "disabled": not scheduled (label scheduler=enabled or disabled to enrol)',
      ),
    );
    assert.match(stdout, /^leave alone +kube-system +system namespace/m);
    for (const name of Object.keys(PREEXISTING)) assert.equal(await workflowState(name), 'NONE', `${name}: nothing enrolled by a dry run`);
  });

  it('the first reconcile enrols only the namespaces that existed before and are labelled', async function () {
    // As the worker does at start-up.
    const report = await temporal.client.workflow.execute(reconcileWorkflow, { workflowId: `reconcile-first-${pid}`, taskQueue });
    assert.deepEqual(report.failed, []);
    assert.ok(report.enrolled.includes(`team-b-${pid}`), JSON.stringify(report.enrolled));
    assert.ok(report.enrolled.includes('argocd'), 'an infrastructure namespace someone labelled');
    for (const name of [...infrastructure, ...unlabelled, `team-c-${pid}`]) {
      assert.ok(!report.enrolled.includes(name), `${name} enrolled`);
      assert.equal(await workflowState(name), 'NONE', name);
    }
    assert.equal((await status(`team-b-${pid}`)).phase, 'running');
    assert.equal((await status('argocd')).phase, 'disabled');
    const leftAlone = report.decisions.find((d) => d.namespace === `team-a-${pid}`);
    assert.deepEqual(leftAlone, {
      namespace: `team-a-${pid}`,
      action: 'leave-alone',
      reason: 'unlabelled: label scheduler=enabled to enrol',
    });
  });

  it('a namespace created after start-up without a label is labelled scheduler=enabled and enrolled; an infrastructure one is neither', async function () {
    const name = newName('fresh');
    await core.createNamespace({ body: { metadata: { name } } });
    assert.equal((await core.readNamespace({ name })).metadata?.labels?.scheduler, 'enabled', 'the decision is written on the namespace');
    await settled('the environment to exist', async () => ((await workflowState(name)) === 'RUNNING' ? true : undefined));
    assert.equal((await status(name)).enabled, true);

    const infra = `prometheus-${pid}`;
    const leftAlone = await admissions('left-alone');
    await core.createNamespace({ body: { metadata: { name: infra } } });
    assert.equal(
      (await core.readNamespace({ name: infra })).metadata?.labels?.scheduler,
      undefined,
      'an infrastructure namespace is not labelled',
    );
    await eventually('the enrolling webhook to see it', async () => ((await admissions('left-alone')) > leftAlone ? true : undefined));
    assert.equal(await workflowState(infra), 'NONE');
    // kubectl get ns -L scheduler shows what is scheduled.
    const listed = await core.listNamespace({ labelSelector: 'scheduler=enabled' });
    const names = listed.items.map((ns) => ns.metadata?.name);
    assert.ok(
      names.includes(name) && names.includes(`team-b-${pid}`) && !names.includes(infra) && !names.includes(`team-a-${pid}`),
      names.join(', '),
    );
  });

  it('a namespace created without a scheduler label gets a running, scheduled environment', async function () {
    const name = newName('dev');
    await core.createNamespace({ body: { metadata: { name } } });
    await settled('the environment to exist', async () => ((await workflowState(name)) === 'RUNNING' ? true : undefined));
    const env = await status(name);
    assert.equal(env.enabled, true);
    assert.equal(env.phase, 'running');
    assert.ok(env.shutdownAt, 'a shutdown is scheduled');
    const started = (await handle(name).fetchHistory()).events?.[0]?.workflowExecutionStartedEventAttributes;
    const input = defaultPayloadConverter.fromPayload<EnvironmentInput>(started!.input!.payloads![0]!);
    assert.equal(input.dispatchAheadMs, DISPATCH_AHEAD_MS, "the service's dispatch-ahead setting");
  });

  it('scheduler=disabled enrols it paused; relabelling switches it on and off', async function () {
    const name = newName('dev');
    await core.createNamespace({ body: { metadata: { name, labels: { scheduler: 'disabled' } } } });
    assert.equal((await statusWhen(name, () => true)).phase, 'disabled');

    await core.patchNamespace({ name, body: { metadata: { labels: { scheduler: 'enabled' } } } }, mergePatch());
    const enabled = await statusWhen(name, (s) => s.enabled);
    assert.equal(enabled.lastAction?.action, 'enable');
    assert.match(enabled.lastAction?.by ?? '', /^admission:/);

    await core.patchNamespace({ name, body: { metadata: { labels: { scheduler: 'disabled' } } } }, mergePatch());
    await statusWhen(name, (s) => s.phase === 'disabled');

    // Any other change to the namespace leaves the environment alone.
    const before = await status(name);
    const unchanged = await admissions('unchanged');
    await core.patchNamespace({ name, body: { metadata: { labels: { team: 'payments' } } } }, mergePatch());
    assert.equal(await admissions('unchanged'), unchanged + 1, 'the webhook saw the change');
    assert.deepEqual(await status(name), before);
  });

  it('policy annotations give the environment its own shutdown time, zone, days and owners; changing them re-plans it', async function () {
    const name = newName('team');
    await core.createNamespace({
      body: {
        metadata: {
          name,
          annotations: {
            'devenv-scheduler/shutdown-time': '20:30',
            'devenv-scheduler/time-zone': 'Asia/Jerusalem',
            'devenv-scheduler/working-days': 'Sun-Thu',
            'devenv-scheduler/owners': 'U024BE7LH,S0614TZR7',
          },
        },
      },
    });
    const created = await statusWhen(name, () => true);
    assert.deepEqual(
      [created.policy.shutdownTime, created.policy.timeZone, created.policy.workingDays, created.policy.owners],
      ['20:30', 'Asia/Jerusalem', ['Mon', 'Tue', 'Wed', 'Thu', 'Sun'], ['U024BE7LH', 'S0614TZR7']],
    );
    await core.patchNamespace({ name, body: { metadata: { annotations: { 'devenv-scheduler/owners': 'W0G9QF9C6' } } } }, mergePatch());
    assert.deepEqual((await statusWhen(name, (s) => s.policy.owners?.[0] === 'W0G9QF9C6')).policy.owners, ['W0G9QF9C6']);

    await core.patchNamespace({ name, body: { metadata: { annotations: { 'devenv-scheduler/shutdown-time': '21:15' } } } }, mergePatch());
    const changed = await statusWhen(name, (s) => s.policy.shutdownTime === '21:15');
    assert.equal(changed.policy.shutdownTime, '21:15');
    assert.equal(changed.policy.timeZone, 'Asia/Jerusalem', 'the other annotations still apply');
    assert.equal(changed.lastAction?.action, 'policy');
    assert.match(changed.lastAction?.by ?? '', /^admission:/);
  });

  it('an invalid policy annotation is ignored with a warning to whoever applied it', async function () {
    const review = (annotations: Record<string, string>) =>
      JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: 'u-policy',
          operation: 'CREATE',
          name: 'x',
          dryRun: true,
          object: { metadata: { name: 'x', labels: { scheduler: 'enabled' }, annotations } },
        },
      });
    const reply = await postAdmission(
      webhook.url,
      review({
        'devenv-scheduler/shutdown-time': '7pm',
        'devenv-scheduler/time-zone': 'Mars/Base',
        'devenv-scheduler/wake-time': '8am',
        'devenv-scheduler/owners': 'U024BE7LH,@ana',
      }),
      tls.ca,
    );
    const warnings = (reply.json as { response: { allowed: boolean; warnings: string[] } }).response.warnings;
    assert.deepEqual(warnings, [
      'devenv-scheduler: annotation devenv-scheduler/shutdown-time="7pm" ignored: must be a 24-hour time such as 19:00',
      'devenv-scheduler: annotation devenv-scheduler/time-zone="Mars/Base" ignored: must be an IANA time zone such as Europe/Berlin or America/New_York',
      'devenv-scheduler: annotation devenv-scheduler/owners="U024BE7LH,@ana" ignored: "@ana" is a handle; owners are Slack ids: a member id (U…, "Copy member ID" in the profile) or a user-group id (S…)',
      'devenv-scheduler: annotation devenv-scheduler/wake-time="8am" ignored: must be a 24-hour time such as 08:00, or off',
    ]);
    // A wake time is a time of the namespace's day before its shutdown: one after it says so, and there is no wake-up.
    const late = await postAdmission(webhook.url, review({ 'devenv-scheduler/wake-time': '20:00' }), tls.ca);
    assert.deepEqual((late.json as { response: { warnings: string[] } }).response.warnings, [
      `devenv-scheduler: annotation devenv-scheduler/wake-time="20:00" ignored: must be before the shutdown time (${POLICY.shutdownTime})`,
    ]);
  });

  it('a slack-channel annotation that is not a channel id is ignored with a warning to whoever applied it; a channel id is taken', async function () {
    const review = (operation: 'CREATE' | 'UPDATE', channel: string) =>
      JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: 'u-channel',
          operation,
          name: 'x',
          dryRun: true,
          object: { metadata: { name: 'x', labels: { scheduler: 'enabled' }, annotations: { 'devenv-scheduler/slack-channel': channel } } },
          oldObject: { metadata: { name: 'x', labels: { scheduler: 'enabled' } } },
        },
      });
    const warningsFor = async (operation: 'CREATE' | 'UPDATE', channel: string) =>
      (
        (await postAdmission(webhook.url, review(operation, channel), tls.ca)).json as {
          response: { allowed: boolean; warnings?: string[] };
        }
      ).response;
    for (const channel of ['<!channel>', '#team-dev', 'U0MALLORY01', 'c0lowercase1']) {
      for (const operation of ['CREATE', 'UPDATE'] as const) {
        const response = await warningsFor(operation, channel);
        assert.equal(response.allowed, true);
        assert.deepEqual(
          response.warnings,
          [
            `devenv-scheduler: annotation devenv-scheduler/slack-channel=${JSON.stringify(channel)} ignored (messages go to the default channel): must be a Slack channel id such as C0123456789 (channel details, at the bottom), not a name or a mention`,
          ],
          `${operation} ${channel}`,
        );
      }
    }
    assert.equal((await warningsFor('CREATE', 'C0TEAM00001')).warnings, undefined);
    assert.equal((await warningsFor('UPDATE', ' G0PRIVATE01 ')).warnings, undefined, 'read trimmed, as the notifier reads it');
  });

  it('deleting the namespace retires its environment', async function () {
    const name = newName('dev');
    await core.createNamespace({ body: { metadata: { name } } });
    await settled('the environment to exist', async () => ((await workflowState(name)) === 'RUNNING' ? true : undefined));
    await core.deleteNamespace({ name });
    await eventually('the workflow to complete', async () => ((await workflowState(name)) === 'COMPLETED' ? true : undefined));
    assert.deepEqual(
      (await retireSignals(name)).map((why) => why?.reason),
      ['namespace-deleted'],
    );
  });

  it('a namespace whose label is removed, or set to a value not ours, leaves management: its environment is retired as unmanaged', async function () {
    for (const label of [null, 'maybe']) {
      const name = newName('unlabel');
      await core.createNamespace({ body: { metadata: { name, labels: { scheduler: 'enabled' } } } });
      await settled('the environment to exist', async () => ((await workflowState(name)) === 'RUNNING' ? true : undefined));
      await core.patchNamespace({ name, body: { metadata: { labels: { scheduler: label } } } }, mergePatch());
      await eventually(`the workflow to complete (label ${label})`, async () =>
        (await workflowState(name)) === 'COMPLETED' ? true : undefined,
      );
      const [why] = await retireSignals(name);
      assert.equal(why?.reason, 'unmanaged', `label ${label}`);
      assert.match(why?.by ?? '', /^admission:/);
      // Nothing puts it back: the label is the decision.
      assert.equal((await core.readNamespace({ name })).metadata?.labels?.scheduler, label ?? undefined);
    }
  });

  it('the labelling webhook answers a CREATE with a JSON Patch adding the label, whether or not the namespace has labels, and nothing else', async function () {
    const label = async (request: Record<string, unknown>, server = webhook.url) => {
      const review = {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: { uid: 'u-label', kind: { kind: 'Namespace' }, ...request },
      };
      const reply = await postJsonOverTls(`${server}/admission/namespaces/label`, JSON.stringify(review), tls.ca);
      const response = (
        JSON.parse(reply.text) as { response: { uid: string; allowed: boolean; patchType?: string; patch?: string; warnings?: string[] } }
      ).response;
      assert.equal(response.allowed, true);
      assert.equal(response.uid, 'u-label');
      if (response.patch === undefined) return { ops: undefined, warnings: response.warnings };
      assert.equal(response.patchType, 'JSONPatch');
      return { ops: JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as unknown, warnings: response.warnings };
    };
    const create = (name: string, metadata: Record<string, unknown> = { name }) => ({ operation: 'CREATE', name, object: { metadata } });
    assert.deepEqual(
      (await label(create('dev-bare'))).ops,
      [{ op: 'add', path: '/metadata/labels', value: { scheduler: 'enabled' } }],
      'no labels object at all',
    );
    assert.deepEqual((await label(create('dev-team', { name: 'dev-team', labels: { team: 'a' } }))).ops, [
      { op: 'add', path: '/metadata/labels/scheduler', value: 'enabled' },
    ]);
    assert.deepEqual(
      (await label({ ...create('dev-dry'), dryRun: true })).ops,
      [{ op: 'add', path: '/metadata/labels', value: { scheduler: 'enabled' } }],
      'a dry run shows the label it would get',
    );
    for (const request of [
      create('dev-off', { name: 'dev-off', labels: { scheduler: 'disabled' } }),
      create('dev-odd', { name: 'dev-odd', labels: { scheduler: 'yes' } }),
      create('istio-gateways'),
      create('default'),
      create(OWN_NAMESPACE),
      { ...create('dev-upd'), operation: 'UPDATE', oldObject: { metadata: { name: 'dev-upd' } } },
      { ...create('dev-del'), operation: 'DELETE', object: null, oldObject: { metadata: { name: 'dev-del' } } },
    ]) {
      assert.equal((await label(request)).ops, undefined, JSON.stringify(request));
    }

    // DRY_RUN: no label is written, and the author is told what would have happened.
    const dry = await startWebhookServer({
      certFile: tls.certFile,
      keyFile: tls.keyFile,
      port: 0,
      host: '127.0.0.1',
      router: createAdmissionWebhook({
        enrolment,
        readNamespace: createNamespaceReader(cluster.kubeConfig),
        logger,
        metrics: createMetrics(),
        dryRun: true,
      }).router,
      logger,
    });
    try {
      const answer = await label(create('dev-dry-run'), dry.url);
      assert.equal(answer.ops, undefined);
      assert.deepEqual(answer.warnings, [
        'devenv-scheduler: DRY_RUN: dev-dry-run would be labelled scheduler=enabled and scheduled; it is left unlabelled',
      ]);
      const enrol = JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: 'u-dry',
          operation: 'CREATE',
          name: 'dev-dry-run',
          object: { metadata: { name: 'dev-dry-run', labels: { scheduler: 'enabled' } } },
        },
      });
      assert.equal((await postJsonOverTls(`${dry.url}/admission/namespaces`, enrol, tls.ca)).status, 200);
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(await workflowState('dev-dry-run'), 'NONE', 'DRY_RUN: nothing passed on to Temporal');
    } finally {
      await dry.close();
    }
  });

  it('system namespaces and dry runs change nothing', async function () {
    await core.createNamespace({ body: { metadata: { name: OWN_NAMESPACE } } });
    assert.equal(await workflowState(OWN_NAMESPACE), 'NONE');
    const name = newName('dry');
    const dryRuns = await admissions('dry-run');
    await core.createNamespace({ body: { metadata: { name } }, dryRun: 'All' });
    assert.equal(await admissions('dry-run'), dryRuns + 1, 'the webhook was called for the dry run');
    assert.equal(await workflowState(name), 'NONE');
  });

  it('malformed AdmissionReviews are allowed with a warning, and change nothing', async function () {
    const bodies = [
      'not json at all',
      '{}',
      JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'u-1' } }),
      JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: { uid: 'u-2', operation: 'EXPLODE', name: 'x' },
      }),
      JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: { uid: 'u-3', operation: 'CREATE', object: { metadata: { labels: 7 } } },
      }),
    ];
    const malformed = await admissions('malformed');
    for (const body of bodies) {
      const reply = await postAdmission(webhook.url, body, tls.ca);
      assert.equal(reply.status, 200, body);
      const review = reply.json as { apiVersion: string; kind: string; response: { uid: string; allowed: boolean; warnings?: string[] } };
      assert.equal(review.apiVersion, 'admission.k8s.io/v1');
      assert.equal(review.kind, 'AdmissionReview');
      assert.equal(review.response.allowed, true);
      assert.match(review.response.warnings?.[0] ?? '', /nothing was changed/);
    }
    assert.equal(await admissions('malformed'), malformed + bodies.length);
    const reply = await postAdmission(webhook.url, bodies[2]!, tls.ca);
    assert.equal((reply.json as { response: { uid: string } }).response.uid, 'u-1', 'the uid is echoed whenever there is one');
  });

  it('forged reviews posted straight to the webhook change nothing: a CREATE, an UPDATE of the label or the policy, a DELETE', async function () {
    // One environment for each forged change, so that each one's effect is seen apart.
    const victims = { label: newName('victim-label'), policy: newName('victim-policy'), delete: newName('victim-delete') };
    for (const name of Object.values(victims)) await core.createNamespace({ body: { metadata: { name, annotations: farShutdown() } } });
    const stored: Record<string, Record<string, unknown>> = {};
    const before: Record<string, string> = {};
    for (const name of Object.values(victims)) {
      await statusWhen(name, () => true);
      const { metadata } = await core.readNamespace({ name });
      // As the apiserver would send it, uid and all.
      stored[name] = { name, uid: metadata?.uid, labels: metadata?.labels, annotations: metadata?.annotations };
      before[name] = describeEnvironment(await snapshot(name));
    }
    const absent = newName('forged-absent');
    const unlabelled = `team-a-${pid}`;
    const [seen, unconfirmed, leftAlone] = [await allAdmissions(), await admissions('unconfirmed'), await admissions('left-alone')];
    const as = (name: string, change: Record<string, unknown>) => ({ metadata: { ...stored[name], ...change } });
    const forged = [
      { operation: 'CREATE', name: absent, object: { metadata: { name: absent, labels: { scheduler: 'enabled' } } } },
      { operation: 'CREATE', name: unlabelled, object: { metadata: { name: unlabelled, labels: { scheduler: 'enabled' } } } },
      {
        operation: 'UPDATE',
        name: victims.label,
        object: as(victims.label, { labels: { ...(stored[victims.label]!.labels as object), scheduler: 'disabled' } }),
        oldObject: as(victims.label, {}),
      },
      {
        operation: 'UPDATE',
        name: victims.policy,
        object: as(victims.policy, { annotations: { 'devenv-scheduler/shutdown-time': '03:07' } }),
        oldObject: as(victims.policy, {}),
      },
      { operation: 'DELETE', name: victims.delete, object: null, oldObject: as(victims.delete, {}) },
    ];
    for (const request of forged) assert.equal((await forge(request)).allowed, true);
    await eventually(
      'the webhook to be done with all five',
      async () => ((await allAdmissions()) >= seen + forged.length ? true : undefined),
      20_000,
    );

    const after = async (name: string) => describeEnvironment(await snapshot(name));
    assert.deepEqual(
      {
        'CREATE of a namespace that does not exist': await workflowState(absent),
        'CREATE naming an unlabelled namespace as labelled': await workflowState(unlabelled),
        'UPDATE of the label to disabled': await after(victims.label),
        'UPDATE of the shutdown-time annotation': await after(victims.policy),
        'DELETE of a namespace that is there': await after(victims.delete),
      },
      {
        'CREATE of a namespace that does not exist': 'NONE',
        'CREATE naming an unlabelled namespace as labelled': 'NONE',
        'UPDATE of the label to disabled': before[victims.label],
        'UPDATE of the shutdown-time annotation': before[victims.policy],
        'DELETE of a namespace that is there': before[victims.delete],
      },
    );
    for (const name of Object.values(victims))
      assert.equal(describeEnvironment(await snapshot(name)), before[name], `${name}: not even signalled`);
    assert.equal(await admissions('unconfirmed'), unconfirmed + 4, 'the stored namespace never showed the change');
    assert.equal(await admissions('left-alone'), leftAlone + 1, 'the unlabelled namespace, as stored, is not an environment');
  });

  it('a forged CREATE posted to the labelling webhook gets its patch, for an object that is never stored: no namespace, no environment', async function () {
    const name = newName('forged-label');
    const answer = await forge({ operation: 'CREATE', name, object: { metadata: { name } } }, '/admission/namespaces/label');
    assert.equal(answer.allowed, true);
    assert.ok(answer.patch, 'answered as any CREATE is: the patch only applies to the object of that request');
    await new Promise((resolve) => setTimeout(resolve, 500));
    await assert.rejects(core.readNamespace({ name }), (err: { code?: number }) => err.code === 404);
    assert.equal(await workflowState(name), 'NONE');
  });

  it("with WEBHOOK_CLIENT_CA, only the apiserver's client certificate gets in, and only then is the user a review names taken as who made the change", async function () {
    const guardedMetrics = createMetrics();
    const guarded = await startWebhookServer({
      certFile: tls.certFile,
      keyFile: tls.keyFile,
      port: 0,
      host: '127.0.0.1',
      router: createAdmissionWebhook({
        enrolment,
        readNamespace: createNamespaceReader(cluster.kubeConfig),
        logger,
        metrics: guardedMetrics,
      }).router,
      logger,
      metrics: guardedMetrics,
      clientAuthentication: { caFile: cluster.webhookClient.caFile, names: [WEBHOOK_CLIENT_NAME] },
    });
    const GUARDED_WEBHOOK = 'devenv-scheduler-test-client-authentication';
    try {
      // A second enrolling webhook, called only for namespaces labelled for this test.
      const [shipped] = (
        loadAllYaml(readFileSync(path.join(__dirname, '..', 'k8s', 'webhook.yaml'), 'utf8')) as V1ValidatingWebhookConfiguration[]
      ).filter((object) => object.kind === 'ValidatingWebhookConfiguration');
      shipped!.metadata = { name: GUARDED_WEBHOOK };
      for (const hook of shipped!.webhooks ?? []) {
        hook.clientConfig = { url: `${guarded.url}${hook.clientConfig.service!.path}`, caBundle: tls.ca.toString('base64') };
        hook.objectSelector = { matchLabels: { 'devenv-test/client-authentication': 'yes' } };
      }
      await admission.createValidatingWebhookConfiguration({ body: shipped! });
      const guardedAdmissions = async () => (await guardedMetrics.admissions.get()).values.reduce((sum, v) => sum + v.value, 0);

      // The apiserver presents its certificate: its reviews are served, and its word on the user is taken.
      const name = await eventually(
        'the apiserver to call the guarded webhook',
        async () => {
          const probe = newName('client-auth');
          await core.createNamespace({ body: { metadata: { name: probe, labels: { 'devenv-test/client-authentication': 'yes' } } } });
          return (await guardedAdmissions()) > 0 ? probe : undefined;
        },
        30_000,
      );
      await statusWhen(name, () => true);
      const enrolledBy = await eventually(
        'both webhooks to have enrolled it',
        async () => {
          const history = await handle(name).fetchHistory();
          const by = (history.events ?? [])
            .map((event) => event.workflowExecutionSignaledEventAttributes)
            .filter((signal) => signal?.signalName === 'setEnabled')
            .map((signal) => defaultPayloadConverter.fromPayload<{ by: string }>(signal!.input!.payloads![0]!).by)
            .filter((by) => by.startsWith('admission:'))
            .sort();
          return by.length >= 2 ? by : undefined;
        },
        20_000,
      );
      assert.deepEqual(
        enrolledBy,
        ['admission:devenv-admin', 'admission:devenv-admin (unverified)'],
        'the webhook without client authentication says it could not verify the user',
      );

      // Anyone else is turned away: no certificate, one another CA signed, one of the right CA for another name.
      const review = JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: 'forged-guarded',
          kind: { group: '', version: 'v1', kind: 'Namespace' },
          operation: 'DELETE',
          name,
          oldObject: { metadata: { name } },
        },
      });
      const before = await guardedAdmissions();
      const post = (client: { cert?: Buffer; key?: Buffer }) =>
        postWithClientCertificate(`${guarded.url}/admission/namespaces`, review, tls.ca, client);
      const other = clientCertificate('attacker', { caFile: tls.caFile, keyFile: path.join(tls.dir, 'ca.key') });
      const wrongName = clientCertificate('some-kubelet', {
        caFile: cluster.webhookClient.caFile,
        keyFile: cluster.webhookClient.caKeyFile,
      });
      await assert.rejects(post({}), 'no client certificate: the handshake fails');
      await assert.rejects(post(other), 'a certificate another CA signed: the handshake fails');
      assert.equal((await post(wrongName)).status, 403, 'the right CA, a name not accepted');
      const apiserver = { cert: readFileSync(cluster.webhookClient.certFile), key: readFileSync(cluster.webhookClient.keyFile) };
      assert.equal((await post(apiserver)).status, 200, "the apiserver's own certificate is served");
      const refused = Object.fromEntries((await guardedMetrics.webhookRefused.get()).values.map((v) => [v.labels.reason, v.value]));
      assert.deepEqual(refused, { handshake: 2, name: 1 });
      await eventually(
        'the review the apiserver certificate carried to be done with',
        async () => ((await guardedAdmissions()) > before ? true : undefined),
        10_000,
      );
      assert.equal(await guardedAdmissions(), before + 1, 'of the four posts, only the one with the apiserver certificate was read');
      assert.equal(
        await workflowState(name),
        'RUNNING',
        'and, a hint like any review, that DELETE of a namespace still there retired nothing',
      );
    } finally {
      await admission.deleteValidatingWebhookConfiguration({ name: GUARDED_WEBHOOK }).catch(() => undefined);
      await guarded.close();
    }
  });

  it('a real DELETE that another admission check refuses does not retire the environment; once allowed, it does', async function () {
    // Validating webhooks are called side by side: ours sees the DELETE whatever the other one answers.
    const refusing = https.createServer({ cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) }, (req, res) => {
      let text = '';
      req.on('data', (chunk: Buffer) => (text += chunk.toString()));
      req.on('end', () => {
        const { uid } = (JSON.parse(text) as { request: { uid: string } }).request;
        const response = { uid, allowed: false, status: { code: 403, message: 'protected namespace: not to be deleted' } };
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response }));
      });
    });
    await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve));
    const name = newName('protected');
    try {
      await admission.createValidatingWebhookConfiguration({
        body: {
          metadata: { name: REFUSING_WEBHOOK_NAME },
          webhooks: [
            {
              name: 'refuse-delete.namespaces.devenv-scheduler.test',
              admissionReviewVersions: ['v1'],
              sideEffects: 'None',
              failurePolicy: 'Fail',
              timeoutSeconds: 5,
              clientConfig: { url: `https://127.0.0.1:${(refusing.address() as AddressInfo).port}/`, caBundle: tls.ca.toString('base64') },
              rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['DELETE'], resources: ['namespaces'], scope: 'Cluster' }],
              objectSelector: { matchLabels: { 'devenv-test/protected': 'true' } },
            },
          ],
        },
      });
      await core.createNamespace({ body: { metadata: { name, labels: { 'devenv-test/protected': 'true' }, annotations: farShutdown() } } });
      await statusWhen(name, () => true);
      await eventually('the apiserver to call the refusing webhook', () =>
        core.deleteNamespace({ name, dryRun: 'All' }).then(
          () => undefined,
          (err: { code?: number }) => (err.code === 403 ? true : Promise.reject(err)),
        ),
      );
      const before = await snapshot(name);
      const [seen, unconfirmed] = [await allAdmissions(), await admissions('unconfirmed')];
      await assert.rejects(
        core.deleteNamespace({ name }),
        (err: { code?: number; body?: string }) => err.code === 403 && /not to be deleted/.test(String(err.body)),
      );
      await eventually(
        'our webhook to be done with the DELETE',
        async () => ((await allAdmissions()) >= seen + 1 ? true : undefined),
        20_000,
      );
      assert.equal((await core.readNamespace({ name })).metadata?.deletionTimestamp, undefined, 'the namespace is still there');
      assert.deepEqual(await snapshot(name), before, 'its environment runs on, untouched');
      assert.deepEqual(await retireSignals(name), []);
      assert.equal(await admissions('unconfirmed'), unconfirmed + 1);
    } finally {
      await admission.deleteValidatingWebhookConfiguration({ name: REFUSING_WEBHOOK_NAME }).catch(() => undefined);
      refusing.close();
    }
    // The refusing check gone (the apiserver notices a moment later), the delete goes through and retires the run that was running.
    const { runId } = await handle(name).describe();
    await eventually('the delete to be allowed', () =>
      core.deleteNamespace({ name }).then(
        () => true,
        () => undefined,
      ),
    );
    await eventually('the workflow to complete', async () => ((await workflowState(name)) === 'COMPLETED' ? true : undefined));
    assert.deepEqual(await retireSignals(name, runId), [{ reason: 'namespace-deleted', by: 'admission:devenv-admin (unverified)' }]);
  });

  /**
   * A webhook of its own, as a stopping API pod has it: its own connection to Temporal, two
   * changes passed on at a time, and every enrolment held at a gate until the test opens it,
   * so the changes are certainly still waiting when the server stops.
   */
  async function gatedWebhook(options: Partial<AdmissionOptions> = {}) {
    const connection = await Connection.connect({ address: temporal.address });
    const client = new Client({ connection });
    const own = createEnrolment({
      client,
      taskQueue,
      policy: POLICY,
      systemNamespaces: SYSTEM,
      shutdownDispatchAheadMs: DISPATCH_AHEAD_MS,
    });
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const gatedMetrics = createMetrics();
    // These namespaces are not made in the cluster (the suite's webhook would enrol them): each is "stored" as its review shows it.
    const readNamespace = async (name: string) => ({
      name,
      uid: undefined,
      labels: { scheduler: 'enabled' },
      annotations: {},
      terminating: false,
    });
    const webhook = createAdmissionWebhook({
      enrolment: { ...own, enrol: async (...args) => gate.then(() => own.enrol(...args)) },
      readNamespace,
      logger,
      metrics: gatedMetrics,
      concurrency: 2,
      ...options,
    });
    const server = await startWebhookServer({
      certFile: tls.certFile,
      keyFile: tls.keyFile,
      port: 0,
      host: '127.0.0.1',
      router: webhook.router,
      logger,
    });
    const names = Array.from({ length: 10 }, () => newName('drain'));
    for (const name of names) {
      // As the enrolling webhook sees a CREATE after the labelling webhook.
      const object = { metadata: { name, labels: { scheduler: 'enabled' } } };
      const review = {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: { uid: `u-${name}`, operation: 'CREATE', name, object },
      };
      const reply = await postAdmission(server.url, JSON.stringify(review), tls.ca);
      assert.equal((reply.json as { response: { allowed: boolean } }).response.allowed, true);
    }
    await server.close();
    const counted = async (outcome: string) =>
      (await gatedMetrics.admissions.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
    return { names, webhook, connection, open, counted };
  }

  it('when it stops, every change it has admitted reaches Temporal before the connection closes', async function () {
    const { names, webhook, connection, open, counted } = await gatedWebhook();
    assert.equal(await counted('enrolled'), 0, 'nothing passed on yet: all 10 wait');
    const draining = webhook.drain(30_000);
    open();
    assert.equal(await draining, 0, 'nothing left behind');
    await connection.close();
    assert.equal(await counted('enrolled'), names.length);
    for (const name of names) assert.equal(await workflowState(name), 'RUNNING', `${name} enrolled`);
  });

  it('when Temporal does not take them in time, it stops anyway and counts what it left to the reconciler', async function () {
    const { names, webhook, connection, open, counted } = await gatedWebhook();
    assert.equal(await webhook.drain(200), names.length, 'all 10 still waiting after 200 ms');
    assert.equal(await counted('failed'), names.length - 2, 'the queued ones are counted at once');
    await connection.close();
    open(); // the two under way meet a closed connection
    await eventually('the two under way to be counted', async () => ((await counted('failed')) === names.length ? true : undefined));
    for (const name of names) assert.equal(await workflowState(name), 'NONE', `${name} left to the reconciler`);
  });

  it('with its queue full it drops new changes: each counted, the burst logged as two lines, not one per change', async function () {
    const lines: { msg: string; dropped?: number }[] = [];
    const capturing = pino(
      { level: 'info' },
      { write: (line: string) => lines.push(JSON.parse(line) as { msg: string; dropped?: number }) },
    );
    const { names, webhook, connection, open, counted } = await gatedWebhook({
      maxQueued: 3,
      dropReportIntervalMs: 300,
      logger: capturing,
    });
    // Two under way, three waiting: the other five are dropped.
    assert.equal(await counted('failed'), 5);
    const drops = () => lines.filter((line) => line.msg.includes('changes already wait for Temporal')).map((line) => line.dropped);
    assert.deepEqual(drops(), [1], 'the first drop at once');
    await eventually('the rest of the burst to be logged as one count', async () => (drops().length === 2 ? true : undefined));
    assert.deepEqual(drops(), [1, 4]);
    open();
    assert.equal(await webhook.drain(30_000), 0);
    await connection.close();
    assert.equal(await counted('enrolled'), 5);
    const enrolled = await Promise.all(names.map(async (name) => ((await workflowState(name)) === 'RUNNING' ? name : undefined)));
    assert.deepEqual(enrolled.filter(Boolean), names.slice(0, 5), 'the first five, in the order they came');
  });

  /** An AdmissionReview as the apiserver would send it for `name` with `uid`: no object on DELETE, no oldObject on CREATE. */
  const namespaceReview = (
    operation: 'CREATE' | 'UPDATE' | 'DELETE',
    name: string,
    uid: string,
    labels: Record<string, string>,
    oldLabels?: Record<string, string>,
  ) =>
    JSON.stringify({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: `review-${operation}-${name}`,
        operation,
        name,
        ...(operation === 'DELETE' ? {} : { object: { metadata: { name, uid, labels } } }),
        ...(operation === 'CREATE' ? {} : { oldObject: { metadata: { name, uid, labels: oldLabels ?? labels } } }),
      },
    });

  it('two changes to one namespace reach Temporal in the order they were admitted, even when the first is slow', async function () {
    const connection = await Connection.connect({ address: temporal.address });
    const own = createEnrolment({
      client: new Client({ connection }),
      taskQueue,
      policy: POLICY,
      systemNamespaces: SYSTEM,
      shutdownDispatchAheadMs: DISPATCH_AHEAD_MS,
    });
    const name = newName('order');
    // Not made in the cluster (the suite's own webhook would act on it): "stored" as the test says.
    const stored = {
      name,
      uid: `uid-${name}`,
      labels: { scheduler: 'enabled' } as Record<string, string>,
      annotations: {},
      terminating: false,
    };
    let firstStarted!: () => void;
    const firstUnderWay = new Promise<void>((resolve) => (firstStarted = resolve));
    let openFirst!: () => void;
    const firstGate = new Promise<void>((resolve) => (openFirst = resolve));
    const applied: boolean[] = [];
    let calls = 0;
    const webhook = createAdmissionWebhook({
      enrolment: {
        ...own,
        enrol: async (namespace, enabled, by, policy) => {
          if (++calls === 1) {
            firstStarted();
            await firstGate; // Temporal slow for the first change
          }
          await own.enrol(namespace, enabled, by, policy);
          applied.push(enabled);
        },
      },
      readNamespace: async (wanted) => (wanted === name ? { ...stored, labels: { ...stored.labels } } : undefined),
      logger,
      metrics: createMetrics(),
    });
    const server = await startWebhookServer({
      certFile: tls.certFile,
      keyFile: tls.keyFile,
      port: 0,
      host: '127.0.0.1',
      router: webhook.router,
      logger,
    });
    try {
      const review = (operation: 'CREATE' | 'UPDATE', labels: Record<string, string>, oldLabels?: Record<string, string>) =>
        namespaceReview(operation, name, stored.uid, labels, oldLabels);
      await postAdmission(server.url, review('CREATE', { scheduler: 'enabled' }), tls.ca);
      await firstUnderWay; // the create has read the namespace as enabled, and waits for Temporal
      stored.labels = { scheduler: 'disabled' };
      await postAdmission(server.url, review('UPDATE', { scheduler: 'disabled' }, { scheduler: 'enabled' }), tls.ca);
      await new Promise((resolve) => setTimeout(resolve, 300)); // room for the relabel to overtake, were it allowed to
      openFirst();
      assert.equal(await webhook.drain(30_000), 0);
      assert.deepEqual(applied, [true, false], 'the create, then the relabel');
      const status = await temporal.client.workflow.getHandle(environmentWorkflowId(name)).query(statusQuery);
      assert.equal(status.enabled, false, 'scheduled as its label says now');
    } finally {
      await server.close();
      await connection.close();
    }
  });

  it('a forged DELETE naming another uid, and a namespace read that never answers, change nothing and block nothing', async function () {
    const connection = await Connection.connect({ address: temporal.address });
    const own = createEnrolment({
      client: new Client({ connection }),
      taskQueue,
      policy: POLICY,
      systemNamespaces: SYSTEM,
      shutdownDispatchAheadMs: DISPATCH_AHEAD_MS,
    });
    const victim = newName('forged-uid');
    const hung = newName('hung-read');
    const fine = newName('fine');
    await own.enrol(victim, true, 'test');
    await own.enrol(fine, true, 'test');
    const { runId } = await temporal.client.workflow.getHandle(environmentWorkflowId(victim)).describe();
    const testMetrics = createMetrics();
    const webhook = createAdmissionWebhook({
      enrolment: own,
      // Not made in the cluster (the suite's own webhook would act on them): "stored" as the test says.
      readNamespace: async (name) => {
        if (name === hung) return new Promise(() => undefined); // an apiserver that accepts and never answers
        if (name === fine) return { name, uid: `uid-${name}`, labels: { scheduler: 'disabled' }, annotations: {}, terminating: false };
        return { name, uid: 'real-uid', labels: { scheduler: 'enabled' }, annotations: {}, terminating: false };
      },
      logger,
      metrics: testMetrics,
      concurrency: 1,
      confirmWithinMs: 500,
    });
    const server = await startWebhookServer({
      certFile: tls.certFile,
      keyFile: tls.keyFile,
      port: 0,
      host: '127.0.0.1',
      router: webhook.router,
      logger,
    });
    const review = namespaceReview;
    try {
      await postAdmission(server.url, review('DELETE', victim, 'anything-else', { scheduler: 'enabled' }), tls.ca);
      await postAdmission(server.url, review('UPDATE', hung, `uid-${hung}`, { scheduler: 'disabled' }, { scheduler: 'enabled' }), tls.ca);
      await postAdmission(server.url, review('UPDATE', fine, `uid-${fine}`, { scheduler: 'disabled' }, { scheduler: 'enabled' }), tls.ca);
      assert.equal(await webhook.drain(10_000), 0, 'nothing left waiting behind the hung read');
      const victimNow = await temporal.client.workflow.getHandle(environmentWorkflowId(victim)).describe();
      assert.equal(victimNow.status.name, 'RUNNING', 'the environment of a namespace still there is not retired');
      assert.equal(victimNow.runId, runId);
      assert.equal(
        (await temporal.client.workflow.getHandle(environmentWorkflowId(fine)).query(statusQuery)).enabled,
        false,
        'the change after the hung read was passed on',
      );
      const counted = async (outcome: string) =>
        (await testMetrics.admissions.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
      assert.equal(await counted('unconfirmed'), 2, 'the forged DELETE and the unanswered read');
    } finally {
      await server.close();
      await connection.close();
    }
  });

  it('with Temporal unreachable it still allows at once, counts the failure, and the reconciler repairs it', async function () {
    // A second webhook whose Temporal is a closed port.
    const deadClient = new Client({ connection: Connection.lazy({ address: '127.0.0.1:1' }) });
    const deadMetrics = createMetrics();
    const dead = await startWebhookServer({
      certFile: tls.certFile,
      keyFile: tls.keyFile,
      port: 0,
      host: '127.0.0.1',
      router: createAdmissionWebhook({
        enrolment: createEnrolment({
          client: deadClient,
          taskQueue,
          policy: POLICY,
          systemNamespaces: SYSTEM,
          shutdownDispatchAheadMs: DISPATCH_AHEAD_MS,
        }),
        readNamespace: createNamespaceReader(cluster.kubeConfig),
        logger,
        metrics: deadMetrics,
      }).router,
      logger,
    });
    const missed = newName('missed');
    try {
      // The namespace is made while our webhook is down too (the apiserver ignores the failure)...
      await admission.patchValidatingWebhookConfiguration(
        { name: WEBHOOK_NAME, body: [{ op: 'replace', path: '/webhooks/0/clientConfig/url', value: `${dead.url}/admission/namespaces` }] },
        jsonPatch(),
      );
      await eventually('the apiserver to call the unreachable-Temporal webhook', async () => {
        await core.createNamespace({ body: { metadata: { name: newName('probe-dead') } }, dryRun: 'All' });
        const [failedDry] = (await deadMetrics.admissions.get()).values.filter((v) => v.labels.outcome === 'dry-run');
        return failedDry ? true : undefined;
      });
      const began = Date.now();
      await core.createNamespace({
        body: { metadata: { name: missed, labels: { scheduler: 'disabled' }, annotations: { 'devenv-scheduler/shutdown-time': '18:45' } } },
      });
      const tookMs = Date.now() - began;
      assert.ok(tookMs < 2000, `namespace creation took ${tookMs} ms`);
      await eventually(
        'the failure to be counted',
        async () =>
          (await deadMetrics.admissions.get()).values.find((v) => v.labels.outcome === 'failed')?.value === 1 ? true : undefined,
        60_000,
      );
      assert.equal(await workflowState(missed), 'NONE');
    } finally {
      await admission.patchValidatingWebhookConfiguration(
        {
          name: WEBHOOK_NAME,
          body: [{ op: 'replace', path: '/webhooks/0/clientConfig/url', value: `${webhook.url}/admission/namespaces` }],
        },
        jsonPatch(),
      );
      await dead.close();
    }

    // Also an environment whose namespace vanished unseen, and one whose label changed unseen.
    const ghost = newName('ghost');
    await enrolment.enrol(ghost, true, 'test');
    const drifted = newName('drifted');
    await core.createNamespace({ body: { metadata: { name: drifted } } });
    await settled('the webhook to enrol it', async () => ((await workflowState(drifted)) === 'RUNNING' ? true : undefined));
    await handle(drifted).signal('setEnabled', { enabled: false, by: 'test' });
    await eventually('visibility to see both', async () => {
      const seen = new Set<string>();
      for await (const e of temporal.client.workflow.list({
        query: `WorkflowType = 'environmentWorkflow' AND ExecutionStatus = 'Running'`,
      }))
        seen.add(e.workflowId);
      return seen.has(environmentWorkflowId(ghost)) && seen.has(environmentWorkflowId(drifted)) ? true : undefined;
    });
    await eventually('visibility to see drifted as disabled', async () => {
      for await (const e of temporal.client.workflow.list({
        query: `WorkflowId = '${environmentWorkflowId(drifted)}' AND EnvEnabled = false`,
      }))
        return e ? true : undefined;
      return undefined;
    });

    const report = await temporal.client.workflow.execute(reconcileWorkflow, { workflowId: `reconcile-${missed}`, taskQueue });
    assert.ok(report.enrolled.includes(missed), `missed namespace enrolled: ${JSON.stringify(report)}`);
    assert.ok(report.retired.includes(ghost), 'environment of a vanished namespace retired');
    assert.ok(report.enabled.includes(drifted), 'label scheduler (absent = enabled) applied');
    assert.deepEqual(report.failed, []);
    assert.equal((await status(missed)).phase, 'disabled', "the missed namespace's label is honoured");
    assert.equal((await status(missed)).policy.shutdownTime, '18:45', 'and its policy annotation');
    await eventually('the ghost to complete', async () => ((await workflowState(ghost)) === 'COMPLETED' ? true : undefined));
    assert.equal((await status(drifted)).enabled, true);

    // A second pass finds nothing left to do.
    await eventually('visibility to catch up', async () => {
      const again = await temporal.client.workflow.execute(reconcileWorkflow, {
        workflowId: `reconcile-again-${missed}-${Date.now()}`,
        taskQueue,
      });
      return again.enrolled.length + again.enabled.length + again.disabled.length + again.replanned.length + again.retired.length === 0
        ? again
        : undefined;
    });
  });

  it("the reconciler gives running environments the policy their annotations and the service's settings ask for now", async function () {
    // As an earlier version of the service left them: another default shutdown time, no dispatch-ahead.
    const earlier = createEnrolment({
      client: temporal.client,
      taskQueue,
      policy: { ...POLICY, shutdownTime: '17:00' },
      systemNamespaces: SYSTEM,
      shutdownDispatchAheadMs: 0,
    });
    const plain = newName('replan');
    const annotated = newName('replan-annotated');
    await core.createNamespace({ body: { metadata: { name: plain } } });
    await core.createNamespace({ body: { metadata: { name: annotated, annotations: { 'devenv-scheduler/shutdown-time': '18:45' } } } });
    for (const name of [plain, annotated]) {
      await settled(`${name} to be enrolled`, async () => ((await workflowState(name)) === 'RUNNING' ? true : undefined));
      await earlier.applyPolicy(name, earlier.defaults, true, 'earlier-version');
      assert.equal((await statusWhen(name, (s) => s.policy.shutdownTime === '17:00')).policy.shutdownTime, '17:00');
    }
    const environments = createEnvironmentsClient(temporal.client);
    await eventually('visibility to see what the earlier version left', async () => {
      const seen = (await environments.list()).filter((e) => e.namespace === plain || e.namespace === annotated);
      return seen.length === 2 && seen.every((e) => e.policy?.shutdownTime === '17:00' && e.dispatchAheadMs === 0) ? true : undefined;
    });

    const report = await temporal.client.workflow.execute(reconcileWorkflow, { workflowId: `reconcile-${plain}`, taskQueue });
    assert.deepEqual(
      report.replanned.filter((name) => name === plain || name === annotated),
      [plain, annotated].sort(),
    );
    assert.ok(
      ![...report.enrolled, ...report.enabled, ...report.disabled, ...report.retired].some((name) => name === plain || name === annotated),
      JSON.stringify(report),
    );
    assert.deepEqual(report.failed, []);
    const [now, own] = [await status(plain), await status(annotated)];
    assert.deepEqual(now.policy, POLICY, "the service's settings");
    assert.deepEqual(own.policy, { ...POLICY, shutdownTime: '18:45' }, 'with its annotation');
    assert.deepEqual([now.lastAction?.action, now.lastAction?.by], ['policy', 'reconciler']);
    for (const name of [plain, annotated]) {
      assert.equal(
        (await handle(name).describe()).memo?.[DISPATCH_AHEAD_MEMO],
        DISPATCH_AHEAD_MS,
        `${name} dispatches its stops ahead now`,
      );
    }

    await eventually('a second pass to find nothing to re-plan', async () => {
      const again = await temporal.client.workflow.execute(reconcileWorkflow, {
        workflowId: `reconcile-again-${plain}-${Date.now()}`,
        taskQueue,
      });
      return again.replanned.length === 0 ? again : undefined;
    });
  });

  it('the reconciler retires as unmanaged an environment whose namespace is there but no longer to be scheduled, and as namespace-deleted one whose namespace is gone or terminating', async function () {
    // Unlabelled, with an environment as an earlier version gave every namespace.
    const legacy = `legacy-${pid}`;
    await enrolment.enrol(legacy, true, 'earlier-version');
    // Labelled, then made a system namespace by configuration.
    const madeSystem = newName('made-system');
    await core.createNamespace({ body: { metadata: { name: madeSystem, labels: { scheduler: 'enabled' } } } });
    // Gone without the webhook seeing it.
    const ghost = newName('ghost');
    await enrolment.enrol(ghost, true, 'test');
    // Being deleted (nothing here finishes it), with an environment enrolled after the webhook retired the first.
    const terminating = newName('terminating');
    await core.createNamespace({ body: { metadata: { name: terminating, labels: { scheduler: 'enabled' } } } });
    await settled(`${terminating} to be enrolled`, async () => ((await workflowState(terminating)) === 'RUNNING' ? true : undefined));
    await core.deleteNamespace({ name: terminating });
    await eventually(`${terminating} retired by the webhook`, async () =>
      (await workflowState(terminating)) === 'COMPLETED' ? true : undefined,
    );
    await enrolment.enrol(terminating, true, 'test');
    const names = [legacy, madeSystem, ghost, terminating];
    const environments = createEnvironmentsClient(temporal.client);
    await eventually('visibility to see all four running', async () => {
      const seen = new Set((await environments.list()).map((e) => e.namespace));
      return names.every((name) => seen.has(name)) ? true : undefined;
    });

    const reconciler = createEnrolmentActivities({
      client: temporal.client,
      enrolment: createEnrolment({
        client: temporal.client,
        taskQueue,
        policy: POLICY,
        systemNamespaces: [...SYSTEM, madeSystem],
        shutdownDispatchAheadMs: DISPATCH_AHEAD_MS,
      }),
      listNamespaces: createNamespaceLister(cluster.kubeConfig),
      logger,
    });
    const report = await reconciler.reconcileEnvironments();
    assert.deepEqual(report.failed, []);
    const expected = { [legacy]: 'unmanaged', [madeSystem]: 'unmanaged', [ghost]: 'namespace-deleted', [terminating]: 'namespace-deleted' };
    for (const [name, reason] of Object.entries(expected)) {
      assert.ok(report.retired.includes(name), `${name} retired: ${JSON.stringify(report.retired)}`);
      assert.equal(report.decisions.find((d) => d.namespace === name)?.retire, reason, name);
      await eventually(`${name} to complete`, async () => ((await workflowState(name)) === 'COMPLETED' ? true : undefined));
      assert.deepEqual(await retireSignals(name), [{ reason, by: 'reconciler' }], name);
    }
  });

  it('a namespace deleted and created again while a reconcile runs keeps its new environment', async function () {
    const name = newName('recreated');
    await core.createNamespace({ body: { metadata: { name } } });
    const first = await settled('the first environment', async () => {
      const d = await handle(name).describe();
      return d.status.name === 'RUNNING' ? d.runId : undefined;
    });
    const environments = createEnvironmentsClient(temporal.client);
    await eventually('visibility to list it', async () =>
      (await environments.list()).some((e) => e.namespace === name) ? true : undefined,
    );

    const listNamespaces = createNamespaceLister(cluster.kubeConfig);
    let second: string | undefined;
    /** The reconciler's namespace list, taken while CI has the namespace deleted; CI creates it again before the reconciler acts on it. */
    async function racingList(): Promise<NamespaceInfo[]> {
      await core.deleteNamespace({ name });
      await eventually('the webhook to retire the first environment', async () =>
        (await temporal.client.workflow.getHandle(environmentWorkflowId(name), first).describe()).status.name === 'COMPLETED'
          ? true
          : undefined,
      );
      // What the namespace controller does once the namespace is empty (there is none here).
      await core.replaceNamespaceFinalize({ name, body: { metadata: { name }, spec: { finalizers: [] } } });
      await eventually('the namespace to be gone', async () =>
        core.readNamespace({ name }).then(
          () => undefined,
          () => true,
        ),
      );
      const snapshot = await listNamespaces();
      assert.ok(!snapshot.some((ns) => ns.name === name));
      await core.createNamespace({ body: { metadata: { name } } });
      second = await settled('the new environment', async () => {
        const d = await handle(name).describe();
        return d.status.name === 'RUNNING' && d.runId !== first ? d.runId : undefined;
      });
      return snapshot;
    }

    const report = await createEnrolmentActivities({
      client: temporal.client,
      enrolment,
      listNamespaces: racingList,
      logger,
    }).reconcileEnvironments();
    assert.deepEqual(report.failed, []);
    assert.ok(!report.retired.includes(name), `retired: ${JSON.stringify(report.retired)}`);
    const now = await handle(name).describe();
    assert.deepEqual([now.runId, now.status.name], [second, 'RUNNING'], 'the new environment runs on');
    assert.deepEqual(await retireSignals(name, second), [], 'and was never told to retire');
    // The next reconcile sees the namespace again, labelled, with its environment: nothing to do.
    const next = await temporal.client.workflow.execute(reconcileWorkflow, { workflowId: `reconcile-after-${name}`, taskQueue });
    assert.equal(next.decisions.find((d) => d.namespace === name)?.action, 'unchanged');
    assert.equal(await workflowState(name), 'RUNNING');
  });
});

// client-node 1.x sends no patch Content-Type unless told.
const mergePatch = () => setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const jsonPatch = () => setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);

async function postAdmission(url: string, body: string, ca: Buffer): Promise<{ status: number; json: unknown }> {
  const { status, text } = await postJsonOverTls(`${url}/admission/namespaces`, body, ca);
  return { status, json: JSON.parse(text) as unknown };
}
