/**
 * The API side as the image runs it with `SERVICE_ROLE=api`, in a process of its own
 * (forked by api.ts through image-process.ts): the server under load gets no help and no
 * hindrance from the benchmark's own work. One of:
 *
 *  - `slack`: createApi + createSlackRouter, status through the dev server, Kubernetes
 *    status answered by a fixed list (the cluster is not what is measured), AWS off;
 *  - `admission`: startWebhookServer + createAdmissionWebhook with a real enrolment client;
 *    namespaces are read back from an in-process stand-in (namespaces.ts), not a cluster;
 *  - `bare-https`: the admission benchmark's baseline, a bare node:https server with the
 *    same certificate that reads, parses and answers the same JSON.
 *
 * Every one logs at info into /dev/null, as production logs at info. Usage:
 * api-child.js '<ApiChildOptions as JSON>'; it answers { type: 'ready', url } and, on
 * { type: 'outcomes' }, the admission outcome counters.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { ADMISSION_DRAIN_MS, createAdmissionWebhook } from '../../src/api/admission';
import { createMetrics } from '../../src/api/metrics';
import { createApi } from '../../src/api/server';
import { createSlackHandlers } from '../../src/api/slack/handlers';
import { createResponder } from '../../src/api/slack/responder';
import { createSlackRouter } from '../../src/api/slack/router';
import { createEnvironmentsClient } from '../../src/client/environments';
import { startWebhookServer } from '../../src/api/webhook';
import { createEnrolment } from '../../src/client/enrolment';
import type { EnvironmentPolicy } from '../../src/domain/shutdown-policy';
import { discardingLogger, serviceConfig } from './common';
import { readBenchNamespace } from './namespaces';

export type ApiChildOptions =
  | { role: 'slack'; temporalAddress: string; signingSecret: string; responseUrlOrigins: string[] }
  | {
      role: 'admission';
      temporalAddress: string;
      taskQueue: string;
      policy: EnvironmentPolicy;
      systemNamespaces: string[];
      certFile: string;
      keyFile: string;
    }
  | { role: 'bare-https'; certFile: string; keyFile: string };

export type ApiMessage = { type: 'ready'; url: string } | { type: 'outcomes'; outcomes: Record<string, number> };

const send = (message: ApiMessage) => process.send?.(message);

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '') as ApiChildOptions;
  const logger = discardingLogger();
  const metrics = createMetrics();
  let close: () => Promise<void>;
  let url: string;
  let client: Client | undefined;

  if (options.role === 'bare-https') {
    const server = https.createServer(
      { cert: readFileSync(options.certFile), key: readFileSync(options.keyFile), minVersion: 'TLSv1.2' },
      (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (chunk: Buffer) => chunks.push(chunk));
        req.on('end', () => {
          const review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { request: { uid: string } };
          const body = JSON.stringify({
            apiVersion: 'admission.k8s.io/v1',
            kind: 'AdmissionReview',
            response: { uid: review.request.uid, allowed: true },
          });
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
        });
      },
    );
    url = `https://${await listen(server)}`;
    close = () => closeServer(server);
  } else if (options.role === 'admission') {
    client = await connect(options.temporalAddress);
    const { taskQueue, policy, systemNamespaces, certFile, keyFile } = options;
    const enrolment = createEnrolment({
      client,
      taskQueue,
      policy,
      systemNamespaces,
      shutdownDispatchAheadMs: serviceConfig().enrolment.shutdownDispatchAheadMs,
    });
    // No cluster: the namespace reads are answered by the stand-in of namespaces.ts, as if each one the reviews name were stored.
    const admission = createAdmissionWebhook({ enrolment, readNamespace: readBenchNamespace, logger, metrics });
    const webhook = await startWebhookServer({ certFile, keyFile, port: 0, host: '127.0.0.1', router: admission.router, logger });
    url = webhook.url;
    // As the service stops: what was admitted reaches the dev server before the connection closes.
    close = async () => {
      await webhook.close();
      await admission.drain(ADMISSION_DRAIN_MS);
    };
  } else {
    client = await connect(options.temporalAddress);
    const handlers = createSlackHandlers({
      environments: createEnvironmentsClient(client),
      responder: createResponder({ logger, origins: options.responseUrlOrigins }),
      logger,
      metrics,
      workloadsOf: async () => [
        { kind: 'Deployment', name: 'web', ready: 2, desired: 2 },
        { kind: 'StatefulSet', name: 'postgres', ready: 1, desired: 1 },
      ],
    });
    const slack = createSlackRouter({ handlers, signingSecret: options.signingSecret, logger });
    const handle = createApi({ client, logger, metrics, routers: [slack] }).callback();
    const server = http.createServer((req, res) => void handle(req, res));
    url = `http://${await listen(server)}`;
    close = () => closeServer(server);
  }

  const done = new Promise<void>((resolve) => {
    process.on('message', (message: { type: 'outcomes' | 'shutdown' }) => {
      if (message.type === 'outcomes') {
        void metrics.admissions
          .get()
          .then(({ values }) =>
            send({ type: 'outcomes', outcomes: Object.fromEntries(values.map((v) => [String(v.labels.outcome), v.value])) }),
          );
      } else resolve();
    });
    process.on('disconnect', resolve);
  });
  send({ type: 'ready', url });
  await done;
  await close();
  await client?.connection.close();
}

const connect = async (address: string) => new Client({ connection: await Connection.connect({ address }) });

/** Listens on a free loopback port; host:port. */
async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error('bench API process failed:', err);
    process.exit(1);
  },
);
