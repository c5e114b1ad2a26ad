/**
 * How a benchmark reports: progress lines with the elapsed time, one RESULT line per
 * figure (value, the baseline measured in the same run, their ratio, the target and
 * whether it is met), and the same figures as JSON lines for `bench/run.ts`'s summary.
 * Targets are reported, never asserted: a benchmark fails only when it could not run.
 */
import { appendFileSync } from 'node:fs';
import os from 'node:os';
import { runAfterHooks } from './mocha-shim';

export interface Figure {
  bench: string;
  name: string;
  value: number;
  unit: string;
  baseline?: { name: string; value: number };
  /** value / baseline.value unless given. */
  ratio?: number;
  /** e.g. { op: '<=', limit: 100 } in the figure's unit. */
  target?: { op: '<=' | '>='; limit: number; on?: 'value' | 'ratio' };
  note?: string;
}

export interface RecordedFigure extends Figure {
  met?: boolean;
}

export const round = (value: number, digits = 1): number => Number(value.toFixed(digits));

/** Nearest-rank percentile of unsorted values (q in 0..1). */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** The middle value, or the mean of the two middle ones. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The 1-minute load average: other processes on the machine skew every figure. */
export function load(): string {
  return `load average ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')} on ${os.cpus().length} cores`;
}

export function machine(): string {
  return `${os.cpus().length} cores (${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}), ${Math.round(os.totalmem() / 2 ** 30)} GB, Node ${process.version}`;
}

export class Bench {
  readonly figures: RecordedFigure[] = [];
  private readonly started = performance.now();

  constructor(readonly name: string) {}

  elapsedSeconds(): number {
    return (performance.now() - this.started) / 1000;
  }

  progress(message: string): void {
    console.log(`  [${this.name} ${this.elapsedSeconds().toFixed(1).padStart(5)}s] ${message}`);
  }

  /** Prints and records one figure; returns whether its target is met (undefined without a target). */
  figure(figure: Omit<Figure, 'bench'>): boolean | undefined {
    const ratio = figure.ratio ?? (figure.baseline && figure.baseline.value > 0 ? figure.value / figure.baseline.value : undefined);
    const target = figure.target;
    const checked = target ? (target.on === 'ratio' ? ratio : figure.value) : undefined;
    const met = target && checked !== undefined ? (target.op === '<=' ? checked <= target.limit : checked >= target.limit) : undefined;
    const recorded: RecordedFigure = {
      bench: this.name,
      ...figure,
      ...(ratio !== undefined ? { ratio: round(ratio, 2) } : {}),
      ...(met !== undefined ? { met } : {}),
    };
    this.figures.push(recorded);
    const unit = (value: number) => `${round(value, 2)}${figure.unit ? ` ${figure.unit}` : ''}`;
    const parts = [`  RESULT ${figure.name}: ${unit(figure.value)}`];
    if (figure.baseline) parts.push(`baseline ${figure.baseline.name}: ${unit(figure.baseline.value)}`);
    if (ratio !== undefined) parts.push(`ratio ${round(ratio, 2)}`);
    if (target) {
      const what = target.on === 'ratio' ? 'ratio' : figure.name;
      const limit = target.on === 'ratio' ? String(target.limit) : unit(target.limit);
      parts.push(`target ${what} ${target.op} ${limit}: ${met ? 'MET' : 'NOT MET'}`);
    }
    console.log(parts.join(' | '));
    if (figure.note) console.log(`         ${figure.note}`);
    return met;
  }
}

/**
 * Runs one benchmark as a process: header, body, cleanup (the test harness's hooks), the
 * summary file for the runner, and the exit code (1 only when it could not run).
 */
export function runBench(name: string, title: string, body: (bench: Bench) => Promise<void>): void {
  const bench = new Bench(name);
  console.log(`\n== ${name}: ${title}`);
  console.log(`   ${new Date().toISOString()} on ${machine()}; ${load()}`);
  let code = 0;
  void (async () => {
    try {
      await body(bench);
    } catch (err) {
      code = 1;
      console.error(`\n  ${name} could not run:`, err);
    }
    bench.progress(`finished; ${load()}; cleaning up`);
    await runAfterHooks();
    const summary = process.env.BENCH_SUMMARY_FILE;
    if (summary) for (const figure of bench.figures) appendFileSync(summary, `${JSON.stringify(figure)}\n`);
    bench.progress(code === 0 ? 'done' : 'failed');
    // Connections, timers and child processes of the harness must not keep a finished benchmark alive.
    process.exit(code);
  })();
}
