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

export function customObjects<T extends { metadata?: V1ObjectMeta }>(kubeConfig: KubeConfig, resource: CustomResource): CustomObjects<T> {
  const api = kubeConfig.makeApiClient(CustomObjectsApi);
  return {
    async list(namespace, page) {
      try {
        return (await api.listNamespacedCustomObject({ ...resource, namespace, ...page })) as {
          items: T[];
          metadata?: { _continue?: string };
        };
      } catch (error) {
        if (statusCode(error) === 404) return { items: [] };
        throw error;
      }
    },
    read: async (namespace, name) => (await api.getNamespacedCustomObject({ ...resource, namespace, name })) as T,
    patch: (namespace, name, body) =>
      api.patchNamespacedCustomObject({ ...resource, namespace, name, body, fieldManager: FIELD_MANAGER }, mergePatchMetadataOnly),
  };
}
