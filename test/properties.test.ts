/**
 * Property-based tests (fast-check) over the two doors strangers knock on: signed slash
 * commands of any text, and AdmissionReview bodies of any shape. Whatever arrives, the
 * server answers (no crash, no hang, no 5xx), with a usage or error message for Slack and
 * an allowing AdmissionReview for the apiserver, and it keeps serving afterwards.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { createAdmissionWebhook } from '../src/api/admission';
import { createMetrics } from '../src/api/metrics';
import { createSlackHandlers } from '../src/api/slack/handlers';
import { createResponder } from '../src/api/slack/responder';
import { createSlackRouter } from '../src/api/slack/router';
import { createEnvironmentsClient } from '../src/client/environments';
import { createApi } from '../src/api/server';
import { startWebhookServer, type WebhookServer } from '../src/api/webhook';
import type { Enrolment } from '../src/client/enrolment';
import { createStanding } from '../src/domain/enrolment';
import { createLogger } from '../src/logger';
import { everyDayPolicy } from './support/policies';
import { postSigned, visibleText } from './support/slack';
import { devServerEnv } from './support/temporal';
import { postJsonOverTls, servingCertificate } from './support/tls';
import { commandText } from './support/command-text';

const SECRET = 'property-signing-secret';
const RUNS = Number(process.env.PROPERTY_RUNS ?? 150);

describe('properties: any input gets an answer', function () {
  this.timeout(180_000);
  const logger = createLogger('silent');

  describe('/slack/commands with any command text', function () {
    let server: Server;
    let url: string;

    before(async function () {
      const env = await devServerEnv();
      // Late answers go nowhere: a port nothing listens on, allowed as a response_url origin.
      const handlers = createSlackHandlers({
        environments: createEnvironmentsClient(env.client),
        responder: createResponder({ logger, origins: ['http://127.0.0.1:1'] }),
        logger,
        replyBudgetMs: 1000,
      });
      const slack = createSlackRouter({ handlers, signingSecret: SECRET, logger });
      server = createApi({ client: env.client, logger, metrics: createMetrics(), routers: [slack] }).listen(0, '127.0.0.1');
      await new Promise((resolve) => server.once('listening', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slack/commands`;
    });

    after(async function () {
      await new Promise((resolve) => server?.close(resolve));
    });

    it('answers 200 within Slack’s 3 seconds with a message, never a crash', async function () {
      const text = commandText(true);
      await fc.assert(
        fc.asyncProperty(text, async (input) => {
          const began = Date.now();
          const response = await postSigned(url, SECRET, {
            user_id: 'U0PROP0001',
            channel_id: 'C0PROP0001',
            command: '/devenv',
            text: input,
            response_url: 'http://127.0.0.1:1/never',
          });
          assert.ok(Date.now() - began < 3000, `took ${Date.now() - began} ms for ${JSON.stringify(input)}`);
          assert.equal(response.status, 200, `${JSON.stringify(input)} -> ${response.status} ${JSON.stringify(response.body)}`);
          assert.ok(visibleText(response.body).length > 0, `no message for ${JSON.stringify(input)}`);
        }),
        { numRuns: RUNS },
      );
      // Still serving.
      assert.equal(
        (await postSigned(url, SECRET, { user_id: 'U1', command: '/devenv', text: 'help', response_url: 'http://127.0.0.1:1/x' })).status,
        200,
      );
    });
  });

  describe('/admission/namespaces with any body', function () {
    let webhook: WebhookServer;
    const calls: string[] = [];
    const tls = servingCertificate();
    // Temporal is not the point here: an enrolment that records, and fails for one name, as Temporal might.
    const rules = { systemNamespaces: ['kube-system'], infrastructureNamespaces: ['monitoring'] };
    const enrolment: Enrolment = {
      rules,
      standing: createStanding(rules),
      defaults: everyDayPolicy(),
      dispatchAheadMs: 10_000,
      async applyPolicy(namespace) {
        calls.push(`policy ${namespace}`);
      },
      async enrol(namespace, enabled) {
        calls.push(`enrol ${namespace} ${enabled}`);
        if (namespace === 'temporal-down') throw new Error('Temporal unavailable');
      },
      async retire(namespace) {
        calls.push(`retire ${namespace}`);
        return true;
      },
      async current() {
        return undefined;
      },
    };
    // Nor is the apiserver: every namespace is stored as a CREATE shows it, labelled; one cannot be read.
    const readNamespace = async (name: string) => {
      if (name === 'apiserver-down') throw new Error('apiserver unavailable');
      return { name, uid: undefined, labels: { scheduler: 'enabled' }, annotations: {}, terminating: false };
    };

    before(async function () {
      webhook = await startWebhookServer({
        certFile: tls.certFile,
        keyFile: tls.keyFile,
        port: 0,
        host: '127.0.0.1',
        router: createAdmissionWebhook({ enrolment, readNamespace, confirmWithinMs: 100, logger, metrics: createMetrics() }).router,
        logger,
      });
    });

    after(async function () {
      await webhook?.close();
    });

    async function post(body: string, path = '/admission/namespaces'): Promise<{ status: number; text: string; ms: number }> {
      const began = Date.now();
      return { ...(await postJsonOverTls(`${webhook.url}${path}`, body, tls.ca)), ms: Date.now() - began };
    }

    it('always answers 200 with an allowing AdmissionReview, within a second', async function () {
      const name = fc.oneof(
        fc.constantFrom('dev1', 'kube-system', 'monitoring', 'temporal-down', 'apiserver-down', ''),
        fc.string({ maxLength: 70 }),
      );
      const labels = fc.option(
        fc.dictionary(
          fc.constantFrom('scheduler', 'team', ''),
          fc.oneof(fc.constantFrom('enabled', 'disabled'), fc.string({ maxLength: 10 }), fc.integer() as fc.Arbitrary<unknown>),
        ),
        { nil: undefined },
      );
      const annotations = fc.option(
        fc.dictionary(
          fc.constantFrom('devenv-scheduler/shutdown-time', 'devenv-scheduler/time-zone', 'devenv-scheduler/working-days', 'other'),
          fc.oneof(fc.constantFrom('19:00', 'Europe/Berlin', 'Sun-Thu', '25:00'), fc.string({ maxLength: 12 })),
        ),
        { nil: undefined },
      );
      const namespaceObject = fc.option(fc.record({ metadata: fc.option(fc.record({ name, labels, annotations }), { nil: undefined }) }), {
        nil: null,
      });
      const review = fc.record(
        {
          apiVersion: fc.constantFrom('admission.k8s.io/v1', 'admission.k8s.io/v1beta1', 'v1', 7 as unknown as string),
          kind: fc.constantFrom('AdmissionReview', 'Namespace'),
          request: fc.record(
            {
              uid: fc.oneof(fc.uuid(), fc.constant(''), fc.integer() as fc.Arbitrary<unknown>),
              kind: fc.record({ kind: fc.constantFrom('Namespace', 'Pod') }),
              operation: fc.constantFrom('CREATE', 'UPDATE', 'DELETE', 'CONNECT', 'PATCH'),
              name,
              object: namespaceObject,
              oldObject: namespaceObject,
              dryRun: fc.boolean(),
            },
            { requiredKeys: [] },
          ),
        },
        { requiredKeys: [] },
      );
      const body = fc.oneof(
        review.map((r) => JSON.stringify(r)),
        fc.json(),
        fc.string({ maxLength: 300 }),
      );
      const labelled: string[] = [];
      await fc.assert(
        fc.asyncProperty(body, fc.constantFrom('/admission/namespaces', '/admission/namespaces/label'), async (text, path) => {
          const response = await post(text, path);
          assert.equal(response.status, 200, `${text} -> ${response.status} ${response.text}`);
          assert.ok(response.ms < 1000, `took ${response.ms} ms`);
          const answer = JSON.parse(response.text) as {
            apiVersion: string;
            kind: string;
            response: { allowed: boolean; uid: unknown; patchType?: string; patch?: string };
          };
          assert.equal(answer.apiVersion, 'admission.k8s.io/v1');
          assert.equal(answer.kind, 'AdmissionReview');
          assert.equal(answer.response.allowed, true);
          assert.equal(typeof answer.response.uid, 'string');
          if (answer.response.patch !== undefined) {
            // Only the labelling webhook patches, only a CREATE, and only by adding the label.
            assert.equal(path, '/admission/namespaces/label');
            assert.equal(answer.response.patchType, 'JSONPatch');
            const review = JSON.parse(text) as { request: { operation: string; name?: string; object: { metadata?: { name?: string } } } };
            assert.equal(review.request.operation, 'CREATE');
            const ops = JSON.parse(Buffer.from(answer.response.patch, 'base64').toString('utf8')) as { op: string; path: string }[];
            assert.equal(ops.length, 1);
            assert.equal(ops[0]!.op, 'add');
            assert.match(ops[0]!.path, /^\/metadata(\/labels(\/scheduler)?)?$/);
            labelled.push(review.request.name || review.request.object.metadata?.name || '');
          }
        }),
        { numRuns: RUNS },
      );
      assert.ok(
        !labelled.some((name) => name === 'kube-system' || name === 'monitoring' || name === ''),
        `labelled: ${labelled.join(', ')}`,
      );
      assert.ok(!calls.some((c) => c.includes('kube-system')), 'a system namespace was enrolled');
    });
  });
});
