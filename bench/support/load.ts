/**
 * HTTP load from a separate process, so the load generator does not share an event loop
 * with the server it measures (they still share the machine's cores). `runLoad` forks
 * bench/support/load-child.ts, which runs autocannon and checks every response body.
 */
import { fork } from 'node:child_process';
import path from 'node:path';

export type LoadProfile =
  /** A plain GET; 200 counts as `ok`. */
  | { kind: 'get' }
  /** `/devenv status <ns>` signed per request with a fresh timestamp; a status reply counts as `status`. */
  | { kind: 'slack-status'; secret: string; namespaces: string[]; responseUrl: string }
  /** An AdmissionReview for a namespace; an `allowed: true` answer for the request's uid counts as `allowed`. */
  | { kind: 'admission'; operation: 'UPDATE' | 'CREATE'; prefix: string };

export interface LoadOptions {
  url: string;
  connections: number;
  /** Seconds; or `amount` requests in all. */
  durationSeconds?: number;
  amount?: number;
  profile: LoadProfile;
}

export interface LoadResult {
  requests: number;
  durationSeconds: number;
  requestsPerSecond: number;
  /** Milliseconds, from autocannon's histogram. */
  latency: { mean: number; p50: number; p90: number; p99: number; p99_9: number; max: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  /** Response bodies by what they were (e.g. status, deferred, other). */
  bodies: Record<string, number>;
  /** A few bodies that were not what the profile expects. */
  unexpected: string[];
}

export function runLoad(options: LoadOptions): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(__dirname, 'load-child.ts'), [], {
      execArgv: ['-r', 'ts-node/register/transpile-only'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let answered = false;
    child.once('message', (message: { ok: true; result: LoadResult } | { ok: false; error: string }) => {
      answered = true;
      if (message.ok) resolve(message.result);
      else reject(new Error(`load generator: ${message.error}`));
      child.disconnect();
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (!answered) reject(new Error(`load generator exited with ${code} before reporting`));
    });
    child.send(options);
  });
}

export function describeLoad(result: LoadResult): string {
  const l = result.latency;
  const bodies = Object.entries(result.bodies)
    .map(([kind, count]) => `${kind} ${count}`)
    .join(', ');
  return (
    `${result.requests} requests in ${result.durationSeconds.toFixed(1)} s (${result.requestsPerSecond.toFixed(0)}/s); ` +
    `latency mean ${l.mean.toFixed(1)}, p50 ${l.p50}, p90 ${l.p90}, p99 ${l.p99}, p99.9 ${l.p99_9}, max ${l.max} ms; ` +
    `errors ${result.errors}, timeouts ${result.timeouts}, non-2xx ${result.non2xx}; bodies: ${bodies}`
  );
}
