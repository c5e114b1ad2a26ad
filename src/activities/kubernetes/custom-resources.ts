/**
 * Objects of a CustomResourceDefinition another project installs (Argo Rollouts, KEDA),
 * read and patched through the generic custom-objects API. Such a CRD is optional: a cluster
 * without it answers a list with 404, which is a namespace with none of them, not a failure
 * (a 403 stays the refusal it is, listKind reports it as such).
 */
import { CustomObjectsApi, type KubeConfig, type V1ObjectMeta } from '@kubernetes/client-node';
import { FIELD_MANAGER, mergePatchMetadataOnly, statusCode, type PageRequest } from './apiserver';

export interface CustomResource {
  group: string;
  version: string;
  plural: string;
}

export interface CustomObjects<T> {
  list(namespace: string, page: PageRequest): Promise<{ items: T[]; metadata?: { _continue?: string } }>;
  read(namespace: string, name: string): Promise<T>;
  patch(namespace: string, name: string, body: object): Promise<unknown>;
}

/** How long a resource the apiserver answered 404 for is taken as not served, without asking again. */
const NOT_SERVED_MS = 30_000;

/**
 * Remembers for NOT_SERVED_MS that a list was answered 404, i.e. that its CRD is not
 * installed: hundreds of stops at one minute would otherwise each ask for every optional
 * kind and be told the same. A CRD installed meanwhile is listed once the time is up, or at
 * once by a list that takes only a 404 asked since it began (PageRequest.notServedSince).
 */
export function notServedMemo(): { known(since?: number): boolean; asking(): (error: unknown) => boolean } {
  let until = 0;
  let askedAt = 0;
  return {
    known: (since) => Date.now() < until && (since === undefined || askedAt >= since),
    asking() {
      const sent = Date.now();
      return (error) => {
        if (statusCode(error) !== 404) return false;
        until = Date.now() + NOT_SERVED_MS;
        askedAt = Math.max(askedAt, sent);
        return true;
      };
    },
  };
}

export function customObjects<T extends { metadata?: V1ObjectMeta }>(kubeConfig: KubeConfig, resource: CustomResource): CustomObjects<T> {
  const api = kubeConfig.makeApiClient(CustomObjectsApi);
  const notServed = notServedMemo();
  return {
    async list(namespace, { notServedSince, ...page }) {
      if (notServed.known(notServedSince)) return { items: [] };
      const saw = notServed.asking();
      try {
        return (await api.listNamespacedCustomObject({ ...resource, namespace, ...page })) as {
          items: T[];
          metadata?: { _continue?: string };
        };
      } catch (error) {
        if (saw(error)) return { items: [] };
        throw error;
      }
    },
    read: async (namespace, name) => (await api.getNamespacedCustomObject({ ...resource, namespace, name })) as T,
    patch: (namespace, name, body) =>
      api.patchNamespacedCustomObject({ ...resource, namespace, name, body, fieldManager: FIELD_MANAGER }, mergePatchMetadataOnly),
  };
}
