/**
 * The deployable service: k8s/ rendered by the real kustomize (scripts/setup-kustomize.sh
 * builds it once from the Go module proxy), every object submitted to a real
 * kube-apiserver (test/support/kube.ts) with a server-side dry run, the properties a
 * reviewer checks by eye asserted on the rendered output, and the compiled build the
 * Dockerfile ships run the way the image runs it. Docker itself is not used: no base
 * image can be pulled here.
 *
 * Objects are sent exactly as rendered with fieldValidation=Strict: client-node's typed
 * models would silently drop a misspelt field (and the apiserver, by default, only warns),
 * so "accepted" would not mean "every field was understood".
 *
 * Shares the test apiserver with the other suites: it creates the cert-manager CRDs
 * (test/fixtures/cert-manager-crds.yaml) and server-side-applies the two Namespaces of
 * k8s/namespace.yaml for real (labels included, so the restricted Pod Security level is
 * enforced on the dry-run pods); everything else is a dry run and leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  loadAllYaml,
  PatchStrategy,
  type KubernetesObject,
  type V1ConfigMap,
  type V1Container,
  type V1Deployment,
  type V1NetworkPolicy,
  type V1PodDisruptionBudget,
  type V1Service,
  type V1MutatingWebhookConfiguration,
  type V1ValidatingWebhookConfiguration,
} from '@kubernetes/client-node';
import type { AllActivities } from '../src/activities/contracts';
import { createMetrics } from '../src/api/metrics';
import { loadConfig } from '../src/config';
import { shutdownBudgetMs } from '../src/shutdown';
import { imageRuntime } from './support/dockerfile';
import { testCluster, type TestCluster } from './support/kube';
import { createVendoredCrds, describeError, dryRunCreate, id, strictApi, toolBinary, yaml, type Raw } from './support/manifests';
import { recordingActivities } from './support/recording-activities';
import { devServerEnv, uniqueTaskQueue } from './support/temporal';

const ROOT = path.join(__dirname, '..');
const K8S = path.join(ROOT, 'k8s');
const FIELD_MANAGER = 'devenv-manifests-test';

/** Typed models are class instances: compare their content. */
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value));
const RBAC_KINDS = new Set(['ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding']);

/**
 * k8s/monitoring: the PodMonitor scrapes named ports of both Deployments' pods, and every
 * query of the alert rules and of the Grafana dashboard names only metrics the service
 * exports (its registry as src/api/metrics.ts builds it, with the worker role's sources).
 */
async function checkMonitoring(objects: Raw[], deployments: V1Deployment[]): Promise<void> {
  const podMonitor = objects.find((o) => o.kind === 'PodMonitor') as Raw & {
    spec: { selector: { matchLabels: Record<string, string> }; podMetricsEndpoints: { port: string }[] };
  };
  for (const deployment of deployments) {
    const labels = deployment.spec!.template.metadata!.labels!;
    for (const [key, value] of Object.entries(podMonitor.spec.selector.matchLabels))
      assert.equal(labels[key], value, `${deployment.metadata?.name}: ${key}`);
    const ports = deployment.spec!.template.spec!.containers[0]!.ports!.map((p) => p.name);
    for (const endpoint of podMonitor.spec.podMetricsEndpoints)
      assert.ok(ports.includes(endpoint.port), `${deployment.metadata?.name} declares port ${endpoint.port}`);
  }
  const metrics = createMetrics({ environmentsByPhase: async () => ({ running: 1 }), environmentsOverdue: async () => 0 });
  const exported = new Set<string>();
  for (const metric of await metrics.registry.getMetricsAsJSON()) {
    exported.add(metric.name);
    if (String(metric.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exported.add(`${metric.name}${suffix}`);
  }
  const rules = objects.find((o) => o.kind === 'PrometheusRule') as Raw & {
    spec: { groups: { rules: { alert: string; expr: string }[] }[] };
  };
  const alerts = rules.spec.groups.flatMap((g) => g.rules);
  const dashboard = JSON.parse(readFileSync(path.join(K8S, 'monitoring', 'grafana-dashboard.json'), 'utf8')) as {
    panels: { title: string; targets: { expr: string }[] }[];
  };
  const generated = objects.find((o) => o.kind === 'ConfigMap' && o.metadata?.name === 'devenv-scheduler-grafana-dashboard') as Raw & {
    data: Record<string, string>;
  };
  assert.deepEqual(JSON.parse(generated.data['devenv-scheduler.json']!), dashboard, 'the ConfigMap carries the dashboard file');
  const queries = [
    ...alerts.map((a) => ({ where: `alert ${a.alert}`, expr: a.expr })),
    ...dashboard.panels.flatMap((p) => p.targets.map((t) => ({ where: `panel "${p.title}"`, expr: t.expr }))),
  ];
  assert.ok(queries.length >= 10);
  for (const { where, expr } of queries) {
    const named = [...expr.matchAll(/\b(?:devenv|process|nodejs|temporal)_[a-z0-9_]+\b/g)].map((m) => m[0]);
    assert.ok(named.length > 0, `${where}: names no metric`);
    for (const name of named) assert.ok(exported.has(name), `${where}: ${name} is not a metric the service exports`);
  }
  for (const alert of [
    'DevenvScheduledStopFailed',
    'DevenvScheduledStopLate',
    'DevenvScheduledStopMissed',
    'DevenvWarningsNotDelivered',
    'DevenvReconcilerFailing',
    'DevenvReconcilerNotRunning',
  ]) {
    assert.ok(
      alerts.some((a) => a.alert === alert),
      alert,
    );
  }
}

describe('Deployable manifests (k8s/) and the compiled service', function () {
  this.timeout(120_000);

  /** As rendered, for the apiserver and the deep comparisons. */
  let raw: Raw[];
  /** The same objects through client-node's models, for typed assertions. */
  let typed: KubernetesObject[];

  function find<T extends KubernetesObject>(kind: string, name: string): T {
    const found = typed.find((o) => o.kind === kind && o.metadata?.name === name);
    assert.ok(found, `${kind} ${name} is not in the rendered output`);
    return found as T;
  }
  const deployments = () => typed.filter((o): o is V1Deployment => o.kind === 'Deployment');

  before(function () {
    const rendered = execFileSync(toolBinary('kustomize'), ['build', K8S], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    raw = yaml.loadAll(rendered) as Raw[];
    typed = loadAllYaml(rendered) as KubernetesObject[];
  });

  describe('kustomize build k8s/', () => {
    it('renders every object of every file kustomization.yaml lists, and no file of k8s/ is left out', () => {
      const [kustomization] = yaml.loadAll(readFileSync(path.join(K8S, 'kustomization.yaml'), 'utf8')) as { resources: string[] }[];
      const listed = kustomization!.resources;
      const files = readdirSync(K8S).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
      assert.deepEqual([...listed].sort(), files.sort());
      const written = listed.flatMap((file) => (yaml.loadAll(readFileSync(path.join(K8S, file), 'utf8')) as Raw[]).map(id));
      assert.deepEqual(raw.map(id).sort(), written.sort());
      assert.deepEqual([...new Set(raw.map((o) => o.kind))].sort(), [
        'Certificate',
        'ClusterRole',
        'ClusterRoleBinding',
        'ConfigMap',
        'Deployment',
        'Issuer',
        'MutatingWebhookConfiguration',
        'Namespace',
        'NetworkPolicy',
        'PodDisruptionBudget',
        'ResourceQuota',
        'Role',
        'RoleBinding',
        'Service',
        'ServiceAccount',
        'ValidatingAdmissionPolicy',
        'ValidatingAdmissionPolicyBinding',
        'ValidatingWebhookConfiguration',
      ]);
      assert.deepEqual(
        raw
          .filter((o) => o.kind === 'Namespace')
          .map((o) => o.metadata?.name)
          .sort(),
        ['devenv-scheduler', 'devenv-support'],
      );
    });

    it('keeps k8s/rbac.yaml and k8s/admission-policy.yaml exactly as written, grants nothing beyond them, and gives each Deployment its own identity', () => {
      const written = (file: string) => yaml.loadAll(readFileSync(path.join(K8S, file), 'utf8')) as Raw[];
      const rbac = written('rbac.yaml');
      for (const object of [...rbac, ...written('admission-policy.yaml')])
        assert.deepEqual(
          raw.find((o) => id(o) === id(object)),
          object,
          id(object),
        );
      assert.deepEqual(
        raw
          .filter((o) => RBAC_KINDS.has(o.kind!))
          .map(id)
          .sort(),
        rbac.map(id).sort(),
      );
      const serviceAccounts = rbac.filter((o) => o.kind === 'ServiceAccount');
      assert.deepEqual(serviceAccounts.map((o) => o.metadata!.name).sort(), ['devenv-scheduler-api', 'devenv-scheduler-worker']);
      const used = new Set<string>();
      for (const deployment of deployments()) {
        const component = deployment.metadata!.labels!['app.kubernetes.io/component'];
        const serviceAccount = serviceAccounts.find((o) => o.metadata!.labels?.['app.kubernetes.io/component'] === component)!;
        assert.equal(deployment.spec!.template.spec!.serviceAccountName, serviceAccount.metadata!.name, id(deployment));
        assert.equal(deployment.metadata!.namespace, serviceAccount.metadata!.namespace);
        used.add(serviceAccount.metadata!.name!);
        // The worker, the reconciler and the status table talk to the apiserver with that account's token.
        assert.notEqual(deployment.spec!.template.spec!.automountServiceAccountToken, false);
      }
      assert.equal(used.size, 2, 'one ServiceAccount per Deployment');
      // Every binding names one of them, and the API's roles grant no write.
      const subjects = rbac
        .filter((o) => o.kind?.endsWith('Binding'))
        .flatMap((o) => (o as Raw & { subjects: { kind: string; name: string; namespace: string }[] }).subjects);
      for (const subject of subjects)
        assert.ok(
          serviceAccounts.some((sa) => sa.metadata!.name === subject.name && sa.metadata!.namespace === subject.namespace),
          JSON.stringify(subject),
        );
      const apiRole = rbac.find((o) => o.kind === 'ClusterRole' && o.metadata!.name === 'devenv-scheduler-api') as Raw & {
        rules: { verbs: string[] }[];
      };
      assert.deepEqual([...new Set(apiRole.rules.flatMap((r) => r.verbs))].sort(), ['get', 'list']);
      // In the support namespace it lists pods (support list), and nothing more.
      const apiSupportRole = rbac.find((o) => o.kind === 'Role' && o.metadata!.name === 'devenv-scheduler-api-support-pods') as Raw & {
        rules: { resources: string[]; verbs: string[] }[];
      };
      assert.deepEqual(apiSupportRole.rules, [{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }]);
      // The admission policies apply to the worker's ServiceAccount, by its username.
      const worker = serviceAccounts.find((o) => o.metadata!.name === 'devenv-scheduler-worker')!;
      const username = `system:serviceaccount:${worker.metadata!.namespace}:${worker.metadata!.name}`;
      const policies = raw.filter((o) => o.kind === 'ValidatingAdmissionPolicy') as (Raw & {
        spec: { failurePolicy: string; matchConditions: { expression: string }[] };
      })[];
      assert.deepEqual(policies.map((p) => p.metadata!.name).sort(), [
        'devenv-scheduler-worker-environments-only',
        'devenv-scheduler-worker-fields',
        'devenv-scheduler-worker-gitops',
        'devenv-scheduler-worker-protected-namespaces',
        'devenv-scheduler-worker-support-pods',
      ]);
      for (const policy of policies) {
        assert.equal(policy.spec.failurePolicy, 'Fail', id(policy));
        assert.ok(
          policy.spec.matchConditions.some((c) => c.expression === `request.userInfo.username == '${username}'`),
          id(policy),
        );
        const binding = raw.find(
          (o) =>
            o.kind === 'ValidatingAdmissionPolicyBinding' &&
            (o as Raw & { spec: { policyName: string } }).spec.policyName === policy.metadata!.name,
        );
        assert.deepEqual(
          (binding as (Raw & { spec: { validationActions: string[] } }) | undefined)?.spec.validationActions,
          ['Deny'],
          id(policy),
        );
      }
    });

    it('runs every container non-root, read-only, without privilege escalation, with limits and probes', () => {
      assert.deepEqual(
        deployments()
          .map((d) => d.metadata!.name)
          .sort(),
        ['devenv-scheduler-api', 'devenv-scheduler-worker'],
      );
      for (const deployment of deployments()) {
        const pod = deployment.spec!.template.spec!;
        const containers: V1Container[] = [...(pod.initContainers ?? []), ...pod.containers];
        for (const container of containers) {
          const where = `${deployment.metadata!.name}/${container.name}`;
          const own = container.securityContext ?? {};
          const podLevel = pod.securityContext ?? {};
          assert.equal(own.runAsNonRoot ?? podLevel.runAsNonRoot, true, `${where}: runAsNonRoot`);
          assert.equal(own.runAsUser ?? podLevel.runAsUser, 10001, `${where}: runAsUser`);
          assert.equal(own.readOnlyRootFilesystem, true, `${where}: readOnlyRootFilesystem`);
          assert.equal(own.allowPrivilegeEscalation, false, `${where}: allowPrivilegeEscalation`);
          assert.notEqual(own.privileged, true, `${where}: privileged`);
          assert.deepEqual(own.capabilities?.drop, ['ALL'], `${where}: capabilities`);
          assert.equal(own.capabilities?.add, undefined, `${where}: no capability added`);
          assert.equal((own.seccompProfile ?? podLevel.seccompProfile)?.type, 'RuntimeDefault', `${where}: seccomp`);
          for (const resource of ['cpu', 'memory']) {
            assert.ok(container.resources?.requests?.[resource], `${where}: ${resource} request`);
            assert.ok(container.resources?.limits?.[resource], `${where}: ${resource} limit`);
          }
          const portOf = (port: number | string | undefined) =>
            typeof port === 'string' ? container.ports?.find((p) => p.name === port)?.containerPort : port;
          assert.equal(container.livenessProbe?.httpGet?.path, '/healthz', `${where}: liveness`);
          assert.equal(portOf(container.livenessProbe?.httpGet?.port), 3000, `${where}: liveness port`);
          assert.equal(container.readinessProbe?.httpGet?.path, '/readyz', `${where}: readiness`);
          assert.equal(portOf(container.readinessProbe?.httpGet?.port), 3000, `${where}: readiness port`);
          // A read-only root needs somewhere to write: /tmp is an emptyDir.
          const tmp = container.volumeMounts?.find((m) => m.mountPath === '/tmp');
          assert.ok(tmp && pod.volumes?.find((v) => v.name === tmp.name)?.emptyDir, `${where}: /tmp emptyDir`);
          const env = new Map((container.env ?? []).map((e) => [e.name, e]));
          assert.equal(env.get('POD_NAMESPACE')?.valueFrom?.fieldRef?.fieldPath, 'metadata.namespace', `${where}: POD_NAMESPACE`);
          assert.equal(
            env.get('SERVICE_ROLE')?.value,
            deployment.metadata!.labels!['app.kubernetes.io/component'],
            `${where}: SERVICE_ROLE`,
          );
        }
        assert.equal(pod.hostNetwork ?? false, false);
        assert.equal(pod.hostPID ?? false, false);
        assert.ok(
          pod.volumes?.every((v) => !v.hostPath),
          'no hostPath volume',
        );
      }
      const images = new Set(deployments().flatMap((d) => d.spec!.template.spec!.containers.map((c) => c.image)));
      assert.equal(images.size, 1, `one image for both Deployments: ${[...images].join(', ')}`);
      assert.equal(find<V1Deployment>('Deployment', 'devenv-scheduler-api').spec!.replicas, 2);
    });

    it('registers both webhooks so that neither can ever block the cluster', () => {
      const certificate = raw.find((o) => o.kind === 'Certificate')!;
      const labelling = find<V1MutatingWebhookConfiguration>('MutatingWebhookConfiguration', 'devenv-scheduler');
      const enrolling = find<V1ValidatingWebhookConfiguration>('ValidatingWebhookConfiguration', 'devenv-scheduler');
      for (const configuration of [labelling, enrolling]) {
        assert.equal(
          configuration.metadata!.annotations?.['cert-manager.io/inject-ca-from'],
          `${certificate.metadata!.namespace}/${certificate.metadata!.name}`,
        );
        assert.equal(configuration.webhooks?.length, 1);
        const [webhook] = configuration.webhooks!;
        assert.equal(webhook!.failurePolicy, 'Ignore');
        assert.ok(webhook!.timeoutSeconds !== undefined && webhook!.timeoutSeconds <= 5, `timeoutSeconds ${webhook!.timeoutSeconds}`);
        assert.deepEqual(webhook!.admissionReviewVersions, ['v1']);
        assert.equal(webhook!.clientConfig.caBundle, undefined, 'the CA comes from cert-manager, not from the repository');
        const excluded = webhook!.namespaceSelector?.matchExpressions?.find(
          (e) => e.key === 'kubernetes.io/metadata.name' && e.operator === 'NotIn',
        );
        for (const namespace of ['kube-system', 'kube-public', 'kube-node-lease', 'devenv-scheduler']) {
          assert.ok(excluded?.values?.includes(namespace), `${namespace} is not sent to the webhook`);
        }
      }

      // Labelling: CREATE only, of namespaces without a scheduler label; no side effects, called once.
      const [label] = labelling.webhooks!;
      assert.equal(label!.name, 'label.namespaces.devenv-scheduler.io');
      assert.equal(label!.sideEffects, 'None');
      assert.equal(label!.reinvocationPolicy, 'Never');
      assert.deepEqual(plain(label!.rules), [
        { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['namespaces'], scope: 'Cluster' },
      ]);
      assert.deepEqual(plain(label!.objectSelector), { matchExpressions: [{ key: 'scheduler', operator: 'DoesNotExist' }] });
      assert.deepEqual(plain(label!.clientConfig.service), {
        namespace: 'devenv-scheduler',
        name: 'devenv-scheduler',
        path: '/admission/namespaces/label',
        port: 443,
      });

      // Enrolling: observes create, update and delete; a dry run changes nothing.
      const [enrol] = enrolling.webhooks!;
      assert.equal(enrol!.name, 'namespaces.devenv-scheduler.io');
      assert.equal(enrol!.sideEffects, 'NoneOnDryRun');
      assert.deepEqual(plain(enrol!.rules), [
        { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE', 'DELETE'], resources: ['namespaces'], scope: 'Cluster' },
      ]);
      assert.deepEqual(plain(enrol!.clientConfig.service), {
        namespace: 'devenv-scheduler',
        name: 'devenv-scheduler',
        path: '/admission/namespaces',
        port: 443,
      });
      assert.deepEqual(plain(label!.namespaceSelector), plain(enrol!.namespaceSelector), 'both spare the same namespaces');
    });

    it('connects the pieces: webhook -> Service -> api container, Certificate -> mounted Secret, PDBs -> Deployments', () => {
      const [webhook] = find<V1ValidatingWebhookConfiguration>('ValidatingWebhookConfiguration', 'devenv-scheduler').webhooks!;
      const [label] = find<V1MutatingWebhookConfiguration>('MutatingWebhookConfiguration', 'devenv-scheduler').webhooks!;
      assert.deepEqual(
        plain({ ...label!.clientConfig.service, path: undefined }),
        plain({ ...webhook!.clientConfig.service, path: undefined }),
        'both reach the same Service port',
      );
      const target = webhook!.clientConfig.service!;
      const service = find<V1Service>('Service', target.name);
      assert.equal(service.metadata!.namespace, target.namespace);
      const api = find<V1Deployment>('Deployment', 'devenv-scheduler-api');
      const worker = find<V1Deployment>('Deployment', 'devenv-scheduler-worker');
      const matches = (selector: Record<string, string> | undefined, d: V1Deployment) =>
        Object.entries(selector ?? {}).every(([k, v]) => d.spec!.template.metadata!.labels?.[k] === v);
      assert.ok(matches(service.spec!.selector, api), 'the Service selects the api pods');
      assert.ok(!matches(service.spec!.selector, worker), 'and not the workers');
      const [container] = api.spec!.template.spec!.containers;
      const containerPort = (port: number | string | undefined) =>
        typeof port === 'string' ? container!.ports?.find((p) => p.name === port)?.containerPort : port;
      const portFor = (port: number) => containerPort(service.spec!.ports!.find((p) => p.port === port)?.targetPort);
      assert.equal(portFor(target.port!), 8443, 'webhook port 443 reaches 8443');
      assert.equal(portFor(80), 3000, 'http port 80 reaches 3000');

      const env = new Map((container!.env ?? []).map((e) => [e.name, e.value]));
      assert.equal(env.get('WEBHOOK_PORT'), '8443');
      assert.equal(env.get('API_PORT'), '3000');
      const certificate = raw.find((o) => o.kind === 'Certificate')! as Raw & { spec: { secretName: string; dnsNames: string[] } };
      assert.deepEqual(certificate.spec.dnsNames, [
        `${service.metadata!.name}.${service.metadata!.namespace}.svc`,
        `${service.metadata!.name}.${service.metadata!.namespace}.svc.cluster.local`,
      ]);
      const mount = container!.volumeMounts!.find((m) => m.mountPath === '/etc/devenv-scheduler/tls');
      assert.ok(mount?.readOnly, 'the certificate is mounted read-only');
      assert.equal(api.spec!.template.spec!.volumes!.find((v) => v.name === mount.name)?.secret?.secretName, certificate.spec.secretName);
      assert.equal(env.get('WEBHOOK_TLS_CERT'), '/etc/devenv-scheduler/tls/tls.crt');
      assert.equal(env.get('WEBHOOK_TLS_KEY'), '/etc/devenv-scheduler/tls/tls.key');
      const issuer = raw.find((o) => o.kind === 'Issuer')!;
      assert.equal((certificate.spec as unknown as { issuerRef: { name: string } }).issuerRef.name, issuer.metadata!.name);

      const pdbs = typed.filter((o): o is V1PodDisruptionBudget => o.kind === 'PodDisruptionBudget');
      const pdbFor = (d: V1Deployment) => pdbs.filter((p) => matches(p.spec!.selector!.matchLabels, d));
      assert.equal(pdbFor(api).length, 1);
      assert.equal(pdbFor(api)[0]!.spec!.minAvailable, 1);
      assert.equal(pdbFor(worker).length, 1);

      // Each pod is under exactly one NetworkPolicy, each port open only from where its callers are.
      const policies = typed.filter((o): o is V1NetworkPolicy => o.kind === 'NetworkPolicy');
      const policyOf = (d: V1Deployment) => {
        const selecting = policies.filter(
          (p) => p.metadata!.namespace === d.metadata!.namespace && matches(p.spec!.podSelector?.matchLabels, d),
        );
        assert.equal(selecting.length, 1, id(d));
        return selecting[0]!;
      };
      const opened = (policy: V1NetworkPolicy) =>
        Object.fromEntries(
          policy.spec!.ingress!.flatMap((rule) => {
            // client-node's model calls `from` `_from`.
            const from = rule._from ?? [];
            assert.ok(from.length, `${id(policy)}: a rule without "from" admits everyone`);
            return rule.ports!.map((p) => [p.port, from.map((peer) => plain(peer))]);
          }),
        );
      const httpClients = [{ namespaceSelector: { matchLabels: { 'devenv-scheduler/http-client': 'true' } }, podSelector: {} }];
      const apiPorts = opened(policyOf(api));
      assert.deepEqual(Object.keys(apiPorts).map(Number).sort(), [3000, 8443, 9464]);
      assert.deepEqual(apiPorts[3000], httpClients, 'Slack and REST from the ingress controller only');
      assert.deepEqual(apiPorts[9464], httpClients);
      const webhookPeers = apiPorts[8443] as {
        namespaceSelector?: unknown;
        podSelector?: { matchLabels?: Record<string, string> };
        ipBlock?: { cidr: string };
      }[];
      for (const peer of webhookPeers) {
        if (peer.ipBlock)
          assert.ok(
            ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'].includes(peer.ipBlock.cidr),
            `8443 from ${peer.ipBlock.cidr}: private ranges only`,
          );
        else
          assert.deepEqual(
            peer.namespaceSelector,
            { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
            'the konnectivity agents in kube-system',
          );
        assert.ok(peer.ipBlock || Object.values(peer.podSelector?.matchLabels ?? {}).includes('konnectivity-agent'), JSON.stringify(peer));
      }
      const workerPorts = opened(policyOf(worker));
      assert.deepEqual(workerPorts, { 3000: httpClients, 9464: httpClients }, 'no webhook port on the workers');

      // Support pods: every pod of the support namespace, nothing in, out only to DNS, the environments and the private ranges.
      const support = policies.filter((p) => p.metadata!.namespace === 'devenv-support');
      assert.equal(support.length, 1);
      const { spec } = support[0]!;
      assert.deepEqual(plain(spec!.podSelector), {}, 'every pod of the namespace');
      assert.deepEqual([...spec!.policyTypes!].sort(), ['Egress', 'Ingress']);
      assert.equal(spec!.ingress, undefined, 'no ingress rule: nothing may connect');
      const [dns, environments, offCluster, ...more] = spec!.egress!.map((rule) => plain(rule)) as {
        to?: Record<string, unknown>[];
        ports?: unknown[];
      }[];
      assert.deepEqual(more, []);
      assert.deepEqual(
        dns,
        {
          to: [
            {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
              podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
            },
          ],
          ports: [
            { port: 53, protocol: 'UDP' },
            { port: 53, protocol: 'TCP' },
          ],
        },
        "DNS, port 53 of the cluster's DNS pods only: port 53 to anywhere would reach the internet",
      );
      assert.equal(environments!.ports, undefined);
      assert.deepEqual(
        offCluster,
        { to: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'].map((cidr) => ({ ipBlock: { cidr } })) },
        'private ranges: no internet, no instance metadata',
      );
      const [enrolled] = environments!.to as {
        namespaceSelector: { matchExpressions: { key: string; operator: string; values: string[] }[] };
      }[];
      assert.equal(environments!.to!.length, 1);
      const expression = (key: string) => enrolled!.namespaceSelector.matchExpressions.find((e) => e.key === key);
      assert.deepEqual(
        expression('scheduler'),
        { key: 'scheduler', operator: 'In', values: ['enabled', 'disabled'] },
        'the namespaces the webhook labels as environments',
      );
      const notEnvironments = expression('kubernetes.io/metadata.name');
      assert.equal(notEnvironments?.operator, 'NotIn');
      const config = loadConfig({
        ...find<V1ConfigMap>('ConfigMap', 'devenv-scheduler-config').data,
        TEMPORAL_ADDRESS: 'temporal:7233',
        POD_NAMESPACE: 'devenv-scheduler',
      });
      assert.deepEqual(
        [...notEnvironments!.values].sort(),
        [...config.enrolment.systemNamespaces].sort(),
        'never a namespace the service does not enrol',
      );
    });

    it('keeps secret values out of the ConfigMap, and its settings load as src/config.ts reads them', () => {
      const configMap = find<V1ConfigMap>('ConfigMap', 'devenv-scheduler-config');
      const data = configMap.data ?? {};
      const known = readFileSync(path.join(ROOT, 'src/config.ts'), 'utf8');
      for (const key of Object.keys(data)) {
        assert.doesNotMatch(key, /SECRET|TOKEN|PASSWORD|ACCESS_KEY/, `${key} belongs in a Secret`);
        assert.match(known, new RegExp(`\\b${key}:`), `${key} is not a setting of src/config.ts`);
      }
      for (const key of [
        'SHUTDOWN_TIME',
        'TIME_ZONE',
        'WORKING_DAYS',
        'WARNING_OFFSETS',
        'RESET_TIME',
        'TEMPORAL_ADDRESS',
        'TEMPORAL_NAMESPACE',
        'TASK_QUEUE',
        'CLUSTER_NAME',
        'SLACK_DEFAULT_CHANNEL',
        'AWS_REGIONS',
        'SUPPORT_NAMESPACE',
        'LOG_LEVEL',
      ]) {
        assert.ok(key in data, `ConfigMap sets ${key}`);
      }
      assert.ok(data.TEMPORAL_ADDRESS, 'in a cluster TEMPORAL_ADDRESS must be set (unset starts a local dev server)');

      // The Secrets each setting may come from, with stand-ins valid as far as src/config.ts checks them.
      const SECRETS: Record<string, { name: string; optional?: boolean; standIn: string }> = {
        // Optional, so that a REST-only trial starts without a Slack app.
        SLACK_SIGNING_SECRET: { name: 'devenv-scheduler-slack', optional: true, standIn: 'test-signing-secret' },
        SLACK_BOT_TOKEN: { name: 'devenv-scheduler-slack', optional: true, standIn: 'xoxb-test' },
        // Socket Mode, when the Slack Secret holds an app token: no Ingress needed.
        SLACK_APP_TOKEN: { name: 'devenv-scheduler-slack', optional: true, standIn: 'xapp-test' },
        API_TOKENS: { name: 'devenv-scheduler-api-tokens', optional: true, standIn: 'ci:0123456789abcdef' },
        API_READ_TOKENS: { name: 'devenv-scheduler-api-tokens', optional: true, standIn: 'dashboard:0123456789abcdef' },
      };
      const started = new Map<string, ReturnType<typeof loadConfig>>();
      const fromSecrets = new Map<string, string[]>();
      for (const deployment of deployments()) {
        const [container] = deployment.spec!.template.spec!.containers;
        assert.ok(container!.envFrom?.some((s) => s.configMapRef?.name === configMap.metadata!.name));
        const env: Record<string, string> = { ...data };
        const secrets: string[] = [];
        for (const e of container!.env ?? []) {
          if (e.value !== undefined) {
            assert.doesNotMatch(e.name, /SECRET|TOKEN|PASSWORD|ACCESS_KEY/, `${e.name} as a literal value`);
            env[e.name] = e.value;
          }
          if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') env[e.name] = deployment.metadata!.namespace!;
          const ref = e.valueFrom?.secretKeyRef;
          if (ref) {
            const expected = SECRETS[e.name];
            assert.ok(expected, `${e.name}: unexpected secret`);
            assert.deepEqual(
              { name: ref.name, key: ref.key, optional: ref.optional },
              { name: expected.name, key: e.name, optional: expected.optional },
            );
            env[e.name] = expected.standIn;
            secrets.push(e.name);
          }
        }
        for (const source of container!.envFrom ?? []) {
          if (source.secretRef)
            assert.deepEqual(
              { name: source.secretRef.name, optional: source.secretRef.optional },
              { name: 'devenv-scheduler-aws', optional: true },
            );
        }
        // What the pod starts with: loadConfig throws (and the pod would exit 2) on a bad value.
        const config = loadConfig(env);
        assert.equal(config.temporal.address, data.TEMPORAL_ADDRESS);
        assert.equal(config.role, deployment.metadata!.labels!['app.kubernetes.io/component']);
        // CLUSTER_NAME is there to be set per cluster; empty, the ids and the task queue are unscoped, as before it existed.
        assert.equal(data.CLUSTER_NAME, '');
        assert.equal(config.temporal.cluster, undefined);
        assert.equal(config.temporal.taskQueue, data.TASK_QUEUE);
        started.set(config.role, config);
        fromSecrets.set(config.role, secrets.sort());
        // The kubelet waits this long after SIGTERM before it kills: a little more than the process may take to stop.
        const grace = deployment.spec!.template.spec!.terminationGracePeriodSeconds! * 1000;
        const budget = shutdownBudgetMs(config);
        assert.ok(
          grace >= budget && grace <= budget + 30_000,
          `${id(deployment)}: terminationGracePeriodSeconds ${grace / 1000} s, the process takes up to ${budget / 1000} s to stop`,
        );
      }
      assert.equal(started.get('worker')!.worker.shutdownGraceMs, 120_000);
      // The Temporal SDK's metrics port: declared by each container, and open to Prometheus in networkpolicy.yaml.
      for (const deployment of deployments()) {
        const role = deployment.metadata!.labels!['app.kubernetes.io/component']!;
        const sdkPort = started.get(role)!.temporal.metricsPort;
        assert.equal(
          deployment.spec!.template.spec!.containers[0]!.ports!.find((p) => p.name === 'sdk-metrics')?.containerPort,
          sdkPort,
          `${role} declares sdk-metrics`,
        );
        const policy = find<V1NetworkPolicy>('NetworkPolicy', role === 'api' ? 'devenv-scheduler' : `devenv-scheduler-${role}`);
        assert.ok(
          policy.spec!.ingress!.some((rule) => rule.ports?.some((p) => p.port === sdkPort)),
          `${role}: networkpolicy admits ${sdkPort}`,
        );
      }
      // The support-pod admission policy allows the image the worker runs support pods with: SUPPORT_IMAGE of this very ConfigMap.
      const supportBinding = raw.find(
        (o) => o.kind === 'ValidatingAdmissionPolicyBinding' && o.metadata?.name === 'devenv-scheduler-worker-support-pods',
      ) as (Raw & { spec: { paramRef: unknown } }) | undefined;
      assert.deepEqual(supportBinding?.spec.paramRef, {
        name: configMap.metadata!.name,
        namespace: configMap.metadata!.namespace,
        parameterNotFoundAction: 'Deny',
      });
      assert.ok(data.SUPPORT_IMAGE, 'the ConfigMap sets SUPPORT_IMAGE, which the policy reads');
      assert.equal(started.get('worker')!.support.image, data.SUPPORT_IMAGE);
      // Each role gets the secrets it uses and no other.
      assert.deepEqual(fromSecrets.get('api'), [
        'API_READ_TOKENS',
        'API_TOKENS',
        'SLACK_APP_TOKEN',
        'SLACK_BOT_TOKEN',
        'SLACK_SIGNING_SECRET',
      ]);
      assert.equal(started.get('api')!.slack.appToken, 'xapp-test', 'the api connects Socket Mode with the app token of the Slack Secret');
      assert.deepEqual(fromSecrets.get('worker'), ['SLACK_BOT_TOKEN']);
      const api = started.get('api')!;
      assert.deepEqual(
        [api.webhook.tlsCert, api.webhook.tlsKey, api.webhook.port],
        ['/etc/devenv-scheduler/tls/tls.crt', '/etc/devenv-scheduler/tls/tls.key', 8443],
      );
      // The webhook is not even called for the namespaces the service would never enrol.
      for (const kind of ['ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration']) {
        const [webhook] = find<V1ValidatingWebhookConfiguration>(kind, 'devenv-scheduler').webhooks!;
        const notSent = webhook!.namespaceSelector!.matchExpressions!.find((e) => e.operator === 'NotIn')!.values!;
        assert.deepEqual([...notSent].sort(), [...api.enrolment.systemNamespaces].sort(), kind);
      }
      // The worker may write in none of them, except the support namespace, where it creates the support pods.
      const protectedNamespaces = (
        raw.find(
          (o) => o.kind === 'ValidatingAdmissionPolicyBinding' && o.metadata?.name === 'devenv-scheduler-worker-protected-namespaces',
        ) as
          | (Raw & {
              spec: { matchResources: { namespaceSelector: { matchExpressions: { key: string; operator: string; values: string[] }[] } } };
            })
          | undefined
      )?.spec.matchResources.namespaceSelector.matchExpressions.find(
        (e) => e.key === 'kubernetes.io/metadata.name' && e.operator === 'In',
      )?.values;
      assert.deepEqual(
        [...(protectedNamespaces ?? [])].sort(),
        api.enrolment.systemNamespaces.filter((ns) => ns !== api.support.namespace).sort(),
      );
      const worker = find<V1Deployment>('Deployment', 'devenv-scheduler-worker').spec!.template.spec!.containers[0]!;
      assert.ok(
        worker.envFrom?.some((s) => s.secretRef?.name === 'devenv-scheduler-aws' && s.secretRef.optional),
        'AWS credentials are optional',
      );
    });
  });

  describe('on a real kube-apiserver (server-side dry run)', () => {
    let cluster: TestCluster;
    const api = (object: Raw) => strictApi(cluster.kubeConfig, cluster.server, object);

    const dryRun = (object: Raw) => dryRunCreate(cluster.kubeConfig, cluster.server, object, FIELD_MANAGER);

    async function rejection(object: Raw): Promise<{ code?: number; message: string }> {
      try {
        await api(object).create(object, undefined, 'All');
      } catch (error) {
        return describeError(error);
      }
      assert.fail(`${id(object)} was accepted`);
    }

    before(async function () {
      this.timeout(180_000);
      cluster = await testCluster();
      await createVendoredCrds(cluster.kubeConfig, cluster.server);
      // The namespaces for real: namespaced objects can be dry-run created only inside one.
      // Argo CD's namespace, which its install creates, holds the worker's Role for Applications.
      const argocd: Raw = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'argocd' } };
      for (const namespace of [argocd, ...raw.filter((o) => o.kind === 'Namespace')]) {
        await api(namespace).patch(namespace, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
      }
    });

    it('accepts every rendered object, every field understood', async () => {
      const refused: string[] = [];
      for (const object of raw) {
        // A CRD's kinds reach the discovery documents shortly after it is established.
        for (let attempt = 0; ; attempt++) {
          try {
            const created = await dryRun(object);
            assert.equal(created.metadata?.name, object.metadata?.name);
            break;
          } catch (error) {
            if (/Unrecognized API version and kind/.test(String(error)) && attempt < 50) {
              await new Promise((resolve) => setTimeout(resolve, 200));
              continue;
            }
            const { code, message } = describeError(error);
            refused.push(`${id(object)}: ${code ?? ''} ${message}`);
            break;
          }
        }
      }
      assert.deepEqual(refused, []);
    });

    for (const component of ['temporal-cloud', 'temporal-mtls', 'slack-ingress', 'monitoring']) {
      it(`k8s/${component}: an overlay with the component renders with the base, does what it is for, and every object is accepted`, async () => {
        const overlay = mkdtempSync(path.join(os.tmpdir(), `devenv-overlay-${component}-`));
        writeFileSync(
          path.join(overlay, 'kustomization.yaml'),
          `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ${path.relative(overlay, K8S)}\ncomponents:\n  - ${path.relative(overlay, path.join(K8S, component))}\n`,
        );
        const rendered = execFileSync(toolBinary('kustomize'), ['build', '--load-restrictor', 'LoadRestrictionsNone', overlay], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        const objects = yaml.loadAll(rendered) as Raw[];
        const deployments = (loadAllYaml(rendered) as KubernetesObject[]).filter((o): o is V1Deployment => o.kind === 'Deployment');
        assert.deepEqual(deployments.map((d) => d.metadata?.name).sort(), ['devenv-scheduler-api', 'devenv-scheduler-worker']);
        for (const deployment of deployments) {
          const pod = deployment.spec!.template.spec!;
          const env = new Map(pod.containers[0]!.env!.map((e) => [e.name, e]));
          if (component === 'slack-ingress' || component === 'monitoring') {
            assert.ok(!env.has('TEMPORAL_API_KEY') && !env.has('TEMPORAL_TLS_CLIENT_CERT_PATH'));
          } else if (component === 'temporal-cloud') {
            assert.deepEqual(
              plain(env.get('TEMPORAL_API_KEY')?.valueFrom),
              { secretKeyRef: { name: 'devenv-scheduler-temporal', key: 'TEMPORAL_API_KEY' } },
              deployment.metadata?.name,
            );
          } else {
            const mount = pod.containers[0]!.volumeMounts!.find((m) => m.name === 'temporal-tls');
            assert.equal(mount?.mountPath, '/etc/temporal-tls');
            assert.equal(mount?.readOnly, true);
            assert.equal(pod.volumes!.find((v) => v.name === 'temporal-tls')?.secret?.secretName, 'devenv-scheduler-temporal-tls');
            for (const [name, file] of [
              ['TEMPORAL_TLS_CLIENT_CERT_PATH', 'tls.crt'],
              ['TEMPORAL_TLS_CLIENT_KEY_PATH', 'tls.key'],
              ['TEMPORAL_TLS_SERVER_CA_CERT_PATH', 'ca.crt'],
            ]) {
              assert.equal(env.get(name!)?.value, `/etc/temporal-tls/${file}`, `${deployment.metadata?.name} ${name}`);
            }
            // The rest of the pod is as before: the tmp volume, the webhook's certificate on the api.
            assert.ok(pod.volumes!.some((v) => v.name === 'tmp'));
          }
        }
        if (component === 'slack-ingress') {
          type Path = { path: string; pathType: string; backend: { service: { name: string; port: { name?: string; number?: number } } } };
          const ingresses = objects.filter((o) => o.kind === 'Ingress') as (Raw & { spec: { rules: { http: { paths: Path[] } }[] } })[];
          assert.equal(ingresses.length, 1);
          const paths = ingresses[0]!.spec.rules.flatMap((rule) => rule.http.paths);
          // As an ingress controller matches: Exact is the whole path; Prefix matches whole path elements.
          const routed = (url: string) =>
            paths.some((p) =>
              p.pathType === 'Exact'
                ? url === p.path
                : p.path === '/' || url === p.path.replace(/\/$/, '') || url.startsWith(`${p.path.replace(/\/$/, '')}/`),
            );
          for (const url of ['/slack/commands', '/slack/interactions', '/slack/events'])
            assert.ok(routed(url), `${url} reaches the service`);
          for (const url of [
            '/',
            '/api/v1/environments',
            '/api/v1/environments/dev1/stop',
            '/docs',
            '/openapi.json',
            '/metrics',
            '/healthz',
            '/readyz',
            '/slack',
            '/admission/namespaces',
          ]) {
            assert.ok(!routed(url), `${url} is not exposed`);
          }
          // Each path is a route the service serves, on the Service's http port.
          const slackRoutes = [
            ...readFileSync(path.join(ROOT, 'src/api/slack/router.ts'), 'utf8').matchAll(/router\.post\('(\/slack\/[^']+)'/g),
          ].map((m) => m[1]);
          for (const p of paths) {
            assert.ok(slackRoutes.includes(p.path), `${p.path} is a route of src/api/slack/router.ts (${slackRoutes.join(', ')})`);
            assert.deepEqual(plain(p.backend.service), { name: 'devenv-scheduler', port: { name: 'http' } });
          }
          assert.ok(find<V1Service>('Service', 'devenv-scheduler').spec!.ports!.some((port) => port.name === 'http'));
        }
        if (component === 'monitoring') await checkMonitoring(objects, deployments);
        if (component === 'temporal-mtls') {
          const certificate = objects.find(
            (o) => o.kind === 'Certificate' && o.metadata?.name === 'devenv-scheduler-temporal-client',
          ) as Raw & { spec: { secretName: string; usages: string[] } };
          assert.equal(certificate.spec.secretName, 'devenv-scheduler-temporal-tls');
          assert.ok(certificate.spec.usages.includes('client auth'));
        }
        const refused: string[] = [];
        for (const object of objects) {
          try {
            await dryRun(object);
          } catch (error) {
            const { code, message } = describeError(error);
            refused.push(`${id(object)}: ${code ?? ''} ${message}`);
          }
        }
        assert.deepEqual(refused, []);
      });
    }

    it('admits both pod templates in devenv-scheduler under the restricted Pod Security Standard it enforces', async () => {
      const namespace = raw.find((o) => o.kind === 'Namespace' && o.metadata?.name === 'devenv-scheduler')!;
      assert.equal(namespace.metadata!.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');
      for (const deployment of raw.filter((o) => o.kind === 'Deployment') as (Raw & { spec: { template: { spec: unknown } } })[]) {
        const pod = {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: `${deployment.metadata!.name}-check`, namespace: 'devenv-scheduler' },
          spec: deployment.spec.template.spec,
        };
        await dryRun(pod);
      }
    });

    it('refuses broken objects, so that "accepted" means something', async () => {
      const deployment = raw.find((o) => o.kind === 'Deployment')! as Raw & {
        spec: Record<string, unknown> & { template: { spec: { containers: Record<string, unknown>[] } } };
      };
      const copy = () => JSON.parse(JSON.stringify(deployment)) as typeof deployment;

      const noSelector = copy();
      delete noSelector.spec.selector;
      const missing = await rejection(noSelector);
      assert.equal(missing.code, 422);
      assert.match(missing.message, /spec\.selector: Required value/);

      const misspelt = copy();
      misspelt.spec.template.spec.containers[0]!.securityContext = { readOnlyRootFileSystem: true };
      const unknown = await rejection(misspelt);
      assert.equal(unknown.code, 400);
      assert.match(unknown.message, /unknown field "spec\.template\.spec\.containers\[0\]\.securityContext\.readOnlyRootFileSystem"/);

      const escalating = copy();
      escalating.spec.template.spec.containers[0]!.securityContext = { allowPrivilegeEscalation: true };
      const pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'escalating', namespace: 'devenv-scheduler' },
        spec: escalating.spec.template.spec,
      };
      const forbidden = await rejection(pod);
      assert.equal(forbidden.code, 403);
      assert.match(forbidden.message, /violates PodSecurity "restricted/);

      const certificate = JSON.parse(JSON.stringify(raw.find((o) => o.kind === 'Certificate'))) as Raw & { spec: Record<string, unknown> };
      delete certificate.spec.secretName;
      const invalid = await rejection(certificate);
      assert.equal(invalid.code, 422);
      assert.match(invalid.message, /spec\.secretName: Required value/);
    });
  });

  describe('the lock file (npm ci, as CI and the image install)', () => {
    type Locked = {
      version?: string;
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
      peerDependencies?: Record<string, string>;
      peerDependenciesMeta?: Record<string, { optional?: boolean }>;
    };
    const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, Locked> };

    it('CI and both stages of the Dockerfile install with npm ci, never npm install', () => {
      const ci = readFileSync(path.join(ROOT, '.ci/run'), 'utf8');
      assert.match(ci, /^npm ci\b/m);
      for (const text of [ci, imageRuntime().text]) assert.doesNotMatch(text, /^(RUN )?npm (install|i)\b/m);
      for (const stage of imageRuntime().stages) assert.match(stage, /^RUN npm ci\b/m);
    });

    it('locks every dependency of every locked package, optional platform packages included (npm ci refuses a lock that lacks one)', () => {
      const missing: string[] = [];
      for (const [where, entry] of Object.entries(lock.packages)) {
        const optionalPeers = Object.entries(entry.peerDependenciesMeta ?? {})
          .filter(([, meta]) => meta.optional)
          .map(([name]) => name);
        const wanted = [
          ...Object.keys(entry.dependencies ?? {}),
          ...Object.keys((entry as { devDependencies?: Record<string, string> }).devDependencies ?? {}),
          ...Object.keys(entry.optionalDependencies ?? {}),
          ...Object.keys(entry.peerDependencies ?? {}).filter((n) => !optionalPeers.includes(n)),
        ];
        for (const name of wanted) {
          // Node's resolution: this package's own node_modules, then each enclosing one up to the root.
          let dir = where;
          let found = false;
          for (;;) {
            if (`${dir ? `${dir}/` : ''}node_modules/${name}` in lock.packages) {
              found = true;
              break;
            }
            if (!dir) break;
            const up = dir.lastIndexOf('/node_modules/');
            dir = up === -1 ? '' : dir.slice(0, up);
          }
          if (!found) missing.push(`${name} (wanted by ${where || 'package.json'})`);
        }
      }
      assert.deepEqual(missing, []);
    });
  });

  describe('the compiled service (npm run build, as the Dockerfile builds it)', () => {
    const outDir = (JSON.parse(readFileSync(path.join(ROOT, 'tsconfig.build.json'), 'utf8')) as { compilerOptions: { outDir: string } })
      .compilerOptions.outDir;
    const LIB = path.join(ROOT, outDir);
    const { text: dockerfile, stages, runtime, cmd, env } = imageRuntime();

    before(async function () {
      this.timeout(300_000);
      rmSync(LIB, { recursive: true, force: true });
      try {
        await promisify(execFile)('npm', ['run', 'build'], { cwd: ROOT, timeout: 280_000, maxBuffer: 16 * 1024 * 1024 });
      } catch (error) {
        const { stdout, stderr } = error as { stdout?: string; stderr?: string };
        assert.fail(`npm run build failed:\n${stdout ?? ''}${stderr ?? String(error)}`);
      }
    });

    it('Dockerfile: compiles in one stage, runs the compiled code with production dependencies only as uid 10001', () => {
      assert.ok(stages.length >= 2, 'multi-stage');
      assert.match(stages[0]!, /^RUN npm run build$/m);
      assert.match(runtime, /^RUN npm ci --omit=dev/m);
      assert.doesNotMatch(runtime, /ts-node|npm run build|^COPY src/m);
      assert.match(runtime, new RegExp(`^COPY --from=\\S+ /app/${outDir} ./${outDir}$`, 'm'));
      // Numeric, so that the kubelet can verify runAsNonRoot, and the uid k8s/ runs it as.
      assert.match(runtime, /^USER 10001(:10001)?$/m);
      // jemalloc is preloaded from a path the stage itself links (bench/scale.ts preloads the same library).
      assert.match(runtime, /apt-get install [^\n]*libjemalloc2/);
      assert.ok(
        env.LD_PRELOAD && runtime.includes(`ln -s "$(ls /usr/lib/*-linux-gnu/libjemalloc.so.2)" ${env.LD_PRELOAD}`),
        `LD_PRELOAD=${env.LD_PRELOAD}`,
      );
      assert.equal(cmd[0], 'node');
      assert.ok(existsSync(path.join(ROOT, cmd.at(-1)!)), `${cmd.at(-1)} is what the build produces`);
      const ignored = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
        .split('\n')
        .map((l) => l.trim());
      for (const entry of ['node_modules', outDir, '.git']) assert.ok(ignored.includes(entry), `.dockerignore: ${entry}`);
      for (const copied of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
        for (const source of copied[1]!.split(/\s+/)) {
          assert.ok(existsSync(path.join(ROOT, source)), `COPY ${source}`);
          assert.ok(!ignored.includes(source), `${source} is copied but .dockerignore drops it`);
        }
      }
    });

    it('exits 2 naming the bad setting, started exactly as the image CMD starts it (no ts-node)', async () => {
      const child = spawn(process.execPath, cmd.slice(1), {
        cwd: ROOT,
        env: { PATH: process.env.PATH, HOME: os.tmpdir(), NODE_ENV: 'production', SHUTDOWN_TIME: '7pm' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      assert.equal(code, 2, output);
      assert.match(output, /Invalid configuration:\n {2}- SHUTDOWN_TIME="7pm": must be a 24-hour time/);
    });

    it('requires nothing but production dependencies and Node built-ins', () => {
      const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
      const files = (readdirSync(LIB, { recursive: true }) as string[]).filter((f) => f.endsWith('.js'));
      assert.ok(files.length > 10);
      const outside = new Set<string>();
      for (const file of files) {
        for (const [, specifier] of readFileSync(path.join(LIB, file), 'utf8').matchAll(/require\("([^"]+)"\)/g)) {
          if (specifier!.startsWith('.') || isBuiltin(specifier!)) continue;
          const name = specifier!
            .split('/')
            .slice(0, specifier!.startsWith('@') ? 2 : 1)
            .join('/');
          if (!(name in pkg.dependencies)) outside.add(`${name} (${file})`);
        }
      }
      assert.deepEqual([...outside], []);
    });

    it('copies the /ui page next to the compiled API, which reads it at start-up', async () => {
      const compiled = (await import(path.join(LIB, 'api', 'ui.js'))) as typeof import('../src/api/ui');
      const router = compiled.createUiRouter();
      assert.ok(router.stack.some((layer) => layer.path === '/ui/app.js'));
    });

    it('writes the workflow bundle next to the compiled worker, which loads it instead of running webpack', async function () {
      this.timeout(120_000);
      const bundlePath = path.join(LIB, 'workflow-bundle.js');
      assert.ok(existsSync(bundlePath), 'npm run build writes lib/workflow-bundle.js');
      const code = readFileSync(bundlePath, 'utf8');
      assert.match(code, /environmentWorkflow/);
      // luxon is loaded once for every workflow, not once per workflow.
      assert.match(code, /exports\.preloadModules = function preloadModules\(\) \{\s*__webpack_require__\([^)]*"\.\/node_modules\/luxon\//);
      const compiled = (await import(path.join(LIB, 'worker.js'))) as typeof import('../src/worker');
      assert.equal(compiled.PREBUILT_WORKFLOW_BUNDLE, bundlePath);
      const env = await devServerEnv();
      const worker = await compiled.createWorker({
        connection: env.nativeConnection,
        namespace: 'default',
        taskQueue: uniqueTaskQueue('compiled-worker'),
        activities: recordingActivities(async () => Date.now()) as unknown as AllActivities,
        maxCachedWorkflows: 10,
        maxConcurrentActivities: 10,
        shutdownGraceMs: 0,
      });
      // Worker.create has loaded the bundle into the workflow sandbox; it bundled nothing itself.
      assert.equal((worker.options.workflowBundle as { codePath?: string } | undefined)?.codePath, bundlePath);
      assert.equal(worker.options.workflowsPath, undefined);
      const running = worker.run();
      worker.shutdown();
      await running;
    });
  });
});
