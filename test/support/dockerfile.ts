/**
 * How the Dockerfile's runtime stage starts the service, read from the Dockerfile itself:
 * the manifest tests check it and the benchmarks start the worker the same way, so neither
 * can drift from the image. Docker is not used here.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

export interface ImageRuntime {
  /** The whole Dockerfile. */
  text: string;
  /** Every stage's text, the build stages first. */
  stages: string[];
  /** The last stage: what the image runs. */
  runtime: string;
  /** Its CMD, e.g. ['node', '--enable-source-maps', 'lib/main.js']. */
  cmd: string[];
  /** The flags CMD gives node, between `node` and the script. */
  nodeArgs: string[];
  /** Its ENV settings. */
  env: Record<string, string>;
}

const DOCKERFILE = path.join(__dirname, '..', '..', 'Dockerfile');

export function imageRuntime(): ImageRuntime {
  const text = readFileSync(DOCKERFILE, 'utf8');
  const stages = text.split(/^FROM /m).slice(1);
  const runtime = stages.at(-1) ?? '';
  const cmdLine = /^CMD (\[.*\])\s*$/m.exec(runtime)?.[1];
  const cmd = cmdLine ? (JSON.parse(cmdLine) as string[]) : [];
  const env: Record<string, string> = {};
  for (const [, settings] of runtime.matchAll(/^ENV (.+)$/gm)) {
    for (const [, key, value] of settings!.matchAll(/(\w+)=(\S+)/g)) env[key!] = value!;
  }
  return { text, stages, runtime, cmd, nodeArgs: cmd.slice(1, -1), env };
}
