/**
 * `npm run bench` runs every benchmark, `npm run bench -- <name> ...` the named ones, each in
 * a process of its own (its own servers, its own memory), one after the other. Each prints
 * its figures, the baseline measured in the same run and their ratio, and whether the
 * issue's target is met; this runner prints them again as one table at the end. The exit
 * code is non-zero only when a benchmark could not run: targets are reported, not asserted.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RecordedFigure } from './support/report';
import { load, machine } from './support/report';

const BENCHMARKS: Record<string, string> = {
  slack: 'signed /devenv status at 50 connections (p99 <= 100 ms) vs /healthz',
  kubernetes: 'stop/start of 500 workloads vs bare scale patches (ratio <= 1.3)',
  scale: '1,000 environments on one worker: enrol, RSS (<= 400 MB), morning reset (<= 30 s), shutdown lateness (p99 <= 1 s)',
  admission: 'admission webhook at 50 connections over HTTPS (p99 <= 50 ms) vs a bare https server',
  drift:
    'drift looks of 200 stopped environments: apiserver requests per minute per 1,000 (<= 1,000) vs running the stop again as the look',
  rush: '500 environments of 10 workloads stopping at one minute and starting, with real controllers: until asleep / Ready vs bare patches (ratio <= 1.3)',
  savings:
    'a benchmark day of 1,000 environments through the environment workflow on the time-skipping server: what the ledger saved, its history events and memo bytes vs the same day without it',
  aws: '200 environments stopping at once with a stale AWS inventory, on moto: listing calls vs each environment listing alone (ratio <= 0.05)',
};

function main(): number {
  const asked = process.argv.slice(2);
  const unknown = asked.filter((name) => !(name in BENCHMARKS));
  if (unknown.length > 0 || asked.includes('--help')) {
    console.error(
      `usage: npm run bench [-- <name> ...]\n${Object.entries(BENCHMARKS)
        .map(([name, what]) => `  ${name.padEnd(11)} ${what}`)
        .join('\n')}`,
    );
    return unknown.length > 0 ? 2 : 0;
  }
  const names = asked.length > 0 ? asked : Object.keys(BENCHMARKS);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'devenv-bench-'));
  const summaryFile = path.join(dir, 'figures.jsonl');
  console.log(`devenv-scheduler benchmarks: ${names.join(', ')}\n${new Date().toISOString()}, ${machine()}; ${load()}`);
  const failed: string[] = [];
  const started = Date.now();
  for (const name of names) {
    const run = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(__dirname, `${name}.ts`)], {
      stdio: 'inherit',
      env: { ...process.env, BENCH_SUMMARY_FILE: summaryFile },
    });
    if (run.status !== 0) failed.push(`${name} (${run.status ?? run.signal})`);
  }
  let figures: RecordedFigure[] = [];
  try {
    figures = readFileSync(summaryFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as RecordedFigure);
  } catch {
    // no benchmark got as far as a figure
  }
  rmSync(dir, { recursive: true, force: true });
  console.log(`\n== Summary (${((Date.now() - started) / 1000).toFixed(0)} s; ${load()})`);
  const rows = figures.map((f) => [
    f.bench,
    f.name,
    `${f.value}${f.unit ? ` ${f.unit}` : ''}`,
    f.baseline ? `${f.baseline.value}${f.unit ? ` ${f.unit}` : ''} (${f.baseline.name})` : '',
    f.ratio !== undefined ? String(f.ratio) : '',
    f.target
      ? `${f.target.on === 'ratio' ? 'ratio ' : ''}${f.target.op} ${f.target.limit}${f.target.on === 'ratio' || !f.unit ? '' : ` ${f.unit}`}: ${f.met ? 'met' : 'NOT met'}`
      : '',
  ]);
  const header = ['bench', 'figure', 'value', 'baseline', 'ratio', 'target'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const row of [header, ...rows]) console.log(`  ${row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ')}`.trimEnd());
  if (failed.length > 0) console.log(`\nCould not run: ${failed.join(', ')}`);
  return failed.length > 0 ? 1 : 0;
}

process.exitCode = main();
