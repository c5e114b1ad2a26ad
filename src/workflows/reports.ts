/**
 * The sentences a Slack reply shows for what a stop or start did. Pure, so the workflow
 * can build its reply deterministically and tests can read it like a user would.
 */
import type { AwsActionReport, AwsOutcome, DatabaseRef, AwsResource, AwsStatus, HalfProblem } from '../activities/contracts';

const OUTCOME_WORDS: Record<'stop' | 'start', Partial<Record<AwsOutcome, string>>> = {
  stop: {
    changed: 'stopping',
    already: 'already stopped',
    busy: 'still starting (stopped once it is up)',
    'dry-run': 'would stop (dry run)',
  },
  start: {
    changed: 'starting',
    already: 'already running',
    busy: 'still stopping (started once it has stopped)',
    'dry-run': 'would start (dry run)',
  },
};

/** States in which a resource costs money and a stop would act on it. */
const AWAKE_STATES = new Set(['pending', 'running', 'available', 'starting']);

/** Outcomes that leave nothing undone: the resource is where it was asked to be, or is not the environment's to move. */
const DONE_OUTCOMES: ReadonlySet<AwsOutcome> = new Set(['changed', 'already', 'excluded', 'gone', 'dry-run']);

/** "; AWS: 2 stopping, 1 already stopped; not possible: rds-instance db-replica (read replica)" or "" when nothing is tagged. */
export function describeAwsReport(report: AwsActionReport): string {
  const relevant = report.resources.filter((r) => r.outcome !== 'excluded' && r.outcome !== 'gone');
  if (relevant.length === 0) return '';
  const counts = new Map<string, number>();
  const problems: string[] = [];
  for (const resource of relevant) {
    const words = OUTCOME_WORDS[report.action][resource.outcome];
    if (words) counts.set(words, (counts.get(words) ?? 0) + 1);
    else
      problems.push(
        `${resource.kind} ${resource.name ?? resource.id} (${resource.outcome}${resource.detail ? `: ${resource.detail}` : ''})`,
      );
  }
  const summary = [...counts].map(([words, count]) => `${count} ${words}`).join(', ');
  return `; AWS: ${summary || 'nothing to do'}${problems.length ? `; not possible: ${problems.join(', ')}` : ''}`;
}

/** Resources a stop counts as not done: AWS refused, or the activity reported them failed (histories before every outcome was reported). */
export function awsProblems(report: AwsActionReport): HalfProblem[] {
  return report.resources
    .filter((r) => r.outcome === 'failed')
    .map((r) => ({
      half: 'aws',
      action: report.action,
      detail: `AWS could not ${report.action} ${r.kind} ${r.name ?? r.id}${r.detail ? ` (${r.detail})` : ''}`,
    }));
}

/** Every resource the action left undone (failed, busy, unsupported), one sentence each, for the announcement, the last action and `status`. */
export function awsOutcomeProblems(report: AwsActionReport): HalfProblem[] {
  return report.resources
    .filter((r) => !DONE_OUTCOMES.has(r.outcome))
    .map((r) => {
      const what = `${r.kind} ${r.name ?? r.id}`;
      const detail =
        r.outcome === 'busy'
          ? `AWS: ${what} is still ${r.before}: ${report.action === 'start' ? 'started once it has stopped' : 'stopped once it is up'}`
          : r.outcome === 'unsupported'
            ? `AWS cannot ${report.action} ${what} (${r.detail ?? 'not supported'})`
            : `AWS could not ${report.action} ${what}${r.detail ? ` (${r.detail})` : ''}`;
      return { half: 'aws', action: report.action, outcome: r.outcome, detail };
    });
}

/** Resources of a stopped environment that are up and that AWS cannot stop (read replicas, Auto Scaling group members, ...): the re-check keeps saying so. */
export function awakeButUnstoppable(status: AwsStatus): HalfProblem[] {
  return status.resources
    .filter((r) => r.scheduler === 'enabled' && r.unsupported && AWAKE_STATES.has(r.state))
    .map((r) => ({
      half: 'aws',
      action: 'stop',
      outcome: 'unsupported',
      detail: `AWS cannot stop ${r.kind} ${r.name ?? r.id}, which is ${r.state} (${r.unsupported})`,
    }));
}

/** What a namespace deleted while its environment ends leaves in AWS: everything still tagged for it and enabled. */
export function describeLeftBehind(namespace: string, status: AwsStatus): string {
  const left = status.resources.filter((r) => r.scheduler === 'enabled');
  if (left.length === 0) return `namespace deleted; nothing tagged namespace=${namespace} is left in AWS`;
  const names = left.map((r) => `${r.kind} ${r.name ?? r.id} (${r.state}${r.stoppedAt ? ', stopped by its environment' : ''})`).join(', ');
  return (
    `namespace deleted; still tagged namespace=${namespace} in AWS: ${names}. ` +
    'Delete or retag them; meanwhile each inventory refresh stops again those its environment had stopped and reports the rest'
  );
}

/** What a stopped environment's re-check must stop again: enabled resources that are up, and that AWS can stop. */
export function awakeAwsResources(status: AwsStatus): AwsResource[] {
  return status.resources.filter((r) => r.scheduler === 'enabled' && !r.unsupported && !r.cluster && AWAKE_STATES.has(r.state));
}

/**
 * The sentence that explains a failure: the innermost cause's message, since an activity's
 * failure reads "Activity task failed" and a timeout names no reason of its own.
 */
export function describeFailure(err: unknown): string {
  let current = err as { message?: string; cause?: unknown; type?: string; timeoutType?: unknown } | undefined;
  let message = String(err);
  while (current) {
    if (typeof current.message === 'string' && current.message) message = current.message;
    if (!current.cause) break;
    current = current.cause as typeof current;
  }
  return message;
}

/**
 * The databases a start waits for (wait-for-databases): the RDS DB instances and Aurora
 * clusters its AWS half started or found starting or up. One still stopping is not: it is
 * started only by the follow-up after the start, so it could not be available before.
 */
export function databasesStarted(report: AwsActionReport): DatabaseRef[] {
  return report.resources.flatMap((r) =>
    (r.kind === 'rds-instance' || r.kind === 'rds-cluster') && (r.outcome === 'changed' || r.outcome === 'already')
      ? [{ kind: r.kind, id: r.id, region: r.region, ...(r.name ? { name: r.name } : {}) }]
      : [],
  );
}
