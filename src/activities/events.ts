/**
 * Kubernetes Events for what the environment workflow announces: each warning, stop and
 * start is also an Event on its namespace, so `kubectl get events -n dev1` tells the story
 * without Slack. Written through the core/v1 API (the same objects events.k8s.io/v1 serves),
 * whose timestamps client-node writes in the format the apiserver expects.
 *
 * Best effort, and once: an Event that cannot be written is logged, never a reason for a
 * warning not to reach Slack; and its name comes from the activity's own identity, so the
 * retries of one notification write it once.
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { CoreV1Api, type CoreV1Event, type KubeConfig } from '@kubernetes/client-node';
import { Context } from '@temporalio/activity';
import { describeDrift } from '../domain/drift';
import { GITOPS_KINDS } from '../domain/gitops';
import { describeReadiness } from '../domain/readiness';
import type { Logger } from '../logger';
import type { EnvironmentActivities, EnvironmentEvent } from './contracts';

/** The `source`/`reportingComponent` of every Event the service writes. */
export const EVENT_COMPONENT = 'devenv-scheduler';

/** What `kubectl get events` shows as REASON, TYPE and MESSAGE for each announcement. */
export function eventFor(event: EnvironmentEvent): Pick<CoreV1Event, 'reason' | 'type' | 'message'> {
  const problems = 'problems' in event && event.problems?.length ? ` Not done: ${event.problems.join(' ')}` : '';
  const type = problems ? 'Warning' : 'Normal';
  switch (event.kind) {
    case 'warning':
      return { reason: 'ShutdownWarning', type: 'Normal', message: `Stops at ${event.shutdownAt} (in ${event.minutesLeft} min).` };
    case 'stopped': {
      const { scaled, gitops } = split(event.report.changed);
      return {
        reason: 'Stopped',
        type,
        message: `Stopped by ${event.by}: ${scaled} workload${scaled === 1 ? '' : 's'} scaled down.${gitops ? ` GitOps held off: ${gitops}.` : ''}${problems}`,
      };
    }
    case 'started': {
      const { scaled, gitops } = split(event.report.changed);
      const next = event.shutdownAt ? ` Next stop ${event.shutdownAt}.` : '';
      const who = event.wokeUp ? `as scheduled (morning wake-up at ${event.wokeUp.clock})` : `by ${event.by}`;
      return {
        reason: 'Started',
        type,
        message: `Started ${who}: ${scaled} workload${scaled === 1 ? '' : 's'} restored${describeReadiness(event.report)}.${gitops ? ` GitOps handed back: ${gitops}.` : ''}${next}${problems}`,
      };
    }
    case 'aws-followed':
      return {
        reason: event.action === 'start' ? 'AwsStartFollowedUp' : 'AwsStopFollowedUp',
        type,
        message: `${event.detail}.${problems}`,
      };
    case 'drift':
      return {
        reason: event.mode === 'restop' ? 'DriftRestopped' : 'DriftReported',
        type: 'Warning',
        message: `${event.workloads.length} workload${event.workloads.length === 1 ? '' : 's'} ${describeDrift(event.mode, event.workloads)}.`,
      };
  }
}

/** A report's changes: how many workloads, and the GitOps objects held off or handed back ("Application argocd/web, Kustomization apps"). */
function split(changed: { kind: string; name: string }[]): { scaled: number; gitops: string } {
  const gitops = changed.filter((c) => GITOPS_KINDS.has(c.kind));
  return { scaled: changed.length - gitops.length, gitops: gitops.map((c) => `${c.kind} ${c.name}`).join(', ') };
}

/** The same name for every attempt of one activity, a new one for every other. */
function eventName(namespace: string): string {
  const { workflowExecution, activityId } = Context.current().info;
  const id = createHash('sha256')
    .update(`${workflowExecution?.workflowId ?? ''}/${workflowExecution?.runId ?? ''}/${activityId}`)
    .digest('hex')
    .slice(0, 20);
  return `${namespace}.devenv-${id}`;
}

/** How long a notification waits for its Event to be written before it goes on without it. */
const EVENT_TIMEOUT_MS = 5_000;

export function createEventRecorder(kubeConfig: KubeConfig, logger: Logger): (event: EnvironmentEvent) => Promise<void> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const instance = hostname();
  return async (event) => {
    const { namespace } = event;
    const now = new Date();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${EVENT_TIMEOUT_MS / 1000} s`)), EVENT_TIMEOUT_MS);
    });
    try {
      await Promise.race([
        timedOut,
        core.createNamespacedEvent({
          namespace,
          body: {
            metadata: { name: eventName(namespace), namespace },
            // The apiserver wants an Event's namespace on its object too, a Namespace included.
            involvedObject: { apiVersion: 'v1', kind: 'Namespace', name: namespace, namespace },
            ...eventFor(event),
            firstTimestamp: now,
            lastTimestamp: now,
            count: 1,
            source: { component: EVENT_COMPONENT },
            reportingComponent: EVENT_COMPONENT,
            reportingInstance: instance,
            action: event.kind,
          },
        }),
      ]);
    } catch (err) {
      // A retry of a notification whose Event was written the first time.
      if ((err as { code?: number }).code === 409) return;
      logger.warn({ namespace, kind: event.kind, error: String(err) }, 'could not record the Kubernetes Event; the notification goes on');
    } finally {
      clearTimeout(timer);
    }
  };
}

/** A notifier that also records each announcement as an Event, before it is delivered. */
export function withEvents(
  notifier: Pick<EnvironmentActivities, 'notify'>,
  record: (event: EnvironmentEvent) => Promise<void>,
): Pick<EnvironmentActivities, 'notify'> {
  return {
    async notify(event) {
      await record(event);
      await notifier.notify(event);
    },
  };
}
