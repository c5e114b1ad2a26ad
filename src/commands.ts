/**
 * The `/devenv` grammar. One table drives the parser, the `help` text and the docs, so
 * what users read is always what the parser accepts. Slack, REST and a CLI all parse
 * through here; none of them interprets text on its own.
 */
import { formatMinutes, parseDuration } from './domain/duration';
import { dns1123LabelError } from './domain/names';
import type { Period } from './domain/savings';
import { DEFAULT_SUPPORT_SIZES } from './domain/support-sizes';

/** Who may use a command is configured per family (see docs/slack.md). */
export type CommandFamily = 'read' | 'control' | 'support';

export type Command =
  | { name: 'help' }
  | { name: 'list' }
  | { name: 'status'; namespace: string }
  | { name: 'history'; namespace: string }
  | { name: 'why'; namespace: string }
  /** Without a namespace: every environment, and their total. */
  | { name: 'savings'; namespace?: string; period: Period }
  | { name: 'start'; namespace: string }
  | { name: 'stop'; namespace: string }
  | { name: 'prolongate'; namespace: string; minutes: number }
  | { name: 'support start'; supportName: string; size: string }
  | { name: 'support stop'; supportName: string }
  | { name: 'support list' };

export type CommandName = Command['name'];

export type ParseResult =
  | { ok: true; command: Command }
  /** `error` says what is wrong; `usage` is the grammar of the nearest command(s). */
  | { ok: false; error: string; usage: string[]; nearest?: CommandName };

export interface ParseOptions {
  /** The support-pod size catalogue; sizes are matched case-insensitively. */
  supportSizes?: readonly string[];
}

interface ArgValues {
  namespace?: string;
  supportName?: string;
  size?: string;
  minutes?: number;
  period?: Period;
}

type Param =
  | { kind: 'namespace' | 'name' | 'size'; placeholder: string; optional?: boolean }
  /** `week` or `month`, optional: a lone `week` or `month` is the period, not a namespace. */
  | { kind: 'period'; placeholder: string; optional: true }
  /** Takes the rest of the line, so `1h 15m` works as well as `1h15m`. */
  | { kind: 'duration'; placeholder: string }
  /** A fixed word; optional ones are shown in the grammar but may be left out. */
  | { kind: 'literal'; word: string; optional?: boolean };

export interface CommandSpec {
  name: CommandName;
  family: CommandFamily;
  params: Param[];
  summary: string;
  example: string;
  build(values: ArgValues): Command;
}

const ns: Param = { kind: 'namespace', placeholder: '<namespace>' };

export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'start',
    family: 'control',
    params: [ns],
    summary: 'scale every workload back to its saved replica count and start its tagged EC2/RDS',
    example: 'start dev1',
    build: (v) => ({ name: 'start', namespace: v.namespace! }),
  },
  {
    name: 'stop',
    family: 'control',
    params: [ns],
    summary: 'save replica counts and scale every workload to 0; stop its tagged EC2/RDS',
    example: 'stop dev1',
    build: (v) => ({ name: 'stop', namespace: v.namespace! }),
  },
  {
    name: 'prolongate',
    family: 'control',
    params: [ns, { kind: 'literal', word: 'for', optional: true }, { kind: 'duration', placeholder: '<duration>' }],
    summary: "move today's shutdown later, e.g. by 1h, 90m or 2h30m",
    example: 'prolongate dev1 for 2h',
    build: (v) => ({ name: 'prolongate', namespace: v.namespace!, minutes: v.minutes! }),
  },
  {
    name: 'status',
    family: 'read',
    params: [ns],
    summary: 'phase, next shutdown, and who did what last',
    example: 'status dev1',
    build: (v) => ({ name: 'status', namespace: v.namespace! }),
  },
  {
    name: 'history',
    family: 'read',
    params: [ns],
    summary: 'the last things that happened to it: stops, starts, warnings, prolongations, policy changes, failures; who and when',
    example: 'history dev1',
    build: (v) => ({ name: 'history', namespace: v.namespace! }),
  },
  {
    name: 'why',
    family: 'read',
    params: [ns],
    summary: 'what happens to it next and why, in one sentence',
    example: 'why dev1',
    build: (v) => ({ name: 'why', namespace: v.namespace! }),
  },
  {
    name: 'savings',
    family: 'read',
    params: [
      { kind: 'namespace', placeholder: '<namespace>', optional: true },
      { kind: 'period', placeholder: 'week|month', optional: true },
    ],
    summary:
      'what sleeping saved in the last week (or month): CPU core-hours, GiB-hours, EC2/RDS instance-hours, and money with prices set; every environment without a namespace',
    example: 'savings dev1 month',
    build: (v) => ({ name: 'savings', ...(v.namespace ? { namespace: v.namespace } : {}), period: v.period ?? 'week' }),
  },
  {
    name: 'list',
    family: 'read',
    params: [],
    summary: 'every environment with its phase and next shutdown (also `status` alone)',
    example: 'list',
    build: () => ({ name: 'list' }),
  },
  {
    name: 'support start',
    family: 'support',
    params: [
      { kind: 'name', placeholder: '<name>' },
      { kind: 'size', placeholder: '<size>' },
    ],
    summary: 'a standalone management pod of a catalogued size in the support namespace',
    example: 'support start manage1 XL',
    build: (v) => ({ name: 'support start', supportName: v.supportName!, size: v.size! }),
  },
  {
    name: 'support stop',
    family: 'support',
    params: [{ kind: 'name', placeholder: '<name>' }],
    summary: 'remove a management pod',
    example: 'support stop manage1',
    build: (v) => ({ name: 'support stop', supportName: v.supportName! }),
  },
  {
    name: 'support list',
    family: 'read',
    params: [],
    summary: 'the management pods as the cluster has them: phase, readiness, size, owner, expiry, and any no workflow manages',
    example: 'support list',
    build: () => ({ name: 'support list' }),
  },
  {
    name: 'help',
    family: 'read',
    params: [],
    summary: 'this text',
    example: 'help',
    build: () => ({ name: 'help' }),
  },
];

const specOf = (name: CommandName): CommandSpec => COMMANDS.find((spec) => spec.name === name)!;

export function familyOf(command: Command): CommandFamily {
  return specOf(command.name).family;
}

/** `prolongate <namespace> for <duration>` */
export function grammar(spec: CommandSpec): string {
  const parts = spec.params.map((p) =>
    p.kind === 'literal' ? p.word : 'optional' in p && p.optional ? `[${p.placeholder}]` : p.placeholder,
  );
  return [spec.name, ...parts].join(' ');
}

/** The help text: one line per command, as a user types it. */
export function helpLines(prefix = '/devenv'): string[] {
  return COMMANDS.map((spec) => `${prefix} ${grammar(spec)}  -  ${spec.summary}`);
}

/** The command reference in docs/slack.md is this table, pasted; a test keeps them equal. */
export function commandReferenceMarkdown(prefix = '/devenv'): string {
  const rows = COMMANDS.map(
    // A `|` inside a cell (`[week|month]`) would end it: GitHub's tables take it escaped, code spans too.
    (spec) => `| \`${prefix} ${grammar(spec).replace(/\|/g, '\\|')}\` | ${spec.family} | ${spec.summary} | \`${prefix} ${spec.example}\` |`,
  );
  return ['| command | family | what it does | example |', '|---|---|---|---|', ...rows].join('\n');
}

function usageFor(...names: CommandName[]): string[] {
  return names.map((name) => `/devenv ${grammar(specOf(name))}`);
}

function parseWith(spec: CommandSpec, tokens: string[], options: ParseOptions): ParseResult {
  const values: ArgValues = {};
  const fail = (error: string): ParseResult => ({ ok: false, error, usage: usageFor(spec.name), nearest: spec.name });
  let i = 0;
  for (const param of spec.params) {
    const token = tokens[i];
    if (param.kind === 'literal') {
      if (token?.toLowerCase() === param.word) i++;
      else if (!param.optional) return fail(`expected "${param.word}"${token === undefined ? '' : `, not "${token}"`}`);
      continue;
    }
    if (param.kind === 'period') {
      if (token === undefined) continue;
      const period = token.toLowerCase();
      if (period !== 'week' && period !== 'month') return fail(`"${token}" is not a period; say week or month`);
      values.period = period;
      i++;
      continue;
    }
    // A period word alone is the period; before another word (`savings week month`), a namespace of that name.
    if (param.kind !== 'duration' && param.optional && (token === undefined || (/^(week|month)$/i.test(token) && i === tokens.length - 1)))
      continue;
    if (token === undefined) return fail(`${param.placeholder} is missing`);
    if (param.kind === 'duration') {
      const text = tokens.slice(i).join(' ');
      i = tokens.length;
      const parsed = parseDuration(text);
      if (!parsed.ok) return fail(parsed.error);
      values.minutes = parsed.minutes;
      continue;
    }
    i++;
    if (param.kind === 'size') {
      const sizes = options.supportSizes ?? Object.keys(DEFAULT_SUPPORT_SIZES);
      const size = sizes.find((s) => s.toLowerCase() === token.toLowerCase());
      if (!size) return fail(`"${token}" is not a size; choose one of ${sizes.join(', ')}`);
      values.size = size;
      continue;
    }
    const invalid = dns1123LabelError(token);
    if (invalid) return fail(invalid);
    if (param.kind === 'namespace') values.namespace = token;
    else values.supportName = token;
  }
  if (i < tokens.length) return fail(`unexpected "${tokens.slice(i).join(' ')}"`);
  return { ok: true, command: spec.build(values) };
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** Parses the text after `/devenv`. Never throws: any input is a command or a usage message. */
export function parseCommand(text: string, options: ParseOptions = {}): ParseResult {
  const tokens = text.trim().split(/\s+/).filter(Boolean);
  const [first, second] = [tokens[0]?.toLowerCase(), tokens[1]?.toLowerCase()];
  if (first === undefined) return { ok: false, error: 'no command given', usage: helpLines() };

  // `status` alone is `list`, as people expect.
  if (first === 'status' && tokens.length === 1) return { ok: true, command: { name: 'list' } };

  if (first === 'support') {
    const sub = COMMANDS.find((spec) => spec.name === `support ${second}`);
    if (sub) return parseWith(sub, tokens.slice(2), options);
    const supportCommands: CommandName[] = ['support start', 'support stop', 'support list'];
    return {
      ok: false,
      error: second === undefined ? 'support needs start, stop or list' : `"support ${tokens[1]}" is not a command`,
      usage: usageFor(...supportCommands),
    };
  }

  const spec = COMMANDS.find((s) => s.name === first);
  if (spec) return parseWith(spec, tokens.slice(1), options);

  // A prefix (`prolong`) or a typo (`strat`) of exactly one word points to that command.
  const candidates = COMMANDS.map((s) => {
    const word = s.name.split(' ')[0]!;
    return { spec: s, distance: first.length >= 3 && word.startsWith(first) ? 0 : editDistance(first, word) };
  });
  const nearest = candidates.filter(({ distance }) => distance <= 2).sort((a, b) => a.distance - b.distance)[0]?.spec;
  if (nearest) {
    // The whole command with the word corrected, so it can be copied as it stands.
    const corrected = ['/devenv', nearest.name.split(' ')[0], ...tokens.slice(1)].join(' ');
    return {
      ok: false,
      error: `"${tokens[0]}" is not a command; did you mean \`${corrected}\`?`,
      usage: usageFor(nearest.name),
      nearest: nearest.name,
    };
  }
  return { ok: false, error: `"${tokens[0]}" is not a command`, usage: helpLines() };
}

/** The canonical text of a command, e.g. for logs and confirmations. */
export function formatCommand(command: Command): string {
  switch (command.name) {
    case 'prolongate':
      return `prolongate ${command.namespace} for ${formatMinutes(command.minutes)}`;
    case 'start':
    case 'stop':
    case 'status':
    case 'history':
    case 'why':
      return `${command.name} ${command.namespace}`;
    case 'savings':
      return ['savings', command.namespace, command.period].filter(Boolean).join(' ');
    case 'support start':
      return `support start ${command.supportName} ${command.size}`;
    case 'support stop':
      return `support stop ${command.supportName}`;
    default:
      return command.name;
  }
}
