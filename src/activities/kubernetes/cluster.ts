/** Whether there is a cluster to talk to at all: the banner says which at start-up, and a reconcile that cannot list namespaces says why. */
import { VersionApi, type KubeConfig } from '@kubernetes/client-node';

export type ClusterProbe = { reachable: true; server: string; version: string } | { reachable: false; server: string; reason: string };

/** Whether the kubeconfig's cluster answers at all (its `/version`, which every identity may read), within `timeoutMs`. */
export async function probeCluster(kubeConfig: KubeConfig, timeoutMs = 3000): Promise<ClusterProbe> {
  const server = kubeConfig.getCurrentCluster()?.server ?? '(no server)';
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  try {
    const version = await Promise.race([kubeConfig.makeApiClient(VersionApi).getCode(), timeout]);
    return { reachable: true, server, version: version.gitVersion };
  } catch (err) {
    const { code, message } = err as { code?: string; message?: string };
    return { reachable: false, server, reason: code ?? message ?? String(err) };
  } finally {
    clearTimeout(timer);
  }
}
