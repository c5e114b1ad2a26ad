/**
 * The one vocabulary of failure types this service raises as Temporal ApplicationFailures.
 * Activities throw with these, workflows list them in `nonRetryableErrorTypes` and match on
 * them, and the gateway maps them to what each front end says (HTTP status, CLI exit code),
 * so a type is never spelled twice. Plain data: workflow code imports it too.
 */
export const Failure = {
  /** The environment's namespace is gone from the cluster. */
  NamespaceNotFound: 'NamespaceNotFound',
  /** No Kubernetes apiserver answered the reconciler. */
  ClusterUnreachable: 'ClusterUnreachable',
  /** The apiserver refused the worker's ServiceAccount (RBAC). */
  KubernetesForbidden: 'KubernetesForbidden',
  /** A ValidatingAdmissionPolicy refused the write. */
  KubernetesPolicyDenied: 'KubernetesPolicyDenied',
  /** The namespace's Pod Security level does not admit the pod. */
  KubernetesPodSecurity: 'KubernetesPodSecurity',
  /** The namespace's ResourceQuota is used up. */
  KubernetesQuotaExceeded: 'KubernetesQuotaExceeded',
  /** AWS refused the credentials or the IAM policy does not allow the call. */
  AwsNotAllowed: 'AwsNotAllowed',
  /** The DynamoDB inventory table does not exist. */
  InventoryTableMissing: 'InventoryTableMissing',
  /** Slack refused a message for good (channel not found, not in channel, ...). */
  SlackMessageRejected: 'SlackMessageRejected',
  /** Slack asked to slow down; retried after the delay it gave. */
  SlackRateLimited: 'SlackRateLimited',
  InvalidSupportPodName: 'InvalidSupportPodName',
  InvalidSupportPodSize: 'InvalidSupportPodSize',
  InvalidSupportPodExpiry: 'InvalidSupportPodExpiry',
  /** A pod of that name exists and belongs to someone or something else. */
  SupportPodNameTaken: 'SupportPodNameTaken',
  /** A pod of that name is still terminating; retried until it is gone. */
  SupportPodNameTerminating: 'SupportPodNameTerminating',
  /** The requester already has as many support pods as one person may. */
  SupportPodLimitReached: 'SupportPodLimitReached',
} as const;

export type FailureType = (typeof Failure)[keyof typeof Failure];

/** The innermost ApplicationFailure type among a failure's causes, if it is one of ours. */
export function failureType(err: unknown): FailureType | undefined {
  const known = new Set<string>(Object.values(Failure));
  let current = err as { cause?: unknown; type?: unknown } | undefined;
  let type: FailureType | undefined;
  while (current) {
    if (typeof current.type === 'string' && known.has(current.type)) type = current.type as FailureType;
    current = current.cause as typeof current;
  }
  return type;
}
