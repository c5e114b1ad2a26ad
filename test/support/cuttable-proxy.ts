/**
 * A TCP proxy in front of the test apiserver that can drop every connection and refuse new
 * ones, as an apiserver outage (or a network cut) looks to a client, and the kubeconfig to
 * reach the apiserver through it.
 */
import net from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

/** The admin kubeconfig, but talking to the apiserver through `server`. */
export function throughProxy(original: KubeConfig, server: string): KubeConfig {
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: original.clusters.map((c) => ({ ...c, server })),
    users: original.users,
    contexts: original.contexts,
    currentContext: original.currentContext,
  });
  return config;
}

/** A TCP proxy that can drop every connection and refuse new ones, as an apiserver outage looks to a client. */
export async function startCuttableProxy(
  target: URL,
): Promise<{ url: string; refused: number; cut(): void; restore(): void; close(): void }> {
  const sockets = new Set<net.Socket>();
  let down = false;
  const state = { refused: 0 };
  const server = net.createServer((client) => {
    if (down) {
      state.refused++;
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    get refused() {
      return state.refused;
    },
    cut() {
      down = true;
      for (const socket of sockets) socket.destroy();
    },
    restore() {
      down = false;
    },
    close() {
      server.close();
      for (const socket of sockets) socket.destroy();
    },
  };
}
