/**
 * Kubernetes names as the scheduler accepts them: namespaces, support pods and CLUSTER_NAME
 * are all DNS-1123 labels. Plain data and functions: any layer may import it.
 */
export const DNS_1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export const DNS_1123_LABEL_MAX_LENGTH = 63;

/** Lowercase letters, digits and '-', at most 63, alphanumeric at both ends. */
export function isDns1123Label(value: string): boolean {
  return value.length <= DNS_1123_LABEL_MAX_LENGTH && DNS_1123_LABEL.test(value);
}

/** Why `value` is not a namespace or pod name, in words; undefined when it is one. */
export function dns1123LabelError(value: string): string | undefined {
  if (value.length > DNS_1123_LABEL_MAX_LENGTH) return `"${value}" is longer than ${DNS_1123_LABEL_MAX_LENGTH} characters`;
  if (!DNS_1123_LABEL.test(value)) {
    return `"${value}" is not a valid name: use lowercase letters, digits and '-', starting and ending with a letter or digit`;
  }
  return undefined;
}
