/**
 * The REST API over real HTTP into the real koa app, with the Temporal dev server and a
 * worker running the real workflows behind it. The OpenAPI document is checked with an
 * OpenAPI validator, and every operation in it is called and answers as it documents.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Validator } from '@seriousme/openapi-schema-validator';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { z } from 'zod';
import type { SupportPod } from '../src/activities/contracts';
import { DEFAULT_SUPPORT_SIZES } from '../src/domain/support-sizes';
import { createEnvironmentsClient } from '../src/client/environments';
import { createMetrics } from '../src/api/metrics';
import {
  actionResult,
  createRestRouter,
  environmentHistory,
  environmentList,
  environmentStatus,
  environmentWhy,
  errorBody,
  inProgress,
  supportPod,
  supportPodList,
} from '../src/api/rest';
import { createApi } from '../src/api/server';
import { createLogger } from '../src/logger';
import { environmentWorkflow, environmentWorkflowId, retireSignal, statusQuery } from '../src/workflows';
import { asClusterPod, supportPodActivities } from './support/support-pods';
import { recordingActivities, type RecordingActivities } from './support/recording-activities';
import { eventually } from './support/slack';
import { devServerEnv, uniqueTaskQueue, workflowBundle } from './support/temporal';
import { morningPolicy } from './support/policies';

const CONTROL = 'control-token-0123456789abcdef';
const READER = 'read-only-token-0123456789abcdef';
/** A control token that is not a support admin (`ci` is one). */
const DEV = 'dev-token-0123456789abcdef0123';
/** Given to the router as its SHA-256 only, as `API_TOKENS=hashed:sha256:<hex>` would. */
const HASHED = 'hashed-only-token-0123456789abcdef';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');
/** The suite's command wait: start, stop and prolongate not done by then answer 202. */
const WAIT_MS = 2500;

describe('REST API and OpenAPI document (Temporal dev server behind it)', function () {
  this.timeout(120_000);
  let env: TestWorkflowEnvironment;
  let server: Server;
  let base: string;
  let worker: Worker;
  let running: Promise<void>;
  let taskQueue: string;
  let document: { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
  let counter = 0;
  let recording: RecordingActivities;
  const namespaces: string[] = [];
  const pods = new Map<string, SupportPod>();
  const supportActivities = supportPodActivities(pods, ['M', 'XL']);

  before(async function () {
    env = await devServerEnv();
    taskQueue = uniqueTaskQueue('rest');
    recording = recordingActivities(async () => Date.now());
    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: { ...recording, ...supportActivities },
    });
    running = worker.run();
    const metrics = createMetrics();
    const rest = createRestRouter({
      environments: createEnvironmentsClient(env.client, {
        support: { maxPodsPerUser: 2, maxSize: 'M', sizes: DEFAULT_SUPPORT_SIZES, admins: ['api:ci'] },
        supportPods: async () => [...pods.values()].map(asClusterPod),
        // As SLACK_OWNERS_ONLY=control sets it: REST tokens are no Slack users, and stay unlimited.
        owners: { controlByOwnersOnly: true, admins: [] },
      }),
      tokens: [
        { name: 'ci', sha256: sha256(CONTROL), scope: 'control' },
        { name: 'dashboard', sha256: sha256(READER), scope: 'read' },
        { name: 'dev', sha256: sha256(DEV), scope: 'control' },
        { name: 'hashed', sha256: sha256(HASHED), scope: 'read' },
      ],
      logger: createLogger('silent'),
      metrics,
      supportSizes: ['M', 'XL'],
      supportTaskQueue: taskQueue,
      commandWaitMs: WAIT_MS,
    });
    const app = createApi({ client: env.client, logger: createLogger('silent'), metrics, routers: [rest] });
    server = await new Promise((resolve) => {
      const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
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

  async function environment(): Promise<string> {
    const namespace = `rest-${process.pid}-${++counter}`;
    await env.client.workflow.start(environmentWorkflow, {
      workflowId: environmentWorkflowId(namespace),
      taskQueue,
      args: [{ namespace, policy: morningPolicy(), enabled: true }],
    });
    namespaces.push(namespace);
    return namespace;
  }

  /** `token: null` sends no Authorization header. */
  async function call(
    method: string,
    path: string,
    { token = CONTROL as string | null, body = undefined as unknown, timeoutMs = 30_000 } = {},
  ) {
    const response = await fetch(`${base}${path}`, {
      method,
      signal: AbortSignal.timeout(timeoutMs),
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : undefined) as Record<string, unknown>, headers: response.headers };
  }

  /** The body parses with the schema the document was generated from. */
  function answersAs(schema: z.ZodType, body: unknown, what: string): void {
    const result = schema.safeParse(body);
    assert.ok(result.success, `${what}: ${JSON.stringify(body)} does not match its documented schema: ${result.error?.message}`);
  }

  it('serves a valid OpenAPI 3.1 document listing every operation', async function () {
    const response = await fetch(`${base}/openapi.json`);
    assert.equal(response.status, 200);
    document = (await response.json()) as typeof document;
    const result = await new Validator().validate(document as never);
    assert.ok(result.valid, `invalid OpenAPI document: ${JSON.stringify(result.errors)}`);
    const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`),
    );
    assert.deepEqual(operations.sort(), [
      'DELETE /api/v1/support-pods/{name}',
      'GET /api/v1/environments',
      'GET /api/v1/environments/{namespace}',
      'GET /api/v1/environments/{namespace}/history',
      'GET /api/v1/environments/{namespace}/timeline',
      'GET /api/v1/environments/{namespace}/why',
      'GET /api/v1/savings',
      'GET /api/v1/savings/weekly',
      'GET /api/v1/support-pods',
      'GET /api/v1/support-pods/{name}',
      'POST /api/v1/environments/{namespace}/prolongate',
      'POST /api/v1/environments/{namespace}/start',
      'POST /api/v1/environments/{namespace}/stop',
      'POST /api/v1/support-pods',
    ]);
  });

  it('no token or a wrong token: 401; a read-only token may look but not act: 403, and nothing changes', async function () {
    const namespace = await environment();
    const none = await call('GET', '/api/v1/environments', { token: null });
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer');
    answersAs(errorBody, none.body, '401');
    assert.match(String(none.body.error), /Authorization: Bearer/);
    const wrong = await call('POST', `/api/v1/environments/${namespace}/stop`, { token: 'not-a-real-token-at-all' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error, 'the token is not valid');

    assert.equal((await call('GET', `/api/v1/environments/${namespace}`, { token: READER })).status, 200);
    const refused = await call('POST', `/api/v1/environments/${namespace}/stop`, { token: READER });
    assert.equal(refused.status, 403);
    assert.match(String(refused.body.error), /"dashboard" is read-only; stop rest-\d+-\d+ needs a control token/);
    assert.equal((await env.client.workflow.getHandle(environmentWorkflowId(namespace)).query(statusQuery)).phase, 'running');
  });

  it('tokens are kept and compared as SHA-256 digests: a token given as its digest only works; near misses and other lengths get 401', async function () {
    const namespace = await environment();
    const hashed = await call('GET', `/api/v1/environments/${namespace}`, { token: HASHED });
    assert.equal(hashed.status, 200, JSON.stringify(hashed.body));
    for (const wrong of [HASHED.slice(0, -1), `${HASHED}x`, `${HASHED.slice(0, -1)}X`, sha256(HASHED), 'a', 'x'.repeat(4000)]) {
      const response = await call('GET', `/api/v1/environments/${namespace}`, { token: wrong });
      assert.equal(response.status, 401, `${wrong.slice(0, 40)}: ${JSON.stringify(response.body)}`);
      assert.equal(response.body.error, 'the token is not valid');
    }
    assert.equal((await call('POST', `/api/v1/environments/${namespace}/stop`, { token: HASHED })).status, 403, 'its scope still applies');
  });

  it('every operation answers with its documented status and schema', async function () {
    const namespace = await environment();
    const status = await call('GET', `/api/v1/environments/${namespace}`);
    assert.equal(status.status, 200);
    answersAs(environmentStatus, status.body, 'GET environment');
    assert.equal(status.body.phase, 'running');

    const list = await eventually('the new environment in the list', async () => {
      const r = await call('GET', '/api/v1/environments');
      return (r.body.environments as { namespace: string }[]).some((e) => e.namespace === namespace) ? r : undefined;
    });
    answersAs(environmentList, list.body, 'GET environments');

    const prolonged = await call('POST', `/api/v1/environments/${namespace}/prolongate`, { body: { duration: '1h30m' } });
    assert.equal(prolonged.status, 200);
    answersAs(actionResult, prolonged.body, 'prolongate');
    assert.match(String(prolonged.body.message), /prolongated by 1h30m by api:ci/);

    const stopped = await call('POST', `/api/v1/environments/${namespace}/stop`);
    assert.equal(stopped.status, 200);
    answersAs(actionResult, stopped.body, 'stop');
    assert.equal(stopped.body.phase, 'stopped');

    const started = await call('POST', `/api/v1/environments/${namespace}/start`);
    assert.equal(started.status, 200);
    answersAs(actionResult, started.body, 'start');
    assert.equal(started.body.phase, 'running');

    const history = await call('GET', `/api/v1/environments/${namespace}/history`, { token: READER });
    assert.equal(history.status, 200);
    answersAs(environmentHistory, history.body, 'GET history');
    const entries = history.body.entries as { action: string; by: string; detail?: string }[];
    assert.deepEqual(
      entries.map((e) => `${e.action} ${e.by}`),
      ['enrol scheduler', 'prolongate api:ci', 'stop api:ci', 'start api:ci'],
    );
    assert.equal(entries[1]!.detail, '+1h30m');
    const why = await call('GET', `/api/v1/environments/${namespace}/why`, { token: READER });
    assert.equal(why.status, 200);
    answersAs(environmentWhy, why.body, 'GET why');
    assert.match(String(why.body.why), /^stops today \d\d:\d\d \S+ \(shutdown time \d\d:\d\d \S+\)$/);
    assert.equal((await call('GET', '/api/v1/environments/nosuch-env/why')).status, 404);
    assert.equal((await call('GET', '/api/v1/environments/Not_A_Name/history')).status, 422);

    const name = `pod-${process.pid}`;
    const created = await call('POST', '/api/v1/support-pods', { body: { name, size: 'm' } });
    assert.equal(created.status, 202);
    const pod = await eventually('the pod to exist', async () => {
      const r = await call('GET', `/api/v1/support-pods/${name}`);
      return r.status === 200 && r.body.phase ? r : undefined;
    });
    answersAs(supportPod, pod.body, 'GET support pod');
    assert.deepEqual([pod.body.size, pod.body.createdBy], ['M', 'api:ci']);
    const listed = await call('GET', '/api/v1/support-pods');
    answersAs(supportPodList, listed.body, 'GET support pods');
    assert.ok((listed.body.supportPods as { name: string }[]).some((p) => p.name === name));
    assert.equal((await call('POST', '/api/v1/support-pods', { body: { name, size: 'M' } })).status, 409, 'a second pod of the same name');
    assert.equal((await call('DELETE', `/api/v1/support-pods/${name}`)).status, 202);
    await eventually('the pod to be deleted', () => (pods.size === 0 ? true : undefined));
  });

  it('support pods: 2 per token at once (409), sizes over M only for API_SUPPORT_ADMINS (403), deleted only by the token that made them or an admin (403); nothing changes', async function () {
    const name = (n: string) => `rest-limits-${process.pid}-${n}`;
    const exists = async (n: string) => {
      try {
        return (await env.client.workflow.getHandle(`support/${name(n)}`).describe()).status.name === 'RUNNING';
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return false;
        throw err;
      }
    };
    const created = (n: string) => eventually(`${name(n)} to exist`, () => (pods.has(name(n)) ? true : undefined));

    const big = await call('POST', '/api/v1/support-pods', { token: DEV, body: { name: name('big'), size: 'XL' } });
    assert.equal(big.status, 403, JSON.stringify(big.body));
    answersAs(errorBody, big.body, '403');
    assert.equal(
      big.body.error,
      'XL (4 CPU, 8Gi) is larger than M (1 CPU, 2Gi), the largest support pod you may start; pick M or smaller, or ask a support admin',
    );
    assert.equal(await exists('big'), false);

    for (const n of ['1', '2']) {
      assert.equal((await call('POST', '/api/v1/support-pods', { token: DEV, body: { name: name(n), size: 'M' } })).status, 202);
      await created(n);
    }
    const third = await call('POST', '/api/v1/support-pods', { token: DEV, body: { name: name('3'), size: 'M' } });
    assert.equal(third.status, 409, JSON.stringify(third.body));
    assert.match(
      String(third.body.error),
      /^you have 2 support pods already \(rest-limits-\d+-1, rest-limits-\d+-2\), the most one person may have at once/,
    );
    assert.equal(await exists('3'), false);

    // ci is an admin: any size, and any pod; dev may not delete ci's.
    assert.equal((await call('POST', '/api/v1/support-pods', { body: { name: name('ci'), size: 'XL' } })).status, 202);
    await created('ci');
    const notHis = await call('DELETE', `/api/v1/support-pods/${name('ci')}`, { token: DEV });
    assert.equal(notHis.status, 403, JSON.stringify(notHis.body));
    assert.equal(notHis.body.error, `support pod ${name('ci')} was started by api:ci; only they or a support admin may stop it`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(await exists('ci'), true);
    assert.ok(pods.has(name('ci')));

    assert.equal((await call('DELETE', `/api/v1/support-pods/${name('1')}`, { token: DEV })).status, 202, 'its own');
    assert.equal((await call('DELETE', `/api/v1/support-pods/${name('2')}`)).status, 202, 'an admin');
    assert.equal((await call('DELETE', `/api/v1/support-pods/${name('ci')}`)).status, 202);
    await eventually('every pod deleted', () => (['1', '2', 'ci'].some((n) => pods.has(name(n))) ? undefined : true));
    const documented = ((await (await fetch(`${base}/openapi.json`)).json()) as typeof document).paths['/api/v1/support-pods']!.post!
      .responses;
    assert.ok(documented['403'] && documented['409'], 'both refusals are documented');
  });

  it('bad input gets 422, unknown names 404, refusals 409: state unchanged', async function () {
    const namespace = await environment();
    const before = await env.client.workflow.getHandle(environmentWorkflowId(namespace)).query(statusQuery);
    const cases: [string, string, unknown, number, RegExp][] = [
      ['POST', `/api/v1/environments/${namespace}/prolongate`, { duration: '-3h' }, 422, /"-3h" is negative/],
      ['POST', `/api/v1/environments/${namespace}/prolongate`, { duration: '0m' }, 422, /longer than 0 minutes/],
      ['POST', `/api/v1/environments/${namespace}/prolongate`, { duration: '1000h' }, 409, /over the limit/],
      ['POST', `/api/v1/environments/${namespace}/prolongate`, {}, 422, /duration/],
      ['POST', '/api/v1/environments/Not_A_Namespace/stop', undefined, 422, /DNS-1123|lowercase/],
      ['GET', '/api/v1/environments/no-such-env', undefined, 404, /no-such-env is not a managed environment/],
      ['POST', '/api/v1/environments/no-such-env/start', undefined, 404, /not a managed environment/],
      ['POST', '/api/v1/support-pods', { name: 'ok-name', size: 'XXL' }, 422, /size/i],
      ['DELETE', '/api/v1/support-pods/nobody', undefined, 404, /there is no support pod nobody/],
    ];
    for (const [method, path, body, expected, pattern] of cases) {
      const response = await call(method, path, { body });
      assert.equal(response.status, expected, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(response.body)}`);
      answersAs(errorBody, response.body, `${method} ${path}`);
      assert.match(String(response.body.error), pattern);
    }
    assert.deepEqual(await env.client.workflow.getHandle(environmentWorkflowId(namespace)).query(statusQuery), before);

    // Prolongating a stopped environment is refused by the workflow itself.
    await call('POST', `/api/v1/environments/${namespace}/stop`);
    const refused = await call('POST', `/api/v1/environments/${namespace}/prolongate`, { body: { duration: '1h' } });
    assert.equal(refused.status, 409);
    assert.match(String(refused.body.error), /only a running environment can be prolongated/);
  });

  it('a body that is not JSON: 400 (not 422), with the route and JSON body expected as usage', async function () {
    const namespace = await environment();
    const response = await call('POST', `/api/v1/environments/${namespace}/prolongate`, { body: '{not json' });
    assert.equal(response.status, 400, JSON.stringify(response.body));
    answersAs(errorBody, response.body, 'not JSON');
    assert.match(String(response.body.error), /not JSON/);
    assert.deepEqual(response.body.usage, [
      'POST /api/v1/environments/{namespace}/prolongate with the JSON body {"duration": "<duration>"}',
    ]);
    const documented = ((await (await fetch(`${base}/openapi.json`)).json()) as typeof document).paths;
    assert.ok(documented['/api/v1/environments/{namespace}/prolongate']!.post!.responses['400'], 'the 400 is documented');
  });

  it('error bodies give REST usage (method, path, JSON body), never the Slack grammar', async function () {
    const namespace = await environment();
    const cases: [string, string, unknown, string][] = [
      [
        'POST',
        `/api/v1/environments/${namespace}/prolongate`,
        { duration: '-3h' },
        'POST /api/v1/environments/{namespace}/prolongate with the JSON body {"duration": "<duration>"}',
      ],
      [
        'POST',
        `/api/v1/environments/${namespace}/prolongate`,
        {},
        'POST /api/v1/environments/{namespace}/prolongate with the JSON body {"duration": "<duration>"}',
      ],
      ['POST', '/api/v1/environments/Not_A_Namespace/stop', undefined, 'POST /api/v1/environments/{namespace}/stop'],
      [
        'POST',
        '/api/v1/support-pods',
        { name: 'ok-name', size: 'XXL' },
        'POST /api/v1/support-pods with the JSON body {"name": "<name>", "size": "<size>"}',
      ],
    ];
    for (const [method, path, body, usage] of cases) {
      const response = await call(method, path, { body });
      assert.equal(response.status, 422, `${method} ${path}: ${JSON.stringify(response.body)}`);
      assert.deepEqual(response.body.usage, [usage], `${method} ${path}`);
      assert.doesNotMatch(JSON.stringify(response.body), /\/devenv/);
    }
  });

  it('an unknown route answers JSON 404 naming it, and a method a route does not answer JSON 405', async function () {
    const unknown = await fetch(`${base}/api/v1/no-such-thing`, { headers: { authorization: `Bearer ${CONTROL}` } });
    assert.equal(unknown.status, 404);
    assert.match(unknown.headers.get('content-type') ?? '', /application\/json/);
    const body = (await unknown.json()) as Record<string, unknown>;
    answersAs(errorBody, body, 'unknown route');
    assert.match(String(body.error), /no route GET \/api\/v1\/no-such-thing/);
    const wrongMethod = await fetch(`${base}/api/v1/environments`, { method: 'PUT', headers: { authorization: `Bearer ${CONTROL}` } });
    assert.equal(wrongMethod.status, 405);
    assert.match(wrongMethod.headers.get('content-type') ?? '', /application\/json/);
    answersAs(errorBody, await wrongMethod.json(), 'wrong method');
  });

  it('an environment whose namespace is gone from the cluster: a stop answers 404 saying so, not 409 "rejected"', async function () {
    const namespace = await environment();
    recording.goneNamespaces.add(namespace);
    const response = await call('POST', `/api/v1/environments/${namespace}/stop`);
    assert.equal(response.status, 404, JSON.stringify(response.body));
    answersAs(errorBody, response.body, 'stop of a namespace that is gone');
    assert.match(String(response.body.error), new RegExp(`the namespace ${namespace} is gone from the cluster`));
  });

  it('a retired environment: status and every action answer 404 "no longer managed", not the closed run\'s last state', async function () {
    const namespace = await environment();
    const handle = env.client.workflow.getHandle(environmentWorkflowId(namespace));
    await handle.signal(retireSignal, { reason: 'namespace-deleted', by: 'test' });
    await handle.result();
    const cases: [string, string, unknown][] = [
      ['GET', `/api/v1/environments/${namespace}`, undefined],
      ['POST', `/api/v1/environments/${namespace}/stop`, undefined],
      ['POST', `/api/v1/environments/${namespace}/start`, undefined],
      ['POST', `/api/v1/environments/${namespace}/prolongate`, { duration: '1h' }],
    ];
    for (const [method, path, body] of cases) {
      const response = await call(method, path, { body });
      assert.equal(response.status, 404, `${method} ${path}: ${JSON.stringify(response.body)}`);
      answersAs(errorBody, response.body, `${method} ${path}`);
      assert.equal(response.body.error, `${namespace} is no longer managed (its namespace was deleted, or it left management)`);
    }
  });

  it('a stop that outlasts the command wait answers 202 within it, documented; it goes on and completes; refusals still come at once', async function () {
    const documented = ((await (await fetch(`${base}/openapi.json`)).json()) as typeof document).paths;
    for (const action of ['start', 'stop', 'prolongate']) {
      assert.ok(documented[`/api/v1/environments/{namespace}/${action}`]!.post!.responses['202'], `POST ${action} documents its 202`);
    }
    const namespace = await environment();
    let release!: () => void;
    recording.holdStops = new Promise<void>((resolve) => (release = resolve));
    try {
      const began = Date.now();
      // Today's code never answered this while the stop hung; the fetch gives up well after the wait.
      const response = await call('POST', `/api/v1/environments/${namespace}/stop`, { timeoutMs: WAIT_MS + 10_000 });
      const took = Date.now() - began;
      assert.equal(response.status, 202, JSON.stringify(response.body));
      answersAs(inProgress, response.body, 'POST stop, still in progress');
      assert.deepEqual(response.body, {
        namespace,
        action: 'stop',
        accepted: true,
        message: `stop ${namespace} is still in progress; its status shows when it is done`,
        status: `/api/v1/environments/${namespace}`,
      });
      assert.ok(took >= WAIT_MS - 50 && took < WAIT_MS + 2000, `answered after ${took} ms, the wait being ${WAIT_MS} ms`);
      assert.equal((await call('GET', String(response.body.status))).body.phase, 'stopping');

      // The validator's refusal is not an action in progress: it is answered at once, as before.
      const refusedAt = Date.now();
      const refused = await call('POST', `/api/v1/environments/${namespace}/prolongate`, { body: { duration: '1h' } });
      assert.equal(refused.status, 409, JSON.stringify(refused.body));
      assert.match(String(refused.body.error), /is stopping: only a running environment can be prolongated/);
      assert.ok(Date.now() - refusedAt < 1500, 'refused at once');
    } finally {
      release();
      recording.holdStops = undefined;
    }
    const done = await eventually('the stop to complete', async () => {
      const status = await call('GET', `/api/v1/environments/${namespace}`);
      return status.body.phase === 'stopped' ? status : undefined;
    });
    assert.match(String((done.body.lastAction as { detail: string }).detail), /1 workloads scaled to 0/);
    assert.equal(recording.calls.filter((c) => c.name === 'stopNamespace' && c.namespace === namespace).length, 1, 'stopped once');
  });

  it('with no worker to take a stop up, it answers 202 (not accepted) within the command wait', async function () {
    const namespace = `rest-unpolled-${process.pid}`;
    const queue = uniqueTaskQueue('rest-unpolled');
    const lone = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: queue,
      workflowBundle: await workflowBundle(),
      activities: recordingActivities(async () => Date.now()),
    });
    await lone.runUntil(async () => {
      const handle = await env.client.workflow.start(environmentWorkflow, {
        workflowId: environmentWorkflowId(namespace),
        taskQueue: queue,
        args: [{ namespace, policy: morningPolicy(), enabled: true }],
      });
      namespaces.push(namespace);
      await handle.query(statusQuery);
    });
    const began = Date.now();
    const response = await call('POST', `/api/v1/environments/${namespace}/stop`, { timeoutMs: WAIT_MS + 10_000 });
    assert.equal(response.status, 202, JSON.stringify(response.body));
    answersAs(inProgress, response.body, 'POST stop, not taken up');
    assert.equal(response.body.accepted, false);
    assert.equal(
      response.body.message,
      `stop ${namespace} has been asked for, but no worker has taken it up yet; its status shows when it is done`,
    );
    assert.ok(Date.now() - began < WAIT_MS + 2000);
  });

  it('an environment with owners: status names them, and under SLACK_OWNERS_ONLY=control a control token still prolongates and stops it', async function () {
    const namespace = `rest-owners-${process.pid}`;
    const handle = await env.client.workflow.start(environmentWorkflow, {
      workflowId: environmentWorkflowId(namespace),
      taskQueue,
      args: [{ namespace, policy: { ...morningPolicy(), owners: ['U024BE7LH', 'S0614TZR7'] }, enabled: true }],
    });
    namespaces.push(namespace);
    await handle.query(statusQuery);
    const status = await call('GET', `/api/v1/environments/${namespace}`);
    answersAs(environmentStatus, status.body, 'GET environment with owners');
    assert.deepEqual((status.body.policy as { owners?: string[] }).owners, ['U024BE7LH', 'S0614TZR7']);
    assert.equal((await call('POST', `/api/v1/environments/${namespace}/prolongate`, { body: { duration: '30m' } })).status, 200);
    assert.equal((await call('POST', `/api/v1/environments/${namespace}/stop`)).status, 200);
    assert.equal((await handle.query(statusQuery)).phase, 'stopped');
  });

  it('status is answered by the Temporal server alone: it works while no worker runs', async function () {
    const namespace = `rest-noworker-${process.pid}`;
    const queue = uniqueTaskQueue('rest-noworker');
    const lone = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: queue,
      workflowBundle: await workflowBundle(),
      activities: recordingActivities(async () => Date.now()),
    });
    await lone.runUntil(async () => {
      const handle = await env.client.workflow.start(environmentWorkflow, {
        workflowId: environmentWorkflowId(namespace),
        taskQueue: queue,
        args: [{ namespace, policy: morningPolicy(), enabled: true }],
      });
      namespaces.push(namespace);
      await handle.query(statusQuery); // the first workflow task has run
    });
    // That worker is gone; nothing polls its task queue now.
    const began = Date.now();
    const status = await call('GET', `/api/v1/environments/${namespace}`);
    assert.equal(status.status, 200, JSON.stringify(status.body));
    answersAs(environmentStatus, status.body, 'GET environment without a worker');
    assert.equal(status.body.phase, 'running');
    assert.match(String(status.body.shutdownDescription), /^today \d\d:\d\d .+, in \d+h \d+m$/);
    assert.ok(Date.now() - began < 2000, 'no waiting for a worker');
    const history = await call('GET', `/api/v1/environments/${namespace}/history`);
    assert.equal(history.status, 200, JSON.stringify(history.body));
    assert.deepEqual(
      (history.body.entries as { action: string }[]).map((e) => e.action),
      ['enrol'],
      'the history is read from the memo, with no worker',
    );
    const why = await call('GET', `/api/v1/environments/${namespace}/why`);
    assert.match(String(why.body.why), /^stops today /);
  });

  it('counts commands by kind and outcome in /metrics', async function () {
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /devenv_commands_total\{[^}]*source="api"[^}]*command="prolongate"[^}]*outcome="ok"[^}]*\} [1-9]/);
    assert.match(metrics, /devenv_commands_total\{[^}]*command="stop"[^}]*outcome="refused"[^}]*\} [1-9]/);
  });
});
