/**
 * A worker in its own process, so a test can kill it with SIGKILL like a crashed pod.
 * Usage: ts-node worker-process.ts <temporal address> <task queue> <calls file>
 * Every activity call is appended to the calls file as a JSON line before it returns.
 */
import { appendFileSync } from 'node:fs';
import { NativeConnection, Worker } from '@temporalio/worker';
import { workflowCode } from '../../src/worker';
import { recordingActivities } from './recording-activities';

async function run(): Promise<void> {
  const [address, taskQueue, callsFile] = process.argv.slice(2);
  if (!address || !taskQueue || !callsFile) throw new Error('usage: worker-process.ts <address> <task queue> <calls file>');
  const recorded = recordingActivities(async () => Date.now());
  const persist =
    <A extends unknown[], R>(call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const result = await call(...args);
      appendFileSync(callsFile, JSON.stringify(recorded.calls.at(-1)) + '\n');
      return result;
    };
  const worker = await Worker.create({
    connection: await NativeConnection.connect({ address }),
    taskQueue,
    ...workflowCode(),
    // No sticky queue: the time-skipping test server never times out a dead worker's sticky
    // tasks (its clock is locked while one waits), which a real server does after seconds.
    maxCachedWorkflows: 0,
    activities: {
      stopNamespace: persist(recorded.stopNamespace),
      startNamespace: persist(recorded.startNamespace),
      notify: persist(recorded.notify),
      stopAwsResources: persist(recorded.stopAwsResources),
      startAwsResources: persist(recorded.startAwsResources),
    },
  });
  console.log('worker ready');
  await worker.run();
}

run().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
