/**
 * Table-driven tests for the environment workflow's rules (src/workflows/environment/planning.ts)
 * at fixed instants: what a start, stop, prolongation, reset, policy change or switch of the
 * scheduler leaves behind, which Update is refused, and what is due next and when. The
 * workflow on a time-skipping server (environment-workflow.test.ts) checks that it does
 * what these say.
 *
 * The policy is the service's default unless a case says otherwise: 19:00 UTC, Mon-Fri,
 * warnings at 60, 30 and 15 minutes, at most 4h of prolongation, a 2h after-hours window.
 * 2026-01-15 is a Thursday; 2026-01-17 a Saturday.
 */
import { strict as assert } from 'node:assert';
import type { AwsActionReport, AwsResourceResult, DriftedWorkload, HalfProblem } from '../src/activities/contracts';
import type { EnvironmentPolicy } from '../src/domain/shutdown-policy';
import type { AwsFollowUp, EnvironmentState, WorkloadPhase } from '../src/workflows/environment/definitions';
import {
  afterDriftLook,
  afterEnabledChange,
  afterFollowUpLook,
  afterPolicyChange,
  afterReset,
  afterStart,
  afterStop,
  driftAction,
  driftLookBegun,
  driftWatchAfterStop,
  dueAt,
  enrolled,
  nextEvent,
  phaseOf,
  prolongated,
  prolongationRefusal,
  prolongedToday,
  upcomingWakeUp,
  wakeUpMissed,
  warningSent,
  withWakeUp,
  type TimedEvent,
} from '../src/workflows/environment/planning';
import { weekdayPolicy } from './support/policies';

const at = (iso: string): Date => {
  const date = new Date(iso);
  assert.ok(!Number.isNaN(date.getTime()), `bad test instant ${iso}`);
  return date;
};

/** A running environment, scheduled, with nothing prolonged and no warning sent unless overridden. */
function running(overrides: Partial<EnvironmentState> = {}): EnvironmentState {
  return {
    workloads: 'running',
    enabled: true,
    shutdownAt: '2026-01-15T19:00:00.000Z',
    prolongedMinutes: 0,
    warningsSent: [],
    lastAction: null,
    ...overrides,
  };
}

const stopped = (overrides: Partial<EnvironmentState> = {}): EnvironmentState =>
  running({ workloads: 'stopped', shutdownAt: null, awsCheckedAt: '2026-01-15T19:00:00.000Z', ...overrides });

/** The parts of a state a person reads in `status`. */
function plan(state: EnvironmentState) {
  return {
    phase: phaseOf(state),
    shutdownAt: state.shutdownAt,
    prolongedMinutes: state.prolongedMinutes,
    warningsSent: state.warningsSent,
  };
}

function describeEvent(event: TimedEvent | null): string | null {
  if (!event) return null;
  return `${event.kind}${event.kind === 'warning' ? ` ${event.offsetMinutes}` : ''} at ${event.at.toISOString()}`;
}

const timing = { dispatchAheadMs: 0, recheckInFlight: false };

describe('environment planning', () => {
  describe('enrolled', () => {
    const cases: { name: string; now: string; enabled?: boolean; expected: ReturnType<typeof plan> }[] = [
      {
        name: 'in the morning: today at 19:00',
        now: '2026-01-15T10:00:00Z',
        expected: { phase: 'running', shutdownAt: '2026-01-15T19:00:00.000Z', prolongedMinutes: 0, warningsSent: [] },
      },
      {
        name: 'ten minutes before 19:00: the 60 and 30 minute warnings are past and skipped, the 15 minute one fires now',
        now: '2026-01-15T18:50:00Z',
        expected: { phase: 'running', shutdownAt: '2026-01-15T19:00:00.000Z', prolongedMinutes: 0, warningsSent: [60, 30] },
      },
      {
        name: 'forty minutes before 19:00: the 60 minute warning is past and skipped, the others come in their time',
        now: '2026-01-15T18:20:00Z',
        expected: { phase: 'running', shutdownAt: '2026-01-15T19:00:00.000Z', prolongedMinutes: 0, warningsSent: [60] },
      },
      {
        name: 'after hours: the after-hours window',
        now: '2026-01-15T20:00:00Z',
        expected: { phase: 'running', shutdownAt: '2026-01-15T22:00:00.000Z', prolongedMinutes: 0, warningsSent: [] },
      },
      {
        name: 'on a Saturday: the after-hours window',
        now: '2026-01-17T10:00:00Z',
        expected: { phase: 'running', shutdownAt: '2026-01-17T12:00:00.000Z', prolongedMinutes: 0, warningsSent: [] },
      },
      {
        name: 'scheduler disabled: no shutdown',
        now: '2026-01-15T10:00:00Z',
        enabled: false,
        expected: { phase: 'disabled', shutdownAt: null, prolongedMinutes: 0, warningsSent: [] },
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const state = enrolled(c.enabled ?? true, weekdayPolicy(), at(c.now));
        assert.deepEqual(plan(state), c.expected);
        assert.deepEqual(state.lastAction, { action: 'enrol', by: 'scheduler', at: at(c.now).toISOString() });
      });
    }
  });

  describe('prolongationRefusal', () => {
    const cases: {
      name: string;
      state: EnvironmentState;
      minutes: number;
      policy?: Partial<EnvironmentPolicy>;
      expected: string | null;
    }[] = [
      { name: 'within the limit', state: running(), minutes: 60, expected: null },
      { name: 'exactly what is left', state: running({ prolongedMinutes: 180 }), minutes: 60, expected: null },
      {
        name: 'over what is left of the limit',
        state: running({ prolongedMinutes: 180 }),
        minutes: 90,
        expected: "1h30m is over the limit: today's shutdown can be pushed at most 4h in all, 1h of which is left",
      },
      {
        name: 'the limit lowered below what is already prolonged: nothing left, never a negative',
        state: running({ prolongedMinutes: 180 }),
        minutes: 15,
        policy: { maxProlongationMinutes: 120 },
        expected: "15m is over the limit: today's shutdown can be pushed at most 2h in all, 0m of which is left",
      },
      { name: 'zero minutes', state: running(), minutes: 0, expected: 'a prolongation must be a positive number of whole minutes, not 0' },
      {
        name: 'negative minutes',
        state: running(),
        minutes: -30,
        expected: 'a prolongation must be a positive number of whole minutes, not -30',
      },
      {
        name: 'a fraction of a minute',
        state: running(),
        minutes: 1.5,
        expected: 'a prolongation must be a positive number of whole minutes, not 1.5',
      },
      {
        name: 'scheduler disabled',
        state: running({ enabled: false, shutdownAt: null }),
        minutes: 30,
        expected: 'dev1 has the scheduler disabled: there is no shutdown to move',
      },
      {
        name: 'stopped',
        state: stopped(),
        minutes: 30,
        expected: 'dev1 is stopped: only a running environment can be prolongated; start it first',
      },
      {
        name: 'stopping (its stop already handed to a worker)',
        state: running({ workloads: 'stopping' }),
        minutes: 30,
        expected: 'dev1 is stopping: only a running environment can be prolongated; start it first',
      },
      {
        name: 'starting',
        state: stopped({ workloads: 'starting' }),
        minutes: 30,
        expected: 'dev1 is starting: only a running environment can be prolongated; start it first',
      },
    ];
    for (const c of cases) {
      it(`${c.name} -> ${c.expected ?? 'allowed'}`, () => {
        assert.equal(prolongationRefusal('dev1', c.state, weekdayPolicy(c.policy), c.minutes), c.expected);
      });
    }
  });

  describe('prolongated, and the warnings after it', () => {
    const cases: {
      name: string;
      state: EnvironmentState;
      now: string;
      minutes: number;
      expected: ReturnType<typeof plan>;
      next: string;
    }[] = [
      {
        name: 'by 1h at 18:40, after the 60 minute warning: the shutdown moves to 20:00 and the 60 minute warning comes again at 19:00',
        state: running({ warningsSent: [60] }),
        now: '2026-01-15T18:40:00Z',
        minutes: 60,
        expected: { phase: 'running', shutdownAt: '2026-01-15T20:00:00.000Z', prolongedMinutes: 60, warningsSent: [] },
        next: 'warning 60 at 2026-01-15T19:00:00.000Z',
      },
      {
        name: 'by 30m at 18:50: the 60 minute warning of 19:30 is past and stays sent; the 30 minute one comes at 19:00',
        state: running({ warningsSent: [60, 30] }),
        now: '2026-01-15T18:50:00Z',
        minutes: 30,
        expected: { phase: 'running', shutdownAt: '2026-01-15T19:30:00.000Z', prolongedMinutes: 30, warningsSent: [60] },
        next: 'warning 30 at 2026-01-15T19:00:00.000Z',
      },
      {
        name: 'a second prolongation adds to the first',
        state: running({ shutdownAt: '2026-01-15T20:00:00.000Z', prolongedMinutes: 60, prolongedOn: '2026-01-15' }),
        now: '2026-01-15T12:00:00Z',
        minutes: 90,
        expected: { phase: 'running', shutdownAt: '2026-01-15T21:30:00.000Z', prolongedMinutes: 150, warningsSent: [] },
        next: 'warning 60 at 2026-01-15T20:30:00.000Z',
      },
      {
        name: 'by 15m at 18:58, every warning of 19:15 but the last is past: the 15 minute one fires at once',
        state: running({ warningsSent: [60, 30, 15] }),
        now: '2026-01-15T18:58:00Z',
        minutes: 15,
        expected: { phase: 'running', shutdownAt: '2026-01-15T19:15:00.000Z', prolongedMinutes: 15, warningsSent: [60, 30] },
        next: 'warning 15 at 2026-01-15T19:00:00.000Z',
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const state = prolongated(c.state, weekdayPolicy(), at(c.now), c.minutes);
        assert.deepEqual(plan(state), c.expected);
        assert.equal(describeEvent(nextEvent(state, weekdayPolicy(), timing)), c.next);
      });
    }

    it("records the environment's local date, not UTC's: 23:30 UTC is the next day in Berlin", () => {
      const policy = weekdayPolicy({
        timeZone: 'Europe/Berlin',
        workingDays: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'],
        shutdownTime: '01:00',
      });
      const state = prolongated(running({ shutdownAt: '2026-01-16T00:00:00.000Z' }), policy, at('2026-01-15T23:30:00Z'), 30);
      assert.equal(state.prolongedOn, '2026-01-16');
    });
  });

  describe('the morning reset', () => {
    const berlin = weekdayPolicy({ timeZone: 'Europe/Berlin' });
    const cases: {
      name: string;
      state: EnvironmentState;
      now: string;
      policy?: EnvironmentPolicy;
      keeps: boolean;
      expected: ReturnType<typeof plan>;
    }[] = [
      {
        name: "drops yesterday's prolongation: back to today's 19:00",
        state: running({ shutdownAt: '2026-01-14T21:00:00.000Z', prolongedMinutes: 120, prolongedOn: '2026-01-14' }),
        now: '2026-01-15T06:00:00Z',
        keeps: false,
        expected: { phase: 'running', shutdownAt: '2026-01-15T19:00:00.000Z', prolongedMinutes: 0, warningsSent: [] },
      },
      {
        name: 'keeps a prolongation made the same local day',
        state: running({ shutdownAt: '2026-01-15T21:00:00.000Z', prolongedMinutes: 120, prolongedOn: '2026-01-15' }),
        now: '2026-01-15T06:00:00Z',
        keeps: true,
        expected: { phase: 'running', shutdownAt: '2026-01-15T19:00:00.000Z', prolongedMinutes: 0, warningsSent: [] },
      },
      {
        name: 'Berlin: a reset at 23:30 UTC (00:30 on the 16th there) keeps a prolongation made at 00:10 Berlin time',
        state: running({ shutdownAt: '2026-01-16T20:00:00.000Z', prolongedMinutes: 120, prolongedOn: '2026-01-16' }),
        now: '2026-01-15T23:30:00Z',
        policy: berlin,
        keeps: true,
        expected: { phase: 'running', shutdownAt: '2026-01-16T18:00:00.000Z', prolongedMinutes: 0, warningsSent: [] },
      },
      {
        name: 'on a Saturday the after-hours window already running is kept',
        state: running({ shutdownAt: '2026-01-17T12:00:00.000Z' }),
        now: '2026-01-17T10:30:00Z',
        keeps: false,
        expected: { phase: 'running', shutdownAt: '2026-01-17T12:00:00.000Z', prolongedMinutes: 0, warningsSent: [] },
      },
      {
        name: 'after hours (today’s 19:00 is past) the after-hours window is kept',
        state: running({ shutdownAt: '2026-01-15T21:30:00.000Z' }),
        now: '2026-01-15T19:30:00Z',
        keeps: false,
        expected: { phase: 'running', shutdownAt: '2026-01-15T21:30:00.000Z', prolongedMinutes: 0, warningsSent: [] },
      },
      {
        name: 'a stopped environment stays without a shutdown',
        state: stopped(),
        now: '2026-01-15T06:00:00Z',
        keeps: false,
        expected: { phase: 'stopped', shutdownAt: null, prolongedMinutes: 0, warningsSent: [] },
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const policy = c.policy ?? weekdayPolicy();
        assert.equal(prolongedToday(c.state, policy, at(c.now)), c.keeps);
        if (!c.keeps) assert.deepEqual(plan(afterReset(c.state, policy, at(c.now))), c.expected);
      });
    }

    it('clears the date of the prolongation it drops', () => {
      const state = afterReset(running({ prolongedMinutes: 60, prolongedOn: '2026-01-14' }), weekdayPolicy(), at('2026-01-15T06:00:00Z'));
      assert.equal(state.prolongedOn, null);
    });
  });

  describe('a new policy', () => {
    const cases: { name: string; state: EnvironmentState; now: string; policy: Partial<EnvironmentPolicy>; expected: string | null }[] = [
      {
        name: 'an earlier time still ahead today takes effect now',
        state: running(),
        now: '2026-01-15T10:00:00Z',
        policy: { shutdownTime: '18:00' },
        expected: '2026-01-15T18:00:00.000Z',
      },
      {
        name: 'while prolonged by 1h: the new time plus the prolongation',
        state: running({ shutdownAt: '2026-01-15T20:00:00.000Z', prolongedMinutes: 60, prolongedOn: '2026-01-15' }),
        now: '2026-01-15T10:00:00Z',
        policy: { shutdownTime: '18:00' },
        expected: '2026-01-15T19:00:00.000Z',
      },
      {
        name: 'a new time already past today: tonight keeps the old one',
        state: running(),
        now: '2026-01-15T17:30:00Z',
        policy: { shutdownTime: '17:00' },
        expected: '2026-01-15T19:00:00.000Z',
      },
      {
        name: 'today no longer a working day: tonight keeps the old one',
        state: running(),
        now: '2026-01-15T10:00:00Z',
        policy: { workingDays: ['Mon'] },
        expected: '2026-01-15T19:00:00.000Z',
      },
      {
        name: 'another zone: 19:00 in New York is 00:00 UTC',
        state: running(),
        now: '2026-01-15T10:00:00Z',
        policy: { timeZone: 'America/New_York' },
        expected: '2026-01-16T00:00:00.000Z',
      },
      {
        name: 'a stopped environment gets no shutdown',
        state: stopped(),
        now: '2026-01-15T10:00:00Z',
        policy: { shutdownTime: '18:00' },
        expected: null,
      },
      {
        name: 'a disabled one neither',
        state: running({ enabled: false, shutdownAt: null }),
        now: '2026-01-15T10:00:00Z',
        policy: { shutdownTime: '18:00' },
        expected: null,
      },
    ];
    for (const c of cases) {
      it(`${c.name} -> ${c.expected ?? 'none'}`, () => {
        const state = afterPolicyChange(c.state, weekdayPolicy(c.policy), at(c.now));
        assert.equal(state.shutdownAt, c.expected);
        assert.equal(state.prolongedMinutes, c.state.prolongedMinutes, 'the prolongation is kept');
      });
    }
  });

  describe('the scheduler switched off and on', () => {
    const cases: { name: string; state: EnvironmentState; enabled: boolean; now: string; expected: ReturnType<typeof plan> }[] = [
      {
        name: 'off: no shutdown, no warnings',
        state: running({ warningsSent: [60] }),
        enabled: false,
        now: '2026-01-15T18:10:00Z',
        expected: { phase: 'disabled', shutdownAt: null, prolongedMinutes: 0, warningsSent: [] },
      },
      {
        name: 'on in the morning: today at 19:00',
        state: running({ enabled: false, shutdownAt: null }),
        enabled: true,
        now: '2026-01-15T10:00:00Z',
        expected: { phase: 'running', shutdownAt: '2026-01-15T19:00:00.000Z', prolongedMinutes: 0, warningsSent: [] },
      },
      {
        name: 'on after hours: the after-hours window from now',
        state: running({ enabled: false, shutdownAt: null }),
        enabled: true,
        now: '2026-01-15T20:00:00Z',
        expected: { phase: 'running', shutdownAt: '2026-01-15T22:00:00.000Z', prolongedMinutes: 0, warningsSent: [] },
      },
      {
        name: 'on while stopped: still no shutdown',
        state: stopped({ enabled: false }),
        enabled: true,
        now: '2026-01-15T10:00:00Z',
        expected: { phase: 'stopped', shutdownAt: null, prolongedMinutes: 0, warningsSent: [] },
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        assert.deepEqual(plan(afterEnabledChange(c.state, c.enabled, weekdayPolicy(), at(c.now))), c.expected);
      });
    }
  });

  describe('stop and start', () => {
    it('a stop leaves nothing to shut down, drops the prolongation, and looks at AWS again in 6 hours', () => {
      const state = afterStop(
        running({ shutdownAt: '2026-01-15T20:00:00.000Z', prolongedMinutes: 60, prolongedOn: '2026-01-15', warningsSent: [60] }),
        weekdayPolicy(),
        at('2026-01-15T19:40:00Z'),
      );
      assert.deepEqual(plan(state), { phase: 'stopped', shutdownAt: null, prolongedMinutes: 0, warningsSent: [] });
      assert.equal(state.prolongedOn, null);
      assert.equal(describeEvent(nextEvent(state, weekdayPolicy(), timing)), 'aws-recheck at 2026-01-16T01:40:00.000Z');
    });

    const cases: {
      name: string;
      state: EnvironmentState;
      before: WorkloadPhase;
      now: string;
      expected: ReturnType<typeof plan>;
      afterHoursWindow: boolean;
    }[] = [
      {
        name: 'from stopped in the morning: today at 19:00',
        state: stopped({ workloads: 'starting' }),
        before: 'stopped',
        now: '2026-01-15T08:00:00Z',
        expected: { phase: 'running', shutdownAt: '2026-01-15T19:00:00.000Z', prolongedMinutes: 0, warningsSent: [] },
        afterHoursWindow: false,
      },
      {
        name: 'from stopped after hours: the after-hours window',
        state: stopped({ workloads: 'starting' }),
        before: 'stopped',
        now: '2026-01-15T21:00:00Z',
        expected: { phase: 'running', shutdownAt: '2026-01-15T23:00:00.000Z', prolongedMinutes: 0, warningsSent: [] },
        afterHoursWindow: true,
      },
      {
        name: 'already running with a later, prolonged shutdown: kept, prolongation with it',
        state: running({ workloads: 'starting', shutdownAt: '2026-01-15T21:00:00.000Z', prolongedMinutes: 120, prolongedOn: '2026-01-15' }),
        before: 'running',
        now: '2026-01-15T18:10:00Z',
        expected: { phase: 'running', shutdownAt: '2026-01-15T21:00:00.000Z', prolongedMinutes: 120, warningsSent: [] },
        afterHoursWindow: false,
      },
      {
        name: 'already running, after hours: the after-hours window from now ends later than the prolonged shutdown, so it replaces it',
        state: running({ workloads: 'starting', shutdownAt: '2026-01-15T21:00:00.000Z', prolongedMinutes: 120, prolongedOn: '2026-01-15' }),
        before: 'running',
        now: '2026-01-15T20:30:00Z',
        expected: { phase: 'running', shutdownAt: '2026-01-15T22:30:00.000Z', prolongedMinutes: 0, warningsSent: [] },
        afterHoursWindow: true,
      },
      {
        name: 'from stopped with a shutdown somehow left: a fresh one all the same',
        state: stopped({ workloads: 'starting', shutdownAt: '2026-01-15T23:00:00.000Z' }),
        before: 'stopped',
        now: '2026-01-15T08:00:00Z',
        expected: { phase: 'running', shutdownAt: '2026-01-15T19:00:00.000Z', prolongedMinutes: 0, warningsSent: [] },
        afterHoursWindow: false,
      },
      {
        name: 'scheduler disabled: up until stopped',
        state: stopped({ workloads: 'starting', enabled: false }),
        before: 'stopped',
        now: '2026-01-15T08:00:00Z',
        expected: { phase: 'disabled', shutdownAt: null, prolongedMinutes: 0, warningsSent: [] },
        afterHoursWindow: false,
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const started = afterStart(c.state, c.before, weekdayPolicy(), at(c.now));
        assert.deepEqual(plan(started.state), c.expected);
        assert.equal(started.afterHoursWindow, c.afterHoursWindow);
        assert.equal(started.state.awsCheckedAt, null, 'no AWS re-check while running');
      });
    }
  });

  describe('what is due next', () => {
    const awsStopFailed: HalfProblem = { half: 'aws', action: 'stop', detail: 'AWS could not stop: AccessDenied' };
    const awsUnstoppable: HalfProblem = {
      half: 'aws',
      action: 'stop',
      outcome: 'unsupported',
      detail: 'AWS cannot stop rds-instance replica',
    };
    const followingStart: AwsFollowUp = { action: 'start', since: '2026-01-15T18:10:00.000Z', looks: 2 };
    const cases: {
      name: string;
      state: EnvironmentState;
      dispatchAheadMs?: number;
      recheckInFlight?: boolean;
      expected: string | null;
      dueAt?: string;
    }[] = [
      { name: 'nothing sent yet: the 60 minute warning', state: running(), expected: 'warning 60 at 2026-01-15T18:00:00.000Z' },
      {
        name: 'after the 60 minute warning: the 30 minute one',
        state: running({ warningsSent: [60] }),
        expected: 'warning 30 at 2026-01-15T18:30:00.000Z',
      },
      {
        name: 'every warning sent: the shutdown',
        state: running({ warningsSent: [60, 30, 15] }),
        expected: 'shutdown at 2026-01-15T19:00:00.000Z',
      },
      {
        name: 'a shutdown dispatched 10 s ahead is due 10 s before its instant',
        state: running({ warningsSent: [60, 30, 15] }),
        dispatchAheadMs: 10_000,
        expected: 'shutdown at 2026-01-15T19:00:00.000Z',
        dueAt: '2026-01-15T18:59:50.000Z',
      },
      { name: 'disabled: nothing', state: running({ enabled: false, shutdownAt: null }), expected: null },
      {
        name: 'stopped: the AWS re-check 6 hours after the last look',
        state: stopped(),
        expected: 'aws-recheck at 2026-01-16T01:00:00.000Z',
      },
      {
        name: "stopped, the stop's AWS half failed: the re-check in 30 minutes",
        state: stopped({ problems: [awsStopFailed] }),
        expected: 'aws-recheck at 2026-01-15T19:30:00.000Z',
      },
      {
        name: 'stopped, AWS cannot stop a resource (no retry helps): 6 hours',
        state: stopped({ problems: [awsUnstoppable] }),
        expected: 'aws-recheck at 2026-01-16T01:00:00.000Z',
      },
      { name: 'stopped, a re-check already running: nothing until it is done', state: stopped(), recheckInFlight: true, expected: null },
      {
        name: 'a follow-up of AWS in transition comes a minute after the last look, before the next warning',
        state: running({ warningsSent: [60, 30], awsFollowUp: followingStart }),
        expected: 'aws-follow-up at 2026-01-15T18:13:00.000Z',
      },
      {
        name: 'a warning due sooner than the follow-up comes first',
        state: running({ warningsSent: [60, 30], awsFollowUp: { ...followingStart, since: '2026-01-15T18:44:30.000Z' } }),
        expected: 'warning 15 at 2026-01-15T18:45:00.000Z',
      },
      {
        name: 'the follow-up of a start ends once the environment is stopped: the re-check instead',
        state: stopped({ awsFollowUp: followingStart }),
        expected: 'aws-recheck at 2026-01-16T01:00:00.000Z',
      },
      {
        name: 'stopped, following a stop: the follow-up even while a re-check runs',
        state: stopped({ awsFollowUp: { action: 'stop', since: '2026-01-15T19:00:00.000Z', looks: 0 } }),
        recheckInFlight: true,
        expected: 'aws-follow-up at 2026-01-15T19:01:00.000Z',
      },
    ];
    for (const c of cases) {
      it(`${c.name} -> ${c.expected ?? 'nothing'}`, () => {
        const dispatchAheadMs = c.dispatchAheadMs ?? 0;
        const event = nextEvent(c.state, weekdayPolicy(), { dispatchAheadMs, recheckInFlight: c.recheckInFlight ?? false });
        assert.equal(describeEvent(event), c.expected);
        if (c.dueAt) assert.equal(new Date(dueAt(event!, dispatchAheadMs)).toISOString(), c.dueAt);
      });
    }

    const warnings: { name: string; state: EnvironmentState; offsetMinutes: number; now: string; minutesLeft: number; deadline: string }[] =
      [
        {
          name: 'on time: 60 minutes left, worth saying until the shutdown',
          state: running(),
          offsetMinutes: 60,
          now: '2026-01-15T18:00:00Z',
          minutesLeft: 60,
          deadline: '2026-01-15T19:00:00.000Z',
        },
        {
          name: 'sent late (workers were down): what is really left',
          state: running({ warningsSent: [60] }),
          offsetMinutes: 30,
          now: '2026-01-15T18:48:00Z',
          minutesLeft: 12,
          deadline: '2026-01-15T19:00:00.000Z',
        },
        {
          name: 'a shutdown far off: worth saying for an hour',
          state: running({ shutdownAt: '2026-01-15T23:00:00.000Z' }),
          offsetMinutes: 60,
          now: '2026-01-15T18:00:00Z',
          minutesLeft: 300,
          deadline: '2026-01-15T19:00:00.000Z',
        },
      ];
    for (const c of warnings) {
      it(`a warning ${c.name}`, () => {
        const sent = warningSent(c.state, c.offsetMinutes, at(c.now));
        assert.deepEqual(sent.state.warningsSent, [...c.state.warningsSent, c.offsetMinutes]);
        assert.equal(sent.minutesLeft, c.minutesLeft);
        assert.equal(sent.deadline.toISOString(), c.deadline);
      });
    }
  });

  describe('the morning wake-up', () => {
    const WAKES = weekdayPolicy({ wakeTime: '08:00' });
    const wakeTiming = { dispatchAheadMs: 10_000, recheckInFlight: false, wakeUps: true };

    const transitions: { name: string; after: () => EnvironmentState; wakeAt: string | null | undefined }[] = [
      {
        name: "Thursday's scheduled stop: Friday 08:00",
        after: () => afterStop(running(), WAKES, at('2026-01-15T19:00:00Z')),
        wakeAt: '2026-01-16T08:00:00.000Z',
      },
      {
        name: "Friday's scheduled stop: Monday 08:00, not Saturday or Sunday",
        after: () => afterStop(running(), WAKES, at('2026-01-16T19:00:00Z')),
        wakeAt: '2026-01-19T08:00:00.000Z',
      },
      {
        name: 'a manual stop after the wake-up: stays stopped until the next working day',
        after: () => afterStop(running(), WAKES, at('2026-01-15T10:00:00Z')),
        wakeAt: '2026-01-16T08:00:00.000Z',
      },
      {
        name: 'the after-hours window ending at 01:00: woken the same morning',
        after: () => afterStop(running(), WAKES, at('2026-01-15T01:00:00Z')),
        wakeAt: '2026-01-15T08:00:00.000Z',
      },
      {
        name: 'a stop without a wake time: none, and no key added',
        after: () => afterStop(running(), weekdayPolicy(), at('2026-01-15T19:00:00Z')),
        wakeAt: undefined,
      },
      {
        name: 'a stop with the scheduler disabled: none',
        after: () => afterStop(running({ enabled: false, shutdownAt: null }), WAKES, at('2026-01-15T19:00:00Z')),
        wakeAt: undefined,
      },
      {
        name: 'started (by anyone, the wake-up too): none while running',
        after: () => afterStart(stopped({ wakeAt: '2026-01-16T08:00:00.000Z' }), 'stopped', WAKES, at('2026-01-16T08:00:00Z')).state,
        wakeAt: null,
      },
      {
        name: 'the wake-up taken at its instant: the next one is planned, so a start that fails is not tried again at once',
        after: () => withWakeUp(stopped({ wakeAt: '2026-01-16T08:00:00.000Z' }), WAKES, at('2026-01-16T08:00:00Z')),
        wakeAt: '2026-01-19T08:00:00.000Z',
      },
      {
        name: 'a wake time set while stopped, before it today: today',
        after: () => afterPolicyChange(stopped(), WAKES, at('2026-01-16T07:00:00Z')),
        wakeAt: '2026-01-16T08:00:00.000Z',
      },
      {
        name: 'a wake time changed while stopped: the new one',
        after: () =>
          afterPolicyChange(stopped({ wakeAt: '2026-01-16T08:00:00.000Z' }), { ...WAKES, wakeTime: '06:30' }, at('2026-01-15T21:00:00Z')),
        wakeAt: '2026-01-16T06:30:00.000Z',
      },
      {
        name: "a wake time moved later after a manual stop after today's wake-up: the new time, still on the day it was planned for",
        after: () =>
          afterPolicyChange(stopped({ wakeAt: '2026-01-16T08:00:00.000Z' }), { ...WAKES, wakeTime: '11:00' }, at('2026-01-15T10:30:00Z')),
        wakeAt: '2026-01-16T11:00:00.000Z',
      },
      {
        name: 'the same, as histories from before the wake-up kept its day planned it: from now',
        after: () =>
          afterPolicyChange(stopped({ wakeAt: '2026-01-16T08:00:00.000Z' }), { ...WAKES, wakeTime: '11:00' }, at('2026-01-15T10:30:00Z'), {
            wakeUpFrom: 'now',
          }),
        wakeAt: '2026-01-15T11:00:00.000Z',
      },
      {
        name: "the same, stopped by hand at 10:00 after today's wake-up: the new time tomorrow",
        after: () =>
          afterPolicyChange(
            afterStop(running(), WAKES, at('2026-01-15T10:00:00Z')),
            { ...WAKES, wakeTime: '11:00' },
            at('2026-01-15T10:30:00Z'),
          ),
        wakeAt: '2026-01-16T11:00:00.000Z',
      },
      {
        name: "stopped by hand at 06:00, before today's wake-up, then the wake time moved to 07:00: today 07:00",
        after: () =>
          afterPolicyChange(
            afterStop(running(), WAKES, at('2026-01-15T06:00:00Z')),
            { ...WAKES, wakeTime: '07:00' },
            at('2026-01-15T06:10:00Z'),
          ),
        wakeAt: '2026-01-15T07:00:00.000Z',
      },
      {
        name: "Saturday made a working day after Friday's stop: woken on Saturday, not Monday",
        after: () =>
          afterPolicyChange(
            afterStop(running(), WAKES, at('2026-01-16T19:00:00Z')),
            { ...WAKES, workingDays: [...WAKES.workingDays, 'Sat'] },
            at('2026-01-16T20:00:00Z'),
          ),
        wakeAt: '2026-01-17T08:00:00.000Z',
      },
      {
        name: 'the same, as histories from before the stop bounded it: Monday, the day it was planned for',
        after: () =>
          afterPolicyChange(
            afterStop(running(), WAKES, at('2026-01-16T19:00:00Z')),
            { ...WAKES, workingDays: [...WAKES.workingDays, 'Sat'] },
            at('2026-01-16T20:00:00Z'),
            { wakeUpFrom: 'planned-day' },
          ),
        wakeAt: '2026-01-19T08:00:00.000Z',
      },
      {
        name: "Friday's holiday cancelled after Thursday's stop: woken on Friday",
        after: () =>
          afterPolicyChange(
            afterStop(running(), { ...WAKES, holidays: ['2026-01-16'] }, at('2026-01-15T19:00:00Z')),
            WAKES,
            at('2026-01-15T21:00:00Z'),
          ),
        wakeAt: '2026-01-16T08:00:00.000Z',
      },
      {
        name: 'started again: the stop no longer bounds anything',
        after: () =>
          afterStart(afterStop(running(), WAKES, at('2026-01-15T19:00:00Z')), 'stopped', WAKES, at('2026-01-16T08:00:00Z')).state,
        wakeAt: null,
      },
      {
        name: 'the day it was planned for made a holiday: the next working day',
        after: () =>
          afterPolicyChange(
            stopped({ wakeAt: '2026-01-16T08:00:00.000Z' }),
            { ...WAKES, holidays: ['2026-01-16'] },
            at('2026-01-15T21:00:00Z'),
          ),
        wakeAt: '2026-01-19T08:00:00.000Z',
      },
      {
        name: 'a new time already past on the day it was planned for (today): the next working day',
        after: () =>
          afterPolicyChange(stopped({ wakeAt: '2026-01-16T08:00:00.000Z' }), { ...WAKES, wakeTime: '06:30' }, at('2026-01-16T07:00:00Z')),
        wakeAt: '2026-01-19T06:30:00.000Z',
      },
      {
        name: 'the wake time removed while stopped: none',
        after: () => afterPolicyChange(stopped({ wakeAt: '2026-01-16T08:00:00.000Z' }), weekdayPolicy(), at('2026-01-15T21:00:00Z')),
        wakeAt: null,
      },
      {
        name: 'a policy change while running plans no wake-up',
        after: () => afterPolicyChange(running(), WAKES, at('2026-01-15T10:00:00Z')),
        wakeAt: undefined,
      },
      {
        name: 'the scheduler switched off while stopped: none',
        after: () => afterEnabledChange(stopped({ wakeAt: '2026-01-16T08:00:00.000Z' }), false, WAKES, at('2026-01-15T21:00:00Z')),
        wakeAt: null,
      },
      {
        name: 'the scheduler switched on while stopped: the next one',
        after: () => afterEnabledChange(stopped({ enabled: false }), true, WAKES, at('2026-01-17T12:00:00Z')),
        wakeAt: '2026-01-19T08:00:00.000Z',
      },
    ];
    for (const c of transitions) {
      it(`${c.name}: ${c.wakeAt ?? String(c.wakeAt)}`, () => {
        const state = c.after();
        assert.equal(state.wakeAt, c.wakeAt);
        assert.equal('wakeAt' in state, c.wakeAt !== undefined);
      });
    }

    const missed: { name: string; now: string; policy?: EnvironmentPolicy; expected: boolean }[] = [
      { name: 'handled at its instant', now: '2026-01-16T08:00:00Z', expected: false },
      { name: 'handled two hours late, its working day still on: done late', now: '2026-01-16T10:00:00Z', expected: false },
      { name: 'handled at the shutdown time of its day: missed', now: '2026-01-16T19:00:00Z', expected: true },
      { name: 'handled on Saturday night after an outage: missed', now: '2026-01-17T22:00:00Z', expected: true },
      {
        name: 'its day made a holiday meanwhile: missed',
        now: '2026-01-16T08:05:00Z',
        policy: { ...WAKES, holidays: ['2026-01-16'] },
        expected: true,
      },
    ];
    for (const c of missed) {
      it(`the wake-up of Friday 08:00 ${c.name}: ${c.expected ? 'skipped' : 'done'}`, () => {
        assert.equal(wakeUpMissed(at('2026-01-16T08:00:00Z'), c.policy ?? WAKES, at(c.now)), c.expected);
      });
    }

    const due: { name: string; state: EnvironmentState; timing?: Partial<typeof wakeTiming>; expected: string | null }[] = [
      {
        name: 'stopped at 19:00: the AWS re-check at 01:00 comes before the wake-up at 08:00',
        state: stopped({ wakeAt: '2026-01-16T08:00:00.000Z' }),
        expected: 'aws-recheck at 2026-01-16T01:00:00.000Z',
      },
      {
        name: 'the last re-check before it done: the wake-up, not dispatched ahead',
        state: stopped({ awsCheckedAt: '2026-01-16T07:00:00.000Z', wakeAt: '2026-01-16T08:00:00.000Z' }),
        expected: 'wake-up at 2026-01-16T08:00:00.000Z',
      },
      {
        name: 'a re-check running: the wake-up still comes',
        state: stopped({ wakeAt: '2026-01-16T08:00:00.000Z' }),
        timing: { recheckInFlight: true },
        expected: 'wake-up at 2026-01-16T08:00:00.000Z',
      },
      {
        name: 'an AWS follow-up of the stop due sooner comes first',
        state: stopped({
          awsCheckedAt: '2026-01-16T07:58:00.000Z',
          wakeAt: '2026-01-16T08:00:00.000Z',
          awsFollowUp: { action: 'stop', since: '2026-01-16T07:58:00.000Z', looks: 0 },
        }),
        expected: 'aws-follow-up at 2026-01-16T07:59:00.000Z',
      },
      {
        name: 'a follow-up later than the wake-up waits for it',
        state: stopped({
          awsCheckedAt: '2026-01-16T07:59:30.000Z',
          wakeAt: '2026-01-16T08:00:00.000Z',
          awsFollowUp: { action: 'stop', since: '2026-01-16T07:59:30.000Z', looks: 0 },
        }),
        expected: 'wake-up at 2026-01-16T08:00:00.000Z',
      },
      {
        name: 'histories from before wake-ups (the patch not set): never',
        state: stopped({ awsCheckedAt: '2026-01-16T07:00:00.000Z', wakeAt: '2026-01-16T08:00:00.000Z' }),
        timing: { wakeUps: false },
        expected: 'aws-recheck at 2026-01-16T13:00:00.000Z',
      },
      {
        name: 'disabled and stopped: no wake-up',
        state: stopped({ enabled: false, awsCheckedAt: '2026-01-16T07:00:00.000Z', wakeAt: '2026-01-16T08:00:00.000Z' }),
        expected: 'aws-recheck at 2026-01-16T13:00:00.000Z',
      },
      {
        name: 'running: the warnings and the shutdown, never a wake-up',
        state: running({ wakeAt: '2026-01-16T08:00:00.000Z' }),
        expected: 'warning 60 at 2026-01-15T18:00:00.000Z',
      },
    ];
    for (const c of due) {
      it(`due next: ${c.name} -> ${c.expected ?? 'nothing'}`, () => {
        const event = nextEvent(c.state, WAKES, { ...wakeTiming, ...c.timing });
        assert.equal(describeEvent(event), c.expected);
        if (event?.kind === 'wake-up') assert.equal(dueAt(event, wakeTiming.dispatchAheadMs), event.at.getTime());
      });
    }

    const shown: { name: string; state: EnvironmentState; policy?: EnvironmentPolicy; expected: string | null }[] = [
      { name: 'stopped: the planned one', state: stopped({ wakeAt: '2026-01-16T08:00:00.000Z' }), expected: '2026-01-16T08:00:00.000Z' },
      {
        name: "running on Friday: Monday's, after tonight's shutdown",
        state: running({ shutdownAt: '2026-01-16T19:00:00.000Z' }),
        expected: '2026-01-19T08:00:00.000Z',
      },
      { name: 'running without a wake time: none', state: running(), policy: weekdayPolicy(), expected: null },
      { name: 'disabled: none', state: running({ enabled: false, shutdownAt: null }), expected: null },
      {
        name: 'stopped with the scheduler off: none',
        state: stopped({ enabled: false, wakeAt: '2026-01-16T08:00:00.000Z' }),
        expected: null,
      },
    ];
    for (const c of shown) {
      it(`status shows: ${c.name}`, () => {
        assert.equal(upcomingWakeUp(c.state, c.policy ?? WAKES)?.toISOString() ?? null, c.expected);
      });
    }
  });

  describe('a follow-up look at AWS in transition', () => {
    const db = { kind: 'rds-instance', id: 'db-1', region: 'eu-west-1', name: 'orders-db' } as const;
    const report = (...resources: AwsResourceResult[]): AwsActionReport => ({
      namespace: 'dev1',
      action: 'start',
      source: 'live',
      resources,
      notes: [],
      durationMs: 0,
    });
    const busy = {
      half: 'aws',
      action: 'start',
      outcome: 'busy',
      detail: 'AWS: rds-instance orders-db is still stopping: started once it has stopped',
    } as const;
    const follow: AwsFollowUp = {
      action: 'start',
      since: '2026-01-15T10:00:00.000Z',
      looks: 3,
      pending: [{ what: 'rds-instance orders-db', state: 'stopping' }],
    };
    const kubernetes: HalfProblem = { half: 'kubernetes', action: 'start', detail: 'kept: not the AWS half' };
    const cases: {
      name: string;
      now: string;
      look: { report?: AwsActionReport; problems: HalfProblem[] };
      expected: { looks: number | null; problems: string[]; done?: string };
    }[] = [
      {
        name: 'still stopping: followed on',
        now: '2026-01-15T10:04:00Z',
        look: { report: report({ ...db, outcome: 'busy', before: 'stopping', after: 'stopping' }), problems: [busy] },
        expected: { looks: 4, problems: [kubernetes.detail, busy.detail] },
      },
      {
        name: 'stopped at last and started: over, and says so',
        now: '2026-01-15T10:05:00Z',
        look: { report: report({ ...db, outcome: 'changed', before: 'stopped', after: 'starting' }), problems: [] },
        expected: {
          looks: null,
          problems: [kubernetes.detail],
          done: 'AWS: started rds-instance orders-db at 2026-01-15 10:05 UTC, once stopping had finished',
        },
      },
      {
        name: 'AWS unreadable within the hour: followed on, the database still named',
        now: '2026-01-15T10:05:00Z',
        look: { problems: [{ half: 'aws', action: 'start', detail: 'AWS could not start: timeout' }] },
        expected: { looks: 4, problems: [kubernetes.detail, busy.detail, 'AWS could not start: timeout'] },
      },
      {
        name: 'still stopping after the hour: given up, with what to do',
        now: '2026-01-15T11:00:00Z',
        look: { report: report({ ...db, outcome: 'busy', before: 'stopping', after: 'stopping' }), problems: [busy] },
        expected: {
          looks: null,
          problems: [kubernetes.detail, 'AWS: rds-instance orders-db still stopping after 1h: not started; start the environment again'],
          done: 'AWS: nothing left to start at 2026-01-15 11:00 UTC',
        },
      },
      {
        name: 'AWS unreadable to the end of the hour: given up, naming the database it never started',
        now: '2026-01-15T11:00:00Z',
        look: { problems: [{ half: 'aws', action: 'start', detail: 'AWS could not start: timeout' }] },
        expected: {
          looks: null,
          problems: [
            kubernetes.detail,
            'AWS could not start: timeout',
            'AWS: rds-instance orders-db was stopping and AWS could not be read since: not started; start the environment again',
          ],
          done: 'AWS: gave up following at 2026-01-15 11:00 UTC',
        },
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const outcome = afterFollowUpLook(follow, [kubernetes, busy], c.look, weekdayPolicy(), at(c.now));
        assert.equal(outcome.followUp?.looks ?? null, c.expected.looks);
        assert.deepEqual(
          outcome.problems.map((p) => p.detail),
          c.expected.problems,
        );
        assert.equal(outcome.done, c.expected.done);
      });
    }
  });

  describe('drift while stopped', () => {
    const MIN = 60_000;
    const watch = (overrides = {}) => ({ checkedAt: '2026-01-15T19:00:00.000Z', intervalMs: 5 * MIN, reported: [], ...overrides });
    const events: { name: string; state: EnvironmentState; driftChecks?: boolean; driftInFlight?: boolean; expected: string | null }[] = [
      {
        name: 'looked at 19:00 every 5 minutes: next at 19:05, before the AWS re-check',
        state: stopped({ drift: watch() }),
        expected: 'drift-recheck at 2026-01-15T19:05:00.000Z',
      },
      {
        name: 'just stopped, the interval not learned yet: a first look at once',
        state: stopped({ drift: watch({ intervalMs: undefined }) }),
        expected: 'drift-recheck at 2026-01-15T19:00:00.000Z',
      },
      {
        name: 'a change signalled at 19:02: looked at then',
        state: stopped({ drift: watch({ suspectedAt: '2026-01-15T19:02:00.000Z' }) }),
        expected: 'drift-recheck at 2026-01-15T19:02:00.000Z',
      },
      {
        name: 'a change signalled right after a look: no sooner than 10 s after it',
        state: stopped({ drift: watch({ suspectedAt: '2026-01-15T19:00:01.000Z' }) }),
        expected: 'drift-recheck at 2026-01-15T19:00:10.000Z',
      },
      {
        name: 'a look running already: the AWS re-check is next',
        state: stopped({ drift: watch() }),
        driftInFlight: true,
        expected: 'aws-recheck at 2026-01-16T01:00:00.000Z',
      },
      {
        name: 'a history from before drift checks: only AWS',
        state: stopped({ drift: watch() }),
        driftChecks: false,
        expected: 'aws-recheck at 2026-01-16T01:00:00.000Z',
      },
      {
        name: 'running: no drift look, whatever the watch left behind',
        state: running({ warningsSent: [60, 30, 15], drift: watch() }),
        expected: 'shutdown at 2026-01-15T19:00:00.000Z',
      },
    ];
    for (const c of events) {
      it(`${c.name} -> ${c.expected ?? 'nothing'}`, () => {
        const event = nextEvent(c.state, weekdayPolicy(), {
          ...timing,
          driftChecks: c.driftChecks ?? true,
          driftInFlight: c.driftInFlight ?? false,
        });
        assert.equal(describeEvent(event), c.expected);
      });
    }

    it('a stop starts the watch afresh: nothing told, the learned interval kept', () => {
      const now = new Date('2026-01-16T19:00:00Z');
      assert.deepEqual(driftWatchAfterStop(watch({ reported: ['Deployment/api'] }), now), {
        checkedAt: now.toISOString(),
        intervalMs: 5 * MIN,
        reported: [],
      });
      assert.deepEqual(driftWatchAfterStop(null, now), { checkedAt: now.toISOString(), reported: [] });
    });

    it('a look begins: the next waits an interval from now even if this one fails, the first one included (no interval learned yet)', () => {
      const now = new Date('2026-01-15T19:00:30Z');
      const begun = driftLookBegun(watch({ intervalMs: undefined, suspectedAt: '2026-01-15T19:00:20.000Z' }), now);
      assert.deepEqual(begun, { checkedAt: now.toISOString(), intervalMs: 5 * MIN, reported: [], suspectedAt: null });
      assert.equal(
        describeEvent(nextEvent(stopped({ drift: begun }), weekdayPolicy(), { ...timing, driftChecks: true })),
        'drift-recheck at 2026-01-15T19:05:30.000Z',
      );
      assert.equal(driftLookBegun(watch({ intervalMs: 2 * MIN }), now).intervalMs, 2 * MIN);
    });

    const api: DriftedWorkload = { kind: 'Deployment', name: 'api', replicas: 3, created: false, by: 'argocd-controller', restopped: true };
    const actions: { name: string; mode: 'restop' | 'report' | 'off'; awake: DriftedWorkload[]; enabled: boolean; expected: string }[] = [
      { name: 'DRIFT=restop, something awake: put back to sleep', mode: 'restop', awake: [api], enabled: true, expected: 'restop' },
      { name: 'DRIFT=report: only told', mode: 'report', awake: [api], enabled: true, expected: 'report' },
      { name: 'DRIFT=off: nothing', mode: 'off', awake: [api], enabled: true, expected: 'nothing' },
      { name: 'nothing awake: nothing', mode: 'restop', awake: [], enabled: true, expected: 'nothing' },
      {
        name: 'scheduler=disabled (never put to sleep by the scheduler): only told',
        mode: 'restop',
        awake: [api],
        enabled: false,
        expected: 'report',
      },
    ];
    for (const c of actions) {
      it(`${c.name} -> ${c.expected}`, () => assert.equal(driftAction({ mode: c.mode, awake: c.awake }, c.enabled), c.expected));
    }

    it('each workload is told once per stop, however often it wakes again; a new one is told on its own', () => {
      const now = new Date('2026-01-15T19:05:00Z');
      const first = afterDriftLook(watch(), { mode: 'restop', intervalMs: 2 * MIN, awake: [api] }, now);
      assert.deepEqual(first.tell, [api]);
      assert.deepEqual(first.watch, { checkedAt: now.toISOString(), intervalMs: 2 * MIN, reported: ['Deployment/api'], suspectedAt: null });
      const web: DriftedWorkload = { ...api, name: 'web', created: true, replicas: 1 };
      const again = afterDriftLook(first.watch, { mode: 'restop', intervalMs: 2 * MIN, awake: [api, web] }, now);
      assert.deepEqual(again.tell, [web]);
      assert.deepEqual(again.watch.reported, ['Deployment/api', 'Deployment/web']);
      assert.deepEqual(afterDriftLook(again.watch, { mode: 'restop', intervalMs: 2 * MIN, awake: [api] }, now).tell, []);
    });

    it('DRIFT=off on the worker: no more looks until the next stop, which looks once to learn the setting again', () => {
      const now = new Date('2026-01-15T19:05:00Z');
      const off = afterDriftLook(watch(), { mode: 'off', intervalMs: 5 * MIN, awake: [] }, now).watch;
      assert.equal(off.off, true);
      assert.equal(nextEvent(stopped({ drift: off }), weekdayPolicy(), { ...timing, driftChecks: true })?.kind === 'drift-recheck', false);
      const restopped = driftWatchAfterStop(off, now);
      assert.equal(
        describeEvent(nextEvent(stopped({ drift: restopped }), weekdayPolicy(), { ...timing, driftChecks: true })),
        `drift-recheck at ${new Date(now.getTime() + 5 * MIN).toISOString()}`,
      );
    });
  });
});
