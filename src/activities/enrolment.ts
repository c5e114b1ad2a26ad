/**
 * The reconciler: an activity on a Schedule that repairs whatever the admission webhook
 * missed (e.g. while Temporal was down), by comparing the cluster's namespaces with the
 * running environment workflows. What to do about each is decided by the rules of
 * src/domain/enrolment.ts and carried out through src/client/enrolment.ts, as the webhook does.
 */
import { asyncLocalStorage } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import pLimit from 'p-limit';
import { carryOut, type Enrolment } from '../client/enrolment';
import { createEnvironmentsClient } from '../client/environments';
import { planReconcile, type Decision, type NamespaceSnapshot } from '../domain/enrolment';
import { Failure } from '../domain/failures';
import type { Logger } from '../logger';
import type { EnrolmentActivities, ReconcileReport } from './contracts';
import type { ClusterProbe } from './kubernetes/cluster';

/** Signals and starts in flight at once: enough to reconcile a thousand namespaces in seconds, few enough not to flood Temporal. */
const RECONCILE_CONCURRENCY = 20;

const BY = 'reconciler';

export function createEnrolmentActivities(options: {
  client: Client;
  enrolment: Enrolment;
  listNamespaces: () => Promise<NamespaceSnapshot[]>;
  logger: Logger;
  /** DRY_RUN: every reconcile only plans and reports. */
  dryRun?: boolean;
  /** Asked when the namespaces cannot be listed: a cluster that does not answer at all fails the reconcile without retries. */
  probe?: () => Promise<ClusterProbe>;
}): EnrolmentActivities {
  const { client, enrolment, listNamespaces, logger, probe } = options;

  /** Carries out one decision, noting in the report what it did. */
  async function execute(decision: Decision, report: ReconcileReport): Promise<void> {
    const { namespace } = decision;
    if (decision.action === 'unchanged' || decision.action === 'leave-alone') return;
    const done = await carryOut(enrolment, decision, BY);
    for (const what of done) report[what].push(namespace);
    if (decision.action === 'retire' && done.length === 0) {
      logger.info(
        { namespace, runId: decision.runId },
        'reconciler: the run it would retire has ended since it was listed; left for the next reconcile',
      );
      return;
    }
    logger.info({ namespace, action: decision.action, reason: decision.reason }, `reconciler: ${decision.action}`);
  }

  return {
    async reconcileEnvironments(asked = {}) {
      const dryRun = asked.dryRun === true || options.dryRun === true;
      // Environments first, then namespaces, and a retire goes only to the run that was
      // listed: a namespace deleted and created again while this runs keeps its new
      // environment, whose run was either not listed or (the plan checks the server's start
      // time against this clock, in case the order ever changes) started after the namespace
      // list was begun, and is left to the next reconcile. A listed run that has ended since
      // (retired, continued as new) answers "not found" and is left alone too.
      const environments = await createEnvironmentsClient(client, { cluster: enrolment.cluster }).list();
      const snapshotAt = new Date();
      const namespaces = await listNamespaces().catch(async (err: unknown) => {
        // No cluster at all (nothing listening, no such host): one failure until the next scheduled run, not a retry every few seconds.
        const probed = await probe?.();
        if (probed && !probed.reachable) {
          throw ApplicationFailure.nonRetryable(
            `no Kubernetes cluster reachable at ${probed.server} (${probed.reason}); the next reconcile tries again`,
            Failure.ClusterUnreachable,
          );
        }
        throw err;
      });
      const decisions = planReconcile({
        namespaces,
        environments,
        snapshotAt,
        rules: enrolment.rules,
        defaults: enrolment.defaults,
        dispatchAheadMs: enrolment.dispatchAheadMs,
      });
      const report: ReconcileReport = {
        dryRun,
        namespaces: namespaces.length,
        environments: environments.length,
        enrolled: [],
        enabled: [],
        disabled: [],
        replanned: [],
        retired: [],
        failed: [],
        decisions: decisions.map((d) => ({
          namespace: d.namespace,
          action: d.action,
          reason: d.reason,
          ...(d.action === 'retire' ? { retire: d.retire } : {}),
        })),
        decisionsOmitted: 0,
      };
      const planned = counts(report);
      if (dryRun) {
        for (const decision of report.decisions) logger.info(decision, `reconciler (dry run): ${decision.action}`);
        logger.info(planned, 'reconciler (dry run): planned, nothing changed');
        // Every decision is in the log; the result (capped in size by Temporal) keeps the first thousands.
        report.decisionsOmitted = Math.max(0, report.decisions.length - MAX_DRY_RUN_DECISIONS);
        report.decisions = report.decisions.slice(0, MAX_DRY_RUN_DECISIONS);
        return report;
      }
      // The report is the workflow's result, which Temporal caps in size: on a cluster of
      // thousands of namespaces, the ones nothing was done about are counted, not all listed.
      let quiet = 0;
      report.decisions = report.decisions.filter(
        (d) => (d.action !== 'unchanged' && d.action !== 'leave-alone') || ++quiet <= MAX_QUIET_DECISIONS,
      );
      report.decisionsOmitted = Math.max(0, quiet - MAX_QUIET_DECISIONS);

      const limit = pLimit(RECONCILE_CONCURRENCY);
      let done = 0;
      await Promise.all(
        decisions
          .filter((decision) => decision.action !== 'unchanged' && decision.action !== 'leave-alone')
          .map((decision) =>
            limit(async () => {
              try {
                await execute(decision, report);
              } catch (err) {
                report.failed.push({ namespace: decision.namespace, error: err instanceof Error ? err.message : String(err) });
              } finally {
                // Also run outside an activity (tests): then there is no one to heartbeat to.
                asyncLocalStorage.getStore()?.heartbeat({ done: ++done });
              }
            }),
          ),
      );
      for (const list of [report.enrolled, report.enabled, report.disabled, report.replanned, report.retired]) list.sort();
      logger.info(
        {
          ...planned,
          enrolled: report.enrolled.length,
          enabled: report.enabled.length,
          disabled: report.disabled.length,
          replanned: report.replanned.length,
          retired: report.retired.length,
          failed: report.failed.length,
        },
        'reconciled environments with namespaces',
      );
      return report;
    },
  };
}

/** Decisions to change nothing kept in a real run's report; the rest are only counted. */
const MAX_QUIET_DECISIONS = 500;
/** Decisions a dry run's report keeps (all are logged). */
const MAX_DRY_RUN_DECISIONS = 5000;

/** How many namespaces and environments were looked at, and how many decisions of each kind were made. */
function counts(report: ReconcileReport): Record<string, number> {
  const byAction: Record<string, number> = {};
  for (const { action } of report.decisions) byAction[`plan.${action}`] = (byAction[`plan.${action}`] ?? 0) + 1;
  return { namespaces: report.namespaces, environments: report.environments, ...byAction };
}
