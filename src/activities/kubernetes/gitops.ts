/**
 * What the GitOps kinds share (argocd-applications.ts, flux-kustomizations.ts,
 * flux-helmreleases.ts): the one way they list, read and patch custom objects. A
 * GitOps object that deploys into an environment need not live in it (Argo CD keeps its
 * Applications in its own namespace, Flux often keeps Kustomizations in flux-system), so
 * such a kind lists the namespaces it is told of and keeps only the objects aimed at the
 * environment.
 */
import { CustomObjectsApi, type KubeConfig, type V1ObjectMeta } from '@kubernetes/client-node';
import { ALL_NAMESPACES } from '../../domain/gitops';
import { call, FIELD_MANAGER, listAll, mergePatch, type PageRequest } from './apiserver';
import { notServedMemo } from './custom-resources';

export interface CustomObject {
  apiVersion?: string;
  kind?: string;
  metadata?: V1ObjectMeta;
  spec?: Record<string, unknown>;
}

export interface CustomResource {
  group: string;
  version: string;
  plural: string;
  /** As messages name one (`Application`). */
  kind: string;
}

export function customObjects(kubeConfig: KubeConfig, resource: CustomResource) {
  const api = kubeConfig.makeApiClient(CustomObjectsApi);
  const { group, version, plural, kind } = resource;
  const notServed = notServedMemo();

  /**
   * Every object in `namespace` (or every namespace, `*`), a page at a time. A resource the
   * cluster does not serve (its CRD is not installed) has none: the tool is simply not there.
   */
  async function listIn(namespace: string, page: PageRequest): Promise<CustomObject[]> {
    const where = namespace === ALL_NAMESPACES ? 'all namespaces' : namespace;
    if (notServed.known(page.notServedSince)) return [];
    const saw = notServed.asking();
    try {
      return await call(`list ${kind}s in ${where}`, () =>
        listAll<CustomObject>(
          page.limit,
          (request) =>
            (namespace === ALL_NAMESPACES
              ? api.listCustomObjectForAllNamespaces({ group, version, plural, ...request })
              : api.listNamespacedCustomObject({ group, version, namespace, plural, ...request })) as Promise<{
              items: CustomObject[];
              metadata?: { _continue?: string };
            }>,
          page.resourceVersion,
        ),
      );
    } catch (error) {
      if (saw(error)) return [];
      throw error;
    }
  }

  return {
    /**
     * One "page" of what a kind takes part in for `namespace`: the objects of each of
     * `namespaces` (each listed in pages of its own) that `aimedAt` the environment, and
     * those living in it when `inNamespace` says so. Duplicates (a namespace listed twice,
     * or every namespace) are kept once.
     */
    async list(
      namespace: string,
      page: PageRequest,
      { namespaces, inNamespace, aimedAt }: { namespaces: string[]; inNamespace: boolean; aimedAt: (object: CustomObject) => boolean },
    ): Promise<{ items: CustomObject[] }> {
      const lists = await Promise.all([
        ...namespaces.map(async (from) => (await listIn(from, page)).filter(aimedAt)),
        ...(inNamespace && !namespaces.includes(ALL_NAMESPACES) ? [listIn(namespace, page)] : []),
      ]);
      const seen = new Set<string>();
      const items = lists.flat().filter((object) => {
        const key = `${object.metadata?.namespace}/${object.metadata?.name}`;
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      });
      return { items };
    },
    read: (namespace: string, name: string) =>
      api.getNamespacedCustomObject({ group, version, namespace, plural, name }) as Promise<CustomObject>,
    patch: (namespace: string, name: string, body: object) =>
      api.patchNamespacedCustomObject({ group, version, namespace, plural, name, body, fieldManager: FIELD_MANAGER }, mergePatch),
  };
}

/** How reports name an object: by its name in the environment, with its namespace elsewhere. */
export const displayName = (object: CustomObject, environment: string): string =>
  object.metadata?.namespace === environment ? object.metadata!.name! : `${object.metadata?.namespace}/${object.metadata?.name}`;
