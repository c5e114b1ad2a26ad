/** The replies of /devenv rendered from plain data (src/slack/replies.ts), and the handlers in front of a gateway of the test's own. */
import assert from 'node:assert/strict';
import { createSlackHandlers } from '../src/api/slack/handlers';
import { createResponder } from '../src/api/slack/responder';
import { OperationError, type EnvironmentSummary, type EnvironmentsClient } from '../src/client/environments';
import { createLogger } from '../src/logger';
import { environmentListMessage, statusMessage, supportPodListMessage, usageMessage } from '../src/slack/replies';
import type { EnvironmentStatus } from '../src/workflows/environment/definitions';
import { everyDayPolicy } from './support/policies';
import { slackFields, visibleText } from './support/slack';

const summary = (namespace: string, nextShutdown: string | null): EnvironmentSummary => ({
  namespace,
  phase: nextShutdown ? 'running' : 'stopped',
  enabled: true,
  nextShutdown,
  policy: null,
  dispatchAheadMs: null,
  runId: 'run',
  startedAt: '2026-01-05T08:00:00.000Z',
});

const status: EnvironmentStatus = {
  namespace: 'dev1',
  phase: 'running',
  enabled: true,
  shutdownAt: '2026-01-05T19:00:00.000Z',
  shutdownDescription: 'today 19:00 UTC, in 7h',
  wakeDescription: null,
  prolongedMinutes: 90,
  warningsSent: [],
  lastAction: { action: 'start', by: 'U0ALICE0001', at: '2026-01-05T08:00:00.000Z' },
  workloads: 'running',
  policy: everyDayPolicy(),
};

describe('Slack replies', function () {
  const now = new Date('2026-01-05T12:00:00.000Z');

  it('list: one line per environment with when it shuts down; none enrolled says so', function () {
    const text = visibleText({ ...environmentListMessage([summary('dev1', '2026-01-05T19:00:00.000Z'), summary('dev2', null)], now) });
    assert.match(text, /2 environments/);
    assert.match(text, /\*dev1\* {2}running · shuts down .*, in 7h/);
    assert.match(text, /\*dev2\* {2}stopped · no scheduled shutdown/);
    assert.match(visibleText({ ...environmentListMessage([], now) }), /No environments are enrolled yet/);
  });

  it('status: phase, next shutdown with its prolongation, who acted last, and workloads that could not be read', function () {
    const text = visibleText({ ...statusMessage(status, 'unavailable') });
    assert.match(text, /\*dev1\* is \*running\*/);
    assert.match(text, /Next shutdown: today 19:00 UTC, in 7h \(prolonged 1h30m\)/);
    assert.match(text, /Last: start by <@U0ALICE0001>/);
    assert.match(text, /Workloads could not be read from Kubernetes/);
  });

  it('status: the workloads as the cluster has them, one not yet Ready with what its controller lacks', function () {
    const text = visibleText({
      ...statusMessage(status, [
        { kind: 'StatefulSet', name: 'db', ready: 1, desired: 1 },
        { kind: 'Deployment', name: 'api', ready: 0, desired: 2, notReady: '0 of 2 Ready, 0 available' },
      ]),
    });
    assert.match(text, /StatefulSet\/db {2}1\/1\n/);
    assert.match(text, /Deployment\/api {2}0\/2 {2}not Ready: 0 of 2 Ready, 0 available/);
  });

  it('status of a stopped environment with a morning wake-up: when it wakes, in the blocks and the fallback text; none said without one', function () {
    const stopped: EnvironmentStatus = {
      ...status,
      phase: 'stopped',
      workloads: 'stopped',
      shutdownAt: null,
      shutdownDescription: null,
      prolongedMinutes: 0,
      wakeAt: '2026-01-06T08:00:00.000Z',
      wakeDescription: 'tomorrow 08:00 UTC, in 20h 0m',
    };
    const reply = statusMessage(stopped, undefined);
    assert.match(visibleText({ ...reply }), /No shutdown scheduled: it is not running.\nNext wake-up: tomorrow 08:00 UTC, in 20h 0m/);
    assert.equal(reply.text, 'dev1 is stopped. Next wake-up tomorrow 08:00 UTC, in 20h 0m.');
    assert.doesNotMatch(visibleText({ ...statusMessage(status, undefined) }), /wake-up/);
  });

  it('support list: the cluster unread is said, the workflows listed anyway', function () {
    const text = visibleText({ ...supportPodListMessage({ supportPods: [], podsUnavailable: 'connection refused' }) });
    assert.match(text, /No support pods right now/);
    assert.match(text, /could not be read from Kubernetes \(connection refused\)/);
  });

  it('usage: what the user typed is escaped, in the fallback text as in the blocks', function () {
    const fields = slackFields({ ...usageMessage('"<!channel>" is not a command', ['/devenv help']) });
    for (const field of fields) assert.doesNotMatch(field, /<!channel>/);
  });
});

describe('Slack handlers in front of a gateway', function () {
  const logger = createLogger('silent');
  const gone = new OperationError(
    'namespace-gone',
    'the namespace dev1 is gone from the cluster, so there is nothing to start, stop or prolongate; its environment is retired at the next reconcile',
  );
  const environments = {
    prolongate: () => Promise.reject(gone),
  } as Partial<EnvironmentsClient> as EnvironmentsClient;
  const handlers = createSlackHandlers({ environments, responder: createResponder({ logger, origins: ['http://127.0.0.1:9'] }), logger });

  it("a namespace gone from the cluster is told in the gateway's words, not as an internal error", async function () {
    const { status: code, reply } = await handlers.command({
      user_id: 'U0ALICE0001',
      channel_id: 'C0DEVS0001',
      text: 'prolongate dev1 for 1h',
      response_url: 'http://127.0.0.1:9/response/1',
    });
    assert.equal(code, 200);
    const text = visibleText(reply as unknown as Record<string, unknown>);
    assert.match(text, /Could not prolongate \*dev1\* by 1h: the namespace dev1 is gone from the cluster/);
    assert.doesNotMatch(text, /internal error/);
  });
});
