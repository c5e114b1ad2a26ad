/**
 * `npm start` without a kubeconfig (LOCAL_CLUSTER=auto): the control plane the tests use,
 * with controllers and kwok's fake Nodes (./control-plane.ts), seeded with sample
 * environments (./demo.ts), the way the local Temporal dev server stands in for a Temporal
 * cluster. Its state (certificates, etcd's data, logs, the kubeconfig) stays in
 * LOCAL_CLUSTER_DIR, so environments and their saved replica counts survive a restart.
 * One per directory: a second `npm start` joins the first one's and leaves it running.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { probeCluster } from '../activities/kubernetes/cluster';
import { kubeBinDir, missingBinaries, startControlPlane } from './control-plane';
import { seedDemo, type DemoEnvironments } from './demo';

export { openssl, startControlPlane, type ControlPlane, type ControlPlaneOptions, type ControllerScale } from './control-plane';
export { DEMO_NAMESPACES, DEMO_SHUTDOWN_AFTER_MINUTES, type DemoEnvironments } from './demo';

export interface LocalCluster {
  /** Absolute: what the banner prints for KUBECONFIG. */
  kubeConfigPath: string;
  kubeConfig: KubeConfig;
  /** Undefined: started by this process. A process id: that process's, joined here and left running when this one stops. */
  owner?: number;
  server: string;
  /** The sample environments; undefined when joined (their owner seeded them). */
  demo?: DemoEnvironments;
  stop(): Promise<void>;
}

/** The binaries are not installed: the banner says how to get them, and the service runs without a cluster. */
export class LocalClusterUnavailable extends Error {
  override name = 'LocalClusterUnavailable';
}

/** Which process owns the directory's control plane, and the processes it started. */
interface Owner {
  pid: number;
  children: number[];
}

const CONTEXT = 'devenv-local';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A process the directory's control plane started: its command line names the directory (a reused pid would not). */
function startedFrom(pid: number, dir: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir);
  } catch {
    return false;
  }
}

/** Claims the directory; false when another process holds it. */
function claim(ownerFile: string): boolean {
  try {
    writeFileSync(ownerFile, JSON.stringify({ pid: process.pid, children: [] } satisfies Owner), { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

export async function startLocalCluster({ dir: configured, now = new Date() }: { dir: string; now?: Date }): Promise<LocalCluster> {
  const dir = path.resolve(configured);
  const missing = missingBinaries(true);
  if (missing.length) {
    throw new LocalClusterUnavailable(
      `${missing.join(', ')} not in ${kubeBinDir()} (\`bash scripts/setup-kube.sh\` builds them once, with Go)`,
    );
  }
  mkdirSync(dir, { recursive: true });
  const ownerFile = path.join(dir, 'owner.json');
  const kubeConfigPath = path.join(dir, 'kubeconfig');
  while (!claim(ownerFile)) {
    const owner = JSON.parse(readFileSync(ownerFile, 'utf8')) as Owner;
    const children = owner.children.filter((pid) => startedFrom(pid, dir));
    if (alive(owner.pid) && owner.pid !== process.pid) {
      const kubeConfig = new KubeConfig();
      if (existsSync(kubeConfigPath) && children.length) {
        kubeConfig.loadFromFile(kubeConfigPath);
        if ((await probeCluster(kubeConfig)).reachable) {
          const server = kubeConfig.getCurrentCluster()!.server;
          return {
            kubeConfigPath,
            kubeConfig,
            server,
            owner: owner.pid,
            stop: async () => undefined,
          };
        }
      }
      throw new Error(
        `${dir} is held by process ${owner.pid} (another npm start), whose control plane does not answer yet: wait for it, or stop it`,
      );
    }
    // Its owner ended without stopping them (killed): what is left goes first, or the new etcd would find its data locked.
    for (const pid of children) process.kill(pid, 'SIGKILL');
    rmSync(ownerFile, { force: true });
  }
  let plane;
  try {
    plane = await startControlPlane({ dir, name: CONTEXT, controllers: true, durable: true, certificateDays: 3650, detached: true });
  } catch (err) {
    rmSync(ownerFile, { force: true });
    throw err;
  }
  const started = plane;
  writeFileSync(ownerFile, JSON.stringify({ pid: process.pid, children: started.pids() } satisfies Owner));
  const stop = async () => {
    await started.stop();
    rmSync(ownerFile, { force: true });
  };
  try {
    return { kubeConfigPath, kubeConfig: plane.kubeConfig, server: plane.server, demo: await seedDemo(plane.kubeConfig, now), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
