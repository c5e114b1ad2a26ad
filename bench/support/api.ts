/** Starts bench/support/api-child.ts as the image would: the API side under load in a process of its own. */
import type { ApiChildOptions, ApiMessage } from './api-child';
import { forkAsImage, messageFrom } from './image-process';

export interface ApiProcess {
  /** Base URL, e.g. http://127.0.0.1:41234 or https://127.0.0.1:41234. */
  url: string;
  /** The admission outcome counters (devenv_admissions_total by outcome). */
  outcomes(): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

export async function startApiProcess(options: ApiChildOptions): Promise<ApiProcess> {
  // BENCH_API_NODE_ARGS, e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof', profiles the API alone.
  const { child, stop } = await forkAsImage('api-child', [JSON.stringify(options)], process.env.BENCH_API_NODE_ARGS);
  const { url } = await messageFrom<Extract<ApiMessage, { type: 'ready' }>>(child, 'ready', `the ${options.role} process`);
  return {
    url,
    outcomes: async () => {
      const reply = messageFrom<Extract<ApiMessage, { type: 'outcomes' }>>(child, 'outcomes', `the ${options.role} process`);
      child.send({ type: 'outcomes' });
      return (await reply).outcomes;
    },
    stop,
  };
}
