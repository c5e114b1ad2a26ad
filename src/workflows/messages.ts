/**
 * The sentences a Slack reply shows for what a stop or start did. Pure, so the workflow
 * can build its reply deterministically and tests can read it like a user would.
 */
import type { AwsActionReport, AwsOutcome, AwsResource, AwsStatus, HalfProblem } from '../activities/contracts';

const OUTCOME_WORDS: Record<'stop' | 'start', Partial<Record<AwsOutcome, string>>> = {
  stop: { changed: 'stopping', already: 'already stopped', busy: 'still starting (stopped next time)', 'dry-run': 'would stop (dry run)' },
  start: { changed: 'starting', already: 'already running', busy: 'still stopping (start again shortly)', 'dry-run': 'would start (dry run)' },
};

/** "; AWS: 2 stopping, 1 already stopped; not possible: rds-instance db-replica (read replica)" or "" when nothing is tagged. */
export function describeAwsReport(report: AwsActionReport): string {
  const relevant = report.resources.filter((r) => r.outcome !== 'excluded' && r.outcome !== 'gone');
  if (relevant.length === 0) return '';
  const counts = new Map<string, number>();
  const problems: string[] = [];
  for (const resource of relevant) {
    const words = OUTCOME_WORDS[report.action][resource.outcome];
    if (words) counts.set(words, (counts.get(words) ?? 0) + 1);
    else problems.push(`${resource.kind} ${resource.name ?? resource.id} (${resource.outcome}${resource.detail ? `: ${resource.detail}` : ''})`);
  }
  const summary = [...counts].map(([words, count]) => `${count} ${words}`).join(', ');
  return `; AWS: ${summary || 'nothing to do'}${problems.length ? `; not possible: ${problems.join(', ')}` : ''}`;
}

/** Resources a stop counts as not done: AWS refused, or the activity reported them failed. */
export function awsProblems(report: AwsActionReport): HalfProblem[] {
  return report.resources
    .filter((r) => r.outcome === 'failed')
    .map((r) => ({ half: 'aws', action: report.action, detail: `AWS could not ${report.action} ${r.kind} ${r.name ?? r.id}${r.detail ? ` (${r.detail})` : ''}` }));
}

/** States in which a resource costs money and a stop would act on it. */
const AWAKE_STATES = new Set(['pending', 'running', 'available', 'starting']);

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

/** The innermost ApplicationFailure type in a failure's causes (e.g. NamespaceNotFound), if any. */
export function failureType(err: unknown): string | undefined {
  let current = err as { cause?: unknown; type?: unknown } | undefined;
  let type: string | undefined;
  while (current) {
    if (typeof current.type === 'string' && current.type) type = current.type;
    current = current.cause as typeof current;
  }
  return type;
}
