/**
 * What every Kubernetes read and write here shares: the field manager and patch types the
 * worker's admission policies expect, one pager for every list, the DRY_RUN writer, and
 * the mapping of the apiserver's refusals to failures that say where to look.
 */
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { asyncLocalStorage } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { Failure } from '../../domain/failures';
import type { Logger } from '../../logger';

/**
 * The name every stop and start write is recorded under in `metadata.managedFields`. The
 * worker's fields policy (k8s/admission-policy.yaml) lets this manager own only what stop
 * and start write, and no write of the worker's change another manager's record but by
 * the fields it took over.
 */
export const FIELD_MANAGER = 'devenv-scheduler';

export const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
/**
 * A stop or start never reads back the workload it patched, so it asks for the metadata
 * alone: the apiserver then neither encodes nor client-node decodes the whole Deployment
 * (500 such patches on the test apiserver: about 8% quicker).
 */
export const mergePatchMetadataOnly = setHeaderOptions(
  'Accept',
  'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1',
  mergePatch,
);

export const statusCode = (error: unknown): number | undefined => (error as { code?: unknown }).code as number | undefined;

/** The apiserver's own message of a failed request (its Status body), or undefined. */
function statusMessage(error: unknown): string | undefined {
  const { body } = error as { body?: unknown };
  try {
    const status = (typeof body === 'string' ? JSON.parse(body) : body) as { message?: unknown } | undefined;
    return typeof status?.message === 'string' ? status.message : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A 401 or 403 as what it is: a missing RBAC permission, a refusal by the service's own
 * admission policy, a pod the namespace's Pod Security level does not admit, or a
 * ResourceQuota used up. None of them is fixed by retrying, so each fails for good, with
 * the apiserver's reason and where to look. Anything else is returned as it came.
 */
export function kubernetesFailure(what: string, error: unknown): unknown {
  const code = statusCode(error);
  if (code !== 401 && code !== 403) return error;
  const message = statusMessage(error) ?? '';
  const refused = `Kubernetes refused to ${what} (HTTP ${code})`;
  if (code === 403 && /violates PodSecurity/.test(message)) {
    return ApplicationFailure.nonRetryable(
      `${refused}: the namespace's Pod Security level does not admit the pod: ${message}`,
      Failure.KubernetesPodSecurity,
    );
  }
  if (code === 403 && /exceeded quota/.test(message)) {
    return ApplicationFailure.nonRetryable(
      `${refused}: its ResourceQuota is used up (stop a support pod or raise the quota): ${message}`,
      Failure.KubernetesQuotaExceeded,
    );
  }
  if (code === 403 && /ValidatingAdmissionPolicy/.test(message)) {
    return ApplicationFailure.nonRetryable(
      `${refused}: denied by an admission policy (see k8s/admission-policy.yaml): ${message}`,
      Failure.KubernetesPolicyDenied,
    );
  }
  return ApplicationFailure.nonRetryable(
    `${refused}: the service account needs the permissions in k8s/rbac.yaml${message ? `: ${message}` : ''}`,
    Failure.KubernetesForbidden,
  );
}

/** 429s a request meets before it fails: the apiserver's priority and fairness has shed it each time. */
const THROTTLED_ATTEMPTS = 6;
/** The longest wait after one 429, whatever the apiserver asks: the activity's heartbeat must not lapse meanwhile. */
const MAX_THROTTLED_WAIT_MS = 10_000;

/** How long the apiserver asks a throttled client to wait (its Retry-After, in seconds; 1 s without one). */
function retryAfterMs(error: unknown): number {
  const { headers } = error as { headers?: Record<string, string> };
  const seconds = Number(headers?.['retry-after']);
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds * 1000, MAX_THROTTLED_WAIT_MS) : 1000;
}

/**
 * 429s that a throttled() already sent again its THROTTLED_ATTEMPTS times. An enclosing
 * throttled() (a list of lists, or a call() around a pager that throttles each page) only
 * passes such a 429 on: the retries belong to the innermost request, never multiplied by
 * every level that wraps it, each sleeping while the caller holds its concurrency turn.
 */
const exhausted = new WeakSet<object>();

/**
 * Makes a request again after each 429 Too Many Requests, as client-go does, waiting what
 * the apiserver's Retry-After asks (with jitter, so that clients it shed together do not
 * come back together). A 429 is sent before the request is served, so nothing of it was
 * done: a write carrying its resourceVersion is safe to send again. Ends at once when the
 * activity is cancelled.
 */
export async function throttled<T>(request: () => Promise<T>): Promise<T> {
  const context = asyncLocalStorage.getStore();
  const cancellation = context?.cancellationSignal;
  for (let attempt = 1; ; attempt++) {
    try {
      return await request();
    } catch (error) {
      if (statusCode(error) !== 429) throw error;
      if (attempt >= THROTTLED_ATTEMPTS || exhausted.has(error as object)) {
        if (typeof error === 'object' && error !== null) exhausted.add(error);
        throw error;
      }
      // A wait the apiserver asked for is no hang: the activity says it is alive meanwhile.
      context?.heartbeat();
      await sleep(retryAfterMs(error) * (1 + Math.random() / 2), undefined, cancellation ? { signal: cancellation } : {});
    }
  }
}

/** Makes a request (again after a 429: throttled), turning a refusal into the failure that says why (kubernetesFailure). */
export async function call<T>(what: string, request: () => Promise<T>): Promise<T> {
  try {
    return await throttled(request);
  } catch (error) {
    throw kubernetesFailure(what, error);
  }
}

/** What a list request is given for one page. */
export interface PageRequest {
  limit: number;
  _continue?: string;
  /** `0`: whatever the apiserver's watch cache holds, served without a read from etcd (the drift re-check's cheap look). */
  resourceVersion?: string;
  /**
   * For an optional CRD's kind: a 404 remembered (notServedMemo) counts only if asked at or
   * after this time. A stop's own inventory must see objects of a CRD installed just before it.
   */
  notServedSince?: number;
}

/**
 * Follows `continue` tokens, so a namespace with hundreds of objects (or a cluster with
 * hundreds of namespaces) is listed in pages. Each page is its own request and is sent
 * again after a 429 by itself (throttled), so a shed page 3 does not list pages 1 and 2 again.
 */
export async function listAll<T>(
  pageSize: number,
  page: (request: PageRequest) => Promise<{ items: T[]; metadata?: { _continue?: string } }>,
  resourceVersion?: string,
  notServedSince?: number,
): Promise<T[]> {
  const items: T[] = [];
  let token: string | undefined;
  do {
    const request = {
      limit: pageSize,
      _continue: token,
      ...(resourceVersion && !token ? { resourceVersion } : {}),
      ...(notServedSince !== undefined ? { notServedSince } : {}),
    };
    const result = await throttled(() => page(request));
    items.push(...result.items);
    token = result.metadata?._continue || undefined;
  } while (token);
  return items;
}

/** Performs a write, or in DRY_RUN only logs it; returns undefined when skipped. */
export type Write = <T>(what: string, detail: object, request: () => Promise<T>) => Promise<T | undefined>;

export function createWriter({ dryRun, logger }: { dryRun: boolean; logger: Logger }): Write {
  return async (what, detail, request) => {
    if (dryRun) {
      logger.info({ dryRun: true, ...detail }, `DRY_RUN: would ${what}`);
      return undefined;
    }
    logger.info(detail, what);
    return call(what, request);
  };
}
