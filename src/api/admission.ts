/**
 * The two admission webhooks through which namespaces enrol:
 * - `POST /admission/namespaces/label` (MutatingWebhook, CREATE): writes the decision on a
 *   namespace created without a `scheduler` label, `scheduler=enabled`, unless it is a
 *   system or infrastructure namespace. It has no other effect, and answers at once.
 * - `POST /admission/namespaces` (ValidatingWebhook, CREATE/UPDATE/DELETE): sees the
 *   namespace as it is stored, after every mutation, and applies its label (the rules of
 *   enrolment-plan.ts) to its environment workflow: enrol, switch, re-plan or retire.
 * Both always allow (a scheduler must never be why a namespace cannot be created), answer
 * without waiting for Temporal (the change is passed on just after, a bounded number at a
 * time), makes no change for a dry run, and turns a request it cannot read into a proper
 * AdmissionReview answer rather than an error. What it could not pass on to Temporal is
 * logged, counted and left to the reconciler. On shutdown, `drain` passes on what was
 * already admitted, so a rolling deploy of the API does not leave the reconciler to
 * catch up.
 */
import type { IncomingMessage } from 'node:http';
import Router from '@koa/router';
import pLimit from 'p-limit';
import getRawBody from 'raw-body';
import { z } from 'zod';
import type { Enrolment } from '../activities/enrolment';
import { labelPatch, policyFor, SCHEDULER_LABEL } from '../activities/enrolment-plan';
import type { Logger } from '../logger';
import { SLACK_CHANNEL_ANNOTATION, slackChannelIdError } from '../slack/ids';
import type { RetireReason } from '../workflows/environment';
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

/**
 * What an admission request did. Validating: enrolled, enabled, disabled, policy, retired
 * (namespace deleted), unmanaged (its label no longer asks for an environment: retired,
 * restored first if stopped), left-alone (not an environment, and was not), unchanged,
 * skipped (system namespace, not a namespace), dry-run, failed. Labelling: labelled,
 * not-labelled. Either: malformed.
 */
export type AdmissionOutcome =
  | 'enrolled'
  | 'enabled'
  | 'disabled'
  | 'policy'
  | 'retired'
  | 'unmanaged'
  | 'left-alone'
  | 'unchanged'
  | 'skipped'
  | 'dry-run'
  | 'malformed'
  | 'failed'
  | 'labelled'
  | 'not-labelled';

/** Where the apiserver sends CREATEs for the labelling (mutating) webhook. */
export const LABEL_PATH = '/admission/namespaces/label';
/** Where it sends CREATE, UPDATE and DELETE for the enrolling (validating) webhook. */
export const ENROL_PATH = '/admission/namespaces';

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
  /** DRY_RUN: no label is written and nothing is passed on to Temporal; what would be is logged. */
  dryRun?: boolean;
}

function allow(uid: string, warnings: string[] = [], patch?: unknown[]) {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: {
      uid,
      allowed: true,
      ...(warnings.length ? { warnings } : {}),
      ...(patch ? { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') } : {}),
    },
  };
}

/** The namespace a request is about, or undefined when it is not about a namespace. */
function namespaceOf(request: AdmissionRequest): string | undefined {
  if (request.kind !== undefined && request.kind.kind !== 'Namespace') return undefined;
  return request.name || request.object?.metadata?.name || request.oldObject?.metadata?.name || undefined;
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

export function createAdmissionWebhook({
  enrolment,
  logger,
  metrics,
  concurrency = 20,
  maxQueued = 1000,
  dropReportIntervalMs = 10_000,
  dryRun: dryRunSetting = false,
}: AdmissionOptions): AdmissionWebhook {
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
  interface AdmissionDecision {
    namespace: string;
    actions: Action[];
    enabled: boolean;
    policy: EnvironmentPolicy;
    retire: RetireReason;
    warnings: string[];
    outcome: AdmissionOutcome;
  }

  /** The changes a namespace request asks of its environment (none for most updates), and what to tell its author. */
  function decide(request: AdmissionRequest): AdmissionDecision {
    const namespace = namespaceOf(request) ?? '';
    const labels = request.object?.metadata?.labels;
    const now = enrolment.standing(namespace, labels);
    const annotations = request.object?.metadata?.annotations;
    const policy = policyFor(enrolment.defaults, annotations);
    // The channel annotation is read when a message is sent; a bad one is told now, to whoever set it.
    const channel = annotations?.[SLACK_CHANNEL_ANNOTATION]?.trim();
    const channelProblem = channel === undefined ? undefined : slackChannelIdError(channel);
    const own = {
      policy: policy.policy,
      warnings: [
        ...policy.warnings,
        ...(channelProblem ? [`annotation ${SLACK_CHANNEL_ANNOTATION}=${JSON.stringify(channel)} ignored (messages go to the default channel): ${channelProblem}`] : []),
      ],
    };
    const base = { namespace, enabled: now.kind === 'scheduled', policy: own.policy, retire: 'namespace-deleted' as RetireReason, actions: [] as Action[], warnings: [] as string[] };
    if (!namespace || now.kind === 'system') return { ...base, outcome: 'skipped' };
    const managed = now.kind === 'scheduled' || now.kind === 'paused';
    // Only what someone did is worth a warning: a label they set that is not ours, a namespace the labelling webhook missed.
    const notScheduled = now.kind === 'unknown-label' || now.kind === 'unlabelled' ? [`${namespace} is not scheduled: ${now.reason}`] : [];
    switch (request.operation) {
      case 'CREATE':
        return managed ? { ...base, actions: ['enrol'], warnings: own.warnings, outcome: 'enrolled' } : { ...base, warnings: notScheduled, outcome: 'left-alone' };
      case 'UPDATE': {
        const before = enrolment.standing(namespace, request.oldObject?.metadata?.labels);
        const wasManaged = before.kind === 'scheduled' || before.kind === 'paused';
        if (!managed) {
          if (!wasManaged) {
            const relabelled = request.oldObject?.metadata?.labels?.[SCHEDULER_LABEL] !== labels?.[SCHEDULER_LABEL];
            return { ...base, warnings: relabelled ? notScheduled : [], outcome: 'unchanged' };
          }
          const warning = `${namespace} is no longer an environment (${now.reason}); if it was stopped, its workloads are started again`;
          return { ...base, actions: ['retire'], retire: 'unmanaged', warnings: [warning], outcome: 'unmanaged' };
        }
        const labelChanged = !wasManaged || (before.kind === 'scheduled') !== (now.kind === 'scheduled');
        const policyChanged = wasManaged && JSON.stringify(policyFor(enrolment.defaults, request.oldObject?.metadata?.annotations).policy) !== JSON.stringify(own.policy);
        const actions: Action[] = [...(labelChanged ? ['enrol' as const] : []), ...(policyChanged ? ['policy' as const] : [])];
        const outcome: AdmissionOutcome = !wasManaged ? 'enrolled' : labelChanged ? (now.kind === 'scheduled' ? 'enabled' : 'disabled') : policyChanged ? 'policy' : 'unchanged';
        return { ...base, actions, warnings: own.warnings, outcome };
      }
      case 'DELETE':
        return { ...base, actions: ['retire'], outcome: 'retired' };
      default:
        return { ...base, outcome: 'skipped' };
    }
  }

  type ReadReview = { ok: true; request: AdmissionRequest } | { ok: false; body: ReturnType<typeof allow> };

  /** The AdmissionReview of a request, or the allowing answer (with a warning) for one that cannot be read. */
  async function readReview(req: IncomingMessage): Promise<ReadReview> {
    let uid = '';
    let parsed: z.ZodSafeParseResult<z.infer<typeof admissionReview>>;
    try {
      const raw: unknown = JSON.parse(await getRawBody(req, { limit: '3mb', encoding: 'utf8' }));
      uid = typeof (raw as { request?: { uid?: unknown } })?.request?.uid === 'string' ? (raw as { request: { uid: string } }).request.uid : '';
      parsed = admissionReview.safeParse(raw);
    } catch (err) {
      logger.warn({ error: String(err) }, 'admission: unreadable request, allowed');
      return { ok: false, body: allow(uid, ['devenv-scheduler: the admission request could not be read; nothing was changed']) };
    }
    if (!parsed.success) {
      const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; ');
      logger.warn({ uid, problems }, 'admission: malformed AdmissionReview, allowed');
      return { ok: false, body: allow(uid, [`devenv-scheduler: not an AdmissionReview v1 for a namespace (${problems}); nothing was changed`]) };
    }
    return { ok: true, request: parsed.data.request };
  }

  // The labelling webhook: pure, no Temporal, so it answers at once and has no side effects at all.
  router.post(LABEL_PATH, async (ctx) => {
    const review = await readReview(ctx.req);
    if (!review.ok) {
      metrics.admissions.inc({ outcome: 'malformed' });
      ctx.body = review.body;
      return;
    }
    const { request } = review;
    const namespace = namespaceOf(request);
    const patch =
      request.operation === 'CREATE' && namespace && request.object
        ? labelPatch(enrolment.standing(namespace, request.object.metadata?.labels), request.object.metadata)
        : undefined;
    if (patch && dryRunSetting) {
      logger.info({ namespace }, `admission: DRY_RUN: would label the namespace ${SCHEDULER_LABEL}=enabled`);
      metrics.admissions.inc({ outcome: 'not-labelled' });
      ctx.body = allow(request.uid, [`devenv-scheduler: DRY_RUN: ${namespace} would be labelled ${SCHEDULER_LABEL}=enabled and scheduled; it is left unlabelled`]);
      return;
    }
    metrics.admissions.inc({ outcome: patch ? 'labelled' : 'not-labelled' });
    if (patch) logger.info({ namespace, dryRun: request.dryRun === true }, `admission: labelled ${SCHEDULER_LABEL}=enabled`);
    ctx.body = allow(request.uid, [], patch);
  });

  router.post(ENROL_PATH, async (ctx) => {
    let outcome: AdmissionOutcome = 'malformed';
    // A change passed on to Temporal is counted when it is done, as what it did or as `failed`.
    let countedLater = false;
    try {
      const review = await readReview(ctx.req);
      if (!review.ok) {
        ctx.body = review.body;
        return;
      }
      const { request } = review;
      const decision = decide(request);
      const warnings = decision.warnings.map((warning) => `devenv-scheduler: ${warning}`);
      outcome = decision.outcome;
      if (decision.actions.length > 0 && (request.dryRun || dryRunSetting)) {
        outcome = 'dry-run';
        if (dryRunSetting) logger.info({ namespace: decision.namespace, operation: request.operation, would: decision.actions }, 'admission: DRY_RUN: nothing passed on to Temporal');
      } else if (decision.actions.length > 0) {
        const by = `admission:${request.userInfo?.username ?? 'unknown'}`;
        const { namespace, enabled, policy, retire } = decision;
        const steps: Record<Action, () => Promise<unknown>> = {
          enrol: () => enrolment.enrol(namespace, enabled, by, policy),
          policy: () => enrolment.applyPolicy(namespace, policy, enabled, by),
          retire: () => enrolment.retire(namespace, { reason: retire, by }),
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
