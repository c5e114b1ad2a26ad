/**
 * The words for what a start's wait for Ready found, shared by the reply, the channel's
 * message and the namespace's Kubernetes Event so all three tell the same story.
 */

/** A workload by kind and name, with what its controller says when it is not Ready. */
interface Workload {
  kind: string;
  name: string;
  message?: string;
}

/** A start's readiness (the activities' StartReadiness, as far as the words need it). */
interface Readiness {
  groups: { order: number; workloads: Workload[]; durationMs?: number; notReady?: Workload[] }[];
  durationMs?: number;
  interrupted?: string;
  failed?: string;
}

/** A start's wait for its databases (the activities' DatabaseWait, as far as the words need it). */
interface Databases {
  databases: { kind: string; id: string; name?: string }[];
  durationMs?: number;
  notAvailable?: { kind: string; id: string; name?: string; state: string }[];
  interrupted?: string;
  failed?: string;
}

/**
 * "; all 2 databases available after 4 min 10 s", "; 1 of 2 databases not available after 5 min:
 * rds-instance orders-db (stopped); the workloads were woken anyway", "" when it waited for none.
 */
export function describeDatabases(databases: Databases | undefined): string {
  if (!databases || databases.databases.length === 0) return '';
  const took = describeWait(databases.durationMs ?? 0);
  const count = databases.databases.length;
  if (databases.interrupted !== undefined)
    return `; the wait for the databases was interrupted by ${databases.interrupted} after ${took}, so no workload was woken`;
  if (databases.failed !== undefined)
    return `; whether the databases are available could not be read: ${databases.failed}; the workloads were woken anyway`;
  const missing = databases.notAvailable ?? [];
  if (missing.length === 0) return `; ${count === 1 ? 'database' : `all ${count} databases`} available after ${took}`;
  const names = missing.map((d) => `${d.kind} ${d.name ?? d.id} (${d.state})`).join(', ');
  return `; ${missing.length} of ${count} databases not available after ${took}: ${names}; the workloads were woken anyway`;
}

/** "48 s", "2 min 5 s": how long a wait for Ready took, as the reply says it. */
export function describeWait(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 120 ? `${s} s` : `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
}

/** Whether a start's readiness has groups still to be waited for (by awaitReady, after the start). */
export const awaitingReady = (readiness: Readiness | undefined): boolean =>
  !!readiness && readiness.durationMs === undefined && readiness.interrupted === undefined && readiness.failed === undefined;

/**
 * What a start's wait for Ready found, "" when it waited for nothing or is still waiting:
 * "; all 12 workloads Ready after 48 s (in wake order: group 0, 2 in 12 s; group 1, 10 in 36 s)",
 * "; 11 of 12 workloads Ready after 5 min; not Ready: Deployment web (0 of 1 Ready, ...)", or
 * "; the wait for Ready was interrupted by the stop by U2 after 3 s"; after what the wait for the
 * databases found, when there was one (describeDatabases). Then the notes of the
 * Kubernetes half (a wake-order annotation that is not one, a saved count that is not a count).
 */
export function describeReadiness(report: { readiness?: Readiness; databases?: Databases; notes?: string[] }): string {
  const notes = report.notes?.length ? `; note: ${report.notes.join('; ')}` : '';
  return `${describeDatabases(report.databases)}${describeWorkloadsReady(report.readiness)}${notes}`;
}

function describeWorkloadsReady(readiness: Readiness | undefined): string {
  if (!readiness || awaitingReady(readiness)) return '';
  const total = readiness.groups.reduce((sum, g) => sum + g.workloads.length, 0);
  const took = describeWait(readiness.durationMs ?? 0);
  if (readiness.interrupted !== undefined) return `; the wait for Ready was interrupted by ${readiness.interrupted} after ${took}`;
  if (readiness.failed !== undefined) return `; whether its ${total} workloads are Ready could not be read: ${readiness.failed}`;
  const notReady = readiness.groups.flatMap((g) => g.notReady ?? []);
  const counted = notReady.length === 0 ? `all ${total} workloads Ready` : `${total - notReady.length} of ${total} workloads Ready`;
  const order =
    readiness.groups.length > 1
      ? ` (in wake order: ${readiness.groups
          .map(
            (g) =>
              `group ${g.order}, ${g.workloads.length} in ${describeWait(g.durationMs ?? 0)}${g.notReady?.length ? ', not all Ready' : ''}`,
          )
          .join('; ')})`
      : '';
  const missing = notReady.length
    ? `; not Ready: ${notReady.map((w) => `${w.kind} ${w.name}${w.message ? ` (${w.message})` : ''}`).join(', ')}`
    : '';
  return `; ${counted} after ${took}${order}${missing}`;
}
