/**
 * How long `npm start` takes at most to stop on SIGTERM, step by step, as src/main.ts does
 * it: the HTTP API and the webhook answer what is in flight (side by side), the webhook's
 * admitted changes reach Temporal, the worker lets its activities in flight finish, and
 * only then is the Temporal connection closed. A pod's terminationGracePeriodSeconds must
 * allow this, or the kubelet kills the process halfway (test/manifests.test.ts checks
 * k8s/api.yaml and k8s/worker.yaml against it).
 */
import { ADMISSION_DRAIN_MS } from './api/admission';
import { WEBHOOK_CLOSE_TIMEOUT_MS } from './api/webhook';
import type { Config } from './config';
import { SHUTDOWN_FORCE_AFTER_GRACE_MS } from './worker';

/** Beyond the longest wait of a request in flight: its answer is written and sent. */
const ANSWER_MARGIN_MS = 5_000;
/** Closing the Temporal connection and the process's own exit. */
const EXIT_MARGIN_MS = 5_000;

/**
 * How long the HTTP API lets requests in flight finish. Where it serves users, a REST start
 * or stop waits up to COMMAND_WAIT_SECONDS for its answer (Slack's are answered within 3 s);
 * a worker's API serves its probes only.
 */
export function httpCloseTimeoutMs(config: Pick<Config, 'role' | 'commandWaitMs'>): number {
  return (config.role === 'worker' ? 0 : config.commandWaitMs) + ANSWER_MARGIN_MS;
}

/** The longest a SIGTERM'd process of this configuration takes to exit. */
export function shutdownBudgetMs(config: Pick<Config, 'role' | 'commandWaitMs' | 'webhook' | 'worker'>): number {
  const webhook = config.role !== 'worker' && Boolean(config.webhook.tlsCert && config.webhook.tlsKey);
  const api = Math.max(httpCloseTimeoutMs(config), webhook ? WEBHOOK_CLOSE_TIMEOUT_MS : 0) + (webhook ? ADMISSION_DRAIN_MS : 0);
  const worker = config.role === 'api' ? 0 : config.worker.shutdownGraceMs + SHUTDOWN_FORCE_AFTER_GRACE_MS;
  return api + worker + EXIT_MARGIN_MS;
}
