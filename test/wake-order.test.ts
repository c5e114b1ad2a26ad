/**
 * A start's wake order (src/activities/kubernetes/wake-order.ts) as a table, and the words
 * the start's reply uses for what its wait for Ready found (src/workflows/reports.ts).
 * test/control-plane.test.ts checks that a start on real controllers does what these say.
 */
import { strict as assert } from 'node:assert';
import type { ActionReport } from '../src/activities/contracts';
import { planWakeOrder } from '../src/activities/kubernetes/wake-order';
import { describeReadiness } from '../src/workflows/reports';

interface Item {
  kind: string;
  name: string;
  annotation?: string;
}
const defaults: Record<string, number> = { StatefulSet: 0, Deployment: 1, CronJob: 1 };

describe('wake order', function () {
  const cases: { title: string; items: Item[]; groups: [number, string[]][]; notes?: RegExp[] }[] = [
    { title: 'nothing to wake: no group', items: [], groups: [] },
    {
      title: 'StatefulSets before Deployments and CronJobs by default',
      items: [
        { kind: 'Deployment', name: 'api' },
        { kind: 'StatefulSet', name: 'db' },
        { kind: 'CronJob', name: 'tick' },
      ],
      groups: [
        [0, ['db']],
        [1, ['api', 'tick']],
      ],
    },
    {
      title: 'the annotation sets the group, negative and beyond the defaults too',
      items: [
        { kind: 'Deployment', name: 'migrate', annotation: '-1' },
        { kind: 'StatefulSet', name: 'db' },
        { kind: 'Deployment', name: 'api' },
        { kind: 'StatefulSet', name: 'cache', annotation: '3' },
        { kind: 'Deployment', name: 'web', annotation: ' 3 ' },
      ],
      groups: [
        [-1, ['migrate']],
        [0, ['db']],
        [1, ['api']],
        [3, ['cache', 'web']],
      ],
    },
    {
      title: 'an invalid value is reported and the workload keeps its default group',
      items: [
        { kind: 'Deployment', name: 'api', annotation: 'first' },
        { kind: 'StatefulSet', name: 'db', annotation: '1.5' },
        { kind: 'Deployment', name: 'web', annotation: '' },
      ],
      groups: [
        [0, ['db']],
        [1, ['api', 'web']],
      ],
      notes: [
        /^Deployment api: devenv-scheduler\/wake-order is "first", not a whole number; woken in its default group 1$/,
        /^StatefulSet db: .*"1\.5".*default group 0$/,
        /^Deployment web: .*"".*default group 1$/,
      ],
    },
  ];
  for (const { title, items, groups, notes = [] } of cases) {
    it(title, function () {
      const plan = planWakeOrder(items, (item) => ({
        kind: item.kind,
        metadata: {
          name: item.name,
          ...(item.annotation !== undefined ? { annotations: { 'devenv-scheduler/wake-order': item.annotation } } : {}),
        },
        defaultGroup: defaults[item.kind]!,
      }));
      assert.deepEqual(
        plan.groups.map((g) => [g.order, g.members.map((m) => m.name)]),
        groups,
      );
      assert.equal(plan.notes.length, notes.length, plan.notes.join('\n'));
      notes.forEach((pattern, i) => assert.match(plan.notes[i]!, pattern));
    });
  }
});

describe("a start's reply on readiness", function () {
  const report = (extra: Partial<ActionReport>): ActionReport => ({
    namespace: 'dev1',
    changed: [],
    unchanged: 0,
    durationMs: 1,
    ...extra,
  });

  it('says nothing when the start waited for nothing', function () {
    assert.equal(describeReadiness(report({})), '');
  });

  it('counts the workloads and says how long each group took', function () {
    assert.equal(
      describeReadiness(
        report({
          readiness: {
            total: 12,
            durationMs: 48_200,
            groups: [
              { order: 0, workloads: 2, durationMs: 12_000, ready: true },
              { order: 1, workloads: 10, durationMs: 36_200, ready: true },
            ],
            notReady: [],
          },
        }),
      ),
      '; all 12 workloads Ready after 48 s (wake order: group 0, 2 in 12 s; group 1, 10 in 36 s)',
    );
  });

  it('names those not Ready after the timeout, with their controller message, and the notes', function () {
    assert.equal(
      describeReadiness(
        report({
          notes: ['Deployment api: devenv-scheduler/wake-order is "first", not a whole number; woken in its default group 1'],
          readiness: {
            total: 3,
            durationMs: 300_000,
            groups: [{ order: 1, workloads: 3, durationMs: 300_000, ready: false }],
            notReady: [{ kind: 'Deployment', name: 'web', message: '0 of 1 Ready: Deployment does not have minimum availability.' }],
          },
        }),
      ),
      '; 2 of 3 workloads Ready after 5 min; not Ready: Deployment web (0 of 1 Ready: Deployment does not have minimum availability.)' +
        '; note: Deployment api: devenv-scheduler/wake-order is "first", not a whole number; woken in its default group 1',
    );
  });
});
