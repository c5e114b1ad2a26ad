/**
 * What an environment saved by sleeping: its ledger of sleeps (what each stop put to sleep,
 * from when to when), and the figures and money that ledger adds up to over a period. Plain
 * functions, no Temporal: the workflow appends to the ledger and carries it in its memo, the
 * API reads the memos, and test/savings.test.ts checks the arithmetic.
 *
 * A sleep counts the pod-template requests of every workload a stop scaled down, times the
 * replicas it scaled down, and the EC2/RDS instances it stopped, by type ("ec2 t3.medium").
 */

/** What one stop put to sleep. */
export interface Slept {
  /** CPU requests of the pods no longer running, in millicores. */
  cpuMillicores: number;
  memoryBytes: number;
  /** Instances stopped, by `<ec2|rds> <type>`. */
  instances: Record<string, number>;
  /**
   * Which ones, by the same key (`region/id`), so two stops of one sleep that each stopped
   * an instance of a type count both; absent from sleeps recorded before it was kept.
   */
  instanceIds?: Record<string, string[]>;
}

/** One sleep of the ledger: from the stop to the start that ended it (null while it lasts). */
export interface Sleep extends Slept {
  from: string;
  to: string | null;
}

/** Sleeps are kept this long after they ended: a month and a little more for `savings month`. */
export const LEDGER_DAYS = 62;
/** However many stops and starts a day brings, the ledger (and the memo that carries it) stays bounded. */
export const LEDGER_ENTRIES = 150;
/** Instance types one sleep keeps apart; the rest are counted as `other`. */
export const INSTANCE_TYPES_KEPT = 20;
/** Instance ids one sleep keeps of a type; past them, a type is counted by the larger count only. */
export const INSTANCE_IDS_KEPT = 50;

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
const GIB = 1024 ** 3;

export const nothingSlept = (): Slept => ({ cpuMillicores: 0, memoryBytes: 0, instances: {} });

// ---- Requests, as Kubernetes computes them for a pod.

/** The resource figures of one container, as its spec has them. */
export interface ContainerResources {
  resources?: { requests?: Record<string, unknown>; limits?: Record<string, unknown> };
  /** `Always` on an init container makes it a sidecar, which runs beside the app containers. */
  restartPolicy?: string;
}

export interface PodSpecResources {
  containers?: ContainerResources[];
  initContainers?: ContainerResources[];
  overhead?: Record<string, unknown>;
}

/** Powers of ten of the decimal suffixes, and of 1024 of the binary ones. */
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const BINARY: Record<string, number> = { Ki: 1, Mi: 2, Gi: 3, Ti: 4, Pi: 5, Ei: 6 };

/**
 * A Kubernetes quantity ("250m", "1.5", "512Mi", "1e3") as a whole number of its base unit,
 * or of thousandths of it with `milli`, rounded up as the apiserver's Value and MilliValue do;
 * undefined when it is not one. Decimal digits are counted exactly, never through a float.
 */
export function parseQuantity(value: unknown, { milli = false }: { milli?: boolean } = {}): number | undefined {
  const scale = milli ? 1000 : 1;
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.ceil(value * scale) : undefined;
  if (typeof value !== 'string') return undefined;
  const match = /^\+?(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$/.exec(value.trim());
  if (!match) return undefined;
  const [whole = '', fraction = ''] = match[1]!.split('.');
  const digits = BigInt(`${whole}${fraction}` || '0');
  const exponent = (match[2] !== undefined ? Number(match[2]) : (DECIMAL[match[3] ?? ''] ?? 0)) + (milli ? 3 : 0) - fraction.length;
  // Past any count a number holds: the exponent alone says so, without building the number.
  if (digits > 0n && exponent > 400) return undefined;
  const scaled = digits * 1024n ** BigInt(BINARY[match[3] ?? ''] ?? 0);
  let amount: bigint;
  if (exponent >= 0) amount = scaled * 10n ** BigInt(exponent);
  else {
    const divisor = 10n ** BigInt(-exponent);
    amount = scaled / divisor + (scaled % divisor > 0n ? 1n : 0n);
  }
  const result = Number(amount);
  return Number.isFinite(result) ? result : undefined;
}

/** A container's request of a resource (CPU in millicores, memory in bytes): its request, else its limit (which the apiserver copies into a missing request), else 0. */
function requestOf(container: ContainerResources, resource: 'cpu' | 'memory'): number {
  const milli = resource === 'cpu';
  return (
    parseQuantity(container.resources?.requests?.[resource], { milli }) ??
    parseQuantity(container.resources?.limits?.[resource], { milli }) ??
    0
  );
}

/**
 * A pod's effective request of a resource, as the scheduler counts it: the larger of its app
 * containers with its sidecars, and of each init container with the sidecars started before
 * it; plus the pod's overhead.
 */
function effective(spec: PodSpecResources, resource: 'cpu' | 'memory'): number {
  let sidecars = 0;
  let initPeak = 0;
  for (const init of spec.initContainers ?? []) {
    const amount = requestOf(init, resource);
    if (init.restartPolicy === 'Always') {
      sidecars += amount;
      initPeak = Math.max(initPeak, sidecars);
    } else initPeak = Math.max(initPeak, sidecars + amount);
  }
  const app = (spec.containers ?? []).reduce((sum, c) => sum + requestOf(c, resource), 0) + sidecars;
  const overhead = requestOf({ resources: { requests: spec.overhead } }, resource);
  return Math.max(app, initPeak) + overhead;
}

/** What one pod of the template requests, CPU in millicores and memory in bytes, whole numbers. */
export function podRequests(spec: PodSpecResources | undefined): { cpuMillicores: number; memoryBytes: number } {
  if (!spec) return { cpuMillicores: 0, memoryBytes: 0 };
  return { cpuMillicores: effective(spec, 'cpu'), memoryBytes: effective(spec, 'memory') };
}

// ---- The ledger.

/** Of two stops of one sleep: the instance ids of each type, together, as many as are kept. */
function idsTogether(a: Slept['instanceIds'], b: Slept['instanceIds'], kept: Record<string, number>): Slept['instanceIds'] {
  const together: Record<string, string[]> = {};
  for (const type of Object.keys(kept)) {
    const ids = [...new Set([...(a?.[type] ?? []), ...(b?.[type] ?? [])])].sort();
    if (ids.length > 0) together[type] = ids.slice(0, INSTANCE_IDS_KEPT);
  }
  return Object.keys(together).length > 0 ? together : undefined;
}

function boundedInstances(instances: Record<string, number>): Record<string, number> {
  const entries = Object.entries(instances).filter(([, n]) => n > 0);
  if (entries.length <= INSTANCE_TYPES_KEPT) return Object.fromEntries(entries);
  entries.sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const kept = Object.fromEntries(entries.slice(0, INSTANCE_TYPES_KEPT - 1));
  kept.other = entries.slice(INSTANCE_TYPES_KEPT - 1).reduce((sum, [, n]) => sum + n, 0);
  return kept;
}

/** Sleeps ended more than LEDGER_DAYS before `now` are dropped, and the oldest past LEDGER_ENTRIES. */
export function bounded(ledger: readonly Sleep[], now: Date): Sleep[] {
  const horizon = now.getTime() - LEDGER_DAYS * DAY_MS;
  return ledger.filter((s) => s.to === null || Date.parse(s.to) >= horizon).slice(-LEDGER_ENTRIES);
}

const open = (ledger: readonly Sleep[]): Sleep | undefined => (ledger.at(-1)?.to === null ? ledger.at(-1) : undefined);

/**
 * The ledger after a stop at `at` that put `slept` to sleep. A stop of an environment already
 * asleep (a second stop, a re-stop) continues that sleep. Given `whole`, the stop's workload
 * figures are everything asleep (what it scaled and what it found asleep) and replace the
 * sleep's; a stop recorded before it reported what it found asleep counted only what it
 * scaled, so each figure is then the larger of the two, never their sum.
 */
export function afterStop(ledger: readonly Sleep[], at: Date, slept: Slept, { whole = false }: { whole?: boolean } = {}): Sleep[] {
  const current = open(ledger);
  if (current) {
    const instances = { ...current.instances };
    for (const [type, n] of Object.entries(slept.instances)) instances[type] = Math.max(instances[type] ?? 0, n);
    // Instances the two stopped that are not the same ones add up, as far as their ids tell.
    for (const [type, ids] of Object.entries(idsTogether(current.instanceIds, slept.instanceIds, instances) ?? {}))
      instances[type] = Math.max(instances[type] ?? 0, ids.length);
    const kept = boundedInstances(instances);
    const { instanceIds: _before, ...rest } = current;
    const instanceIds = idsTogether(current.instanceIds, slept.instanceIds, kept);
    const merged: Sleep = {
      ...rest,
      cpuMillicores: whole ? slept.cpuMillicores : Math.max(current.cpuMillicores, slept.cpuMillicores),
      memoryBytes: whole ? slept.memoryBytes : Math.max(current.memoryBytes, slept.memoryBytes),
      instances: kept,
      ...(instanceIds ? { instanceIds } : {}),
    };
    return bounded([...ledger.slice(0, -1), merged], at);
  }
  const { instanceIds: given, ...figures } = slept;
  const kept = boundedInstances(slept.instances);
  const instanceIds = idsTogether(given, undefined, kept);
  return bounded(
    [...ledger, { from: at.toISOString(), to: null, ...figures, instances: kept, ...(instanceIds ? { instanceIds } : {}) }],
    at,
  );
}

/** The ledger after a drift re-stop put to sleep what the stop had not counted (workloads created since): added to the sleep it extends. */
export function afterRestop(ledger: readonly Sleep[], at: Date, added: Slept): Sleep[] {
  const current = open(ledger);
  if (!current) return afterStop(ledger, at, added);
  const instances = { ...current.instances };
  for (const [type, n] of Object.entries(added.instances)) instances[type] = (instances[type] ?? 0) + n;
  const extended: Sleep = {
    ...current,
    cpuMillicores: current.cpuMillicores + added.cpuMillicores,
    memoryBytes: current.memoryBytes + added.memoryBytes,
    instances: boundedInstances(instances),
  };
  return bounded([...ledger.slice(0, -1), extended], at);
}

/** The ledger after a start (or the end of the environment) at `at`: the sleep that lasted ends. */
export function afterWake(ledger: readonly Sleep[], at: Date): Sleep[] {
  const current = open(ledger);
  if (!current) return bounded(ledger, at);
  const to = Math.max(at.getTime(), Date.parse(current.from));
  return bounded([...ledger.slice(0, -1), { ...current, to: new Date(to).toISOString() }], at);
}

// ---- Figures over a period.

/** Optional prices (SAVINGS_PRICE_*), per hour, in `currency`. */
export interface Prices {
  vcpuHour?: number;
  gibHour?: number;
  /** By instance type ("t3.medium", "db.t3.medium"), or by the ledger's own key ("ec2 t3.medium"). */
  instanceTypes?: Record<string, number>;
  currency?: string;
}

export interface Figures {
  hoursAsleep: number;
  cpuCoreHours: number;
  memoryGiBHours: number;
  instanceHours: Record<string, number>;
  /** In the prices' currency; null when no price is set. */
  cost: number | null;
}

export const pricesSet = (prices: Prices | undefined): boolean =>
  prices !== undefined &&
  (prices.vcpuHour !== undefined || prices.gibHour !== undefined || Object.keys(prices.instanceTypes ?? {}).length > 0);

/** The price of one hour of an instance kept by `key` ("ec2 t3.medium"): its own key, else its type alone; 0 without one. */
function instancePrice(prices: Prices, key: string): number {
  const table = prices.instanceTypes ?? {};
  return table[key] ?? table[key.slice(key.indexOf(' ') + 1)] ?? 0;
}

const round = (n: number, digits = 3): number => Math.round(n * 10 ** digits) / 10 ** digits;

/** The money of some figures at `prices` (what has no price counts nothing); null when there are none. */
export function costOf(figures: Omit<Figures, 'cost'>, prices: Prices | undefined): number | null {
  if (!prices || !pricesSet(prices)) return null;
  let cost = figures.cpuCoreHours * (prices.vcpuHour ?? 0) + figures.memoryGiBHours * (prices.gibHour ?? 0);
  for (const [key, hours] of Object.entries(figures.instanceHours)) cost += hours * instancePrice(prices, key);
  return round(cost, 2);
}

/** What the ledger saved within [from, to): each sleep's part of it, a sleep still lasting counted until `now`. */
export function figures(ledger: readonly Sleep[], from: Date, to: Date, now: Date, prices?: Prices): Figures {
  let hoursAsleep = 0;
  let cpuCoreHours = 0;
  let memoryGiBHours = 0;
  const instanceHours: Record<string, number> = {};
  for (const sleep of ledger) {
    const start = Math.max(Date.parse(sleep.from), from.getTime());
    const end = Math.min(sleep.to === null ? now.getTime() : Date.parse(sleep.to), to.getTime());
    if (!(end > start)) continue;
    const hours = (end - start) / HOUR_MS;
    hoursAsleep += hours;
    cpuCoreHours += (hours * sleep.cpuMillicores) / 1000;
    memoryGiBHours += (hours * sleep.memoryBytes) / GIB;
    for (const [type, n] of Object.entries(sleep.instances)) instanceHours[type] = (instanceHours[type] ?? 0) + hours * n;
  }
  const rounded = {
    hoursAsleep: round(hoursAsleep),
    cpuCoreHours: round(cpuCoreHours),
    memoryGiBHours: round(memoryGiBHours),
    instanceHours: Object.fromEntries(Object.entries(instanceHours).map(([k, v]) => [k, round(v)])),
  };
  return { ...rounded, cost: costOf({ hoursAsleep, cpuCoreHours, memoryGiBHours, instanceHours }, prices) };
}

/** Figures of several environments added up (hours asleep are environment-hours). */
export function total(all: readonly Figures[], prices?: Prices): Figures {
  const sum = { hoursAsleep: 0, cpuCoreHours: 0, memoryGiBHours: 0, instanceHours: {} as Record<string, number> };
  for (const f of all) {
    sum.hoursAsleep += f.hoursAsleep;
    sum.cpuCoreHours += f.cpuCoreHours;
    sum.memoryGiBHours += f.memoryGiBHours;
    for (const [type, hours] of Object.entries(f.instanceHours)) sum.instanceHours[type] = (sum.instanceHours[type] ?? 0) + hours;
  }
  return {
    hoursAsleep: round(sum.hoursAsleep),
    cpuCoreHours: round(sum.cpuCoreHours),
    memoryGiBHours: round(sum.memoryGiBHours),
    instanceHours: Object.fromEntries(Object.entries(sum.instanceHours).map(([k, v]) => [k, round(v)])),
    cost: costOf(sum, prices),
  };
}

export type Period = 'week' | 'month';

/** The last 7 or 30 days up to `now`. */
export function periodRange(period: Period, now: Date): { from: Date; to: Date } {
  return { from: new Date(now.getTime() - (period === 'week' ? 7 : 30) * DAY_MS), to: now };
}

/** Monday 00:00 UTC of the week `at` is in. */
export function weekStart(at: Date): Date {
  const day = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()));
  return new Date(day.getTime() - ((day.getUTCDay() + 6) % 7) * DAY_MS);
}

/** The last `weeks` calendar weeks (Monday 00:00 UTC to the next), oldest first; the current one up to `now`. */
export function weekRanges(weeks: number, now: Date): { from: Date; to: Date }[] {
  const current = weekStart(now);
  return Array.from({ length: weeks }, (_, i) => {
    const from = new Date(current.getTime() - (weeks - 1 - i) * 7 * DAY_MS);
    return { from, to: new Date(from.getTime() + 7 * DAY_MS) };
  });
}

/** The sleeps within [from, to), clipped to it; one still lasting has `to` null. */
export function asleepWithin(ledger: readonly Sleep[], from: Date, to: Date, now: Date): { from: string; to: string | null }[] {
  return ledger.flatMap((sleep) => {
    const start = Math.max(Date.parse(sleep.from), from.getTime());
    const endMs = sleep.to === null ? now.getTime() : Date.parse(sleep.to);
    const end = Math.min(endMs, to.getTime());
    if (!(end > start)) return [];
    return [{ from: new Date(start).toISOString(), to: sleep.to === null && end === endMs ? null : new Date(end).toISOString() }];
  });
}

/** "12.5 core-hours, 40 GiB-hours, 24 instance-hours (EUR 8.20)": figures in one line for a person. */
export function describeFigures(f: Figures, currency?: string | null): string {
  const instances = Object.values(f.instanceHours).reduce((a, b) => a + b, 0);
  const num = (n: number) => (n >= 100 ? Math.round(n).toString() : String(round(n, 1)));
  const parts = [`${num(f.hoursAsleep)} h asleep`, `${num(f.cpuCoreHours)} CPU core-hours`, `${num(f.memoryGiBHours)} GiB-hours of memory`];
  if (instances > 0) parts.push(`${num(instances)} instance-hours`);
  const money = f.cost === null ? '' : ` (${currency ? `${currency} ` : ''}${f.cost.toFixed(2)})`;
  return `${parts.join(', ')}${money}`;
}

type AwsOutcome = { kind: string; id: string; region: string; outcome: string; instanceType?: string; cluster?: string };

/** What the AWS half of a stop stopped, by `<ec2|rds> <type>`: the instances it stopped, and the members of the Aurora clusters it stopped (`region/id`). */
export function stoppedInstanceIds(resources: readonly AwsOutcome[]): Record<string, string[]> {
  const clusters = new Set(resources.filter((r) => r.kind === 'rds-cluster' && r.outcome === 'changed').map((r) => `${r.region}/${r.id}`));
  const ids: Record<string, string[]> = {};
  for (const r of resources) {
    const counted =
      (r.outcome === 'changed' && r.kind !== 'rds-cluster') ||
      (r.kind === 'rds-instance' && r.cluster && clusters.has(`${r.region}/${r.cluster}`));
    if (!counted) continue;
    const key = `${r.kind === 'ec2-instance' ? 'ec2' : 'rds'} ${r.instanceType ?? 'unknown'}`;
    (ids[key] ??= []).push(`${r.region}/${r.id}`);
  }
  return ids;
}

/** How many instances of each type stoppedInstanceIds finds. */
export function stoppedInstances(resources: readonly AwsOutcome[]): Record<string, number> {
  return Object.fromEntries(Object.entries(stoppedInstanceIds(resources)).map(([type, ids]) => [type, ids.length]));
}

/** The instances half of what a stop put to sleep. */
export function instancesSlept(resources: readonly AwsOutcome[]): Pick<Slept, 'instances' | 'instanceIds'> {
  const instanceIds = stoppedInstanceIds(resources);
  const instances = stoppedInstances(resources);
  return Object.keys(instanceIds).length > 0 ? { instances, instanceIds } : { instances };
}

// ---- Reports, as the API, Slack and the CLI show them.

export interface SavingsReport {
  period: Period;
  from: string;
  to: string;
  currency: string | null;
  environments: (Figures & { namespace: string })[];
  total: Figures;
}

/** What each environment, and all of them together, saved in the last week or month. */
export function savingsReport(
  ledgers: readonly { namespace: string; sleeps: readonly Sleep[] }[],
  period: Period,
  now: Date,
  prices?: Prices,
): SavingsReport {
  const { from, to } = periodRange(period, now);
  const environments = ledgers.map(({ namespace, sleeps }) => ({ namespace, ...figures(sleeps, from, to, now, prices) }));
  return {
    period,
    from: from.toISOString(),
    to: to.toISOString(),
    currency: prices?.currency ?? null,
    environments,
    total: total(environments, prices),
  };
}

export interface WeeklyReport {
  currency: string | null;
  weeks: ({ from: string; to: string } & Omit<Figures, 'hoursAsleep'> & { hoursAsleep: number })[];
}

/** What all the environments saved in each of the last `weeks` calendar weeks (Monday 00:00 UTC), oldest first. */
export function weeklyReport(ledgers: readonly { sleeps: readonly Sleep[] }[], weeks: number, now: Date, prices?: Prices): WeeklyReport {
  return {
    currency: prices?.currency ?? null,
    weeks: weekRanges(weeks, now).map(({ from, to }) => ({
      from: from.toISOString(),
      to: to.toISOString(),
      ...total(
        ledgers.map(({ sleeps }) => figures(sleeps, from, to, now, prices)),
        prices,
      ),
    })),
  };
}

export interface Timeline {
  namespace: string;
  from: string;
  to: string;
  asleep: { from: string; to: string | null }[];
}

/** When the environment slept in the last `days` days; the ledger keeps LEDGER_DAYS of them. */
export function timeline(namespace: string, sleeps: readonly Sleep[], days: number, now: Date): Timeline {
  const from = new Date(now.getTime() - days * DAY_MS);
  return { namespace, from: from.toISOString(), to: now.toISOString(), asleep: asleepWithin(sleeps, from, now, now) };
}
