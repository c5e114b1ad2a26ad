/**
 * Namespaces as the rest of the service reads them: whether an environment's namespace is
 * there, every namespace of the cluster for the reconciler, one namespace for the admission
 * webhook, and the Slack channel a namespace asks for.
 */
import { CoreV1Api, type KubeConfig, type V1Namespace } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { Failure } from '../../domain/failures';
import type { NamespaceInfo, StoredNamespace } from '../contracts';
import type { Logger } from '../../logger';
import { SLACK_CHANNEL_ANNOTATION } from '../../slack/ids';
import { call, listAll, statusCode } from './apiserver';

/** How a namespace is to terminate: being deleted (a deletionTimestamp, or phase Terminating). */
function terminating(ns: V1Namespace): boolean {
  return ns.status?.phase === 'Terminating' || ns.metadata?.deletionTimestamp !== undefined;
}

/** Fails for good (NamespaceNotFound) when the namespace is not in the cluster. */
export async function ensureNamespace(core: CoreV1Api, namespace: string): Promise<void> {
  try {
    await call(`read namespace ${namespace}`, () => core.readNamespace({ name: namespace }));
  } catch (error) {
    if (statusCode(error) !== 404) throw error;
    throw ApplicationFailure.nonRetryable(
      `namespace "${namespace}" does not exist in the cluster, so there is nothing to stop, start or show`,
      Failure.NamespaceNotFound,
    );
  }
}

/** Every namespace in the cluster, a page at a time (the reconciler compares them with the running environments). */
export function createNamespaceLister(kubeConfig: KubeConfig, pageSize = 500): () => Promise<NamespaceInfo[]> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  return async () =>
    (await listAll(pageSize, (page) => core.listNamespace(page))).map((ns) => ({
      name: ns.metadata?.name ?? '',
      labels: ns.metadata?.labels ?? {},
      annotations: ns.metadata?.annotations ?? {},
      terminating: terminating(ns),
    }));
}

/**
 * Reads one namespace from the apiserver (the admission webhook, before it acts on a
 * review): undefined when there is none (404). Needs only `get` on namespaces, which the
 * API's ServiceAccount has. Any other failure is thrown.
 */
export function createNamespaceReader(kubeConfig: KubeConfig): (name: string) => Promise<StoredNamespace | undefined> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  return async (name) => {
    let ns: V1Namespace;
    try {
      ns = await core.readNamespace({ name });
    } catch (error) {
      if (statusCode(error) === 404) return undefined;
      throw error;
    }
    return {
      name,
      uid: ns.metadata?.uid,
      labels: ns.metadata?.labels ?? {},
      annotations: ns.metadata?.annotations ?? {},
      terminating: terminating(ns),
    };
  };
}

/**
 * The Slack channel a namespace asks for (annotation `devenv-scheduler/slack-channel`),
 * remembered for a minute: a warning burst across many namespaces costs one read each.
 * A namespace that cannot be read has no channel of its own, so its warnings still go
 * to the default channel rather than nowhere.
 */
export function createSlackChannelLookup(
  kubeConfig: KubeConfig,
  logger: Logger,
  cacheMs = 60_000,
): (namespace: string) => Promise<string | undefined> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const cache = new Map<string, { channel: string | undefined; until: number }>();
  return async (namespace) => {
    const cached = cache.get(namespace);
    if (cached && cached.until > Date.now()) return cached.channel;
    let channel: string | undefined;
    try {
      channel = (await core.readNamespace({ name: namespace })).metadata?.annotations?.[SLACK_CHANNEL_ANNOTATION]?.trim() || undefined;
    } catch (error) {
      logger.warn(
        { namespace, status: statusCode(error) },
        'could not read the namespace for its Slack channel; using the default channel',
      );
    }
    cache.set(namespace, { channel, until: Date.now() + cacheMs });
    return channel;
  };
}
