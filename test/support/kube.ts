/**
 * The control plane of src/local-cluster/control-plane.ts for tests: a temporary data dir,
 * fresh certificates, and what only tests need: the apiserver's audit log of workload
 * patches and the client certificate it presents to webhooks. Started lazily once per
 * mocha run and stopped in a root `after` hook; a test that needs a second cluster
 * (several clusters on one Temporal) names it and gets one of its own. The cluster most
 * suites share (testCluster) has no controller-manager or scheduler, so a test that needs
 * ready replicas there writes the status subresource itself; testClusterWithControllers
 * is a second one with controllers, a scheduler and kwok's simulated nodes.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { openssl, startControlPlane, type ControlPlane, type ControllerScale } from '../../src/local-cluster';

export interface TestCluster {
  /** Admin (system:masters) access. */
  kubeConfig: KubeConfig;
  /** The same admin access as a kubeconfig file, for kubectl or a child process. */
  kubeConfigPath: string;
  server: string;
  /** Access as a bearer token, e.g. a ServiceAccount token from the TokenRequest API. */
  kubeConfigForToken(token: string): KubeConfig;
  /**
   * The apiserver's own record of each request it served, as it saw it (received, completed),
   * for Deployment and StatefulSet patches in the AUDITED_NAMESPACES only: every other
   * request, the benchmarks' among them, costs nothing.
   */
  auditedRequests(): AuditedRequest[];
  /**
   * The apiserver calls every webhook with a client certificate (CN WEBHOOK_CLIENT_NAME)
   * signed by this CA, which signs nothing else: what WEBHOOK_CLIENT_CA names in a cluster.
   */
  webhookClient: { caFile: string; caKeyFile: string; certFile: string; keyFile: string };
}

/** The common name of the client certificate the test apiserver presents to webhooks. */
export const WEBHOOK_CLIENT_NAME = 'kube-apiserver-webhook-client';

/** Namespaces whose workload patches the apiserver records (audit policy names exact namespaces, no patterns). */
export const AUDITED_NAMESPACES = ['audited-1', 'audited-2', 'audited-3'];

export interface AuditedRequest {
  namespace: string;
  name: string;
  /** Microseconds since the epoch, as the audit event gives them. */
  receivedUs: number;
  completedUs: number;
}

/** "2026-11-24T02:40:00.123456Z" in microseconds since the epoch: Date keeps milliseconds only. */
function microseconds(timestamp: string): number {
  const [, seconds, fraction = ''] = /^(.*?:\d\d)(?:\.(\d+))?Z$/.exec(timestamp) ?? [];
  if (!seconds) throw new Error(`not an audit timestamp: ${timestamp}`);
  return Date.parse(`${seconds}Z`) * 1000 + Number(fraction.padEnd(6, '0').slice(0, 6));
}

/**
 * What the apiserver presents to every webhook (--admission-control-config-file): a client
 * certificate from a CA of its own, as docs/kubernetes.md recommends, so no other client of
 * the cluster CA holds a certificate the webhook accepts.
 */
function generateWebhookClient(dir: string): void {
  const days = ['-days', '2'];
  const key = (name: string) => ['-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`];
  openssl(
    ['req', '-x509', ...key('webhook-client-ca'), '-out', 'webhook-client-ca.crt', '-subj', '/CN=devenv-test-webhook-client-ca', ...days],
    dir,
  );
  openssl(['req', ...key('webhook-client'), '-out', 'webhook-client.csr', '-subj', `/CN=${WEBHOOK_CLIENT_NAME}`], dir);
  writeFileSync(path.join(dir, 'webhook-client.ext'), 'extendedKeyUsage=clientAuth\n');
  const signed = ['-CA', 'webhook-client-ca.crt', '-CAkey', 'webhook-client-ca.key', '-CAcreateserial', '-out', 'webhook-client.crt'];
  openssl(['x509', '-req', '-in', 'webhook-client.csr', ...signed, '-extfile', 'webhook-client.ext', ...days], dir);
}

/** The audit policy and the webhook client configuration, as kube-apiserver flags. */
function testOnlyFlags(dir: string): string[] {
  const file = (name: string) => path.join(dir, name);
  generateWebhookClient(dir);
  const auditPolicy = file('audit-policy.json');
  writeFileSync(
    auditPolicy,
    JSON.stringify({
      apiVersion: 'audit.k8s.io/v1',
      kind: 'Policy',
      omitStages: ['RequestReceived', 'ResponseStarted', 'Panic'],
      rules: [
        {
          level: 'Metadata',
          verbs: ['patch'],
          namespaces: AUDITED_NAMESPACES,
          resources: [{ group: 'apps', resources: ['deployments', 'statefulsets'] }],
        },
        { level: 'None' },
      ],
    }),
  );
  // Every webhook, whatever its address ('*'), is called with the webhook client certificate.
  const webhookKubeConfig = file('webhook-kubeconfig.json');
  writeFileSync(
    webhookKubeConfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      users: [{ name: '*', user: { 'client-certificate': file('webhook-client.crt'), 'client-key': file('webhook-client.key') } }],
    }),
  );
  const admissionConfig = file('admission-config.json');
  const webhookAdmission = {
    apiVersion: 'apiserver.config.k8s.io/v1',
    kind: 'WebhookAdmissionConfiguration',
    kubeConfigFile: webhookKubeConfig,
  };
  writeFileSync(
    admissionConfig,
    JSON.stringify({
      apiVersion: 'apiserver.config.k8s.io/v1',
      kind: 'AdmissionConfiguration',
      plugins: [
        { name: 'ValidatingAdmissionWebhook', configuration: webhookAdmission },
        { name: 'MutatingAdmissionWebhook', configuration: webhookAdmission },
      ],
    }),
  );
  return [
    `--audit-policy-file=${auditPolicy}`,
    `--audit-log-path=${file('audit.log')}`,
    `--admission-control-config-file=${admissionConfig}`,
  ];
}

const clusters = new Map<string, Promise<TestCluster>>();
let clusterWithControllers: Promise<TestCluster> | undefined;
/** Each cluster started, with its directory. */
const started: { dir: string; plane?: ControlPlane }[] = [];

async function startCluster({ controllers, scale }: { controllers: boolean; scale?: ControllerScale }): Promise<TestCluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'devenv-kube-'));
  const entry: { dir: string; plane?: ControlPlane } = { dir };
  started.push(entry);
  const plane = await startControlPlane({
    dir,
    name: 'test',
    controllers,
    ...(scale ? { scale } : {}),
    durable: false,
    certificateDays: 2,
    apiserverFlags: testOnlyFlags(dir),
  });
  entry.plane = plane;
  const auditLog = plane.file('audit.log');
  return {
    kubeConfig: plane.kubeConfig,
    kubeConfigPath: plane.kubeConfigPath,
    server: plane.server,
    kubeConfigForToken: (token) => plane.kubeConfigForToken(token),
    auditedRequests() {
      if (!existsSync(auditLog)) return [];
      return readFileSync(auditLog, 'utf8')
        .split('\n')
        .filter((line) => line.trim())
        .map(
          (line) =>
            JSON.parse(line) as {
              objectRef: { namespace: string; name: string };
              requestReceivedTimestamp: string;
              stageTimestamp: string;
            },
        )
        .map((event) => ({
          namespace: event.objectRef.namespace,
          name: event.objectRef.name,
          receivedUs: microseconds(event.requestReceivedTimestamp),
          completedUs: microseconds(event.stageTimestamp),
        }));
    },
    webhookClient: {
      caFile: plane.file('webhook-client-ca.crt'),
      caKeyFile: plane.file('webhook-client-ca.key'),
      certFile: plane.file('webhook-client.crt'),
      keyFile: plane.file('webhook-client.key'),
    },
  };
}

/** The control plane most suites share (etcd and kube-apiserver, no controllers), or with a name, another one of that name. */
export function testCluster(name = 'default'): Promise<TestCluster> {
  let cluster = clusters.get(name);
  if (!cluster) clusters.set(name, (cluster = startCluster({ controllers: false })));
  return cluster;
}

/**
 * A control plane of its own with controllers, a scheduler and kwok's fake nodes
 * (src/local-cluster/control-plane.ts): Deployments have Pods that become Ready, namespaces are
 * really deleted. Started the first time a suite asks for it; `scale` (a benchmark's, one
 * per process) is what the first call gives.
 */
export function testClusterWithControllers(scale?: ControllerScale): Promise<TestCluster> {
  clusterWithControllers ??= startCluster({ controllers: true, ...(scale ? { scale } : {}) });
  return clusterWithControllers;
}

after(async function () {
  if (!started.length) return;
  this.timeout(60_000);
  for (const { dir, plane } of started.splice(0)) {
    await plane?.stop();
    if (!process.env.KEEP_KUBE_DATA) rmSync(dir, { recursive: true, force: true });
  }
});
