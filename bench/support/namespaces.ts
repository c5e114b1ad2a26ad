/**
 * The admission benchmark has no cluster: the namespaces its AdmissionReviews name are
 * "stored" here instead. The webhook reads each namespace back before it acts on a review
 * (src/api/admission.ts), and the API process answers those reads from this stand-in
 * (api-child.ts): every namespace a review names exists as the review shows it, with the
 * uid the review gives it. What is measured is the webhook and Temporal, not an apiserver.
 */
import { createHash } from 'node:crypto';
import type { StoredNamespace } from '../../src/activities/contracts';

/** The uid of a benchmark namespace: the same in the review and in the stand-in. */
export function benchNamespaceUid(name: string): string {
  const hex = createHash('sha256').update(name).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

export const BENCH_NAMESPACE_LABELS = (name: string): Record<string, string> => ({
  'kubernetes.io/metadata.name': name,
  team: 'payments',
  scheduler: 'enabled',
});
export const BENCH_NAMESPACE_ANNOTATIONS = { owner: 'team-payments@example.com' };

/** The stand-in for the apiserver's read of a namespace. */
export async function readBenchNamespace(name: string): Promise<StoredNamespace> {
  return {
    name,
    uid: benchNamespaceUid(name),
    labels: BENCH_NAMESPACE_LABELS(name),
    annotations: { ...BENCH_NAMESPACE_ANNOTATIONS },
    terminating: false,
  };
}
