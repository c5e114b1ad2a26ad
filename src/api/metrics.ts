/**
 * Prometheus metrics served at /metrics. One registry per process (not prom-client's
 * global one) so tests can run several servers side by side.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Figures } from '../domain/savings';

export interface Metrics {
  registry: Registry;
  httpRequests: Counter<'route' | 'method' | 'status'>;
  httpDuration: Histogram<'route' | 'method'>;
  /** Admission webhook calls by what they did; `failed` ones are left to the reconciler. */
  admissions: Counter<'outcome'>;
  /** Callers the webhook turned away for want of an accepted client certificate (handshake) or name. */
  webhookRefused: Counter<'reason'>;
  /** `/devenv` commands from Slack and the REST API, by kind and outcome. */
  commands: Counter<'source' | 'command' | 'outcome'>;
  /** Scheduled stops run by this worker, by half (kubernetes, aws) and outcome (stopped, failed: an attempt that threw; Temporal retries it). */
  scheduledStops: Counter<'half' | 'outcome'>;
  /** How long after its shutdown instant a scheduled stop began to touch the cluster. */
  scheduledStopLateness: Histogram<never>;
  /** Slack warnings and announcements, by kind (warning, stopped, started) and outcome (delivered, failed: an attempt that threw; retried until its deadline). */
  notifications: Counter<'kind' | 'outcome'>;
  /** Reconciler runs by outcome: ok, partial (some namespaces failed), failed. */
  reconciles: Counter<'outcome'>;
  /** AWS stops and starts that left a resource undone (busy, unsupported, failed) or could not run at all (error). */
  awsOutcomes: Counter<'action' | 'outcome'>;
}

export interface MetricsSources {
  /**
   * Running environments per phase, asked of Temporal's visibility at each scrape. Given to
   * the worker role only: every process of a role would count the same environments, and
   * a sum over pods must count each once.
   */
  environmentsByPhase?: () => Promise<Record<string, number>>;
  /** Running environments whose scheduled shutdown is more than a few minutes past: a stop that did not happen. Worker role only, as above. */
  environmentsOverdue?: () => Promise<number>;
  /** What sleeping saved in the last 7 days, every environment added up, from their memos at scrape time. Worker role only, as above. */
  savingsThisWeek?: () => Promise<Figures>;
}

export function createMetrics(sources: MetricsSources = {}): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service: 'devenv-scheduler' });
  collectDefaultMetrics({ register: registry });
  const byPhase = sources.environmentsByPhase;
  if (byPhase) {
    new Gauge({
      name: 'devenv_environments',
      help: 'Running environment workflows by phase (from Temporal visibility at scrape time)',
      labelNames: ['phase'],
      registers: [registry],
      async collect() {
        // A scrape while Temporal is away shows no figures rather than failing.
        const counts = await byPhase().catch(() => undefined);
        this.reset();
        for (const [phase, count] of Object.entries(counts ?? {})) this.set({ phase }, count);
      },
    });
  }
  const overdue = sources.environmentsOverdue;
  if (overdue) {
    new Gauge({
      name: 'devenv_environments_overdue',
      help: 'Running environments whose scheduled shutdown passed more than 5 minutes ago without a stop (from Temporal visibility at scrape time)',
      registers: [registry],
      async collect() {
        const count = await overdue().catch(() => undefined);
        this.reset();
        if (count !== undefined) this.set(count);
      },
    });
  }
  const savings = sources.savingsThisWeek;
  if (savings) {
    new Gauge({
      name: 'devenv_savings_last_7_days',
      help: 'What sleeping saved in the last 7 days, every environment added up (from their memos at scrape time), by unit: hours_asleep, cpu_core_hours, memory_gib_hours, instance_hours (by type), cost (at the SAVINGS_PRICE_* prices)',
      labelNames: ['unit', 'type'],
      registers: [registry],
      async collect() {
        const figures = await savings().catch(() => undefined);
        this.reset();
        if (!figures) return;
        this.set({ unit: 'hours_asleep', type: '' }, figures.hoursAsleep);
        this.set({ unit: 'cpu_core_hours', type: '' }, figures.cpuCoreHours);
        this.set({ unit: 'memory_gib_hours', type: '' }, figures.memoryGiBHours);
        for (const [type, hours] of Object.entries(figures.instanceHours)) this.set({ unit: 'instance_hours', type }, hours);
        if (figures.cost !== null) this.set({ unit: 'cost', type: '' }, figures.cost);
      },
    });
  }
  return {
    registry,
    scheduledStops: new Counter({
      name: 'devenv_scheduled_stops_total',
      help: 'Scheduled stops by half (kubernetes, aws) and outcome (stopped; failed: an attempt that threw, retried by Temporal)',
      labelNames: ['half', 'outcome'],
      registers: [registry],
    }),
    scheduledStopLateness: new Histogram({
      name: 'devenv_scheduled_stop_lateness_seconds',
      help: 'How long after its shutdown instant a scheduled stop began to touch the cluster',
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
      registers: [registry],
    }),
    notifications: new Counter({
      name: 'devenv_notifications_total',
      help: 'Slack warnings and announcements by kind (warning, stopped, started) and outcome (delivered; failed: an attempt that threw, retried until its deadline)',
      labelNames: ['kind', 'outcome'],
      registers: [registry],
    }),
    reconciles: new Counter({
      name: 'devenv_reconcile_runs_total',
      help: 'Reconciler runs by outcome: ok, partial (some namespaces could not be reconciled), failed',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    httpRequests: new Counter({
      name: 'devenv_http_requests_total',
      help: 'HTTP requests answered, by route, method and status code',
      labelNames: ['route', 'method', 'status'],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'devenv_http_request_duration_seconds',
      help: 'Time to answer an HTTP request',
      labelNames: ['route', 'method'],
      buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    commands: new Counter({
      name: 'devenv_commands_total',
      help: 'Commands by source (slack, api), command (start, stop, prolongate, ...) and outcome (ok, invalid, refused, rejected, unknown-environment, error, ...)',
      labelNames: ['source', 'command', 'outcome'],
      registers: [registry],
    }),
    awsOutcomes: new Counter({
      name: 'devenv_aws_outcomes_total',
      help: 'EC2/RDS resources an environment stop or start left undone, by action and outcome (busy, unsupported, failed); error: the action could not run at all',
      labelNames: ['action', 'outcome'],
      registers: [registry],
    }),
    admissions: new Counter({
      name: 'devenv_admission_requests_total',
      help: 'Namespace admission requests, by outcome (enrolled, enabled, disabled, policy, retired, unmanaged, left-alone, unchanged, unconfirmed, skipped, dry-run, malformed, failed; labelling webhook: labelled, not-labelled)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    webhookRefused: new Counter({
      name: 'devenv_webhook_refused_total',
      help: 'Callers the admission webhook refused for want of an accepted client certificate, by reason (handshake, name)',
      labelNames: ['reason'],
      registers: [registry],
    }),
  };
}
