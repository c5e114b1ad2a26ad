/**
 * Prometheus metrics served at /metrics. One registry per process (not prom-client's
 * global one) so tests can run several servers side by side.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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
  /** AWS stops and starts that left a resource undone (busy, unsupported, failed) or could not run at all (error). */
  awsOutcomes: Counter<'action' | 'outcome'>;
}

export interface MetricsSources {
  /** Running environments per phase, asked of Temporal's visibility at each scrape. */
  environmentsByPhase?: () => Promise<Record<string, number>>;
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
  return {
    registry,
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
