/**
 * `POST /admission/namespaces`: the ValidatingWebhook through which namespaces enrol.
 * It always allows (a scheduler must never be why a namespace cannot be created), answers
 * without waiting for Temporal (the change is passed on just after, a bounded number at a
 * time), makes no change for a dry run, and turns a request it cannot read into a proper
 * AdmissionReview answer rather than an error. What it could not pass on to Temporal is
 * logged, counted and left to the reconciler. On shutdown, `drain` passes on what was
 * already admitted, so a rolling deploy of the API does not leave the reconciler to
 * catch up.
 */
import Router from '@koa/router';
import pLimit from 'p-limit';
import getRawBody from 'raw-body';
import { z } from 'zod';
import { policyFor, schedulerWanted, type Enrolment } from '../activities/enrolment';
import type { Logger } from '../logger';
import type { EnvironmentPolicy } from '../workflows/shutdown-policy';
import type { Metrics } from './metrics';

const namespaceObject = z.object({
  metadata: z
    .object({ name: z.string().optional(), labels: z.record(z.string(), z.string()).optional(), annotations: z.record(z.string(), z.string()).optional() })
    .optional(),
});

const admissionReview = z.object({
  apiVersion: z.literal('admission.k8s.io/v1'),
  kind: z.literal('AdmissionReview'),
  request: z.object({
    uid: z.string().min(1),
    kind: z.object({ kind: z.string() }).optional(),
    operation: z.enum(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']),
    name: z.string().optional(),
    object: namespaceObject.nullish(),
    oldObject: namespaceObject.nullish(),
    dryRun: z.boolean().optional(),
    userInfo: z.object({ username: z.string().optional() }).optional(),
  }),
});

type AdmissionRequest = z.infer<typeof admissionReview>['request'];

export type AdmissionOutcome = 'enrolled' | 'enabled' | 'disabled' | 'policy' | 'retired' | 'unchanged' | 'skipped' | 'dry-run' | 'malformed' | 'failed';

export interface AdmissionOptions {
  enrolment: Enrolment;
  logger: Logger;
  metrics: Metrics;
  /** Changes passed on to Temporal at once (default 20). */
  concurrency?: number;
  /** Beyond this many changes waiting for Temporal, new ones are dropped, counted and left to the reconciler (default 1,000). */
  maxQueued?: number;
  /** Dropped changes are logged one line per this interval, not one per change (default 10 s). */
  dropReportIntervalMs?: number;
}

function allow(uid: string, warnings: string[] = []) {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid, allowed: true, ...(warnings.length ? { warnings } : {}) },
  };
}

/** How long a stopping API waits for admitted changes to reach Temporal: well within k8s/api.yaml's 30 s grace period. */
export const ADMISSION_DRAIN_MS = 15_000;

export interface AdmissionWebhook {
  router: Router;
  /**
   * Waits, at most `timeoutMs`, for the changes already admitted to reach Temporal (call it
   * once the server takes no more requests). Answers how many were still waiting when it
   * gave up: those are counted `failed` and left to the reconciler.
   */
  drain(timeoutMs: number): Promise<number>;
}

export function createAdmissionWebhook({ enrolment, logger, metrics, concurrency = 20, maxQueued = 1000, dropReportIntervalMs = 10_000 }: AdmissionOptions): AdmissionWebhook {
  const router = new Router();
  const toTemporal = pLimit(concurrency);
  const passingOn = new Set<Promise<void>>();

  /**
   * A full queue means thousands of drops a second (a bulk namespace import while Temporal
   * is slow): the first of a burst is logged at once, the rest as one count at the end of
   * the interval, so the log stays readable and logging does not slow the answers down.
   */
  const dropMessage = `admission: ${maxQueued} changes already wait for Temporal; dropped, allowed, the reconciler will repair them`;
  let droppedUnreported = 0;
  let dropReport: NodeJS.Timeout | undefined;
  function drop(namespace: string): void {
    metrics.admissions.inc({ outcome: 'failed' });
    if (dropReport) {
      droppedUnreported++;
      return;
    }
    logger.error({ namespace, dropped: 1 }, dropMessage);
    dropReport = setTimeout(reportDrops, dropReportIntervalMs);
    dropReport.unref();
  }
  function reportDrops(): void {
    clearTimeout(dropReport);
    dropReport = undefined;
    if (droppedUnreported > 0) logger.error({ dropped: droppedUnreported }, dropMessage);
    droppedUnreported = 0;
  }

  type Action = 'enrol' | 'policy' | 'retire';

  /** The changes a namespace request asks of its environment (none for most updates), and what to tell its author. */
  function decide(request: AdmissionRequest): { namespace: string; actions: Action[]; enabled: boolean; policy: EnvironmentPolicy; warnings: string[]; outcome: AdmissionOutcome } {
    const namespace = request.name ?? request.object?.metadata?.name ?? request.oldObject?.metadata?.name ?? '';
    const wanted = schedulerWanted(request.object?.metadata?.labels);
    const own = policyFor(enrolment.defaults, request.object?.metadata?.annotations);
    const base = { namespace, enabled: wanted.enabled, policy: own.policy, warnings: [...(wanted.warning ? [wanted.warning] : []), ...own.warnings] };
    const notANamespace = request.kind !== undefined && request.kind.kind !== 'Namespace';
    if (!namespace || notANamespace || enrolment.isSystem(namespace)) return { ...base, warnings: [], actions: [], outcome: 'skipped' };
    switch (request.operation) {
      case 'CREATE':
        return { ...base, actions: ['enrol'], outcome: 'enrolled' };
      case 'UPDATE': {
        const labelChanged = schedulerWanted(request.oldObject?.metadata?.labels).enabled !== wanted.enabled;
        const policyChanged = JSON.stringify(policyFor(enrolment.defaults, request.oldObject?.metadata?.annotations).policy) !== JSON.stringify(own.policy);
        const actions: Action[] = [...(labelChanged ? ['enrol' as const] : []), ...(policyChanged ? ['policy' as const] : [])];
        const outcome: AdmissionOutcome = labelChanged ? (wanted.enabled ? 'enabled' : 'disabled') : policyChanged ? 'policy' : 'unchanged';
        return { ...base, actions, outcome };
      }
      case 'DELETE':
        return { ...base, warnings: [], actions: ['retire'], outcome: 'retired' };
      default:
        return { ...base, warnings: [], actions: [], outcome: 'skipped' };
    }
  }

  router.post('/admission/namespaces', async (ctx) => {
    let outcome: AdmissionOutcome = 'malformed';
    // A change passed on to Temporal is counted when it is done, as what it did or as `failed`.
    let countedLater = false;
    let uid = '';
    try {
      let parsed: z.ZodSafeParseResult<z.infer<typeof admissionReview>>;
      try {
        const raw: unknown = JSON.parse(await getRawBody(ctx.req, { limit: '3mb', encoding: 'utf8' }));
        uid = typeof (raw as { request?: { uid?: unknown } })?.request?.uid === 'string' ? (raw as { request: { uid: string } }).request.uid : '';
        parsed = admissionReview.safeParse(raw);
      } catch (err) {
        logger.warn({ error: String(err) }, 'admission: unreadable request, allowed');
        ctx.body = allow(uid, ['devenv-scheduler: the admission request could not be read; nothing was changed']);
        return;
      }
      if (!parsed.success) {
        const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; ');
        logger.warn({ uid, problems }, 'admission: malformed AdmissionReview, allowed');
        ctx.body = allow(uid, [`devenv-scheduler: not an AdmissionReview v1 for a namespace (${problems}); nothing was changed`]);
        return;
      }
      const { request } = parsed.data;
      const decision = decide(request);
      const warnings = decision.warnings.map((warning) => `devenv-scheduler: ${warning}`);
      outcome = decision.outcome;
      if (decision.actions.length > 0 && request.dryRun) {
        outcome = 'dry-run';
      } else if (decision.actions.length > 0) {
        const by = `admission:${request.userInfo?.username ?? 'unknown'}`;
        const { namespace, enabled, policy } = decision;
        const steps: Record<Action, () => Promise<unknown>> = {
          enrol: () => enrolment.enrol(namespace, enabled, by, policy),
          policy: () => enrolment.applyPolicy(namespace, policy, enabled, by),
          retire: () => enrolment.retire(namespace),
        };
        const failed = (error: string) => {
          metrics.admissions.inc({ outcome: 'failed' });
          logger.error({ namespace, operation: request.operation, error }, 'admission: could not pass the change to Temporal; allowed, the reconciler will repair it');
        };
        if (toTemporal.pendingCount >= maxQueued) {
          drop(namespace);
        } else {
          const passOn = toTemporal(async () => {
            try {
              for (const action of decision.actions) await steps[action]();
              metrics.admissions.inc({ outcome: decision.outcome });
            } catch (err) {
              failed(String(err));
            }
          });
          passingOn.add(passOn);
          void passOn.finally(() => passingOn.delete(passOn));
        }
        countedLater = true;
      }
      logger.info({ namespace: decision.namespace, operation: request.operation, dryRun: request.dryRun === true, outcome }, 'admission');
      ctx.body = allow(request.uid, warnings);
    } finally {
      if (!countedLater) metrics.admissions.inc({ outcome });
    }
  });

  async function drain(timeoutMs: number): Promise<number> {
    reportDrops();
    if (passingOn.size === 0) return 0;
    logger.info({ waiting: passingOn.size }, 'admission: passing on the changes already admitted before stopping');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(passingOn), new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
    const left = passingOn.size;
    if (left > 0) {
      // Those still queued never start; those under way fail when the connection closes, and count themselves.
      metrics.admissions.inc({ outcome: 'failed' }, toTemporal.pendingCount);
      toTemporal.clearQueue();
      logger.warn({ left, timeoutMs }, 'admission: stopping with changes not passed on to Temporal; the reconciler will repair them');
    }
    return left;
  }

  return { router, drain };
}
