/**
 * A real moto server (PyPI `moto[server]`, installed by scripts/setup-moto.sh) standing in
 * for EC2, RDS and DynamoDB. Started lazily on a free loopback port the first time a test
 * asks for it, shared by the whole mocha run, stopped in a root `after` hook. The AWS SDK
 * reaches it the way a user reaches LocalStack: by endpoint.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { cacheDir } from '../../src/temporal/binaries';

/** moto accepts any credentials; fixed ones keep the SDK away from the machine's real ones. */
export const MOTO_CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };

export interface Moto {
  endpoint: string;
  /** Forgets every resource in every region, so each test starts from an empty account. */
  reset(): Promise<void>;
}

export function motoServerPath(): string {
  const explicit = process.env.MOTO_SERVER_PATH;
  const path = explicit || join(cacheDir(), 'moto-venv', 'bin', 'moto_server');
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(
      explicit
        ? `MOTO_SERVER_PATH=${explicit} is not an executable file`
        : `${path} not found: run \`bash scripts/setup-moto.sh\` (installs it from PyPI) or set MOTO_SERVER_PATH`,
    );
  }
  return path;
}

/** A port on loopback that nothing listens on now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

const children = new Set<ChildProcess>();
let started: Promise<Moto> | undefined;

async function start(environment: Record<string, string> = {}): Promise<Moto> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const proc = spawn(motoServerPath(), ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...environment },
  });
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  // Kept for the error message only: moto logs every request to stderr.
  let stderrTail = '';
  proc.stderr?.on('data', (chunk: Buffer) => {
    stderrTail = (stderrTail + chunk.toString()).slice(-2000);
  });
  const exited = new Promise<never>((_, reject) =>
    proc.once('exit', (code, signal) => reject(new Error(`moto_server exited (${code ?? signal}) before answering:\n${stderrTail}`))),
  );
  exited.catch(() => undefined);

  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await Promise.race([fetch(`${endpoint}/moto-api/`), exited]);
      if (res.ok) break;
    } catch (err) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw err;
      if (Date.now() > deadline) throw new Error(`moto_server did not answer on ${endpoint} within 30 s:\n${stderrTail}`, { cause: err });
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  return {
    endpoint,
    async reset() {
      const res = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
      if (!res.ok) throw new Error(`moto reset failed: HTTP ${res.status}`);
    },
  };
}

export function moto(): Promise<Moto> {
  started ??= start();
  return started;
}

/**
 * A second moto that checks credentials as AWS does (moto's INITIAL_NO_AUTH_ACTION_COUNT=0):
 * every request signed with keys it does not know is refused, like expired or wrong ones.
 */
let checkingCredentials: Promise<Moto> | undefined;
export function motoCheckingCredentials(): Promise<Moto> {
  checkingCredentials ??= start({ INITIAL_NO_AUTH_ACTION_COUNT: '0' });
  return checkingCredentials;
}

after(async function () {
  this.timeout(15_000);
  await Promise.all(
    [...children].map(async (proc) => {
      const gone = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(timer);
    }),
  );
});
