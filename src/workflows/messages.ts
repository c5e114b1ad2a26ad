/**
 * The sentences a Slack reply shows for what a stop or start did. Pure, so the workflow
 * can build its reply deterministically and tests can read it like a user would.
 */
import type { AwsActionReport, AwsOutcome } from '../activities/contracts';

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
