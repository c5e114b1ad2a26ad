/**
 * Service configuration, read once from environment variables and validated at start-up.
 * A bad value stops the process with one line per problem, naming the variable.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { DateTime } from 'luxon';
import { MAX_HOLD_MS } from './activities/timing';
import { parseDuration } from './domain/duration';
import type { CommandFamily } from './commands';
import { DNS_1123_LABEL, DNS_1123_LABEL_MAX_LENGTH, isDns1123Label } from './domain/names';
import { ALL_NAMESPACES, DEFAULT_GITOPS, type GitOpsSettings } from './domain/gitops';
import { DEFAULT_SUPPORT_SIZES, type SupportSizes } from './domain/support-sizes';
import type { Prices } from './domain/savings';
import { SLACK_CHANNEL_ID, SLACK_USER_ID } from './slack/ids';
import { loadTemporalProfile, type TemporalConnectionOptions } from './temporal/connection';
import { scopedId } from './workflows/cluster';
import {
  clockTime,
  savingsSummary,
  splitList,
  timeZone,
  wakeTimeProblem,
  weekdayList,
  type SavingsSummarySetting,
} from './domain/policy-values';
import type { EnvironmentPolicy } from './domain/shutdown-policy';

const holidayList = z.string().transform((text, ctx) => {
  const dates = splitList(text);
  const bad = dates.filter((date) => !/^\d{4}-\d{2}-\d{2}$/.test(date) || !DateTime.fromISO(date).isValid);
  if (bad.length > 0) {
    ctx.addIssue({ code: 'custom', message: `not dates in YYYY-MM-DD form: ${bad.join(', ')}` });
    return z.NEVER;
  }
  return [...new Set(dates)].sort();
});

const minutesList = z.string().transform((text, ctx) => {
  const offsets = splitList(text).map(Number);
  if (offsets.length === 0 || offsets.some((m) => !Number.isInteger(m) || m <= 0 || m > 24 * 60)) {
    ctx.addIssue({ code: 'custom', message: 'must be a comma-separated list of whole minutes between 1 and 1440, e.g. 60,30,15' });
    return z.NEVER;
  }
  return [...new Set(offsets)].sort((a, b) => b - a);
});

const durationMinutes = z.string().transform((text, ctx) => {
  const parsed = parseDuration(text);
  if (!parsed.ok) {
    ctx.addIssue({ code: 'custom', message: parsed.error });
    return z.NEVER;
  }
  return parsed.minutes;
});

/** Slack ids: users `U…`/`W…`, channels `C…`/`G…`/`D…` (src/slack/ids.ts). */
const slackIdList = (what: string, prefixes: string, pattern: RegExp) =>
  z.string().transform((text, ctx) => {
    const ids = splitList(text);
    const bad = ids.filter((id) => !pattern.test(id));
    if (bad.length > 0) {
      ctx.addIssue({
        code: 'custom',
        message: `not Slack ${what} ids: ${bad.join(', ')} (ids start with ${[...prefixes].join(' or ')}, e.g. ${prefixes[0]}024BE7LH)`,
      });
      return z.NEVER;
    }
    return [...new Set(ids)];
  });
const slackUsers = slackIdList('user', 'UW', SLACK_USER_ID);
const slackChannels = slackIdList('channel', 'CGD', SLACK_CHANNEL_ID);

/**
 * Origins (scheme, host, port) a Slack response_url may have. HTTPS, except on the loopback
 * interface, where a test's recorder listens: an answer to Slack never crosses a network in clear.
 */
const responseUrlOrigins = z.string().transform((text, ctx) => {
  const origins: string[] = [];
  for (const entry of splitList(text)) {
    let url: URL | undefined;
    try {
      url = new URL(entry);
    } catch {
      url = undefined;
    }
    const loopback = url !== undefined && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
    if (!url || url.origin !== entry.replace(/\/$/, '') || (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback))) {
      ctx.addIssue({
        code: 'custom',
        message: `"${entry}" is not an origin such as https://hooks.slack.com (https, no path; http only for 127.0.0.1, localhost or [::1])`,
      });
      return z.NEVER;
    }
    origins.push(url.origin);
  }
  if (origins.length === 0) {
    ctx.addIssue({ code: 'custom', message: 'must name at least one origin, e.g. https://hooks.slack.com' });
    return z.NEVER;
  }
  return [...new Set(origins)];
});

/** REST token names (as in API_TOKENS). */
const tokenNames = z.string().transform((text, ctx) => {
  const names = splitList(text);
  const bad = names.filter((name) => !/^[a-zA-Z0-9_.-]{1,64}$/.test(name));
  if (bad.length > 0) {
    ctx.addIssue({
      code: 'custom',
      message: `not token names: ${bad.map((b) => JSON.stringify(b)).join(', ')} (the NAME part of API_TOKENS entries)`,
    });
    return z.NEVER;
  }
  return [...new Set(names)];
});

/** `XS=250m/512Mi,M=1/2Gi`: size name = CPU / memory, requests equal to limits. */
const supportSizes = z.string().transform((text, ctx) => {
  const sizes: Record<string, { cpu: string; memory: string }> = {};
  for (const entry of splitList(text)) {
    const match = /^([A-Za-z0-9]+)=(\d+(?:\.\d+)?m?)\/(\d+(?:Ki|Mi|Gi|Ti|K|M|G|T)?)$/.exec(entry);
    if (!match) {
      ctx.addIssue({ code: 'custom', message: `"${entry}" is not NAME=CPU/MEMORY, e.g. XS=250m/512Mi or XL=4/8Gi` });
      return z.NEVER;
    }
    sizes[match[1]!.toUpperCase()] = { cpu: match[2]!, memory: match[3]! };
  }
  if (Object.keys(sizes).length === 0) {
    ctx.addIssue({ code: 'custom', message: 'must name at least one size' });
    return z.NEVER;
  }
  return sizes;
});

/**
 * `name:token,name:token`: the name is what actions are recorded under (`api:<name>`). Only
 * each token's SHA-256 is kept; `name:sha256:<64 hex digits>` gives that digest instead of
 * the token, so the token itself need not be stored where the service runs.
 */
const apiTokens = z.string().transform((text, ctx) => {
  const tokens: { name: string; sha256: string }[] = [];
  for (const entry of splitList(text)) {
    const hashed = /^([a-zA-Z0-9_.-]{1,64}):sha256:([0-9a-fA-F]{64})$/.exec(entry);
    const match = hashed ?? /^([a-zA-Z0-9_.-]{1,64}):(\S{16,})$/.exec(entry);
    if (!match) {
      // Never echo the entry: it holds a secret.
      ctx.addIssue({
        code: 'custom',
        message: `entry ${tokens.length + 1} is not NAME:TOKEN with a token of at least 16 characters, or NAME:sha256:<the token's SHA-256 in hex>`,
      });
      return z.NEVER;
    }
    tokens.push({
      name: match[1]!,
      sha256: hashed ? hashed[2]!.toLowerCase() : createHash('sha256').update(match[2]!, 'utf8').digest('hex'),
    });
  }
  return tokens;
});

/**
 * Namespaces never enrolled or labelled by the service unless labelled `scheduler=enabled`
 * or `scheduler=disabled` by someone: the cluster's own machinery. Exact names, or patterns
 * where `*` stands for any characters. INFRASTRUCTURE_NAMESPACES replaces this list.
 */
export const DEFAULT_INFRASTRUCTURE_NAMESPACES: readonly string[] = [
  'default',
  'kube-*',
  'temporal*',
  'cert-manager*',
  'ingress-nginx',
  '*ingress*',
  'traefik*',
  'contour*',
  'gloo-system',
  'kong',
  'monitoring',
  'prometheus*',
  'grafana*',
  'loki*',
  'logging',
  'observability',
  'opentelemetry*',
  'jaeger*',
  'elastic-system',
  'argocd',
  'argo*',
  'flux-system',
  'istio-system',
  'istio-*',
  'linkerd*',
  'kyverno*',
  'gatekeeper-system',
  'calico-*',
  'tigera-operator',
  'cilium*',
  'metallb-system',
  'external-dns',
  'external-secrets',
  'vault',
  'velero',
  'keda',
  'knative-*',
  'crossplane-system',
  'cnpg-system',
  'kubernetes-dashboard',
  'local-path-storage',
  'cattle-*',
  'openshift-*',
  'karpenter',
  'amazon-cloudwatch',
  'aws-observability',
  'gmp-*',
  'gke-*',
  'longhorn-system',
  'rook-ceph*',
  'openebs',
  'tekton-*',
  'gitlab-runner*',
  'arc-*',
  'actions-runner-system',
  'sealed-secrets',
];

/** A price per hour: a number, 0 or more. */
const pricePerHour = z.coerce
  .number({ message: 'must be a number, the price of one hour, e.g. 0.0316' })
  .min(0, 'must be 0 or more')
  .refine(Number.isFinite, 'must be a finite number');

/** JSON of instance type (or "ec2 <type>", "rds <type>") to its price per hour, e.g. {"t3.medium":0.0416,"db.t3.medium":0.068}. */
const instancePrices = z.string().transform((text, ctx) => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    ctx.addIssue({
      code: 'custom',
      message: 'is not JSON; expected an object of instance type to price per hour, e.g. {"t3.medium":0.0416}',
    });
    return z.NEVER;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    ctx.addIssue({ code: 'custom', message: 'must be a JSON object of instance type to price per hour, e.g. {"t3.medium":0.0416}' });
    return z.NEVER;
  }
  const prices: Record<string, number> = {};
  for (const [type, price] of Object.entries(parsed)) {
    if (!/^((ec2|rds) )?[a-z0-9][a-z0-9.-]{0,62}$/.test(type)) {
      ctx.addIssue({
        code: 'custom',
        message: `${JSON.stringify(type)} is not an instance type (e.g. t3.medium, db.t3.medium, or "ec2 t3.medium")`,
      });
      return z.NEVER;
    }
    if (typeof price !== 'number' || !Number.isFinite(price) || price < 0) {
      ctx.addIssue({ code: 'custom', message: `the price of ${type} must be a number, 0 or more, not ${JSON.stringify(price)}` });
      return z.NEVER;
    }
    prices[type] = price;
  }
  return prices;
});

/** Namespace names (DNS-1123 labels). */
const namespaceNames = z.string().transform((text, ctx) => {
  const names = splitList(text);
  const bad = names.filter((name) => !isDns1123Label(name));
  if (bad.length > 0) {
    ctx.addIssue({
      code: 'custom',
      message: `not namespace names: ${bad.map((b) => JSON.stringify(b)).join(', ')} (lower-case letters, digits and "-", e.g. kube-system)`,
    });
    return z.NEVER;
  }
  return [...new Set(names)];
});

/** Lower-case letters, digits and `-` as in a namespace name, and `*` for any characters. */
const namespacePatterns = z.string().transform((text, ctx) => {
  const patterns = splitList(text);
  const bad = patterns.filter((pattern) => !/^[a-z0-9*]([-a-z0-9*]*[a-z0-9*])?$/.test(pattern) || pattern.length > 63);
  if (bad.length > 0) {
    ctx.addIssue({
      code: 'custom',
      message: `not namespace names or patterns: ${bad.map((b) => JSON.stringify(b)).join(', ')} (lower-case letters, digits and "-", with "*" for any characters, e.g. monitoring,istio-*)`,
    });
    return z.NEVER;
  }
  return [...new Set(patterns)];
});

/** Namespace names, or `*` alone for every namespace. */
const namespacesOrAll = z.string().transform((text, ctx) => {
  if (text.trim() === ALL_NAMESPACES) return [ALL_NAMESPACES];
  const names = splitList(text);
  const bad = names.filter((name) => !isDns1123Label(name));
  if (bad.length > 0) {
    ctx.addIssue({
      code: 'custom',
      message: `not namespace names: ${bad.map((b) => JSON.stringify(b)).join(', ')} (lower-case letters, digits and "-"; or "*" alone for every namespace)`,
    });
    return z.NEVER;
  }
  return [...new Set(names)];
});

const port = z.coerce.number().int().min(0).max(65535);
const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => ['true', '1', 'yes'].includes(v));

const fields = z.object({
  SHUTDOWN_TIME: clockTime.default('19:00'),
  TIME_ZONE: timeZone.default('UTC'),
  WORKING_DAYS: weekdayList.default(['Mon', 'Tue', 'Wed', 'Thu', 'Fri']),
  HOLIDAYS: holidayList.default([]),
  WARNING_OFFSETS: minutesList.default([60, 30, 15]),
  RESET_TIME: clockTime.default('09:00'),
  // Off unless set: starting environments nobody asked for costs money.
  WAKE_TIME: clockTime.optional(),
  MAX_PROLONGATION: durationMinutes.default(4 * 60),
  // Capped so an after-hours start can never keep an environment up overnight.
  AFTER_HOURS_WINDOW: durationMinutes.pipe(z.number().max(12 * 60, 'must be at most 12h')).default(2 * 60),
  // Checked here; read, with the profile they override and the rest of the connection, by src/temporal/connection.ts.
  TEMPORAL_ADDRESS: z
    .string()
    .regex(
      /^(\[[0-9a-fA-F:]+\]|[^\s:/]+):\d{1,5}$/,
      'must be host:port, e.g. temporal-frontend.temporal:7233 or devenv.a1b2c.tmprl.cloud:7233',
    )
    .optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).optional(),
  TASK_QUEUE: z.string().min(1).default('devenv-scheduler'),
  CLUSTER_NAME: z
    .string()
    .regex(
      DNS_1123_LABEL,
      'must be a DNS label such as eu-prod-1 (lower-case letters, digits and "-", at most 63): it becomes part of workflow ids',
    )
    .max(DNS_1123_LABEL_MAX_LENGTH)
    .optional(),
  API_PORT: port.default(3000),
  TEMPORAL_DEV_PORT: port.default(7233),
  TEMPORAL_UI_PORT: port.default(8233),
  TEMPORAL_METRICS_PORT: z.union([z.literal('off'), port]).default(9464),
  TEMPORAL_DEV_DB_FILE: z.string().min(1).default('.temporal-dev.db'),
  // Only where no kubeconfig is found: a cluster anyone pointed at is never replaced.
  LOCAL_CLUSTER: z.enum(['auto', 'off']).default('auto'),
  LOCAL_CLUSTER_DIR: z.string().min(1).default('.local-cluster'),
  AWS_REGIONS: z
    .string()
    .transform((text, ctx) => {
      const regions = splitList(text);
      const bad = regions.filter((region) => !/^[a-z]{2}(-[a-z]+)+-\d$/.test(region));
      if (bad.length > 0) {
        ctx.addIssue({ code: 'custom', message: `not AWS regions: ${bad.join(', ')} (expected names such as eu-west-1)` });
        return z.NEVER;
      }
      return [...new Set(regions)];
    })
    .default([]),
  AWS_ENDPOINT_URL: z.url({ message: 'must be a URL such as http://127.0.0.1:5000' }).optional(),
  INVENTORY_TABLE: z
    .string()
    .regex(/^[a-zA-Z0-9_.-]{3,255}$/, 'must be a DynamoDB table name (3-255 of a-z A-Z 0-9 _ . -)')
    .default('devenv-scheduler-inventory'),
  INVENTORY_TABLE_REGION: z.string().min(1).optional(),
  INVENTORY_MAX_AGE: durationMinutes.default(30),
  INVENTORY_INTERVAL: durationMinutes.default(10),
  SERVICE_ROLE: z.enum(['all', 'api', 'worker']).default('all'),
  WEBHOOK_PORT: port.default(8443),
  WEBHOOK_TLS_CERT: z.string().min(1).optional(),
  WEBHOOK_TLS_KEY: z.string().min(1).optional(),
  WEBHOOK_CLIENT_CA: z.string().min(1).optional(),
  WEBHOOK_CLIENT_NAMES: z
    .string()
    .transform((value) =>
      value
        .split(',')
        .map((name) => name.trim())
        .filter(Boolean),
    )
    .optional(),
  POD_NAMESPACE: z.string().min(1).default('devenv-scheduler'),
  SYSTEM_NAMESPACES: namespaceNames.default(['kube-system', 'kube-public', 'kube-node-lease']),
  INFRASTRUCTURE_NAMESPACES: namespacePatterns.default([...DEFAULT_INFRASTRUCTURE_NAMESPACES]),
  RECONCILE_INTERVAL: durationMinutes.default(10),
  KUBE_CONCURRENCY: z.coerce.number().int().min(1).max(50).default(3),
  DRIFT: z.enum(['restop', 'report', 'off']).default('restop'),
  DRIFT_CHECK_INTERVAL: durationMinutes.pipe(z.number().min(1, 'must be at least 1m')).default(5),
  GITOPS: z.enum(['hold', 'off']).default(DEFAULT_GITOPS.mode),
  ARGOCD_NAMESPACES: namespaceNames.default(DEFAULT_GITOPS.argocdNamespaces),
  FLUX_NAMESPACES: namespacesOrAll.default(DEFAULT_GITOPS.fluxNamespaces),
  KUBE_WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(50),
  // Below the timeouts of the start activities (workflow.ts), which its waits must never reach.
  START_READY_TIMEOUT_SECONDS: z.coerce.number().int().min(0).max(900).default(300),
  WORKFLOW_CACHE_SIZE: z.coerce.number().int().min(2).max(100_000).default(2000),
  WORKER_MAX_CONCURRENT_ACTIVITIES: z.coerce.number().int().min(1).max(10_000).default(500),
  SHUTDOWN_DISPATCH_AHEAD_SECONDS: z.coerce
    .number()
    .int()
    .min(0)
    .max(MAX_HOLD_MS / 1000)
    .default(10),
  WORKER_SHUTDOWN_GRACE_SECONDS: z.coerce.number().int().min(0).max(3600).default(120),
  COMMAND_WAIT_SECONDS: z.coerce.number().int().min(1).max(300).default(20),
  SAVINGS_PRICE_VCPU_HOUR: pricePerHour.optional(),
  SAVINGS_PRICE_GIB_HOUR: pricePerHour.optional(),
  SAVINGS_PRICE_INSTANCE_TYPES: instancePrices.optional(),
  // Off unless set: a new post in every environment's channel each week is something a team opts into.
  SAVINGS_SUMMARY: savingsSummary.default(null),
  SAVINGS_CURRENCY: z
    .string()
    .regex(/^[A-Za-z$€£¥]{1,8}$/, 'must be a currency code or sign, e.g. EUR, USD or $')
    .optional(),
  SUPPORT_NAMESPACE: z
    .string()
    .regex(DNS_1123_LABEL, 'must be a namespace name (a DNS-1123 label)')
    .max(DNS_1123_LABEL_MAX_LENGTH)
    .default('devenv-support'),
  SUPPORT_IMAGE: z.string().min(1).default('debian:bookworm-slim'),
  SUPPORT_SIZES: supportSizes.default(DEFAULT_SUPPORT_SIZES),
  SUPPORT_POD_TTL: durationMinutes.pipe(z.number().max(7 * 24 * 60, 'must be at most 168h')).default(8 * 60),
  SUPPORT_MAX_PODS_PER_USER: z.coerce.number().int().min(1).max(100).default(2),
  SUPPORT_MAX_SIZE: z
    .string()
    .transform((size) => size.toUpperCase())
    .default('M'),
  API_TOKENS: apiTokens.optional(),
  API_READ_TOKENS: apiTokens.optional(),
  API_SUPPORT_ADMINS: tokenNames.optional(),
  // Off unless set: without a token the REST API shows nothing, not even which environments exist.
  UI_PUBLIC: bool.default(false),
  SLACK_SIGNING_SECRET: z.string().min(1).optional(),
  SLACK_BOT_TOKEN: z
    .string()
    .regex(/^xox[bp]-/, 'must be a bot token (xoxb-...)')
    .optional(),
  SLACK_APP_TOKEN: z
    .string()
    .regex(/^xapp-/, 'must be an app-level token (xapp-...) with the connections:write scope')
    .optional(),
  SLACK_DEFAULT_CHANNEL: z.string().min(1).optional(),
  SLACK_API_URL: z.url({ message: 'must be a URL such as https://slack.com/api/' }).optional(),
  SLACK_ALLOW_READ_USERS: slackUsers.optional(),
  SLACK_ALLOW_READ_CHANNELS: slackChannels.optional(),
  SLACK_ALLOW_CONTROL_USERS: slackUsers.optional(),
  SLACK_ALLOW_CONTROL_CHANNELS: slackChannels.optional(),
  SLACK_ALLOW_SUPPORT_USERS: slackUsers.optional(),
  SLACK_ALLOW_SUPPORT_CHANNELS: slackChannels.optional(),
  SLACK_SUPPORT_ADMINS: slackUsers.optional(),
  SLACK_OWNERS_ONLY: z.enum(['off', 'control'], { message: 'must be off or control' }).default('off'),
  SLACK_ADMINS: slackUsers.optional(),
  SLACK_RESPONSE_URL_ORIGINS: responseUrlOrigins.default(['https://hooks.slack.com']),
  DRY_RUN: bool.default(false),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/** The service's settings together: each pair and cross-reference the API, the webhook or Slack would otherwise trip over at run time. */
/** Every variable the configuration reads, for the docs and the Helm chart to be checked against. */
export const SETTING_NAMES: readonly string[] = Object.keys(fields.shape);

const serviceSchema = fields.superRefine((c, ctx) => {
  // Compared only once both are times: a malformed one has its own line already.
  const times = [c.WAKE_TIME, c.SHUTDOWN_TIME].every((time) => clockTime.safeParse(time).success);
  if (c.WAKE_TIME !== undefined && times && wakeTimeProblem(c.WAKE_TIME, c.SHUTDOWN_TIME)) {
    ctx.addIssue({ code: 'custom', path: ['WAKE_TIME'], message: `must be before SHUTDOWN_TIME (${c.SHUTDOWN_TIME})` });
  }
  if (Boolean(c.WEBHOOK_TLS_CERT) !== Boolean(c.WEBHOOK_TLS_KEY)) {
    const missing = c.WEBHOOK_TLS_CERT ? 'WEBHOOK_TLS_KEY' : 'WEBHOOK_TLS_CERT';
    ctx.addIssue({
      code: 'custom',
      path: [missing],
      message: 'the webhook needs both WEBHOOK_TLS_CERT and WEBHOOK_TLS_KEY (files of a mounted Secret)',
    });
  }
  if (c.WEBHOOK_CLIENT_NAMES?.length && !c.WEBHOOK_CLIENT_CA) {
    ctx.addIssue({
      code: 'custom',
      path: ['WEBHOOK_CLIENT_CA'],
      message: "is required with WEBHOOK_CLIENT_NAMES: the CA that signed the apiserver's webhook client certificate",
    });
  }
  // A warning with nowhere to go would be lost for every namespace without its own channel.
  if (c.SLACK_BOT_TOKEN && !c.SLACK_DEFAULT_CHANNEL) {
    ctx.addIssue({
      code: 'custom',
      path: ['SLACK_DEFAULT_CHANNEL'],
      message: 'is required with SLACK_BOT_TOKEN: the channel for environments without their own',
    });
  }
  const sizes = Object.keys(c.SUPPORT_SIZES);
  if (!sizes.includes(c.SUPPORT_MAX_SIZE)) {
    ctx.addIssue({
      code: 'custom',
      path: ['SUPPORT_MAX_SIZE'],
      message: `must be a size of the catalogue (${sizes.join(', ')}): the largest support pod people outside the support admins may start`,
    });
  }
  const controlTokens = new Set((c.API_TOKENS ?? []).map((t) => t.name));
  const unknown = (c.API_SUPPORT_ADMINS ?? []).filter((name) => !controlTokens.has(name));
  if (unknown.length > 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['API_SUPPORT_ADMINS'],
      message: `names no API_TOKENS entry: ${unknown.join(', ')} (support admins are control tokens, by name)`,
    });
  }
});

/**
 * Read by the API, the webhook, Slack or the worker, never by the `devenv` CLI: the CLI
 * treats them as unset, so an operator's shell with the service's Slack token in it (and
 * not its default channel) can still run `devenv status`.
 */
const SERVICE_ONLY_SETTINGS =
  /^(SLACK_.*|WEBHOOK_.*|API_TOKENS|API_READ_TOKENS|API_SUPPORT_ADMINS|API_PORT|LOCAL_CLUSTER|LOCAL_CLUSTER_DIR|SUPPORT_MAX_SIZE|SUPPORT_MAX_PODS_PER_USER|SERVICE_ROLE|WORKER_.*|WORKFLOW_CACHE_SIZE)$/;

/** Their values never appear in an error message, which may end up in a log. */
const SECRET_SETTINGS = new Set([
  'SLACK_SIGNING_SECRET',
  'SLACK_BOT_TOKEN',
  'SLACK_APP_TOKEN',
  'API_TOKENS',
  'API_READ_TOKENS',
  'TEMPORAL_API_KEY',
  'TEMPORAL_TLS_CLIENT_KEY_DATA',
]);

export interface Config {
  /** Defaults every environment starts with; a namespace may override them. */
  policy: EnvironmentPolicy;
  resetTime: string;
  temporal: {
    /** Unset: `npm start` runs the local dev server. From TEMPORAL_ADDRESS or the profile, as `namespace` and `connection` are. */
    address?: string;
    namespace: string;
    /** TLS, API key and gRPC headers for `address` (src/temporal/connection.ts). Holds secrets: never logged. */
    connection: TemporalConnectionOptions;
    /** What protects the connection, for the banner and the log: `plaintext`, `mTLS (client certificate CN=...)`, `API key`... */
    security: string;
    /** The temporal.toml profile the settings came from; undefined: TEMPORAL_* variables alone. */
    profileSource?: string;
    /** TASK_QUEUE, as `<cluster>/<TASK_QUEUE>` with CLUSTER_NAME: a worker runs its own cluster's activities alone. */
    taskQueue: string;
    /** CLUSTER_NAME: scopes workflow ids, Schedules, the task queue and listings, so several clusters share one Temporal namespace. */
    cluster?: string;
    devServerPort: number;
    uiPort: number;
    devDbFile: string;
    /** Where the Temporal SDK serves its own Prometheus metrics; undefined: off. */
    metricsPort?: number;
  };
  /**
   * `npm start` with no kubeconfig: `auto` runs a local control plane seeded with sample
   * environments (src/local-cluster/), its state in `dir`; `off` runs without a cluster.
   */
  localCluster: { mode: 'auto' | 'off'; dir: string };
  apiPort: number;
  /** REST API bearer tokens, as their SHA-256 (hex); none: the /api/v1 routes refuse every request. */
  apiTokens: { name: string; sha256: string; scope: 'read' | 'control' }[];
  /** Names of API_TOKENS entries that are support admins (any size, stop any support pod). */
  apiSupportAdmins: string[];
  /** The REST read routes the /ui page shows answer without a token (UI_PUBLIC). */
  uiPublic: boolean;
  aws: {
    /** Empty: AWS is off, and every AWS activity reports nothing without calling AWS. */
    regions: string[];
    endpoint?: string;
    inventoryTable: string;
    inventoryTableRegion?: string;
    inventoryMaxAgeMinutes: number;
    inventoryIntervalMinutes: number;
  };
  /** `all` (npm start): everything in one process; `api`: HTTP, Slack and webhook; `worker`: the Temporal worker and Schedules. */
  role: 'all' | 'api' | 'worker';
  webhook: {
    port: number;
    tlsCert?: string;
    tlsKey?: string;
    /** Only the apiserver may call it: its client certificate, signed by this CA (and issued to one of these names, if any). */
    clientAuthentication?: { caFile: string; names: string[] };
  };
  enrolment: {
    /** Namespaces never enrolled: the configured system ones, the service's own and the support namespace. */
    systemNamespaces: string[];
    /** Names and `*` patterns of namespaces never enrolled or labelled unless labelled `scheduler=enabled`/`disabled` by someone. */
    infrastructureNamespaces: string[];
    reconcileIntervalMinutes: number;
    /** How long before a scheduled shutdown its stop is handed to a worker, which holds it until the instant; 0: at the instant. */
    shutdownDispatchAheadMs: number;
  };
  /**
   * Workloads changed at once: in one namespace, and by one worker process across all of them.
   * drift: what a stopped environment does about workloads woken since its stop, and how often it looks.
   * startReadyTimeoutMs: how long a start waits for what it woke to be Ready; 0: it does not wait.
   * gitops: whether GitOps controllers are held off a stopped environment, and where their objects live.
   */
  kubernetes: {
    concurrency: number;
    processConcurrency: number;
    drift: { mode: 'restop' | 'report' | 'off'; intervalMs: number };
    startReadyTimeoutMs: number;
    gitops: GitOpsSettings;
  };
  /**
   * maxCachedWorkflows: workflows the worker keeps in memory between tasks; one that is not cached is replayed from its history.
   * maxConcurrentActivities: activity slots; a stop dispatched ahead holds one (two with AWS) until its instant.
   * shutdownGraceMs: on SIGTERM, how long activities in flight may run on before they are cancelled (and retried elsewhere).
   */
  worker: { maxCachedWorkflows: number; maxConcurrentActivities: number; shutdownGraceMs: number };
  /** How long a REST call or `devenv` command waits for a start, stop or prolongation before answering that it is still in progress. */
  commandWaitMs: number;
  /** prices: SAVINGS_PRICE_* and SAVINGS_CURRENCY (none set: the savings have no cost). */
  savings: { prices: Prices; summary: SavingsSummarySetting | null };
  /** sizes: SUPPORT_SIZES, or the built-in catalogue without it. maxPodsPerUser and maxSize: what one requester outside the support admins may have (SUPPORT_MAX_PODS_PER_USER applies to admins too). */
  support: { namespace: string; image: string; sizes: SupportSizes; ttlMinutes: number; maxPodsPerUser: number; maxSize: string };
  slack: {
    /** Unset: the /slack routes are not mounted. Never logged. */
    signingSecret?: string;
    /** Unset: warnings and announcements go to the log instead. Never logged. */
    botToken?: string;
    /** Set: commands and buttons also arrive over Socket Mode, on a connection the service opens to Slack. Never logged. */
    appToken?: string;
    defaultChannel?: string;
    apiUrl?: string;
    allow: Partial<Record<CommandFamily, { users?: string[]; channels?: string[] }>>;
    /** User ids that may start support pods of any size and stop anyone's. */
    supportAdmins: string[];
    /** `control`: only an environment's owners (its `devenv-scheduler/owners`) and `admins` may stop or prolongate it. */
    ownersOnly: 'off' | 'control';
    /** User ids that may stop and prolongate every environment, whoever owns it. */
    admins: string[];
    /** The only origins a response_url may have. */
    responseUrlOrigins: string[];
  };
  dryRun: boolean;
  logLevel: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Empty strings count as unset so that `FOO=` in a .env file falls back to the default.
 * `for: 'cli'` checks what the CLI reads alone; the service's own settings are left at their defaults.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, { for: reader = 'service' }: { for?: 'service' | 'cli' } = {}): Config {
  const present = Object.fromEntries(
    Object.entries(env).filter(
      ([name, value]) => value !== undefined && value.trim() !== '' && !(reader === 'cli' && SERVICE_ONLY_SETTINGS.test(name)),
    ),
  );
  const result = (reader === 'cli' ? fields : serviceSchema).safeParse(present);
  // The connection to Temporal: TEMPORAL_* variables and temporal.toml profiles, as Temporal's CLI reads them. Its messages never hold a secret.
  const temporal = loadTemporalProfile(present as Record<string, string>);
  const problems = [
    ...(result.success
      ? []
      : result.error.issues.map((issue) => {
          const name = String(issue.path[0]);
          const shown = !(name in present) ? ' (unset)' : SECRET_SETTINGS.has(name) ? ' (value hidden)' : `=${JSON.stringify(env[name])}`;
          return `${name}${shown}: ${issue.message}`;
        })),
    ...temporal.problems,
  ];
  if (!result.success || !temporal.profile || problems.length > 0) throw new ConfigError(problems);
  const c = result.data;
  const profile = temporal.profile;
  return {
    policy: {
      shutdownTime: c.SHUTDOWN_TIME,
      timeZone: c.TIME_ZONE,
      workingDays: c.WORKING_DAYS,
      holidays: c.HOLIDAYS,
      warningOffsetsMinutes: c.WARNING_OFFSETS,
      maxProlongationMinutes: c.MAX_PROLONGATION,
      afterHoursWindowMinutes: c.AFTER_HOURS_WINDOW,
      ...(c.WAKE_TIME !== undefined ? { wakeTime: c.WAKE_TIME } : {}),
    },
    resetTime: c.RESET_TIME,
    temporal: {
      address: profile.address,
      namespace: profile.namespace ?? 'default',
      connection: profile.connection,
      security: profile.security,
      profileSource: profile.source,
      taskQueue: scopedId(c.TASK_QUEUE, c.CLUSTER_NAME),
      cluster: c.CLUSTER_NAME,
      devServerPort: c.TEMPORAL_DEV_PORT,
      uiPort: c.TEMPORAL_UI_PORT,
      devDbFile: c.TEMPORAL_DEV_DB_FILE,
      metricsPort: c.TEMPORAL_METRICS_PORT === 'off' ? undefined : c.TEMPORAL_METRICS_PORT,
    },
    localCluster: { mode: c.LOCAL_CLUSTER, dir: c.LOCAL_CLUSTER_DIR },
    apiPort: c.API_PORT,
    apiTokens: [
      ...(c.API_TOKENS ?? []).map((t) => ({ ...t, scope: 'control' as const })),
      ...(c.API_READ_TOKENS ?? []).map((t) => ({ ...t, scope: 'read' as const })),
    ],
    apiSupportAdmins: c.API_SUPPORT_ADMINS ?? [],
    uiPublic: c.UI_PUBLIC,
    aws: {
      regions: c.AWS_REGIONS,
      endpoint: c.AWS_ENDPOINT_URL,
      inventoryTable: c.INVENTORY_TABLE,
      inventoryTableRegion: c.INVENTORY_TABLE_REGION,
      inventoryMaxAgeMinutes: c.INVENTORY_MAX_AGE,
      inventoryIntervalMinutes: c.INVENTORY_INTERVAL,
    },
    role: c.SERVICE_ROLE,
    webhook: {
      port: c.WEBHOOK_PORT,
      tlsCert: c.WEBHOOK_TLS_CERT,
      tlsKey: c.WEBHOOK_TLS_KEY,
      ...(c.WEBHOOK_CLIENT_CA ? { clientAuthentication: { caFile: c.WEBHOOK_CLIENT_CA, names: c.WEBHOOK_CLIENT_NAMES ?? [] } } : {}),
    },
    enrolment: {
      systemNamespaces: [...new Set([...c.SYSTEM_NAMESPACES, c.POD_NAMESPACE, c.SUPPORT_NAMESPACE])],
      infrastructureNamespaces: c.INFRASTRUCTURE_NAMESPACES,
      reconcileIntervalMinutes: c.RECONCILE_INTERVAL,
      shutdownDispatchAheadMs: c.SHUTDOWN_DISPATCH_AHEAD_SECONDS * 1000,
    },
    kubernetes: {
      concurrency: c.KUBE_CONCURRENCY,
      processConcurrency: c.KUBE_WORKER_CONCURRENCY,
      drift: { mode: c.DRIFT, intervalMs: c.DRIFT_CHECK_INTERVAL * 60_000 },
      startReadyTimeoutMs: c.START_READY_TIMEOUT_SECONDS * 1000,
      gitops: { mode: c.GITOPS, argocdNamespaces: c.ARGOCD_NAMESPACES, fluxNamespaces: c.FLUX_NAMESPACES },
    },
    worker: {
      maxCachedWorkflows: c.WORKFLOW_CACHE_SIZE,
      maxConcurrentActivities: c.WORKER_MAX_CONCURRENT_ACTIVITIES,
      shutdownGraceMs: c.WORKER_SHUTDOWN_GRACE_SECONDS * 1000,
    },
    commandWaitMs: c.COMMAND_WAIT_SECONDS * 1000,
    savings: {
      prices: {
        ...(c.SAVINGS_PRICE_VCPU_HOUR !== undefined ? { vcpuHour: c.SAVINGS_PRICE_VCPU_HOUR } : {}),
        ...(c.SAVINGS_PRICE_GIB_HOUR !== undefined ? { gibHour: c.SAVINGS_PRICE_GIB_HOUR } : {}),
        ...(c.SAVINGS_PRICE_INSTANCE_TYPES ? { instanceTypes: c.SAVINGS_PRICE_INSTANCE_TYPES } : {}),
        ...(c.SAVINGS_CURRENCY ? { currency: c.SAVINGS_CURRENCY } : {}),
      },
      summary: c.SAVINGS_SUMMARY,
    },
    support: {
      namespace: c.SUPPORT_NAMESPACE,
      image: c.SUPPORT_IMAGE,
      sizes: c.SUPPORT_SIZES,
      ttlMinutes: c.SUPPORT_POD_TTL,
      maxPodsPerUser: c.SUPPORT_MAX_PODS_PER_USER,
      maxSize: c.SUPPORT_MAX_SIZE,
    },
    slack: {
      signingSecret: c.SLACK_SIGNING_SECRET,
      botToken: c.SLACK_BOT_TOKEN,
      appToken: c.SLACK_APP_TOKEN,
      defaultChannel: c.SLACK_DEFAULT_CHANNEL,
      apiUrl: c.SLACK_API_URL,
      allow: allowLists({
        read: { users: c.SLACK_ALLOW_READ_USERS, channels: c.SLACK_ALLOW_READ_CHANNELS },
        control: { users: c.SLACK_ALLOW_CONTROL_USERS, channels: c.SLACK_ALLOW_CONTROL_CHANNELS },
        support: { users: c.SLACK_ALLOW_SUPPORT_USERS, channels: c.SLACK_ALLOW_SUPPORT_CHANNELS },
      }),
      supportAdmins: c.SLACK_SUPPORT_ADMINS ?? [],
      ownersOnly: c.SLACK_OWNERS_ONLY,
      admins: c.SLACK_ADMINS ?? [],
      responseUrlOrigins: c.SLACK_RESPONSE_URL_ORIGINS,
    },
    dryRun: c.DRY_RUN,
    logLevel: c.LOG_LEVEL,
  };
}

/** Only the families that have a list: no entry means everyone, everywhere. */
function allowLists(lists: Record<CommandFamily, { users?: string[]; channels?: string[] }>): Config['slack']['allow'] {
  return Object.fromEntries(
    Object.entries(lists)
      .filter(([, list]) => list.users || list.channels)
      .map(([family, list]) => [family, Object.fromEntries(Object.entries(list).filter(([, ids]) => ids))]),
  );
}
