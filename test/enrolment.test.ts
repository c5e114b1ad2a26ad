/**
 * The enrolment rules (src/domain/enrolment.ts), table-driven and without
 * servers: what a namespace is to the service, the JSON Patch that labels a new one, the
 * reconciler's plan for every namespace and environment, and the admission webhook's for
 * one.
 */
import assert from 'node:assert/strict';
import {
  createStanding,
  infrastructureMatcher,
  jsonPointerToken,
  labelPatch,
  planNamespace,
  planReconcile,
  policyFor,
  type NamespaceSnapshot,
  type PlanInput,
  type RunningEnvironment,
} from '../src/domain/enrolment';
import { DEFAULT_INFRASTRUCTURE_NAMESPACES } from '../src/config';
import type { EnvironmentPolicy } from '../src/domain/shutdown-policy';
import { weekdayPolicy } from './support/policies';

const POLICY: EnvironmentPolicy = weekdayPolicy();
const RULES = { systemNamespaces: ['kube-system', 'devenv-scheduler'], infrastructureNamespaces: DEFAULT_INFRASTRUCTURE_NAMESPACES };
const SNAPSHOT_AT = new Date('2026-12-01T10:00:00Z');
const BEFORE = '2026-12-01T09:00:00.000Z';

describe('enrolment rules (pure)', () => {
  describe('what a namespace is to the service', () => {
    const standing = createStanding(RULES);
    const cases: [string, Record<string, string> | undefined, string, boolean | undefined][] = [
      ['dev1', { scheduler: 'enabled' }, 'scheduled', true],
      ['dev1', { scheduler: 'disabled' }, 'paused', false],
      ['dev1', undefined, 'unlabelled', undefined],
      ['dev1', { team: 'a' }, 'unlabelled', undefined],
      ['dev1', { scheduler: 'yes' }, 'unknown-label', undefined],
      ['dev1', { scheduler: 'Enabled' }, 'unknown-label', undefined],
      ['dev1', { scheduler: '' }, 'unknown-label', undefined],
      // Infrastructure by name: left alone unless labelled, and then it is an environment like any other.
      ['monitoring', undefined, 'infrastructure', undefined],
      ['monitoring', { scheduler: 'enabled' }, 'scheduled', true],
      ['argocd', { scheduler: 'disabled' }, 'paused', false],
      ['default', undefined, 'infrastructure', undefined],
      ['temporal', undefined, 'infrastructure', undefined],
      ['temporal-system', undefined, 'infrastructure', undefined],
      ['cert-manager', undefined, 'infrastructure', undefined],
      ['ingress-nginx', undefined, 'infrastructure', undefined],
      ['team-ingress', undefined, 'infrastructure', undefined],
      ['istio-system', undefined, 'infrastructure', undefined],
      ['istio-ingress', undefined, 'infrastructure', undefined],
      ['flux-system', undefined, 'infrastructure', undefined],
      ['gatekeeper-system', undefined, 'infrastructure', undefined],
      ['kyverno', undefined, 'infrastructure', undefined],
      ['linkerd-viz', undefined, 'infrastructure', undefined],
      ['kube-flannel', undefined, 'infrastructure', undefined],
      ['prometheus-operator', undefined, 'infrastructure', undefined],
      ['grafana', undefined, 'infrastructure', undefined],
      // Names that only look like one.
      ['istio', undefined, 'unlabelled', undefined],
      ['my-monitoring', undefined, 'unlabelled', undefined],
      ['defaults', undefined, 'unlabelled', undefined],
      // System: never, whatever the label says.
      ['kube-system', { scheduler: 'enabled' }, 'system', undefined],
      ['devenv-scheduler', undefined, 'system', undefined],
    ];
    for (const [name, labels, kind, enabled] of cases) {
      it(`${name} ${JSON.stringify(labels ?? {})}: ${kind}`, () => {
        const s = standing(name, labels);
        assert.equal(s.kind, kind);
        assert.equal('enabled' in s ? s.enabled : undefined, enabled);
      });
    }

    it('says why, in the words the dry run prints', () => {
      assert.equal(standing('dev1', undefined).reason, 'unlabelled: label scheduler=enabled to enrol');
      assert.equal(
        standing('team-ingress', undefined).reason,
        'infrastructure namespace (INFRASTRUCTURE_NAMESPACES entry "*ingress*"): label scheduler=enabled to enrol',
      );
      assert.equal(
        standing('dev1', { scheduler: 'on' }).reason,
        'label scheduler="on" is neither "enabled" nor "disabled": not scheduled (label scheduler=enabled or disabled to enrol)',
      );
      assert.match(standing('kube-system', undefined).reason, /^system namespace/);
    });
  });

  describe('infrastructure patterns', () => {
    const cases: [string[], string, string | undefined][] = [
      [['monitoring'], 'monitoring', 'monitoring'],
      [['monitoring'], 'monitoring-2', undefined],
      [['istio-*'], 'istio-gateways', 'istio-*'],
      [['istio-*'], 'istio', undefined],
      [['*ingress*'], 'ingress', '*ingress*'],
      [['*-infra'], 'team-infra', '*-infra'],
      [['*'], 'anything', '*'],
      [['a.b'], 'axb', undefined], // only `*` is special
      [['argo*', 'argocd'], 'argocd', 'argo*'], // the first that matches
    ];
    for (const [patterns, name, matched] of cases) {
      it(`${JSON.stringify(patterns)} ${name} -> ${matched}`, () => assert.equal(infrastructureMatcher(patterns)(name), matched));
    }
  });

  describe('the label patch for a namespace being created', () => {
    const standing = createStanding(RULES);
    it('adds the labels object when there is none, the label otherwise', () => {
      assert.deepEqual(labelPatch(standing('dev1', undefined), { labels: undefined }), [
        { op: 'add', path: '/metadata/labels', value: { scheduler: 'enabled' } },
      ]);
      assert.deepEqual(labelPatch(standing('dev1', {}), { labels: {} }), [
        { op: 'add', path: '/metadata/labels/scheduler', value: 'enabled' },
      ]);
      assert.deepEqual(labelPatch(standing('dev1', { team: 'a' }), { labels: { team: 'a' } }), [
        { op: 'add', path: '/metadata/labels/scheduler', value: 'enabled' },
      ]);
      assert.deepEqual(labelPatch(standing('dev1', undefined), undefined), [
        { op: 'add', path: '/metadata', value: { labels: { scheduler: 'enabled' } } },
      ]);
    });
    it('leaves labelled, infrastructure and system namespaces as they are', () => {
      for (const [name, labels] of [
        ['dev1', { scheduler: 'disabled' }],
        ['dev1', { scheduler: 'nope' }],
        ['monitoring', {}],
        ['kube-system', {}],
      ] as const) {
        assert.equal(labelPatch(standing(name, labels), { labels }), undefined, `${name} ${JSON.stringify(labels)}`);
      }
    });
    it('escapes JSON Pointer tokens (RFC 6901)', () => {
      assert.equal(jsonPointerToken('scheduler'), 'scheduler');
      assert.equal(jsonPointerToken('devenv-scheduler.io/enabled'), 'devenv-scheduler.io~1enabled');
      assert.equal(jsonPointerToken('a~b/c'), 'a~0b~1c');
    });
  });

  describe('the reconciler plan', () => {
    const ns = (name: string, labels?: Record<string, string>, more: Partial<NamespaceSnapshot> = {}): NamespaceSnapshot => ({
      name,
      labels,
      annotations: {},
      terminating: false,
      ...more,
    });
    const env = (namespace: string, more: Partial<RunningEnvironment> = {}): RunningEnvironment => ({
      namespace,
      enabled: true,
      runId: `run-${namespace}`,
      startedAt: BEFORE,
      policy: POLICY,
      dispatchAheadMs: 10_000,
      ...more,
    });
    const plan = (input: Partial<PlanInput>) =>
      planReconcile({
        namespaces: [],
        environments: [],
        snapshotAt: SNAPSHOT_AT,
        rules: RULES,
        defaults: POLICY,
        dispatchAheadMs: 10_000,
        ...input,
      }).map((d) => ({
        namespace: d.namespace,
        action: d.action,
        ...(d.action === 'retire' ? { retire: d.retire, runId: d.runId } : {}),
        ...(d.action === 'enable' || d.action === 'disable' ? { replan: d.replan } : {}),
        reason: d.reason,
      }));

    it('enrols labelled namespaces only, and says why it leaves each of the others alone', () => {
      assert.deepEqual(
        plan({
          namespaces: [
            ns('team-b', { scheduler: 'enabled' }),
            ns('team-p', { scheduler: 'disabled' }),
            ns('team-a'),
            ns('team-c', { scheduler: 'yes' }),
            ns('monitoring'),
            ns('argocd', { scheduler: 'enabled' }),
            ns('kube-system', { scheduler: 'enabled' }),
            ns('gone-soon', { scheduler: 'enabled' }, { terminating: true }),
          ],
        }),
        [
          { namespace: 'argocd', action: 'enrol', reason: 'label scheduler=enabled' },
          { namespace: 'gone-soon', action: 'leave-alone', reason: 'namespace is being deleted' },
          {
            namespace: 'kube-system',
            action: 'leave-alone',
            reason: "system namespace (SYSTEM_NAMESPACES, the service's own or the support namespace): never enrolled",
          },
          {
            namespace: 'monitoring',
            action: 'leave-alone',
            reason: 'infrastructure namespace (INFRASTRUCTURE_NAMESPACES entry "monitoring"): label scheduler=enabled to enrol',
          },
          { namespace: 'team-a', action: 'leave-alone', reason: 'unlabelled: label scheduler=enabled to enrol' },
          { namespace: 'team-b', action: 'enrol', reason: 'label scheduler=enabled' },
          {
            namespace: 'team-c',
            action: 'leave-alone',
            reason:
              'label scheduler="yes" is neither "enabled" nor "disabled": not scheduled (label scheduler=enabled or disabled to enrol)',
          },
          { namespace: 'team-p', action: 'enrol', reason: 'label scheduler=disabled: enrolled, never stopped by the scheduler' },
        ],
      );
    });

    it('enrols with the policy the annotations ask for, and the scheduler the label asks for', () => {
      const [decision] = planReconcile({
        namespaces: [
          ns(
            'dev1',
            { scheduler: 'disabled' },
            { annotations: { 'devenv-scheduler/shutdown-time': '20:30', 'devenv-scheduler/time-zone': 'Mars/Base' } },
          ),
        ],
        environments: [],
        snapshotAt: SNAPSHOT_AT,
        rules: RULES,
        defaults: POLICY,
        dispatchAheadMs: 10_000,
      });
      assert.equal(decision!.action, 'enrol');
      assert.deepEqual(decision?.action === 'enrol' && [decision.enabled, decision.policy], [false, { ...POLICY, shutdownTime: '20:30' }]);
    });

    it('retires as unmanaged what is still there but no longer to be scheduled, as namespace-deleted what is gone or terminating, each by the run it saw', () => {
      assert.deepEqual(
        plan({
          namespaces: [
            ns('unlabelled'),
            ns('odd', { scheduler: 'maybe' }),
            ns('monitoring'),
            ns('kube-system', { scheduler: 'enabled' }),
            ns('terminating', { scheduler: 'enabled' }, { terminating: true }),
          ],
          environments: [env('unlabelled'), env('odd'), env('monitoring'), env('kube-system'), env('terminating'), env('gone')],
        }).map(({ namespace, action, retire, runId }) => ({ namespace, action, retire, runId })),
        [
          { namespace: 'gone', action: 'retire', retire: 'namespace-deleted', runId: 'run-gone' },
          { namespace: 'kube-system', action: 'retire', retire: 'unmanaged', runId: 'run-kube-system' },
          { namespace: 'monitoring', action: 'retire', retire: 'unmanaged', runId: 'run-monitoring' },
          { namespace: 'odd', action: 'retire', retire: 'unmanaged', runId: 'run-odd' },
          { namespace: 'terminating', action: 'retire', retire: 'namespace-deleted', runId: 'run-terminating' },
          { namespace: 'unlabelled', action: 'retire', retire: 'unmanaged', runId: 'run-unlabelled' },
        ],
      );
      assert.equal(
        plan({ namespaces: [ns('unlabelled')], environments: [env('unlabelled')] })[0]!.reason,
        'no longer to be managed (unlabelled: label scheduler=enabled to enrol); restored first if it is stopped',
      );
    });

    it('never retires a run that started after the namespace list was begun: it may be the environment of a namespace created since', () => {
      const lateRun = env('recreated', { startedAt: new Date(SNAPSHOT_AT.getTime() + 1).toISOString() });
      assert.deepEqual(plan({ namespaces: [], environments: [lateRun] }), [
        {
          namespace: 'recreated',
          action: 'leave-alone',
          reason: 'its environment started after the namespaces were listed: left for the next reconcile',
        },
      ]);
      const atTheInstant = env('recreated', { startedAt: SNAPSHOT_AT.toISOString() });
      assert.equal(plan({ environments: [atTheInstant] })[0]!.action, 'leave-alone');
      assert.equal(plan({ environments: [env('recreated')] })[0]!.action, 'retire');
      // Nor one whose namespace has since been unlabelled.
      assert.equal(plan({ namespaces: [ns('recreated')], environments: [lateRun] })[0]!.action, 'leave-alone');
    });

    it('switches, re-plans or leaves as they are the environments of labelled namespaces', () => {
      const older = { ...POLICY, shutdownTime: '17:00' };
      assert.deepEqual(
        plan({
          namespaces: [
            ns('as-asked', { scheduler: 'enabled' }),
            ns('switch-off', { scheduler: 'disabled' }),
            ns('switch-on', { scheduler: 'enabled' }),
            ns('switch-and-replan', { scheduler: 'enabled' }),
            ns('old-policy', { scheduler: 'enabled' }),
            ns('old-dispatch', { scheduler: 'enabled' }),
            ns('no-memo', { scheduler: 'enabled' }),
          ],
          environments: [
            env('as-asked'),
            env('switch-off'),
            env('switch-on', { enabled: false }),
            env('switch-and-replan', { enabled: false, policy: older }),
            env('old-policy', { policy: older }),
            env('old-dispatch', { dispatchAheadMs: 0 }),
            env('no-memo', { policy: null, dispatchAheadMs: null }),
          ],
        }).map(({ namespace, action, replan }) => ({ namespace, action, replan })),
        [
          { namespace: 'as-asked', action: 'unchanged', replan: undefined },
          { namespace: 'no-memo', action: 'unchanged', replan: undefined },
          { namespace: 'old-dispatch', action: 'replan', replan: undefined },
          { namespace: 'old-policy', action: 'replan', replan: undefined },
          { namespace: 'switch-and-replan', action: 'enable', replan: true },
          { namespace: 'switch-off', action: 'disable', replan: false },
          { namespace: 'switch-on', action: 'enable', replan: false },
        ],
      );
    });

    it('re-plans an environment whose wake-time annotation was set, changed or removed; not one recorded before wake-ups that has none', () => {
      const wakeAt = (wakeTime: string) => ({ annotations: { 'devenv-scheduler/wake-time': wakeTime } });
      assert.deepEqual(
        planReconcile({
          snapshotAt: SNAPSHOT_AT,
          rules: RULES,
          defaults: POLICY,
          dispatchAheadMs: 10_000,
          namespaces: [
            ns('set', { scheduler: 'enabled' }, wakeAt('08:00')),
            ns('changed', { scheduler: 'enabled' }, wakeAt('07:30')),
            ns('removed', { scheduler: 'enabled' }),
            ns('same', { scheduler: 'enabled' }, wakeAt('08:00')),
            ns('never', { scheduler: 'enabled' }),
          ],
          environments: [
            env('set'),
            env('changed', { policy: { ...POLICY, wakeTime: '08:00' } }),
            env('removed', { policy: { ...POLICY, wakeTime: '08:00' } }),
            env('same', { policy: { ...POLICY, wakeTime: '08:00' } }),
            env('never'),
          ],
        }).map((d) => [d.namespace, d.action, 'policy' in d ? d.policy.wakeTime : undefined]),
        [
          ['changed', 'replan', '07:30'],
          ['never', 'unchanged', undefined],
          ['removed', 'replan', undefined],
          ['same', 'unchanged', undefined],
          ['set', 'replan', '08:00'],
        ],
      );
    });

    it('decides once for each namespace and each environment', () => {
      const decisions = plan({ namespaces: [ns('a', { scheduler: 'enabled' }), ns('b')], environments: [env('a'), env('c')] });
      assert.deepEqual(
        decisions.map((d) => d.namespace),
        ['a', 'b', 'c'],
      );
    });
  });

  describe('the policy a namespace asks for: the wake-up', () => {
    const WAKES = { ...POLICY, wakeTime: '08:00' };
    const cases: {
      name: string;
      defaults: EnvironmentPolicy;
      annotations: Record<string, string>;
      wakeTime?: string;
      warnings: string[];
    }[] = [
      { name: 'no WAKE_TIME, no annotation: none', defaults: POLICY, annotations: {}, warnings: [] },
      {
        name: 'the annotation alone',
        defaults: POLICY,
        annotations: { 'devenv-scheduler/wake-time': '07:45' },
        wakeTime: '07:45',
        warnings: [],
      },
      { name: 'WAKE_TIME alone', defaults: WAKES, annotations: {}, wakeTime: '08:00', warnings: [] },
      {
        name: 'the annotation over WAKE_TIME',
        defaults: WAKES,
        annotations: { 'devenv-scheduler/wake-time': '06:15' },
        wakeTime: '06:15',
        warnings: [],
      },
      {
        name: '`off` turns WAKE_TIME off for the namespace',
        defaults: WAKES,
        annotations: { 'devenv-scheduler/wake-time': 'off' },
        warnings: [],
      },
      { name: '`Off`, any case', defaults: WAKES, annotations: { 'devenv-scheduler/wake-time': 'Off' }, warnings: [] },
      {
        name: 'not a time, no WAKE_TIME: ignored and said, no wake-up',
        defaults: POLICY,
        annotations: { 'devenv-scheduler/wake-time': '8am' },
        warnings: ['annotation devenv-scheduler/wake-time="8am" ignored: must be a 24-hour time such as 08:00, or off'],
      },
      {
        name: 'not a time, with WAKE_TIME: ignored and said, WAKE_TIME applies as for the other annotations',
        defaults: WAKES,
        annotations: { 'devenv-scheduler/wake-time': '25:00' },
        wakeTime: '08:00',
        warnings: ['annotation devenv-scheduler/wake-time="25:00" ignored: must be a 24-hour time such as 08:00, or off'],
      },
      {
        name: 'at the shutdown time: ignored and said, no wake-up',
        defaults: POLICY,
        annotations: { 'devenv-scheduler/wake-time': '19:00' },
        warnings: ['annotation devenv-scheduler/wake-time="19:00" ignored: must be before the shutdown time (19:00)'],
      },
      {
        name: "after the namespace's own shutdown time: ignored and said",
        defaults: POLICY,
        annotations: { 'devenv-scheduler/wake-time': '09:00', 'devenv-scheduler/shutdown-time': '08:30' },
        warnings: ['annotation devenv-scheduler/wake-time="09:00" ignored: must be before the shutdown time (08:30)'],
      },
      {
        name: "WAKE_TIME after the namespace's own shutdown time: ignored for it and said",
        defaults: WAKES,
        annotations: { 'devenv-scheduler/shutdown-time': '07:00' },
        warnings: ["WAKE_TIME=08:00 (the service's wake-up) ignored: must be before the shutdown time (07:00)"],
      },
      {
        name: 'an annotation after the shutdown time falls back to a WAKE_TIME before it',
        defaults: WAKES,
        annotations: { 'devenv-scheduler/wake-time': '20:00' },
        wakeTime: '08:00',
        warnings: ['annotation devenv-scheduler/wake-time="20:00" ignored: must be before the shutdown time (19:00)'],
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const { policy, warnings } = policyFor(c.defaults, c.annotations);
        assert.deepEqual([policy.wakeTime, 'wakeTime' in policy, warnings], [c.wakeTime, c.wakeTime !== undefined, c.warnings]);
      });
    }
  });

  describe('the wait-for-databases annotation: per namespace, off unless "true"', () => {
    const waits = (annotations: Record<string, string>) => {
      const { policy, warnings } = policyFor(POLICY, annotations);
      return [policy.waitForDatabases, 'waitForDatabases' in policy, warnings];
    };
    it('"true", any case, turns it on', () => {
      assert.deepEqual(waits({ 'devenv-scheduler/wait-for-databases': 'true' }), [true, true, []]);
      assert.deepEqual(waits({ 'devenv-scheduler/wait-for-databases': ' True ' }), [true, true, []]);
    });
    it('absent or "false": off, and absent from the policy, so environments enrolled before it plan the same', () => {
      assert.deepEqual(waits({}), [undefined, false, []]);
      assert.deepEqual(waits({ 'devenv-scheduler/wait-for-databases': 'false' }), [undefined, false, []]);
    });
    it('anything else is ignored and said', () => {
      assert.deepEqual(waits({ 'devenv-scheduler/wait-for-databases': 'yes' }), [
        undefined,
        false,
        ['annotation devenv-scheduler/wait-for-databases="yes" ignored: must be true or false'],
      ]);
    });
  });

  describe("the admission webhook's plan for one namespace, from what is stored", () => {
    const stored = (labels?: Record<string, string>, more: Partial<NamespaceSnapshot> = {}): NamespaceSnapshot => ({
      name: 'dev1',
      labels,
      annotations: {},
      terminating: false,
      ...more,
    });
    const running = (more: Partial<RunningEnvironment> = {}): RunningEnvironment => ({
      namespace: 'dev1',
      enabled: true,
      runId: 'run-1',
      startedAt: BEFORE,
      policy: POLICY,
      dispatchAheadMs: 10_000,
      ...more,
    });
    const plan = (namespace: NamespaceSnapshot | undefined, environment: RunningEnvironment | undefined) => {
      const d = planNamespace({
        name: 'dev1',
        namespace,
        environment,
        snapshotAt: SNAPSHOT_AT,
        rules: RULES,
        defaults: POLICY,
        dispatchAheadMs: 10_000,
      });
      return {
        action: d.action,
        ...(d.action === 'retire' ? { retire: d.retire, runId: d.runId } : {}),
        ...(d.action === 'enable' || d.action === 'disable' ? { enabled: d.enabled, replan: d.replan } : {}),
        ...(d.action === 'enrol' || d.action === 'replan' || d.action === 'enable' || d.action === 'disable'
          ? { shutdownTime: d.policy.shutdownTime }
          : {}),
      };
    };
    const late = new Date(SNAPSHOT_AT.getTime() + 1).toISOString();

    it('decides as the reconciler does, from the stored namespace and the running environment', () => {
      assert.deepEqual(plan(stored({ scheduler: 'enabled' }), undefined), { action: 'enrol', shutdownTime: '19:00' });
      assert.deepEqual(plan(stored({ scheduler: 'enabled' }, { annotations: { 'devenv-scheduler/shutdown-time': '20:30' } }), undefined), {
        action: 'enrol',
        shutdownTime: '20:30',
      });
      assert.deepEqual(plan(stored({ scheduler: 'enabled' }), running()), { action: 'unchanged' });
      assert.deepEqual(plan(stored({ scheduler: 'disabled' }), running()), {
        action: 'disable',
        enabled: false,
        replan: false,
        shutdownTime: '19:00',
      });
      assert.deepEqual(plan(stored({ scheduler: 'enabled' }, { annotations: { 'devenv-scheduler/shutdown-time': '21:15' } }), running()), {
        action: 'replan',
        shutdownTime: '21:15',
      });
      assert.deepEqual(plan(stored(), running()), { action: 'retire', retire: 'unmanaged', runId: 'run-1' });
      assert.deepEqual(plan(stored(), undefined), { action: 'leave-alone' });
    });

    it('retires the run it saw, as namespace-deleted, once the namespace is gone or terminating, and a run started since not at all', () => {
      assert.deepEqual(plan(undefined, running()), { action: 'retire', retire: 'namespace-deleted', runId: 'run-1' });
      assert.deepEqual(plan(stored({ scheduler: 'enabled' }, { terminating: true }), running()), {
        action: 'retire',
        retire: 'namespace-deleted',
        runId: 'run-1',
      });
      assert.deepEqual(plan(undefined, running({ startedAt: late })), { action: 'leave-alone' });
      assert.deepEqual(plan(undefined, undefined), { action: 'leave-alone' });
    });

    it('tells an environment that has recorded nothing yet both its switch and its policy, as the namespace asks for them', () => {
      const unrecorded = running({ policy: null, dispatchAheadMs: null });
      assert.deepEqual(plan(stored({ scheduler: 'enabled' }), unrecorded), {
        action: 'enable',
        enabled: true,
        replan: true,
        shutdownTime: '19:00',
      });
      assert.deepEqual(
        plan(stored({ scheduler: 'disabled' }, { annotations: { 'devenv-scheduler/shutdown-time': '18:00' } }), unrecorded),
        {
          action: 'disable',
          enabled: false,
          replan: true,
          shutdownTime: '18:00',
        },
      );
      // Retiring does not depend on what it recorded.
      assert.deepEqual(plan(stored(), unrecorded), { action: 'retire', retire: 'unmanaged', runId: 'run-1' });
      assert.deepEqual(plan(undefined, unrecorded), { action: 'retire', retire: 'namespace-deleted', runId: 'run-1' });
    });
  });
});
