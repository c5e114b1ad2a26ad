/**
 * The two admission webhooks through which namespaces enrol:
 * - `POST /admission/namespaces/label` (MutatingWebhook, CREATE): writes the decision on a
 *   namespace created without a `scheduler` label, `scheduler=enabled`, unless it is a
 *   system or infrastructure namespace. It has no other effect, and answers at once. Its
 *   answer is a patch to the object in that one request: a review posted to it by anyone
 *   but the apiserver (forged) patches nothing that exists, so changes nothing.
 * - `POST /admission/namespaces` (ValidatingWebhook, CREATE/UPDATE/DELETE): tells its
 *   environment workflow of the change (enrol, switch, re-plan or retire). A review is a
 *   hint, not the truth: anyone who reaches the port can post one, and another admission
 *   check may still refuse the change it shows. So the webhook only reads from it whether
 *   there may be something to do. If so it reads the namespace from the apiserver until
 *   that shows the change (CREATE: the namespace is stored, with the review's uid; UPDATE:
 *   its stored `scheduler` label and policy annotations are the review's; DELETE: it is
 *   gone or terminating), for a few seconds at most, and then acts on what is stored and
 *   on what Temporal has, by the reconciler's rules (planNamespace in src/domain/enrolment.ts).
 *   A change that never shows (forged, refused, or superseded by a later one) is counted
 *   `unconfirmed` and changes nothing; the reconciler covers the rest.
 * Both always allow (a scheduler must never be why a namespace cannot be created), answer
 * without waiting for the apiserver or Temporal (the change is checked and passed on just
 * after, a bounded number at a time), make no change for a dry run, and turn a request
 * they cannot read into a proper AdmissionReview answer rather than an error. What could
 * not be passed on to Temporal is logged, counted and left to the reconciler. On shutdown,
 * `drain` passes on what was already admitted, so a rolling deploy of the API does not
 * leave the reconciler to catch up.
 */
import type { IncomingMessage } from 'node:http';
import Router from '@koa/router';
import pLimit from 'p-limit';
import getRawBody from 'raw-body';
import { z } from 'zod';
import type { StoredNamespace } from '../activities/contracts';
import { carryOut, type Enrolment } from '../client/enrolment';
import { labelPatch, planNamespace, POLICY_ANNOTATIONS, policyFor, SCHEDULER_LABEL, type Decision } from '../domain/enrolment';
import { samePolicy } from '../domain/shutdown-policy';
import type { Logger } from '../logger';
import { SLACK_CHANNEL_ANNOTATION, slackChannelIdError } from '../slack/ids';
import type { Metrics } from './metrics';
import { VERIFIED_CALLER } from './webhook';

const namespaceObject = z.object({
  metadata: z
    .object({
      name: z.string().optional(),
      uid: z.string().optional(),
      labels: z.record(z.string(), z.string()).optional(),
      annotations: z.record(z.string(), z.string()).optional(),
    })
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
 * unconfirmed (the stored namespace never showed the change: forged, refused by another
 * admission check, or superseded; nothing done), skipped (system namespace, not a
 * namespace), dry-run, failed. Labelling: labelled, not-labelled. Either: malformed.
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
  | 'unconfirmed'
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

/** Reads a namespace from the apiserver (createNamespaceReader); undefined when there is none. */
export type NamespaceReader = (name: string) => Promise<StoredNamespace | undefined>;

/** How long the enrolling webhook waits for the stored namespace to show a reviewed change, unless told otherwise. */
export const CONFIRM_WITHIN_MS = 3_000;

export interface AdmissionOptions {
  enrolment: Enrolment;
  /** The namespace as the apiserver has it: what the enrolling webhook acts on. */
  readNamespace: NamespaceReader;
  /** How long to wait for the stored namespace to show a reviewed change before leaving it to the reconciler (default CONFIRM_WITHIN_MS). */
  confirmWithinMs?: number;
  logger: Logger;
  metrics: Metrics;
  /** Changes passed on to Temporal at once (default 20). */
  concurrency?: number;
  /** Beyond this many changes waiting for Temporal, new ones are dropped, counted and left to the reconciler (default 1,000). */
  maxQueued?: number;
  /** Dropped changes are logged one line per this interval, not one per change (default 10 s). */
  dropReportIntervalMs?: number;
  /** DRY_RUN: no label is written, nothing is read or passed on to Temporal; what the review announces is logged. */
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

/** One read of a namespace, and one description of its environment, may take this long before it counts as not answered. */
const READ_TIMEOUT_MS = 1_000;
const TEMPORAL_READ_TIMEOUT_MS = 5_000;
const NOT_READ = Symbol('not read');
const TIMED_OUT = Symbol('timed out');

/** The promise's value, or `fallback` once `ms` have passed (the promise itself is left to settle). */
async function withTimeout<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<F>((resolve) => (timer = setTimeout(() => resolve(fallback), ms)))]);
  } finally {
    clearTimeout(timer);
  }
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
  readNamespace,
  confirmWithinMs = CONFIRM_WITHIN_MS,
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
   * The latest change passed on for each namespace. The next one for that namespace starts
   * only after it, so two changes to one namespace reach Temporal in the order they were
   * admitted (a relabel right after a create cannot be overtaken by the create).
   */
  const latestFor = new Map<string, Promise<void>>();
  let waitingBehind = 0;

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

  interface AdmissionDecision {
    namespace: string;
    /** Whether the review announces a change its environment may need: then the stored namespace is read and acted on. */
    check: boolean;
    warnings: string[];
    /** What it did when there is nothing to check. */
    outcome: AdmissionOutcome;
  }

  /**
   * Whether a namespace request may need its environment changed (most updates do not),
   * and what to tell its author. Read from the review alone, which decides only whether
   * to look: what is done is decided from the stored namespace (`passOn`).
   */
  function decide(request: AdmissionRequest): AdmissionDecision {
    const namespace = namespaceOf(request) ?? '';
    const labels = request.object?.metadata?.labels;
    const now = enrolment.standing(namespace, labels);
    const annotations = request.object?.metadata?.annotations;
    const policy = policyFor(enrolment.defaults, annotations);
    // The channel annotation is read when a message is sent; a bad one is told now, to whoever set it.
    const channel = annotations?.[SLACK_CHANNEL_ANNOTATION]?.trim();
    const channelProblem = channel === undefined ? undefined : slackChannelIdError(channel);
    const own = [
      ...policy.warnings,
      ...(channelProblem
        ? [
            `annotation ${SLACK_CHANNEL_ANNOTATION}=${JSON.stringify(channel)} ignored (messages go to the default channel): ${channelProblem}`,
          ]
        : []),
    ];
    const base = { namespace, check: false, warnings: [] as string[] };
    if (!namespace || now.kind === 'system') return { ...base, outcome: 'skipped' };
    const managed = now.kind === 'scheduled' || now.kind === 'paused';
    // Only what someone did is worth a warning: a label they set that is not ours, a namespace the labelling webhook missed.
    const notScheduled = now.kind === 'unknown-label' || now.kind === 'unlabelled' ? [`${namespace} is not scheduled: ${now.reason}`] : [];
    switch (request.operation) {
      case 'CREATE':
        return managed
          ? { ...base, check: true, warnings: own, outcome: 'enrolled' }
          : { ...base, warnings: notScheduled, outcome: 'left-alone' };
      case 'UPDATE': {
        const before = enrolment.standing(namespace, request.oldObject?.metadata?.labels);
        const wasManaged = before.kind === 'scheduled' || before.kind === 'paused';
        if (!managed) {
          if (!wasManaged) {
            const relabelled = request.oldObject?.metadata?.labels?.[SCHEDULER_LABEL] !== labels?.[SCHEDULER_LABEL];
            return { ...base, warnings: relabelled ? notScheduled : [], outcome: 'unchanged' };
          }
          const warning = `${namespace} is no longer an environment (${now.reason}); if it was stopped, its workloads are started again`;
          return { ...base, check: true, warnings: [warning], outcome: 'unmanaged' };
        }
        const labelChanged = !wasManaged || (before.kind === 'scheduled') !== (now.kind === 'scheduled');
        const policyChanged =
          wasManaged && !samePolicy(policyFor(enrolment.defaults, request.oldObject?.metadata?.annotations).policy, policy.policy);
        return { ...base, check: labelChanged || policyChanged, warnings: own, outcome: 'unchanged' };
      }
      case 'DELETE':
        return { ...base, check: true, outcome: 'retired' };
      default:
        return { ...base, outcome: 'skipped' };
    }
  }

  /** The uid of the namespace a review is about, when it gives one (the apiserver's reviews do). */
  const uidOf = (request: AdmissionRequest) => request.object?.metadata?.uid ?? request.oldObject?.metadata?.uid;

  /**
   * Whether the namespace as stored shows the change the review announced: created (the
   * same namespace: its uid, when the review gives one), updated to the review's
   * `scheduler` label and policy annotations, or deleted: gone, or terminating with the
   * uid the review names. Another namespace of that name proves nothing about the review
   * (a forged one can name any uid): that is left to the reconciler.
   */
  function shows(request: AdmissionRequest, stored: StoredNamespace | undefined): boolean {
    const uid = uidOf(request);
    const same = stored !== undefined && (uid === undefined || stored.uid === uid);
    switch (request.operation) {
      case 'CREATE':
        return same;
      case 'UPDATE': {
        const object = request.object?.metadata;
        return (
          same &&
          stored.labels[SCHEDULER_LABEL] === object?.labels?.[SCHEDULER_LABEL] &&
          Object.values(POLICY_ANNOTATIONS).every((key) => stored.annotations[key] === object?.annotations?.[key])
        );
      }
      case 'DELETE':
        return stored === undefined || (uid !== undefined && stored.uid === uid && stored.terminating);
      default:
        return false;
    }
  }

  /**
   * The namespace as stored once it shows the reviewed change (undefined: gone), and when
   * that read began; or `unconfirmed` when it has not shown it within `confirmWithinMs`.
   * The apiserver stores a change only after every admission check has allowed it, so
   * the first reads of a CREATE usually find nothing yet.
   */
  async function stored(
    request: AdmissionRequest,
    namespace: string,
  ): Promise<{ namespace: StoredNamespace | undefined; at: Date } | 'unconfirmed'> {
    const deadline = Date.now() + confirmWithinMs;
    for (let pause = 50; ; pause *= 2) {
      const at = new Date();
      // A read that hangs must not hold its slot, and every later change of this namespace, for ever.
      const seen = await withTimeout(readNamespace(namespace), Math.max(1, Math.min(READ_TIMEOUT_MS, deadline - Date.now())), NOT_READ);
      if (seen !== NOT_READ && shows(request, seen)) return { namespace: seen, at };
      const left = deadline - Date.now();
      if (left <= 0) return 'unconfirmed';
      await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)));
    }
  }

  /**
   * Passes a reviewed change on to the environment: its running workflow as Temporal has
   * it (described first, so a retire goes to the run that was running when the change was
   * made), the namespace as the apiserver has it, the reconciler's decision for the two.
   */
  async function passOn(request: AdmissionRequest, namespace: string, by: string): Promise<AdmissionOutcome> {
    // A namespace just created has no environment of its own to describe: enrolling it is
    // one idempotent signalWithStart, and one left running by an earlier namespace of the
    // same name is the reconciler's to re-plan. Describing it first cost every CREATE.
    const environment =
      request.operation === 'CREATE' ? undefined : await withTimeout(enrolment.current(namespace), TEMPORAL_READ_TIMEOUT_MS, TIMED_OUT);
    if (environment === TIMED_OUT) throw new Error(`Temporal did not describe env/${namespace} within ${TEMPORAL_READ_TIMEOUT_MS} ms`);
    // A deleted namespace without an environment: nothing to retire, and nothing to read.
    if (request.operation === 'DELETE' && !environment) return 'left-alone';
    const seen = await stored(request, namespace);
    if (seen === 'unconfirmed') {
      logger.warn(
        { namespace, operation: request.operation, waitedMs: confirmWithinMs },
        'admission: the stored namespace does not show the reviewed change (forged, refused by another admission check, or superseded); nothing done, left to the reconciler',
      );
      return 'unconfirmed';
    }
    const decision = planNamespace({
      name: namespace,
      namespace: seen.namespace,
      environment,
      snapshotAt: seen.at,
      rules: enrolment.rules,
      defaults: enrolment.defaults,
      dispatchAheadMs: enrolment.dispatchAheadMs,
    });
    const done = await carryOut(enrolment, decision, by);
    if (done.length > 0)
      logger.info(
        { namespace, operation: request.operation, action: decision.action, reason: decision.reason },
        `admission: ${decision.action}`,
      );
    return outcomeOf(decision, done);
  }

  type ReadReview = { ok: true; request: AdmissionRequest } | { ok: false; body: ReturnType<typeof allow> };

  /** The AdmissionReview of a request, or the allowing answer (with a warning) for one that cannot be read. */
  async function readReview(req: IncomingMessage): Promise<ReadReview> {
    let uid = '';
    let parsed: z.ZodSafeParseResult<z.infer<typeof admissionReview>>;
    try {
      const raw: unknown = JSON.parse(await getRawBody(req, { limit: '3mb', encoding: 'utf8' }));
      uid =
        typeof (raw as { request?: { uid?: unknown } })?.request?.uid === 'string' ? (raw as { request: { uid: string } }).request.uid : '';
      parsed = admissionReview.safeParse(raw);
    } catch (err) {
      logger.warn({ error: String(err) }, 'admission: unreadable request, allowed');
      return { ok: false, body: allow(uid, ['devenv-scheduler: the admission request could not be read; nothing was changed']) };
    }
    if (!parsed.success) {
      const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; ');
      logger.warn({ uid, problems }, 'admission: malformed AdmissionReview, allowed');
      return {
        ok: false,
        body: allow(uid, [`devenv-scheduler: not an AdmissionReview v1 for a namespace (${problems}); nothing was changed`]),
      };
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
      ctx.body = allow(request.uid, [
        `devenv-scheduler: DRY_RUN: ${namespace} would be labelled ${SCHEDULER_LABEL}=enabled and scheduled; it is left unlabelled`,
      ]);
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
      const { namespace } = decision;
      outcome = decision.outcome;
      if (decision.check && (request.dryRun || dryRunSetting)) {
        outcome = 'dry-run';
        if (dryRunSetting)
          logger.info(
            { namespace, operation: request.operation },
            'admission: DRY_RUN: the namespace is not read, nothing is passed on to Temporal',
          );
      } else if (decision.check) {
        // Who made a change is the apiserver's word only when the caller proved it is the apiserver.
        const user = request.userInfo?.username ?? 'unknown';
        const by = `admission:${ctx.state[VERIFIED_CALLER] === true ? user : `${user} (unverified)`}`;
        if (toTemporal.pendingCount + waitingBehind >= maxQueued) {
          drop(namespace);
        } else {
          const work = () =>
            toTemporal(async () => {
              try {
                metrics.admissions.inc({ outcome: await passOn(request, namespace, by) });
              } catch (err) {
                metrics.admissions.inc({ outcome: 'failed' });
                logger.error(
                  { namespace, operation: request.operation, error: String(err) },
                  'admission: could not check the namespace or pass the change to Temporal; allowed, the reconciler will repair it',
                );
              }
            });
          const before = latestFor.get(namespace);
          if (before) waitingBehind++;
          const passing = before
            ? before.then(() => {
                waitingBehind--;
                return work();
              })
            : work();
          latestFor.set(namespace, passing);
          passingOn.add(passing);
          void passing.finally(() => {
            passingOn.delete(passing);
            if (latestFor.get(namespace) === passing) latestFor.delete(namespace);
          });
        }
        countedLater = true;
      }
      logger.info(
        { namespace, operation: request.operation, dryRun: request.dryRun === true, ...(countedLater ? { passedOn: true } : { outcome }) },
        'admission',
      );
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

/** What a decision carried out did, as an admission outcome. */
function outcomeOf(decision: Decision, done: readonly string[]): AdmissionOutcome {
  if (done.length === 0) return decision.action === 'leave-alone' ? 'left-alone' : 'unchanged';
  switch (decision.action) {
    case 'enrol':
      return 'enrolled';
    case 'enable':
      return 'enabled';
    case 'disable':
      return 'disabled';
    case 'replan':
      return 'policy';
    case 'retire':
      return decision.retire === 'unmanaged' ? 'unmanaged' : 'retired';
    default:
      return 'unchanged';
  }
}
