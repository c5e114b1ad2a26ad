/**
 * The benchmarks still run: `npm run bench -- slack admission`, shortened to one second of
 * load each, exactly as the README gives it. This proves the machinery (the service compiled
 * as the image has it, the API, webhook and worker each in a process of their own, every
 * reply checked), not the figures: targets are for a quiet machine, not a test run.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';

const ROOT = path.join(__dirname, '..');

describe('npm run bench (shortened)', function () {
  this.timeout(300_000);
  // One run in ten failed once while this test was written, and its output was lost; ten
  // more, some under extra CPU load, passed. One retry, and a failed attempt's whole output
  // goes to stderr so that CI's log says what it was.
  this.retries(1);

  it('runs the slack and admission benchmarks end to end and prints every figure with its baseline', async () => {
    const child = spawn('npm', ['run', 'bench', '--', 'slack', 'admission'], {
      cwd: ROOT,
      env: { ...process.env, BENCH_SECONDS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    if (code !== 0) console.error(`npm run bench exited with ${code}:\n${output}`);
    assert.equal(code, 0, 'npm run bench failed; its output is above');
    for (const figure of ['status p99', 'status throughput', 'webhook UPDATE p99', 'webhook CREATE p99']) {
      assert.match(output, new RegExp(`RESULT ${figure}: [\\d.]+ \\S+ \\| baseline .+: [\\d.]+ \\S+ \\| ratio [\\d.]+`), figure);
    }
    // Every status was verified and answered in full by the API process.
    assert.match(output, /; (\d+) full status replies, 0 deferred/);
    // The CREATE reviews reached Temporal from the webhook process.
    const started = /(\d+) environment workflows started on the dev server for (\d+) enrolled/.exec(output);
    assert.ok(started && Number(started[1]) > 0, output);
  });

  it('runs the evening-rush benchmark at two environments of five workloads, on the control plane with real controllers', async () => {
    const child = spawn('npm', ['run', 'bench', '--', 'rush'], {
      cwd: ROOT,
      env: { ...process.env, RUSH_ENVIRONMENTS: '2', RUSH_WORKLOADS: '5', RUSH_CONTROLLER_QPS: '100' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    if (code !== 0) console.error(`npm run bench exited with ${code}:\n${output}`);
    assert.equal(code, 0, 'npm run bench failed; its output is above');
    for (const figure of ['evening: 2 stopNamespace at once', 'morning: 2 startNamespace at once']) {
      assert.match(output, new RegExp(`RESULT ${figure}: [\\d.]+ s \\| baseline bare merge patches: [\\d.]+ s \\| ratio [\\d.]+`), figure);
    }
    for (const figure of ['evening: apiserver requests a second', 'morning: apiserver 429s'])
      assert.match(output, new RegExp(`RESULT ${figure}: \\d+`), figure);
    // The worker's identity reached the apiserver: each stop listed and patched as the ServiceAccount.
    assert.match(output, /the worker's [1-9]\d* \(baseline [1-9]/);
  });

  it('runs the savings benchmark day at three environments and prints the savings and what keeping them costs', async () => {
    const child = spawn('npm', ['run', 'bench', '--', 'savings'], {
      cwd: ROOT,
      env: { ...process.env, BENCH_SAVINGS_ENVIRONMENTS: '3', BENCH_SAVINGS_BASELINE: '2' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    if (code !== 0) console.error(`npm run bench exited with ${code}:\n${output}`);
    assert.equal(code, 0, 'npm run bench failed; its output is above');
    // Each environment slept from the 19:00 stop to the 08:00 wake-up, and its 10 Deployments' requests were counted.
    assert.match(output, /RESULT day saved: environment-hours asleep: 39 h/);
    for (const figure of [
      'day saved: CPU core-hours',
      'day saved: memory GiB-hours',
      'day saved: ec2 t3.medium instance-hours',
      'day saved: cost at sample prices',
    ])
      assert.match(output, new RegExp(`RESULT ${figure}: [1-9][\\d.]* `), figure);
    for (const figure of ['history events added by the day, per environment', 'memo bytes per environment'])
      assert.match(
        output,
        new RegExp(`RESULT ${figure}: [\\d.]+ \\S+ \\| baseline the same day without the ledger: [\\d.]+ \\S+ \\| ratio [\\d.]+`),
        figure,
      );
    // The ledger's one patch marker is among the events that tell the two days apart.
    assert.match(output, /patch \{"id":"savings-ledger"/);
  });
});
