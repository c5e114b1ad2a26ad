/** GITOPS, ARGOCD_NAMESPACES and FLUX_NAMESPACES: whether and where GitOps controllers are held off a stopped environment. */
export interface GitOpsSettings {
  /** `hold` keeps Argo CD and Flux off a stopped environment and hands it back on start; `off` leaves them alone. */
  mode: 'hold' | 'off';
  /** Where Argo CD's Applications live. */
  argocdNamespaces: string[];
  /** Where Kustomizations and HelmReleases aimed at an environment may live besides in it; `*`: every namespace. */
  fluxNamespaces: string[];
}

/** Every namespace, in FLUX_NAMESPACES. */
export const ALL_NAMESPACES = '*';

/** Where Argo CD and Flux install themselves by default (their own manifests and `flux bootstrap`). */
export const DEFAULT_GITOPS: GitOpsSettings = { mode: 'hold', argocdNamespaces: [], fluxNamespaces: ['flux-system'] };

/** The kinds a stop holds off and a start hands back (GITOPS=hold), as their reports name them. */
export const GITOPS_KINDS: ReadonlySet<string> = new Set(['Application', 'Kustomization', 'HelmRelease']);
