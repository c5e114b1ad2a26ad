/**
 * Search attributes every environment workflow keeps current, so that the Temporal Web UI
 * and `temporal workflow list --query 'EnvPhase="running"'` answer "what is up right now".
 * They must be registered on the server: the dev server gets them as start-up flags and
 * `devenv-scheduler`'s setup registers them on a real cluster.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const EnvNamespace = defineSearchAttributeKey('EnvNamespace', SearchAttributeType.KEYWORD);
export const EnvPhase = defineSearchAttributeKey('EnvPhase', SearchAttributeType.KEYWORD);
export const EnvNextShutdown = defineSearchAttributeKey('EnvNextShutdown', SearchAttributeType.DATETIME);
export const EnvEnabled = defineSearchAttributeKey('EnvEnabled', SearchAttributeType.BOOL);
/** CLUSTER_NAME, set when an environment or support-pod workflow starts; absent without one. */
export const EnvCluster = defineSearchAttributeKey('EnvCluster', SearchAttributeType.KEYWORD);

export const ALL_SEARCH_ATTRIBUTES = [EnvNamespace, EnvPhase, EnvNextShutdown, EnvEnabled, EnvCluster];

/** Flags for `temporal server start-dev`, e.g. `--search-attribute EnvPhase=Keyword`. */
export function devServerSearchAttributeFlags(): string[] {
  const typeNames: Record<SearchAttributeType, string> = {
    [SearchAttributeType.TEXT]: 'Text',
    [SearchAttributeType.KEYWORD]: 'Keyword',
    [SearchAttributeType.INT]: 'Int',
    [SearchAttributeType.DOUBLE]: 'Double',
    [SearchAttributeType.BOOL]: 'Bool',
    [SearchAttributeType.DATETIME]: 'Datetime',
    [SearchAttributeType.KEYWORD_LIST]: 'KeywordList',
  };
  return ALL_SEARCH_ATTRIBUTES.flatMap((key) => ['--search-attribute', `${key.name}=${typeNames[key.type]}`]);
}
