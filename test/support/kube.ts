/**
 * A real Kubernetes control plane for tests: etcd and kube-apiserver on free loopback
 * ports, a temporary data dir, freshly generated certificates and service-account keys,
 * RBAC on, and a static admin identity (a client certificate in group system:masters).
 * Started lazily once per mocha run and stopped in a root `after` hook; a test that needs
 * a second cluster (several clusters on one Temporal) names it and gets one of its own. controller-runtime's
 * envtest is the model for the flags. The cluster most suites share (testCluster) has no
 * controller-manager or scheduler, so a test that needs ready replicas there writes the
 * status subresource itself; testClusterWithControllers is a second one with controllers,
 * a scheduler and kwok's simulated nodes (./controllers.ts).
 *
 * Binaries: scripts/setup-kube.sh puts them into the tools cache; KUBE_APISERVER_PATH and
 * ETCD_PATH (and those of ./controllers.ts) override any.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, openSync, closeSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { cacheDir } from '../../src/temporal/binaries';
import { controllerLog, nodesReady, startControllers, type ControllerScale } from './controllers';

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

/** The script is the one place the version is pinned; the harness reads it from there. */
function pinnedKubeVersion(): string {
  const script = readFileSync(path.join(__dirname, '../../scripts/setup-kube.sh'), 'utf8');
  const version = /^KUBE_VERSION="([^"]+)"/m.exec(script)?.[1];
  if (!version) throw new Error('scripts/setup-kube.sh: KUBE_VERSION not found');
  return version;
}

function binary(envName: string, name: string): string {
  const fromEnv = process.env[envName];
  if (fromEnv) return fromEnv;
  const file = path.join(cacheDir(), `kube-${pinnedKubeVersion()}`, 'bin', name);
  if (!existsSync(file)) throw new Error(`${file} not found: run scripts/setup-kube.sh (or set ${envName})`);
  return file;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function openssl(args: string[], cwd: string): void {
  execFileSync(process.env.OPENSSL_PATH ?? 'openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA, the apiserver's serving certificate, the admin client certificate and the service-account key pair. */
function generatePki(dir: string): void {
  const days = ['-days', '2'];
  openssl(
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=devenv-test-ca', ...days],
    dir,
  );
  const issue = (name: string, subject: string, extensions: string) => {
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject], dir);
    writeFileSync(path.join(dir, `${name}.ext`), extensions);
    openssl(
      [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        `${name}.crt`,
        '-extfile',
        `${name}.ext`,
        ...days,
      ],
      dir,
    );
  };
  issue('apiserver', '/CN=kube-apiserver', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  issue('admin', '/O=system:masters/CN=devenv-test-admin', 'extendedKeyUsage=clientAuth\n');
  // What the apiserver presents to every webhook (--admission-control-config-file), from a
  // CA of its own, as docs/kubernetes.md recommends: no other client of the cluster CA
  // holds a certificate the webhook accepts.
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'webhook-client-ca.key',
      '-out',
      'webhook-client-ca.crt',
      '-subj',
      '/CN=devenv-test-webhook-client-ca',
      ...days,
    ],
    dir,
  );
  openssl(
    [
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'webhook-client.key',
      '-out',
      'webhook-client.csr',
      '-subj',
      `/CN=${WEBHOOK_CLIENT_NAME}`,
    ],
    dir,
  );
  writeFileSync(path.join(dir, 'webhook-client.ext'), 'extendedKeyUsage=clientAuth\n');
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'webhook-client.csr',
      '-CA',
      'webhook-client-ca.crt',
      '-CAkey',
      'webhook-client-ca.key',
      '-CAcreateserial',
      '-out',
      'webhook-client.crt',
      '-extfile',
      'webhook-client.ext',
      ...days,
    ],
    dir,
  );
  openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'sa.key'], dir);
  openssl(['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
}

function start(binaryPath: string, args: string[], logFile: string, env: Record<string, string> = {}): ChildProcess {
  const log = openSync(logFile, 'a');
  const child = spawn(binaryPath, args, { stdio: ['ignore', log, log], env: { ...process.env, ...env } });
  closeSync(log);
  return child;
}

function get(url: string, tls: https.RequestOptions = {}): Promise<number> {
  return new Promise((resolve) => {
    const request = https.get(url, { ...tls, timeout: 2000 }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on('error', () => resolve(0));
    request.on('timeout', () => request.destroy());
  });
}

async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  child: ChildProcess,
  logFile: string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}; log: ${tail(logFile)}`);
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${what} not ready after ${timeoutMs / 1000}s; log: ${tail(logFile)}`);
}

function tail(file: string): string {
  return readFileSync(file, 'utf8').split('\n').slice(-30).join('\n');
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

const clusters = new Map<string, Promise<TestCluster>>();
let clusterWithControllers: Promise<TestCluster> | undefined;
/** Each cluster started, its processes in start order (stopped in reverse). */
const started: { dir: string; children: ChildProcess[] }[] = [];

// Mocha's --exit ends the process without the root `after` hook when a run is aborted:
// never leave an apiserver or etcd running behind it.
process.on('exit', () => started.forEach(({ children }) => children.forEach((child) => child.kill('SIGKILL'))));

async function startCluster({ controllers, scale }: { controllers: boolean; scale?: ControllerScale }): Promise<TestCluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'devenv-kube-'));
  const children: ChildProcess[] = [];
  started.push({ dir, children });
  const etcdBin = binary('ETCD_PATH', 'etcd');
  const apiserverBin = binary('KUBE_APISERVER_PATH', 'kube-apiserver');
  generatePki(dir);
  const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const etcdUrl = `http://127.0.0.1:${etcdPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;

  const etcdLog = path.join(dir, 'etcd.log');
  const etcd = start(
    etcdBin,
    [
      '--name=default',
      `--data-dir=${path.join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=default=${peerUrl}`,
      // Test data is thrown away: fsync only slows every write down.
      '--unsafe-no-fsync',
      '--log-level=warn',
    ],
    etcdLog,
  );
  children.push(etcd);
  const etcdHealthy = () =>
    fetch(`${etcdUrl}/health`)
      .then(async (response) => response.ok && ((await response.json()) as { health?: string }).health === 'true')
      .catch(() => false);
  await waitUntil('etcd', etcdHealthy, etcd, etcdLog, 30_000);

  const file = (name: string) => path.join(dir, name);
  const server = `https://127.0.0.1:${apiPort}`;
  const apiserverLog = file('kube-apiserver.log');
  const auditPolicy = file('audit-policy.json');
  const auditLog = file('audit.log');
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
  const apiserver = start(
    apiserverBin,
    [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--tls-cert-file=${file('apiserver.crt')}`,
      `--tls-private-key-file=${file('apiserver.key')}`,
      `--client-ca-file=${file('ca.crt')}`,
      '--authorization-mode=RBAC',
      `--service-account-issuer=${server}`,
      `--service-account-key-file=${file('sa.pub')}`,
      `--service-account-signing-key-file=${file('sa.key')}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--allow-privileged=true',
      // No controller-manager creates the `default` ServiceAccount in new namespaces, so
      // the admission plugin that requires it would refuse every pod.
      '--disable-admission-plugins=ServiceAccount',
      // The only apiserver: nothing to reconcile the `kubernetes` Service endpoints with.
      '--endpoint-reconciler-type=none',
      // Lets a test create an HPA with minReplicas 0, the kind that would fight a stop.
      '--feature-gates=HPAScaleToZero=true',
      `--audit-policy-file=${auditPolicy}`,
      `--audit-log-path=${auditLog}`,
      `--admission-control-config-file=${admissionConfig}`,
    ],
    apiserverLog,
  );
  children.push(apiserver);

  const tls = { ca: readFileSync(file('ca.crt')), cert: readFileSync(file('admin.crt')), key: readFileSync(file('admin.key')) };
  await waitUntil('kube-apiserver', async () => (await get(`${server}/readyz`, tls)) === 200, apiserver, apiserverLog, 120_000);

  const b64 = (buffer: Buffer) => buffer.toString('base64');
  const kubeConfigPath = file('kubeconfig');
  writeFileSync(
    kubeConfigPath,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'test', cluster: { server, 'certificate-authority-data': b64(tls.ca) } }],
      users: [{ name: 'admin', user: { 'client-certificate-data': b64(tls.cert), 'client-key-data': b64(tls.key) } }],
      contexts: [{ name: 'test', context: { cluster: 'test', user: 'admin' } }],
      'current-context': 'test',
    }),
  );
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeConfigPath);
  if (controllers) {
    const startLogged = (what: string, binaryPath: string, args: string[], env?: Record<string, string>) => {
      const child = start(binaryPath, args, controllerLog(dir, what), env);
      children.push(child);
      return child;
    };
    const [controllerManager] = await startControllers(
      binary,
      startLogged,
      { kubeConfigPath, dir, serviceAccountKey: file('sa.key'), caFile: file('ca.crt') },
      kubeConfig,
      scale,
    );
    await waitUntil(
      'kwok to take the fake nodes over',
      () => nodesReady(kubeConfig, scale?.nodes).catch(() => false),
      controllerManager!,
      controllerLog(dir, 'kube-controller-manager'),
      60_000,
    );
  }

  return {
    kubeConfig,
    kubeConfigPath,
    server,
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
      caFile: file('webhook-client-ca.crt'),
      caKeyFile: file('webhook-client-ca.key'),
      certFile: file('webhook-client.crt'),
      keyFile: file('webhook-client.key'),
    },
    kubeConfigForToken(token: string) {
      const config = new KubeConfig();
      config.loadFromOptions({
        clusters: [{ name: 'test', server, caData: b64(tls.ca), skipTLSVerify: false }],
        users: [{ name: 'token', token }],
        contexts: [{ name: 'test', cluster: 'test', user: 'token' }],
        currentContext: 'test',
      });
      return config;
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
 * (test/support/controllers.ts): Deployments have Pods that become Ready, namespaces are
 * really deleted. Started the first time a suite asks for it; `scale` (a benchmark's, one
 * per process) is what the first call gives.
 */
export function testClusterWithControllers(scale?: ControllerScale): Promise<TestCluster> {
  clusterWithControllers ??= startCluster({ controllers: true, scale });
  return clusterWithControllers;
}

after(async function () {
  if (!started.length) return;
  this.timeout(60_000);
  // Controllers first, then the apiserver (so it does not log etcd connection errors while
  // shutting down), then etcd.
  for (const { dir, children } of started.splice(0)) {
    for (const child of [...children].reverse()) await stop(child);
    if (!process.env.KEEP_KUBE_DATA) rmSync(dir, { recursive: true, force: true });
  }
});
