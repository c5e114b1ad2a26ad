/**
 * A real Kubernetes control plane of local processes: etcd and kube-apiserver on free
 * loopback ports, certificates and service-account keys of its own, RBAC on, and a static
 * admin identity (a client certificate in group system:masters). With `controllers`, also
 * kube-controller-manager (Deployments get ReplicaSets and Pods, StatefulSets roll out,
 * CronJobs create Jobs, the HPA, garbage-collector and namespace controllers run),
 * kube-scheduler, and kwok, the Kubernetes project's node simulator: it keeps a few fake
 * Nodes alive and plays the kubelet for the Pods bound to them (Running and Ready at once,
 * gone when deleted). No container runs; everything a client sees is what a real cluster
 * would show. controller-runtime's envtest is the model for the flags.
 *
 * The tests start it (test/support/kube.ts) and so does `npm start` without a kubeconfig
 * (./index.ts). Binaries: scripts/setup-kube.sh builds them into the tools cache;
 * KUBE_APISERVER_PATH, ETCD_PATH, KUBE_CONTROLLER_MANAGER_PATH, KUBE_SCHEDULER_PATH and
 * KWOK_PATH override any.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { cacheDir } from '../temporal/binaries';

/** What a fake Node offers: ample for any workload, so scheduling never waits. */
const NODE_CAPACITY = { cpu: '64', memory: '256Gi', pods: '1000' };
/** kwok's published Stages: what its fake kubelet does to Nodes and Pods. */
const KWOK_STAGES = path.join(__dirname, 'kwok-stages.yaml');
/** How many fake Nodes kwok keeps. */
const FAKE_NODES = 2;

export interface ControlPlaneOptions {
  /** Certificates, etcd's data, the logs and the kubeconfig. A directory that already holds certificates keeps them. */
  dir: string;
  /** The kubeconfig's context (and cluster) name. */
  name: string;
  /** kube-controller-manager, kube-scheduler and kwok's fake Nodes. */
  controllers: boolean;
  /** False: etcd skips fsync, for data that is thrown away anyway. */
  durable: boolean;
  /** How long the generated certificates are valid. */
  certificateDays: number;
  /** More kube-apiserver flags (a test's audit policy and webhook client). */
  apiserverFlags?: string[];
  /**
   * Each process in a process group of its own: Ctrl-C in a terminal then reaches only the
   * parent, which stops them in order (controllers, apiserver, etcd) instead of all at once.
   */
  detached?: boolean;
  /** With controllers: sized for thousands of pods (bench/rush.ts) rather than a test's few. */
  scale?: ControllerScale;
}

/**
 * For a benchmark of thousands of pods: the controllers sized so that they are not what is
 * measured. Without it, each of kube-controller-manager's controllers and kube-scheduler talk
 * to the apiserver at client-go's default rate, which alone takes minutes for 5,000 pods.
 */
export interface ControllerScale {
  /** --kube-api-qps of kube-controller-manager (per controller) and kube-scheduler; the burst is twice it. */
  apiQps: number;
  /** Workers of the Deployment, ReplicaSet, StatefulSet and garbage-collector controllers. */
  syncs: number;
  /** kwok's podPlayStageParallelism: pods it moves to Ready, or deletes, at once. */
  kwokParallelism: number;
  /** Fake Nodes, each taking NODE_CAPACITY.pods. */
  nodes: number;
}

export interface ControlPlane {
  /** Admin (system:masters) access. */
  kubeConfig: KubeConfig;
  /** The same admin access as a kubeconfig file, for kubectl or a child process. */
  kubeConfigPath: string;
  server: string;
  /** A file of the control plane's directory. */
  file(name: string): string;
  /** The processes' ids, in start order. */
  pids(): number[];
  /** Access as a bearer token, e.g. a ServiceAccount token from the TokenRequest API. */
  kubeConfigForToken(token: string): KubeConfig;
  /** Controllers first, then the apiserver (so it does not log etcd errors while stopping), then etcd. */
  stop(): Promise<void>;
}

/** scripts/setup-kube.sh is the one place the version is pinned; read from there. */
function pinnedKubeVersion(): string {
  const script = readFileSync(path.join(__dirname, '../../scripts/setup-kube.sh'), 'utf8');
  const version = /^KUBE_VERSION="([^"]+)"/m.exec(script)?.[1];
  if (!version) throw new Error('scripts/setup-kube.sh: KUBE_VERSION not found');
  return version;
}

/** Where setup-kube.sh puts the binaries. */
export const kubeBinDir = (): string => path.join(cacheDir(), `kube-${pinnedKubeVersion()}`, 'bin');

const BINARIES = {
  etcd: 'ETCD_PATH',
  'kube-apiserver': 'KUBE_APISERVER_PATH',
  'kube-controller-manager': 'KUBE_CONTROLLER_MANAGER_PATH',
  'kube-scheduler': 'KUBE_SCHEDULER_PATH',
  kwok: 'KWOK_PATH',
} as const;
type Binary = keyof typeof BINARIES;

function binaryPath(name: Binary): string {
  return process.env[BINARIES[name]] || path.join(kubeBinDir(), name);
}

/** The binaries a control plane of this kind needs and this machine lacks. */
export function missingBinaries(controllers: boolean): string[] {
  const needed: Binary[] = controllers
    ? ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok']
    : ['etcd', 'kube-apiserver'];
  return needed.filter((name) => !existsSync(binaryPath(name)));
}

function binary(name: Binary): string {
  const file = binaryPath(name);
  if (!existsSync(file)) throw new Error(`${file} not found: run scripts/setup-kube.sh (or set ${BINARIES[name]})`);
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

export function openssl(args: string[], cwd: string): void {
  execFileSync(process.env.OPENSSL_PATH ?? 'openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA, the apiserver's serving certificate, the admin client certificate and the service-account key pair. */
function generatePki(dir: string, days: number): void {
  const validity = ['-days', String(days)];
  openssl(
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=devenv-local-ca', ...validity],
    dir,
  );
  const issue = (name: string, subject: string, extensions: string) => {
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject], dir);
    writeFileSync(path.join(dir, `${name}.ext`), extensions);
    const signed = ['-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-extfile', `${name}.ext`];
    openssl(['x509', '-req', '-in', `${name}.csr`, ...signed, ...validity], dir);
  };
  issue('apiserver', '/CN=kube-apiserver', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  issue('admin', '/O=system:masters/CN=devenv-admin', 'extendedKeyUsage=clientAuth\n');
  openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'sa.key'], dir);
  openssl(['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
}

/** Every process any control plane of this process started: none outlives it, even when it ends without stopping them. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function start(binaryPath: string, args: string[], logFile: string, detached: boolean): ChildProcess {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => running.forEach((child) => child.kill('SIGKILL')));
  }
  const log = openSync(logFile, 'a');
  const child = spawn(binaryPath, args, { stdio: ['ignore', log, log], detached });
  closeSync(log);
  running.add(child);
  child.once('exit', () => running.delete(child));
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

function tail(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-30).join('\n') : '';
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
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode} (log ${logFile}):\n${tail(logFile)}`);
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${what} not ready after ${timeoutMs / 1000}s (log ${logFile}):\n${tail(logFile)}`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

type Launch = (binaryName: Binary, args: string[], logName: string) => ChildProcess;

/** Starts the control plane and waits until the apiserver is ready (and, with controllers, kwok's Nodes are); on a failure, stops what it started. */
export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const file = (name: string) => path.join(options.dir, name);
  const children: ChildProcess[] = [];
  const launch: Launch = (binaryName, args, logName) => {
    const child = start(binary(binaryName), args, file(`${logName}.log`), options.detached ?? false);
    children.push(child);
    return child;
  };
  const stop = async () => {
    for (const child of [...children].reverse()) await stopChild(child);
  };
  try {
    return {
      ...(await startIn(options, file, launch)),
      stop,
      pids: () => children.map((child) => child.pid).filter((pid): pid is number => pid !== undefined),
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function startIn(
  options: ControlPlaneOptions,
  file: (name: string) => string,
  launch: Launch,
): Promise<Omit<ControlPlane, 'stop' | 'pids'>> {
  const { dir } = options;
  mkdirSync(dir, { recursive: true });
  // Resolved before anything starts: a missing binary is one line, not a half-started plane.
  for (const name of options.controllers ? Object.keys(BINARIES) : ['etcd', 'kube-apiserver']) binary(name as Binary);
  if (!existsSync(file('admin.crt'))) generatePki(dir, options.certificateDays);
  const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const etcdUrl = `http://127.0.0.1:${etcdPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;

  const etcd = launch(
    'etcd',
    [
      '--name=default',
      `--data-dir=${file('etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=default=${peerUrl}`,
      ...(options.durable ? [] : ['--unsafe-no-fsync']),
      '--log-level=warn',
    ],
    'etcd',
  );
  const etcdHealthy = () =>
    fetch(`${etcdUrl}/health`)
      .then(async (response) => response.ok && ((await response.json()) as { health?: string }).health === 'true')
      .catch(() => false);
  await waitUntil('etcd', etcdHealthy, etcd, file('etcd.log'), 30_000);

  const server = `https://127.0.0.1:${apiPort}`;
  const apiserver = launch(
    'kube-apiserver',
    [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--tls-cert-file=${file('apiserver.crt')}`,
      `--tls-private-key-file=${file('apiserver.key')}`,
      `--client-ca-file=${file('ca.crt')}`,
      '--authorization-mode=RBAC',
      // Not the server's address, whose port changes from start to start: tokens issued stay valid.
      '--service-account-issuer=https://kubernetes.default.svc',
      `--service-account-key-file=${file('sa.pub')}`,
      `--service-account-signing-key-file=${file('sa.key')}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--allow-privileged=true',
      // Without a controller-manager nothing creates the `default` ServiceAccount in new
      // namespaces, so the admission plugin that requires it would refuse every pod.
      '--disable-admission-plugins=ServiceAccount',
      // The only apiserver: nothing to reconcile the `kubernetes` Service endpoints with.
      '--endpoint-reconciler-type=none',
      // Lets an HPA have minReplicas 0, the kind that would fight a stop.
      '--feature-gates=HPAScaleToZero=true',
      ...(options.apiserverFlags ?? []),
    ],
    'kube-apiserver',
  );
  const tls = { ca: readFileSync(file('ca.crt')), cert: readFileSync(file('admin.crt')), key: readFileSync(file('admin.key')) };
  await waitUntil(
    'kube-apiserver',
    async () => (await get(`${server}/readyz`, tls)) === 200,
    apiserver,
    file('kube-apiserver.log'),
    120_000,
  );

  const b64 = (buffer: Buffer) => buffer.toString('base64');
  const kubeConfigPath = file('kubeconfig');
  const { name } = options;
  writeFileSync(
    kubeConfigPath,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name, cluster: { server, 'certificate-authority-data': b64(tls.ca) } }],
      users: [{ name: 'admin', user: { 'client-certificate-data': b64(tls.cert), 'client-key-data': b64(tls.key) } }],
      contexts: [{ name, context: { cluster: name, user: 'admin' } }],
      'current-context': name,
    }),
    { mode: 0o600 },
  );
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeConfigPath);
  if (options.controllers) {
    const [controllerManager] = await startControllers(launch, file, kubeConfigPath, kubeConfig, options.scale);
    await waitUntil(
      'kwok to take the fake nodes over',
      () => nodesReady(kubeConfig, options.scale?.nodes).catch(() => false),
      controllerManager!,
      file('kube-controller-manager.log'),
      60_000,
    );
  }
  return {
    kubeConfig,
    kubeConfigPath,
    server,
    file,
    kubeConfigForToken(token: string) {
      const config = new KubeConfig();
      config.loadFromOptions({
        clusters: [{ name, server, caData: b64(tls.ca), skipTLSVerify: false }],
        users: [{ name: 'token', token }],
        contexts: [{ name, cluster: name, user: 'token' }],
        currentContext: name,
      });
      return config;
    },
  };
}

/** kube-controller-manager, kube-scheduler and kwok, and kwok's fake Nodes (kept when they exist already). */
async function startControllers(
  launch: Launch,
  file: (name: string) => string,
  kubeConfigPath: string,
  kubeConfig: KubeConfig,
  scale?: ControllerScale,
): Promise<ChildProcess[]> {
  const rate = scale ? [`--kube-api-qps=${scale.apiQps}`, `--kube-api-burst=${scale.apiQps * 2}`] : [];
  const syncs = scale
    ? ['deployment', 'replicaset', 'statefulset', 'gc'].map((controller) => `--concurrent-${controller}-syncs=${scale.syncs}`)
    : ['--concurrent-deployment-syncs=10', '--concurrent-replicaset-syncs=10'];
  const kwokConfig = file('kwok-configuration.yaml');
  if (scale) {
    // A KwokConfiguration of one's own takes none of kwok's defaults: the node options are its defaults.
    writeFileSync(
      kwokConfig,
      [
        'apiVersion: config.kwok.x-k8s.io/v1alpha1',
        'kind: KwokConfiguration',
        'options:',
        `  podPlayStageParallelism: ${scale.kwokParallelism}`,
        '  nodePlayStageParallelism: 4',
        '  nodeLeaseParallelism: 4',
        '',
      ].join('\n'),
    );
  }
  const children = [
    launch(
      'kube-controller-manager',
      [
        `--kubeconfig=${kubeConfigPath}`,
        '--leader-elect=false',
        `--service-account-private-key-file=${file('sa.key')}`,
        `--root-ca-file=${file('ca.crt')}`,
        '--use-service-account-credentials=false',
        // Node IPAM would need a cluster CIDR; kwok gives the fake nodes' pods their addresses.
        '--controllers=*,-nodeipam',
        '--secure-port=0',
        // A Deployment scaled back up is seen at once, not after the default sync.
        ...syncs,
        '--horizontal-pod-autoscaler-sync-period=2s',
        ...rate,
      ],
      'kube-controller-manager',
    ),
    launch(
      'kube-scheduler',
      [
        `--kubeconfig=${kubeConfigPath}`,
        `--authentication-kubeconfig=${kubeConfigPath}`,
        `--authorization-kubeconfig=${kubeConfigPath}`,
        '--leader-elect=false',
        '--secure-port=0',
        ...rate,
      ],
      'kube-scheduler',
    ),
    launch(
      'kwok',
      [
        `--kubeconfig=${kubeConfigPath}`,
        '--manage-all-nodes=false',
        '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
        '--cidr=10.244.0.1/16',
        '--node-ip=10.0.0.10',
        '--server-address=',
        `--config=${KWOK_STAGES}`,
        ...(scale ? [`--config=${kwokConfig}`] : []),
      ],
      'kwok',
    ),
  ];

  const core = kubeConfig.makeApiClient(CoreV1Api);
  for (let i = 0; i < (scale?.nodes ?? FAKE_NODES); i++) {
    const name = `kwok-node-${i}`;
    await core
      .createNode({
        body: {
          metadata: {
            name,
            annotations: { 'kwok.x-k8s.io/node': 'fake' },
            labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', type: 'kwok' },
          },
          status: { capacity: NODE_CAPACITY, allocatable: NODE_CAPACITY },
        },
      })
      .catch((err: { code?: number }) => {
        // A control plane started again on its own data has them already.
        if (err.code !== 409) throw err;
      });
  }
  return children;
}

/** Every fake Node is Ready: kwok has taken them over. */
async function nodesReady(kubeConfig: KubeConfig, count = FAKE_NODES): Promise<boolean> {
  const nodes = await kubeConfig.makeApiClient(CoreV1Api).listNode();
  const ready = nodes.items.filter((node) => node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  return ready.length >= count;
}
