/** The test kube-apiserver's Prometheus text (/metrics), read as the kubeconfig's admin: what the benches count requests by. */
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

export async function apiserverMetrics(kubeConfig: KubeConfig): Promise<string> {
  const cluster = kubeConfig.getCurrentCluster()!;
  const options: https.RequestOptions = {};
  await kubeConfig.applyToHTTPSOptions(options);
  return new Promise<string>((resolve, reject) => {
    https
      .get(`${cluster.server}/metrics`, options, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}
