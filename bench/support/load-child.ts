/**
 * The load generator process (see load.ts): receives LoadOptions over IPC, runs
 * autocannon, and sends the LoadResult back. Requests are built per request, so every
 * Slack request carries a fresh timestamp and its own HMAC signature, and every
 * AdmissionReview its own uid.
 */
import { createHmac, randomUUID } from 'node:crypto';
import autocannon from 'autocannon';
import type { LoadOptions, LoadResult } from './load';
import { BENCH_NAMESPACE_ANNOTATIONS, BENCH_NAMESPACE_LABELS, benchNamespaceUid } from './namespaces';

type Context = Record<string, unknown>;

/** A Namespace as the apiserver sends it in an AdmissionReview: managedFields and all. */
function namespaceObject(name: string, annotations: Record<string, string>) {
  const time = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name,
      uid: benchNamespaceUid(name),
      resourceVersion: String(100_000 + Math.floor(Math.random() * 100_000)),
      creationTimestamp: time,
      labels: BENCH_NAMESPACE_LABELS(name),
      annotations,
      managedFields: [
        {
          manager: 'kubectl-client-side-apply',
          operation: 'Update',
          apiVersion: 'v1',
          time,
          fieldsType: 'FieldsV1',
          fieldsV1: {
            'f:metadata': {
              'f:annotations': { '.': {}, 'f:owner': {} },
              'f:labels': { '.': {}, 'f:kubernetes.io/metadata.name': {}, 'f:scheduler': {}, 'f:team': {} },
            },
          },
        },
      ],
    },
    spec: { finalizers: ['kubernetes'] },
    status: { phase: 'Active' },
  };
}

function admissionReview(operation: 'UPDATE' | 'CREATE', name: string, uid: string): string {
  const object = namespaceObject(name, BENCH_NAMESPACE_ANNOTATIONS);
  const gvk = { group: '', version: 'v1', kind: 'Namespace' };
  const gvr = { group: '', version: 'v1', resource: 'namespaces' };
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: gvk,
      resource: gvr,
      requestKind: gvk,
      requestResource: gvr,
      name,
      operation,
      userInfo: { username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] },
      // An UPDATE that changes an annotation, not the scheduler label: nothing for Temporal to do.
      object,
      oldObject:
        operation === 'UPDATE' ? { ...object, metadata: { ...object.metadata, annotations: { owner: 'someone-else@example.com' } } } : null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: operation === 'CREATE' ? 'CreateOptions' : 'UpdateOptions' },
    },
  });
}

async function run(options: LoadOptions): Promise<LoadResult> {
  const bodies: Record<string, number> = {};
  const unexpected: string[] = [];
  const count = (kind: string, body: string) => {
    bodies[kind] = (bodies[kind] ?? 0) + 1;
    if (kind === 'other' && unexpected.length < 5) unexpected.push(body.slice(0, 300));
  };
  const profile = options.profile;
  let request: autocannon.Request;
  switch (profile.kind) {
    case 'get':
      request = { method: 'GET', onResponse: (status, body) => count(status === 200 ? 'ok' : 'other', body) };
      break;
    case 'slack-status': {
      const { secret, namespaces, responseUrl } = profile;
      let next = 0;
      request = {
        method: 'POST',
        setupRequest: (req) => {
          const namespace = namespaces[next++ % namespaces.length]!;
          const body = new URLSearchParams({
            token: 'deprecated-verification-token',
            team_id: 'T0TEAM0001',
            channel_id: 'C0DEVS0001',
            user_id: 'U0ALICE0001',
            user_name: 'alice',
            command: '/devenv',
            text: `status ${namespace}`,
            response_url: responseUrl,
            trigger_id: `${next}.${Date.now()}`,
          }).toString();
          const timestamp = Math.floor(Date.now() / 1000);
          const signature = `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
          return {
            ...req,
            body,
            headers: {
              'content-type': 'application/x-www-form-urlencoded',
              'x-slack-request-timestamp': String(timestamp),
              'x-slack-signature': signature,
            },
          };
        },
        onResponse: (status, body) => {
          if (status !== 200) count('other', `${status} ${body}`);
          else if (/ is (running|stopped|stopping|starting|disabled)\b/.test(body) && body.includes('"response_type":"ephemeral"'))
            count('status', body);
          else if (body.includes('its status will follow here')) count('deferred', body);
          else count('other', body);
        },
      };
      break;
    }
    case 'admission': {
      const { operation, prefix } = profile;
      let next = 0;
      request = {
        method: 'POST',
        setupRequest: (req, context) => {
          const uid = randomUUID();
          (context as Context).uid = uid;
          const name = operation === 'CREATE' ? `${prefix}-${++next}` : `${prefix}-${++next % 50}`;
          return { ...req, body: admissionReview(operation, name, uid), headers: { 'content-type': 'application/json' } };
        },
        onResponse: (status, body, context) => {
          const uid = (context as Context).uid as string;
          const ok = status === 200 && body.includes(`"uid":"${uid}"`) && body.includes('"allowed":true');
          count(ok ? (body.includes('"warnings"') ? 'allowed-with-warning' : 'allowed') : 'other', `${status} ${body}`);
        },
      };
      break;
    }
  }
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    ...(options.amount ? { amount: options.amount } : { duration: options.durationSeconds ?? 10 }),
    requests: [request],
    timeout: 10,
  });
  const l = result.latency;
  return {
    requests: result.requests.total,
    durationSeconds: result.duration,
    requestsPerSecond: result.requests.total / result.duration,
    latency: { mean: l.mean, p50: l.p50, p90: l.p90, p99: l.p99, p99_9: l.p99_9, max: l.max },
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    bodies,
    unexpected,
  };
}

process.once('message', (options: LoadOptions) => {
  run(options).then(
    (result) => process.send!({ ok: true, result }),
    (err: unknown) => process.send!({ ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
  );
});
