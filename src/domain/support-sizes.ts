/**
 * The support-pod size catalogue (SUPPORT_SIZES) and how sizes compare. Plain data and
 * functions: the config resolves the catalogue once, and the parser, the gateway's limits
 * and the Kubernetes activities all take that one.
 */

/** A support pod size: CPU and memory, requests equal to limits (Guaranteed QoS). */
export interface PodResources {
  cpu: string;
  memory: string;
}

export type SupportSizes = Readonly<Record<string, PodResources>>;

/** The catalogue without SUPPORT_SIZES. */
export const DEFAULT_SUPPORT_SIZES: SupportSizes = {
  XS: { cpu: '250m', memory: '512Mi' },
  S: { cpu: '500m', memory: '1Gi' },
  M: { cpu: '1', memory: '2Gi' },
  L: { cpu: '2', memory: '4Gi' },
  XL: { cpu: '4', memory: '8Gi' },
};

/** Millicores of a Kubernetes CPU quantity (`250m`, `1`, `1.5`); NaN when it is not one. */
export function cpuMillis(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?)(m?)$/.exec(quantity);
  if (!match) return Number.NaN;
  return match[2] ? Number(match[1]) : Number(match[1]) * 1000;
}

const MEMORY_UNITS: Record<string, number> = { '': 1, K: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };

/** Bytes of a Kubernetes memory quantity (`512Mi`, `2Gi`, `1G`); NaN when it is not one. */
export function memoryBytes(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|K|M|G|T)?$/.exec(quantity);
  if (!match) return Number.NaN;
  return Number(match[1]) * MEMORY_UNITS[match[2] ?? '']!;
}

/** Whether `size` asks for more CPU or more memory than `max` (both of the catalogue). */
export function sizeExceeds(size: PodResources, max: PodResources): boolean {
  return cpuMillis(size.cpu) > cpuMillis(max.cpu) || memoryBytes(size.memory) > memoryBytes(max.memory);
}
