/**
 * One Temporal namespace, several clusters (CLUSTER_NAME): each cluster's workflows and
 * Schedules carry its name in their ids, `<cluster>/<id>` (`eu-1/env/dev1`), and its name in
 * the `EnvCluster` search attribute, so neither collides with another cluster's and every
 * listing sees its own alone. Without a name, ids are as they always were (`env/dev1`).
 * Pure: the workflows use it too.
 */
export function scopedId(id: string, cluster: string | undefined): string {
  return cluster ? `${cluster}/${id}` : id;
}
