/**
 * What the manifest suites share: the renderers the setup scripts build (kustomize for
 * k8s/, helm for charts/), the objects exactly as they render, and a client that submits
 * them to the test apiserver as written with strict field validation: client-node's typed
 * models would silently drop a misspelt field (and the apiserver, by default, only warns),
 * so "accepted" would not mean "every field was understood".
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import {
  createConfiguration,
  HttpMethod,
  KubernetesObjectApi,
  PatchStrategy,
  ServerConfiguration,
  type KubeConfig,
  type KubernetesObject,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { cacheDir } from '../../src/temporal/binaries';

const ROOT = path.join(__dirname, '../..');

// The YAML parser client-node itself uses, for the objects exactly as written:
// loadAllYaml maps them onto typed models, which drops any field a model does not have.
export const yaml = createRequire(require.resolve('@kubernetes/client-node'))('js-yaml') as {
  loadAll(text: string): unknown[];
  load(text: string): unknown;
  dump(value: unknown): string;
};

export type Raw = KubernetesObject & Record<string, unknown>;

/** Kind, namespace and name: what identifies an object to the apiserver. */
export const id = (o: KubernetesObject) => `${o.kind}/${o.metadata?.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata?.name}`;

/**
 * kustomize or helm where scripts/setup-<tool>.sh puts it; the pinned version lives in the
 * script only. <TOOL>_PATH overrides, as it makes the script skip the build.
 */
export function toolBinary(tool: 'kustomize' | 'helm'): string {
  const variable = tool.toUpperCase();
  const fromEnv = process.env[`${variable}_PATH`];
  if (fromEnv) return fromEnv;
  const script = readFileSync(path.join(ROOT, `scripts/setup-${tool}.sh`), 'utf8');
  const version = new RegExp(`^${variable}_VERSION="([^"]+)"`, 'm').exec(script)?.[1];
  if (!version) throw new Error(`scripts/setup-${tool}.sh: ${variable}_VERSION not found`);
  const file = path.join(cacheDir(), `${tool}-${version}`, 'bin', tool);
  if (!existsSync(file)) throw new Error(`${file} not found: run scripts/setup-${tool}.sh (or set ${variable}_PATH)`);
  return file;
}

/** An ApiException's status and message, or the error as it is. */
export function describeError(error: unknown): { code?: number; message: string } {
  const { code, body } = error as { code?: number; body?: unknown };
  if (code === undefined) return { message: String(error) };
  let message = typeof body === 'string' ? body : JSON.stringify(body);
  try {
    message = (JSON.parse(message) as { message?: string }).message ?? message;
  } catch {
    // not JSON: keep it as it came
  }
  return { code, message };
}

/**
 * A KubernetesObjectApi that sends `object` exactly as written (its typed serializer
 * would drop unknown fields) and asks the apiserver for strict field validation.
 */
export function strictApi(kubeConfig: KubeConfig, server: string, object: Raw): KubernetesObjectApi {
  return new KubernetesObjectApi(
    createConfiguration({
      baseServer: new ServerConfiguration(server, {}),
      authMethods: { default: kubeConfig },
      promiseMiddleware: [
        {
          pre: async (context) => {
            if (context.getHttpMethod() !== HttpMethod.GET) {
              context.setQueryParam('fieldValidation', 'Strict');
              context.setBody(JSON.stringify(object));
            }
            return context;
          },
          post: async (response) => response,
        },
      ],
    }),
  );
}

/**
 * Vendored CRDs (by default those the manifests use, cert-manager's and the Prometheus
 * Operator's; test/fixtures/crds has Argo CD's and Flux's), created once per apiserver and
 * waited for until established. Files are named relative to test/fixtures.
 */
export async function createVendoredCrds(
  kubeConfig: KubeConfig,
  server: string,
  files = ['cert-manager-crds.yaml', 'prometheus-operator-crds.yaml'],
): Promise<void> {
  const crds = files.flatMap((file) => yaml.loadAll(readFileSync(path.join(ROOT, 'test/fixtures', file), 'utf8')) as Raw[]);
  for (const crd of crds) {
    await strictApi(kubeConfig, server, crd)
      .create(crd)
      .catch((error: unknown) => {
        if (describeError(error).code !== 409) throw error;
      });
  }
  const plain = KubernetesObjectApi.makeApiClient(kubeConfig);
  const deadline = Date.now() + 30_000;
  for (const crd of crds) {
    for (;;) {
      const current = (await plain.read({
        apiVersion: crd.apiVersion!,
        kind: crd.kind!,
        metadata: { name: crd.metadata!.name! },
      })) as V1CustomResourceDefinition;
      if (current.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (Date.now() > deadline) throw new Error(`${crd.metadata!.name} not established`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/**
 * Dry-run create with strict field validation; an object that exists already (a namespace,
 * or one another suite created) is dry-run applied instead, as `fieldManager`.
 */
export async function dryRunCreate(kubeConfig: KubeConfig, server: string, object: Raw, fieldManager: string): Promise<KubernetesObject> {
  const api = strictApi(kubeConfig, server, object);
  try {
    return await api.create(object, undefined, 'All');
  } catch (error) {
    if (describeError(error).code !== 409) throw error;
    return api.patch(object, undefined, 'All', fieldManager, true, PatchStrategy.ServerSideApply);
  }
}
