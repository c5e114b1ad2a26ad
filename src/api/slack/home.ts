/**
 * The App Home: who sees it, and when it is published again (`views.publish`, bot token).
 * Slack says when someone opens the tab (`app_home_opened`) but never when they leave it,
 * so "has it open" is "opened it within the last hour", remembered in this process for a
 * bounded number of people. Whenever an environment changes, the Home of those people and
 * of the environment's owners is published again: at once for a change made through this
 * process (a command or a button), and within a poll interval for one made elsewhere (the
 * schedule, a drift re-stop, REST, another replica), found by comparing the listing with
 * the one before.
 *
 * Publishing never holds up a command: it runs in the background, a bounded few at a time
 * and spaced to stay within Slack's rate tier for views.publish; a failure is logged and the
 * next change tries again. A person waiting in the queue is published once, with the state
 * as it is when their turn comes.
 */
import { webApi } from '@slack/bolt';
import { slackWebClient } from '../../slack/web-client';
import type { EnvironmentSummary, EnvironmentsClient } from '../../client/environments';
import { isSlackGroupId, isSlackUserId } from '../../domain/slack-ids';
import type { GroupMembers } from '../../domain/owners';
import type { Logger } from '../../logger';
import type { SlackMessage } from '../../slack/blocks';
import { homeTab } from '../../slack/home';
import { allowListVerdict, type SlackAllowList } from './handlers';

export interface SlackHomeOptions {
  environments: EnvironmentsClient;
  /** Bot token (`xoxb-...`); never logged. */
  token: string;
  slackApiUrl?: string;
  logger: Logger;
  /** The members of owner groups, whose Home is published too; without it only owners named by id are. */
  membersOf?: GroupMembers;
  /** How often the listing is compared with the one before, for changes made elsewhere. */
  pollIntervalMs?: number;
  /** How long after opening the tab someone counts as having it open. */
  openForMs?: number;
  /** How many people are remembered as having it open; the longest ago is forgotten first. */
  maxOpen?: number;
  /** The READ family's allow-list (SLACK_ALLOW_READ_*): the Home lists what `list` does, to those `list` is for. */
  allow?: SlackAllowList;
  /** Publishes under way at once. */
  concurrency?: number;
  /** Publishes begun per minute, at most. */
  perMinute?: number;
}

export interface SlackHome {
  /** `app_home_opened`: publishes that person's Home and remembers them as having it open. */
  opened(user: string): void;
  /** An environment changed through this process: the Homes that show it are published again. */
  changed(namespace: string): void;
  /** The outcome of a click on someone's Home, shown at its top until the next one. */
  notice(user: string, message: SlackMessage): void;
  /** Looks for changes made elsewhere every poll interval, from now on. */
  start(): void;
  stop(): void;
}

const DEFAULT_POLL_INTERVAL_MS = 30_000;
const DEFAULT_OPEN_FOR_MS = 60 * 60_000;
const DEFAULT_MAX_OPEN = 500;
const DEFAULT_CONCURRENCY = 4;
/**
 * views.publish is Tier 4 (100+ a minute per workspace), shared by every api replica: two
 * by default (k8s/, the chart), together within it.
 */
const DEFAULT_PER_MINUTE = 50;
/** A listing this recent is good enough for someone opening the tab. */
const FRESH_LISTING_MS = 5_000;
/** A notice older than this is about something the reader has moved on from. */
const NOTICE_FOR_MS = 15 * 60_000;
const REQUEST_TIMEOUT_MS = 5_000;
/** How many members of one owner group have their Home published for a change. */
const MAX_GROUP_MEMBERS = 100;

interface Reader {
  openedAt: number | undefined;
  notice?: { message: SlackMessage; at: Date };
}

/** What the Home shows of an environment: a change in any of it is a reason to publish again. */
const fingerprint = (e: EnvironmentSummary): string => JSON.stringify([e.phase, e.nextShutdown, e.enabled, e.policy?.owners ?? []]);

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

export function createSlackHome(options: SlackHomeOptions): SlackHome {
  const { environments, logger } = options;
  const pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  const openForMs = options.openForMs ?? DEFAULT_OPEN_FOR_MS;
  const maxOpen = options.maxOpen ?? DEFAULT_MAX_OPEN;
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const spacingMs = 60_000 / (options.perMinute ?? DEFAULT_PER_MINUTE);
  const slack = slackWebClient(options.token, { slackApiUrl: options.slackApiUrl, timeoutMs: REQUEST_TIMEOUT_MS });

  /** In the order they last opened the tab or clicked on it, the longest ago first. */
  const readers = new Map<string, Reader>();
  let listing: { at: number; environments: EnvironmentSummary[] } | undefined;
  let listingProblem: string | undefined;
  /** The last listing's fingerprints; undefined until there has been one, so the first finds nothing changed. */
  let known: Map<string, { print: string; owners: readonly string[] }> | undefined;

  function remember(user: string, update: (reader: Reader) => void): void {
    const reader = readers.get(user) ?? { openedAt: undefined };
    readers.delete(user);
    update(reader);
    readers.set(user, reader);
    while (readers.size > maxOpen) readers.delete(readers.keys().next().value!);
  }

  const hasItOpen = (reader: Reader, now: number) => reader.openedAt !== undefined && now - reader.openedAt < openForMs;

  // Compared one at a time: two at once would each find the other's changes.
  let syncing: Promise<void> = Promise.resolve();
  let forcedNext = new Set<string>();
  let syncQueued = false;

  function sync(forced?: string): Promise<void> {
    if (forced) forcedNext.add(forced);
    if (syncQueued) return syncing;
    syncQueued = true;
    syncing = syncing.then(async () => {
      syncQueued = false;
      const changedHere = [...forcedNext];
      forcedNext = new Set();
      await compare(changedHere).catch((err: unknown) => {
        listingProblem = 'Temporal did not answer';
        logger.warn({ error: String(err) }, 'App Home: the environments could not be listed');
      });
    });
    return syncing;
  }

  async function compare(changedHere: readonly string[]): Promise<void> {
    const listed = await environments.list();
    // The listing can lag a change just made; the changed environments are read from their own runs.
    const fresh = await Promise.all(changedHere.map((namespace) => environments.running(namespace).catch(() => 'unread' as const)));
    const byName = new Map(listed.map((e) => [e.namespace, e]));
    changedHere.forEach((namespace, i) => {
      const now = fresh[i];
      // Undefined: retired since the listing was taken.
      if (now === undefined) byName.delete(namespace);
      else if (now !== 'unread') byName.set(namespace, now);
    });
    const current = [...byName.values()].sort((a, b) => a.namespace.localeCompare(b.namespace));
    listing = { at: Date.now(), environments: current };
    listingProblem = undefined;

    const before = known;
    known = new Map(current.map((e) => [e.namespace, { print: fingerprint(e), owners: e.policy?.owners ?? [] }]));
    if (!before && changedHere.length === 0) return;
    const changed = new Map<string, readonly string[]>();
    for (const namespace of changedHere) changed.set(namespace, known.get(namespace)?.owners ?? before?.get(namespace)?.owners ?? []);
    for (const [namespace, now] of known) if (before && before.get(namespace)?.print !== now.print) changed.set(namespace, now.owners);
    for (const [namespace, was] of before ?? []) if (!known.has(namespace)) changed.set(namespace, was.owners);
    if (changed.size === 0) return;

    const audience = new Set<string>();
    const now = Date.now();
    for (const [user, reader] of readers) if (hasItOpen(reader, now)) audience.add(user);
    for (const owners of changed.values()) {
      for (const owner of owners) {
        if (isSlackUserId(owner)) audience.add(owner);
        else if (isSlackGroupId(owner) && options.membersOf) {
          const members = await options.membersOf(owner).catch(() => [] as readonly string[]);
          for (const member of members.slice(0, MAX_GROUP_MEMBERS)) audience.add(member);
        }
      }
    }
    logger.debug({ environments: [...changed.keys()], people: audience.size }, 'App Home: publishing again');
    // Someone the READ list keeps out has been told so when they opened it; nothing of a change is theirs to see.
    for (const user of audience) if (refusedReading(user) === 'ok') enqueue(user);
  }

  /** The Home is in no channel: a READ channels list keeps everyone out, as it would `list` outside those channels. */
  const refusedReading = (user: string) => allowListVerdict(options.allow, user, undefined);

  async function render(user: string) {
    const refused = refusedReading(user);
    if (refused !== 'ok') return homeTab({ environments: [], own: new Set(), refused: { user, by: refused } });
    const reader = readers.get(user);
    const notice = reader?.notice && Date.now() - reader.notice.at.getTime() < NOTICE_FOR_MS ? reader.notice : undefined;
    if (!listing) return homeTab({ environments: [], own: new Set(), notice, unavailable: listingProblem ?? 'not listed yet' });
    const shown = listing.environments;
    const owned = await Promise.all(shown.map((e) => environments.owns(user, e.policy?.owners ?? []).catch(() => false)));
    return homeTab({
      environments: shown,
      own: new Set(shown.filter((_, i) => owned[i]).map((e) => e.namespace)),
      notice,
      unavailable: listingProblem,
    });
  }

  const queue = new Set<string>();
  let active = 0;
  let nextStartAt = 0;
  let pausedUntil = 0;
  let stopped = false;

  function enqueue(user: string): void {
    if (stopped) return;
    queue.add(user);
    drain();
  }

  function drain(): void {
    while (active < concurrency && queue.size > 0) {
      const user = queue.values().next().value!;
      queue.delete(user);
      active++;
      void publish(user).finally(() => {
        active--;
        drain();
      });
    }
  }

  async function publish(user: string): Promise<void> {
    const startAt = Math.max(Date.now(), nextStartAt, pausedUntil);
    nextStartAt = startAt + spacingMs;
    if (startAt > Date.now()) await sleep(startAt - Date.now());
    if (stopped) return;
    try {
      // A rate limit met by another publish while this one waited holds this one too.
      while (Date.now() < pausedUntil && !stopped) await sleep(pausedUntil - Date.now());
      if (stopped) return;
      await slack.views.publish({ user_id: user, view: (await render(user)) as unknown as webApi.View });
    } catch (err) {
      const coded = err as { code?: string; retryAfter?: number; data?: { error?: string } };
      if (coded.code === webApi.ErrorCode.RateLimitedError) {
        // Slack's own word on when to come back; this person waits for it, after those already waiting.
        pausedUntil = Date.now() + (coded.retryAfter ?? 60) * 1000;
        queue.add(user);
      }
      logger.warn({ user, error: coded.data?.error ?? coded.code ?? String(err) }, 'App Home could not be published');
    }
  }

  let timer: NodeJS.Timeout | undefined;

  return {
    opened(user) {
      remember(user, (reader) => (reader.openedAt = Date.now()));
      const recent = listing && Date.now() - listing.at < FRESH_LISTING_MS;
      void (recent ? Promise.resolve() : sync()).then(() => enqueue(user));
    },
    changed(namespace) {
      void sync(namespace);
    },
    notice(user, message) {
      // A click on the Home is as good as opening it.
      remember(user, (reader) => {
        reader.openedAt = Date.now();
        reader.notice = { message, at: new Date() };
      });
      enqueue(user);
    },
    start() {
      if (timer || stopped) return;
      void sync();
      timer = setInterval(() => void sync(), pollIntervalMs);
      timer.unref();
    },
    stop() {
      stopped = true;
      clearInterval(timer);
      queue.clear();
    },
  };
}
