/**
 * CronJobs sleep suspended. The stop remembers that it suspended one, so the start resumes
 * only those: a CronJob a person had suspended stays suspended. In the report's from/to,
 * 1 means scheduling and 0 suspended.
 */
import { BatchV1Api, type KubeConfig, type V1CronJob } from '@kubernetes/client-node';
import { isExcluded, savedSuspend } from './annotations';
import { FIELD_MANAGER, mergePatch } from './apiserver';
import { managerOf, withConflictRetry, type WorkloadKind } from './workload-kind';

export function createCronJobKind(kubeConfig: KubeConfig): WorkloadKind<V1CronJob> {
  const batch = kubeConfig.makeApiClient(BatchV1Api);
  const read = (namespace: string, name: string) => batch.readNamespacedCronJob({ namespace, name });
  const patch = (namespace: string, name: string, body: object) =>
    batch.patchNamespacedCronJob({ namespace, name, fieldManager: FIELD_MANAGER, body }, mergePatch);

  return {
    kind: 'CronJob',
    plural: 'CronJobs',
    stage: 'workload',
    list: (namespace, page) => batch.listNamespacedCronJob({ namespace, ...page }),

    awake(cronJob) {
      if (isExcluded(cronJob.metadata) || cronJob.spec?.suspend === true) return null;
      const by = managerOf(cronJob.metadata, 'suspend', FIELD_MANAGER);
      return { replicas: 1, created: savedSuspend.read(cronJob.metadata) === undefined, ...(by ? { by } : {}) };
    },

    sleep(listed, { namespace, write }) {
      const name = listed.metadata!.name!;
      return withConflictRetry(
        listed,
        () => read(namespace, name),
        async (cronJob) => {
          // Suspended already: by an earlier stop (annotated) or by a person (left suspended on start).
          if (isExcluded(cronJob.metadata) || cronJob.spec?.suspend === true) return {};
          // One patch both remembers and suspends, so no crash can separate the two.
          await write(`suspend CronJob ${namespace}/${name}`, { namespace, kind: 'CronJob', name }, () =>
            patch(namespace, name, {
              metadata: { resourceVersion: cronJob.metadata?.resourceVersion, annotations: savedSuspend.save(false) },
              spec: { suspend: true },
            }),
          );
          return { change: { kind: 'CronJob', name, from: 1, to: 0 } };
        },
      );
    },

    wake(listed, { namespace, write }) {
      const name = listed.metadata!.name!;
      return withConflictRetry(
        listed,
        () => read(namespace, name),
        async (cronJob) => {
          const wasSuspended = savedSuspend.read(cronJob.metadata);
          if (isExcluded(cronJob.metadata) || wasSuspended === undefined) return {};
          const resume = !wasSuspended;
          await write(
            `${resume ? 'resume' : 'forget the saved state of'} CronJob ${namespace}/${name}`,
            { namespace, kind: 'CronJob', name },
            () =>
              patch(namespace, name, {
                metadata: { resourceVersion: cronJob.metadata?.resourceVersion, annotations: savedSuspend.clear() },
                ...(resume ? { spec: { suspend: false } } : {}),
              }),
          );
          return resume && cronJob.spec?.suspend ? { change: { kind: 'CronJob', name, from: 0, to: 1 } } : {};
        },
      );
    },

    describe: (cronJob) => ({
      cronJob: {
        name: cronJob.metadata?.name ?? '',
        suspended: cronJob.spec?.suspend === true,
        suspendedByScheduler: savedSuspend.read(cronJob.metadata) !== undefined,
        excluded: isExcluded(cronJob.metadata),
      },
    }),
  };
}
