/**
 * The Helm chart (charts/devenv-scheduler), rendered by the real helm that
 * scripts/setup-helm.sh builds once from the Go module proxy: linted; compared object by
 * object with `kustomize build k8s/` (and each of k8s/'s components with the values that
 * stand for it), so the two ways to install cannot drift apart; rendered under another
 * release name and namespace, which every name, policy and selector follows; its values
 * kept in step with README.md's configuration table, src/config.ts and the values table
 * of docs/deploy.md; the example values sets (Temporal Cloud with Socket Mode, mTLS with
 * cert-manager, a REST-only trial) checked for what each is for; and every object each
 * renders submitted to the test kube-apiserver with a server-side dry run and strict field
 * validation, as test/manifests.test.ts does for k8s/.
 *
 * On the apiserver it creates the vendored cert-manager and Prometheus Operator CRDs and
 * server-side-applies the release namespace (labelled as docs/deploy.md says) and the
 * chart's support namespace for real; everything else is a dry run.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PatchStrategy } from '@kubernetes/client-node';
import { loadConfig, SETTING_NAMES, type Config } from '../src/config';
import { shutdownBudgetMs } from '../src/shutdown';
import { testCluster, type TestCluster } from './support/kube';
import { createVendoredCrds, describeError, dryRunCreate, id, strictApi, toolBinary, yaml, type Raw } from './support/manifests';
import { servingCertificate, type ServingCertificate } from './support/tls';

const ROOT = path.join(__dirname, '..');
const CHART = path.join(ROOT, 'charts', 'devenv-scheduler');
const K8S = path.join(ROOT, 'k8s');
// The release and namespace the docs install as, which give k8s/'s names.
const RELEASE = 'devenv-scheduler';
const NAMESPACE = 'devenv-scheduler';
const FIELD_MANAGER = 'devenv-helm-test';

/** The example values sets of charts/devenv-scheduler/examples, each shown in docs/deploy.md. */
const EXAMPLES = ['temporal-cloud-socket-mode', 'temporal-mtls', 'rest-only'] as const;
type Example = (typeof EXAMPLES)[number];

const chart = yaml.load(readFileSync(path.join(CHART, 'Chart.yaml'), 'utf8')) as { version: string; appVersion: string };
/** Helm's standard labels, on every object the chart renders and nowhere in k8s/. */
const HELM_LABELS: Record<string, string> = {
  'helm.sh/chart': `devenv-scheduler-${chart.version}`,
  'app.kubernetes.io/instance': RELEASE,
  'app.kubernetes.io/version': chart.appVersion,
  'app.kubernetes.io/managed-by': 'Helm',
};

function helm(args: string[]): string {
  try {
    return execFileSync(toolBinary('helm'), args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`helm ${args.join(' ')}:\n${stdout ?? ''}${stderr ?? String(error)}`, { cause: error });
  }
}

/** `helm template` of a release in a namespace, with extra arguments (--values, --set). */
function renderAs(release: string, namespace: string, ...args: string[]): Raw[] {
  return (yaml.loadAll(helm(['template', release, CHART, '--namespace', namespace, ...args])) as (Raw | null)[]).filter(
    (o): o is Raw => o !== null,
  );
}
/** As docs/deploy.md installs it. */
const render = (...args: string[]) => renderAs(RELEASE, NAMESPACE, ...args);
const exampleValues = (example: Example) => ['--values', path.join(CHART, 'examples', `${example}.yaml`)];

function kustomize(component?: string): Raw[] {
  let target = K8S;
  if (component) {
    target = mkdtempSync(path.join(os.tmpdir(), `devenv-helm-overlay-${component}-`));
    writeFileSync(
      path.join(target, 'kustomization.yaml'),
      `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ${path.relative(target, K8S)}\ncomponents:\n  - ${path.relative(target, path.join(K8S, component))}\n`,
    );
  }
  const rendered = execFileSync(toolBinary('kustomize'), ['build', '--load-restrictor', 'LoadRestrictionsNone', target], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return yaml.loadAll(rendered) as Raw[];
}

type Container = {
  name: string;
  env?: {
    name: string;
    value?: string;
    valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean }; fieldRef?: { fieldPath: string } };
  }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string; optional?: boolean } }[];
  volumeMounts?: { name: string; mountPath: string }[];
};
type Pod = {
  containers: Container[];
  volumes?: { name: string; secret?: { secretName: string } }[];
  terminationGracePeriodSeconds?: number;
};
type Deployment = Raw & {
  spec: { template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: Pod } };
};

const deployments = (objects: Raw[]) => objects.filter((o): o is Deployment => o.kind === 'Deployment');
const roleOf = (d: Deployment) => d.spec.template.metadata.labels['app.kubernetes.io/component']!;

/** Stand-ins for what Secrets hold, valid as far as src/config.ts checks them. */
const SECRET_STAND_INS: Record<string, string> = {
  SLACK_SIGNING_SECRET: 'test-signing-secret',
  SLACK_BOT_TOKEN: 'xoxb-test',
  SLACK_APP_TOKEN: 'xapp-test',
  API_TOKENS: 'ci:0123456789abcdef',
  API_READ_TOKENS: 'dashboard:0123456789abcdef',
  TEMPORAL_API_KEY: 'test-api-key',
};

interface Started {
  config: Config;
  /** Every variable the container gets, from wherever. */
  variables: string[];
  /** The variables that come from a Secret, with the Secret's name. */
  secrets: Record<string, string>;
}

let mountedFiles: ServingCertificate | undefined;

/**
 * What each Deployment's container starts with, as loadConfig reads it: the ConfigMap it
 * names, its own env, stand-ins for Secret keys, and the files of its Secret volumes
 * (a throwaway certificate in place of what cert-manager or you put there).
 */
function started(objects: Raw[]): Map<string, Started> {
  const files = (mountedFiles ??= servingCertificate('devenv-helm-test'));
  const result = new Map<string, Started>();
  for (const deployment of deployments(objects)) {
    const pod = deployment.spec.template.spec;
    const [container] = pod.containers;
    const env: Record<string, string> = {};
    const secrets: Record<string, string> = {};
    for (const source of container!.envFrom ?? []) {
      if (source.configMapRef) {
        const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata?.name === source.configMapRef!.name) as
          (Raw & { data: Record<string, string> }) | undefined;
        assert.ok(configMap, `${id(deployment)}: ConfigMap ${source.configMapRef.name} is not rendered`);
        Object.assign(env, configMap.data);
      }
    }
    const mounted = (value: string) => {
      for (const mount of container!.volumeMounts ?? []) {
        if (value.startsWith(`${mount.mountPath}/`) && pod.volumes?.find((v) => v.name === mount.name)?.secret)
          return path.join(files.dir, path.basename(value));
      }
      return value;
    };
    for (const e of container!.env ?? []) {
      if (e.value !== undefined) env[e.name] = mounted(e.value);
      else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') env[e.name] = deployment.metadata!.namespace!;
      else if (e.valueFrom?.secretKeyRef) {
        const standIn = SECRET_STAND_INS[e.name];
        assert.ok(standIn, `${id(deployment)}: ${e.name} from a Secret is not a secret setting`);
        env[e.name] = standIn;
        secrets[e.name] = e.valueFrom.secretKeyRef.name;
      }
    }
    result.set(roleOf(deployment), { config: loadConfig(env), variables: Object.keys(env).sort(), secrets });
  }
  return result;
}

/** `labels` and `matchLabels` maps, and a Service's selector, anywhere in an object. */
function labelMaps(value: unknown, found: { key: string; map: Record<string, string> }[] = []): typeof found {
  if (Array.isArray(value)) for (const item of value) labelMaps(item, found);
  else if (value && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      const isMap = child && typeof child === 'object' && !Array.isArray(child) && Object.values(child).every((v) => typeof v === 'string');
      if (isMap && ['labels', 'matchLabels', 'selector'].includes(key)) found.push({ key, map: child as Record<string, string> });
      else labelMaps(child, found);
    }
  }
  return found;
}

/**
 * The chart's object as k8s/ would have it: Helm's standard labels taken out (after
 * checking they are there, and that selectors carry only the release's instance, since a
 * selector cannot change on upgrade), and the ConfigMap checksum on pod templates.
 */
function asKustomizeWouldHaveIt(object: Raw): Raw {
  const copy = JSON.parse(JSON.stringify(object)) as Raw;
  for (const [key, value] of Object.entries(HELM_LABELS)) assert.equal(copy.metadata?.labels?.[key], value, `${id(object)}: label ${key}`);
  for (const { key, map } of labelMaps(copy)) {
    const selects = key !== 'labels';
    for (const label of Object.keys(HELM_LABELS)) {
      if (!(label in map)) continue;
      if (selects)
        assert.equal(label, 'app.kubernetes.io/instance', `${id(object)}: a selector with ${label} would break the next upgrade`);
      delete map[label];
    }
  }
  const template = (copy as Deployment).spec?.template?.metadata;
  if (copy.kind === 'Deployment' && template) {
    assert.match(template.annotations?.['checksum/config'] ?? '', /^[0-9a-f]{64}$/, `${id(object)}: checksum/config`);
    delete template.annotations!['checksum/config'];
    if (Object.keys(template.annotations!).length === 0) delete template.annotations;
  }
  return copy;
}

/**
 * A Deployment with its containers' env and mounts and its volumes in name order: a
 * kustomize patch puts what it adds first, the chart last, and neither order means
 * anything (no variable refers to another).
 */
function inNameOrder(object: Raw): Raw {
  const pod = (object as Deployment).spec?.template?.spec;
  if (object.kind !== 'Deployment' || !pod) return object;
  const byName = <T extends { name: string }>(list: T[] | undefined) => list && [...list].sort((a, b) => a.name.localeCompare(b.name));
  const copy = JSON.parse(JSON.stringify(object)) as Deployment;
  const copied = copy.spec.template.spec;
  copied.volumes = byName(copied.volumes);
  for (const container of copied.containers) {
    container.env = byName(container.env);
    container.volumeMounts = byName(container.volumeMounts);
  }
  return copy;
}

/**
 * Compares a chart render with a kustomize render, object by object, allowing only the
 * differences docs/deploy.md lists: Helm's labels, the pod templates' checksum, the
 * release namespace left to Helm, and a ConfigMap that names every setting (empty: the
 * default) yet loads to the very same configuration.
 */
function assertSameObjects(charted: Raw[], kustomized: Raw[]): void {
  const releaseNamespace = `Namespace/${NAMESPACE}`;
  assert.ok(kustomized.some((o) => id(o) === releaseNamespace));
  assert.deepEqual(
    charted.map(id).sort(),
    kustomized
      .map(id)
      .filter((i) => i !== releaseNamespace)
      .sort(),
    "the same kinds, names and namespaces (the release namespace is Helm's)",
  );
  for (const object of charted) {
    const actual = asKustomizeWouldHaveIt(object);
    const expected = kustomized.find((o) => id(o) === id(object))!;
    if (object.kind === 'ConfigMap' && object.metadata?.name === `${RELEASE}-config`) {
      const data = (actual as Raw & { data: Record<string, string> }).data;
      const base = (expected as Raw & { data: Record<string, string> }).data;
      for (const [key, value] of Object.entries(base)) assert.equal(data[key], value, `${id(object)}: ${key}`);
      const settings = (values: Record<string, string>) => loadConfig({ ...values, POD_NAMESPACE: NAMESPACE });
      assert.deepEqual(settings(data), settings(base), `${id(object)}: the settings k8s/ leaves out are at their defaults`);
      (actual as Raw & { data: unknown }).data = base;
    }
    assert.deepEqual(inNameOrder(actual), inNameOrder(expected), id(object));
  }
}

/** The variables of README.md's configuration table, `{A,B}` lists expanded. */
function readmeSettings(): string[] {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Configuration\n');
  assert.ok(start >= 0, 'README.md: no "## Configuration" section');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  const expand = (name: string): string[] => {
    const braces = /\{([^}]+)\}/.exec(name);
    return braces ? braces[1]!.split(',').flatMap((part) => expand(name.replace(braces[0], part))) : [name];
  };
  const settings = section
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .flatMap((line) => [...line.split('|')[1]!.matchAll(/`([A-Z][A-Z0-9_{},]*)`/g)].flatMap((m) => expand(m[1]!)));
  assert.ok(settings.length > 50, `README.md's table names ${settings.length} settings`);
  return [...new Set(settings)];
}

/** The values table of docs/deploy.md's Helm section: each value's path and the settings its row names. */
function documentedValues(): { path: string; settings: string[] }[] {
  const deploy = readFileSync(path.join(ROOT, 'docs', 'deploy.md'), 'utf8');
  const start = deploy.indexOf('\n## Installing with Helm\n');
  assert.ok(start >= 0, 'docs/deploy.md: no "## Installing with Helm" section');
  const section = deploy.slice(start, deploy.indexOf('\n## ', start + 1));
  return section
    .split('\n')
    .filter((line) => /^\| `[a-z][A-Za-z.]*`/.test(line))
    .flatMap((line) => {
      const [, values, sets] = line.split('|');
      const settings = [...sets!.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]!);
      return [...values!.matchAll(/`([^`]+)`/g)].map((m) => ({ path: m[1]!, settings }));
    });
}

/** Every leaf of values.yaml as a dotted path; an empty map or list is a leaf too. */
function leaves(value: unknown, prefix = ''): string[] {
  if (value && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length > 0) {
    return Object.entries(value).flatMap(([key, child]) => leaves(child, prefix ? `${prefix}.${key}` : key));
  }
  return [prefix];
}

/** Settings an install has no use for: the local Temporal dev server, which needs no TEMPORAL_ADDRESS, and the local control plane (LOCAL_CLUSTER off). */
const DEV_SERVER_ONLY = ['TEMPORAL_DEV_PORT', 'TEMPORAL_UI_PORT', 'TEMPORAL_DEV_DB_FILE', 'LOCAL_CLUSTER_DIR'];
/** Set by each Deployment itself. */
const SET_BY_EACH_DEPLOYMENT = ['SERVICE_ROLE', 'POD_NAMESPACE'];

describe('Helm chart (charts/devenv-scheduler)', function () {
  this.timeout(120_000);

  let defaults: Raw[];
  const examples = new Map<Example, Raw[]>();

  before(function () {
    defaults = render();
    for (const example of EXAMPLES) examples.set(example, render(...exampleValues(example)));
  });

  it('is rendered by the pinned helm, stamped with its version', () => {
    const script = readFileSync(path.join(ROOT, 'scripts', 'setup-helm.sh'), 'utf8');
    const pinned = /^HELM_VERSION="([^"]+)"/m.exec(script)![1];
    assert.equal(helm(['version', '--template', '{{.Version}}']), `v${pinned}`);
  });

  it('passes helm lint --strict, with the default values and with each example', () => {
    for (const args of [[], ...EXAMPLES.map(exampleValues)]) {
      assert.match(helm(['lint', '--strict', CHART, ...args]), /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  describe('the same install as k8s/', () => {
    it('renders with the default values what kustomize build k8s/ does', () => {
      assertSameObjects(defaults, kustomize());
    });

    // Each kustomize component of k8s/, and the values that stand for it.
    const COMPONENTS: Record<string, string[]> = {
      'temporal-cloud': ['--set', 'temporal.apiKey.secretName=devenv-scheduler-temporal'],
      'temporal-mtls': ['--set', 'temporal.mtls.enabled=true,temporal.mtls.certificate.enabled=true'],
      'slack-ingress': ['--set', 'slack.ingress.enabled=true'],
      argocd: ['--set', 'config.ARGOCD_NAMESPACES=argocd'],
      monitoring: [
        '--set',
        'monitoring.podMonitor.enabled=true,monitoring.prometheusRule.enabled=true,monitoring.grafanaDashboard.enabled=true',
      ],
    };
    for (const [component, values] of Object.entries(COMPONENTS)) {
      it(`renders with ${values[1]} what k8s/ with the component k8s/${component} does`, () => {
        assertSameObjects(render(...values), kustomize(component));
      });
    }

    it("follows another release name and namespace everywhere: names, the worker's username in every policy, the namespaces no webhook is sent and no worker writes in", () => {
      const objects = renderAs('acme', 'tools', '--set', 'config.SUPPORT_NAMESPACE=acme-support');
      const prefixed = (o: Raw) =>
        o.metadata!.name!.startsWith('acme-devenv-scheduler') ||
        (o.kind === 'Namespace' && o.metadata!.name === 'acme-support') ||
        o.metadata!.name === 'acme-support-pods';
      assert.deepEqual(objects.filter((o) => !prefixed(o)).map(id), [], 'every name carries the release');
      assert.deepEqual([...new Set(objects.map((o) => o.metadata!.namespace).filter(Boolean))].sort(), ['acme-support', 'tools']);
      const worker = deployments(objects).find((d) => roleOf(d) === 'worker')!;
      const username = `system:serviceaccount:tools:${(worker.spec.template.spec as Pod & { serviceAccountName: string }).serviceAccountName}`;
      assert.equal(username, 'system:serviceaccount:tools:acme-devenv-scheduler-worker');
      const policies = objects.filter((o) => o.kind === 'ValidatingAdmissionPolicy') as (Raw & {
        spec: { matchConditions: { expression: string }[] };
      })[];
      assert.equal(policies.length, 5);
      for (const policy of policies)
        assert.ok(
          policy.spec.matchConditions.some((c) => c.expression === `request.userInfo.username == '${username}'`),
          id(policy),
        );
      assert.doesNotMatch(
        JSON.stringify(objects),
        /devenv-scheduler:devenv-scheduler|devenv-support|"namespace":"devenv-scheduler"/,
        'nothing of the default release is left',
      );
      type Selector = { matchExpressions: { key: string; operator: string; values: string[] }[] };
      const binding = (name: string) =>
        objects.find(
          (o) => o.metadata?.name === `acme-devenv-scheduler-worker-${name}` && o.kind === 'ValidatingAdmissionPolicyBinding',
        ) as Raw & { spec: { matchResources?: { namespaceSelector: Selector }; paramRef?: unknown } };
      assert.deepEqual(binding('protected-namespaces').spec.matchResources!.namespaceSelector.matchExpressions[0]!.values, [
        'kube-system',
        'kube-public',
        'kube-node-lease',
        'tools',
      ]);
      assert.deepEqual(binding('support-pods').spec.paramRef, {
        name: 'acme-devenv-scheduler-config',
        namespace: 'tools',
        parameterNotFoundAction: 'Deny',
      });
      for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
        const configuration = objects.find((o) => o.kind === kind) as Raw & {
          webhooks: { clientConfig: { service: { name: string; namespace: string } }; namespaceSelector: Selector }[];
        };
        const [webhook] = configuration.webhooks;
        assert.deepEqual(
          webhook!.namespaceSelector.matchExpressions[0]!.values,
          ['kube-system', 'kube-public', 'kube-node-lease', 'tools', 'acme-support'],
          kind,
        );
        assert.deepEqual(
          [webhook!.clientConfig.service.namespace, webhook!.clientConfig.service.name],
          ['tools', 'acme-devenv-scheduler'],
          kind,
        );
        assert.equal(configuration.metadata!.annotations!['cert-manager.io/inject-ca-from'], 'tools/acme-devenv-scheduler-webhook', kind);
      }
      const certificate = objects.find((o) => o.kind === 'Certificate') as Raw & { spec: { dnsNames: string[] } };
      assert.deepEqual(certificate.spec.dnsNames, ['acme-devenv-scheduler.tools.svc', 'acme-devenv-scheduler.tools.svc.cluster.local']);
      const { config } = started(objects).get('worker')!;
      assert.equal(config.support.namespace, 'acme-support');
      assert.deepEqual([...config.enrolment.systemNamespaces].sort(), [
        'acme-support',
        'kube-node-lease',
        'kube-public',
        'kube-system',
        'tools',
      ]);
    });

    it('gives the worker Applications in each of config.ARGOCD_NAMESPACES (none by default, so no argocd namespace is needed), and in none with config.GITOPS off', () => {
      const applicationRoles = (objects: Raw[]) =>
        objects
          .filter((o) => (o.kind === 'Role' || o.kind === 'RoleBinding') && o.metadata!.name!.endsWith('-argocd-applications'))
          .map(id)
          .sort();
      assert.deepEqual(applicationRoles(defaults), []);
      assert.deepEqual(applicationRoles(render('--set', 'config.ARGOCD_NAMESPACES=argocd')), [
        'Role/argocd/devenv-scheduler-argocd-applications',
        'RoleBinding/argocd/devenv-scheduler-argocd-applications',
      ]);
      assert.deepEqual(applicationRoles(render('--set', 'config.ARGOCD_NAMESPACES=argocd-a\\, argocd-b')), [
        'Role/argocd-a/devenv-scheduler-argocd-applications',
        'Role/argocd-b/devenv-scheduler-argocd-applications',
        'RoleBinding/argocd-a/devenv-scheduler-argocd-applications',
        'RoleBinding/argocd-b/devenv-scheduler-argocd-applications',
      ]);
      assert.deepEqual(applicationRoles(render('--set', 'config.ARGOCD_NAMESPACES=argocd', '--set', 'config.GITOPS=off')), []);
    });

    it('keeps the dashboard and the alert rules of k8s/monitoring as they are there', () => {
      const dashboard = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as unknown;
      assert.deepEqual(
        dashboard(path.join(CHART, 'files', 'grafana-dashboard.json')),
        dashboard(path.join(K8S, 'monitoring', 'grafana-dashboard.json')),
      );
      const [rules] = yaml.loadAll(readFileSync(path.join(K8S, 'monitoring', 'alerts.yaml'), 'utf8')) as (Raw & { spec: unknown })[];
      assert.deepEqual(yaml.load(readFileSync(path.join(CHART, 'files', 'alert-rules.yaml'), 'utf8')), rules!.spec);
    });
  });

  describe('values and settings', () => {
    const values = yaml.load(readFileSync(path.join(CHART, 'values.yaml'), 'utf8')) as { config: Record<string, string> };
    let settings: string[];
    let documented: { path: string; settings: string[] }[];
    before(() => {
      settings = readmeSettings();
      documented = documentedValues();
    });

    it("gives every value a row in docs/deploy.md, naming settings of README.md's table", () => {
      const paths = documented.map((row) => row.path);
      const undocumented = leaves(values).filter(
        (leaf) => !leaf.startsWith('config.') && !paths.some((p) => leaf === p || leaf.startsWith(`${p}.`)),
      );
      assert.deepEqual(undocumented, [], 'values.yaml has these, docs/deploy.md does not');
      const all = leaves(values);
      assert.deepEqual(
        paths.filter((p) => !all.some((leaf) => leaf === p || leaf.startsWith(`${p}.`))),
        [],
        'docs/deploy.md has these, values.yaml does not',
      );
      assert.deepEqual(
        documented.flatMap((row) => row.settings).filter((s) => !settings.includes(s)),
        [],
        'not settings of README.md',
      );
      assert.deepEqual(
        Object.keys(values.config).filter((key) => !settings.includes(key)),
        [],
        'config keys that are not settings of README.md',
      );
    });

    it("reaches every setting of README.md's table and of src/config.ts from values", () => {
      const reachable = new Set([
        ...Object.keys(values.config),
        ...documented.flatMap((row) => row.settings),
        ...DEV_SERVER_ONLY,
        ...SET_BY_EACH_DEPLOYMENT,
      ]);
      const read = [...SETTING_NAMES]; // the Temporal connection's variables beyond these are README's
      assert.ok(read.length > 50, `src/config.ts reads ${read.length} settings`);
      assert.deepEqual(
        [...new Set([...settings, ...read])].filter((s) => !reachable.has(s)),
        [],
      );
    });

    it('sets each of those settings in a container, as the values table says', () => {
      const given = new Set(
        [defaults, ...examples.values()].flatMap((objects) => [...started(objects).values()].flatMap((s) => s.variables)),
      );
      const claimed = [...Object.keys(values.config), ...documented.flatMap((row) => row.settings), ...SET_BY_EACH_DEPLOYMENT];
      assert.deepEqual([...new Set(claimed.filter((s) => !given.has(s)))], [], 'no container gets these in any rendered example');
      for (const s of DEV_SERVER_ONLY) assert.ok(!given.has(s), s);
    });

    it('never starts the local control plane of npm start in a pod, whatever the install', () => {
      for (const [name, objects] of [['defaults', defaults], ...examples.entries()] as [string, Raw[]][]) {
        for (const [role, { config }] of started(objects)) assert.equal(config.localCluster.mode, 'off', `${name} ${role}`);
      }
    });

    it('refuses a secret setting in config (it would be stored in a ConfigMap), naming the value to use instead', () => {
      const secretSettings = [
        ...(
          /const SECRET_SETTINGS = new Set\(\[([^\]]+)\]\)/.exec(readFileSync(path.join(ROOT, 'src', 'config.ts'), 'utf8'))?.[1] ?? ''
        ).matchAll(/'([A-Z_]+)'/g),
      ].map((m) => m[1]!);
      assert.ok(secretSettings.length >= 6, `src/config.ts SECRET_SETTINGS: ${secretSettings.join(', ')}`);
      for (const setting of secretSettings) {
        assert.throws(
          () => render('--set-string', `config.${setting}=x`),
          new RegExp(`config\\.${setting}: set [a-zA-Z.]+ .*instead`),
          setting,
        );
      }
    });

    it('needs temporal.address: without it the service would start a local dev server', () => {
      assert.throws(() => render('--set', 'temporal.address='), /temporal\.address: the Temporal frontend/);
    });
  });

  describe('what each install is for', () => {
    it("stops no pod before its work is done: terminationGracePeriodSeconds covers src/shutdown.ts's budget in every render", () => {
      for (const [name, objects] of [['defaults', defaults], ...examples.entries()] as [string, Raw[]][]) {
        const configs = started(objects);
        for (const deployment of deployments(objects)) {
          const grace = deployment.spec.template.spec.terminationGracePeriodSeconds! * 1000;
          const budget = shutdownBudgetMs(configs.get(roleOf(deployment))!.config);
          assert.ok(
            grace >= budget && grace <= budget + 30_000,
            `${name} ${id(deployment)}: ${grace / 1000} s for a budget of ${budget / 1000} s`,
          );
        }
      }
    });

    it('Temporal Cloud with Socket Mode: the API key from its Secret in both, the app token on the api, no signing secret, no Ingress', () => {
      const objects = examples.get('temporal-cloud-socket-mode')!;
      const configs = started(objects);
      for (const [role, { config, secrets }] of configs) {
        assert.equal(secrets.TEMPORAL_API_KEY, 'devenv-scheduler-temporal', role);
        assert.match(config.temporal.security, /API key/, role);
        assert.equal(config.temporal.address, 'devenv.a1b2c.tmprl.cloud:7233');
        assert.equal(config.temporal.namespace, 'devenv.a1b2c');
      }
      assert.deepEqual(configs.get('api')!.secrets, {
        API_READ_TOKENS: 'devenv-scheduler-api-tokens',
        API_TOKENS: 'devenv-scheduler-api-tokens',
        SLACK_APP_TOKEN: 'devenv-scheduler-slack',
        SLACK_BOT_TOKEN: 'devenv-scheduler-slack',
        TEMPORAL_API_KEY: 'devenv-scheduler-temporal',
      });
      assert.deepEqual(configs.get('worker')!.secrets, {
        SLACK_BOT_TOKEN: 'devenv-scheduler-slack',
        TEMPORAL_API_KEY: 'devenv-scheduler-temporal',
      });
      assert.equal(configs.get('api')!.config.slack.appToken, SECRET_STAND_INS.SLACK_APP_TOKEN);
      // Chosen, so required: a missing app token stops the pod rather than leaving Slack silently off.
      const api = deployments(objects).find((d) => roleOf(d) === 'api')!;
      assert.equal(
        api.spec.template.spec.containers[0]!.env!.find((e) => e.name === 'SLACK_APP_TOKEN')!.valueFrom!.secretKeyRef!.optional,
        undefined,
      );
      assert.ok(!objects.some((o) => o.kind === 'Ingress'), 'nothing to expose');
      assert.ok(objects.some((o) => o.kind === 'PodMonitor') && objects.some((o) => o.kind === 'PrometheusRule'));
    });

    it('mTLS: the client certificate cert-manager issues is the Secret both pods mount, and loads as mTLS', () => {
      const objects = examples.get('temporal-mtls')!;
      const certificate = objects.find(
        (o) => o.kind === 'Certificate' && o.metadata?.name === 'devenv-scheduler-temporal-client',
      ) as Raw & { spec: { secretName: string; usages: string[]; issuerRef: { name: string; kind: string } } };
      assert.ok(certificate.spec.usages.includes('client auth'));
      assert.deepEqual(certificate.spec.issuerRef, { name: 'temporal-client-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' });
      for (const deployment of deployments(objects)) {
        assert.equal(
          deployment.spec.template.spec.volumes!.find((v) => v.name === 'temporal-tls')?.secret?.secretName,
          certificate.spec.secretName,
          id(deployment),
        );
      }
      for (const [role, { config }] of started(objects)) {
        assert.match(config.temporal.security, /^mTLS \(client certificate CN=devenv-helm-test\)/, role);
        assert.match(config.temporal.security, /server name temporal-frontend\.temporal\.svc/, role);
      }
      const ingress = objects.find((o) => o.kind === 'Ingress') as Raw & {
        spec: { rules: { http: { paths: { path: string; pathType: string }[] } }[] };
      };
      assert.deepEqual(
        ingress.spec.rules.flatMap((r) => r.http.paths.map((p) => `${p.pathType} ${p.path}`)),
        ['Exact /slack/commands', 'Exact /slack/interactions', 'Exact /slack/events'],
      );
    });

    it('webhooks without cert-manager: the CA from values in both configurations, the serving certificate from your Secret, nothing of cert-manager', () => {
      assert.throws(() => render('--set', 'webhook.certManager.enabled=false'), /webhook\.caBundle: the CA of the webhook's certificate/);
      const caBundle = Buffer.from(servingCertificate('devenv-helm-webhook').ca).toString('base64');
      const objects = render(
        '--set',
        `webhook.certManager.enabled=false,webhook.tlsSecretName=my-webhook-tls,webhook.caBundle=${caBundle}`,
      );
      assert.deepEqual(objects.filter((o) => o.apiVersion!.startsWith('cert-manager.io/')).map(id), []);
      for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
        const configuration = objects.find((o) => o.kind === kind) as Raw & { webhooks: { clientConfig: { caBundle?: string } }[] };
        assert.equal(configuration.metadata?.annotations?.['cert-manager.io/inject-ca-from'], undefined, kind);
        assert.equal(configuration.webhooks[0]!.clientConfig.caBundle, caBundle, kind);
      }
      const api = deployments(objects).find((d) => roleOf(d) === 'api')!;
      assert.equal(api.spec.template.spec.volumes!.find((v) => v.name === 'webhook-tls')?.secret?.secretName, 'my-webhook-tls');
    });

    it('REST-only: no Slack Secret referenced anywhere, no webhook, nothing of cert-manager, DRY_RUN on', () => {
      const objects = examples.get('rest-only')!;
      assert.doesNotMatch(JSON.stringify(objects), /devenv-scheduler-slack|SLACK_(SIGNING_SECRET|BOT_TOKEN|APP_TOKEN)/);
      assert.deepEqual(
        objects
          .filter((o) => /cert-manager|admissionregistration/.test(o.apiVersion!) && !o.kind!.startsWith('ValidatingAdmissionPolicy'))
          .map(id),
        [],
      );
      const configs = started(objects);
      for (const [role, { config }] of configs) {
        assert.equal(config.slack.signingSecret ?? config.slack.botToken ?? config.slack.appToken, undefined, role);
        assert.equal(config.dryRun, true, role);
      }
      assert.equal(configs.get('api')!.config.webhook.tlsCert, undefined, 'no webhook server');
      assert.deepEqual(Object.keys(configs.get('api')!.secrets).sort(), ['API_READ_TOKENS', 'API_TOKENS']);
      // The worker's protections do not depend on the webhook.
      assert.equal(objects.filter((o) => o.kind === 'ValidatingAdmissionPolicyBinding').length, 5);
    });
  });

  describe('on a real kube-apiserver (server-side dry run)', () => {
    let cluster: TestCluster;
    const api = (object: Raw) => strictApi(cluster.kubeConfig, cluster.server, object);

    const dryRun = (object: Raw) => dryRunCreate(cluster.kubeConfig, cluster.server, object, FIELD_MANAGER);

    before(async function () {
      this.timeout(180_000);
      // A control plane of its own: the namespaces below are created for real, and other suites'
      // own set-up (the support namespace as k8s/ ships it) must not find them there.
      cluster = await testCluster('helm');
      await createVendoredCrds(cluster.kubeConfig, cluster.server);
      // The release namespace as docs/deploy.md creates it, and the chart's support namespace, for real.
      const releaseNamespace: Raw = {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: NAMESPACE, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } },
      };
      // Argo CD's namespace, which its install creates, holds the worker's Role for Applications.
      const argocd: Raw = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'argocd' } };
      for (const namespace of [releaseNamespace, argocd, ...defaults.filter((o) => o.kind === 'Namespace')]) {
        await api(namespace).patch(namespace, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
      }
    });

    for (const name of ['defaults', ...EXAMPLES] as const) {
      it(`accepts every object rendered with ${name === 'defaults' ? 'the default values' : `examples/${name}.yaml`}, every field understood, both pods under Pod Security restricted`, async () => {
        const objects = name === 'defaults' ? defaults : examples.get(name)!;
        const refused: string[] = [];
        for (const object of objects) {
          // A CRD's kinds reach the discovery documents shortly after it is established.
          for (let attempt = 0; ; attempt++) {
            try {
              await dryRun(object);
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
        for (const deployment of deployments(objects)) {
          const pod: Raw = {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { name: `${deployment.metadata!.name}-check`, namespace: NAMESPACE },
            spec: deployment.spec.template.spec,
          };
          await dryRun(pod).catch((error: unknown) => refused.push(`${id(pod)}: ${describeError(error).message}`));
        }
        assert.deepEqual(refused, []);
      });
    }
  });
});
