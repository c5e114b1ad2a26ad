/**
 * A start's wake order (src/activities/kubernetes/wake-order.ts) as tables: the groups, the
 * note for an annotation that is not a group, when a start waits between groups; and the
 * words its reply uses for what its wait for Ready found (src/domain/readiness.ts).
 * test/control-plane.test.ts checks that a start on real controllers does what these say.
 */
import { strict as assert } from 'node:assert';
import type { ActionReport, DatabaseRef, DatabaseWait, StartReadiness } from '../src/activities/contracts';
import { planWakeOrder, waitsAfter } from '../src/activities/kubernetes/wake-order';
import { awaitingReady, describeReadiness, describeWait } from '../src/domain/readiness';

interface Item {
  kind: string;
  name: string;
  annotation?: string;
  asleep?: boolean;
}
const defaults: Record<string, number> = { StatefulSet: 0, Deployment: 1, CronJob: 1 };
const plan = (items: Item[]) =>
  planWakeOrder(items, (item) => ({
    kind: item.kind,
    metadata: {
      name: item.name,
      ...(item.annotation !== undefined ? { annotations: { 'devenv-scheduler/wake-order': item.annotation } } : {}),
    },
    defaultGroup: defaults[item.kind]!,
  }));

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
      title: 'the annotation sets the group, negative and beyond the defaults too, spaces around it ignored',
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
      title: 'a Deployment annotated into the StatefulSets group wakes with them',
      items: [
        { kind: 'Deployment', name: 'api' },
        { kind: 'Deployment', name: 'proxy', annotation: '0' },
        { kind: 'StatefulSet', name: 'db' },
      ],
      groups: [
        [0, ['proxy', 'db']],
        [1, ['api']],
      ],
    },
    {
      title: 'an invalid value is a note, and the workload keeps its default group',
      items: [
        { kind: 'Deployment', name: 'api', annotation: 'after-db' },
        { kind: 'StatefulSet', name: 'db', annotation: '1.5' },
        { kind: 'Deployment', name: 'web', annotation: '' },
        { kind: 'Deployment', name: 'huge', annotation: '10000000' },
      ],
      groups: [
        [0, ['db']],
        [1, ['api', 'web', 'huge']],
      ],
      notes: [
        /^Deployment api: devenv-scheduler\/wake-order "after-db" is not a whole number; woken in its default group 1$/,
        /^StatefulSet db: devenv-scheduler\/wake-order "1\.5" is not a whole number; woken in its default group 0$/,
        /^Deployment web: devenv-scheduler\/wake-order "" is not a whole number; woken in its default group 1$/,
        /^Deployment huge: devenv-scheduler\/wake-order "10000000" is not a whole number; woken in its default group 1$/,
      ],
    },
  ];
  for (const { title, items, groups, notes = [] } of cases) {
    it(title, function () {
      const planned = plan(items);
      assert.deepEqual(
        planned.groups.map((g) => [g.order, g.members.map((m) => m.name)]),
        groups,
      );
      assert.equal(planned.notes.length, notes.length, planned.notes.join('\n'));
      notes.forEach((pattern, i) => assert.match(planned.notes[i]!, pattern));
    });
  }

  describe('a start waits for a group only when a later one has something to wake', function () {
    const table: { title: string; items: Item[]; waits: boolean[] }[] = [
      {
        title: 'one group: never (its readiness is waited for after the start)',
        items: [{ kind: 'Deployment', name: 'api', asleep: true }],
        waits: [false],
      },
      {
        title: 'StatefulSets, then Deployments to wake: after the StatefulSets',
        items: [
          { kind: 'StatefulSet', name: 'db', asleep: true },
          { kind: 'Deployment', name: 'api', asleep: true },
        ],
        waits: [true, false],
      },
      {
        title: 'Deployments already awake (scaled up by hand while stopped): not at all',
        items: [
          { kind: 'StatefulSet', name: 'db', asleep: true },
          { kind: 'Deployment', name: 'api', asleep: false },
        ],
        waits: [false, false],
      },
      {
        title: 'three groups, the last one asleep: after each before it (one that woke nothing has nothing to wait for)',
        items: [
          { kind: 'Deployment', name: 'migrate', annotation: '-1', asleep: true },
          { kind: 'StatefulSet', name: 'db', asleep: false },
          { kind: 'Deployment', name: 'api', asleep: true },
        ],
        waits: [true, true, false],
      },
    ];
    for (const { title, items, waits } of table) {
      it(title, function () {
        const { groups } = plan(items);
        assert.deepEqual(
          groups.map((_, index) => waitsAfter(groups, index, (item) => item.asleep ?? true)),
          waits,
        );
      });
    }
  });
});

describe("a start's words on readiness", function () {
  const report = (readiness?: StartReadiness, notes?: string[]): Pick<ActionReport, 'readiness' | 'notes'> => ({
    ...(readiness ? { readiness } : {}),
    ...(notes ? { notes } : {}),
  });
  const base = { since: '2026-12-03T08:00:00.000Z', deadline: '2026-12-03T08:05:00.000Z', wokenAt: '2026-12-03T08:00:00.000Z' };
  const group = (order: number, names: string[], durationMs?: number, notReady?: { name: string; message?: string }[]) => ({
    order,
    workloads: names.map((name) => ({ kind: 'Deployment', name })),
    wokenAt: base.wokenAt,
    ...(durationMs !== undefined ? { durationMs } : {}),
    ...(notReady ? { notReady: notReady.map((w) => ({ kind: 'Deployment', ...w })) } : {}),
  });

  const cases: { title: string; report: Pick<ActionReport, 'readiness' | 'notes'>; words: string; awaiting?: boolean }[] = [
    { title: 'nothing waited for: nothing said', report: report(), words: '' },
    {
      title: 'still to be waited for: nothing said yet',
      report: report({ since: base.since, deadline: base.deadline, groups: [group(1, ['api'])] }),
      words: '',
      awaiting: true,
    },
    {
      title: 'one group, all Ready',
      report: report({ since: base.since, deadline: base.deadline, groups: [group(1, ['api', 'web'], 8_400)], durationMs: 8_900 }),
      words: '; all 2 workloads Ready after 9 s',
    },
    {
      title: 'groups in wake order, each with how long it took',
      report: report({
        since: base.since,
        deadline: base.deadline,
        groups: [group(0, ['db', 'queue'], 12_000), group(1, ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'], 36_200)],
        durationMs: 48_200,
      }),
      words: '; all 12 workloads Ready after 48 s (in wake order: group 0, 2 in 12 s; group 1, 10 in 36 s)',
    },
    {
      title: 'not Ready after the timeout: named, with what their controller says',
      report: report({
        since: base.since,
        deadline: base.deadline,
        groups: [
          group(1, ['api', 'stuck', 'web'], 300_000, [
            { name: 'stuck', message: '0 of 2 Ready, 0 available: Deployment does not have minimum availability.' },
          ]),
        ],
        durationMs: 300_400,
      }),
      words:
        '; 2 of 3 workloads Ready after 5 min; not Ready: Deployment stuck (0 of 2 Ready, 0 available: Deployment does not have minimum availability.)',
    },
    {
      title: 'interrupted by a stop: said so, not what was not Ready',
      report: report({
        since: base.since,
        deadline: base.deadline,
        groups: [group(1, ['api'])],
        durationMs: 3_100,
        interrupted: 'the stop by U2',
      }),
      words: '; the wait for Ready was interrupted by the stop by U2 after 3 s',
    },
    {
      title: 'readiness that could not be read',
      report: report({ since: base.since, deadline: base.deadline, groups: [group(1, ['api'])], durationMs: 61_000, failed: 'Forbidden' }),
      words: '; whether its 1 workloads are Ready could not be read: Forbidden',
    },
    {
      title: 'the notes of the start follow, an invalid wake-order annotation among them',
      report: report({ since: base.since, deadline: base.deadline, groups: [group(1, ['api'], 2_000)], durationMs: 2_000 }, [
        'Deployment api: devenv-scheduler/wake-order "after-db" is not a whole number; woken in its default group 1',
      ]),
      words:
        '; all 1 workloads Ready after 2 s; note: Deployment api: devenv-scheduler/wake-order "after-db" is not a whole number; woken in its default group 1',
    },
  ];
  for (const { title, report: given, words, awaiting = false } of cases) {
    it(title, function () {
      assert.equal(describeReadiness(given), words);
      assert.equal(awaitingReady(given.readiness), awaiting);
    });
  }

  describe('with a wait for the databases before it (wait-for-databases)', function () {
    const orders: DatabaseRef = { kind: 'rds-instance', id: 'db-1', region: 'eu-west-1', name: 'orders-db' };
    const audit: DatabaseRef = { kind: 'rds-cluster', id: 'audit', region: 'eu-west-1' };
    const ready = { since: base.since, deadline: base.deadline, groups: [group(1, ['api'], 2_000)], durationMs: 2_000 };
    const databaseCases: { title: string; databases: DatabaseWait; words: string }[] = [
      {
        title: 'all available: how long they took, then the workloads',
        databases: {
          since: base.since,
          databases: [orders, audit],
          durationMs: 250_000,
        },
        words: '; all 2 databases available after 4 min 10 s; all 1 workloads Ready after 2 s',
      },
      {
        title: 'one not available by the deadline: named with its state, and the workloads woken anyway',
        databases: {
          since: base.since,
          databases: [orders],
          durationMs: 300_000,
          notAvailable: [{ ...orders, state: 'starting' }],
        },
        words:
          '; 1 of 1 databases not available after 5 min: rds-instance orders-db (starting); the workloads were woken anyway; all 1 workloads Ready after 2 s',
      },
      {
        title: 'AWS could not be read: said, and the workloads woken anyway',
        databases: {
          since: base.since,
          databases: [audit],
          durationMs: 1_000,
          failed: 'AccessDenied: no',
        },
        words:
          '; whether the databases are available could not be read: AccessDenied: no; the workloads were woken anyway; all 1 workloads Ready after 2 s',
      },
    ];
    for (const { title, databases, words } of databaseCases) {
      it(title, function () {
        assert.equal(describeReadiness({ readiness: ready, databases }), words);
      });
    }
  });

  it('durations: seconds up to two minutes, then minutes and seconds', function () {
    assert.deepEqual([0, 400, 48_200, 119_000, 120_000, 125_000, 900_000].map(describeWait), [
      '0 s',
      '0 s',
      '48 s',
      '119 s',
      '2 min',
      '2 min 5 s',
      '15 min',
    ]);
  });
});
