/**
 * The savings ledger and its arithmetic (src/domain/savings.ts) at fixed instants: what a
 * pod requests as Kubernetes counts it, how stops, re-stops and starts make sleeps, and what
 * a period, a week and a timeline add up to, with and without prices.
 */
import assert from 'node:assert/strict';
import {
  afterRestop,
  afterStop,
  afterWake,
  bounded,
  figures,
  instancesSlept,
  LEDGER_DAYS,
  LEDGER_ENTRIES,
  parseQuantity,
  podRequests,
  savingsReport,
  stoppedInstances,
  timeline,
  weeklyReport,
  weekStart,
  type Sleep,
} from '../src/domain/savings';

const GI = 1024 ** 3;
const MI = 1024 ** 2;
const at = (iso: string) => new Date(iso);

describe('savings', function () {
  describe('quantities', function () {
    // [quantity, in base units, in thousandths], both rounded up as the apiserver does.
    const cases: [unknown, number | undefined, number | undefined][] = [
      ['250m', 1, 250],
      ['1', 1, 1000],
      ['1.5', 2, 1500],
      ['.5', 1, 500],
      ['0.1', 1, 100],
      ['1.001', 2, 1001],
      ['2.011', 3, 2011],
      ['9m', 1, 9],
      ['51m', 1, 51],
      ['1005m', 2, 1005],
      ['3999m', 4, 3999],
      ['100u', 1, 1],
      ['1n', 1, 1],
      ['0', 0, 0],
      ['512Mi', 512 * MI, 512 * MI * 1000],
      ['1.5Gi', 1.5 * GI, 1.5 * GI * 1000],
      ['1Gi', GI, GI * 1000],
      ['1G', 1e9, 1e12],
      ['128k', 128_000, 128_000_000],
      ['1e3', 1000, 1_000_000],
      ['1.5e-3', 1, 2],
      ['12E-1', 2, 1200],
      [2, 2, 2000],
      [0.25, 1, 250],
      ['', undefined, undefined],
      ['abc', undefined, undefined],
      ['1Zi', undefined, undefined],
      ['-1', undefined, undefined],
      ['1e999', undefined, undefined],
      [undefined, undefined, undefined],
    ];
    for (const [text, units, milli] of cases) {
      it(`${JSON.stringify(text)} is ${units}, or ${milli} thousandths`, function () {
        assert.equal(parseQuantity(text), units);
        assert.equal(parseQuantity(text, { milli: true }), milli);
      });
    }

    it('counts CPU requests in millicores exactly, with no drift from a float', function () {
      for (const m of [9, 51, 102, 150, 201, 1001, 1005, 2011, 3999]) {
        assert.equal(podRequests({ containers: [{ resources: { requests: { cpu: `${m}m` } } }] }).cpuMillicores, m, `${m}m`);
      }
      assert.equal(
        podRequests({ containers: [{ resources: { requests: { cpu: '0.201' } } }, { resources: { requests: { cpu: '1.005' } } }] })
          .cpuMillicores,
        1206,
      );
    });
  });

  describe('pod requests as Kubernetes computes them', function () {
    const c = (cpu?: string, memory?: string, extra: object = {}) => ({
      resources: { requests: { ...(cpu ? { cpu } : {}), ...(memory ? { memory } : {}) } },
      ...extra,
    });
    const cases: { name: string; spec: Parameters<typeof podRequests>[0]; cpu: number; memory: number }[] = [
      { name: 'no template', spec: undefined, cpu: 0, memory: 0 },
      { name: 'app containers add up', spec: { containers: [c('250m', '256Mi'), c('500m', '1Gi')] }, cpu: 750, memory: 256 * MI + GI },
      {
        name: 'a limit stands for a missing request',
        spec: { containers: [{ resources: { limits: { cpu: '2', memory: '1Gi' } } }] },
        cpu: 2000,
        memory: GI,
      },
      {
        name: 'a larger init container wins',
        spec: { initContainers: [c('2', '64Mi')], containers: [c('500m', '512Mi')] },
        cpu: 2000,
        memory: 512 * MI,
      },
      {
        name: 'sidecars run beside the app containers and the init containers after them',
        spec: {
          initContainers: [c('100m', '64Mi', { restartPolicy: 'Always' }), c('1', '128Mi')],
          containers: [c('200m', '256Mi')],
        },
        cpu: 1100,
        memory: 320 * MI,
      },
      {
        name: 'overhead is added',
        spec: { containers: [c('100m', '100Mi')], overhead: { cpu: '250m', memory: '120Mi' } },
        cpu: 350,
        memory: 220 * MI,
      },
    ];
    for (const { name, spec, cpu, memory } of cases) {
      it(name, function () {
        assert.deepEqual(podRequests(spec), { cpuMillicores: cpu, memoryBytes: memory });
      });
    }
  });

  describe('instances a stop stopped', function () {
    it('counts EC2 and RDS instances it changed, and the members of the Aurora clusters it stopped, by type', function () {
      const r = (kind: string, id: string, outcome: string, extra: object = {}) => ({ kind, id, region: 'eu-west-1', outcome, ...extra });
      assert.deepEqual(
        stoppedInstances([
          r('ec2-instance', 'i-1', 'changed', { instanceType: 't3.medium' }),
          r('ec2-instance', 'i-2', 'changed', { instanceType: 't3.medium' }),
          r('ec2-instance', 'i-3', 'already', { instanceType: 't3.large' }),
          r('rds-instance', 'db-1', 'changed', { instanceType: 'db.t3.micro' }),
          r('rds-cluster', 'aurora', 'changed'),
          r('rds-instance', 'aurora-1', 'excluded', { instanceType: 'db.r6g.large', cluster: 'aurora' }),
          r('rds-instance', 'other-1', 'excluded', { instanceType: 'db.r6g.large', cluster: 'other' }),
          r('ec2-instance', 'i-4', 'failed', { instanceType: 't3.medium' }),
        ]),
        { 'ec2 t3.medium': 2, 'rds db.t3.micro': 1, 'rds db.r6g.large': 1 },
      );
    });
  });

  describe('the ledger', function () {
    const slept = { cpuMillicores: 1000, memoryBytes: 2 * GI, instances: { 'ec2 t3.medium': 1 } };

    it('a stop opens a sleep and the start ends it', function () {
      const stopped = afterStop([], at('2026-12-01T18:00:00Z'), slept);
      assert.deepEqual(stopped, [{ from: '2026-12-01T18:00:00.000Z', to: null, ...slept }]);
      assert.deepEqual(afterWake(stopped, at('2026-12-02T08:00:00Z')), [{ ...stopped[0], to: '2026-12-02T08:00:00.000Z' }]);
    });

    it('a second stop while asleep continues the sleep, each figure the larger, never the sum', function () {
      const first = afterStop([], at('2026-12-01T18:00:00Z'), slept);
      const again = afterStop(first, at('2026-12-01T20:00:00Z'), {
        cpuMillicores: 250,
        memoryBytes: 4 * GI,
        instances: { 'ec2 t3.medium': 1, 'rds db.t3.micro': 1 },
      });
      assert.equal(again.length, 1);
      assert.deepEqual(again[0], {
        from: '2026-12-01T18:00:00.000Z',
        to: null,
        cpuMillicores: 1000,
        memoryBytes: 4 * GI,
        instances: { 'ec2 t3.medium': 1, 'rds db.t3.micro': 1 },
      });
    });

    it('a second stop that stopped another instance of a type counts both; the same instance again counts once', function () {
      const ec2 = (id: string) => ({ kind: 'ec2-instance', id, region: 'eu-west-1', outcome: 'changed', instanceType: 't3.medium' });
      const none = { cpuMillicores: 0, memoryBytes: 0 };
      const first = afterStop([], at('2026-12-01T18:00:00Z'), { ...none, ...instancesSlept([ec2('i-1')]) });
      // The stop could not stop i-2; the AWS re-check does.
      const again = afterStop(first, at('2026-12-01T19:00:00Z'), { ...none, ...instancesSlept([ec2('i-2')]) });
      assert.equal(again.length, 1);
      assert.deepEqual(again[0]!.instances, { 'ec2 t3.medium': 2 });
      const thrice = afterStop(again, at('2026-12-01T20:00:00Z'), { ...none, ...instancesSlept([ec2('i-1')]) });
      assert.deepEqual(thrice[0]!.instances, { 'ec2 t3.medium': 2 });
      // A sleep recorded before ids were kept: the larger count.
      const old: Sleep[] = [{ from: '2026-12-01T18:00:00.000Z', to: null, ...none, instances: { 'ec2 t3.medium': 3 } }];
      assert.deepEqual(afterStop(old, at('2026-12-01T19:00:00Z'), { ...none, ...instancesSlept([ec2('i-2')]) })[0]!.instances, {
        'ec2 t3.medium': 3,
      });
    });

    it('a drift re-stop of workloads created since adds them to the same sleep', function () {
      const first = afterStop([], at('2026-12-01T18:00:00Z'), slept);
      const extended = afterRestop(first, at('2026-12-01T22:00:00Z'), { cpuMillicores: 500, memoryBytes: GI, instances: {} });
      assert.equal(extended.length, 1);
      assert.equal(extended[0]!.cpuMillicores, 1500);
      assert.equal(extended[0]!.memoryBytes, 3 * GI);
      assert.equal(extended[0]!.from, '2026-12-01T18:00:00.000Z');
    });

    it('a start with no sleep open changes nothing', function () {
      assert.deepEqual(afterWake([], at('2026-12-02T08:00:00Z')), []);
    });

    it(`keeps ${LEDGER_DAYS} days and at most ${LEDGER_ENTRIES} sleeps; one still open stays whatever its age`, function () {
      const old: Sleep = { from: '2026-09-01T18:00:00.000Z', to: '2026-09-02T08:00:00.000Z', ...slept };
      const open: Sleep = { from: '2026-09-03T18:00:00.000Z', to: null, ...slept };
      assert.deepEqual(bounded([old, open], at('2026-12-01T00:00:00Z')), [open]);
      let ledger: Sleep[] = [];
      const start = at('2026-12-01T00:00:00Z').getTime();
      for (let i = 0; i < LEDGER_ENTRIES + 10; i++) {
        ledger = afterStop(ledger, new Date(start + i * 60_000), slept);
        ledger = afterWake(ledger, new Date(start + i * 60_000 + 30_000));
      }
      assert.equal(ledger.length, LEDGER_ENTRIES);
      assert.equal(ledger[0]!.from, new Date(start + 10 * 60_000).toISOString());
    });

    it('keeps a sleep bounded however many instance types a stop finds', function () {
      const instances = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`ec2 type-${i}`, 1]));
      const [sleep] = afterStop([], at('2026-12-01T18:00:00Z'), { cpuMillicores: 0, memoryBytes: 0, instances });
      assert.equal(Object.keys(sleep!.instances).length, 20);
      assert.equal(
        Object.values(sleep!.instances).reduce((a, b) => a + b, 0),
        40,
      );
    });
  });

  describe('figures', function () {
    // Mon 30 Nov 18:00 to Tue 1 Dec 08:00 UTC (14 h), and Tue 1 Dec 18:00 until now, Wed 2 Dec 06:00 (12 h).
    const ledger: Sleep[] = [
      {
        from: '2026-11-30T18:00:00.000Z',
        to: '2026-12-01T08:00:00.000Z',
        cpuMillicores: 2000,
        memoryBytes: 4 * GI,
        instances: { 'ec2 t3.medium': 2 },
      },
      { from: '2026-12-01T18:00:00.000Z', to: null, cpuMillicores: 1000, memoryBytes: 2 * GI, instances: { 'rds db.t3.micro': 1 } },
    ];
    const now = at('2026-12-02T06:00:00Z');

    it('adds up the hours asleep, core-hours, GiB-hours and instance-hours, an open sleep until now', function () {
      assert.deepEqual(figures(ledger, at('2026-11-25T06:00:00Z'), now, now), {
        hoursAsleep: 26,
        cpuCoreHours: 40,
        memoryGiBHours: 80,
        instanceHours: { 'ec2 t3.medium': 28, 'rds db.t3.micro': 12 },
        cost: null,
      });
    });

    it('counts only the part of a sleep within the period', function () {
      const f = figures(ledger, at('2026-12-01T06:00:00Z'), now, now);
      assert.equal(f.hoursAsleep, 14);
      assert.equal(f.cpuCoreHours, 2 * 2 + 12);
    });

    it('turns the figures into money with prices: per vCPU-hour, GiB-hour and instance type, by type or by its own key', function () {
      const prices = { vcpuHour: 0.03, gibHour: 0.004, instanceTypes: { 't3.medium': 0.0416, 'rds db.t3.micro': 0.017 }, currency: 'EUR' };
      const f = figures(ledger, at('2026-11-25T06:00:00Z'), now, now, prices);
      assert.equal(f.cost, Math.round((40 * 0.03 + 80 * 0.004 + 28 * 0.0416 + 12 * 0.017) * 100) / 100);
      assert.equal(figures(ledger, at('2026-11-25T06:00:00Z'), now, now, { instanceTypes: {} }).cost, null);
    });

    it('reports a period per environment and in total', function () {
      const report = savingsReport(
        [
          { namespace: 'dev1', sleeps: ledger },
          { namespace: 'dev2', sleeps: [] },
        ],
        'week',
        now,
        { vcpuHour: 0.05, currency: 'USD' },
      );
      assert.equal(report.from, '2026-11-25T06:00:00.000Z');
      assert.equal(report.to, now.toISOString());
      assert.equal(report.currency, 'USD');
      assert.deepEqual(
        report.environments.map((e) => [e.namespace, e.cpuCoreHours, e.cost]),
        [
          ['dev1', 40, 2],
          ['dev2', 0, 0],
        ],
      );
      assert.equal(report.total.cpuCoreHours, 40);
      assert.equal(report.total.cost, 2);
    });

    it('splits a sleep across calendar weeks at Monday 00:00 UTC', function () {
      assert.equal(weekStart(at('2026-12-06T23:59:00Z')).toISOString(), '2026-11-30T00:00:00.000Z');
      assert.equal(weekStart(at('2026-11-30T00:00:00Z')).toISOString(), '2026-11-30T00:00:00.000Z');
      const overWeekend: Sleep[] = [
        { from: '2026-11-27T18:00:00.000Z', to: '2026-11-30T08:00:00.000Z', cpuMillicores: 1000, memoryBytes: GI, instances: {} },
      ];
      const { weeks } = weeklyReport([{ sleeps: overWeekend }], 2, now);
      assert.deepEqual(
        weeks.map((w) => [w.from, w.cpuCoreHours]),
        [
          ['2026-11-23T00:00:00.000Z', 54],
          ['2026-11-30T00:00:00.000Z', 8],
        ],
      );
    });

    it('shows the sleeps of the last days, clipped, one still asleep open', function () {
      assert.deepEqual(timeline('dev1', ledger, 1, now), {
        namespace: 'dev1',
        from: '2026-12-01T06:00:00.000Z',
        to: now.toISOString(),
        asleep: [
          { from: '2026-12-01T06:00:00.000Z', to: '2026-12-01T08:00:00.000Z' },
          { from: '2026-12-01T18:00:00.000Z', to: null },
        ],
      });
    });
  });
});
