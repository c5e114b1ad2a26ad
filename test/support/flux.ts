/**
 * Flux's real source-controller and kustomize-controller (scripts/setup-flux.sh builds them
 * from the Go module proxy) against a test control plane, with their sources in a bucket
 * on moto's S3: a Bucket (provider generic) is what source-controller can read here
 * without a Git server. Both run with the control plane's admin kubeconfig, watching all
 * namespaces, without leader election, every port on loopback; stopped by `stop()` and,
 * failing that, when the test process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { cacheDir } from '../../src/temporal/binaries';
import { freePort, MOTO_CREDENTIALS, type Moto } from './moto';

const CONTROLLERS = {
  'source-controller': { version: 'SOURCE_CONTROLLER_VERSION', override: 'SOURCE_CONTROLLER_PATH' },
  'kustomize-controller': { version: 'KUSTOMIZE_CONTROLLER_VERSION', override: 'KUSTOMIZE_CONTROLLER_PATH' },
} as const;
type Controller = keyof typeof CONTROLLERS;

/** scripts/setup-flux.sh is the one place the versions are pinned; read from there. */
export function fluxControllerPath(name: Controller): string {
  const { version, override } = CONTROLLERS[name];
  const explicit = process.env[override];
  if (explicit) return explicit;
  const script = readFileSync(path.join(__dirname, '../../scripts/setup-flux.sh'), 'utf8');
  const pinned = new RegExp(`^${version}="([^"]+)"`, 'm').exec(script)?.[1];
  if (!pinned) throw new Error(`scripts/setup-flux.sh: ${version} not found`);
  const file = path.join(cacheDir(), `${name}-${pinned}`, 'bin', name);
  if (!existsSync(file))
    throw new Error(`${file} not found: run \`bash scripts/setup-flux.sh\` (builds it once, with Go) or set ${override}`);
  return file;
}

export interface FluxControllers {
  /** Where each controller writes its log, for a failing test's message. */
  logs: Record<Controller, string>;
  /** The last lines of both logs. */
  tail(): string;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/**
 * Starts both controllers against the cluster of `kubeConfigPath`, logging under `dir`.
 * The CRDs (test/fixtures/crds) must be established first: a controller whose kinds the
 * apiserver does not serve exits.
 */
export async function startFluxControllers(kubeConfigPath: string, dir: string): Promise<FluxControllers> {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => running.forEach((child) => child.kill('SIGKILL')));
  }
  // source-controller refuses a storage path that does not exist.
  mkdirSync(path.join(dir, 'artifacts'), { recursive: true });
  const storagePort = await freePort();
  const loopback = async () => `127.0.0.1:${await freePort()}`;
  const common = async () => [
    `--metrics-addr=${await loopback()}`,
    `--health-addr=${await loopback()}`,
    '--watch-all-namespaces=true',
    '--enable-leader-election=false',
  ];
  const args: Record<Controller, string[]> = {
    'source-controller': [
      ...(await common()),
      `--storage-path=${path.join(dir, 'artifacts')}`,
      `--storage-addr=127.0.0.1:${storagePort}`,
      // What kustomize-controller downloads artifacts from (in a cluster, the Service's name).
      `--storage-adv-addr=127.0.0.1:${storagePort}`,
    ],
    'kustomize-controller': await common(),
  };
  const logs = {} as Record<Controller, string>;
  const children: ChildProcess[] = [];
  for (const name of Object.keys(CONTROLLERS) as Controller[]) {
    logs[name] = path.join(dir, `${name}.log`);
    const log = openSync(logs[name], 'a');
    const child = spawn(fluxControllerPath(name), args[name], {
      stdio: ['ignore', log, log],
      // Only what a controller needs: no AWS credentials or proxies of the machine.
      env: { PATH: process.env.PATH ?? '', HOME: dir, KUBECONFIG: kubeConfigPath, RUNTIME_NAMESPACE: 'flux-system' },
    });
    closeSync(log);
    running.add(child);
    child.once('exit', () => running.delete(child));
    children.push(child);
  }
  const tail = () =>
    (Object.entries(logs) as [Controller, string][])
      .map(([name, file]) => `--- ${name}\n${existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-20).join('\n') : ''}`)
      .join('\n');
  // A controller that cannot start (a missing CRD, a port taken) exits within moments.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const exited = children.find((child) => child.exitCode !== null);
  if (exited) throw new Error(`a Flux controller exited with ${exited.exitCode}:\n${tail()}`);
  return {
    logs,
    tail,
    async stop() {
      await Promise.all(
        children.map(async (child) => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          const gone = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
          await gone;
          clearTimeout(timer);
        }),
      );
    },
  };
}

/**
 * A bucket on moto's S3 that source-controller reads with `provider: generic`. moto checks
 * no signature here, but it keeps an object written without credentials from being
 * overwritten anonymously: each request names the moto account's key, as a signed one
 * would, and an empty signature.
 */
export class S3Bucket {
  constructor(
    private readonly moto: Moto,
    readonly name: string,
  ) {}

  /** What a Bucket's `spec` needs to read it, with the Secret of `secretName` holding MOTO_CREDENTIALS. */
  spec(secretName: string, interval: string): Record<string, unknown> {
    return {
      provider: 'generic',
      bucketName: this.name,
      endpoint: new URL(this.moto.endpoint).host,
      insecure: true,
      region: 'us-east-1',
      interval,
      secretRef: { name: secretName },
    };
  }

  static secret(name: string): { metadata: { name: string }; stringData: Record<string, string> } {
    return { metadata: { name }, stringData: { accesskey: MOTO_CREDENTIALS.accessKeyId, secretkey: MOTO_CREDENTIALS.secretAccessKey } };
  }

  async create(): Promise<void> {
    await this.request('PUT', '');
  }

  async put(key: string, body: string): Promise<void> {
    await this.request('PUT', `/${key}`, body);
  }

  private async request(method: string, key: string, body?: string): Promise<void> {
    const day = new Date().toISOString().slice(0, 10).replaceAll('-', '');
    const res = await fetch(`${this.moto.endpoint}/${this.name}${key}`, {
      method,
      headers: {
        authorization: `AWS4-HMAC-SHA256 Credential=${MOTO_CREDENTIALS.accessKeyId}/${day}/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0`,
        // Not a form: moto would read the body as one.
        'content-type': 'application/octet-stream',
      },
      ...(body === undefined ? {} : { body }),
    });
    if (!res.ok) throw new Error(`moto S3 ${method} ${this.name}${key}: HTTP ${res.status} ${await res.text()}`);
  }
}
